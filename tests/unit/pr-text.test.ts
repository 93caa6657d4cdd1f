import { expect, test } from "bun:test";
import type { InputChange } from "../../lib/flake/report.ts";
import type { CompareCommit } from "../../lib/github/upstream.ts";
import {
  parseMarker,
  prBody,
  prTitle,
  renderMarker,
  replaceSection,
  safeSubject,
} from "../../lib/pr/text.ts";

const from = "fceca8df71c1786d6ccbafd8c49532b7f5671423";
const to = "887daaf2b11c1375d98b35cc0c769fc9e9512861";

function change(overrides: Partial<InputChange> = {}): InputChange {
  return {
    name: "nixfleet",
    from: { ref: `github:acme/nixfleet/${from}`, rev: from, lastModified: 1_793_491_200 },
    to: { ref: `github:acme/nixfleet/${to}`, rev: to, lastModified: 1_795_564_800 },
    github: { owner: "acme", repo: "nixfleet" },
    transitive: { added: [], removed: [], changed: [] },
    lock: { text: "{}", sha256: "0".repeat(64) },
    ...overrides,
  };
}

function commit(i: number): CompareCommit {
  const sha = i.toString(16).padStart(40, "a");
  // Only the fields the body reads; the rest of GitHub's commit object does not matter here.
  return {
    sha,
    commit: { message: `change ${i}\n\nlong description`, author: { name: `Author ${i}` } },
    author: i % 2 === 0 ? { login: `user${i}` } : null,
  } as CompareCommit;
}

test("title names the input and the short SHA", () => {
  expect(prTitle("nixfleet", to)).toBe("chore(flake): update nixfleet to 887daaf");
});

test("the marker round-trips and ignores bodies without one", () => {
  const body = `text\n${renderMarker({ input: "nixfleet", rev: to })}\n`;
  expect(parseMarker(body)).toStrictEqual({ input: "nixfleet", rev: to });
  expect(parseMarker("no marker")).toBeUndefined();
  expect(parseMarker("<!-- flake-bump {not json} -->")).toBeUndefined();
  expect(parseMarker(null)).toBeUndefined();
});

interface SubjectCase {
  message: string;
  subject: string;
}
const subjects: SubjectCase[] = [
  { message: "fix: thing\n\nbody", subject: "fix: thing" },
  { message: "thanks @alice", subject: "thanks @\u200balice" },
  { message: "fixes #12 and (#13)", subject: "fixes acme/nixfleet#12 and (acme/nixfleet#13)" },
  { message: "see other/repo#5", subject: "see other/repo#5" },
  { message: "<script>alert(1)</script>", subject: "&lt;script&gt;alert(1)&lt;/script&gt;" },
];
test.each(subjects)("safeSubject($message)", ({ message, subject }) => {
  expect(safeSubject(message, "acme/nixfleet")).toBe(subject);
});

test("the body carries SHAs, links, dates, the commit list capped at 30, and the marker last", () => {
  const commits = Array.from({ length: 35 }, (_, i) => commit(i + 1));
  const body = prBody({ change: change(), commits, totalCommits: 35 });
  expect(body).toContain(`New rev: \`${to}\``);
  expect(body).toContain(`https://github.com/acme/nixfleet/compare/${from}...${to}`);
  expect(body).toContain(`[\`fceca8d\`](https://github.com/acme/nixfleet/commit/${from}) | 2026-11-01`);
  expect(body).toContain(`[\`887daaf\`](https://github.com/acme/nixfleet/commit/${to}) | 2026-11-25`);
  expect(body).toContain("### Upstream commits (35)");
  // Newest first: the last commit of the compare list comes first.
  expect(body.indexOf("change 35")).toBeLessThan(body.indexOf("change 34"));
  expect(body).not.toContain("change 5 ");
  expect(body).toContain("- … and 5 more");
  expect(body).toContain("— @\u200buser34");
  expect(body).toContain("— Author 35");
  expect(body).toContain("None: only this input moved.");
  expect(body).toContain(
    "<!-- flake-bump:impact -->\nAfter merging, deploy: the hosts that use `nixfleet`.\n<!-- /flake-bump:impact -->",
  );
  expect(body).not.toMatch(/switch the hosts|dashboard/);
  expect(body.trimEnd().endsWith(renderMarker({ input: "nixfleet", rev: to }))).toBe(true);
});

test("transitive changes are listed", () => {
  const body = prBody({
    change: change({
      transitive: {
        changed: [{ path: "nixfleet/nixpkgs", from: { ref: "a", rev: from }, to: { ref: "b", rev: to } }],
        added: [{ path: "nixfleet/systems", to: { ref: "c", rev: to } }],
        removed: [{ path: "nixfleet/old", from: { ref: "d" } }],
      },
    }),
  });
  expect(body).toContain("- `nixfleet/nixpkgs`: `fceca8d` → `887daaf`");
  expect(body).toContain("- `nixfleet/systems`: added at `887daaf`");
  expect(body).toContain("- `nixfleet/old`: removed");
  expect(body).not.toContain("### Upstream commits");
});

test("a GitHub Enterprise input links to its own host", () => {
  const body = prBody({
    change: change({ github: { owner: "acme", repo: "nixfleet", host: "ghe.example.com" } }),
  });
  expect(body).toContain(`https://ghe.example.com/acme/nixfleet/commit/${to}`);
});

interface FooterCase {
  footer: string | null | undefined;
  shown: string | undefined;
}
const footers: FooterCase[] = [
  { footer: undefined, shown: "After merging, deploy: the hosts that use `nixfleet`." },
  { footer: "Merge, then run `deploy-all`", shown: "Merge, then run `deploy-all`." },
  {
    footer: "Roll out {hosts} after merging!",
    shown: "Roll out the hosts that use `nixfleet` after merging!",
  },
  { footer: null, shown: undefined },
];
for (const { footer, shown } of footers) {
  test(`the footer ${JSON.stringify(footer)} closes the body inside the host impact markers`, () => {
    const body = prBody({ change: change(), ...(footer === undefined ? {} : { footer }) });
    const section = /<!-- flake-bump:impact -->\n(.*)\n<!-- \/flake-bump:impact -->/.exec(body);
    expect(section?.[1]).toStrictEqual(shown);
    // The impact step replaces the footer in place, never adding a second closing sentence.
    const replaced = replaceSection(body, "<!-- flake-bump:impact -->\nX\n<!-- /flake-bump:impact -->");
    expect(replaced.match(/flake-bump:impact -->/g)?.length).toBe(2);
    if (shown !== undefined) expect(replaced).not.toContain(shown);
  });
}

test("the body shows the submodules that move with the input next to it, and names the ones left", () => {
  const body = prBody({
    change: change({
      companions: {
        moved: [{ path: "doctrine", from: "7598d63".padEnd(40, "0"), to }],
        left: [{ path: "vendor/old", at: from }],
      },
    }),
  });
  const lines = body.split("\n");
  const moved = lines.indexOf("- `doctrine` (submodule) 7598d63 → 887daaf");
  expect(lines[moved - 1]).toBe("Moves with it, in the same commit:");
  // Right after the input's own from/to, before anything upstream or transitive.
  expect(moved).toBeLessThan(lines.indexOf("### Transitive lock changes"));
  expect(lines[moved - 2]).toBe("");
  expect(lines[moved - 3]).toStartWith("Compare: ");
  expect(body).toContain(
    "Left as it is: `vendor/old` stays at fceca8d, which is not what `nixfleet` is locked to; list it under companions to move it with the input.",
  );
  expect(prBody({ change: change() })).not.toContain("submodule");
});

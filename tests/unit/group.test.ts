/**
 * The grouped pull request in process: bump() with the Nix stand-in and the real group lookup
 * (lib/pr/group.ts asking the fake GitHub), then openGroupPullRequest against the same fake. Four
 * upstreams acme/a…d with real commits, so "older" and "newer" are the fake's compare answers.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { $ } from "zx";
import { type BumpRequest, bump } from "../../lib/bump/bump.ts";
import { RuntimeError } from "../../lib/core/errors.ts";
import { parseLock } from "../../lib/flake/lock.ts";
import { EXPERIMENTAL, type LockPlan, lockArgs, parseNixVersion } from "../../lib/flake/nix.ts";
import { type InputChange, type Report, serializeReport } from "../../lib/flake/report.ts";
import { createOctokit, type Octokit } from "../../lib/github/client.ts";
import { isOlder } from "../../lib/github/upstream.ts";
import {
  groupBody,
  groupBranch,
  groupTitle,
  openGroupMembers,
  openGroupPullRequest,
  parseGroupMarker,
} from "../../lib/pr/group.ts";
import type { OpenPrOptions } from "../../lib/pr/lifecycle.ts";
import { parseMarker } from "../../lib/pr/text.ts";
import { main as impactMain } from "../../scripts/impact.ts";
import { main as openPrMain } from "../../scripts/open-pr.ts";
import { type FakeGitHub, localFakeGitHub } from "../fake-github/index.ts";
import { scratchRoot } from "../fake-github/tmp.ts";
import { upstreamHistory } from "../support/history.ts";
import { runInProcess } from "../support/in-process.ts";
import { type Commit, narHashOf, nixJson, nixStandIn } from "../support/nix-stand-in.ts";

const DOWN = { owner: "acme", repo: "nixcfg" } as const;
const NAMES = ["a", "b", "c", "d"] as const;
type Name = (typeof NAMES)[number];
const BRANCH = groupBranch();

let fake: FakeGitHub;
let octokit: Octokit;
let flakeDir: string;
/** Each upstream's main, oldest first: revs[name][i]. */
const revs = {} as Record<Name, string[]>;
const commits: Record<string, Commit> = {};

const rev = (name: Name, i: number): string => revs[name][i] ?? "";

/** A flake.lock as Nix writes it, each input locked at the given commit index. */
function lockAt(at: Record<Name, number>): string {
  const nodes: Record<string, unknown> = { root: { inputs: Object.fromEntries(NAMES.map((n) => [n, n])) } };
  for (const name of NAMES) {
    const r = rev(name, at[name]);
    nodes[name] = {
      locked: {
        lastModified: 1787000000 + at[name],
        narHash: narHashOf(r),
        owner: "acme",
        repo: name,
        rev: r,
        type: "github",
      },
      original: { owner: "acme", repo: name, type: "github" },
    };
  }
  return nixJson({ nodes, root: "root", version: 7 });
}

const opts: OpenPrOptions = {
  repo: DOWN,
  branchPrefix: "flake-bump/",
  labels: ["dependencies"],
  reviewers: [],
  draft: false,
  dryRun: false,
};

beforeAll(async () => {
  fake = await localFakeGitHub();
  octokit = createOctokit({ baseUrl: fake.apiUrl, token: fake.token, waitScale: 0 });
  for (const name of NAMES) {
    revs[name] = await upstreamHistory(fake, { owner: "acme", repo: name }, 3, (i) => `${name} ${i}`);
    revs[name].forEach((r, i) => {
      commits[r] = { rev: r, lastModified: 1787000000 + i, narHash: narHashOf(r) };
    });
  }
  const base = lockAt({ a: 0, b: 0, c: 0, d: 0 });
  await fake.createRepo(DOWN.owner, DOWN.repo, {
    files: { "flake.nix": "{ outputs = _: { }; }\n", "flake.lock": base },
  });
  flakeDir = await mkdtemp(join(scratchRoot(), "flake-bump-unit-group-"));
  await writeFile(join(flakeDir, "flake.nix"), "{ outputs = _: { }; }\n");
  await $({ cwd: flakeDir, quiet: true })`git init --quiet`;
}, 60_000);
afterAll(async () => {
  await fake?.stop();
  if (flakeDir) await rm(flakeDir, { recursive: true, force: true });
});

/** The base branch's lock, checked out as a workflow run would, then bump --group on it. */
async function bumpOnBase(request: Partial<BumpRequest>, heads: Partial<Record<Name, number>> = {}) {
  const base = (await fake.readFile(DOWN.owner, DOWN.repo, "main", "flake.lock")) ?? "";
  await writeFile(join(flakeDir, "flake.lock"), base);
  const nix = nixStandIn({
    commits,
    heads: Object.fromEntries(
      Object.entries(heads).map(([n, i]) => [n, commits[rev(n as Name, i)] as Commit]),
    ),
  });
  const report = await bump(
    { flakeDir, inputs: [], dryRun: false, ...request },
    {
      nix: async () => nix,
      group: {
        members: () => openGroupMembers(octokit, DOWN, BRANCH),
        isOlder: (source, r, than) => isOlder(octokit, source, r, than),
      },
    },
  );
  return { report, nix };
}

const openPulls = () => fake.pulls(DOWN.owner, DOWN.repo).filter((p) => p.state === "open");
const branchLock = async () => {
  const text = await fake.readFile(DOWN.owner, DOWN.repo, BRANCH, "flake.lock");
  return text === undefined ? undefined : parseLock(text);
};
const lockedRevs = async () => {
  const lock = await branchLock();
  return Object.fromEntries(NAMES.map((n) => [n, lock?.nodes[n]?.locked?.rev]));
};

describe("pure parts", () => {
  const v226 = parseNixVersion("nix (Nix) 2.26.3");
  const v28 = parseNixVersion("nix (Nix) 2.8.0");
  const pins = [{ input: "b", ref: "github:acme/b/B", rev: "B" }];
  const cases: { name: string; version: typeof v226; plan: LockPlan; args: string[] }[] = [
    {
      name: "a pin with a group member pinned beside it",
      version: v226,
      plan: { kind: "pin", input: "a", ref: "github:acme/a/A", rev: "A", also: pins },
      args: [
        "flake",
        "lock",
        "--override-input",
        "a",
        "github:acme/a/A",
        "--override-input",
        "b",
        "github:acme/b/B",
        "/f",
      ],
    },
    {
      name: "an update on 2.26 with a member pinned",
      version: v226,
      plan: { kind: "update", inputs: ["a"], also: pins },
      args: ["flake", "update", "a", "--override-input", "b", "github:acme/b/B", "--flake", "/f"],
    },
    {
      name: "an update on 2.8 with a member pinned",
      version: v28,
      plan: { kind: "update", inputs: ["a"], also: pins },
      args: ["flake", "lock", "--update-input", "a", "--override-input", "b", "github:acme/b/B", "/f"],
    },
    {
      name: "without members, the plan's own arguments",
      version: v226,
      plan: { kind: "pin", input: "a", ref: "github:acme/a/A", rev: "A" },
      args: ["flake", "lock", "--override-input", "a", "github:acme/a/A", "/f"],
    },
  ];
  for (const c of cases) {
    test(`lockArgs: ${c.name}`, () => {
      if (c.version === undefined) throw new Error("bad version");
      expect(lockArgs(c.version, c.plan, "/f")).toStrictEqual([...EXPERIMENTAL, ...c.args]);
    });
  }

  const change = (name: string, to: string, from?: string): InputChange => ({
    name,
    to: { ref: `github:acme/${name}/${to}`, rev: to },
    ...(from ? { from: { ref: `github:acme/${name}/${from}`, rev: from } } : {}),
    github: { owner: "acme", repo: name },
    transitive: { added: [], removed: [], changed: [] },
    lock: { text: "{}", sha256: "0".repeat(64) },
  });
  const A = "a".repeat(40);
  const B = "b".repeat(40);

  test("title: N inputs, or the single input's own title", () => {
    expect(groupTitle([change("a", A), change("b", B)])).toBe("chore(flake): update 2 inputs");
    expect(groupTitle([change("a", A)])).toBe("chore(flake): update a to aaaaaaa");
  });

  test("body: one section per input with its compare link, a marker listing every member", () => {
    const body = groupBody([{ change: change("a", A, B) }, { change: change("b", B) }]);
    expect(parseGroupMarker(body)).toStrictEqual({ a: A, b: B });
    expect(body).toContain("## `a`");
    expect(body).toContain("## `b`");
    expect(body).toContain(`Compare: https://github.com/acme/a/compare/${B}...${A}`);
    expect(body.match(/### Transitive lock changes/g)).toHaveLength(2);
    // The per-input marker must not read a grouped body as one input's PR.
    expect(parseMarker(body)).toBeUndefined();
  });

  test("a body without the marker, or with a broken one, has no members", () => {
    expect(parseGroupMarker("no marker")).toBeUndefined();
    expect(parseGroupMarker('<!-- flake-bump-group {"members":{"a":1}} -->')).toBeUndefined();
  });
});

// One story on one fake, in order: each step starts from what the previous left on GitHub.
describe("one grouped pull request, rolled forward", () => {
  setDefaultTimeout(30_000);
  let number = 0;

  test("a run that moves three inputs opens one PR on flake-bump/all with the combined lock", async () => {
    const { report, nix } = await bumpOnBase({ inputs: ["a", "b", "c"] }, { a: 1, b: 1, c: 1 });
    expect(report.inputs.map((i) => i.name)).toStrictEqual(["a", "b", "c"]);
    // One Nix run: a grouped run needs no lock per input, so none is made.
    expect(nix.calls.filter((args) => args.includes("lock") || args.includes("update"))).toHaveLength(1);
    expect(report.nix.invocations).toBe(1);
    expect(report.grouped).toBe(true);
    expect(report.inputs.map((i) => i.lock.text)).toStrictEqual(Array(3).fill(report.lock?.text));
    // Each input's section still names only what moved under it.
    expect(report.inputs.map((i) => i.transitive)).toStrictEqual(
      Array(3).fill({ added: [], removed: [], changed: [] }),
    );
    // Read per input, the report would put every move into each input's pull request: refused.
    for (const [script, main, extra] of [
      ["open-pr.ts", openPrMain, ["--repo", `${DOWN.owner}/${DOWN.repo}`]],
      ["impact.ts", impactMain, ["--flake", flakeDir]],
    ] as const) {
      const path = join(flakeDir, "grouped-report.json");
      await writeFile(path, serializeReport(report));
      const before = fake.requests.length;
      const run = await runInProcess(main, ["--report", path, ...extra], {
        env: { GITHUB_API_URL: fake.apiUrl, GH_TOKEN: fake.token, FLAKE_BUMP_WAIT_SCALE: "0", PATH: "" },
        cwd: flakeDir,
      });
      expect({ script, exitCode: run.exitCode }).toStrictEqual({ script, exitCode: 2 });
      expect(run.stderr).toBe(
        `error: the report comes from bump.ts --group, whose inputs share one flake.lock; pass --group to ${script} too (the action's group: true), or rerun bump.ts without --group for one pull request per input\n`,
      );
      expect(fake.requests.length).toBe(before);
      await rm(path);
    }
    const [result] = await openGroupPullRequest(octokit, report, opts);
    expect(result?.operation).toBe("created");
    const pulls = openPulls();
    expect(pulls).toHaveLength(1);
    number = pulls[0]?.number ?? 0;
    expect(pulls[0]?.headRef).toBe(BRANCH);
    expect(pulls[0]?.title).toBe("chore(flake): update 3 inputs");
    expect(parseGroupMarker(pulls[0]?.body)).toStrictEqual({
      a: rev("a", 1),
      b: rev("b", 1),
      c: rev("c", 1),
    });
    expect(await fake.readFile(DOWN.owner, DOWN.repo, BRANCH, "flake.lock")).toBe(report.lock?.text);
    expect(await lockedRevs()).toStrictEqual({
      a: rev("a", 1),
      b: rev("b", 1),
      c: rev("c", 1),
      d: rev("d", 0),
    });
  });

  test("a dispatch for a 4th input joins the group: one Nix run pins the members beside it", async () => {
    const { report, nix } = await bumpOnBase({ inputs: ["d"], rev: rev("d", 2) });
    const first = nix.calls[0] ?? [];
    for (const name of ["a", "b", "c"] as const) {
      expect(first.join(" ")).toContain(`--override-input ${name} github:acme/${name}/${rev(name, 1)}`);
    }
    const [result] = await openGroupPullRequest(octokit, report, opts);
    expect(result).toMatchObject({ operation: "updated", number });
    expect(openPulls()).toHaveLength(1);
    expect(openPulls()[0]?.title).toBe("chore(flake): update 4 inputs");
    expect(await lockedRevs()).toStrictEqual({
      a: rev("a", 1),
      b: rev("b", 1),
      c: rev("c", 1),
      d: rev("d", 2),
    });
  });

  test("a dispatch for a member at a newer rev moves only that member", async () => {
    const { report } = await bumpOnBase({ inputs: ["a"], rev: rev("a", 3) });
    const [result] = await openGroupPullRequest(octokit, report, opts);
    expect(result).toMatchObject({ operation: "updated", number });
    expect(await lockedRevs()).toStrictEqual({
      a: rev("a", 3),
      b: rev("b", 1),
      c: rev("c", 1),
      d: rev("d", 2),
    });
    expect(parseGroupMarker(openPulls()[0]?.body)?.a).toBe(rev("a", 3));
  });

  test("an older dispatch arriving late locks the group's newer rev: nothing moves back", async () => {
    const head = await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH);
    const { report } = await bumpOnBase({ inputs: ["a"], rev: rev("a", 2) });
    expect(report.inputs.find((i) => i.name === "a")?.to.rev).toBe(rev("a", 3));
    const [result] = await openGroupPullRequest(octokit, report, opts);
    expect(result?.operation).toBe("unchanged");
    expect(await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)).toBe(head);
  });

  test("a report made without --group that would drop members is refused, the branch untouched", async () => {
    const head = await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH);
    const base = (await fake.readFile(DOWN.owner, DOWN.repo, "main", "flake.lock")) ?? "";
    await writeFile(join(flakeDir, "flake.lock"), base);
    const plain: Report = await bump(
      { flakeDir, inputs: ["b"], rev: rev("b", 3), dryRun: false },
      { nix: async () => nixStandIn({ commits }) },
    );
    await expect(openGroupPullRequest(octokit, plain, opts)).rejects.toThrow(RuntimeError);
    await expect(openGroupPullRequest(octokit, plain, opts)).rejects.toThrow(
      /would move back.*adds b; rerun/,
    );
    expect(await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)).toBe(head);
    // One that adds nothing the group lacks is simply already included.
    await writeFile(join(flakeDir, "flake.lock"), base);
    const older: Report = await bump(
      { flakeDir, inputs: ["a"], rev: rev("a", 1), dryRun: false },
      { nix: async () => nixStandIn({ commits }) },
    );
    const [result] = await openGroupPullRequest(octokit, older, opts);
    expect(result?.operation).toBe("unchanged");
    expect(await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)).toBe(head);
  });

  /** open-pr.ts --group and impact.ts --group handed a report made without --group: both refuse, asking nothing. */
  async function refusedPerInputReport(plain: Report): Promise<void> {
    expect(plain.grouped).toBeUndefined();
    const path = join(flakeDir, "per-input-report.json");
    await writeFile(path, serializeReport(plain));
    for (const [script, main, extra] of [
      ["open-pr.ts", openPrMain, ["--repo", `${DOWN.owner}/${DOWN.repo}`]],
      ["impact.ts", impactMain, ["--flake", flakeDir]],
    ] as const) {
      const before = fake.requests.length;
      const run = await runInProcess(main, ["--report", path, "--group", ...extra], {
        env: { GITHUB_API_URL: fake.apiUrl, GH_TOKEN: fake.token, FLAKE_BUMP_WAIT_SCALE: "0", PATH: "" },
        cwd: flakeDir,
      });
      expect({ script, exitCode: run.exitCode, stderr: run.stderr }).toStrictEqual({
        script,
        exitCode: 2,
        stderr: `error: the report comes from bump.ts without --group, whose flake.lock leaves out the grouped pull request's other inputs; rerun bump.ts with --group (the action's group: true), or drop --group from ${script} for one pull request per input\n`,
      });
      expect(fake.requests.length).toBe(before);
    }
    await rm(path);
  }

  test("a report made without --group is refused by the --group steps while a grouped PR is open", async () => {
    expect(openPulls()).toHaveLength(1);
    const base = (await fake.readFile(DOWN.owner, DOWN.repo, "main", "flake.lock")) ?? "";
    await writeFile(join(flakeDir, "flake.lock"), base);
    await refusedPerInputReport(
      await bump(
        { flakeDir, inputs: ["b"], rev: rev("b", 3), dryRun: false },
        { nix: async () => nixStandIn({ commits }) },
      ),
    );
  });

  test("members the base already has drop out of the group", async () => {
    await fake.push(
      DOWN.owner,
      DOWN.repo,
      { "flake.lock": lockAt({ a: 3, b: 2, c: 0, d: 0 }) },
      "a and b by hand",
    );
    const { report, nix } = await bumpOnBase({ inputs: ["c"], rev: rev("c", 2) });
    expect(nix.calls[0]?.join(" ")).not.toContain("--override-input a ");
    expect(nix.calls[0]?.join(" ")).not.toContain("--override-input b ");
    const [result] = await openGroupPullRequest(octokit, report, opts);
    expect(result).toMatchObject({ operation: "updated", number });
    expect(parseGroupMarker(openPulls()[0]?.body)).toStrictEqual({ c: rev("c", 2), d: rev("d", 2) });
    expect(await lockedRevs()).toStrictEqual({
      a: rev("a", 3),
      b: rev("b", 2),
      c: rev("c", 2),
      d: rev("d", 2),
    });
  });

  test("a run with nothing to move leaves the PR open while the base lacks a member", async () => {
    const { report } = await bumpOnBase({ inputs: ["a"], rev: rev("a", 3) });
    expect(report.changed).toBe(false);
    const [result] = await openGroupPullRequest(octokit, report, opts);
    expect(result).toMatchObject({ operation: "none", number });
    expect(openPulls()).toHaveLength(1);
  });

  test("once the base has every member, the grouped PR is closed with a comment and its branch deleted", async () => {
    await fake.push(
      DOWN.owner,
      DOWN.repo,
      { "flake.lock": lockAt({ a: 3, b: 2, c: 3, d: 2 }) },
      "merged by hand",
    );
    const { report } = await bumpOnBase({ inputs: ["a"], rev: rev("a", 3) });
    const [result] = await openGroupPullRequest(octokit, report, opts);
    expect(result).toMatchObject({ operation: "closed", number });
    expect(openPulls()).toHaveLength(0);
    expect(fake.comments(DOWN.owner, DOWN.repo, number).at(-1)).toMatch(
      /^Closing: the base branch already locks every input/,
    );
    expect(await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)).toBeUndefined();
    fake.assertNoViolations();
  });

  test("... and likewise with none open: the same refusal, no pull request opened", async () => {
    expect(openPulls()).toHaveLength(0);
    const base = (await fake.readFile(DOWN.owner, DOWN.repo, "main", "flake.lock")) ?? "";
    await writeFile(join(flakeDir, "flake.lock"), base);
    const moved = await bump(
      { flakeDir, inputs: ["b"], rev: rev("b", 3), dryRun: false },
      { nix: async () => nixStandIn({ commits }) },
    );
    expect(moved.changed).toBe(true);
    await refusedPerInputReport(moved);
    expect(openPulls()).toHaveLength(0);
  });
});

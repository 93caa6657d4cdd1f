/**
 * What host impact says when a bump moves a lot: each change said once for the hosts it is on, the
 * most telling first, natural order, and every text bounded (the section under its budget, the body
 * under GitHub's 65,536 characters, the step summary under 1 MiB).
 */
import { describe, expect, test } from "bun:test";
import type { InputChange, UpstreamCommit } from "../../lib/flake/report.ts";
import { naturalOrder, naturalSort, type PackageDiff } from "../../lib/impact/closure.ts";
import type { HostImpact, InputImpact } from "../../lib/impact/evaluate.ts";
import {
  BODY_LIMIT,
  groupChanges,
  listItems,
  packageLines,
  rankedLines,
  renderSection,
  SECTION_BUDGET,
  SECTION_END,
  SECTION_START,
  SUMMARY_BUDGET,
  summaryMarkdown,
  versionLevel,
} from "../../lib/impact/text.ts";
import { groupBody } from "../../lib/pr/group.ts";
import { bodyWithSection } from "../../lib/pr/impact.ts";
import { COMMIT_LIMIT } from "../../lib/pr/text.ts";

const diff = (over: Partial<PackageDiff> = {}): PackageDiff => ({
  changed: [],
  added: [],
  removed: [],
  ...over,
});
const changed = (attr: string, packages?: PackageDiff): HostImpact => ({
  attr: `nixosConfigurations.${attr}`,
  status: "changed",
  ...(packages ? { packages } : {}),
});
const impactOf = (hosts: HostImpact[], members?: Record<string, string>): InputImpact => ({
  name: "nixpkgs",
  rev: "a".repeat(40),
  hosts,
  ...(members ? { members } : {}),
});
const occurrences = (text: string, part: string) => text.split(part).length - 1;

describe("natural order", () => {
  const cases: { title: string; names: string[]; sorted: string[] }[] = [
    { title: "numbers by value", names: ["pkg10", "pkg2", "pkg1"], sorted: ["pkg1", "pkg2", "pkg10"] },
    { title: "versions", names: ["3.10", "3.9", "3.12.1"], sorted: ["3.9", "3.10", "3.12.1"] },
    { title: "hosts", names: ["web10", "web9", "db"], sorted: ["db", "web9", "web10"] },
    {
      title: "case as written; equal numbers by their code units",
      names: ["a", "B", "01", "1", "pkg-1", "pkg1"],
      sorted: ["01", "1", "B", "a", "pkg-1", "pkg1"],
    },
  ];
  test.each(cases)("naturalOrder: $title", ({ names, sorted }) =>
    expect([...names].sort(naturalOrder)).toStrictEqual(sorted),
  );
  test.each(cases)("naturalSort: $title", ({ names, sorted }) =>
    expect(naturalSort(names, (name) => name)).toStrictEqual(sorted),
  );
});

describe("versionLevel", () => {
  const cases: [string, string, 0 | 1 | 2 | 3][] = [
    ["1.9", "2.0", 0],
    ["1.0", "1.1", 1],
    ["3.3.2", "3.3.3", 2],
    ["24.11.20250101.abc", "24.11.20250201.def", 2],
    ["6.6.1-rc1", "6.6.1-rc2", 3],
    ["", "1.0", 0],
  ];
  test.each(cases)("%s → %s: %d", (from, to, level) => expect(versionLevel(from, to)).toBe(level));
});

describe("the order of a host's lines", () => {
  const cases: { title: string; diff: PackageDiff; lines: string[] }[] = [
    {
      title: "major, then minor, then patch; then added, then removed",
      diff: diff({
        changed: [
          { name: "zlib", from: "1.3.0", to: "1.3.1" },
          { name: "glibc", from: "2.39", to: "2.40" },
          { name: "systemd", from: "256", to: "257" },
        ],
        added: [{ name: "fleet-agent", version: "0.2" }],
        removed: [{ name: "old-tool", version: "1" }],
      }),
      lines: [
        "systemd 256 → 257",
        "glibc 2.39 → 2.40",
        "zlib 1.3.0 → 1.3.1",
        "+ fleet-agent 0.2",
        "− old-tool 1",
      ],
    },
    {
      title: "names in natural order within a rank",
      diff: diff({
        changed: [
          { name: "pkg10", from: "1.0", to: "1.1" },
          { name: "pkg2", from: "1.0", to: "1.1" },
        ],
      }),
      lines: ["pkg2 1.0 → 1.1", "pkg10 1.0 → 1.1"],
    },
  ];
  test.each(cases)("$title", ({ diff, lines }) => expect(packageLines(diff)).toStrictEqual(lines));

  test("the same from → to on three or more packages is one item, first in its rank", () => {
    const lines = rankedLines(
      diff({
        changed: [
          { name: "a", from: "1.0", to: "1.1" },
          { name: "pkg10", from: "2.0", to: "2.1" },
          { name: "pkg2", from: "2.0", to: "2.1" },
          { name: "pkg1", from: "2.0", to: "2.1" },
          { name: "big", from: "1", to: "2" },
        ],
      }),
    );
    expect(listItems(lines).map((item) => item.map((line) => line.name))).toStrictEqual([
      ["big"],
      ["pkg1", "pkg2", "pkg10"],
      ["a"],
    ]);
  });
});

describe("groupChanges", () => {
  const tool = { name: "tool", from: "1", to: "2" };
  const lib = { name: "lib", from: "1.0", to: "1.1" };
  test("each line once, on exactly the hosts that have it; rebuilt and unread hosts apart", () => {
    const grouped = groupChanges([
      changed("web10", diff({ changed: [tool] })),
      changed("web2", diff({ changed: [tool, lib] })),
      changed("db", diff({ changed: [tool, lib], added: [{ name: "pg", version: "16" }] })),
      changed("cache", diff()),
      changed("late"),
      { attr: "nixosConfigurations.mail", status: "unchanged" },
    ]);
    const names = (attrs: string[]) => attrs.map((attr) => attr.replace("nixosConfigurations.", ""));
    expect(
      grouped.groups.map((group) => [names(group.hosts), group.lines.map((line) => line.name)]),
    ).toStrictEqual([
      [["db", "web2", "web10"], ["tool"]],
      [["db", "web2"], ["lib"]],
      [["db"], ["pg"]],
    ]);
    expect(names(grouped.changed)).toStrictEqual(["cache", "db", "late", "web2", "web10"]);
    expect(names(grouped.rebuilt)).toStrictEqual(["cache"]);
    expect(names(grouped.unread)).toStrictEqual(["late"]);
  });
});

/** `hosts` hosts, each moving `shared` packages the same way and `own` packages of its own. */
function fleet(hosts: number, shared: number, own: number): HostImpact[] {
  const common = ["fleet-tool", "openssl", ...Array.from({ length: shared - 2 }, (_, i) => `pkg${i + 1}`)];
  return Array.from({ length: hosts }, (_, h) =>
    changed(
      `host${h + 1}`,
      diff({
        changed: [
          ...common.map((name) => ({ name, from: "1.0", to: "1.1" })),
          ...Array.from({ length: own }, (_, i) => ({
            name: `host${h + 1}-only-${i}`,
            from: `${i}.0`,
            to: `${i + 1}.0`,
          })),
        ],
      }),
    ),
  );
}

describe("the section of a bump that moves every package of every host", () => {
  test("12 hosts × 1,066 packages: shared changes said once, then what differs per host", () => {
    const section = renderSection(impactOf(fleet(12, 1_066, 1)));
    expect(section.length).toBeLessThan(4_000);
    expect(section).toContain(
      "On all 12 hosts: 1,066 packages 1.0 → 1.1 — fleet-tool, openssl, pkg1, pkg2, pkg3, pkg4, pkg5, pkg6, … and 1,058 more",
    );
    expect(occurrences(section, "openssl")).toBe(1);
    expect(occurrences(section, "1.0 → 1.1")).toBe(1);
    expect(section).toContain("Each host's own changes:\n\n- `host1`: host1-only-0 0.0 → 1.0\n- `host2`:");
    expect(section.indexOf("`host2`:")).toBeLessThan(section.indexOf("`host10`:"));
    expect(section).toContain("After merging, deploy: `host1`, `host2`, `host3`,");
  });

  test("100 hosts × 3,000 packages: far under the section budget and GitHub's body limit", () => {
    const input = impactOf(fleet(100, 3_000, 40));
    const section = renderSection(input);
    expect(section.length).toBeLessThanOrEqual(SECTION_BUDGET);
    expect(section.startsWith(`${SECTION_START}\n### Host impact`)).toBeTrue();
    expect(section.endsWith(SECTION_END)).toBeTrue();
    expect(occurrences(section, "1.0 → 1.1")).toBe(1);
    expect(section).toContain("On all 100 hosts: 3,000 packages 1.0 → 1.1");
    expect(section).toMatch(/… and \d+ more hosts or sets of hosts with changes of their own/);
  }, 30_000);

  test("the step summary: every change once when it fits, shortened under 1 MiB when not", () => {
    const small = impactOf(fleet(12, 1_066, 2));
    const full = summaryMarkdown([small]);
    expect(occurrences(full, "pkg1064")).toBe(1);
    expect(occurrences(full, "1.0 → 1.1")).toBe(1);
    expect(full).toContain("| all 12 hosts | 1,066 packages 1.0 → 1.1 — fleet-tool, openssl, pkg1, pkg2,");
    expect(full).toContain(
      "| `nixosConfigurations.host12` | changed | host12-only-0 0.0 → 1.0<br>host12-only-1 1.0 → 2.0<br>and the changes it shares",
    );
    expect(full).not.toContain("Shortened");

    const huge = impactOf(fleet(40, 2_000, 1_000));
    const text = summaryMarkdown([huge]);
    expect(Buffer.byteLength(text, "utf8")).toBeLessThanOrEqual(SUMMARY_BUDGET);
    expect(text).toStartWith("*Shortened to fit GitHub's 1 MiB step summary");
    expect(text).toContain("| `nixosConfigurations.host40` | changed |");
    // Even the last resort, cutting at a line, keeps to a tiny budget.
    expect(Buffer.byteLength(summaryMarkdown([huge], {}, 2_000), "utf8")).toBeLessThanOrEqual(2_000);
  }, 30_000);
});

describe("the grouped pull request", () => {
  const commit = (i: number): UpstreamCommit => ({
    sha: i.toString(16).padStart(40, "0"),
    commit: {
      message: `${"A long commit subject that fills the line ".repeat(3)}${i}`,
      author: { name: "x" },
    },
    author: { login: `someone-${i}` },
  });
  const member = (i: number): InputChange => ({
    name: `input${i}`,
    from: { ref: `github:acme/input${i}/${"b".repeat(40)}`, rev: "b".repeat(40) },
    to: { ref: `github:acme/input${i}/${"c".repeat(40)}`, rev: "c".repeat(40) },
    github: { owner: "acme", repo: `input${i}` },
    transitive: {
      added: [],
      removed: [],
      changed: Array.from({ length: 40 }, (_, t) => ({
        path: `input${i}/dependency-${t}`,
        from: { ref: "github:acme/dep", rev: "d".repeat(40) },
        to: { ref: "github:acme/dep", rev: "e".repeat(40) },
      })),
    },
    lock: { text: "{}", sha256: "0".repeat(64) },
  });

  test("a body that leaves less room than SECTION_BUDGET gets a shorter section, under GitHub's limit", () => {
    const members = Array.from({ length: 6 }, (_, i) => member(i));
    const body = groupBody(
      members.map((change) => ({
        change,
        commits: Array.from({ length: COMMIT_LIMIT + 5 }, (_, i) => commit(i)),
      })),
    );
    expect(body.length).toBeGreaterThan(BODY_LIMIT - SECTION_BUDGET);
    const input = impactOf(
      fleet(100, 3_000, 40),
      Object.fromEntries(members.map((m) => [m.name, "c".repeat(40)])),
    );
    const written = bodyWithSection(body, input, {});
    expect(written.length).toBeLessThanOrEqual(BODY_LIMIT);
    expect(written).toContain("On all 100 hosts: 3,000 packages 1.0 → 1.1");
    expect(occurrences(written, SECTION_START)).toBe(1);
    // With room to spare, the section is the one renderSection writes.
    const short = groupBody([{ change: member(0) }]);
    expect(bodyWithSection(short, input, {})).toContain(renderSection(input));
  }, 30_000);
});

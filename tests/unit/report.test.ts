import { describe, expect, test } from "bun:test";
import {
  checkoutMismatch,
  describeChange,
  formatDate,
  type Here,
  type InputChange,
  type Report,
  shortRef,
} from "../../lib/flake/report.ts";

const none = { added: [], removed: [], changed: [] };
const lock = { text: "{}", sha256: "0".repeat(64) };
const a = "abc1234def5678abc1234def5678abc1234def56";
const b = "def5678abc1234def5678abc1234def5678abc12";

interface Case {
  name: string;
  change: InputChange;
  line: string;
}
const cases: Case[] = [
  {
    name: "an update, in Nix's wording",
    change: {
      name: "nixfleet",
      from: { ref: `github:o/r/${a}`, rev: a, lastModified: 1_793_491_200 },
      to: { ref: `github:o/r/${b}`, rev: b, lastModified: 1_795_564_800 },
      transitive: none,
      lock,
    },
    line: "• Updated input 'nixfleet':  'github:o/r/abc1234…' (2026-11-01) → 'github:o/r/def5678…' (2026-11-25)",
  },
  {
    name: "an added input",
    change: {
      name: "x",
      to: { ref: `github:o/x/${b}`, rev: b, lastModified: 1_795_564_800 },
      transitive: none,
      lock,
    },
    line: "• Added input 'x':  'github:o/x/def5678…' (2026-11-25)",
  },
  {
    name: "a source without a rev",
    change: {
      name: "t",
      from: { ref: "https://x/a.tar.gz" },
      to: { ref: "https://x/b.tar.gz", lastModified: 1_795_564_800 },
      transitive: none,
      lock,
    },
    line: "• Updated input 't':  'https://x/a.tar.gz' (unknown date) → 'https://x/b.tar.gz' (2026-11-25)",
  },
];
test.each(cases)("$name", ({ change, line }) => {
  expect(describeChange(change)).toBe(line);
});

test("dates are UTC days", () => {
  expect(formatDate(0)).toBe("1970-01-01");
  expect(formatDate(undefined)).toBe("unknown date");
});

test("shortRef leaves references without a rev alone", () => {
  expect(shortRef({ ref: "path:/x" })).toBe("path:/x");
});

describe("checkoutMismatch: is a report this checkout's to act on?", () => {
  const report = (flake: Report["flake"]): Report => ({
    schema: 1,
    changed: true,
    dryRun: false,
    requested: { inputs: [] },
    flake,
    inputs: [],
    skipped: [],
    lock: null,
    nix: { version: "2.26.3", invocations: 1 },
  });
  const made = { commit: a, tree: b };
  interface MismatchCase {
    name: string;
    flake: Report["flake"];
    here: Here;
    expected: string | undefined;
  }
  const mismatches: MismatchCase[] = [
    {
      name: "the same checkout at the same commit",
      flake: { dir: "/src/fleet", repoRoot: "/src/fleet", head: made },
      here: { topLevel: "/src/fleet", head: a },
      expected: undefined,
    },
    {
      name: "another checkout (a second worktree): both named",
      flake: { dir: "/src/fleet-wt", repoRoot: "/src/fleet-wt", head: made },
      here: { topLevel: "/src/fleet", head: a },
      expected:
        "the report R was made for the checkout /src/fleet-wt, not this one (/src/fleet); run open-pr.ts in /src/fleet-wt, or run bump.ts here first",
    },
    {
      name: "a sibling whose name starts the same is another checkout",
      flake: { dir: "/src/fleet2", repoRoot: "/src/fleet2" },
      here: { topLevel: "/src/fleet", head: undefined },
      expected:
        "the report R was made for the checkout /src/fleet2, not this one (/src/fleet); run open-pr.ts in /src/fleet2, or run bump.ts here first",
    },
    {
      name: "a checkout nested in the working directory's (a second repository checked out inside)",
      flake: { dir: "/src/outer/fleet", repoRoot: "/src/outer/fleet", head: made },
      here: { topLevel: "/src/outer", head: a },
      expected: undefined,
    },
    {
      name: "the checkout has moved on since: both commits named",
      flake: { dir: "/src/fleet", repoRoot: "/src/fleet", head: made },
      here: { topLevel: "/src/fleet", head: b },
      expected:
        "the report R was made at commit abc1234def56 of /src/fleet, which is now at def5678abc12; rerun bump.ts there so the report starts from the commit checked out",
    },
    {
      name: "run outside any checkout: only the commit is compared",
      flake: { dir: "/src/fleet", repoRoot: "/src/fleet", head: made },
      here: { topLevel: undefined, head: a },
      expected: undefined,
    },
    {
      name: "a flake outside git: nothing to compare",
      flake: { dir: "/tmp/flake" },
      here: { topLevel: "/src/fleet", head: undefined },
      expected: undefined,
    },
  ];
  test.each(mismatches)("$name", ({ flake, here, expected }) => {
    expect(checkoutMismatch(report(flake), here, "R", "open-pr.ts")).toStrictEqual(expected);
  });
});

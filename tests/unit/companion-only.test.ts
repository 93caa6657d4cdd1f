/**
 * A companion that catches up with a current input: the report entry whose flake.lock node does not
 * move (lockUnmoved), what its pull request says, and that the report's schema takes it.
 */
import { expect, test } from "bun:test";
import * as v from "valibot";
import { describeChange, type InputChange, lockUnmoved, Report } from "../../lib/flake/report.ts";
import { changeTitle, prBody } from "../../lib/pr/text.ts";

const locked = "091f441aa2b11c1375d98b35cc0c769fc9e95128";
const old = "7598d63bb71c1786d6ccbafd8c49532b7f567142";
const at = { ref: `github:inspr-at/inspr-modules/${locked}`, rev: locked, lastModified: 1_795_564_800 };

function entry(overrides: Partial<InputChange> = {}): InputChange {
  return {
    name: "inspr-modules",
    from: at,
    to: at,
    github: { owner: "inspr-at", repo: "inspr-modules" },
    transitive: { added: [], removed: [], changed: [] },
    lock: { text: "{}", sha256: "0".repeat(64) },
    companions: { moved: [{ path: "doctrine", from: old, to: locked }], left: [] },
    ...overrides,
  };
}

interface Case {
  name: string;
  change: Pick<InputChange, "from" | "to">;
  expected: boolean;
}

const cases: Case[] = [
  { name: "the same node before and after", change: { from: at, to: at }, expected: true },
  { name: "an added input", change: { to: at }, expected: false },
  {
    name: "another rev",
    change: { from: { ...at, rev: old, ref: `github:x/y/${old}` }, to: at },
    expected: false,
  },
  {
    name: "the same rev, another narHash",
    change: { from: { ...at, narHash: "sha256-a" }, to: at },
    expected: false,
  },
];

test.each(cases)("lockUnmoved: $name", ({ change, expected }) => {
  expect(lockUnmoved(change)).toBe(expected);
});

test("the title names the submodule moved and the input it catches up with; a moved lock keeps its title", () => {
  expect(changeTitle(entry())).toBe(
    "chore(flake): move submodule doctrine to 091f441, where inspr-modules is locked",
  );
  expect(changeTitle(entry({ from: { ...at, rev: old, ref: `github:inspr-at/inspr-modules/${old}` } }))).toBe(
    "chore(flake): update inspr-modules to 091f441",
  );
});

test("the body says flake.lock stays and shows the gitlink's move, with no upstream commits", () => {
  const body = prBody({ change: entry() });
  expect(body).toContain("flake.lock does not change");
  expect(body).toContain("- `doctrine` (submodule) 7598d63 → 091f441");
  expect(body).not.toContain("Upstream commits");
  expect(body).not.toContain("Compare:");
  expect(body).toContain(`<!-- flake-bump {"input":"inspr-modules","rev":"${locked}"} -->`);
});

test("the report's schema takes the entry, and the log line says the input stays", () => {
  const report: Report = {
    schema: 1,
    changed: true,
    dryRun: false,
    requested: { inputs: ["inspr-modules"] },
    flake: { dir: "/flake", lockPath: "flake.lock", repoRoot: "/flake" },
    inputs: [entry()],
    skipped: [],
    lock: { text: "{}", sha256: "0".repeat(64) },
    nix: { version: "", invocations: 0 },
  };
  expect(v.safeParse(Report, report).success).toBe(true);
  expect(describeChange(entry())).toBe(
    "• Kept input 'inspr-modules' at 'github:inspr-at/inspr-modules/091f441…'; its companion moves to it",
  );
});

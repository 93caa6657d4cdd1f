/**
 * What host impact evaluates for a report: the same pull requests open-pr opens (lib/pr/targets.ts),
 * so a group of the policy file, like `group: true`'s, is one comparison of its combined lock with
 * its members, and every other moved input is one of its own lock.
 */
import { expect, test } from "bun:test";
import { createHash } from "node:crypto";
import type { InputChange, Report } from "../../lib/flake/report.ts";
import { parsePolicy } from "../../lib/policy/file.ts";
import { type Comparison, impactComparisons } from "../../lib/pr/impact.ts";
import { prTargets } from "../../lib/pr/targets.ts";

const locked = (text: string) => ({ text, sha256: createHash("sha256").update(text).digest("hex") });
const GROUP_LOCK = locked("group lock\n");
const rev = (name: string) => name.charAt(0).repeat(40);

function change(name: string, lock: { text: string; sha256: string }, group?: string): InputChange {
  return {
    name,
    from: { ref: `github:acme/${name}/0`, rev: "0".repeat(40) },
    to: { ref: `github:acme/${name}/${rev(name)}`, rev: rev(name) },
    transitive: { added: [], removed: [], changed: [] },
    lock,
    ...(group === undefined ? {} : { group }),
  };
}

function report(inputs: InputChange[], grouped = false): Report {
  return {
    schema: 1,
    changed: true,
    dryRun: false,
    requested: { inputs: inputs.map((c) => c.name) },
    flake: { dir: "/flake", lockPath: "flake.lock", repoRoot: "/flake" },
    inputs,
    skipped: [],
    lock: locked("every move\n"),
    nix: { version: "2.26.3", invocations: 1 },
    ...(grouped ? { grouped: true } : {}),
  };
}

const policy = parsePolicy(
  "groups:\n  nixpkgs:\n    inputs: [nixpkgs, home-manager]\n    merge: auto\n",
  "p.yml",
);
const own = (name: string): Comparison => ({
  side: { name, rev: rev(name), lock: `${name} lock\n` },
  grouped: false,
});

interface Case {
  name: string;
  report: Report;
  group?: boolean;
  expected: Comparison[];
}

const cases: Case[] = [
  {
    name: "a named group: one comparison of its combined lock, named for its branch; the rest their own",
    report: report([
      change("home-manager", GROUP_LOCK, "nixpkgs"),
      change("nixpkgs", GROUP_LOCK, "nixpkgs"),
      change("janus", locked("janus lock\n")),
    ]),
    expected: [
      {
        side: { name: "home-manager,nixpkgs", rev: GROUP_LOCK.sha256, lock: GROUP_LOCK.text },
        grouped: true,
        groupName: "nixpkgs",
        members: { "home-manager": rev("home-manager"), nixpkgs: rev("nixpkgs") },
      },
      own("janus"),
    ],
  },
  {
    name: "group: true beats the file: one comparison of the run's lock, on <prefix>all",
    report: report(
      [change("nixpkgs", locked("every move\n")), change("janus", locked("every move\n"))],
      true,
    ),
    group: true,
    expected: [
      {
        side: { name: "nixpkgs,janus", rev: locked("every move\n").sha256, lock: "every move\n" },
        grouped: true,
        members: { nixpkgs: rev("nixpkgs"), janus: rev("janus") },
      },
    ],
  },
  {
    name: "a companion catching up with a current input: its lock node stays, so only the moved input is evaluated",
    report: report([
      {
        ...change("janus", locked("janus lock\n")),
        from: { ref: `github:acme/janus/${rev("janus")}`, rev: rev("janus") },
        companions: { moved: [{ path: "doctrine", from: "d".repeat(40), to: rev("janus") }], left: [] },
      },
      change("hostdash", locked("hostdash lock\n")),
    ]),
    expected: [own("hostdash")],
  },
  {
    name: "no group moved: one comparison per input",
    report: report([change("janus", locked("janus lock\n")), change("hostdash", locked("hostdash lock\n"))]),
    expected: [own("janus"), own("hostdash")],
  },
];

test.each(cases)("$name", ({ report: r, group, expected }) => {
  const targets = prTargets(r, policy, group === true ? { flags: { group: true } } : {});
  expect(impactComparisons(targets)).toStrictEqual(expected);
});

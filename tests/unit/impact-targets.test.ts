/**
 * The targets of a report (lib/pr/targets.ts): which lock (and flake.nix) each carries — a group's,
 * one input's own, the direct inputs' that bump.ts locked together, or none, which a direct commit
 * refuses — and what host impact evaluates for them: the same pull requests open-pr opens, so a
 * group of the policy file, like `group: true`'s, is one comparison of its combined lock with its
 * members, and every other moved input is one of its own lock.
 */
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { UsageError } from "../../lib/core/errors.ts";
import type { InputChange, Report } from "../../lib/flake/report.ts";
import { parsePolicy } from "../../lib/policy/file.ts";
import { type Comparison, impactComparisons } from "../../lib/pr/impact.ts";
import { prTargets } from "../../lib/pr/targets.ts";

const locked = (text: string) => ({ text, sha256: createHash("sha256").update(text).digest("hex") });
const GROUP_LOCK = locked("group lock\n");
const rev = (name: string) => name.charAt(0).repeat(40);

function change(
  name: string,
  lock: { text: string; sha256: string },
  extra: Partial<InputChange> = {},
): InputChange {
  return {
    name,
    from: { ref: `github:acme/${name}/0`, rev: "0".repeat(40) },
    to: { ref: `github:acme/${name}/${rev(name)}`, rev: rev(name) },
    transitive: { added: [], removed: [], changed: [] },
    lock,
    ...extra,
  };
}

function report(inputs: InputChange[], grouped = false, flakeNix?: string): Report {
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
    ...(flakeNix === undefined ? {} : { flakeNix: locked(flakeNix) }),
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
      change("home-manager", GROUP_LOCK, { group: "nixpkgs" }),
      change("nixpkgs", GROUP_LOCK, { group: "nixpkgs" }),
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

const twoDirect = parsePolicy(
  "inputs:\n  janus:\n    merge: direct\n  hostdash:\n    merge: direct\n",
  ".github/flake-bump.yml",
);

describe("the lock each target carries", () => {
  test("direct inputs bumped together beside a reviewed one: one direct target with their one lock", () => {
    const together = locked("janus and hostdash\n");
    const targets = prTargets(
      report([
        change("janus", together),
        change("hostdash", together),
        change("nixpkgs", locked("nixpkgs\n")),
      ]),
      twoDirect,
      {},
    );
    const direct = targets.find((target) => target.mode === "direct");
    expect(targets.map((t) => [t.mode, t.report.inputs.map((c) => c.name)])).toStrictEqual([
      ["direct", ["janus", "hostdash"]],
      ["review", ["nixpkgs"]],
    ]);
    expect(direct?.report.lock).toStrictEqual(together);
  });

  test("direct inputs each with a lock of its own cannot be one commit: one sentence, what to set", () => {
    const r = report([
      change("janus", locked("janus\n")),
      change("hostdash", locked("hostdash\n")),
      change("nixpkgs", locked("nixpkgs\n")),
    ]);
    expect(() => prTargets(r, twoDirect, {})).toThrow(UsageError);
    expect(() => prTargets(r, twoDirect, {})).toThrow(
      /merge: direct for 'janus', 'hostdash' would need several commits onto the base branch in one run; set merge: direct on one group/,
    );
  });

  test("a share carries its own flake.nix edit, not the run's, which edits every release", () => {
    const policy = parsePolicy("groups:\n  tools:\n    inputs: [janus, hostdash]\n", "p.yml");
    const groupLock = locked("group\n");
    const groupNix = locked("{ janus tag moved }\n");
    const targets = prTargets(
      report(
        [
          change("janus", groupLock, { group: "tools", flakeNix: groupNix }),
          change("hostdash", groupLock, { group: "tools", flakeNix: groupNix }),
          change("nixpkgs", locked("nixpkgs\n")),
        ],
        false,
        "{ janus and nixpkgs tags moved }\n",
      ),
      policy,
      {},
    );
    const [group, single] = targets;
    expect(group?.report.lock).toStrictEqual(groupLock);
    expect(group?.report.flakeNix).toStrictEqual(groupNix);
    expect(single?.report.inputs.map((c) => c.name)).toStrictEqual(["nixpkgs"]);
    expect(single?.report.flakeNix).toBeUndefined();
  });

  test("the whole run in one target keeps the run's lock and flake.nix", () => {
    const r = report(
      [change("janus", locked("janus\n")), change("hostdash", locked("hostdash\n"))],
      false,
      "{ all }\n",
    );
    const [only] = prTargets(r, twoDirect, {});
    expect(only?.mode).toBe("direct");
    expect(only?.report.lock).toStrictEqual(r.lock);
    expect(only?.report.flakeNix).toStrictEqual(r.flakeNix);
  });
});

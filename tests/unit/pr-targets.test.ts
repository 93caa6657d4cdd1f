/**
 * Which lock (and flake.nix) each target of a report carries (lib/pr/targets.ts): a group's, one
 * input's own, the direct inputs' that bump.ts locked together, or none, which a direct commit
 * refuses.
 */
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { UsageError } from "../../lib/core/errors.ts";
import type { InputChange, Report } from "../../lib/flake/report.ts";
import { parsePolicy } from "../../lib/policy/file.ts";
import { prTargets } from "../../lib/pr/targets.ts";

const locked = (text: string) => ({ text, sha256: createHash("sha256").update(text).digest("hex") });
const rev = (name: string) => name.charAt(0).repeat(40);

function change(
  name: string,
  lock: ReturnType<typeof locked>,
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

function report(inputs: InputChange[], flakeNix?: string): Report {
  return {
    schema: 1,
    changed: true,
    dryRun: false,
    requested: { inputs: inputs.map((c) => c.name) },
    flake: { dir: "/flake", lockPath: "flake.lock", repoRoot: "/flake" },
    inputs,
    skipped: [],
    lock: locked("every move\n"),
    ...(flakeNix === undefined ? {} : { flakeNix: locked(flakeNix) }),
    nix: { version: "2.34.8", invocations: 2 },
  };
}

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
      "{ all }\n",
    );
    const [only] = prTargets(r, twoDirect, {});
    expect(only?.mode).toBe("direct");
    expect(only?.report.lock).toStrictEqual(r.lock);
    expect(only?.report.flakeNix).toStrictEqual(r.flakeNix);
  });
});

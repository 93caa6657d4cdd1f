/**
 * The policy as one run applies it: the kind of run, the clock, and each input's plan with the
 * sentence the log shows when it is held or moved against its policy.
 */
import { expect, test } from "bun:test";
import { UsageError } from "../../lib/core/errors.ts";
import { parsePolicy } from "../../lib/policy/file.ts";
import type { Trigger } from "../../lib/policy/gate.ts";
import {
  planInputs,
  repositoryRoot,
  runClock,
  targetsApart,
  targetsOf,
  triggerOf,
} from "../../lib/policy/run.ts";
import { EXAMPLE_POLICY } from "../support/policy.ts";

const triggers: Array<{ event: string | undefined; named: boolean; trigger: Trigger }> = [
  { event: "schedule", named: false, trigger: "schedule" },
  { event: "schedule", named: true, trigger: "ask" },
  { event: "repository_dispatch", named: false, trigger: "automatic" },
  { event: "workflow_dispatch", named: false, trigger: "automatic" },
  { event: "workflow_dispatch", named: true, trigger: "ask" },
  { event: undefined, named: false, trigger: "automatic" },
  { event: undefined, named: true, trigger: "ask" },
];
test.each(triggers)("event $event, named by a person: $named → $trigger", ({ event, named, trigger }) => {
  expect(triggerOf(event, named)).toBe(trigger);
});

test("the clock: FLAKE_BUMP_NOW when set, a usage error when it is not a time", () => {
  expect(runClock({ FLAKE_BUMP_NOW: "2026-12-07T03:00:00Z" }).toISOString()).toBe("2026-12-07T03:00:00.000Z");
  const before = Date.now();
  expect(runClock({}).getTime()).toBeGreaterThanOrEqual(before);
  expect(() => runClock({ FLAKE_BUMP_NOW: "monday" })).toThrow(UsageError);
});

const FILE = ".github/flake-bump.yml";
const policy = parsePolicy(EXAMPLE_POLICY, FILE);
const TUESDAY = new Date("2026-12-08T03:00:00Z");

test("a Tuesday nightly: the weekly group and the follow: none input are held, with why; the rest move", () => {
  const plans = planInputs(["nixpkgs", "janus", "hostdash"], policy, { trigger: "schedule", now: TUESDAY });
  expect(
    Object.fromEntries([...plans].map(([name, plan]) => [name, [plan.gate.move, plan.note]])),
  ).toStrictEqual({
    nixpkgs: [
      false,
      `'nixpkgs' is held by schedule: weekly (${FILE}:10 (groups.nixpkgs.schedule)): the next scheduled run that moves it is on 2026-12-14`,
    ],
    janus: [
      false,
      `'janus' is held by follow: none (${FILE}:14 (inputs.janus.follow)): only a run that names it moves it`,
    ],
    hostdash: [true, undefined],
  });
});

test("the direct inputs outside the groups are one target of their own only beside others", () => {
  const file = (text: string) => parsePolicy(text, FILE);
  const targets = (text: string, names: string[], run: { action?: { group: boolean } } = {}) =>
    targetsOf(planInputs(names, file(text), { ...run, trigger: "schedule", now: TUESDAY }));
  const twoDirect = "inputs:\n  janus:\n    merge: direct\n  hostdash:\n    merge: direct\n";
  const beside = targets(twoDirect, ["janus", "hostdash", "nixpkgs"]);
  expect([...beside.rest.direct]).toStrictEqual(["janus", "hostdash"]);
  expect(targetsApart(beside)).toBe(true);
  // Every input direct: the run's one lock is their lock already.
  expect(targetsApart(targets(twoDirect, ["janus", "hostdash"]))).toBe(false);
  // One direct input: its own lock is the commit's.
  expect(targetsApart(targets("inputs:\n  janus:\n    merge: direct\n", ["janus", "nixpkgs"]))).toBe(false);
  // group: true puts them in the one pull request, which lands one way.
  const grouped = targets(twoDirect, ["janus", "hostdash", "nixpkgs"], { action: { group: true } });
  expect([...grouped.rest.direct]).toStrictEqual([]);
  expect(targetsApart(grouped)).toBe(false);
});

test("naming janus moves it, and the run says which policy it overrode", () => {
  const plan = planInputs(["janus"], policy, { trigger: "ask", now: TUESDAY }).get("janus");
  expect(plan?.note).toBe(
    `'janus' was named, so it moves despite follow: none (${FILE}:14 (inputs.janus.follow))`,
  );
});

test("the policy file is looked for at the top of the git repository around the flake, else beside it", async () => {
  const { ROOT } = await import("../support/readme.ts");
  const { mkdtemp, mkdir, rm } = await import("node:fs/promises");
  const { join } = await import("node:path");
  const { tmpdir } = await import("node:os");
  expect(repositoryRoot(join(ROOT, "lib", "policy"))).toBe(ROOT);
  const bare = await mkdtemp(join(tmpdir(), "flake-bump-root-"));
  try {
    await mkdir(join(bare, "hosts"));
    expect(repositoryRoot(join(bare, "hosts"))).toBe(join(bare, "hosts"));
  } finally {
    await rm(bare, { recursive: true, force: true });
  }
});

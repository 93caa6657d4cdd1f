/**
 * The policy as one run applies it: what kind of run this is, its clock, the file it reads, and for
 * each input the effective policy and whether it may move, with the sentence the log shows.
 */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import * as v from "valibot";
import { UsageError } from "../core/errors.ts";
import { type EffectivePolicy, effectivePolicy, type RunSettings } from "./effective.ts";
import { type Policy, readPolicy } from "./file.ts";
import { type Applied, type Gate, gate, type Trigger } from "./gate.ts";
import { POLICY_PATH } from "./schema.ts";

/**
 * The kind of run: inputs named by a person (the Run-workflow form, the action's `inputs`,
 * `bump.ts NAME`) are an `ask`; otherwise a schedule event is `schedule`, and anything else (a
 * dispatch for a push, a run that names nothing) is `automatic`.
 */
export function triggerOf(event: string | undefined, namedByPerson: boolean): Trigger {
  if (namedByPerson) return "ask";
  return event === "schedule" ? "schedule" : "automatic";
}

const Now = v.pipe(v.string(), v.isoTimestamp("must be an ISO 8601 time such as 2026-12-07T03:00:00Z"));

/**
 * The run's clock: FLAKE_BUMP_NOW when set (the tests' way to run on a given Monday), else the
 * machine's time. Schedules and min-age are judged by it.
 */
export function runClock(env: NodeJS.ProcessEnv): Date {
  const text = env.FLAKE_BUMP_NOW;
  if (text === undefined || text === "") return new Date();
  const result = v.safeParse(Now, text);
  if (!result.success) {
    throw new UsageError(
      `FLAKE_BUMP_NOW ${result.issues[0]?.message ?? "is invalid"}; unset it to use the clock`,
    );
  }
  return new Date(result.output);
}

/**
 * Read the run's policy: `config` (a path the user gave, relative to the working directory) must
 * exist; without it `.github/flake-bump.yml` of the repository around the flake is read if present.
 */
export async function loadRunPolicy(opts: {
  config: string | undefined;
  /** The git repository's top level, else the flake's directory. */
  root: string;
  knownInputs?: readonly string[];
}): Promise<Policy | undefined> {
  const known = opts.knownInputs === undefined ? {} : { knownInputs: opts.knownInputs };
  if (opts.config !== undefined) return readPolicy(opts.config, opts.config, { required: true, ...known });
  return readPolicy(join(opts.root, POLICY_PATH), POLICY_PATH, { required: false, ...known });
}

/**
 * The git repository around `dir` (the nearest directory with a `.git`, as git finds it without
 * asking git), else `dir` itself: where `.github/flake-bump.yml` is looked for.
 */
export function repositoryRoot(dir: string): string {
  let at = resolve(dir);
  while (!existsSync(join(at, ".git"))) {
    const up = dirname(at);
    if (up === at) return resolve(dir);
    at = up;
  }
  return at;
}

/** One input under this run's policy. */
export interface InputPlan {
  policy: EffectivePolicy;
  gate: Gate;
  /** The log's sentence when the input is held, or moved against its policy because it was named. */
  note?: string;
}

/** The pull requests the run's inputs go into: each named group, and the rest (one each, or `all`). */
export interface RunTargets {
  /**
   * The inputs outside the named groups. `direct`: those of them (when not grouped) that land by
   * `merge: direct`, which one commit onto the base branch carries together.
   */
  rest: { inputs: ReadonlySet<string>; grouped: boolean; direct: ReadonlySet<string> };
  named: ReadonlyArray<{ name: string; inputs: ReadonlySet<string> }>;
}

export function targetsOf(plans: ReadonlyMap<string, InputPlan>): RunTargets {
  const rest = new Set<string>();
  const direct = new Set<string>();
  const named = new Map<string, Set<string>>();
  let grouped = false;
  for (const [name, plan] of plans) {
    const into = plan.policy.grouping.value;
    if (into.kind === "named") {
      const members = named.get(into.name) ?? new Set<string>();
      named.set(into.name, members.add(name));
    } else {
      rest.add(name);
      grouped ||= into.kind === "all";
      if (plan.policy.merge.value === "direct") direct.add(name);
    }
  }
  return {
    rest: { inputs: rest, grouped, direct: grouped ? new Set() : direct },
    named: [...named].map(([name, inputs]) => ({ name, inputs })),
  };
}

/**
 * Whether the run's targets need locks of their own (lib/bump/targets.ts) rather than one bump:
 * the file names groups, or several of the rest land directly beside others that do not, so the
 * direct ones need one lock together that holds nothing else.
 */
export function targetsApart(targets: RunTargets): boolean {
  const { direct, inputs } = targets.rest;
  return targets.named.length > 0 || (direct.size > 1 && direct.size < inputs.size);
}

const clause = (applied: Applied) => `${applied.setting}: ${applied.value} (${applied.where})`;

/** Each input's effective policy and what this run may do with it; pure. */
export function planInputs(
  names: readonly string[],
  policy: Policy | undefined,
  run: RunSettings & { trigger: Trigger; now: Date },
): Map<string, InputPlan> {
  const plans = new Map<string, InputPlan>();
  for (const name of names) {
    const effective = effectivePolicy(name, policy, run);
    const decided = gate(effective, run.trigger, run.now);
    const plan: InputPlan = { policy: effective, gate: decided };
    if (!decided.move) plan.note = `'${name}' is held by ${clause(decided.held)}: ${decided.reason}`;
    else if (decided.overrode.length > 0)
      plan.note = `'${name}' was named, so it moves despite ${decided.overrode.map(clause).join(" and ")}`;
    plans.set(name, plan);
  }
  return plans;
}

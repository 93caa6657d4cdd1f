/**
 * The pull requests one report calls for, and how each lands: each group of the policy file on its
 * own branch, `group: true`'s one pull request of the rest, or one per input; each with its merge
 * mode by the policy's precedence. Pure: open-pr.ts runs the one lifecycle over each target.
 */

import { UsageError } from "../core/errors.ts";
import type { MergeMode } from "../core/ids.ts";
import type { Report } from "../flake/report.ts";
import { effectivePolicy, groupMerge, groupOf, type RunSettings } from "../policy/effective.ts";
import type { Policy } from "../policy/file.ts";
import { loadRunPolicy } from "../policy/run.ts";

export interface PrTarget {
  /** A group's pull request (named, or `all` when `groupName` is absent); else one per input. */
  grouped: boolean;
  groupName?: string;
  mode: MergeMode;
  /** The report's share that belongs to this target: its moves, its skipped inputs, its lock. */
  report: Report;
}

function share(report: Report, names: ReadonlySet<string>, grouped: boolean): Report {
  const inputs = report.inputs.filter((change) => names.has(change.name));
  // The whole run's share has the run's lock. Otherwise a group's members all carry the group's
  // lock, one input its own, and the direct inputs bumped together (lib/bump/targets.ts) the one
  // lock of all of them; other single inputs have none together (a direct commit refuses that).
  const whole = inputs.length === report.inputs.length;
  const [first] = inputs;
  const together = inputs.every((change) => change.lock.text === first?.lock.text);
  const own = inputs.length === 1 || grouped || together ? first?.lock : undefined;
  const lock = (whole ? report.lock : own) ?? null;
  const part: Report = {
    ...report,
    changed: report.changed && inputs.length > 0,
    inputs,
    skipped: report.skipped.filter((entry) => names.has(entry.name)),
    lock,
  };
  // flake.nix likewise: the run's edits (every release's tag) belong to the whole run only.
  const flakeNix = whole ? report.flakeNix : own === undefined ? undefined : first?.flakeNix;
  if (flakeNix === undefined) delete part.flakeNix;
  else part.flakeNix = flakeNix;
  if (grouped) part.grouped = true;
  else delete part.grouped;
  return part;
}

/**
 * The targets of a report. `grouped` is `group: true` (or `--group`) for the inputs outside the
 * file's groups; `run` carries the command line's and the action's `merge` and `group`.
 */
export function prTargets(report: Report, policy: Policy | undefined, run: RunSettings): PrTarget[] {
  const names = [...new Set([...report.inputs.map((c) => c.name), ...report.skipped.map((s) => s.name)])];
  const allGroup = run.flags?.group === true || run.action?.group === true;
  const targets: PrTarget[] = [];
  for (const group of policy?.groups ?? []) {
    // `--group` for this run beats the file: everything then goes into the one pull request.
    if (run.flags?.group === true) break;
    const members = new Set(names.filter((name) => group.inputs.includes(name)));
    if (members.size === 0) continue;
    const mode = groupMerge(group.name, policy, run).value;
    targets.push({ grouped: true, groupName: group.name, mode, report: share(report, members, true) });
  }
  const rest = names.filter((name) => run.flags?.group === true || groupOf(policy, name) === undefined);
  if (allGroup) {
    if (rest.length > 0 || report.grouped === true) {
      const mode = groupMerge(undefined, policy, run).value;
      targets.push({ grouped: true, mode, report: share(report, new Set(rest), true) });
    }
  } else {
    const byMode = new Map<MergeMode, Set<string>>();
    for (const name of rest) {
      const mode = effectivePolicy(name, policy, run).merge.value;
      byMode.set(mode, (byMode.get(mode) ?? new Set()).add(name));
    }
    for (const [mode, members] of byMode)
      targets.push({ grouped: false, mode, report: share(report, members, false) });
  }
  if (targets.length === 0)
    targets.push({ grouped: allGroup, mode: groupMerge(undefined, policy, run).value, report });
  checkDirect(targets);
  return targets;
}

/**
 * A direct commit carries one lock onto the base branch: a run can commit one target's lock (one
 * group's, or the direct inputs' that bump.ts locked together), or every move when all of them are
 * direct, but not several targets' locks one after the other.
 */
function checkDirect(targets: readonly PrTarget[]): void {
  const direct = targets.filter((target) => target.mode === "direct" && target.report.changed);
  const stuck = direct.find((target) => target.report.lock === null);
  if (direct.length > 1 || stuck !== undefined) {
    const names = direct.flatMap((target) => target.report.inputs.map((change) => change.name));
    throw new UsageError(
      `merge: direct for ${names.map((n) => `'${n}'`).join(", ")} would need several commits onto the base branch in one run; set merge: direct on one group (or in defaults for everything), or use auto`,
    );
  }
}

/** This run's `--merge`, `--group` and `--config`, or the action's `merge`, `group` and `config`. */
export interface TargetSettings {
  config?: string | undefined;
  merge?: MergeMode | undefined;
  group?: boolean | undefined;
}

/**
 * The report's pull requests and how each lands: the policy file's groups and merge modes, under
 * this run's flags and the action's inputs. open-pr.ts and impact.ts both call it, so host impact
 * is written for exactly the pull requests that were opened.
 */
export async function loadPrTargets(
  report: Report,
  flags: TargetSettings,
  action: TargetSettings,
): Promise<PrTarget[]> {
  const policy = await loadRunPolicy({
    config: flags.config ?? action.config,
    root: report.flake.repoRoot ?? report.flake.dir,
  });
  const run: RunSettings = {
    flags: {
      ...(flags.merge === undefined ? {} : { merge: flags.merge }),
      ...(flags.group === true ? { group: true } : {}),
    },
    action: {
      ...(action.merge === undefined ? {} : { merge: action.merge }),
      ...(action.group === true ? { group: true } : {}),
    },
  };
  return prTargets(report, policy, run);
}

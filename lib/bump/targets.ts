/**
 * A run whose policy file names groups, or whose direct inputs land beside others: each group, the
 * direct inputs, and the other inputs outside every group, is bumped as its own target, so each pull
 * request's (or the direct commit's) flake.lock holds exactly its own moves (a group's members
 * together, with the ones its open pull request already holds; the direct inputs together). The
 * report lists every move, each group member marked with its group; flake.lock on disk gets every
 * move at once.
 */
import { join } from "node:path";
import { writeAtomic } from "../core/files.ts";
import type { Report, Skipped } from "../flake/report.ts";
import type { RunTargets } from "../policy/run.ts";
import { type BumpDeps, type BumpRequest, bump, type GroupDeps } from "./bump.ts";

/**
 * Bump every target of the run. `groups.deps(name)` reads the open pull request of a named group
 * (undefined: of the `<prefix>all` group).
 */
export async function bumpTargets(
  request: BumpRequest,
  deps: BumpDeps,
  targets: RunTargets,
  groups: { deps: (name: string | undefined) => GroupDeps | undefined },
): Promise<Report> {
  // Each target alone on the original lock, nothing written yet: the next target must not see it.
  const parts: Array<{ group: string | undefined; report: Report }> = [];
  const { inputs, direct } = targets.rest;
  // Several direct inputs: one commit carries them, so one lock holds their moves together.
  const together = direct.size > 1 ? direct : new Set<string>();
  const all = [
    { group: undefined, inputs: new Set([...inputs].filter((name) => !together.has(name))), together: false },
    { group: undefined, inputs: together, together: true },
    ...targets.named.map((t) => ({ group: t.name, inputs: t.inputs, together: false })),
  ];
  const { group: _group, ...alone } = deps;
  for (const target of all) {
    if (target.inputs.size === 0) continue;
    const grouped = target.group !== undefined || targets.rest.grouped;
    // No pull request keeps members beside them: each carries the lock of all of them, nothing more.
    const groupDeps = target.together ? NO_OPEN_GROUP : grouped ? groups.deps(target.group) : undefined;
    const part = await bump(
      { ...request, only: target.inputs, dryRun: true },
      groupDeps === undefined ? alone : { ...alone, group: groupDeps },
    );
    parts.push({ group: target.group, report: part });
  }
  return combine(request, deps, parts, targets.rest.grouped);
}

/** A group with no open pull request: its lock holds this run's moves and nothing else. */
const NO_OPEN_GROUP: GroupDeps = { members: async () => ({}), isOlder: async () => false };

async function combine(
  request: BumpRequest,
  deps: BumpDeps,
  parts: Array<{ group: string | undefined; report: Report }>,
  restGrouped: boolean,
): Promise<Report> {
  const [first] = parts;
  if (first === undefined) return bump({ ...request, only: new Set() }, deps);
  const skipped = new Map<string, Skipped>();
  for (const { report } of parts) for (const entry of report.skipped) skipped.set(entry.name, entry);
  const inputs = parts.flatMap(({ group, report }) =>
    report.inputs.map((change) => (group === undefined ? change : { ...change, group })),
  );
  const moved = parts.filter(({ report }) => report.changed);
  const report: Report = {
    ...first.report,
    changed: moved.length > 0,
    dryRun: request.dryRun,
    inputs,
    skipped: [...skipped.values()],
    lock: moved[0]?.report.lock ?? null,
    nix: {
      version: parts.map((part) => part.report.nix.version).find(Boolean) ?? "",
      invocations: parts.reduce((sum, part) => sum + part.report.nix.invocations, 0),
    },
  };
  const flakeNix = moved[0]?.report.flakeNix;
  if (flakeNix === undefined) delete report.flakeNix;
  else report.flakeNix = flakeNix;
  if (restGrouped) report.grouped = true;
  else delete report.grouped;
  if (moved.length > 1) {
    // Every move in one lock: each input locked at the commit its target chose, in one more run.
    const pins = new Map(
      inputs.flatMap((change) => (change.to.rev === undefined ? [] : [[change.name, change.to.rev]])),
    );
    const { rev: _rev, plans: _plans, ...rest } = request;
    const { group: _group, freshness: _freshness, ...exactly } = deps;
    const all = await bump({ ...rest, only: new Set(pins.keys()), pins }, exactly);
    report.lock = all.lock;
    if (all.flakeNix === undefined) delete report.flakeNix;
    else report.flakeNix = all.flakeNix;
    report.nix.invocations += all.nix.invocations;
  } else if (report.lock !== null && !request.dryRun) {
    // A release's tag edit goes with the lock that was computed from it.
    if (flakeNix !== undefined) await writeAtomic(join(report.flake.dir, "flake.nix"), flakeNix.text);
    await writeAtomic(join(report.flake.dir, "flake.lock"), report.lock.text);
  }
  return report;
}

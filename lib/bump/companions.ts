/**
 * The bump's side of companion pins (lib/flake/companions.ts): the submodules read with the flake,
 * before Nix runs, the listed companions checked against them, and the gitlinks each moved input's
 * commit carries beside its flake.lock.
 */
import { UsageError } from "../core/errors.ts";
import {
  type CompanionQuestion,
  type Companions,
  gitlinkMoves,
  planCompanions,
  readSubmodules,
  type Submodule,
  stageGitlinks,
  submodulesOn,
} from "../flake/companions.ts";
import { githubSource } from "../flake/flakeref.ts";
import type { LockNode } from "../flake/lock.ts";
import type { InputChange, Skipped } from "../flake/report.ts";

/** The policy file's companions per input, and how to learn the flake repository's own URL. */
export interface CompanionSettings {
  /** Input → the submodule paths listed under its `companions` (exactly those move with it). */
  listed?: Readonly<Record<string, readonly string[]>>;
  /** The flake repository's own URL, for relative submodule URLs; asked only when one is relative. */
  ownUrl?: () => Promise<string | undefined>;
}

/** The repository's submodules as the bump read them, with what planning needs. */
export interface CompanionSite {
  submodules: Submodule[];
  listed: Readonly<Record<string, readonly string[]>>;
  self: string | undefined;
}

const isRelative = (url: string) => url.startsWith("./") || url.startsWith("../");

/**
 * Read the submodules of the repository at `root` and check the listed companions of the selected
 * inputs against them (each must be a submodule on the input's GitHub repository), all before Nix
 * runs: a `.gitmodules` git cannot parse, or a listing that names no such submodule, is a usage error.
 */
export async function readCompanions(
  root: string | undefined,
  selected: readonly { name: string; node: LockNode }[],
  settings: CompanionSettings,
): Promise<CompanionSite> {
  const listed = settings.listed ?? {};
  const submodules = root === undefined ? [] : await readSubmodules(root);
  const self = submodules.some((s) => isRelative(s.url)) ? await settings.ownUrl?.() : undefined;
  const site: CompanionSite = { submodules, listed, self };
  for (const { name, node } of selected) {
    const paths = listed[name];
    if (paths === undefined) continue;
    const source = githubSource(node);
    if (source === undefined) {
      throw new UsageError(
        `input '${name}' lists companions but is not a github: input, so no submodule can name its repository; remove its companions from the policy file`,
      );
    }
    // The input as it stands: what planning it then throws for a listing, a move throws too.
    const rev = node.locked?.rev ?? "";
    planCompanions(question(site, name, source, rev, rev), submodules);
  }
  return site;
}

function question(
  site: CompanionSite,
  input: string,
  source: CompanionQuestion["source"],
  from: string,
  to: string,
): CompanionQuestion {
  const q: CompanionQuestion = { input, source, from, to };
  const listed = site.listed[input];
  if (listed !== undefined) q.listed = listed;
  if (site.self !== undefined) q.self = site.self;
  return q;
}

/**
 * The submodules that move with a moved input, and those left; undefined when the input has none
 * (no GitHub source, no rev, or no submodule on its repository).
 */
export function companionsOf(
  site: CompanionSite,
  change: Pick<InputChange, "name" | "from" | "to" | "github">,
): Companions | undefined {
  const to = change.to.rev;
  if (change.github === undefined || to === undefined || site.submodules.length === 0) return undefined;
  const plan = planCompanions(
    question(site, change.name, change.github, change.from?.rev ?? "", to),
    site.submodules,
  );
  if (plan.moves.length === 0 && plan.left.length === 0) return undefined;
  return { moved: plan.moves, left: plan.left };
}

/**
 * The listed companions of an input that is current (its lock stays) but which point elsewhere: they
 * move to the locked rev alone. Undefined when none does (unlisted ones are never moved this way).
 */
export function companionsToCatchUp(
  site: CompanionSite,
  input: { name: string; node: LockNode },
): Companions | undefined {
  const source = githubSource(input.node);
  const rev = input.node.locked?.rev;
  if (site.listed[input.name] === undefined || source === undefined || rev === undefined) return undefined;
  const plan = planCompanions(question(site, input.name, source, rev, rev), site.submodules);
  return plan.moves.length === 0 ? undefined : { moved: plan.moves, left: plan.left };
}

/** A skipped input with the submodules on its repository named, for open-pr's coverage check. */
export function withSubmodules(site: CompanionSite, skip: Skipped): Skipped {
  const paths = skip.github === undefined ? [] : submodulesOn(skip.github, site.submodules, site.self);
  return paths.length === 0 ? skip : { ...skip, submodules: paths.map((s) => s.path) };
}

/** Stage the report's gitlink moves in the checkout at `root` (locally, beside the flake.lock written). */
export async function stageCompanions(
  root: string | undefined,
  inputs: readonly Pick<InputChange, "companions">[],
): Promise<void> {
  const moves = gitlinkMoves(inputs);
  if (root !== undefined && moves.length > 0) await stageGitlinks(root, moves);
}

/** An input that is current but whose listed companions point elsewhere: the moves it still needs. */
export interface CompanionsBehind {
  name: string;
  moved: Companions["moved"];
}

/**
 * `--check`: the current inputs whose listed companions do not point at the locked rev. They count as
 * behind, since the companion needs the move; unlisted companions never do (an out-of-step one is left).
 */
export async function companionsBehind(
  root: string | undefined,
  selected: readonly { name: string; node: LockNode }[],
  current: readonly string[],
  settings: CompanionSettings,
): Promise<CompanionsBehind[]> {
  const listed = selected.filter((input) => settings.listed?.[input.name] !== undefined);
  if (listed.length === 0) return [];
  const site = await readCompanions(root, listed, settings);
  const behind: CompanionsBehind[] = [];
  for (const input of listed) {
    const catchUp = current.includes(input.name) ? companionsToCatchUp(site, input) : undefined;
    if (catchUp !== undefined) behind.push({ name: input.name, moved: catchUp.moved });
  }
  return behind;
}

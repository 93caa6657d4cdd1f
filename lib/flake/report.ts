/**
 * The bump report: what bump.ts did, written as one JSON document that open-pr.ts (and the PR body)
 * read back. Both sides validate it with the same schema.
 */
import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import * as v from "valibot";
import { describeIssues, RuntimeError, UsageError } from "../core/errors.ts";
import { parseJson, readJson, writeAtomic } from "../core/files.ts";
import { GitHubRepository, InputName, Sha } from "../core/ids.ts";
import { CheckoutHead, checkoutGitDir, checkoutHead, gitTopLevel } from "./checkout.ts";
import { type CompanionMove, Companions, leftSentence } from "./companions.ts";
import { LockedSummary, NodeChange } from "./lock.ts";

const LockText = v.object({ text: v.string(), sha256: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)) });
export type LockText = v.InferOutput<typeof LockText>;

/** An upstream commit as the PR body lists it: the compare API's fields it reads, subject line only. */
export const UpstreamCommit = v.object({
  sha: Sha,
  commit: v.object({
    message: v.string(),
    author: v.nullable(v.object({ name: v.optional(v.string()) })),
  }),
  /** GitHub's account of the author; `{}` or null when the commit's email matches none. */
  author: v.nullable(v.object({ login: v.optional(v.string()) })),
});
export type UpstreamCommit = v.InferOutput<typeof UpstreamCommit>;

/** The upstream commits from `from` to `to` (oldest first, at most 100) and their total. */
export const Upstream = v.object({
  from: Sha,
  to: Sha,
  commits: v.array(UpstreamCommit),
  total: v.pipe(v.number(), v.integer(), v.minValue(0)),
});
export type Upstream = v.InferOutput<typeof Upstream>;

export const InputChange = v.object({
  /** Becomes a branch name in open-pr, so it is held to Nix's input-name rules here too. */
  name: InputName,
  from: v.optional(LockedSummary),
  to: LockedSummary,
  /** Set when the input lives on GitHub (or GitHub Enterprise Server, with `host`). */
  github: v.optional(GitHubRepository),
  /** Transitive lock nodes under this input that were added, removed or changed. */
  transitive: v.object({
    added: v.array(NodeChange),
    removed: v.array(NodeChange),
    changed: v.array(NodeChange),
  }),
  /**
   * flake.lock with only this input moved (what its own pull request commits). When several inputs
   * move in one run, each gets its own, so each rolling branch carries exactly one input's change.
   */
  lock: LockText,
  /**
   * The upstream commits bump.ts already fetched while checking a dispatched rev, so open-pr need not
   * ask again for the PR body. Absent in older reports and when nothing was asked.
   */
  upstream: v.optional(Upstream),
  /** Which engine moved it: the native GitHub-tarball writer or Nix (absent in older reports). */
  engine: v.optional(v.picklist(["native", "nix"])),
  /** Why that engine: what made the native move provable, or what left the input to Nix. */
  engineReason: v.optional(v.string()),
  /** Set when the input moved to a newer release tag: flake.nix names the new tag. */
  release: v.optional(
    v.object({ from: v.string(), to: v.string(), between: v.optional(v.array(v.string())) }),
  ),
  /** flake.nix as this input's own commit carries it, when the move edited it (a release). */
  flakeNix: v.optional(LockText),
  /**
   * Submodules on the input's repository: the gitlinks its commit moves beside flake.lock, and those
   * left. Absent when there are none (and in older reports).
   */
  companions: v.optional(Companions),
  /**
   * The policy file's group this input moved in: its `lock` is then the group's, with every member
   * this run moved (and those the group's open pull request holds). Absent: its own pull request.
   */
  group: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/))),
  /** The policy this move set aside because a person named the input, as the log says it. */
  overrode: v.optional(v.string()),
});
export type InputChange = v.InferOutput<typeof InputChange>;

/** The rev an input moved to: its commit, or the locked reference when the source names none. */
export function revOf(change: Pick<InputChange, "to">): string {
  return change.to.rev ?? change.to.ref;
}

/**
 * An entry whose flake.lock node did not move: the input was already current, and only a companion
 * listed for it (a submodule pointing elsewhere) moves to the locked rev. Its commit is the gitlinks alone.
 */
export function lockUnmoved(change: Pick<InputChange, "from" | "to">): boolean {
  const { from, to } = change;
  return from !== undefined && from.ref === to.ref && from.rev === to.rev && from.narHash === to.narHash;
}

/** Each input's name and the rev a report moves it to: what a grouped pull request proposes. */
export function membersOf(changes: readonly Pick<InputChange, "name" | "to">[]): Record<string, string> {
  return Object.fromEntries(changes.map((change) => [change.name, revOf(change)]));
}

export const Skipped = v.object({
  name: InputName,
  /**
   * `held`: the policy file keeps this run from moving it (schedule, min-age, follow: none);
   * `not-tracked`: a push of a ref the input does not track; `release`: a tag that is not newer.
   */
  reason: v.picklist([
    "up-to-date",
    "already-at-rev",
    "already-ahead",
    "pinned",
    "held",
    "not-tracked",
    "release",
  ]),
  message: v.string(),
  /** The rev the lock holds for this input (open-pr closes PRs that propose it or older). */
  current: v.optional(v.string()),
  github: v.optional(GitHubRepository),
  /**
   * The submodules on the input's repository (paths): an open pull request that moves one of their
   * gitlinks is covered only once the base holds it too. Absent when there are none.
   */
  submodules: v.optional(v.array(v.string())),
});
export type Skipped = v.InferOutput<typeof Skipped>;

export const Report = v.object({
  schema: v.literal(1),
  changed: v.boolean(),
  dryRun: v.boolean(),
  /**
   * Written by `bump.ts --group`: the inputs move together, in one Nix run, and each input's `lock`
   * is the combined lock (one grouped pull request carries them; there is no per-input lock).
   */
  grouped: v.optional(v.boolean()),
  /** What was asked: input names (empty = all tracked) and the exact rev, if any. */
  requested: v.object({ inputs: v.array(v.string()), rev: v.optional(Sha) }),
  flake: v.object({
    /** Absolute path of the flake directory that was bumped. */
    dir: v.string(),
    /** flake.lock's path inside its git repository (`flake.lock`, `hosts/flake.lock`), if in one. */
    lockPath: v.optional(v.string()),
    /** The git repository's top-level directory, if the flake is in one. */
    repoRoot: v.optional(v.string()),
    /**
     * The commit the lock was computed from: open-pr bases the PR's commit on it (one request fewer,
     * and a flake.lock change landing on the base meanwhile becomes a conflict, not an overwrite).
     */
    head: v.optional(CheckoutHead),
  }),
  inputs: v.array(InputChange),
  skipped: v.array(Skipped),
  /** The new flake.lock with every change (what is on disk after the run); null when nothing changed. */
  lock: v.nullable(LockText),
  /** The new flake.nix with every release edit (on disk after the run); absent when it did not change. */
  flakeNix: v.optional(LockText),
  /** One line for a run that had nothing to do for a reason worth saying (a push no input tracks). */
  note: v.optional(v.string()),
  nix: v.object({ version: v.string(), invocations: v.number() }),
});
export type Report = v.InferOutput<typeof Report>;

/**
 * Where the report goes when no --report is given. In Actions under $RUNNER_TEMP: the job is the
 * checkout's whole life, its steps run one after another, and the report stays out of the
 * workspace (an artifact or a commit of it never carries one). Elsewhere in the git directory of the
 * checkout that holds `dir`, which git never commits, so each checkout (each clone, each linked
 * worktree) has its own and a bump in one cannot replace the report another is about to open pull
 * requests from; outside git, the user's state directory. bump.ts (for its --flake), open-pr.ts and
 * impact.ts (for their working directory) agree, so `bump.ts X && open-pr.ts` needs no flags.
 */
export async function defaultReportPath(dir: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (env.RUNNER_TEMP) return join(env.RUNNER_TEMP, "flake-bump", "report.json");
  const gitDir = await checkoutGitDir(dir);
  if (gitDir !== undefined) return join(gitDir, "flake-bump", "report.json");
  const state = env.XDG_STATE_HOME || join(env.HOME || homedir(), ".local", "state");
  return join(state, "flake-bump", "report.json");
}

/** Where a script that reads the report runs: its checkout's top level and that checkout's HEAD. */
export interface Here {
  /** The top level of the work tree the script runs in; undefined outside git. */
  topLevel: string | undefined;
  /** HEAD of the report's own checkout now; undefined when it cannot be read (gone, no commit). */
  head: string | undefined;
}

/**
 * Why a report is not this checkout's to act on, as one sentence; undefined when it is. A report
 * from another checkout (another clone or worktree) describes another flake.lock; one from another
 * commit was computed against a base that is no longer checked out. A checkout nested inside the
 * working directory's (a second repository checked out into a subdirectory) counts as its own.
 */
export function checkoutMismatch(
  report: Report,
  here: Here,
  path: string,
  script: string,
): string | undefined {
  const root = report.flake.repoRoot;
  if (root === undefined) return undefined;
  const { topLevel } = here;
  if (topLevel !== undefined && root !== topLevel && !root.startsWith(`${topLevel}/`)) {
    return `the report ${path} was made for the checkout ${root}, not this one (${topLevel}); run ${script} in ${root}, or run bump.ts here first`;
  }
  const made = report.flake.head?.commit;
  if (made !== undefined && here.head !== undefined && here.head !== made) {
    return `the report ${path} was made at commit ${made.slice(0, 12)} of ${root}, which is now at ${here.head.slice(0, 12)}; rerun bump.ts there so the report starts from the commit checked out`;
  }
  return undefined;
}

/** Refuse a report made for another checkout or another base commit (checkoutMismatch), naming both. */
export async function checkReportCheckout(
  report: Report,
  path: string,
  where: { cwd: string; script: string },
): Promise<void> {
  const root = report.flake.repoRoot;
  if (root === undefined) return;
  const [topLevel, head] = await Promise.all([gitTopLevel(where.cwd), checkoutHead(root)]);
  const mismatch = checkoutMismatch(report, { topLevel, head: head?.commit }, path, where.script);
  if (mismatch !== undefined) throw new UsageError(mismatch);
}

/**
 * A report and the step reading it agree on --group, both ways. A grouped run's report (bump.ts
 * --group) has no per-input locks, so read per input it would put every move into each input's pull
 * request. A per-input run's lock does not hold the open grouped pull request's members, so a grouped
 * step would drop them, or open a group from it; whether one is open does not change the rule.
 */
export function checkGrouping(report: Report, grouped: boolean, script: string): void {
  if (report.grouped === true && !grouped) {
    throw new UsageError(
      `the report comes from bump.ts --group, whose inputs share one flake.lock; pass --group to ${script} too (the action's group: true), or rerun bump.ts without --group for one pull request per input`,
    );
  }
  if (report.grouped !== true && grouped) {
    throw new UsageError(
      `the report comes from bump.ts without --group, whose flake.lock leaves out the grouped pull request's other inputs; rerun bump.ts with --group (the action's group: true), or drop --group from ${script} for one pull request per input`,
    );
  }
}

export function serializeReport(report: Report): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

/**
 * Validate with the schema open-pr.ts reads it with, then write atomically (temp file + rename) so a
 * reader never sees half a report. A report that fails its own schema is our bug, never written.
 */
export async function writeReport(path: string, report: Report): Promise<void> {
  const result = v.safeParse(Report, report);
  if (!result.success) {
    throw new RuntimeError(
      `the bump report would not pass its own schema (${describeIssues(result.issues)}); nothing was written to ${path} — report this as a bug`,
    );
  }
  await writeAtomic(path, serializeReport(report), 0o600);
}

/**
 * Check, before any work, that the report can be written at `path`: a bad --report must be a usage
 * error up front, not a crash after flake.lock has already moved. Creates nothing.
 */
export async function checkReportPath(path: string): Promise<void> {
  const refuse = (reason: string) =>
    new UsageError(
      `cannot write the report to ${path} (${reason}); pass --report FILE with a writable file path`,
    );
  if ((await stat(path).catch(() => undefined))?.isDirectory()) throw refuse("it is a directory");
  // The nearest existing ancestor must be a directory we may write in; writeReport creates the rest.
  let dir = dirname(path);
  let found = await stat(dir).catch(() => undefined);
  while (found === undefined && dirname(dir) !== dir) {
    dir = dirname(dir);
    found = await stat(dir).catch(() => undefined);
  }
  if (found !== undefined && !found.isDirectory()) throw refuse(`${dir} is not a directory`);
  try {
    await access(dir, constants.W_OK);
  } catch {
    throw refuse(`${dir} is not writable`);
  }
}

const reportProblems = (path: string) => ({
  unreadable: `no bump report at ${path}; run 'bun scripts/bump.ts' first, or pass --report FILE`,
  notJson: () => `the bump report ${path} is not valid JSON; rerun 'bun scripts/bump.ts' to write it again`,
  invalid: (issues: string) =>
    `the bump report ${path} is not one bump.ts writes (${issues}); rerun 'bun scripts/bump.ts' to write it again`,
});

export function parseReport(text: string, path: string): Report {
  return parseJson(Report, text, reportProblems(path));
}

export async function readReport(path: string): Promise<Report> {
  return readJson(Report, path, reportProblems(path));
}

/** `2026-11-25` from a lock's `lastModified` (seconds since the epoch, UTC). */
export function formatDate(lastModified: number | undefined): string {
  return lastModified === undefined
    ? "unknown date"
    : new Date(lastModified * 1000).toISOString().slice(0, 10);
}

/** Nix's reference with the rev shortened the way Nix users read it: `github:o/r/abc1234…`. */
export function shortRef(summary: LockedSummary): string {
  const { rev, ref } = summary;
  return rev && ref.includes(rev) ? ref.replace(rev, `${rev.slice(0, 7)}…`) : ref;
}

/** One line in Nix's own wording: `• Updated input 'x':  'old' (date) → 'new' (date)`. */
export function describeChange(change: InputChange): string {
  if (lockUnmoved(change)) {
    return `• Kept input '${change.name}' at '${shortRef(change.to)}'; its companion moves to it`;
  }
  const to = `'${shortRef(change.to)}' (${formatDate(change.to.lastModified)})`;
  if (change.from === undefined) return `• Added input '${change.name}':  ${to}`;
  const from = `'${shortRef(change.from)}' (${formatDate(change.from.lastModified)})`;
  return `• Updated input '${change.name}':  ${from} → ${to}`;
}

/** `doctrine` (submodule) 7598d63 → 091f441: a companion's move, as the PR body and summaries show it. */
export function companionMoveText(move: CompanionMove): string {
  return `\`${move.path}\` (submodule) ${move.from.slice(0, 7)} → ${move.to.slice(0, 7)}`;
}

/** An input's companion lines: each move, then each submodule left, as sentences. */
export function companionLines(change: Pick<InputChange, "name" | "companions">): string[] {
  const { moved = [], left = [] } = change.companions ?? {};
  return [...moved.map(companionMoveText), ...left.map((l) => leftSentence(change.name, l))];
}

/** The human summary of a report, line by line, for stderr. */
export function describeReport(report: Report): string[] {
  const lines: string[] = [];
  for (const change of report.inputs) {
    lines.push(describeChange(change));
    if (change.overrode !== undefined) lines.push(`    ${change.overrode}`);
    const { added, removed, changed } = change.transitive;
    const count = added.length + removed.length + changed.length;
    if (count > 0) {
      lines.push(
        `    with ${count} transitive lock change${count === 1 ? "" : "s"} (${changed.length} changed, ${added.length} added, ${removed.length} removed)`,
      );
    }
    for (const line of companionLines(change)) lines.push(`    ${line}`);
  }
  const staged = report.inputs.flatMap((change) => change.companions?.moved ?? []);
  if (report.changed && !report.dryRun && staged.length > 0) {
    const paths = [...new Set(staged.map((move) => move.path))].join(" ");
    lines.push(
      `Staged the submodule gitlink${staged.length === 1 ? "" : "s"} (${paths}); the submodule's files are untouched: check them out with 'git submodule update ${paths}'.`,
    );
  }
  for (const skip of report.skipped)
    lines.push(`• ${skip.message}${skip.reason === "pinned" ? " (name it to bump it anyway)" : ""}`);
  if (report.note !== undefined) lines.push(report.note);
  if (!report.changed) lines.push("Nothing to change: flake.lock is untouched.");
  else if (report.dryRun) lines.push("Dry run: flake.lock is untouched.");
  return lines;
}

/** A markdown table for `$GITHUB_STEP_SUMMARY`. */
export function reportMarkdown(report: Report): string {
  const rows = report.inputs.flatMap((c) => [
    `| \`${c.name}\` | ${c.from?.rev ? `\`${c.from.rev.slice(0, 12)}\` (${formatDate(c.from.lastModified)})` : "—"} | \`${c.to.rev?.slice(0, 12) ?? c.to.ref}\` (${formatDate(c.to.lastModified)}) |`,
    ...(c.companions?.moved ?? []).map(
      (m) => `| \`${m.path}\` (submodule) | \`${m.from.slice(0, 12)}\` | \`${m.to.slice(0, 12)}\` |`,
    ),
  ]);
  const left = report.inputs.flatMap((c) =>
    (c.companions?.left ?? []).map((l) => `- ${leftSentence(c.name, l)}`),
  );
  const skipped = [
    ...left,
    ...report.inputs.flatMap((c) => (c.overrode === undefined ? [] : [`- ${c.overrode}`])),
    ...report.skipped.map((s) => `- ${s.message}`),
  ];
  return [
    `### flake-bump: ${report.changed ? `${report.inputs.length} input${report.inputs.length === 1 ? "" : "s"} updated` : "nothing to change"}${report.dryRun ? " (dry run)" : ""}`,
    "",
    ...(rows.length > 0 ? ["| input | from | to |", "| --- | --- | --- |", ...rows, ""] : []),
    ...skipped,
    ...(report.note === undefined ? [] : ["", report.note]),
  ].join("\n");
}

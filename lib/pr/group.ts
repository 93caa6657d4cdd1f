/**
 * The grouped pull request: every input a run moved, in one PR on the rolling branch `<prefix>all`,
 * whose head commit holds the combined flake.lock. Like a per-input branch (lib/pr/branch.ts) it moves
 * only by compare-and-swap and never backwards, but "backwards" is judged per member: the marker in
 * the head commit lists each member's rev, and no write may leave any member older than that.
 */
import * as v from "valibot";
import { RuntimeError } from "../core/errors.ts";
import { tryParseJson } from "../core/files.ts";
import { fullName, type GitHubRepository, InputName } from "../core/ids.ts";
import { githubSource } from "../flake/flakeref.ts";
import { type FlakeLock, parseLock, rootNode } from "../flake/lock.ts";
import { type InputChange, lockUnmoved, membersOf, type Report, revOf } from "../flake/report.ts";
import { type Octokit, type RepositoryClient, request, requestUnlessAbsent } from "../github/client.ts";
import { commitsBetween, isOlderOn, sameOrNewer } from "../github/upstream.ts";
import { branchHolds, gitlinksLacking, type OpenPull, openPullOf, readBase } from "./branch.ts";
import { bumpChanges, commitBySwap } from "./commit.ts";
import {
  type AutoOptions,
  disableAutoMerge,
  groupImpactHold,
  type LandResult,
  landTarget,
  sameMembers,
} from "./land.ts";
import {
  baseOf,
  type Coverage,
  checkReport,
  closeIfCovered,
  createOrFind,
  lockPathOf,
  type OpenPrOptions,
  type Operation,
  type PullRequestResult,
  resultFor,
  syncText,
  type Target,
} from "./lifecycle.ts";
import {
  type BodyInput,
  carrySection,
  changeTitle,
  commitMessage,
  footerSection,
  inputSection,
  type PrText,
  textFromMessage,
} from "./text.ts";

/** Each member's input name and the rev the grouped PR locks it at. */
export const GroupMarker = v.object({ members: v.record(InputName, v.string()) });
export type GroupMarker = v.InferOutput<typeof GroupMarker>;
export type Members = GroupMarker["members"];

// A marker of its own, so the per-input marker parser never mistakes a grouped PR for one input's.
const MARKER = /<!-- flake-bump-group (\{.*?\}) -->/;

export function renderGroupMarker(members: Members): string {
  return `<!-- flake-bump-group ${JSON.stringify({ members })} -->`;
}

export function parseGroupMarker(text: string | null | undefined): Members | undefined {
  const match = text ? MARKER.exec(text) : null;
  if (!match?.[1]) return undefined;
  return tryParseJson(GroupMarker, match[1])?.members;
}

/**
 * A grouped pull request's branch: `<prefix>all` for `group: true`, `<prefix>group/<name>` for a
 * group of the policy file (which no input's own `<prefix><input>` can be).
 */
export function groupBranch(prefix = "flake-bump/", name?: string): string {
  return name === undefined ? `${prefix}all` : `${prefix}group/${name}`;
}

export function groupTitle(changes: readonly InputChange[]): string {
  const [only] = changes;
  if (changes.length === 1 && only !== undefined) return changeTitle(only);
  return `chore(flake): update ${changes.length} inputs`;
}

/** One member's part of the body: its report entry and upstream commits, as a per-input PR has them. */
export type GroupSection = BodyInput;

/**
 * The body: an overview table, one section per member (lib/pr/text.ts's), the closing sentence
 * between the host impact markers (the impact step replaces it with one combined section), the
 * marker last.
 */
export function groupBody(sections: readonly GroupSection[], footer?: string): string {
  const members = membersOf(sections.map(({ change }) => change));
  const lines = [
    `Updates ${sections.length} flake input${sections.length === 1 ? "" : "s"} together, in one flake.lock.`,
    "",
    "| input | from | to |",
    "| --- | --- | --- |",
    ...sections.map(
      ({ change }) =>
        `| \`${change.name}\` | ${change.from?.rev ? `\`${change.from.rev.slice(0, 7)}\`` : "—"} | \`${revOf(change).slice(0, 7)}\` |`,
    ),
    "",
  ];
  for (const section of sections) {
    lines.push(`## \`${section.change.name}\``, "", ...inputSection(section), "");
  }
  lines.push(...footerSection(footer, "the hosts that use these inputs"), "", renderGroupMarker(members));
  return lines.join("\n");
}

interface GroupHead {
  sha: string;
  text: PrText;
  members: Members;
}

/** The grouped branch's head commit and the members its marker lists; undefined without a branch. */
export async function readGroupHead(gh: RepositoryClient, branch: string): Promise<GroupHead | undefined> {
  const found = await requestUnlessAbsent(gh, `read branch '${branch}'`, [404, 422], () =>
    gh.octokit.rest.repos.getCommit({ ...gh.repo, ref: `heads/${branch}`, per_page: 1 }),
  );
  if (found === undefined) return undefined;
  const { sha, commit } = found.data;
  return { sha, text: textFromMessage(commit.message), members: parseGroupMarker(commit.message) ?? {} };
}

/**
 * What bump.ts --group needs: the members of the open grouped PR (none when there is no open one),
 * so the new lock can keep them beside the dispatched input.
 */
export async function openGroupMembers(
  octokit: Octokit,
  repo: GitHubRepository,
  branch: string,
): Promise<Members> {
  const gh = { octokit, repo };
  const open = await openPullOf(gh, branch);
  if (open === undefined) return {};
  return (await readGroupHead(gh, branch))?.members ?? {};
}

/**
 * Whether `lock` holds one member: at its rev or past it (the member's rev is an ancestor of the
 * lock's); anything else (older, gone, or an order GitHub cannot tell) is behind it.
 */
async function holdsMember(octokit: Octokit, lock: FlakeLock, input: string, rev: string): Promise<boolean> {
  const node = rootNode(lock, input);
  if (node === undefined) return false;
  return sameOrNewer(isOlderOn(octokit), githubSource(node), node.locked?.rev, rev);
}

async function readBaseLock(gh: RepositoryClient, base: string, path: string): Promise<FlakeLock> {
  const { data } = await request(gh, `read ${path} on '${base}'`, () =>
    gh.octokit.rest.repos.getContent({ ...gh.repo, path, ref: `heads/${base}` }),
  );
  if (Array.isArray(data) || data.type !== "file" || !("content" in data)) {
    throw new RuntimeError(`${path} on '${base}' of ${fullName(gh.repo)} is not a file; check --base`);
  }
  return parseLock(Buffer.from(data.content, "base64").toString("utf8"), `${path} on '${base}'`);
}

/**
 * Open, roll forward or close the one grouped pull request a report calls for. Returns one result
 * (its `input` lists the members), or none when there is neither a move nor an open grouped PR.
 */
export async function openGroupPullRequest(
  octokit: Octokit,
  report: Report,
  opts: OpenPrOptions,
): Promise<PullRequestResult[]> {
  const gh: RepositoryClient = { octokit, repo: opts.repo };
  const branch = groupBranch(opts.branchPrefix, opts.groupName);
  checkReport(report, opts);
  const lockPath = lockPathOf(report);
  const existing = await openPullOf(gh, branch);
  const base = await baseOf(gh, opts, existing);
  const names = report.inputs.map((change) => change.name).join(", ");
  const submodules = report.skipped.flatMap((skip) => skip.submodules ?? []);
  const target = groupTarget(gh, branch, names, { base, lockPath, submodules });
  const combined = report.changed ? report.lock : null;
  if (combined === null || report.inputs.length === 0) {
    return existing ? [await closeIfCovered(gh, target, existing, opts)] : [];
  }

  const result = (operation: Operation, detail: string, pr?: { number: number; html_url: string }) =>
    resultFor(names, operation, detail, pr);
  if (opts.dryRun) {
    return [
      result(
        existing ? "updated" : "created",
        `dry run: would ${existing ? `update #${existing.number}` : "open one pull request"} for ${names}`,
        existing,
      ),
    ];
  }

  let text: Promise<PrText> | undefined;
  const swapped = await swapGroup(gh, {
    branch,
    base,
    path: lockPath,
    changes: report.inputs,
    lock: combined.text,
    flakeNix: report.flakeNix?.text,
    text: () => (text ??= groupText(octokit, report.inputs, opts.footer)),
    // As on a per-input branch (OpenPrOptions.disarmOnMove): never armed at a head not judged.
    beforeMove:
      existing?.auto_merge && opts.disarmOnMove
        ? () => disableAutoMerge(octokit, existing.node_id, `#${existing.number}`)
        : undefined,
  });
  if ("newer" in swapped) {
    const pr = existing ?? (await openPullOf(gh, branch));
    return [result("unchanged", `the grouped branch already holds newer revs (${swapped.newer})`, pr)];
  }
  const { head, wrote } = swapped;
  if (existing) {
    await syncText(gh, target, existing.number, head, { title: existing.title, body: existing.body ?? "" });
    const detail = wrote ? head.text.title : `#${existing.number} already proposes this flake.lock`;
    return [result(wrote ? "updated" : "unchanged", detail, existing)];
  }
  const { pr, created } = await createOrFind(gh, target, base, head, opts);
  return [result(created ? "created" : wrote ? "updated" : "unchanged", head.text.title, pr)];
}

/** Where a grouped pull request's coverage is read: the base, flake.lock, and the members' submodules. */
interface GroupOn {
  base: string;
  lockPath: string;
  /** The submodules on the members' repositories (the skipped entries' `submodules`). */
  submodules?: readonly string[];
}

/**
 * The grouped pull request as a lifecycle target (lib/pr/lifecycle.ts): its body is its head's, its
 * marker lists the members, and it is covered once `base`'s flake.lock holds every member (and the
 * base holds the gitlinks the head moves with them).
 */
function groupTarget(gh: RepositoryClient, branch: string, input: string, on: GroupOn): Target<GroupHead> {
  return {
    input,
    branch,
    body: (head) => head.text.body,
    sameProposal: sameGroupMembers,
    reread: () => readGroupHead(gh, branch),
    covered: (pr) => groupCoverage(gh, branch, pr, on),
  };
}

/** Whether `base` holds every member the grouped PR's head (or, without a branch, its body) lists. */
async function groupCoverage(
  gh: RepositoryClient,
  branch: string,
  pr: OpenPull,
  { base, lockPath, submodules = [] }: GroupOn,
): Promise<Coverage> {
  const head = await readGroupHead(gh, branch);
  const members = head?.members ?? parseGroupMarker(pr.body) ?? {};
  const input = Object.keys(members).join(", ");
  const entries = Object.entries(members);
  if (entries.length === 0) return { input, detail: `#${pr.number} lists no members; left as it is` };
  const baseLock = await readBaseLock(gh, base, lockPath);
  const missing: string[] = [];
  for (const [name, rev] of entries) {
    if (!(await holdsMember(gh.octokit, baseLock, name, rev))) missing.push(name);
  }
  if (missing.length > 0) {
    return { input, detail: `#${pr.number} still proposes ${missing.join(", ")}, which '${base}' lacks` };
  }
  const proposed = entries.map(([name, rev]) => {
    const node = rootNode(baseLock, name);
    return { rev, github: node === undefined ? undefined : githubSource(node) };
  });
  const lacking = await gitlinksLacking(gh, pr, { base, paths: submodules }, proposed);
  if (lacking.length > 0) {
    return {
      input,
      detail: `#${pr.number} still moves the submodule ${lacking.join(", ")}, which '${base}' lacks`,
    };
  }
  const list = entries.map(([name, rev]) => `\`${name}\` \`${rev.slice(0, 12)}\``).join(", ");
  return {
    input,
    detail: `closed #${pr.number}: '${base}' already holds ${input}`,
    comment: `Closing: the base branch already locks every input this pull request proposes (${list}), or newer.`,
  };
}

/** The grouped PR's title and body: every member's section with its upstream commits. */
async function groupText(
  octokit: Octokit,
  changes: readonly InputChange[],
  footer: string | undefined,
): Promise<PrText> {
  const sections = await Promise.all(
    changes.map(async (change) => ({
      change,
      // A companion catching up with a current member has no upstream commits to list.
      ...(lockUnmoved(change)
        ? {}
        : await commitsBetween(octokit, change.name, change.github, change.from?.rev, change.to.rev)),
    })),
  );
  return { title: groupTitle(changes), body: groupBody(sections, footer) };
}

interface GroupSwap {
  branch: string;
  base: string;
  /** flake.lock's path in the repository. */
  path: string;
  /** The members this run moves. */
  changes: readonly InputChange[];
  /** The combined flake.lock. */
  lock: string;
  /** The combined flake.nix, when a release edited it. */
  flakeNix: string | undefined;
  text: () => Promise<PrText>;
  beforeMove: (() => Promise<void>) | undefined;
}

/** The grouped branch afterwards, or (`newer`) the members it holds at newer revs than this run's lock. */
type GroupSwapped = { head: GroupHead; wrote: boolean } | { newer: string };

/**
 * Put a commit with the combined lock at the grouped branch's head by compare-and-swap, never
 * leaving a member the head lists older than it is there.
 */
async function swapGroup(gh: RepositoryClient, swap: GroupSwap): Promise<GroupSwapped> {
  const { branch, path, lock } = swap;
  const newLock = parseLock(lock, "the report's combined flake.lock");
  return commitBySwap<GroupHead | undefined, GroupSwapped>(gh, {
    branch,
    head: await readGroupHead(gh, branch),
    reread: () => readGroupHead(gh, branch),
    beforeMove: swap.beforeMove,
    plan: async (current) => {
      if (current !== undefined) {
        const behind = await behindMembers(gh, swap, newLock, current);
        if (behind !== undefined) return { done: { newer: behind } };
        if (
          await branchHolds(
            gh,
            branch,
            bumpChanges(path, lock, { inputs: swap.changes, flakeNix: swap.flakeNix }),
          )
        ) {
          return { done: { head: current, wrote: false } };
        }
      }
      const from = await readBase(gh, swap.base);
      const text = await swap.text();
      return {
        write: {
          base: from,
          head: current?.sha,
          changes: bumpChanges(path, lock, { inputs: swap.changes, flakeNix: swap.flakeNix }),
          message: commitMessage(text),
        },
        wrote: (written) => ({
          head: { sha: written.sha, text, members: parseGroupMarker(text.body) ?? {} },
          wrote: true,
        }),
      };
    },
  });
}

/**
 * The members `current` holds that `lock` would move back, when this run adds nothing newer (the
 * group already includes it); undefined when none is behind. Throws when it is both.
 */
async function behindMembers(
  gh: RepositoryClient,
  swap: GroupSwap,
  lock: FlakeLock,
  current: GroupHead,
): Promise<string | undefined> {
  const behind: string[] = [];
  for (const [input, rev] of Object.entries(current.members)) {
    if (!(await holdsMember(gh.octokit, lock, input, rev))) behind.push(`${input} ${rev.slice(0, 12)}`);
  }
  if (behind.length === 0) return undefined;
  // Our lock lacks something the branch has. If it adds nothing either, the group already
  // includes this run; if it does add something, writing would drop a member and skipping
  // would drop ours, so only a rerun (which starts from the group) can combine them.
  const addsNew = [];
  for (const change of swap.changes) {
    const held = current.members[change.name];
    if (held === revOf(change)) continue;
    if (!(await sameOrNewer(isOlderOn(gh.octokit), change.github, held, revOf(change))))
      addsNew.push(change.name);
  }
  if (addsNew.length === 0) return behind.join(", ");
  throw new RuntimeError(
    `the grouped branch '${swap.branch}' holds ${behind.join(", ")}, which this run's flake.lock would move back, while this run adds ${addsNew.join(", ")}; rerun the update with group enabled so bump.ts starts from the group (safe to repeat)`,
  );
}

/**
 * `next` with the computed host impact section of `shown` when both name the same members at the
 * same revs: the section still describes the lock the pull request proposes.
 */
export function carryGroupSection(shown: string | null | undefined, next: string): string {
  return carrySection(shown, next, sameGroupMembers);
}

/** Do both bodies' group markers name the same members at the same revs? */
export function sameGroupMembers(shown: string | null | undefined, next: string): boolean {
  const [before, after] = [parseGroupMarker(shown), parseGroupMarker(next)];
  return before !== undefined && after !== undefined && sameMembers(before, after);
}

/**
 * Land the grouped pull request by auto-merge (lib/pr/land.ts's landTarget): only while the branch head's
 * marker names exactly this run's members and revs, so the head armed or merged is the one this run
 * wrote and host impact evaluated; held when host impact reports a failed host for any member.
 */
export function landGroupAuto(gh: RepositoryClient, report: Report, opts: AutoOptions): Promise<LandResult> {
  const members = membersOf(report.inputs);
  const branch = groupBranch(opts.branchPrefix, opts.groupName);
  const list = (of: Members) =>
    Object.entries(of)
      .map(([input, rev]) => `${input} ${rev.slice(0, 7)}`)
      .join(", ");
  return landTarget(
    gh,
    {
      input: Object.keys(members).join(", "),
      branch,
      hold: groupImpactHold(opts.impact, members),
      evaluatedHead: async () => {
        const head = await readGroupHead(gh, branch);
        if (head === undefined) return { skip: `no branch '${branch}', so no pull request to merge` };
        if (!sameMembers(head.members, members)) {
          return {
            skip: `'${branch}' now proposes ${list(head.members) || "another change"}, not ${list(members)}: the run that moved it lands it`,
          };
        }
        return { sha: head.sha };
      },
    },
    opts,
  );
}

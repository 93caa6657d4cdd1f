/**
 * The grouped pull request: every input a run moved, in one PR on the rolling branch `<prefix>all`,
 * whose head commit holds the combined flake.lock. Like a per-input branch (lib/pr/branch.ts) it moves
 * only by compare-and-swap and never backwards, but "backwards" is judged per member: the marker in
 * the head commit lists each member's rev, and no write may leave any member older than that.
 */
import * as v from "valibot";
import { RuntimeError, UsageError } from "../core/errors.ts";
import { tryParseJson } from "../core/files.ts";
import { fullName, type GitHubRepository, InputName } from "../core/ids.ts";
import { githubSource } from "../flake/flakeref.ts";
import { type FlakeLock, parseLock, rootNode } from "../flake/lock.ts";
import { type InputChange, type Report, revOf } from "../flake/report.ts";
import {
  describeGitHubError,
  type Octokit,
  type RepositoryClient,
  request,
  statusOf,
} from "../github/client.ts";
import { commitsBetween, isOlderOn, sameOrNewer } from "../github/upstream.ts";
import { SECTION_END, SECTION_START } from "../impact/text.ts";
import { branchHasFile, openPullOf } from "./branch.ts";
import {
  type AutoOptions,
  disableAutoMerge,
  groupImpactHold,
  type LandResult,
  landTarget,
  sameMembers,
} from "./land.ts";
import type { OpenPrOptions, Operation, PullRequestResult } from "./lifecycle.ts";
import {
  type BodyInput,
  commitMessage,
  computedSection,
  DEFAULT_FOOTER,
  inputSection,
  type PrText,
  prTitle,
  replaceSection,
  textFromMessage,
} from "./text.ts";

/** How often a run retries after losing the compare-and-swap on the grouped branch. */
const SWAP_ATTEMPTS = 6;

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

export function groupBranch(prefix = "flake-bump/"): string {
  return `${prefix}all`;
}

export function groupTitle(changes: readonly InputChange[]): string {
  const [only] = changes;
  if (changes.length === 1 && only !== undefined) return prTitle(only.name, revOf(only));
  return `chore(flake): update ${changes.length} inputs`;
}

/** One member's part of the body: its report entry and upstream commits, as a per-input PR has them. */
export type GroupSection = BodyInput;

/**
 * The body: an overview table, one section per member (lib/pr/text.ts's), the closing sentence
 * between the host impact markers (the impact step replaces it with one combined section), the
 * marker last.
 */
export function groupBody(sections: readonly GroupSection[], footer: string = DEFAULT_FOOTER): string {
  const members: Members = {};
  for (const { change } of sections) members[change.name] = revOf(change);
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
  const hosts = "the hosts that use these inputs";
  const filled = (footer.includes("{hosts}") ? footer.replace("{hosts}", hosts) : footer).trim();
  const sentence = /[.!?]$/.test(filled) ? filled : `${filled}.`;
  lines.push(SECTION_START, sentence, SECTION_END, "", renderGroupMarker(members));
  return lines.join("\n");
}

interface GroupHead {
  sha: string;
  text: PrText;
  members: Members;
}

/** The grouped branch's head commit and the members its marker lists; undefined without a branch. */
export async function readGroupHead(gh: RepositoryClient, branch: string): Promise<GroupHead | undefined> {
  try {
    const { data } = await gh.octokit.rest.repos.getCommit({
      ...gh.repo,
      ref: `heads/${branch}`,
      per_page: 1,
    });
    return {
      sha: data.sha,
      text: textFromMessage(data.commit.message),
      members: parseGroupMarker(data.commit.message) ?? {},
    };
  } catch (error) {
    if (statusOf(error) === 404 || statusOf(error) === 422) return undefined;
    throw describeGitHubError(error, `read branch '${branch}'`, fullName(gh.repo));
  }
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
  const branch = groupBranch(opts.branchPrefix);
  const lockPath = report.flake.lockPath;
  if (lockPath === undefined) {
    throw new UsageError(
      `the flake in ${report.flake.dir} is not in a git repository, so there is no path to commit flake.lock at; run bump.ts in a clone of the repository`,
    );
  }
  if (report.dryRun && report.changed && !opts.dryRun) {
    throw new UsageError(
      "the report comes from a --dry-run; run bump.ts without --dry-run before opening a pull request",
    );
  }
  const existing = await openPullOf(gh, branch);
  let base = opts.base ?? existing?.base.ref;
  if (base === undefined) {
    const { data } = await request(gh, `read ${fullName(opts.repo)}`, () =>
      octokit.rest.repos.get({ ...opts.repo }),
    );
    base = data.default_branch;
  }
  const combined = report.changed ? report.lock : null;
  if (combined === null || report.inputs.length === 0) {
    return existing ? [await closeIfCovered(gh, existing, branch, base, lockPath, opts)] : [];
  }

  const names = report.inputs.map((change) => change.name).join(", ");
  const newLock = parseLock(combined.text, "the report's combined flake.lock");
  const result = (operation: Operation, detail: string, pr?: { number: number; html_url: string }) => ({
    input: names,
    operation,
    detail,
    ...(pr ? { number: pr.number, url: pr.html_url } : {}),
  });
  if (opts.dryRun) {
    return [
      result(
        existing ? "updated" : "created",
        `dry run: would ${existing ? `update #${existing.number}` : "open one pull request"} for ${names}`,
        existing,
      ),
    ];
  }

  const text = async (): Promise<PrText> => {
    const sections = await Promise.all(
      report.inputs.map(async (change) => ({
        change,
        ...(await commitsBetween(octokit, change.name, change.github, change.from?.rev, change.to.rev)),
      })),
    );
    return { title: groupTitle(report.inputs), body: groupBody(sections, opts.footer) };
  };

  let current = await readGroupHead(gh, branch);
  let armed = existing?.auto_merge ? existing : undefined;
  let written: GroupHead | undefined;
  let wrote = false;
  for (let attempt = 0; attempt < SWAP_ATTEMPTS && written === undefined; attempt++) {
    if (current !== undefined) {
      const behind: string[] = [];
      for (const [input, rev] of Object.entries(current.members)) {
        if (!(await holdsMember(octokit, newLock, input, rev))) behind.push(`${input} ${rev.slice(0, 12)}`);
      }
      if (behind.length > 0) {
        // Our lock lacks something the branch has. If it adds nothing either, the group already
        // includes this run; if it does add something, writing would drop a member and skipping
        // would drop ours, so only a rerun (which starts from the group) can combine them.
        const adds = report.inputs.filter((change) => current?.members[change.name] !== revOf(change));
        const addsNew = [];
        for (const change of adds) {
          const held = current.members[change.name];
          if (!(await sameOrNewer(isOlderOn(octokit), change.github, held, revOf(change))))
            addsNew.push(change.name);
        }
        if (addsNew.length === 0) {
          const pr = existing ?? (await openPullOf(gh, branch));
          return [
            result("unchanged", `the grouped branch already holds newer revs (${behind.join(", ")})`, pr),
          ];
        }
        throw new RuntimeError(
          `the grouped branch '${branch}' holds ${behind.join(", ")}, which this run's flake.lock would move back, while this run adds ${addsNew.join(", ")}; rerun the update with group enabled so bump.ts starts from the group (safe to repeat)`,
        );
      }
      if (await branchHasFile(gh, branch, lockPath, combined.text)) {
        written = current;
        break;
      }
    }
    const { data: baseCommit } = await request(gh, `read branch '${base}' of ${fullName(gh.repo)}`, () =>
      octokit.rest.repos.getCommit({ ...gh.repo, ref: `heads/${base}`, per_page: 1 }),
    );
    const { data: tree } = await request(gh, "create the git tree", () =>
      octokit.rest.git.createTree({
        ...gh.repo,
        base_tree: baseCommit.commit.tree.sha,
        tree: [{ path: lockPath, mode: "100644", type: "blob", content: combined.text }],
      }),
    );
    const prText = await text();
    // As on a per-input branch: base first (the diff is flake.lock alone), old head second (so the
    // non-forced ref update fails if anyone moved the branch since we read it); no author: Verified.
    const parents = current ? [baseCommit.sha, current.sha] : [baseCommit.sha];
    const { data: commit } = await request(gh, "create the commit", () =>
      octokit.rest.git.createCommit({ ...gh.repo, message: commitMessage(prText), tree: tree.sha, parents }),
    );
    try {
      if (current) {
        // As on a per-input branch (OpenPrOptions.disarmOnMove): never armed at a head not judged.
        if (armed !== undefined && opts.disarmOnMove) {
          await disableAutoMerge(octokit, armed.node_id, `#${armed.number}`);
          armed = undefined;
        }
        await octokit.rest.git.updateRef({
          ...gh.repo,
          ref: `heads/${branch}`,
          sha: commit.sha,
          force: false,
        });
      } else {
        await octokit.rest.git.createRef({ ...gh.repo, ref: `refs/heads/${branch}`, sha: commit.sha });
      }
      written = { sha: commit.sha, text: prText, members: parseGroupMarker(prText.body) ?? {} };
      wrote = true;
    } catch (error) {
      if (statusOf(error) !== 422)
        throw describeGitHubError(error, `move branch '${branch}'`, fullName(gh.repo));
      current = await readGroupHead(gh, branch);
    }
  }
  if (written === undefined) {
    throw new RuntimeError(
      `branch '${branch}' kept moving under ${SWAP_ATTEMPTS} attempts (concurrent runs); rerun, it is safe to repeat`,
    );
  }
  if (existing) {
    await syncText(gh, existing, branch, written);
    const detail = wrote ? written.text.title : `#${existing.number} already proposes this flake.lock`;
    return [result(wrote ? "updated" : "unchanged", detail, existing)];
  }
  const { pr, created } = await createOrFind(gh, branch, base, written.text, opts);
  return [result(created ? "created" : wrote ? "updated" : "unchanged", written.text.title, pr)];
}

interface OpenPull {
  number: number;
  html_url: string;
  title: string;
  body: string | null;
  node_id: string;
  auto_merge?: unknown;
}

/**
 * `next` with the computed host impact section of `shown` when both name the same members at the
 * same revs: the section still describes the lock the pull request proposes.
 */
export function carryGroupSection(shown: string | null | undefined, next: string): string {
  const section = computedSection(shown);
  if (section === undefined || computedSection(next) !== undefined) return next;
  const [before, after] = [parseGroupMarker(shown), parseGroupMarker(next)];
  if (before === undefined || after === undefined || !sameMembers(before, after)) return next;
  return replaceSection(next, section);
}

/** Make the PR's text match the branch head, re-reading the head after the write (lib/pr/lifecycle.ts's rule). */
async function syncText(gh: RepositoryClient, pr: OpenPull, branch: string, head: GroupHead): Promise<void> {
  let target = head;
  let shown: PrText = { title: pr.title, body: pr.body ?? "" };
  for (let attempt = 0; attempt < SWAP_ATTEMPTS; attempt++) {
    const text = { title: target.text.title, body: carryGroupSection(shown.body, target.text.body) };
    if (shown.title !== text.title || shown.body !== text.body) {
      await request(gh, `update pull request #${pr.number}`, () =>
        gh.octokit.rest.pulls.update({ ...gh.repo, pull_number: pr.number, ...text }),
      );
      shown = text;
    }
    const now = await readGroupHead(gh, branch);
    if (now === undefined || now.sha === target.sha) return;
    target = now;
  }
}

async function createOrFind(
  gh: RepositoryClient,
  branch: string,
  base: string,
  text: PrText,
  opts: OpenPrOptions,
): Promise<{ pr: { number: number; html_url: string }; created: boolean }> {
  let pr: OpenPull;
  let created = true;
  try {
    ({ data: pr } = await gh.octokit.rest.pulls.create({
      ...gh.repo,
      head: branch,
      base,
      ...text,
      draft: opts.draft,
    }));
  } catch (error) {
    // 422: a concurrent run opened it first (or our own earlier answer was lost).
    if (statusOf(error) !== 422)
      throw describeGitHubError(error, "open the grouped pull request", fullName(gh.repo));
    const found = await openPullOf(gh, branch);
    if (found === undefined)
      throw describeGitHubError(error, "open the grouped pull request", fullName(gh.repo));
    pr = found;
    created = false;
    const head = await readGroupHead(gh, branch);
    if (head) await syncText(gh, pr, branch, head);
  }
  if (created && opts.labels.length > 0) {
    // Labels that do not exist yet are created by GitHub when added to an issue.
    await request(gh, `label pull request #${pr.number}`, () =>
      gh.octokit.rest.issues.addLabels({ ...gh.repo, issue_number: pr.number, labels: [...opts.labels] }),
    );
  }
  if (created && opts.reviewers.length > 0) {
    await request(gh, `request reviewers on #${pr.number}`, () =>
      gh.octokit.rest.pulls.requestReviewers({
        ...gh.repo,
        pull_number: pr.number,
        reviewers: [...opts.reviewers],
      }),
    );
  }
  return { pr, created };
}

/** Close the grouped PR (comment first, branch deleted after) when the base holds every member. */
async function closeIfCovered(
  gh: RepositoryClient,
  pr: OpenPull,
  branch: string,
  base: string,
  lockPath: string,
  opts: OpenPrOptions,
): Promise<PullRequestResult> {
  const head = await readGroupHead(gh, branch);
  const members = head?.members ?? parseGroupMarker(pr.body) ?? {};
  const names = Object.keys(members).join(", ");
  const keep = { input: names, operation: "none" as const, number: pr.number, url: pr.html_url };
  const entries = Object.entries(members);
  if (entries.length === 0) return { ...keep, detail: `#${pr.number} lists no members; left as it is` };
  const baseLock = await readBaseLock(gh, base, lockPath);
  const missing: string[] = [];
  for (const [input, rev] of entries) {
    if (!(await holdsMember(gh.octokit, baseLock, input, rev))) missing.push(input);
  }
  if (missing.length > 0) {
    return { ...keep, detail: `#${pr.number} still proposes ${missing.join(", ")}, which '${base}' lacks` };
  }
  if (opts.dryRun) return { ...keep, operation: "closed", detail: `dry run: would close #${pr.number}` };
  // An armed PR could still merge between the comment and the close.
  if (pr.auto_merge) await disableAutoMerge(gh.octokit, pr.node_id, `#${pr.number}`);
  const list = entries.map(([input, rev]) => `\`${input}\` \`${rev.slice(0, 12)}\``).join(", ");
  await request(gh, `comment on #${pr.number}`, () =>
    gh.octokit.rest.issues.createComment({
      ...gh.repo,
      issue_number: pr.number,
      body: `Closing: the base branch already locks every input this pull request proposes (${list}), or newer.`,
    }),
  );
  await request(gh, `close #${pr.number}`, () =>
    gh.octokit.rest.pulls.update({ ...gh.repo, pull_number: pr.number, state: "closed" }),
  );
  try {
    await gh.octokit.rest.git.deleteRef({ ...gh.repo, ref: `heads/${branch}` });
  } catch (error) {
    if (statusOf(error) !== 404 && statusOf(error) !== 422) {
      throw describeGitHubError(error, `delete branch '${branch}'`, fullName(gh.repo));
    }
  }
  return { ...keep, operation: "closed", detail: `closed #${pr.number}: '${base}' already holds ${names}` };
}

/**
 * Land the grouped pull request by auto-merge (lib/pr/land.ts's landTarget): only while the branch head's
 * marker names exactly this run's members and revs, so the head armed or merged is the one this run
 * wrote and host impact evaluated; held when host impact reports a failed host for any member.
 */
export function landGroupAuto(gh: RepositoryClient, report: Report, opts: AutoOptions): Promise<LandResult> {
  const members: Members = {};
  for (const change of report.inputs) members[change.name] = revOf(change);
  const branch = groupBranch(opts.branchPrefix);
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

/**
 * A flake-bump pull request's lifecycle, the same for one input's and for the grouped one: open it
 * (or find the one a concurrent run, or our own lost answer, opened) with labels, reviewers and draft
 * applied alike, keep its text matching its branch head, and close it once the base covers what it
 * proposes. What differs between the kinds is a value, the Target. Safe to repeat and safe to race:
 * the text is made to match the branch head, re-read after every write, so concurrent runs converge
 * on the newest commit.
 *
 * The per-input pull requests (a rolling branch per input, lib/pr/branch.ts) are driven from here;
 * the grouped one from lib/pr/group.ts.
 */

import { UsageError } from "../core/errors.ts";
import { fullName, type GitHubRepository } from "../core/ids.ts";
import { type InputChange, lockUnmoved, type Report, revOf, type Skipped } from "../flake/report.ts";
import {
  defaultBranch,
  describeGitHubError,
  type Octokit,
  type RepositoryClient,
  request,
  statusOf,
} from "../github/client.ts";
import { commitsBetween, isOlderOn, sameOrNewer } from "../github/upstream.ts";
import {
  type BranchHead,
  branchHolds,
  deleteBranch,
  gitlinksLacking,
  headAt,
  headSha,
  type OpenPull,
  openPullOf,
  swapBranch,
} from "./branch.ts";
import { type BaseCommit, bumpChanges, SWAP_ATTEMPTS } from "./commit.ts";
import { disableAutoMerge } from "./land.ts";
import {
  type BodyInput,
  bodyForHead,
  branchName,
  carrySection,
  changeTitle,
  type PrText,
  parseHeadMarker,
  parseMarker,
  prBody,
  RELEASE_NOTES_LIMIT,
  type ReleaseNotes,
  sameInputAndRev,
} from "./text.ts";

export type Operation = "created" | "updated" | "unchanged" | "closed" | "none";

export interface PullRequestResult {
  input: string;
  operation: Operation;
  number?: number;
  url?: string;
  /** Why, in one line, for the log and the step summary. */
  detail: string;
}

export interface OpenPrOptions {
  repo: GitHubRepository;
  /** Base branch; default: the repository's default branch. */
  base?: string;
  branchPrefix: string;
  /** A group of the policy file: its pull request is on `<prefix>group/<name>`, not `<prefix>all`. */
  groupName?: string;
  labels: readonly string[];
  reviewers: readonly string[];
  draft: boolean;
  dryRun: boolean;
  /** The body's closing sentence (lib/impact/text.ts's DEFAULT_DEPLOY_SENTENCE when absent). */
  footer?: string;
  /**
   * Disarm an open pull request's auto-merge before its branch moves to a new head (the open step of
   * `merge: auto`): armed, GitHub could merge the new head as soon as its checks pass, before host
   * impact judged it. The land step arms it again at the head it judged.
   */
  disarmOnMove?: boolean;
}

// ---------------------------------------------------------------------------------------------
// The lifecycle over a target

/** A branch head as its pull request shows it: the commit and the text its message carries. */
export interface Head {
  sha: string;
  text: PrText;
}

/** Whether the base covers what an open pull request proposes; `comment` (closing it) when it does. */
export interface Coverage {
  /** What the result names. */
  input: string;
  detail: string;
  comment?: string;
}

/**
 * What one flake-bump pull request is about, whichever kind: its branch, the body its head gets, how
 * its marker tells two proposals apart, how its head is read, and when the base covers it.
 */
export interface Target<H extends Head> {
  /** What results name: the input, or the grouped pull request's members. */
  input: string;
  branch: string;
  /** The pull request body for a branch head: the head's text, with what this kind adds to it. */
  body: (head: H) => string;
  /** Do the two bodies' markers propose the same (a computed host impact section then carries over)? */
  sameProposal: (shown: string | null | undefined, next: string) => boolean;
  /** The branch head after a text write: `known` when it did not move, undefined when it is gone. */
  reread: (known: H) => Promise<H | undefined>;
  /** Whether the base already holds what the open pull request proposes (see closeIfCovered). */
  covered: (pr: OpenPull) => Promise<Coverage>;
}

/** A result about one pull request. */
export function resultFor(
  input: string,
  operation: Operation,
  detail: string,
  pr?: { number: number; html_url: string },
): PullRequestResult {
  return { input, operation, detail, ...(pr ? { number: pr.number, url: pr.html_url } : {}) };
}

/**
 * Refuse a report open-pr may not act on: a dry-run report's locks were never written, so only a
 * dry run may read it (the action's `dry-run` input runs both scripts that way).
 */
export function checkReport(report: Report, opts: { dryRun: boolean }): void {
  if (report.dryRun && report.changed && !opts.dryRun) {
    throw new UsageError(
      "the report comes from a --dry-run; run bump.ts without --dry-run before opening a pull request",
    );
  }
}

/** Where flake.lock is committed in the repository, which a flake outside git does not have. */
export function lockPathOf(report: Report): string {
  const lockPath = report.flake.lockPath;
  if (lockPath === undefined) {
    throw new UsageError(
      `the flake in ${report.flake.dir} is not in a git repository, so there is no path to commit flake.lock at; run bump.ts in a clone of the repository`,
    );
  }
  return lockPath;
}

/**
 * Make the PR's title and body match the branch head, re-reading the head after each write so a
 * run that wrote an older text repairs it (see the module comment). A run that writes nothing
 * cannot have overwritten a newer text, so it needs no re-read.
 */
export async function syncText<H extends Head>(
  gh: RepositoryClient,
  target: Target<H>,
  number: number,
  head: H,
  shown: PrText | undefined,
): Promise<void> {
  let at = head;
  let current = shown;
  for (let attempt = 0; attempt < SWAP_ATTEMPTS; attempt++) {
    // The host impact section outlives a rewrite that keeps what it was computed for.
    const wanted = {
      title: at.text.title,
      body: carrySection(current?.body, target.body(at), target.sameProposal),
    };
    if (current?.title === wanted.title && current.body === wanted.body) return;
    await request(gh, `update pull request #${number}`, () =>
      gh.octokit.rest.pulls.update({ ...gh.repo, pull_number: number, ...wanted }),
    );
    current = wanted;
    const now = await target.reread(at);
    if (now === undefined || now.sha === at.sha) return;
    at = now;
  }
}

const shownText = (pr: OpenPull): PrText => ({ title: pr.title, body: pr.body ?? "" });

/**
 * Open the pull request for a branch head just written, or find the one that is already open: a
 * concurrent run's, or ours from an attempt whose answer was lost (a timeout, a dropped connection),
 * which then still lacks its labels. Labels go on every pull request that lacks them, reviewers on
 * the one this run created; a found one has its text made to match the head.
 */
export async function createOrFind<H extends Head>(
  gh: RepositoryClient,
  target: Target<H>,
  base: string,
  head: H,
  opts: OpenPrOptions,
): Promise<{ pr: { number: number; html_url: string }; created: boolean }> {
  const opened = await openPull(gh, target, base, head, opts);
  if ("created" in opened) {
    await decorate(gh, opened.created.number, opts, { labels: true, reviewers: true });
    // A PR created from the head we wrote needs no sync: a run that moves the branch after us finds
    // this PR and syncs it itself.
    return { pr: opened.created, created: true };
  }
  const { found } = opened;
  const labels = found.labels.map((label) => label.name);
  const unlabeled = opts.labels.some((label) => !labels.includes(label));
  await decorate(gh, found.number, opts, { labels: unlabeled, reviewers: false });
  // One found after a 422 may show anyone's text.
  await syncText(gh, target, found.number, head, shownText(found));
  return { pr: found, created: false };
}

/** Ask GitHub to open the pull request; on 422 (it is open already: never two for one branch) find it. */
async function openPull<H extends Head>(
  gh: RepositoryClient,
  target: Target<H>,
  base: string,
  head: H,
  opts: OpenPrOptions,
): Promise<{ created: { number: number; html_url: string } } | { found: OpenPull }> {
  try {
    const { data } = await gh.octokit.rest.pulls.create({
      ...gh.repo,
      head: target.branch,
      base,
      title: head.text.title,
      body: target.body(head),
      draft: opts.draft,
      maintainer_can_modify: false,
    });
    return { created: data };
  } catch (error) {
    const found = statusOf(error) === 422 ? await openPullOf(gh, target.branch) : undefined;
    if (found === undefined) {
      throw describeGitHubError(error, `open the pull request for '${target.branch}'`, fullName(gh.repo));
    }
    return { found };
  }
}

async function decorate(
  gh: RepositoryClient,
  number: number,
  opts: OpenPrOptions,
  what: { labels: boolean; reviewers: boolean },
): Promise<void> {
  if (what.labels && opts.labels.length > 0) {
    // Labels that do not exist yet are created by GitHub when added to an issue.
    await request(gh, `label pull request #${number}`, () =>
      gh.octokit.rest.issues.addLabels({ ...gh.repo, issue_number: number, labels: [...opts.labels] }),
    );
  }
  if (what.reviewers && opts.reviewers.length > 0) {
    await request(gh, `request reviewers on #${number}`, () =>
      gh.octokit.rest.pulls.requestReviewers({
        ...gh.repo,
        pull_number: number,
        reviewers: [...opts.reviewers],
      }),
    );
  }
}

/**
 * Close an open pull request once the base covers what it proposes (target.covered): auto-merge
 * disarmed first (an armed PR could still merge between the comment and the close), a comment
 * saying why, the close, and its branch deleted.
 */
export async function closeIfCovered<H extends Head>(
  gh: RepositoryClient,
  target: Target<H>,
  pr: OpenPull,
  opts: { dryRun: boolean },
): Promise<PullRequestResult> {
  const coverage = await target.covered(pr);
  const { input, detail, comment } = coverage;
  if (comment === undefined) return resultFor(input, "none", detail, pr);
  if (opts.dryRun) return resultFor(input, "closed", `dry run: would close #${pr.number}`, pr);
  if (pr.auto_merge) await disableAutoMerge(gh.octokit, pr.node_id, `#${pr.number}`);
  await request(gh, `comment on #${pr.number}`, () =>
    gh.octokit.rest.issues.createComment({ ...gh.repo, issue_number: pr.number, body: comment }),
  );
  await request(gh, `close #${pr.number}`, () =>
    gh.octokit.rest.pulls.update({ ...gh.repo, pull_number: pr.number, state: "closed" }),
  );
  await deleteBranch(gh, target.branch);
  return resultFor(input, "closed", detail, pr);
}

/** The base branch: the one asked for, else the open pull request's, else the repository's default. */
export async function baseOf(
  gh: RepositoryClient,
  opts: OpenPrOptions,
  existing: OpenPull | undefined,
): Promise<string> {
  return opts.base ?? existing?.base.ref ?? (await defaultBranch(gh));
}

// ---------------------------------------------------------------------------------------------
// One input's pull request

/**
 * The branch head as the PR listing tells it: when the body's head marker names the listing's
 * `head.sha`, the body was written for exactly that commit, so its rev marker is that commit's rev.
 */
function headFromListing(pr: OpenPull): BranchHead | undefined {
  const { head, body } = parseHeadMarker(pr.body);
  const rev = parseMarker(body)?.rev;
  if (head?.sha !== pr.head.sha || rev === undefined) return undefined;
  return { sha: head.sha, text: { title: pr.title, body }, rev, base: head.base };
}

/**
 * One input's pull request on `flake-bump/<input>`. `skip`, when nothing moved for the input: its
 * pull request is covered once the base locks its rev or a newer one.
 */
export function inputTarget(
  gh: RepositoryClient,
  input: string,
  prefix: string,
  skip?: Skipped,
): Target<BranchHead> {
  const branch = branchName(input, prefix);
  return {
    input,
    branch,
    body: (head) => bodyForHead(head.text.body, head),
    sameProposal: sameInputAndRev,
    reread: async (known) => {
      const now = await headSha(gh, branch);
      if (now === undefined) return undefined;
      return now === known.sha ? known : headAt(gh, branch, now);
    },
    covered: async (pr) => {
      const keep = { input, detail: skip?.message ?? `#${pr.number} is not covered by the base` };
      const marker = parseMarker(pr.body);
      const current = skip?.current;
      if (!marker || !current || skip === undefined) return keep;
      if (!(await sameOrNewer(isOlderOn(gh.octokit), skip.github, current, marker.rev))) return keep;
      const lacking = await gitlinksLacking(gh, pr, { base: pr.base.ref, paths: skip.submodules ?? [] }, [
        { rev: marker.rev, github: skip.github },
      ]);
      if (lacking.length > 0) {
        return {
          input,
          detail: `#${pr.number} still moves the submodule ${lacking.join(", ")}, which '${pr.base.ref}' does not hold at ${marker.rev.slice(0, 12)}`,
        };
      }
      return {
        input,
        detail: `closed #${pr.number}: the base already holds ${current.slice(0, 12)}`,
        comment: `Closing: the base branch already locks \`${input}\` at \`${current.slice(0, 12)}\`, which includes \`${marker.rev.slice(0, 12)}\`.`,
      };
    },
  };
}

class PullRequests {
  private base: Promise<string> | undefined;
  private readonly gh: RepositoryClient;

  constructor(
    private readonly octokit: Octokit,
    private readonly opts: OpenPrOptions,
  ) {
    this.gh = { octokit, repo: opts.repo };
  }

  private openByBranch: Promise<Map<string, OpenPull> | undefined> | undefined;

  /**
   * The open PR of a flake-bump branch, from one listing of the repository's open PRs (100 a page): a
   * nightly run over 50 inputs then asks once, not 50 times. Used for the first look only; after a
   * conflict openPullOf asks GitHub again.
   */
  async firstLook(branch: string): Promise<OpenPull | undefined> {
    this.openByBranch ??= (async () => {
      const byBranch = new Map<string, OpenPull>();
      for (let page = 1; page <= 10; page++) {
        const { data } = await request(this.gh, `list pull requests of ${fullName(this.opts.repo)}`, () =>
          this.octokit.rest.pulls.list({ ...this.opts.repo, state: "open", per_page: 100, page }),
        );
        for (const pr of data) {
          if (pr.head.repo?.full_name === pr.base.repo.full_name) byBranch.set(pr.head.ref, pr);
        }
        if (data.length < 100) return byBranch;
      }
      return undefined; // over 1000 open PRs: ask per branch instead
    })();
    const known = await this.openByBranch;
    return known === undefined ? openPullOf(this.gh, branch) : known.get(branch);
  }

  /** The base branch, the repository's default read once for every input. */
  baseBranch(existing: OpenPull | undefined): Promise<string> {
    if (this.opts.base !== undefined || existing !== undefined) return baseOf(this.gh, this.opts, existing);
    this.base ??= baseOf(this.gh, this.opts, undefined);
    return this.base;
  }

  async open(
    change: InputChange,
    lockPath: string,
    checkoutOf: (base: string) => BaseCommit | undefined = () => undefined,
  ): Promise<PullRequestResult> {
    const target = inputTarget(this.gh, change.name, this.opts.branchPrefix);
    const { branch } = target;
    const rev = revOf(change);
    const existing = await this.firstLook(branch);
    const result = (
      operation: Operation,
      detail: string,
      pr?: OpenPull | { number: number; html_url: string },
    ) => resultFor(change.name, operation, detail, pr);
    if (
      existing &&
      parseMarker(existing.body)?.rev === rev &&
      (await branchHolds(
        this.gh,
        branch,
        bumpChanges(lockPath, change.lock.text, { inputs: [change], flakeNix: change.flakeNix?.text }),
      ))
    ) {
      return result("unchanged", `#${existing.number} already proposes ${rev.slice(0, 12)}`, existing);
    }
    if (this.opts.dryRun) {
      return result(
        existing ? "updated" : "created",
        `dry run: would ${existing ? `update #${existing.number}` : "open a pull request"} for ${rev.slice(0, 12)}`,
      );
    }
    const base = await this.baseBranch(existing);
    const commits = upstreamCommits(this.octokit, change);
    const text = async (): Promise<PrText> => ({
      title: changeTitle(change),
      body: prBody({
        change,
        ...(await commits()),
        ...(change.release === undefined ? {} : { releases: await releaseNotes(this.octokit, change) }),
        ...(this.opts.footer === undefined ? {} : { footer: this.opts.footer }),
      }),
    });
    const known = existing === undefined ? undefined : headFromListing(existing);
    const checkout = checkoutOf(base);
    const { head, wrote } = await swapBranch(this.gh, {
      branch,
      base,
      path: lockPath,
      change,
      text,
      ...(known === undefined ? {} : { known }),
      branchLikelyExists: existing !== undefined,
      ...(checkout === undefined ? {} : { checkout }),
      ...(existing?.auto_merge && this.opts.disarmOnMove
        ? { beforeMove: () => disableAutoMerge(this.octokit, existing.node_id, `#${existing.number}`) }
        : {}),
      ancestors: async () => new Set((await commits()).commits?.map((commit) => commit.sha)),
    });

    if (existing) {
      await syncText(this.gh, target, existing.number, head, shownText(existing));
      if (!wrote && head.rev !== rev) {
        return result(
          "unchanged",
          `#${existing.number} already proposes ${head.rev?.slice(0, 12)}, which includes ${rev.slice(0, 12)}`,
          existing,
        );
      }
      return result(wrote ? "updated" : "unchanged", head.text.title, existing);
    }
    const { pr, created } = await createOrFind(this.gh, target, base, head, this.opts);
    return result(created ? "created" : wrote ? "updated" : "unchanged", head.text.title, pr);
  }

  /**
   * Nothing moved for this input: its open pull request, if any, is obsolete once the base already
   * holds its rev or a newer one. Close it with a comment and delete its branch.
   */
  async closeIfObsolete(skip: Skipped): Promise<PullRequestResult> {
    const target = inputTarget(this.gh, skip.name, this.opts.branchPrefix, skip);
    const existing = await this.firstLook(target.branch);
    if (!existing) return resultFor(skip.name, "none", skip.message);
    return closeIfCovered(this.gh, target, existing, this.opts);
  }
}

/** The report's upstream commits when bump.ts read them for exactly this move, else one compare, asked once. */
function upstreamCommits(octokit: Octokit, change: InputChange): () => Promise<Omit<BodyInput, "change">> {
  let listed: Promise<Omit<BodyInput, "change">> | undefined;
  return () => {
    const known = change.upstream;
    listed ??= lockUnmoved(change)
      ? Promise.resolve({}) // the lock stays: no upstream commits to list
      : known !== undefined && known.from === change.from?.rev && known.to === change.to.rev
        ? Promise.resolve({ commits: known.commits, totalCommits: known.total })
        : commitsBetween(octokit, change.name, change.github, change.from?.rev, change.to.rev);
    return listed;
  };
}

/**
 * The GitHub release notes of each tag a release move takes in (`GET …/releases/tags/{tag}`, at most
 * RELEASE_NOTES_LIMIT of the newest); a tag without a release, or an answer that fails, has none.
 */
async function releaseNotes(octokit: Octokit, change: InputChange): Promise<ReleaseNotes[]> {
  const { release, github } = change;
  if (release === undefined || github === undefined) return [];
  const tags = [...(release.between ?? []), release.to].slice(-RELEASE_NOTES_LIMIT);
  return Promise.all(
    tags.map(async (tag) => {
      try {
        const { data } = await octokit.rest.repos.getReleaseByTag({
          owner: github.owner,
          repo: github.repo,
          tag,
        });
        return { tag, notes: data.body ?? undefined };
      } catch {
        // Notes are a courtesy: a tag without a release (404) or a failing answer leaves them out.
        return { tag, notes: undefined };
      }
    }),
  );
}

/** Open, update or close the pull requests a report calls for; one result per input. */
export async function openPullRequests(
  octokit: Octokit,
  report: Report,
  opts: OpenPrOptions,
): Promise<PullRequestResult[]> {
  const prs = new PullRequests(octokit, opts);
  const results: PullRequestResult[] = [];
  checkReport(report, opts);
  if (report.changed) {
    const lockPath = lockPathOf(report);
    // The checkout bump.ts ran in, when it is the base branch: the commit the lock was computed from.
    const head = report.flake.head;
    const checkout = (base: string) =>
      head?.branch === base ? { sha: head.commit, tree: head.tree } : undefined;
    for (const change of report.inputs) results.push(await prs.open(change, lockPath, checkout));
  }
  return [...results, ...(await closeObsolete(prs, report))];
}

async function closeObsolete(prs: PullRequests, report: Report): Promise<PullRequestResult[]> {
  const results: PullRequestResult[] = [];
  for (const skip of report.skipped) {
    if (skip.reason === "pinned") continue;
    results.push(await prs.closeIfObsolete(skip));
  }
  return results;
}

/**
 * Only the closing half of openPullRequests: the open pull request of each input the base already
 * locks at its rev or newer is closed. `merge: direct` opens none, but a pull request left from
 * before the switch to direct commits would otherwise stay open forever.
 */
export function closeObsoletePullRequests(
  octokit: Octokit,
  report: Report,
  opts: OpenPrOptions,
): Promise<PullRequestResult[]> {
  return closeObsolete(new PullRequests(octokit, opts), report);
}

/**
 * The pull request of each input: open, update or close it so it shows what its rolling branch holds
 * (lib/pr/branch.ts moves the branch). Safe to repeat and safe to race: the PR text is made to match the
 * branch head, re-read after every write, so concurrent runs converge on the newest commit.
 */

import { UsageError } from "../core/errors.ts";
import { fullName, type GitHubRepository } from "../core/ids.ts";
import { type InputChange, type Report, revOf, type Skipped } from "../flake/report.ts";
import {
  describeGitHubError,
  type Octokit,
  type RepositoryClient,
  type RestEndpointMethodTypes,
  request,
  statusOf,
} from "../github/client.ts";
import { commitsBetween, isOlderOn, sameOrNewer } from "../github/upstream.ts";
import {
  type BaseCommit,
  type BranchHead,
  branchHasFile,
  deleteBranch,
  headAt,
  headSha,
  openPullOf,
  SWAP_ATTEMPTS,
  swapBranch,
} from "./branch.ts";
import { disableAutoMerge } from "./land.ts";
import {
  type BodyInput,
  bodyForHead,
  branchName,
  carrySection,
  type PrText,
  parseHeadMarker,
  parseMarker,
  prBody,
  prTitle,
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
  labels: readonly string[];
  reviewers: readonly string[];
  draft: boolean;
  dryRun: boolean;
  /** The body's closing sentence (pr-text's DEFAULT_FOOTER when absent). */
  footer?: string;
  /**
   * Disarm an open pull request's auto-merge before its branch moves to a new head (the open step of
   * `merge: auto`): armed, GitHub could merge the new head as soon as its checks pass, before host
   * impact judged it. The land step arms it again at the head it judged.
   */
  disarmOnMove?: boolean;
}

type PullRequest = RestEndpointMethodTypes["pulls"]["list"]["response"]["data"][number];

/**
 * The branch head as the PR listing tells it: when the body's head marker names the listing's
 * `head.sha`, the body was written for exactly that commit, so its rev marker is that commit's rev.
 */
function headFromListing(pr: PullRequest): BranchHead | undefined {
  const { head, body } = parseHeadMarker(pr.body);
  const rev = parseMarker(body)?.rev;
  if (head?.sha !== pr.head.sha || rev === undefined) return undefined;
  return { sha: head.sha, text: { title: pr.title, body }, rev, base: head.base };
}

class PullRequests {
  private defaultBranch: string | undefined;
  private readonly gh: RepositoryClient;

  constructor(
    private readonly octokit: Octokit,
    private readonly opts: OpenPrOptions,
  ) {
    this.gh = { octokit, repo: opts.repo };
  }

  private get repo(): GitHubRepository {
    return this.opts.repo;
  }

  private get name(): string {
    return fullName(this.repo);
  }

  private call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return request(this.gh, what, fn);
  }

  private openByBranch: Promise<Map<string, PullRequest> | undefined> | undefined;

  /**
   * The open PR of a flake-bump branch, from one listing of the repository's open PRs (100 a page): a
   * nightly run over 50 inputs then asks once, not 50 times. Used for the first look only; after a
   * conflict `findOpen` asks GitHub again.
   */
  async firstLook(branch: string): Promise<PullRequest | undefined> {
    this.openByBranch ??= (async () => {
      const byBranch = new Map<string, PullRequest>();
      for (let page = 1; page <= 10; page++) {
        const { data } = await this.call(`list pull requests of ${this.name}`, () =>
          this.octokit.rest.pulls.list({ ...this.repo, state: "open", per_page: 100, page }),
        );
        for (const pr of data) {
          if (pr.head.repo?.full_name === pr.base.repo.full_name) byBranch.set(pr.head.ref, pr);
        }
        if (data.length < 100) return byBranch;
      }
      return undefined; // over 1000 open PRs: ask per branch instead
    })();
    const known = await this.openByBranch;
    return known === undefined ? this.findOpen(branch) : known.get(branch);
  }

  findOpen(branch: string): Promise<PullRequest | undefined> {
    return openPullOf(this.gh, branch);
  }

  async baseBranch(existing: PullRequest | undefined): Promise<string> {
    if (this.opts.base) return this.opts.base;
    if (existing) return existing.base.ref;
    if (this.defaultBranch === undefined) {
      const { data } = await this.call(`read ${this.name}`, () =>
        this.octokit.rest.repos.get({ ...this.repo }),
      );
      this.defaultBranch = data.default_branch;
    }
    return this.defaultBranch;
  }

  /**
   * Make the PR's title and body match the branch head, re-reading the head after each write so a
   * run that wrote an older text repairs it (see the module comment). A run that writes nothing
   * cannot have overwritten a newer text, so it needs no re-read.
   */
  async syncText(number: number, branch: string, head: BranchHead, shown: PrText | undefined): Promise<void> {
    let target = head;
    let current = shown;
    for (let attempt = 0; attempt < SWAP_ATTEMPTS; attempt++) {
      // The host impact section outlives a rewrite that keeps the rev it was computed for.
      const wanted = {
        title: target.text.title,
        body: carrySection(current?.body, bodyForHead(target.text.body, target)),
      };
      if (current?.title === wanted.title && current.body === wanted.body) return;
      await this.call(`update pull request #${number}`, () =>
        this.octokit.rest.pulls.update({ ...this.repo, pull_number: number, ...wanted }),
      );
      current = wanted;
      const now = await headSha(this.gh, branch);
      if (now === undefined || now === target.sha) return;
      target = await headAt(this.gh, branch, now);
    }
  }

  async open(
    change: InputChange,
    lockPath: string,
    checkoutOf: (base: string) => BaseCommit | undefined = () => undefined,
  ): Promise<PullRequestResult> {
    const branch = branchName(change.name, this.opts.branchPrefix);
    const rev = revOf(change);
    const existing = await this.firstLook(branch);
    const result = (operation: Operation, pr: { number: number; html_url: string }, detail: string) => ({
      input: change.name,
      operation,
      number: pr.number,
      url: pr.html_url,
      detail,
    });
    if (
      existing &&
      parseMarker(existing.body)?.rev === rev &&
      (await branchHasFile(this.gh, branch, lockPath, change.lock.text))
    ) {
      return result("unchanged", existing, `#${existing.number} already proposes ${rev.slice(0, 12)}`);
    }
    if (this.opts.dryRun) {
      return {
        input: change.name,
        operation: existing ? "updated" : "created",
        detail: `dry run: would ${existing ? `update #${existing.number}` : "open a pull request"} for ${rev.slice(0, 12)}`,
      };
    }
    const base = await this.baseBranch(existing);
    // The report's list when bump.ts read it for exactly this move, else one compare, asked once.
    let listed: Promise<Omit<BodyInput, "change">> | undefined;
    const commits = () => {
      const known = change.upstream;
      listed ??=
        known !== undefined && known.from === change.from?.rev && known.to === change.to.rev
          ? Promise.resolve({ commits: known.commits, totalCommits: known.total })
          : commitsBetween(this.octokit, change.name, change.github, change.from?.rev, change.to.rev);
      return listed;
    };
    const text = async (): Promise<PrText> => ({
      title: prTitle(change.name, rev),
      body: prBody({
        change,
        ...(await commits()),
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
      await this.syncText(existing.number, branch, head, {
        title: existing.title,
        body: existing.body ?? "",
      });
      if (!wrote && head.rev !== rev) {
        return result(
          "unchanged",
          existing,
          `#${existing.number} already proposes ${head.rev?.slice(0, 12)}, which includes ${rev.slice(0, 12)}`,
        );
      }
      return result(wrote ? "updated" : "unchanged", existing, head.text.title);
    }
    const { pr, created, labels, shown } = await this.createPull(branch, base, head);
    // A PR found after a 422 may be ours from an attempt whose answer was lost (timeout, dropped
    // connection): it then still lacks its labels.
    const unlabeled = this.opts.labels.some((label) => !labels.includes(label));
    if (created || unlabeled) await this.decorate(pr.number, { reviewers: created });
    // A PR we just created from the head we wrote needs no sync: a run that moves the branch after
    // us finds this PR and syncs it itself. One we found after a 422 may show anyone's text.
    if (!created) await this.syncText(pr.number, branch, head, shown);
    return result(created ? "created" : wrote ? "updated" : "unchanged", pr, head.text.title);
  }

  private async decorate(number: number, opts: { reviewers: boolean }): Promise<void> {
    if (this.opts.labels.length > 0) {
      // Labels that do not exist yet are created by GitHub when added to an issue.
      await this.call(`label pull request #${number}`, () =>
        this.octokit.rest.issues.addLabels({
          ...this.repo,
          issue_number: number,
          labels: [...this.opts.labels],
        }),
      );
    }
    if (opts.reviewers && this.opts.reviewers.length > 0) {
      await this.call(`request reviewers on #${number}`, () =>
        this.octokit.rest.pulls.requestReviewers({
          ...this.repo,
          pull_number: number,
          reviewers: [...this.opts.reviewers],
        }),
      );
    }
  }

  private async createPull(
    branch: string,
    base: string,
    head: BranchHead,
  ): Promise<{
    pr: { number: number; html_url: string };
    created: boolean;
    labels: string[];
    shown?: PrText;
  }> {
    try {
      const { data } = await this.octokit.rest.pulls.create({
        ...this.repo,
        head: branch,
        base,
        title: head.text.title,
        body: bodyForHead(head.text.body, head),
        draft: this.opts.draft,
        maintainer_can_modify: false,
      });
      return { pr: data, created: true, labels: [] };
    } catch (error) {
      // Another run opened it between our lookup and now: use theirs (never two PRs for one input).
      if (statusOf(error) === 422) {
        const raced = await this.findOpen(branch);
        if (raced) {
          return {
            pr: raced,
            created: false,
            labels: raced.labels.map((label) => label.name),
            shown: { title: raced.title, body: raced.body ?? "" },
          };
        }
      }
      throw describeGitHubError(error, `open the pull request for '${branch}'`, this.name);
    }
  }

  /**
   * Nothing moved for this input: its open pull request, if any, is obsolete once the base already
   * holds its rev or a newer one. Close it with a comment and delete its branch.
   */
  async closeIfObsolete(skip: Skipped): Promise<PullRequestResult> {
    const branch = branchName(skip.name, this.opts.branchPrefix);
    const existing = await this.firstLook(branch);
    if (!existing) return { input: skip.name, operation: "none", detail: skip.message };
    const keep = {
      input: skip.name,
      operation: "none" as const,
      number: existing.number,
      url: existing.html_url,
    };
    const marker = parseMarker(existing.body);
    const current = skip.current;
    if (!marker || !current) return { ...keep, detail: skip.message };
    const obsolete = await sameOrNewer(isOlderOn(this.octokit), skip.github, current, marker.rev);
    if (!obsolete) return { ...keep, detail: skip.message };
    if (this.opts.dryRun) {
      return { ...keep, operation: "closed", detail: `dry run: would close #${existing.number}` };
    }
    // An armed PR could still merge between the comment and the close.
    if (existing.auto_merge) await disableAutoMerge(this.octokit, existing.node_id, `#${existing.number}`);
    await this.call(`comment on #${existing.number}`, () =>
      this.octokit.rest.issues.createComment({
        ...this.repo,
        issue_number: existing.number,
        body: `Closing: the base branch already locks \`${skip.name}\` at \`${current.slice(0, 12)}\`, which includes \`${marker.rev.slice(0, 12)}\`.`,
      }),
    );
    await this.call(`close #${existing.number}`, () =>
      this.octokit.rest.pulls.update({ ...this.repo, pull_number: existing.number, state: "closed" }),
    );
    await deleteBranch(this.gh, branch);
    return {
      ...keep,
      operation: "closed",
      detail: `closed #${existing.number}: the base already holds ${current.slice(0, 12)}`,
    };
  }
}

/** Open, update or close the pull requests a report calls for; one result per input. */
export async function openPullRequests(
  octokit: Octokit,
  report: Report,
  opts: OpenPrOptions,
): Promise<PullRequestResult[]> {
  const prs = new PullRequests(octokit, opts);
  const results: PullRequestResult[] = [];
  // A dry-run report's locks were never written, so only a dry run may read it (the action's
  // `dry-run` input runs both scripts that way).
  if (report.dryRun && report.changed && !opts.dryRun) {
    throw new UsageError(
      "the report comes from a --dry-run; run bump.ts without --dry-run before opening a pull request",
    );
  }
  if (report.changed) {
    const lockPath = report.flake.lockPath;
    if (lockPath === undefined) {
      throw new UsageError(
        `the flake in ${report.flake.dir} is not in a git repository, so there is no path to commit flake.lock at; run bump.ts in a clone of the repository`,
      );
    }
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

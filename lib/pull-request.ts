/**
 * From a bump report to one pull request per input, through the REST Git Data API: no checkout, no
 * git push, no token in a remote URL. Commits carry no author or committer, so GitHub signs them.
 *
 * Safe to repeat and safe to race. The rolling branch `flake-bump/<input>` is the single source of
 * truth: its head commit's message is the PR's title and body (with the marker naming the rev), and
 * it only ever moves by compare-and-swap — a new head has the old head as a parent and is written
 * with a non-forced update, which GitHub refuses when the branch moved meanwhile. A run that loses
 * the swap re-reads the branch and either steps back (the branch already holds a newer commit, by
 * ancestry) or tries again. The PR text is then made to match the branch head, re-read after every
 * write, so concurrent runs converge on the newest commit.
 */
import { createHash } from "node:crypto";
import { info } from "./actions.ts";
import { RuntimeError, UsageError } from "./cli.ts";
import { describeGitHubError, type Octokit, type RestEndpointMethodTypes, statusOf } from "./github.ts";
import { branchName, type CompareCommit, parseMarker, prBody, prTitle } from "./pr-text.ts";
import type { InputChange, Report, Skipped } from "./report.ts";
import { compare } from "./upstream.ts";

export type Operation = "created" | "updated" | "unchanged" | "closed" | "none";

export interface PullRequestResult {
  input: string;
  operation: Operation;
  number?: number;
  url?: string;
  /** Why, in one line, for the log and the step summary. */
  detail: string;
}

export interface Repo {
  owner: string;
  repo: string;
}

export interface OpenPrOptions {
  repo: Repo;
  /** Base branch; default: the repository's default branch. */
  base?: string;
  branchPrefix: string;
  labels: readonly string[];
  reviewers: readonly string[];
  draft: boolean;
  dryRun: boolean;
}

type PullRequest = RestEndpointMethodTypes["pulls"]["list"]["response"]["data"][number];

/** How often a run retries after losing the compare-and-swap on the branch to a concurrent run. */
const SWAP_ATTEMPTS = 6;

/** Git's blob id for a text, so a branch's file can be compared without downloading it. */
export function gitBlobSha(text: string): string {
  const body = Buffer.from(text, "utf8");
  return createHash("sha1")
    .update(Buffer.concat([Buffer.from(`blob ${body.length}\0`), body]))
    .digest("hex");
}

/** Parse `OWNER/REPO` or a git remote URL (https or ssh) of a GitHub repository. */
export function parseRepo(text: string): Repo | undefined {
  const match =
    /^(?:https?:\/\/[^/]+\/|git@[^:]+:|ssh:\/\/git@[^/]+\/)?([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+?)(?:\.git)?\/?$/.exec(
      text.trim(),
    );
  if (!match?.[1] || !match[2]) return undefined;
  // `.` and `..` would climb out of /repos/{owner}/{repo} in every URL built from them.
  if ([match[1], match[2]].some((part) => part === "." || part === "..")) return undefined;
  return { owner: match[1], repo: match[2] };
}

/** A PR's title and body as the branch head commit's message carries them. */
export interface PrText {
  title: string;
  body: string;
}

export function commitMessage(text: PrText): string {
  return `${text.title}\n\n${text.body}`;
}

export function textFromMessage(message: string): PrText {
  const [title = "", ...rest] = message.split("\n");
  return { title, body: rest.join("\n").replace(/^\n/, "") };
}

interface BranchHead {
  sha: string;
  text: PrText;
  rev: string | undefined;
}

class PullRequests {
  private defaultBranch: string | undefined;

  constructor(
    private readonly octokit: Octokit,
    private readonly opts: OpenPrOptions,
  ) {}

  private get repo(): Repo {
    return this.opts.repo;
  }

  private get name(): string {
    return `${this.repo.owner}/${this.repo.repo}`;
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw describeGitHubError(error, what, this.name);
    }
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

  async findOpen(branch: string): Promise<PullRequest | undefined> {
    const { data } = await this.call(`list pull requests of ${this.name}`, () =>
      this.octokit.rest.pulls.list({
        ...this.repo,
        state: "open",
        head: `${this.repo.owner}:${branch}`,
        per_page: 10,
      }),
    );
    return data.find((pr) => pr.head.ref === branch);
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

  /** Does `branch` already hold exactly this lock file? One request, no download. */
  async branchHasLock(branch: string, path: string, text: string): Promise<boolean> {
    try {
      const { data } = await this.octokit.rest.repos.getContent({ ...this.repo, path, ref: branch });
      return !Array.isArray(data) && data.type === "file" && data.sha === gitBlobSha(text);
    } catch (error) {
      if (statusOf(error) === 404) return false;
      throw describeGitHubError(error, `read ${path} on ${branch}`, this.name);
    }
  }

  async headSha(branch: string): Promise<string | undefined> {
    try {
      const { data } = await this.octokit.rest.git.getRef({ ...this.repo, ref: `heads/${branch}` });
      return data.object.sha;
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw describeGitHubError(error, `read branch '${branch}'`, this.name);
    }
  }

  async head(branch: string): Promise<BranchHead | undefined> {
    const sha = await this.headSha(branch);
    if (sha === undefined) return undefined;
    const { data } = await this.call(`read the head of '${branch}'`, () =>
      this.octokit.rest.git.getCommit({ ...this.repo, commit_sha: sha }),
    );
    return { sha, text: textFromMessage(data.message), rev: parseMarker(data.message)?.rev };
  }

  /** Is `rev` an ancestor of `than` upstream? An unknown answer counts as "no". */
  async isOlder(source: Repo | undefined, rev: string, than: string): Promise<boolean> {
    if (source === undefined) return false;
    try {
      const order = await compare(this.octokit, source, than, rev, 1);
      return order.status === "behind";
    } catch {
      return false;
    }
  }

  async upstreamCommits(change: InputChange): Promise<{ commits?: CompareCommit[]; totalCommits?: number }> {
    const from = change.from?.rev;
    const to = change.to.rev;
    if (!change.github || !from || !to) return {};
    try {
      const result = await compare(this.octokit, change.github, from, to);
      return { commits: result.commits, totalCommits: result.total };
    } catch (error) {
      info(
        `note: no commit list for '${change.name}' (${change.github.owner}/${change.github.repo}: ${statusOf(error) || "no answer"})`,
      );
      return {};
    }
  }

  /**
   * Put a commit with the new lock (on the base's tree) at the branch head by compare-and-swap.
   * Returns the branch head afterwards, ours or a newer one a concurrent run wrote.
   */
  async swapBranch(
    branch: string,
    base: string,
    path: string,
    change: InputChange,
    text: () => Promise<PrText>,
    opts: { branchLikelyExists: boolean },
  ): Promise<{ head: BranchHead; wrote: boolean }> {
    const rev = change.to.rev ?? change.to.ref;
    // Without an open PR the branch rarely exists: try to create it and read it only if that fails.
    let current = opts.branchLikelyExists ? await this.head(branch) : undefined;
    for (let attempt = 0; attempt < SWAP_ATTEMPTS; attempt++) {
      if (
        current?.rev !== undefined &&
        current.rev !== rev &&
        (await this.isOlder(change.github, rev, current.rev))
      ) {
        return { head: current, wrote: false };
      }
      if (current?.rev === rev && (await this.branchHasLock(branch, path, change.lock.text))) {
        return { head: current, wrote: false };
      }
      const { data: baseCommit } = await this.call(`read branch '${base}' of ${this.name}`, () =>
        this.octokit.rest.repos.getCommit({ ...this.repo, ref: `heads/${base}`, per_page: 1 }),
      );
      const { data: tree } = await this.call("create the git tree", () =>
        this.octokit.rest.git.createTree({
          ...this.repo,
          base_tree: baseCommit.commit.tree.sha,
          tree: [{ path, mode: "100644", type: "blob", content: change.lock.text }],
        }),
      );
      const prText = await text();
      // Parents: the base first (so the PR's diff is exactly flake.lock), then the old head, which
      // makes the update a fast-forward that GitHub applies only if nobody moved the branch since.
      const parents = current ? [baseCommit.sha, current.sha] : [baseCommit.sha];
      // No author or committer: GitHub then signs the commit as the token's identity ("Verified").
      const { data: commit } = await this.call("create the commit", () =>
        this.octokit.rest.git.createCommit({
          ...this.repo,
          message: commitMessage(prText),
          tree: tree.sha,
          parents,
        }),
      );
      try {
        if (current) {
          await this.octokit.rest.git.updateRef({
            ...this.repo,
            ref: `heads/${branch}`,
            sha: commit.sha,
            force: false,
          });
        } else {
          await this.octokit.rest.git.createRef({
            ...this.repo,
            ref: `refs/heads/${branch}`,
            sha: commit.sha,
          });
        }
        return { head: { sha: commit.sha, text: prText, rev }, wrote: true };
      } catch (error) {
        // 422: the branch appeared or moved since we read it — another run got there first.
        if (statusOf(error) !== 422) throw describeGitHubError(error, `move branch '${branch}'`, this.name);
        current = await this.head(branch);
      }
    }
    throw new RuntimeError(
      `branch '${branch}' kept moving under ${SWAP_ATTEMPTS} attempts (concurrent runs); rerun, it is safe to repeat`,
    );
  }

  /**
   * Make the PR's title and body match the branch head, re-reading the head after each write so a
   * run that wrote an older text repairs it (see the module comment).
   */
  async syncText(number: number, branch: string, head: BranchHead, shown: PrText | undefined): Promise<void> {
    let target = head;
    let current = shown;
    for (let attempt = 0; attempt < SWAP_ATTEMPTS; attempt++) {
      if (current?.title !== target.text.title || current.body !== target.text.body) {
        await this.call(`update pull request #${number}`, () =>
          this.octokit.rest.pulls.update({ ...this.repo, pull_number: number, ...target.text }),
        );
        current = target.text;
      }
      const now = await this.headSha(branch);
      if (now === undefined || now === target.sha) return;
      const moved = await this.head(branch);
      if (moved === undefined) return;
      target = moved;
    }
  }

  async open(change: InputChange, lockPath: string): Promise<PullRequestResult> {
    const branch = branchName(change.name, this.opts.branchPrefix);
    const rev = change.to.rev ?? change.to.ref;
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
      (await this.branchHasLock(branch, lockPath, change.lock.text))
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
    const text = async (): Promise<PrText> => ({
      title: prTitle(change.name, rev),
      body: prBody({ change, ...(await this.upstreamCommits(change)) }),
    });
    const { head, wrote } = await this.swapBranch(branch, base, lockPath, change, text, {
      branchLikelyExists: existing !== undefined,
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
    const { pr, created, labels } = await this.createPull(branch, base, head);
    // A PR found after a 422 may be ours from an attempt whose answer was lost (timeout, dropped
    // connection): it then still lacks its labels.
    const unlabeled = this.opts.labels.some((label) => !labels.includes(label));
    if (created || unlabeled) await this.decorate(pr.number, { reviewers: created });
    // A PR we just created from the head we wrote needs no sync: a run that moves the branch after
    // us finds this PR and syncs it itself. One we found after a 422 may show anyone's text.
    if (!created) await this.syncText(pr.number, branch, head, undefined);
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
  ): Promise<{ pr: { number: number; html_url: string }; created: boolean; labels: string[] }> {
    try {
      const { data } = await this.octokit.rest.pulls.create({
        ...this.repo,
        head: branch,
        base,
        ...head.text,
        draft: this.opts.draft,
        maintainer_can_modify: false,
      });
      return { pr: data, created: true, labels: [] };
    } catch (error) {
      // Another run opened it between our lookup and now: use theirs (never two PRs for one input).
      if (statusOf(error) === 422) {
        const raced = await this.findOpen(branch);
        if (raced) return { pr: raced, created: false, labels: raced.labels.map((label) => label.name) };
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
    const obsolete =
      marker.rev === current ||
      (skip.github !== undefined && (await this.isOlder(skip.github, marker.rev, current)));
    if (!obsolete) return { ...keep, detail: skip.message };
    if (this.opts.dryRun) {
      return { ...keep, operation: "closed", detail: `dry run: would close #${existing.number}` };
    }
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
    try {
      await this.octokit.rest.git.deleteRef({ ...this.repo, ref: `heads/${branch}` });
    } catch (error) {
      if (statusOf(error) !== 404 && statusOf(error) !== 422) {
        throw describeGitHubError(error, `delete branch '${branch}'`, this.name);
      }
    }
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
  if (report.dryRun && report.changed) {
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
    for (const change of report.inputs) results.push(await prs.open(change, lockPath));
  }
  for (const skip of report.skipped) {
    if (skip.reason === "pinned") continue;
    results.push(await prs.closeIfObsolete(skip));
  }
  return results;
}

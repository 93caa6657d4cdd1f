/**
 * From a bump report to one pull request per input, through the REST Git Data API: no checkout, no
 * git push, no token in a remote URL. Commits carry no author or committer, so GitHub signs them.
 * Every step is safe to repeat: re-running the same report changes nothing and opens nothing.
 */
import { createHash } from "node:crypto";
import { info } from "./actions.ts";
import { UsageError } from "./cli.ts";
import { describeGitHubError, type Octokit, type RestEndpointMethodTypes } from "./github.ts";
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

/** Git's blob id for a text, so a branch's file can be compared without downloading it. */
export function gitBlobSha(text: string): string {
  const body = Buffer.from(text, "utf8");
  return createHash("sha1")
    .update(Buffer.concat([Buffer.from(`blob ${body.length}\0`), body]))
    .digest("hex");
}

function statusOf(error: unknown): number {
  return typeof error === "object" && error !== null && "status" in error ? Number(error.status) : 0;
}

/** Parse `OWNER/REPO` or a git remote URL (https or ssh) of a GitHub repository. */
export function parseRepo(text: string): Repo | undefined {
  const match =
    /^(?:https?:\/\/[^/]+\/|git@[^:]+:|ssh:\/\/git@[^/]+\/)?([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+?)(?:\.git)?\/?$/.exec(
      text.trim(),
    );
  if (!match?.[1] || !match[2]) return undefined;
  return { owner: match[1], repo: match[2] };
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

  /** Commit the lock on top of the base branch's head and point `branch` at it. */
  async commitLock(
    branch: string,
    base: string,
    path: string,
    change: InputChange,
    branchExists: boolean,
  ): Promise<string> {
    // One request for both the base head and its tree (the branches endpoint would need two).
    const { data: baseCommit } = await this.call(`read branch '${base}' of ${this.name}`, () =>
      this.octokit.rest.repos.getCommit({ ...this.repo, ref: `heads/${base}`, per_page: 1 }),
    );
    const baseSha = baseCommit.sha;
    const { data: tree } = await this.call("create the git tree", () =>
      this.octokit.rest.git.createTree({
        ...this.repo,
        base_tree: baseCommit.commit.tree.sha,
        tree: [{ path, mode: "100644", type: "blob", content: change.lock.text }],
      }),
    );
    const rev = change.to.rev ?? change.to.ref;
    const message = [
      prTitle(change.name, rev),
      "",
      `${change.from?.ref ?? "(new input)"}`,
      `→ ${change.to.ref}`,
    ].join("\n");
    // No author or committer: GitHub then signs the commit as the token's identity ("Verified").
    const { data: commit } = await this.call("create the commit", () =>
      this.octokit.rest.git.createCommit({ ...this.repo, message, tree: tree.sha, parents: [baseSha] }),
    );
    await this.pointBranch(branch, commit.sha, branchExists);
    return commit.sha;
  }

  async pointBranch(branch: string, sha: string, exists: boolean): Promise<void> {
    const update = () =>
      this.call(`update branch '${branch}'`, () =>
        this.octokit.rest.git.updateRef({ ...this.repo, ref: `heads/${branch}`, sha, force: true }),
      );
    if (exists) {
      await update();
      return;
    }
    try {
      await this.octokit.rest.git.createRef({ ...this.repo, ref: `refs/heads/${branch}`, sha });
    } catch (error) {
      // A branch left behind by an earlier, interrupted run: take it over.
      if (statusOf(error) === 422) await update();
      else throw describeGitHubError(error, `create branch '${branch}'`, this.name);
    }
  }

  /** Is `rev` an ancestor of `than` upstream? Unknown answers count as "no" (the PR moves on). */
  async isOlder(source: Repo, rev: string, than: string): Promise<boolean> {
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

  async open(change: InputChange, lockPath: string): Promise<PullRequestResult> {
    const branch = branchName(change.name, this.opts.branchPrefix);
    const rev = change.to.rev ?? change.to.ref;
    const existing = await this.findOpen(branch);
    if (
      existing &&
      parseMarker(existing.body)?.rev === rev &&
      (await this.branchHasLock(branch, lockPath, change.lock.text))
    ) {
      return {
        input: change.name,
        operation: "unchanged",
        number: existing.number,
        url: existing.html_url,
        detail: `#${existing.number} already proposes ${rev.slice(0, 12)}`,
      };
    }
    if (existing && change.github && change.to.rev) {
      const proposed = parseMarker(existing.body)?.rev;
      // Dispatches arrive out of order: never move an open PR back to an older commit.
      if (proposed && proposed !== rev && (await this.isOlder(change.github, rev, proposed))) {
        return {
          input: change.name,
          operation: "unchanged",
          number: existing.number,
          url: existing.html_url,
          detail: `#${existing.number} already proposes ${proposed.slice(0, 12)}, which includes ${rev.slice(0, 12)}`,
        };
      }
    }
    const title = prTitle(change.name, rev);
    if (this.opts.dryRun) {
      return {
        input: change.name,
        operation: existing ? "updated" : "created",
        detail: `dry run: would ${existing ? `update #${existing.number}` : "open a pull request"}: ${title}`,
      };
    }
    const base = await this.baseBranch(existing);
    const body = prBody({ change, ...(await this.upstreamCommits(change)) });
    await this.commitLock(branch, base, lockPath, change, existing !== undefined);

    if (existing) {
      await this.call(`update pull request #${existing.number}`, () =>
        this.octokit.rest.pulls.update({ ...this.repo, pull_number: existing.number, title, body }),
      );
      return {
        input: change.name,
        operation: "updated",
        number: existing.number,
        url: existing.html_url,
        detail: title,
      };
    }
    const created = await this.createPull(branch, base, title, body);
    if (this.opts.labels.length > 0) {
      // Labels that do not exist yet are created by GitHub when added to an issue.
      await this.call(`label pull request #${created.number}`, () =>
        this.octokit.rest.issues.addLabels({
          ...this.repo,
          issue_number: created.number,
          labels: [...this.opts.labels],
        }),
      );
    }
    if (this.opts.reviewers.length > 0) {
      await this.call(`request reviewers on #${created.number}`, () =>
        this.octokit.rest.pulls.requestReviewers({
          ...this.repo,
          pull_number: created.number,
          reviewers: [...this.opts.reviewers],
        }),
      );
    }
    return {
      input: change.name,
      operation: "created",
      number: created.number,
      url: created.html_url,
      detail: title,
    };
  }

  private async createPull(branch: string, base: string, title: string, body: string) {
    try {
      const { data } = await this.octokit.rest.pulls.create({
        ...this.repo,
        head: branch,
        base,
        title,
        body,
        draft: this.opts.draft,
        maintainer_can_modify: false,
      });
      return data;
    } catch (error) {
      // Another run opened it between our lookup and now: use theirs (never two PRs for one input).
      if (statusOf(error) === 422) {
        const raced = await this.findOpen(branch);
        if (raced) {
          await this.call(`update pull request #${raced.number}`, () =>
            this.octokit.rest.pulls.update({ ...this.repo, pull_number: raced.number, title, body }),
          );
          return raced;
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
    const existing = await this.findOpen(branch);
    if (!existing) return { input: skip.name, operation: "none", detail: skip.message };
    const marker = parseMarker(existing.body);
    const current = skip.current;
    if (!marker || !current) {
      return {
        input: skip.name,
        operation: "none",
        number: existing.number,
        url: existing.html_url,
        detail: skip.message,
      };
    }
    let obsolete = marker.rev === current;
    const source = skip.github;
    if (!obsolete && source) {
      try {
        const order = await compare(this.octokit, source, marker.rev, current, 1);
        obsolete = order.status === "ahead" || order.status === "identical";
      } catch {
        // Cannot tell: leave the PR for a human rather than close it wrongly.
        obsolete = false;
      }
    }
    if (!obsolete) {
      return {
        input: skip.name,
        operation: "none",
        number: existing.number,
        url: existing.html_url,
        detail: skip.message,
      };
    }
    if (this.opts.dryRun) {
      return {
        input: skip.name,
        operation: "closed",
        number: existing.number,
        detail: `dry run: would close #${existing.number}`,
      };
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
      if (statusOf(error) !== 404 && statusOf(error) !== 422)
        throw describeGitHubError(error, `delete branch '${branch}'`, this.name);
    }
    return {
      input: skip.name,
      operation: "closed",
      number: existing.number,
      url: existing.html_url,
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

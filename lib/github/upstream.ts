/**
 * Questions about an upstream repository on GitHub, answered with the compare API
 * (`GET /repos/{o}/{r}/compare/{base}...{head}`): is a dispatched SHA on the tracked branch, is it newer
 * than the locked one, and which commits lie between two revs.
 */
import { info, warn } from "../core/actions.ts";
import { RuntimeError, UsageError } from "../core/errors.ts";
import { fullName, type GitHubRepository } from "../core/ids.ts";
import type { GitHubSource } from "../flake/flakeref.ts";
import type { Upstream, UpstreamCommit } from "../flake/report.ts";
import { describeGitHubError, type Octokit, type RestEndpointMethodTypes, statusOf } from "./client.ts";

export type CompareCommit =
  RestEndpointMethodTypes["repos"]["compareCommitsWithBasehead"]["response"]["data"]["commits"][number];

type CompareStatus = "ahead" | "behind" | "identical" | "diverged";

type CompareFile = NonNullable<
  RestEndpointMethodTypes["repos"]["compareCommitsWithBasehead"]["response"]["data"]["files"]
>[number];

/**
 * One compare answer of `from...to` as the native engine's eligibility reads it: its status and its
 * changed files (GitHub lists at most 300, on the first page whatever `per_page` is), so the question
 * "did flake.nix or flake.lock change?" needs no second request for the same two revs.
 */
export interface Compared {
  from: string;
  to: string;
  status: string;
  files: ReadonlyArray<{ filename: string; previous_filename?: string | undefined }>;
}

/**
 * Decides, before Nix runs, whether an exact target rev may be locked for a GitHub input. Returns
 * "ahead" when the lock already holds a newer commit (dispatches arrive out of order).
 */
export type TargetCheck = (args: {
  input: string;
  source: GitHubSource;
  lockedRev: string | undefined;
  rev: string;
  /** Receives the upstream commits from the locked rev to `rev` when the check read them anyway. */
  upstream?: (list: Upstream) => void;
  /** Receives the compare of the locked rev and `rev` (status, changed files) when the check made it. */
  compared?: (answer: Compared) => void;
}) => Promise<"ok" | "ahead">;

export async function compare(
  octokit: Octokit,
  source: GitHubRepository,
  base: string,
  head: string,
  perPage = 100,
): Promise<{ status: CompareStatus; commits: CompareCommit[]; total: number; files: CompareFile[] }> {
  const { data } = await octokit.rest.repos.compareCommitsWithBasehead({
    owner: source.owner,
    repo: source.repo,
    basehead: `${base}...${head}`,
    per_page: perPage,
  });
  return { status: data.status, commits: data.commits, total: data.total_commits, files: data.files ?? [] };
}

/** A compare API commit in the report's shape: only what the PR body reads, the subject line only. */
export function slimCommit(commit: CompareCommit): UpstreamCommit {
  const name = commit.commit.author?.name;
  return {
    sha: commit.sha,
    commit: {
      message: commit.commit.message.split("\n", 1)[0] ?? "",
      author: commit.commit.author ? (name === undefined ? {} : { name }) : null,
    },
    author: commit.author?.login ? { login: commit.author.login } : null,
  };
}

/** Is `rev` an ancestor of `than` upstream? An unknown answer counts as "no". */
export async function isOlder(
  octokit: Octokit,
  source: GitHubRepository | undefined,
  rev: string,
  than: string,
): Promise<boolean> {
  if (source === undefined) return false;
  try {
    const order = await compare(octokit, source, than, rev, 1);
    return order.status === "behind";
  } catch {
    return false;
  }
}

/** isOlder's question with the client already given, as bump.ts takes it injected. */
export function isOlderOn(
  octokit: Octokit,
): (source: GitHubRepository | undefined, rev: string, than: string) => Promise<boolean> {
  return (source, rev, than) => isOlder(octokit, source, rev, than);
}

/**
 * Does `held` already hold `rev`: the same commit, or a newer one (`rev` an ancestor of it upstream)?
 * Nothing held holds nothing; an order GitHub cannot tell counts as "no".
 * @param isOlder the order question (isOlderOn(octokit), or an injected one).
 */
export async function sameOrNewer<S>(
  isOlder: (source: S, rev: string, than: string) => Promise<boolean>,
  source: S,
  held: string | undefined,
  rev: string,
): Promise<boolean> {
  return held !== undefined && (held === rev || (await isOlder(source, rev, held)));
}

/**
 * The upstream commits from `from` to `to` (oldest first) and their total, for a pull request body.
 * Without an answer the body simply lists none, so a failure is a note, not an error.
 */
export async function commitsBetween(
  octokit: Octokit,
  input: string,
  source: GitHubRepository | undefined,
  from: string | undefined,
  to: string | undefined,
): Promise<{ commits?: CompareCommit[]; totalCommits?: number }> {
  if (!source || !from || !to) return {};
  try {
    const result = await compare(octokit, source, from, to);
    return { commits: result.commits, totalCommits: result.total };
  } catch (error) {
    info(`note: no commit list for '${input}' (${fullName(source)}: ${statusOf(error) || "no answer"})`);
    return {};
  }
}

/**
 * The check bump.ts runs before pinning a dispatched SHA of a GitHub input:
 * - the SHA must be reachable from the input's tracked branch (its `ref`, else the default branch).
 *   GitHub serves a fork's commits through the parent's URL, so without this a dispatch could lock
 *   foreign code under the upstream's name;
 * - an SHA older than the locked rev is "ahead" (dispatches arrive out of order); diverged is an error.
 * Without a token it still tries (public repos answer); if GitHub refuses for want of one it warns
 * once and lets the bump go on, since a local user named the rev themselves. No answer at all is an
 * error (bump.ts --no-verify skips the check instead).
 */
export function targetCheck(octokit: Octokit, opts: { authenticated: boolean }): TargetCheck {
  return async ({ input, source, lockedRev, rev, upstream, compared }) => {
    const name = fullName(source);
    try {
      let branch = source.ref;
      if (branch === undefined) {
        const { data } = await octokit.rest.repos.get({ owner: source.owner, repo: source.repo });
        branch = data.default_branch;
      }
      const onBranch = await compare(octokit, source, branch, rev, 1);
      if (onBranch.status !== "behind" && onBranch.status !== "identical") {
        throw new UsageError(
          `commit ${rev} is not on branch '${branch}' of ${name} (a fork's or an unpushed commit); refusing to lock it as '${input}' — dispatch a commit from that branch`,
        );
      }
      if (lockedRev === undefined) return "ok";
      // A full page, not one commit: the same answer then also lists the commits for the PR body.
      const order = await compare(octokit, source, lockedRev, rev);
      if (order.status === "behind" || order.status === "identical") return "ahead";
      if (order.status === "diverged") {
        throw new RuntimeError(
          `commit ${rev} and the locked ${lockedRev.slice(0, 12)} of '${input}' have diverged (was ${name}'s history rewritten?); bump it by hand with 'bun scripts/bump.ts ${input} --rev ${rev}' after checking`,
        );
      }
      upstream?.({ from: lockedRev, to: rev, commits: order.commits.map(slimCommit), total: order.total });
      compared?.({ from: lockedRev, to: rev, status: order.status, files: order.files });
      return "ok";
    } catch (error) {
      if (error instanceof UsageError || error instanceof RuntimeError) throw error;
      const status = statusOf(error);
      const what = `verify commit ${rev.slice(0, 12)} against ${name}`;
      // No answer at all says nothing about the commit (nor about the token): locking it anyway is
      // the user's explicit choice, never a fallback.
      if (status === 0) {
        throw new RuntimeError(
          `${describeGitHubError(error, what).message}, or pass --no-verify to lock it without checking that it is on the tracked branch`,
        );
      }
      if (!opts.authenticated && (status === 401 || status === 403 || status === 404)) {
        warn(
          `could not verify ${rev.slice(0, 12)} against ${name} without a token (${status}); set GH_TOKEN to check that dispatched commits are on the tracked branch`,
        );
        return "ok";
      }
      if (status === 404) {
        throw new UsageError(
          `commit ${rev} or repository ${name} is unknown to GitHub (404); dispatch a commit that exists on the tracked branch, or give the token read access to ${name}`,
        );
      }
      throw describeGitHubError(error, what);
    }
  };
}

/** A commit of an upstream branch and its committer date (ms), newest first as GitHub lists them. */
export interface DatedSha {
  sha: string;
  committedAt: number;
}

/**
 * The newest `perPage` commits of `from` (a branch, tag or SHA; default: the default branch), or
 * only those committed at `until` or before: GitHub filters the list by committer date.
 */
export async function datedHistory(
  octokit: Octokit,
  source: GitHubRepository,
  opts: { from?: string | undefined; until?: Date; perPage: number },
): Promise<DatedSha[]> {
  const { data } = await octokit.rest.repos.listCommits({
    owner: source.owner,
    repo: source.repo,
    ...(opts.from === undefined ? {} : { sha: opts.from }),
    ...(opts.until === undefined ? {} : { until: opts.until.toISOString() }),
    per_page: opts.perPage,
  });
  return data.flatMap((commit) => {
    const date = commit.commit.committer?.date;
    return date === undefined ? [] : [{ sha: commit.sha, committedAt: Date.parse(date) }];
  });
}

/**
 * Questions about an upstream repository on GitHub, answered with the compare API
 * (`GET /repos/{o}/{r}/compare/{base}...{head}`): is a dispatched SHA on the tracked branch, is it newer
 * than the locked one, and which commits lie between two revs.
 */
import { warn } from "./actions.ts";
import type { TargetCheck } from "./bump.ts";
import { RuntimeError, UsageError } from "./cli.ts";
import type { GitHubSource } from "./flakeref.ts";
import { describeGitHubError, type Octokit, statusOf } from "./github.ts";
import type { CompareCommit } from "./pr-text.ts";

type CompareStatus = "ahead" | "behind" | "identical" | "diverged";

export async function compare(
  octokit: Octokit,
  source: Pick<GitHubSource, "owner" | "repo">,
  base: string,
  head: string,
  perPage = 100,
): Promise<{ status: CompareStatus; commits: CompareCommit[]; total: number }> {
  const { data } = await octokit.rest.repos.compareCommitsWithBasehead({
    owner: source.owner,
    repo: source.repo,
    basehead: `${base}...${head}`,
    per_page: perPage,
  });
  return { status: data.status, commits: data.commits, total: data.total_commits };
}

/**
 * The check bump.ts runs before pinning a dispatched SHA of a GitHub input:
 * - the SHA must be reachable from the input's tracked branch (its `ref`, else the default branch).
 *   GitHub serves a fork's commits through the parent's URL, so without this a dispatch could lock
 *   foreign code under the upstream's name;
 * - an SHA older than the locked rev is "ahead" (dispatches arrive out of order); diverged is an error.
 * Without a token it still tries (public repos answer); if GitHub cannot be asked it warns once and
 * lets the bump go on, since a local user named the rev themselves.
 */
export function targetCheck(octokit: Octokit, opts: { authenticated: boolean }): TargetCheck {
  return async ({ input, source, lockedRev, rev }) => {
    const name = `${source.owner}/${source.repo}`;
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
      const order = await compare(octokit, source, lockedRev, rev, 1);
      if (order.status === "behind" || order.status === "identical") return "ahead";
      if (order.status === "diverged") {
        throw new RuntimeError(
          `commit ${rev} and the locked ${lockedRev.slice(0, 12)} of '${input}' have diverged (was ${name}'s history rewritten?); bump it by hand with 'bun scripts/bump.ts ${input} --rev ${rev}' after checking`,
        );
      }
      return "ok";
    } catch (error) {
      if (error instanceof UsageError || error instanceof RuntimeError) throw error;
      const status = statusOf(error);
      if (!opts.authenticated && (status === 401 || status === 403 || status === 404 || status === 0)) {
        warn(
          `could not verify ${rev.slice(0, 12)} against ${name} without a token (${status || "no answer"}); set GH_TOKEN to check that dispatched commits are on the tracked branch`,
        );
        return "ok";
      }
      if (status === 404) {
        throw new UsageError(
          `commit ${rev} or repository ${name} is unknown to GitHub (404); dispatch a commit that exists on the tracked branch, or give the token read access to ${name}`,
        );
      }
      throw describeGitHubError(error, `verify commit ${rev.slice(0, 12)} against ${name}`);
    }
  };
}

/**
 * The rolling branch `flake-bump/<input>`, moved only by compare-and-swap through the REST Git Data
 * API: no checkout, no git push, no token in a remote URL. Its head commit's message is the pull
 * request's title and body (with the marker naming the rev), so the branch is the single source of
 * truth. A new head has the old head as a parent and is written with a non-forced update, which GitHub
 * refuses when the branch moved meanwhile; a run that loses the swap re-reads the branch and either
 * steps back (the branch already holds a newer commit, by ancestry) or tries again. Commits carry no
 * author or committer, so GitHub signs them.
 */
import { createHash } from "node:crypto";
import { RuntimeError } from "./errors.ts";
import { describeGitHubError, type RepositoryClient, request, statusOf } from "./github.ts";
import { fullName } from "./ids.ts";
import { commitMessage, type PrText, parseMarker, textFromMessage } from "./pr-text.ts";
import type { InputChange } from "./report.ts";
import { isOlder } from "./upstream.ts";

/** How often a run retries after losing the compare-and-swap on the branch to a concurrent run. */
export const SWAP_ATTEMPTS = 6;

export interface BranchHead {
  sha: string;
  text: PrText;
  rev: string | undefined;
}

/** Git's blob id for a text, so a branch's file can be compared without downloading it. */
export function gitBlobSha(text: string): string {
  const body = Buffer.from(text, "utf8");
  return createHash("sha1")
    .update(Buffer.concat([Buffer.from(`blob ${body.length}\0`), body]))
    .digest("hex");
}

/** Does `branch` already hold exactly this file? One request, no download. */
export async function branchHasFile(
  gh: RepositoryClient,
  branch: string,
  path: string,
  text: string,
): Promise<boolean> {
  try {
    const { data } = await gh.octokit.rest.repos.getContent({ ...gh.repo, path, ref: branch });
    return !Array.isArray(data) && data.type === "file" && data.sha === gitBlobSha(text);
  } catch (error) {
    if (statusOf(error) === 404) return false;
    throw describeGitHubError(error, `read ${path} on ${branch}`, fullName(gh.repo));
  }
}

export async function headSha(gh: RepositoryClient, branch: string): Promise<string | undefined> {
  try {
    const { data } = await gh.octokit.rest.git.getRef({ ...gh.repo, ref: `heads/${branch}` });
    return data.object.sha;
  } catch (error) {
    if (statusOf(error) === 404) return undefined;
    throw describeGitHubError(error, `read branch '${branch}'`, fullName(gh.repo));
  }
}

export async function readHead(gh: RepositoryClient, branch: string): Promise<BranchHead | undefined> {
  const sha = await headSha(gh, branch);
  if (sha === undefined) return undefined;
  const { data } = await request(gh, `read the head of '${branch}'`, () =>
    gh.octokit.rest.git.getCommit({ ...gh.repo, commit_sha: sha }),
  );
  return { sha, text: textFromMessage(data.message), rev: parseMarker(data.message)?.rev };
}

export interface Swap {
  branch: string;
  /** The branch the new commit's tree starts from (the pull request's base). */
  base: string;
  /** flake.lock's path in the repository. */
  path: string;
  change: InputChange;
  /** The head commit's message, asked for only when a commit is written. */
  text: () => Promise<PrText>;
  /** Without an open PR the branch rarely exists: try to create it and read it only if that fails. */
  branchLikelyExists: boolean;
}

/**
 * Put a commit with the new lock (on the base's tree) at the branch head by compare-and-swap.
 * Returns the branch head afterwards, ours or a newer one a concurrent run wrote.
 */
export async function swapBranch(
  gh: RepositoryClient,
  swap: Swap,
): Promise<{ head: BranchHead; wrote: boolean }> {
  const { branch, base, path, change } = swap;
  const rev = change.to.rev ?? change.to.ref;
  let current = swap.branchLikelyExists ? await readHead(gh, branch) : undefined;
  for (let attempt = 0; attempt < SWAP_ATTEMPTS; attempt++) {
    if (
      current?.rev !== undefined &&
      current.rev !== rev &&
      (await isOlder(gh.octokit, change.github, rev, current.rev))
    ) {
      return { head: current, wrote: false };
    }
    if (current?.rev === rev && (await branchHasFile(gh, branch, path, change.lock.text))) {
      return { head: current, wrote: false };
    }
    const { data: baseCommit } = await request(gh, `read branch '${base}' of ${fullName(gh.repo)}`, () =>
      gh.octokit.rest.repos.getCommit({ ...gh.repo, ref: `heads/${base}`, per_page: 1 }),
    );
    const { data: tree } = await request(gh, "create the git tree", () =>
      gh.octokit.rest.git.createTree({
        ...gh.repo,
        base_tree: baseCommit.commit.tree.sha,
        tree: [{ path, mode: "100644", type: "blob", content: change.lock.text }],
      }),
    );
    const prText = await swap.text();
    // Parents: the base first (so the PR's diff is exactly flake.lock), then the old head, which
    // makes the update a fast-forward that GitHub applies only if nobody moved the branch since.
    const parents = current ? [baseCommit.sha, current.sha] : [baseCommit.sha];
    // No author or committer: GitHub then signs the commit as the token's identity ("Verified").
    const { data: commit } = await request(gh, "create the commit", () =>
      gh.octokit.rest.git.createCommit({
        ...gh.repo,
        message: commitMessage(prText),
        tree: tree.sha,
        parents,
      }),
    );
    try {
      if (current) {
        await gh.octokit.rest.git.updateRef({
          ...gh.repo,
          ref: `heads/${branch}`,
          sha: commit.sha,
          force: false,
        });
      } else {
        await gh.octokit.rest.git.createRef({
          ...gh.repo,
          ref: `refs/heads/${branch}`,
          sha: commit.sha,
        });
      }
      return { head: { sha: commit.sha, text: prText, rev }, wrote: true };
    } catch (error) {
      // 422: the branch appeared or moved since we read it — another run got there first.
      if (statusOf(error) !== 422)
        throw describeGitHubError(error, `move branch '${branch}'`, fullName(gh.repo));
      current = await readHead(gh, branch);
    }
  }
  throw new RuntimeError(
    `branch '${branch}' kept moving under ${SWAP_ATTEMPTS} attempts (concurrent runs); rerun, it is safe to repeat`,
  );
}

/** Delete a branch; one already gone (404, or 422 "Reference does not exist") is fine. */
export async function deleteBranch(gh: RepositoryClient, branch: string): Promise<void> {
  try {
    await gh.octokit.rest.git.deleteRef({ ...gh.repo, ref: `heads/${branch}` });
  } catch (error) {
    if (statusOf(error) !== 404 && statusOf(error) !== 422) {
      throw describeGitHubError(error, `delete branch '${branch}'`, fullName(gh.repo));
    }
  }
}

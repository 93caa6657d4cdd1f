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
import { RuntimeError } from "../core/errors.ts";
import { fullName } from "../core/ids.ts";
import { type InputChange, revOf } from "../flake/report.ts";
import {
  describeGitHubError,
  type Octokit,
  type RepositoryClient,
  request,
  statusOf,
} from "../github/client.ts";
import { isOlder } from "../github/upstream.ts";
import { commitMessage, type PrText, parseMarker, textFromMessage } from "./text.ts";

/** How often a run retries after losing the compare-and-swap on the branch to a concurrent run. */
export const SWAP_ATTEMPTS = 6;

export interface BranchHead {
  sha: string;
  text: PrText;
  rev: string | undefined;
  /** The head's first parent: the base commit it was built on, when known. */
  base?: string | undefined;
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

/** The branch head at a known commit: its text and rev from the commit message. */
export async function headAt(gh: RepositoryClient, branch: string, sha: string): Promise<BranchHead> {
  const { data } = await request(gh, `read the head of '${branch}'`, () =>
    gh.octokit.rest.git.getCommit({ ...gh.repo, commit_sha: sha }),
  );
  return {
    sha,
    text: textFromMessage(data.message),
    rev: parseMarker(data.message)?.rev,
    base: data.parents[0]?.sha,
  };
}

export async function readHead(gh: RepositoryClient, branch: string): Promise<BranchHead | undefined> {
  const sha = await headSha(gh, branch);
  return sha === undefined ? undefined : headAt(gh, branch, sha);
}

/** A commit and its tree. */
export interface BaseCommit {
  sha: string;
  tree: string;
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
  /**
   * The branch head as the caller already knows it (from the PR listing), instead of reading it; a
   * stale one only costs a lost swap, since the update is a fast-forward from exactly this commit.
   */
  known?: BranchHead;
  /** Without an open PR the branch rarely exists: try to create it and read it only if that fails. */
  branchLikelyExists: boolean;
  /**
   * The base commit the lock was computed from (bump.ts's checkout), used instead of reading the base
   * branch when the branch is new or its head was built on this same commit: never on an older base
   * than the head's, which would revert the base's newer files in the PR. When GitHub does not know
   * it (an unpushed checkout), the base branch is read as without it.
   */
  checkout?: BaseCommit;
  /**
   * Upstream revs known to be ancestors of the target rev (the commits between the locked rev and
   * it): a head at one of them is older without asking the compare API.
   */
  ancestors?: () => Promise<ReadonlySet<string>>;
  /** Runs once, just before an existing branch is moved (not when it is created). */
  beforeMove?: () => Promise<void>;
}

/** 404 or 422 on a tree or commit built on the checkout: GitHub does not have that commit. */
function unknownToGitHub(error: unknown): boolean {
  return statusOf(error) === 404 || statusOf(error) === 422;
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
  const rev = revOf(change);
  let current = swap.known ?? (swap.branchLikelyExists ? await readHead(gh, branch) : undefined);
  let checkout = swap.checkout;
  let beforeMove = swap.beforeMove;
  const readBase = async (): Promise<BaseCommit> => {
    const { data } = await request(gh, `read branch '${base}' of ${fullName(gh.repo)}`, () =>
      gh.octokit.rest.repos.getCommit({ ...gh.repo, ref: `heads/${base}`, per_page: 1 }),
    );
    return { sha: data.sha, tree: data.commit.tree.sha };
  };
  /** The tree and commit on `from`; undefined when `from` is the checkout and GitHub lacks it. */
  const build = async (from: BaseCommit, parents: string[], text: PrText, fromCheckout: boolean) => {
    const step = async <T>(what: string, fn: () => Promise<T>): Promise<T | undefined> => {
      try {
        return await fn();
      } catch (error) {
        if (fromCheckout && unknownToGitHub(error)) return undefined;
        throw describeGitHubError(error, what, fullName(gh.repo));
      }
    };
    const tree = await step("create the git tree", () =>
      gh.octokit.rest.git.createTree({
        ...gh.repo,
        base_tree: from.tree,
        tree: [{ path, mode: "100644", type: "blob", content: change.lock.text }],
      }),
    );
    if (tree === undefined) return undefined;
    // No author or committer: GitHub then signs the commit as the token's identity ("Verified").
    const commit = await step("create the commit", () =>
      gh.octokit.rest.git.createCommit({
        ...gh.repo,
        message: commitMessage(text),
        tree: tree.data.sha,
        parents,
      }),
    );
    return commit?.data.sha;
  };
  for (let attempt = 0; attempt < SWAP_ATTEMPTS; attempt++) {
    if (
      current?.rev !== undefined &&
      current.rev !== rev &&
      !(await swap.ancestors?.())?.has(current.rev) &&
      (await isOlder(gh.octokit, change.github, rev, current.rev))
    ) {
      return { head: current, wrote: false };
    }
    if (current?.rev === rev && (await branchHasFile(gh, branch, path, change.lock.text))) {
      return { head: current, wrote: false };
    }
    const prText = await swap.text();
    // Parents: the base first (so the PR's diff is exactly flake.lock), then the old head, which
    // makes the update a fast-forward that GitHub applies only if nobody moved the branch since.
    const onCheckout =
      checkout !== undefined && (current === undefined || current.base === checkout.sha)
        ? checkout
        : undefined;
    let from = onCheckout ?? (await readBase());
    const parentsOn = (sha: string) => (current ? [sha, current.sha] : [sha]);
    let commitSha = await build(from, parentsOn(from.sha), prText, onCheckout !== undefined);
    if (commitSha === undefined) {
      checkout = undefined;
      from = await readBase();
      commitSha = await build(from, parentsOn(from.sha), prText, false);
    }
    if (commitSha === undefined) continue;
    try {
      if (current) {
        await beforeMove?.();
        beforeMove = undefined;
        await gh.octokit.rest.git.updateRef({
          ...gh.repo,
          ref: `heads/${branch}`,
          sha: commitSha,
          force: false,
        });
      } else {
        await gh.octokit.rest.git.createRef({
          ...gh.repo,
          ref: `refs/heads/${branch}`,
          sha: commitSha,
        });
      }
      return { head: { sha: commitSha, text: prText, rev, base: from.sha }, wrote: true };
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

/** A pull request as the listing answers it: head sha, body, labels and auto-merge state included. */
export type OpenPull = Awaited<ReturnType<Octokit["rest"]["pulls"]["list"]>>["data"][number];

/** The open pull request from `branch` of this repository, if any: one listing filtered by head. */
export async function openPullOf(gh: RepositoryClient, branch: string): Promise<OpenPull | undefined> {
  const { data } = await request(gh, `list the open pull requests of '${branch}'`, () =>
    gh.octokit.rest.pulls.list({
      ...gh.repo,
      state: "open",
      head: `${gh.repo.owner}:${branch}`,
      per_page: 10,
    }),
  );
  return data.find((pr) => pr.head.ref === branch);
}

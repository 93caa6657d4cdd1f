/**
 * The one way flake-bump writes to a repository: one commit through the REST Git Data API (a tree on
 * a base commit's tree, then a commit), moved onto a branch by compare-and-swap. No checkout, no git
 * push, no token in a remote URL. The commit carries no author or committer, so GitHub signs it as
 * the token's identity ("Verified"). The ref is created, or updated without force from exactly the
 * head the commit follows, which GitHub refuses (422) when the branch moved meanwhile: the caller
 * then re-reads the branch and decides again, at most SWAP_ATTEMPTS times.
 */
import { posix } from "node:path";
import { RuntimeError } from "../core/errors.ts";
import { fullName } from "../core/ids.ts";
import { gitlinkMoves } from "../flake/companions.ts";
import type { InputChange } from "../flake/report.ts";
import { describeGitHubError, type RepositoryClient, statusOf } from "../github/client.ts";

/** How often a write is tried after losing the compare-and-swap to a concurrent writer. */
export const SWAP_ATTEMPTS = 6;

/** A commit and its tree. */
export interface BaseCommit {
  sha: string;
  tree: string;
}

/**
 * One path of the new commit's tree: a file with this text (mode 100644), a gitlink (mode 160000:
 * a submodule pinned at this commit, which lives in another repository), or nothing (deleted).
 */
export type PathChange =
  | { path: string; content: string }
  | { path: string; gitlink: string }
  | { path: string; delete: true };

/** flake.nix's path in the repository: beside flake.lock at `lockPath`. */
export function flakeNixPath(lockPath: string): string {
  return posix.join(posix.dirname(lockPath), "flake.nix");
}

/**
 * What a bump's commit changes: flake.lock at `lockPath`; flake.nix beside it when a release edited
 * its tag there (flake.lock then only matches that flake.nix, so the two go in one commit); and the
 * gitlink of each submodule that moves with the inputs (lib/flake/companions.ts). Nothing else:
 * `.gitmodules` is not rewritten.
 */
export function bumpChanges(
  lockPath: string,
  lock: string,
  carried: { inputs: readonly Pick<InputChange, "companions">[]; flakeNix?: string | undefined },
): PathChange[] {
  const changes: PathChange[] = [{ path: lockPath, content: lock }];
  if (carried.flakeNix !== undefined)
    changes.push({ path: flakeNixPath(lockPath), content: carried.flakeNix });
  for (const move of gitlinkMoves(carried.inputs)) changes.push({ path: move.path, gitlink: move.to });
  return changes;
}

/** A commit to write: `base`'s tree with `changes` applied, following `head` on the branch. */
export interface NewCommit {
  /** The commit the tree starts from, and the new commit's first parent. */
  base: BaseCommit;
  /**
   * Where to build instead when GitHub does not know `base` (404 or 422 on its tree or commit: an
   * unpushed checkout). Without it, that answer is an error.
   */
  baseIfUnknown?: () => Promise<BaseCommit>;
  /**
   * The branch head now, which the commit follows: its second parent (unless it is the base itself)
   * and the one the non-forced update starts from. Undefined creates the branch.
   */
  head: string | undefined;
  changes: readonly PathChange[];
  message: string;
}

/** A written commit and the base it was built on (`baseIfUnknown`'s when GitHub lacked the first). */
export interface Written {
  sha: string;
  base: BaseCommit;
}

/** One attempt's decision: a result without writing, or the commit to write and its result once moved. */
export type Plan<T> = { done: T } | { write: NewCommit; wrote: (written: Written) => T };

export interface CommitSwap<H, T> {
  branch: string;
  /** The branch head as known before the first attempt, in the caller's terms. */
  head: H;
  /** Decide one attempt from the branch head: stop (nothing to write), or write a commit. */
  plan: (head: H) => Promise<Plan<T>>;
  /**
   * The branch head after a lost swap (GitHub's 422 on the ref). Throws when the 422 means something
   * else than a concurrent write (a branch rule), which only the caller can tell.
   */
  reread: (lost: { error: unknown; commit: NewCommit }) => Promise<H>;
  /** Runs once, just before the branch is first moved (not when it is created). */
  beforeMove?: (() => Promise<void>) | undefined;
}

/** The tree entry GitHub's create-tree takes for a change. */
function treeEntry(change: PathChange) {
  if ("content" in change) {
    return { path: change.path, mode: "100644" as const, type: "blob" as const, content: change.content };
  }
  if ("gitlink" in change) {
    return { path: change.path, mode: "160000" as const, type: "commit" as const, sha: change.gitlink };
  }
  // GitHub deletes the path for a null sha, whatever stood there.
  return { path: change.path, mode: "100644" as const, type: "blob" as const, sha: null };
}

/** GitHub answered 404 or 422 on a tree or commit built on a base it may not know. */
class UnknownBase extends Error {}

/** The tree and commit on `base`; with `lenient`, a 404 or 422 throws UnknownBase instead. */
async function commitOn(
  gh: RepositoryClient,
  base: BaseCommit,
  commit: NewCommit,
  lenient: boolean,
): Promise<string> {
  const step = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (error) {
      if (lenient && (statusOf(error) === 404 || statusOf(error) === 422)) throw new UnknownBase(what);
      throw describeGitHubError(error, what, fullName(gh.repo));
    }
  };
  const tree = await step("create the git tree", () =>
    gh.octokit.rest.git.createTree({
      ...gh.repo,
      base_tree: base.tree,
      tree: commit.changes.map(treeEntry),
    }),
  );
  // Parents: the base first (so a pull request's diff is exactly the changes), then the old head,
  // which makes the update a fast-forward that GitHub applies only if nobody moved the branch since.
  const parents =
    commit.head === undefined || commit.head === base.sha ? [base.sha] : [base.sha, commit.head];
  // No author or committer: GitHub then signs the commit as the token's identity ("Verified").
  const written = await step("create the commit", () =>
    gh.octokit.rest.git.createCommit({ ...gh.repo, message: commit.message, tree: tree.data.sha, parents }),
  );
  return written.data.sha;
}

/** Write the tree and the commit, on `baseIfUnknown`'s base when GitHub does not know the first. */
export async function writeCommit(gh: RepositoryClient, commit: NewCommit): Promise<Written> {
  const fallback = commit.baseIfUnknown;
  try {
    return { sha: await commitOn(gh, commit.base, commit, fallback !== undefined), base: commit.base };
  } catch (error) {
    if (!(error instanceof UnknownBase) || fallback === undefined) throw error;
  }
  const base = await fallback();
  return { sha: await commitOn(gh, base, commit, false), base };
}

/** Create the branch at `sha`, or fast-forward it from `head`; false when GitHub refused with 422. */
async function moveRef(
  gh: RepositoryClient,
  branch: string,
  sha: string,
  head: string | undefined,
): Promise<{ moved: true } | { moved: false; error: unknown }> {
  try {
    if (head === undefined) {
      await gh.octokit.rest.git.createRef({ ...gh.repo, ref: `refs/heads/${branch}`, sha });
    } else {
      await gh.octokit.rest.git.updateRef({ ...gh.repo, ref: `heads/${branch}`, sha, force: false });
    }
    return { moved: true };
  } catch (error) {
    // 422: the branch appeared or moved since it was read — another run got there first.
    if (statusOf(error) !== 422)
      throw describeGitHubError(error, `move branch '${branch}'`, fullName(gh.repo));
    return { moved: false, error };
  }
}

/**
 * Write a commit onto `swap.branch` by compare-and-swap: each attempt plans from the branch head,
 * writes one commit and moves the ref; a lost swap re-reads the head and plans again.
 */
export async function commitBySwap<H, T>(gh: RepositoryClient, swap: CommitSwap<H, T>): Promise<T> {
  let head = swap.head;
  let beforeMove = swap.beforeMove;
  for (let attempt = 0; attempt < SWAP_ATTEMPTS; attempt++) {
    const plan = await swap.plan(head);
    if ("done" in plan) return plan.done;
    const written = await writeCommit(gh, plan.write);
    if (plan.write.head !== undefined && beforeMove !== undefined) {
      await beforeMove();
      beforeMove = undefined;
    }
    const move = await moveRef(gh, swap.branch, written.sha, plan.write.head);
    if (move.moved) return plan.wrote(written);
    head = await swap.reread({ error: move.error, commit: plan.write });
  }
  throw new RuntimeError(
    `branch '${swap.branch}' kept moving under ${SWAP_ATTEMPTS} attempts (concurrent runs); rerun, it is safe to repeat`,
  );
}

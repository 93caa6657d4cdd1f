/**
 * The rolling branch `flake-bump/<input>`, moved only by compare-and-swap (lib/pr/commit.ts). Its
 * head commit's message is the pull request's title and body (with the marker naming the rev), so
 * the branch is the single source of truth. A run that loses the swap re-reads the branch and either
 * steps back (the branch already holds a newer commit, by ancestry) or tries again.
 */
import { createHash } from "node:crypto";
import { fullName, type GitHubRepository } from "../core/ids.ts";
import { type InputChange, revOf } from "../flake/report.ts";
import { type Octokit, type RepositoryClient, request, requestUnlessAbsent } from "../github/client.ts";
import { isOlder, isOlderOn, sameOrNewer } from "../github/upstream.ts";
import { type BaseCommit, bumpChanges, commitBySwap, type PathChange } from "./commit.ts";
import { commitMessage, type PrText, parseMarker, textFromMessage } from "./text.ts";

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
  const found = await requestUnlessAbsent(gh, `read ${path} on ${branch}`, [404], () =>
    gh.octokit.rest.repos.getContent({ ...gh.repo, path, ref: branch }),
  );
  const data = found?.data;
  return data !== undefined && !Array.isArray(data) && data.type === "file" && data.sha === gitBlobSha(text);
}

/**
 * Does `ref` already hold every one of a commit's changes, so that writing it would add nothing?
 * flake.lock alone is one content read; with companion gitlinks, one recursive tree read compares
 * the file's blob and each gitlink's commit (a tree GitHub truncates counts as not holding them).
 */
export async function branchHolds(
  gh: RepositoryClient,
  ref: string,
  changes: readonly PathChange[],
): Promise<boolean> {
  const [only] = changes;
  if (changes.length === 1 && only !== undefined && "content" in only) {
    return branchHasFile(gh, ref, only.path, only.content);
  }
  const found = await requestUnlessAbsent(gh, `read the tree of ${ref}`, [404], () =>
    gh.octokit.rest.git.getTree({ ...gh.repo, tree_sha: ref, recursive: "1" }),
  );
  if (found === undefined) return false;
  const entries = new Map(found.data.tree.map((entry) => [entry.path, entry]));
  return changes.every((change) => {
    const entry = entries.get(change.path);
    if ("content" in change) return entry?.type === "blob" && entry.sha === gitBlobSha(change.content);
    if ("gitlink" in change) return entry?.mode === "160000" && entry.sha === change.gitlink;
    return entry === undefined && found.data.truncated !== true;
  });
}

/** The submodule gitlinks (path → commit) in the tree of `ref`; undefined when there is no such ref. */
export async function gitlinksOf(
  gh: RepositoryClient,
  ref: string,
): Promise<Map<string, string> | undefined> {
  const found = await requestUnlessAbsent(gh, `read the tree of ${ref}`, [404], () =>
    gh.octokit.rest.git.getTree({ ...gh.repo, tree_sha: ref, recursive: "1" }),
  );
  if (found === undefined) return undefined;
  const links = found.data.tree.filter((entry) => entry.mode === "160000" && entry.path && entry.sha);
  return new Map(links.map((entry) => [entry.path ?? "", entry.sha ?? ""]));
}

/**
 * Of the submodules at `paths` (those on the inputs' repositories), the ones whose gitlink a pull
 * request's head moves with its inputs (pointing at a proposed rev) and that `base` does not hold at
 * that commit or a newer one: a base whose flake.lock covers the pull request but whose submodule is
 * elsewhere does not cover it. No paths, no request.
 */
export async function gitlinksLacking(
  gh: RepositoryClient,
  pr: { head: { sha: string } },
  on: { base: string; paths: readonly string[] },
  proposed: readonly { rev: string; github: GitHubRepository | undefined }[],
): Promise<string[]> {
  if (on.paths.length === 0) return [];
  const { base, paths } = on;
  const head = await gitlinksOf(gh, pr.head.sha);
  const moved = [...(head ?? [])].filter(
    ([path, sha]) => paths.includes(path) && proposed.some((p) => p.rev === sha),
  );
  if (moved.length === 0) return [];
  const there = (await gitlinksOf(gh, `heads/${base}`)) ?? new Map<string, string>();
  const lacking: string[] = [];
  for (const [path, sha] of moved) {
    const github = proposed.find((p) => p.rev === sha)?.github;
    if (!(await sameOrNewer(isOlderOn(gh.octokit), github, there.get(path), sha))) lacking.push(path);
  }
  return lacking;
}

export async function headSha(gh: RepositoryClient, branch: string): Promise<string | undefined> {
  const found = await requestUnlessAbsent(gh, `read branch '${branch}'`, [404], () =>
    gh.octokit.rest.git.getRef({ ...gh.repo, ref: `heads/${branch}` }),
  );
  return found?.data.object.sha;
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

/** The head commit of a branch and its tree, by name. */
export async function readBase(gh: RepositoryClient, base: string): Promise<BaseCommit> {
  const { data } = await request(gh, `read branch '${base}' of ${fullName(gh.repo)}`, () =>
    gh.octokit.rest.repos.getCommit({ ...gh.repo, ref: `heads/${base}`, per_page: 1 }),
  );
  return { sha: data.sha, tree: data.commit.tree.sha };
}

/** Does the branch head already hold `rev` or a newer one, so that writing would add nothing? */
async function holdsSameOrNewer(gh: RepositoryClient, swap: Swap, current: BranchHead): Promise<boolean> {
  const { change } = swap;
  const rev = revOf(change);
  if (current.rev === rev) {
    return branchHolds(
      gh,
      swap.branch,
      bumpChanges(swap.path, change.lock.text, { inputs: [change], flakeNix: change.flakeNix?.text }),
    );
  }
  return (
    current.rev !== undefined &&
    !(await swap.ancestors?.())?.has(current.rev) &&
    (await isOlder(gh.octokit, change.github, rev, current.rev))
  );
}

type Swapped = { head: BranchHead; wrote: boolean };

/**
 * Put a commit with the new lock (on the base's tree) at the branch head by compare-and-swap.
 * Returns the branch head afterwards, ours or a newer one a concurrent run wrote.
 */
export async function swapBranch(gh: RepositoryClient, swap: Swap): Promise<Swapped> {
  const { branch, base, path, change, checkout } = swap;
  const rev = revOf(change);
  return commitBySwap<BranchHead | undefined, Swapped>(gh, {
    branch,
    head: swap.known ?? (swap.branchLikelyExists ? await readHead(gh, branch) : undefined),
    reread: () => readHead(gh, branch),
    beforeMove: swap.beforeMove,
    plan: async (current) => {
      if (current !== undefined && (await holdsSameOrNewer(gh, swap, current))) {
        return { done: { head: current, wrote: false } };
      }
      const text = await swap.text();
      const onCheckout = checkout !== undefined && (current === undefined || current.base === checkout.sha);
      return {
        write: {
          base: onCheckout ? checkout : await readBase(gh, base),
          ...(onCheckout ? { baseIfUnknown: () => readBase(gh, base) } : {}),
          head: current?.sha,
          changes: bumpChanges(path, change.lock.text, { inputs: [change], flakeNix: change.flakeNix?.text }),
          message: commitMessage(text),
        },
        wrote: (written) => ({ head: { sha: written.sha, text, rev, base: written.base.sha }, wrote: true }),
      };
    },
  });
}

/** Delete a branch; one already gone (404, or 422 "Reference does not exist") is fine. */
export async function deleteBranch(gh: RepositoryClient, branch: string): Promise<void> {
  await requestUnlessAbsent(gh, `delete branch '${branch}'`, [404, 422], () =>
    gh.octokit.rest.git.deleteRef({ ...gh.repo, ref: `heads/${branch}` }),
  );
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

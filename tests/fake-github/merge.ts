/**
 * Merging, auto-merge and branch protection, shared by the REST merge endpoint, the GraphQL
 * mutations and the test API (`passChecks`). GitHub decides all three from the same facts: the
 * repository's merge settings, the base branch's protection, and whether the head's required checks
 * have passed; keeping them in one place keeps the two APIs agreeing with each other.
 */
import type { Account } from "./objects.ts";
import type { AutoMergeState, FakeRepo, PullState, World } from "./state.ts";

export type MergeMethod = AutoMergeState["mergeMethod"];

/** GraphQL's MergeStateStatus, for the states the fake can reach. */
export type MergeStateStatus = "CLEAN" | "BLOCKED" | "DIRTY" | "DRAFT" | "UNKNOWN";

/** A merge GitHub refuses: the REST status and message it answers with. */
export class MergeRefusal extends Error {
  constructor(
    readonly status: 405 | 409 | 422,
    message: string,
  ) {
    super(message);
  }
}

/** The required checks of `branch` that have not passed on `sha`. */
export function pendingChecks(repo: FakeRepo, branch: string, sha: string): string[] {
  const required = repo.protection.get(branch)?.requiredChecks ?? [];
  return repo.passedChecks.has(sha) ? [] : required;
}

/**
 * Why GitHub refuses to move a protected branch by a direct ref update (REST `updateRef`,
 * GraphQL `createCommitOnBranch`), or undefined when it allows it. GitHub answers 422 with the
 * rule's own sentence, the one `git push` prints after "GH006: Protected branch update failed".
 */
export function protectionRefusal(repo: FakeRepo, branch: string, sha: string): string | undefined {
  const rules = repo.protection.get(branch);
  if (rules === undefined) return undefined;
  if (rules.requirePullRequest === true) return "Changes must be made through a pull request.";
  const [check, ...more] = pendingChecks(repo, branch, sha);
  if (check === undefined) return undefined;
  return more.length === 0
    ? `Required status check "${check}" is expected.`
    : `${more.length + 1} of ${more.length + 1} required status checks are expected.`;
}

async function heads(pull: PullState, repo: FakeRepo) {
  const head = await pull.headRepo.git.refSha(`refs/heads/${pull.headRef}`);
  const base = await repo.git.refSha(`refs/heads/${pull.baseRef}`);
  return { head, base };
}

export async function mergeStateStatus(repo: FakeRepo, pull: PullState): Promise<MergeStateStatus> {
  if (pull.state !== "open") return "UNKNOWN";
  if (pull.draft) return "DRAFT";
  const { head, base } = await heads(pull, repo);
  if (head === undefined || base === undefined) return "UNKNOWN";
  if ((await repo.git.mergeTree(base, head)) === undefined) return "DIRTY";
  if (pendingChecks(repo, pull.baseRef, head).length > 0) return "BLOCKED";
  return "CLEAN";
}

const METHOD_SETTING = {
  MERGE: ["allowMergeCommit", "Merge commits are not allowed on this repository."],
  SQUASH: ["allowSquashMerge", "Squash merges are not allowed on this repository."],
  REBASE: ["allowRebaseMerge", "Rebase merges are not allowed on this repository."],
} as const;

/** GitHub's sentence when a repository does not allow this merge method, or undefined when it does. */
export function methodRefusal(repo: FakeRepo, method: MergeMethod): string | undefined {
  const [setting, message] = METHOD_SETTING[method];
  return repo.settings[setting] ? undefined : message;
}

export interface MergeOptions {
  method: MergeMethod;
  actor: Account;
  /** The head SHA the caller evaluated: a head that moved since is not merged (409). */
  sha?: string | undefined;
  title?: string | undefined;
  message?: string | undefined;
}

/**
 * Merges an open pull request the way the merge button does: the new base commit is made (and
 * signed) by GitHub, the base branch moves by compare-and-swap, the pull request closes as merged.
 * Returns the SHA the base branch now points at.
 */
export async function mergePull(
  world: World,
  repo: FakeRepo,
  pull: PullState,
  options: MergeOptions,
): Promise<string> {
  const { head, base } = await heads(pull, repo);
  if (pull.state !== "open" || head === undefined || base === undefined) {
    throw new MergeRefusal(405, "Pull Request is not mergeable");
  }
  if (options.sha !== undefined && options.sha !== head) {
    throw new MergeRefusal(409, "Head branch was modified. Review and try the merge again.");
  }
  const notAllowed = methodRefusal(repo, options.method);
  if (notAllowed !== undefined) throw new MergeRefusal(405, notAllowed);
  if (pull.draft) throw new MergeRefusal(405, "Pull Request is still a draft");
  const [check] = pendingChecks(repo, pull.baseRef, head);
  if (check !== undefined) throw new MergeRefusal(405, `Required status check "${check}" is expected.`);
  const tree = await repo.git.mergeTree(base, head);
  if (tree === undefined) throw new MergeRefusal(405, "Pull Request is not mergeable");

  const now = new Date();
  const committer = { name: "GitHub", email: "noreply@github.com", date: now };
  const author = {
    name: options.actor.login,
    email: `${options.actor.id}+${options.actor.login}@users.noreply.github.com`,
    date: now,
  };
  let tip: string;
  if (options.method === "REBASE") {
    // Each commit of the pull request is replayed onto the base; only a conflict-free replay of a
    // head that already contains the base is modelled (GitHub also refuses what it cannot rebase).
    if (!(await repo.git.isAncestor(base, head))) throw new MergeRefusal(405, "This branch can't be rebased");
    tip = base;
    for (const sha of await repo.git.commitsBetween(base, head)) {
      const commit = await repo.git.readCommit(sha);
      tip = await repo.git.writeCommit({
        tree: commit.tree,
        parents: [tip],
        author: commit.author,
        committer,
        message: commit.message,
      });
      repo.signed.set(tip, now);
    }
  } else {
    const title =
      options.title ??
      (options.method === "SQUASH"
        ? `${pull.title} (#${pull.number})`
        : `Merge pull request #${pull.number} from ${pull.headRepo.owner.login}/${pull.headRef}`);
    const body = options.message ?? (options.method === "SQUASH" ? "" : pull.title);
    tip = await repo.git.writeCommit({
      tree,
      parents: options.method === "SQUASH" ? [base] : [base, head],
      author,
      committer,
      message: body === "" ? `${title}\n` : `${title}\n\n${body}\n`,
    });
    repo.signed.set(tip, now);
  }
  if (!(await repo.git.updateRef(`refs/heads/${pull.baseRef}`, tip, base))) {
    throw new MergeRefusal(405, "Base branch was modified. Review and try the merge again.");
  }
  world.touchBranch(repo, pull.baseRef);
  pull.state = "closed";
  pull.closedAt = now;
  pull.updatedAt = now;
  pull.frozen = { headSha: head, baseSha: base };
  pull.autoMerge = undefined;
  pull.merged = { at: now, by: options.actor, sha: tip };
  return tip;
}

/**
 * What GitHub does when checks complete: every open pull request with auto-merge enabled whose
 * head is now mergeable is merged by the account that enabled it.
 */
export async function runAutoMerges(world: World, repo: FakeRepo): Promise<void> {
  for (const pull of repo.pulls) {
    if (pull.state !== "open" || pull.autoMerge === undefined) continue;
    if ((await mergeStateStatus(repo, pull)) !== "CLEAN") continue;
    await mergePull(world, repo, pull, {
      method: pull.autoMerge.mergeMethod,
      actor: pull.autoMerge.enabledBy,
    });
  }
}

/**
 * The pushed ref picks the input: of the inputs on the pushed repository, a branch push moves the
 * ones tracking that branch (or, without a ref in flake.nix, the repository's default branch), a tag
 * push moves the ones that follow releases of that tag's series and are pinned to an older tag.
 * Whether a short ref is a tag is GitHub's answer (`refs/tags/<ref>` exists), never its shape:
 * `v1.2`, `25.05` and `release-2026-03` can all be branches.
 */
import { UsageError } from "../core/errors.ts";
import type { GitHubSource } from "../flake/flakeref.ts";
import { githubSource } from "../flake/flakeref.ts";
import type { FlakeRefAttrs, LockNode } from "../flake/lock.ts";
import { releaseStanding, releaseTag, seriesName } from "../flake/release.ts";
import type { Skipped } from "../flake/report.ts";
import { describeGitHubError, type Octokit, statusOf } from "../github/client.ts";

/** How an input follows its upstream (the policy file's `follow`; `branch` by default). */
export type Follow = "branch" | "releases" | "none";

/** What only GitHub can say about a pushed ref, asked at most once each. */
export interface RefQuestions {
  /** Does `refs/tags/<name>` exist in the repository? */
  isTag: (source: GitHubSource, name: string) => Promise<boolean>;
  /** The repository's default branch. */
  defaultBranch: (source: GitHubSource) => Promise<string>;
}

export type PushedRef = { kind: "branch"; name: string } | { kind: "tag"; name: string };

/** An input candidate: its name, its flake.nix reference, and where it lives on GitHub. */
export interface RefCandidate {
  name: string;
  original: FlakeRefAttrs | undefined;
  source: GitHubSource | undefined;
}

/** A release move the pushed tag asks for: the input's tag in flake.nix from `from` to `to`. */
export interface ReleaseMove {
  name: string;
  from: string;
  to: string;
}

export interface RefChoice {
  /** Inputs tracking the pushed branch: they lock the dispatched commit. */
  branch: string[];
  /** Inputs following releases that the pushed tag moves forward. */
  releases: ReleaseMove[];
  /** Why each other input on the repository stays, one sentence each. */
  stays: { name: string; reason: Skipped["reason"]; message: string }[];
}

/** The ref an input's flake.nix names, without `refs/heads/` or `refs/tags/`. */
export function trackedRef(original: FlakeRefAttrs | undefined): string | undefined {
  const ref = original?.ref;
  if (ref === undefined) return undefined;
  return ref.replace(/^refs\/(heads|tags)\//, "");
}

/** The pushed ref as a branch or a tag: a full name says so itself, a short one is GitHub's answer. */
export async function classifyRef(
  ref: string,
  source: GitHubSource | undefined,
  questions: RefQuestions | undefined,
): Promise<PushedRef> {
  if (ref.startsWith("refs/heads/")) return { kind: "branch", name: ref.slice("refs/heads/".length) };
  if (ref.startsWith("refs/tags/")) return { kind: "tag", name: ref.slice("refs/tags/".length) };
  if (source === undefined || questions === undefined) return { kind: "branch", name: ref };
  return (await questions.isTag(source, ref)) ? { kind: "tag", name: ref } : { kind: "branch", name: ref };
}

/** Which candidates a pushed tag moves, and why each other one stays. */
function byTag(
  tag: string,
  candidates: readonly RefCandidate[],
  follow: (name: string) => Follow,
): RefChoice {
  const choice: RefChoice = { branch: [], releases: [], stays: [] };
  for (const { name, original } of candidates) {
    const current = trackedRef(original);
    if (current === undefined || original?.rev !== undefined) {
      choice.stays.push({
        name,
        reason: "not-tracked",
        message: `'${name}' does not follow tags; ${tag} moves nothing`,
      });
      continue;
    }
    if (follow(name) !== "releases") {
      const held = releaseStanding(current, tag) === "newer" ? `${tag} is out; ` : "";
      choice.stays.push({ name, reason: "pinned", message: `${name}: ${held}held at ${current} by policy` });
      continue;
    }
    const standing = releaseStanding(current, tag);
    if (standing === "newer") choice.releases.push({ name, from: current, to: tag });
    else choice.stays.push({ name, reason: "release", message: releaseStay(name, current, tag, standing) });
  }
  return choice;
}

function releaseStay(name: string, current: string, tag: string, standing: string): string {
  if (standing === "other-series") {
    const [pinned, pushed] = [releaseTag(current), releaseTag(tag)];
    const series = (t: typeof pinned, text: string) => (t === undefined ? text : seriesName(t));
    return `'${name}' stays at ${current}: ${tag} is of another series (${series(pushed, tag)}, not ${series(pinned, current)})`;
  }
  return `'${name}' stays at ${current}: ${tag} is ${standing === "same" ? "the same release" : "older"}`;
}

/** Which candidates a pushed branch moves; two tracking it with none named is an error. */
async function byBranch(
  branch: string,
  candidates: readonly RefCandidate[],
  questions: RefQuestions | undefined,
): Promise<RefChoice> {
  const choice: RefChoice = { branch: [], releases: [], stays: [] };
  let defaultBranch: Promise<string> | undefined;
  for (const { name, original, source } of candidates) {
    if (original?.rev !== undefined) {
      choice.stays.push({ name, reason: "pinned", message: `'${name}' is pinned to a rev in flake.nix` });
      continue;
    }
    let tracks = trackedRef(original);
    if (tracks === undefined && source !== undefined && questions !== undefined) {
      // Asked once per run: every ref-less input on the pushed repository tracks the same default branch.
      defaultBranch ??= questions.defaultBranch(source);
      tracks = await defaultBranch;
    }
    if (tracks === branch) choice.branch.push(name);
    else {
      const what = tracks === undefined ? "its default branch" : `'${tracks}'`;
      choice.stays.push({ name, reason: "not-tracked", message: `'${name}' tracks ${what}, not ${branch}` });
    }
  }
  if (choice.branch.length > 1) {
    throw new UsageError(
      `inputs ${choice.branch.map((n) => `'${n}'`).join(" and ")} both track branch '${branch}' of this repository; name the one to move in the dispatch payload's 'input' (notify.ts --input)`,
    );
  }
  return choice;
}

/**
 * What a push of `ref` to the candidates' repository moves.
 * @param follow each input's policy; only `releases` lets a tag move it.
 */
export async function chooseByRef(
  ref: string,
  candidates: readonly RefCandidate[],
  follow: (name: string) => Follow,
  questions: RefQuestions | undefined,
): Promise<{ pushed: PushedRef; choice: RefChoice }> {
  const source = candidates.find((c) => c.source !== undefined)?.source;
  const pushed = await classifyRef(ref, source, questions);
  const choice =
    pushed.kind === "tag"
      ? byTag(pushed.name, candidates, follow)
      : await byBranch(pushed.name, candidates, questions);
  return { pushed, choice };
}

/** The candidate view of a lock node. */
export function candidateOf(name: string, node: LockNode): RefCandidate {
  return { name, original: node.original, source: githubSource(node) };
}

/** The one line a push nobody tracks ends with (exit 0). */
export function untrackedLine(repository: string, pushed: PushedRef): string {
  const what = pushed.kind === "tag" ? `tag ${pushed.name}` : `branch ${pushed.name}`;
  return `no input of this flake tracks ${what} of ${repository}; nothing to do`;
}

/** The questions asked of GitHub: `GET /repos/{o}/{r}/git/ref/tags/{ref}` (404: not a tag) and `GET /repos/{o}/{r}`. */
export function githubRefQuestions(octokit: Octokit): RefQuestions {
  return {
    isTag: async (source, name) => {
      try {
        await octokit.rest.git.getRef({ owner: source.owner, repo: source.repo, ref: `tags/${name}` });
        return true;
      } catch (error) {
        if (statusOf(error) === 404) return false;
        throw describeGitHubError(error, `ask whether '${name}' is a tag`, `${source.owner}/${source.repo}`);
      }
    },
    defaultBranch: async (source) => {
      try {
        return (await octokit.rest.repos.get({ owner: source.owner, repo: source.repo })).data.default_branch;
      } catch (error) {
        throw describeGitHubError(error, "read the default branch", `${source.owner}/${source.repo}`);
      }
    },
  };
}

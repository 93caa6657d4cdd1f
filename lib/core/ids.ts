/**
 * The identifiers flake-bump accepts from outside — commit SHAs, input names, repositories, branches,
 * refs, event types, user names — each declared once, schema and type under one name, so the CLI, the
 * action inputs, the event payload and the report hold every value to the same rule.
 */
import * as v from "valibot";

export const Sha = v.pipe(
  v.string(),
  v.regex(/^[0-9a-f]{40}$/, "must be a full commit SHA: 40 lowercase hex characters"),
);
export type Sha = v.InferOutput<typeof Sha>;

/** Nix input names: identifiers with `-`, `_` and `'` (no path or shell characters). */
export const InputName = v.pipe(
  v.string(),
  v.regex(/^[A-Za-z_][A-Za-z0-9_'-]{0,99}$/, "must be a flake input name (letters, digits, '-', '_', \"'\")"),
);
export type InputName = v.InferOutput<typeof InputName>;

/** `OWNER/REPO`: GitHub's rules for user and repository names. */
export const RepositoryName = v.pipe(
  v.string(),
  v.regex(/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/[A-Za-z0-9._-]{1,100}$/, "must be OWNER/REPO"),
  // `.` and `..` fit the pattern but name no repository: in a request URL they climb to another
  // endpoint (`/repos/acme/../dispatches` is `/repos/dispatches`).
  v.check((name) => !/\/\.\.?$/.test(name), "must be OWNER/REPO"),
);
export type RepositoryName = v.InferOutput<typeof RepositoryName>;

/** A repository on GitHub, or on a GitHub Enterprise Server when `host` is set. */
export const GitHubRepository = v.object({
  owner: v.string(),
  repo: v.string(),
  /** API host for GitHub Enterprise Server (a flake reference's `?host=`), undefined for github.com. */
  host: v.optional(v.string()),
});
export type GitHubRepository = v.InferOutput<typeof GitHubRepository>;

/** `owner/repo`, as GitHub prints a repository's full name. */
export function fullName(repository: Pick<GitHubRepository, "owner" | "repo">): string {
  return `${repository.owner}/${repository.repo}`;
}

/** Parse `OWNER/REPO` or a git remote URL (https or ssh) of a GitHub repository. */
export function parseRepository(text: string): GitHubRepository | undefined {
  const match =
    /^(?:https?:\/\/[^/]+\/|git@[^:]+:|ssh:\/\/git@[^/]+\/)?([^/\s]+)\/([^/\s]+?)(?:\.git)?\/?$/.exec(
      text.trim(),
    );
  if (!match?.[1] || !match[2]) return undefined;
  const name = `${match[1]}/${match[2]}`;
  return v.is(RepositoryName, name) ? { owner: match[1], repo: match[2] } : undefined;
}

/** A branch name (or a branch prefix ending in `/`) that is safe in a ref path. */
export const Branch = v.pipe(
  v.string(),
  v.maxLength(200),
  v.regex(/^[\w.-]+(\/[\w.-]+)*\/?$/, "must be a valid branch name"),
  v.check((s) => !s.includes(".."), "must be a valid branch name"),
);
export type Branch = v.InferOutput<typeof Branch>;

/** A full or short git ref, as `GITHUB_REF` and a dispatch's `ref` carry it. */
export const GitRef = v.pipe(
  v.string(),
  v.maxLength(255),
  v.regex(/^[A-Za-z0-9._/-]+$/, "must be a git ref such as refs/heads/main"),
  v.check((ref) => !ref.includes("..") && !ref.startsWith("/"), "must be a git ref such as refs/heads/main"),
);
export type GitRef = v.InferOutput<typeof GitRef>;

/** A repository_dispatch event type (GitHub allows up to 100 characters). */
export const EventType = v.pipe(
  v.string(),
  v.regex(/^[A-Za-z0-9][\w.-]{0,99}$/, "must be 1–100 letters, digits, '-', '_' or '.'"),
);
export type EventType = v.InferOutput<typeof EventType>;

/** A GitHub user or team slug, as a reviewer is named. */
export const Login = v.pipe(
  v.string(),
  v.regex(/^[A-Za-z0-9][\w.-]{0,99}$/, "must be a plain name (letters, digits, '-', '_', '.')"),
);
export type Login = v.InferOutput<typeof Login>;

/** A pull request label: GitHub allows 50 characters, spaces included. */
export const Label = v.pipe(v.string(), v.minLength(1), v.maxLength(50));
export type Label = v.InferOutput<typeof Label>;

/** Who moves flake inputs: native where provably what Nix writes, else Nix (`auto`); one of them only. */
export const Engine = v.picklist(["auto", "native", "nix"], "must be auto, native or nix");
export type Engine = v.InferOutput<typeof Engine>;

// Here rather than in land.ts, which loads Octokit: every script parses its action inputs with these.
export const MergeMode = v.picklist(["review", "auto", "direct"], "must be review, auto or direct");
export type MergeMode = v.InferOutput<typeof MergeMode>;

export const MergeMethod = v.picklist(["merge", "squash", "rebase"], "must be merge, squash or rebase");
export type MergeMethod = v.InferOutput<typeof MergeMethod>;

/**
 * Flake references: building the exact-commit reference that `--override-input` locks, and knowing
 * where an input lives on GitHub.
 * Syntax: https://nix.dev/manual/nix/latest/command-ref/new-cli/nix3-flake#flake-references
 */
import { UsageError } from "../core/errors.ts";
import type { GitHubRepository } from "../core/ids.ts";
import type { FlakeRefAttrs, LockNode } from "./lock.ts";
import { LOCK_COMMAND } from "./lock.ts";

const FORGES = new Set(["github", "gitlab", "sourcehut"]);
// Attributes that describe a lock result, or that the new rev replaces, never part of the request.
const LOCK_ONLY = new Set([
  "type",
  "owner",
  "repo",
  "rev",
  "ref",
  "narHash",
  "lastModified",
  "revCount",
  "url",
]);

/**
 * The reference that pins `name` to exactly `rev`, keeping every other part of the reference (host,
 * dir, ref, submodules, …) as flake.nix has it. Registry (`indirect`) inputs have no source of their own
 * in flake.nix, so the locked source stands in for it.
 */
export function pinnedRef(name: string, node: LockNode, rev: string): string {
  const original = node.original?.type === "indirect" ? node.locked : node.original;
  if (original === undefined) {
    throw new UsageError(
      `input '${name}' has no source in flake.lock; run \`${LOCK_COMMAND}\` once, then retry`,
    );
  }
  const extra = new URLSearchParams();
  for (const [key, value] of Object.entries(original)) {
    if (LOCK_ONLY.has(key) || value === undefined) continue;
    if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
      extra.set(key, String(value));
    }
  }
  if (FORGES.has(original.type)) {
    // A forge reference cannot carry both a ref and a rev ("URL contains both a commit hash and a
    // branch/tag name"); the ref stays in `original`, which --override-input leaves untouched.
    const qs = extra.size > 0 ? `?${extra}` : "";
    return `${original.type}:${original.owner ?? ""}/${original.repo ?? ""}/${rev}${qs}`;
  }
  if (original.type === "git") {
    const params = new URLSearchParams();
    // Without a ref in flake.nix Nix locks the default branch and records it in `locked.ref`; keeping
    // it makes a pinned lock look exactly like an updated one.
    const ref = original.ref ?? node.locked?.ref;
    if (ref) params.set("ref", ref);
    params.set("rev", rev);
    for (const [key, value] of extra) params.set(key, value);
    const url = original.url ?? "";
    return `git+${url}${url.includes("?") ? "&" : "?"}${params}`;
  }
  throw new UsageError(
    `input '${name}' is a '${original.type}' input, which has no commits to pin; --rev works for github, gitlab, sourcehut and git inputs only`,
  );
}

export interface GitHubSource extends GitHubRepository {
  /** The branch or tag flake.nix follows, if it names one. */
  ref?: string;
}

/** Where an input lives on GitHub, if it does: from the locked source, as flake.nix cannot say for registry inputs. */
export function githubSource(node: LockNode): GitHubSource | undefined {
  const locked: FlakeRefAttrs | undefined = node.locked;
  if (locked?.type !== "github" || !locked.owner || !locked.repo) return undefined;
  const source: GitHubSource = { owner: locked.owner, repo: locked.repo };
  if (locked.host) source.host = locked.host;
  const ref = node.original?.type === "github" ? node.original.ref : undefined;
  if (ref) source.ref = ref;
  return source;
}

/**
 * flake.lock: parsing, the root's direct inputs, and what changed between two locks.
 * Format: https://nix.dev/manual/nix/latest/command-ref/new-cli/nix3-flake#lock-files
 */
import * as v from "valibot";
import { UsageError } from "../core/errors.ts";
import { parseJson } from "../core/files.ts";

/**
 * The command that writes flake.lock, as hints give it to a person: a stock Nix enables neither
 * nix-command nor flakes, and a bare `nix flake lock` fails there ("experimental Nix feature
 * 'nix-command' is disabled"). The same features nix.ts's EXPERIMENTAL enables for every run.
 */
export const LOCK_COMMAND = "nix --extra-experimental-features 'nix-command flakes' flake lock";

/** An input edge: a node key, or a `follows` path from the root (`["nixcfg", "nixpkgs"]`). */
const InputEdge = v.union([v.string(), v.array(v.string())]);

/** The attributes of a flake reference, as Nix stores them in `locked` and `original`. */
export const FlakeRefAttrs = v.looseObject({
  type: v.string(),
  owner: v.optional(v.string()),
  repo: v.optional(v.string()),
  host: v.optional(v.string()),
  ref: v.optional(v.string()),
  rev: v.optional(v.string()),
  dir: v.optional(v.string()),
  url: v.optional(v.string()),
  path: v.optional(v.string()),
  id: v.optional(v.string()),
  narHash: v.optional(v.string()),
  lastModified: v.optional(v.number()),
});
export type FlakeRefAttrs = v.InferOutput<typeof FlakeRefAttrs>;

const LockNode = v.looseObject({
  inputs: v.optional(v.record(v.string(), InputEdge)),
  locked: v.optional(FlakeRefAttrs),
  original: v.optional(FlakeRefAttrs),
  flake: v.optional(v.boolean()),
});
export type LockNode = v.InferOutput<typeof LockNode>;

// Version 7 is what every Nix since 2.7 writes; 5 and 6 are still read by current Nix.
const SUPPORTED_VERSIONS = [5, 6, 7] as const;

export const FlakeLock = v.pipe(
  v.object({
    nodes: v.record(v.string(), LockNode),
    root: v.string(),
    version: v.number(),
  }),
  v.check(
    (lock) => (SUPPORTED_VERSIONS as readonly number[]).includes(lock.version),
    (issue) =>
      `lock file version ${String((issue.input as { version?: unknown }).version)} is not supported (expected ${SUPPORTED_VERSIONS.join(", ")})`,
  ),
  v.check((lock) => lock.root in lock.nodes, "the root node named by `root` is missing from `nodes`"),
);
export type FlakeLock = v.InferOutput<typeof FlakeLock>;

/**
 * Parse flake.lock text. Any problem is a UsageError naming the file and how to recover, because a
 * broken lock is the user's input, not a crash of ours.
 */
export function parseLock(text: string, file = "flake.lock"): FlakeLock {
  const lock = parseJson(FlakeLock, text, {
    notJson: (reason) =>
      `${file} is not valid JSON (${reason}); restore it from git (git checkout -- flake.lock) or recreate it with \`${LOCK_COMMAND}\``,
    invalid: (issues) =>
      `${file} is not a flake lock file Nix would accept (${issues}); restore it from git or recreate it with \`${LOCK_COMMAND}\``,
  });
  assertEdgesResolve(lock, file);
  return lock;
}

/** Every edge must name an existing node, and every follows path must end on a node without looping. */
function assertEdgesResolve(lock: FlakeLock, file: string): void {
  for (const [key, node] of Object.entries(lock.nodes)) {
    for (const [name, edge] of Object.entries(node.inputs ?? {})) {
      if (typeof edge === "string") {
        if (!(edge in lock.nodes)) {
          throw new UsageError(
            `${file}: input '${name}' of node '${key}' points at missing node '${edge}'; restore the file from git or recreate it with \`${LOCK_COMMAND}\``,
          );
        }
      } else if (resolveFollows(lock, edge) === undefined) {
        throw new UsageError(
          `${file}: input '${name}' of node '${key}' follows '${edge.join("/")}', which does not resolve (missing or cyclic); restore the file from git or recreate it with \`${LOCK_COMMAND}\``,
        );
      }
    }
  }
}

/** Resolve a follows path from the root to a node key; undefined if it is broken or cyclic. */
export function resolveFollows(
  lock: FlakeLock,
  path: readonly string[],
  seen = new Set<string>(),
): string | undefined {
  const id = path.join("/");
  if (seen.has(id)) return undefined;
  seen.add(id);
  let key = lock.root;
  for (const name of path) {
    const edge = lock.nodes[key]?.inputs?.[name];
    if (edge === undefined) return undefined;
    const next = typeof edge === "string" ? edge : resolveFollows(lock, edge, seen);
    if (next === undefined) return undefined;
    key = next;
  }
  return key;
}

/** The node key of root input `name`, when it has a node of its own (not a follows edge). */
export function rootNodeKey(lock: FlakeLock, name: string): string | undefined {
  const key = lock.nodes[lock.root]?.inputs?.[name];
  return typeof key === "string" ? key : undefined;
}

/** The lock node of root input `name`, when it has one of its own (not a follows edge). */
export function rootNode(lock: FlakeLock, name: string): LockNode | undefined {
  const key = rootNodeKey(lock, name);
  return key === undefined ? undefined : lock.nodes[key];
}

export type RootInput =
  | { name: string; kind: "node"; key: string; node: LockNode }
  | { name: string; kind: "follows"; follows: readonly string[] };

/** The root node's direct inputs, in the lock's order. */
export function rootInputs(lock: FlakeLock): RootInput[] {
  const root = lock.nodes[lock.root];
  return Object.entries(root?.inputs ?? {}).map(([name, edge]): RootInput => {
    if (typeof edge !== "string") return { name, kind: "follows", follows: edge };
    const node = lock.nodes[edge];
    if (node === undefined) throw new UsageError(`flake.lock: root input '${name}' points at a missing node`);
    return { name, kind: "node", key: edge, node };
  });
}

const HEX_REV = /^[0-9a-f]{7,40}$/;
// A semver-like tag (`v1.2.3`, `rust-engine-v0.1.17`, `1.2.3-rc1`). Two-part names such as
// `nixos-25.05` are branches in the Nix world and stay tracked.
const VERSION_TAG = /(^|[^0-9A-Za-z])v?\d+\.\d+\.\d+([-+.][0-9A-Za-z.-]*)?$/;

/**
 * Why an input is pinned in flake.nix (so a bare `bump.ts` leaves it alone), or undefined if it
 * tracks a branch. flake.nix itself is Nix code; its parsed reference is the lock's `original`.
 */
export function pinReason(original: FlakeRefAttrs | undefined): string | undefined {
  if (original === undefined) return undefined;
  if (original.rev) return `pinned to rev ${original.rev.slice(0, 12)}`;
  const ref = original.ref;
  if (ref === undefined) return undefined;
  if (ref.startsWith("refs/tags/")) return `pinned to tag ${ref.slice("refs/tags/".length)}`;
  if (HEX_REV.test(ref)) return `pinned to rev ${ref}`;
  if (VERSION_TAG.test(ref)) return `pinned to tag ${ref}`;
  return undefined;
}

/** The human reference Nix prints for a locked node, e.g. `github:o/r/<rev>`. */
export function describeRef(attrs: FlakeRefAttrs | undefined): string {
  if (attrs === undefined) return "(none)";
  const { type, owner, repo, rev, ref } = attrs;
  const query = new URLSearchParams();
  if (attrs.host) query.set("host", attrs.host);
  if (attrs.dir) query.set("dir", attrs.dir);
  switch (type) {
    case "github":
    case "gitlab":
    case "sourcehut": {
      const qs = query.size > 0 ? `?${query}` : "";
      return `${type}:${owner}/${repo}${rev ? `/${rev}` : ref ? `/${ref}` : ""}${qs}`;
    }
    case "git":
    case "hg": {
      if (ref) query.set("ref", ref);
      if (rev) query.set("rev", rev);
      const qs = query.size > 0 ? `?${query}` : "";
      return `${type}+${attrs.url ?? ""}${qs}`;
    }
    case "tarball":
    case "file":
      return attrs.url ?? type;
    case "path":
      return `path:${attrs.path ?? ""}`;
    case "indirect":
      return `flake:${attrs.id ?? ""}`;
    default:
      return type;
  }
}

/** A locked node as the report and the PR body show it. */
export const LockedSummary = v.object({
  /** The reference as Nix prints it, e.g. `github:o/r/<rev>`. */
  ref: v.string(),
  rev: v.optional(v.string()),
  lastModified: v.optional(v.number()),
  narHash: v.optional(v.string()),
});
export type LockedSummary = v.InferOutput<typeof LockedSummary>;

export function summarize(node: LockNode | undefined): LockedSummary {
  const locked = node?.locked;
  const out: LockedSummary = { ref: describeRef(locked) };
  if (locked?.rev !== undefined) out.rev = locked.rev;
  if (locked?.lastModified !== undefined) out.lastModified = locked.lastModified;
  if (locked?.narHash !== undefined) out.narHash = locked.narHash;
  return out;
}

export const NodeChange = v.object({
  /** Input path from the root, e.g. `nixfleet` or `nixfleet/nixpkgs`. */
  path: v.string(),
  from: v.optional(LockedSummary),
  to: v.optional(LockedSummary),
});
export type NodeChange = v.InferOutput<typeof NodeChange>;

export interface LockDiff {
  /** Direct inputs of the root whose locked source changed, was added or removed. */
  direct: NodeChange[];
  /** Nodes deeper in the graph, by input path. Follows edges are not walked (they are aliases). */
  transitive: { added: NodeChange[]; removed: NodeChange[]; changed: NodeChange[] };
}

/**
 * Map every node reachable from the root through real (non-follows) edges to its input path.
 * Nix renames node keys (`nixpkgs_6` → `nixpkgs_7`) when the graph changes, so paths are the stable
 * identity to compare by. Each node is visited once, so a cyclic graph still terminates.
 */
function nodesByPath(lock: FlakeLock): Map<string, LockNode> {
  const out = new Map<string, LockNode>();
  const visited = new Set<string>([lock.root]);
  const queue: Array<{ key: string; path: string }> = [{ key: lock.root, path: "" }];
  for (let i = 0; i < queue.length; i++) {
    const item = queue[i];
    if (item === undefined) break;
    const node = lock.nodes[item.key];
    for (const [name, edge] of Object.entries(node?.inputs ?? {})) {
      if (typeof edge !== "string" || visited.has(edge)) continue;
      visited.add(edge);
      const path = item.path ? `${item.path}/${name}` : name;
      const child = lock.nodes[edge];
      if (child === undefined) continue;
      out.set(path, child);
      queue.push({ key: edge, path });
    }
  }
  return out;
}

function sameSource(a: LockNode, b: LockNode): boolean {
  return (
    a.locked?.rev === b.locked?.rev &&
    a.locked?.narHash === b.locked?.narHash &&
    describeRef(a.locked) === describeRef(b.locked)
  );
}

export function diffLocks(before: FlakeLock, after: FlakeLock): LockDiff {
  const old = nodesByPath(before);
  const cur = nodesByPath(after);
  const diff: LockDiff = { direct: [], transitive: { added: [], removed: [], changed: [] } };
  for (const [path, node] of cur) {
    const prev = old.get(path);
    const direct = !path.includes("/");
    if (prev === undefined) {
      const change = { path, to: summarize(node) };
      if (direct) diff.direct.push(change);
      else diff.transitive.added.push(change);
    } else if (!sameSource(prev, node)) {
      const change = { path, from: summarize(prev), to: summarize(node) };
      if (direct) diff.direct.push(change);
      else diff.transitive.changed.push(change);
    }
  }
  for (const [path, node] of old) {
    if (cur.has(path)) continue;
    const change = { path, from: summarize(node) };
    if (!path.includes("/")) diff.direct.push(change);
    else diff.transitive.removed.push(change);
  }
  return diff;
}

/**
 * Moving a GitHub input to an exact commit without Nix, only where the result is provably what Nix
 * writes: the node's `rev`, `lastModified` and `narHash` change and nothing else in the lock can.
 *
 * - narHash: the NAR hash of GitHub's tarball of the commit, its top directory dropped (lib/bump/tarball.ts).
 * - lastModified: Nix ≤ 2.18 stats the unpacked top directory (libfetchers/tarball.cc), Nix ≥ 2.19
 *   takes the newest entry's mtime (libutil/tarfile.cc unpackTarfileToSink). GitHub's tarballs are
 *   `git archive` output, where every entry carries the commit's committer time, so both agree; when
 *   they do not, the lock would depend on the Nix version and the input is left to Nix.
 * - The file: nlohmann::json's `dump(2)` of std::map-ordered objects plus a newline (Nix's
 *   LockFile::write), i.e. keys in byte order, two-space indentation, `": "` separators.
 */
import { writeFileSync } from "node:fs";
import * as v from "valibot";
import { RuntimeError } from "../core/errors.ts";
import { Sha } from "../core/ids.ts";
import type { GitHubSource } from "../flake/flakeref.ts";
import { type FlakeLock, LOCK_COMMAND, type LockNode, rootNode, rootNodeKey } from "../flake/lock.ts";
import { describeGitHubError, type Octokit, statusOf, unreachableOf } from "../github/client.ts";
import type { Compared } from "../github/upstream.ts";
// Types only: the unpacker and the NAR writer are loaded when a tarball is fetched, so a run that
// ends up with Nix (or with nothing to do) never pays for them.
import type { NarTree } from "./nar.ts";
import type { TarballInfo } from "./tarball.ts";

/** Where a native-eligible input lives, with the flake's subdirectory (`?dir=`) if any. */
export interface NativeSource extends GitHubSource {
  dir?: string;
}

export type Eligibility = { native: true; source: NativeSource } | { native: false; reason: string };

// What Nix writes in `locked` for a github input; anything else might be rewritten by Nix.
const LOCKED_KEYS = new Set(["type", "owner", "repo", "host", "dir", "rev", "narHash", "lastModified"]);
const ORIGINAL_KEYS = new Set(["type", "owner", "repo", "host", "dir", "ref"]);

/**
 * Whether the lock alone allows a native move of root input `name` (before any request).
 * @param lockText the file as read, to check that it is in Nix's own format
 */
export function lockEligibility(lock: FlakeLock, lockText: string, name: string): Eligibility {
  const no = (reason: string): Eligibility => ({ native: false, reason });
  if (lock.version !== 7) return no(`flake.lock is version ${lock.version}, which Nix would upgrade`);
  if (serializeLock(lock) !== lockText) {
    return no("flake.lock is not formatted as Nix writes it, so Nix would also reformat it");
  }
  const node = rootNode(lock, name);
  if (node === undefined) return no(`'${name}' has no lock node of its own`);
  const { locked, original } = node;
  if (locked?.type !== "github" || original?.type !== "github") {
    return no(`'${name}' is a '${original?.type ?? locked?.type ?? "unknown"}' input, not a github: one`);
  }
  if ("submodules" in locked || "submodules" in original) {
    return no(`'${name}' asks for submodules, which Nix fetches from git, not from the tarball`);
  }
  const extraLocked = Object.keys(locked).filter((k) => !LOCKED_KEYS.has(k));
  const extraOriginal = Object.keys(original).filter((k) => !ORIGINAL_KEYS.has(k));
  const extra = [...extraLocked, ...extraOriginal];
  if (extra.length > 0) return no(`'${name}' has attributes Nix might rewrite (${extra.join(", ")})`);
  if (!locked.owner || !locked.repo || !locked.rev || !locked.narHash) {
    return no(`'${name}' has an incomplete locked entry`);
  }
  const source: NativeSource = { owner: locked.owner, repo: locked.repo };
  if (locked.host) source.host = locked.host;
  if (original.ref) source.ref = original.ref;
  if (locked.dir) source.dir = locked.dir;
  return { native: true, source };
}

/** True when the node is a flake whose own inputs are locked from its flake.lock. */
function hasInputs(node: LockNode): boolean {
  return Object.keys(node.inputs ?? {}).length > 0;
}

// GitHub's comparison lists at most 300 changed files; at that size it cannot prove what did not change.
const COMPARE_FILE_LIMIT = 300;

/**
 * Whether moving from `from` to `to` leaves the input's own flake.nix and flake.lock (under `dir`)
 * unchanged — one compare request — so Nix would compute the same transitive nodes. A `flake = false`
 * input has none and needs no request.
 * @param known a compare of the same two revs already made (bump's target check): it answers the
 *   question, and no request is made for it
 */
export async function upstreamEligibility(
  octokit: Octokit,
  node: LockNode,
  source: NativeSource,
  from: string,
  to: string,
  known?: Compared,
): Promise<Eligibility> {
  const no = (reason: string): Eligibility => ({ native: false, reason });
  if (node.flake === false) return { native: true, source };
  const base = source.dir ? `${source.dir.replace(/^\/+|\/+$/g, "")}/` : "";
  const watched = new Set([`${base}flake.nix`, `${base}flake.lock`]);
  const repo = `${source.owner}/${source.repo}`;
  let data: Pick<Compared, "status"> & { files?: Compared["files"] | undefined };
  if (known !== undefined && known.from === from && known.to === to) data = known;
  else {
    try {
      ({ data } = await octokit.rest.repos.compareCommitsWithBasehead({
        owner: source.owner,
        repo: source.repo,
        basehead: `${from}...${to}`,
        per_page: 1,
      }));
    } catch (error) {
      throw describeGitHubError(error, `compare ${from.slice(0, 12)}...${to.slice(0, 12)} of ${repo}`);
    }
  }
  if (data.status !== "ahead") {
    return no(`${to.slice(0, 12)} is not a descendant of the locked ${from.slice(0, 12)} (${data.status})`);
  }
  const files = data.files ?? [];
  if (files.length >= COMPARE_FILE_LIMIT) {
    return no(
      `more than ${COMPARE_FILE_LIMIT - 1} files changed, so GitHub's comparison cannot show flake.nix and flake.lock are untouched`,
    );
  }
  const touched = files
    .flatMap((file) => [file.filename, file.previous_filename])
    .filter((path): path is string => path !== undefined && watched.has(path));
  if (touched.length > 0) {
    return no(`its ${[...new Set(touched)].join(" and ")} changed, so Nix must re-lock its inputs`);
  }
  if (hasInputs(node)) {
    // Without a flake.lock of its own, Nix would lock the input's inputs afresh.
    try {
      await octokit.rest.repos.getContent({
        owner: source.owner,
        repo: source.repo,
        path: `${base}flake.lock`,
        ref: to,
      });
    } catch (error) {
      if (statusOf(error) === 404)
        return no(`it has inputs but no ${base}flake.lock, so Nix would lock them afresh`);
      throw describeGitHubError(error, `read ${base}flake.lock of ${repo}`);
    }
  }
  return { native: true, source };
}

export interface NativeResult {
  rev: string;
  narHash: string;
  lastModified: number;
}

/** Raised when the tarball is one Nix would treat differently: the caller leaves the input to Nix. */
export class NotNative extends Error {}

const DOWNLOAD_ATTEMPTS = 3;

/**
 * Download GitHub's tarball of `rev` and compute what Nix would lock for it. The tarball streams
 * through gunzip, tar and the NAR hash; a broken stream is fetched again, up to three times.
 */
export async function fetchLocked(
  octokit: Octokit,
  source: NativeSource,
  rev: string,
  opts: { retryDelayMs?: number } = {},
): Promise<NativeResult> {
  if (!v.is(Sha, rev)) throw new RuntimeError(`'${rev}' is not a full commit SHA; pass 40 hex characters`);
  const repo = `${source.owner}/${source.repo}`;
  const [{ NarTree }, { TarballError, TarballReadError, tail, unpackTarball }] = await Promise.all([
    import("./nar.ts"),
    import("./tarball.ts"),
  ]);
  const fetchOnce = async (): Promise<NativeResult> => {
    const abort = new AbortController();
    const response = await octokit.request("GET /repos/{owner}/{repo}/tarball/{ref}", {
      owner: source.owner,
      repo: source.repo,
      ref: rev,
      // The body as a stream: a 50 MB tarball must never sit in memory whole.
      request: { parseSuccessResponseBody: false, signal: abort.signal },
    });
    const body: unknown = response.data;
    if (!(body instanceof ReadableStream)) throw new TarballReadError("GitHub's answer had no body");
    await using tree: NarTree = new NarTree();
    // The body goes to a file natively and is unpacked from there as it grows: read in JavaScript,
    // each of its chunks was a fresh buffer, and a 50 MB tarball peaked ≈ 4 MB higher than a small
    // one (bench/README.md). The file is in the tree's directory, removed with it.
    const file = tree.scratchPath("download.tar.gz");
    writeFileSync(file, "");
    const written = Bun.write(file, new Response(body));
    let info: TarballInfo;
    try {
      info = await unpackTarball(tail(file, written), tree);
    } finally {
      // A refused archive stops the download; either way it ends before its file is removed.
      abort.abort();
      await written.catch(() => undefined);
    }
    if (info.topMtime !== info.maxMtime) {
      throw new NotNative(
        `the tarball's entries carry different times (top directory ${info.topMtime ?? "absent"}, newest ${info.maxMtime}), so Nix 2.8 and Nix 2.19+ would record different lastModified values`,
      );
    }
    return { rev, narHash: await tree.narHash(), lastModified: info.maxMtime };
  };
  let last: unknown;
  for (let attempt = 1; attempt <= DOWNLOAD_ATTEMPTS; attempt++) {
    try {
      return await fetchOnce();
    } catch (error) {
      if (error instanceof NotNative) throw error;
      if (error instanceof TarballError && !(error instanceof TarballReadError)) {
        throw new NotNative(
          `GitHub's tarball of ${repo} at ${rev.slice(0, 12)} is unusual: ${error.message}`,
        );
      }
      const status = statusOf(error);
      // 4xx answers are final, and so is a host the client found unreachable; the client has
      // already retried 5xx answers before the body started.
      if ((status >= 400 && status < 500) || unreachableOf(error) !== undefined)
        throw describeGitHubError(error, `download ${repo} at ${rev.slice(0, 12)}`);
      last = error;
      if (attempt < DOWNLOAD_ATTEMPTS) await Bun.sleep((opts.retryDelayMs ?? 1000) * attempt);
    }
  }
  if (last instanceof TarballReadError) {
    throw new RuntimeError(
      `could not download ${repo} at ${rev.slice(0, 12)} after ${DOWNLOAD_ATTEMPTS} attempts: ${last.message}; flake.lock was left as it was — rerun later, it is safe to repeat`,
    );
  }
  throw describeGitHubError(last, `download ${repo} at ${rev.slice(0, 12)}`);
}

/** flake.lock text with root input `name` moved to `result`, every other byte as Nix writes it. */
export function movedLockText(lock: FlakeLock, name: string, result: NativeResult): string {
  const key = rootNodeKey(lock, name);
  const node = key === undefined ? undefined : lock.nodes[key];
  if (key === undefined || node?.locked === undefined) {
    throw new RuntimeError(
      `input '${name}' has no lock node to move; run \`${LOCK_COMMAND}\` once, then retry`,
    );
  }
  const locked = {
    ...node.locked,
    rev: result.rev,
    narHash: result.narHash,
    lastModified: result.lastModified,
  };
  return serializeLock({ ...lock, nodes: { ...lock.nodes, [key]: { ...node, locked } } });
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/**
 * JSON as nlohmann::json's dump(2) writes Nix's lock: objects are std::maps (keys in byte order),
 * two spaces per level, empty containers as `{}`/`[]`. Written by hand because JSON.stringify puts
 * integer-like keys first and sorts nothing.
 */
function dump(value: unknown, indent: string): string {
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    const inner = `${indent}  `;
    return `[\n${value.map((item) => `${inner}${dump(item, inner)}`).join(",\n")}\n${indent}]`;
  }
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value).filter(([, item]) => item !== undefined);
    if (entries.length === 0) return "{}";
    const inner = `${indent}  `;
    entries.sort(([a], [b]) => byteOrder(a, b));
    return `{\n${entries.map(([k, item]) => `${inner}${JSON.stringify(k)}: ${dump(item, inner)}`).join(",\n")}\n${indent}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/** The whole lock file as Nix writes it (LockFile::write: `dump(2)` and a newline). */
export function serializeLock(lock: FlakeLock): string {
  return `${dump(lock, "")}\n`;
}

/**
 * Git plumbing on the fake's bare repositories. Everything the fake serves (blobs, trees, commits,
 * refs, tarballs) is a real git object, so SHAs are real and a test can `git clone` what a script
 * committed through the API.
 *
 * Object storage works like GitHub's fork networks: every repository of a network writes its objects
 * into one shared store and reads it through `objects/info/alternates`. That is what lets a parent
 * repository serve a commit that exists only in a fork, as GitHub does, while refs stay per repository.
 */
import { createHash } from "node:crypto";
import { mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { deflateSync } from "node:zlib";

export interface GitIdentity {
  name: string;
  email: string;
  date: Date;
}

export interface CommitObject {
  sha: string;
  tree: string;
  parents: string[];
  author: GitIdentity;
  committer: GitIdentity;
  message: string;
  /** The object's raw text: GitHub returns it as a verified commit's signature `payload`. */
  raw: string;
}

export type ObjectType = "blob" | "tree" | "commit" | "tag";

export interface TreeEntry {
  mode: string;
  type: ObjectType;
  sha: string;
  /** Blob size in bytes; undefined for trees and submodules. */
  size: number | undefined;
  path: string;
}

export interface FileChange {
  path: string;
  status: "added" | "removed" | "modified";
  /** The blob at the head side; null when the file was removed. */
  sha: string | null;
  additions: number;
  deletions: number;
}

/** One change to apply on top of a base tree. `sha: null` deletes the path. */
export type TreeChange =
  | { path: string; mode: string; type: ObjectType; sha: string | null }
  | { path: string; mode: string; type: "blob"; content: Uint8Array };

export const ZERO_SHA = "0".repeat(40);
// The SHA of the empty tree, which every git knows without having it stored.
const EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
const FULL_SHA = /^[0-9a-f]{40}$/;

export function isFullSha(value: string): boolean {
  return FULL_SHA.test(value);
}

// A git argument that starts with "-" would be read as an option; refs and SHAs from requests never do.
function safeArg(value: string): string {
  if (value.startsWith("-") || value.includes("\0")) throw new Error(`refusing git argument '${value}'`);
  return value;
}

function gitEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  // The developer's GIT_* variables and config (signing, hooks, default branch) must not leak in.
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("GIT_")) env[key] = value;
  }
  // Paths from requests are file names, never globs.
  return {
    ...env,
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_LITERAL_PATHSPECS: "1",
    ...extra,
  };
}

interface GitResult {
  exitCode: number;
  stdout: string;
  bytes: Buffer;
  stderr: string;
}

/**
 * Runs git directly, without a shell: every fake operation is a handful of git calls, and a shell per
 * call doubled the processes. Output is kept as bytes too, since blobs and tarballs are binary.
 */
async function spawnGit(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  input?: Uint8Array | string,
  allowFailure = false,
): Promise<GitResult> {
  const proc = Bun.spawn(["git", ...args], {
    env,
    stdin: input === undefined ? "ignore" : toBuffer(input),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, stderr, exitCode] = await Promise.all([
    new Response(proc.stdout).arrayBuffer(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  const bytes = Buffer.from(out);
  if (exitCode !== 0 && !allowFailure) {
    throw new Error(`git ${args.join(" ")} failed (exit ${exitCode}): ${stderr.trim()}`);
  }
  return { exitCode, stdout: bytes.toString("utf8"), bytes, stderr };
}

function formatIdentity(identity: GitIdentity): string {
  return `${identity.name} <${identity.email}> ${Math.floor(identity.date.getTime() / 1000)} +0000`;
}

const IDENTITY_LINE = /^(.*) <(.*)> (\d+) ([+-])(\d\d)(\d\d)$/;

function parseIdentity(text: string): GitIdentity {
  const match = IDENTITY_LINE.exec(text);
  if (match === null) throw new Error(`unparseable git identity '${text}'`);
  const [, name = "", email = "", seconds = "0"] = match;
  return { name, email, date: new Date(Number(seconds) * 1000) };
}

/**
 * Lays out a bare repository as `git init --bare` does, minus the sample hooks and description: the
 * fake creates one or two per test, and a process per repository was a large share of a test's time.
 */
async function initBare(dir: string, defaultBranch: string): Promise<void> {
  await Promise.all(
    ["objects/info", "objects/pack", "refs/heads", "refs/tags"].map((sub) =>
      mkdir(join(dir, sub), { recursive: true }),
    ),
  );
  await Promise.all([
    writeFile(join(dir, "HEAD"), `ref: refs/heads/${safeArg(defaultBranch)}\n`),
    writeFile(
      join(dir, "config"),
      "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n",
    ),
  ]);
}

/** A network's shared object store: create one per root repository; forks join their parent's. */
export class GitNetwork {
  /** Commits already parsed: objects never change, so each is read from git once. */
  readonly commits = new Map<string, CommitObject>();

  private constructor(readonly objectsDir: string) {}

  static async create(dir: string): Promise<GitNetwork> {
    await initBare(dir, "main");
    return new GitNetwork(join(dir, "objects"));
  }

  /**
   * Stores one object as a loose object, exactly as `git hash-object -w` would (same SHA, same
   * zlib-deflated file), without a git process.
   */
  async writeObject(type: ObjectType, content: Uint8Array): Promise<string> {
    const header = Buffer.from(`${type} ${content.byteLength}\0`);
    const data = Buffer.concat([header, content]);
    const sha = createHash("sha1").update(data).digest("hex");
    const dir = join(this.objectsDir, sha.slice(0, 2));
    const file = join(dir, sha.slice(2));
    if (await exists(file)) return sha;
    await mkdir(dir, { recursive: true });
    // Written aside and renamed, so a concurrent reader never sees half an object.
    const temp = join(dir, `tmp-${crypto.randomUUID()}`);
    await writeFile(temp, deflateSync(data));
    await rename(temp, file);
    return sha;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

export class GitRepo {
  private readonly env: NodeJS.ProcessEnv;

  private constructor(
    readonly gitDir: string,
    readonly network: GitNetwork,
  ) {
    this.env = gitEnv({
      GIT_DIR: gitDir,
      GIT_OBJECT_DIRECTORY: network.objectsDir,
      // Objects a test pushed straight into this repository land in its own store; read those too.
      GIT_ALTERNATE_OBJECT_DIRECTORIES: join(gitDir, "objects"),
    });
  }

  static async create(gitDir: string, network: GitNetwork, defaultBranch: string): Promise<GitRepo> {
    await initBare(gitDir, defaultBranch);
    // So that plain git (a test's `git clone`) sees the network's objects too.
    await writeFile(join(gitDir, "objects", "info", "alternates"), `${network.objectsDir}\n`);
    return new GitRepo(gitDir, network);
  }

  private run(args: string[], input?: Uint8Array | string): Promise<GitResult> {
    return spawnGit(args, this.env, input);
  }

  /** Like `run`, but a non-zero exit is an answer (ref absent, not an ancestor), not a failure. */
  private probe(args: string[]): Promise<GitResult> {
    return spawnGit(args, this.env, undefined, true);
  }

  /** The commit a ref, short SHA or full SHA names (as GitHub's `commits/{ref}` resolves it). */
  async resolveCommit(ref: string): Promise<string | undefined> {
    const result = await this.probe(["rev-parse", "--verify", "--quiet", `${safeArg(ref)}^{commit}`]);
    return result.exitCode === 0 ? result.stdout.trim() : undefined;
  }

  /** The SHA a fully qualified ref (`refs/heads/main`) points at. */
  async refSha(ref: string): Promise<string | undefined> {
    const result = await this.probe(["rev-parse", "--verify", "--quiet", safeArg(ref)]);
    return result.exitCode === 0 ? result.stdout.trim() : undefined;
  }

  /** Refs under `prefix` (e.g. `refs/heads/`), with what they point at. */
  async listRefs(prefix: string): Promise<{ ref: string; sha: string; type: ObjectType }[]> {
    const result = await this.run([
      "for-each-ref",
      "--format=%(refname) %(objectname) %(objecttype)",
      safeArg(prefix),
    ]);
    return result.stdout
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => {
        const [ref = "", sha = "", type = "commit"] = line.split(" ");
        return { ref, sha, type: toObjectType(type) };
      });
  }

  /**
   * Points `ref` at `sha`. With `expected`, only if the ref is still there (ZERO_SHA: still absent),
   * so concurrent writers cannot lose an update. Returns false when that check failed.
   */
  async updateRef(ref: string, sha: string, expected?: string): Promise<boolean> {
    const args = ["update-ref", safeArg(ref), safeArg(sha)];
    if (expected !== undefined) args.push(safeArg(expected));
    const result = await this.probe(args);
    return result.exitCode === 0;
  }

  async deleteRef(ref: string): Promise<void> {
    await this.run(["update-ref", "-d", safeArg(ref)]);
  }

  async objectType(sha: string): Promise<ObjectType | undefined> {
    const result = await this.probe(["cat-file", "-t", safeArg(sha)]);
    return result.exitCode === 0 ? toObjectType(result.stdout.trim()) : undefined;
  }

  async readCommit(sha: string): Promise<CommitObject> {
    const known = this.network.commits.get(sha);
    if (known !== undefined) return known;
    const raw = (await this.run(["cat-file", "commit", safeArg(sha)])).stdout;
    const split = raw.indexOf("\n\n");
    const headers = (split === -1 ? raw : raw.slice(0, split)).split("\n");
    const message = split === -1 ? "" : raw.slice(split + 2);
    let tree = "";
    const parents: string[] = [];
    let author: GitIdentity | undefined;
    let committer: GitIdentity | undefined;
    for (const line of headers) {
      const space = line.indexOf(" ");
      const key = line.slice(0, space);
      const value = line.slice(space + 1);
      if (key === "tree") tree = value;
      else if (key === "parent") parents.push(value);
      else if (key === "author") author = parseIdentity(value);
      else if (key === "committer") committer = parseIdentity(value);
    }
    if (author === undefined || committer === undefined)
      throw new Error(`commit ${sha} has no author or committer`);
    const commit = { sha, tree, parents, author, committer, message, raw };
    // Only under its full SHA: a short SHA or a ref name could mean another commit later.
    if (isFullSha(sha)) this.network.commits.set(sha, commit);
    return commit;
  }

  async writeBlob(content: Uint8Array | string): Promise<string> {
    const [sha] = await this.writeBlobs([content]);
    if (sha === undefined) throw new Error("git hash-object wrote no blob");
    return sha;
  }

  /** Stores blobs in one git call; SHAs in the order given. */
  async writeBlobs(contents: readonly (Uint8Array | string)[]): Promise<string[]> {
    return await Promise.all(contents.map((content) => this.network.writeObject("blob", toBuffer(content))));
  }

  async readBlob(sha: string): Promise<Buffer> {
    return (await this.run(["cat-file", "blob", safeArg(sha)])).bytes;
  }

  /** Entries of a tree (one level, or the single entry at `path` when given). */
  async lsTree(treeish: string, path?: string): Promise<TreeEntry[]> {
    const args = ["ls-tree", "-l", "-z", safeArg(treeish)];
    if (path !== undefined) args.push("--", path);
    const result = await this.run(args);
    return result.stdout
      .split("\0")
      .filter((record) => record !== "")
      .map((record) => {
        const tab = record.indexOf("\t");
        const [mode = "", type = "", sha = "", size = "-"] = record.slice(0, tab).split(/ +/);
        return {
          mode,
          type: toObjectType(type),
          sha,
          size: size === "-" ? undefined : Number(size),
          path: record.slice(tab + 1),
        };
      });
  }

  /**
   * A new tree: `base` (a tree SHA, or none for an empty start) with `changes` applied. Paths may be
   * nested (`sub/flake.lock`); missing directories are created, emptied ones disappear, as with
   * GitHub's create-tree.
   */
  async buildTree(base: string | undefined, changes: readonly TreeChange[]): Promise<string> {
    const index = join(this.gitDir, `fake-index-${crypto.randomUUID()}`);
    const env = { ...this.env, GIT_INDEX_FILE: index };
    const git = (args: string[], input?: string) => spawnGit(args, env, input);
    try {
      await git(base === undefined ? ["read-tree", "--empty"] : ["read-tree", safeArg(base)]);
      // Whatever is at a changed path, file or whole directory, goes: the change replaces or deletes it.
      // (`git rm --cached` works without a work tree; `update-index --force-remove` does not.)
      const paths = changes.map((change) => change.path);
      if (paths.length > 0) await git(["rm", "--cached", "-r", "-q", "--ignore-unmatch", "--", ...paths]);
      const contents = changes.flatMap((change) => ("content" in change ? [change.content] : []));
      const blobs = await this.writeBlobs(contents);
      const records: string[] = [];
      for (const change of changes) {
        if ("content" in change) {
          records.push(`${change.mode} ${blobs.shift() ?? ""}\t${change.path}`);
        } else if (change.sha !== null && change.type === "tree") {
          await git(["read-tree", `--prefix=${change.path}/`, safeArg(change.sha)]);
        } else if (change.sha !== null) {
          records.push(`${change.mode} ${safeArg(change.sha)}\t${change.path}`);
        }
      }
      if (records.length > 0) await git(["update-index", "-z", "--index-info"], `${records.join("\0")}\0`);
      return (await git(["write-tree"])).stdout.trim();
    } finally {
      await rm(index, { force: true });
    }
  }

  /** Writes a commit object exactly as given (dates included) and returns its SHA. */
  async writeCommit(commit: {
    tree: string;
    parents: readonly string[];
    author: GitIdentity;
    committer: GitIdentity;
    message: string;
  }): Promise<string> {
    const lines = [`tree ${commit.tree}`, ...commit.parents.map((parent) => `parent ${parent}`)];
    lines.push(`author ${formatIdentity(commit.author)}`, `committer ${formatIdentity(commit.committer)}`);
    const text = `${lines.join("\n")}\n\n${commit.message}`;
    return await this.network.writeObject("commit", Buffer.from(text, "utf8"));
  }

  async mergeBase(a: string, b: string): Promise<string | undefined> {
    const result = await this.probe(["merge-base", safeArg(a), safeArg(b)]);
    return result.exitCode === 0 ? result.stdout.trim() : undefined;
  }

  /** Commits reachable from `head` but not from `base`, oldest first (GitHub's compare order). */
  async commitsBetween(base: string, head: string): Promise<string[]> {
    const result = await this.run([
      "rev-list",
      "--reverse",
      "--topo-order",
      safeArg(head),
      "--not",
      safeArg(base),
    ]);
    return result.stdout.split("\n").filter((line) => line !== "");
  }

  /** Up to `limit` commits reachable from `head`, newest first (GitHub's commit list order). */
  async history(head: string, limit: number): Promise<string[]> {
    const result = await this.run(["rev-list", "--topo-order", `--max-count=${limit}`, safeArg(head)]);
    return result.stdout.split("\n").filter((line) => line !== "");
  }

  /** The tree of merging two commits (git ≥ 2.38), or undefined when they conflict. */
  async mergeTree(ours: string, theirs: string): Promise<string | undefined> {
    const result = await this.probe(["merge-tree", "--write-tree", safeArg(ours), safeArg(theirs)]);
    // Exit 1 is a conflict; anything else non-zero is a real failure of the fake.
    if (result.exitCode === 1) return undefined;
    if (result.exitCode !== 0) throw new Error(`git merge-tree failed: ${result.stderr}`);
    return result.stdout.split("\n")[0]?.trim();
  }

  async isAncestor(ancestor: string, descendant: string): Promise<boolean> {
    const result = await this.probe(["merge-base", "--is-ancestor", safeArg(ancestor), safeArg(descendant)]);
    return result.exitCode === 0;
  }

  /** Files that differ between two commits (`base` undefined: the empty tree), with line counts. */
  async changedFiles(base: string | undefined, head: string): Promise<FileChange[]> {
    const from = safeArg(base ?? EMPTY_TREE);
    const to = safeArg(head);
    const raw = (
      await this.run(["diff", "--raw", "--no-abbrev", "-z", "--no-renames", from, to])
    ).stdout.split("\0");
    const counts = new Map<string, { additions: number; deletions: number }>();
    for (const record of (await this.run(["diff", "--numstat", "-z", "--no-renames", from, to])).stdout.split(
      "\0",
    )) {
      const [additions = "", deletions = "", path = ""] = record.split("\t");
      // Binary files count "-": GitHub counts them as no lines either.
      if (path !== "")
        counts.set(path, { additions: Number(additions) || 0, deletions: Number(deletions) || 0 });
    }
    const changes: FileChange[] = [];
    // --raw -z: ":<old mode> <new mode> <old sha> <new sha> <status>" NUL "<path>" NUL, repeated.
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const [, , , newSha = "", letter = ""] = (raw[i] ?? "").split(" ");
      const path = raw[i + 1] ?? "";
      if (path === "") continue;
      const status = letter === "A" ? "added" : letter === "D" ? "removed" : "modified";
      const count = counts.get(path) ?? { additions: 0, deletions: 0 };
      changes.push({ path, status, sha: status === "removed" ? null : newSha, ...count });
    }
    return changes;
  }

  async isValidRefName(ref: string): Promise<boolean> {
    return (await this.probe(["check-ref-format", safeArg(ref)])).exitCode === 0;
  }

  /** `git archive` of a commit as .tar.gz with every path under `prefix` (what GitHub's tarball is). */
  async archive(sha: string, prefix: string): Promise<Buffer> {
    return (await this.run(["archive", "--format=tar.gz", `--prefix=${prefix}`, safeArg(sha)])).bytes;
  }
}

function toObjectType(value: string): ObjectType {
  if (value === "blob" || value === "tree" || value === "commit" || value === "tag") return value;
  throw new Error(`unknown git object type '${value}'`);
}

function toBuffer(input: Uint8Array | string): Buffer {
  return typeof input === "string" ? Buffer.from(input, "utf8") : Buffer.from(input);
}

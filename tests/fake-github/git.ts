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
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { deflateSync, inflateSync } from "node:zlib";
import { lineCounts, MAX_DIFF_BYTES } from "./line-diff.ts";

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

  /** Trees, commits and tags read from this store: objects never change, and trees are read often. */
  readonly objects = new Map<string, StoredObject>();

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

/** One object as stored: its type and content (the bytes after git's `type size\0` header). */
export interface StoredObject {
  type: ObjectType;
  content: Buffer;
}

/**
 * Reads a loose object of `objectsDir`; undefined when it is not stored loose there (absent, or
 * inside a pack, which only git reads here).
 */
async function readLooseObject(objectsDir: string, sha: string): Promise<StoredObject | undefined> {
  let data: Buffer;
  try {
    data = inflateSync(await readFile(join(objectsDir, sha.slice(0, 2), sha.slice(2))));
  } catch (error) {
    if (isMissingFile(error)) return undefined;
    throw error;
  }
  const nul = data.indexOf(0);
  const [type = "", size = ""] = data.subarray(0, nul).toString("latin1").split(" ");
  const content = data.subarray(nul + 1);
  if (nul === -1 || Number(size) !== content.byteLength) throw new Error(`loose object ${sha} is corrupt`);
  return { type: toObjectType(type), content };
}

function isMissingFile(error: unknown): boolean {
  const code = errorCode(error);
  return code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR";
}

function errorCode(error: unknown): unknown {
  return error instanceof Error && "code" in error ? error.code : undefined;
}

/** One entry of a parsed tree object; `name` holds the raw bytes as latin1, so it round-trips. */
interface RawTreeEntry {
  mode: string;
  name: string;
  sha: string;
}

function parseTree(content: Buffer): RawTreeEntry[] {
  const entries: RawTreeEntry[] = [];
  let at = 0;
  while (at < content.byteLength) {
    const space = content.indexOf(0x20, at);
    const nul = content.indexOf(0, space);
    if (space === -1 || nul === -1 || nul + 21 > content.byteLength) throw new Error("corrupt tree object");
    entries.push({
      mode: content.subarray(at, space).toString("latin1"),
      name: content.subarray(space + 1, nul).toString("latin1"),
      sha: content.subarray(nul + 1, nul + 21).toString("hex"),
    });
    at = nul + 21;
  }
  return entries;
}

function isTreeMode(mode: string): boolean {
  return mode === "40000" || mode === "040000";
}

/**
 * Git's tree order: names compare bytewise as if every directory's name ended in "/" (so `a.c`
 * sorts before the directory `a` and the directory `a` before `a0`).
 */
function compareTreeEntries(a: RawTreeEntry, b: RawTreeEntry): number {
  const left = isTreeMode(a.mode) ? `${a.name}/` : a.name;
  const right = isTreeMode(b.mode) ? `${b.name}/` : b.name;
  return left < right ? -1 : left > right ? 1 : 0;
}

function serializeTree(entries: readonly RawTreeEntry[]): Buffer {
  return Buffer.concat(
    [...entries]
      .sort(compareTreeEntries)
      .flatMap((entry) => [
        Buffer.from(`${entry.mode} ${entry.name}\0`, "latin1"),
        Buffer.from(entry.sha, "hex"),
      ]),
  );
}

/**
 * The mode git's index gives an entry (`create_ce_mode`): any regular file becomes 100644 or
 * 100755. Undefined for a mode this code leaves to git (a directory mode on a file entry, or text
 * that is not one of the modes GitHub's API takes).
 */
function indexMode(mode: string): string | undefined {
  if (mode === "120000" || mode === "160000") return mode;
  if (/^100[0-7]{3}$/.test(mode)) return (Number.parseInt(mode, 8) & 0o100) !== 0 ? "100755" : "100644";
  return undefined;
}

// What this code resolves itself; anything else (revision syntax, odd names) is git's to answer.
const PLAIN_REF = /^[A-Za-z0-9_][A-Za-z0-9._/-]*$/;

function isPlainRefName(name: string): boolean {
  return (
    PLAIN_REF.test(name) &&
    !name.includes("..") &&
    !name.includes("//") &&
    !name.includes("/.") &&
    !name.endsWith("/") &&
    !name.endsWith(".") &&
    !name.split("/").some((part) => part.endsWith(".lock"))
  );
}

// A path component git's `verify_path` accepts whatever the mode; the rest (`.git` and look-alikes,
// `..`, odd characters) is left to git's own checks.
const PLAIN_COMPONENT =
  /^[A-Za-z0-9_+=,@-][A-Za-z0-9._+=,@-]*$|^\.(?!git)[A-Za-z0-9_+=,@-][A-Za-z0-9._+=,@-]*$/i;
const DOT_GIT_FILES = new Set([".github", ".gitignore", ".gitattributes"]);

function isPlainPath(path: string, mode: string): boolean {
  return path
    .split("/")
    .every((part) => PLAIN_COMPONENT.test(part) || (DOT_GIT_FILES.has(part) && mode !== "120000"));
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
  /** Objects read from this repository's own store, which the rest of its network cannot see. */
  private readonly ownObjects = new Map<string, StoredObject>();

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

  /**
   * An object read in-process: the network's store first, then this repository's own (where a
   * test's `git push` lands), as git searches them. Undefined when it is loose in neither, which
   * means packed or absent: only git can tell.
   */
  async looseObject(sha: string): Promise<StoredObject | undefined> {
    const cached = this.network.objects.get(sha) ?? this.ownObjects.get(sha);
    if (cached !== undefined) return cached;
    const shared = await readLooseObject(this.network.objectsDir, sha);
    const object = shared ?? (await readLooseObject(join(this.gitDir, "objects"), sha));
    // Blobs can be large and are read rarely; the rest is small and read again and again. An object
    // of this repository's own store stays with it: other repositories of the network cannot see it.
    if (object !== undefined && object.type !== "blob") {
      (shared !== undefined ? this.network.objects : this.ownObjects).set(sha, object);
    }
    return object;
  }

  /** The commit a ref, short SHA or full SHA names (as GitHub's `commits/{ref}` resolves it). */
  async resolveCommit(ref: string): Promise<string | undefined> {
    const named = isFullSha(ref) ? ref : await this.dwimRef(ref);
    if (named !== null) {
      if (named === undefined) return undefined;
      const peeled = await this.peelToCommit(named);
      if (peeled !== null) return peeled;
    }
    const result = await this.probe(["rev-parse", "--verify", "--quiet", `${safeArg(ref)}^{commit}`]);
    return result.exitCode === 0 ? result.stdout.trim() : undefined;
  }

  /** `<sha>^{commit}`: undefined for a tree or blob, null when git must answer (not loose). */
  private async peelToCommit(sha: string): Promise<string | undefined | null> {
    const object = await this.looseObject(sha);
    if (object === undefined) return null;
    if (object.type === "commit") return sha;
    if (object.type !== "tag") return undefined;
    const target = /^object ([0-9a-f]{40})\n/.exec(object.content.toString("latin1"))?.[1];
    return target === undefined ? null : await this.peelToCommit(target);
  }

  /**
   * What `git rev-parse` makes of a name that is not a full SHA: the first of `<name>`,
   * `refs/<name>`, `refs/tags/<name>`, `refs/heads/<name>`, `refs/remotes/<name>`,
   * `refs/remotes/<name>/HEAD` that exists (git's `ref_rev_parse_rules`). Undefined when none does
   * and the name cannot mean anything else; null when only git can say (revision syntax, a short SHA,
   * a symbolic ref, a file such as HEAD at the repository's top).
   */
  private async dwimRef(name: string): Promise<string | undefined | null> {
    if (!isPlainRefName(name)) return null;
    const rules = [name, `refs/${name}`, `refs/tags/${name}`, `refs/heads/${name}`, `refs/remotes/${name}`];
    rules.push(`refs/remotes/${name}/HEAD`);
    if (!name.startsWith("refs/") && (await exists(join(this.gitDir, name)))) return null;
    for (const candidate of name.startsWith("refs/") ? rules : rules.slice(1)) {
      const sha = await this.readRef(candidate);
      if (sha !== undefined) return sha;
    }
    // A hex name can be a short SHA, and `anything-g<hex>` is read as `git describe` output.
    return /^[0-9a-f]{4,}$/i.test(name) || /-g[0-9a-f]{4,}$/i.test(name) ? null : undefined;
  }

  /** A ref's value from its loose file or packed-refs; null when git must answer (symbolic, odd). */
  private async readRef(ref: string): Promise<string | undefined | null> {
    let text: string | undefined;
    try {
      text = await readFile(join(this.gitDir, ref), "latin1");
    } catch (error) {
      if (!isMissingFile(error)) throw error;
    }
    if (text !== undefined) {
      const sha = text.trimEnd();
      return isFullSha(sha) ? sha : null;
    }
    const packed = await this.packedRefs();
    return packed === null ? null : packed.get(ref);
  }

  /** The `packed-refs` file's refs (empty when there is none); null when it holds what git must read. */
  private async packedRefs(): Promise<Map<string, string> | null> {
    const refs = new Map<string, string>();
    let text: string;
    try {
      text = await readFile(join(this.gitDir, "packed-refs"), "latin1");
    } catch (error) {
      if (isMissingFile(error)) return refs;
      throw error;
    }
    for (const line of text.split("\n")) {
      if (line === "" || line.startsWith("#") || line.startsWith("^")) continue;
      const match = /^([0-9a-f]{40}) (\S+)$/.exec(line);
      if (match === null) return null;
      const [, sha = "", ref = ""] = match;
      refs.set(ref, sha);
    }
    return refs;
  }

  /** The SHA a fully qualified ref (`refs/heads/main`) points at. */
  async refSha(ref: string): Promise<string | undefined> {
    const sha = isFullSha(ref) ? null : await this.dwimRef(ref);
    if (sha !== null) return sha;
    const result = await this.probe(["rev-parse", "--verify", "--quiet", safeArg(ref)]);
    return result.exitCode === 0 ? result.stdout.trim() : undefined;
  }

  /** Refs under `prefix` (e.g. `refs/heads/`), with what they point at. */
  async listRefs(prefix: string): Promise<{ ref: string; sha: string; type: ObjectType }[]> {
    const known = await this.listRefsInProcess(prefix);
    if (known !== undefined) return known;
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
   * `git for-each-ref <prefix>` from the ref files: loose refs win over packed ones, and a pattern
   * matches a ref equal to it or below it. Undefined when anything needs git (a glob, a symbolic or
   * oddly named ref, an object that is not loose).
   */
  private async listRefsInProcess(
    prefix: string,
  ): Promise<{ ref: string; sha: string; type: ObjectType }[] | undefined> {
    if (!/^refs\/[A-Za-z0-9._/-]*$/.test(prefix)) return undefined;
    const packed = await this.packedRefs();
    if (packed === null) return undefined;
    const values = new Map(packed);
    let files: string[];
    try {
      files = await readdir(join(this.gitDir, "refs"), { recursive: true });
    } catch (error) {
      if (isMissingFile(error)) return undefined;
      throw error;
    }
    for (const file of files) {
      const ref = `refs/${file.split("\\").join("/")}`;
      // Git skips hidden files and the lock files of updates under way.
      if (ref.split("/").some((part) => part.startsWith(".")) || ref.endsWith(".lock")) continue;
      let text: string;
      try {
        text = await readFile(join(this.gitDir, ref), "latin1");
      } catch (error) {
        if (errorCode(error) === "EISDIR") continue;
        if (isMissingFile(error)) return undefined;
        throw error;
      }
      values.set(ref, text.trimEnd());
    }
    const matches = [...values]
      .filter(
        ([ref]) =>
          ref === prefix || (ref.startsWith(prefix) && (prefix.endsWith("/") || ref[prefix.length] === "/")),
      )
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const refs: { ref: string; sha: string; type: ObjectType }[] = [];
    for (const [ref, sha] of matches) {
      if (!isPlainRefName(ref) || !isFullSha(sha)) return undefined;
      const object = await this.looseObject(sha);
      if (object === undefined) return undefined;
      refs.push({ ref, sha, type: object.type });
    }
    return refs;
  }

  /**
   * Points `ref` at `sha`. With `expected`, only if the ref is still there (ZERO_SHA: still absent),
   * so concurrent writers cannot lose an update. Returns false when that check failed.
   */
  async updateRef(ref: string, sha: string, expected?: string): Promise<boolean> {
    const done = await this.updateLooseRef(ref, sha, expected);
    if (done !== undefined) return done;
    const args = ["update-ref", safeArg(ref), safeArg(sha)];
    if (expected !== undefined) args.push(safeArg(expected));
    const result = await this.probe(args);
    return result.exitCode === 0;
  }

  /**
   * `git update-ref` on a loose ref, by git's own lock protocol (`<ref>.lock` created exclusively,
   * old value checked under the lock, renamed over the ref), so a concurrent `git push` into the same
   * repository is serialised with it. Undefined when git must do it: a packed or symbolic ref, a
   * directory in the way, an object that is not loose.
   */
  private async updateLooseRef(
    ref: string,
    sha: string,
    expected: string | undefined,
  ): Promise<boolean | undefined> {
    if (!ref.startsWith("refs/") || !isPlainRefName(ref) || !isFullSha(sha) || sha === ZERO_SHA)
      return undefined;
    if (expected !== undefined && !isFullSha(expected)) return undefined;
    const object = await this.looseObject(sha);
    if (object === undefined) return undefined;
    // git refuses to point a branch at anything but a commit.
    if (ref.startsWith("refs/heads/") && object.type !== "commit") return false;
    // Packed refs bring name conflicts (refs/heads/a against refs/heads/a/b) that git checks.
    if (await exists(join(this.gitDir, "packed-refs"))) return undefined;
    const file = join(this.gitDir, ref);
    const lock = `${file}.lock`;
    try {
      await mkdir(dirname(file), { recursive: true });
    } catch {
      return undefined;
    }
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(lock, "wx");
    } catch (error) {
      // Another update holds the ref: git fails as well.
      if (errorCode(error) === "EEXIST") return false;
      return undefined;
    }
    let outcome: boolean | undefined;
    try {
      let current: string | undefined;
      try {
        current = (await readFile(file, "latin1")).trimEnd();
      } catch (error) {
        if (errorCode(error) !== "ENOENT") return undefined;
      }
      if (current !== undefined && !isFullSha(current)) return undefined;
      if (expected !== undefined && (current ?? ZERO_SHA) !== expected) {
        outcome = false;
        return false;
      }
      await handle.writeFile(`${sha}\n`);
      await handle.close();
      await rename(lock, file);
      outcome = true;
      return true;
    } finally {
      if (outcome !== true) {
        await handle.close().catch(() => undefined);
        await unlink(lock).catch(() => undefined);
      }
    }
  }

  async deleteRef(ref: string): Promise<void> {
    await this.run(["update-ref", "-d", safeArg(ref)]);
  }

  async objectType(sha: string): Promise<ObjectType | undefined> {
    const object = isFullSha(sha) ? await this.looseObject(sha) : undefined;
    if (object !== undefined) return object.type;
    const result = await this.probe(["cat-file", "-t", safeArg(sha)]);
    return result.exitCode === 0 ? toObjectType(result.stdout.trim()) : undefined;
  }

  async readCommit(sha: string): Promise<CommitObject> {
    const known = this.network.commits.get(sha);
    if (known !== undefined) return known;
    const object = isFullSha(sha) ? await this.looseObject(sha) : undefined;
    const raw =
      object?.type === "commit"
        ? object.content.toString("utf8")
        : (await this.run(["cat-file", "commit", safeArg(sha)])).stdout;
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

  /** An annotated tag object's tagger (absent in some old tags) and message. */
  async readTag(sha: string): Promise<{ tagger: GitIdentity | undefined; message: string }> {
    const object = isFullSha(sha) ? await this.looseObject(sha) : undefined;
    const raw =
      object?.type === "tag"
        ? object.content.toString("utf8")
        : (await this.run(["cat-file", "tag", safeArg(sha)])).stdout;
    const split = raw.indexOf("\n\n");
    const headers = (split === -1 ? raw : raw.slice(0, split)).split("\n");
    const line = headers.find((header) => header.startsWith("tagger "));
    const tagger = line === undefined ? undefined : parseIdentity(line.slice("tagger ".length));
    return { tagger, message: split === -1 ? "" : raw.slice(split + 2) };
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
    const object = isFullSha(sha) ? await this.looseObject(sha) : undefined;
    if (object?.type === "blob") return object.content;
    return (await this.run(["cat-file", "blob", safeArg(sha)])).bytes;
  }

  /** Entries of a tree (one level, or the single entry at `path` when given). */
  async lsTree(treeish: string, path?: string): Promise<TreeEntry[]> {
    const known = await this.lsTreeInProcess(treeish, path);
    if (known !== undefined) return known;
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
   * `git ls-tree -l <treeish> [-- <path>]` for a full SHA (commit or tree) or `<sha>:<dir>`, and a
   * path of plain components; undefined for anything git must answer.
   */
  private async lsTreeInProcess(treeish: string, path: string | undefined): Promise<TreeEntry[] | undefined> {
    const colon = treeish.indexOf(":");
    const sha = colon === -1 ? treeish : treeish.slice(0, colon);
    const inside = colon === -1 ? [] : treeish.slice(colon + 1).split("/");
    const wanted = path === undefined ? [] : path.split("/");
    if (
      !isFullSha(sha) ||
      ![...inside, ...wanted].every((part) => PLAIN_COMPONENT.test(part) || DOT_GIT_FILES.has(part))
    )
      return undefined;
    let tree = await this.looseObject(sha);
    if (tree?.type === "commit") {
      const root = /^tree ([0-9a-f]{40})\n/.exec(tree.content.toString("latin1"))?.[1];
      tree = root === undefined ? undefined : await this.looseObject(root);
    }
    if (tree?.type !== "tree") return undefined;
    for (const part of inside) {
      const entry = parseTree(tree.content).find((candidate) => candidate.name === toLatin1(part));
      if (entry === undefined || !isTreeMode(entry.mode)) return undefined;
      tree = await this.looseObject(entry.sha);
      if (tree?.type !== "tree") return undefined;
    }
    let entries = parseTree(tree.content);
    let prefix = "";
    if (path !== undefined) {
      // A path lists the one entry it names, looked up directory by directory (no recursion).
      for (const [index, part] of wanted.entries()) {
        const entry = entries.find((candidate) => candidate.name === toLatin1(part));
        if (entry === undefined) return [];
        if (index === wanted.length - 1) {
          entries = [entry];
          break;
        }
        if (!isTreeMode(entry.mode)) return [];
        const sub = await this.looseObject(entry.sha);
        if (sub?.type !== "tree") return undefined;
        entries = parseTree(sub.content);
        prefix += `${part}/`;
      }
    }
    const listed: TreeEntry[] = [];
    for (const entry of entries) {
      const mode = entry.mode.padStart(6, "0");
      const type: ObjectType = isTreeMode(mode) ? "tree" : mode === "160000" ? "commit" : "blob";
      let size: number | undefined;
      if (type === "blob") {
        const blob = await this.looseObject(entry.sha);
        if (blob === undefined) return undefined;
        size = blob.content.byteLength;
      }
      listed.push({ mode, type, sha: entry.sha, size, path: prefix + fromLatin1(entry.name) });
    }
    return listed;
  }

  /**
   * A new tree: `base` (a tree SHA, or none for an empty start) with `changes` applied. Paths may be
   * nested (`sub/flake.lock`); missing directories are created, emptied ones disappear, as with
   * GitHub's create-tree. A change replaces or deletes whatever is at its path, file or directory; a
   * file in the way of a new path's directory goes; a change of type tree with a sha inserts that tree.
   */
  async buildTree(base: string | undefined, changes: readonly TreeChange[]): Promise<string> {
    const built = await new TreeBuilder(this).build(base, changes);
    return built ?? (await this.buildTreeWithGit(base, changes));
  }

  /**
   * `buildTree` through a temporary index, for the change sets `TreeBuilder` leaves to git (odd
   * paths or modes, changes that overlap). Git's `read-tree --prefix` needs a work tree, which a
   * bare repository has not: a change inserting a tree fails here.
   */
  private async buildTreeWithGit(base: string | undefined, changes: readonly TreeChange[]): Promise<string> {
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
    const known = await this.mergeBaseInProcess(a, b);
    if (known !== null) return known;
    const result = await this.probe(["merge-base", safeArg(a), safeArg(b)]);
    return result.exitCode === 0 ? result.stdout.trim() : undefined;
  }

  /**
   * The parents of a commit stored loose; undefined when it is not (packed, absent, or not a commit),
   * which only git can sort out.
   */
  private async looseParents(sha: string): Promise<readonly string[] | undefined> {
    if (!isFullSha(sha)) return undefined;
    const object = await this.looseObject(sha);
    if (object?.type !== "commit") return undefined;
    let parents = commitParents.get(object);
    if (parents === undefined) {
      parents = [];
      const text = object.content.toString("latin1");
      // Parents follow the tree line; the headers end at the first empty line.
      for (let at = text.indexOf("\n") + 1; text.startsWith("parent ", at); at = text.indexOf("\n", at) + 1) {
        parents.push(text.slice(at + 7, at + 47));
      }
      commitParents.set(object, parents);
    }
    return parents;
  }

  /**
   * `git merge-base a b` by walking both first-parent chains in turn. The first commit one walk reaches
   * that the other has already seen is the merge base: up to it both chains were single lines, so every
   * other common ancestor is an ancestor of it. A merge commit on the way (two lines to follow), or an
   * object not stored loose, leaves the answer to git: null.
   */
  async mergeBaseInProcess(a: string, b: string): Promise<string | undefined | null> {
    const walks: { next: string | undefined; seen: Set<string> }[] = [
      { next: a, seen: new Set() },
      { next: b, seen: new Set() },
    ];
    for (let turn = 0; walks.some((walk) => walk.next !== undefined); turn++) {
      const walk = walks[turn % 2];
      const other = walks[(turn + 1) % 2];
      if (walk === undefined || other === undefined) return null;
      const sha = walk.next;
      if (sha === undefined) continue;
      const parents = await this.looseParents(sha);
      if (parents === undefined) return null;
      if (other.seen.has(sha)) return sha;
      walk.seen.add(sha);
      if (parents.length > 1) return null;
      walk.next = parents[0];
    }
    // Both lines ended at a root without meeting: unrelated histories have no merge base.
    return undefined;
  }

  /** Every commit reachable from `sha` (itself included); undefined when one is not stored loose. */
  private async ancestors(sha: string, stop?: string): Promise<Set<string> | undefined> {
    const seen = new Set<string>([sha]);
    const queue = [sha];
    for (let next = queue.pop(); next !== undefined; next = queue.pop()) {
      if (next === stop) return seen;
      const parents = await this.looseParents(next);
      if (parents === undefined) return undefined;
      for (const parent of parents) {
        if (!seen.has(parent)) {
          seen.add(parent);
          queue.push(parent);
        }
      }
    }
    return seen;
  }

  /**
   * The first-parent line from `head` down to (not including) the first commit in `stop`, newest
   * first, at most `limit` long; undefined when a commit on it is a merge (git's topological order
   * among a merge's parents is git's to give) or not stored loose.
   */
  private async linearLine(
    head: string,
    stop: ReadonlySet<string>,
    limit: number,
  ): Promise<string[] | undefined> {
    const line: string[] = [];
    for (let sha: string | undefined = head; sha !== undefined && line.length < limit && !stop.has(sha); ) {
      const parents = await this.looseParents(sha);
      if (parents === undefined || parents.length > 1) return undefined;
      line.push(sha);
      sha = parents[0];
    }
    return line;
  }

  /**
   * `git rev-list --reverse --topo-order head --not base` where the answer is one first-parent line
   * (so its order is plain); undefined when git must answer (a merge among the commits listed, an
   * object not stored loose).
   */
  async commitsBetweenInProcess(base: string, head: string): Promise<string[] | undefined> {
    // `head` first: git fails on a head it cannot read whatever `base` is.
    if ((await this.looseParents(head)) === undefined) return undefined;
    const excluded = await this.ancestors(base);
    const line = excluded === undefined ? undefined : await this.linearLine(head, excluded, Infinity);
    return line?.reverse();
  }

  /** `git rev-list --topo-order --max-count=limit head` where the answer is a first-parent line. */
  async historyInProcess(head: string, limit: number): Promise<string[] | undefined> {
    if (!Number.isInteger(limit) || limit < 0 || (await this.looseParents(head)) === undefined)
      return undefined;
    return await this.linearLine(head, new Set(), limit);
  }

  /** `git merge-base --is-ancestor`: reachability over every parent, merges included. */
  async isAncestorInProcess(ancestor: string, descendant: string): Promise<boolean | undefined> {
    if ((await this.looseParents(ancestor)) === undefined) return undefined;
    return (await this.ancestors(descendant, ancestor))?.has(ancestor);
  }

  /** Commits reachable from `head` but not from `base`, oldest first (GitHub's compare order). */
  async commitsBetween(base: string, head: string): Promise<string[]> {
    const known = await this.commitsBetweenInProcess(base, head);
    if (known !== undefined) return known;
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
    const known = await this.historyInProcess(head, limit);
    if (known !== undefined) return known;
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
    const known = await this.isAncestorInProcess(ancestor, descendant);
    if (known !== undefined) return known;
    const result = await this.probe(["merge-base", "--is-ancestor", safeArg(ancestor), safeArg(descendant)]);
    return result.exitCode === 0;
  }

  /** Files that differ between two commits (`base` undefined: the empty tree), with line counts. */
  async changedFiles(base: string | undefined, head: string): Promise<FileChange[]> {
    const known = await this.changedFilesInProcess(base, head);
    if (known !== undefined) return known;
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

  /**
   * `changedFiles` by walking both trees as git's tree diff does: entries compared by name in tree
   * order (a directory sorting as if its name ended in "/", so a file and a directory of one name are
   * two entries: one removed, the other's files added), unchanged subtrees skipped, changed ones entered.
   * Undefined when git must answer: a symlink or submodule changed, an object not stored loose, an
   * odd mode, or a blob pair whose line counts git might compute differently (see line-diff.ts).
   */
  async changedFilesInProcess(base: string | undefined, head: string): Promise<FileChange[] | undefined> {
    try {
      const from = base === undefined ? [] : await this.diffTree(await this.rootTree(base));
      const to = await this.diffTree(await this.rootTree(head));
      const changes: FileChange[] = [];
      await this.diffEntries(from, to, "", changes);
      return changes;
    } catch (error) {
      if (error instanceof NeedsGit) return undefined;
      throw error;
    }
  }

  private async rootTree(sha: string): Promise<string> {
    if (sha === EMPTY_TREE) return sha;
    const object = isFullSha(sha) ? await this.looseObject(sha) : undefined;
    if (object?.type === "tree") return sha;
    const tree =
      object?.type === "commit" ? /^tree ([0-9a-f]{40})\n/.exec(object.content.toString("latin1")) : null;
    if (tree?.[1] === undefined) throw new NeedsGit();
    return tree[1];
  }

  /** A tree's entries with their modes as git's `canon_mode` reads them (100664 is 100644). */
  private async diffTree(sha: string): Promise<RawTreeEntry[]> {
    if (sha === EMPTY_TREE) return [];
    const object = await this.looseObject(sha);
    if (object?.type !== "tree") throw new NeedsGit();
    return parseTree(object.content).map((entry) => {
      const mode = isTreeMode(entry.mode) ? "40000" : indexMode(entry.mode);
      if (mode === undefined) throw new NeedsGit();
      return { ...entry, mode };
    });
  }

  private async diffEntries(
    old: readonly RawTreeEntry[],
    next: readonly RawTreeEntry[],
    prefix: string,
    changes: FileChange[],
  ): Promise<void> {
    let i = 0;
    let j = 0;
    while (i < old.length || j < next.length) {
      const left = old[i];
      const right = next[j];
      const order = left === undefined ? 1 : right === undefined ? -1 : compareTreeEntries(left, right);
      if (order < 0 && left !== undefined) {
        await this.diffSide(left, "removed", prefix, changes);
        i++;
      } else if (order > 0 && right !== undefined) {
        await this.diffSide(right, "added", prefix, changes);
        j++;
      } else if (left !== undefined && right !== undefined) {
        i++;
        j++;
        if (left.sha === right.sha && left.mode === right.mode) continue;
        const path = prefix + left.name;
        if (isTreeMode(left.mode)) {
          await this.diffEntries(
            await this.diffTree(left.sha),
            await this.diffTree(right.sha),
            `${path}/`,
            changes,
          );
          continue;
        }
        const counts = lineCounts(await this.diffBlob(left), await this.diffBlob(right));
        if (counts === undefined) throw new NeedsGit();
        changes.push({ path: fromLatin1(path), status: "modified", sha: right.sha, ...counts });
      }
    }
  }

  /** A whole entry added or removed: a file's every line, or every file of a directory. */
  private async diffSide(
    entry: RawTreeEntry,
    status: "added" | "removed",
    prefix: string,
    changes: FileChange[],
  ): Promise<void> {
    const path = prefix + entry.name;
    if (isTreeMode(entry.mode)) {
      const entries = await this.diffTree(entry.sha);
      await this.diffEntries(
        status === "removed" ? entries : [],
        status === "added" ? entries : [],
        `${path}/`,
        changes,
      );
      return;
    }
    const content = await this.diffBlob(entry);
    const counts =
      status === "added" ? lineCounts(Buffer.alloc(0), content) : lineCounts(content, Buffer.alloc(0));
    if (counts === undefined) throw new NeedsGit();
    changes.push({ path: fromLatin1(path), status, sha: status === "removed" ? null : entry.sha, ...counts });
  }

  /** A regular file's content; symlinks and submodules (git's type changes, gitlinks) are git's. */
  private async diffBlob(entry: RawTreeEntry): Promise<Buffer> {
    if (entry.mode !== "100644" && entry.mode !== "100755") throw new NeedsGit();
    const object = await this.looseObject(entry.sha);
    if (object?.type !== "blob" || object.content.byteLength > MAX_DIFF_BYTES) throw new NeedsGit();
    return object.content;
  }

  /** `git check-ref-format <ref>`, answered in-process by git's own rules (`checkRefFormat`). */
  async isValidRefName(ref: string): Promise<boolean> {
    return checkRefFormat(safeArg(ref));
  }

  /** `git archive` of a commit as .tar.gz with every path under `prefix` (what GitHub's tarball is). */
  async archive(sha: string, prefix: string): Promise<Buffer> {
    return (await this.run(["archive", "--format=tar.gz", `--prefix=${prefix}`, safeArg(sha)])).bytes;
  }
}

/** A file (blob, symlink or submodule) in `TreeBuilder`'s picture of git's index. */
interface IndexLeaf {
  kind: "leaf";
  mode: string;
  sha: string;
}

/**
 * A directory in that picture. `valid` mirrors git's cache-tree: a directory read from the base tree
 * and left alone keeps its tree object as it is; any other is written anew from its entries.
 */
interface IndexDir {
  kind: "dir";
  sha: string | undefined;
  /** Read from the base tree (git primes its cache-tree then), not inserted by a change. */
  primed: boolean;
  valid: boolean;
  entries: Map<string, IndexLeaf | IndexDir> | undefined;
}

/** Something only git can do (an object not stored loose, a mode this code does not model). */
class NeedsGit extends Error {}

/** Parents of the commits walked, per stored object (so a repository's own objects stay its own). */
const commitParents = new WeakMap<StoredObject, string[]>();

/**
 * `GitRepo.buildTree` in-process, with the result git gives through a temporary index: `read-tree`
 * of the base, `rm --cached -r` of every changed path, then the new entries (`update-index
 * --index-info`, `read-tree --prefix`) and `write-tree`. Modes come out as the index makes them
 * (100644/100755/120000/160000), directories without files vanish, and a directory nothing touched
 * keeps its tree object byte for byte, as git's cache-tree does.
 */
export class TreeBuilder {
  private readonly filled = new Map<string, boolean>();

  constructor(private readonly repo: GitRepo) {}

  private read(sha: string): Promise<StoredObject | undefined> {
    return this.repo.looseObject(sha);
  }

  /** The new tree's SHA, or undefined when the change set is git's to apply. */
  async build(base: string | undefined, changes: readonly TreeChange[]): Promise<string | undefined> {
    if (!this.isModelled(changes)) return undefined;
    try {
      const root: IndexDir =
        base === undefined
          ? { kind: "dir", sha: undefined, primed: false, valid: false, entries: new Map() }
          : { kind: "dir", sha: base, primed: true, valid: true, entries: undefined };
      // git's read-tree fails on a base that is not there.
      await this.entries(root);
      for (const change of changes) await this.remove(root, change.path);
      const contents = changes.flatMap((change) => ("content" in change ? [change.content] : []));
      const blobs = await this.repo.writeBlobs(contents);
      for (const change of changes) {
        if ("content" in change) {
          await this.add(root, change.path, {
            kind: "leaf",
            mode: this.mode(change.mode),
            sha: blobs.shift() ?? "",
          });
        } else if (change.sha !== null && change.type === "tree") {
          // An empty tree adds no index entry, so it creates no directory either.
          if (!(await this.treeHasFiles(change.sha))) continue;
          await this.add(root, change.path, {
            kind: "dir",
            sha: change.sha,
            primed: false,
            valid: false,
            entries: undefined,
          });
        } else if (change.sha !== null) {
          const mode = this.mode(change.mode);
          // write-tree refuses an entry whose object is missing (a submodule's commit is elsewhere).
          if (
            mode !== "160000" &&
            (change.sha === ZERO_SHA || (await this.repo.objectType(change.sha)) === undefined)
          )
            throw new NeedsGit();
          await this.add(root, change.path, { kind: "leaf", mode, sha: change.sha });
        }
      }
      return await this.write(root);
    } catch (error) {
      if (error instanceof NeedsGit) return undefined;
      throw error;
    }
  }

  /** Plain paths and GitHub's modes, no change inside or on top of another: the cases modelled here. */
  private isModelled(changes: readonly TreeChange[]): boolean {
    for (const change of changes) {
      if (!isPlainPath(change.path, change.mode)) return false;
      const isTree = !("content" in change) && change.type === "tree";
      if (!isTree && indexMode(change.mode) === undefined) return false;
      if (!("content" in change) && change.sha !== null && !isFullSha(change.sha)) return false;
    }
    const paths = changes.map((change) => change.path).sort();
    for (const [index, path] of paths.entries()) {
      const next = paths[index + 1];
      if (next !== undefined && (next === path || next.startsWith(`${path}/`))) return false;
    }
    return true;
  }

  private mode(mode: string): string {
    const indexed = indexMode(mode);
    if (indexed === undefined) throw new NeedsGit();
    return indexed;
  }

  private async entries(dir: IndexDir): Promise<Map<string, IndexLeaf | IndexDir>> {
    if (dir.entries !== undefined) return dir.entries;
    const object = dir.sha === undefined ? undefined : await this.read(dir.sha);
    if (object?.type !== "tree") throw new NeedsGit();
    const entries = new Map<string, IndexLeaf | IndexDir>();
    for (const entry of parseTree(object.content)) {
      entries.set(
        entry.name,
        isTreeMode(entry.mode)
          ? { kind: "dir", sha: entry.sha, primed: dir.primed, valid: dir.primed, entries: undefined }
          : { kind: "leaf", mode: this.mode(entry.mode), sha: entry.sha },
      );
    }
    dir.entries = entries;
    return entries;
  }

  /** `git rm --cached -r <path>`: whatever is at the path goes, and the directories above change. */
  private async remove(root: IndexDir, path: string): Promise<void> {
    const parts = toLatin1(path).split("/");
    const last = parts.pop() ?? "";
    const trail = [root];
    let dir = root;
    for (const part of parts) {
      const child = (await this.entries(dir)).get(part);
      if (child?.kind !== "dir") return;
      dir = child;
      trail.push(dir);
    }
    const entries = await this.entries(dir);
    const target = entries.get(last);
    if (target === undefined) return;
    entries.delete(last);
    // A directory without files had no index entries: removing it changes nothing git would see.
    if (target.kind === "dir" && !(await this.hasFiles(target))) return;
    for (const above of trail) above.valid = false;
  }

  /** A new entry at `path`: missing directories are created, a file in the way is replaced. */
  private async add(root: IndexDir, path: string, node: IndexLeaf | IndexDir): Promise<void> {
    const parts = toLatin1(path).split("/");
    const last = parts.pop() ?? "";
    let dir = root;
    dir.valid = false;
    for (const part of parts) {
      const entries = await this.entries(dir);
      let child = entries.get(part);
      if (child?.kind !== "dir") {
        child = { kind: "dir", sha: undefined, primed: false, valid: false, entries: new Map() };
        entries.set(part, child);
      }
      dir = child;
      dir.valid = false;
    }
    (await this.entries(dir)).set(last, node);
  }

  private async hasFiles(dir: IndexDir): Promise<boolean> {
    if (dir.entries === undefined) return dir.sha !== undefined && (await this.treeHasFiles(dir.sha));
    for (const child of dir.entries.values()) {
      if (child.kind === "leaf" || (await this.hasFiles(child))) return true;
    }
    return false;
  }

  private async treeHasFiles(sha: string): Promise<boolean> {
    const known = this.filled.get(sha);
    if (known !== undefined) return known;
    const object = await this.read(sha);
    if (object?.type !== "tree") throw new NeedsGit();
    let found = false;
    for (const entry of parseTree(object.content)) {
      if (!isTreeMode(entry.mode) || (await this.treeHasFiles(entry.sha))) {
        found = true;
        break;
      }
    }
    this.filled.set(sha, found);
    return found;
  }

  private async write(dir: IndexDir): Promise<string> {
    if (dir.valid && dir.sha !== undefined) return dir.sha;
    const written: RawTreeEntry[] = [];
    for (const [name, node] of await this.entries(dir)) {
      if (node.kind === "leaf") written.push({ mode: node.mode, name, sha: node.sha });
      else if (await this.hasFiles(node)) written.push({ mode: "40000", name, sha: await this.write(node) });
    }
    return await this.repo.network.writeObject("tree", serializeTree(written));
  }
}

/**
 * What git's refs.c makes of each byte in a ref name (`refname_disposition`): 0 fine, 1 ends the
 * component ("/"), 2 a dot (".." is refused), 3 "{" ("@{" is refused), 4 never allowed (controls,
 * space, ~ ^ : ? [, backslash and DEL), 5 "*" (refused without --refspec-pattern). Bytes above 0x7f are fine.
 */
function refNameDisposition(byte: number): number {
  if (byte === 0x2f) return 1;
  if (byte === 0x2e) return 2;
  if (byte === 0x7b) return 3;
  if (byte === 0x2a) return 5;
  if (byte < 0x20 || byte === 0x7f || " ~^:?[\\".includes(String.fromCharCode(byte))) return 4;
  return 0;
}

/**
 * git's `check_refname_format(ref, 0)`, which `git check-ref-format <ref>` runs: every component
 * non-empty, not starting with "." nor ending in ".lock", no "..", "@{" or forbidden byte, the name
 * not ending in ".", and at least two components.
 */
export function checkRefFormat(ref: string): boolean {
  const bytes = Buffer.from(ref, "utf8");
  let components = 0;
  let start = 0;
  for (;;) {
    let end = start;
    let last = 0;
    for (; end < bytes.length; end++) {
      const byte = bytes[end] ?? 0;
      const disposition = refNameDisposition(byte);
      if (disposition === 1) break;
      if (disposition === 4 || disposition === 5) return false;
      if ((disposition === 2 && last === 0x2e) || (disposition === 3 && last === 0x40)) return false;
      last = byte;
    }
    const component = bytes.subarray(start, end);
    if (component.byteLength === 0 || component[0] === 0x2e) return false;
    if (component.byteLength >= 5 && component.subarray(-5).toString("latin1") === ".lock") return false;
    components++;
    if (end === bytes.length) return last !== 0x2e && components >= 2;
    start = end + 1;
  }
}

function toObjectType(value: string): ObjectType {
  if (value === "blob" || value === "tree" || value === "commit" || value === "tag") return value;
  throw new Error(`unknown git object type '${value}'`);
}

function toLatin1(text: string): string {
  return Buffer.from(text, "utf8").toString("latin1");
}

function fromLatin1(text: string): string {
  return Buffer.from(text, "latin1").toString("utf8");
}

function toBuffer(input: Uint8Array | string): Buffer {
  return typeof input === "string" ? Buffer.from(input, "utf8") : Buffer.from(input);
}

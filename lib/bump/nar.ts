/**
 * Nix archives (NAR) and their SRI hash, the `narHash` of a flake.lock node.
 *
 * The format (Eelco Dolstra's thesis, §5.2.1; Nix's src/libutil/archive.cc): every string is a
 * little-endian u64 length, the bytes, and zero padding to a multiple of 8. A node is
 * `( type regular [executable ""] contents <bytes> )`, `( type symlink target <t> )` or
 * `( type directory entry ( name <n> node <node> ) … )` with entries sorted by the bytes of their
 * names, after the magic string `nix-archive-1`.
 *
 * A tarball arrives in archive order but a NAR needs sorted directories, so {@link NarTree} keeps only
 * the tree's metadata in memory and appends file contents to one spool file as they stream in; the
 * NAR is then produced by walking the sorted tree and reading each file back. Memory stays flat in
 * the size of the files; only the number of entries costs memory.
 */
import { createHash, type Hash } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

type FileNode = { kind: "regular"; executable: boolean; offset: number; size: number };
type SymlinkNode = { kind: "symlink"; target: string };
type DirectoryNode = { kind: "directory"; entries: Map<string, NarNode> };
export type NarNode = FileNode | SymlinkNode | DirectoryNode;

const PAD = new Uint8Array(8);
const CHUNK = 1 << 20;

/** Writes NAR framing into a running hash; file contents go through `bytes` in pieces. */
class NarWriter {
  constructor(readonly hash: Hash) {}

  u64(n: number): void {
    const buf = Buffer.alloc(8);
    buf.writeBigUInt64LE(BigInt(n));
    this.hash.update(buf);
  }

  pad(length: number): void {
    const rest = length % 8;
    if (rest !== 0) this.hash.update(PAD.subarray(0, 8 - rest));
  }

  str(text: string | Uint8Array): void {
    const bytes = typeof text === "string" ? Buffer.from(text, "utf8") : text;
    this.u64(bytes.length);
    this.hash.update(bytes);
    this.pad(bytes.length);
  }
}

/** Byte order of the UTF-8 names, which is how Nix's std::map<std::string, …> sorts a directory. */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

export class NarError extends Error {}

/**
 * A file tree assembled in any order (as a tarball lists it) and serialized once, sorted, as a NAR.
 * Dispose it (`await using`) to remove its spool file.
 */
export class NarTree implements AsyncDisposable {
  readonly root: DirectoryNode = { kind: "directory", entries: new Map() };
  private readonly dir = mkdtempSync(join(tmpdir(), "flake-bump-nar-"));
  // A plain descriptor written and read synchronously: each write is of bytes already in memory
  // and lands in the page cache, and a promise per chunk cost more memory than the write.
  private spool: number | undefined;
  private spooled = 0;
  // One buffer for reading every file back, not one per file.
  private readBuffer: Buffer | undefined;

  /** A path for a scratch file of the caller's, removed with the spool when the tree is disposed. */
  scratchPath(name: string): string {
    return join(this.dir, name);
  }

  /** The directory at `path` (components), created with its parents as Nix's unpackers do. */
  private directory(path: readonly string[]): DirectoryNode {
    let dir = this.root;
    for (const name of path) {
      let next = dir.entries.get(name);
      if (next === undefined) {
        next = { kind: "directory", entries: new Map() };
        dir.entries.set(name, next);
      }
      if (next.kind !== "directory") {
        throw new NarError(`'${path.join("/")}' is both a file and a directory in the archive`);
      }
      dir = next;
    }
    return dir;
  }

  private place(path: readonly string[], node: NarNode): void {
    const name = path.at(-1);
    if (name === undefined) throw new NarError("an archive entry replaces the top directory itself");
    const parent = this.directory(path.slice(0, -1));
    const existing = parent.entries.get(name);
    // A directory listed after its own files must not drop them.
    if (existing?.kind === "directory" && node.kind === "directory") return;
    parent.entries.set(name, node);
  }

  addDirectory(path: readonly string[]): void {
    if (path.length === 0) return;
    this.place(path, { kind: "directory", entries: new Map() });
  }

  addSymlink(path: readonly string[], target: string): void {
    this.place(path, { kind: "symlink", target });
  }

  /** Appends the file's bytes to the spool as they arrive; only their offset and size stay in memory. */
  async addFile(
    path: readonly string[],
    executable: boolean,
    contents: AsyncIterable<Uint8Array>,
  ): Promise<void> {
    this.spool ??= openSync(join(this.dir, "spool"), "w+");
    const offset = this.spooled;
    for await (const chunk of contents) {
      for (let done = 0; done < chunk.length; ) {
        done += writeSync(this.spool, chunk, done, chunk.length - done, this.spooled + done);
      }
      this.spooled += chunk.length;
    }
    this.place(path, { kind: "regular", executable, offset, size: this.spooled - offset });
  }

  /** The NAR's sha256 as Nix writes it in flake.lock: `sha256-<base64>`. */
  async narHash(node: NarNode = this.root): Promise<string> {
    const out = new NarWriter(createHash("sha256"));
    out.str("nix-archive-1");
    await this.serialize(out, node);
    return `sha256-${out.hash.digest("base64")}`;
  }

  private async serialize(out: NarWriter, node: NarNode): Promise<void> {
    out.str("(");
    out.str("type");
    switch (node.kind) {
      case "regular": {
        out.str("regular");
        if (node.executable) {
          out.str("executable");
          out.str("");
        }
        out.str("contents");
        out.u64(node.size);
        await this.copy(out.hash, node.offset, node.size);
        out.pad(node.size);
        break;
      }
      case "symlink":
        out.str("symlink");
        out.str("target");
        out.str(node.target);
        break;
      case "directory": {
        out.str("directory");
        for (const name of [...node.entries.keys()].sort(byteOrder)) {
          const child = node.entries.get(name);
          if (child === undefined) continue;
          out.str("entry");
          out.str("(");
          out.str("name");
          out.str(name);
          out.str("node");
          await this.serialize(out, child);
          out.str(")");
        }
        break;
      }
    }
    out.str(")");
  }

  private async copy(hash: Hash, offset: number, size: number): Promise<void> {
    if (size === 0) return;
    const spool = this.spool;
    if (spool === undefined) throw new NarError("a file's contents were never written");
    this.readBuffer ??= Buffer.alloc(CHUNK);
    const buf = this.readBuffer;
    for (let done = 0; done < size; ) {
      const want = Math.min(buf.length, size - done);
      const bytesRead = readSync(spool, buf, 0, want, offset + done);
      if (bytesRead === 0) throw new NarError("the spool file ended early");
      hash.update(buf.subarray(0, bytesRead));
      done += bytesRead;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.spool !== undefined) closeSync(this.spool);
    this.spool = undefined;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

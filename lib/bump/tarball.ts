/**
 * Unpacking a GitHub tarball (`GET /repos/{o}/{r}/tarball/{rev}`) the way Nix does, as a stream:
 * gzip → tar → a {@link NarTree} without the single top directory (`owner-repo-shortsha/`).
 *
 * tar-stream parses the tar: it already handles ustar prefixes, pax extended headers (the long paths
 * `git archive` writes) and GNU long names, which a hand-written parser would have to relearn.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { type Extract, extract, type Header } from "tar-stream";
import { NarError, type NarTree } from "./nar.ts";

export interface TarballInfo {
  /** The top directory's name, e.g. `acme-nixfleet-0123abc`. */
  top: string;
  /** The top directory entry's mtime: what Nix ≤ 2.18 records (it stats the unpacked top directory). */
  topMtime: number | undefined;
  /** The newest mtime of any entry: what Nix ≥ 2.19 records (unpackTarfileToSink). */
  maxMtime: number;
  entries: number;
}

/** An archive Nix would unpack differently, or not at all: the native path must not guess. */
export class TarballError extends Error {}

/** The bytes stopped or were corrupt (a reset connection, a truncated gzip): worth fetching again. */
export class TarballReadError extends TarballError {}

/** Split an archive path into components, refusing what could escape the tree. */
function components(name: string): string[] {
  const parts = name.split("/").filter((part) => part !== "" && part !== ".");
  if (parts.includes("..")) throw new TarballError(`the archive entry '${name}' climbs out with '..'`);
  // tar-stream decodes names as UTF-8; a replacement character means the bytes were not UTF-8, and
  // the NAR needs the original bytes.
  if (name.includes("\uFFFD")) throw new TarballError(`the archive entry '${name}' is not valid UTF-8`);
  return parts;
}

function seconds(header: { mtime?: Date | undefined; pax?: unknown }): number {
  // libarchive prefers a pax mtime (fractional seconds) over the header's; time_t truncates.
  const pax =
    typeof header.pax === "object" && header.pax !== null && "mtime" in header.pax
      ? Number(header.pax.mtime)
      : Number.NaN;
  if (Number.isFinite(pax)) return Math.floor(pax);
  return Math.floor((header.mtime?.getTime() ?? 0) / 1000);
}

/** @param written told how many bytes are through once the consumer asks for the next chunk */
async function* bytes(
  stream: AsyncIterable<unknown>,
  written: (bytes: number) => void,
): AsyncGenerator<Uint8Array> {
  let through = 0;
  for await (const chunk of stream) {
    if (!(chunk instanceof Uint8Array))
      throw new TarballError("the tar parser yielded something other than bytes");
    yield chunk;
    through += chunk.byteLength;
    written(through);
  }
}

/**
 * Frees a gunzipped chunk's bytes now instead of at the next garbage collection. Bun's
 * DecompressionStream hands out fresh buffers whose size the collector does not see as pressure, so
 * of the 50 MB a 50 MB tarball flows through, tens of MB waited for a collection: peak memory grew
 * with the tarball although every stage was already paced (the gunzip stays within 0.4 MB of its
 * reader). Only a view of a whole buffer is freed (`transfer(0)` detaches it); the caller
 * guarantees nothing else holds it.
 */
function release(chunk: Uint8Array): void {
  const { buffer } = chunk;
  if (buffer instanceof ArrayBuffer && chunk.byteOffset === 0 && chunk.byteLength === buffer.byteLength) {
    buffer.transfer(0);
  }
}

/** Where an entry's data starts in the tar stream: tar-stream's `byteOffset` (not in its types). */
function dataStart(header: Header): number | undefined {
  const offset: unknown = "byteOffset" in header ? header.byteOffset : undefined;
  return typeof offset === "number" ? offset : undefined;
}

/** Resolves when `tar` takes writes again; rejects when it was destroyed meanwhile. */
function drained(tar: Extract): Promise<void> {
  // Destroyed already, it emits no more events.
  if (tar.destroyed) return Promise.reject(new TarballReadError("the tar parser stopped"));
  return new Promise((resolve, reject) => {
    const settle = () => {
      tar.off("drain", settle);
      tar.off("close", settle);
      if (tar.destroyed) reject(new TarballReadError("the tar parser stopped"));
      else resolve();
    };
    tar.on("drain", settle);
    tar.on("close", settle);
  });
}

/** How much compressed input the gunzip is given at a time. */
const GUNZIP_PIECE = 64 * 1024;

/**
 * The chunks of `gz` in pieces of at most {@link GUNZIP_PIECE}, each yielded only after the previous
 * one was consumed. In pieces: the gunzip hands out fresh buffers in proportion to what it is given
 * (up to 512 KiB for a 256 KiB body chunk); at 64 KiB they are reused instead of piling up, about
 * 2 MB less at the peak on a 50 MB tarball (bench/README.md, 2026-12-03).
 */
async function* pieces(gz: AsyncIterable<unknown>): AsyncGenerator<Uint8Array<ArrayBuffer>> {
  for await (const chunk of gz) {
    if (!(chunk instanceof Uint8Array))
      throw new TarballReadError("the body yielded something other than bytes");
    const { buffer, byteOffset, byteLength } = chunk;
    if (!(buffer instanceof ArrayBuffer)) throw new TarballReadError("the body arrived in shared memory");
    for (let at = 0; at < byteLength; at += GUNZIP_PIECE) {
      yield new Uint8Array(buffer, byteOffset + at, Math.min(GUNZIP_PIECE, byteLength - at));
    }
  }
}

/** How long {@link tail} waits for the writer when it has read everything written so far. */
const TAIL_WAIT_MS = 2;

/**
 * The bytes of the file at `path` while another writer still appends to them, until `written`
 * settles: read at the last offset into one reused buffer, so no chunk of the download is ever a
 * fresh buffer in JavaScript. Each yielded view is valid until the next one is asked for.
 * Bun offers no event for a native write's progress, so an empty read waits a short timer (or the
 * write's end, whichever comes first).
 * @param written the native write into `path`; its rejection (a reset connection) ends the bytes with
 *   a {@link TarballReadError} naming it
 */
export async function* tail(path: string, written: Promise<unknown>): AsyncGenerator<Uint8Array> {
  let settled = false;
  let failure: { error: unknown } | undefined;
  const done = written.then(
    () => {
      settled = true;
    },
    (error: unknown) => {
      settled = true;
      failure = { error };
    },
  );
  const fd = openSync(path, "r");
  const buffer = Buffer.allocUnsafe(GUNZIP_PIECE);
  try {
    for (let offset = 0; ; ) {
      // Whether the write had ended before this read: if so, a read of 0 bytes is the end.
      const ended = settled;
      if (failure !== undefined) {
        const { error } = failure;
        throw new TarballReadError(
          `the download broke off (${error instanceof Error ? error.message : String(error)})`,
        );
      }
      const bytesRead = readSync(fd, buffer, 0, buffer.length, offset);
      if (bytesRead > 0) {
        offset += bytesRead;
        yield buffer.subarray(0, bytesRead);
      } else if (ended) return;
      else await Promise.race([done, Bun.sleep(TAIL_WAIT_MS)]);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Unpack a gzip'd tarball into `tree`, dropping its single top directory.
 *
 * Three paced loops: the body is read one chunk at a time and written into the gunzip, the gunzip's
 * output is written into tar-stream only while it takes more, and the entries are written into the
 * tree as tar-stream parses them; each gunzipped chunk is freed as soon as its bytes are through, so
 * memory stays flat in the tarball's size. The caller's chunks are left as they are.
 * @param gz the tarball's bytes as they arrive, e.g. {@link tail} of the file the download is
 *   written to (never buffered whole)
 */
export async function unpackTarball(gz: AsyncIterable<Uint8Array>, tree: NarTree): Promise<TarballInfo> {
  // Bun's DecompressionStream (native zlib on whole chunks) gunzips a 50 MB tarball in about half
  // the time node:zlib's createGunzip takes with its 16 KiB output chunks.
  const gunzip = new DecompressionStream("gzip");
  const tar = extract();
  const info: TarballInfo = { top: "", topMtime: undefined, maxMtime: 0, entries: 0 };
  // Gunzipped chunks tar-stream may still read (it hands out views of them), oldest first, each with
  // where it ends in the tar stream.
  const held: { chunk: Uint8Array; end: number }[] = [];
  let fed = 0;
  const parsedTo = (offset: number) => {
    while (held.length > 0 && (held[0]?.end ?? Number.POSITIVE_INFINITY) <= offset) {
      const first = held.shift();
      if (first !== undefined) release(first.chunk);
    }
  };

  const feed = async () => {
    const writer = gunzip.writable.getWriter();
    try {
      for await (const piece of pieces(gz)) await writer.write(piece);
      await writer.close();
    } catch (error) {
      await writer.abort(error).catch(() => undefined);
      throw error;
    }
  };

  const parse = async () => {
    try {
      for await (const chunk of gunzip.readable) {
        fed += chunk.byteLength;
        held.push({ chunk, end: fed });
        if (!tar.write(chunk)) await drained(tar);
      }
      // streamx's end(data) writes `data` first when it is given; its type asks for the argument.
      tar.end(undefined);
    } catch (error) {
      tar.destroy(error instanceof Error ? error : new TarballReadError(String(error)));
      throw error;
    }
  };

  const consume = async () => {
    for await (const entry of tar) {
      // Everything before the entry's data is parsed, and its data as far as it is written.
      const start = dataStart(entry.header);
      const written = (bytes: number) => {
        if (start !== undefined) parsedTo(start + bytes);
      };
      written(0);
      await addEntry(entry, tree, info, written);
    }
  };

  // Every loop settles before anything is thrown: a broken gzip stream ends the entry loop, and a
  // refused entry ends the others, so none leaves a rejection unobserved.
  const results = await Promise.allSettled([
    consume().catch((error: unknown) => {
      tar.destroy();
      throw error;
    }),
    parse(),
    feed(),
  ]);
  for (const result of results) {
    if (result.status === "rejected") {
      const error: unknown = result.reason;
      if (
        (error instanceof TarballError && !(error instanceof TarballReadError)) ||
        error instanceof NarError
      )
        throw error;
    }
  }
  for (const result of results) {
    if (result.status === "rejected") {
      const error: unknown = result.reason;
      throw new TarballReadError(
        `the tarball could not be read (${error instanceof Error ? error.message : String(error)})`,
      );
    }
  }
  if (info.top === "") throw new TarballError("the archive is empty");
  return info;
}

/** An entry as tar-stream yields it (its type is not exported by name). */
type Entry = Extract extends AsyncIterable<infer E> ? E : never;

/** One archive entry into `tree`, with what `info` keeps of it. */
async function addEntry(
  entry: Entry,
  tree: NarTree,
  info: TarballInfo,
  written: (bytes: number) => void,
): Promise<void> {
  const { header } = entry;
  const parts = components(header.name);
  const [top, ...path] = parts;
  if (top === undefined) throw new TarballError(`the archive has an entry without a name`);
  if (info.top === "") info.top = top;
  else if (top !== info.top) {
    throw new TarballError(
      `the archive has more than one top-level entry ('${info.top}', '${top}'), unlike GitHub's tarballs`,
    );
  }
  const mtime = seconds(header);
  info.maxMtime = Math.max(info.maxMtime, mtime);
  info.entries++;
  switch (header.type) {
    case "directory":
      if (path.length === 0) info.topMtime = mtime;
      else tree.addDirectory(path);
      entry.resume();
      break;
    case "file":
    case "contiguous-file":
      if (path.length === 0) throw new TarballError(`the archive's top-level entry '${top}' is a file`);
      // Nix 2.19+ looks at the owner's execute bit only; older Nix unpacks with libarchive and then
      // asks the same of the file's mode.
      await tree.addFile(path, ((header.mode ?? 0) & 0o100) !== 0, bytes(entry, written));
      break;
    case "symlink":
      if (path.length === 0) throw new TarballError(`the archive's top-level entry '${top}' is a symlink`);
      tree.addSymlink(path, header.linkname ?? "");
      entry.resume();
      break;
    default:
      throw new TarballError(
        `the archive entry '${header.name}' is a ${header.type ?? "file of unknown type"}, which GitHub's tarballs never contain`,
      );
  }
}

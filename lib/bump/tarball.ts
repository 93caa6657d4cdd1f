/**
 * Unpacking a GitHub tarball (`GET /repos/{o}/{r}/tarball/{rev}`) the way Nix does, as a stream:
 * gzip → tar → a {@link NarTree} without the single top directory (`owner-repo-shortsha/`).
 *
 * tar-stream parses the tar: it already handles ustar prefixes, pax extended headers (the long paths
 * `git archive` writes) and GNU long names, which a hand-written parser would have to relearn.
 */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { extract } from "tar-stream";
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

async function* bytes(stream: AsyncIterable<unknown>): AsyncGenerator<Uint8Array> {
  for await (const chunk of stream) {
    if (!(chunk instanceof Uint8Array))
      throw new TarballError("the tar parser yielded something other than bytes");
    yield chunk;
  }
}

function webStream(chunks: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const iterator = chunks[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await iterator.next();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    async cancel() {
      await iterator.return?.();
    },
  });
}

/**
 * Unpack a gzip'd tarball into `tree`, dropping its single top directory.
 * @param gz the response body as it arrives (never buffered whole)
 */
export async function unpackTarball(
  gz: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
  tree: NarTree,
): Promise<TarballInfo> {
  const compressed: ReadableStream<ArrayBufferView | ArrayBuffer> =
    gz instanceof ReadableStream ? gz : webStream(gz);
  // Bun's DecompressionStream (native zlib on whole chunks) gunzips a 50 MB tarball in about half
  // the time node:zlib's createGunzip takes with its 16 KiB output chunks.
  const source = Readable.fromWeb(compressed.pipeThrough(new DecompressionStream("gzip")));
  const tar = extract();
  const info: TarballInfo = { top: "", topMtime: undefined, maxMtime: 0, entries: 0 };

  const consume = async () => {
    for await (const entry of tar) {
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
          await tree.addFile(path, ((header.mode ?? 0) & 0o100) !== 0, bytes(entry));
          break;
        case "symlink":
          if (path.length === 0)
            throw new TarballError(`the archive's top-level entry '${top}' is a symlink`);
          tree.addSymlink(path, header.linkname ?? "");
          entry.resume();
          break;
        default:
          throw new TarballError(
            `the archive entry '${header.name}' is a ${header.type ?? "file of unknown type"}, which GitHub's tarballs never contain`,
          );
      }
    }
  };

  // Both sides settle before anything is thrown: a broken gzip stream ends the entry loop, and a
  // refused entry ends the pipeline, so neither leaves a rejection unobserved.
  const [piped, consumed] = await Promise.allSettled([
    pipeline(source, tar),
    consume().catch((error: unknown) => {
      tar.destroy();
      throw error;
    }),
  ]);
  for (const result of [consumed, piped]) {
    if (result.status === "rejected") {
      const error: unknown = result.reason;
      if (
        (error instanceof TarballError && !(error instanceof TarballReadError)) ||
        error instanceof NarError
      )
        throw error;
    }
  }
  for (const result of [piped, consumed]) {
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

/**
 * The NAR serializer and tarball unpacker against Nix's own `nix hash path` on the same tree, for
 * `git archive` tarballs (what GitHub serves). Needs Nix on PATH, no network and no port 443.
 */
import { describe, expect, test } from "bun:test";
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { $ } from "zx";
import { NarTree } from "../../lib/bump/nar.ts";
import { TarballError, TarballReadError, tail, unpackTarball } from "../../lib/bump/tarball.ts";
import { gitRepo } from "../support/git.ts";

async function nixHashOfArchive(tarGz: Buffer): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "flake-bump-nar-test-"));
  try {
    await $({ cwd: dir, input: tarGz, quiet: true })`tar xzf -`;
    const [top] = (await $({ cwd: dir, quiet: true })`ls`).stdout.trim().split("\n");
    const out = await $({
      quiet: true,
    })`nix --extra-experimental-features nix-command hash path ${join(dir, top ?? "")}`;
    return out.stdout.trim();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** zx decodes output as text, which would mangle the gzip bytes: archive to a file instead. */
async function archive(dir: string, rev: string, prefix?: string): Promise<Buffer> {
  const file = join(dir, ".git", "test-archive.tar.gz");
  const args = prefix === undefined ? [] : [`--prefix=${prefix}`];
  await $({ cwd: dir, quiet: true })`git archive --format=tar.gz ${args} --output=${file} ${rev}`;
  return readFile(file);
}

async function nativeHash(tarGz: Buffer) {
  await using tree = new NarTree();
  const info = await unpackTarball(Readable.from([tarGz]), tree);
  return { hash: await tree.narHash(), info };
}

describe("NAR hash of a git archive tarball", () => {
  test("matches nix hash path: exec bits, symlinks, deep trees, odd names, long paths", async () => {
    await using repo = await gitRepo({ files: { "flake.nix": "{ outputs = _: { }; }\n" } });
    const long = `${"d".repeat(60)}/${"e".repeat(60)}/${"f".repeat(60)}/long-file-name.txt`;
    await repo.commit(
      {
        "bin/run": "#!/bin/sh\necho hi\n",
        "a b/ünïcødé file.txt": "spaces and non-ASCII\n",
        [long]: "a path longer than ustar's 100 bytes\n",
        "deep/1/2/3/4/5/6/7/8/leaf": "deep\n",
        A: "upper sorts before lower\n",
        a: "lower\n",
        "a.b": "dot\n",
        empty: "",
      },
      "tree",
    );
    await repo.git("update-index", "--chmod=+x", "bin/run");
    await $({ cwd: repo.dir, quiet: true })`ln -s ../a bin/rel-link`;
    await $({ cwd: repo.dir, quiet: true })`ln -s does/not/exist dangling`;
    await repo.git("add", "--all");
    await repo.git("commit", "--quiet", "-m", "links");
    const rev = await repo.head();
    const tar = await archive(repo.dir, rev, "o-r-abc/");
    const { hash, info } = await nativeHash(tar);
    expect(hash).toBe(await nixHashOfArchive(tar));
    expect(info.top).toBe("o-r-abc");
    expect(info.topMtime).toBe(info.maxMtime);
  });

  test("a truncated tarball is one TarballError", async () => {
    await using repo = await gitRepo({ files: { "x.txt": "x".repeat(100_000) } });
    const tar = await archive(repo.dir, "HEAD", "t/");
    await expect(nativeHash(tar.subarray(0, Math.floor(tar.length / 2)))).rejects.toBeInstanceOf(
      TarballError,
    );
  });

  test("a tarball without one top directory is refused", async () => {
    await using repo = await gitRepo({ files: { "x.txt": "x", "y.txt": "y" } });
    const tar = await archive(repo.dir, "HEAD");
    await expect(nativeHash(tar)).rejects.toThrow(/top-level entry .x.txt. is a file/);
  });

  test("a file still being written, read as it grows through one buffer: still Nix's hash", async () => {
    // Several MB of incompressible bytes (xorshift), so the file spans many gunzipped chunks.
    const noise = new Uint8Array(6 * 1024 * 1024);
    let x = 7;
    for (let i = 0; i < noise.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      noise[i] = x & 0xff;
    }
    const long = `${"p".repeat(80)}/${"q".repeat(80)}/file.bin`;
    await using repo = await gitRepo({ files: { "a.txt": "a\n", "z/small": "z\n" } });
    await mkdir(dirname(join(repo.dir, long)), { recursive: true });
    await writeFile(join(repo.dir, long), noise);
    await repo.commit({}, "a file of several MB");
    const tar = await archive(repo.dir, "HEAD", "o-r-abc/");
    await using tree = new NarTree();
    const file = tree.scratchPath("download.tar.gz");
    await writeFile(file, "");
    // A writer that appends odd-sized pieces with pauses, as a download does.
    const written = (async () => {
      for (let at = 0; at < tar.length; at += 300_007) {
        await appendFile(file, tar.subarray(at, at + 300_007));
        await Bun.sleep(1);
      }
    })();
    const buffers = new Set<ArrayBufferLike>();
    let bytesSeen = 0;
    async function* watched() {
      for await (const chunk of tail(file, written)) {
        buffers.add(chunk.buffer);
        bytesSeen += chunk.byteLength;
        yield chunk;
      }
    }
    await unpackTarball(watched(), tree);
    expect(await tree.narHash()).toBe(await nixHashOfArchive(tar));
    expect(bytesSeen).toBe(tar.length);
    // Every piece was a view of the same buffer: no fresh buffer per chunk.
    expect(buffers.size).toBe(1);
  }, 30_000);

  test("a download that breaks off ends the bytes with a read error naming why", async () => {
    await using repo = await gitRepo({ files: { "x.txt": "x".repeat(100_000) } });
    const tar = await archive(repo.dir, "HEAD", "t/");
    await using tree = new NarTree();
    const file = tree.scratchPath("download.tar.gz");
    await writeFile(file, tar.subarray(0, Math.floor(tar.length / 2)));
    const written = Promise.reject(new Error("socket closed"));
    const unpacked = unpackTarball(tail(file, written), tree);
    await expect(unpacked).rejects.toBeInstanceOf(TarballReadError);
    await expect(unpacked).rejects.toThrow(/download broke off \(socket closed\)/);
  });

  test("an entry refused while megabytes are still to come ends the download, once, without hanging", async () => {
    await using repo = await gitRepo({ files: { "d/a.txt": "a\n" } });
    const noise = Uint8Array.from({ length: 4 * 1024 * 1024 }, (_, i) => (i * 2654435761) >>> 24);
    await mkdir(join(repo.dir, "z"), { recursive: true });
    await writeFile(join(repo.dir, "z", "blob"), noise);
    await repo.commit({}, "a blob after the refused entry");
    // No prefix: two top-level entries, the second refused before the blob's bytes arrive.
    const tar = await archive(repo.dir, "HEAD");
    const parts = Array.from({ length: Math.ceil(tar.length / 4096) }, (_, i) =>
      Uint8Array.from(tar.subarray(i * 4096, (i + 1) * 4096)),
    );
    await using tree = new NarTree();
    await expect(unpackTarball(Readable.from(parts), tree)).rejects.toThrow(
      /more than one top-level entry \('d', 'z'\)/,
    );
  }, 30_000);
});

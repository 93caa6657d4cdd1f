/**
 * Differential: for the same upstream history on the fake GitHub, the native engine's flake.lock must
 * be byte-identical to what real Nix writes with `nix flake lock --override-input`, on every Nix
 * version under test. Plus the download's faults. Needs port 443: run under
 * `flock /tmp/flake-bump-443.lock`.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { $ } from "zx";
import {
  fetchLocked,
  lockEligibility,
  movedLockText,
  NotNative,
  serializeLock,
  upstreamEligibility,
} from "../lib/bump/native.ts";
import { pinnedRef } from "../lib/flake/flakeref.ts";
import { parseLock } from "../lib/flake/lock.ts";
import { createOctokit, type Octokit } from "../lib/github/client.ts";
import { type FakeGitHub, fakeGitHub } from "./fake-github/index.ts";
import { type NixTestEnv, nixTestEnv, nixVariants } from "./support/nix.ts";

const TIMEOUT = 300_000;
const OWNER = "acme";
const EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/** One entry of an upstream commit's tree. */
type Entry =
  | { path: string; kind: "file" | "exec"; content: string | Uint8Array }
  | { path: string; kind: "symlink"; target: string }
  | { path: string; kind: "empty-dir" };

/** Seeded PRNG (mulberry32): the random histories are the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Incompressible bytes: an archive cut after N bytes is then really cut inside the data. */
function noise(size: number): Uint8Array {
  const rand = prng(size);
  return Uint8Array.from({ length: size }, () => Math.floor(rand() * 256));
}

const NAME_PARTS = ["a", "B", "z", "file", "with space", "ünï", "日本", "x.y", "-dash", "_u", "Ω", "9"];

function randomTree(seed: number): Entry[] {
  const rand = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
  const entries: Entry[] = [{ path: "flake.nix", kind: "file", content: "{ outputs = _: { }; }\n" }];
  const dirs = [""];
  const used = new Set(["flake.nix"]);
  const count = 5 + Math.floor(rand() * 25);
  for (let i = 0; i < count; i++) {
    const parent = pick(dirs);
    const name = `${pick(NAME_PARTS)}${rand() < 0.5 ? pick(NAME_PARTS) : ""}${i}`;
    const path = parent === "" ? name : `${parent}/${name}`;
    if (used.has(path)) continue;
    used.add(path);
    const roll = rand();
    if (roll < 0.25) dirs.push(path);
    else if (roll < 0.35) {
      const target =
        rand() < 0.5
          ? `../${pick(NAME_PARTS)}`
          : (pick([...used])
              .split("/")
              .at(-1) ?? "x");
      entries.push({ path, kind: "symlink", target });
    } else {
      const size = Math.floor(rand() ** 3 * 20_000);
      const bytes = new Uint8Array(size).map(() => Math.floor(rand() * 256));
      entries.push({ path, kind: rand() < 0.2 ? "exec" : "file", content: bytes });
    }
  }
  // A directory with nothing in it yet gets a file, so git keeps it.
  for (const dir of dirs.slice(1)) {
    if (!entries.some((entry) => entry.path.startsWith(`${dir}/`))) {
      entries.push({ path: `${dir}/keep`, kind: "file", content: `${dir}\n` });
    }
  }
  return entries;
}

interface Upstream {
  name: string;
  revs: string[];
  /** Replace the whole tree with `entries` in a new commit and push it; returns its sha. */
  commit(entries: Entry[], message: string): Promise<string>;
}

let commitClock = Date.UTC(2024, 0, 1) / 1000;

async function upstream(fake: FakeGitHub, scratch: string, name: string): Promise<Upstream> {
  await fake.createRepo(OWNER, name, { files: { "flake.nix": "{ outputs = _: { }; }\n" } });
  const dir = join(scratch, `up-${name}`);
  const env = { ...process.env, GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" };
  await $({ env, quiet: true })`git clone --quiet ${fake.cloneUrl(OWNER, name)} ${dir}`;
  const git = async (args: string[], extra: Record<string, string> = {}, input?: string) =>
    (
      await $({
        cwd: dir,
        env: { ...env, ...extra },
        quiet: true,
        ...(input === undefined ? {} : { input }),
      })`git ${args}`
    ).stdout.trim();
  const self: Upstream = {
    name,
    revs: [await git(["rev-parse", "HEAD"])],
    async commit(entries, message) {
      await git(["rm", "-r", "-q", "--ignore-unmatch", "."]);
      for (const entry of entries) {
        if (entry.kind === "empty-dir") continue;
        const file = join(dir, entry.path);
        await mkdir(dirname(file), { recursive: true });
        if (entry.kind === "symlink") await symlink(entry.target, file);
        else await writeFile(file, entry.content, { mode: entry.kind === "exec" ? 0o755 : 0o644 });
      }
      await git(["add", "--all"]);
      let tree = await git(["write-tree"]);
      // git cannot stage an empty directory, but a tree may hold the empty tree (GitHub archives it).
      const empties = entries.filter((entry) => entry.kind === "empty-dir").map((entry) => entry.path);
      if (empties.length > 0) {
        await git(["hash-object", "-w", "-t", "tree", "/dev/null"]);
        const listing = await git(["ls-tree", tree]);
        const lines = [listing, ...empties.map((path) => `040000 tree ${EMPTY_TREE}\t${path}`)];
        tree = await git(["mktree"], {}, `${lines.filter(Boolean).join("\n")}\n`);
      }
      commitClock += 3600;
      const date = `${commitClock} +0000`;
      const sha = await git(["commit-tree", tree, "-p", "HEAD", "-m", message], {
        GIT_AUTHOR_NAME: "t",
        GIT_AUTHOR_EMAIL: "t@t.invalid",
        GIT_COMMITTER_NAME: "t",
        GIT_COMMITTER_EMAIL: "t@t.invalid",
        GIT_AUTHOR_DATE: date,
        GIT_COMMITTER_DATE: date,
      });
      await git(["reset", "--quiet", "--hard", sha]);
      await git(["push", "--quiet", "origin", "HEAD:main"]);
      self.revs.push(sha);
      return sha;
    },
  };
  return self;
}

const variants = nixVariants();
let fake: FakeGitHub;
let octokit: Octokit;
const compared: Record<string, number> = {};

beforeAll(async () => {
  fake = await fakeGitHub();
  octokit = createOctokit({ token: fake.token, baseUrl: fake.apiUrl, waitScale: 0 });
});
// The shared fake lives as long as the process: later test files in the same run use it too.
afterAll(() => {
  for (const [name, count] of Object.entries(compared))
    console.info(`${name}: ${count} locks compared byte for byte`);
});

for (const variant of variants) {
  describe(`native lock equals ${variant.name}'s`, () => {
    let scratch: string;
    let nixEnv: NixTestEnv;
    let env: Record<string, string | undefined>;

    beforeAll(async () => {
      nixEnv = nixTestEnv({ certFile: fake.certFile });
      env = { ...process.env, ...nixEnv, ...variant.env };
    });
    afterAll(async () => {
      await nixEnv[Symbol.asyncDispose]();
    });
    beforeEach(async () => {
      await fake.reset();
      scratch = await mkdtemp(join(tmpdir(), "flake-bump-native-"));
    });

    const nix = (cwd: string, args: string[]) =>
      $({ cwd, env, quiet: true })`nix --extra-experimental-features ${"nix-command flakes"} ${args}`;

    /** A downstream flake whose inputs are `inputs` (Nix syntax), locked by this Nix. */
    async function downstream(inputs: string): Promise<string> {
      const dir = join(scratch, "down");
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, "flake.nix"), `{\n  inputs = {\n${inputs}\n  };\n  outputs = _: { };\n}\n`);
      await nix(dir, ["flake", "lock"]);
      return dir;
    }

    /** Move `input` to `rev` with Nix and natively from the same lock; both texts must be equal. */
    async function differential(dir: string, input: string, rev: string): Promise<void> {
      const text = await readFile(join(dir, "flake.lock"), "utf8");
      const lock = parseLock(text);
      const key = lock.nodes[lock.root]?.inputs?.[input];
      const node = typeof key === "string" ? lock.nodes[key] : undefined;
      if (node === undefined) throw new Error(`no node for ${input}`);
      const copy = join(scratch, `nix-${input}-${rev.slice(0, 7)}`);
      await cp(dir, copy, { recursive: true });
      await nix(copy, ["flake", "lock", "--override-input", input, pinnedRef(input, node, rev)]);
      const byNix = await readFile(join(copy, "flake.lock"), "utf8");
      await rm(copy, { recursive: true, force: true });

      const eligible = lockEligibility(lock, text, input);
      if (!eligible.native) throw new Error(`not native: ${eligible.reason}`);
      const from = node.locked?.rev ?? "";
      const upstreamOk = await upstreamEligibility(octokit, node, eligible.source, from, rev);
      if (!upstreamOk.native) throw new Error(`not native: ${upstreamOk.reason}`);
      const result = await fetchLocked(octokit, eligible.source, rev);
      const native = movedLockText(lock, input, result);
      if (node.flake === false && variant.version.startsWith("2.8")) {
        // Nix 2.8's --override-input also writes the rev into a non-flake input's `original` (newer
        // Nix does not), which would make the input look pinned in flake.nix on the next run. The
        // native engine writes what newer Nix writes; everything else must still match 2.8 exactly.
        const withRev = parseLock(native);
        const moved = typeof key === "string" ? withRev.nodes[key] : undefined;
        if (moved?.original !== undefined) moved.original.rev = rev;
        expect(serializeLock(withRev)).toBe(byNix);
      } else {
        expect(native).toBe(byNix);
      }
      expect(byNix).not.toBe(text);
      compared[variant.name] = (compared[variant.name] ?? 0) + 1;
    }

    test(
      "exec bits, symlinks (relative, dangling), empty dirs, deep trees, odd names, pax long paths, 10 MB file",
      async () => {
        const up = await upstream(fake, scratch, "up");
        const dir = await downstream(`    up.url = "github:acme/up?host=localhost";`);
        const big = new Uint8Array(10 * 1024 * 1024 + 3).map((_, i) => (i * 7919) & 0xff);
        const long = `${"l".repeat(70)}/${"o".repeat(70)}/${"n".repeat(70)}/file with ünïcødé name.txt`;
        const rev = await up.commit(
          [
            { path: "flake.nix", kind: "file", content: "{ outputs = _: { }; }\n" },
            { path: "bin/run", kind: "exec", content: "#!/bin/sh\necho run\n" },
            { path: "bin/rel", kind: "symlink", target: "run" },
            { path: "up-link", kind: "symlink", target: "../outside" },
            { path: "dangling", kind: "symlink", target: "no/such/file" },
            { path: "empty", kind: "empty-dir" },
            { path: "d/1/2/3/4/5/6/7/8/9/leaf", kind: "file", content: "deep\n" },
            { path: "name with spaces/日本語 ünï.txt", kind: "file", content: "odd\n" },
            { path: long, kind: "file", content: "long\n" },
            { path: "big.bin", kind: "file", content: big },
            { path: "zero", kind: "file", content: "" },
          ],
          "many kinds of entries",
        );
        await differential(dir, "up", rev);
      },
      TIMEOUT,
    );

    test(
      "a flake = false input, a ?dir= input, each moved alone",
      async () => {
        const raw = await upstream(fake, scratch, "raw");
        const sub = await upstream(fake, scratch, "sub");
        await sub.commit(
          [
            { path: "nix/flake.nix", kind: "file", content: "{ outputs = _: { }; }\n" },
            { path: "README", kind: "file", content: "root\n" },
          ],
          "flake under nix/",
        );
        const dir = await downstream(
          [
            `    raw = { url = "github:acme/raw?host=localhost"; flake = false; };`,
            `    sub.url = "github:acme/sub?host=localhost&dir=nix";`,
          ].join("\n"),
        );
        const rawRev = await raw.commit(
          [
            { path: "data.txt", kind: "file", content: "not a flake\n" },
            { path: "tool", kind: "exec", content: "#!/bin/sh\n" },
          ],
          "no flake.nix at all",
        );
        await differential(dir, "raw", rawRev);
        const subRev = await sub.commit(
          [
            { path: "nix/flake.nix", kind: "file", content: "{ outputs = _: { }; }\n" },
            { path: "README", kind: "file", content: "root, changed\n" },
            { path: "nix/extra", kind: "file", content: "more\n" },
          ],
          "change beside the flake",
        );
        await differential(dir, "sub", subRev);
      },
      TIMEOUT,
    );

    test(
      "seeded random histories",
      async () => {
        const up = await upstream(fake, scratch, "rnd");
        const dir = await downstream(`    rnd.url = "github:acme/rnd?host=localhost";`);
        for (let seed = 1; seed <= 6; seed++) {
          const rev = await up.commit(randomTree(seed * 7919 + variant.version.length), `random ${seed}`);
          await differential(dir, "rnd", rev);
        }
      },
      TIMEOUT,
    );
  });
}

describe("eligibility and the download's faults (fake GitHub, no Nix)", () => {
  let scratch: string;
  beforeEach(async () => {
    await fake.reset();
    scratch = await mkdtemp(join(tmpdir(), "flake-bump-native-"));
  });

  test("a changed flake.nix or flake.lock upstream is not native, and says why", async () => {
    const up = await upstream(fake, scratch, "up");
    const from = up.revs[0] ?? "";
    const to = await up.commit(
      [{ path: "flake.nix", kind: "file", content: '{ inputs.x.url = "github:a/b"; outputs = _: { }; }\n' }],
      "new input",
    );
    const node = { locked: { type: "github", owner: OWNER, repo: "up", rev: from } };
    const answer = await upstreamEligibility(octokit, node, { owner: OWNER, repo: "up" }, from, to);
    expect(answer).toStrictEqual({
      native: false,
      reason: "its flake.nix changed, so Nix must re-lock its inputs",
    });
    const same = await up.commit(
      [
        { path: "flake.nix", kind: "file", content: '{ inputs.x.url = "github:a/b"; outputs = _: { }; }\n' },
        { path: "other", kind: "file", content: "x\n" },
      ],
      "unrelated",
    );
    expect((await upstreamEligibility(octokit, node, { owner: OWNER, repo: "up" }, to, same)).native).toBe(
      true,
    );
  });

  const faults = [
    { name: "a 502 from the API", fault: { operationId: "repos/download-tarball-archive", status: 502 } },
    { name: "a 503 from codeload", fault: { path: /_codeload/, status: 503 } },
    { name: "a reset mid-stream", fault: { path: /_codeload/, cut: { bytes: 20_000, reset: true } } },
    { name: "a truncated gzip", fault: { path: /_codeload/, cut: { bytes: 20_000 } } },
  ];
  for (const { name, fault } of faults) {
    test(`${name} is retried and the result is unchanged`, async () => {
      const up = await upstream(fake, scratch, "up");
      const rev = await up.commit([{ path: "big", kind: "file", content: noise(200_000) }], "big");
      const source = { owner: OWNER, repo: "up" };
      const clean = await fetchLocked(octokit, source, rev, { retryDelayMs: 0 });
      fake.injectFault(fault);
      expect(await fetchLocked(octokit, source, rev, { retryDelayMs: 0 })).toStrictEqual(clean);
      expect(fake.requests.some((request) => request.fault)).toBe(true);
    });
  }

  test("a download that keeps failing is one clean error", async () => {
    const up = await upstream(fake, scratch, "up");
    const rev = await up.commit(
      // Incompressible bytes, so the first kilobyte of the archive really is a truncated one.
      [{ path: "f", kind: "file", content: noise(100_000) }],
      "f",
    );
    fake.injectFault({ path: /_codeload/, cut: { bytes: 1_000 }, times: 3 });
    const error = await fetchLocked(octokit, { owner: OWNER, repo: "up" }, rev, { retryDelayMs: 0 }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(NotNative);
    expect(String(error)).toMatch(
      /could not download acme\/up at .* after 3 attempts: .*; flake.lock was left as it was/,
    );
  });
});

/**
 * The engine decision inside bump(), in process: the fake GitHub on an ephemeral port answers the
 * compare and serves the tarballs, the Nix stand-in plays Nix. What is checked is which engine moves
 * which input and why, that native and Nix moves compose (each input's own lock = base + its move,
 * the combined lock = all moves), that `native` refuses with one sentence and `nix` is Nix for all,
 * that a missing Nix only matters when an input needs it, and `--check`'s needs-nix. That the native
 * bytes equal real Nix's is tests/native.test.ts's job (both Nix versions).
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type BumpDeps, bump, checkOutdated } from "../../lib/bump/bump.ts";
import type { Freshness } from "../../lib/bump/freshness.ts";
import { fetchLocked, movedLockText, serializeLock } from "../../lib/bump/native.ts";
import { restoreOriginal } from "../../lib/bump/nix-run.ts";
import { RuntimeError, UsageError } from "../../lib/core/errors.ts";
import type { Engine } from "../../lib/core/ids.ts";
import { type FlakeLock, parseLock } from "../../lib/flake/lock.ts";
import type { Nix } from "../../lib/flake/nix.ts";
import { createOctokit, type Octokit } from "../../lib/github/client.ts";
import { targetCheck } from "../../lib/github/upstream.ts";
import { main } from "../../scripts/bump.ts";
import { type FakeGitHub, localFakeGitHub } from "../fake-github/index.ts";
import { scratchRoot } from "../fake-github/tmp.ts";
import { runInProcess } from "../support/in-process.ts";
import { countingFetch } from "../support/net.ts";
import { type Commit, narHashOf, nixStandIn } from "../support/nix-stand-in.ts";

const OWNER = "acme";
let fake: FakeGitHub;
let octokit: Octokit;
beforeAll(async () => {
  fake = await localFakeGitHub();
  octokit = createOctokit({ token: fake.token, baseUrl: fake.apiUrl, waitScale: 0 });
});
afterAll(() => fake.stop());

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

interface Up {
  name: string;
  first: string;
  /** One commit past the lock that leaves flake.nix alone (native), and one that changes it (Nix). */
  same: string;
  changed: string;
}

/** An upstream on the fake, its history: first (locked) → same (README only) → changed (flake.nix). */
async function upstream(name: string): Promise<Up> {
  await fake.createRepo(OWNER, name, { files: { "flake.nix": "{ outputs = _: { }; }\n" } });
  const first = (await fake.branchSha(OWNER, name, "main")) ?? "";
  const same = await fake.push(OWNER, name, { README: `${name}\n` }, "docs");
  const changed = await fake.push(
    OWNER,
    name,
    { "flake.nix": '{ inputs.x.url = "github:o/x"; outputs = _: { }; }\n' },
    "new input",
  );
  return { name, first, same, changed };
}

const node = (up: Up, extra: Record<string, unknown> = {}) => ({
  ...extra,
  locked: {
    lastModified: 1_700_000_000,
    narHash: narHashOf(up.first),
    owner: OWNER,
    repo: up.name,
    rev: up.first,
    type: "github",
  },
  original: { owner: OWNER, repo: up.name, type: "github" },
});

/** A flake locking each upstream at its first commit, the lock in Nix's own format. */
async function flake(ups: Up[], extra: Record<string, Record<string, unknown>> = {}) {
  const dir = await mkdtemp(join(scratchRoot(), "flake-bump-unit-engine-"));
  dirs.push(dir);
  const lock: FlakeLock = {
    nodes: {
      ...Object.fromEntries(ups.map((up) => [up.name, node(up, extra[up.name])])),
      root: { inputs: Object.fromEntries(ups.map((up) => [up.name, up.name])) },
    },
    root: "root",
    version: 7,
  };
  const text = serializeLock(lock);
  await writeFile(join(dir, "flake.nix"), "{ outputs = _: { }; }\n");
  await writeFile(join(dir, "flake.lock"), text);
  return { dir, lockFile: join(dir, "flake.lock"), text, lock };
}

const commit = (rev: string): Commit => ({ rev, lastModified: 1_800_000_000, narHash: narHashOf(rev) });
const noNix = async (): Promise<Nix> => {
  throw new RuntimeError(
    "Nix was not found on PATH (or 'nix --version' failed); install Nix (e.g. 'apt-get install nix-bin' or the Determinate/official installer) and retry",
  );
};

function deps(stand: ReturnType<typeof nixStandIn>, over: Partial<BumpDeps> = {}): BumpDeps {
  return { nix: async () => stand, octokit: async () => octokit, ...over };
}
const behind = (ups: Array<[Up, string]>) => async (): Promise<Freshness[]> =>
  ups.map(([up, latest]) => ({ name: up.name, status: "outdated", rev: up.first, latest }));

let seq = 0;
let a: Up;
let b: Up;
beforeEach(async () => {
  seq++;
  a = await upstream(`a${seq}`);
  b = await upstream(`b${seq}`);
});

describe("one input pinned at a dispatched SHA", () => {
  interface Case {
    name: string;
    engine: Engine;
    to: (up: Up) => string;
    expected: "native" | "nix";
    reason: RegExp;
  }
  const cases: Case[] = [
    {
      name: "auto, flake.nix untouched: native, no Nix",
      engine: "auto",
      to: (up) => up.same,
      expected: "native",
      reason: /flake\.nix and flake\.lock are unchanged/,
    },
    {
      name: "auto, flake.nix changed: Nix, saying why",
      engine: "auto",
      to: (up) => up.changed,
      expected: "nix",
      reason: /^its flake\.nix changed, so Nix must re-lock its inputs$/,
    },
    {
      name: "nix, though eligible: Nix",
      engine: "nix",
      to: (up) => up.same,
      expected: "nix",
      reason: /^--engine nix$/,
    },
    {
      name: "native, eligible: native",
      engine: "native",
      to: (up) => up.same,
      expected: "native",
      reason: /unchanged/,
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const f = await flake([a]);
      const rev = c.to(a);
      const stand = nixStandIn({ commits: { [rev]: commit(rev) } });
      const report = await bump(
        { flakeDir: f.dir, inputs: [a.name], rev, dryRun: false, engine: c.engine },
        deps(stand),
      );
      const entry = report.inputs[0];
      expect([entry?.engine, entry?.to.rev, report.nix.invocations]).toStrictEqual([
        c.expected,
        rev,
        c.expected === "nix" ? 1 : 0,
      ]);
      expect(entry?.engineReason).toMatch(c.reason);
      const written = await readFile(f.lockFile, "utf8");
      if (c.expected === "native") {
        const result = await fetchLocked(octokit, { owner: OWNER, repo: a.name }, rev);
        expect(written).toBe(movedLockText(f.lock, a.name, result));
        expect(stand.calls).toStrictEqual([]);
      } else {
        expect(parseLock(written).nodes[a.name]?.locked?.narHash).toBe(narHashOf(rev));
      }
      expect(entry?.lock.text).toBe(written);
    });
  }

  test("native refuses a move it cannot prove, in one sentence, lock untouched (exit 2)", async () => {
    const f = await flake([a]);
    const error = await bump(
      { flakeDir: f.dir, inputs: [a.name], rev: a.changed, dryRun: false, engine: "native" },
      deps(nixStandIn()),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect(String(error)).toBe(
      `UsageError: --engine native cannot move '${a.name}' without Nix: its flake.nix changed, so Nix must re-lock its inputs; use --engine auto to let Nix move it`,
    );
    expect(await readFile(f.lockFile, "utf8")).toBe(f.text);
  });

  test("without Nix: a native-eligible pin succeeds, one that needs Nix fails saying why", async () => {
    const f = await flake([a]);
    const ok = await bump(
      { flakeDir: f.dir, inputs: [a.name], rev: a.same, dryRun: false },
      { nix: noNix, octokit: async () => octokit },
    );
    expect(ok.inputs[0]?.engine).toBe("native");
    const moved = await readFile(f.lockFile, "utf8");
    const error = await bump(
      { flakeDir: f.dir, inputs: [a.name], rev: a.changed, dryRun: false },
      { nix: noNix, octokit: async () => octokit },
    ).catch((e: unknown) => e);
    expect(String(error)).toBe(
      `RuntimeError: '${a.name}' (its flake.nix changed, so Nix must re-lock its inputs) can only be moved by Nix, but nix was not found on PATH (or 'nix --version' failed); install Nix (e.g. 'apt-get install nix-bin' or the Determinate/official installer) and retry; flake.lock was left as it was`,
    );
    expect(await readFile(f.lockFile, "utf8")).toBe(moved);
  });

  test("a lock not in Nix's own format goes to Nix (it would reformat it)", async () => {
    const f = await flake([a]);
    await writeFile(f.lockFile, JSON.stringify(f.lock));
    const stand = nixStandIn({ commits: { [a.same]: commit(a.same) } });
    const report = await bump({ flakeDir: f.dir, inputs: [a.name], rev: a.same, dryRun: false }, deps(stand));
    expect(report.inputs[0]?.engineReason).toBe(
      "flake.lock is not formatted as Nix writes it, so Nix would also reformat it",
    );
  });
});

describe("a dispatch asks GitHub one compare of the locked rev and the SHA, whatever the engine", () => {
  // The target check's full-page compare also answers eligibility: before, auto asked it again.
  const check = ["repos/get", "repos/compare-commits", "repos/compare-commits"];
  interface Case {
    name: string;
    engine: Engine;
    to: (up: Up) => string;
    expected: "native" | "nix";
    requests: (up: Up, rev: string) => string[];
  }
  const cases: Case[] = [
    {
      name: "auto, flake.nix untouched: the check, then the tarball",
      engine: "auto",
      to: (up) => up.same,
      expected: "native",
      // GitHub answers the tarball with a redirect to codeload, which the fake serves itself.
      requests: (up, rev) => [
        ...check,
        "repos/download-tarball-archive",
        `api /_codeload/${OWNER}/${up.name}/legacy.tar.gz/${rev}`,
      ],
    },
    {
      name: "auto, flake.nix changed: the check only",
      engine: "auto",
      to: (up) => up.changed,
      expected: "nix",
      requests: () => check,
    },
    {
      name: "nix: the check only",
      engine: "nix",
      to: (up) => up.same,
      expected: "nix",
      requests: () => check,
    },
    {
      name: "native, flake.nix changed: the check only, then the refusal",
      engine: "native",
      to: (up) => up.changed,
      expected: "nix",
      requests: () => check,
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const f = await flake([a]);
      const rev = c.to(a);
      const stand = nixStandIn({ commits: { [rev]: commit(rev) } });
      fake.requests.length = 0;
      const run = bump(
        { flakeDir: f.dir, inputs: [a.name], rev, dryRun: false, engine: c.engine },
        deps(stand, { checkTarget: targetCheck(octokit, { authenticated: true }) }),
      );
      if (c.engine === "native" && c.expected === "nix") {
        await expect(run).rejects.toThrow(
          `--engine native cannot move '${a.name}' without Nix: its flake.nix changed, so Nix must re-lock its inputs; use --engine auto to let Nix move it`,
        );
        expect(await readFile(f.lockFile, "utf8")).toBe(f.text);
      } else {
        const report = await run;
        expect([report.inputs[0]?.engine, report.inputs[0]?.to.rev]).toStrictEqual([c.expected, rev]);
        expect(report.inputs[0]?.upstream?.commits.map((commit) => commit.sha)).toStrictEqual(
          rev === a.same ? [a.same] : [a.same, a.changed],
        );
      }
      expect(fake.requests.map((r) => r.operationId ?? `${r.listener} ${r.path}`)).toStrictEqual(
        c.requests(a, rev),
      );
    });
  }

  test("a compare of other revs than the move's is not reused: eligibility asks its own", async () => {
    const f = await flake([a]);
    const stand = nixStandIn({ commits: { [a.changed]: commit(a.changed) } });
    fake.requests.length = 0;
    // A stale answer that says nothing changed, for the wrong pair of revs: believing it would go native.
    const report = await bump(
      { flakeDir: f.dir, inputs: [a.name], rev: a.changed, dryRun: false, engine: "auto" },
      deps(stand, {
        checkTarget: async ({ compared }) => {
          compared?.({ from: a.first, to: a.same, status: "ahead", files: [] });
          return "ok";
        },
      }),
    );
    expect(report.inputs[0]?.engine).toBe("nix");
    expect(report.inputs[0]?.engineReason).toBe("its flake.nix changed, so Nix must re-lock its inputs");
    expect(fake.requests.map((r) => r.operationId)).toStrictEqual(["repos/compare-commits"]);
  });

  test("a handed-on list of 300 files is truncated: Nix, without another request", async () => {
    const f = await flake([a]);
    const stand = nixStandIn({ commits: { [a.same]: commit(a.same) } });
    fake.requests.length = 0;
    const files = Array.from({ length: 300 }, (_, i) => ({ filename: `src/${i}.txt` }));
    const report = await bump(
      { flakeDir: f.dir, inputs: [a.name], rev: a.same, dryRun: false, engine: "auto" },
      deps(stand, {
        checkTarget: async ({ compared, lockedRev }) => {
          compared?.({ from: lockedRev ?? "", to: a.same, status: "ahead", files });
          return "ok";
        },
      }),
    );
    expect(report.inputs[0]?.engine).toBe("nix");
    expect(report.inputs[0]?.engineReason).toMatch(/^more than 299 files changed/);
    expect(fake.requests).toStrictEqual([]);
  });
});

describe("several inputs updated at once", () => {
  test("all native: no Nix at all, each input's own lock is the base plus its move", async () => {
    const f = await flake([a, b]);
    const stand = nixStandIn();
    const report = await bump(
      { flakeDir: f.dir, inputs: [], dryRun: false },
      deps(stand, {
        freshness: behind([
          [a, a.same],
          [b, b.same],
        ]),
      }),
    );
    expect(stand.calls).toStrictEqual([]);
    const ra = await fetchLocked(octokit, { owner: OWNER, repo: a.name }, a.same);
    const rb = await fetchLocked(octokit, { owner: OWNER, repo: b.name }, b.same);
    const both = movedLockText(parseLock(movedLockText(f.lock, a.name, ra)), b.name, rb);
    expect(await readFile(f.lockFile, "utf8")).toBe(both);
    expect(report.inputs.map((i) => [i.name, i.engine, i.lock.text])).toStrictEqual([
      [a.name, "native", movedLockText(f.lock, a.name, ra)],
      [b.name, "native", movedLockText(f.lock, b.name, rb)],
    ]);
  });

  test("mixed: Nix moves its input on the original lock, the native move is laid on top", async () => {
    const f = await flake([a, b]);
    const stand = nixStandIn({ heads: { [b.name]: commit(b.changed) } });
    const report = await bump(
      { flakeDir: f.dir, inputs: [], dryRun: false },
      deps(stand, {
        freshness: behind([
          [a, a.same],
          [b, b.changed],
        ]),
      }),
    );
    // Nix ran once, for b alone.
    expect(stand.calls.map((args) => args.slice(args.indexOf("flake")))).toStrictEqual([
      ["flake", "update", b.name, "--flake", f.dir],
    ]);
    const ra = await fetchLocked(octokit, { owner: OWNER, repo: a.name }, a.same);
    const bOnly = structuredClone(f.lock);
    const bNode = bOnly.nodes[b.name];
    if (bNode?.locked === undefined) throw new Error("no b");
    Object.assign(bNode.locked, {
      rev: b.changed,
      narHash: narHashOf(b.changed),
      lastModified: 1_800_000_000,
    });
    const bText = serializeLock(bOnly);
    expect(await readFile(f.lockFile, "utf8")).toBe(movedLockText(bOnly, a.name, ra));
    expect(report.inputs.map((i) => [i.name, i.engine, i.lock.text])).toStrictEqual([
      [a.name, "native", movedLockText(f.lock, a.name, ra)],
      [b.name, "nix", bText],
    ]);
    expect(report.inputs[1]?.engineReason).toMatch(/flake\.nix changed/);
  });

  test("mixed, but Nix also touched the native input's node: Nix moves everything", async () => {
    const f = await flake([a, b]);
    // b's new commit drags a's node along (as a follows-shaped update could).
    const stand = nixStandIn({
      heads: {
        [b.name]: { ...commit(b.changed), transitive: { [a.name]: commit(a.changed) } },
        [a.name]: commit(a.same),
      },
      commits: { [a.changed]: commit(a.changed), [b.changed]: commit(b.changed) },
    });
    const report = await bump(
      { flakeDir: f.dir, inputs: [], dryRun: false },
      deps(stand, {
        freshness: behind([
          [a, a.same],
          [b, b.changed],
        ]),
      }),
    );
    // b alone first; then, as a's node moved under Nix too, both by Nix (then each alone, pinned).
    expect(stand.calls.slice(0, 2).map((args) => args.slice(args.indexOf("update")))).toStrictEqual([
      ["update", b.name, "--flake", f.dir],
      ["update", a.name, b.name, "--flake", f.dir],
    ]);
    expect(report.inputs.every((i) => i.engine === "nix")).toBe(true);
    expect(report.inputs[0]?.engineReason).toMatch(/could not be combined/);
  });
});

describe("bump.ts --check: needs-nix", () => {
  interface Case {
    name: string;
    engine: Engine;
    to: (up: Up) => string;
    needsNix: boolean;
  }
  const cases: Case[] = [
    { name: "auto, native-eligible", engine: "auto", to: (up) => up.same, needsNix: false },
    { name: "auto, flake.nix changed", engine: "auto", to: (up) => up.changed, needsNix: true },
    { name: "nix", engine: "nix", to: (up) => up.same, needsNix: true },
    { name: "native never installs Nix", engine: "native", to: (up) => up.changed, needsNix: false },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const f = await flake([a]);
      const result = await checkOutdated(
        { flakeDir: f.dir, inputs: [], engine: c.engine },
        behind([[a, c.to(a)]]),
        async () => octokit,
      );
      expect(result.needsNix).toBe(c.needsNix);
    });
  }

  test("the script prints needs-nix and sets it as an output, without Nix", async () => {
    const f = await flake([a]);
    const output = join(f.dir, "github-output");
    await writeFile(output, "");
    const result = await runInProcess(main, ["--check", a.name, "--rev", a.same], {
      cwd: f.dir,
      env: {
        GITHUB_API_URL: fake.apiUrl,
        GH_TOKEN: fake.token,
        GITHUB_OUTPUT: output,
        PATH: "",
        FLAKE_BUMP_WAIT_SCALE: "0",
      },
    });
    expect([result.exitCode, result.stdout]).toStrictEqual([0, `outdated=${a.name}\nneeds-nix=false\n`]);
    expect(await readFile(output, "utf8")).toMatch(/^needs-nix<<(\S+)\nfalse\n\1$/m);
    expect(await readFile(f.lockFile, "utf8")).toBe(f.text);
  });

  test("an input only Nix can judge needs Nix", async () => {
    const f = await flake([a]);
    const result = await checkOutdated(
      { flakeDir: f.dir, inputs: [] },
      async () => [{ name: a.name, status: "unknown", reason: "GitHub answered 500" }],
      async () => octokit,
    );
    expect(result.needsNix).toBe(true);
  });
});

describe("Nix 2.8's rev in a flake = false input's original", () => {
  const before: FlakeLock = parseLock(
    serializeLock({
      nodes: {
        raw: {
          flake: false,
          locked: { type: "github", owner: "o", repo: "raw", rev: "1".repeat(40), narHash: "sha256-x" },
          original: { type: "github", owner: "o", repo: "raw" },
        },
        root: { inputs: { raw: "raw" } },
      },
      root: "root",
      version: 7,
    }),
  );
  const rev = "2".repeat(40);
  const pinned = (original: Record<string, string>) => {
    const lock = structuredClone(before);
    const raw = lock.nodes.raw;
    if (raw?.locked === undefined) throw new Error("no raw");
    raw.locked.rev = rev;
    raw.original = { type: "github", ...original };
    return { text: serializeLock(lock), lock };
  };
  test("is removed, leaving what newer Nix writes", () => {
    const by28 = pinned({ owner: "o", repo: "raw", rev });
    const byNew = pinned({ owner: "o", repo: "raw" });
    expect(restoreOriginal(before, by28, "raw", rev).text).toBe(byNew.text);
  });
  test("a rev flake.nix itself names is kept", () => {
    const withRev = { ...before, nodes: { ...before.nodes } };
    const raw = withRev.nodes.raw;
    if (raw?.original === undefined) throw new Error("no raw");
    withRev.nodes.raw = { ...raw, original: { ...raw.original, rev: "3".repeat(40) } };
    const by28 = pinned({ owner: "o", repo: "raw", rev });
    expect(restoreOriginal(withRev, by28, "raw", rev)).toBe(by28);
  });
});

test("the native download from an unreachable API host: one error naming the cause, not three downloads", async () => {
  const tries = countingFetch();
  const unreachable = createOctokit({
    baseUrl: "https://api.flake-bump-test.invalid",
    waitScale: 0,
    fetch: tries.fetch,
  });
  const error = await fetchLocked(unreachable, { owner: "acme", repo: "up" }, "a".repeat(40), {
    retryDelayMs: 0,
  }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(RuntimeError);
  expect(String(error)).toMatch(
    /^RuntimeError: could not download acme\/up at aaaaaaaaaaaa: cannot resolve api\.flake-bump-test\.invalid \(DNS lookup failed: \w+\) .*; check the network or GITHUB_API_URL$/,
  );
  // The client's one retry, and no download attempt after it.
  expect(tries.count()).toBe(2);
});

/**
 * bump() in process, with a stand-in for Nix (tests/support/nix-stand-in.ts) that writes flake.lock
 * the way Nix does. What is checked is bump's own part: which Nix calls it makes on which version,
 * what it accepts from them, the per-input re-lock, the single atomic write, and flake.lock left
 * byte-identical whenever anything fails. Real Nix doing the same is the end-to-end tier's job.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtemp, open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type BumpRequest, bump } from "../../lib/bump/bump.ts";
import { RuntimeError, UsageError } from "../../lib/core/errors.ts";
import { diffLocks, parseLock } from "../../lib/flake/lock.ts";
import { EXPERIMENTAL } from "../../lib/flake/nix.ts";
import { scratchRoot } from "../fake-github/tmp.ts";
import { realLockPath } from "../support/fixtures.ts";
import { type Commit, narHashOf, type StandInOptions, standInDeps } from "../support/nix-stand-in.ts";

const read = (name: string) => readFile(realLockPath(name), "utf8");
const BEFORE = await read("nixcfg-before-ec557951.flake.lock");
const AFTER = await read("nixcfg-after-ec557951.flake.lock");
const FLEET = await read("nixcfg-2026-08-22.flake.lock");
const FLAKE_NIX = await read("nixcfg-2026-08-22.flake.nix");

/** The commit of the real hand-made bump (tests/fixtures/real-flake-locks/README.md). */
const INSPR: Commit = {
  rev: "887daaf2b11c1375d98b35cc0c769fc9e9512861",
  lastModified: 1786825751,
  narHash: "sha256-sK3u3oMcLHWt7/IcsIpe5OBUGGDuMWQCodaq7+yusnU=",
};
const made = (rev: string, lastModified: number): Commit => ({ rev, lastModified, narHash: narHashOf(rev) });
const AGENIX = {
  ...made("a9e0c1f2d3b4a5968778695a4b3c2d1e0f9e8d7c", 1787000000),
  // agenix's own `darwin` input moves with it, as an update of a flake with its own inputs does.
  transitive: { darwin: made("d4a2b6c8e0f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9", 1786990000) },
};
const DISKO = made("5b1c0de2f4a6b8c0d2e4f6a8b0c2d4e6f8a0b2c4", 1787100000);

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function flake(lock: string): Promise<{ dir: string; lockFile: string }> {
  const dir = await mkdtemp(join(scratchRoot(), "flake-bump-unit-bump-"));
  dirs.push(dir);
  await writeFile(join(dir, "flake.nix"), FLAKE_NIX);
  await writeFile(join(dir, "flake.lock"), lock);
  return { dir, lockFile: join(dir, "flake.lock") };
}

const deps = standInDeps;

function request(dir: string, over: Partial<BumpRequest> = {}): BumpRequest {
  return { flakeDir: dir, inputs: [], dryRun: false, ...over };
}

describe("a pin with the real fleet's lock", () => {
  test("pinning inspr-modules at the real bump's commit writes exactly the lock that bump committed", async () => {
    const { dir, lockFile } = await flake(BEFORE);
    const { d, nix } = deps({ commits: { [INSPR.rev]: INSPR } });
    // A reader that opened flake.lock before the bump, as an editor may have.
    await using reader = await open(lockFile);
    const report = await bump(request(dir, { inputs: ["inspr-modules"], rev: INSPR.rev }), d);

    expect(await readFile(lockFile, "utf8")).toBe(AFTER);
    expect(nix.calls).toHaveLength(1);
    expect(nix.calls[0]?.slice(0, -3)).toStrictEqual([...EXPERIMENTAL, "flake", "lock", "--override-input"]);
    expect(nix.calls[0]?.at(-3)).toBe("inspr-modules");
    expect(nix.calls[0]?.at(-2)).toStartWith(`github:inspr-at/inspr-modules/${INSPR.rev}`);
    expect(nix.calls[0]?.at(-1)).toBe(dir);
    expect(report.changed).toBe(true);
    expect(report.nix).toStrictEqual({ version: "2.26.3", invocations: 1 });
    expect(report.lock?.sha256).toBe(sha256(AFTER));
    expect(report.inputs.map((i) => [i.name, i.from?.rev, i.to.rev])).toStrictEqual([
      ["inspr-modules", "fceca8df71c1786d6ccbafd8c49532b7f5671423", INSPR.rev],
    ]);
    expect(report.inputs[0]?.transitive).toStrictEqual({ added: [], removed: [], changed: [] });
    expect(report.inputs[0]?.github).toStrictEqual({ owner: "inspr-at", repo: "inspr-modules" });
    // bump's own writes replace the file by rename: the file the reader holds (which Nix, like the
    // stand-in, wrote into in place) is no longer linked anywhere. No temp file is left beside it.
    expect((await reader.stat()).nlink).toBe(0);
    expect((await readdir(dir)).sort()).toStrictEqual(["flake.lock", "flake.nix"]);
  });

  test("--dry-run reports the same move and leaves flake.lock byte-identical", async () => {
    const { dir, lockFile } = await flake(BEFORE);
    const { d } = deps({ commits: { [INSPR.rev]: INSPR } });
    const report = await bump(request(dir, { inputs: ["inspr-modules"], rev: INSPR.rev, dryRun: true }), d);
    expect(report.changed).toBe(true);
    expect(report.lock?.text).toBe(AFTER);
    expect(await readFile(lockFile, "utf8")).toBe(BEFORE);
  });
});

describe.each(["2.8.0", "2.26.3"])("an update of two inputs on Nix %s", (version) => {
  test("one combined run, then each input re-locked alone so its PR carries only its own move", async () => {
    const { dir, lockFile } = await flake(FLEET);
    const { d, nix } = deps({ version, heads: { agenix: AGENIX, disko: DISKO } });
    const report = await bump(request(dir, { inputs: ["agenix", "disko"] }), d);

    const combined =
      version === "2.8.0"
        ? ["flake", "lock", "--update-input", "agenix", "--update-input", "disko", dir]
        : ["flake", "update", "agenix", "disko", "--flake", dir];
    expect(nix.calls.map((args) => args.slice(EXPERIMENTAL.length, -1).slice(0, 4))).toStrictEqual([
      combined.slice(0, -1).slice(0, 4),
      ["flake", "lock", "--override-input", "agenix"],
      ["flake", "lock", "--override-input", "disko"],
    ]);
    expect(nix.calls[0]?.slice(EXPERIMENTAL.length)).toStrictEqual(combined);
    expect(report.nix.invocations).toBe(3);

    const written = await readFile(lockFile, "utf8");
    const both = diffLocks(parseLock(FLEET), parseLock(written));
    expect(both.direct.map((c) => [c.path, c.to?.rev])).toStrictEqual([
      ["agenix", AGENIX.rev],
      ["disko", DISKO.rev],
    ]);
    expect(report.lock?.text).toBe(written);

    const [agenix, disko] = report.inputs;
    expect(agenix?.transitive.changed.map((c) => [c.path, c.to?.rev])).toStrictEqual([
      ["agenix/darwin", AGENIX.transitive.darwin?.rev],
    ]);
    expect(disko?.transitive).toStrictEqual({ added: [], removed: [], changed: [] });
    // Each input's own lock moves that input alone.
    for (const [entry, name] of [
      [agenix, "agenix"],
      [disko, "disko"],
    ] as const) {
      const own = diffLocks(parseLock(FLEET), parseLock(entry?.lock.text ?? ""));
      expect(own.direct.map((c) => c.path)).toStrictEqual([name]);
      expect(entry?.lock.sha256).toBe(sha256(entry?.lock.text ?? ""));
    }
  });
});

describe("when there is nothing for Nix to do, Nix is never asked for", () => {
  test("freshness says every input is current", async () => {
    const { dir, lockFile } = await flake(FLEET);
    const { d, nixUsed } = deps(
      {},
      {
        freshness: async (inputs) =>
          inputs.map((i) => ({ name: i.name, status: "current", rev: i.node.locked?.rev ?? "" })),
      },
    );
    const report = await bump(request(dir, { inputs: ["agenix", "disko"] }), d);
    expect(nixUsed()).toBe(false);
    expect(report.changed).toBe(false);
    expect(report.skipped.map((s) => [s.name, s.reason])).toStrictEqual([
      ["agenix", "up-to-date"],
      ["disko", "up-to-date"],
    ]);
    expect(await readFile(lockFile, "utf8")).toBe(FLEET);
  });

  test("the target check says the lock is already ahead of a dispatched rev (dispatches arrive out of order)", async () => {
    const { dir, lockFile } = await flake(AFTER);
    const older = "fceca8df71c1786d6ccbafd8c49532b7f5671423";
    const seen: unknown[] = [];
    const { d, nixUsed } = deps(
      {},
      {
        checkTarget: async (target) => {
          seen.push(target);
          return "ahead";
        },
      },
    );
    const report = await bump(
      request(dir, { inputs: ["inspr-modules"], rev: older, repository: "inspr-at/inspr-modules" }),
      d,
    );
    expect(nixUsed()).toBe(false);
    expect(seen).toMatchObject([
      { input: "inspr-modules", lockedRev: INSPR.rev, rev: older, source: { owner: "inspr-at" } },
    ]);
    expect(report.skipped.map((s) => [s.name, s.reason, s.current])).toStrictEqual([
      ["inspr-modules", "already-ahead", INSPR.rev],
    ]);
    expect(await readFile(lockFile, "utf8")).toBe(AFTER);
  });

  test("a person's --rev older than the lock is refused unless --allow-downgrade", async () => {
    const { dir, lockFile } = await flake(AFTER);
    const older = "fceca8df71c1786d6ccbafd8c49532b7f5671423";
    const { d, nixUsed } = deps({}, { checkTarget: async () => "ahead" });
    const asked = bump(request(dir, { inputs: ["inspr-modules"], rev: older }), d);
    await expect(asked).rejects.toBeInstanceOf(UsageError);
    await expect(asked).rejects.toThrow(
      /--rev fceca8df71c1 is older than 'inspr-modules''s locked .*--allow-downgrade/,
    );
    expect(nixUsed()).toBe(false);
    expect(await readFile(lockFile, "utf8")).toBe(AFTER);
  });

  test("the lock already holds the requested rev", async () => {
    const { dir } = await flake(AFTER);
    const { d, nixUsed } = deps({});
    const report = await bump(request(dir, { inputs: ["inspr-modules"], rev: INSPR.rev }), d);
    expect(nixUsed()).toBe(false);
    expect(report.skipped.map((s) => s.reason)).toStrictEqual(["already-at-rev"]);
  });

  test("Nix finds no newer commit and rewrites the lock unchanged: nothing to do, no write", async () => {
    const { dir, lockFile } = await flake(FLEET);
    const { d, nix } = deps({ heads: {} });
    const report = await bump(request(dir, { inputs: ["disko"] }), d);
    expect(nix.calls).toHaveLength(1);
    expect(report.changed).toBe(false);
    expect(report.lock).toBeNull();
    expect(report.skipped.map((s) => [s.name, s.reason])).toStrictEqual([["disko", "up-to-date"]]);
    expect(await readFile(lockFile, "utf8")).toBe(FLEET);
  });
});

interface Failure {
  name: string;
  lock: string;
  request: Partial<BumpRequest>;
  nix: StandInOptions;
  error: RegExp;
  kind: typeof UsageError | typeof RuntimeError;
  /** How many Nix runs happened before the failure. */
  calls: number;
}

const pinInspr = { inputs: ["inspr-modules"], rev: INSPR.rev };
const failures: Failure[] = [
  {
    name: "Nix fails after half-writing the lock",
    lock: BEFORE,
    request: pinInspr,
    nix: { commits: { [INSPR.rev]: INSPR }, fail: { call: 0, halfWrite: true } },
    error: /^Nix failed to lock 'inspr-modules' at 887daaf2b11c1375d98b35cc0c769fc9e9512861; check that/,
    kind: RuntimeError,
    calls: 1,
  },
  {
    name: "Nix cannot fetch the commit",
    lock: BEFORE,
    request: pinInspr,
    nix: { commits: {} },
    error: /cannot fetch revision 887daaf2b11c1375d98b35cc0c769fc9e9512861 of input 'inspr-modules'/,
    kind: RuntimeError,
    calls: 1,
  },
  {
    name: "Nix writes a lock that is not JSON",
    lock: BEFORE,
    request: pinInspr,
    nix: { commits: { [INSPR.rev]: INSPR }, corrupt: { call: 0, text: (t) => t.slice(0, 100) } },
    error: /^Nix wrote a flake\.lock that does not parse \(.*\); the original was kept$/,
    kind: RuntimeError,
    calls: 1,
  },
  {
    name: "Nix locks another commit than the one asked for",
    lock: BEFORE,
    request: pinInspr,
    nix: { commits: { [INSPR.rev]: { ...INSPR, rev: "f".repeat(40) } } },
    error:
      /^Nix locked 'inspr-modules' to f{40} instead of 887daaf2b11c1375d98b35cc0c769fc9e9512861; flake\.lock was kept as it was — report this with your Nix version \(2\.26\.3\)$/,
    kind: RuntimeError,
    calls: 1,
  },
  {
    name: "the second input's own re-lock fails after the combined run succeeded",
    lock: FLEET,
    request: { inputs: ["agenix", "disko"] },
    nix: { heads: { agenix: AGENIX, disko: DISKO }, fail: { call: 2, halfWrite: true } },
    error: /^Nix failed to lock 'disko' alone at 5b1c0de2f4a6b8c0d2e4f6a8b0c2d4e6f8a0b2c4; rerun/,
    kind: RuntimeError,
    calls: 3,
  },
  {
    name: "a --rev that is not a full SHA",
    lock: BEFORE,
    request: { inputs: ["inspr-modules"], rev: "887daaf" },
    nix: {},
    error: /^--rev '887daaf' is not a full commit SHA; pass all 40 lowercase hex characters$/,
    kind: UsageError,
    calls: 0,
  },
  {
    name: "an input that only follows another",
    lock: FLEET,
    request: { inputs: ["catppuccin"] },
    nix: {},
    error:
      /^input 'catppuccin' only follows 'nixcfg\/catppuccin' and has no lock entry of its own; bump 'nixcfg' instead$/,
    kind: UsageError,
    calls: 0,
  },
];

describe("whatever fails, flake.lock is byte-identical and nothing is left beside it", () => {
  test.each(failures)("$name", async (c) => {
    const { dir, lockFile } = await flake(c.lock);
    const { d, nix } = deps(c.nix);
    let caught: unknown;
    try {
      await bump(request(dir, c.request), d);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(c.kind);
    expect(caught instanceof Error ? caught.message : "").toMatch(c.error);
    expect(nix.calls).toHaveLength(c.calls);
    expect(await readFile(lockFile, "utf8")).toBe(c.lock);
    expect((await readdir(dir)).sort()).toStrictEqual(["flake.lock", "flake.nix"]);
  });
});

describe("--tag on the real fleet's release pin", () => {
  const cases = [
    {
      tag: "rust-engine-v0.1.30",
      message:
        /older than 'janus-paimos-reporter''s rust-engine-v0.1.33: that is a downgrade; pass --allow-downgrade/,
    },
    {
      tag: "rust-engine-v0.1.40-rc1",
      message:
        /not of 'janus-paimos-reporter''s series rust-engine-v<n>.<n>.<n> \(pinned at rust-engine-v0.1.33\)/,
    },
  ];
  test.each(cases)("--tag $tag is refused, and both files stay as they were", async ({ tag, message }) => {
    const { dir, lockFile } = await flake(FLEET);
    const { d, nixUsed } = deps({});
    const asked = bump(request(dir, { inputs: ["janus-paimos-reporter"], tag }), d);
    await expect(asked).rejects.toBeInstanceOf(UsageError);
    await expect(asked).rejects.toThrow(message);
    expect(nixUsed()).toBe(false);
    expect(await readFile(lockFile, "utf8")).toBe(FLEET);
    expect(await readFile(join(dir, "flake.nix"), "utf8")).toBe(FLAKE_NIX);
  });
});

/**
 * Companion pins in bump(), in process: a real git repository with the real fleet's flake.lock and a
 * gitlink `doctrine` on `inspr-modules`'s repository, Nix's part played by the stand-in. What is
 * checked: which gitlinks move into the report, what is staged, and that bad input changes nothing.
 */
import { describe, expect, test } from "bun:test";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type BumpDeps, bump, checkOutdated } from "../../lib/bump/bump.ts";
import { UsageError } from "../../lib/core/errors.ts";
import { realLockPath } from "../support/fixtures.ts";
import { gitRepo } from "../support/git.ts";
import { type Commit, standInDeps } from "../support/nix-stand-in.ts";

const BEFORE = await readFile(realLockPath("nixcfg-before-ec557951.flake.lock"), "utf8");
const FLAKE_NIX = await readFile(realLockPath("nixcfg-2026-08-22.flake.nix"), "utf8");
/** What BEFORE locks inspr-modules to, and the commit of the real hand-made bump. */
const LOCKED = "fceca8df71c1786d6ccbafd8c49532b7f5671423";
const INSPR: Commit = {
  rev: "887daaf2b11c1375d98b35cc0c769fc9e9512861",
  lastModified: 1786825751,
  narHash: "sha256-sK3u3oMcLHWt7/IcsIpe5OBUGGDuMWQCodaq7+yusnU=",
};
const ELSEWHERE = "7598d63".padEnd(40, "0");
const gitmodules = (url: string) => `[submodule "doctrine"]\n\tpath = doctrine\n\turl = ${url}\n`;

/** The fleet's checkout: flake.nix, flake.lock and .gitmodules committed, the gitlink at `at`. */
async function fleet(at: string, modules = gitmodules("https://github.com/inspr-at/inspr-modules.git")) {
  const repo = await gitRepo({
    files: { "flake.nix": FLAKE_NIX, "flake.lock": BEFORE, ".gitmodules": modules },
  });
  await repo.git("update-index", "--add", "--cacheinfo", `160000,${at},doctrine`);
  await repo.git("commit", "--quiet", "-m", "doctrine");
  // As a clone without --recurse-submodules has it: an empty directory where the submodule goes.
  await mkdir(join(repo.dir, "doctrine"));
  return repo;
}

const deps = (extra: Partial<BumpDeps> = {}) => standInDeps({ commits: { [INSPR.rev]: INSPR } }, extra);

const pin = (dir: string, dryRun = false) => ({
  flakeDir: dir,
  inputs: ["inspr-modules"],
  rev: INSPR.rev,
  dryRun,
});

describe("bump moves an input's companions", () => {
  test("an in-step submodule moves to the pinned rev, in the report and staged; dry-run stages nothing", async () => {
    await using repo = await fleet(LOCKED);
    const dry = await bump(pin(repo.dir, true), deps().d);
    expect(dry.inputs[0]?.companions).toStrictEqual({
      moved: [{ path: "doctrine", from: LOCKED, to: INSPR.rev }],
      left: [],
    });
    expect(await repo.git("ls-files", "-s", "doctrine")).toBe(`160000 ${LOCKED} 0\tdoctrine`);
    expect(await repo.git("status", "--porcelain")).toBe("");

    const report = await bump(pin(repo.dir), deps().d);
    expect(report.inputs[0]?.companions).toStrictEqual(dry.inputs[0]?.companions);
    expect(await repo.git("ls-files", "-s", "doctrine")).toBe(`160000 ${INSPR.rev} 0\tdoctrine`);
    expect(await repo.git("status", "--porcelain")).toBe("M  doctrine\n M flake.lock");
  });

  test("an out-of-step submodule is left, and named; a listed one moves all the same", async () => {
    await using repo = await fleet(ELSEWHERE);
    const report = await bump(pin(repo.dir, true), deps().d);
    expect(report.inputs[0]?.companions).toStrictEqual({
      moved: [],
      left: [{ path: "doctrine", at: ELSEWHERE }],
    });
    const listed = await bump(
      pin(repo.dir, true),
      deps({ companions: { listed: { "inspr-modules": ["doctrine"] } } }).d,
    );
    expect(listed.inputs[0]?.companions).toStrictEqual({
      moved: [{ path: "doctrine", from: ELSEWHERE, to: INSPR.rev }],
      left: [],
    });
  });

  test("a relative URL resolves against the repository's own URL, and without one names no companion", async () => {
    await using repo = await fleet(LOCKED, gitmodules("../../inspr-at/inspr-modules.git"));
    const own = await bump(
      pin(repo.dir, true),
      deps({ companions: { ownUrl: async () => "https://github.com/acme/nixcfg" } }).d,
    );
    expect(own.inputs[0]?.companions?.moved.map((m) => m.path)).toStrictEqual(["doctrine"]);
    const none = await bump(pin(repo.dir, true), deps({ companions: { ownUrl: async () => undefined } }).d);
    expect(none.inputs[0]?.companions).toBeUndefined();
  });

  const refused: [why: string, modules: string | undefined, listed: string[], message: RegExp][] = [
    [
      "a .gitmodules git cannot parse",
      '[submodule "doctrine"\n\tpath = doctrine\n',
      [],
      /^\.gitmodules in .* cannot be read by git \(bad config line 2 in file \.gitmodules\); fix the file and retry$/,
    ],
    [
      "a listed companion that is no submodule",
      undefined,
      ["docs"],
      /^companion 'docs' of input 'inspr-modules' is not a submodule/,
    ],
    [
      "a listed companion outside the repository",
      undefined,
      ["../doctrine"],
      /^companion '\.\.\/doctrine' of input 'inspr-modules' is not a submodule/,
    ],
  ];
  test.each(refused)(
    "%s: a usage error before Nix, nothing changed",
    async (_why, modules, listed, message) => {
      await using repo = await fleet(LOCKED);
      // git itself refuses to commit beside a .gitmodules it cannot parse: the broken one is a local edit.
      if (modules !== undefined) await writeFile(join(repo.dir, ".gitmodules"), modules);
      const { d, nixUsed } = deps(
        listed.length > 0 ? { companions: { listed: { "inspr-modules": listed } } } : {},
      );
      const error = await bump(pin(repo.dir), d).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UsageError);
      expect(error instanceof Error ? error.message : "").toMatch(message);
      expect(nixUsed()).toBe(false);
      expect(await readFile(join(repo.dir, "flake.lock"), "utf8")).toBe(BEFORE);
      expect(await repo.git("ls-files", "-s", "doctrine")).toBe(`160000 ${LOCKED} 0\tdoctrine`);
    },
  );
});

describe("a companion catching up with a current input", () => {
  const atLocked = (dir: string, dryRun = false) => ({ ...pin(dir, dryRun), rev: LOCKED });

  test("the lock stays, the listed gitlink moves to the locked rev, in the report and staged", async () => {
    await using repo = await fleet(ELSEWHERE);
    const listed = deps({ companions: { listed: { "inspr-modules": ["doctrine"] } } }).d;
    const dry = await bump(atLocked(repo.dir, true), listed);
    expect(dry.changed).toBe(true);
    expect(dry.skipped.map((s) => s.name)).not.toContain("inspr-modules");
    const [entry] = dry.inputs;
    expect(entry?.from).toStrictEqual(entry?.to);
    expect(entry?.to.rev).toBe(LOCKED);
    expect(entry?.lock.text).toBe(BEFORE);
    expect(dry.lock?.text).toBe(BEFORE);
    expect(entry?.companions).toStrictEqual({
      moved: [{ path: "doctrine", from: ELSEWHERE, to: LOCKED }],
      left: [],
    });
    expect(await repo.git("status", "--porcelain")).toBe("");

    await bump(atLocked(repo.dir), listed);
    expect(await readFile(join(repo.dir, "flake.lock"), "utf8")).toBe(BEFORE);
    expect(await repo.git("ls-files", "-s", "doctrine")).toBe(`160000 ${LOCKED} 0\tdoctrine`);
    expect(await repo.git("status", "--porcelain")).toBe("M  doctrine");
  });

  test("unlisted, an out-of-step submodule stays; the skipped input names it for open-pr's coverage check", async () => {
    await using repo = await fleet(ELSEWHERE);
    const report = await bump(atLocked(repo.dir), deps().d);
    expect(report.changed).toBe(false);
    expect(report.inputs).toStrictEqual([]);
    expect(report.skipped.find((s) => s.name === "inspr-modules")?.submodules).toStrictEqual(["doctrine"]);
    expect(await repo.git("status", "--porcelain")).toBe("");
  });
});

describe("--check and companions", () => {
  const current = async () => [{ name: "inspr-modules", status: "current" as const, rev: LOCKED }];
  const check = (dir: string, listed?: string[]) =>
    checkOutdated(
      { flakeDir: dir, inputs: ["inspr-modules"] },
      current,
      undefined,
      undefined,
      undefined,
      listed === undefined ? {} : { listed: { "inspr-modules": listed } },
    );

  test("a current input whose listed companion points elsewhere is behind: the companion needs the move", async () => {
    await using repo = await fleet(ELSEWHERE);
    expect((await check(repo.dir, ["doctrine"])).companions).toStrictEqual([
      { name: "inspr-modules", moved: [{ path: "doctrine", from: ELSEWHERE, to: LOCKED }] },
    ]);
    // Unlisted, the same submodule is only left: nothing is behind.
    expect((await check(repo.dir)).companions).toStrictEqual([]);
  });

  test("a listed companion already at the locked rev: nothing is behind", async () => {
    await using repo = await fleet(LOCKED);
    expect((await check(repo.dir, ["doctrine"])).companions).toStrictEqual([]);
  });
});

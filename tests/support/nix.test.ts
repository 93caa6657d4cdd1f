/**
 * The Nix test environment itself, on every Nix variant under test: if these fail, every integration
 * test would fail for reasons that have nothing to do with flake-bump.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as v from "valibot";
import { $ } from "zx";
import { type GitRepo, gitRepo } from "./git.ts";
import {
  type ChrootNix,
  type NixVariant,
  nixChrootDir,
  nixTestEnv,
  nixVariants,
  parseNixVersion,
  selectNixVariants,
  variantPath,
} from "./nix.ts";

const NIX_TIMEOUT = 60_000;

const LockedRef = v.looseObject({
  type: v.string(),
  url: v.optional(v.string()),
  rev: v.optional(v.string()),
});
const Lock = v.looseObject({
  nodes: v.record(
    v.string(),
    v.looseObject({ locked: v.optional(LockedRef), original: v.optional(LockedRef) }),
  ),
});

async function lockNode(dir: string, name: string): Promise<{ locked?: unknown; original?: unknown }> {
  const lock = v.parse(Lock, JSON.parse(await readFile(join(dir, "flake.lock"), "utf8")));
  const node = lock.nodes[name];
  if (node === undefined) throw new Error(`flake.lock in ${dir} has no node '${name}'`);
  return node;
}

const upstreamFiles = (n: number) => ({ "flake.nix": `{ outputs = _: { value = ${n}; }; }\n` });
const downstreamFiles = (inputUrl: string) => ({
  "flake.nix": `{\n  inputs.up.url = "${inputUrl}";\n  outputs = _: { };\n}\n`,
});

/** `nix ARGS…` in `cwd` as the variant, never throwing: tests look at the exit code themselves. */
function nixIn(variant: NixVariant, env: Record<string, string>, cwd: string) {
  const fullEnv = { ...process.env, ...env, PATH: variantPath(variant) };
  return (...args: string[]) =>
    $({ cwd, env: fullEnv, quiet: true, nothrow: true, timeout: "50s" })`nix ${args}`;
}

/** The upstream as the downstream's flake.nix names it: path of the temp repo, without `git+`. */
const fileUrl = (repo: GitRepo) => repo.url.replace(/^git\+/, "");

describe.each(nixVariants())("Nix test env with $name", (variant) => {
  test(
    "nix on PATH is this variant",
    async () => {
      await using env = nixTestEnv();
      const out = await nixIn(variant, env, process.cwd())("--version");
      expect(out.exitCode).toBe(0);
      expect(parseNixVersion(out.stdout)).toBe(variant.version);
    },
    NIX_TIMEOUT,
  );

  test(
    "locks a git+file input offline, with its caches in the env's own directory, quietly",
    async () => {
      await using env = nixTestEnv();
      await using up = await gitRepo({ files: upstreamFiles(1) });
      await using down = await gitRepo({ files: downstreamFiles(`${up.url}?ref=main`) });
      const result = await nixIn(variant, env, down.dir)("flake", "lock");
      expect(result.stderr).not.toMatch(/unknown setting|build-users-group|dirty|error/);
      expect(result.exitCode).toBe(0);
      expect(await lockNode(down.dir, "up")).toMatchObject({
        locked: { type: "git", url: fileUrl(up), rev: await up.head() },
        original: { type: "git", url: fileUrl(up), ref: "main" },
      });
      expect(readdirSync(env.XDG_CACHE_HOME ?? "")).toContain("nix");
    },
    NIX_TIMEOUT,
  );

  test(
    "a branch is re-resolved right after an upstream commit",
    async () => {
      await using env = nixTestEnv();
      await using up = await gitRepo({ files: upstreamFiles(1) });
      await using down = await gitRepo({ files: downstreamFiles(`${up.url}?ref=main`) });
      const nix = nixIn(variant, env, down.dir);
      expect((await nix("flake", "lock")).exitCode).toBe(0);
      const newer = await up.commit(upstreamFiles(2), "second");
      // `nix flake update INPUT…` arrived in Nix 2.19 (see its manual's nix3-flake-update); 2.8 has --update-input.
      const modern = variant.version.localeCompare("2.19", undefined, { numeric: true }) >= 0;
      const update = modern
        ? await nix("flake", "update", "up", "--flake", down.dir)
        : await nix("flake", "lock", "--update-input", "up");
      expect(update.exitCode).toBe(0);
      expect(await lockNode(down.dir, "up")).toMatchObject({ locked: { rev: newer } });
    },
    NIX_TIMEOUT,
  );

  test(
    "--override-input with ?ref=…&rev=… pins that rev and leaves `original` as flake.nix has it",
    async () => {
      await using env = nixTestEnv();
      await using up = await gitRepo({ files: upstreamFiles(1) });
      const first = await up.head();
      await up.commit(upstreamFiles(2), "second");
      await using down = await gitRepo({ files: downstreamFiles(`${up.url}?ref=main`) });
      const nix = nixIn(variant, env, down.dir);
      expect((await nix("flake", "lock")).exitCode).toBe(0);
      const pin = await nix("flake", "lock", "--override-input", "up", `${up.url}?ref=main&rev=${first}`);
      expect(pin.exitCode).toBe(0);
      expect(await lockNode(down.dir, "up")).toMatchObject({
        locked: { rev: first, ref: "main" },
        original: { type: "git", url: fileUrl(up), ref: "main" },
      });
      expect(await lockNode(down.dir, "up")).not.toHaveProperty("original.rev");
    },
    NIX_TIMEOUT,
  );

  test(
    "the registry is empty: a registry input fails at once instead of going to the network",
    async () => {
      await using env = nixTestEnv();
      await using down = await gitRepo({
        files: { "flake.nix": '{\n  inputs.nixpkgs.url = "nixpkgs";\n  outputs = _: { };\n}\n' },
      });
      const started = performance.now();
      const result = await nixIn(variant, env, down.dir)("flake", "lock");
      const seconds = (performance.now() - started) / 1000;
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain("cannot find flake 'flake:nixpkgs' in the flake registries");
      expect(seconds).toBeLessThan(20);
      expect(existsSync(join(down.dir, "flake.lock"))).toBe(false);
    },
    NIX_TIMEOUT,
  );
});

describe("nixTestEnv", () => {
  test("gives each call its own directories and removes them on dispose", async () => {
    const a = nixTestEnv({ certFile: "/tmp/cert.pem" });
    const b = nixTestEnv();
    expect(a.XDG_CACHE_HOME).not.toBe(b.XDG_CACHE_HOME);
    expect(a.NIX_SSL_CERT_FILE).toBe("/tmp/cert.pem");
    expect(b).not.toHaveProperty("NIX_SSL_CERT_FILE");
    const cache = a.XDG_CACHE_HOME ?? "";
    expect(existsSync(cache)).toBe(true);
    // Spreading into a spawn env must carry only the variables.
    expect(Object.getOwnPropertySymbols({ ...a })).toEqual([]);
    await a[Symbol.asyncDispose]();
    await b[Symbol.asyncDispose]();
    expect(existsSync(cache)).toBe(false);
  });

  test("points flake-registry at an empty registry file", async () => {
    await using env = nixTestEnv();
    const registry = /^flake-registry = (.+)$/m.exec(env.NIX_CONFIG ?? "")?.[1] ?? "";
    expect(JSON.parse(await readFile(registry, "utf8"))).toStrictEqual({ flakes: [], version: 2 });
  });
});

describe("parseNixVersion", () => {
  const cases: Array<[string, string | undefined]> = [
    ["nix (Nix) 2.8.0\n", "2.8.0"],
    ["nix (Nix) 2.26.3\n", "2.26.3"],
    ["nix (Lix, like Nix) 2.91.1\n", "2.91.1"],
    ["nix (Nix) 2.25.0pre20241101_dirty\n", "2.25.0"],
    ["nix (Determinate Nix 3.6.2) 2.29.0\n", "2.29.0"],
    ["bash: nix: command not found\n", undefined],
  ];
  test.each(cases)("%p → %p", (output, version) => {
    expect(parseNixVersion(output)).toBe(version);
  });
});

describe("selectNixVariants", () => {
  const system: NixVariant = { name: "nix 2.8.0", version: "2.8.0", env: {} };
  const chroot = (version: string, suite: string): NixVariant => ({
    name: `nix ${version} (${suite} chroot)`,
    version,
    pathPrefix: `/shim-${version}`,
    env: { PATH: `/shim-${version}:/usr/bin` },
  });
  const v226 = chroot("2.26.3", "trixie");
  const v234 = chroot("2.34.8", "sid");
  const missing = (version: string) => `Nix ${version} is not set up`;
  const both: ChrootNix[] = [
    { wanted: "2.26", found: v226 },
    { wanted: "2.34", found: v234 },
  ];
  const no234: ChrootNix[] = [
    { wanted: "2.26", found: v226 },
    { wanted: "2.34", found: missing("2.34") },
  ];
  const none: ChrootNix[] = [
    { wanted: "2.26", found: missing("2.26") },
    { wanted: "2.34", found: missing("2.34") },
  ];
  interface Case {
    what: string;
    chroots: ChrootNix[];
    env: { FLAKE_BUMP_TEST_NIX?: string; CI?: string };
    expected: { variants: NixVariant[]; skipped?: string } | RegExp;
  }
  const cases: Case[] = [
    { what: "default, all available", chroots: both, env: {}, expected: { variants: [system, v226, v234] } },
    {
      what: "default, 2.34 missing: skipped locally",
      chroots: no234,
      env: {},
      expected: { variants: [system, v226], skipped: `Skipping the Nix 2.34 tests: ${missing("2.34")}.` },
    },
    {
      what: "default, both chroots missing: each skipped, on its own line",
      chroots: none,
      env: {},
      expected: {
        variants: [system],
        skipped: `Skipping the Nix 2.26 tests: ${missing("2.26")}.\nSkipping the Nix 2.34 tests: ${missing("2.34")}.`,
      },
    },
    {
      what: "default, 2.34 missing in CI",
      chroots: no234,
      env: { CI: "true" },
      expected: /CI=true requires Nix 2.34/,
    },
    {
      what: "CI with all three",
      chroots: both,
      env: { CI: "true" },
      expected: { variants: [system, v226, v234] },
    },
    {
      what: "all",
      chroots: both,
      env: { FLAKE_BUMP_TEST_NIX: "all" },
      expected: { variants: [system, v226, v234] },
    },
    {
      what: "all, 2.34 missing",
      chroots: no234,
      env: { FLAKE_BUMP_TEST_NIX: "all" },
      expected: /asks for Nix 2.34, but Nix 2.34 is not set up/,
    },
    {
      what: "2.8 only",
      chroots: both,
      env: { FLAKE_BUMP_TEST_NIX: "2.8" },
      expected: { variants: [system] },
    },
    {
      what: "2.8 only, in CI with the chroots missing",
      chroots: none,
      env: { FLAKE_BUMP_TEST_NIX: "2.8", CI: "true" },
      expected: { variants: [system] },
    },
    {
      what: "system",
      chroots: both,
      env: { FLAKE_BUMP_TEST_NIX: "system" },
      expected: { variants: [system] },
    },
    {
      what: "2.26 only",
      chroots: both,
      env: { FLAKE_BUMP_TEST_NIX: "2.26" },
      expected: { variants: [v226] },
    },
    {
      what: "2.34 only",
      chroots: both,
      env: { FLAKE_BUMP_TEST_NIX: "2.34" },
      expected: { variants: [v234] },
    },
    {
      what: "2.34 only, with 2.26 missing",
      chroots: [
        { wanted: "2.26", found: missing("2.26") },
        { wanted: "2.34", found: v234 },
      ],
      env: { FLAKE_BUMP_TEST_NIX: "2.34" },
      expected: { variants: [v234] },
    },
    { what: "2.34, missing", chroots: no234, env: { FLAKE_BUMP_TEST_NIX: "2.34" }, expected: /not set up/ },
    {
      what: "2.34.8 exactly",
      chroots: both,
      env: { FLAKE_BUMP_TEST_NIX: "2.34.8" },
      expected: { variants: [v234] },
    },
    {
      what: "a list, deduplicated",
      chroots: both,
      env: { FLAKE_BUMP_TEST_NIX: "2.34 2.26, 2.8,system" },
      expected: { variants: [v234, v226, system] },
    },
    {
      what: "2.2 is not 2.26",
      chroots: both,
      env: { FLAKE_BUMP_TEST_NIX: "2.2" },
      expected: /names Nix '2.2'/,
    },
    {
      what: "unknown, with every version named",
      chroots: no234,
      env: { FLAKE_BUMP_TEST_NIX: "2.18" },
      expected: /names Nix '2.18', which is not one of: system, all, 2.8.0, 2.26.3, 2.34\.$/,
    },
  ];
  test.each(cases)("$what", ({ chroots, env, expected }) => {
    const select = () => selectNixVariants({ system, chroots }, env);
    if (expected instanceof RegExp) expect(select).toThrow(expected);
    else expect(select()).toStrictEqual(expected);
  });
});

describe("nixChrootDir", () => {
  const cases: Array<[string, Record<string, string>, string]> = [
    ["under HOME's cache", { HOME: "/home/me" }, "/home/me/.cache/flake-bump/nix-2.34"],
    ["under XDG_CACHE_HOME", { HOME: "/home/me", XDG_CACHE_HOME: "/c" }, "/c/flake-bump/nix-2.34"],
    ["under FLAKE_BUMP_NIX_ROOT", { XDG_CACHE_HOME: "/c", FLAKE_BUMP_NIX_ROOT: "/n" }, "/n/nix-2.34"],
  ];
  test.each(cases)("%s", (_what, env, expected) => {
    expect(nixChrootDir("2.34", env)).toBe(expected);
  });
});

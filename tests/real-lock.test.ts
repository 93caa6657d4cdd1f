/**
 * The production fleet's real flake.nix and flake.lock (tests/fixtures/real-flake-locks/), on every
 * Nix under test. Its lock was written by a current Nix: three `tarball` nodes carry `lastModified`,
 * which Nix accepts from 2.18 on. On an older Nix, bump.ts and impact.ts must say that this Nix is too
 * old and which one is needed (not "check the sources" or "fix the flake"), and leave flake.lock as it
 * was; on a newer one, bump.ts moves the input, and only it.
 *
 * Offline like every end-to-end test: the one input bumped, `inspr-modules`, is served by the fake
 * GitHub (its reference gains `?host=localhost`, in flake.nix and in its lock node); the other 70 nodes
 * are the real ones, never fetched, because Nix reuses a lock entry that matches flake.nix.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stripVTControlCharacters } from "node:util";
import { diffLocks, type FlakeLock, parseLock } from "../lib/flake/lock.ts";
import { parseNixVersion } from "../lib/flake/nix.ts";
import { type FakeGitHub, fakeGitHub } from "./fake-github/index.ts";
import { fakeScriptEnv } from "./support/chain.ts";
import { realLockPath } from "./support/fixtures.ts";
import { type GitRepo, gitRepo } from "./support/git.ts";
import { type NixTestEnv, nixTestEnv, nixVariants } from "./support/nix.ts";
import { type RunResult, runScript, runScriptOnTerminal } from "./support/run.ts";

const TIMEOUT = 120_000;
const INPUT = "inspr-modules";
const UP = { owner: "inspr-at", repo: "inspr-modules" };
// The release from which Nix reads the real lock's tarball nodes (lib/flake/nix.ts, ATTRIBUTE_SINCE).
const READS_LOCK = "2.18";

/** The real flake.nix and lock, with `inspr-modules` served by the fake instead of github.com. */
async function realFlake(): Promise<Record<string, string>> {
  const nix = await readFile(realLockPath("nixcfg-2026-08-22.flake.nix"), "utf8");
  const from = `${INPUT}.url = "github:${UP.owner}/${UP.repo}";`;
  if (!nix.includes(from)) throw new Error(`the real flake.nix no longer has ${from}`);
  const lock = parseLock(await readFile(realLockPath("nixcfg-2026-08-22.flake.lock"), "utf8"));
  const node = lock.nodes[INPUT];
  if (node?.original === undefined || node.locked === undefined)
    throw new Error(`the real lock has no ${INPUT}`);
  node.original.host = "localhost";
  node.locked.host = "localhost";
  return {
    "flake.nix": nix.replace(from, `${INPUT}.url = "github:${UP.owner}/${UP.repo}?host=localhost";`),
    "flake.lock": `${JSON.stringify(lock, null, 2)}\n`,
  };
}

/**
 * The upstream's flake: nixpkgs, which the fleet makes follow its own, so nothing to fetch. (The real
 * one also has flake-utils, which Nix would resolve on github.com when the input moves.)
 */
const upstreamNix = (n: number) =>
  `{\n  inputs.nixpkgs.url = "github:nixos/nixpkgs/nixos-unstable";\n  outputs = _: { modules = ${n}; };\n}\n`;

/** One error line on stderr, no stack trace. */
function oneError(result: RunResult): string {
  const errors = result.stderr.split("\n").filter((line) => line.startsWith("error:"));
  expect(errors).toHaveLength(1);
  expect(result.stderr).not.toMatch(/\n\s+at /);
  return errors[0] ?? "";
}

let fake: FakeGitHub;
beforeAll(async () => {
  fake = await fakeGitHub();
});

for (const variant of nixVariants()) {
  const version = parseNixVersion(`nix (Nix) ${variant.version}`) ?? expect.unreachable();
  const [major = 0, minor = 0] = READS_LOCK.split(".").map(Number);
  const tooOld = version.major < major || (version.major === major && version.minor < minor);

  describe(`the fleet's real lock with Nix ${variant.version}`, () => {
    let down: GitRepo;
    let nixEnv: NixTestEnv;
    let env: Record<string, string | undefined>;
    let scratch: string;
    let head: string;

    beforeAll(async () => {
      await fake.reset();
      await fake.createRepo(UP.owner, UP.repo, { files: { "flake.nix": upstreamNix(1) } });
      head = await fake.push(UP.owner, UP.repo, { "flake.nix": upstreamNix(2) }, "feat: two");
      down = await gitRepo({ files: await realFlake() });
      scratch = await mkdtemp(join(tmpdir(), "flake-bump-real-lock-"));
      nixEnv = nixTestEnv({ certFile: fake.certFile });
      env = fakeScriptEnv(fake, nixEnv, variant);
    }, TIMEOUT);
    afterAll(async () => {
      await down?.[Symbol.asyncDispose]();
      await nixEnv?.[Symbol.asyncDispose]();
      if (scratch) await rm(scratch, { recursive: true, force: true });
    });

    const lockText = () => readFile(join(down.dir, "flake.lock"), "utf8");

    if (tooOld) {
      test(
        `bump.ts: this Nix is too old for the lock, Nix ${READS_LOCK} is needed; flake.lock untouched`,
        async () => {
          const before = await lockText();
          const report = join(scratch, "report.json");
          const result = await runScript("bump", [INPUT, "--report", report], { cwd: down.dir, env });
          expect(result.exitCode).toBe(1);
          expect(oneError(result)).toBe(
            `error: Nix ${variant.version} is too old to update '${INPUT}': flake.lock's 'tarball' inputs nixpkgs, nixpkgs_3 and nixpkgs_5 carry 'lastModified', which Nix accepts from ${READS_LOCK} on; use Nix ${READS_LOCK} or newer (the update action installs a current one)`,
          );
          expect(await lockText()).toBe(before);
        },
        TIMEOUT,
      );

      test(
        "bump.ts on a terminal, where Nix's error goes to the person directly: the same sentence, from the lock",
        async () => {
          const before = await lockText();
          const report = join(scratch, "report-terminal.json");
          const result = await runScriptOnTerminal("bump", [INPUT, "--report", report], {
            cwd: down.dir,
            env,
          });
          expect(result.exitCode).toBe(1);
          // Nix's own error (in its colours), then flake-bump's sentence naming the Nix needed.
          const shown = stripVTControlCharacters(result.stdout);
          expect(shown).toContain("unsupported tarball input attribute 'lastModified'");
          expect(shown).toContain(
            `error: Nix ${variant.version} is too old to update '${INPUT}': flake.lock's 'tarball' inputs nixpkgs, nixpkgs_3 and nixpkgs_5 carry 'lastModified', which Nix accepts from ${READS_LOCK} on; use Nix ${READS_LOCK} or newer (the update action installs a current one); Nix's own error is above`,
          );
          expect(await lockText()).toBe(before);
        },
        TIMEOUT,
      );

      test(
        `impact.ts: this Nix is too old for the lock, not a flake to fix`,
        async () => {
          // A base that differs from the checkout's lock in one input, so there is impact to compute.
          const base = join(scratch, "base.lock");
          const lock = JSON.parse(await lockText());
          lock.nodes[INPUT].locked.rev = "0".repeat(40);
          await writeFile(base, `${JSON.stringify(lock, null, 2)}\n`);
          const result = await runScript("impact", ["--base-lock", base, "--json", "--dry-run"], {
            cwd: down.dir,
            env,
          });
          expect(result.exitCode).toBe(1);
          expect(oneError(result)).toBe(
            `error: Nix ${variant.version} is too old to evaluate the flake's hosts: flake.lock's 'tarball' inputs nixpkgs, nixpkgs_3 and nixpkgs_5 carry 'lastModified', which Nix accepts from ${READS_LOCK} on; use Nix ${READS_LOCK} or newer (the update action installs a current one)`,
          );
          expect(result.stdout).toBe("");
        },
        TIMEOUT,
      );
    } else {
      test(
        "bump.ts moves inspr-modules to the upstream's head, and no other node",
        async () => {
          const before = parseLock(await lockText());
          const report = join(scratch, "report.json");
          const result = await runScript("bump", [INPUT, "--report", report], { cwd: down.dir, env });
          expect(result.stderr).not.toContain("error:");
          expect(result.exitCode).toBe(0);
          const after = parseLock(await lockText());
          expect(after.nodes[INPUT]?.locked?.rev).toBe(head);
          const diff = diffLocks(before, after);
          expect(diff.direct.map((change) => change.path)).toStrictEqual([INPUT]);
          // Nothing else moved: only the flake-utils the old upstream had (and its systems) went with it.
          expect(diff.transitive.added).toStrictEqual([]);
          expect(diff.transitive.changed).toStrictEqual([]);
          expect(diff.transitive.removed.map((change) => change.path)).toStrictEqual([
            `${INPUT}/flake-utils`,
            `${INPUT}/flake-utils/systems`,
          ]);
          // The tarball nodes this Nix had to read, lastModified and all, are still there as they were.
          const tarballs = (lock: FlakeLock) =>
            Object.values(lock.nodes)
              .filter((node) => node.locked?.type === "tarball")
              .map((node) => node.locked);
          expect(tarballs(after)).toHaveLength(3);
          expect(tarballs(after)).toStrictEqual(tarballs(before));
        },
        TIMEOUT,
      );
    }
  });
}

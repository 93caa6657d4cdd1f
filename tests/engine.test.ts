/**
 * The engines end to end, with real Nix on each version and the scripts as child processes: `auto`
 * falls back to Nix exactly where the upstream's flake.nix or flake.lock changed (and then writes
 * what `--engine nix` writes), a dispatch of a GitHub input goes notify → bump → open-pr with no Nix
 * on PATH and its lock equals Nix's, a missing Nix fails only the bump that needs it, and Nix 2.8's
 * rev in a `flake = false` input's `original` no longer makes the next run see the input as pinned.
 * Needs port 443: run under `flock /tmp/flake-bump-443.lock`.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { $ } from "zx";
import { parseLock, pinReason } from "../lib/flake/lock.ts";
import { parseReport } from "../lib/flake/report.ts";
import { type FakeGitHub, fakeGitHub } from "./fake-github/index.ts";
import { type Chain, chain, DOWN, UP } from "./support/chain.ts";
import { nixVariants } from "./support/nix.ts";
import { runScript } from "./support/run.ts";

const TIMEOUT = 240_000;
let fake: FakeGitHub;
beforeAll(async () => {
  fake = await fakeGitHub();
});

/** A PATH with git and bash (zx's shell) and nothing else: were Nix needed, it would not be found. */
async function onlyGit(scratch: string): Promise<string> {
  const dir = join(scratch, "only-git");
  await mkdir(dir, { recursive: true });
  for (const tool of ["git", "bash"]) {
    await symlink((await $`command -v ${tool}`).stdout.trim(), join(dir, tool)).catch(() => undefined);
  }
  return dir;
}

for (const variant of nixVariants()) {
  describe(`engines with Nix ${variant.version}`, () => {
    let c: Chain;
    let checkout: string;
    beforeAll(async () => {
      c = await chain(fake, variant);
    });
    afterAll(async () => {
      await c[Symbol.asyncDispose]();
    });
    beforeEach(async () => {
      await fake.reset();
      await c.seed(0);
      checkout = await mkdtemp(join(c.scratch, "down-"));
      await $({ quiet: true })`git clone --quiet ${fake.cloneUrl(DOWN.owner, DOWN.repo)} ${checkout}`;
    }, TIMEOUT);
    afterEach(async () => {
      fake.assertNoViolations();
      await rm(checkout, { recursive: true, force: true });
    });

    /** `bump.ts nixfleet --rev REV --engine E` on a copy of the checkout; the lock it wrote and the report. */
    async function pin(rev: string, engine: string, env: Record<string, string | undefined> = c.env) {
      const dir = await mkdtemp(join(c.scratch, `pin-${engine}-`));
      await cp(checkout, dir, { recursive: true });
      const reportFile = join(dir, "..", `${dir.split("/").at(-1)}-report.json`);
      const result = await runScript(
        "bump",
        ["nixfleet", "--rev", rev, "--engine", engine, "--report", reportFile],
        { cwd: dir, env },
      );
      const lock = await readFile(join(dir, "flake.lock"), "utf8");
      const report =
        result.exitCode === 0 ? parseReport(await readFile(reportFile, "utf8"), reportFile) : undefined;
      await rm(dir, { recursive: true, force: true });
      return { result, lock, report };
    }

    const changes = [
      { what: "flake.nix", files: { "flake.nix": "{ outputs = _: { version = 99; }; }\n" } },
      {
        what: "flake.lock",
        files: {
          "flake.lock": '{\n  "nodes": {\n    "root": {}\n  },\n  "root": "root",\n  "version": 7\n}\n',
        },
      },
    ];
    for (const change of changes) {
      test(
        `auto falls back to Nix when the upstream's ${change.what} changed, and writes what Nix writes`,
        async () => {
          const rev = await fake.push(UP.owner, UP.repo, change.files, `touch ${change.what}`);
          const auto = await pin(rev, "auto");
          const byNix = await pin(rev, "nix");
          expect([auto.result.exitCode, byNix.result.exitCode]).toStrictEqual([0, 0]);
          expect(auto.report?.inputs[0]?.engine).toBe("nix");
          expect(auto.report?.inputs[0]?.engineReason).toBe(
            `its ${change.what} changed, so Nix must re-lock its inputs`,
          );
          expect(auto.report?.nix.invocations).toBe(1);
          expect(auto.lock).toBe(byNix.lock);
          expect(parseLock(auto.lock).nodes.nixfleet?.locked?.rev).toBe(rev);

          // Without Nix, the same bump is one sentence saying why Nix is needed, the lock untouched.
          const before = await readFile(join(checkout, "flake.lock"), "utf8");
          const bare = await pin(rev, "auto", { ...c.env, PATH: await onlyGit(c.scratch) });
          expect(bare.result.exitCode).toBe(1);
          expect(bare.result.stderr).toContain(
            `error: 'nixfleet' (its ${change.what} changed, so Nix must re-lock its inputs) can only be moved by Nix, but nix was not found on PATH`,
          );
          expect(bare.result.stderr.trim().split("\n")).toHaveLength(1);
          expect(bare.lock).toBe(before);
        },
        TIMEOUT,
      );
    }

    test(
      "a native-eligible pin needs no Nix and writes what Nix writes; --engine native refuses what it cannot prove",
      async () => {
        const rev = await fake.push(UP.owner, UP.repo, { "docs/README.md": "docs\n" }, "docs only");
        const native = await pin(rev, "auto", { ...c.env, PATH: await onlyGit(c.scratch) });
        const byNix = await pin(rev, "nix");
        expect(native.result.exitCode).toBe(0);
        expect(native.report?.inputs[0]?.engine).toBe("native");
        expect(native.report?.nix).toStrictEqual({ version: "", invocations: 0 });
        expect(native.lock).toBe(byNix.lock);

        const changed = await fake.push(UP.owner, UP.repo, { "flake.nix": "{ outputs = _: { }; }\n" }, "x");
        const refused = await pin(changed, "native");
        expect(refused.result.exitCode).toBe(2);
        expect(refused.result.stderr.trim()).toBe(
          "error: --engine native cannot move 'nixfleet' without Nix: its flake.nix changed, so Nix must re-lock its inputs; use --engine auto to let Nix move it",
        );
        expect(refused.lock).toBe(await readFile(join(checkout, "flake.lock"), "utf8"));
      },
      TIMEOUT,
    );

    test(
      "notify → bump → open-pr for a dispatch of a GitHub input opens its PR with no Nix on PATH",
      async () => {
        const pushed = await fake.push(
          UP.owner,
          UP.repo,
          { "src/lib.txt": "v2\n" },
          "feat: no flake change (#20)",
        );
        expect((await c.notify(pushed)).exitCode).toBe(0);
        const run = await c.downstreamRun({ env: { PATH: await onlyGit(c.scratch) } });
        expect([run.bump.exitCode, run.openPr.exitCode]).toStrictEqual([0, 0]);
        expect(run.openPr.stderr).toContain("nixfleet: created");
        expect(c.openPulls()).toHaveLength(1);
        expect(await c.branchLockRev()).toBe(pushed);
        // The PR's lock is byte for byte what this Nix writes for the same pin.
        const onBranch = await fake.readFile(DOWN.owner, DOWN.repo, "flake-bump/nixfleet", "flake.lock");
        expect(onBranch).toBe((await pin(pushed, "nix")).lock);
      },
      TIMEOUT,
    );
  });
}

for (const variant of nixVariants()) {
  test(
    `a flake = false input pinned by Nix ${variant.version} stays tracked: no rev in original, Nix agrees`,
    async () => {
      await fake.reset();
      const c = await chain(fake, variant);
      try {
        await fake.createRepo("acme", "raw", { files: { "data.txt": "0\n" } });
        const dir = join(c.scratch, "raw-down");
        await mkdir(dir, { recursive: true });
        await writeFile(
          join(dir, "flake.nix"),
          '{\n  inputs.raw = { url = "github:acme/raw?host=localhost"; flake = false; };\n  outputs = _: { };\n}\n',
        );
        const nix = (args: string[]) =>
          $({
            cwd: dir,
            env: c.env,
            quiet: true,
          })`nix --extra-experimental-features ${"nix-command flakes"} ${args}`;
        await nix(["flake", "lock"]);
        const rev = await fake.push("acme", "raw", { "data.txt": "1\n" }, "data");
        const report = join(c.scratch, "raw-report.json");
        const bumped = await runScript("bump", ["raw", "--rev", rev, "--engine", "nix", "--report", report], {
          cwd: dir,
          env: c.env,
        });
        expect(bumped.exitCode).toBe(0);
        const text = await readFile(join(dir, "flake.lock"), "utf8");
        const node = parseLock(text).nodes.raw;
        expect([node?.locked?.rev, node?.original?.rev, pinReason(node?.original)]).toStrictEqual([
          rev,
          undefined,
          undefined,
        ]);
        // Nix itself finds the lock in line with flake.nix: a plain `nix flake lock` changes nothing.
        await nix(["flake", "lock"]);
        expect(await readFile(join(dir, "flake.lock"), "utf8")).toBe(text);
        // And the next run still tracks it (not "pinned to rev").
        const check = await runScript("bump", ["--check", "--json"], { cwd: dir, env: c.env });
        expect(check.stderr).not.toContain("pinned");
      } finally {
        await c[Symbol.asyncDispose]();
      }
    },
    TIMEOUT,
  );
}

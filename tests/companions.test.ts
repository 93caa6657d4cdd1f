/**
 * Companion pins end to end, with real Nix, real git submodules and the fake GitHub: the downstream
 * repository keeps its flake input `nixfleet` and a submodule `doctrine` (added by `git submodule add`
 * of the upstream's repository) on the same upstream. One dispatch moves both in one Verified commit,
 * on a per-input branch, in the grouped pull request and directly onto main; an out-of-step submodule
 * is left and named; run by hand, bump.ts stages the gitlink.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { $ } from "zx";
import { parseLock } from "../lib/flake/lock.ts";
import { groupBranch } from "../lib/pr/group.ts";
import { type FakeGitHub, fakeGitHub } from "./fake-github/index.ts";
import { BRANCH, bareGit, type Chain, chain, DOWN, UP } from "./support/chain.ts";
import { nixVariants } from "./support/nix.ts";
import { type RunResult, runScript } from "./support/run.ts";

const TIMEOUT = 240_000;
/** The submodule's URL as the fleet writes it: the input's repository on the input's host. */
const SUBMODULE_URL = `https://localhost/${UP.owner}/${UP.repo}.git`;
const GITMODULES = `[submodule "doctrine"]\n\tpath = doctrine\n\turl = ${SUBMODULE_URL}\n`;

/** The policy file with `nixfleet` in a named group, and with `doctrine` listed as its companion. */
const POLICY_GROUP = "groups:\n  fleet:\n    inputs: [nixfleet]\n";
const POLICY_LISTED = "inputs:\n  nixfleet:\n    companions: [doctrine]\n";

let fake: FakeGitHub;
beforeAll(async () => {
  fake = await fakeGitHub();
});

const short = (sha: string | undefined) => (sha ?? "").slice(0, 7);

for (const variant of nixVariants()) {
  describe(`companion pins with Nix ${variant.version}`, () => {
    let c: Chain;
    let clones = 0;
    /** git on the downstream's bare repository, read directly. */
    const gitBare = (...args: string[]) => bareGit(fake, DOWN)(...args);
    /** Paths that differ between two commits of the downstream, as git lists them. */
    const changed = async (from: string, to: string) =>
      (await gitBare("diff", "--name-only", from, to)).split("\n").filter(Boolean);
    /** `head` is exactly one commit on `base`, signed by GitHub (no author sent), changing exactly `paths`. */
    const expectOneVerifiedCommit = async (base: string, head: string, paths: string[]) => {
      expect(await gitBare("rev-list", `${base}..${head}`)).toBe(head);
      expect(fake.isVerified(DOWN.owner, DOWN.repo, head)).toBe(true);
      expect(await changed(base, head)).toStrictEqual(paths);
    };
    /** The gitlink `doctrine` at `ref`: its mode, type and commit. */
    const gitlink = (ref: string) => gitBare("ls-tree", ref, "doctrine");
    const lockRev = async (ref: string) => {
      const text = await fake.readFile(DOWN.owner, DOWN.repo, ref, "flake.lock");
      return text === undefined ? undefined : parseLock(text).nodes.nixfleet?.locked?.rev;
    };
    const expectOk = (run: { bump: RunResult; openPr: RunResult }) => {
      expect(run.bump.stderr).not.toContain("error:");
      expect(run.bump.exitCode).toBe(0);
      expect(run.openPr.stderr).not.toContain("error:");
      expect(run.openPr.exitCode).toBe(0);
    };
    const dispatch = async (rev: string | undefined) => expect((await c.notify(rev ?? "")).exitCode).toBe(0);

    /** A developer's clone of the downstream (no submodule checked out), with git's own identity flags. */
    async function clone(): Promise<{ dir: string; git: (...args: string[]) => Promise<string> }> {
      const dir = join(c.scratch, `dev-${++clones}`);
      await $({ quiet: true })`git clone --quiet ${fake.cloneUrl(DOWN.owner, DOWN.repo)} ${dir}`;
      const git = async (...args: string[]) =>
        (
          await $({
            cwd: dir,
            quiet: true,
          })`git -c user.name=Dev -c user.email=dev@example.com -c protocol.file.allow=always ${args}`
        ).stdout.trim();
      return { dir, git };
    }

    /** `git submodule add` of the upstream at `rev` as `doctrine`, its URL the input's, pushed to main. */
    async function addSubmodule(rev: string | undefined): Promise<void> {
      const { dir, git } = await clone();
      await git("submodule", "--quiet", "add", fake.cloneUrl(UP.owner, UP.repo), "doctrine");
      await $({ cwd: join(dir, "doctrine"), quiet: true })`git checkout --quiet ${rev ?? ""}`;
      await git("config", "--file", ".gitmodules", "submodule.doctrine.url", SUBMODULE_URL);
      await git("add", ".gitmodules", "doctrine");
      await git("commit", "--quiet", "-m", "Add doctrine, the upstream's checkout");
      await git("push", "--quiet", "origin", "HEAD:main");
      expect(await gitlink("main")).toBe(`160000 commit ${rev}\tdoctrine`);
    }

    beforeAll(async () => {
      c = await chain(fake, variant);
    });
    afterAll(async () => {
      await c[Symbol.asyncDispose]();
    });
    beforeEach(async () => {
      await fake.reset();
      await c.seed(3);
    }, TIMEOUT);
    afterEach(() => fake.assertNoViolations());

    test(
      "an in-step submodule: one PR whose single Verified commit moves flake.lock and the gitlink to the pushed SHA",
      async () => {
        await addSubmodule(c.revs[0]);
        const main = (await fake.branchSha(DOWN.owner, DOWN.repo, "main")) ?? "";
        const pushed = c.revs[2] ?? "";
        await dispatch(pushed);
        const run = await c.downstreamRun();
        expectOk(run);
        expect(run.bump.stderr).toContain(`\`doctrine\` (submodule) ${short(c.revs[0])} → ${short(pushed)}`);
        const pulls = c.openPulls();
        expect(pulls).toHaveLength(1);
        const head = (await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)) ?? "";
        await expectOneVerifiedCommit(main, head, ["doctrine", "flake.lock"]);
        expect(await gitlink(head)).toBe(`160000 commit ${pushed}\tdoctrine`);
        expect(await lockRev(BRANCH)).toBe(pushed);
        expect(await fake.readFile(DOWN.owner, DOWN.repo, BRANCH, ".gitmodules")).toBe(GITMODULES);
        const line = `\`doctrine\` (submodule) ${short(c.revs[0])} → ${short(pushed)}`;
        expect(pulls[0]?.body).toContain(line);
        expect(await gitBare("log", "-1", "--format=%B", head)).toContain(line);
        const commit = fake.requests.find((r) => r.operationId === "git/create-commit")?.body;
        expect(commit).not.toHaveProperty("author");

        // A rerun changes nothing; an older dispatch moves neither.
        await dispatch(c.revs[1]);
        const older = await c.downstreamRun();
        expectOk(older);
        expect(await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)).toBe(head);
        expect(await gitlink(BRANCH)).toBe(`160000 commit ${pushed}\tdoctrine`);
      },
      TIMEOUT,
    );

    test(
      "merge: direct: main moves by one Verified commit with flake.lock and the gitlink; an older dispatch moves neither",
      async () => {
        await addSubmodule(c.revs[0]);
        const before = (await fake.branchSha(DOWN.owner, DOWN.repo, "main")) ?? "";
        await dispatch(c.revs[2]);
        const run = await c.downstreamRun({ env: { FLAKE_BUMP_MERGE: "direct" } });
        expectOk(run);
        expect(run.openPr.stderr).toContain("nixfleet: committed");
        const after = (await fake.branchSha(DOWN.owner, DOWN.repo, "main")) ?? "";
        await expectOneVerifiedCommit(before, after, ["doctrine", "flake.lock"]);
        expect(await gitlink(after)).toBe(`160000 commit ${c.revs[2]}\tdoctrine`);
        expect(fake.pulls(DOWN.owner, DOWN.repo)).toStrictEqual([]);

        await dispatch(c.revs[1]);
        const older = await c.downstreamRun({ env: { FLAKE_BUMP_MERGE: "direct" } });
        expectOk(older);
        expect(await fake.branchSha(DOWN.owner, DOWN.repo, "main")).toBe(after);
        expect(await gitlink("main")).toBe(`160000 commit ${c.revs[2]}\tdoctrine`);
      },
      TIMEOUT,
    );

    test(
      "group: true: the grouped PR's one commit carries the gitlink beside the combined flake.lock",
      async () => {
        await addSubmodule(c.revs[0]);
        const main = (await fake.branchSha(DOWN.owner, DOWN.repo, "main")) ?? "";
        await dispatch(c.revs[2]);
        const run = await c.downstreamRun({ env: { FLAKE_BUMP_GROUP: "true" } });
        expectOk(run);
        const branch = groupBranch();
        const head = (await fake.branchSha(DOWN.owner, DOWN.repo, branch)) ?? "";
        expect(c.openPulls().map((p) => p.headRef)).toStrictEqual([branch]);
        await expectOneVerifiedCommit(main, head, ["doctrine", "flake.lock"]);
        expect(await gitlink(head)).toBe(`160000 commit ${c.revs[2]}\tdoctrine`);
        expect(c.openPulls()[0]?.body).toContain(
          `\`doctrine\` (submodule) ${short(c.revs[0])} → ${short(c.revs[2])}`,
        );
      },
      TIMEOUT,
    );

    test(
      "a named group of the policy file: its PR's one commit carries the gitlink beside flake.lock",
      async () => {
        await addSubmodule(c.revs[0]);
        await fake.push(DOWN.owner, DOWN.repo, { ".github/flake-bump.yml": POLICY_GROUP }, "policy");
        const main = (await fake.branchSha(DOWN.owner, DOWN.repo, "main")) ?? "";
        await dispatch(c.revs[2]);
        const run = await c.downstreamRun();
        expectOk(run);
        const branch = groupBranch("flake-bump/", "fleet");
        const head = (await fake.branchSha(DOWN.owner, DOWN.repo, branch)) ?? "";
        expect(c.openPulls().map((p) => p.headRef)).toStrictEqual([branch]);
        await expectOneVerifiedCommit(main, head, ["doctrine", "flake.lock"]);
        expect(await gitlink(head)).toBe(`160000 commit ${c.revs[2]}\tdoctrine`);
      },
      TIMEOUT,
    );

    test(
      "a listed companion moves wherever it pointed; --check counts a current input with it elsewhere as behind",
      async () => {
        await addSubmodule(c.revs[1]);
        await fake.push(DOWN.owner, DOWN.repo, { ".github/flake-bump.yml": POLICY_LISTED }, "policy");
        const main = (await fake.branchSha(DOWN.owner, DOWN.repo, "main")) ?? "";
        const { dir } = await clone();
        const env = { ...c.env, GITHUB_ACTIONS: undefined, GITHUB_REPOSITORY: undefined };
        // The lock holds revs[0]: asked about exactly that rev, the input is current, doctrine is not.
        const check = await runScript("bump", ["nixfleet", "--check", "--rev", c.revs[0] ?? ""], {
          cwd: dir,
          env,
        });
        expect(check.exitCode).toBe(0);
        expect(check.stdout).toBe("outdated=nixfleet\nneeds-nix=false\n");
        expect(check.stderr).toContain(
          `'nixfleet' is behind all the same: its companion 'doctrine' points at ${short(c.revs[1])}, not the locked ${short(c.revs[0])}`,
        );

        await dispatch(c.revs[2]);
        const run = await c.downstreamRun();
        expectOk(run);
        const head = (await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)) ?? "";
        expect(await changed(main, head)).toStrictEqual(["doctrine", "flake.lock"]);
        expect(await gitlink(head)).toBe(`160000 commit ${c.revs[2]}\tdoctrine`);
        expect(c.openPulls()[0]?.body).toContain(
          `\`doctrine\` (submodule) ${short(c.revs[1])} → ${short(c.revs[2])}`,
        );
      },
      TIMEOUT,
    );

    /** Point main's gitlink `doctrine` at `rev` (and, with `lock`, main's flake.lock at it), by a push. */
    async function moveMain(rev: string | undefined, lock?: string): Promise<void> {
      const { dir, git } = await clone();
      await git("update-index", "--cacheinfo", `160000,${rev},doctrine`);
      if (lock !== undefined) {
        await Bun.write(join(dir, "flake.lock"), lock);
        await git("add", "flake.lock");
      }
      await git("commit", "--quiet", "-m", "Move doctrine by hand");
      await git("push", "--quiet", "origin", "HEAD:main");
    }

    test(
      "a current input whose listed companion points elsewhere: one Verified commit moves the gitlink alone",
      async () => {
        await addSubmodule(c.revs[1]);
        await fake.push(DOWN.owner, DOWN.repo, { ".github/flake-bump.yml": POLICY_LISTED }, "policy");
        const main = (await fake.branchSha(DOWN.owner, DOWN.repo, "main")) ?? "";
        const locked = c.revs[0] ?? "";
        const mainLock = await fake.readFile(DOWN.owner, DOWN.repo, "main", "flake.lock");
        // The lock already holds the dispatched rev; doctrine does not.
        await dispatch(locked);
        const run = await c.downstreamRun();
        expectOk(run);
        const line = `\`doctrine\` (submodule) ${short(c.revs[1])} → ${short(locked)}`;
        expect(run.bump.stderr).toContain(line);
        const pulls = c.openPulls();
        expect(pulls).toHaveLength(1);
        expect(pulls[0]?.title).toBe(
          `chore(flake): move submodule doctrine to ${short(locked)}, where nixfleet is locked`,
        );
        expect(pulls[0]?.body).toContain(line);
        expect(pulls[0]?.body).toContain("flake.lock does not change");
        const head = (await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)) ?? "";
        await expectOneVerifiedCommit(main, head, ["doctrine"]);
        expect(await gitlink(head)).toBe(`160000 commit ${locked}\tdoctrine`);
        expect(await fake.readFile(DOWN.owner, DOWN.repo, BRANCH, "flake.lock")).toBe(mainLock);
        // No upstream commits to list between a rev and itself.
        expect(fake.requests.filter((r) => r.operationId === "repos/compare-commits")).toStrictEqual([]);

        // The branch holds the gitlink: a rerun writes nothing.
        const rerun = await c.downstreamRun();
        expectOk(rerun);
        expect(rerun.openPr.stderr).toContain("unchanged");
        expect(await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)).toBe(head);

        // By hand: the gitlink is staged, flake.lock untouched.
        const dev = await clone();
        const env = { ...c.env, GITHUB_ACTIONS: undefined, GITHUB_REPOSITORY: undefined };
        const local = await runScript("bump", ["nixfleet", "--rev", locked], { cwd: dev.dir, env });
        expect(local.stderr).not.toContain("error:");
        expect(local.exitCode).toBe(0);
        expect(await readFile(join(dev.dir, "flake.lock"), "utf8")).toBe(mainLock ?? "");
        expect(await dev.git("ls-files", "-s", "doctrine")).toBe(`160000 ${locked} 0\tdoctrine`);
        expect(await dev.git("status", "--porcelain")).toBe("M  doctrine");
      },
      TIMEOUT,
    );

    test(
      "min-age holds the input where it is: its listed companion still goes to the locked rev, and --check says so",
      async () => {
        await addSubmodule(c.revs[1]);
        const policy = "inputs:\n  nixfleet:\n    companions: [doctrine]\n    min-age: 3d\n";
        await fake.push(DOWN.owner, DOWN.repo, { ".github/flake-bump.yml": policy }, "policy");
        const main = (await fake.branchSha(DOWN.owner, DOWN.repo, "main")) ?? "";
        const locked = c.revs[0] ?? "";
        // A nightly: the upstream's newer commits were all pushed just now, too young to take.
        const nightly = { ...c.env, GITHUB_EVENT_NAME: "schedule", GITHUB_REPOSITORY: undefined };
        const { dir } = await clone();
        const check = await runScript("bump", ["--check"], { cwd: dir, env: nightly });
        expect(check.exitCode).toBe(0);
        expect(check.stdout).toBe("outdated=nixfleet\nneeds-nix=false\n");
        expect(check.stderr).toContain("'nixfleet' is held by min-age: 3d");
        expect(check.stderr).toContain(
          `'nixfleet' is behind all the same: its companion 'doctrine' points at ${short(c.revs[1])}, not the locked ${short(locked)}`,
        );

        const run = await c.downstreamRun({ event: {} });
        expectOk(run);
        expect(run.bump.stderr).toContain("Kept input 'nixfleet' at 'github:acme/nixfleet/");
        expect(run.bump.stderr).toContain("its companion moves to it");
        const pulls = c.openPulls();
        expect(pulls.map((p) => p.title)).toStrictEqual([
          `chore(flake): move submodule doctrine to ${short(locked)}, where nixfleet is locked`,
        ]);
        const head = (await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)) ?? "";
        await expectOneVerifiedCommit(main, head, ["doctrine"]);
        expect(await gitlink(head)).toBe(`160000 commit ${locked}\tdoctrine`);
        expect(await lockRev(BRANCH)).toBe(locked);
      },
      TIMEOUT,
    );

    test(
      "merge: direct: a companion catching up with a current input is one Verified commit of the gitlink onto main",
      async () => {
        await addSubmodule(c.revs[1]);
        await fake.push(DOWN.owner, DOWN.repo, { ".github/flake-bump.yml": POLICY_LISTED }, "policy");
        const before = (await fake.branchSha(DOWN.owner, DOWN.repo, "main")) ?? "";
        await dispatch(c.revs[0]);
        const run = await c.downstreamRun({ env: { FLAKE_BUMP_MERGE: "direct" } });
        expectOk(run);
        const after = (await fake.branchSha(DOWN.owner, DOWN.repo, "main")) ?? "";
        await expectOneVerifiedCommit(before, after, ["doctrine"]);
        expect(await gitlink(after)).toBe(`160000 commit ${c.revs[0]}\tdoctrine`);
        expect(fake.pulls(DOWN.owner, DOWN.repo)).toStrictEqual([]);
      },
      TIMEOUT,
    );

    test(
      "a branch with the right flake.lock but an old gitlink is moved, not taken as holding the change",
      async () => {
        // First the submodule is out of step and not listed: the PR moves flake.lock alone.
        await addSubmodule(c.revs[1]);
        const pushed = c.revs[2] ?? "";
        await dispatch(pushed);
        expectOk(await c.downstreamRun());
        expect(await gitlink(BRANCH)).toBe(`160000 commit ${c.revs[1]}\tdoctrine`);
        expect(await lockRev(BRANCH)).toBe(pushed);
        // Then it is listed: the same dispatch now moves doctrine too, onto the branch that has the lock.
        await fake.push(DOWN.owner, DOWN.repo, { ".github/flake-bump.yml": POLICY_LISTED }, "policy");
        const run = await c.downstreamRun();
        expectOk(run);
        expect(run.openPr.stderr).not.toContain("already proposes");
        const head = (await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)) ?? "";
        expect(await gitlink(head)).toBe(`160000 commit ${pushed}\tdoctrine`);
        expect(await lockRev(BRANCH)).toBe(pushed);
        expect(await changed("main", head)).toStrictEqual(["doctrine", "flake.lock"]);
        expect(c.openPulls()).toHaveLength(1);
      },
      TIMEOUT,
    );

    test(
      "an open PR is covered by the base only once the base holds its gitlink too, not its flake.lock alone",
      async () => {
        await addSubmodule(c.revs[0]);
        const pushed = c.revs[2] ?? "";
        await dispatch(pushed);
        expectOk(await c.downstreamRun());
        expect(c.openPulls()).toHaveLength(1);
        const lock = (await fake.readFile(DOWN.owner, DOWN.repo, BRANCH, "flake.lock")) ?? "";

        // main gets the PR's flake.lock by hand, its gitlink left behind: the PR still has work to do.
        await moveMain(c.revs[0], lock);
        expect(await lockRev("main")).toBe(pushed);
        const partly = await c.downstreamRun();
        expectOk(partly);
        expect(partly.openPr.stderr).toContain("still moves the submodule doctrine");
        expect(c.openPulls()).toHaveLength(1);

        // Once main holds the gitlink as well, the PR is covered: closed, its branch deleted.
        await moveMain(pushed);
        const covered = await c.downstreamRun();
        expectOk(covered);
        expect(c.openPulls()).toStrictEqual([]);
        expect(await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)).toBeUndefined();
      },
      TIMEOUT,
    );

    test(
      "an out-of-step submodule is left where it points and named in the PR",
      async () => {
        await addSubmodule(c.revs[1]);
        const main = (await fake.branchSha(DOWN.owner, DOWN.repo, "main")) ?? "";
        await dispatch(c.revs[2]);
        const run = await c.downstreamRun();
        expectOk(run);
        const head = (await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)) ?? "";
        expect(await changed(main, head)).toStrictEqual(["flake.lock"]);
        expect(await gitlink(head)).toBe(`160000 commit ${c.revs[1]}\tdoctrine`);
        expect(c.openPulls()[0]?.body).toContain(
          `\`doctrine\` stays at ${short(c.revs[1])}, which is not what \`nixfleet\` is locked to; list it under companions to move it with the input`,
        );
      },
      TIMEOUT,
    );

    test(
      "by hand: bump.ts stages the gitlink and leaves the submodule's files alone; --dry-run changes neither",
      async () => {
        await addSubmodule(c.revs[0]);
        const { dir, git } = await clone();
        const env = { ...c.env, GITHUB_ACTIONS: undefined, GITHUB_REPOSITORY: undefined };
        const lock = await readFile(join(dir, "flake.lock"), "utf8");
        const index = await git("ls-files", "-s", "doctrine");
        expect(index).toBe(`160000 ${c.revs[0]} 0\tdoctrine`);

        const dry = await runScript("bump", ["nixfleet", "--dry-run"], { cwd: dir, env });
        expect(dry.exitCode).toBe(0);
        expect(await readFile(join(dir, "flake.lock"), "utf8")).toBe(lock);
        expect(await git("ls-files", "-s", "doctrine")).toBe(index);

        const run = await runScript("bump", ["nixfleet"], { cwd: dir, env });
        expect(run.stderr).not.toContain("error:");
        expect(run.exitCode).toBe(0);
        const newest = c.revs.at(-1);
        expect(parseLock(await readFile(join(dir, "flake.lock"), "utf8")).nodes.nixfleet?.locked?.rev).toBe(
          newest,
        );
        expect(await git("ls-files", "-s", "doctrine")).toBe(`160000 ${newest} 0\tdoctrine`);
        expect(await readdir(join(dir, "doctrine"))).toStrictEqual([]);
        expect(run.stderr).toContain("git submodule update doctrine");
        expect(await git("status", "--porcelain")).toBe("M  doctrine\n M flake.lock");
      },
      TIMEOUT,
    );
  });
}

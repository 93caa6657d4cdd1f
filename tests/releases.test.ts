/**
 * The issue's fleet end to end, on every Nix of the matrix, against the fake GitHub with real git
 * tags: `nixpkgs` (nixos-unstable) and `nixpkgs-stable` (nixos-25.05) on one repository, `janus`
 * (rust-engine-v0.1.17, held back) and `janus-paimos-reporter` (rust-engine-v0.1.33, following
 * releases, in the downstream's policy file) on another. The tag push goes through the scripts
 * (notify.ts, bump.ts, open-pr.ts); the other cases call bump() in this process with real Nix and
 * each input's `follow` as the policy file gives it.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { $ } from "zx";
import { type BumpDeps, type BumpRequest, bump } from "../lib/bump/bump.ts";
import { checkFreshness } from "../lib/bump/freshness.ts";
import { githubRefQuestions } from "../lib/bump/pushed-ref.ts";
import { newestReleases } from "../lib/bump/releases.ts";
import { UsageError } from "../lib/core/errors.ts";
import { parseLock } from "../lib/flake/lock.ts";
import { detectNix } from "../lib/flake/nix.ts";
import { readReport } from "../lib/flake/report.ts";
import { createOctokit } from "../lib/github/client.ts";
import { type FakeGitHub, fakeGitHub } from "./fake-github/index.ts";
import { fakeScriptEnv } from "./support/chain.ts";
import { type NixTestEnv, nixTestEnv, nixVariants } from "./support/nix.ts";
import { runScript } from "./support/run.ts";

const TIMEOUT = 180_000;
const FLAKE_NIX = `{
  description = "a fleet";
  inputs = {
    nixpkgs.url = "github:nixos/nixpkgs/nixos-unstable?host=localhost";
    nixpkgs-stable.url = "github:nixos/nixpkgs/nixos-25.05?host=localhost";
    # Held back on purpose: the fleet moves this one by hand.
    janus.url = "github:inspr-at/janus/rust-engine-v0.1.17?host=localhost";
    janus-paimos-reporter = {
      url = "github:inspr-at/janus/rust-engine-v0.1.33?host=localhost"; # follows releases
    };
  };
  outputs = _: { };
}
`;
const FOLLOW = { "janus-paimos-reporter": "releases" } as const;
/** The policy file saying so, for the runs through bump.ts. */
const POLICY = "inputs:\n  janus-paimos-reporter:\n    follow: releases\n";
const GIT_ENV = {
  GIT_COMMITTER_NAME: "Release Bot",
  GIT_COMMITTER_EMAIL: "release@example.invalid",
  GIT_AUTHOR_NAME: "Release Bot",
  GIT_AUTHOR_EMAIL: "release@example.invalid",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_CONFIG_NOSYSTEM: "1",
};

let fake: FakeGitHub;
beforeAll(async () => {
  fake = await fakeGitHub();
});

/** A commit on janus's main branch, tagged in its bare repository (lightweight) — the tags the fleet pins. */
async function tagged(tag: string, day: number): Promise<string> {
  const sha = await fake.push(
    "inspr-at",
    "janus",
    { "flake.nix": `{ outputs = _: { tag = "${tag}"; }; }\n` },
    tag,
    {
      date: new Date(Date.UTC(2026, 2, day)),
    },
  );
  const gitDir = fake.repo("inspr-at", "janus").gitDir;
  await $({ env: { ...process.env, ...GIT_ENV }, quiet: true })`git --git-dir=${gitDir} tag ${tag} ${sha}`;
  return sha;
}

/** A release as a maintainer makes one: a commit and an annotated tag, pushed from a clone with git. */
async function pushRelease(scratch: string, tag: string): Promise<string> {
  const dir = join(scratch, `release-${tag}`);
  const git = $({ env: { ...process.env, ...GIT_ENV }, quiet: true });
  await git`git clone --quiet ${fake.cloneUrl("inspr-at", "janus")} ${dir}`;
  await writeFile(join(dir, "flake.nix"), `{ outputs = _: { tag = "${tag}"; }; }\n`);
  await git`git -C ${dir} commit --quiet -am ${`release ${tag}`}`;
  await git`git -C ${dir} tag -a -m ${`Release ${tag}`} ${tag}`;
  await git`git -C ${dir} push --quiet origin HEAD:main ${`refs/tags/${tag}`}`;
  return (await git`git -C ${dir} rev-parse HEAD`).stdout.trim();
}

for (const variant of nixVariants()) {
  describe(`several inputs on one repository, and releases, with Nix ${variant.version}`, () => {
    let nixEnv: NixTestEnv;
    let env: Record<string, string | undefined>;
    /** Per test: a scratch directory, and in it a clone of the downstream acme/nixcfg. */
    let scratch: string;
    let dir: string;
    const read = (file: string) => readFile(join(dir, file), "utf8");
    const git = () => $({ cwd: dir, env: { ...process.env, ...GIT_ENV }, quiet: true });
    const commit = async (message: string) => {
      await git()`git commit --quiet -am ${message}`;
      await git()`git push --quiet origin HEAD:main`;
    };

    beforeAll(() => {
      nixEnv = nixTestEnv({ certFile: fake.certFile });
      env = fakeScriptEnv(fake, nixEnv, variant);
    });
    afterAll(() => nixEnv[Symbol.asyncDispose]());
    beforeEach(async () => {
      await fake.reset();
      await fake.createRepo("nixos", "nixpkgs", {
        files: { "flake.nix": "{ outputs = _: { branch = 0; }; }\n" },
        defaultBranch: "nixos-unstable",
      });
      await fake.push("nixos", "nixpkgs", { "flake.nix": "{ outputs = _: { stable = 0; }; }\n" }, "25.05", {
        branch: "nixos-25.05",
      });
      await fake.createRepo("inspr-at", "janus", { files: { "flake.nix": "{ outputs = _: { }; }\n" } });
      // The downstream, for notify.ts's dispatch; bump() works on a local clone-like repository.
      await fake.createRepo("acme", "nixcfg", { files: { "flake.nix": FLAKE_NIX } });
      for (const [i, n] of [15, 16, 17, 33].entries()) await tagged(`rust-engine-v0.1.${n}`, i + 1);
      scratch = await mkdtemp(join(tmpdir(), "flake-bump-releases-"));
      dir = join(scratch, "nixcfg");
      await $({ quiet: true })`git clone --quiet ${fake.cloneUrl("acme", "nixcfg")} ${dir}`;
      await $({ cwd: dir, env, quiet: true })`nix flake lock`;
      await mkdir(join(dir, ".github"));
      await writeFile(join(dir, ".github/flake-bump.yml"), POLICY);
      await git()`git add flake.lock .github/flake-bump.yml`;
      await commit("lock");
    }, TIMEOUT);
    afterEach(async () => {
      await rm(scratch, { recursive: true, force: true });
      fake.assertNoViolations();
    });

    const octokit = () => createOctokit({ baseUrl: fake.apiUrl, token: fake.token, waitScale: 0 });
    const deps = (): BumpDeps => {
      const client = octokit();
      return {
        nix: () => detectNix({ env }),
        freshness: (inputs) => checkFreshness(inputs, { octokit: client }),
        octokit: async () => client,
        refs: githubRefQuestions(client),
        releases: (queries) => newestReleases(queries, { octokit: client, warn: () => undefined }),
      };
    };
    const run = (request: Partial<BumpRequest>) =>
      bump({ flakeDir: dir, inputs: [], dryRun: false, follow: FOLLOW, ...request }, deps());
    /** bump.ts as the downstream workflow runs it, on a repository_dispatch event; what it printed and summarised. */
    const downstream = async (args: string[], event: object, extra: Record<string, string> = {}) => {
      const eventFile = join(scratch, "event.json");
      const summary = join(scratch, `summary-${Math.random().toString(36).slice(2)}.md`);
      await writeFile(eventFile, JSON.stringify(event));
      const result = await runScript("bump", args, {
        cwd: dir,
        env: {
          ...env,
          GITHUB_ACTIONS: "true",
          GITHUB_EVENT_NAME: "repository_dispatch",
          GITHUB_EVENT_PATH: eventFile,
          GITHUB_REPOSITORY: "acme/nixcfg",
          GITHUB_STEP_SUMMARY: summary,
          ...extra,
        },
      });
      return { result, summary: await readFile(summary, "utf8").catch(() => "") };
    };
    const locked = async (name: string) => parseLock(await read("flake.lock")).nodes[name]?.locked?.rev;

    test(
      "a push to nixos-unstable moves only nixpkgs",
      async () => {
        const sha = await fake.push(
          "nixos",
          "nixpkgs",
          { "flake.nix": "{ outputs = _: { branch = 1; }; }\n" },
          "feat",
        );
        const before = { nix: await read("flake.nix"), stable: await locked("nixpkgs-stable") };
        const report = await run({ repository: "nixos/nixpkgs", ref: "refs/heads/nixos-unstable", rev: sha });
        expect(report.inputs.map((input) => input.name)).toStrictEqual(["nixpkgs"]);
        expect(await locked("nixpkgs")).toBe(sha);
        expect(await locked("nixpkgs-stable")).toBe(before.stable);
        expect(await read("flake.nix")).toBe(before.nix);
      },
      TIMEOUT,
    );

    test(
      "a push of tag rust-engine-v0.1.34 moves only janus-paimos-reporter, editing exactly its tag; older and other-series tags move nothing",
      async () => {
        const sha = await pushRelease(scratch, "rust-engine-v0.1.34");
        fake.createRelease(
          "inspr-at",
          "janus",
          "rust-engine-v0.1.34",
          "- a faster engine\n- thanks @someone\n",
        );
        const sent = await runScript("notify", ["--repo", "acme/nixcfg"], {
          cwd: dir,
          env: {
            ...env,
            GITHUB_ACTIONS: "true",
            GITHUB_SHA: sha,
            GITHUB_REF: "refs/tags/rust-engine-v0.1.34",
            GITHUB_REPOSITORY: "inspr-at/janus",
          },
        });
        expect(sent.stderr).toContain("✓ acme/nixcfg");
        const payload = fake.dispatches[0]?.client_payload;
        expect(payload).toStrictEqual({
          sha,
          repository: "inspr-at/janus",
          ref: "refs/tags/rust-engine-v0.1.34",
        });

        const [nixBefore, janusBefore] = [await read("flake.nix"), await locked("janus")];
        // The downstream's workflow: bump.ts on the dispatch, with the policy file's follow: releases.
        const reportFile = join(scratch, "report.json");
        const dispatched = (payload: object) => downstream(["--report", reportFile], payload);
        const [dispatch] = fake.dispatches;
        if (dispatch === undefined) throw new Error("notify.ts sent no dispatch");
        const bumped = await dispatched(fake.repositoryDispatchEvent(dispatch));
        expect(bumped.result.exitCode).toBe(0);
        const report = await readReport(reportFile);
        expect(report.inputs.map((input) => [input.name, input.release])).toStrictEqual([
          ["janus-paimos-reporter", { from: "rust-engine-v0.1.33", to: "rust-engine-v0.1.34" }],
        ]);
        // The annotated tag, peeled: the commit the push carried.
        expect(await locked("janus-paimos-reporter")).toBe(sha);
        expect(await locked("janus")).toBe(janusBefore);
        expect(await read("flake.nix")).toBe(nixBefore.replace("rust-engine-v0.1.33", "rust-engine-v0.1.34"));
        expect(report.inputs[0]?.flakeNix?.text).toBe(await read("flake.nix"));
        expect(report.skipped.map((s) => s.message)).toContain(
          "janus: rust-engine-v0.1.34 is out; held at rust-engine-v0.1.17 by policy",
        );
        // The pull request: a release title, the notes, the compare link, both files in one commit.
        const opened = await runScript("open-pr", ["--report", reportFile], {
          cwd: dir,
          env: { ...env, GITHUB_ACTIONS: "true", GITHUB_REPOSITORY: "acme/nixcfg" },
        });
        expect(opened.stderr).toContain("janus-paimos-reporter: created");
        const [pull] = fake.pulls("acme", "nixcfg");
        expect(pull?.title).toBe("chore(flake): update janus-paimos-reporter to rust-engine-v0.1.34");
        expect(pull?.body).toContain("Release: `rust-engine-v0.1.33` → `rust-engine-v0.1.34`");
        expect(pull?.body).toContain("/inspr-at/janus/compare/rust-engine-v0.1.33...rust-engine-v0.1.34");
        expect(pull?.body).toContain("> - a faster engine\n> - thanks @\u200bsomeone");
        const branch = "flake-bump/janus-paimos-reporter";
        expect(await fake.readFile("acme", "nixcfg", branch, "flake.nix")).toBe(await read("flake.nix"));
        expect(await fake.readFile("acme", "nixcfg", branch, "flake.lock")).toBe(await read("flake.lock"));
        const head = (await fake.branchSha("acme", "nixcfg", branch)) ?? "";
        const changed = await $({
          quiet: true,
        })`git --git-dir=${fake.repo("acme", "nixcfg").gitDir} diff --name-only ${head}^ ${head}`;
        expect(changed.stdout.trim().split("\n")).toStrictEqual(["flake.lock", "flake.nix"]);

        // Nix itself agrees flake.lock matches the edited flake.nix.
        await $({
          cwd: dir,
          env,
          quiet: true,
        })`nix flake metadata --no-update-lock-file --no-write-lock-file`;

        const [nixAfter, lockAfter] = [await read("flake.nix"), await read("flake.lock")];
        for (const tag of ["rust-engine-v0.1.33", "rust-engine-v0.1.40-rc1"]) {
          const payload = { sha, repository: "inspr-at/janus", ref: `refs/tags/${tag}` };
          const later = await dispatched({ action: "flake-bump", client_payload: payload });
          expect(later.result.exitCode).toBe(0);
          const line = `no input of this flake tracks tag ${tag} of inspr-at/janus; nothing to do`;
          expect(later.result.stderr).toContain(line);
          expect(later.summary).toContain(line);
          expect(later.result.stderr).toMatch(
            /'janus-paimos-reporter' stays at rust-engine-v0.1.34: .* (older|another series)/,
          );
        }
        expect([await read("flake.nix"), await read("flake.lock")]).toStrictEqual([nixAfter, lockAfter]);
      },
      TIMEOUT,
    );

    test(
      "the nightly finds the newest release in at most 2 requests and moves it; a quiet night asks the same",
      async () => {
        const sha = await pushRelease(scratch, "rust-engine-v0.1.34");
        await tagged("rust-engine-v0.1.40-rc1", 20);
        fake.requests.length = 0;
        const report = await run({});
        const asked = fake.requests.filter((r) => r.listener === "api");
        expect(asked.map((r) => r.operationId)).toStrictEqual(["graphql", "graphql"]);
        expect(report.inputs.map((input) => [input.name, input.release?.to])).toStrictEqual([
          ["janus-paimos-reporter", "rust-engine-v0.1.34"],
        ]);
        expect(await locked("janus-paimos-reporter")).toBe(sha);
        await commit("bump");

        fake.requests.length = 0;
        const quiet = await run({});
        expect(quiet.changed).toBe(false);
        expect(quiet.nix.invocations).toBe(0);
        expect(fake.requests.filter((r) => r.listener === "api").length).toBeLessThanOrEqual(2);
      },
      TIMEOUT,
    );

    test(
      "a tag push of rust-engine-v0.1.36 over v0.1.33 names the tags in between and their notes, as the nightly does",
      async () => {
        await tagged("rust-engine-v0.1.34", 5);
        await tagged("rust-engine-v0.1.35", 6);
        const sha = await pushRelease(scratch, "rust-engine-v0.1.36");
        for (const n of [34, 35, 36])
          fake.createRelease("inspr-at", "janus", `rust-engine-v0.1.${n}`, `- notes of 0.1.${n}\n`);
        const reportFile = join(scratch, "report.json");
        const payload = { sha, repository: "inspr-at/janus", ref: "refs/tags/rust-engine-v0.1.36" };
        fake.requests.length = 0;
        const bumped = await downstream(["--report", reportFile], {
          action: "flake-bump",
          client_payload: payload,
        });
        expect(bumped.result.exitCode).toBe(0);
        // The series' tags, asked once in the nightly's batched query: the one request a tag push adds.
        const asked = fake.requests.filter((r) => r.listener === "api" && r.operationId === "graphql");
        expect(asked).toHaveLength(1);
        const report = await readReport(reportFile);
        expect(report.inputs.map((input) => [input.name, input.release])).toStrictEqual([
          [
            "janus-paimos-reporter",
            {
              from: "rust-engine-v0.1.33",
              to: "rust-engine-v0.1.36",
              between: ["rust-engine-v0.1.34", "rust-engine-v0.1.35"],
            },
          ],
        ]);
        expect(await locked("janus-paimos-reporter")).toBe(sha);
        const opened = await runScript("open-pr", ["--report", reportFile], {
          cwd: dir,
          env: { ...env, GITHUB_ACTIONS: "true", GITHUB_REPOSITORY: "acme/nixcfg" },
        });
        expect(opened.stderr).toContain("janus-paimos-reporter: created");
        const [pull] = fake.pulls("acme", "nixcfg");
        for (const n of [34, 35, 36]) {
          expect(pull?.body).toContain(`rust-engine-v0.1.${n}`);
          expect(pull?.body).toContain(`> - notes of 0.1.${n}`);
        }
      },
      TIMEOUT,
    );

    test(
      "under min-age a too-young pushed tag is held; the nightly takes the newest tag old enough, then the pushed one once it is",
      async () => {
        const aged = `${POLICY}    min-age: 3d\n`;
        await writeFile(join(dir, ".github/flake-bump.yml"), aged);
        await commit("min-age");
        await tagged("rust-engine-v0.1.34", 5);
        // Committed and tagged now (an annotated tag: its tagger date is what min-age reads).
        const sha = await pushRelease(scratch, "rust-engine-v0.1.36");
        const now = new Date();
        const later = new Date(now.getTime() + 4 * 86_400_000);
        const [nixBefore, lockBefore] = [await read("flake.nix"), await read("flake.lock")];
        const payload = { sha, repository: "inspr-at/janus", ref: "refs/tags/rust-engine-v0.1.36" };
        const event = { action: "flake-bump", client_payload: payload };
        const held = await downstream(["--report", join(scratch, "held.json")], event, {
          FLAKE_BUMP_NOW: now.toISOString(),
        });
        expect(held.result.exitCode).toBe(0);
        const line =
          "'janus-paimos-reporter' is held at rust-engine-v0.1.33 by min-age: 3d (.github/flake-bump.yml:4 (inputs.janus-paimos-reporter.min-age)): rust-engine-v0.1.36 is younger than that; a later scheduled run moves it once it is old enough";
        expect(held.result.stderr).toContain(line);
        expect(held.summary).toContain(line);
        expect([await read("flake.nix"), await read("flake.lock")]).toStrictEqual([nixBefore, lockBefore]);

        // Tonight's scheduled run: v0.1.34 (March) is old enough, v0.1.36 is not; a dry run shows it.
        const tonight = await downstream(["--dry-run", "--report", join(scratch, "tonight.json")], event, {
          FLAKE_BUMP_NOW: now.toISOString(),
          GITHUB_EVENT_NAME: "schedule",
        });
        expect(tonight.result.exitCode).toBe(0);
        const first = await readReport(join(scratch, "tonight.json"));
        expect(first.inputs.map((input) => [input.name, input.release?.to])).toStrictEqual([
          ["janus-paimos-reporter", "rust-engine-v0.1.34"],
        ]);
        expect([await read("flake.nix"), await read("flake.lock")]).toStrictEqual([nixBefore, lockBefore]);

        // Four days on, the pushed tag is old enough and the nightly takes it, v0.1.34 in between.
        const report = join(scratch, "later.json");
        const moved = await downstream(["--report", report], event, {
          FLAKE_BUMP_NOW: later.toISOString(),
          GITHUB_EVENT_NAME: "schedule",
        });
        expect(moved.result.exitCode).toBe(0);
        expect((await readReport(report)).inputs.map((input) => [input.name, input.release])).toStrictEqual([
          [
            "janus-paimos-reporter",
            { from: "rust-engine-v0.1.33", to: "rust-engine-v0.1.36", between: ["rust-engine-v0.1.34"] },
          ],
        ]);
        expect(await locked("janus-paimos-reporter")).toBe(sha);
      },
      TIMEOUT,
    );

    test(
      "a URL two inputs share is refused with its lines, and nothing changes",
      async () => {
        const shared = FLAKE_NIX.replace("rust-engine-v0.1.17", "rust-engine-v0.1.33");
        await writeFile(join(dir, "flake.nix"), shared);
        await $({ cwd: dir, env, quiet: true })`nix flake lock`;
        await commit("share");
        await pushRelease(scratch, "rust-engine-v0.1.34");
        const [nixBefore, lockBefore] = [await read("flake.nix"), await read("flake.lock")];
        const attempt = run({});
        await expect(attempt).rejects.toBeInstanceOf(UsageError);
        await expect(attempt).rejects.toThrow(
          /uses the url "github:inspr-at\/janus\/rust-engine-v0.1.33\?host=localhost" for input 'janus-paimos-reporter' and for 'janus' \(lines 9 and 7\)/,
        );
        expect([await read("flake.nix"), await read("flake.lock")]).toStrictEqual([nixBefore, lockBefore]);
      },
      TIMEOUT,
    );
  });
}

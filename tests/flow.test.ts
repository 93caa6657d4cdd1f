/**
 * The whole chain, end to end, with real Nix and the fake GitHub: an upstream push → notify.ts → the
 * recorded dispatch becomes the event file → bump.ts (Nix fetches the `github:` input from the fake)
 * → open-pr.ts → one pull request. Then the awkward days: a rerun, a second push, a late older
 * dispatch, a fork's commit, and a base branch that moved past the PR.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { $ } from "zx";
import { parseLock } from "../lib/lock.ts";
import { parseMarker } from "../lib/pr-text.ts";
import { parseReport } from "../lib/report.ts";
import { type FakeGitHub, fakeGitHub } from "./fake-github/index.ts";
import { nixTestEnv, nixVariants } from "./support/nix.ts";
import { cleanEnv, type RunResult, runScript } from "./support/run.ts";

const TIMEOUT = 180_000;
const UP = { owner: "acme", repo: "nixfleet" };
const DOWN = { owner: "acme", repo: "nixcfg" };

const upstreamFiles = (n: number) => ({ "flake.nix": `{ outputs = _: { version = ${n}; }; }\n` });
const downstreamNix = `{
  inputs.nixfleet.url = "github:acme/nixfleet?host=localhost";
  outputs = _: { };
}
`;

let fake: FakeGitHub;
beforeAll(async () => {
  fake = await fakeGitHub();
});

for (const variant of nixVariants()) {
  describe(`the chain with Nix ${variant.version}`, () => {
    let scratch: string;
    let nixEnv: ReturnType<typeof nixTestEnv>;
    let env: Record<string, string | undefined>;
    let checkout: string;
    let reportFile: string;

    /** A fresh clone of the downstream repo's main branch, as a workflow run's checkout would be. */
    async function freshCheckout(): Promise<void> {
      await rm(checkout, { recursive: true, force: true });
      await $({ quiet: true })`git clone --quiet ${fake.cloneUrl(DOWN.owner, DOWN.repo)} ${checkout}`;
    }

    async function notify(sha: string): Promise<RunResult> {
      return runScript("notify", ["--repo", `${DOWN.owner}/${DOWN.repo}`, "--input", "nixfleet"], {
        cwd: scratch,
        env: {
          ...env,
          GITHUB_ACTIONS: "true",
          GITHUB_SHA: sha,
          GITHUB_REF: "refs/heads/main",
          GITHUB_REPOSITORY: `${UP.owner}/${UP.repo}`,
        },
      });
    }

    /** bump.ts then open-pr.ts, as the downstream workflow runs them, for the newest recorded dispatch. */
    async function downstreamRun(event?: object): Promise<{ bump: RunResult; openPr: RunResult }> {
      await freshCheckout();
      const dispatch = fake.dispatches.at(-1);
      const body = event ?? (dispatch ? fake.repositoryDispatchEvent(dispatch) : {});
      const eventFile = join(scratch, "event.json");
      await writeFile(eventFile, JSON.stringify(body));
      const runEnv = {
        ...env,
        GITHUB_ACTIONS: "true",
        GITHUB_EVENT_NAME: event === undefined ? "repository_dispatch" : "schedule",
        GITHUB_EVENT_PATH: eventFile,
        GITHUB_REPOSITORY: `${DOWN.owner}/${DOWN.repo}`,
      };
      const bump = await runScript("bump", ["--report", reportFile], { cwd: checkout, env: runEnv });
      if (bump.exitCode !== 0) return { bump, openPr: { exitCode: -1, stdout: "", stderr: "not run" } };
      const openPr = await runScript("open-pr", ["--report", reportFile], { cwd: checkout, env: runEnv });
      return { bump, openPr };
    }

    async function branchLockRev(): Promise<string | undefined> {
      const text = await fake.readFile(DOWN.owner, DOWN.repo, "flake-bump/nixfleet", "flake.lock");
      if (text === undefined) return undefined;
      const lock = parseLock(text);
      return lock.nodes.nixfleet?.locked?.rev;
    }

    const openPulls = () => fake.pulls(DOWN.owner, DOWN.repo).filter((pull) => pull.state === "open");
    const writes = () => fake.requests.filter((r) => r.listener === "api" && r.method !== "GET").length;

    beforeAll(async () => {
      scratch = await mkdtemp(join(tmpdir(), "flake-bump-flow-"));
      checkout = join(scratch, "nixcfg");
      reportFile = join(scratch, "report.json");
      nixEnv = nixTestEnv({ certFile: fake.certFile });
      env = cleanEnv({
        ...nixEnv,
        ...variant.env,
        GITHUB_API_URL: fake.apiUrl,
        GH_TOKEN: fake.token,
        FLAKE_BUMP_WAIT_SCALE: "0",
      });
    });

    afterAll(async () => {
      await rm(scratch, { recursive: true, force: true });
      await nixEnv[Symbol.asyncDispose]();
    });

    let revs: string[];
    beforeEach(async () => {
      await fake.reset();
      await fake.createRepo(UP.owner, UP.repo, { files: upstreamFiles(0) });
      revs = [(await fake.branchSha(UP.owner, UP.repo, "main")) ?? ""];
      // The downstream flake locked at upstream's first commit, committed to its main branch.
      await fake.createRepo(DOWN.owner, DOWN.repo, { files: { "flake.nix": downstreamNix } });
      await freshCheckout();
      await $({
        cwd: checkout,
        env,
        quiet: true,
      })`nix --extra-experimental-features ${"nix-command flakes"} flake lock`;
      await fake.push(
        DOWN.owner,
        DOWN.repo,
        { "flake.lock": await readFile(join(checkout, "flake.lock"), "utf8") },
        "lock",
      );
      for (let i = 1; i <= 3; i++) {
        revs.push(await fake.push(UP.owner, UP.repo, upstreamFiles(i), `feat: change ${i} (#${10 + i})`));
      }
    }, TIMEOUT);

    afterEach(() => fake.assertNoViolations());

    test(
      "a push becomes exactly one verified PR pinning exactly the pushed SHA; reruns change nothing",
      async () => {
        const pushed = revs[2] ?? "";
        const sent = await notify(pushed);
        expect(sent.exitCode).toBe(0);
        expect(sent.stderr).toContain("✓ acme/nixcfg");
        expect(fake.dispatches).toHaveLength(1);
        expect(fake.dispatches[0]?.client_payload).toStrictEqual({
          sha: pushed,
          repository: "acme/nixfleet",
          ref: "refs/heads/main",
          input: "nixfleet",
        });

        const first = await downstreamRun();
        expect(first.bump.exitCode).toBe(0);
        expect(first.openPr.exitCode).toBe(0);
        expect(first.openPr.stderr).toContain("nixfleet: created");
        const pulls = openPulls();
        expect(pulls).toHaveLength(1);
        const pull = pulls[0];
        expect(pull?.title).toBe(`chore(flake): update nixfleet to ${pushed.slice(0, 7)}`);
        expect(pull?.body).toContain(`New rev: \`${pushed}\``);
        expect(pull?.body).toContain("feat: change 2 (acme/nixfleet#12)");
        expect(pull?.body).toContain("feat: change 1 (acme/nixfleet#11)");
        expect(pull?.body).not.toContain("feat: change 3");
        expect(parseMarker(pull?.body)).toStrictEqual({ input: "nixfleet", rev: pushed });
        expect(pull?.labels.map((l) => l.name).sort()).toStrictEqual(["automated", "dependencies"]);
        expect(await branchLockRev()).toBe(pushed);
        const head = await fake.branchSha(DOWN.owner, DOWN.repo, "flake-bump/nixfleet");
        expect(fake.isVerified(DOWN.owner, DOWN.repo, head ?? "")).toBe(true);
        // Only flake.lock differs from main on the PR branch.
        const mainTree = await fake.readFile(DOWN.owner, DOWN.repo, "main", "flake.nix");
        expect(await fake.readFile(DOWN.owner, DOWN.repo, "flake-bump/nixfleet", "flake.nix")).toBe(mainTree);

        const writesBefore = writes();
        const again = await downstreamRun();
        expect(again.openPr.exitCode).toBe(0);
        expect(again.openPr.stderr).toContain("nixfleet: unchanged");
        expect(writes()).toBe(writesBefore);
        expect(fake.pulls(DOWN.owner, DOWN.repo)).toHaveLength(1);
      },
      TIMEOUT,
    );

    test(
      "a second push updates the same PR; a late, older dispatch does not move it back",
      async () => {
        await notify(revs[1] ?? "");
        expect((await downstreamRun()).openPr.exitCode).toBe(0);
        const number = openPulls()[0]?.number;

        await notify(revs[3] ?? "");
        const second = await downstreamRun();
        expect(second.openPr.stderr).toContain("nixfleet: updated");
        expect(openPulls()).toHaveLength(1);
        expect(openPulls()[0]?.number).toBe(number);
        expect(openPulls()[0]?.title).toBe(`chore(flake): update nixfleet to ${revs[3]?.slice(0, 7)}`);
        expect(await branchLockRev()).toBe(revs[3]);

        await notify(revs[2] ?? "");
        const late = await downstreamRun();
        expect(late.openPr.exitCode).toBe(0);
        expect(late.openPr.stderr).toContain("nixfleet: unchanged");
        expect(await branchLockRev()).toBe(revs[3]);
        expect(parseMarker(openPulls()[0]?.body)?.rev).toBe(revs[3]);
      },
      TIMEOUT,
    );

    test(
      "a commit that exists only in a fork is refused before Nix runs",
      async () => {
        await fake.createRepo("mallory", "nixfleet", { forkOf: "acme/nixfleet" });
        const foreign = await fake.push(
          "mallory",
          "nixfleet",
          { "flake.nix": "{ outputs = _: { evil = 1; }; }" },
          "x",
        );
        await notify(foreign);
        const run = await downstreamRun();
        expect(run.bump.exitCode).toBe(2);
        expect(run.bump.stderr).toContain(`commit ${foreign} is not on branch 'main' of acme/nixfleet`);
        expect(openPulls()).toHaveLength(0);
      },
      TIMEOUT,
    );

    test(
      "a dispatch older than what the base already locks changes nothing",
      async () => {
        // The base moves to revs[3] by hand; then the dispatch for revs[1] arrives.
        await freshCheckout();
        await runScript("bump", ["nixfleet", "--rev", revs[3] ?? "", "--report", reportFile], {
          cwd: checkout,
          env,
        });
        await fake.push(
          DOWN.owner,
          DOWN.repo,
          { "flake.lock": await readFile(join(checkout, "flake.lock"), "utf8") },
          "bump",
        );
        await notify(revs[1] ?? "");
        const run = await downstreamRun();
        expect(run.bump.exitCode).toBe(0);
        expect(run.bump.stderr).toContain("'nixfleet' is already ahead");
        expect(parseReport(await readFile(reportFile, "utf8"), reportFile).changed).toBe(false);
        expect(openPulls()).toHaveLength(0);
      },
      TIMEOUT,
    );

    test(
      "once the base holds the PR's rev, the nightly run closes the PR and deletes its branch",
      async () => {
        await notify(revs[2] ?? "");
        expect((await downstreamRun()).openPr.exitCode).toBe(0);
        const number = openPulls()[0]?.number ?? 0;
        // Someone merges by hand: main gets the PR's lock.
        const merged = await fake.readFile(DOWN.owner, DOWN.repo, "flake-bump/nixfleet", "flake.lock");
        await fake.push(DOWN.owner, DOWN.repo, { "flake.lock": merged ?? "" }, "merge by hand");
        const run = await downstreamRun({ inputs: {} });
        expect(run.bump.exitCode).toBe(0);
        expect(run.openPr.exitCode).toBe(0);
        // The nightly found revs[3] newer than the merged revs[2]: the PR moves forward, not closed.
        expect(run.openPr.stderr).toContain("nixfleet: updated");

        // Now main catches up with everything: the open PR is obsolete.
        const latest = await fake.readFile(DOWN.owner, DOWN.repo, "flake-bump/nixfleet", "flake.lock");
        await fake.push(DOWN.owner, DOWN.repo, { "flake.lock": latest ?? "" }, "merge again");
        const nightly = await downstreamRun({ inputs: {} });
        expect(nightly.openPr.exitCode).toBe(0);
        expect(nightly.openPr.stderr).toContain("nixfleet: closed");
        expect(openPulls()).toHaveLength(0);
        expect(fake.comments(DOWN.owner, DOWN.repo, number)[0]).toContain("already locks `nixfleet`");
        expect(await fake.branchSha(DOWN.owner, DOWN.repo, "flake-bump/nixfleet")).toBeUndefined();
      },
      TIMEOUT,
    );
  });
}

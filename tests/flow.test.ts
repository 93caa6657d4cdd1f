/**
 * The whole chain, end to end, with real Nix and the fake GitHub: an upstream push → notify.ts → the
 * recorded dispatch becomes the event file → bump.ts (Nix fetches the `github:` input from the fake)
 * → open-pr.ts → one pull request. Then the awkward days: a rerun, a second push, a late older
 * dispatch, a fork's commit, and a base branch that moved past the PR.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { $ } from "zx";
import { parseMarker } from "../lib/pr/text.ts";
import { type FakeGitHub, fakeGitHub } from "./fake-github/index.ts";
import { BRANCH, type Chain, chain, DOWN } from "./support/chain.ts";
import { nixVariants } from "./support/nix.ts";
import { runScript } from "./support/run.ts";

const TIMEOUT = 180_000;

let fake: FakeGitHub;
beforeAll(async () => {
  fake = await fakeGitHub();
});

for (const variant of nixVariants()) {
  describe(`the chain with Nix ${variant.version}`, () => {
    let c: Chain;
    const writes = () => fake.requests.filter((r) => r.listener === "api" && r.method !== "GET").length;

    beforeAll(async () => {
      c = await chain(fake, variant);
    });
    afterAll(async () => {
      await c[Symbol.asyncDispose]();
    });
    beforeEach(async () => {
      await fake.reset();
      await c.seed();
    }, TIMEOUT);
    afterEach(() => fake.assertNoViolations());

    test(
      "a push becomes exactly one verified PR pinning exactly the pushed SHA; reruns change nothing",
      async () => {
        const pushed = c.revs[2] ?? "";
        const sent = await c.notify(pushed);
        expect(sent.exitCode).toBe(0);
        expect(sent.stderr).toContain("✓ acme/nixcfg");
        expect(fake.dispatches).toHaveLength(1);
        expect(fake.dispatches[0]?.client_payload).toStrictEqual({
          sha: pushed,
          repository: "acme/nixfleet",
          ref: "refs/heads/main",
          input: "nixfleet",
        });

        const first = await c.downstreamRun();
        expect(first.bump.exitCode).toBe(0);
        expect(first.openPr.exitCode).toBe(0);
        expect(first.openPr.stderr).toContain("nixfleet: created");
        const pulls = c.openPulls();
        expect(pulls).toHaveLength(1);
        const pull = pulls[0];
        expect(pull?.title).toBe(`chore(flake): update nixfleet to ${pushed.slice(0, 7)}`);
        expect(pull?.body).toContain(`New rev: \`${pushed}\``);
        expect(pull?.body).toContain("feat: change 2 (acme/nixfleet#12)");
        expect(pull?.body).toContain("feat: change 1 (acme/nixfleet#11)");
        expect(pull?.body).not.toContain("feat: change 3");
        expect(parseMarker(pull?.body)).toStrictEqual({ input: "nixfleet", rev: pushed });
        expect(pull?.labels.map((l) => l.name).sort()).toStrictEqual(["automated", "dependencies"]);
        expect(await c.branchLockRev()).toBe(pushed);
        const head = await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH);
        expect(fake.isVerified(DOWN.owner, DOWN.repo, head ?? "")).toBe(true);
        // Only flake.lock differs from main on the PR branch.
        const mainNix = await fake.readFile(DOWN.owner, DOWN.repo, "main", "flake.nix");
        expect(await fake.readFile(DOWN.owner, DOWN.repo, BRANCH, "flake.nix")).toBe(mainNix);

        const writesBefore = writes();
        const again = await c.downstreamRun();
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
        await c.notify(c.revs[1] ?? "");
        expect((await c.downstreamRun()).openPr.exitCode).toBe(0);
        const number = c.openPulls()[0]?.number;

        await c.notify(c.revs[3] ?? "");
        const second = await c.downstreamRun();
        expect(second.openPr.stderr).toContain("nixfleet: updated");
        expect(c.openPulls()).toHaveLength(1);
        expect(c.openPulls()[0]?.number).toBe(number);
        expect(c.openPulls()[0]?.title).toBe(`chore(flake): update nixfleet to ${c.revs[3]?.slice(0, 7)}`);
        expect(await c.branchLockRev()).toBe(c.revs[3]);

        await c.notify(c.revs[2] ?? "");
        const late = await c.downstreamRun();
        expect(late.openPr.exitCode).toBe(0);
        expect(late.openPr.stderr).toContain("nixfleet: unchanged");
        expect(await c.branchLockRev()).toBe(c.revs[3]);
        expect(parseMarker(c.openPulls()[0]?.body)?.rev).toBe(c.revs[3]);
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
        await c.notify(foreign);
        const run = await c.downstreamRun();
        expect(run.bump.exitCode).toBe(2);
        expect(run.bump.stderr).toContain(`commit ${foreign} is not on branch 'main' of acme/nixfleet`);
        expect(c.openPulls()).toHaveLength(0);
      },
      TIMEOUT,
    );

    test(
      "a dispatch older than what the base already locks changes nothing",
      async () => {
        // The base moves to revs[3] by hand (a local bump, committed); then the dispatch for revs[1] arrives.
        const local = join(c.scratch, "by-hand.json");
        const clone = join(c.scratch, "by-hand");
        await $({ quiet: true })`git clone --quiet ${fake.cloneUrl(DOWN.owner, DOWN.repo)} ${clone}`;
        const pinned = await runScript("bump", ["nixfleet", "--rev", c.revs[3] ?? "", "--report", local], {
          cwd: clone,
          env: c.env,
        });
        expect(pinned.exitCode).toBe(0);
        await fake.push(
          DOWN.owner,
          DOWN.repo,
          { "flake.lock": await readFile(join(clone, "flake.lock"), "utf8") },
          "bump",
        );
        await c.notify(c.revs[1] ?? "");
        const run = await c.downstreamRun();
        expect(run.bump.exitCode).toBe(0);
        expect(run.bump.stderr).toContain("'nixfleet' is already ahead");
        expect(run.openPr.stderr).toContain("nixfleet: none");
        expect(c.openPulls()).toHaveLength(0);
      },
      TIMEOUT,
    );

    test(
      "once the base holds the PR's rev, the nightly run closes the PR and deletes its branch",
      async () => {
        await c.notify(c.revs[2] ?? "");
        expect((await c.downstreamRun()).openPr.exitCode).toBe(0);
        const number = c.openPulls()[0]?.number ?? 0;
        // Someone merges by hand: main gets the PR's lock. The nightly run finds revs[3] newer and
        // moves the PR forward rather than closing it.
        const merged = await fake.readFile(DOWN.owner, DOWN.repo, BRANCH, "flake.lock");
        await fake.push(DOWN.owner, DOWN.repo, { "flake.lock": merged ?? "" }, "merge by hand");
        const run = await c.downstreamRun({ event: {} });
        expect(run.bump.exitCode).toBe(0);
        expect(run.openPr.stderr).toContain("nixfleet: updated");

        // Main catches up with everything: the open PR is obsolete.
        const latest = await fake.readFile(DOWN.owner, DOWN.repo, BRANCH, "flake.lock");
        await fake.push(DOWN.owner, DOWN.repo, { "flake.lock": latest ?? "" }, "merge again");
        const nightly = await c.downstreamRun({ event: {} });
        expect(nightly.openPr.exitCode).toBe(0);
        expect(nightly.openPr.stderr).toContain("nixfleet: closed");
        expect(c.openPulls()).toHaveLength(0);
        expect(fake.comments(DOWN.owner, DOWN.repo, number)[0]).toContain("already locks `nixfleet`");
        expect(await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)).toBeUndefined();
      },
      TIMEOUT,
    );
  });
}

/**
 * Under faults: GitHub answering 5xx, rate limits of every documented kind, dropped connections and
 * slow answers; Nix failing half-way; runs racing each other. Whatever happens, a rerun heals, no
 * PR is duplicated, no PR moves back to an older commit, and flake.lock is never left half-written.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { $ } from "zx";
import { parseMarker } from "../lib/pr/text.ts";
import { type FakeGitHub, type Fault, fakeGitHub } from "./fake-github/index.ts";
import { BRANCH, type Chain, chain, DOWN } from "./support/chain.ts";
import { nixVariants } from "./support/nix.ts";
import { runScript, startScript } from "./support/run.ts";

const TIMEOUT = 240_000;
const [variant] = nixVariants();

let fake: FakeGitHub;
let c: Chain;

beforeAll(async () => {
  fake = await fakeGitHub();
  if (variant === undefined) throw new Error("no Nix to test with");
  c = await chain(fake, variant);
});
afterAll(async () => {
  await c[Symbol.asyncDispose]();
});
beforeEach(async () => {
  await fake.reset();
  await c.seed(5);
}, TIMEOUT);
afterEach(() => fake.assertNoViolations());

const secondaryLimit = (operationId: string): Fault => ({
  operationId,
  status: 403,
  headers: { "retry-after": "1" },
  body: {
    message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
    documentation_url: "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
    status: "403",
  },
});

const primaryLimit = (operationId: string): Fault => ({
  operationId,
  status: 403,
  headers: {
    "x-ratelimit-limit": "5000",
    "x-ratelimit-remaining": "0",
    "x-ratelimit-reset": String(Math.floor(Date.now() / 1000) + 1),
    "x-ratelimit-resource": "core",
  },
  body: {
    message: "API rate limit exceeded for installation ID 1.",
    documentation_url: "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
    status: "403",
  },
});

describe("GitHub misbehaving: each script retries what GitHub documents as retryable", () => {
  interface Case {
    name: string;
    faults: () => Fault[];
    env?: Record<string, string>;
  }
  const cases: Case[] = [
    { name: "502 on creating the tree", faults: () => [{ operationId: "git/create-tree", status: 502 }] },
    {
      name: "503 twice on opening the PR",
      faults: () => [{ operationId: "pulls/create", status: 503, times: 2 }],
    },
    {
      name: "500 on the compare API (commit list)",
      faults: () => [{ operationId: "repos/compare-commits", status: 500 }],
    },
    { name: "a secondary rate limit with retry-after", faults: () => [secondaryLimit("git/create-commit")] },
    {
      name: "429 with retry-after",
      faults: () => [{ operationId: "pulls/list", status: 429, headers: { "retry-after": "1" } }],
    },
    { name: "primary rate limit exhausted until reset", faults: () => [primaryLimit("git/create-ref")] },
    { name: "a connection dropped mid-answer", faults: () => [{ operationId: "pulls/list", drop: true }] },
    {
      name: "an answer slower than the client's timeout",
      faults: () => [{ operationId: "issues/add-labels", delayMs: 2_500 }],
      env: { FLAKE_BUMP_REQUEST_TIMEOUT_MS: "1000" },
    },
    {
      name: "a dropped dispatch (notify)",
      faults: () => [{ operationId: "repos/create-dispatch-event", drop: true }],
    },
  ];

  test.each(cases)(
    "$name → the PR is still opened, exactly once",
    async ({ faults, env }) => {
      for (const fault of faults()) fake.injectFault(fault);
      expect((await c.notify(c.revs[2] ?? "")).exitCode).toBe(0);
      const run = await c.downstreamRun(env ? { env } : {});
      expect(run.bump.exitCode).toBe(0);
      expect(run.openPr.stderr).toContain("nixfleet: created");
      expect(run.openPr.exitCode).toBe(0);
      expect(fake.faults).toHaveLength(0);
      expect(fake.requests.some((r) => r.fault)).toBe(true);
      expect(c.openPulls()).toHaveLength(1);
      expect(
        c
          .openPulls()[0]
          ?.labels.map((l) => l.name)
          .sort(),
      ).toStrictEqual(["automated", "dependencies"]);
      expect(await c.branchLockRev()).toBe(c.revs[2]);
    },
    TIMEOUT,
  );

  test(
    "a persistent 502 gives up in bounded time naming the endpoint; the rerun heals",
    async () => {
      fake.injectFault({ operationId: "git/create-tree", status: 502, times: 1000 });
      await c.notify(c.revs[2] ?? "");
      const failed = await c.downstreamRun();
      expect(failed.bump.exitCode).toBe(0);
      expect(failed.openPr.exitCode).toBe(1);
      const errors = failed.openPr.stderr.split("\n").filter((line) => line.startsWith("error:"));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toContain("POST /repos/acme/nixcfg/git/trees");
      expect(errors[0]).toContain("rerun");
      expect(c.openPulls()).toHaveLength(0);

      fake.faults.length = 0;
      const healed = await c.downstreamRun();
      expect(healed.openPr.exitCode).toBe(0);
      expect(c.openPulls()).toHaveLength(1);
      expect(await c.branchLockRev()).toBe(c.revs[2]);
    },
    TIMEOUT,
  );

  test(
    "a branch left without a PR (failure after the push) is picked up by the rerun",
    async () => {
      fake.injectFault({ operationId: "pulls/create", status: 500, times: 1000 });
      await c.notify(c.revs[3] ?? "");
      const failed = await c.downstreamRun();
      expect(failed.openPr.exitCode).toBe(1);
      expect(await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)).toBeDefined();
      expect(c.openPulls()).toHaveLength(0);

      fake.faults.length = 0;
      const healed = await c.downstreamRun();
      expect(healed.openPr.exitCode).toBe(0);
      expect(c.openPulls()).toHaveLength(1);
      expect(fake.pulls(DOWN.owner, DOWN.repo)).toHaveLength(1);
      expect(await c.branchLockRev()).toBe(c.revs[3]);
      expect(parseMarker(c.openPulls()[0]?.body)?.rev).toBe(c.revs[3]);
    },
    TIMEOUT,
  );

  test(
    "a bad token is a one-line 401 error and nothing is written",
    async () => {
      await c.notify(c.revs[1] ?? "");
      const before = fake.requests.length;
      const run = await c.downstreamRun({ env: { GH_TOKEN: "ghp_notAValidToken000000000000000000000" } });
      // bump's upstream check is the first to meet the token.
      const out = run.bump.exitCode === 0 ? run.openPr : run.bump;
      expect(out.exitCode).toBe(1);
      expect(out.stderr).toContain("401 Bad credentials");
      const writes = fake.requests.slice(before).filter((r) => r.method !== "GET" && r.status < 400);
      expect(writes).toHaveLength(0);
    },
    TIMEOUT,
  );
});

describe("Nix failing: no PR, flake.lock byte-identical", () => {
  async function checkout(): Promise<{ dir: string; lock: string }> {
    const dir = join(c.scratch, `nix-fail-${Date.now()}`);
    await $({ quiet: true })`git clone --quiet ${fake.cloneUrl(DOWN.owner, DOWN.repo)} ${dir}`;
    return { dir, lock: await readFile(join(dir, "flake.lock"), "utf8") };
  }

  test(
    "the upstream tarball cannot be fetched",
    async () => {
      const { dir, lock } = await checkout();
      fake.injectFault({ path: /\/tarball\//, status: 500, times: 1000 });
      const run = await runScript(
        "bump",
        ["nixfleet", "--rev", c.revs[4] ?? "", "--report", join(dir, "..", "r.json")],
        {
          cwd: dir,
          env: c.env,
        },
      );
      expect(run.exitCode).toBe(1);
      expect(run.stderr).toMatch(/error: Nix failed to lock 'nixfleet' at [0-9a-f]{40}/);
      expect(await readFile(join(dir, "flake.lock"), "utf8")).toBe(lock);
      fake.faults.length = 0;
    },
    TIMEOUT,
  );

  test(
    "a run interrupted while Nix fetches leaves the lock as it was",
    async () => {
      const { dir, lock } = await checkout();
      fake.injectFault({ path: /\/tarball\//, delayMs: 20_000, times: 10 });
      const proc = startScript("bump", ["nixfleet", "--rev", c.revs[4] ?? ""], { cwd: dir, env: c.env });
      // Wait until Nix is asking for the tarball, then interrupt the run.
      const deadline = Date.now() + 30_000;
      while (!fake.requests.some((r) => r.path.includes("/tarball/")) && Date.now() < deadline)
        await Bun.sleep(50);
      proc.kill("SIGTERM");
      // 143: stopped by SIGTERM, as a shell reports it, once Nix is stopped and the lock put back.
      expect(await proc.exited).toBe(143);
      expect(await readFile(join(dir, "flake.lock"), "utf8")).toBe(lock);
      fake.faults.length = 0;
    },
    TIMEOUT,
  );
});

describe("races", () => {
  test(
    "5 dispatches in random order, concurrently, plus 10 reruns → one PR, at the newest commit by ancestry",
    async () => {
      for (const rev of c.revs.slice(1)) expect((await c.notify(rev)).exitCode).toBe(0);
      const events = fake.dispatches.map((dispatch) => fake.repositoryDispatchEvent(dispatch));
      expect(events).toHaveLength(5);
      const deliveries = [
        ...events,
        ...Array.from({ length: 10 }, (_, i) => events[(i * 7) % events.length]),
      ];
      // A fixed shuffle keeps failures reproducible; order is "random" with respect to ancestry.
      const order = [9, 3, 14, 0, 7, 12, 4, 1, 11, 6, 2, 13, 8, 5, 10];
      const runs = await Promise.all(
        order.map(async (index, slot) => {
          await Bun.sleep(slot * 40);
          const event = deliveries[index];
          return event === undefined
            ? undefined
            : c.downstreamRun({ event, eventName: "repository_dispatch" });
        }),
      );
      for (const run of runs) {
        expect(run?.bump.exitCode).toBe(0);
        expect(run?.openPr.exitCode).toBe(0);
      }
      const newest = c.revs[5];
      expect(fake.pulls(DOWN.owner, DOWN.repo)).toHaveLength(1);
      expect(c.openPulls()).toHaveLength(1);
      expect(await c.branchLockRev()).toBe(newest);
      expect(parseMarker(c.openPulls()[0]?.body)?.rev).toBe(newest);
      expect(c.openPulls()[0]?.title).toBe(`chore(flake): update nixfleet to ${newest?.slice(0, 7)}`);
    },
    TIMEOUT,
  );
});

/**
 * Grouped pull requests end to end: real Nix (each version) fetching four `github:` inputs from the
 * fake GitHub, bump.ts --group and open-pr.ts --group as child processes in fresh clones. One story
 * per Nix version: three inputs → one PR; a dispatch for a fourth joins it; a late older dispatch
 * moves nothing back; once main has everything, the PR is closed.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { $ } from "zx";
import { parseGroupMarker } from "../lib/pr/group.ts";
import { type FakeGitHub, fakeGitHub } from "./fake-github/index.ts";
import {
  createUpstreams,
  fakeScriptEnv,
  inputsFlake,
  lockedRevs,
  pushNixLock,
  upstreamFlake,
} from "./support/chain.ts";
import { type NixTestEnv, nixTestEnv, nixVariants } from "./support/nix.ts";
import { type RunResult, runScript } from "./support/run.ts";

const TIMEOUT = 300_000;
const DOWN = { owner: "acme", repo: "nixcfg" } as const;
const BRANCH = "flake-bump/all";
const NAMES = ["a", "b", "c", "d"] as const;
type Name = (typeof NAMES)[number];

const downstreamNix = inputsFlake(NAMES);

let fake: FakeGitHub;
beforeAll(async () => {
  fake = await fakeGitHub();
});

for (const variant of nixVariants()) {
  describe(`grouped pull requests with Nix ${variant.version}`, () => {
    let scratch = "";
    let nixEnv: NixTestEnv;
    let env: Record<string, string | undefined> = {};
    const revs = {} as Record<Name, string[]>;
    let runs = 0;

    beforeAll(async () => {
      scratch = await mkdtemp(join(tmpdir(), "flake-bump-group-"));
      nixEnv = nixTestEnv({ certFile: fake.certFile });
      env = fakeScriptEnv(fake, nixEnv, variant, { GITHUB_REPOSITORY: `${DOWN.owner}/${DOWN.repo}` });
      await fake.reset();
      Object.assign(revs, await createUpstreams(fake, NAMES));
      await fake.createRepo(DOWN.owner, DOWN.repo, { files: { "flake.nix": downstreamNix } });
      const dir = await checkout();
      await pushNixLock(fake, DOWN, dir, env);
    }, TIMEOUT);
    afterAll(async () => {
      await rm(scratch, { recursive: true, force: true });
      await nixEnv?.[Symbol.asyncDispose]();
    });

    async function checkout(): Promise<string> {
      const dir = join(scratch, `checkout-${++runs}`);
      await $({ quiet: true })`git clone --quiet ${fake.cloneUrl(DOWN.owner, DOWN.repo)} ${dir}`;
      return dir;
    }

    /** bump.ts --group then open-pr.ts --group in a fresh clone of main, as the update action runs them. */
    async function run(bumpArgs: string[]): Promise<{ bump: RunResult; openPr: RunResult }> {
      const dir = await checkout();
      const report = join(scratch, `report-${runs}.json`);
      try {
        const bump = await runScript("bump", [...bumpArgs, "--report", report], {
          cwd: dir,
          env: { ...env, FLAKE_BUMP_GROUP: "true" },
        });
        expect(bump.stderr).not.toContain("error:");
        expect(bump.exitCode).toBe(0);
        const openPr = await runScript("open-pr", ["--report", report, "--group"], { cwd: dir, env });
        expect(openPr.stderr).not.toContain("error:");
        expect(openPr.exitCode).toBe(0);
        return { bump, openPr };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }

    const pushUpstream = async (name: Name) => {
      const n = revs[name].length;
      revs[name].push(await fake.push("acme", name, upstreamFlake(name, n), `feat(${name}): change ${n}`));
    };
    const rev = (name: Name, i: number) => revs[name][i] ?? "";
    const openPulls = () => fake.pulls(DOWN.owner, DOWN.repo).filter((p) => p.state === "open");
    const branchRevs = () => lockedRevs(fake, DOWN, BRANCH, NAMES);

    test(
      "three inputs → one PR; a fourth's dispatch joins it; a late older one moves nothing back; closed once main has all",
      async () => {
        for (const name of ["a", "b", "c"] as const) {
          await pushUpstream(name);
          await pushUpstream(name);
        }
        const first = await run(["a", "b", "c"]);
        expect(first.openPr.stderr).toContain("a, b, c: created");
        expect(openPulls()).toHaveLength(1);
        const pr = openPulls()[0];
        expect(pr?.headRef).toBe(BRANCH);
        expect(pr?.title).toBe("chore(flake): update 3 inputs");
        expect(pr?.body).toContain("feat(b): change 2");
        expect(await branchRevs()).toStrictEqual({
          a: rev("a", 2),
          b: rev("b", 2),
          c: rev("c", 2),
          d: rev("d", 0),
        });
        const head = await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH);
        expect(fake.isVerified(DOWN.owner, DOWN.repo, head ?? "")).toBe(true);
        expect(await fake.readFile(DOWN.owner, DOWN.repo, BRANCH, "flake.nix")).toBe(downstreamNix);

        // A dispatch for d alone: Nix pins a, b, c at the group's revs in the same run.
        await pushUpstream("d");
        const second = await run(["d", "--rev", rev("d", 1)]);
        expect(second.openPr.stderr).toContain(`: updated https://localhost/acme/nixcfg/pull/${pr?.number}`);
        expect(openPulls()).toHaveLength(1);
        expect(openPulls()[0]?.number).toBe(pr?.number ?? -1);
        expect(openPulls()[0]?.title).toBe("chore(flake): update 4 inputs");
        const all = { a: rev("a", 2), b: rev("b", 2), c: rev("c", 2), d: rev("d", 1) };
        expect(await branchRevs()).toStrictEqual(all);
        expect(parseGroupMarker(openPulls()[0]?.body)).toStrictEqual(all);

        // A late dispatch of a's older commit: the group keeps a at its newer rev, the branch stays.
        const before = await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH);
        const late = await run(["a", "--rev", rev("a", 1)]);
        expect(late.openPr.stderr).toContain(": unchanged");
        expect(await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)).toBe(before);
        expect(await branchRevs()).toStrictEqual(all);

        // main takes the grouped lock (merged by hand): the next run closes the PR.
        const lock = (await fake.readFile(DOWN.owner, DOWN.repo, BRANCH, "flake.lock")) ?? "";
        await fake.push(DOWN.owner, DOWN.repo, { "flake.lock": lock }, "merge the grouped update");
        const after = await run(["d", "--rev", rev("d", 1)]);
        expect(after.openPr.stderr).toContain(": closed");
        expect(openPulls()).toHaveLength(0);
        expect(await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)).toBeUndefined();
        expect(fake.comments(DOWN.owner, DOWN.repo, pr?.number ?? -1).at(-1)).toMatch(
          /^Closing: the base branch/,
        );
        fake.assertNoViolations();
      },
      TIMEOUT,
    );
  });
}

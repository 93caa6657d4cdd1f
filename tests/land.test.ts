/**
 * How bumps land, end to end with real Nix and the fake GitHub: notify.ts → bump.ts → open-pr.ts
 * with `--merge auto` or `--merge direct` (and, for a host that stops evaluating, impact.ts between
 * opening and landing, as the update action orders them).
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseLock } from "../lib/flake/lock.ts";
import { type FakeGitHub, fakeGitHub } from "./fake-github/index.ts";
import { BRANCH, type Chain, chain, DOWN } from "./support/chain.ts";
import { nixVariants } from "./support/nix.ts";
import { type RunResult, runScript } from "./support/run.ts";

const TIMEOUT = 240_000;

/** The downstream flake with one host that stops evaluating once nixfleet reaches version 2. */
const hostsNix = `{
  inputs.nixfleet.url = "github:acme/nixfleet?host=localhost";
  outputs = { nixfleet, ... }: {
    nixosConfigurations.web.config.system.build.toplevel =
      if nixfleet.version >= 2 then throw "web: option 'fleet.enable' no longer exists"
      else derivation { name = "web"; system = "x86_64-linux"; builder = "/bin/false"; };
    nixosConfigurations.db.config.system.build.toplevel =
      derivation { name = "db"; system = "x86_64-linux"; builder = "/bin/false"; };
  };
}
`;

let fake: FakeGitHub;
beforeAll(async () => {
  fake = await fakeGitHub();
});

for (const variant of nixVariants()) {
  describe(`landing with Nix ${variant.version}`, () => {
    let c: Chain;
    const baseLockRev = async () => {
      const text = await fake.readFile(DOWN.owner, DOWN.repo, "main", "flake.lock");
      return text === undefined ? undefined : parseLock(text).nodes.nixfleet?.locked?.rev;
    };
    const mainSha = () => fake.branchSha(DOWN.owner, DOWN.repo, "main");
    const dispatch = async (rev: string) => expect((await c.notify(rev)).exitCode).toBe(0);
    const expectOk = (run: { bump: RunResult; openPr: RunResult }) => {
      expect(run.bump.exitCode).toBe(0);
      expect(run.openPr.stderr).not.toContain("error:");
      expect(run.openPr.exitCode).toBe(0);
    };

    beforeAll(async () => {
      c = await chain(fake, variant);
    });
    afterAll(async () => {
      await c[Symbol.asyncDispose]();
    });
    beforeEach(async () => {
      await fake.reset();
      await c.seed(2);
      fake.setRepoSettings(DOWN.owner, DOWN.repo, { allowAutoMerge: true });
    }, TIMEOUT);
    afterEach(() => fake.assertNoViolations());

    test(
      "auto with a required check: auto-merge enabled at the branch head, not merged",
      async () => {
        fake.protectBranch(DOWN.owner, DOWN.repo, "main", { requiredChecks: ["ci"] });
        await dispatch(c.revs[2] ?? "");
        const run = await c.downstreamRun({ env: { FLAKE_BUMP_MERGE: "auto" } });
        expectOk(run);
        expect(run.openPr.stderr).toContain("nixfleet: auto-merge-enabled");
        const [pr] = c.openPulls();
        expect(pr?.autoMerge?.mergeMethod).toBe("SQUASH");
        expect(pr?.merged).toBeUndefined();
        expect(await baseLockRev()).toBe(c.revs[0]);
        const head = await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH);
        const arm = fake.requests.find(
          (r) => r.operationId === "graphql" && JSON.stringify(r.body).includes("enable"),
        );
        expect(JSON.stringify(arm?.body)).toContain(head ?? "-");
        // A rerun keeps it armed.
        const again = await c.downstreamRun({ env: { FLAKE_BUMP_MERGE: "auto" } });
        expectOk(again);
        expect(again.openPr.stderr).toContain("auto-merge stays enabled");
        expect(c.openPulls()[0]?.autoMerge).toBeDefined();
      },
      TIMEOUT,
    );

    test(
      "auto with nothing required: merged at the SHA that was evaluated",
      async () => {
        await dispatch(c.revs[2] ?? "");
        const run = await c.downstreamRun({
          env: { FLAKE_BUMP_MERGE: "auto", FLAKE_BUMP_MERGE_METHOD: "merge" },
        });
        expectOk(run);
        expect(run.openPr.stderr).toContain("nixfleet: merged");
        const [pr] = fake.pulls(DOWN.owner, DOWN.repo);
        expect(pr?.state).toBe("closed");
        const merge = fake.requests.find((r) => r.operationId === "pulls/merge");
        expect(merge?.status).toBe(200);
        expect(merge?.body).toStrictEqual({ sha: pr?.frozen?.headSha ?? "-", merge_method: "merge" });
        expect(await baseLockRev()).toBe(c.revs[2]);
        expect(await mainSha()).toBe(pr?.merged?.sha);
      },
      TIMEOUT,
    );

    test(
      "auto on a repository without auto-merge allowed: one clear error, the PR left open",
      async () => {
        fake.setRepoSettings(DOWN.owner, DOWN.repo, { allowAutoMerge: false });
        await dispatch(c.revs[2] ?? "");
        const run = await c.downstreamRun({ env: { FLAKE_BUMP_MERGE: "auto" } });
        expect(run.openPr.exitCode).toBe(1);
        const errors = run.openPr.stderr.split("\n").filter((line) => line.startsWith("error:"));
        expect(errors).toHaveLength(1);
        expect(errors[0]).toMatch(/acme\/nixcfg does not allow auto-merge, .*"Allow auto-merge"/);
        expect(c.openPulls()).toHaveLength(1);
        expect(c.openPulls()[0]?.autoMerge).toBeUndefined();
        expect(await baseLockRev()).toBe(c.revs[0]);
      },
      TIMEOUT,
    );

    test(
      "auto with a host that no longer evaluates (impact between opening and landing): left open, the body says why",
      async () => {
        await fake.push(DOWN.owner, DOWN.repo, { "flake.nix": hostsNix }, "hosts");
        await dispatch(c.revs[2] ?? "");
        let impact: RunResult | undefined;
        let landing: RunResult | undefined;
        const run = await c.downstreamRun({
          env: { FLAKE_BUMP_MERGE: "auto" },
          openPrArgs: ["--step", "open"],
          after: async ({ checkout, reportFile, env }) => {
            impact = await runScript("impact", ["--report", reportFile, "--json"], { cwd: checkout, env });
            const file = join(c.scratch, "impact.json");
            await writeFile(file, impact.stdout);
            landing = await runScript(
              "open-pr",
              ["--report", reportFile, "--step", "land", "--impact", file],
              {
                cwd: checkout,
                env,
              },
            );
          },
        });
        expectOk(run);
        expect(run.openPr.stderr).toContain("nixfleet: created");
        expect(impact?.exitCode).toBe(0);
        expect(landing?.exitCode).toBe(0);
        expect(landing?.stderr).toContain("nixfleet: held");
        expect(landing?.stderr).toContain("left open for a human: web no longer evaluates with this bump");
        const [pr] = c.openPulls();
        expect(pr?.autoMerge).toBeUndefined();
        expect(pr?.merged).toBeUndefined();
        expect(pr?.body).toContain("### Not merged automatically");
        expect(pr?.body).toContain("`web` no longer evaluates with this bump");
        // The impact step's section is there too, naming Nix's error.
        expect(pr?.body).toContain("fleet.enable");
        expect(fake.requests.some((r) => r.operationId === "pulls/merge")).toBe(false);
      },
      TIMEOUT,
    );

    test(
      "direct: main moves by one Verified commit changing only flake.lock, and no PR",
      async () => {
        const before = (await mainSha()) ?? "";
        await dispatch(c.revs[2] ?? "");
        const run = await c.downstreamRun({ env: { FLAKE_BUMP_MERGE: "direct" } });
        expectOk(run);
        expect(run.openPr.stderr).toContain("nixfleet: committed");
        const after = (await mainSha()) ?? "";
        expect(fake.isVerified(DOWN.owner, DOWN.repo, after)).toBe(true);
        const commits = fake.requests.filter((r) => r.operationId === "git/create-commit");
        expect(commits).toHaveLength(1);
        expect(commits[0]?.body).toMatchObject({ parents: [before] });
        const tree = fake.requests.find((r) => r.operationId === "git/create-tree")?.body;
        expect(JSON.stringify(tree)).toContain('"path":"flake.lock"');
        expect(await baseLockRev()).toBe(c.revs[2]);
        expect(await fake.readFile(DOWN.owner, DOWN.repo, "main", "flake.nix")).toContain("nixfleet");
        expect(fake.pulls(DOWN.owner, DOWN.repo)).toStrictEqual([]);
        const message = JSON.stringify(commits[0]?.body);
        expect(message).toContain(`compare/${c.revs[0]}...${c.revs[2]}`);
        expect(message).toContain("feat: change 2");
      },
      TIMEOUT,
    );

    test(
      "direct racing a human push: rebuilt on the human's commit, nothing lost",
      async () => {
        let human = "";
        await dispatch(c.revs[2] ?? "");
        const run = await c.downstreamRun({
          env: { FLAKE_BUMP_MERGE: "direct" },
          beforeOpenPr: async () => {
            human = await fake.push(DOWN.owner, DOWN.repo, { "hosts/web.nix": "{ }\n" }, "web: tweak");
          },
        });
        expectOk(run);
        expect(run.openPr.stderr).toContain("nixfleet: committed");
        const commit = fake.requests.find((r) => r.operationId === "git/create-commit");
        expect(commit?.body).toMatchObject({ parents: [human] });
        expect(await fake.readFile(DOWN.owner, DOWN.repo, "main", "hosts/web.nix")).toBe("{ }\n");
        expect(await baseLockRev()).toBe(c.revs[2]);
        expect(fake.isVerified(DOWN.owner, DOWN.repo, (await mainSha()) ?? "")).toBe(true);
      },
      TIMEOUT,
    );

    test(
      "direct on a protected branch: one clear error naming the rule and merge: auto, nothing written",
      async () => {
        fake.protectBranch(DOWN.owner, DOWN.repo, "main", { requirePullRequest: true });
        const before = await mainSha();
        await dispatch(c.revs[2] ?? "");
        const run = await c.downstreamRun({ env: { FLAKE_BUMP_MERGE: "direct" } });
        expect(run.openPr.exitCode).toBe(1);
        const errors = run.openPr.stderr.split("\n").filter((line) => line.startsWith("error:"));
        expect(errors).toHaveLength(1);
        expect(errors[0]).toContain("Changes must be made through a pull request.");
        expect(errors[0]).toContain("use merge: auto");
        expect(await mainSha()).toBe(before);
        expect(fake.pulls(DOWN.owner, DOWN.repo)).toStrictEqual([]);
      },
      TIMEOUT,
    );
  });
}

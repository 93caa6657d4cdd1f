/**
 * A grouped pull request landing by itself, end to end with real Nix and the fake GitHub, in the
 * update action's order: bump.ts --group → open-pr.ts --group --step open → impact.ts --group (one
 * section, evaluated with the combined lock) → open-pr.ts --group --step land. The downstream has
 * two inputs, so a nightly run moves both into one pull request.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseLock } from "../lib/flake/lock.ts";
import { parseGroupMarker } from "../lib/pr/group.ts";
import { type FakeGitHub, fakeGitHub } from "./fake-github/index.ts";
import { type Chain, chain, DOWN } from "./support/chain.ts";
import { nixVariants } from "./support/nix.ts";
import { type RunResult, runScript } from "./support/run.ts";

const TIMEOUT = 240_000;
const GROUP = "flake-bump/all";

/** Two inputs; `web` uses nixfleet's version and stops evaluating once `other` reaches version 2. */
const downstream = (breaks: boolean) => `{
  inputs.nixfleet.url = "github:acme/nixfleet?host=localhost";
  inputs.other.url = "github:acme/nixfleet?host=localhost";
  outputs = { nixfleet, other, ... }: {
    nixosConfigurations.web.config.system.build.toplevel =
      if ${breaks ? "other.version >= 2" : "false"} then throw "web: option 'fleet.enable' no longer exists"
      else derivation { name = "web-\${toString nixfleet.version}"; system = "x86_64-linux"; builder = "/bin/false"; };
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
  describe(`grouped + merge: auto with Nix ${variant.version}`, () => {
    let c: Chain;
    const mainLock = async () => {
      const text = await fake.readFile(DOWN.owner, DOWN.repo, "main", "flake.lock");
      const lock = text === undefined ? undefined : parseLock(text);
      return [lock?.nodes.nixfleet?.locked?.rev, lock?.nodes.other?.locked?.rev];
    };
    beforeAll(async () => {
      c = await chain(fake, variant);
    });
    afterAll(async () => {
      await c[Symbol.asyncDispose]();
    });
    afterEach(() => fake.assertNoViolations());

    /** A nightly run with group and merge auto, impact between opening and landing. */
    async function nightly() {
      let impact: RunResult | undefined;
      let landing: RunResult | undefined;
      const run = await c.downstreamRun({
        event: { schedule: "23 3 * * *" },
        env: { FLAKE_BUMP_GROUP: "true", FLAKE_BUMP_MERGE: "auto" },
        openPrArgs: ["--step", "open"],
        after: async ({ checkout, reportFile, env }) => {
          impact = await runScript("impact", ["--report", reportFile, "--json"], { cwd: checkout, env });
          const file = join(c.scratch, `impact-${variant.version}.json`);
          await writeFile(file, impact.stdout);
          landing = await runScript("open-pr", ["--report", reportFile, "--step", "land", "--impact", file], {
            cwd: checkout,
            env,
          });
        },
      });
      expect(run.bump.exitCode).toBe(0);
      expect(run.openPr.exitCode).toBe(0);
      expect(run.openPr.stderr).toContain("nixfleet, other: created");
      expect(impact?.exitCode).toBe(0);
      return { impact, landing };
    }

    beforeEach(async () => {
      await fake.reset();
    }, TIMEOUT);

    test(
      "nothing required: one grouped PR, one combined section, merged at the head impact evaluated",
      async () => {
        await c.seed(2, { downstream: downstream(false) });
        fake.setRepoSettings(DOWN.owner, DOWN.repo, { allowAutoMerge: true });
        const { impact, landing } = await nightly();
        expect(JSON.parse(impact?.stdout ?? "{}")).toMatchObject({
          inputs: [
            {
              name: "nixfleet,other",
              members: { nixfleet: c.revs[2], other: c.revs[2] },
              hosts: [
                { attr: "nixosConfigurations.db", status: "unchanged" },
                { attr: "nixosConfigurations.web", status: "changed" },
              ],
            },
          ],
        });
        expect(landing?.exitCode).toBe(0);
        expect(landing?.stderr).toContain("nixfleet, other: merged");
        const pulls = fake.pulls(DOWN.owner, DOWN.repo);
        expect(pulls.map((p) => [p.headRef, p.state])).toStrictEqual([[GROUP, "closed"]]);
        const [pr] = pulls;
        expect(pr?.body?.split("<!-- flake-bump:impact -->")).toHaveLength(2);
        expect(pr?.body).toContain("After merging, deploy: `web` (`db` unchanged).");
        expect(parseGroupMarker(pr?.body)).toStrictEqual({
          nixfleet: c.revs[2] ?? "-",
          other: c.revs[2] ?? "-",
        });
        const merge = fake.requests.find((r) => r.operationId === "pulls/merge");
        expect(merge?.body).toStrictEqual({ sha: pr?.frozen?.headSha ?? "-", merge_method: "squash" });
        expect(await mainLock()).toStrictEqual([c.revs[2], c.revs[2]]);
        expect(await fake.branchSha(DOWN.owner, DOWN.repo, "main")).toBe(pr?.merged?.sha);
      },
      TIMEOUT,
    );

    test(
      "a host that no longer evaluates with one member: held, not armed, the body says why",
      async () => {
        await c.seed(2, { downstream: downstream(true) });
        fake.setRepoSettings(DOWN.owner, DOWN.repo, { allowAutoMerge: true });
        fake.protectBranch(DOWN.owner, DOWN.repo, "main", { requiredChecks: ["ci"] });
        const { landing } = await nightly();
        expect(landing?.exitCode).toBe(0);
        expect(landing?.stderr).toContain("nixfleet, other: held");
        expect(landing?.stderr).toContain("left open for a human: web no longer evaluates with this bump");
        const [pr] = c.openPulls();
        expect(pr?.headRef).toBe(GROUP);
        expect(pr?.autoMerge).toBeUndefined();
        expect(pr?.merged).toBeUndefined();
        expect(pr?.body).toContain("### Not merged automatically");
        expect(pr?.body).toContain("fleet.enable");
        expect(pr?.body?.split("<!-- flake-bump:impact -->")).toHaveLength(2);
        expect(
          fake.requests.some(
            (r) =>
              r.operationId === "pulls/merge" ||
              String(JSON.stringify(r.body)).includes("enablePullRequestAutoMerge"),
          ),
        ).toBe(false);
        expect(await mainLock()).toStrictEqual([c.revs[0], c.revs[0]]);
      },
      TIMEOUT,
    );
  });
}

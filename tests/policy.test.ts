/**
 * The policy file end to end: real Nix (each version) on a fleet whose flake has the README's example
 * inputs plus one under `min-age: 3d`, bump.ts and open-pr.ts as child processes in fresh clones of
 * the fake GitHub, the nightly's clock set by FLAKE_BUMP_NOW. A Monday nightly opens the nixpkgs
 * group's one pull request and one per other input that is behind (the auto ones merged), nothing
 * for janus, nothing for the input whose commit is a day old; a Tuesday leaves the group alone; once
 * three days old the commit moves; naming janus moves it and says what it overrode; a bad file is
 * one clean error and nothing changes.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { $ } from "zx";
import { parseLock } from "../lib/flake/lock.ts";
import { type FakeGitHub, fakeGitHub } from "./fake-github/index.ts";
import {
  bareGit,
  createUpstreams,
  fakeScriptEnv,
  inputsFlake,
  lockedRevs,
  pushNixLock,
  upstreamFlake,
} from "./support/chain.ts";
import { type NixTestEnv, nixTestEnv, nixVariants } from "./support/nix.ts";
import { EXAMPLE_POLICY } from "./support/policy.ts";
import { type RunResult, runScript } from "./support/run.ts";

const TIMEOUT = 300_000;
const DOWN = { owner: "acme", repo: "nixcfg" } as const;
const GROUP = ["nixpkgs", "nixpkgs-stable", "home-manager"] as const;
const NAMES = [...GROUP, "janus", "hostdash", "slow"] as const;
type Name = (typeof NAMES)[number];

const POLICY = `${EXAMPLE_POLICY}  slow:\n    min-age: 3d\n`;
const downstreamNix = inputsFlake(NAMES);

// 2026-12-07 is a Monday. Every input's new commit is from Sunday; slow's is a day old on Monday night.
const SUNDAY = new Date("2026-12-06T00:00:00Z");
const MONDAY_NIGHT = "2026-12-07T03:00:00Z";
const TUESDAY_NIGHT = "2026-12-08T03:00:00Z";
const WEDNESDAY_NIGHT = "2026-12-09T03:00:00Z";

let fake: FakeGitHub;
beforeAll(async () => {
  fake = await fakeGitHub();
});

for (const variant of nixVariants()) {
  describe(`the policy file with Nix ${variant.version}`, () => {
    let scratch = "";
    let nixEnv: NixTestEnv;
    let env: Record<string, string | undefined> = {};
    const revs = {} as Record<Name, string[]>;
    let runs = 0;

    beforeAll(async () => {
      scratch = await mkdtemp(join(tmpdir(), "flake-bump-policy-"));
      nixEnv = nixTestEnv({ certFile: fake.certFile });
      env = fakeScriptEnv(fake, nixEnv, variant, { GITHUB_REPOSITORY: `${DOWN.owner}/${DOWN.repo}` });
      await fake.reset();
      Object.assign(revs, await createUpstreams(fake, NAMES));
      await fake.createRepo(DOWN.owner, DOWN.repo, {
        files: { "flake.nix": downstreamNix, ".github/flake-bump.yml": POLICY },
      });
      fake.setRepoSettings(DOWN.owner, DOWN.repo, { allowAutoMerge: true });
      const dir = await checkout();
      await pushNixLock(fake, DOWN, dir, env);
      await rm(dir, { recursive: true, force: true });
      for (const name of NAMES) {
        const date = name === "slow" ? new Date("2026-12-06T03:00:00Z") : SUNDAY;
        revs[name].push(
          await fake.push("acme", name, upstreamFlake(name, 1), `feat(${name}): change 1`, { date }),
        );
      }
    }, TIMEOUT);
    afterAll(async () => {
      await rm(scratch, { recursive: true, force: true });
      await nixEnv?.[Symbol.asyncDispose]();
    });

    /** A fresh clone of `repo`'s default branch in the scratch directory. */
    async function checkout(repo: { owner: string; repo: string } = DOWN): Promise<string> {
      const dir = join(scratch, `checkout-${++runs}`);
      await $({ quiet: true })`git clone --quiet ${fake.cloneUrl(repo.owner, repo.repo)} ${dir}`;
      return dir;
    }

    /**
     * A nightly at `now` (or a person's run naming `names`, or a dispatch for `dispatch`): bump.ts,
     * then open-pr.ts, in a fresh clone of main.
     */
    async function run(
      now: string,
      names: string[] = [],
      dispatch?: { input: Name; sha: string },
    ): Promise<{ bump: RunResult; openPr: RunResult }> {
      const dir = await checkout();
      const report = join(scratch, `report-${runs}.json`);
      const event = join(scratch, `event-${runs}.json`);
      if (dispatch !== undefined)
        await writeFile(event, JSON.stringify({ action: "flake-bump", client_payload: dispatch }));
      const trigger =
        dispatch !== undefined
          ? { GITHUB_EVENT_NAME: "repository_dispatch", GITHUB_EVENT_PATH: event }
          : names.length === 0
            ? { GITHUB_EVENT_NAME: "schedule" }
            : {};
      const at = { ...env, FLAKE_BUMP_NOW: now, ...trigger };
      try {
        const bump = await runScript("bump", [...names, "--report", report], { cwd: dir, env: at });
        expect(bump.stderr).not.toContain("error:");
        expect(bump.exitCode).toBe(0);
        const openPr = await runScript("open-pr", ["--report", report], { cwd: dir, env: at });
        expect(openPr.stderr).not.toContain("error:");
        expect(openPr.exitCode).toBe(0);
        return { bump, openPr };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }

    const pulls = () =>
      fake
        .pulls(DOWN.owner, DOWN.repo)
        .map((p) => ({ head: p.headRef, state: p.state, merged: Boolean(p.merged) }))
        .sort((a, b) => a.head.localeCompare(b.head));
    const mainRevs = () => lockedRevs(fake, DOWN, "main", NAMES);
    const at = (i: number) => Object.fromEntries(NAMES.map((n) => [n, revs[n][i]]));

    test(
      "Monday: one group PR, one per other input behind, none for janus or the day-old commit; Tuesday: the group waits; three days on: it moves",
      async () => {
        const monday = await run(MONDAY_NIGHT);
        expect(monday.bump.stderr).toContain(
          "'janus' is held by follow: none (.github/flake-bump.yml:14 (inputs.janus.follow))",
        );
        expect(monday.bump.stderr).toContain(
          "'slow' is held by min-age: 3d (.github/flake-bump.yml:18 (inputs.slow.min-age))",
        );
        // The group and hostdash land by auto (no required checks here: merged at once); the rest by review.
        expect(pulls()).toStrictEqual([
          { head: "flake-bump/group/nixpkgs", state: "closed", merged: true },
          { head: "flake-bump/hostdash", state: "closed", merged: true },
        ]);
        expect(await mainRevs()).toStrictEqual({
          ...at(0),
          nixpkgs: revs.nixpkgs[1],
          "nixpkgs-stable": revs["nixpkgs-stable"][1],
          "home-manager": revs["home-manager"][1],
          hostdash: revs.hostdash[1],
        });

        // A new nixpkgs commit on Monday; the Tuesday nightly leaves the weekly group alone.
        revs.nixpkgs.push(
          await fake.push("acme", "nixpkgs", upstreamFlake("nixpkgs", 2), "feat(nixpkgs): change 2", {
            date: new Date("2026-12-07T12:00:00Z"),
          }),
        );
        const tuesday = await run(TUESDAY_NIGHT);
        expect(tuesday.bump.stderr).toContain(
          "'nixpkgs' is held by schedule: weekly (.github/flake-bump.yml:10 (groups.nixpkgs.schedule)): the next scheduled run that moves it is on 2026-12-14",
        );
        expect(tuesday.bump.stderr).toContain("'slow' is held by min-age: 3d");
        expect(pulls()).toHaveLength(2);

        // Wednesday night slow's commit is three days old: it moves, into a pull request for review.
        const wednesday = await run(WEDNESDAY_NIGHT);
        expect(wednesday.bump.stderr).not.toContain("'slow' is held");
        expect(pulls()).toContainEqual({ head: "flake-bump/slow", state: "open", merged: false });
        const slow = await fake.readFile(DOWN.owner, DOWN.repo, "flake-bump/slow", "flake.lock");
        expect(slow === undefined ? undefined : parseLock(slow).nodes.slow?.locked?.rev).toBe(revs.slow[1]);
        expect(pulls().map((p) => p.head)).not.toContain("flake-bump/janus");
      },
      TIMEOUT,
    );

    test(
      "--check --json: the held inputs are not behind, and each input's policy says where it came from",
      async () => {
        const dir = await checkout();
        try {
          const result = await runScript("bump", ["--check", "--json"], {
            cwd: dir,
            env: { ...env, FLAKE_BUMP_NOW: TUESDAY_NIGHT, GITHUB_EVENT_NAME: "schedule" },
          });
          expect(result.exitCode).toBe(0);
          const answer = JSON.parse(result.stdout);
          expect(answer.outdated).toStrictEqual([]);
          expect(
            answer.skipped.map((s: { name: string; reason: string }) => [s.name, s.reason]),
          ).toStrictEqual([
            ["home-manager", "held"],
            ["janus", "held"],
            ["nixpkgs", "held"],
            ["nixpkgs-stable", "held"],
            // main still locks slow's old commit (its pull request waits for review); the new one is young.
            ["slow", "held"],
          ]);
          expect(answer.policy["nixpkgs-stable"].merge).toStrictEqual({
            value: "auto",
            from: "group",
            where: ".github/flake-bump.yml:11 (groups.nixpkgs.merge)",
          });
          expect(result.stderr).toContain(
            "• 'janus' policy: its own pull request; merge: review (.github/flake-bump.yml:3 (defaults.merge)), follow: none (.github/flake-bump.yml:14 (inputs.janus.follow))",
          );
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      },
      TIMEOUT,
    );

    test(
      "a dispatch for a group member on a Tuesday opens the group's pull request; one for another member joins it",
      async () => {
        // Required checks keep the armed pull request open, as on a protected main.
        fake.protectBranch(DOWN.owner, DOWN.repo, "main", { requiredChecks: ["ci"] });
        const date = new Date("2026-12-07T12:00:00Z");
        const stable = upstreamFlake("nixpkgs-stable", 2);
        revs["nixpkgs-stable"].push(
          await fake.push("acme", "nixpkgs-stable", stable, "feat: change 2", { date }),
        );
        await run(TUESDAY_NIGHT, [], { input: "nixpkgs", sha: revs.nixpkgs[2] ?? "" });
        await run(TUESDAY_NIGHT, [], { input: "nixpkgs-stable", sha: revs["nixpkgs-stable"][2] ?? "" });
        const open = fake
          .pulls(DOWN.owner, DOWN.repo)
          .filter((p) => p.state === "open" && p.headRef.startsWith("flake-bump/group/"));
        expect(open.map((p) => p.headRef)).toStrictEqual(["flake-bump/group/nixpkgs"]);
        const text = await fake.readFile(DOWN.owner, DOWN.repo, "flake-bump/group/nixpkgs", "flake.lock");
        const lock = text === undefined ? undefined : parseLock(text);
        expect([lock?.nodes.nixpkgs?.locked?.rev, lock?.nodes["nixpkgs-stable"]?.locked?.rev]).toStrictEqual([
          revs.nixpkgs[2],
          revs["nixpkgs-stable"][2],
        ]);
        fake.protectBranch(DOWN.owner, DOWN.repo, "main", undefined);
      },
      TIMEOUT,
    );

    test(
      "naming janus moves it whatever follow: none says, and the run says so",
      async () => {
        const asked = await run(TUESDAY_NIGHT, ["janus"]);
        expect(asked.bump.stderr).toContain(
          "'janus' was named, so it moves despite follow: none (.github/flake-bump.yml:14 (inputs.janus.follow))",
        );
        expect(pulls()).toContainEqual({ head: "flake-bump/janus", state: "open", merged: false });
      },
      TIMEOUT,
    );

    /**
     * A second fleet whose hosts read the group's inputs, with host impact on: the nightly runs the
     * action's steps in order (bump, open-pr --step open, impact, open-pr --step land).
     */
    const HOSTS = { owner: "acme", repo: "hosts" } as const;
    const hostsNix = `{
${GROUP.map((n) => `  inputs.${n}.url = "github:acme/${n}?host=localhost";`).join("\n")}
  outputs = { nixpkgs, nixpkgs-stable, home-manager, ... }:
    let pkg = name: derivation { inherit name; builder = "/bin/false"; system = "x86_64-linux"; };
    in {
      nixosConfigurations.web.config.system.build.toplevel = pkg "nixos-system-web-\${toString nixpkgs.nixpkgs}";
      nixosConfigurations.db.config.system.build.toplevel = pkg "nixos-system-db-\${toString nixpkgs-stable.nixpkgs-stable}";
      homeConfigurations."me@laptop".activationPackage = pkg "home-\${toString home-manager.home-manager}";
    };
}
`;
    const GROUP_POLICY =
      "groups:\n  nixpkgs:\n    inputs: [nixpkgs, nixpkgs-stable, home-manager]\n    schedule: weekly\n    merge: auto\n";

    async function hostsNightly(
      now: string,
    ): Promise<Record<"bump" | "open" | "impact" | "land", RunResult>> {
      const dir = join(scratch, `hosts-${++runs}`);
      await $({ quiet: true })`git clone --quiet ${fake.cloneUrl(HOSTS.owner, HOSTS.repo)} ${dir}`;
      const report = join(scratch, `hosts-report-${runs}.json`);
      const runner = join(scratch, `hosts-runner-${runs}`);
      const at = {
        ...env,
        GITHUB_REPOSITORY: `${HOSTS.owner}/${HOSTS.repo}`,
        GITHUB_EVENT_NAME: "schedule",
        FLAKE_BUMP_NOW: now,
        RUNNER_TEMP: runner,
      };
      const step = async (script: "bump" | "open-pr" | "impact", args: string[]) => {
        const result = await runScript(script, args, { cwd: dir, env: at });
        expect(result.stderr).not.toContain("error:");
        expect(result.exitCode).toBe(0);
        return result;
      };
      try {
        const bump = await step("bump", ["--report", report]);
        const open = await step("open-pr", ["--report", report, "--step", "open"]);
        const impact = await step("impact", ["--report", report]);
        const impactFile = join(runner, "flake-bump", "impact.json");
        const land = await step("open-pr", ["--report", report, "--step", "land", "--impact", impactFile]);
        return { bump, open, impact, land };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }

    const groupPull = () =>
      fake.pulls(HOSTS.owner, HOSTS.repo).filter((p) => p.headRef === "flake-bump/group/nixpkgs");
    const impactSections = (body: string | null | undefined) =>
      (body ?? "").split("<!-- flake-bump:impact -->").length - 1;

    test(
      "host impact on: a Monday's nixpkgs group PR gets one impact section of its combined lock and auto-merges; a member that breaks a host holds it with the reason",
      async () => {
        await fake.createRepo(HOSTS.owner, HOSTS.repo, {
          files: { "flake.nix": hostsNix, ".github/flake-bump.yml": GROUP_POLICY },
        });
        fake.setRepoSettings(HOSTS.owner, HOSTS.repo, { allowAutoMerge: true });
        const dir = join(scratch, "hosts-seed");
        await $({ quiet: true })`git clone --quiet ${fake.cloneUrl(HOSTS.owner, HOSTS.repo)} ${dir}`;
        await pushNixLock(fake, HOSTS, dir, env);
        await rm(dir, { recursive: true, force: true });

        // Every member moves on Sunday 2026-12-13, and every host still evaluates.
        const sunday = new Date("2026-12-13T00:00:00Z");
        for (const name of GROUP)
          await fake.push("acme", name, upstreamFlake(name, 7), `feat(${name}): change 7`, { date: sunday });
        const first = await hostsNightly("2026-12-14T03:00:00Z");
        expect(first.impact.stderr).toContain("home-manager, nixpkgs, nixpkgs-stable: written");
        const [merged, ...others] = groupPull();
        expect(others).toStrictEqual([]);
        expect({ state: merged?.state, merged: Boolean(merged?.merged) }).toStrictEqual({
          state: "closed",
          merged: true,
        });
        expect(impactSections(merged?.body)).toBe(1);
        expect(merged?.body).toContain("**Changed (3)**");
        expect(first.land.stderr).toContain("merged");

        // The next Sunday home-manager drops the value `me@laptop` reads: the group's PR is held.
        const next = new Date("2026-12-20T00:00:00Z");
        for (const name of GROUP) {
          const files =
            name === "home-manager" ? { "flake.nix": "{ outputs = _: { }; }\n" } : upstreamFlake(name, 8);
          await fake.push("acme", name, files, `feat(${name}): change 8`, { date: next });
        }
        const second = await hostsNightly("2026-12-21T03:00:00Z");
        const open = groupPull().filter((p) => p.state === "open");
        expect(open).toHaveLength(1);
        expect(impactSections(open[0]?.body)).toBe(1);
        expect(open[0]?.body).toContain("**Fails to evaluate with this bump (1)**");
        expect(open[0]?.body).toContain("`me@laptop` no longer evaluates with this bump");
        expect(second.land.stderr).toContain("home-manager, nixpkgs, nixpkgs-stable: held");
        expect(second.land.stderr).toContain(
          "left open for a human: me@laptop no longer evaluates with this bump",
        );
      },
      TIMEOUT,
    );

    test(
      "two inputs with merge: direct beside one for review: one commit onto main moves both, the other gets its own pull request",
      async () => {
        const FLEET = { owner: "acme", repo: "direct-fleet" } as const;
        const names = ["janus", "hostdash", "slow"] as const;
        await fake.createRepo(FLEET.owner, FLEET.repo, {
          files: {
            "flake.nix": inputsFlake(names),
            ".github/flake-bump.yml":
              "inputs:\n  janus:\n    merge: direct\n  hostdash:\n    merge: direct\n",
          },
        });
        const seed = await checkout(FLEET);
        await pushNixLock(fake, FLEET, seed, env);
        await rm(seed, { recursive: true, force: true });
        const locked = (ref: string) => lockedRevs(fake, FLEET, ref, names);
        const before = await locked("main");
        const lockCommit = await fake.branchSha(FLEET.owner, FLEET.repo, "main");
        const date = new Date("2026-12-21T00:00:00Z");
        const moved: Record<string, string> = {};
        for (const name of names)
          moved[name] = await fake.push("acme", name, upstreamFlake(name, 9), `feat(${name}): change 9`, {
            date,
          });

        const dir = await checkout(FLEET);
        const report = join(scratch, `direct-report-${runs}.json`);
        const at = {
          ...env,
          GITHUB_REPOSITORY: `${FLEET.owner}/${FLEET.repo}`,
          GITHUB_EVENT_NAME: "schedule",
          FLAKE_BUMP_NOW: "2026-12-22T03:00:00Z",
        };
        try {
          for (const [script, args] of [
            ["bump", ["--report", report]],
            ["open-pr", ["--report", report]],
          ] as const) {
            const result = await runScript(script, [...args], { cwd: dir, env: at });
            expect(result.stderr).not.toContain("error:");
            expect(result.exitCode).toBe(0);
          }
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
        // main: one commit on top of the lock, moving janus and hostdash, flake.lock alone.
        expect(await locked("main")).toStrictEqual({
          ...before,
          janus: moved.janus,
          hostdash: moved.hostdash,
        });
        const head = (await fake.branchSha(FLEET.owner, FLEET.repo, "main")) ?? "";
        const git = bareGit(fake, FLEET);
        expect((await git("rev-list", "--parents", "-n", "1", head)).split(" ")).toStrictEqual([
          head,
          lockCommit ?? "",
        ]);
        expect(await git("show", "--name-only", "--format=", head)).toBe("flake.lock");
        // slow: its own pull request, whose lock moves slow and nothing else.
        const prs = fake.pulls(FLEET.owner, FLEET.repo).map((p) => [p.headRef, p.state]);
        expect(prs).toStrictEqual([["flake-bump/slow", "open"]]);
        expect(await locked("flake-bump/slow")).toStrictEqual({ ...before, slow: moved.slow });
      },
      TIMEOUT,
    );

    test(
      "a bad policy file is one clean error: exit 2, the file, the line and the key; flake.lock untouched",
      async () => {
        const dir = await checkout();
        try {
          const bad = POLICY.replace("    follow: none", "    follow: none\n    folow: branch");
          await writeFile(join(dir, ".github", "flake-bump.yml"), bad);
          const before = pulls();
          const result = await runScript("bump", ["--report", join(scratch, "bad.json")], {
            cwd: dir,
            env: { ...env, FLAKE_BUMP_NOW: MONDAY_NIGHT, GITHUB_EVENT_NAME: "schedule" },
          });
          expect(result.exitCode).toBe(2);
          expect(result.stderr).toBe(
            "error: .github/flake-bump.yml:15: 'inputs.janus.folow' is not a known key (known here: merge, follow, schedule, min-age, companions); fix the policy file (every key is described in docs/policy.md)\n",
          );
          expect((await $({ cwd: dir, quiet: true })`git status --porcelain`).stdout).toBe(
            " M .github/flake-bump.yml\n",
          );
          expect(pulls()).toStrictEqual(before);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      },
      TIMEOUT,
    );
  });
}

/**
 * Host impact as part of every run: whether it runs (impact: auto|true|false, decided without Nix),
 * how its action inputs are read, and open-pr keeping the section on a rewrite for the same rev and
 * dropping it for a new rev.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { $ } from "zx";
import { readActionInputs } from "../../lib/core/inputs.ts";
import type { InputChange, Report } from "../../lib/flake/report.ts";
import { createOctokit, type Octokit } from "../../lib/github/client.ts";
import {
  flakeNamesHosts,
  type ImpactMode,
  type ImpactPlan,
  type InputImpact,
  mentionsHostOutputs,
  planImpact,
} from "../../lib/impact/evaluate.ts";
import { renderSection, SECTION_END, SECTION_START } from "../../lib/impact/text.ts";
import { writeImpactSections } from "../../lib/pr/impact.ts";
import { openPullRequests } from "../../lib/pr/lifecycle.ts";
import { carrySection, renderMarker } from "../../lib/pr/text.ts";
import { main as impactMain } from "../../scripts/impact.ts";
import { type FakeGitHub, localFakeGitHub } from "../fake-github/index.ts";
import { scratchRoot } from "../fake-github/tmp.ts";
import { realLockPath } from "../support/fixtures.ts";
import { gitRepo } from "../support/git.ts";
import { runInProcess } from "../support/in-process.ts";

const R1 = "1".repeat(40);
const R2 = "2".repeat(40);

interface PlanCase {
  mode: ImpactMode;
  outdated: string[] | undefined;
  namesHosts?: boolean;
  run: ImpactPlan["run"];
}
const plans: PlanCase[] = [
  { mode: "false", outdated: ["nixfleet"], namesHosts: true, run: false },
  { mode: "true", outdated: [], run: false },
  { mode: "auto", outdated: [], namesHosts: true, run: false },
  { mode: "true", outdated: ["nixfleet"], run: true },
  { mode: "true", outdated: undefined, run: true },
  { mode: "auto", outdated: ["nixfleet"], namesHosts: true, run: true },
  { mode: "auto", outdated: ["nixfleet"], namesHosts: false, run: false },
];
test.each(plans)("plan: impact $mode, outdated $outdated, hosts named $namesHosts", (c) => {
  expect(planImpact(c.mode, c.outdated, c.namesHosts).run).toStrictEqual(c.run);
});

const mentions: Array<{ source: string; names: boolean }> = [
  { source: "{ outputs = _: { nixosConfigurations.web = x; }; }", names: true },
  { source: '{ flake.darwinConfigurations."mac" = y; }', names: true },
  { source: "homeConfigurations = builtins.mapAttrs mkHome users;", names: true },
  { source: "{ outputs = _: { packages.x86_64-linux.default = x; }; }", names: false },
  { source: "  # nixosConfigurations will come later\n{ }", names: false },
  { source: "{ myNixosConfigurationsHelper = 1; }", names: false },
];
test.each(mentions)("auto reads host outputs from text: %j", ({ source, names }) => {
  expect(mentionsHostOutputs(source)).toBe(names);
});

test("auto looks at every tracked .nix file of the repository, not only flake.nix", async () => {
  const dir = await mkdtemp(join(scratchRoot(), "flake-bump-names-"));
  try {
    await writeFile(join(dir, "flake.nix"), "{ outputs = inputs: import ./outputs.nix inputs; }\n");
    await writeFile(join(dir, "outputs.nix"), "inputs: { packages = { }; }\n");
    const git = $({ cwd: dir, quiet: true });
    await git`git init -q && git add -A`;
    expect(await flakeNamesHosts(dir)).toBe(false);
    await writeFile(join(dir, "outputs.nix"), "inputs: { nixosConfigurations = { }; }\n");
    expect(await flakeNamesHosts(dir)).toBe(true);
    // Untracked files are not part of the flake, so they do not count.
    await writeFile(join(dir, "outputs.nix"), "inputs: { }\n");
    await writeFile(join(dir, "scratch.nix"), "{ nixosConfigurations = 1; }\n");
    expect(await flakeNamesHosts(dir)).toBe(false);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("impact's action inputs: every one read; a bad mode or budget is one sentence naming the input", () => {
  expect(
    readActionInputs("impact", {
      FLAKE_BUMP_IMPACT: " auto ",
      FLAKE_BUMP_IMPACT_TIMEOUT_MINUTES: "7.5",
      FLAKE_BUMP_IMPACT_JOBS: " 3 ",
      FLAKE_BUMP_REPORT: "/tmp/report.json",
      FLAKE_BUMP_OUTDATED: "nixfleet,other",
      FLAKE_BUMP_FLAKE: "hosts",
      FLAKE_BUMP_BRANCH_PREFIX: "bump/",
      FLAKE_BUMP_DRY_RUN: "false",
    }),
  ).toStrictEqual({
    impact: "auto",
    "impact-timeout-minutes": 7.5,
    "impact-jobs": 3,
    report: "/tmp/report.json",
    outdated: ["nixfleet", "other"],
    flake: "hosts",
    "branch-prefix": "bump/",
    "dry-run": false,
  });
  expect(() => readActionInputs("impact", { FLAKE_BUMP_IMPACT: "yes" })).toThrow(
    "action input 'impact' must be auto, true or false; fix it in the workflow step's 'with:'",
  );
  expect(() => readActionInputs("impact", { FLAKE_BUMP_IMPACT_TIMEOUT_MINUTES: "20m" })).toThrow(
    "action input 'impact-timeout-minutes' must be a number of minutes, e.g. 20",
  );
  expect(readActionInputs("impact", { FLAKE_BUMP_IMPACT_JOBS: "auto" })).toStrictEqual({
    "impact-jobs": "auto",
  });
  for (const bad of ["0", "two", "1.5", "-1"]) {
    expect(() => readActionInputs("impact", { FLAKE_BUMP_IMPACT_JOBS: bad })).toThrow(
      "action input 'impact-jobs' must be auto or a whole number of processes from 1, e.g. 2",
    );
  }
});

test("--plan answers run=true|false in $GITHUB_OUTPUT without Nix", async () => {
  const dir = await mkdtemp(join(scratchRoot(), "flake-bump-plan-"));
  try {
    await writeFile(join(dir, "flake.nix"), "{ outputs = _: { nixosConfigurations = { }; }; }\n");
    const output = join(dir, "output");
    const plan = async (env: Record<string, string>) => {
      await writeFile(output, "");
      const run = await runInProcess(impactMain, ["--plan"], {
        cwd: dir,
        env: { GITHUB_ACTIONS: "true", GITHUB_OUTPUT: output, PATH: "/nonexistent", ...env },
      });
      expect(run.exitCode).toBe(0);
      return (await Bun.file(output).text()).split("\n")[1];
    };
    expect(await plan({ FLAKE_BUMP_IMPACT: "auto", FLAKE_BUMP_OUTDATED: "nixfleet" })).toBe("true");
    expect(await plan({ FLAKE_BUMP_IMPACT: "auto", FLAKE_BUMP_OUTDATED: "" })).toBe("false");
    expect(await plan({ FLAKE_BUMP_IMPACT: "true" })).toBe("false");
    expect(await plan({ FLAKE_BUMP_IMPACT: "false", FLAKE_BUMP_OUTDATED: "nixfleet" })).toBe("false");
    await writeFile(join(dir, "flake.nix"), "{ outputs = _: { }; }\n");
    expect(await plan({ FLAKE_BUMP_IMPACT: "auto", FLAKE_BUMP_OUTDATED: "nixfleet" })).toBe("false");
    expect(await plan({ FLAKE_BUMP_IMPACT: "true", FLAKE_BUMP_OUTDATED: "nixfleet" })).toBe("true");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

const section = `${SECTION_START}\n### Host impact\n\nAfter merging, deploy: \`web\`.\n${SECTION_END}`;
const body = (rev: string, input = "nixfleet") => `Updates \`${input}\`.\n\n${renderMarker({ input, rev })}`;
const withSection = (text: string) =>
  text.replace("\n\n<!-- flake-bump {", `\n\n${section}\n\n<!-- flake-bump {`);

interface CarryCase {
  name: string;
  shown: string | null;
  next: string;
  result: string;
}
const carries: CarryCase[] = [
  {
    name: "same input and rev: kept",
    shown: withSection(body(R1)),
    next: body(R1),
    result: withSection(body(R1)),
  },
  { name: "a new rev: dropped", shown: withSection(body(R1)), next: body(R2), result: body(R2) },
  {
    name: "another input's marker: dropped",
    shown: withSection(body(R1, "other")),
    next: body(R1),
    result: body(R1),
  },
  { name: "no section to keep", shown: body(R1), next: body(R1), result: body(R1) },
  { name: "no body yet", shown: null, next: body(R1), result: body(R1) },
  {
    name: "the new body has its own section: it wins",
    shown: withSection(body(R1)),
    next: withSection(body(R1)).replace("`web`", "`db`"),
    result: withSection(body(R1)).replace("`web`", "`db`"),
  },
];
test.each(carries)("carrySection: $name", ({ shown, next, result }) => {
  expect(carrySection(shown, next)).toStrictEqual(result);
});

describe_openPr();

/** open-pr against the fake: the section survives a same-rev rewrite, not a move to a new rev. */
function describe_openPr(): void {
  let fake: FakeGitHub;
  let octokit: Octokit;
  beforeAll(async () => {
    fake = await localFakeGitHub();
    octokit = createOctokit({ baseUrl: fake.apiUrl, token: fake.token, waitScale: 0 });
  }, 60_000);
  afterAll(() => fake.stop());

  const lock = (rev: string, extra = "") =>
    `{ "nodes": { "nixfleet": { "locked": { "rev": "${rev}" } } } }${extra}\n`;
  const change = (rev: string, text: string): InputChange => ({
    name: "nixfleet",
    from: { ref: "github:acme/nixfleet/0", rev: "0".repeat(40) },
    to: { ref: `github:acme/nixfleet/${rev}`, rev },
    transitive: { added: [], removed: [], changed: [] },
    lock: { text, sha256: createHash("sha256").update(text).digest("hex") },
  });
  const report = (c: InputChange): Report => ({
    schema: 1,
    changed: true,
    dryRun: false,
    requested: { inputs: ["nixfleet"] },
    flake: { dir: "/flake", lockPath: "flake.lock", repoRoot: "/flake" },
    inputs: [c],
    skipped: [],
    lock: c.lock,
    nix: { version: "2.26.3", invocations: 1 },
  });
  const opts = {
    repo: { owner: "acme", repo: "nixcfg" },
    branchPrefix: "flake-bump/",
    labels: [],
    reviewers: [],
    draft: false,
    dryRun: false,
  };
  const impact = (rev: string): InputImpact => ({
    name: "nixfleet",
    rev,
    hosts: [
      {
        attr: "nixosConfigurations.web",
        status: "changed",
        packages: { changed: [{ name: "tool", from: "1.0", to: "1.1" }], added: [], removed: [] },
      },
      { attr: "nixosConfigurations.db", status: "unchanged" },
    ],
  });
  const pullBody = () => fake.pulls("acme", "nixcfg")[0]?.body ?? "";
  const sections = (text: string) => text.split(SECTION_START).length - 1;

  test("open-pr keeps the impact section when it rewrites the body for the same rev, drops it for a new rev", async () => {
    await fake.createRepo("acme", "nixcfg", { files: { "flake.lock": lock("0".repeat(40)) } });
    const [first] = await openPullRequests(octokit, report(change(R1, lock(R1))), opts);
    expect(first?.operation).toBe("created");
    const [written] = await writeImpactSections(octokit, [impact(R1)], { ...opts, dryRun: false });
    expect(written?.outcome).toBe("written");
    const withImpact = pullBody();
    expect(withImpact).toContain(renderSection(impact(R1)));

    // Same rev, a different lock (a transitive node moved): the branch and the body are rewritten.
    const [same] = await openPullRequests(octokit, report(change(R1, lock(R1, " "))), opts);
    expect(same?.operation).toBe("updated");
    expect(await fake.readFile("acme", "nixcfg", "flake-bump/nixfleet", "flake.lock")).toBe(lock(R1, " "));
    // Only the head marker moves with the new commit.
    const headless = (text: string) => text.replace(/<!-- flake-bump-head .* -->/, "");
    expect(headless(pullBody())).toBe(headless(withImpact));

    // The impact step's rerun for that rev replaces the section in place, never a second one.
    const [again] = await writeImpactSections(octokit, [impact(R1)], { ...opts, dryRun: false });
    expect([again?.outcome, sections(pullBody())]).toStrictEqual(["unchanged", 1]);

    // A new rev: the old section described a lock the PR no longer holds.
    const [moved] = await openPullRequests(octokit, report(change(R2, lock(R2))), opts);
    expect(moved?.operation).toBe("updated");
    expect(sections(pullBody())).toBe(1);
    expect(pullBody()).not.toContain("### Host impact");
    expect(pullBody()).toContain(renderMarker({ input: "nixfleet", rev: R2 }));
    fake.assertNoViolations();
  }, 30_000);
}

test("impact.ts on a checkout whose flake.lock is as committed: says nothing moved, exit 0, before any Nix", async () => {
  await using repo = await gitRepo({
    files: {
      "flake.nix": await readFile(realLockPath("nixcfg-2026-08-22.flake.nix"), "utf8"),
      "flake.lock": await readFile(realLockPath("nixcfg-2026-08-22.flake.lock"), "utf8"),
    },
  });
  const output = join(repo.dir, ".git", "github-output");
  await writeFile(output, "");
  // The answer comes from the two locks alone, before any Nix runs.
  const git = dirname(Bun.which("git") ?? "/usr/bin/git");
  const run = await runInProcess(impactMain, [], {
    env: { PATH: git, HOME: repo.dir, GITHUB_OUTPUT: output },
    cwd: repo.dir,
  });
  expect(run).toStrictEqual({
    exitCode: 0,
    stdout: "",
    stderr:
      "No input moved: the lock locks the same sources as the base lock, so there is no host impact to compute.\n" +
      "impact = \nchanged-hosts = \nfailed-hosts = \n",
  });
});

test("--jobs takes a whole number of processes from 1: anything else is bad usage, before Nix", async () => {
  for (const bad of ["0", "many", "2.5"]) {
    const run = await runInProcess(impactMain, ["--jobs", bad, "--lock", "flake.lock"], {
      cwd: scratchRoot(),
      env: { PATH: "/nonexistent" },
    });
    expect({ exitCode: run.exitCode, stderr: run.stderr.trim() }).toStrictEqual({
      exitCode: 2,
      stderr: expect.stringContaining("--jobs: must be auto or a whole number of processes from 1, e.g. 2"),
    });
  }
});

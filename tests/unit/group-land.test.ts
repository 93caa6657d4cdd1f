/**
 * Where grouping meets landing and host impact, in process against the fake GitHub: the grouped pull
 * request (`flake-bump/all`) merged, armed, held and disarmed by merge: auto; its one combined host
 * impact section; and merge: direct committing the combined lock. Reports are built by hand (two
 * upstreams with real commits on the fake), so no Nix is involved.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { InputChange, Report } from "../../lib/flake/report.ts";
import { createOctokit, type Octokit } from "../../lib/github/client.ts";
import type { InputImpact } from "../../lib/impact/evaluate.ts";
import { renderSection, SECTION_END, SECTION_START } from "../../lib/impact/text.ts";
import {
  carryGroupSection,
  groupBody,
  groupBranch,
  landGroupAuto,
  openGroupPullRequest,
  parseGroupMarker,
} from "../../lib/pr/group.ts";
import { writeGroupImpactSection } from "../../lib/pr/impact.ts";
import {
  type AutoOptions,
  commitDirect,
  groupImpactHold,
  type ImpactFile,
  NOTE_START,
} from "../../lib/pr/land.ts";
import type { OpenPrOptions } from "../../lib/pr/lifecycle.ts";
import { main as openPrMain } from "../../scripts/open-pr.ts";
import { type FakeGitHub, localFakeGitHub } from "../fake-github/index.ts";
import { scratchRoot } from "../fake-github/tmp.ts";
import { losingAnswer } from "../support/handlers.ts";
import { upstreamHistory } from "../support/history.ts";
import { runInProcess } from "../support/in-process.ts";

setDefaultTimeout(30_000);
const NAMES = ["a", "b"] as const;
type Name = (typeof NAMES)[number];
const BRANCH = groupBranch();
let DOWN = { owner: "acme", repo: "fleet" };
let repos = 0;
let fake: FakeGitHub;
let octokit: Octokit;
/** Each upstream's main, oldest first; the downstream lock pins [0]. */
const revs = {} as Record<Name, string[]>;
const rev = (name: Name, i: number) => revs[name][i] ?? "";
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

function lockAt(at: Record<Name, number>): string {
  const nodes: Record<string, unknown> = { root: { inputs: { a: "a", b: "b" } } };
  for (const name of NAMES) {
    nodes[name] = {
      locked: {
        lastModified: 1,
        narHash: "sha256-AAAA",
        owner: "acme",
        repo: name,
        rev: rev(name, at[name]),
        type: "github",
      },
      original: { owner: "acme", repo: name, type: "github" },
    };
  }
  return `${JSON.stringify({ nodes, root: "root", version: 7 }, null, 2)}\n`;
}

/** A grouped run's report: each named input moved to the given commit, one combined lock. */
function groupReport(to: Partial<Record<Name, number>>): Report {
  const at = { a: to.a ?? 0, b: to.b ?? 0 };
  const text = lockAt(at);
  const inputs: InputChange[] = Object.entries(to).map(([name, i]) => {
    const own = lockAt({ a: 0, b: 0, [name]: i });
    return {
      name,
      from: { ref: `github:acme/${name}/${rev(name as Name, 0)}`, rev: rev(name as Name, 0) },
      to: { ref: `github:acme/${name}/${rev(name as Name, i)}`, rev: rev(name as Name, i) },
      github: { owner: "acme", repo: name },
      transitive: { added: [], removed: [], changed: [] },
      lock: { text: own, sha256: sha256(own) },
    };
  });
  return {
    schema: 1,
    changed: true,
    dryRun: false,
    // As bump.ts --group writes it: the grouped steps refuse any other.
    grouped: true,
    requested: { inputs: inputs.map((i) => i.name) },
    flake: { dir: "/flake", lockPath: "flake.lock", repoRoot: "/flake" },
    inputs,
    skipped: [],
    lock: { text, sha256: sha256(text) },
    nix: { version: "2.26.3", invocations: 1 },
  };
}

const members = (report: Report) => Object.fromEntries(report.inputs.map((i) => [i.name, i.to.rev ?? ""]));

const openOpts = (): OpenPrOptions => ({
  repo: DOWN,
  branchPrefix: "flake-bump/",
  labels: [],
  reviewers: [],
  draft: false,
  dryRun: false,
});
const autoOpts = (over: Partial<AutoOptions> = {}): AutoOptions => ({
  branchPrefix: "flake-bump/",
  method: "squash",
  impact: undefined,
  defaultToken: false,
  dryRun: false,
  ...over,
});
const gh = () => ({ octokit, repo: DOWN });
const pull = () => fake.pulls(DOWN.owner, DOWN.repo)[0];
const calls = () => fake.requests.map((r) => r.operationId);
const graphqlBodies = () =>
  fake.requests.filter((r) => r.operationId === "graphql").map((r) => JSON.stringify(r.body));

const host = (attr: string, status: string) => ({
  attr,
  status,
  ...(status === "failed" ? { error: "error: attribute 'missing' missing" } : {}),
});
/** Host impact as impact.ts --group writes it: one entry for the combined lock. */
function groupedImpact(report: Report, web: string): ImpactFile {
  return {
    schema: 1,
    inputs: [
      {
        name: report.inputs.map((i) => i.name).join(","),
        rev: report.lock?.sha256 ?? "",
        members: members(report),
        hosts: [host("nixosConfigurations.web", web), host("nixosConfigurations.db", "unchanged")],
      },
    ],
  };
}
/** Host impact per input, as a run without --group writes it. */
function perInputImpact(report: Report, failing: string): ImpactFile {
  return {
    schema: 1,
    inputs: report.inputs.map((i) => ({
      name: i.name,
      rev: i.to.rev ?? "",
      hosts: [host("nixosConfigurations.web", i.name === failing ? "failed" : "changed")],
    })),
  };
}

/** Lose the answer to the next `pulls/create` after GitHub applied it (a dropped connection). */
let loseCreateAnswer = false;
const createPull = losingAnswer("pulls/create", () => {
  const lose = loseCreateAnswer;
  loseCreateAnswer = false;
  return lose;
});

beforeAll(async () => {
  fake = await localFakeGitHub({ handlers: { "pulls/create": createPull } });
  octokit = createOctokit({ baseUrl: fake.apiUrl, token: fake.token, waitScale: 0 });
  for (const name of NAMES) {
    revs[name] = await upstreamHistory(fake, { owner: "acme", repo: name }, 2, (i) => `${name} ${i}`);
  }
});
afterAll(() => fake?.stop());
beforeEach(async () => {
  DOWN = { owner: "acme", repo: `fleet-${++repos}` };
  await fake.createRepo(DOWN.owner, DOWN.repo, {
    files: { "flake.nix": "{ }\n", "flake.lock": lockAt({ a: 0, b: 0 }) },
    settings: { allowAutoMerge: true },
  });
  fake.requests.length = 0;
  fake.violations.length = 0;
});

describe("pure decisions", () => {
  const report = () => groupReport({ a: 1, b: 1 });
  interface Case {
    name: string;
    impact: () => ImpactFile | undefined;
    hold: RegExp | undefined;
  }
  const cases: Case[] = [
    { name: "no impact", impact: () => undefined, hold: undefined },
    { name: "grouped, clean", impact: () => groupedImpact(report(), "changed"), hold: undefined },
    {
      name: "grouped, a failed host",
      impact: () => groupedImpact(report(), "failed"),
      hold: /^`web` no longer evaluates/,
    },
    { name: "per input, clean", impact: () => perInputImpact(report(), "none"), hold: undefined },
    {
      name: "per input, b fails",
      impact: () => perInputImpact(report(), "b"),
      hold: /^`web` no longer evaluates/,
    },
    {
      name: "grouped for other members",
      impact: () => groupedImpact(groupReport({ a: 2, b: 1 }), "changed"),
      hold: /^host impact was not computed for `a`/,
    },
  ];
  for (const { name, impact, hold } of cases) {
    test(`groupImpactHold: ${name}`, () => {
      const said = groupImpactHold(impact(), members(report()));
      if (hold === undefined) expect(said).toBeUndefined();
      else expect(said).toMatch(hold);
    });
  }

  test("carryGroupSection keeps a computed section only for the same members and revs", () => {
    const section = `${SECTION_START}\n### Host impact\n\nChanged: web.\n${SECTION_END}`;
    const [a] = groupReport({ a: 1 }).inputs;
    const body = (m: Record<string, string>) =>
      a === undefined ? "" : groupBody([{ change: { ...a, to: { ref: "x", rev: m.a ?? "" } } }]);
    const shown = body({ a: rev("a", 1) }).replace(
      /<!-- flake-bump:impact -->[\s\S]*?<!-- \/flake-bump:impact -->/,
      section,
    );
    expect(carryGroupSection(shown, body({ a: rev("a", 1) }))).toContain("Changed: web.");
    expect(carryGroupSection(shown, body({ a: rev("a", 2) }))).not.toContain("Changed: web.");
    // The footer placeholder is not carried: it is not a computed section.
    expect(carryGroupSection(body({ a: rev("a", 1) }), body({ a: rev("a", 1) }))).toBe(
      body({ a: rev("a", 1) }),
    );
  });
});

describe("the grouped PR's lifecycle is the per-input one", () => {
  test("a create whose answer was lost: the grouped PR found after the 422 still gets its labels, once", async () => {
    loseCreateAnswer = true;
    const [result] = await openGroupPullRequest(octokit, groupReport({ a: 1, b: 1 }), {
      ...openOpts(),
      labels: ["dependencies", "automated"],
    });
    expect(result?.operation).toBe("updated");
    expect(calls().filter((c) => c?.startsWith("pulls/") || c?.startsWith("issues/"))).toStrictEqual([
      "pulls/list",
      "pulls/create",
      "pulls/create",
      "pulls/list",
      "issues/add-labels",
    ]);
    expect(fake.pulls(DOWN.owner, DOWN.repo)).toHaveLength(1);
    expect(
      pull()
        ?.labels.map((l) => l.name)
        .sort(),
    ).toStrictEqual(["automated", "dependencies"]);
    expect(result).toMatchObject({ number: pull()?.number, input: "a, b" });
  });
});

describe("grouped + merge: auto", () => {
  test("nothing required: the grouped PR is merged through REST with the head SHA this run wrote", async () => {
    const report = groupReport({ a: 1, b: 2 });
    await openGroupPullRequest(octokit, report, openOpts());
    const head = (await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)) ?? "";
    const result = await landGroupAuto(gh(), report, autoOpts());
    expect(result).toMatchObject({ input: "a, b", operation: "merged", number: pull()?.number });
    const merge = fake.requests.find((r) => r.operationId === "pulls/merge");
    expect(merge?.body).toStrictEqual({ sha: head, merge_method: "squash" });
    expect(pull()?.merged?.sha).toBe(result.sha ?? "");
    expect(await fake.readFile(DOWN.owner, DOWN.repo, "main", "flake.lock")).toBe(report.lock?.text);
    fake.assertNoViolations();
  });

  test("required checks: armed at the evaluated head, merged by GitHub when they pass; a rerun keeps it armed", async () => {
    fake.protectBranch(DOWN.owner, DOWN.repo, "main", { requiredChecks: ["ci"] });
    const report = groupReport({ a: 1, b: 1 });
    await openGroupPullRequest(octokit, report, openOpts());
    const head = (await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)) ?? "";
    const clean = groupedImpact(report, "changed");
    expect((await landGroupAuto(gh(), report, autoOpts({ impact: clean }))).operation).toBe(
      "auto-merge-enabled",
    );
    expect(graphqlBodies().some((b) => b.includes("enablePullRequestAutoMerge") && b.includes(head))).toBe(
      true,
    );
    expect(pull()?.merged).toBeUndefined();
    fake.requests.length = 0;
    expect((await landGroupAuto(gh(), report, autoOpts({ impact: clean }))).operation).toBe(
      "auto-merge-enabled",
    );
    expect(graphqlBodies()).toStrictEqual([]);
    await fake.passChecks(DOWN.owner, DOWN.repo, head);
    expect(pull()?.merged).toBeDefined();
    expect(await fake.readFile(DOWN.owner, DOWN.repo, "main", "flake.lock")).toBe(report.lock?.text);
    fake.assertNoViolations();
  });

  for (const [kind, impact] of [
    ["the grouped section", (r: Report) => groupedImpact(r, "failed")],
    ["one member's own section", (r: Report) => perInputImpact(r, "b")],
  ] as const) {
    test(`a failed host in ${kind}: disarmed, left open, the body says why`, async () => {
      fake.protectBranch(DOWN.owner, DOWN.repo, "main", { requiredChecks: ["ci"] });
      const report = groupReport({ a: 1, b: 1 });
      await openGroupPullRequest(octokit, report, openOpts());
      await landGroupAuto(gh(), report, autoOpts());
      expect(pull()?.autoMerge).toBeDefined();
      const held = await landGroupAuto(gh(), report, autoOpts({ impact: impact(report) }));
      expect(held.operation).toBe("held");
      expect(held.detail).toBe("left open for a human: web no longer evaluates with this bump");
      expect(pull()?.autoMerge).toBeUndefined();
      expect(pull()?.state).toBe("open");
      expect(pull()?.body).toContain("### Not merged automatically");
      // The note sits before the grouped marker, which still parses.
      expect(pull()?.body?.indexOf(NOTE_START)).toBeLessThan(
        pull()?.body?.indexOf("<!-- flake-bump-group") ?? -1,
      );
      expect(parseGroupMarker(pull()?.body)).toStrictEqual(members(report));
      fake.assertNoViolations();
    });
  }

  test("an armed grouped PR gaining a member is disarmed before the move, then armed at the head judged", async () => {
    fake.protectBranch(DOWN.owner, DOWN.repo, "main", { requiredChecks: ["ci"] });
    const first = groupReport({ a: 1, b: 0 });
    await openGroupPullRequest(octokit, first, { ...openOpts(), disarmOnMove: true });
    await landGroupAuto(gh(), first, autoOpts({ impact: groupedImpact(first, "changed") }));
    expect(pull()?.autoMerge).toBeDefined();

    fake.requests.length = 0;
    const both = groupReport({ a: 1, b: 1 });
    await openGroupPullRequest(octokit, both, { ...openOpts(), disarmOnMove: true });
    const calls = fake.requests.map((r) => r.operationId);
    expect(calls.indexOf("graphql")).toBeGreaterThanOrEqual(0);
    expect(calls.indexOf("graphql")).toBeLessThan(calls.indexOf("git/update-ref"));
    expect(graphqlBodies()[0]).toContain("disablePullRequestAutoMerge");
    expect(pull()?.autoMerge).toBeUndefined();

    const head = (await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)) ?? "";
    fake.requests.length = 0;
    expect(
      (await landGroupAuto(gh(), both, autoOpts({ impact: groupedImpact(both, "changed") }))).operation,
    ).toBe("auto-merge-enabled");
    expect(graphqlBodies().some((b) => b.includes("enablePullRequestAutoMerge") && b.includes(head))).toBe(
      true,
    );
    fake.assertNoViolations();
  });

  test("a grouped branch a newer run moved on is left to that run: nothing armed or merged", async () => {
    await openGroupPullRequest(octokit, groupReport({ a: 2, b: 1 }), openOpts());
    fake.requests.length = 0;
    const result = await landGroupAuto(gh(), groupReport({ a: 1, b: 1 }), autoOpts());
    expect(result.operation).toBe("none");
    expect(result.detail).toMatch(
      /^'flake-bump\/all' now proposes a [0-9a-f]{7}, b [0-9a-f]{7}, not .*the run that moved it lands it$/,
    );
    expect(calls().some((c) => c === "pulls/merge" || c === "graphql")).toBe(false);
  });

  test("an obsolete grouped PR is disarmed before it is closed", async () => {
    fake.protectBranch(DOWN.owner, DOWN.repo, "main", { requiredChecks: ["ci"] });
    const report = groupReport({ a: 1, b: 1 });
    await openGroupPullRequest(octokit, report, openOpts());
    await landGroupAuto(gh(), report, autoOpts());
    await fake.push(DOWN.owner, DOWN.repo, { "flake.lock": lockAt({ a: 2, b: 1 }) }, "by hand");
    fake.requests.length = 0;
    const nothing: Report = { ...report, changed: false, inputs: [], lock: null };
    const [closed] = await openGroupPullRequest(octokit, nothing, openOpts());
    expect(closed?.operation).toBe("closed");
    expect(pull()?.state).toBe("closed");
    expect(pull()?.merged).toBeUndefined();
    expect(graphqlBodies()[0]).toContain("disablePullRequestAutoMerge");
    expect(calls().indexOf("graphql")).toBeLessThan(calls().indexOf("issues/create-comment"));
  });

  test("open-pr.ts --group --merge auto lands the grouped PR, not per-input ones", async () => {
    const dir = await mkdtemp(join(scratchRoot(), "flake-bump-group-land-"));
    try {
      const path = join(dir, "report.json");
      const report = groupReport({ a: 1, b: 1 });
      await writeFile(path, JSON.stringify(report));
      const impactPath = join(dir, "impact.json");
      await writeFile(impactPath, JSON.stringify(groupedImpact(report, "changed")));
      const env = {
        GITHUB_API_URL: fake.apiUrl,
        GH_TOKEN: fake.token,
        FLAKE_BUMP_GROUP: "true",
        FLAKE_BUMP_WAIT_SCALE: "0",
      };
      const repo = `${DOWN.owner}/${DOWN.repo}`;
      const open = await runInProcess(
        openPrMain,
        ["--report", path, "--repo", repo, "--base", "main", "--merge", "auto", "--step", "open"],
        { env, cwd: dir },
      );
      expect(open.exitCode).toBe(0);
      expect(calls()).not.toContain("pulls/merge");
      const land = await runInProcess(
        openPrMain,
        [
          "--report",
          path,
          "--repo",
          repo,
          "--base",
          "main",
          "--merge",
          "auto",
          "--step",
          "land",
          "--impact",
          impactPath,
        ],
        { env, cwd: dir },
      );
      expect(land.stderr).toContain("a, b: merged");
      expect(land.exitCode).toBe(0);
      expect(fake.pulls(DOWN.owner, DOWN.repo).map((p) => [p.headRef, Boolean(p.merged)])).toStrictEqual([
        [BRANCH, true],
      ]);
      expect(await fake.readFile(DOWN.owner, DOWN.repo, "main", "flake.lock")).toBe(report.lock?.text);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("the grouped PR's one host impact section", () => {
  const impactOf = (report: Report, tool: string): InputImpact => ({
    name: report.inputs.map((i) => i.name).join(","),
    rev: report.lock?.sha256 ?? "",
    members: members(report),
    hosts: [
      {
        attr: "nixosConfigurations.web",
        status: "changed",
        drvPath: { from: "/nix/store/x-web", to: "/nix/store/y-web" },
        packages: { changed: [{ name: "tool", from: "1", to: tool }], added: [], removed: [] },
      },
      { attr: "nixosConfigurations.db", status: "unchanged" },
    ],
  });
  const where = () => ({ repo: DOWN, branchPrefix: "flake-bump/", dryRun: false });

  test("written once into flake-bump/all, replaced in place on a rerun, kept by open-pr for the same members, left alone once they moved", async () => {
    const report = groupReport({ a: 1, b: 1 });
    await openGroupPullRequest(octokit, report, openOpts());
    expect(pull()?.body).toContain(
      `${SECTION_START}\nAfter merging, deploy: the hosts that use these inputs.\n${SECTION_END}`,
    );
    const first = await writeGroupImpactSection(octokit, impactOf(report, "2"), where());
    expect(first).toMatchObject({ input: "a, b", outcome: "written", number: pull()?.number });
    expect(pull()?.body?.split(SECTION_START)).toHaveLength(2);
    expect(pull()?.body).toContain("tool 1 → 2");
    expect(pull()?.body).toContain("After merging, deploy: `web` (`db` unchanged).");

    const again = await writeGroupImpactSection(octokit, impactOf(report, "3"), where());
    expect(again.outcome).toBe("written");
    expect(pull()?.body?.split(SECTION_START)).toHaveLength(2);
    expect(pull()?.body).toContain("tool 1 → 3");
    expect(pull()?.body).not.toContain("tool 1 → 2");
    expect((await writeGroupImpactSection(octokit, impactOf(report, "3"), where())).outcome).toBe(
      "unchanged",
    );
    expect(pull()?.body).toContain(renderSection(impactOf(report, "3")));

    // open-pr rerun for the same members: the section stays.
    fake.requests.length = 0;
    await openGroupPullRequest(octokit, report, openOpts());
    expect(pull()?.body).toContain("tool 1 → 3");
    expect(calls()).not.toContain("pulls/update");

    // A newer run moved a member: its body drops the old section, and the stale write is refused.
    const newer = groupReport({ a: 2, b: 1 });
    await openGroupPullRequest(octokit, newer, openOpts());
    expect(pull()?.body).not.toContain("tool 1 → 3");
    const body = pull()?.body;
    const stale = await writeGroupImpactSection(octokit, impactOf(report, "4"), where());
    expect(stale.outcome).toBe("moved");
    expect(pull()?.body).toBe(body ?? "");
    fake.assertNoViolations();
  });

  test("no grouped PR: nothing written, per-input branches untouched", async () => {
    const result = await writeGroupImpactSection(
      octokit,
      impactOf(groupReport({ a: 1, b: 1 }), "2"),
      where(),
    );
    expect(result.outcome).toBe("no-pull-request");
    expect(calls().filter((c) => c !== "pulls/list")).toStrictEqual([]);
  });
});

describe("grouped + merge: direct", () => {
  const directOpts = async (impact?: ImpactFile) => ({
    base: "main",
    path: "flake.lock",
    from: { sha: (await fake.branchSha(DOWN.owner, DOWN.repo, "main")) ?? "", lock: lockAt({ a: 0, b: 0 }) },
    impact,
    dryRun: false,
  });

  test("one Verified commit of the combined lock, the grouped impact answering for every member", async () => {
    const report = groupReport({ a: 1, b: 2 });
    const results = await commitDirect(gh(), report, await directOpts(groupedImpact(report, "changed")));
    expect(results.map((r) => [r.input, r.operation])).toStrictEqual([
      ["a", "committed"],
      ["b", "committed"],
    ]);
    const after = (await fake.branchSha(DOWN.owner, DOWN.repo, "main")) ?? "";
    expect(results[0]?.sha).toBe(after);
    expect(fake.isVerified(DOWN.owner, DOWN.repo, after)).toBe(true);
    expect(await fake.readFile(DOWN.owner, DOWN.repo, "main", "flake.lock")).toBe(report.lock?.text);
    expect(fake.pulls(DOWN.owner, DOWN.repo)).toStrictEqual([]);
  });

  test("a failed host in the grouped impact: nothing committed", async () => {
    const report = groupReport({ a: 1, b: 2 });
    const before = await fake.branchSha(DOWN.owner, DOWN.repo, "main");
    const results = await commitDirect(gh(), report, await directOpts(groupedImpact(report, "failed")));
    expect(results.map((r) => r.operation)).toStrictEqual(["held", "held"]);
    expect(await fake.branchSha(DOWN.owner, DOWN.repo, "main")).toBe(before);
    expect(calls()).not.toContain("git/create-commit");
  });
});

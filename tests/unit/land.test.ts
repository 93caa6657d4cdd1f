/**
 * Landing a bump (lib/pr/land.ts), in process against a fake GitHub of this file's own: auto-merge armed
 * through GitHub's GraphQL and merged by the fake once checks pass, the REST merge when nothing is
 * required, holds from host impact, and the direct commit's compare-and-swap on the base branch.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type InputChange, type Report, serializeReport } from "../../lib/flake/report.ts";
import { createOctokit, type Octokit } from "../../lib/github/client.ts";
import {
  type AutoOptions,
  checkAutoMergeSettings,
  commitDirect,
  DEFAULT_TOKEN_NOTE,
  type DirectOptions,
  type ImpactFile,
  impactHold,
  landAuto,
  NOTE_END,
  NOTE_START,
  withNote,
} from "../../lib/pr/land.ts";
import { type OpenPrOptions, openPullRequests } from "../../lib/pr/lifecycle.ts";
import { main as openPrMain } from "../../scripts/open-pr.ts";
import { type FakeGitHub, localFakeGitHub } from "../fake-github/index.ts";
import { scratchRoot } from "../fake-github/tmp.ts";
import { upstreamHistory } from "../support/history.ts";
import { runInProcess } from "../support/in-process.ts";

const UP = { owner: "acme", repo: "nixfleet" };
/** A fresh downstream repository per test (cheaper than resetting the fake and the upstream). */
let DOWN = { owner: "acme", repo: "nixcfg" };
let repos = 0;
// Each test makes a few real git repositories and commits; a busy machine needs more than 5 s.
setDefaultTimeout(30_000);
const BRANCH = "flake-bump/nixfleet";

let fake: FakeGitHub;
let octokit: Octokit;
/** Upstream commits, oldest first; the downstream lock pins [0]. */
let revs: string[] = [];

function lockText(rev: string): string {
  const lock = {
    nodes: {
      nixfleet: {
        locked: {
          lastModified: 1,
          narHash: "sha256-AAAA",
          owner: "acme",
          repo: "nixfleet",
          rev,
          type: "github",
        },
        original: { owner: "acme", repo: "nixfleet", type: "github" },
      },
      root: { inputs: { nixfleet: "nixfleet" } },
    },
    root: "root",
    version: 7,
  };
  return `${JSON.stringify(lock, null, 2)}\n`;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

function change(to: number, from = 0): InputChange {
  const text = lockText(revs[to] ?? "");
  return {
    name: "nixfleet",
    from: { ref: `github:acme/nixfleet/${revs[from]}`, rev: revs[from] ?? "" },
    to: { ref: `github:acme/nixfleet/${revs[to]}`, rev: revs[to] ?? "" },
    github: UP,
    transitive: { added: [], removed: [], changed: [] },
    lock: { text, sha256: sha256(text) },
  };
}

function report(to: number): Report {
  const moved = change(to);
  return {
    schema: 1,
    changed: true,
    dryRun: false,
    requested: { inputs: ["nixfleet"] },
    flake: { dir: "/flake", lockPath: "flake.lock", repoRoot: "/flake" },
    inputs: [moved],
    skipped: [],
    lock: moved.lock,
    nix: { version: "2.26.3", invocations: 1 },
  };
}

/** A run that moved nothing: nixfleet up to date at `current` (so a PR proposing it or older is obsolete). */
function quietReport(current: string): Report {
  return {
    ...report(2),
    changed: false,
    inputs: [],
    lock: null,
    skipped: [
      { name: "nixfleet", reason: "up-to-date", message: "nixfleet is up to date", current, github: UP },
    ],
  };
}

const openOpts: OpenPrOptions & { repo: { owner: string; repo: string } } = {
  repo: DOWN,
  branchPrefix: "flake-bump/",
  labels: [],
  reviewers: [],
  draft: false,
  dryRun: false,
};

const autoOpts = (over: Partial<AutoOptions> = {}): AutoOptions => ({
  branchPrefix: "flake-bump/",
  method: "squash",
  impact: undefined,
  defaultToken: false,
  dryRun: false,
  ...over,
});

function impactFile(status: string, rev = revs[2] ?? ""): ImpactFile {
  return {
    schema: 1,
    inputs: [
      {
        name: "nixfleet",
        rev,
        hosts: [
          {
            attr: "nixosConfigurations.web",
            status,
            ...(status === "failed" ? { error: "error: boom" } : {}),
          },
          { attr: "nixosConfigurations.db", status: "unchanged" },
        ],
      },
    ],
  };
}

const gh = () => ({ octokit, repo: DOWN });

beforeAll(async () => {
  fake = await localFakeGitHub();
  octokit = createOctokit({ baseUrl: fake.apiUrl, token: fake.token, waitScale: 0 });
  revs = await upstreamHistory(fake, UP, 3, (i) => `change ${i}`);
});
afterAll(() => fake?.stop());
beforeEach(async () => {
  DOWN = { owner: "acme", repo: `nixcfg-${++repos}` };
  openOpts.repo = DOWN;
  await fake.createRepo(DOWN.owner, DOWN.repo, {
    files: { "flake.nix": "{ }\n", "flake.lock": lockText(revs[0] ?? "") },
    settings: { allowAutoMerge: true },
  });
  fake.requests.length = 0;
  fake.violations.length = 0;
});

const pull = () => fake.pulls(DOWN.owner, DOWN.repo)[0];
const graphqlBodies = () =>
  fake.requests.filter((r) => r.operationId === "graphql").map((r) => JSON.stringify(r.body));

describe("pure decisions", () => {
  interface HoldCase {
    name: string;
    impact: () => ImpactFile | undefined;
    hold: RegExp | undefined;
  }
  const holds: HoldCase[] = [
    { name: "no impact given", impact: () => undefined, hold: undefined },
    { name: "every host evaluates", impact: () => impactFile("changed"), hold: undefined },
    { name: "a failed host", impact: () => impactFile("failed"), hold: /^`web` no longer evaluates/ },
    { name: "impact of another rev", impact: () => impactFile("changed", revs[1]), hold: /not computed for/ },
    {
      name: "impact that ran out of time",
      impact: () => ({
        schema: 1,
        inputs: [{ name: "nixfleet", rev: revs[2] ?? "", hosts: [], timedOut: true }],
      }),
      hold: /ran out of time/,
    },
  ];
  for (const { name, impact, hold } of holds) {
    test(`impactHold: ${name}`, () => {
      const said = impactHold(impact(), "nixfleet", revs[2] ?? "");
      if (hold === undefined) expect(said).toBeUndefined();
      else expect(said).toMatch(hold);
    });
  }

  test("withNote puts the note before the marker, replaces it in place and removes it", () => {
    const body = 'Updates.\n\n<!-- flake-bump {"input":"x","rev":"y"} -->';
    const one = withNote(body, "A");
    expect(one).toBe(
      `Updates.\n\n${NOTE_START}\nA\n${NOTE_END}\n\n<!-- flake-bump {"input":"x","rev":"y"} -->`,
    );
    const two = withNote(one, "B");
    expect(two.split(NOTE_START)).toHaveLength(2);
    expect(two).toContain(`${NOTE_START}\nB\n${NOTE_END}`);
    expect(withNote(two, "B")).toBe(two);
    expect(withNote(two, undefined)).toBe(body);
    expect(withNote(body, undefined)).toBe(body);
  });
});

describe("merge: auto", () => {
  test("with a required check: auto-merge armed at the evaluated head, not merged; GitHub merges it when the check passes", async () => {
    fake.protectBranch(DOWN.owner, DOWN.repo, "main", { requiredChecks: ["ci"] });
    await openPullRequests(octokit, report(2), openOpts);
    const head = (await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)) ?? "";
    const result = await landAuto(gh(), change(2), autoOpts());
    expect(result.operation).toBe("auto-merge-enabled");
    expect(pull()?.state).toBe("open");
    expect(pull()?.merged).toBeUndefined();
    expect(pull()?.autoMerge?.mergeMethod).toBe("SQUASH");
    expect(graphqlBodies().some((b) => b.includes("enablePullRequestAutoMerge") && b.includes(head))).toBe(
      true,
    );

    // A rerun keeps it armed without asking GitHub to arm it again.
    fake.requests.length = 0;
    expect((await landAuto(gh(), change(2), autoOpts())).operation).toBe("auto-merge-enabled");
    expect(graphqlBodies()).toStrictEqual([]);

    await fake.passChecks(DOWN.owner, DOWN.repo, head);
    expect(pull()?.merged).toBeDefined();
    expect(await fake.readFile(DOWN.owner, DOWN.repo, "main", "flake.lock")).toBe(lockText(revs[2] ?? ""));
    fake.assertNoViolations();
  });

  test("an armed PR moving to a newer rev is disarmed before the move, then armed at the head judged", async () => {
    fake.protectBranch(DOWN.owner, DOWN.repo, "main", { requiredChecks: ["ci"] });
    await openPullRequests(octokit, report(1), { ...openOpts, disarmOnMove: true });
    expect((await landAuto(gh(), change(1), autoOpts())).operation).toBe("auto-merge-enabled");
    const first = (await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)) ?? "";

    fake.requests.length = 0;
    await openPullRequests(octokit, report(2), { ...openOpts, disarmOnMove: true });
    const moved = (await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)) ?? "";
    expect(moved).not.toBe(first);
    // Disarmed before the branch moved: no moment where the new head is armed unjudged.
    const order = fake.requests.map((r) => r.operationId);
    const disarm = graphqlBodies().findIndex((b) => b.includes("disablePullRequestAutoMerge"));
    expect(disarm).toBe(0);
    expect(order.indexOf("graphql")).toBeLessThan(order.indexOf("git/update-ref"));
    expect(pull()?.autoMerge).toBeUndefined();

    fake.requests.length = 0;
    expect((await landAuto(gh(), change(2), autoOpts())).operation).toBe("auto-merge-enabled");
    expect(graphqlBodies().some((b) => b.includes("enablePullRequestAutoMerge") && b.includes(moved))).toBe(
      true,
    );
    expect(pull()?.autoMerge?.mergeMethod).toBe("SQUASH");
    fake.assertNoViolations();
  });

  test("without disarmOnMove (merge: review) a moved PR keeps the auto-merge someone armed", async () => {
    fake.protectBranch(DOWN.owner, DOWN.repo, "main", { requiredChecks: ["ci"] });
    await openPullRequests(octokit, report(1), openOpts);
    await landAuto(gh(), change(1), autoOpts());
    fake.requests.length = 0;
    await openPullRequests(octokit, report(2), openOpts);
    expect(graphqlBodies()).toStrictEqual([]);
    expect(pull()?.autoMerge?.mergeMethod).toBe("SQUASH");
  });

  test("with nothing required: merged through REST with the head SHA that was evaluated", async () => {
    await openPullRequests(octokit, report(2), openOpts);
    const head = (await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)) ?? "";
    const result = await landAuto(gh(), change(2), autoOpts({ method: "rebase" }));
    expect(result.operation).toBe("merged");
    const merge = fake.requests.find((r) => r.operationId === "pulls/merge");
    expect(merge?.body).toStrictEqual({ sha: head, merge_method: "rebase" });
    expect(merge?.status).toBe(200);
    expect(pull()?.merged?.sha).toBe(result.sha ?? "");
    expect(await fake.readFile(DOWN.owner, DOWN.repo, "main", "flake.lock")).toBe(lockText(revs[2] ?? ""));
    fake.assertNoViolations();
  });

  test("a repository without auto-merge allowed: one sentence naming the setting, the PR left open", async () => {
    fake.setRepoSettings(DOWN.owner, DOWN.repo, { allowAutoMerge: false });
    await openPullRequests(octokit, report(2), openOpts);
    await expect(checkAutoMergeSettings(gh(), "squash")).rejects.toThrow(
      /^acme\/nixcfg-\d+ does not allow auto-merge, so the pull request is left open; turn on "Allow auto-merge"/,
    );
    // Where the settings are hidden from the token, GitHub's own refusal says the same.
    await expect(landAuto(gh(), change(2), autoOpts())).rejects.toThrow(/turn on "Allow auto-merge"/);
    expect(pull()?.state).toBe("open");
    expect(pull()?.autoMerge).toBeUndefined();
  });

  test("a merge method the repository does not allow: the setting to turn on and the methods to pick", async () => {
    fake.setRepoSettings(DOWN.owner, DOWN.repo, { allowSquashMerge: false });
    await expect(checkAutoMergeSettings(gh(), "squash")).rejects.toThrow(
      /does not allow squash merges.*"Allow squash merging".*merge-method to merge or rebase$/,
    );
    await expect(checkAutoMergeSettings(gh(), "merge")).resolves.toBeUndefined();
  });

  test("a failed host: left open, auto-merge disarmed, the body says why; a rerun does not repeat it", async () => {
    fake.protectBranch(DOWN.owner, DOWN.repo, "main", { requiredChecks: ["ci"] });
    await openPullRequests(octokit, report(2), openOpts);
    expect((await landAuto(gh(), change(2), autoOpts())).operation).toBe("auto-merge-enabled");
    const held = await landAuto(gh(), change(2), autoOpts({ impact: impactFile("failed") }));
    expect(held.operation).toBe("held");
    expect(held.detail).toBe("left open for a human: web no longer evaluates with this bump");
    expect(pull()?.autoMerge).toBeUndefined();
    expect(pull()?.body).toContain("### Not merged automatically");
    expect(pull()?.body).toContain("`web` no longer evaluates with this bump");
    const body = pull()?.body;
    await landAuto(gh(), change(2), autoOpts({ impact: impactFile("failed") }));
    expect(pull()?.body).toBe(body ?? "");
    // Fixed upstream and re-evaluated clean: the note goes, auto-merge comes back.
    expect((await landAuto(gh(), change(2), autoOpts({ impact: impactFile("changed") }))).operation).toBe(
      "auto-merge-enabled",
    );
    expect(pull()?.body).not.toContain(NOTE_START);
    fake.assertNoViolations();
  });

  test("the default GITHUB_TOKEN: armed, and the body says the checks will not start and how to fix it", async () => {
    fake.protectBranch(DOWN.owner, DOWN.repo, "main", { requiredChecks: ["ci"] });
    await openPullRequests(octokit, report(2), openOpts);
    expect((await landAuto(gh(), change(2), autoOpts({ defaultToken: true }))).operation).toBe(
      "auto-merge-enabled",
    );
    expect(pull()?.body).toContain(DEFAULT_TOKEN_NOTE);
  });

  test("a branch a newer run moved on is left to that run", async () => {
    await openPullRequests(octokit, report(3), openOpts);
    const result = await landAuto(gh(), change(2), autoOpts());
    expect(result.operation).toBe("none");
    expect(result.detail).toMatch(/now proposes .* the run that moved it lands it/);
    expect(fake.requests.some((r) => r.operationId === "pulls/merge" || r.operationId === "graphql")).toBe(
      false,
    );
  });

  test("a PR closed as obsolete has its auto-merge disarmed first", async () => {
    fake.protectBranch(DOWN.owner, DOWN.repo, "main", { requiredChecks: ["ci"] });
    await openPullRequests(octokit, report(2), openOpts);
    await landAuto(gh(), change(2), autoOpts());
    fake.requests.length = 0;
    const [closed] = await openPullRequests(octokit, quietReport(revs[3] ?? ""), openOpts);
    expect(closed?.operation).toBe("closed");
    expect(pull()?.state).toBe("closed");
    expect(pull()?.merged).toBeUndefined();
    const calls = fake.requests.map((r) => r.operationId);
    expect(calls.indexOf("graphql")).toBeGreaterThanOrEqual(0);
    expect(calls.indexOf("graphql")).toBeLessThan(calls.indexOf("pulls/update"));
    expect(graphqlBodies()[0]).toContain("disablePullRequestAutoMerge");
  });
});

describe("merge: direct", () => {
  const directOpts = async (over: Partial<DirectOptions> = {}): Promise<DirectOptions> => ({
    base: "main",
    path: "flake.lock",
    from: { sha: (await fake.branchSha(DOWN.owner, DOWN.repo, "main")) ?? "", lock: lockText(revs[0] ?? "") },
    impact: undefined,
    dryRun: false,
    ...over,
  });

  test("open-pr.ts --merge direct closes a pull request left from review once the base has overtaken it", async () => {
    await openPullRequests(octokit, report(1), openOpts);
    const [committed] = await commitDirect(gh(), report(2), await directOpts());
    expect(committed?.operation).toBe("committed");
    // The next run moves nothing: nixfleet is up to date at the rev the direct commit locked.
    const quiet = quietReport(revs[2] ?? "");
    const dir = await mkdtemp(join(scratchRoot(), "flake-bump-direct-"));
    try {
      const path = join(dir, "report.json");
      await writeFile(path, serializeReport(quiet));
      const env = { GITHUB_API_URL: fake.apiUrl, GH_TOKEN: fake.token, FLAKE_BUMP_WAIT_SCALE: "0" };
      const repo = `${DOWN.owner}/${DOWN.repo}`;
      const args = ["--report", path, "--repo", repo, "--base", "main", "--merge", "direct"];
      const run = await runInProcess(openPrMain, args, { env, cwd: dir });
      expect(run.exitCode).toBe(0);
      expect(run.stderr).toContain("nixfleet: closed");
      expect(pull()?.state).toBe("closed");
      expect(fake.comments(DOWN.owner, DOWN.repo, pull()?.number ?? 0)).toHaveLength(1);
      expect(await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)).toBeUndefined();
      // Asked again, there is nothing left to close.
      fake.requests.length = 0;
      const again = await runInProcess(openPrMain, args, { env, cwd: dir });
      expect(again.exitCode).toBe(0);
      expect(fake.requests.map((r) => r.method)).toStrictEqual(["GET"]);
      fake.assertNoViolations();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("one Verified commit on the base, parent the old head, only flake.lock changed, the message says what moved", async () => {
    const before = (await fake.branchSha(DOWN.owner, DOWN.repo, "main")) ?? "";
    const [result] = await commitDirect(gh(), report(2), await directOpts());
    expect(result?.operation).toBe("committed");
    const after = (await fake.branchSha(DOWN.owner, DOWN.repo, "main")) ?? "";
    expect(after).toBe(result?.sha ?? "");
    expect(fake.isVerified(DOWN.owner, DOWN.repo, after)).toBe(true);
    const { data: commit } = await octokit.rest.git.getCommit({ ...DOWN, commit_sha: after });
    expect(commit.parents.map((p) => p.sha)).toStrictEqual([before]);
    const { data: diff } = await octokit.rest.repos.compareCommits({ ...DOWN, base: before, head: after });
    expect(diff.files?.map((f) => f.filename)).toStrictEqual(["flake.lock"]);
    expect(commit.message).toStartWith(`chore(flake): update nixfleet to ${revs[2]?.slice(0, 7)}`);
    expect(commit.message).toContain(`New rev: \`${revs[2]}\``);
    expect(commit.message).toContain(`compare/${revs[0]}...${revs[2]}`);
    expect(commit.message).toContain("change 2");
    expect(await fake.readFile(DOWN.owner, DOWN.repo, "main", "flake.lock")).toBe(lockText(revs[2] ?? ""));
    expect(fake.pulls(DOWN.owner, DOWN.repo)).toStrictEqual([]);
    fake.assertNoViolations();
  });

  test("a human push racing the commit: rebuilt on the new head, nothing lost", async () => {
    const opts = await directOpts();
    let human = "";
    const racing = createOctokit({
      baseUrl: fake.apiUrl,
      token: fake.token,
      waitScale: 0,
      fetch: Object.assign(
        async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
          // The human pushes between our read of the base and our ref update.
          if (init?.method === "PATCH" && String(input).includes("/git/refs/") && human === "") {
            human = await fake.push(DOWN.owner, DOWN.repo, { "hosts/web.nix": "{ }\n" }, "web: tweak");
          }
          return fetch(input, init);
        },
        { preconnect: fetch.preconnect },
      ),
    });
    const [result] = await commitDirect({ octokit: racing, repo: DOWN }, report(2), opts);
    expect(result?.operation).toBe("committed");
    const { data: commit } = await octokit.rest.git.getCommit({ ...DOWN, commit_sha: result?.sha ?? "" });
    expect(commit.parents.map((p) => p.sha)).toStrictEqual([human]);
    expect(await fake.readFile(DOWN.owner, DOWN.repo, "main", "hosts/web.nix")).toBe("{ }\n");
    expect(await fake.readFile(DOWN.owner, DOWN.repo, "main", "flake.lock")).toBe(lockText(revs[2] ?? ""));
    expect(
      fake.requests.filter((r) => r.operationId === "git/update-ref").map((r) => r.status),
    ).toStrictEqual([422, 200]);
  });

  test("a base whose flake.lock changed meanwhile: refused with a rerun sentence, nothing written", async () => {
    const opts = await directOpts();
    await fake.push(DOWN.owner, DOWN.repo, { "flake.lock": lockText(revs[1] ?? "") }, "manual lock");
    const moved = await fake.branchSha(DOWN.owner, DOWN.repo, "main");
    await expect(commitDirect(gh(), report(2), opts)).rejects.toThrow(
      /^flake\.lock on 'main' of acme\/nixcfg-\d+ changed since this run computed the new lock from [0-9a-f]{12}, so nothing was committed; rerun flake-bump/,
    );
    expect(await fake.branchSha(DOWN.owner, DOWN.repo, "main")).toBe(moved);
  });

  test("a release's flake.nix on a base whose flake.nix changed meanwhile: refused, nothing written; elsewhere it lands", async () => {
    const edited = { text: '{ inputs.nixfleet.url = "github:acme/nixfleet/v2"; }\n', sha256: "" };
    edited.sha256 = sha256(edited.text);
    const release = (): Report => {
      const r = report(2);
      return { ...r, inputs: r.inputs.map((c) => ({ ...c, flakeNix: edited })), flakeNix: edited };
    };
    // Someone else's push leaves flake.nix alone: the commit is rebuilt on it with the tag edit.
    const opts = await directOpts();
    await fake.push(DOWN.owner, DOWN.repo, { "hosts/web.nix": "{ }\n" }, "web: tweak");
    const [result] = await commitDirect(gh(), release(), opts);
    expect(result?.operation).toBe("committed");
    expect(await fake.readFile(DOWN.owner, DOWN.repo, "main", "flake.nix")).toBe(edited.text);
    expect(await fake.readFile(DOWN.owner, DOWN.repo, "main", "hosts/web.nix")).toBe("{ }\n");

    // One that edits flake.nix: committing would undo it, so nothing is written.
    DOWN = { owner: "acme", repo: `nixcfg-${++repos}` };
    await fake.createRepo(DOWN.owner, DOWN.repo, {
      files: { "flake.nix": "{ }\n", "flake.lock": lockText(revs[0] ?? "") },
    });
    const stale = await directOpts();
    await fake.push(DOWN.owner, DOWN.repo, { "flake.nix": '{ description = "mine"; }\n' }, "describe");
    const moved = await fake.branchSha(DOWN.owner, DOWN.repo, "main");
    await expect(commitDirect(gh(), release(), stale)).rejects.toThrow(
      /^flake\.nix on 'main' of acme\/nixcfg-\d+ changed since this run edited it from [0-9a-f]{12}, so nothing was committed; rerun flake-bump/,
    );
    expect(await fake.branchSha(DOWN.owner, DOWN.repo, "main")).toBe(moved);
    expect(await fake.readFile(DOWN.owner, DOWN.repo, "main", "flake.nix")).toBe(
      '{ description = "mine"; }\n',
    );
    fake.assertNoViolations();
  });

  test("a base that already locks a newer rev: nothing to commit (never a downgrade)", async () => {
    const opts = await directOpts();
    await fake.push(DOWN.owner, DOWN.repo, { "flake.lock": lockText(revs[3] ?? "") }, "newer");
    const moved = await fake.branchSha(DOWN.owner, DOWN.repo, "main");
    const [result] = await commitDirect(gh(), report(2), opts);
    expect(result?.operation).toBe("none");
    expect(await fake.branchSha(DOWN.owner, DOWN.repo, "main")).toBe(moved);
  });

  const rules = [
    { requirePullRequest: true, said: "Changes must be made through a pull request." },
    { requiredChecks: ["ci"], said: 'Required status check "ci" is expected.' },
  ];
  for (const { said, ...rule } of rules) {
    test(`a protected base (${said}): one sentence naming the rule and merge: auto, nothing written`, async () => {
      fake.protectBranch(DOWN.owner, DOWN.repo, "main", rule);
      const before = await fake.branchSha(DOWN.owner, DOWN.repo, "main");
      const error = await commitDirect(gh(), report(2), await directOpts()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
      const message = error instanceof Error ? error.message : "";
      expect(message).toContain(said);
      expect(message).toMatch(/so nothing was written: the branch is protected .*; use merge: auto/);
      expect(message.split("\n")).toHaveLength(1);
      expect(await fake.branchSha(DOWN.owner, DOWN.repo, "main")).toBe(before);
    });
  }

  test("a failed host: that input is not committed", async () => {
    const before = await fake.branchSha(DOWN.owner, DOWN.repo, "main");
    const [result] = await commitDirect(gh(), report(2), await directOpts({ impact: impactFile("failed") }));
    expect(result?.operation).toBe("held");
    expect(result?.detail).toMatch(
      /^not committed: web no longer evaluates with this bump; .*merge: review$/,
    );
    expect(await fake.branchSha(DOWN.owner, DOWN.repo, "main")).toBe(before);
    expect(fake.requests.some((r) => r.operationId === "git/create-commit")).toBe(false);
  });

  test("a dry run writes nothing", async () => {
    const before = await fake.branchSha(DOWN.owner, DOWN.repo, "main");
    const [result] = await commitDirect(gh(), report(2), await directOpts({ dryRun: true }));
    expect(result?.detail).toMatch(/^dry run: would commit flake\.lock onto 'main'/);
    expect(await fake.branchSha(DOWN.owner, DOWN.repo, "main")).toBe(before);
  });
});

/**
 * The pull request lifecycle (lib/pr/lifecycle.ts) in process against a fake GitHub on an ephemeral
 * port: created, updated, left unchanged, closed when obsolete, labelled after a lost create answer.
 * Each scenario's requests are asserted exactly (the figures the benchmark reports), so a change
 * that costs a request fails here.
 */

import {
  afterAll,
  afterEach,
  beforeAll,
  beforeEach,
  describe,
  expect,
  setDefaultTimeout,
  test,
} from "bun:test";
import { createHash } from "node:crypto";
import type { InputChange, Report } from "../../lib/flake/report.ts";
import { createOctokit, type Octokit } from "../../lib/github/client.ts";
import { slimCommit } from "../../lib/github/upstream.ts";
import { type OpenPrOptions, openPullRequests } from "../../lib/pr/lifecycle.ts";
import { parseHeadMarker, parseMarker } from "../../lib/pr/text.ts";
import { type FakeGitHub, localFakeGitHub } from "../fake-github/index.ts";
import { losingAnswer } from "../support/handlers.ts";
import { upstreamHistory } from "../support/history.ts";

// Each case makes a handful of real git objects in the fake; a busy machine needs more than 5 s.
setDefaultTimeout(30_000);

const UP = { owner: "acme", repo: "x" };
const BRANCH = "flake-bump/x";

let fake: FakeGitHub;
let octokit: Octokit;
let down = { owner: "acme", repo: "cfg" };
let repos = 0;
let since = 0;
/** acme/x's main, oldest first. */
let up: string[];
/** Lose the answer to the next `pulls/create` after GitHub applied it (a dropped connection). */
let loseCreateAnswer = false;

const createPull = losingAnswer("pulls/create", () => {
  const lose = loseCreateAnswer;
  loseCreateAnswer = false;
  return lose;
});

const at = (i: number) => up[i] ?? "";
const calls = () => fake.requests.slice(since).map((r) => `${r.operationId} ${r.status}`);
const mark = () => {
  since = fake.requests.length;
};

const options = (): OpenPrOptions => ({
  repo: down,
  base: "main",
  branchPrefix: "flake-bump/",
  labels: ["dependencies", "automated"],
  reviewers: [],
  draft: false,
  dryRun: false,
});

/** The upstream commits from `from` to `to`, as bump.ts's target check hands them to the report. */
async function upstream(from: number, to: number): Promise<NonNullable<InputChange["upstream"]>> {
  const { data } = await octokit.rest.repos.compareCommitsWithBasehead({
    ...UP,
    basehead: `${at(from)}...${at(to)}`,
  });
  return { from: at(from), to: at(to), commits: data.commits.map(slimCommit), total: data.total_commits };
}

function change(to: number, from = 0): InputChange {
  const text = `{ "x": "${at(to)}" }\n`;
  return {
    name: "x",
    from: { ref: `github:acme/x/${at(from)}`, rev: at(from) },
    to: { ref: `github:acme/x/${at(to)}`, rev: at(to) },
    github: UP,
    transitive: { added: [], removed: [], changed: [] },
    lock: { text, sha256: createHash("sha256").update(text).digest("hex") },
  };
}

/**
 * bump.ts's report moving x to `to`; `extras` adds what a current bump.ts carries (the checkout it
 * ran in, the commit list its target check read), without them it is an older report.
 */
async function report(to: number, extras = true): Promise<Report> {
  const entry = change(to);
  const head = (await fake.branchSha(down.owner, down.repo, "main")) ?? "";
  const { data } = await octokit.rest.git.getCommit({ ...down, commit_sha: head });
  if (extras) entry.upstream = await upstream(0, to);
  return {
    schema: 1,
    changed: true,
    dryRun: false,
    requested: { inputs: [], rev: at(to) },
    flake: {
      dir: "/nonexistent/cfg",
      lockPath: "flake.lock",
      ...(extras ? { head: { commit: head, tree: data.tree.sha, branch: "main" } } : {}),
    },
    inputs: [entry],
    skipped: [],
    lock: entry.lock,
    nix: { version: "2.26.3", invocations: 1 },
  };
}

const openPulls = () => fake.pulls(down.owner, down.repo).filter((p) => p.state === "open");

async function run(r: Report) {
  mark();
  const results = await openPullRequests(octokit, r, options());
  return { results, calls: calls() };
}

beforeAll(async () => {
  fake = await localFakeGitHub({ handlers: { "pulls/create": createPull } });
  octokit = createOctokit({ baseUrl: fake.apiUrl, token: fake.token, waitScale: 0 });
  up = await upstreamHistory(fake, UP, 3);
});
afterAll(() => fake?.stop());

beforeEach(async () => {
  loseCreateAnswer = false;
  down = { owner: "acme", repo: `cfg-${++repos}` };
  await fake.createRepo(down.owner, down.repo, {
    files: { "flake.nix": '{ inputs.x.url = "github:acme/x"; outputs = _: { }; }\n', "flake.lock": "{}\n" },
  });
});
afterEach(() => fake.assertNoViolations());

describe("openPullRequests: one pull request per input, in as few requests as GitHub allows", () => {
  test("creates it in 6 requests: list, tree, commit, branch, PR, labels", async () => {
    const { results, calls } = await run(await report(1));
    expect(results.map((r) => r.operation)).toStrictEqual(["created"]);
    expect(calls).toStrictEqual([
      "pulls/list 200",
      "git/create-tree 201",
      "git/create-commit 201",
      "git/create-ref 201",
      "pulls/create 201",
      "issues/add-labels 200",
    ]);
    const [pr] = openPulls();
    expect(pr?.labels.map((l) => l.name).sort()).toStrictEqual(["automated", "dependencies"]);
    expect(parseMarker(pr?.body)?.rev).toBe(at(1));
    const head = await fake.branchSha(down.owner, down.repo, BRANCH);
    expect(parseHeadMarker(pr?.body).head?.sha).toBe(head);
    expect(fake.isVerified(down.owner, down.repo, head ?? "")).toBe(true);
    // The body lists the upstream commits from the report, without asking the compare API again.
    expect(pr?.body).toContain("### Upstream commits (1)");
  });

  test("moves it to a newer rev in 6 requests: list, tree, commit, fast-forward, text, re-check", async () => {
    await run(await report(1));
    const old = await fake.branchSha(down.owner, down.repo, BRANCH);
    const { results, calls } = await run(await report(3));
    expect(results.map((r) => r.operation)).toStrictEqual(["updated"]);
    expect(calls).toStrictEqual([
      "pulls/list 200",
      "git/create-tree 201",
      "git/create-commit 201",
      "git/update-ref 200",
      "pulls/update 200",
      "git/get-ref 200",
    ]);
    const head = await fake.branchSha(down.owner, down.repo, BRANCH);
    const { data } = await octokit.rest.git.getCommit({ ...down, commit_sha: head ?? "" });
    expect(data.parents.map((p) => p.sha)[1]).toBe(old);
    const [pr] = openPulls();
    expect(pr?.title).toBe(`chore(flake): update x to ${at(3).slice(0, 7)}`);
    expect(parseMarker(pr?.body)?.rev).toBe(at(3));
    expect(parseHeadMarker(pr?.body).head?.sha).toBe(head);
    expect(pr?.body).toContain("### Upstream commits (3)");
  });

  test("an older report (no checkout, no commit list) still updates, reading what it lacks", async () => {
    await run(await report(1, false));
    const { results, calls } = await run(await report(3, false));
    expect(results.map((r) => r.operation)).toStrictEqual(["updated"]);
    expect(calls).toStrictEqual([
      "pulls/list 200",
      "repos/compare-commits 200",
      "repos/get-commit 200",
      "git/create-tree 201",
      "git/create-commit 201",
      "git/update-ref 200",
      "pulls/update 200",
      "git/get-ref 200",
    ]);
  });

  test("a PR written before head markers: its head is read, then the update goes on", async () => {
    await run(await report(1));
    const [pr] = openPulls();
    await octokit.rest.pulls.update({
      ...down,
      pull_number: pr?.number ?? 0,
      body: parseHeadMarker(pr?.body).body,
    });
    const { results, calls } = await run(await report(3));
    expect(results.map((r) => r.operation)).toStrictEqual(["updated"]);
    expect(calls.slice(0, 3)).toStrictEqual(["pulls/list 200", "git/get-ref 200", "git/get-commit 200"]);
    expect(calls).toHaveLength(8);
  });

  test("the same report again leaves it unchanged in 2 requests", async () => {
    const r = await report(2);
    await run(r);
    const { results, calls } = await run(r);
    expect(results.map((r) => r.operation)).toStrictEqual(["unchanged"]);
    expect(calls).toStrictEqual(["pulls/list 200", "repos/get-content 200"]);
  });

  test("an older rev than the PR proposes leaves it at the newer one", async () => {
    await run(await report(3));
    const { results, calls } = await run(await report(1));
    expect(results.map((r) => r.operation)).toStrictEqual(["unchanged"]);
    expect(results[0]?.detail).toContain("which includes");
    expect(calls).toStrictEqual(["pulls/list 200", "repos/compare-commits 200"]);
    expect(parseMarker(openPulls()[0]?.body)?.rev).toBe(at(3));
  });

  test("closes it once the base holds its rev: comment, close, delete the branch", async () => {
    await run(await report(2));
    const r = await report(2);
    const closing: Report = {
      ...r,
      changed: false,
      inputs: [],
      lock: null,
      skipped: [
        { name: "x", reason: "up-to-date", message: "'x' is already up to date", current: at(2), github: UP },
      ],
    };
    const { results, calls } = await run(closing);
    expect(results.map((r) => r.operation)).toStrictEqual(["closed"]);
    expect(calls).toStrictEqual([
      "pulls/list 200",
      "issues/create-comment 201",
      "pulls/update 200",
      "git/delete-ref 204",
    ]);
    expect(openPulls()).toHaveLength(0);
    expect(await fake.branchSha(down.owner, down.repo, BRANCH)).toBeUndefined();
  });

  test("a create whose answer was lost: the PR found after the 422 still gets its labels, once", async () => {
    loseCreateAnswer = true;
    const { results, calls } = await run(await report(1));
    expect(results.map((r) => r.operation)).toStrictEqual(["updated"]);
    expect(calls).toStrictEqual([
      "pulls/list 200",
      "git/create-tree 201",
      "git/create-commit 201",
      "git/create-ref 201",
      "pulls/create 201",
      "pulls/create 422",
      "pulls/list 200",
      "issues/add-labels 200",
    ]);
    expect(fake.pulls(down.owner, down.repo)).toHaveLength(1);
    expect(
      openPulls()[0]
        ?.labels.map((l) => l.name)
        .sort(),
    ).toStrictEqual(["automated", "dependencies"]);
  });
});

/**
 * lib/bump/freshness.ts against the fake GitHub, in process: how many requests the nightly question costs,
 * and what happens when GraphQL cannot answer. No Nix, no port 443.
 */
import { afterAll, afterEach, beforeAll, beforeEach, expect, test } from "bun:test";
import { $ } from "zx";
import { checkFreshness, type Freshness, GRAPHQL_BATCH, headsQuery } from "../lib/bump/freshness.ts";
import { mapBounded } from "../lib/core/bounded.ts";
import type { LockNode } from "../lib/flake/lock.ts";
import { createOctokit, type Octokit } from "../lib/github/client.ts";
import { FakeGitHub } from "./fake-github/index.ts";

let fake: FakeGitHub;
let octokit: Octokit;
const warnings: string[] = [];
const deps = () => ({ octokit, warn: (line: string) => warnings.push(line) });

beforeAll(async () => {
  fake = await FakeGitHub.start({ httpsPort: 0 });
});
afterAll(() => fake.stop());
beforeEach(async () => {
  await fake.reset();
  warnings.length = 0;
  octokit = createOctokit({ baseUrl: fake.apiUrl, token: fake.token, waitScale: 0 });
});
afterEach(() => fake.assertNoViolations());

/** A lock node as Nix writes it for `github:OWNER/REPO[/REF]?host=localhost`. */
function githubNode(repo: string, rev: string, ref?: string): LockNode {
  return {
    locked: { type: "github", owner: "acme", repo, rev, host: "localhost" },
    original: { type: "github", owner: "acme", repo, host: "localhost", ...(ref ? { ref } : {}) },
  };
}

/** `count` repositories, each with one commit on main; returns their heads by name. */
async function repos(count: number): Promise<Map<string, string>> {
  const names = Array.from({ length: count }, (_, i) => `in${String(i).padStart(3, "0")}`);
  const heads = new Map<string, string>();
  await mapBounded(names, 8, async (name) => {
    await fake.createRepo("acme", name, { files: { "flake.nix": `{ outputs = _: { }; } # ${name}\n` } });
    heads.set(name, (await fake.branchSha("acme", name, "main")) ?? "");
  });
  return heads;
}

function requestsByKind() {
  const graphql = fake.requests.filter((request) => request.operationId === "graphql").length;
  return { graphql, rest: fake.requests.length - graphql };
}

test("the query names each repository once, a branch by ref(qualifiedName:), else the default branch", () => {
  const { query, variables } = headsQuery([
    { owner: "acme", repo: "a" },
    { owner: "acme", repo: "b", ref: "release-24.05" },
  ]);
  expect(query).toBe(
    [
      "query ($o0: String!, $n0: String!, $o1: String!, $n1: String!, $r1: String!) {",
      "  i0: repository(owner: $o0, name: $n0) { defaultBranchRef { target { oid ... on Tag { target { oid } } } } }",
      "  i1: repository(owner: $o1, name: $n1) { ref(qualifiedName: $r1) { target { oid ... on Tag { target { oid } } } } }",
      "}",
    ].join("\n"),
  );
  expect(variables).toStrictEqual({ o0: "acme", n0: "a", o1: "acme", n1: "b", r1: "release-24.05" });
});

/**
 * `count` inputs over 25 repositories (creating a repository is a real git init, so the fake's setup,
 * not the code under test, would dominate): every input is its own alias, by default branch or by ref.
 */
function manyInputs(heads: Map<string, string>, count: number) {
  const repoList = [...heads];
  return Array.from({ length: count }, (_, i) => {
    const [repo = "", sha = ""] = repoList[i % repoList.length] ?? [];
    return { name: `input${i}`, node: githubNode(repo, sha, i % 2 === 0 ? undefined : "main") };
  });
}

test("50 current inputs: one GraphQL request, all current", async () => {
  const answers = await checkFreshness(manyInputs(await repos(25), 50), deps());
  expect(answers).toHaveLength(50);
  expect(answers.every((answer) => answer.status === "current")).toBe(true);
  expect(requestsByKind()).toStrictEqual({ graphql: 1, rest: 0 });
  expect(warnings).toStrictEqual([]);
}, 60_000);

test(`200 inputs: two requests of at most ${GRAPHQL_BATCH}; the ones behind are found`, async () => {
  const heads = await repos(25);
  const behind = await fake.push("acme", "in007", { x: "1" }, "new");
  const answers = await checkFreshness(manyInputs(heads, 200), deps());
  const outdated = answers.filter((answer) => answer.status !== "current");
  // in007 is every 25th input from the 8th: 8 of the 200.
  expect(outdated.map((answer) => answer.name)).toStrictEqual(
    [7, 32, 57, 82, 107, 132, 157, 182].map((i) => `input${i}`),
  );
  expect(outdated[0]).toStrictEqual({
    name: "input7",
    status: "outdated",
    rev: heads.get("in007"),
    latest: behind,
  });
  expect(requestsByKind()).toStrictEqual({ graphql: 2, rest: 0 });
}, 60_000);

test("a branch ref and a tag ref (annotated or not) are each read as their commit", async () => {
  await fake.createRepo("acme", "lib", { files: { "flake.nix": "{ outputs = _: { }; }\n" } });
  const main = (await fake.branchSha("acme", "lib", "main")) ?? "";
  const release = await fake.push("acme", "lib", { v: "1" }, "release", { branch: "release" });
  await octokit.rest.git.createRef({ owner: "acme", repo: "lib", ref: "refs/tags/v1", sha: main });
  // An annotated tag, made the way a maintainer's `git push --tags` would leave it.
  const identity = { GIT_COMMITTER_NAME: "Maintainer", GIT_COMMITTER_EMAIL: "m@example.com" };
  await $({
    env: { ...process.env, ...identity },
    quiet: true,
  })`git --git-dir=${fake.repo("acme", "lib").gitDir} tag -a v2 -m v2 ${release}`;
  const answers = await checkFreshness(
    [
      { name: "branch", node: githubNode("lib", main, "release") },
      { name: "tag", node: githubNode("lib", main, "v1") },
      { name: "annotated", node: githubNode("lib", release, "v2") },
      { name: "default", node: githubNode("lib", main) },
    ],
    deps(),
  );
  expect(answers).toStrictEqual([
    { name: "branch", status: "outdated", rev: main, latest: release },
    { name: "tag", status: "current", rev: main },
    { name: "annotated", status: "current", rev: release },
    { name: "default", status: "current", rev: main },
  ]);
  expect(requestsByKind()).toStrictEqual({ graphql: 1, rest: 1 });
});

test("a missing repository or branch is unknown (left to Nix) without asking REST; the rest answer", async () => {
  const heads = await repos(2);
  const answers = await checkFreshness(
    [
      ...[...heads].map(([name, sha]) => ({ name, node: githubNode(name, sha) })),
      { name: "gone", node: githubNode("gone", "0".repeat(40)) },
      { name: "nobranch", node: githubNode("in000", "0".repeat(40), "nope") },
    ],
    deps(),
  );
  expect(answers.slice(2)).toStrictEqual<Freshness[]>([
    {
      name: "gone",
      status: "unknown",
      reason: "GitHub answered: Could not resolve to a Repository with the name 'acme/gone'.",
    },
    { name: "nobranch", status: "unknown", reason: "GitHub has no ref 'nope' in acme/in000" },
  ]);
  expect(answers.slice(0, 2).map((answer) => answer.status)).toStrictEqual(["current", "current"]);
  expect(requestsByKind()).toStrictEqual({ graphql: 1, rest: 0 });
  expect(warnings).toStrictEqual([]);
});

test("GraphQL answering 502 (retries included): one warning, then REST per input, same answers", async () => {
  const heads = await repos(5);
  fake.injectFault({ path: "/graphql", status: 502, times: 10 });
  const inputs = [...heads].map(([name, sha]) => ({ name, node: githubNode(name, sha) }));
  const answers = await checkFreshness(inputs, deps());
  expect(answers.map((answer) => answer.status)).toStrictEqual(Array(5).fill("current"));
  expect(warnings).toStrictEqual([
    "GitHub's GraphQL API did not answer (localhost answered HTTP 502); asking REST for 5 input(s), one request each",
  ]);
  expect(requestsByKind().rest).toBe(5);
  fake.faults.length = 0;
});

test("without a GraphQL endpoint at all (404, an old GitHub Enterprise Server) REST answers", async () => {
  const heads = await repos(3);
  fake.injectFault({ path: "/graphql", status: 404, times: 1 });
  const inputs = [...heads].map(([name, sha]) => ({ name, node: githubNode(name, sha) }));
  const answers = await checkFreshness(inputs, deps());
  expect(answers.map((answer) => answer.status)).toStrictEqual(["current", "current", "current"]);
  expect(requestsByKind()).toStrictEqual({ graphql: 1, rest: 3 });
  expect(warnings).toHaveLength(1);
});

test("inputs on two hosts go to each host's own client, never mixed in one request", async () => {
  const heads = await repos(2);
  const other = createOctokit({ baseUrl: `${fake.apiUrl}/api/v3`, token: fake.token, waitScale: 0 });
  const [a = "", b = ""] = [...heads.values()];
  const onOther: LockNode = {
    locked: { type: "github", owner: "acme", repo: "in001", rev: b, host: "ghe.example" },
    original: { type: "github", owner: "acme", repo: "in001", host: "ghe.example" },
  };
  const answers = await checkFreshness(
    [
      { name: "local", node: githubNode("in000", a) },
      { name: "ghe", node: onOther },
    ],
    { ...deps(), octokitFor: (host) => (host === "ghe.example" ? other : octokit) },
  );
  expect(answers.map((answer) => answer.status)).toStrictEqual(["current", "current"]);
  expect(fake.requests.map((request) => request.path).sort()).toStrictEqual(["/api/graphql", "/graphql"]);
});

/**
 * The fake's GraphQL side and its merge rules (REST merge, auto-merge, branch protection). Runs on an
 * ephemeral HTTPS port: nothing here needs Nix or port 443.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { Octokit as Core } from "@octokit/core";
import { restEndpointMethods } from "@octokit/plugin-rest-endpoint-methods";
import { FakeGitHub } from "./index.ts";

const Octokit = Core.plugin(restEndpointMethods);
type Octokit = InstanceType<typeof Octokit>;

let fake: FakeGitHub;
let gh: Octokit;

beforeAll(async () => {
  fake = await FakeGitHub.start({ httpsPort: 0 });
});
afterAll(() => fake.stop());
beforeEach(async () => {
  await fake.reset();
  gh = new Octokit({ baseUrl: fake.apiUrl, auth: fake.token });
});

async function post(path: string, body: unknown, token: string | null = fake.token) {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token !== null) headers.authorization = `bearer ${token}`;
  const response = await fetch(`${fake.apiUrl}${path}`, {
    method: "POST",
    headers,
    body: JSON.stringify(body),
  });
  const answer: unknown = await response.json();
  return { status: response.status, body: answer };
}

/** GraphQL errors carry the partial data; Octokit puts both on the error it throws. */
async function graphqlFailure(promise: Promise<unknown>): Promise<{ errors: unknown; data: unknown }> {
  try {
    await promise;
  } catch (error) {
    if (typeof error === "object" && error !== null && "errors" in error && "data" in error) {
      return { errors: error.errors, data: error.data };
    }
    throw error;
  }
  throw new Error("expected the GraphQL request to fail");
}

/** A repository with a pull request from `feature` into `main` changing one file. */
async function withPull(settings: { allowAutoMerge?: boolean } = {}) {
  await fake.createRepo("acme", "fleet", { files: { "flake.lock": "{}\n" }, settings });
  const head = await fake.push("acme", "fleet", { "flake.lock": '{"v":2}\n' }, "bump", { branch: "feature" });
  const { data } = await gh.rest.pulls.create({
    owner: "acme",
    repo: "fleet",
    head: "feature",
    base: "main",
    title: "chore(flake): bump",
  });
  return { head, number: data.number, id: data.node_id };
}

const PULL_QUERY = `query ($number: Int!) {
  repository(owner: "acme", name: "fleet") {
    pullRequest(number: $number) { id headRefOid mergeStateStatus state autoMergeRequest { enabledAt mergeMethod } }
  }
}`;

const ENABLE = `mutation ($id: ID!, $mergeMethod: PullRequestMergeMethod!, $head: GitObjectID) {
  enablePullRequestAutoMerge(input: { pullRequestId: $id, mergeMethod: $mergeMethod, expectedHeadOid: $head }) {
    pullRequest { autoMergeRequest { mergeMethod } }
  }
}`;

afterEach(() => fake.assertNoViolations());

describe("GraphQL queries", () => {
  test("branch, tag and default-branch heads of many repositories in one request, by alias", async () => {
    await fake.createRepo("acme", "a", { files: { x: "1" } });
    const aMain = await fake.push("acme", "a", { x: "2" }, "two");
    const aDev = await fake.push("acme", "a", { x: "3" }, "dev", { branch: "dev" });
    await fake.createRepo("acme", "b", { files: { y: "1" }, defaultBranch: "trunk" });
    const bTrunk = await fake.branchSha("acme", "b", "trunk");
    await gh.rest.git.createRef({ owner: "acme", repo: "b", ref: "refs/tags/v1", sha: bTrunk ?? "" });

    const data = await gh.graphql<Record<string, unknown>>(`{
      a: repository(owner: "acme", name: "a") {
        main: defaultBranchRef { name target { oid ... on Commit { committedDate } } }
        dev: ref(qualifiedName: "refs/heads/dev") { target { oid } }
        short: ref(qualifiedName: "dev") { prefix target { oid } }
        none: ref(qualifiedName: "refs/heads/gone") { name }
      }
      b: repository(owner: "acme", name: "b") {
        defaultBranchRef { name target { oid } }
        tag: ref(qualifiedName: "refs/tags/v1") { prefix target { __typename oid } }
        object(expression: "trunk") { oid }
      }
    }`);
    expect(data).toStrictEqual({
      a: {
        main: { name: "main", target: { oid: aMain, committedDate: expect.stringMatching(/^\d{4}-.*Z$/) } },
        dev: { target: { oid: aDev } },
        short: { prefix: "refs/heads/", target: { oid: aDev } },
        none: null,
      },
      b: {
        defaultBranchRef: { name: "trunk", target: { oid: bTrunk } },
        tag: { prefix: "refs/tags/", target: { __typename: "Commit", oid: bTrunk } },
        object: { oid: bTrunk },
      },
    });
    expect(fake.requests.filter((request) => request.operationId === "graphql")).toHaveLength(1);
  });

  test("a missing repository is a NOT_FOUND error on its alias; the others still answer", async () => {
    await fake.createRepo("acme", "a", { files: { x: "1" } });
    const failure = await graphqlFailure(
      gh.graphql(`{
        a: repository(owner: "acme", name: "a") { defaultBranchRef { name } }
        m: repository(owner: "acme", name: "missing") { defaultBranchRef { name } }
      }`),
    );
    expect(failure.data).toStrictEqual({ a: { defaultBranchRef: { name: "main" } }, m: null });
    expect(failure.errors).toStrictEqual([
      {
        type: "NOT_FOUND",
        path: ["m"],
        locations: [{ line: 3, column: 9 }],
        message: "Could not resolve to a Repository with the name 'acme/missing'.",
      },
    ]);
  });

  test("a query GitHub's schema rejects is refused and recorded as a violation", async () => {
    await fake.createRepo("acme", "a", { files: { x: "1" } });
    const answer = await post("/graphql", {
      query: `{ repository(owner: "acme", name: "a") { headOid defaultBranchRef { name } } }`,
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toStrictEqual({
      errors: [
        {
          locations: [{ line: 1, column: 42 }],
          message: 'Cannot query field "headOid" on type "Repository".',
        },
      ],
    });
    expect(fake.violations).toStrictEqual([
      {
        kind: "request",
        method: "POST",
        path: "/graphql",
        operationId: "graphql",
        problems: ['Cannot query field "headOid" on type "Repository".'],
      },
    ]);
    fake.violations.length = 0;
  });

  test("a variable of the wrong type is rejected too", async () => {
    const answer = await post("/graphql", { query: PULL_QUERY, variables: { number: "one" } });
    expect(answer.body).toMatchObject({
      errors: [{ message: expect.stringContaining('Variable "$number" got invalid value "one"') }],
    });
    expect(fake.violations.map((violation) => violation.kind)).toStrictEqual(["request"]);
    fake.violations.length = 0;
  });

  test("GraphQL needs a token; a bad one is 401 like REST", async () => {
    expect((await post("/graphql", { query: "{ viewer { login } }" }, null)).status).toBe(401);
    expect((await post("/graphql", { query: "{ viewer { login } }" }, "ghp_nope")).status).toBe(401);
    expect(await gh.graphql("{ viewer { login } }")).toStrictEqual({
      viewer: { login: "github-actions[bot]" },
    });
  });

  test("GitHub Enterprise's layout: a client on …/api/v3 posts to /api/graphql", async () => {
    await fake.createRepo("acme", "a", { files: { x: "1" } });
    const ghes = new Octokit({ baseUrl: `${fake.apiUrl}/api/v3`, auth: fake.token });
    const data = await ghes.graphql(`{ repository(owner: "acme", name: "a") { name } }`);
    expect(data).toStrictEqual({ repository: { name: "a" } });
    expect(fake.requests.at(-1)?.path).toBe("/api/graphql");
  });

  test("an injected fault answers GraphQL like any endpoint", async () => {
    fake.injectFault({ operationId: "graphql", status: 502 });
    const error = await gh.graphql("{ viewer { login } }").catch((caught: unknown) => caught);
    expect(error).toMatchObject({ status: 502 });
    expect(await gh.graphql("{ viewer { login } }")).toStrictEqual({
      viewer: { login: "github-actions[bot]" },
    });
  });
});

describe("auto-merge and merging", () => {
  test("with required checks: auto-merge is enabled, not merged; passing the checks merges it", async () => {
    const pull = await withPull({ allowAutoMerge: true });
    fake.protectBranch("acme", "fleet", "main", { requiredChecks: ["ci"] });
    const before = await gh.graphql<{ repository: { pullRequest: unknown } }>(PULL_QUERY, {
      number: pull.number,
    });
    expect(before.repository.pullRequest).toStrictEqual({
      id: pull.id,
      headRefOid: pull.head,
      mergeStateStatus: "BLOCKED",
      state: "OPEN",
      autoMergeRequest: null,
    });
    const enabled = await gh.graphql(ENABLE, { id: pull.id, mergeMethod: "SQUASH", head: pull.head });
    expect(enabled).toStrictEqual({
      enablePullRequestAutoMerge: { pullRequest: { autoMergeRequest: { mergeMethod: "SQUASH" } } },
    });
    expect(fake.pulls("acme", "fleet")[0]?.state).toBe("open");
    const rest = await gh.rest.pulls.get({ owner: "acme", repo: "fleet", pull_number: pull.number });
    expect(rest.data.auto_merge?.merge_method).toBe("squash");

    await fake.passChecks("acme", "fleet", pull.head);
    const [merged] = fake.pulls("acme", "fleet");
    expect(merged?.state).toBe("closed");
    const tip = await fake.branchSha("acme", "fleet", "main");
    expect(merged?.merged?.sha).toBe(tip);
    expect(await fake.readFile("acme", "fleet", "main", "flake.lock")).toBe('{"v":2}\n');
    expect(fake.isVerified("acme", "fleet", tip ?? "")).toBe(true);
  });

  test("nothing required: enabling answers GitHub's 'clean status' error; REST merge with the sha merges", async () => {
    const pull = await withPull({ allowAutoMerge: true });
    const failure = await graphqlFailure(
      gh.graphql(ENABLE, { id: pull.id, mergeMethod: "SQUASH", head: null }),
    );
    expect(failure.errors).toMatchObject([
      { type: "UNPROCESSABLE", message: "Pull request Pull request is in clean status" },
    ]);
    const { data } = await gh.rest.pulls.merge({
      owner: "acme",
      repo: "fleet",
      pull_number: pull.number,
      sha: pull.head,
      merge_method: "squash",
    });
    expect(data).toStrictEqual({
      sha: expect.any(String),
      merged: true,
      message: "Pull Request successfully merged",
    });
    expect(await fake.branchSha("acme", "fleet", "main")).toBe(data.sha);
    const rest = await gh.rest.pulls.get({ owner: "acme", repo: "fleet", pull_number: pull.number });
    expect([rest.data.state, rest.data.merged, rest.data.merge_commit_sha]).toStrictEqual([
      "closed",
      true,
      data.sha,
    ]);
  });

  test("auto-merge not allowed by the repository: GitHub's error, nothing changes", async () => {
    const pull = await withPull();
    fake.protectBranch("acme", "fleet", "main", { requiredChecks: ["ci"] });
    const failure = await graphqlFailure(
      gh.graphql(ENABLE, { id: pull.id, mergeMethod: "SQUASH", head: null }),
    );
    expect(failure.errors).toMatchObject([
      {
        type: "UNPROCESSABLE",
        path: ["enablePullRequestAutoMerge"],
        message: "Auto merge is not allowed for this repository",
      },
    ]);
    expect(fake.pulls("acme", "fleet")[0]?.autoMerge).toBeUndefined();
    const repo = await gh.rest.repos.get({ owner: "acme", repo: "fleet" });
    expect(repo.data.allow_auto_merge).toBe(false);
    fake.setRepoSettings("acme", "fleet", { allowAutoMerge: true });
    expect((await gh.rest.repos.get({ owner: "acme", repo: "fleet" })).data.allow_auto_merge).toBe(true);
  });

  test("disabling auto-merge clears it", async () => {
    const pull = await withPull({ allowAutoMerge: true });
    fake.protectBranch("acme", "fleet", "main", { requiredChecks: ["ci"] });
    await gh.graphql(ENABLE, { id: pull.id, mergeMethod: "MERGE", head: null });
    const disabled = await gh.graphql(
      `mutation ($id: ID!) { disablePullRequestAutoMerge(input: { pullRequestId: $id }) { pullRequest { autoMergeRequest { enabledAt } } } }`,
      { id: pull.id },
    );
    expect(disabled).toStrictEqual({
      disablePullRequestAutoMerge: { pullRequest: { autoMergeRequest: null } },
    });
    await fake.passChecks("acme", "fleet", pull.head);
    expect(fake.pulls("acme", "fleet")[0]?.state).toBe("open");
  });

  test("REST merge: 409 when the head moved since the sha, 405 for a method the repository forbids", async () => {
    const pull = await withPull();
    await fake.push("acme", "fleet", { other: "1" }, "human push", { branch: "feature" });
    const moved = await gh.rest.pulls
      .merge({ owner: "acme", repo: "fleet", pull_number: pull.number, sha: pull.head })
      .catch((error: unknown) => error);
    expect(moved).toMatchObject({
      status: 409,
      message: expect.stringContaining("Head branch was modified"),
    });
    fake.setRepoSettings("acme", "fleet", { allowMergeCommit: false });
    const method = await gh.rest.pulls
      .merge({ owner: "acme", repo: "fleet", pull_number: pull.number, merge_method: "merge" })
      .catch((error: unknown) => error);
    expect(method).toMatchObject({
      status: 405,
      message: expect.stringContaining("Merge commits are not allowed"),
    });
    const base = await fake.branchSha("acme", "fleet", "main");
    const { data } = await gh.rest.pulls.merge({
      owner: "acme",
      repo: "fleet",
      pull_number: pull.number,
      merge_method: "rebase",
    });
    const tip = await gh.rest.repos.getCommit({ owner: "acme", repo: "fleet", ref: data.sha });
    expect(tip.data.parents).toHaveLength(1);
    expect(await fake.readFile("acme", "fleet", "main", "other")).toBe("1");
    expect(data.sha).not.toBe(base);
  });
});

describe("branch protection", () => {
  test("a direct ref update on a branch that requires pull requests is refused with 422; nothing moves", async () => {
    await fake.createRepo("acme", "fleet", { files: { "flake.lock": "{}\n" } });
    const base = await fake.branchSha("acme", "fleet", "main");
    const next = await fake.push("acme", "fleet", { "flake.lock": "{ }\n" }, "side", { branch: "side" });
    fake.protectBranch("acme", "fleet", "main", { requirePullRequest: true });
    const refused = await gh.rest.git
      .updateRef({ owner: "acme", repo: "fleet", ref: "heads/main", sha: next })
      .catch((error: unknown) => error);
    expect(refused).toMatchObject({
      status: 422,
      message: expect.stringContaining("Changes must be made through a pull request."),
    });
    expect(await fake.branchSha("acme", "fleet", "main")).toBe(base);
    fake.protectBranch("acme", "fleet", "main", undefined);
    await gh.rest.git.updateRef({ owner: "acme", repo: "fleet", ref: "heads/main", sha: next });
    expect(await fake.branchSha("acme", "fleet", "main")).toBe(next);
  });

  test("required checks: a direct update waits for them on the new commit", async () => {
    await fake.createRepo("acme", "fleet", { files: { "flake.lock": "{}\n" } });
    const next = await fake.push("acme", "fleet", { "flake.lock": "{ }\n" }, "side", { branch: "side" });
    fake.protectBranch("acme", "fleet", "main", { requiredChecks: ["ci"] });
    const refused = await gh.rest.git
      .updateRef({ owner: "acme", repo: "fleet", ref: "heads/main", sha: next })
      .catch((error: unknown) => error);
    expect(refused).toMatchObject({
      status: 422,
      message: expect.stringContaining('Required status check "ci" is expected.'),
    });
    await fake.passChecks("acme", "fleet", next);
    await gh.rest.git.updateRef({ owner: "acme", repo: "fleet", ref: "heads/main", sha: next });
    expect(await fake.branchSha("acme", "fleet", "main")).toBe(next);
  });
});

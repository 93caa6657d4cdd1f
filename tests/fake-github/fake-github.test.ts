import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Octokit as Core } from "@octokit/core";
import { restEndpointMethods } from "@octokit/plugin-rest-endpoint-methods";
import { $ } from "zx";
import { DEFAULT_TOKEN, FakeGitHub, fakeGitHub } from "./index.ts";
import { gitCommit, verification } from "./objects.ts";
import { specValidator } from "./openapi.ts";

const Octokit = Core.plugin(restEndpointMethods);
type Octokit = InstanceType<typeof Octokit>;

let fake: FakeGitHub;
let gh: Octokit;

beforeAll(async () => {
  fake = await fakeGitHub();
});

beforeEach(async () => {
  await fake.reset();
  gh = new Octokit({ baseUrl: fake.apiUrl, auth: fake.token });
});

/** A request straight to the fake, for what Octokit would refuse to send or would hide. */
async function call(method: string, path: string, options: { body?: unknown; token?: string | null } = {}) {
  const headers: Record<string, string> = { accept: "application/vnd.github+json" };
  const token = options.token === undefined ? fake.token : options.token;
  if (token !== null) headers.authorization = `token ${token}`;
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const init: RequestInit = { method, headers };
  if (options.body !== undefined) init.body = JSON.stringify(options.body);
  const response = await fetch(`${fake.apiUrl}${path}`, init);
  const text = await response.text();
  return { status: response.status, body: text === "" ? undefined : JSON.parse(text) };
}

function statusOf(error: unknown): number | undefined {
  return typeof error === "object" && error !== null && "status" in error && typeof error.status === "number"
    ? error.status
    : undefined;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the request to fail");
}

describe("OpenAPI validator on its own", () => {
  test("routes a dispatch to its documented operation", async () => {
    const spec = await specValidator();
    expect(spec.match("POST", "/repos/o/r/dispatches")).toBe("repos/create-dispatch-event");
    expect(spec.match("POST", "/repos/o/r/no-such-thing")).toBeUndefined();
  });

  test("rejects a dispatch body without event_type", async () => {
    const spec = await specValidator();
    const problems = spec.checkRequest("repos/create-dispatch-event", {
      pathParams: { owner: "o", repo: "r" },
      query: {},
      headers: {},
      body: { client_payload: { sha: "abc" } },
    });
    expect(problems.join("\n")).toContain("event_type");
  });

  test("rejects a client_payload with more than 10 top-level keys, as GitHub does", async () => {
    const spec = await specValidator();
    const payload = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`k${i}`, i]));
    const problems = spec.checkRequest("repos/create-dispatch-event", {
      pathParams: { owner: "o", repo: "r" },
      query: {},
      headers: {},
      body: { event_type: "x", client_payload: payload },
    });
    expect(problems.join("\n")).toContain("10");
  });

  test("accepts a create-commit response from the factory, and catches one without node_id", async () => {
    const spec = await specValidator();
    const sha = "a".repeat(40);
    const when = new Date("2026-01-02T03:04:05Z");
    const object = {
      sha,
      tree: "b".repeat(40),
      parents: ["c".repeat(40)],
      author: { name: "A", email: "a@example.com", date: when },
      committer: { name: "A", email: "a@example.com", date: when },
      message: "m\n",
      raw: "",
    };
    const owner = { login: "o", id: 1, type: "User" as const };
    const repo = {
      id: 2,
      owner,
      name: "r",
      private: false,
      description: null,
      defaultBranch: "main",
      createdAt: when,
      pushedAt: when,
      parent: undefined,
    };
    const site = { api: "http://127.0.0.1:1", html: "https://localhost" };
    const good = gitCommit(site, repo, object, verification(object, when));
    expect(spec.checkResponse("git/create-commit", 201, good)).toStrictEqual([]);

    const { node_id: _dropped, ...withoutNodeId } = good;
    expect(spec.checkResponse("git/create-commit", 201, withoutNodeId).join("\n")).toContain("node_id");
  });

  test("catches a wrongly formatted uri and an undocumented status", async () => {
    const spec = await specValidator();
    const blob = { sha: "a".repeat(40), url: "http://127.0.0.1:1/repos/o/r/git/blobs/x" };
    expect(spec.checkResponse("git/create-blob", 201, blob)).toStrictEqual([]);
    const label = {
      id: 1,
      node_id: "x",
      url: "not a uri",
      name: "n",
      description: null,
      color: "ededed",
      default: false,
    };
    expect(spec.checkResponse("issues/create-label", 201, label).join("\n")).toContain("uri");
    expect(spec.checkResponse("git/create-blob", 418, {}).join("\n")).toContain("not documented");
  });

  test("loads GitHub's description in reasonable time", async () => {
    const spec = await specValidator();
    // Measured ≈ 0.4 s on the 2-core CI machine; a regression to several seconds would slow every run.
    expect(spec.loadMs).toBeLessThan(5000);
  });
});

describe("request and response checking in the server", () => {
  afterEach(() => {
    // These tests provoke violations on purpose; leave the shared fake clean.
    fake.violations.length = 0;
  });

  test("a dispatch without event_type is rejected with a 422 that names the problem", async () => {
    await fake.createRepo("o", "down", { files: { "flake.nix": "{}" } });
    const response = await call("POST", "/repos/o/down/dispatches", { body: { client_payload: {} } });
    expect(response.status).toBe(422);
    expect(response.body.message).toContain("event_type");
    expect(fake.violations.map((violation) => violation.kind)).toStrictEqual(["request"]);
    expect(fake.dispatches).toHaveLength(0);
    expect(() => fake.assertNoViolations()).toThrow("event_type");
  });

  test("an undocumented path and a documented but unimplemented one are both violations", async () => {
    await fake.createRepo("o", "r", { files: { a: "a" } });
    expect((await call("GET", "/repos/o/r/not-an-endpoint")).status).toBe(404);
    expect((await call("GET", "/repos/o/r/branches")).status).toBe(404);
    expect(fake.violations.map((violation) => [violation.kind, violation.operationId])).toStrictEqual([
      ["undocumented", undefined],
      ["unimplemented", "repos/list-branches"],
    ]);
  });

  test("a response the fake builds without a required field is answered as an error and recorded", async () => {
    const broken = await FakeGitHub.start({
      httpsPort: 0,
      handlers: {
        "git/create-blob": async () => ({ status: 201, body: { sha: "a".repeat(40) } }),
      },
    });
    try {
      await broken.createRepo("o", "r", { files: { a: "a" } });
      const client = new Octokit({ baseUrl: broken.apiUrl, auth: broken.token, request: { retries: 0 } });
      const error = await rejection(client.rest.git.createBlob({ owner: "o", repo: "r", content: "x" }));
      expect(statusOf(error)).toBe(500);
      expect(String(error)).toContain("url");
      expect(broken.violations.map((violation) => violation.kind)).toStrictEqual(["response"]);
    } finally {
      await broken.stop();
    }
  });

  test("a correct Octokit call goes through clean", async () => {
    await fake.createRepo("o", "down", { files: { "flake.nix": "{}" } });
    await gh.rest.repos.createDispatchEvent({
      owner: "o",
      repo: "down",
      event_type: "flake-input-updated",
      client_payload: { repository: "o/up", sha: "a".repeat(40), ref: "refs/heads/main" },
    });
    fake.assertNoViolations();
    expect(fake.dispatches).toMatchObject([
      { owner: "o", repo: "down", event_type: "flake-input-updated", sender: "github-actions[bot]" },
    ]);
    expect(fake.requests.map((request) => [request.operationId, request.status])).toStrictEqual([
      ["repos/create-dispatch-event", 204],
    ]);
    const event = fake.repositoryDispatchEvent(fake.dispatches[0] ?? expect.unreachable());
    expect(event).toMatchObject({
      action: "flake-input-updated",
      branch: "main",
      client_payload: { ref: "refs/heads/main" },
    });
    expect(event.repository.full_name).toBe("o/down");
  });
});

describe("GitHub behaviour", () => {
  afterEach(() => fake.assertNoViolations());

  test("authentication: bad token 401, anonymous reads of public repos, private repos hidden", async () => {
    await fake.createRepo("o", "public", { files: { a: "a" } });
    await fake.createRepo("o", "secret", { files: { a: "a" }, private: true });
    const bad = await call("GET", "/repos/o/public", { token: "nope" });
    expect(bad).toMatchObject({ status: 401, body: { message: "Bad credentials" } });
    expect((await call("GET", "/repos/o/public", { token: null })).status).toBe(200);
    expect((await call("GET", "/repos/o/secret", { token: null })).status).toBe(404);
    expect((await call("GET", "/repos/o/secret")).status).toBe(200);
    const write = await call("POST", "/repos/o/public/dispatches", {
      token: null,
      body: { event_type: "x" },
    });
    expect(write).toMatchObject({ status: 401, body: { message: "Requires authentication" } });
    fake.addToken("ghp_alice", "alice");
    await call("POST", "/repos/o/public/dispatches", { token: "ghp_alice", body: { event_type: "x" } });
    expect(fake.dispatches.map((dispatch) => dispatch.sender)).toStrictEqual(["alice"]);
    expect(DEFAULT_TOKEN).toBe(fake.token);
  });

  test("404s use GitHub's error shape", async () => {
    const missing = await call("GET", "/repos/o/nowhere");
    expect(missing.status).toBe(404);
    expect(missing.body).toStrictEqual({
      message: "Not Found",
      documentation_url: "https://docs.github.com/rest/repos/repos#get-a-repository",
      status: "404",
    });
    await fake.createRepo("o", "r", { files: { a: "a" } });
    const ref = await rejection(gh.rest.git.getRef({ owner: "o", repo: "r", ref: "heads/nope" }));
    expect(statusOf(ref)).toBe(404);
    const commit = await rejection(gh.rest.repos.getCommit({ owner: "o", repo: "r", ref: "nope" }));
    expect(statusOf(commit)).toBe(422);
  });

  test("commits/{ref} resolves branches, HEAD and short SHAs to real git SHAs", async () => {
    await fake.createRepo("o", "up", { files: { "flake.nix": "{}" } });
    const sha = await fake.push("o", "up", { "sub/lib.nix": "1" }, "add lib");
    for (const ref of ["main", "HEAD", sha, sha.slice(0, 7), "refs/heads/main"]) {
      const { data } = await gh.rest.repos.getCommit({ owner: "o", repo: "up", ref });
      expect(data.sha).toBe(sha);
    }
    const { data } = await gh.rest.repos.getCommit({ owner: "o", repo: "up", ref: sha });
    expect(data.commit.message).toBe("add lib\n");
    expect(data.files?.map((file) => [file.filename, file.status])).toStrictEqual([["sub/lib.nix", "added"]]);
    const tree = (
      await $({ cwd: fake.repo("o", "up").gitDir })`git rev-parse ${`${sha}^{tree}`}`
    ).stdout.trim();
    expect(data.commit.tree.sha).toBe(tree);
  });

  test("compare reports ahead, behind, identical and diverged with commits oldest first", async () => {
    await fake.createRepo("o", "up", { files: { a: "0" } });
    const one = await fake.push("o", "up", { a: "1" }, "one");
    const two = await fake.push("o", "up", { a: "2" }, "two");
    const side = await fake.push("o", "up", { b: "side" }, "side", { branch: "side" });
    const three = await fake.push("o", "up", { a: "3" }, "three");
    const compare = async (basehead: string) =>
      (await gh.rest.repos.compareCommitsWithBasehead({ owner: "o", repo: "up", basehead })).data;

    const ahead = await compare(`${one}...main`);
    expect([ahead.status, ahead.ahead_by, ahead.behind_by, ahead.total_commits]).toStrictEqual([
      "ahead",
      2,
      0,
      2,
    ]);
    expect(ahead.commits.map((commit) => commit.sha)).toStrictEqual([two, three]);
    expect(ahead.files?.map((file) => file.filename)).toStrictEqual(["a"]);
    const behind = await compare(`main...${one}`);
    expect([behind.status, behind.ahead_by, behind.behind_by, behind.commits]).toStrictEqual([
      "behind",
      0,
      2,
      [],
    ]);
    expect((await compare(`${three}...main`)).status).toBe("identical");
    const diverged = await compare("main...side");
    expect([diverged.status, diverged.ahead_by, diverged.behind_by]).toStrictEqual(["diverged", 1, 1]);
    expect(diverged.merge_base_commit.sha).toBe(two);
    expect((await compare(`${one}...side`)).commits.map((commit) => commit.sha)).toStrictEqual([two, side]);
  });

  test("a fork-only commit is served through the parent, but is not on the parent's branch", async () => {
    await fake.createRepo("upstream", "lib", { files: { "flake.nix": "{}" } });
    const base = await fake.branchSha("upstream", "lib", "main");
    const fork = await fake.createRepo("mallory", "lib", { forkOf: "upstream/lib" });
    expect(await fake.branchSha("mallory", "lib", "main")).toBe(base);
    const evil = await fake.push("mallory", "lib", { "flake.nix": "{ evil = true; }" }, "evil");

    const { data: commit } = await gh.rest.repos.getCommit({ owner: "upstream", repo: "lib", ref: evil });
    expect(commit.sha).toBe(evil);
    const { data: reachable } = await gh.rest.repos.compareCommitsWithBasehead({
      owner: "upstream",
      repo: "lib",
      basehead: `${evil}...main`,
    });
    // The dispatched SHA is not contained in main: main is *behind* it, so it is not upstream's code.
    expect([reachable.status, reachable.behind_by]).toStrictEqual(["behind", 1]);
    const { data: repo } = await gh.rest.repos.get({ owner: "mallory", repo: "lib" });
    expect([repo.fork, repo.parent?.full_name]).toStrictEqual([true, "upstream/lib"]);
    expect(fork.parent?.fullName).toBe("upstream/lib");

    await fake.createRepo("other", "unrelated", { files: { a: "a" } });
    const foreign = await rejection(
      gh.rest.repos.getCommit({ owner: "other", repo: "unrelated", ref: evil }),
    );
    expect(statusOf(foreign)).toBe(422);
  });

  test("Git Data API: a verified commit with a nested flake.lock, on a branch a test can clone", async () => {
    await fake.createRepo("o", "down", {
      files: { "flake.nix": "{}", "sub/flake.lock": "old\n", "README.md": "hi" },
    });
    const { data: ref } = await gh.rest.git.getRef({ owner: "o", repo: "down", ref: "heads/main" });
    const { data: base } = await gh.rest.git.getCommit({
      owner: "o",
      repo: "down",
      commit_sha: ref.object.sha,
    });
    const { data: tree } = await gh.rest.git.createTree({
      owner: "o",
      repo: "down",
      base_tree: base.tree.sha,
      tree: [{ path: "sub/flake.lock", mode: "100644", type: "blob", content: "new\n" }],
    });
    expect(tree.tree.map((entry) => entry.path).sort()).toStrictEqual(["README.md", "flake.nix", "sub"]);
    const { data: commit } = await gh.rest.git.createCommit({
      owner: "o",
      repo: "down",
      message: "chore(flake): update up",
      tree: tree.sha,
      parents: [base.sha],
    });
    expect(commit.verification?.verified).toBe(true);
    expect(commit.author.name).toBe("github-actions[bot]");
    expect(fake.isVerified("o", "down", commit.sha)).toBe(true);
    await gh.rest.git.createRef({
      owner: "o",
      repo: "down",
      ref: "refs/heads/flake-bump/up",
      sha: commit.sha,
    });
    const again = await rejection(
      gh.rest.git.createRef({ owner: "o", repo: "down", ref: "refs/heads/flake-bump/up", sha: commit.sha }),
    );
    expect(statusOf(again)).toBe(422);

    const dir = await mkdtemp(join(tmpdir(), "fake-github-clone-"));
    try {
      await $({ quiet: true })`git clone --quiet --branch flake-bump/up ${fake.cloneUrl("o", "down")} ${dir}`;
      expect(await readFile(join(dir, "sub/flake.lock"), "utf8")).toBe("new\n");
      expect(await readFile(join(dir, "README.md"), "utf8")).toBe("hi");
      const head = (await $({ cwd: dir })`git rev-parse HEAD`).stdout.trim();
      expect(head).toBe(commit.sha);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    expect(await fake.readFile("o", "down", "flake-bump/up", "sub/flake.lock")).toBe("new\n");
  });

  test("Git Data API: a gitlink (mode 160000) pins a commit of another repository, as git stores a submodule", async () => {
    await fake.createRepo("o", "pins", { files: { "flake.nix": "{}" } });
    const head = await fake.branchSha("o", "pins", "main");
    const { data: base } = await gh.rest.git.getCommit({ owner: "o", repo: "pins", commit_sha: head ?? "" });
    // GitHub does not look the pinned commit up: it lives in the submodule's repository.
    const pinned = "5".repeat(40);
    const { data: tree } = await gh.rest.git.createTree({
      owner: "o",
      repo: "pins",
      base_tree: base.tree.sha,
      tree: [{ path: "vendor/lib", mode: "160000", type: "commit", sha: pinned }],
    });
    const { data: listed } = await gh.rest.git.getTree({
      owner: "o",
      repo: "pins",
      tree_sha: tree.sha,
      recursive: "1",
    });
    expect(listed.tree.map(({ path, mode, type, sha }) => ({ path, mode, type, sha }))).toStrictEqual([
      { path: "flake.nix", mode: "100644", type: "blob", sha: expect.any(String) },
      { path: "vendor", mode: "040000", type: "tree", sha: expect.any(String) },
      { path: "vendor/lib", mode: "160000", type: "commit", sha: pinned },
    ]);
    const { data: top } = await gh.rest.git.getTree({ owner: "o", repo: "pins", tree_sha: tree.sha });
    expect(top.tree.map((entry) => entry.path)).toStrictEqual(["flake.nix", "vendor"]);
    const { data: commit } = await gh.rest.git.createCommit({
      owner: "o",
      repo: "pins",
      message: "pin lib",
      tree: tree.sha,
      parents: [base.sha],
    });
    await gh.rest.git.updateRef({ owner: "o", repo: "pins", ref: "heads/main", sha: commit.sha });
    const dir = await mkdtemp(join(tmpdir(), "fake-github-clone-"));
    try {
      await $({ quiet: true })`git clone --quiet ${fake.cloneUrl("o", "pins")} ${dir}`;
      const entry = (await $({ cwd: dir, quiet: true })`git ls-tree HEAD vendor/lib`).stdout.trim();
      expect(entry).toBe(`160000 commit ${pinned}\tvendor/lib`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const missing = await rejection(
      gh.rest.git.getTree({ owner: "o", repo: "pins", tree_sha: "6".repeat(40) }),
    );
    expect(statusOf(missing)).toBe(404);
  });

  test("a commit with an explicit author is not verified; deleting a path with sha null works", async () => {
    await fake.createRepo("o", "r", { files: { keep: "k", drop: "d" } });
    const head = await fake.branchSha("o", "r", "main");
    const { data: base } = await gh.rest.git.getCommit({ owner: "o", repo: "r", commit_sha: head ?? "" });
    const { data: tree } = await gh.rest.git.createTree({
      owner: "o",
      repo: "r",
      base_tree: base.tree.sha,
      tree: [{ path: "drop", mode: "100644", type: "blob", sha: null }],
    });
    expect(tree.tree.map((entry) => entry.path)).toStrictEqual(["keep"]);
    const { data: commit } = await gh.rest.git.createCommit({
      owner: "o",
      repo: "r",
      message: "m",
      tree: tree.sha,
      parents: [base.sha],
      author: { name: "Someone", email: "someone@example.com", date: "2026-01-01T00:00:00Z" },
    });
    expect(commit.verification?.verified).toBe(false);
    expect(commit.author.date).toBe("2026-01-01T00:00:00Z");
  });

  test("refs: fast-forward only unless forced, like GitHub", async () => {
    await fake.createRepo("o", "r", { files: { a: "1" } });
    const first = await fake.branchSha("o", "r", "main");
    const second = await fake.push("o", "r", { a: "2" }, "two", { branch: "feature" });
    const refOf = (ref: string) => ({ owner: "o", repo: "r", ref });
    await gh.rest.git.updateRef({ ...refOf("heads/main"), sha: second });
    const back = await rejection(gh.rest.git.updateRef({ ...refOf("heads/main"), sha: first ?? "" }));
    expect(statusOf(back)).toBe(422);
    expect(String(back)).toContain("Update is not a fast forward");
    await gh.rest.git.updateRef({ ...refOf("heads/main"), sha: first ?? "", force: true });
    expect(await fake.branchSha("o", "r", "main")).toBe(first);
    await gh.rest.git.deleteRef(refOf("heads/feature"));
    expect(await fake.branchSha("o", "r", "feature")).toBeUndefined();
    expect(statusOf(await rejection(gh.rest.git.deleteRef(refOf("heads/feature"))))).toBe(422);
  });

  test("pulls: one open PR per head, no PR without commits, filters, update, close on branch delete", async () => {
    await fake.createRepo("o", "down", { files: { "flake.lock": "{}" } });
    await fake.push("o", "down", { "flake.lock": "{ }" }, "bump", { branch: "flake-bump/up" });
    await fake.push("o", "down", { other: "x" }, "other", { branch: "other" });
    const repo = { owner: "o", repo: "down" };
    const { data: pull } = await gh.rest.pulls.create({
      ...repo,
      title: "t",
      head: "flake-bump/up",
      base: "main",
      body: "b",
    });
    expect([pull.number, pull.state, pull.commits, pull.head.ref, pull.base.ref]).toStrictEqual([
      1,
      "open",
      1,
      "flake-bump/up",
      "main",
    ]);

    const duplicate = await rejection(
      gh.rest.pulls.create({ ...repo, title: "t", head: "flake-bump/up", base: "main" }),
    );
    expect(statusOf(duplicate)).toBe(422);
    expect(String(duplicate)).toContain("A pull request already exists for o:flake-bump/up.");

    const { data: second } = await gh.rest.pulls.create({
      ...repo,
      title: "other",
      head: "other",
      base: "main",
    });
    const heads = async (head: string) =>
      (await gh.rest.pulls.list({ ...repo, head, state: "open" })).data.map((item) => item.number);
    expect(await heads("o:flake-bump/up")).toStrictEqual([pull.number]);
    // GitHub ignores a head filter without "owner:" and lists everything.
    expect(await heads("flake-bump/up")).toStrictEqual([second.number, pull.number]);

    const { data: updated } = await gh.rest.pulls.update({
      ...repo,
      pull_number: pull.number,
      title: "t2",
      body: "b2",
    });
    expect([updated.title, updated.body]).toStrictEqual(["t2", "b2"]);
    await gh.rest.pulls.requestReviewers({ ...repo, pull_number: pull.number, reviewers: ["alice"] });
    await gh.rest.issues.addLabels({
      ...repo,
      issue_number: pull.number,
      labels: ["dependencies", "automated"],
    });
    await gh.rest.issues.createComment({ ...repo, issue_number: pull.number, body: "Superseded." });
    const [state] = fake.pulls("o", "down");
    expect(state?.labels.map((label) => label.name)).toStrictEqual(["dependencies", "automated"]);
    expect(state?.requestedReviewers.map((account) => account.login)).toStrictEqual(["alice"]);
    expect(fake.comments("o", "down", pull.number)).toStrictEqual(["Superseded."]);

    await gh.rest.git.deleteRef({ ...repo, ref: "heads/flake-bump/up" });
    const { data: closed } = await gh.rest.pulls.get({ ...repo, pull_number: pull.number });
    expect(closed.state).toBe("closed");
    expect(await heads("o:flake-bump/up")).toStrictEqual([]);
  });

  test("a PR whose head has no commits beyond base is refused", async () => {
    await fake.createRepo("o", "r", { files: { a: "a" } });
    const main = await fake.branchSha("o", "r", "main");
    await gh.rest.git.createRef({ owner: "o", repo: "r", ref: "refs/heads/same", sha: main ?? "" });
    const error = await rejection(
      gh.rest.pulls.create({ owner: "o", repo: "r", title: "t", head: "same", base: "main" }),
    );
    expect(statusOf(error)).toBe(422);
    expect(String(error)).toContain("No commits between main and same");
  });

  test("refs and paths with slashes work written out or percent-encoded", async () => {
    await fake.createRepo("o", "r", { files: { "sub/flake.lock": "{}" } });
    const sha = await fake.push("o", "r", { x: "x" }, "x", { branch: "feature/x" });
    for (const path of ["/repos/o/r/git/ref/heads/feature/x", "/repos/o/r/git/ref/heads%2Ffeature%2Fx"]) {
      expect(await call("GET", path)).toMatchObject({
        status: 200,
        body: { ref: "refs/heads/feature/x", object: { sha } },
      });
    }
    for (const path of ["/repos/o/r/contents/sub/flake.lock", "/repos/o/r/contents/sub%2Fflake.lock"]) {
      expect(await call("GET", path)).toMatchObject({ status: 200, body: { path: "sub/flake.lock" } });
    }
    expect(await call("GET", "/repos/o/r/commits/feature/x")).toMatchObject({ status: 200, body: { sha } });
  });

  test("labels: list, create, duplicate refused", async () => {
    await fake.createRepo("o", "r", { files: { a: "a" } });
    await gh.rest.issues.createLabel({ owner: "o", repo: "r", name: "automated", color: "ededed" });
    const duplicate = await rejection(
      gh.rest.issues.createLabel({ owner: "o", repo: "r", name: "Automated" }),
    );
    expect(statusOf(duplicate)).toBe(422);
    const { data } = await gh.rest.issues.listLabelsForRepo({ owner: "o", repo: "r" });
    expect(data.map((label) => label.name)).toStrictEqual(["automated"]);
  });

  test("contents: JSON envelope and raw media type", async () => {
    await fake.createRepo("o", "r", { files: { "sub/flake.lock": '{"version":7}\n' } });
    const { data } = await gh.rest.repos.getContent({ owner: "o", repo: "r", path: "sub/flake.lock" });
    if (Array.isArray(data) || data.type !== "file") throw new Error("expected a file");
    expect(Buffer.from(data.content, "base64").toString()).toBe('{"version":7}\n');
    const raw = await gh.rest.repos.getContent({
      owner: "o",
      repo: "r",
      path: "sub/flake.lock",
      mediaType: { format: "raw" },
    });
    expect(String(raw.data)).toBe('{"version":7}\n');
    expect(statusOf(await rejection(gh.rest.repos.getContent({ owner: "o", repo: "r", path: "nope" })))).toBe(
      404,
    );
  });

  test("tarball redirects to an archive of the real repo", async () => {
    await fake.createRepo("o", "up", { files: { "flake.nix": "{}" } });
    const sha = await fake.branchSha("o", "up", "main");
    const { data } = await gh.rest.repos.downloadTarballArchive({ owner: "o", repo: "up", ref: "main" });
    const dir = await mkdtemp(join(tmpdir(), "fake-github-tar-"));
    try {
      if (!(data instanceof ArrayBuffer)) throw new Error("expected the tarball's bytes");
      await writeFile(join(dir, "a.tar.gz"), Buffer.from(data));
      const listing = (await $({ cwd: dir })`tar tzf a.tar.gz`).stdout.split("\n");
      // GitHub names the top directory OWNER-REPO-SHORTSHA.
      expect(listing).toContain(`o-up-${sha?.slice(0, 7)}/flake.nix`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("injected faults answer matching requests, then run out", async () => {
    await fake.createRepo("o", "r", { files: { a: "a" } });
    fake.injectFault({ operationId: "repos/get", status: 503 });
    expect((await call("GET", "/repos/o/r")).status).toBe(503);
    expect((await call("GET", "/repos/o/r")).status).toBe(200);
    expect(fake.requests.map((request) => request.fault)).toStrictEqual([true, false]);
  });
});

describe("the HTTPS side Nix uses", () => {
  afterEach(() => fake.assertNoViolations());

  async function curl(url: string): Promise<string> {
    return (
      await $({ quiet: true })`curl --silent --show-error --fail --location --cacert ${fake.certFile} ${url}`
    ).stdout;
  }

  test("serves commits and tarballs on api.localhost (Nix 2.8) and localhost/api/v3 (newer Nix)", async () => {
    await fake.createRepo("owner", "up", { files: { "flake.nix": "{}" } });
    const sha = await fake.branchSha("owner", "up", "main");
    for (const base of ["https://api.localhost", "https://localhost/api/v3"]) {
      const commit: unknown = JSON.parse(await curl(`${base}/repos/owner/up/commits/HEAD`));
      expect(commit).toMatchObject({ sha, commit: { tree: { sha: expect.any(String) } } });
    }
    const listing = (
      await $({
        quiet: true,
      })`curl -sSfL --cacert ${fake.certFile} ${`https://localhost/api/v3/repos/owner/up/tarball/${sha}`} | tar tz`
    ).stdout;
    expect(listing.split("\n")).toContain(`owner-up-${sha?.slice(0, 7)}/flake.nix`);
    expect(fake.requests.every((request) => request.listener === "nix")).toBe(true);
  });

  test("real Nix locks a github: input against the fake", async () => {
    await fake.createRepo("owner", "up", { files: { "flake.nix": "{ outputs = _: { answer = 41; }; }\n" } });
    const first = await fake.branchSha("owner", "up", "main");
    const dir = await mkdtemp(join(tmpdir(), "fake-github-nix-"));
    try {
      await writeFile(join(dir, "registry.json"), '{"flakes":[],"version":2}');
      await writeFile(
        join(dir, "flake.nix"),
        '{ inputs.up.url = "github:owner/up?host=localhost"; outputs = { self, up }: { answer = up.answer + 1; }; }\n',
      );
      const env = {
        ...process.env,
        NIX_CONFIG: `experimental-features = nix-command flakes\nflake-registry = ${join(dir, "registry.json")}\ntarball-ttl = 0`,
        NIX_SSL_CERT_FILE: fake.certFile,
        XDG_CACHE_HOME: join(dir, "cache"),
      };
      await $({ cwd: dir, env, quiet: true })`nix flake lock`;
      const lock = JSON.parse(await readFile(join(dir, "flake.lock"), "utf8"));
      expect(lock.nodes.up.locked).toMatchObject({
        type: "github",
        owner: "owner",
        repo: "up",
        rev: first,
        host: "localhost",
      });

      const second = await fake.push(
        "owner",
        "up",
        { "flake.nix": "{ outputs = _: { answer = 42; }; }\n" },
        "answer",
      );
      await $({ cwd: dir, env, quiet: true })`nix flake lock --update-input up`;
      const updated = JSON.parse(await readFile(join(dir, "flake.lock"), "utf8"));
      expect(updated.nodes.up.locked.rev).toBe(second);
      expect((await $({ cwd: dir, env, quiet: true })`nix eval .#answer`).stdout.trim()).toBe("43");
      expect(fake.requests.filter((request) => request.operationId === "repos/get-commit")).toHaveLength(2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

afterAll(() => {
  fake.assertNoViolations();
});

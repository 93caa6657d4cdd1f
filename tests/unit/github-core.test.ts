/**
 * The GitHub side of the core, in process against a fake GitHub of this file's own (REST only, an
 * ephemeral port): the target check bump.ts runs before pinning a dispatched SHA, the freshness
 * question that spares Nix on a quiet night, and the sentences real Octokit errors become.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, spyOn, test } from "bun:test";
import { checkFreshness, type Freshness, nothingAnswered } from "../../lib/bump/freshness.ts";
import type { GitHubSource } from "../../lib/flake/flakeref.ts";
import type { LockNode } from "../../lib/flake/lock.ts";
import { createOctokit, describeGitHubError, type Octokit, statusOf } from "../../lib/github/client.ts";
import { type Compared, targetCheck } from "../../lib/github/upstream.ts";
import { type FakeGitHub, localFakeGitHub } from "../fake-github/index.ts";
import { countingFetch } from "../support/net.ts";

let fake: FakeGitHub;
let octokit: Octokit;
/** acme/nixfleet's main, oldest first. */
let main: string[];
/** A commit only on acme/nixfleet's branch `feature`, forked from main[1]. */
let feature: string;
/** A commit only in the fork someone/nixfleet. */
let forkOnly: string;

const SOURCE: GitHubSource = { owner: "acme", repo: "nixfleet" };
const UNKNOWN = "0123456789abcdef0123456789abcdef01234567";
const flake = (n: number) => ({ "flake.nix": `{ outputs = _: { version = ${n}; }; }\n` });

beforeAll(async () => {
  fake = await localFakeGitHub();
  octokit = createOctokit({ baseUrl: fake.apiUrl, token: fake.token, waitScale: 0 });
  await fake.createRepo("acme", "nixfleet", { files: flake(0) });
  main = [(await fake.branchSha("acme", "nixfleet", "main")) ?? ""];
  main.push(await fake.push("acme", "nixfleet", flake(1), "change 1"));
  // `feature` leaves main at main[1]; main then moves on, so the two have diverged.
  feature = await fake.push("acme", "nixfleet", flake(10), "wip", { branch: "feature" });
  for (let i = 2; i <= 3; i++) main.push(await fake.push("acme", "nixfleet", flake(i), `change ${i}`));
  await fake.createRepo("someone", "nixfleet", { forkOf: "acme/nixfleet" });
  forkOnly = await fake.push("someone", "nixfleet", flake(99), "not upstream");
  await fake.createRepo("acme", "secret", { files: flake(0), private: true });
});
afterAll(() => fake?.stop());
beforeEach(() => {
  fake.requests.length = 0;
  fake.faults.length = 0;
});

const at = (i: number) => main[i] ?? "";

describe("targetCheck: may a dispatched SHA be locked?", () => {
  const check = (args: { rev: string; lockedRev?: string; source?: GitHubSource }, client = octokit) =>
    targetCheck(client, { authenticated: true })({
      input: "nixfleet",
      source: args.source ?? SOURCE,
      lockedRev: args.lockedRev,
      rev: args.rev,
    });

  test("a newer commit on the default branch: ok, after asking for the branch and comparing twice", async () => {
    expect(await check({ rev: at(3), lockedRev: at(1) })).toBe("ok");
    expect(fake.requests.map((r) => r.operationId)).toStrictEqual([
      "repos/get",
      "repos/compare-commits",
      "repos/compare-commits",
    ]);
  });

  test("the compare of the locked rev and the SHA is handed on with its changed files, asked once", async () => {
    const answers: Compared[] = [];
    const verdict = await targetCheck(octokit, { authenticated: true })({
      input: "nixfleet",
      source: SOURCE,
      lockedRev: at(1),
      rev: at(3),
      compared: (answer) => answers.push(answer),
    });
    expect(verdict).toBe("ok");
    expect(
      answers.map((answer) => ({ ...answer, files: answer.files.map((file) => file.filename) })),
    ).toStrictEqual([{ from: at(1), to: at(3), status: "ahead", files: ["flake.nix"] }]);
    expect(fake.requests.map((r) => r.operationId)).toStrictEqual([
      "repos/get",
      "repos/compare-commits",
      "repos/compare-commits",
    ]);
  });

  test("no compare of the locked rev (first lock, or already ahead): nothing is handed on", async () => {
    const answers: Compared[] = [];
    const run = (rev: string, lockedRev?: string) =>
      targetCheck(octokit, { authenticated: true })({
        input: "nixfleet",
        source: SOURCE,
        lockedRev,
        rev,
        compared: (answer) => answers.push(answer),
      });
    expect([await run(at(2)), await run(at(1), at(3))]).toStrictEqual(["ok", "ahead"]);
    expect(answers).toStrictEqual([]);
  });

  test("the first lock of an input (nothing locked yet): ok after one compare", async () => {
    expect(await check({ rev: at(2) })).toBe("ok");
  });

  test("an older commit than the locked one: ahead (dispatches arrive out of order)", async () => {
    expect(await check({ rev: at(1), lockedRev: at(3) })).toBe("ahead");
  });

  test("an input that tracks a branch is checked against that branch, without asking for the default", async () => {
    expect(await check({ rev: feature, lockedRev: at(1), source: { ...SOURCE, ref: "feature" } })).toBe("ok");
    expect(fake.requests.map((r) => r.operationId)).not.toContain("repos/get");
  });

  const refusals: [string, () => string, RegExp][] = [
    [
      "a commit only on another branch",
      () => feature,
      /^commit [0-9a-f]{40} is not on branch 'main' of acme\/nixfleet \(a fork's or an unpushed commit\); refusing to lock it as 'nixfleet' — dispatch a commit from that branch$/,
    ],
    ["a commit that exists only in a fork", () => forkOnly, /is not on branch 'main' of acme\/nixfleet/],
    [
      "a commit GitHub does not know",
      () => UNKNOWN,
      /^commit 0123456789abcdef0123456789abcdef01234567 or repository acme\/nixfleet is unknown to GitHub \(404\); dispatch a commit that exists on the tracked branch, or give the token read access to acme\/nixfleet$/,
    ],
  ];
  test.each(refusals)("refused: %s", async (_name, rev, message) => {
    await expect(check({ rev: rev(), lockedRev: at(1) })).rejects.toThrow(message);
  });

  test("a locked commit that diverged from the branch (history rewritten): a runtime error naming the fix", async () => {
    await expect(check({ rev: at(3), lockedRev: feature })).rejects.toThrow(
      /^commit [0-9a-f]{40} and the locked [0-9a-f]{12} of 'nixfleet' have diverged \(was acme\/nixfleet's history rewritten\?\); bump it by hand with 'bun scripts\/bump\.ts nixfleet --rev [0-9a-f]{40}' after checking$/,
    );
  });

  test("without a token a private repository cannot be asked: warn once and let the bump go on", async () => {
    const anonymous = createOctokit({ baseUrl: fake.apiUrl, waitScale: 0 });
    const stderr = spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      const verdict = await targetCheck(anonymous, { authenticated: false })({
        input: "secret",
        source: { owner: "acme", repo: "secret" },
        lockedRev: undefined,
        rev: UNKNOWN,
      });
      expect(verdict).toBe("ok");
      expect(stderr.mock.calls.map(([line]) => String(line))).toStrictEqual([
        "warning: could not verify 0123456789ab against acme/secret without a token (404); set GH_TOKEN to check that dispatched commits are on the tracked branch\n",
      ]);
    } finally {
      stderr.mockRestore();
    }
  });

  test.each([
    { token: "without a token", authenticated: false },
    { token: "with a token", authenticated: true },
  ])("no answer at all ($token): an error naming the cause and --no-verify, never a warning", async (c) => {
    const unreachable = createOctokit({ baseUrl: "https://api.flake-bump-test.invalid", waitScale: 0 });
    const stderr = spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      await expect(
        targetCheck(unreachable, { authenticated: c.authenticated })({
          input: "nixfleet",
          source: { owner: "acme", repo: "nixfleet" },
          lockedRev: undefined,
          rev: UNKNOWN,
        }),
      ).rejects.toThrow(
        /^could not verify commit 0123456789ab against acme\/nixfleet: cannot resolve api\.flake-bump-test\.invalid \(DNS lookup failed: (ENOTFOUND|EAI_AGAIN)\) \(GET \/repos\/acme\/nixfleet\); check the network or GITHUB_API_URL, or pass --no-verify to lock it without checking that it is on the tracked branch$/,
      );
      expect(stderr.mock.calls).toStrictEqual([]);
    } finally {
      stderr.mockRestore();
    }
  });

  test("a token GitHub rejects is an error, not a warning", async () => {
    const bad = createOctokit({
      baseUrl: fake.apiUrl,
      token: "ghp_notAValidToken000000000000000000",
      waitScale: 0,
    });
    await expect(check({ rev: at(3) }, bad)).rejects.toThrow(
      /^GitHub rejected the token while trying to verify commit [0-9a-f]{12} against acme\/nixfleet \(401 Bad credentials, GET \/repos\/acme\/nixfleet\); set a valid GH_TOKEN or GITHUB_TOKEN$/,
    );
  });
});

describe("checkFreshness: which inputs are behind, without Nix", () => {
  const github = (rev: string, ref?: string): LockNode => ({
    locked: { type: "github", owner: "acme", repo: "nixfleet", rev },
    original:
      ref === undefined
        ? { type: "github", owner: "acme", repo: "nixfleet" }
        : { type: "github", owner: "acme", repo: "nixfleet", ref },
  });

  test("current, behind, behind on a tracked branch, unknown repository, and a git input", async () => {
    const answers = await checkFreshness(
      [
        { name: "current", node: github(at(3)) },
        { name: "behind", node: github(at(1)) },
        { name: "feature", node: github(at(1), "feature") },
        {
          name: "missing",
          node: {
            locked: { type: "github", owner: "acme", repo: "missing", rev: UNKNOWN },
            original: { type: "github", owner: "acme", repo: "missing" },
          },
        },
        {
          name: "plain-git",
          node: {
            locked: { type: "git", url: fake.cloneUrl("acme", "nixfleet"), rev: at(2) },
            original: { type: "git", url: fake.cloneUrl("acme", "nixfleet"), ref: "main" },
          },
        },
        {
          name: "local",
          node: { locked: { type: "path", path: "/nix/store/x" }, original: { type: "path", path: "./x" } },
        },
      ],
      { octokit },
    );
    expect(answers).toStrictEqual([
      { name: "current", status: "current", rev: at(3) },
      { name: "behind", status: "outdated", rev: at(1), latest: at(3) },
      { name: "feature", status: "outdated", rev: at(1), latest: feature },
      {
        name: "missing",
        status: "unknown",
        reason: "GitHub answered: Could not resolve to a Repository with the name 'acme/missing'.",
      },
      { name: "plain-git", status: "outdated", rev: at(2), latest: at(3) },
      { name: "local", status: "unknown", reason: "a 'path' input is checked by Nix only" },
    ]);
    // One GraphQL request answers every GitHub input at once.
    expect(fake.requests.map((r) => r.operationId)).toStrictEqual(["graphql"]);
  });

  test("without a client GitHub inputs are unknown and nothing is asked", async () => {
    expect(await checkFreshness([{ name: "x", node: github(at(1)) }], {})).toStrictEqual([
      { name: "x", status: "unknown", reason: "no GitHub client" },
    ]);
    expect(fake.requests).toHaveLength(0);
  });
});

describe("checkFreshness when GitHub cannot be reached", () => {
  const node = (repo: string): LockNode => ({
    locked: { type: "github", owner: "acme", repo, rev: at(1) },
    original: { type: "github", owner: "acme", repo },
  });

  test("an unresolvable host: every GitHub input fails with the cause, and REST (same host) is not tried", async () => {
    const tries = countingFetch();
    const unreachable = createOctokit({
      baseUrl: "https://api.flake-bump-test.invalid",
      waitScale: 0,
      fetch: tries.fetch,
    });
    const warned: string[] = [];
    const answers = await checkFreshness(
      [
        { name: "a", node: node("a") },
        { name: "b", node: node("b") },
      ],
      { octokit: unreachable, warn: (line) => warned.push(line) },
    );
    expect(answers.map((answer) => answer.status)).toStrictEqual(["unknown", "unknown"]);
    for (const answer of answers) {
      if (answer.status !== "unknown") continue;
      expect(answer.reason).toMatch(
        /^cannot resolve api\.flake-bump-test\.invalid \(DNS lookup failed: \w+\)$/,
      );
      expect(answer.failure).toMatch(
        /^could not ask GitHub for the heads of 2 input\(s\): cannot resolve api\.flake-bump-test\.invalid .*; check the network or GITHUB_API_URL$/,
      );
    }
    expect(warned).toStrictEqual([]);
    // The GraphQL request and its one retry; no REST request per input.
    expect(tries.count()).toBe(2);
  });
});

describe("nothingAnswered: may --check tell anything?", () => {
  interface Case {
    name: string;
    answers: Freshness[];
    expected: string | undefined;
  }
  const failed: Freshness = {
    name: "a",
    status: "unknown",
    reason: "r",
    failure: "could not ask: cause; fix",
  };
  const cases: Case[] = [
    {
      name: "every input failed to be asked: the first failure",
      answers: [failed, { ...failed, name: "b" }],
      expected: "could not ask: cause; fix",
    },
    {
      name: "failures beside inputs only Nix can check: still nothing answered",
      answers: [failed, { name: "p", status: "unknown", reason: "a 'path' input is checked by Nix only" }],
      expected: "could not ask: cause; fix",
    },
    {
      name: "some answered, some failed: a partial answer",
      answers: [failed, { name: "c", status: "current", rev: UNKNOWN }],
      expected: undefined,
    },
    {
      name: "nothing failed, only Nix can tell (not found): no error",
      answers: [{ name: "g", status: "unknown", reason: "GitHub has no repository acme/g" }],
      expected: undefined,
    },
    { name: "no inputs", answers: [], expected: undefined },
  ];
  test.each(cases)("$name", ({ answers, expected }) => {
    expect(nothingAnswered(answers)).toStrictEqual(expected);
  });
});

describe("describeGitHubError: real Octokit errors from the fake become one sentence", () => {
  async function failureOf(call: (client: Octokit) => Promise<unknown>, client = octokit): Promise<unknown> {
    try {
      await call(client);
    } catch (error) {
      return error;
    }
    throw new Error("the call did not fail");
  }

  interface Case {
    name: string;
    setup?: () => void;
    client?: () => Octokit;
    call: (client: Octokit) => Promise<unknown>;
    repo?: string;
    status: number;
    message: RegExp;
  }
  const getRepo = (client: Octokit) => client.rest.repos.get({ owner: "acme", repo: "nixfleet" });
  const cases: Case[] = [
    {
      name: "401: a token GitHub does not know",
      client: () =>
        createOctokit({ baseUrl: fake.apiUrl, token: "ghp_unknownToken00000000000000000000", waitScale: 0 }),
      call: getRepo,
      status: 401,
      message:
        /^GitHub rejected the token while trying to read it \(401 Bad credentials, GET \/repos\/acme\/nixfleet\); set a valid GH_TOKEN or GITHUB_TOKEN$/,
    },
    {
      name: "404 with a repository named: not found or no write access",
      call: (client) =>
        client.rest.repos.createDispatchEvent({
          owner: "acme",
          repo: "missing",
          event_type: "flake-input-updated",
        }),
      repo: "acme/missing",
      status: 404,
      message:
        /^acme\/missing not found, or the token cannot write to it \(a fine-grained token needs Contents: read and write on it\) \(POST \/repos\/acme\/missing\/dispatches\); check the name and the token's repository access$/,
    },
    {
      name: "403: refused",
      setup: () => fake.injectFault({ operationId: "repos/get", status: 403 }),
      call: getRepo,
      status: 403,
      message:
        /^GitHub refused to read it \(403: Injected fault 403\) \(GET \/repos\/acme\/nixfleet\); wait for the rate limit to reset or check the token's permissions, then rerun$/,
    },
    {
      name: "422: a ref that already exists",
      call: (client) =>
        client.rest.git.createRef({ owner: "acme", repo: "nixfleet", ref: "refs/heads/main", sha: at(0) }),
      status: 422,
      message:
        /^GitHub refused to read it \(422: Reference already exists\) \(POST \/repos\/acme\/nixfleet\/git\/refs\)$/,
    },
    {
      name: "another 4xx is GitHub's answer, not trouble on GitHub's side",
      setup: () => fake.injectFault({ operationId: "repos/get", status: 410 }),
      call: getRepo,
      status: 410,
      message: /^GitHub refused to read it \(410: Injected fault 410\) \(GET \/repos\/acme\/nixfleet\)$/,
    },
    {
      name: "500 on every retry",
      setup: () => fake.injectFault({ operationId: "repos/get", status: 500, times: 4 }),
      call: getRepo,
      status: 500,
      message:
        /^could not read it: Injected fault 500 \(HTTP 500\) \(GET \/repos\/acme\/nixfleet\); GitHub may be having trouble — rerun later, it is safe to repeat$/,
    },
  ];

  test.each(cases)("$name", async (c) => {
    c.setup?.();
    const error = await failureOf(c.call, c.client?.() ?? octokit);
    expect(statusOf(error)).toBe(c.status);
    const described = describeGitHubError(error, "read it", c.repo);
    expect(described.name).toBe("RuntimeError");
    expect(described.message).toMatch(c.message);
    expect(described.message).not.toContain("\n");
    expect(described.message).not.toContain(fake.token);
    fake.assertNoViolations();
  });

  test("nothing listens: names the host and the refusal, not GitHub", async () => {
    const gone = await localFakeGitHub();
    const url = gone.apiUrl;
    await gone.stop();
    const client = createOctokit({ baseUrl: url, token: fake.token, waitScale: 0, requestTimeoutMs: 2000 });
    const error = await failureOf(getRepo, client);
    expect(statusOf(error)).toBe(0);
    expect(describeGitHubError(error, "read it").message).toBe(
      `could not read it: ${new URL(url).host} refused the connection (ECONNREFUSED) (GET /repos/acme/nixfleet); check the network or GITHUB_API_URL`,
    );
  });

  test("a host name that does not resolve: names the host and DNS", async () => {
    const client = createOctokit({ baseUrl: "https://api.flake-bump-test.invalid", waitScale: 0 });
    const error = await failureOf(getRepo, client);
    expect(describeGitHubError(error, "read it").message).toMatch(
      /^could not read it: cannot resolve api\.flake-bump-test\.invalid \(DNS lookup failed: (ENOTFOUND|EAI_AGAIN)\) \(GET \/repos\/acme\/nixfleet\); check the network or GITHUB_API_URL$/,
    );
  });

  test("no answer in time: names the host and the network, not GitHub", async () => {
    const hung = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Promise<Response>(() => {}) });
    try {
      const client = createOctokit({
        baseUrl: `http://127.0.0.1:${hung.port}`,
        waitScale: 0,
        requestTimeoutMs: 50,
      });
      const error = await failureOf(getRepo, client);
      expect(describeGitHubError(error, "read it").message).toBe(
        `could not read it: no answer from 127.0.0.1:${hung.port} (The operation timed out.) (GET /repos/acme/nixfleet); check the network (or GITHUB_API_URL), then rerun — it is safe to repeat`,
      );
    } finally {
      await hung.stop(true);
    }
  });
});

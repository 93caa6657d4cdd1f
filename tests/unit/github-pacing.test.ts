/**
 * The client's request rules (lib/github/client.ts), in process against a fake GitHub of this file's own:
 * which failures are asked again and after how long, which are final, and how writes are spaced.
 * A recording clock takes the waits, so GitHub's minutes cost nothing and every wait is exact.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, spyOn, test } from "bun:test";
import { type Clock, createOctokit, type Octokit, statusOf, unreachableOf } from "../../lib/github/client.ts";
import { type FakeGitHub, type Fault, localFakeGitHub } from "../fake-github/index.ts";
import { countingFetch, UNRESOLVABLE } from "../support/net.ts";

const REPO = { owner: "acme", repo: "fleet" };
/** A fixed "now" (seconds), so that rate-limit resets are exact. */
const NOW = 1_800_000_000;

let fake: FakeGitHub;
let pullNumber = 0;

beforeAll(async () => {
  fake = await localFakeGitHub();
  await fake.createRepo(REPO.owner, REPO.repo, { files: { "flake.nix": "{ }\n" } });
  await fake.push(REPO.owner, REPO.repo, { "flake.lock": "{}\n" }, "lock", { branch: "topic" });
});
afterAll(() => fake?.stop());
beforeEach(() => {
  fake.requests.length = 0;
  fake.faults.length = 0;
  fake.violations.length = 0;
});

/** A clock that records each wait and moves on by it, instead of sleeping. */
function recordingClock(): { clock: Clock; waits: number[] } {
  let now = NOW * 1000;
  const waits: number[] = [];
  return {
    waits,
    clock: {
      now: () => now,
      sleep: async (ms) => {
        waits.push(ms);
        now += ms;
      },
    },
  };
}

function client(waitScale = 1, fetchImpl?: typeof fetch): { octokit: Octokit; waits: number[] } {
  const { clock, waits } = recordingClock();
  const octokit = createOctokit({
    baseUrl: fake.apiUrl,
    token: fake.token,
    waitScale,
    clock,
    ...(fetchImpl === undefined ? {} : { fetch: fetchImpl }),
  });
  return { octokit, waits };
}

/** Runs `fn` with stderr captured; returns its warning lines. */
async function warnings(fn: () => Promise<unknown>): Promise<string[]> {
  const stderr = spyOn(process.stderr, "write").mockImplementation(() => true);
  try {
    await fn();
    return stderr.mock.calls.map(([line]) => String(line));
  } finally {
    stderr.mockRestore();
  }
}

const getRepo = (octokit: Octokit) => octokit.rest.repos.get(REPO);
const asked = () => fake.requests.filter((r) => r.operationId === "repos/get").length;

const secondary = (headers: Record<string, string>): Fault => ({
  operationId: "repos/get",
  status: 403,
  headers,
  body: {
    message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
    documentation_url: "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
  },
});

const primary = (times = 1): Fault => ({
  operationId: "repos/get",
  status: 403,
  times,
  headers: {
    "x-ratelimit-limit": "5000",
    "x-ratelimit-remaining": "0",
    "x-ratelimit-reset": String(NOW + 5),
    "x-ratelimit-resource": "core",
  },
  body: { message: "API rate limit exceeded for installation ID 1." },
});

describe("server errors and dropped connections: asked again after 1, 4 and 9 s", () => {
  test("one 502, then the answer", async () => {
    fake.injectFault({ operationId: "repos/get", status: 502 });
    const { octokit, waits } = client();
    expect((await getRepo(octokit)).data.name).toBe("fleet");
    expect(waits).toStrictEqual([1000]);
    expect(asked()).toBe(2);
  });

  test("four 503s: three retries, then GitHub's status reaches the caller", async () => {
    fake.injectFault({ operationId: "repos/get", status: 503, times: 4 });
    const { octokit, waits } = client();
    const error = await getRepo(octokit).catch((e: unknown) => e);
    expect(statusOf(error)).toBe(503);
    expect(waits).toStrictEqual([1000, 4000, 9000]);
    expect(asked()).toBe(4);
  });

  test("no answer in time (a server that hangs): the full schedule, then status 0", async () => {
    const hung = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Promise<Response>(() => {}) });
    try {
      const tries = countingFetch();
      const { clock, waits } = recordingClock();
      const octokit = createOctokit({
        baseUrl: `http://127.0.0.1:${hung.port}`,
        clock,
        fetch: tries.fetch,
        requestTimeoutMs: 50,
      });
      const error = await getRepo(octokit).catch((e: unknown) => e);
      expect(statusOf(error)).toBe(0);
      expect(unreachableOf(error)).toBeUndefined();
      expect(waits).toStrictEqual([1000, 4000, 9000]);
      expect(tries.count()).toBe(4);
    } finally {
      await hung.stop(true);
    }
  });

  test("a 429 without any rate-limit header is retried like a server error", async () => {
    fake.injectFault({ operationId: "repos/get", status: 429 });
    const { octokit, waits } = client();
    expect((await getRepo(octokit)).data.name).toBe("fleet");
    expect(waits).toStrictEqual([1000]);
  });

  test("waits scale with waitScale, and 0 never waits", async () => {
    fake.injectFault({ operationId: "repos/get", status: 500, times: 2 });
    const half = client(0.5);
    await getRepo(half.octokit);
    expect(half.waits).toStrictEqual([500, 2000]);
    fake.injectFault({ operationId: "repos/get", status: 500, times: 2 });
    const none = client(0);
    await getRepo(none.octokit);
    expect(none.waits).toStrictEqual([]);
    expect(asked()).toBe(6);
  });
});

describe("an unreachable API host is not transient: asked once more after 1 s, then named", () => {
  // Real failures, as Bun's fetch reports them: a name in the reserved .invalid domain (RFC 6761)
  // never resolves (ENOTFOUND; EAI_AGAIN where no resolver is reachable), and nothing listens on a
  // port of a server that was just stopped (ECONNREFUSED).
  const cases = [
    {
      name: "a name that does not resolve",
      url: async () => `https://${UNRESOLVABLE}`,
      cause: "dns" as const,
      host: UNRESOLVABLE,
      codes: ["ENOTFOUND", "EAI_AGAIN"],
    },
    {
      name: "a port nothing listens on",
      url: async () => {
        const gone = await localFakeGitHub();
        const url = gone.apiUrl;
        await gone.stop();
        return url;
      },
      cause: "refused" as const,
      host: "",
      codes: ["ECONNREFUSED"],
    },
  ];
  test.each(cases)("$name", async (c) => {
    const url = await c.url();
    const tries = countingFetch();
    const { clock, waits } = recordingClock();
    const octokit = createOctokit({ baseUrl: url, token: fake.token, clock, fetch: tries.fetch });
    const error = await getRepo(octokit).catch((e: unknown) => e);
    expect(statusOf(error)).toBe(0);
    const unreachable = unreachableOf(error);
    expect(unreachable?.cause).toBe(c.cause);
    expect(c.codes).toContain(unreachable?.code ?? "");
    expect(unreachable?.host).toBe(c.host || new URL(url).host);
    expect(waits).toStrictEqual([1000]);
    expect(tries.count()).toBe(2);
  });

  test("a GraphQL request is held to the same rule", async () => {
    const tries = countingFetch();
    const { clock, waits } = recordingClock();
    const octokit = createOctokit({
      baseUrl: `https://${UNRESOLVABLE}`,
      clock,
      fetch: tries.fetch,
    });
    const error = await octokit.graphql("query { viewer { login } }").catch((e: unknown) => e);
    expect(unreachableOf(error)?.cause).toBe("dns");
    expect(waits).toStrictEqual([1000]);
    expect(tries.count()).toBe(2);
  });
});

describe("final answers are not asked again", () => {
  test.each([400, 401, 403, 404, 405, 409, 410, 422, 451])("%d", async (status) => {
    fake.injectFault({ operationId: "repos/get", status });
    const { octokit, waits } = client();
    const error = await getRepo(octokit).catch((e: unknown) => e);
    expect(statusOf(error)).toBe(status);
    expect(waits).toStrictEqual([]);
    expect(asked()).toBe(1);
  });
});

describe("rate limits: wait as long as GitHub says, and say so", () => {
  const said = (kind: string, seconds: number) =>
    `warning: GitHub ${kind} for GET /repos/{owner}/{repo}; retrying in ${seconds}s\n`;
  const limits = [
    {
      name: "a secondary rate limit with retry-after waits that long",
      fault: () => secondary({ "retry-after": "7" }),
      waits: [7000],
      line: said("secondary rate limit", 7),
    },
    {
      name: "a secondary rate limit naming no time waits a minute",
      fault: () => secondary({}),
      waits: [60_000],
      line: said("secondary rate limit", 60),
    },
    {
      name: "a 429 with retry-after waits that long",
      fault: (): Fault => ({ operationId: "repos/get", status: 429, headers: { "retry-after": "2" } }),
      waits: [2000],
      line: said("secondary rate limit", 2),
    },
    {
      name: "the primary limit waits until one second past x-ratelimit-reset",
      fault: () => primary(),
      waits: [6000],
      line: said("rate limit", 6),
    },
  ];
  test.each(limits)("$name", async ({ fault, waits, line }) => {
    fake.injectFault(fault());
    const run = client();
    expect(await warnings(() => getRepo(run.octokit))).toStrictEqual([line]);
    expect(run.waits).toStrictEqual(waits);
    expect(asked()).toBe(2);
  });

  test("still limited after three waits: gives up, says so, and the 403 reaches the caller", async () => {
    fake.injectFault(primary(4));
    const { octokit, waits } = client();
    let error: unknown;
    const said = await warnings(async () => {
      error = await getRepo(octokit).catch((e: unknown) => e);
    });
    expect(statusOf(error)).toBe(403);
    expect(asked()).toBe(4);
    // After the first wait the clock is past the reset GitHub named, so the next asks wait no more.
    expect(waits).toStrictEqual([6000]);
    expect(said.at(-1)).toBe("warning: GitHub rate limit for GET /repos/{owner}/{repo}; giving up\n");
  });
});

describe("GraphQL failures GitHub answers with 200", () => {
  const query = (octokit: Octokit) =>
    octokit.graphql<{ repository: { name: string } }>(
      "query($owner: String!, $name: String!) { repository(owner: $owner, name: $name) { name } }",
      { owner: REPO.owner, name: REPO.repo },
    );

  test("RATE_LIMITED waits for the reset, then asks again", async () => {
    fake.injectFault({
      operationId: "graphql",
      status: 200,
      headers: { "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(NOW + 30) },
      body: { data: null, errors: [{ type: "RATE_LIMITED", message: "API rate limit exceeded" }] },
    });
    const { octokit, waits } = client();
    let name = "";
    const said = await warnings(async () => {
      name = (await query(octokit)).repository.name;
    });
    expect(name).toBe("fleet");
    expect(waits).toStrictEqual([31_000]);
    expect(said).toStrictEqual(["warning: GitHub rate limit for POST /graphql; retrying in 31s\n"]);
  });

  test("'Something went wrong while executing your query' is asked again", async () => {
    fake.injectFault({
      operationId: "graphql",
      status: 200,
      body: {
        data: null,
        errors: [{ message: "Something went wrong while executing your query. Please try again later." }],
      },
    });
    const { octokit, waits } = client();
    expect((await query(octokit)).repository.name).toBe("fleet");
    expect(waits).toStrictEqual([1000]);
  });

  test("any other GraphQL error is the caller's to read, not retried", async () => {
    const { octokit, waits } = client();
    await expect(
      octokit.graphql('query { repository(owner: "acme", name: "missing") { name } }'),
    ).rejects.toThrow(/Could not resolve to a Repository/);
    expect(waits).toStrictEqual([]);
  });
});

describe("pacing", () => {
  test("reads never wait; writes start 1 s apart, writes that notify people 3 s apart", async () => {
    const { octokit, waits } = client();
    await getRepo(octokit);
    await getRepo(octokit);
    expect(waits).toStrictEqual([]);
    await octokit.rest.git.createBlob({ ...REPO, content: "a" });
    await octokit.rest.git.createBlob({ ...REPO, content: "b" });
    expect(waits).toStrictEqual([1000]);
    const { data: pull } = await octokit.rest.pulls.create({
      ...REPO,
      head: "topic",
      base: "main",
      title: "t",
    });
    pullNumber = pull.number;
    await octokit.rest.issues.createComment({ ...REPO, issue_number: pullNumber, body: "c" });
    // The comment: one second after the PR as a write, then two more to be 3 s after it.
    expect(waits).toStrictEqual([1000, 1000, 1000, 2000]);
    await getRepo(octokit);
    expect(waits).toHaveLength(4);
  });

  test("no more than ten requests at once", async () => {
    let inFlight = 0;
    let most = 0;
    const counting = Object.assign(
      async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
        inFlight++;
        most = Math.max(most, inFlight);
        try {
          return await fetch(input, init);
        } finally {
          inFlight--;
        }
      },
      { preconnect: fetch.preconnect },
    );
    fake.injectFault({ operationId: "repos/get", delayMs: 20, times: 25 });
    const { octokit } = client(1, counting);
    const names = await Promise.all(Array.from({ length: 25 }, () => getRepo(octokit)));
    expect(names.map((r) => r.data.name)).toStrictEqual(Array(25).fill("fleet"));
    expect(most).toBe(10);
  });
});

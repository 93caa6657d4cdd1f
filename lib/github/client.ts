/**
 * One thin typed Octokit: core + REST methods + GitHub's documented rules for spacing writes and
 * retrying rate limits and server errors. Only an entry script's main() builds it; everything else
 * receives it as a parameter.
 *
 * The rules are a request hook of this file's own. plugin-retry and plugin-throttling implement them
 * through Bottleneck, whose queues yield with `setTimeout(0)` several times per request: ~16 ms a
 * request on loopback with nothing to wait for, more than the request itself.
 * (https://docs.github.com/rest/using-the-rest-api/best-practices-for-using-the-rest-api,
 * https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api)
 */
import { Octokit as Core } from "@octokit/core";
import { type RestEndpointMethodTypes, restEndpointMethods } from "@octokit/plugin-rest-endpoint-methods";
import pkg from "../../package.json" with { type: "json" };
import { info, warn } from "../core/actions.ts";
import { RuntimeError, UsageError } from "../core/errors.ts";
import { fullName, type GitHubRepository } from "../core/ids.ts";
import { githubToken, registerSecret } from "../core/secrets.ts";

const Client = Core.plugin(restEndpointMethods);
export type Octokit = InstanceType<typeof Client>;
export type { RestEndpointMethodTypes };

// --- pacing and retries ------------------------------------------------------------------------

/** Time as the pacing sees it; tests pass a clock that records waits instead of sleeping. */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

interface PacingOptions {
  /** Multiplies every wait; 1 follows GitHub's guidance, 0 never waits (a local fake). */
  scale: number;
  clock: Clock;
  /** Told about every rate limit met, before waiting (or giving up). */
  onRateLimit: (limit: RateLimitWait) => void;
}

interface RateLimitWait {
  kind: "rate limit" | "secondary rate limit";
  method: string;
  url: string;
  /** Seconds GitHub asked to wait (before scaling). */
  seconds: number;
  retrying: boolean;
}

/**
 * How often one request is asked again after a rate limit, after a server error or a dropped
 * connection, and after finding the host unreachable (its name does not resolve, or nothing listens):
 * that is a wrong GITHUB_API_URL or no network, which waiting minutes does not mend, so it is asked
 * once more (a resolver's passing EAI_AGAIN) and then reported.
 */
const RATE_LIMIT_RETRIES = 3;
const SERVER_ERROR_RETRIES = 3;
const UNREACHABLE_RETRIES = 1;
/** Seconds to wait on a secondary rate limit that names no time ("wait at least one minute"). */
const SECONDARY_FALLBACK_SECONDS = 60;
/** Concurrent requests per client: GitHub asks for serial requests; lists fan out a little. */
const MAX_CONCURRENT = 10;

/**
 * Spacing between the starts of requests of one kind, in seconds. GitHub: "wait at least one second
 * between each" POST/PATCH/PUT/DELETE; writes that notify people (issues, pull requests, comments,
 * reviews) count against the content-creation limit (80 a minute), so they are spaced 3 s; search
 * has its own limit of 30 a minute.
 */
const SPACING = { write: 1, notify: 3, search: 2 } as const;

// Route templates (the hook sees `/repos/{owner}/{repo}/pulls`) whose writes notify people.
const NOTIFYING =
  /^\/repos\/\{owner\}\/\{repo\}\/(issues(\/\{issue_number\}\/comments)?|pulls(\/\{pull_number\}\/(comments|reviews|requested_reviewers|merge))?|commits\/\{commit_sha\}\/comments|releases)$/;

type Lane = keyof typeof SPACING;

interface Route {
  method: string;
  url: string;
}

function lanesOf({ method, url }: Route): Lane[] {
  if (method === "GET" || method === "HEAD") return url.startsWith("/search/") ? ["search"] : [];
  // A GraphQL query is a POST, and GitHub counts mutations among writes; treat every one as a write.
  if (url.endsWith("/graphql")) return ["write"];
  return NOTIFYING.test(url) ? ["write", "notify"] : ["write"];
}

type Headers = Record<string, string | number | undefined>;

/** The parts of a failed answer the rules read. */
interface Answer {
  /** HTTP status; 0 when there was no answer at all. */
  status: number;
  headers: Headers;
  message: string;
  /** `type` of each GraphQL error in a 200 answer. */
  graphqlTypes: string[];
  /** Set when no answer could come: the API's host does not resolve, or refuses the connection. */
  unreachable?: Unreachable | undefined;
}

function recordOf(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null ? Object.fromEntries(Object.entries(value)) : undefined;
}

function headersOf(value: unknown): Headers {
  const headers: Headers = {};
  for (const [name, header] of Object.entries(recordOf(value) ?? {})) {
    if (typeof header === "string" || typeof header === "number") headers[name] = header;
  }
  return headers;
}

function answerOf(error: unknown): Answer {
  return {
    status: statusOf(error),
    headers: headersOf(recordOf(recordOf(error)?.response)?.headers),
    message: error instanceof Error ? error.message : String(error),
    graphqlTypes: [],
    unreachable: unreachableOf(error),
  };
}

// GitHub answers some GraphQL failures with 200 and an `errors` list: a rate limit (type
// RATE_LIMITED), or "Something went wrong while executing your query", which is worth asking again.
const TRANSIENT_GRAPHQL = /Something went wrong while executing your query/;

/** A 200 GraphQL answer that is a rate limit or a transient failure, read as the failure it is. */
function graphqlFailureOf(response: { data: unknown; headers: unknown }): Answer | undefined {
  const errors = recordOf(response.data)?.errors;
  if (!Array.isArray(errors) || errors.length === 0) return undefined;
  const types = errors.map((error) => String(recordOf(error)?.type ?? ""));
  const message = String(recordOf(errors[0])?.message ?? "");
  // As a 403 (GitHub's REST status for a rate limit) or a 502, so that the error a caller finally
  // sees reads as what happened.
  const status = types.includes("RATE_LIMITED") ? 403 : TRANSIENT_GRAPHQL.test(message) ? 502 : 0;
  if (status === 0) return undefined;
  return { status, headers: headersOf(response.headers), message, graphqlTypes: types };
}

/** What to do about one failed answer: wait this many seconds and ask again, or give up. */
type Verdict =
  | { retry: "rate limit" | "secondary rate limit"; seconds: number }
  | { retry: "server"; seconds: number }
  | { retry: false };

function headerNumber(headers: Headers, name: string): number | undefined {
  const value = headers[name];
  if (value === undefined || value === "") return undefined;
  const number = Number(value);
  return Number.isFinite(number) && number >= 0 ? number : undefined;
}

/** GitHub's reading of a 403/429 or a GraphQL RATE_LIMITED: which limit, and how long to wait. */
function rateLimitOf(answer: Answer, now: number): Verdict | undefined {
  const { status, headers, message } = answer;
  if (status !== 403 && status !== 429) return undefined;
  const retryAfter = headerNumber(headers, "retry-after");
  const reset = headerNumber(headers, "x-ratelimit-reset");
  const exhausted =
    headers["x-ratelimit-remaining"] === "0" ||
    headers["x-ratelimit-remaining"] === 0 ||
    answer.graphqlTypes.includes("RATE_LIMITED");
  // One second past the reset: asking at the reset itself can still be refused. No reset time:
  // GitHub's fallback, "wait for at least one minute".
  const untilReset = () =>
    reset === undefined ? SECONDARY_FALLBACK_SECONDS : Math.max(Math.ceil(reset - now / 1000) + 1, 0);
  if (/\bsecondary rate limit\b/i.test(message)) {
    const seconds = retryAfter ?? (exhausted ? untilReset() : SECONDARY_FALLBACK_SECONDS);
    return { retry: "secondary rate limit", seconds };
  }
  if (exhausted) return { retry: "rate limit", seconds: untilReset() };
  if (retryAfter !== undefined) return { retry: "secondary rate limit", seconds: retryAfter };
  // A 403 with no sign of a limit is a permission answer; a bare 429 is retried as a server error.
  return status === 403 ? { retry: false } : undefined;
}

/**
 * Retryable: no answer at all (reset, timed out), a 5xx, 408 and a bare 429, with waits of 1, 4 and
 * 9 s; an unreachable host once, after 1 s. Every other 4xx is GitHub's final word (405 and 409 on a
 * merge are answers).
 */
function serverErrorOf(answer: Answer, retries: number): Verdict {
  const { status } = answer;
  const retryable = status === 0 || status >= 500 || status === 408 || status === 429;
  const limit = answer.unreachable === undefined ? SERVER_ERROR_RETRIES : UNREACHABLE_RETRIES;
  if (!retryable || retries >= limit) return { retry: false };
  return { retry: "server", seconds: (retries + 1) ** 2 };
}

/** Runs at most `limit` tasks at once, the rest in arrival order. */
class Gate {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.running++;
    try {
      return await task();
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }
}

/**
 * Installs the rules on `octokit`: requests of a lane start at least its spacing apart (in arrival
 * order), at most ten run at once, and failures are asked again as GitHub documents.
 */
function pace(octokit: Core, options: PacingOptions): void {
  const { scale, clock } = options;
  const wait = (seconds: number) => (seconds * scale > 0 ? clock.sleep(seconds * 1000 * scale) : undefined);
  // Per lane: when the last request started, and the queue of requests waiting for their turn.
  const lanes = new Map<Lane, { last: number; turn: Promise<void> }>();
  const gate = new Gate(MAX_CONCURRENT);

  const takeTurn = (lane: Lane): Promise<void> => {
    const state = lanes.get(lane) ?? { last: Number.NEGATIVE_INFINITY, turn: Promise.resolve() };
    lanes.set(lane, state);
    const turn = state.turn.then(async () => {
      const gap = state.last + SPACING[lane] * 1000 * scale - clock.now();
      if (gap > 0) await clock.sleep(gap);
      state.last = clock.now();
    });
    state.turn = turn;
    return turn;
  };

  octokit.hook.wrap("request", async (request, route) => {
    const laneList = scale > 0 ? lanesOf(route) : [];
    let rateLimits = 0;
    let serverErrors = 0;
    for (;;) {
      for (const lane of laneList) await takeTurn(lane);
      let answer: Answer;
      let failure: unknown;
      try {
        const response = await gate.run(async () => await request(route));
        const graphql = graphqlFailureOf(response);
        if (graphql === undefined) return response;
        answer = graphql;
        failure = Object.assign(new Error(graphql.message), { status: graphql.status, response });
      } catch (error) {
        answer = answerOf(error);
        failure = error;
      }
      const verdict = rateLimitOf(answer, clock.now()) ?? serverErrorOf(answer, serverErrors);
      if (verdict.retry === false) throw failure;
      if (verdict.retry === "server") {
        serverErrors++;
      } else {
        const retrying = rateLimits < RATE_LIMIT_RETRIES;
        options.onRateLimit({
          kind: verdict.retry,
          method: route.method,
          url: route.url,
          seconds: verdict.seconds,
          retrying,
        });
        if (!retrying) throw failure;
        rateLimits++;
      }
      await wait(verdict.seconds);
    }
  });
}

// --- the client ----------------------------------------------------------------------------------

export interface ClientOptions {
  token?: string | undefined;
  /** REST API root: `GITHUB_API_URL` (GitHub Enterprise Server, tests' fake) or api.github.com. */
  baseUrl?: string | undefined;
  fetch?: typeof fetch;
  /**
   * Scales every wait (retry backoff, retry-after, spacing between writes). 1 follows GitHub's
   * guidance; a GitHub Enterprise Server without rate limits, or a local fake, may use less.
   */
  waitScale?: number;
  /** Abort any single request after this long (a hung connection must not hang the run). */
  requestTimeoutMs?: number;
  /** What waiting means; tests record the waits instead of sleeping. */
  clock?: Clock;
}

function withTimeout(fetchImpl: typeof fetch, ms: number): typeof fetch {
  const timed = (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) =>
    fetchImpl(input, { ...init, signal: init?.signal ?? AbortSignal.timeout(ms) });
  return Object.assign(timed, { preconnect: fetchImpl.preconnect });
}

export function createOctokit(opts: ClientOptions = {}): Octokit {
  registerSecret(opts.token);
  const octokit = new Client({
    auth: opts.token,
    baseUrl: (opts.baseUrl ?? "https://api.github.com").replace(/\/+$/, ""),
    userAgent: `flake-bump/${pkg.version}`,
    request: { fetch: withTimeout(opts.fetch ?? fetch, opts.requestTimeoutMs ?? 30_000) },
    log: {
      debug: () => {},
      info: () => {},
      warn: (m: string) => info(`warning: ${m}`),
      error: (m: string) => info(m),
    },
  });
  pace(octokit, {
    scale: opts.waitScale ?? 1,
    clock: opts.clock ?? systemClock,
    onRateLimit: ({ kind, method, url, seconds, retrying }) =>
      warn(`GitHub ${kind} for ${method} ${url}; ${retrying ? `retrying in ${seconds}s` : "giving up"}`),
  });
  return octokit;
}

/**
 * A number from an environment knob, or `fallback` when it is unset or empty. A value that is not a
 * number in range is a UsageError: silently using the default would hide the typo.
 */
export function numberFromEnv(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: number,
  range: { min: number; exclusive?: boolean; meaning: string },
): number {
  const text = env[name]?.trim();
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  const low = range.exclusive ? value > range.min : value >= range.min;
  if (!Number.isFinite(value) || !low) {
    throw new UsageError(
      `${name}='${text}' is not ${range.meaning}; set it to such a number or unset it for the default (${fallback})`,
    );
  }
  return value;
}

/** Build the client from the environment, the way the gh CLI and Actions do. */
export function octokitFromEnv(env: NodeJS.ProcessEnv = process.env): Octokit {
  return createOctokit({
    token: githubToken(env),
    baseUrl: env.GITHUB_API_URL,
    waitScale: numberFromEnv(env, "FLAKE_BUMP_WAIT_SCALE", 1, { min: 0, meaning: "a number ≥ 0" }),
    requestTimeoutMs: numberFromEnv(env, "FLAKE_BUMP_REQUEST_TIMEOUT_MS", 30_000, {
      min: 0,
      exclusive: true,
      meaning: "a number of milliseconds > 0",
    }),
  });
}

/** A client and the repository it works on: what every request about one repository needs. */
export interface RepositoryClient {
  readonly octokit: Octokit;
  readonly repo: GitHubRepository;
}

/**
 * Make one request about `gh.repo`; any failure becomes describeGitHubError's sentence.
 * @param what what the request does, as the sentence's verb phrase ("read branch 'main'")
 */
export async function request<T>(gh: RepositoryClient, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw describeGitHubError(error, what, fullName(gh.repo));
  }
}

/**
 * request(), except that an answer with one of `absent`'s statuses (404: no such branch or file) is
 * undefined rather than an error.
 */
export async function requestUnlessAbsent<T>(
  gh: RepositoryClient,
  what: string,
  absent: readonly number[],
  fn: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await fn();
  } catch (error) {
    if (absent.includes(statusOf(error))) return undefined;
    throw describeGitHubError(error, what, fullName(gh.repo));
  }
}

/** The repository's default branch (where a pull request goes when no base is named). */
export async function defaultBranch(gh: RepositoryClient): Promise<string> {
  const { data } = await request(gh, `read ${fullName(gh.repo)}`, () =>
    gh.octokit.rest.repos.get({ ...gh.repo }),
  );
  return data.default_branch;
}

/** The HTTP status of an Octokit RequestError; 0 when there was no answer (network, time-out). */
export function statusOf(error: unknown): number {
  if (typeof error !== "object" || error === null || !("status" in error)) return 0;
  // @octokit/request reports a request that got no answer (refused, reset, timed out) as status 500
  // without a response; calling that an HTTP 500 would blame GitHub for our own network.
  if ("request" in error && (!("response" in error) || error.response === undefined)) return 0;
  return Number(error.status);
}

/** A request that could not reach the API's host: which host, and why. */
export interface Unreachable {
  /** `api.github.com`, or `host:port` when the URL names a port. */
  host: string;
  cause: "dns" | "refused";
  /** The system's code: ENOTFOUND, EAI_AGAIN, ECONNREFUSED, … */
  code: string;
}

// getaddrinfo's failures as Bun's fetch reports them (`code` on the TypeError it rejects with, tried:
// ENOTFOUND where the resolver says the name does not exist, EAI_AGAIN where no resolver answers).
const DNS_CODES = new Set(["ENOTFOUND", "EAI_AGAIN", "EAI_NONAME", "EAI_FAIL", "EAI_NODATA"]);

/**
 * The `code` of an error or of one of its causes: Octokit keeps fetch's error as `cause` (not
 * enumerable, so read by name), and Node's fetch nests the system error one level deeper.
 */
function codeOf(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; typeof current === "object" && current !== null && depth < 4; depth++) {
    if ("code" in current && typeof current.code === "string") return current.code;
    current = "cause" in current ? current.cause : undefined;
  }
  return undefined;
}

function requestUrlOf(error: unknown): URL | undefined {
  const url = recordOf(recordOf(error)?.request)?.url;
  if (typeof url !== "string") return undefined;
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

/** Why a request that got no answer could not reach its host, when that is DNS or a refusal. */
export function unreachableOf(error: unknown): Unreachable | undefined {
  if (statusOf(error) !== 0) return undefined;
  const code = codeOf(error);
  const url = requestUrlOf(error);
  if (code === undefined || url === undefined) return undefined;
  if (DNS_CODES.has(code)) return { host: url.hostname, cause: "dns", code };
  if (code === "ECONNREFUSED") return { host: url.host, cause: "refused", code };
  return undefined;
}

/** `POST /repos/o/r/git/trees`, from an Octokit RequestError, to name the endpoint that failed. */
function endpointOf(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null || !("request" in error)) return undefined;
  const request = error.request;
  if (typeof request !== "object" || request === null) return undefined;
  const method = "method" in request && typeof request.method === "string" ? request.method : "";
  const url = "url" in request && typeof request.url === "string" ? request.url : "";
  if (!url) return undefined;
  let path = url;
  try {
    path = new URL(url).pathname;
  } catch {
    // keep the raw url
  }
  return `${method} ${path}`.trim();
}

/** GitHub's status codes as one sentence naming the fix, for the errors a script cannot recover from. */
export function describeGitHubError(error: unknown, what: string, repo?: string): RuntimeError {
  const status = statusOf(error);
  const raw = error instanceof Error ? error.message : String(error);
  // Octokit appends the documentation URL after " - "; the sentence is enough.
  const message = raw.replace(/ - https:\/\/docs\.github\.com\S*$/, "");
  const endpoint = endpointOf(error);
  const at = endpoint ? ` (${endpoint})` : "";
  if (status === 401) {
    return new RuntimeError(
      `GitHub rejected the token while trying to ${what} (401 Bad credentials${endpoint ? `, ${endpoint}` : ""}); set a valid GH_TOKEN or GITHUB_TOKEN`,
    );
  }
  if (status === 404 && repo) {
    return new RuntimeError(
      `${repo} not found, or the token cannot write to it (a fine-grained token needs Contents: read and write on it)${at}; check the name and the token's repository access`,
    );
  }
  if (status === 403 || status === 429) {
    return new RuntimeError(
      `GitHub refused to ${what} (${status}: ${message})${at}; wait for the rate limit to reset or check the token's permissions, then rerun`,
    );
  }
  if (status >= 400 && status < 500)
    return new RuntimeError(`GitHub refused to ${what} (${status}: ${message})${at}`);
  if (status >= 500) {
    return new RuntimeError(
      `could not ${what}: ${message} (HTTP ${status})${at}; GitHub may be having trouble — rerun later, it is safe to repeat`,
    );
  }
  return new RuntimeError(`could not ${what}: ${noAnswer(error, message)}${at}; ${noAnswerFix(error)}`);
}

/** What kept a request from any answer, as a phrase: "cannot resolve api.github.com (DNS lookup failed: ENOTFOUND)". */
export function noAnswer(
  error: unknown,
  message = error instanceof Error ? error.message : String(error),
): string {
  const unreachable = unreachableOf(error);
  if (unreachable?.cause === "dns")
    return `cannot resolve ${unreachable.host} (DNS lookup failed: ${unreachable.code})`;
  if (unreachable?.cause === "refused")
    return `${unreachable.host} refused the connection (${unreachable.code})`;
  const host = requestUrlOf(error)?.host;
  return `no answer${host ? ` from ${host}` : ""} (${message})`;
}

/** The fix for a request that got no answer: the address or the network, not GitHub. */
export function noAnswerFix(error: unknown): string {
  return unreachableOf(error) === undefined
    ? "check the network (or GITHUB_API_URL), then rerun — it is safe to repeat"
    : "check the network or GITHUB_API_URL";
}

/**
 * One thin typed Octokit: core + REST methods + GitHub's documented retry and throttling rules.
 * Only an entry script's main() builds it; everything else receives it as a parameter.
 */
import { Octokit as Core } from "@octokit/core";
import { type RestEndpointMethodTypes, restEndpointMethods } from "@octokit/plugin-rest-endpoint-methods";
import { retry } from "@octokit/plugin-retry";
import { throttling } from "@octokit/plugin-throttling";
import Bottleneck from "bottleneck";
import pkg from "../package.json" with { type: "json" };
import { info, warn } from "./actions.ts";
import { RuntimeError, UsageError } from "./errors.ts";
import { fullName, type GitHubRepository } from "./ids.ts";
import { githubToken, registerSecret } from "./secrets.ts";

const Client = Core.plugin(restEndpointMethods, retry, throttling);
export type Octokit = InstanceType<typeof Client>;
export type { RestEndpointMethodTypes };

/** How many times a rate-limited request is retried before the script gives up. */
const RATE_LIMIT_RETRIES = 3;

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
}

function withTimeout(fetchImpl: typeof fetch, ms: number): typeof fetch {
  const timed = (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) =>
    fetchImpl(input, { ...init, signal: init?.signal ?? AbortSignal.timeout(ms) });
  return Object.assign(timed, { preconnect: fetchImpl.preconnect });
}

export function createOctokit(opts: ClientOptions = {}): Octokit {
  const scale = opts.waitScale ?? 1;
  registerSecret(opts.token);
  const limitHandler =
    (kind: string) =>
    (retryAfter: number, options: { method: string; url: string }, _octokit: unknown, retryCount: number) => {
      const retrying = retryCount < RATE_LIMIT_RETRIES;
      warn(
        `GitHub ${kind} for ${options.method} ${options.url}; ${retrying ? `retrying in ${retryAfter}s` : "giving up"}`,
      );
      return retrying;
    };
  return new Client({
    auth: opts.token,
    baseUrl: (opts.baseUrl ?? "https://api.github.com").replace(/\/+$/, ""),
    userAgent: `flake-bump/${pkg.version}`,
    request: {
      // No `retries` here: plugin-retry retries any failed request whose options carry one, so a
      // default would override doNotRetry and ask every 401, 404 and 422 four times.
      fetch: withTimeout(opts.fetch ?? fetch, opts.requestTimeoutMs ?? 30_000),
    },
    log: {
      debug: () => {},
      info: () => {},
      warn: (m: string) => info(`warning: ${m}`),
      error: (m: string) => info(m),
    },
    retry: {
      retries: 3,
      retryAfterBaseValue: 1000 * scale,
      // 403 rate limits belong to the throttling plugin, which honours retry-after. It takes a 429
      // only when it says "secondary rate" or x-ratelimit-remaining is 0, so any other 429 is
      // retried here. Every other 4xx is a final answer.
      doNotRetry: [400, 401, 403, 404, 410, 422, 451],
    },
    throttle: {
      retryAfterBaseValue: 1000 * scale,
      // GitHub: at most 80 content-creating requests a minute; space writes one second apart.
      write: new Bottleneck.Group({ maxConcurrent: 1, minTime: 1000 * scale }),
      // The plugin's own spacing for writes that notify people (comments, PRs: 3 s) and for search
      // (2 s), scaled too: left to the plugin they ignore the scale, and every comment waited 3 s.
      notifications: new Bottleneck.Group({ maxConcurrent: 1, minTime: 3000 * scale }),
      search: new Bottleneck.Group({ maxConcurrent: 1, minTime: 2000 * scale }),
      onRateLimit: limitHandler("rate limit"),
      onSecondaryRateLimit: limitHandler("secondary rate limit"),
    },
  });
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

/** The HTTP status of an Octokit RequestError; 0 when there was no answer (network, time-out). */
export function statusOf(error: unknown): number {
  if (typeof error !== "object" || error === null || !("status" in error)) return 0;
  // @octokit/request reports a request that got no answer (refused, reset, timed out) as status 500
  // without a response; calling that an HTTP 500 would blame GitHub for our own network.
  if ("request" in error && (!("response" in error) || error.response === undefined)) return 0;
  return Number(error.status);
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
  if (status === 422) return new RuntimeError(`GitHub refused to ${what} (422: ${message})${at}`);
  return new RuntimeError(
    `could not ${what}: ${message}${status ? ` (HTTP ${status})` : ""}${at}; GitHub may be having trouble — rerun later, it is safe to repeat`,
  );
}

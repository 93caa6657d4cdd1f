/**
 * A stateful fake of GitHub for integration tests, on loopback only:
 *   - the REST API over plain HTTP on a random port (`apiUrl`: GITHUB_API_URL, Octokit's baseUrl);
 *   - HTTPS (default port 443) for Nix's github fetcher, which has no port or scheme setting:
 *     Nix 2.8 asks `https://api.localhost/repos/…`, newer Nix the Enterprise layout
 *     `https://localhost/api/v3/repos/…`. Both layouts reach the same handlers.
 * Every REST request and response is checked against GitHub's OpenAPI description; what does not
 * match is answered with an error naming the problem and kept in `violations`.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import type { Server } from "bun";
import { graphqlSchema, runGraphQL } from "./graphql.ts";
import { runAutoMerges } from "./merge.ts";
import { type Account, basicError, repository, type Site, simpleUser } from "./objects.ts";
import { type SpecOperation, type SpecValidator, specValidator } from "./openapi.ts";
import { type Dispatch, errorBody, GitHubError, type Handler, handlers, type Reply } from "./rest.ts";
import {
  type BranchProtection,
  type CreateRepoOptions,
  type FakeRepo,
  type Files,
  type PullState,
  type PushOptions,
  type RepoSettings,
  World,
} from "./state.ts";
import { testCertificate } from "./tls.ts";
import { processTempDir, scratchRoot } from "./tmp.ts";

export type Listener = "api" | "nix";

export interface RecordedRequest {
  listener: Listener;
  method: string;
  /** Path as received, without the query string. */
  path: string;
  query: Record<string, string>;
  /** The documented operation it matched, if any. */
  operationId: string | undefined;
  /** Login of the token used; undefined for unauthenticated requests. */
  login: string | undefined;
  /** Parsed JSON body (or raw text when it was not JSON). */
  body: unknown;
  status: number;
  response: unknown;
  /** Answered by an injected fault rather than a handler. */
  fault: boolean;
  /** Time to answer, in ms (what to look at when a test is slow). */
  durationMs: number;
}

export interface Violation {
  /** request: GitHub would reject it; response: the fake answered what GitHub never would;
   * undocumented: no such operation; unimplemented: documented, but the fake lacks it; crash: a bug. */
  kind: "request" | "response" | "undocumented" | "unimplemented" | "crash";
  method: string;
  path: string;
  operationId: string | undefined;
  problems: string[];
}

/**
 * A canned answer for matching requests, checked before authentication and validation, so tests can
 * make any endpoint fail (rate limits, 5xx) without touching the handlers.
 */
export interface Fault {
  operationId?: string;
  method?: string;
  path?: string | RegExp;
  /** The canned status; without one (and without `drop`) the request goes on to its handler. */
  status?: number;
  /** Break the connection after the headers instead of answering. */
  drop?: boolean;
  /** Wait this long first (a response slower than the client's timeout). */
  delayMs?: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** How many requests it answers before it is used up; default 1. */
  times?: number;
  /**
   * For the codeload archive (path `/_codeload/…`): send only the first `bytes` of the real tarball,
   * then end the body (a truncated gzip) or, with `reset`, break the connection.
   */
  cut?: { bytes: number; reset?: boolean };
}

export interface FakeGitHubOptions {
  /**
   * Port of the HTTPS listener. Nix can only reach 443; tests of the fake itself may pass 0. `false`
   * starts no HTTPS listener and makes no certificate: REST only, for tests that run no Nix, need no
   * root and may run beside another fake (see `localFakeGitHub()`).
   */
  httpsPort?: number | false;
  /**
   * Replacement handlers by operationId. For the fake's own tests (a handler that answers what
   * GitHub never would must be caught); integration tests use `injectFault` instead.
   */
  handlers?: Record<string, Handler>;
}

/** The token the fake accepts out of the box; it acts as github-actions[bot], like a workflow's GITHUB_TOKEN. */
export const DEFAULT_TOKEN = "ghs_fakeGitHubToken0000000000000000000";

interface Route {
  operation: SpecOperation;
  pattern: RegExp;
  handler: Handler;
}

// Path parameters that GitHub lets span several segments (`heads/feature/x`, `sub/flake.lock`),
// although the description's templates, taken literally, allow one.
const MULTI_SEGMENT = new Set(["ref", "path", "base", "head"]);

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A matcher for a documented path template, with one named group per parameter. */
function templatePattern(template: string): RegExp {
  let source = "";
  let last = 0;
  for (const match of template.matchAll(/\{([^}]+)\}/g)) {
    const name = match[1] ?? "";
    source += escapeRegExp(template.slice(last, match.index));
    source += MULTI_SEGMENT.has(name) ? `(?<${name}>.+?)` : `(?<${name}>[^/]+)`;
    last = match.index + match[0].length;
  }
  source += escapeRegExp(template.slice(last));
  return new RegExp(`^${source}/?$`);
}

function decodeParams(groups: Record<string, string> | undefined): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [name, value] of Object.entries(groups ?? {})) params[name] = decodeURIComponent(value);
  return params;
}

function tokenOf(header: string | null): string | undefined {
  if (header === null) return undefined;
  const match = /^(?:token|bearer)\s+(\S+)$/i.exec(header.trim());
  // Any other scheme is a credential GitHub cannot use: report it as bad rather than as anonymous.
  return match?.[1] ?? header;
}

function matchesFault(fault: Fault, method: string, path: string, operationId: string | undefined): boolean {
  if (fault.operationId !== undefined && fault.operationId !== operationId) return false;
  if (fault.method !== undefined && fault.method.toUpperCase() !== method) return false;
  if (typeof fault.path === "string" && fault.path !== path) return false;
  if (fault.path instanceof RegExp && !fault.path.test(path)) return false;
  return true;
}

/** Bytes of tarballs the fake keeps made (two of the bench's 50 MB archives and change). */
const ARCHIVE_CACHE_BYTES = 128 * 1024 * 1024;

export class FakeGitHub {
  /** Every request received, in order; reset() empties it. */
  readonly requests: RecordedRequest[] = [];
  readonly violations: Violation[] = [];
  /** repository_dispatch events received (POST /repos/{owner}/{repo}/dispatches). */
  readonly dispatches: Dispatch[] = [];
  /** Pending injected faults, consumed in order. */
  readonly faults: Fault[] = [];
  /** Valid tokens and the account each acts as. */
  readonly tokens = new Map<string, Account>();
  readonly token = DEFAULT_TOKEN;
  /** Web base of html_url fields: the host Nix knows as `?host=localhost`. */
  readonly serverUrl = "https://localhost";

  private readonly world: World;
  private readonly routes: Route[];
  private queue: Promise<unknown> = Promise.resolve();
  /**
   * Tarballs already made, newest last, by `owner/name/sha` (a commit's archive never changes).
   * GitHub serves archives from a cache too; without one, `git archive` (gzip of the whole tree) is
   * most of what a download costs here, on both the native engine's and Nix's side, and the bench
   * would time the fake instead of the clients.
   */
  private readonly archives = new Map<string, Buffer>();
  private api: Server<undefined> | undefined;
  private nix: Server<undefined> | undefined;

  private constructor(
    private readonly spec: SpecValidator,
    private readonly root: string,
    private readonly cert: string | undefined,
    overrides: Record<string, Handler>,
  ) {
    this.world = new World(join(root, "repos"));
    this.routes = Object.entries({ ...handlers, ...overrides }).map(([operationId, handler]) => {
      const operation = spec.operation(operationId);
      return { operation, pattern: templatePattern(operation.template), handler };
    });
    this.resetTokens();
  }

  /** Starts both listeners. Prefer the shared instance from `fakeGitHub()`: only one process can hold 443. */
  static async start(options: FakeGitHubOptions = {}): Promise<FakeGitHub> {
    const httpsPort = options.httpsPort ?? 443;
    const [spec, certificate] = await Promise.all([
      specValidator(),
      httpsPort === false ? undefined : testCertificate(),
      graphqlSchema(),
    ]);
    const root = processTempDir("fake-github", scratchRoot());
    const fake = new FakeGitHub(spec, root, certificate?.certFile, options.handlers ?? {});
    await fake.world.clear();
    fake.api = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (request) => fake.serve(request, "api"),
    });
    fake.api.unref();
    if (httpsPort === false || certificate === undefined) return fake;
    try {
      fake.nix = Bun.serve({
        hostname: "127.0.0.1",
        port: httpsPort,
        tls: { cert: certificate.cert, key: certificate.key },
        fetch: (request) => fake.serve(request, "nix"),
      });
    } catch (error) {
      await fake.stop();
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(
        `fake-github cannot listen on 127.0.0.1:${httpsPort} (${reason}); Nix needs that port: run as root, and one test process at a time`,
      );
    }
    // Neither listener should keep a test process alive on its own.
    fake.nix.unref();
    return fake;
  }

  /** PEM certificate file of the HTTPS listener: NIX_SSL_CERT_FILE for Nix. */
  get certFile(): string {
    if (this.cert === undefined) throw new Error("fake-github was started without HTTPS (httpsPort: false)");
    return this.cert;
  }

  /** Base URL of the REST API: GITHUB_API_URL, and Octokit's `baseUrl`. */
  get apiUrl(): string {
    if (this.api === undefined) throw new Error("fake-github is stopped");
    return `http://127.0.0.1:${this.api.port}`;
  }

  /** Port of the HTTPS listener (443 unless started otherwise). */
  get httpsPort(): number {
    if (this.cert === undefined) throw new Error("fake-github was started without HTTPS (httpsPort: false)");
    if (this.nix === undefined) throw new Error("fake-github is stopped");
    return this.nix.port ?? 443;
  }

  /** How long loading GitHub's OpenAPI description took, in ms. */
  get specLoadMs(): number {
    return this.spec.loadMs;
  }

  private get site(): Site {
    return { api: this.apiUrl, html: this.serverUrl };
  }

  // --- test API -------------------------------------------------------------------------------

  /** Creates a repository backed by a fresh bare git repository (see CreateRepoOptions). */
  createRepo(owner: string, name: string, options: CreateRepoOptions = {}): Promise<FakeRepo> {
    return this.exclusive(() => this.world.createRepo(owner, name, options));
  }

  /** Commits `files` to a branch as a developer's push would; returns the commit SHA. */
  push(
    owner: string,
    name: string,
    files: Files,
    message: string,
    options: PushOptions = {},
  ): Promise<string> {
    return this.exclusive(() => this.world.push(this.world.repo(owner, name), files, message, options));
  }

  /** The repository's state (git, pulls, labels, comments); throws if it does not exist. */
  repo(owner: string, name: string): FakeRepo {
    return this.world.repo(owner, name);
  }

  /** `file://` URL to `git clone` the repository. */
  cloneUrl(owner: string, name: string): string {
    return this.world.repo(owner, name).cloneUrl;
  }

  /** The SHA a branch points at, or undefined when there is no such branch. */
  branchSha(owner: string, name: string, branch: string): Promise<string | undefined> {
    return this.world.repo(owner, name).git.refSha(`refs/heads/${branch}`);
  }

  /** A file's text at a ref (branch, tag or SHA); undefined when the ref or the file is missing. */
  async readFile(owner: string, name: string, ref: string, path: string): Promise<string | undefined> {
    const git = this.world.repo(owner, name).git;
    const sha = await git.resolveCommit(ref);
    if (sha === undefined) return undefined;
    const [entry] = await git.lsTree(sha, path);
    if (entry === undefined || entry.type !== "blob") return undefined;
    return (await git.readBlob(entry.sha)).toString("utf8");
  }

  /** All pull requests of a repository, in creation order. */
  pulls(owner: string, name: string): PullState[] {
    return [...this.world.repo(owner, name).pulls];
  }

  /** Bodies of the comments on an issue or pull request. */
  comments(owner: string, name: string, number: number): string[] {
    return this.world
      .repo(owner, name)
      .comments.filter((comment) => comment.issueNumber === number)
      .map((comment) => comment.body);
  }

  /** Whether GitHub would show the commit as "Verified" (made through the API without an author). */
  isVerified(owner: string, name: string, sha: string): boolean {
    return this.world.repo(owner, name).signed.has(sha);
  }

  /** Changes a repository's merge settings (auto-merge, merge methods); the rest keep their value. */
  setRepoSettings(owner: string, name: string, settings: Partial<RepoSettings>): void {
    const repo = this.world.repo(owner, name);
    repo.settings = { ...repo.settings, ...settings };
  }

  /**
   * Protects a branch (or lifts its protection with `undefined`): `requirePullRequest` refuses direct
   * ref updates; `requiredChecks` holds pull requests into it in BLOCKED until `passChecks`.
   */
  protectBranch(owner: string, name: string, branch: string, rules: BranchProtection | undefined): void {
    const repo = this.world.repo(owner, name);
    if (rules === undefined) repo.protection.delete(branch);
    else repo.protection.set(branch, rules);
  }

  /** Publishes a GitHub release of `tag` with these notes (the tag itself is the test's to push). */
  createRelease(owner: string, name: string, tag: string, body: string): void {
    const repo = this.world.repo(owner, name);
    repo.releases.push({ id: 9000 + repo.releases.length, tag, name: tag, body, createdAt: new Date() });
  }

  /**
   * Marks every required check as passed on a commit (default: the pull request's current head) and
   * then does what GitHub does next: merges the open pull requests whose auto-merge now can.
   */
  passChecks(owner: string, name: string, sha: string): Promise<void> {
    return this.exclusive(async () => {
      const repo = this.world.repo(owner, name);
      repo.passedChecks.add(sha);
      await runAutoMerges(this.world, repo);
    });
  }

  /** Accepts another token, acting as `login` (a User, or a Bot when it ends in "[bot]"). */
  addToken(token: string, login = "octocat"): void {
    this.tokens.set(token, this.world.account(login));
  }

  /** Answers the next matching request(s) with a canned response instead of the handler. */
  injectFault(fault: Fault): void {
    this.faults.push(fault);
  }

  /**
   * The `repository_dispatch` event a workflow run would see for a recorded dispatch: write it to a
   * file and point GITHUB_EVENT_PATH at it.
   */
  repositoryDispatchEvent(dispatch: Dispatch) {
    const repo = this.world.repo(dispatch.owner, dispatch.repo);
    return {
      action: dispatch.event_type,
      branch: repo.defaultBranch,
      client_payload: dispatch.client_payload,
      repository: repository(this.site, repo),
      sender: simpleUser(this.site, this.world.account(dispatch.sender)),
    };
  }

  /** Throws, listing every violation, if any request or response broke GitHub's OpenAPI description. */
  assertNoViolations(): void {
    if (this.violations.length === 0) return;
    const lines = this.violations.map(
      (violation) =>
        `- ${violation.kind}: ${violation.method} ${violation.path}${violation.operationId ? ` (${violation.operationId})` : ""}: ${violation.problems.join("; ")}`,
    );
    throw new Error(`fake-github saw ${this.violations.length} OpenAPI violation(s):\n${lines.join("\n")}`);
  }

  /** Forgets all repositories, requests, dispatches, violations, faults and extra tokens. */
  async reset(): Promise<void> {
    await this.exclusive(async () => {
      await this.world.clear();
      this.requests.length = 0;
      this.violations.length = 0;
      this.dispatches.length = 0;
      this.faults.length = 0;
      this.archives.clear();
      this.resetTokens();
    });
  }

  /** Makes the tarball of `sha` now, so that the next download of it is served from the cache. */
  async prepareTarball(owner: string, name: string, sha: string): Promise<void> {
    const reply = await this.exclusive(() => this.tarball(owner, name, sha));
    if (reply.status !== 200) throw new Error(`no tarball of ${owner}/${name} at ${sha} (${reply.status})`);
  }

  async stop(): Promise<void> {
    await Promise.all([this.api?.stop(true), this.nix?.stop(true)]);
    this.api = undefined;
    this.nix = undefined;
    rmSync(this.root, { recursive: true, force: true });
  }

  private resetTokens(): void {
    this.tokens.clear();
    this.tokens.set(DEFAULT_TOKEN, this.world.account("github-actions[bot]"));
  }

  // --- request pipeline -----------------------------------------------------------------------

  /**
   * Handlers and test helpers run one at a time: git ref updates and the in-memory state then change
   * in a well-defined order, and `requests` reads in the order things happened.
   */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async serve(request: Request, listener: Listener): Promise<Response> {
    const url = new URL(request.url);
    const method = request.method.toUpperCase();
    const query = Object.fromEntries(url.searchParams);
    const text = await request.text();
    const record: RecordedRequest = {
      listener,
      method,
      path: url.pathname,
      query,
      operationId: undefined,
      login: undefined,
      body: text === "" ? undefined : text,
      status: 0,
      response: undefined,
      fault: false,
      durationMs: 0,
    };
    const started = performance.now();
    this.requests.push(record);
    const answer = (reply: Reply): Response => {
      record.status = reply.status;
      record.response = reply.raw === undefined ? reply.body : "(raw)";
      record.durationMs = performance.now() - started;
      return toResponse(reply);
    };
    try {
      // GitHub Enterprise serves the same API under /api/v3 (Nix ≥ 2.1x's layout for a custom host).
      const path =
        listener === "nix" && url.pathname.startsWith("/api/v3/") ? url.pathname.slice(7) : url.pathname;
      // Octokit's graphql posts to `${baseUrl}/graphql`, or `/api/graphql` when baseUrl ends in /api/v3.
      if (method === "POST" && (url.pathname === "/graphql" || url.pathname === "/api/graphql")) {
        return answer(await this.graphql(request, record, text));
      }
      const codeload = /^\/_codeload\/([^/]+)\/([^/]+)\/legacy\.tar\.gz\/([0-9a-f]{40})$/.exec(path);
      if (codeload !== null && method === "GET") {
        const [, owner = "", name = "", sha = ""] = codeload;
        // Only faults that name a path reach codeload, so existing catch-all faults keep their target.
        const fault = this.takeFault(method, path, undefined, true);
        if (fault !== undefined) record.fault = true;
        if (fault?.status !== undefined) return answer({ status: fault.status, body: null });
        const reply = await this.exclusive(() => this.tarball(owner, name, sha));
        return answer(fault?.cut === undefined ? reply : cutReply(reply, fault.cut));
      }
      return answer(await this.rest(request, record, path, text));
    } catch (error) {
      const message = describeCrash(error);
      this.violations.push({
        kind: "crash",
        method,
        path: url.pathname,
        operationId: record.operationId,
        problems: [message],
      });
      return answer({ status: 500, body: { message: `fake-github crashed: ${message}` } });
    }
  }

  /** The first pending fault matching the request, used up by one; its canned reply if it has one. */
  private async fault(record: RecordedRequest, path: string): Promise<Reply | undefined> {
    const fault = this.takeFault(record.method, path, record.operationId);
    if (fault === undefined) return undefined;
    record.fault = true;
    if (fault.delayMs !== undefined) await Bun.sleep(fault.delayMs);
    if (fault.drop === true) return { status: 200, drop: true };
    if (fault.status === undefined) return undefined;
    const body =
      fault.body ?? errorBody(fault.status, `Injected fault ${fault.status}`, "https://docs.github.com/rest");
    return fault.headers === undefined
      ? { status: fault.status, body }
      : { status: fault.status, body, headers: fault.headers };
  }

  /** The token's account; a 401 reply for a token GitHub does not know. */
  private authenticate(request: Request, record: RecordedRequest): Account | Reply | undefined {
    const token = tokenOf(request.headers.get("authorization"));
    const actor = token === undefined ? undefined : this.tokens.get(token);
    if (token !== undefined && actor === undefined) {
      return { status: 401, body: basicError(401, "Bad credentials", "https://docs.github.com/rest") };
    }
    record.login = actor?.login;
    return actor;
  }

  private async graphql(request: Request, record: RecordedRequest, text: string): Promise<Reply> {
    record.operationId = "graphql";
    const docsUrl = "https://docs.github.com/graphql";
    const faulted = await this.fault(record, record.path);
    if (faulted !== undefined) return faulted;
    const actor = this.authenticate(request, record);
    if (actor !== undefined && "status" in actor) return actor;
    // Unlike REST, GitHub's GraphQL API has no anonymous access.
    if (actor === undefined) {
      return {
        status: 401,
        body: basicError(401, "This endpoint requires you to be authenticated.", docsUrl),
      };
    }
    try {
      record.body = JSON.parse(text);
    } catch {
      // runGraphQL answers it as GitHub does
    }
    const outcome = await this.exclusive(() =>
      runGraphQL(text, { world: this.world, site: this.site, actor }),
    );
    const problems: [Violation["kind"], string[]][] = [
      ["request", outcome.rejected],
      ["unimplemented", outcome.unimplemented],
    ];
    for (const [kind, list] of problems) {
      if (list.length === 0) continue;
      this.violations.push({
        kind,
        method: record.method,
        path: record.path,
        operationId: "graphql",
        problems: list,
      });
    }
    return {
      status: 200,
      body: outcome.body,
      headers: {
        "x-ratelimit-resource": "graphql",
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": "4999",
      },
    };
  }

  private async rest(request: Request, record: RecordedRequest, path: string, text: string): Promise<Reply> {
    const { method } = record;
    const route = this.route(method, path);
    const documented = route?.operation.operationId ?? this.spec.match(method, path);
    record.operationId = documented;

    const faulted = await this.fault(record, path);
    if (faulted !== undefined) return faulted;

    const actor = this.authenticate(request, record);
    if (actor !== undefined && "status" in actor) return actor;

    if (route === undefined) {
      const problem =
        documented === undefined
          ? `${method} ${path} is not an operation in GitHub's REST API description`
          : `fake-github does not implement ${documented}; add it to tests/fake-github/rest.ts`;
      this.violations.push({
        kind: documented === undefined ? "undocumented" : "unimplemented",
        method,
        path,
        operationId: documented,
        problems: [problem],
      });
      return {
        status: 404,
        body: basicError(404, `fake-github: ${problem}`, "https://docs.github.com/rest"),
      };
    }

    const { operation } = route;
    let body: unknown;
    if (text !== "") {
      try {
        body = JSON.parse(text);
      } catch {
        return { status: 400, body: basicError(400, "Problems parsing JSON", operation.docsUrl) };
      }
      record.body = body;
    }
    const params = decodeParams(route.pattern.exec(path)?.groups);
    const headers: Record<string, string> = {};
    request.headers.forEach((value, name) => {
      headers[name.toLowerCase()] = value;
    });
    const requestProblems = this.spec.checkRequest(operation.operationId, {
      pathParams: params,
      query: record.query,
      headers,
      body,
    });
    if (requestProblems.length > 0) {
      this.violations.push({
        kind: "request",
        method,
        path,
        operationId: operation.operationId,
        problems: requestProblems,
      });
      const message = `fake-github: request does not match GitHub's description of ${operation.operationId}: ${requestProblems.join("; ")}`;
      return { status: 422, body: errorBody(422, message, operation.docsUrl) };
    }

    if (actor === undefined && method !== "GET" && method !== "HEAD") {
      return { status: 401, body: basicError(401, "Requires authentication", operation.docsUrl) };
    }

    const reply = await this.exclusive(async () => {
      try {
        return await route.handler({
          world: this.world,
          site: this.site,
          origin: new URL(request.url).origin,
          params,
          query: record.query,
          headers: request.headers,
          body,
          actor,
          docsUrl: operation.docsUrl,
          dispatches: this.dispatches,
        });
      } catch (error) {
        if (!(error instanceof GitHubError)) throw error;
        const reply: Reply = {
          status: error.status,
          body: errorBody(error.status, error.message, operation.docsUrl, error.errors),
        };
        return reply;
      }
    });

    if (reply.raw !== undefined) return reply;
    const responseProblems = this.spec.checkResponse(operation.operationId, reply.status, reply.body ?? null);
    if (responseProblems.length > 0) {
      this.violations.push({
        kind: "response",
        method,
        path,
        operationId: operation.operationId,
        problems: responseProblems,
      });
      const message = `fake-github answered ${operation.operationId} with a ${reply.status} that breaks GitHub's description (a bug in the fake): ${responseProblems.join("; ")}`;
      return { status: 500, body: basicError(500, message, operation.docsUrl) };
    }
    return reply;
  }

  /** The first pending fault matching the request, used up once it has answered `times` requests. */
  private takeFault(
    method: string,
    path: string,
    operationId: string | undefined,
    byPathOnly = false,
  ): Fault | undefined {
    const index = this.faults.findIndex(
      (fault) => (!byPathOnly || fault.path !== undefined) && matchesFault(fault, method, path, operationId),
    );
    const fault = this.faults[index];
    if (fault === undefined) return undefined;
    fault.times = (fault.times ?? 1) - 1;
    if (fault.times <= 0) this.faults.splice(index, 1);
    return fault;
  }

  private route(method: string, path: string): Route | undefined {
    // The description's own router first: it tells `commits/{ref}` from `commits/{ref}/status`, which
    // the multi-segment patterns alone would confuse.
    const exact = this.spec.match(method, path);
    if (exact !== undefined) return this.routes.find((route) => route.operation.operationId === exact);
    return this.routes.find((route) => route.operation.method === method && route.pattern.test(path));
  }

  private async tarball(owner: string, name: string, sha: string): Promise<Reply> {
    const repo = this.world.findRepo(owner, name);
    if (repo === undefined || (await repo.git.objectType(sha)) !== "commit") {
      return { status: 404, raw: { data: "404: Not Found", contentType: "text/plain; charset=utf-8" } };
    }
    // GitHub's tarballs are `git archive` output under `owner-repo-shortsha/`, with a pax global
    // header holding the commit id; Nix drops the top directory whatever its name.
    const top = `${repo.owner.login}-${repo.name}-${sha.slice(0, 7)}`;
    const key = `${repo.fullName}/${sha}`;
    const data = this.archives.get(key) ?? (await repo.git.archive(sha, `${top}/`));
    this.archives.delete(key);
    this.archives.set(key, data);
    // A few recent archives are enough (a test downloads the commits it just pushed): bound the memory.
    let held = [...this.archives.values()].reduce((sum, buffer) => sum + buffer.length, 0);
    for (const [old, buffer] of this.archives) {
      if (held <= ARCHIVE_CACHE_BYTES || old === key) break;
      this.archives.delete(old);
      held -= buffer.length;
    }
    return {
      status: 200,
      raw: { data, contentType: "application/x-gzip" },
      headers: { "content-disposition": `attachment; filename=${top}.tar.gz` },
    };
  }
}

function describeCrash(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // zx's errors carry the failed command's stderr, which says more than its stack.
  const stderr = "stderr" in error && typeof error.stderr === "string" ? `\n${error.stderr.trim()}` : "";
  return `${error.stack ?? error.message}${stderr}`;
}

/** The archive's first bytes only, then a clean end (truncated gzip) or a broken connection. */
function cutReply(reply: Reply, cut: { bytes: number; reset?: boolean }): Reply {
  const data = reply.raw?.data;
  if (reply.raw === undefined || typeof data === "string" || data === undefined) return reply;
  const head = data.subarray(0, cut.bytes);
  if (cut.reset !== true) return { ...reply, raw: { ...reply.raw, data: head } };
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(head);
      controller.error(new Error("connection reset by an injected fault"));
    },
  });
  return { ...reply, stream: body };
}

function toResponse(reply: Reply): Response {
  const headers = new Headers(reply.headers);
  // What the throttling plugin and Nix look at; a quiet, unlimited budget unless a fault says otherwise.
  if (!headers.has("x-ratelimit-limit")) {
    headers.set("x-ratelimit-limit", "5000");
    headers.set("x-ratelimit-remaining", "4999");
    headers.set("x-ratelimit-resource", "core");
  }
  if (reply.drop === true) {
    headers.set("content-type", "application/json; charset=utf-8");
    const broken = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"partial":'));
        controller.error(new Error("connection dropped by an injected fault"));
      },
    });
    return new Response(broken, { status: reply.status, headers });
  }
  if (reply.stream !== undefined) {
    headers.set("content-type", reply.raw?.contentType ?? "application/octet-stream");
    return new Response(reply.stream, { status: reply.status, headers });
  }
  if (reply.raw !== undefined) {
    headers.set("content-type", reply.raw.contentType);
    return new Response(reply.raw.data, { status: reply.status, headers });
  }
  if (reply.body === undefined || reply.body === null)
    return new Response(null, { status: reply.status, headers });
  headers.set("content-type", "application/json; charset=utf-8");
  return new Response(JSON.stringify(reply.body), { status: reply.status, headers });
}

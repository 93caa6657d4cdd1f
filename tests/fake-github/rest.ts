/**
 * The REST operations the fake implements, keyed by GitHub's operationId. Only what flake-bump's
 * scripts call; each behaves like GitHub, errors included. Bodies reach a handler already checked
 * against the OpenAPI description; the valibot schemas here only give them types.
 */
import * as v from "valibot";
import { isFullSha, type TreeChange, type TreeEntry, ZERO_SHA } from "./git.ts";
import { MergeRefusal, mergePull, protectionRefusal } from "./merge.ts";
import {
  type Account,
  basicError,
  type Commit,
  commit as commitObject,
  comparison,
  contentDirectory,
  contentFile,
  diffEntry,
  type FieldError,
  fullRepository,
  gitCommit,
  gitRef,
  gitTree,
  issueComment,
  type LabelInfo,
  label,
  pullRequest,
  pullRequestSimple,
  release,
  type Site,
  shortBlob,
  validationError,
  verification,
} from "./objects.ts";
import type { FakeRepo, PullState, World } from "./state.ts";

/** What a handler answers: a JSON body, or raw bytes with their content type. */
export interface Reply {
  status: number;
  body?: unknown;
  raw?: { data: Uint8Array | string; contentType: string };
  headers?: Record<string, string>;
  /** Send the headers, then break the connection mid-body (an injected network failure). */
  drop?: boolean;
  /** A body that arrives as a stream (an injected fault's partial archive). */
  stream?: ReadableStream<Uint8Array>;
}

/** A failure GitHub would report; the server turns it into GitHub's error body for the status. */
export class GitHubError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errors: FieldError[] = [],
  ) {
    super(message);
  }
}

export interface Dispatch {
  owner: string;
  repo: string;
  event_type: string;
  client_payload: Record<string, unknown>;
  /** Login of the token that sent it. */
  sender: string;
  at: Date;
}

export interface HandlerContext {
  world: World;
  site: Site;
  /** Origin the request came in on: redirects must stay on the listener the client used. */
  origin: string;
  params: Record<string, string>;
  query: Record<string, string>;
  headers: Headers;
  body: unknown;
  actor: Account | undefined;
  docsUrl: string;
  dispatches: Dispatch[];
}

export type Handler = (ctx: HandlerContext) => Promise<Reply>;

/** The error body GitHub sends with a status: 422s carry an `errors` list, the rest a message. */
export function errorBody(
  status: number,
  message: string,
  docsUrl: string,
  errors: FieldError[] = [],
): unknown {
  return status === 422 ? validationError(message, docsUrl, errors) : basicError(status, message, docsUrl);
}

function notFound(): GitHubError {
  return new GitHubError(404, "Not Found");
}

function param(ctx: HandlerContext, name: string): string {
  const value = ctx.params[name];
  if (value === undefined) throw new Error(`route has no path parameter '${name}'`);
  return value;
}

/** The repository in the path, as the caller may see it: private ones are invisible without a token. */
function visibleRepo(ctx: HandlerContext): FakeRepo {
  const repo = ctx.world.findRepo(param(ctx, "owner"), param(ctx, "repo"));
  if (repo === undefined || (repo.private && ctx.actor === undefined)) throw notFound();
  return repo;
}

function actorOf(ctx: HandlerContext): Account {
  // The server answers 401 to unauthenticated writes before any handler runs.
  if (ctx.actor === undefined) throw new GitHubError(401, "Requires authentication");
  return ctx.actor;
}

function parseBody<S extends v.GenericSchema>(schema: S, ctx: HandlerContext): v.InferOutput<S> {
  const result = v.safeParse(schema, ctx.body);
  if (!result.success) throw new GitHubError(422, `Invalid request.\n\n${v.summarize(result.issues)}`);
  return result.output;
}

/** `heads/main` from the URL, or `refs/heads/main` in a body, as the fully qualified ref. */
function qualify(ref: string): string {
  return ref.startsWith("refs/") ? ref : `refs/${ref}`;
}

function pageOf<T>(items: T[], query: Record<string, string>, defaultPerPage = 30): T[] {
  const perPage = Math.min(Number(query.per_page ?? defaultPerPage), 100);
  const page = Math.max(Number(query.page ?? 1), 1);
  return items.slice((page - 1) * perPage, page * perPage);
}

async function renderCommit(
  ctx: HandlerContext,
  repo: FakeRepo,
  sha: string,
  withFiles: boolean,
): Promise<Commit> {
  const object = await repo.git.readCommit(sha);
  const verified = verification(object, repo.signed.get(sha));
  if (!withFiles) return commitObject(ctx.site, repo, object, verified);
  const changes = await repo.git.changedFiles(object.parents[0], sha);
  const files = changes.map((change) => diffEntry(ctx.site, repo, sha, change));
  return commitObject(ctx.site, repo, object, verified, files);
}

/**
 * The first `limit` commits of the history from `start`, kept to `since` and `until` when given: as
 * GitHub filters the list, by committer date (`git log --since/--until`), bounds included.
 */
async function datedHistory(
  repo: FakeRepo,
  start: string,
  limit: number,
  query: Record<string, string>,
): Promise<string[]> {
  const until = query.until === undefined ? undefined : Date.parse(query.until);
  const since = query.since === undefined ? undefined : Date.parse(query.since);
  if (until === undefined && since === undefined) return repo.git.history(start, limit);
  const kept: string[] = [];
  for (const sha of await repo.git.history(start, 10_000)) {
    const time = (await repo.git.readCommit(sha)).committer.date.getTime();
    if ((until === undefined || time <= until) && (since === undefined || time >= since)) kept.push(sha);
    if (kept.length >= limit) break;
  }
  return kept;
}

async function pullStats(repo: FakeRepo, pull: PullState) {
  const head = await pull.headRepo.git.refSha(`refs/heads/${pull.headRef}`);
  const base = await repo.git.refSha(`refs/heads/${pull.baseRef}`);
  if (head === undefined || base === undefined)
    return { commits: 0, additions: 0, deletions: 0, changedFiles: 0 };
  const mergeBase = await repo.git.mergeBase(base, head);
  const commits = await repo.git.commitsBetween(base, head);
  const files = await repo.git.changedFiles(mergeBase, head);
  return {
    commits: commits.length,
    additions: files.reduce((sum, file) => sum + file.additions, 0),
    deletions: files.reduce((sum, file) => sum + file.deletions, 0),
    changedFiles: files.length,
  };
}

async function renderPull(ctx: HandlerContext, repo: FakeRepo, pull: PullState) {
  return pullRequest(ctx.site, await ctx.world.pullInfo(repo, pull), await pullStats(repo, pull));
}

function findPull(ctx: HandlerContext, repo: FakeRepo, key: "pull_number" | "issue_number"): PullState {
  const number = Number(param(ctx, key));
  const pull = repo.pulls.find((candidate) => candidate.number === number);
  if (pull === undefined) throw notFound();
  return pull;
}

/** `owner:branch` or `branch` (GitHub's head syntax) as the repository and branch it names. */
function headOf(repo: FakeRepo, head: string): { repo: FakeRepo; ref: string } {
  const colon = head.indexOf(":");
  if (colon === -1) return { repo, ref: head };
  const owner = head.slice(0, colon);
  const ref = head.slice(colon + 1);
  if (owner.toLowerCase() === repo.owner.login.toLowerCase()) return { repo, ref };
  const fork = [repo, ...repo.forks].find(
    (candidate) => candidate.owner.login.toLowerCase() === owner.toLowerCase(),
  );
  return { repo: fork ?? repo, ref: fork === undefined ? head : ref };
}

/**
 * Resolves one side of a compare range. GitHub accepts `owner:ref` for a fork's branch; a bare SHA
 * resolves through the whole fork network, which is how fork-only commits show up under the parent.
 */
async function compareSide(repo: FakeRepo, side: string): Promise<string | undefined> {
  const colon = side.indexOf(":");
  if (colon !== -1) {
    const owner = side.slice(0, colon).toLowerCase();
    const holder = [repo, ...repo.forks].find((candidate) => candidate.owner.login.toLowerCase() === owner);
    return holder?.git.resolveCommit(side.slice(colon + 1));
  }
  return repo.git.resolveCommit(side);
}

function openPullFor(
  repo: FakeRepo,
  headRepo: FakeRepo,
  headRef: string,
  baseRef: string,
): PullState | undefined {
  return repo.pulls.find(
    (pull) =>
      pull.state === "open" &&
      pull.headRepo === headRepo &&
      pull.headRef === headRef &&
      pull.baseRef === baseRef,
  );
}

const LabelsBody = v.object({
  labels: v.array(v.union([v.string(), v.object({ name: v.string() })])),
});

const TreeBody = v.object({
  base_tree: v.optional(v.string()),
  tree: v.array(
    v.object({
      path: v.optional(v.string()),
      mode: v.optional(v.string()),
      type: v.optional(v.string()),
      sha: v.optional(v.nullable(v.string())),
      content: v.optional(v.string()),
    }),
  ),
});

const Identity = v.object({ name: v.string(), email: v.string(), date: v.optional(v.string()) });

const CommitBody = v.object({
  message: v.string(),
  tree: v.string(),
  parents: v.optional(v.array(v.string())),
  author: v.optional(Identity),
  committer: v.optional(Identity),
  signature: v.optional(v.string()),
});

function identity(given: v.InferOutput<typeof Identity>, now: Date) {
  const date = given.date === undefined ? now : new Date(given.date);
  if (Number.isNaN(date.getTime())) throw new GitHubError(422, `Invalid date: ${given.date}`);
  return { name: given.name, email: given.email, date };
}

export const handlers: Record<string, Handler> = {
  "repos/create-dispatch-event": async (ctx) => {
    const repo = visibleRepo(ctx);
    const body = parseBody(
      v.object({ event_type: v.string(), client_payload: v.optional(v.record(v.string(), v.unknown())) }),
      ctx,
    );
    // GitHub's limit beyond the schema's 10 keys: the payload must serialize to under 64 KB.
    if (JSON.stringify(body.client_payload ?? {}).length >= 65536) {
      throw new GitHubError(422, "client_payload is too large", [
        { resource: "Repository", field: "client_payload", code: "invalid" },
      ]);
    }
    ctx.dispatches.push({
      owner: repo.owner.login,
      repo: repo.name,
      event_type: body.event_type,
      client_payload: body.client_payload ?? {},
      sender: actorOf(ctx).login,
      at: new Date(),
    });
    return { status: 204, body: null };
  },

  "repos/get": async (ctx) => {
    const repo = visibleRepo(ctx);
    const openIssues = repo.pulls.filter((pull) => pull.state === "open").length;
    return {
      status: 200,
      body: fullRepository(ctx.site, repo, { openIssues, forks: repo.forks.length }, repo.settings),
    };
  },

  "repos/get-commit": async (ctx) => {
    const repo = visibleRepo(ctx);
    const ref = param(ctx, "ref");
    if ((await repo.git.listRefs("refs/heads/")).length === 0)
      throw new GitHubError(409, "Git Repository is empty.");
    const sha = await repo.git.resolveCommit(ref);
    if (sha === undefined) throw new GitHubError(422, `No commit found for SHA: ${ref}`);
    return { status: 200, body: await renderCommit(ctx, repo, sha, true) };
  },

  "repos/list-commits": async (ctx) => {
    const repo = visibleRepo(ctx);
    if ((await repo.git.listRefs("refs/heads/")).length === 0)
      throw new GitHubError(409, "Git Repository is empty.");
    const start = await repo.git.resolveCommit(ctx.query.sha ?? repo.defaultBranch);
    if (start === undefined) throw notFound();
    const perPage = Math.min(Number(ctx.query.per_page ?? 30), 100);
    const page = Math.max(Number(ctx.query.page ?? 1), 1);
    const shas = await datedHistory(repo, start, perPage * page, ctx.query);
    const listed = shas.slice((page - 1) * perPage);
    return { status: 200, body: await Promise.all(listed.map((sha) => renderCommit(ctx, repo, sha, false))) };
  },

  "repos/compare-commits": async (ctx) => {
    const repo = visibleRepo(ctx);
    const baseName = param(ctx, "base");
    const headName = param(ctx, "head");
    const base = await compareSide(repo, baseName);
    const head = await compareSide(repo, headName);
    if (base === undefined || head === undefined) throw notFound();
    const mergeBase = await repo.git.mergeBase(base, head);
    if (mergeBase === undefined)
      throw new GitHubError(404, `No common ancestor between ${baseName} and ${headName}.`);
    const ahead = await repo.git.commitsBetween(base, head);
    const behind = await repo.git.commitsBetween(head, base);
    // GitHub lists at most 250 commits in a comparison; per_page/page page through them.
    const listed = ctx.query.per_page === undefined ? ahead.slice(0, 250) : pageOf(ahead, ctx.query);
    const commits = await Promise.all(listed.map((sha) => renderCommit(ctx, repo, sha, false)));
    const files = (await repo.git.changedFiles(mergeBase, head)).map((change) =>
      diffEntry(ctx.site, repo, head, change),
    );
    const body = comparison(ctx.site, repo, {
      base: baseName,
      head: headName,
      baseCommit: await renderCommit(ctx, repo, base, false),
      mergeBaseCommit: await renderCommit(ctx, repo, mergeBase, false),
      aheadBy: ahead.length,
      behindBy: behind.length,
      commits,
      files,
    });
    return { status: 200, body };
  },

  "repos/get-content": async (ctx) => {
    const repo = visibleRepo(ctx);
    const path = param(ctx, "path").replace(/^\/+|\/+$/g, "");
    const ref = ctx.query.ref ?? repo.defaultBranch;
    const sha = await repo.git.resolveCommit(ref);
    if (sha === undefined) throw new GitHubError(404, `No commit found for the ref ${ref}`);
    const [entry] = await repo.git.lsTree(sha, path);
    if (entry === undefined || entry.path !== path) throw notFound();
    if (entry.type === "tree") {
      const children = (await repo.git.lsTree(`${sha}:${path}`)).map((child) => ({
        ...child,
        path: `${path}/${child.path}`,
      }));
      return { status: 200, body: contentDirectory(ctx.site, repo, ref, children) };
    }
    const content = await repo.git.readBlob(entry.sha);
    // Octokit's mediaType: { format: "raw" } asks for the bare file instead of the JSON envelope.
    if ((ctx.headers.get("accept") ?? "").includes(".raw")) {
      return {
        status: 200,
        raw: { data: content, contentType: "application/vnd.github.raw; charset=utf-8" },
      };
    }
    return { status: 200, body: contentFile(ctx.site, repo, ref, entry, content) };
  },

  "repos/download-tarball-archive": async (ctx) => {
    const repo = visibleRepo(ctx);
    const sha = await repo.git.resolveCommit(param(ctx, "ref"));
    if (sha === undefined) throw notFound();
    // GitHub answers with a redirect to codeload; the fake's codeload lives on the same listener.
    const location = `${ctx.origin}/_codeload/${repo.owner.login}/${repo.name}/legacy.tar.gz/${sha}`;
    return { status: 302, body: null, headers: { location } };
  },

  "repos/get-release-by-tag": async (ctx) => {
    const repo = visibleRepo(ctx);
    const tag = param(ctx, "tag");
    const found = repo.releases.find((candidate) => candidate.tag === tag);
    if (found === undefined) throw notFound();
    return { status: 200, body: release(ctx.site, repo, found) };
  },

  "git/get-ref": async (ctx) => {
    const repo = visibleRepo(ctx);
    const ref = qualify(param(ctx, "ref"));
    const [found] = (await repo.git.listRefs(ref)).filter((candidate) => candidate.ref === ref);
    if (found === undefined) throw notFound();
    return { status: 200, body: gitRef(ctx.site, repo, found.ref, found.sha, found.type) };
  },

  // Every ref whose name starts with `refs/<ref>` (a string prefix, not a path: `tags/v1` matches
  // `refs/tags/v1.2`); an empty list when none does, as GitHub answers.
  "git/list-matching-refs": async (ctx) => {
    const repo = visibleRepo(ctx);
    const prefix = qualify(param(ctx, "ref"));
    const folder = prefix.slice(0, prefix.lastIndexOf("/") + 1);
    const refs = (await repo.git.listRefs(folder)).filter((candidate) => candidate.ref.startsWith(prefix));
    refs.sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
    return {
      status: 200,
      body: refs.map((found) => gitRef(ctx.site, repo, found.ref, found.sha, found.type)),
    };
  },

  "git/create-ref": async (ctx) => {
    const repo = visibleRepo(ctx);
    const body = parseBody(v.object({ ref: v.string(), sha: v.string() }), ctx);
    if (
      !body.ref.startsWith("refs/") ||
      body.ref.split("/").length < 3 ||
      !(await repo.git.isValidRefName(body.ref))
    ) {
      throw new GitHubError(422, `${body.ref} is not a valid ref name.`);
    }
    const type = isFullSha(body.sha) ? await repo.git.objectType(body.sha) : undefined;
    if (type === undefined) throw new GitHubError(422, "Object does not exist");
    if (!(await repo.git.updateRef(body.ref, body.sha, ZERO_SHA)))
      throw new GitHubError(422, "Reference already exists");
    if (body.ref.startsWith("refs/heads/")) ctx.world.touchBranch(repo, body.ref.slice("refs/heads/".length));
    return { status: 201, body: gitRef(ctx.site, repo, body.ref, body.sha, type) };
  },

  "git/update-ref": async (ctx) => {
    const repo = visibleRepo(ctx);
    const ref = qualify(param(ctx, "ref"));
    const body = parseBody(v.object({ sha: v.string(), force: v.optional(v.boolean()) }), ctx);
    const current = await repo.git.refSha(ref);
    if (current === undefined || !ref.startsWith("refs/"))
      throw new GitHubError(422, "Reference does not exist");
    const type = isFullSha(body.sha) ? await repo.git.objectType(body.sha) : undefined;
    if (type === undefined) throw new GitHubError(422, "Object does not exist");
    if (body.force !== true && !(await repo.git.isAncestor(current, body.sha))) {
      throw new GitHubError(422, "Update is not a fast forward");
    }
    if (ref.startsWith("refs/heads/")) {
      const refused = protectionRefusal(repo, ref.slice("refs/heads/".length), body.sha);
      if (refused !== undefined) throw new GitHubError(422, refused);
    }
    if (!(await repo.git.updateRef(ref, body.sha, current)))
      throw new GitHubError(409, "Reference update conflict");
    if (ref.startsWith("refs/heads/")) ctx.world.touchBranch(repo, ref.slice("refs/heads/".length));
    return { status: 200, body: gitRef(ctx.site, repo, ref, body.sha, type) };
  },

  "git/delete-ref": async (ctx) => {
    const repo = visibleRepo(ctx);
    const ref = qualify(param(ctx, "ref"));
    const current = await repo.git.refSha(ref);
    if (current === undefined) throw new GitHubError(422, "Reference does not exist");
    if (ref.startsWith("refs/heads/")) {
      const branch = ref.slice("refs/heads/".length);
      // GitHub closes the open pull requests whose head or base branch is deleted.
      for (const pull of ctx.world.pullsOnBranch(repo, branch)) {
        if (pull.state === "open") await closePull(ctx, pull);
      }
    }
    await repo.git.deleteRef(ref);
    return { status: 204, body: null };
  },

  "git/get-commit": async (ctx) => {
    const repo = visibleRepo(ctx);
    const sha = param(ctx, "commit_sha");
    if (!isFullSha(sha) || (await repo.git.objectType(sha)) !== "commit") throw notFound();
    const object = await repo.git.readCommit(sha);
    return {
      status: 200,
      body: gitCommit(ctx.site, repo, object, verification(object, repo.signed.get(sha))),
    };
  },

  "git/get-tree": async (ctx) => {
    const repo = visibleRepo(ctx);
    const named = param(ctx, "tree_sha");
    // GitHub takes a tree SHA, or anything naming a commit (whose root tree it lists).
    const isTree = isFullSha(named) && (await repo.git.objectType(named)) === "tree";
    const commit = isTree ? undefined : await repo.git.resolveCommit(named);
    const sha = isTree ? named : commit && (await repo.git.readCommit(commit)).tree;
    if (!sha) throw notFound();
    // `recursive` set to any value (GitHub's docs: even "0" or "false") lists the subtrees' entries
    // too, each directory before what it holds. A gitlink (mode 160000) is listed, never entered.
    const entries: TreeEntry[] = [];
    const walk = async (dir: string, prefix: string): Promise<void> => {
      for (const entry of await repo.git.lsTree(dir)) {
        const path = `${prefix}${entry.path}`;
        entries.push({ ...entry, path });
        if (ctx.query.recursive !== undefined && entry.type === "tree") await walk(entry.sha, `${path}/`);
      }
    };
    await walk(sha, "");
    return { status: 200, body: gitTree(ctx.site, repo, sha, entries) };
  },

  "git/create-blob": async (ctx) => {
    const repo = visibleRepo(ctx);
    const body = parseBody(v.object({ content: v.string(), encoding: v.optional(v.string()) }), ctx);
    const encoding = body.encoding ?? "utf-8";
    if (encoding !== "utf-8" && encoding !== "base64") {
      throw new GitHubError(422, `encoding must be utf-8 or base64, not ${encoding}`);
    }
    const content =
      encoding === "base64" ? Buffer.from(body.content, "base64") : Buffer.from(body.content, "utf8");
    const sha = await repo.git.writeBlob(content);
    return { status: 201, body: shortBlob(ctx.site, repo, sha) };
  },

  "git/create-tree": async (ctx) => {
    const repo = visibleRepo(ctx);
    const body = parseBody(TreeBody, ctx);
    if (body.base_tree !== undefined) {
      const type = isFullSha(body.base_tree) ? await repo.git.objectType(body.base_tree) : undefined;
      if (type !== "tree") throw new GitHubError(422, "base_tree is not a valid tree oid");
    }
    const changes: TreeChange[] = [];
    for (const [index, entry] of body.tree.entries()) {
      const { path, mode, type } = entry;
      if (path === undefined || mode === undefined || type === undefined) {
        throw new GitHubError(422, "Must supply a valid tree.path, tree.mode and tree.type", [
          { resource: "Tree", field: "tree", code: "missing_field", index },
        ]);
      }
      if (type !== "blob" && type !== "tree" && type !== "commit")
        throw new GitHubError(422, `tree.type ${type} is invalid`);
      if (entry.content !== undefined && entry.sha !== undefined) {
        throw new GitHubError(422, "Must supply either tree.sha or tree.content, not both");
      }
      if (entry.content !== undefined) {
        changes.push({ path, mode, type: "blob", content: Buffer.from(entry.content, "utf8") });
        continue;
      }
      if (entry.sha === undefined) throw new GitHubError(422, "Must supply either tree.sha or tree.content");
      if (entry.sha !== null && type !== "commit") {
        const actual = isFullSha(entry.sha) ? await repo.git.objectType(entry.sha) : undefined;
        if (actual !== type) throw new GitHubError(422, `tree.sha ${entry.sha} is not a valid ${type}`);
      }
      changes.push({ path, mode, type, sha: entry.sha });
    }
    const sha = await repo.git.buildTree(body.base_tree, changes);
    return { status: 201, body: gitTree(ctx.site, repo, sha, await repo.git.lsTree(sha)) };
  },

  "git/create-commit": async (ctx) => {
    const repo = visibleRepo(ctx);
    const actor = actorOf(ctx);
    const body = parseBody(CommitBody, ctx);
    if (!isFullSha(body.tree) || (await repo.git.objectType(body.tree)) !== "tree") {
      throw new GitHubError(422, "Tree SHA does not exist");
    }
    const parents = body.parents ?? [];
    for (const parent of parents) {
      if (!isFullSha(parent) || (await repo.git.objectType(parent)) !== "commit") {
        throw new GitHubError(422, "Parent SHA does not exist or is not a commit object");
      }
    }
    const now = new Date();
    // Without an author GitHub writes the commit as the token's account and signs it itself: the
    // "Verified" badge flake-bump relies on by not sending author or committer.
    const selfMade =
      body.author === undefined && body.committer === undefined && body.signature === undefined;
    const login = actor.login;
    const author =
      body.author === undefined
        ? { name: login, email: `${actor.id}+${login}@users.noreply.github.com`, date: now }
        : identity(body.author, now);
    const committer =
      body.committer !== undefined
        ? identity(body.committer, now)
        : body.author !== undefined
          ? author
          : { name: "GitHub", email: "noreply@github.com", date: now };
    const sha = await repo.git.writeCommit({
      tree: body.tree,
      parents,
      author,
      committer,
      message: body.message,
    });
    if (selfMade) repo.signed.set(sha, now);
    const object = await repo.git.readCommit(sha);
    return {
      status: 201,
      body: gitCommit(ctx.site, repo, object, verification(object, repo.signed.get(sha))),
    };
  },

  "pulls/list": async (ctx) => {
    const repo = visibleRepo(ctx);
    const state = ctx.query.state ?? "open";
    const head = ctx.query.head;
    let pulls = repo.pulls.filter((pull) => state === "all" || pull.state === state);
    // A head filter without "owner:" is silently ignored by GitHub (a classic source of wrong-PR bugs;
    // community discussion #24354), so the fake ignores it too rather than hiding such a bug.
    if (head?.includes(":")) {
      const wanted = headOf(repo, head);
      pulls = pulls.filter((pull) => pull.headRepo === wanted.repo && pull.headRef === wanted.ref);
    }
    if (ctx.query.base !== undefined) pulls = pulls.filter((pull) => pull.baseRef === ctx.query.base);
    const sort = ctx.query.sort ?? "created";
    const key = (pull: PullState) =>
      sort === "updated" ? pull.updatedAt.getTime() : pull.createdAt.getTime();
    const direction = ctx.query.direction ?? "desc";
    pulls = [...pulls].sort(
      (a, b) => (key(a) - key(b) || a.number - b.number) * (direction === "asc" ? 1 : -1),
    );
    const page = pageOf(pulls, ctx.query);
    const body = await Promise.all(
      page.map(async (pull) => pullRequestSimple(ctx.site, await ctx.world.pullInfo(repo, pull))),
    );
    return { status: 200, body };
  },

  "pulls/create": async (ctx) => {
    const repo = visibleRepo(ctx);
    const actor = actorOf(ctx);
    const body = parseBody(
      v.object({
        title: v.optional(v.string()),
        head: v.string(),
        base: v.string(),
        body: v.optional(v.string()),
        draft: v.optional(v.boolean()),
      }),
      ctx,
    );
    const head = headOf(repo, body.head);
    const headSha = await head.repo.git.refSha(`refs/heads/${head.ref}`);
    const baseSha = await repo.git.refSha(`refs/heads/${body.base}`);
    const invalid = (field: string): FieldError => ({ resource: "PullRequest", field, code: "invalid" });
    if (headSha === undefined) throw new GitHubError(422, "Validation Failed", [invalid("head")]);
    if (baseSha === undefined) throw new GitHubError(422, "Validation Failed", [invalid("base")]);
    if (body.title === undefined || body.title === "") {
      throw new GitHubError(422, "Validation Failed", [
        { resource: "PullRequest", field: "title", code: "missing_field" },
      ]);
    }
    if (openPullFor(repo, head.repo, head.ref, body.base) !== undefined) {
      const message = `A pull request already exists for ${head.repo.owner.login}:${head.ref}.`;
      throw new GitHubError(422, "Validation Failed", [{ resource: "PullRequest", code: "custom", message }]);
    }
    if ((await repo.git.commitsBetween(baseSha, headSha)).length === 0) {
      const message = `No commits between ${body.base} and ${body.head}`;
      throw new GitHubError(422, "Validation Failed", [{ resource: "PullRequest", code: "custom", message }]);
    }
    const now = new Date();
    const pull: PullState = {
      id: ctx.world.id(),
      number: repo.nextNumber,
      title: body.title,
      body: body.body ?? null,
      state: "open",
      draft: body.draft ?? false,
      user: actor,
      headRepo: head.repo,
      headRef: head.ref,
      baseRef: body.base,
      labels: [],
      requestedReviewers: [],
      createdAt: now,
      updatedAt: now,
      closedAt: null,
      frozen: undefined,
      autoMerge: undefined,
      merged: undefined,
    };
    repo.nextNumber += 1;
    repo.pulls.push(pull);
    return { status: 201, body: await renderPull(ctx, repo, pull) };
  },

  "pulls/get": async (ctx) => {
    const repo = visibleRepo(ctx);
    return { status: 200, body: await renderPull(ctx, repo, findPull(ctx, repo, "pull_number")) };
  },

  "pulls/merge": async (ctx) => {
    const repo = visibleRepo(ctx);
    const pull = findPull(ctx, repo, "pull_number");
    const body = parseBody(
      v.nullish(
        v.object({
          commit_title: v.optional(v.string()),
          commit_message: v.optional(v.string()),
          sha: v.optional(v.string()),
          merge_method: v.optional(v.picklist(["merge", "squash", "rebase"])),
        }),
      ),
      ctx,
    );
    const method = body?.merge_method ?? "merge";
    try {
      const sha = await mergePull(ctx.world, repo, pull, {
        method: method === "merge" ? "MERGE" : method === "squash" ? "SQUASH" : "REBASE",
        actor: actorOf(ctx),
        sha: body?.sha,
        title: body?.commit_title,
        message: body?.commit_message,
      });
      return { status: 200, body: { sha, merged: true, message: "Pull Request successfully merged" } };
    } catch (error) {
      if (error instanceof MergeRefusal) throw new GitHubError(error.status, error.message);
      throw error;
    }
  },

  "pulls/update": async (ctx) => {
    const repo = visibleRepo(ctx);
    const pull = findPull(ctx, repo, "pull_number");
    const body = parseBody(
      v.object({
        title: v.optional(v.string()),
        body: v.optional(v.string()),
        state: v.optional(v.picklist(["open", "closed"])),
        base: v.optional(v.string()),
      }),
      ctx,
    );
    if (body.base !== undefined && (await repo.git.refSha(`refs/heads/${body.base}`)) === undefined) {
      throw new GitHubError(422, "Validation Failed", [
        { resource: "PullRequest", field: "base", code: "invalid" },
      ]);
    }
    if (body.state === "open" && pull.state === "closed") {
      const headSha = await pull.headRepo.git.refSha(`refs/heads/${pull.headRef}`);
      if (
        headSha === undefined ||
        openPullFor(repo, pull.headRepo, pull.headRef, body.base ?? pull.baseRef)
      ) {
        throw new GitHubError(422, "Validation Failed", [
          {
            resource: "PullRequest",
            code: "custom",
            message: "state cannot be changed. The branch is gone or has an open pull request.",
          },
        ]);
      }
      pull.state = "open";
      pull.closedAt = null;
      pull.frozen = undefined;
    } else if (body.state === "closed" && pull.state === "open") {
      await closePull(ctx, pull);
    }
    if (body.title !== undefined) pull.title = body.title;
    if (body.body !== undefined) pull.body = body.body;
    if (body.base !== undefined) pull.baseRef = body.base;
    pull.updatedAt = new Date();
    return { status: 200, body: await renderPull(ctx, repo, pull) };
  },

  "pulls/request-reviewers": async (ctx) => {
    const repo = visibleRepo(ctx);
    const pull = findPull(ctx, repo, "pull_number");
    const body = parseBody(
      v.object({
        reviewers: v.optional(v.array(v.string())),
        team_reviewers: v.optional(v.array(v.string())),
      }),
      ctx,
    );
    for (const login of body.reviewers ?? []) {
      if (login.toLowerCase() === pull.user.login.toLowerCase()) {
        throw new GitHubError(422, "Review cannot be requested from pull request author.");
      }
      const account = ctx.world.account(login);
      if (!pull.requestedReviewers.includes(account)) pull.requestedReviewers.push(account);
    }
    pull.updatedAt = new Date();
    return { status: 201, body: pullRequestSimple(ctx.site, await ctx.world.pullInfo(repo, pull)) };
  },

  "issues/add-labels": async (ctx) => {
    const repo = visibleRepo(ctx);
    const pull = findPull(ctx, repo, "issue_number");
    const body = parseBody(LabelsBody, ctx);
    for (const item of body.labels) {
      const name = typeof item === "string" ? item : item.name;
      // Adding a label the repository lacks creates it, grey, as GitHub does.
      const found =
        findLabel(repo, name) ?? createLabel(ctx, repo, { name, color: "ededed", description: null });
      if (!pull.labels.includes(found)) pull.labels.push(found);
    }
    pull.updatedAt = new Date();
    return { status: 200, body: pull.labels.map((info) => label(ctx.site, repo, info)) };
  },

  "issues/list-labels-for-repo": async (ctx) => {
    const repo = visibleRepo(ctx);
    return { status: 200, body: pageOf(repo.labels, ctx.query).map((info) => label(ctx.site, repo, info)) };
  },

  "issues/create-label": async (ctx) => {
    const repo = visibleRepo(ctx);
    const body = parseBody(
      v.object({ name: v.string(), color: v.optional(v.string()), description: v.optional(v.string()) }),
      ctx,
    );
    if (findLabel(repo, body.name) !== undefined) {
      throw new GitHubError(422, "Validation Failed", [
        { resource: "Label", field: "name", code: "already_exists" },
      ]);
    }
    const color = body.color ?? "ededed";
    if (!/^[0-9a-fA-F]{6}$/.test(color)) {
      throw new GitHubError(422, "Validation Failed", [
        { resource: "Label", field: "color", code: "invalid" },
      ]);
    }
    const created = createLabel(ctx, repo, { name: body.name, color, description: body.description ?? null });
    return { status: 201, body: label(ctx.site, repo, created) };
  },

  "issues/create-comment": async (ctx) => {
    const repo = visibleRepo(ctx);
    const pull = findPull(ctx, repo, "issue_number");
    const body = parseBody(v.object({ body: v.string() }), ctx);
    const comment = {
      id: ctx.world.id(),
      issueNumber: pull.number,
      body: body.body,
      user: actorOf(ctx),
      createdAt: new Date(),
    };
    repo.comments.push(comment);
    pull.updatedAt = comment.createdAt;
    return { status: 201, body: issueComment(ctx.site, repo, comment) };
  },
};

function findLabel(repo: FakeRepo, name: string): LabelInfo | undefined {
  return repo.labels.find((candidate) => candidate.name.toLowerCase() === name.toLowerCase());
}

function createLabel(ctx: HandlerContext, repo: FakeRepo, spec: Omit<LabelInfo, "id">): LabelInfo {
  const created: LabelInfo = { id: ctx.world.id(), ...spec };
  repo.labels.push(created);
  return created;
}

async function closePull(ctx: HandlerContext, pull: PullState): Promise<void> {
  const repo = ctx.world.repoOfPull(pull);
  const info = await ctx.world.pullInfo(repo, pull);
  pull.state = "closed";
  pull.closedAt = new Date();
  pull.updatedAt = pull.closedAt;
  // A closed pull request keeps pointing at the commits it had, even once its branch is deleted.
  pull.frozen = { headSha: info.head.sha, baseSha: info.base.sha };
}

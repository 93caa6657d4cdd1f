/**
 * GitHub's GraphQL API (`POST /graphql`; `/api/graphql` on GitHub Enterprise Server) for the fake.
 * Queries are parsed, validated and executed by graphql-js against GitHub's own public schema
 * (`@octokit/graphql-schema`), so a query GitHub would reject is rejected here too, and a field
 * the fake does not resolve fails loudly instead of answering null. The resolvers are plain objects
 * over the fake's world: a field is a value, or a function of its arguments.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  buildSchema,
  type ExecutionResult,
  execute,
  type GraphQLError,
  type GraphQLSchema,
  parse,
  validate,
} from "graphql";
import * as v from "valibot";
import { isFullSha } from "./git.ts";
import { type MergeStateStatus, mergeStateStatus, methodRefusal } from "./merge.ts";
import { type Account, nodeId, type Site, timestamp } from "./objects.ts";
import type { FakeRepo, PullState, World } from "./state.ts";

let loading: Promise<{ schema: GraphQLSchema; loadMs: number }> | undefined;

/** GitHub's public GraphQL schema, built once per process (about 200 ms). */
export function graphqlSchema(): Promise<{ schema: GraphQLSchema; loadMs: number }> {
  loading ??= (async () => {
    const started = performance.now();
    const dir = dirname(fileURLToPath(import.meta.resolve("@octokit/graphql-schema")));
    const idl = await Bun.file(join(dir, "schema.graphql")).text();
    // The published SDL declares two EnterpriseOwnerInfo fields twice (same name, same type), which
    // SDL validation rejects; skipping it changes nothing else, and validateSchema still runs on use.
    const schema = buildSchema(idl, { assumeValidSDL: true });
    return { schema, loadMs: performance.now() - started };
  })();
  return loading;
}

/** An error GitHub itself reports in `errors[]`, with its `type`. */
export class GraphQLFailure extends Error {
  constructor(
    readonly type: "NOT_FOUND" | "UNPROCESSABLE" | "FORBIDDEN",
    message: string,
  ) {
    super(message);
  }
}

export interface GraphQLContext {
  world: World;
  site: Site;
  actor: Account;
}

export interface GraphQLOutcome {
  body: unknown;
  /** What GitHub's schema rejects: the request is at fault. */
  rejected: string[];
  /** Errors GitHub never sends: a field the fake does not resolve, or a bug in it. */
  unimplemented: string[];
}

const Body = v.object({
  query: v.string(),
  variables: v.optional(v.nullable(v.record(v.string(), v.unknown()))),
  operationName: v.optional(v.nullable(v.string())),
});

function githubError(error: GraphQLError): Record<string, unknown> {
  const type = error.originalError instanceof GraphQLFailure ? error.originalError.type : undefined;
  return {
    ...(type === undefined ? {} : { type }),
    ...(error.path === undefined ? {} : { path: error.path }),
    ...(error.locations === undefined ? {} : { locations: error.locations }),
    message: error.message,
  };
}

/** Runs one GraphQL request body as GitHub would answer it (always HTTP 200 once authenticated). */
export async function runGraphQL(text: string, context: GraphQLContext): Promise<GraphQLOutcome> {
  const { schema } = await graphqlSchema();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    const message = "Problems parsing JSON";
    return { body: { errors: [{ message }] }, rejected: [message], unimplemented: [] };
  }
  const body = v.safeParse(Body, json);
  if (!body.success) {
    const message = `A query attribute must be specified and must be a string (${v.summarize(body.issues)})`;
    return { body: { errors: [{ message }] }, rejected: [message], unimplemented: [] };
  }
  let document: ReturnType<typeof parse>;
  try {
    document = parse(body.output.query);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { body: { errors: [{ message }] }, rejected: [message], unimplemented: [] };
  }
  const invalid = validate(schema, document);
  if (invalid.length > 0) {
    return {
      body: { errors: invalid.map(githubError) },
      rejected: invalid.map((error) => error.message),
      unimplemented: [],
    };
  }
  const result: ExecutionResult = await execute({
    schema,
    document,
    rootValue: root(context),
    variableValues: body.output.variables ?? {},
    operationName: body.output.operationName ?? undefined,
  });
  const rejected: string[] = [];
  const unimplemented: string[] = [];
  for (const error of result.errors ?? []) {
    if (error.originalError instanceof GraphQLFailure) continue;
    // Variable coercion fails before any field runs: the caller sent what the schema rejects.
    if (error.path === undefined) rejected.push(error.message);
    else
      unimplemented.push(
        `${error.path.join(".")}: ${error.message} (resolve it in tests/fake-github/graphql.ts)`,
      );
  }
  const errors = result.errors?.map(githubError);
  return {
    body: result.data === undefined ? { errors } : { data: result.data, ...(errors ? { errors } : {}) },
    rejected,
    unimplemented,
  };
}

// --- resolvers ---------------------------------------------------------------------------------

type Node = Record<string, unknown>;

function actorNode(site: Site, account: Account): Node {
  return {
    __typename: account.type === "Bot" ? "Bot" : account.type === "Organization" ? "Organization" : "User",
    login: account.login,
    url: `${site.html}/${account.login}`,
  };
}

/**
 * A git object. Its type is passed in when the caller already knows it (a ref listing says), and a
 * commit's fields read the commit only when asked: a nightly's 100 aliases then cost one git call each.
 */
async function objectNode(
  c: GraphQLContext,
  repo: FakeRepo,
  sha: string,
  knownType?: string,
): Promise<Node | null> {
  const type = knownType ?? (await repo.git.objectType(sha));
  const base = { id: nodeId(type ?? "Object", Number.parseInt(sha.slice(0, 12), 16)), oid: sha };
  const common = { ...base, abbreviatedOid: sha.slice(0, 7), repository: () => repositoryNode(c, repo) };
  if (type === "commit") {
    let reading: ReturnType<typeof repo.git.readCommit> | undefined;
    const read = () => {
      reading ??= repo.git.readCommit(sha);
      return reading;
    };
    const headline = async () => (await read()).message.split("\n")[0] ?? "";
    return {
      __typename: "Commit",
      ...common,
      committedDate: async () => timestamp((await read()).committer.date),
      authoredDate: async () => timestamp((await read()).author.date),
      message: async () => (await read()).message.replace(/\n$/, ""),
      messageHeadline: headline,
      messageBody: async () => (await read()).message.split("\n").slice(1).join("\n").trim(),
      url: `${c.site.html}/${repo.fullName}/commit/${sha}`,
      commitUrl: `${c.site.html}/${repo.fullName}/commit/${sha}`,
      // Verified commits are the ones GitHub made itself (API commits without an author).
      signature: repo.signed.has(sha) ? { __typename: "GpgSignature", isValid: true, state: "VALID" } : null,
    };
  }
  if (type === "tag") {
    const target = await repo.git.resolveCommit(sha);
    return {
      __typename: "Tag",
      ...common,
      target: () => (target === undefined ? null : objectNode(c, repo, target)),
    };
  }
  if (type === "tree") return { __typename: "Tree", ...common };
  if (type === "blob") return { __typename: "Blob", ...common };
  return null;
}

async function refNode(c: GraphQLContext, repo: FakeRepo, qualified: string): Promise<Node | null> {
  const [found] = (await repo.git.listRefs(qualified)).filter((ref) => ref.ref === qualified);
  if (found === undefined) return null;
  const prefix = qualified.startsWith("refs/heads/")
    ? "refs/heads/"
    : qualified.startsWith("refs/tags/")
      ? "refs/tags/"
      : qualified.slice(0, qualified.lastIndexOf("/") + 1);
  return {
    __typename: "Ref",
    id: nodeId("Ref", Number.parseInt(found.sha.slice(0, 12), 16)),
    name: qualified.slice(prefix.length),
    prefix,
    target: () => objectNode(c, repo, found.sha, found.type),
    repository: () => repositoryNode(c, repo),
  };
}

interface RefsArgs {
  refPrefix: string;
  query?: string | null;
  first?: number | null;
  orderBy?: { field: "ALPHABETICAL" | "TAG_COMMIT_DATE"; direction: "ASC" | "DESC" } | null;
}

/**
 * GitHub's `refs(refPrefix:)` connection: the refs under the prefix (named without it), narrowed by
 * `query` (a substring of the name), alphabetical or by the peeled commit's date (TAG_COMMIT_DATE,
 * for tags), at most `first` of them (GitHub caps a page at 100). Only the first page is served.
 */
async function refConnection(c: GraphQLContext, repo: FakeRepo, args: RefsArgs): Promise<Node> {
  const prefix = args.refPrefix;
  if (!prefix.startsWith("refs/") || !prefix.endsWith("/")) {
    throw new GraphQLFailure("UNPROCESSABLE", `refPrefix must start with "refs/" and end with "/"`);
  }
  const listed = (await repo.git.listRefs(prefix)).filter(
    (found) => args.query == null || found.ref.slice(prefix.length).includes(args.query),
  );
  const keyed = await Promise.all(
    listed.map(async (found) => {
      const commit = await repo.git.resolveCommit(found.sha);
      const date = commit === undefined ? 0 : (await repo.git.readCommit(commit)).committer.date.getTime();
      return { found, name: found.ref.slice(prefix.length), date };
    }),
  );
  const byDate = args.orderBy?.field === "TAG_COMMIT_DATE";
  keyed.sort((a, b) => (byDate ? a.date - b.date : 0) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (args.orderBy?.direction === "DESC") keyed.reverse();
  const first = Math.min(args.first ?? 100, 100);
  const page = keyed.slice(0, first);
  const nodes = await Promise.all(page.map(({ found }) => refNode(c, repo, found.ref)));
  return {
    totalCount: keyed.length,
    nodes,
    pageInfo: {
      hasNextPage: keyed.length > page.length,
      hasPreviousPage: false,
      endCursor: null,
      startCursor: null,
    },
  };
}

/** GitHub's `ref(qualifiedName:)`: a full name first, then a short one as a branch, then as a tag. */
async function findRef(c: GraphQLContext, repo: FakeRepo, name: string): Promise<Node | null> {
  if (name.startsWith("refs/")) return refNode(c, repo, name);
  return (await refNode(c, repo, `refs/heads/${name}`)) ?? (await refNode(c, repo, `refs/tags/${name}`));
}

const STATE_OF = (pull: PullState) =>
  pull.merged !== undefined ? "MERGED" : pull.state === "open" ? "OPEN" : "CLOSED";

async function pullNode(c: GraphQLContext, repo: FakeRepo, pull: PullState): Promise<Node> {
  const info = await c.world.pullInfo(repo, pull);
  return {
    __typename: "PullRequest",
    id: nodeId("PullRequest", pull.id),
    databaseId: pull.id,
    number: pull.number,
    title: pull.title,
    body: pull.body ?? "",
    state: STATE_OF(pull),
    closed: pull.state === "closed",
    merged: pull.merged !== undefined,
    mergedAt: pull.merged === undefined ? null : timestamp(pull.merged.at),
    isDraft: pull.draft,
    url: `${c.site.html}/${repo.fullName}/pull/${pull.number}`,
    headRefName: pull.headRef,
    headRefOid: info.head.sha,
    baseRefName: pull.baseRef,
    baseRefOid: info.base.sha,
    mergeStateStatus: () => mergeStateStatus(repo, pull),
    mergeCommit: () => (pull.merged === undefined ? null : objectNode(c, repo, pull.merged.sha)),
    autoMergeRequest:
      pull.autoMerge === undefined
        ? null
        : {
            enabledAt: timestamp(pull.autoMerge.enabledAt),
            enabledBy: actorNode(c.site, pull.autoMerge.enabledBy),
            mergeMethod: pull.autoMerge.mergeMethod,
            pullRequest: () => pullNode(c, repo, pull),
          },
    repository: () => repositoryNode(c, repo),
  };
}

function repositoryNode(c: GraphQLContext, repo: FakeRepo): Node {
  return {
    __typename: "Repository",
    id: nodeId("Repository", repo.id),
    databaseId: repo.id,
    name: repo.name,
    nameWithOwner: repo.fullName,
    url: `${c.site.html}/${repo.fullName}`,
    isPrivate: repo.private,
    isFork: repo.parent !== undefined,
    autoMergeAllowed: repo.settings.allowAutoMerge,
    mergeCommitAllowed: repo.settings.allowMergeCommit,
    squashMergeAllowed: repo.settings.allowSquashMerge,
    rebaseMergeAllowed: repo.settings.allowRebaseMerge,
    defaultBranchRef: () => refNode(c, repo, `refs/heads/${repo.defaultBranch}`),
    ref: ({ qualifiedName }: { qualifiedName: string }) => findRef(c, repo, qualifiedName),
    refs: (args: RefsArgs) => refConnection(c, repo, args),
    object: async ({ oid, expression }: { oid?: string; expression?: string }) => {
      const sha =
        oid !== undefined
          ? isFullSha(oid)
            ? oid
            : undefined
          : expression === undefined
            ? undefined
            : await repo.git.resolveCommit(expression);
      return sha === undefined ? null : objectNode(c, repo, sha);
    },
    pullRequest: ({ number }: { number: number }) => {
      const pull = repo.pulls.find((candidate) => candidate.number === number);
      if (pull === undefined) {
        throw new GraphQLFailure(
          "NOT_FOUND",
          `Could not resolve to a PullRequest with the number of ${number}.`,
        );
      }
      return pullNode(c, repo, pull);
    },
  };
}

function visible(c: GraphQLContext, owner: string, name: string): FakeRepo {
  const repo = c.world.findRepo(owner, name);
  if (repo === undefined) {
    throw new GraphQLFailure(
      "NOT_FOUND",
      `Could not resolve to a Repository with the name '${owner}/${name}'.`,
    );
  }
  return repo;
}

function pullById(c: GraphQLContext, id: string): { repo: FakeRepo; pull: PullState } {
  for (const repo of c.world.allRepos()) {
    const pull = repo.pulls.find((candidate) => nodeId("PullRequest", candidate.id) === id);
    if (pull !== undefined) return { repo, pull };
  }
  throw new GraphQLFailure("NOT_FOUND", `Could not resolve to a node with the global id of '${id}'`);
}

interface AutoMergeInput {
  pullRequestId: string;
  mergeMethod: "MERGE" | "SQUASH" | "REBASE";
  expectedHeadOid?: string | null;
  clientMutationId?: string | null;
}

// Why auto-merge cannot be armed, in GitHub's words ("Pull request" is prefixed twice by GitHub).
const CANNOT_ARM: Partial<Record<MergeStateStatus, string>> = {
  CLEAN: "Pull request Pull request is in clean status",
  DRAFT: "Pull request Can't enable auto-merge for this pull request.",
  DIRTY: "Pull request Can't enable auto-merge for this pull request.",
  UNKNOWN: "Pull request Can't enable auto-merge for this pull request.",
};

function root(c: GraphQLContext): Node {
  return {
    repository: ({ owner, name }: { owner: string; name: string }) =>
      repositoryNode(c, visible(c, owner, name)),
    viewer: () => actorNode(c.site, c.actor),

    enablePullRequestAutoMerge: async ({ input }: { input: AutoMergeInput }) => {
      const { repo, pull } = pullById(c, input.pullRequestId);
      if (!repo.settings.allowAutoMerge) {
        throw new GraphQLFailure("UNPROCESSABLE", "Auto merge is not allowed for this repository");
      }
      const notAllowed = methodRefusal(repo, input.mergeMethod);
      if (notAllowed !== undefined) throw new GraphQLFailure("UNPROCESSABLE", `Pull request ${notAllowed}`);
      const head = (await c.world.pullInfo(repo, pull)).head.sha;
      if (input.expectedHeadOid != null && input.expectedHeadOid !== head) {
        throw new GraphQLFailure(
          "UNPROCESSABLE",
          "Pull request Head branch was modified. Review and try the merge again.",
        );
      }
      const refusal = CANNOT_ARM[await mergeStateStatus(repo, pull)];
      if (refusal !== undefined) throw new GraphQLFailure("UNPROCESSABLE", refusal);
      pull.autoMerge = { enabledAt: new Date(), enabledBy: c.actor, mergeMethod: input.mergeMethod };
      pull.updatedAt = new Date();
      return {
        clientMutationId: input.clientMutationId ?? null,
        actor: actorNode(c.site, c.actor),
        pullRequest: () => pullNode(c, repo, pull),
      };
    },

    disablePullRequestAutoMerge: async ({
      input,
    }: {
      input: { pullRequestId: string; clientMutationId?: string | null };
    }) => {
      const { repo, pull } = pullById(c, input.pullRequestId);
      if (pull.autoMerge !== undefined) {
        pull.autoMerge = undefined;
        pull.updatedAt = new Date();
      }
      return {
        clientMutationId: input.clientMutationId ?? null,
        actor: actorNode(c.site, c.actor),
        pullRequest: () => pullNode(c, repo, pull),
      };
    },
  };
}

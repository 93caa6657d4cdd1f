/**
 * Which inputs are behind their branch, decided from the lock and the source's own answer — no Nix.
 * A nightly run with everything current then never starts Nix (nor installs it: `bump.ts --check`).
 * GitHub inputs are asked together: one GraphQL request per host and per 100 inputs (aliases, each
 * `ref(qualifiedName:)` or the default branch). Where GraphQL does not answer (a GitHub Enterprise
 * Server without it, a 4xx/5xx) those inputs fall back to REST, one `GET /repos/{o}/{r}/commits`
 * each, and the run says so once. Git inputs ask `git ls-remote`. Anything that cannot be answered
 * this way is "unknown" and left to Nix.
 */
import * as v from "valibot";
import { warn as warnLine } from "../core/actions.ts";
import { chunks, mapBounded } from "../core/bounded.ts";
import { type GitHubSource, githubSource } from "../flake/flakeref.ts";
import type { LockNode } from "../flake/lock.ts";
import { describeGitHubError, noAnswer, type Octokit, statusOf, unreachableOf } from "../github/client.ts";

export type Freshness =
  | { name: string; status: "current"; rev: string }
  | { name: string; status: "outdated"; rev: string | undefined; latest: string }
  | {
      name: string;
      status: "unknown";
      reason: string;
      /**
       * Set when asking failed (no answer, or an error status), as the sentence that names the cause
       * and the fix; absent when the source answered something only Nix can act on (not found, …).
       */
      failure?: string;
    };

const CONCURRENCY = 8;
/** Repositories per GraphQL request: GitHub's own page size, and well inside its node limit. */
export const GRAPHQL_BATCH = 100;

export interface FreshnessDeps {
  /** A client for GitHub inputs; without one they are "unknown". */
  octokit?: Octokit;
  /**
   * The client for inputs on `host` (`?host=`, a GitHub Enterprise Server; undefined: github.com).
   * Default: `octokit` for every host, as GITHUB_API_URL names the one server a workflow talks to.
   * Inputs are batched per host, so one request never mixes two API roots.
   */
  octokitFor?: (host: string | undefined) => Octokit | undefined;
  /** Where the one "falling back to REST" line goes; default: a warning annotation / stderr line. */
  warn?: (message: string) => void;
}

type Answer = string | { reason: string; failure?: string };

/** A request that failed, as an answer: a short reason, and the whole sentence for an error. */
function failed(error: unknown, what: string): { reason: string; failure: string } {
  const status = statusOf(error);
  return {
    reason: status ? `GitHub answered ${status}` : noAnswer(error),
    failure: describeGitHubError(error, what).message,
  };
}

async function gitHead(url: string, ref: string | undefined): Promise<string | undefined> {
  // Loaded here: a run with only GitHub inputs never needs zx.
  const { $ } = await import("zx/core");
  // GIT_TERMINAL_PROMPT=0: a private remote must fail, not wait for a password nobody will type.
  const out = await $({
    nothrow: true,
    quiet: true,
    timeout: "30s",
    env: { ...process.env, GIT_TERMINAL_PROMPT: "0" },
  })`git ls-remote -- ${url} ${ref ?? "HEAD"}`;
  if (out.exitCode !== 0) return undefined;
  const lines = out.stdout.split("\n").filter(Boolean);
  // `ls-remote URL main` may list refs/heads/main and refs/remotes/…/main: prefer the branch.
  const exact = lines.find((line) => /\trefs\/heads\//.test(line)) ?? lines[0];
  return exact?.split("\t")[0];
}

async function restHead(octokit: Octokit, github: GitHubSource): Promise<Answer> {
  try {
    // The list endpoint with per_page=1 answers with the head commit alone; `commits/{ref}` would
    // also send the commit's whole diff, which can be megabytes on a nixpkgs branch.
    const { data } = await octokit.rest.repos.listCommits({
      owner: github.owner,
      repo: github.repo,
      ...(github.ref ? { sha: github.ref } : {}),
      per_page: 1,
    });
    const head = data[0]?.sha;
    return head ?? { reason: "GitHub listed no commits" };
  } catch (error) {
    // Like GraphQL's NOT_FOUND: an answer about the repository (Nix may hold credentials that can).
    if (statusOf(error) === 404)
      return {
        reason: `GitHub has no repository ${github.owner}/${github.repo}, or not for this token (404)`,
      };
    return failed(error, `read the head of ${github.owner}/${github.repo}`);
  }
}

async function otherHead(node: LockNode): Promise<Answer> {
  const original = node.original;
  if (original?.type === "git" && original.url) {
    const ref = original.ref ?? node.locked?.ref;
    const head = await gitHead(original.url, ref);
    return head ?? { reason: "git ls-remote failed" };
  }
  return { reason: `a '${original?.type ?? "unknown"}' input is checked by Nix only` };
}

// What one alias answers: the ref's target, peeled once when it is an annotated tag.
const Target = v.object({
  oid: v.string(),
  target: v.optional(v.object({ oid: v.string() })),
});
const Ref = v.nullable(v.object({ target: v.nullable(Target) }));
const RepositoryHeads = v.nullable(v.object({ ref: v.optional(Ref), defaultBranchRef: v.optional(Ref) }));
const BatchData = v.record(v.string(), RepositoryHeads);
const AliasError = v.object({
  type: v.optional(v.string()),
  path: v.optional(v.array(v.union([v.string(), v.number()]))),
  message: v.string(),
});
/** What Octokit's GraphqlResponseError carries: partial data beside the errors. */
const PartialAnswer = v.object({ data: v.optional(v.unknown()), errors: v.array(AliasError) });

const TARGET = "target { oid ... on Tag { target { oid } } }";

/** The query and variables asking for every source's head, one alias `iN` per source. */
export function headsQuery(sources: readonly GitHubSource[]): {
  query: string;
  variables: Record<string, string>;
} {
  const declarations: string[] = [];
  const fields: string[] = [];
  const variables: Record<string, string> = {};
  sources.forEach((source, i) => {
    declarations.push(`$o${i}: String!`, `$n${i}: String!`);
    variables[`o${i}`] = source.owner;
    variables[`n${i}`] = source.repo;
    let selection = `defaultBranchRef { ${TARGET} }`;
    if (source.ref) {
      declarations.push(`$r${i}: String!`);
      variables[`r${i}`] = source.ref;
      // A short name is looked up as a branch, then as a tag: GitHub's rule, as for REST's `sha`.
      selection = `ref(qualifiedName: $r${i}) { ${TARGET} }`;
    }
    fields.push(`i${i}: repository(owner: $o${i}, name: $n${i}) { ${selection} }`);
  });
  return { query: `query (${declarations.join(", ")}) {\n  ${fields.join("\n  ")}\n}`, variables };
}

function headOf(answer: v.InferOutput<typeof RepositoryHeads> | undefined, source: GitHubSource): Answer {
  const name = `${source.owner}/${source.repo}`;
  if (answer === null || answer === undefined) return { reason: `GitHub has no repository ${name}` };
  const ref = source.ref ? answer.ref : answer.defaultBranchRef;
  const target = ref?.target;
  if (target === undefined || target === null) {
    return { reason: source.ref ? `GitHub has no ref '${source.ref}' in ${name}` : `${name} is empty` };
  }
  return target.target?.oid ?? target.oid;
}

/**
 * Heads of up to GRAPHQL_BATCH sources in one GraphQL request. `undefined` for the whole batch when
 * GraphQL itself did not answer; per source, undefined when only its alias failed for a reason other
 * than "not found" (REST may still see it: fine-grained tokens and SAML are enforced per API).
 */
async function graphqlHeads(
  octokit: Octokit,
  sources: readonly GitHubSource[],
): Promise<{ heads: (Answer | undefined)[] } | { failed: string } | { unreachable: Answer }> {
  const { query, variables } = headsQuery(sources);
  let data: unknown;
  let errors: v.InferOutput<typeof AliasError>[] = [];
  try {
    data = await octokit.graphql(query, variables);
  } catch (error) {
    const partial = v.safeParse(PartialAnswer, error);
    // A partial answer: some aliases failed, the rest are in `data`.
    if (!partial.success || partial.output.data === undefined || partial.output.data === null) {
      // REST is on the same host: asking it would only fail again, once per input.
      if (unreachableOf(error) !== undefined) {
        return { unreachable: failed(error, `ask GitHub for the heads of ${sources.length} input(s)`) };
      }
      const status = statusOf(error);
      return { failed: status ? `HTTP ${status}` : error instanceof Error ? error.message : String(error) };
    }
    data = partial.output.data;
    errors = partial.output.errors;
  }
  const parsed = v.safeParse(BatchData, data);
  if (!parsed.success) return { failed: `an unexpected answer (${v.summarize(parsed.issues)})` };
  const heads = sources.map((source, i): Answer | undefined => {
    const alias = `i${i}`;
    const error = errors.find((candidate) => candidate.path?.[0] === alias);
    if (error === undefined) return headOf(parsed.output[alias], source);
    if (error.type === "NOT_FOUND") return { reason: `GitHub answered: ${error.message}` };
    return undefined;
  });
  return { heads };
}

/** Heads of every GitHub source, batched per host; REST for whatever GraphQL could not answer. */
async function githubHeads(
  sources: readonly { index: number; source: GitHubSource }[],
  deps: FreshnessDeps,
): Promise<Map<number, Answer>> {
  const answers = new Map<number, Answer>();
  const byHost = new Map<string | undefined, { index: number; source: GitHubSource }[]>();
  for (const entry of sources) {
    const list = byHost.get(entry.source.host) ?? [];
    list.push(entry);
    byHost.set(entry.source.host, list);
  }
  const fallback: { octokit: Octokit; index: number; source: GitHubSource }[] = [];
  let fallbackReason: string | undefined;
  await Promise.all(
    [...byHost].map(async ([host, entries]) => {
      const octokit = deps.octokitFor?.(host) ?? deps.octokit;
      if (octokit === undefined) {
        for (const { index } of entries) answers.set(index, { reason: "no GitHub client" });
        return;
      }
      for (const batch of chunks(entries, GRAPHQL_BATCH)) {
        const result = await graphqlHeads(
          octokit,
          batch.map((entry) => entry.source),
        );
        batch.forEach((entry, i) => {
          const head =
            "heads" in result ? result.heads[i] : "unreachable" in result ? result.unreachable : undefined;
          if (head !== undefined) answers.set(entry.index, head);
          else fallback.push({ octokit, ...entry });
        });
        if ("failed" in result) fallbackReason ??= `${host ?? "github.com"} answered ${result.failed}`;
      }
    }),
  );
  if (fallback.length > 0) {
    const why = fallbackReason ?? "it could not answer for some repositories";
    (deps.warn ?? warnLine)(
      `GitHub's GraphQL API did not answer (${why}); asking REST for ${fallback.length} input(s), one request each`,
    );
    await mapBounded(fallback, CONCURRENCY, async ({ octokit, index, source }) => {
      answers.set(index, await restHead(octokit, source));
    });
  }
  return answers;
}

/**
 * When asking failed for some input and no input got an answer at all, nothing can be told without
 * the network: the sentence naming why (the first failure), for an error; otherwise undefined.
 * Some answers and some failures is a partial answer: the failed inputs are left to Nix.
 */
export function nothingAnswered(answers: readonly Freshness[]): string | undefined {
  if (answers.some((answer) => answer.status !== "unknown")) return undefined;
  for (const answer of answers) if (answer.status === "unknown" && answer.failure) return answer.failure;
  return undefined;
}

export async function checkFreshness(
  inputs: readonly { name: string; node: LockNode }[],
  deps: FreshnessDeps,
): Promise<Freshness[]> {
  const github: { index: number; source: GitHubSource }[] = [];
  inputs.forEach(({ node }, index) => {
    const source = githubSource(node);
    if (source !== undefined) github.push({ index, source });
  });
  const [githubAnswers, others] = await Promise.all([
    githubHeads(github, deps),
    mapBounded(inputs, CONCURRENCY, async ({ node }) =>
      githubSource(node) === undefined ? otherHead(node) : undefined,
    ),
  ]);
  return inputs.map(({ name, node }, index): Freshness => {
    const rev = node.locked?.rev;
    const latest = githubAnswers.get(index) ?? others[index] ?? { reason: "no answer" };
    if (typeof latest !== "string") {
      const { reason, failure } = latest;
      return { name, status: "unknown", reason, ...(failure === undefined ? {} : { failure }) };
    }
    return latest === rev ? { name, status: "current", rev } : { name, status: "outdated", rev, latest };
  });
}

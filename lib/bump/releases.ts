/**
 * The newest release of each release-following input's series, asked the way freshness asks for
 * branch heads: one GraphQL request per host and per GRAPHQL_BATCH inputs, each alias asking whether
 * the pinned ref is a tag (`ref(qualifiedName: "refs/tags/…")`: GitHub's answer, not the ref's shape)
 * and for the repository's most recent tags whose name starts as the series does. Where GraphQL does
 * not answer, REST: `GET /repos/{o}/{r}/git/matching-refs/tags/{prefix}` per input. Annotated tags
 * are peeled to their commit, as Nix locks them. Under min-age an alias also asks each tag's date
 * (`Tag.tagger.date` for an annotated tag, `Commit.committedDate` for a lightweight one) in the same
 * request, and only tags at least that old are candidates.
 */
import * as v from "valibot";
import { warn as warnLine } from "../core/actions.ts";
import { chunks, mapBounded } from "../core/bounded.ts";
import { type GitHubSource, githubSource } from "../flake/flakeref.ts";
import type { LockNode } from "../flake/lock.ts";
import { compareReleases, newestRelease, releaseTag, sameSeries } from "../flake/release.ts";
import { noAnswer, noAnswerFix, type Octokit, statusOf, unreachableOf } from "../github/client.ts";
import { GRAPHQL_BATCH } from "./freshness.ts";

/** A release-following input: its name, its repository, and the tag flake.nix pins. */
export interface ReleaseQuery {
  name: string;
  source: GitHubSource;
  tag: string;
  /** A pushed tag: no newer tag of the series is a candidate (its tags in between are still listed). */
  upTo?: string;
  /** min-age: only a tag at least this old by its date is a candidate. */
  minAgeMs?: number;
}

export type ReleaseAnswer =
  | { name: string; status: "current"; tag: string }
  /** `between`: the series' tags newer than the pinned one and older than `tag`, oldest first. */
  | { name: string; status: "newer"; tag: string; rev: string; between: string[] }
  /** Newer tags exist, but none is `min-age` old yet; `oldEnoughAt` (ms) when the first of them is. */
  | { name: string; status: "young"; tag: string; oldEnoughAt?: number }
  | { name: string; status: "unknown"; reason: string };

/** A tag-pinned input's newest release, and whether its policy lets it move there. */
export interface ReleaseNews {
  name: string;
  follows: boolean;
  from: string;
  answer: ReleaseAnswer;
}

/**
 * The newest release of every input pinned to a ref in flake.nix on GitHub (one batched question;
 * a ref that is no tag on GitHub answers "unknown" and is left out).
 */
export async function releaseNews(
  inputs: readonly { name: string; node: LockNode }[],
  follow: Readonly<Record<string, string>>,
  ask: (queries: readonly ReleaseQuery[]) => Promise<ReleaseAnswer[]>,
  minAgeMs: (name: string) => number | undefined = () => undefined,
): Promise<ReleaseNews[]> {
  const queries: ReleaseQuery[] = [];
  for (const { name, node } of inputs) {
    const source = githubSource(node);
    const tag =
      node.original?.rev === undefined ? node.original?.ref?.replace(/^refs\/tags\//, "") : undefined;
    const age = follow[name] === "releases" ? minAgeMs(name) : undefined;
    if (source !== undefined && tag !== undefined && releaseTag(tag) !== undefined)
      queries.push({ name, source, tag, ...(age !== undefined && { minAgeMs: age }) });
  }
  if (queries.length === 0) return [];
  const answers = await ask(queries);
  return answers.flatMap((answer, i) => {
    const query = queries[i];
    if (query === undefined || answer.status === "unknown") return [];
    return [{ name: answer.name, follows: follow[answer.name] === "releases", from: query.tag, answer }];
  });
}

/** What `--check` says of one: a move for an input that follows releases, information for one held back. */
export function newsLine({ name, follows, from, answer }: ReleaseNews): string | undefined {
  if (answer.status === "young") {
    return follows
      ? `'${name}' waits at ${from}: ${youngLine(answer)}`
      : `${name}: ${answer.tag} is out; held at ${from} by policy`;
  }
  if (answer.status !== "newer")
    return follows ? `'${name}' is at the newest release of its series, ${from}` : undefined;
  return follows
    ? `'${name}' is behind: ${from} → ${answer.tag} (follows releases)`
    : `${name}: ${answer.tag} is out; held at ${from} by policy`;
}

/** Tags listed per input: GitHub's page size; the most recent by commit date come first. */
export const TAGS_PER_INPUT = 100;
const CONCURRENCY = 8;

/** The text of a tag before its first number: the `query` that narrows GitHub's tag list to the series. */
export function seriesPrefix(tag: string): string {
  return releaseTag(tag)?.shape[0] ?? tag;
}

/** What a "young" answer says: the newer tags are younger than min-age, and when the first comes of age. */
export function youngLine(answer: { tag: string; oldEnoughAt?: number }): string {
  const when =
    answer.oldEnoughAt === undefined
      ? ""
      : `; the first is old enough at ${new Date(answer.oldEnoughAt).toISOString().replace(/\.\d+Z$/, "Z")}`;
  return `its newer tags (up to ${answer.tag}) are younger than min-age${when}`;
}

/** A tag as listed: its name, the commit it names (an annotated tag's object peeled once), its date (ms) when asked. */
interface ListedTag {
  name: string;
  rev: string;
  date?: number | undefined;
}

/** The listed tags a query may move to: none newer than its pushed tag, none younger than its min-age. */
function candidates(
  query: ReleaseQuery,
  tags: readonly ListedTag[],
  now: Date,
): { upTo: ListedTag[]; oldEnough: ListedTag[] } {
  const limit = query.upTo === undefined ? undefined : releaseTag(query.upTo);
  const upTo = tags.filter((listed) => {
    const t = releaseTag(listed.name);
    return limit === undefined || (t !== undefined && sameSeries(t, limit) && compareReleases(t, limit) <= 0);
  });
  if (query.minAgeMs === undefined || query.minAgeMs <= 0) return { upTo, oldEnough: upTo };
  const cutoff = now.getTime() - query.minAgeMs;
  return { upTo, oldEnough: upTo.filter((t) => t.date !== undefined && t.date <= cutoff) };
}

/** The answer for one input from its repository's tag list, and whether the pinned ref is a tag. */
export function releaseAnswer(
  query: ReleaseQuery,
  pinnedIsTag: boolean,
  listed: readonly ListedTag[],
  now: Date = new Date(),
): ReleaseAnswer {
  const { name, tag } = query;
  if (!pinnedIsTag)
    return { name, status: "unknown", reason: `'${tag}' is not a tag of ${fullName(query.source)}` };
  const { upTo, oldEnough } = candidates(query, listed, now);
  const newest = newestRelease(
    tag,
    oldEnough.map((t) => t.name),
  );
  const found = oldEnough.find((t) => t.name === newest);
  if (newest === undefined || found === undefined) return youngOrCurrent(query, upTo);
  const tags = upTo;
  const [pinned, last] = [releaseTag(tag), releaseTag(newest)];
  if (pinned === undefined || last === undefined) return { name, status: "current", tag };
  const between = tags
    .flatMap((listed) => {
      const t = releaseTag(listed.name);
      const inside =
        t !== undefined &&
        sameSeries(t, pinned) &&
        compareReleases(t, pinned) > 0 &&
        compareReleases(t, last) < 0;
      return inside ? [t] : [];
    })
    .sort(compareReleases)
    .map((t) => t.tag);
  return { name, status: "newer", tag: newest, rev: found.rev, between };
}

/** No old-enough tag is newer than the pin: "young" when a younger one is (never backwards), else "current". */
function youngOrCurrent(query: ReleaseQuery, upTo: readonly ListedTag[]): ReleaseAnswer {
  const { name, tag } = query;
  const newer = upTo.filter((t) => newestRelease(tag, [t.name]) !== undefined);
  const newest = newestRelease(
    tag,
    newer.map((t) => t.name),
  );
  if (newest === undefined) return { name, status: "current", tag };
  const dates = newer.flatMap((t) => (t.date === undefined ? [] : [t.date]));
  const answer: Extract<ReleaseAnswer, { status: "young" }> = { name, status: "young", tag: newest };
  if (dates.length > 0) answer.oldEnoughAt = Math.min(...dates) + (query.minAgeMs ?? 0);
  return answer;
}

function fullName(source: GitHubSource): string {
  return `${source.owner}/${source.repo}`;
}

const Dated = v.optional(v.string());
const Peeled = v.object({
  oid: v.string(),
  /** A lightweight tag's commit date; asked only under min-age. */
  committedDate: Dated,
  /** An annotated tag's tagger (GitHub's `GitActor`, nullable, as its `date`); asked only under min-age. */
  tagger: v.optional(v.nullable(v.object({ date: v.nullable(v.string()) }))),
  target: v.optional(v.object({ oid: v.string(), committedDate: Dated })),
});
const TagNode = v.object({ name: v.string(), target: v.nullable(Peeled) });
const RepositoryTags = v.nullable(
  v.object({
    pinned: v.nullable(v.object({ name: v.string() })),
    tags: v.object({ nodes: v.array(v.nullable(TagNode)) }),
  }),
);
const BatchData = v.record(v.string(), RepositoryTags);

const PEELED = "target { oid ... on Tag { target { oid } } }";
/** The same, with each tag's date: the tagger's for an annotated tag, the commit's for a lightweight one. */
const PEELED_DATED =
  "target { oid ... on Commit { committedDate } ... on Tag { tagger { date } target { oid ... on Commit { committedDate } } } }";

/** A listed tag's date (ms): an annotated tag's tagger date, else its commit's committer date. */
function tagDate(target: v.InferOutput<typeof Peeled>): number | undefined {
  const text = target.tagger?.date ?? target.target?.committedDate ?? target.committedDate;
  const ms = text === undefined || text === null ? Number.NaN : Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

/** The query and variables for every input's pinned tag and its series' recent tags, one alias `iN` each. */
export function releasesQuery(queries: readonly ReleaseQuery[]): {
  query: string;
  variables: Record<string, string>;
} {
  const declarations: string[] = [];
  const fields: string[] = [];
  const variables: Record<string, string> = {};
  queries.forEach(({ source, tag, minAgeMs }, i) => {
    const peeled = minAgeMs !== undefined && minAgeMs > 0 ? PEELED_DATED : PEELED;
    declarations.push(`$o${i}: String!`, `$n${i}: String!`, `$t${i}: String!`, `$q${i}: String`);
    Object.assign(variables, {
      [`o${i}`]: source.owner,
      [`n${i}`]: source.repo,
      [`t${i}`]: `refs/tags/${tag}`,
      [`q${i}`]: seriesPrefix(tag),
    });
    fields.push(
      `i${i}: repository(owner: $o${i}, name: $n${i}) { pinned: ref(qualifiedName: $t${i}) { name } tags: refs(refPrefix: "refs/tags/", query: $q${i}, first: ${TAGS_PER_INPUT}, orderBy: { field: TAG_COMMIT_DATE, direction: DESC }) { nodes { name ${peeled} } } }`,
    );
  });
  return { query: `query (${declarations.join(", ")}) {\n  ${fields.join("\n  ")}\n}`, variables };
}

/** One batch by GraphQL: an answer per input, or undefined for the whole batch when GraphQL did not answer. */
async function graphqlReleases(
  octokit: Octokit,
  batch: readonly ReleaseQuery[],
  now: Date,
): Promise<ReleaseAnswer[] | string> {
  const { query, variables } = releasesQuery(batch);
  let data: unknown;
  try {
    data = await octokit.graphql(query, variables);
  } catch (error) {
    // REST is on the same host: asking it would only fail again, once per input.
    if (unreachableOf(error) !== undefined) {
      const reason = `could not ask GitHub for the tags: ${noAnswer(error)}; ${noAnswerFix(error)}`;
      return batch.map((query): ReleaseAnswer => ({ name: query.name, status: "unknown", reason }));
    }
    const status = statusOf(error);
    return status ? `HTTP ${status}` : error instanceof Error ? error.message : String(error);
  }
  const parsed = v.safeParse(BatchData, data);
  if (!parsed.success) return `an unexpected answer (${v.summarize(parsed.issues)})`;
  return batch.map((query, i): ReleaseAnswer => {
    const repository = parsed.output[`i${i}`];
    if (repository === null || repository === undefined) {
      return {
        name: query.name,
        status: "unknown",
        reason: `GitHub has no repository ${fullName(query.source)}`,
      };
    }
    const tags = repository.tags.nodes.flatMap((node) =>
      node?.target
        ? [{ name: node.name, rev: node.target.target?.oid ?? node.target.oid, date: tagDate(node.target) }]
        : [],
    );
    return releaseAnswer(query, repository.pinned !== null, tags, now);
  });
}

const MatchingRef = v.object({
  ref: v.string(),
  object: v.object({ sha: v.string(), type: v.string() }),
});

/** One input by REST: the tags matching the series' prefix, annotated ones peeled with one more request each. */
async function restReleases(octokit: Octokit, query: ReleaseQuery): Promise<ReleaseAnswer> {
  const { owner, repo } = query.source;
  if (query.minAgeMs !== undefined && query.minAgeMs > 0) {
    // matching-refs lists no dates; a tag at a time would be a request per tag, so min-age waits for GraphQL.
    return {
      name: query.name,
      status: "unknown",
      reason: "min-age needs the tags' dates, which only GraphQL lists",
    };
  }
  try {
    const { data } = await octokit.rest.git.listMatchingRefs({
      owner,
      repo,
      ref: `tags/${seriesPrefix(query.tag)}`,
    });
    const refs = v.parse(v.array(MatchingRef), data);
    const names = refs.map((ref) => ref.ref.slice("refs/tags/".length));
    const pinnedIsTag = names.includes(query.tag);
    const newest = pinnedIsTag ? newestRelease(query.tag, names) : undefined;
    const chosen = refs.find((ref) => ref.ref === `refs/tags/${newest}`);
    let rev = chosen?.object.sha;
    if (chosen?.object.type === "tag") {
      // An annotated tag: the commit it names, as list-commits resolves a tag (no tag object read).
      const { data: commits } = await octokit.rest.repos.listCommits({
        owner,
        repo,
        sha: chosen.ref,
        per_page: 1,
      });
      rev = commits[0]?.sha;
    }
    const listed = refs.map((ref) => ({
      name: ref.ref.slice("refs/tags/".length),
      rev: ref === chosen && rev !== undefined ? rev : ref.object.sha,
    }));
    return releaseAnswer(query, pinnedIsTag, listed);
  } catch (error) {
    return { name: query.name, status: "unknown", reason: `GitHub answered ${statusOf(error) || "nothing"}` };
  }
}

/**
 * The newest release of each input's series, in the order asked. A quiet night asks one GraphQL
 * request per GRAPHQL_BATCH inputs; REST only when GraphQL did not answer, and the run says so once.
 */
export async function newestReleases(
  queries: readonly ReleaseQuery[],
  deps: { octokit: Octokit; warn?: (message: string) => void; now?: Date },
): Promise<ReleaseAnswer[]> {
  const answers: ReleaseAnswer[] = [];
  const fallback: ReleaseQuery[] = [];
  let why: string | undefined;
  for (const batch of chunks(queries, GRAPHQL_BATCH)) {
    const result = await graphqlReleases(deps.octokit, batch, deps.now ?? new Date());
    if (typeof result === "string") {
      why ??= result;
      fallback.push(...batch);
    } else answers.push(...result);
  }
  if (fallback.length > 0) {
    (deps.warn ?? warnLine)(
      `GitHub's GraphQL API did not answer (${why ?? "no answer"}); asking REST for the tags of ${fallback.length} input(s)`,
    );
    answers.push(...(await mapBounded(fallback, CONCURRENCY, (query) => restReleases(deps.octokit, query))));
  }
  return queries.map(
    (query) =>
      answers.find((answer) => answer.name === query.name) ?? {
        name: query.name,
        status: "unknown",
        reason: "no answer",
      },
  );
}

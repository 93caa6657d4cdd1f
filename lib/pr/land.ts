/**
 * How a computed bump lands on the base branch: left for a human (`review`), merged by GitHub once
 * the repository's required checks pass (`auto`), or committed onto the base branch itself
 * (`direct`). Auto-merge is GitHub's own (GraphQL `enablePullRequestAutoMerge`), so the repository's
 * rules decide when it merges; when nothing is required GitHub refuses to arm it ("clean status") and
 * the PR is merged through REST with the head SHA that was evaluated, so a branch that moved meanwhile
 * is never merged blind. A direct commit goes through the same Git Data API commit (no author, so
 * GitHub signs it) and the same non-forced ref update as the rolling branches.
 */
import * as v from "valibot";
import { RuntimeError } from "../core/errors.ts";
import { readJson } from "../core/files.ts";
import { fullName, type MergeMethod } from "../core/ids.ts";
import { parseLock, rootInputs } from "../flake/lock.ts";
import { type InputChange, lockUnmoved, membersOf, type Report, revOf } from "../flake/report.ts";
import {
  describeGitHubError,
  type Octokit,
  type RepositoryClient,
  request,
  requestUnlessAbsent,
  statusOf,
} from "../github/client.ts";
import { commitsBetween, isOlderOn, sameOrNewer } from "../github/upstream.ts";
import { branchHolds, gitBlobSha, headSha, type OpenPull, openPullOf, readBase, readHead } from "./branch.ts";
import { type BaseCommit, bumpChanges, commitBySwap, flakeNixPath, type NewCommit } from "./commit.ts";
import { branchName, changeTitle, commitMessage, insertBeforeMarker, type PrText, prBody } from "./text.ts";

export { MergeMethod, MergeMode } from "../core/ids.ts";

/** What the landing did per input; `held` means it was left for a human on purpose. */
export type LandOperation = "merged" | "auto-merge-enabled" | "committed" | "held" | "none";

export interface LandResult {
  input: string;
  operation: LandOperation;
  number?: number;
  url?: string;
  /** The merge or direct commit. */
  sha?: string;
  detail: string;
}

// ---------------------------------------------------------------------------------------------
// Host impact as scripts/impact.ts writes it: only the fields landing decides on.

const ImpactHost = v.object({ attr: v.string(), status: v.string(), error: v.optional(v.string()) });
export const ImpactFile = v.object({
  schema: v.literal(1),
  inputs: v.array(
    v.object({
      name: v.string(),
      rev: v.string(),
      hosts: v.array(ImpactHost),
      timedOut: v.optional(v.boolean()),
      /** Set on a grouped run's one entry: every member and its rev, evaluated together in one lock. */
      members: v.optional(v.record(v.string(), v.string())),
    }),
  ),
});
export type ImpactFile = v.InferOutput<typeof ImpactFile>;

export async function readImpactFile(path: string): Promise<ImpactFile> {
  return readJson(ImpactFile, path, {
    unreadable: `cannot read --impact ${path}; pass the JSON file scripts/impact.ts wrote`,
    notJson: () => `--impact ${path} is not JSON; pass the file scripts/impact.ts wrote (--json)`,
    invalid: (issues) =>
      `--impact ${path} is not a host impact report (${issues}); pass the file scripts/impact.ts wrote`,
  });
}

/** The host's own name: `web` for `nixosConfigurations.web`, `me@laptop` for a quoted one. */
function hostName(attr: string): string {
  const rest = attr.slice(attr.indexOf(".") + 1);
  return rest.startsWith('"') ? rest.slice(1, -1) : rest;
}

type ImpactEntry = ImpactFile["inputs"][number];

/** Why an evaluated entry holds its bump: a host that no longer evaluates, or no clean answer. */
function entryHold(entry: ImpactEntry): string | undefined {
  if (entry.timedOut) return "host impact ran out of time before every host was evaluated";
  const failed = entry.hosts.filter((host) => host.status === "failed").map((host) => hostName(host.attr));
  if (failed.length === 0) return undefined;
  const list = failed.map((name) => `\`${name}\``).join(", ");
  return `${list} no longer ${failed.length === 1 ? "evaluates" : "evaluate"} with this bump`;
}

/**
 * Why this input's bump must wait for a human, or undefined when host impact does not stand in the
 * way (none was given). A host that no longer evaluates holds it, and so does an impact that was not
 * computed for exactly this rev or ran out of time: landing unreviewed needs a clean answer.
 */
export function impactHold(impact: ImpactFile | undefined, input: string, rev: string): string | undefined {
  if (impact === undefined) return undefined;
  const entry = impact.inputs.find(
    (candidate) => candidate.members === undefined && candidate.name === input && candidate.rev === rev,
  );
  if (entry === undefined) return `host impact was not computed for \`${input}\` at \`${rev.slice(0, 7)}\``;
  return entryHold(entry);
}

export function sameMembers(
  a: Readonly<Record<string, string>>,
  b: Readonly<Record<string, string>>,
): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => b[key] === a[key]);
}

/** The grouped entry evaluated for exactly these members (same inputs, same revs), if any. */
function groupedEntry(
  impact: ImpactFile,
  members: Readonly<Record<string, string>>,
): ImpactEntry | undefined {
  return impact.inputs.find((entry) => entry.members !== undefined && sameMembers(entry.members, members));
}

/**
 * Why a set of inputs landed together (a grouped pull request, or one combined lock) must wait: the
 * grouped entry evaluated with their combined lock when there is one, else each member's own entry.
 * A failed host for any member holds them all, since they land as one lock.
 */
export function groupImpactHold(
  impact: ImpactFile | undefined,
  members: Readonly<Record<string, string>>,
): string | undefined {
  if (impact === undefined) return undefined;
  const grouped = groupedEntry(impact, members);
  if (grouped !== undefined) return entryHold(grouped);
  const holds = Object.entries(members).flatMap(([input, rev]) => {
    const hold = impactHold(impact, input, rev);
    return hold === undefined ? [] : [hold];
  });
  return holds.length === 0 ? undefined : holds.join("; ");
}

// ---------------------------------------------------------------------------------------------
// The pull request's landing note: one section, replaced in place, removed when it no longer applies.

export const NOTE_START = "<!-- flake-bump:land -->";
export const NOTE_END = "<!-- /flake-bump:land -->";

export function heldNote(reason: string): string {
  return [
    "### Not merged automatically",
    "",
    `Auto-merge is off for this pull request: ${reason} (see Host impact). Merge it by hand once that is understood, or close it.`,
  ].join("\n");
}

export const DEFAULT_TOKEN_NOTE = [
  "### Auto-merge is waiting for checks that will not start",
  "",
  'This pull request was written with the workflow\'s default `GITHUB_TOKEN`, and GitHub starts no workflow for events that token causes: required checks never run, so auto-merge waits. Give the update action a GitHub App or fine-grained token as `token` (README: "Choose how bumps land"), or run the checks by hand.',
].join("\n");

/** `body` with the landing note set to `note` (or removed when undefined), before flake-bump's marker. */
export function withNote(body: string | null | undefined, note: string | undefined): string {
  const text = body ?? "";
  const start = text.indexOf(NOTE_START);
  const end = text.indexOf(NOTE_END, start);
  const without =
    start >= 0 && end >= 0
      ? `${text.slice(0, start).replace(/\s+$/, "")}\n\n${text.slice(end + NOTE_END.length).replace(/^\s+/, "")}`
      : text;
  if (note === undefined) return start >= 0 && end >= 0 ? without.replace(/^\n\n/, "") : text;
  return insertBeforeMarker(without, `${NOTE_START}\n${note}\n${NOTE_END}`);
}

// ---------------------------------------------------------------------------------------------
// GitHub: repository settings, GraphQL auto-merge, REST merge.

const Settings = v.object({
  allow_auto_merge: v.optional(v.boolean()),
  allow_merge_commit: v.optional(v.boolean()),
  allow_squash_merge: v.optional(v.boolean()),
  allow_rebase_merge: v.optional(v.boolean()),
});

const METHOD_SETTING = {
  merge: ["allow_merge_commit", "Allow merge commits"],
  squash: ["allow_squash_merge", "Allow squash merging"],
  rebase: ["allow_rebase_merge", "Allow rebase merging"],
} as const;

function autoMergeOff(repo: string): RuntimeError {
  return new RuntimeError(
    `${repo} does not allow auto-merge, so the pull request is left open; turn on "Allow auto-merge" in the repository's Settings → General → Pull Requests, or use merge: review`,
  );
}

function methodOff(repo: string, method: MergeMethod): RuntimeError {
  const others = Object.keys(METHOD_SETTING).filter((m) => m !== method);
  return new RuntimeError(
    `${repo} does not allow ${method} merges, so the pull request is left open; turn on "${METHOD_SETTING[method][1]}" in Settings → General → Pull Requests, or set merge-method to ${others.join(" or ")}`,
  );
}

/**
 * Refuse early when the repository says it cannot auto-merge with this method. GitHub shows these
 * fields only to tokens that may see the settings; when they are absent the mutation's own answer
 * decides (same sentences).
 */
export async function checkAutoMergeSettings(gh: RepositoryClient, method: MergeMethod): Promise<void> {
  const { data } = await request(gh, `read ${fullName(gh.repo)}`, () =>
    gh.octokit.rest.repos.get({ ...gh.repo }),
  );
  const parsed = v.safeParse(Settings, data);
  if (!parsed.success) return;
  const settings = parsed.output;
  if (settings.allow_auto_merge === false) throw autoMergeOff(fullName(gh.repo));
  if (settings[METHOD_SETTING[method][0]] === false) throw methodOff(fullName(gh.repo), method);
}

const GraphQLErrors = v.object({
  errors: v.array(v.object({ message: v.string(), type: v.optional(v.string()) })),
});

/** GraphQL's error messages, or undefined when the failure was not a GraphQL answer. */
function graphqlMessages(error: unknown): string[] | undefined {
  const parsed = v.safeParse(GraphQLErrors, error);
  return parsed.success ? parsed.output.errors.map((e) => e.message) : undefined;
}

// Octokit reserves `method`, `url` and `headers` as variable names.
const ENABLE = `mutation($pullRequestId: ID!, $mergeMethod: PullRequestMergeMethod!, $expectedHeadOid: GitObjectID!) {
  enablePullRequestAutoMerge(input: { pullRequestId: $pullRequestId, mergeMethod: $mergeMethod, expectedHeadOid: $expectedHeadOid }) {
    clientMutationId
  }
}`;

const DISABLE = `mutation($pullRequestId: ID!) {
  disablePullRequestAutoMerge(input: { pullRequestId: $pullRequestId }) { clientMutationId }
}`;

type Armed = "enabled" | "clean" | "moved";

async function enableAutoMerge(
  gh: RepositoryClient,
  pull: { number: number; nodeId: string },
  method: MergeMethod,
  head: string,
): Promise<Armed> {
  try {
    await gh.octokit.graphql(ENABLE, {
      pullRequestId: pull.nodeId,
      mergeMethod: method.toUpperCase(),
      expectedHeadOid: head,
    });
    return "enabled";
  } catch (error) {
    const messages = graphqlMessages(error);
    if (messages === undefined) {
      throw describeGitHubError(error, `enable auto-merge on #${pull.number}`, fullName(gh.repo));
    }
    const said = messages.join("; ");
    // GitHub will not arm auto-merge on a PR it could merge right now (no required checks pending).
    if (/clean status/i.test(said)) return "clean";
    if (/head branch was modified/i.test(said)) return "moved";
    if (/auto merge is not allowed/i.test(said)) throw autoMergeOff(fullName(gh.repo));
    if (/merges are not allowed/i.test(said)) throw methodOff(fullName(gh.repo), method);
    throw new RuntimeError(
      `GitHub refused to enable auto-merge on #${pull.number} of ${fullName(gh.repo)} (${said}); the pull request is left open for a human`,
    );
  }
}

/** Turn off auto-merge on a pull request (closing it as obsolete, or holding it for a human). */
export async function disableAutoMerge(octokit: Octokit, nodeId: string, what: string): Promise<void> {
  try {
    await octokit.graphql(DISABLE, { pullRequestId: nodeId });
  } catch (error) {
    const messages = graphqlMessages(error);
    throw messages === undefined
      ? describeGitHubError(error, `disable auto-merge on ${what}`)
      : new RuntimeError(`GitHub refused to disable auto-merge on ${what} (${messages.join("; ")}); rerun`);
  }
}

type Merged = { sha: string } | "moved";

async function mergeAt(
  gh: RepositoryClient,
  number: number,
  method: MergeMethod,
  head: string,
): Promise<Merged> {
  try {
    const { data } = await gh.octokit.rest.pulls.merge({
      ...gh.repo,
      pull_number: number,
      sha: head,
      merge_method: method,
    });
    return { sha: data.sha };
  } catch (error) {
    // 409: the head is no longer the one we evaluated.
    if (statusOf(error) === 409) return "moved";
    if (statusOf(error) === 405) {
      const message = error instanceof Error ? error.message.replace(/ - https:\S*$/, "") : String(error);
      throw new RuntimeError(
        `GitHub refused to merge #${number} of ${fullName(gh.repo)} (405: ${message}); the pull request is left open — check the repository's merge settings and branch rules`,
      );
    }
    throw describeGitHubError(error, `merge #${number}`, fullName(gh.repo));
  }
}

// ---------------------------------------------------------------------------------------------
// auto

export interface AutoOptions {
  branchPrefix: string;
  /** A group of the policy file (see OpenPrOptions.groupName). */
  groupName?: string;
  method: MergeMethod;
  impact: ImpactFile | undefined;
  /** The token is the workflow's default GITHUB_TOKEN: required checks will not start. */
  defaultToken: boolean;
  dryRun: boolean;
}

async function setNote(gh: RepositoryClient, pr: OpenPull, note: string | undefined): Promise<void> {
  const body = withNote(pr.body, note);
  if (body === (pr.body ?? "")) return;
  await request(gh, `update pull request #${pr.number}`, () =>
    gh.octokit.rest.pulls.update({ ...gh.repo, pull_number: pr.number, body }),
  );
}

/**
 * A pull request to land by auto-merge: its branch, how to tell that the branch head is the one this
 * run wrote and host impact evaluated, and whether host impact holds it.
 */
export interface AutoTarget {
  /** What the result names: the input, or a grouped pull request's members. */
  input: string;
  branch: string;
  /** The head's SHA when it proposes exactly what was evaluated, else why it is left to another run. */
  evaluatedHead: () => Promise<{ sha: string } | { skip: string }>;
  /** Why host impact keeps it from landing by itself (lib/pr/land.ts's impactHold or groupImpactHold). */
  hold: string | undefined;
}

/** One input's pull request: its branch head's marker must name the rev the report moved it to. */
function inputLanding(gh: RepositoryClient, change: InputChange, opts: AutoOptions): AutoTarget {
  const branch = branchName(change.name, opts.branchPrefix);
  const rev = revOf(change);
  return {
    input: change.name,
    branch,
    hold: impactHold(opts.impact, change.name, rev),
    evaluatedHead: async () => {
      const head = await readHead(gh, branch);
      if (head === undefined) return { skip: `no branch '${branch}', so no pull request to merge` };
      if (head.rev !== rev) {
        return {
          skip: `'${branch}' now proposes ${head.rev?.slice(0, 12) ?? "another change"}, not ${rev.slice(0, 12)}: the run that moved it lands it`,
        };
      }
      return { sha: head.sha };
    },
  };
}

/**
 * Land one input's pull request by auto-merge. Safe to repeat: an armed PR stays armed, a held one
 * stays held (and is disarmed if an earlier run armed it), and only the head whose commit proposes
 * the evaluated rev is ever armed or merged.
 */
export function landAuto(gh: RepositoryClient, change: InputChange, opts: AutoOptions): Promise<LandResult> {
  return landTarget(gh, inputLanding(gh, change, opts), opts);
}

/** Land a pull request by auto-merge (see landAuto), whichever branch and marker prove its head. */
export async function landTarget(
  gh: RepositoryClient,
  target: AutoTarget,
  opts: AutoOptions,
): Promise<LandResult> {
  const { branch } = target;
  const none = (detail: string): LandResult => ({ input: target.input, operation: "none", detail });
  const head = await target.evaluatedHead();
  if ("skip" in head) return none(head.skip);
  const pr = await openPullOf(gh, branch);
  if (pr === undefined) return none(`no open pull request from '${branch}'`);
  const at = { input: target.input, number: pr.number, url: pr.html_url };
  const hold = target.hold;
  if (hold !== undefined || pr.draft) {
    const reason = hold ?? "it is a draft";
    if (opts.dryRun)
      return { ...at, operation: "held", detail: `dry run: would leave #${pr.number} open: ${reason}` };
    if (pr.auto_merge) await disableAutoMerge(gh.octokit, pr.node_id, `#${pr.number}`);
    await setNote(gh, pr, hold === undefined ? undefined : heldNote(hold));
    return { ...at, operation: "held", detail: `left open for a human: ${reason.replaceAll("`", "")}` };
  }
  if (opts.dryRun) {
    return {
      ...at,
      operation: "none",
      detail: `dry run: would enable auto-merge (${opts.method}) on #${pr.number}`,
    };
  }
  const waiting = opts.defaultToken ? DEFAULT_TOKEN_NOTE : undefined;
  if (pr.auto_merge) {
    await setNote(gh, pr, waiting);
    return { ...at, operation: "auto-merge-enabled", detail: `auto-merge stays enabled on #${pr.number}` };
  }
  const armed = await enableAutoMerge(gh, { number: pr.number, nodeId: pr.node_id }, opts.method, head.sha);
  if (armed === "moved") {
    return {
      ...at,
      operation: "none",
      detail: `'${branch}' moved while it was being armed: the run that moved it lands it`,
    };
  }
  if (armed === "enabled") {
    await setNote(gh, pr, waiting);
    return {
      ...at,
      operation: "auto-merge-enabled",
      detail: `auto-merge (${opts.method}) enabled at ${head.sha.slice(0, 12)}; GitHub merges it once the required checks pass`,
    };
  }
  await setNote(gh, pr, undefined);
  const merged = await mergeAt(gh, pr.number, opts.method, head.sha);
  if (merged === "moved") {
    return {
      ...at,
      operation: "none",
      detail: `'${branch}' moved after ${head.sha.slice(0, 12)} was evaluated: left open`,
    };
  }
  return {
    ...at,
    operation: "merged",
    sha: merged.sha,
    detail: `merged (${opts.method}) at head ${head.sha.slice(0, 12)}: nothing was required`,
  };
}

// ---------------------------------------------------------------------------------------------
// direct

export interface DirectOptions {
  base: string;
  /** flake.lock's path in the repository. */
  path: string;
  /** The base lock the new lock was computed from, and the commit it came from (the checkout's HEAD). */
  from: { sha: string; lock: string };
  impact: ImpactFile | undefined;
  dryRun: boolean;
}

/** The file at `path` in commit `ref`: its blob sha and text; undefined when there is none. */
async function fileAt(
  gh: RepositoryClient,
  path: string,
  ref: string,
): Promise<{ sha: string; text: string } | undefined> {
  const found = await requestUnlessAbsent(gh, `read ${path} at ${ref.slice(0, 12)}`, [404], () =>
    gh.octokit.rest.repos.getContent({ ...gh.repo, path, ref }),
  );
  const data = found?.data;
  if (data === undefined || Array.isArray(data) || data.type !== "file" || !("content" in data))
    return undefined;
  return { sha: data.sha, text: Buffer.from(data.content, "base64").toString("utf8") };
}

/** The rev the lock pins for a root input, if it is a plain node. */
function pinned(text: string, input: string): string | undefined {
  try {
    const found = rootInputs(parseLock(text)).find((candidate) => candidate.name === input);
    return found?.kind === "node" ? found.node.locked?.rev : undefined;
  } catch {
    return undefined;
  }
}

async function directText(gh: RepositoryClient, changes: readonly InputChange[]): Promise<PrText> {
  const bodies: string[] = [];
  for (const change of changes) {
    // A companion catching up with a current input has no upstream commits to list.
    const commits = lockUnmoved(change)
      ? {}
      : await commitsBetween(gh.octokit, change.name, change.github, change.from?.rev, change.to.rev);
    bodies.push(prBody({ change, ...commits, footer: null }));
  }
  const [only] = changes;
  const title =
    changes.length === 1 && only !== undefined
      ? changeTitle(only)
      : `chore(flake): update ${changes.length} inputs`;
  return { title, body: bodies.join("\n\n---\n\n") };
}

/**
 * Commit the report's new lock onto the base branch. The commit's parent is the base head read just
 * before the non-forced ref update, so GitHub applies it only as a fast-forward; when the base moved,
 * the tree is rebuilt on the new head if its flake.lock is still the one the lock was computed from,
 * and the run refuses (nothing written) when it is not. Inputs whose host impact holds them are not
 * committed: no review means no landing of a bump that breaks a host.
 */
export async function commitDirect(
  gh: RepositoryClient,
  report: Report,
  opts: DirectOptions,
): Promise<LandResult[]> {
  const results: LandResult[] = [];
  const landable: InputChange[] = [];
  // A grouped run evaluated the combined lock once: its entry answers for every member.
  const members = membersOf(report.inputs);
  const grouped = opts.impact === undefined ? undefined : groupedEntry(opts.impact, members);
  for (const change of report.inputs) {
    const hold =
      grouped === undefined ? impactHold(opts.impact, change.name, revOf(change)) : entryHold(grouped);
    if (hold === undefined) landable.push(change);
    else {
      results.push({
        input: change.name,
        operation: "held",
        detail: `not committed: ${hold.replaceAll("`", "")}; with merge: direct nothing reviews it, so fix the hosts or use merge: review`,
      });
    }
  }
  if (landable.length === 0) return results;
  let lock: string;
  let flakeNix: string | undefined;
  const [single] = landable;
  if (landable.length === report.inputs.length && report.lock !== null) {
    lock = report.lock.text;
    flakeNix = report.flakeNix?.text;
  } else if (landable.length === 1 && single !== undefined) {
    lock = single.lock.text;
    flakeNix = single.flakeNix?.text;
  } else {
    const names = landable.map((change) => change.name).join(", ");
    for (const change of landable) {
      results.push({
        input: change.name,
        operation: "held",
        detail: `not committed: its lock was computed together with inputs that are held; rerun with inputs: ${names}`,
      });
    }
    return results;
  }
  const done = (operation: LandOperation, detail: string, sha?: string) => {
    for (const change of landable) {
      results.push({ input: change.name, operation, detail, ...(sha === undefined ? {} : { sha }) });
    }
    return results;
  };
  let text: Promise<PrText> | undefined;
  return commitBySwap<undefined, LandResult[]>(gh, {
    branch: opts.base,
    head: undefined,
    reread: ({ error, commit }) => refusedOrMoved(gh, opts, error, commit),
    plan: async () => {
      const base = await readBase(gh, opts.base);
      const stop = await directStop(gh, base, { lock, flakeNix }, landable, opts);
      if (stop !== undefined) return { done: done("none", stop) };
      text ??= directText(gh, landable);
      const message = commitMessage(await text);
      return {
        write: {
          base,
          head: base.sha,
          changes: bumpChanges(opts.path, lock, { inputs: landable, flakeNix }),
          message,
        },
        wrote: ({ sha }) => done("committed", `committed ${sha.slice(0, 12)} onto '${opts.base}'`, sha),
      };
    },
  });
}

/**
 * Why nothing is to be committed onto `base`: it already has this lock, or the same or newer revs,
 * or it is a dry run; undefined when the commit is to be written. Throws when the base's lock is
 * neither the one the new lock was computed from nor ahead of it.
 */
async function directStop(
  gh: RepositoryClient,
  base: BaseCommit,
  { lock, flakeNix }: { lock: string; flakeNix: string | undefined },
  landable: readonly InputChange[],
  opts: DirectOptions,
): Promise<string | undefined> {
  const current = await fileAt(gh, opts.path, base.sha);
  const sameLock = current?.sha === gitBlobSha(lock);
  // The companions' gitlinks count too: a base with this lock but an old gitlink still needs the commit.
  const gitlinks = bumpChanges(opts.path, lock, { inputs: landable }).filter((change) => "gitlink" in change);
  if (sameLock && (gitlinks.length === 0 || (await branchHolds(gh, base.sha, gitlinks)))) {
    return `'${opts.base}' already has this flake.lock${gitlinks.length === 0 ? "" : " and these submodule gitlinks"} (${base.sha.slice(0, 12)})`;
  }
  if (!sameLock && current?.sha !== gitBlobSha(opts.from.lock)) {
    // Not what the lock was computed from: only a base that already holds every rev is fine.
    let ahead = current !== undefined;
    for (const change of landable) {
      const rev = change.to.rev;
      const there = current === undefined ? undefined : pinned(current.text, change.name);
      if (rev === undefined || !(await sameOrNewer(isOlderOn(gh.octokit), change.github, there, rev))) {
        ahead = false;
      }
    }
    if (ahead)
      return `'${opts.base}' already locks these inputs at the same or newer revs; nothing to commit`;
    throw new RuntimeError(
      `${opts.path} on '${opts.base}' of ${fullName(gh.repo)} changed since this run computed the new lock from ${opts.from.sha.slice(0, 12)}, so nothing was committed; rerun flake-bump to compute it from the new one`,
    );
  }
  if (flakeNix !== undefined && base.sha !== opts.from.sha) {
    // A release's flake.nix is the checkout's with one tag edited: on a base whose flake.nix
    // changed since, it would undo that change, and nothing reviews a direct commit.
    const nixPath = flakeNixPath(opts.path);
    const [now, then] = await Promise.all([
      fileAt(gh, nixPath, base.sha),
      fileAt(gh, nixPath, opts.from.sha),
    ]);
    if (now?.sha !== then?.sha) {
      throw new RuntimeError(
        `${nixPath} on '${opts.base}' of ${fullName(gh.repo)} changed since this run edited it from ${opts.from.sha.slice(0, 12)}, so nothing was committed; rerun flake-bump to edit the new one`,
      );
    }
  }
  if (opts.dryRun)
    return `dry run: would commit ${opts.path} onto '${opts.base}' at ${base.sha.slice(0, 12)}`;
  return undefined;
}

/**
 * After GitHub refused to move the base (422): if the base moved, someone pushed (plan again on
 * their head); if it did not, the refusal is a branch rule, said as one sentence.
 */
async function refusedOrMoved(
  gh: RepositoryClient,
  opts: DirectOptions,
  error: unknown,
  commit: NewCommit,
): Promise<undefined> {
  if ((await headSha(gh, opts.base)) !== commit.head) return undefined;
  const said = error instanceof Error ? error.message.replace(/ - https:\S*$/, "") : String(error);
  throw new RuntimeError(
    `GitHub refused to commit ${opts.path} onto '${opts.base}' of ${fullName(gh.repo)} (${said}), so nothing was written: the branch is protected (branch protection or a ruleset requires pull requests or checks); use merge: auto, which opens a pull request and lets GitHub merge it once the rules are met`,
  );
}

/**
 * The bump itself: choose the inputs, let Nix move them, check what Nix wrote, and describe it.
 * flake.lock is byte-identical afterwards whenever anything fails (or with dry-run).
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import * as v from "valibot";
import { mapBounded } from "../core/bounded.ts";
import { RuntimeError, UsageError } from "../core/errors.ts";
import { writeAtomic } from "../core/files.ts";
import { Sha } from "../core/ids.ts";
import { checkoutHead, gitTopLevel } from "../flake/checkout.ts";
import type { Companions } from "../flake/companions.ts";
import { withInputRef } from "../flake/edit.ts";
import { type GitHubSource, githubSource, pinnedRef } from "../flake/flakeref.ts";
import {
  diffLocks,
  type FlakeLock,
  LOCK_COMMAND,
  type LockDiff,
  type LockedSummary,
  type LockNode,
  type NodeChange,
  parseLock,
  pinReason,
  type RootInput,
  rootInputs,
  rootNode,
  rootNodeKey,
  summarize,
} from "../flake/lock.ts";
import type { LockPlan, Nix, Pin } from "../flake/nix.ts";
import { releaseStanding, releaseTag, seriesName } from "../flake/release.ts";
import {
  type InputChange,
  type LockText,
  lockUnmoved,
  type Report,
  type Skipped,
  type Upstream,
} from "../flake/report.ts";
import type { Octokit } from "../github/client.ts";
import { type Compared, sameOrNewer, type TargetCheck } from "../github/upstream.ts";
import type { AgeTarget } from "../policy/gate.ts";
import type { InputPlan } from "../policy/run.ts";
import {
  type CompanionSettings,
  type CompanionSite,
  type CompanionsBehind,
  companionsBehind,
  companionsOf,
  companionsToCatchUp,
  readCompanions,
  stageCompanions,
  withSubmodules,
} from "./companions.ts";
import { chooseEngine, type Engine, type EngineChoice, nativeRefusal } from "./engine.ts";
import type { Freshness } from "./freshness.ts";
import { isGitAncestor } from "./git-ancestry.ts";
import { fetchLocked, movedLockText, type NativeResult, NotNative, serializeLock } from "./native.ts";
import { type Flake, type LockFile, NixRun } from "./nix-run.ts";
import {
  candidateOf,
  chooseByRef,
  type Follow,
  type RefQuestions,
  type ReleaseMove,
  trackedRef,
  untrackedLine,
} from "./pushed-ref.ts";
import {
  type ReleaseAnswer,
  type ReleaseNews,
  type ReleaseQuery,
  releaseNews,
  youngLine,
} from "./releases.ts";

export interface BumpRequest {
  flakeDir: string;
  /** Input names; empty = every tracked input (or the one matching `repository`). */
  inputs: readonly string[];
  rev?: string;
  /** OWNER/REPO of a pushed upstream, used to choose the input when none is named. */
  repository?: string;
  /** The pushed ref (`refs/heads/B`, `refs/tags/T`, or short): with `repository`, it picks the inputs. */
  ref?: string;
  /** Each input's policy (`follow:`); an input not listed follows its branch. */
  follow?: Readonly<Record<string, Follow>>;
  /** Move the one named tag-pinned input to this tag of its series (`bump.ts NAME --tag TAG`). */
  tag?: string;
  /** Let --tag or --rev move an input backwards. */
  allowDowngrade?: boolean;
  dryRun: boolean;
  /** Who moves the inputs (default auto: native where provably identical, Nix elsewhere). */
  engine?: Engine;
  /**
   * The policy file's word on each selected input (lib/policy/run.ts): a held input is skipped, a
   * min-age one moves only to a commit old enough, a named one says what it overrode. Absent: none.
   */
  plans?: ReadonlyMap<string, InputPlan>;
  /** Move only these of the selected inputs (one pull request's share of a run, lib/bump/targets.ts). */
  only?: ReadonlySet<string>;
  /** Lock these inputs exactly at these commits (the commits a run's targets chose). */
  pins?: ReadonlyMap<string, string>;
}

/** Tarballs downloaded at once when several inputs move natively. */
const NATIVE_DOWNLOADS = 4;

export interface BumpDeps {
  /** Nix is found lazily: a bump that has nothing to do needs no Nix at all. */
  nix: () => Promise<Nix>;
  checkTarget?: TargetCheck;
  /** Asks the inputs' sources which are behind, so Nix runs only for those (none on a quiet night). */
  freshness?: (inputs: readonly Selected[]) => Promise<Freshness[]>;
  /** The GitHub client the native engine reads upstreams with; without it every input goes to Nix. */
  octokit?: () => Promise<Octokit>;
  /** With a grouped pull request: its members are kept in the same lock (see withGroupMembers). */
  group?: GroupDeps;
  /** The policy file's companions and the repository's own URL (see bump/companions.ts). */
  companions?: CompanionSettings;
  /** Whether a short pushed ref is a tag, and a repository's default branch: GitHub's answers. */
  refs?: RefQuestions;
  /** The newest release of each release-following input's series, batched (see releases.ts). */
  releases?: (inputs: readonly ReleaseQuery[]) => Promise<ReleaseAnswer[]>;
  /** Where min-age reads a GitHub input's dated history (lib/bump/age.ts); without it, min-age holds. */
  minAge?: (
    source: GitHubSource,
    node: LockNode,
    minAgeMs: number,
    rev: string | undefined,
  ) => Promise<AgeTarget>;
}

export interface GroupDeps {
  /** The open grouped pull request's members, input → rev; empty when none is open. */
  members: () => Promise<Readonly<Record<string, string>>>;
  /** Is `rev` an ancestor of `than` upstream? An unknown answer counts as no. */
  isOlder: (source: GitHubSource | undefined, rev: string, than: string) => Promise<boolean>;
}

export type Selected = Extract<RootInput, { kind: "node" }>;

/** Where a node lives on GitHub, in the report's shape (no tracked ref). */
function reportGitHub(node: LockNode | undefined): InputChange["github"] {
  const source = node ? githubSource(node) : undefined;
  if (source === undefined) return undefined;
  return source.host === undefined
    ? { owner: source.owner, repo: source.repo }
    : { owner: source.owner, repo: source.repo, host: source.host };
}

/** A skipped input, with what the lock holds for it so open-pr can tell whether its PR is obsolete. */
function skip(input: Selected, reason: Skipped["reason"], message: string): Skipped {
  const entry: Skipped = { name: input.name, reason, message };
  const current = input.node.locked?.rev;
  if (current !== undefined) entry.current = current;
  const github = reportGitHub(input.node);
  if (github !== undefined) entry.github = github;
  return entry;
}

/** The inputs a request moves: to their branch head or a dispatched rev, or (`releases`) to a newer tag. */
export interface Selection {
  selected: Selected[];
  skipped: Skipped[];
  /** Inputs that follow releases (the policy's `follow: releases`), pinned to a tag in flake.nix. */
  releases: Selected[];
  /** A pushed tag's moves (see pushed-ref.ts), already decided. */
  pushedTag?: ReleaseMove[];
  /** The one line a push that moves nothing ends with. */
  note?: string;
}

/** Does `input` follow releases: the policy says so and flake.nix pins it to a ref? */
function followsReleases(request: Pick<BumpRequest, "follow">, input: Selected): boolean {
  return request.follow?.[input.name] === "releases" && trackedRef(input.node.original) !== undefined;
}

/** Pick the root inputs a request names, or the tracked ones; pinned inputs are reported as skipped. */
export function selectInputs(
  lock: FlakeLock,
  request: Pick<BumpRequest, "inputs" | "repository" | "rev" | "follow" | "tag">,
): Selection {
  const roots = rootInputs(lock);
  const names = roots.map((input) => input.name);
  const skipped: Skipped[] = [];

  if (request.inputs.length > 0) {
    const selected = request.inputs.map((name): Selected => {
      const input = roots.find((candidate) => candidate.name === name);
      if (input === undefined) {
        throw new UsageError(
          `input '${name}' is not a direct input of this flake (found: ${names.join(", ")}); check the name in flake.nix`,
        );
      }
      if (input.kind === "follows") {
        const target = input.follows.join("/");
        throw new UsageError(
          `input '${name}' only follows '${target}' and has no lock entry of its own; bump '${input.follows[0] ?? target}' instead`,
        );
      }
      return input;
    });
    const unique = [...new Map(selected.map((input) => [input.name, input])).values()];
    // --tag names its tag itself; otherwise a named input that follows releases moves to its newest.
    const releases =
      request.tag === undefined ? unique.filter((input) => followsReleases(request, input)) : [];
    return { selected: unique.filter((input) => !releases.includes(input)), skipped, releases };
  }

  const candidates = roots.filter((input): input is Selected => {
    if (input.kind !== "node") return false;
    if (request.repository === undefined) return true;
    const source = githubSource(input.node);
    return (
      source !== undefined &&
      `${source.owner}/${source.repo}`.toLowerCase() === request.repository.toLowerCase()
    );
  });
  if (request.repository !== undefined && candidates.length === 0) {
    const github = roots
      .filter((input) => input.kind === "node" && githubSource(input.node))
      .map((i) => i.name);
    throw new UsageError(
      `no input of this flake comes from GitHub repository '${request.repository}' (GitHub inputs: ${github.join(", ") || "none"}); name the input in the dispatch payload's 'input'`,
    );
  }
  const selected: Selected[] = [];
  const releases: Selected[] = [];
  for (const input of candidates) {
    const reason = pinReason(input.node.original);
    if (followsReleases(request, input) && input.node.original?.rev === undefined) releases.push(input);
    else if (reason === undefined) selected.push(input);
    else skipped.push(skip(input, "pinned", `'${input.name}' is ${reason} in flake.nix`));
  }
  if (request.repository !== undefined && request.rev !== undefined && selected.length > 1) {
    throw new UsageError(
      `inputs ${selected.map((i) => `'${i.name}'`).join(" and ")} all track '${request.repository}'; name the one to pin in the dispatch payload's 'input'`,
    );
  }
  return { selected, skipped, releases };
}

/**
 * A push's selection (a dispatch with `repository` and `ref`, no input named): the inputs on that
 * repository that the pushed branch or tag moves, and why each other one stays.
 */
async function selectByRef(
  lock: FlakeLock,
  request: BumpRequest & { repository: string; ref: string },
  refs: RefQuestions | undefined,
): Promise<Selection> {
  // The inputs on the pushed repository, pinned or not (a tag push moves pinned ones); none is an error.
  const onRepository = selectInputs(lock, { inputs: [], repository: request.repository });
  const candidates = [...onRepository.selected, ...onRepository.releases];
  for (const entry of onRepository.skipped) {
    const input = rootInputs(lock).find(
      (root): root is Selected => root.kind === "node" && root.name === entry.name,
    );
    if (input !== undefined) candidates.push(input);
  }
  const { pushed, choice } = await chooseByRef(
    request.ref,
    candidates.map((input) => candidateOf(input.name, input.node)),
    (name) => request.follow?.[name] ?? "branch",
    refs,
  );
  const byName = (name: string) => candidates.filter((input) => input.name === name);
  const selection: Selection = {
    selected: [...choice.branch, ...choice.releases.map((move) => move.name)].flatMap(byName),
    skipped: choice.stays.flatMap(({ name, reason, message }) =>
      byName(name).map((i) => skip(i, reason, message)),
    ),
    releases: [],
    pushedTag: choice.releases,
  };
  if (selection.selected.length === 0) selection.note = untrackedLine(request.repository, pushed);
  return selection;
}

function groupTransitive(diff: LockDiff, name: string): InputChange["transitive"] {
  const under = (change: { path: string }) => change.path.startsWith(`${name}/`);
  return {
    added: diff.transitive.added.filter(under),
    removed: diff.transitive.removed.filter(under),
    changed: diff.transitive.changed.filter(under),
  };
}

function lockText(text: string): LockText {
  return { text, sha256: createHash("sha256").update(text).digest("hex") };
}

/** Read and parse the flake's lock, with the errors a user can act on. */
async function readFlake(flakeDir: string): Promise<Flake> {
  const dir = resolve(flakeDir);
  if (!existsSync(join(dir, "flake.nix"))) {
    throw new UsageError(
      `there is no flake.nix in ${dir}; run in your flake's directory or pass --flake DIR`,
    );
  }
  const lockFile = join(dir, "flake.lock");
  const nixFile = join(dir, "flake.nix");
  const nixText = await readFile(nixFile, "utf8");
  let text: string;
  try {
    text = await readFile(lockFile, "utf8");
  } catch {
    throw new UsageError(
      `there is no flake.lock in ${dir}; create it with \`${LOCK_COMMAND}\`, commit it, then retry`,
    );
  }
  return { dir, lockFile, original: { text, lock: parseLock(text, lockFile) }, nixFile, nixText };
}

/** The flake, and where it sits in its git repository (the report's `flake`). */
async function readSite(flakeDir: string): Promise<{ flake: Flake; site: Report["flake"] }> {
  const flake = await readFlake(flakeDir);
  const site: Report["flake"] = { dir: flake.dir };
  const repoRoot = await gitTopLevel(flake.dir);
  if (repoRoot !== undefined) {
    site.repoRoot = repoRoot;
    site.lockPath = relative(repoRoot, flake.lockFile);
    const head = await checkoutHead(repoRoot);
    if (head !== undefined) site.head = head;
  }
  return { flake, site };
}

/** `bump.ts --check`'s answer: which inputs are behind, and whether moving them needs Nix. */
export interface CheckResult {
  answers: Freshness[];
  skipped: Skipped[];
  /** True when some input that is behind (or that only Nix can judge) must go through Nix. */
  needsNix: boolean;
  /** The engine each input that is behind would get, and why. */
  engines: Array<{ name: string; engine: "native" | "nix"; reason: string }>;
  /** Inputs that are current but whose listed companions point elsewhere: behind all the same. */
  companions: CompanionsBehind[];
  /** Every tag-pinned GitHub input's newest release; only those that follow releases would move. */
  releases: ReleaseNews[];
}

/**
 * `bump.ts --check`: which of the requested (or tracked) inputs are behind, and which engine would
 * move each, without Nix or changes. `native` never needs Nix: what it cannot prove, bump refuses.
 */
export async function checkOutdated(
  request: Pick<BumpRequest, "flakeDir" | "inputs" | "repository" | "engine" | "plans" | "follow">,
  freshness: (inputs: readonly Selected[]) => Promise<Freshness[]>,
  octokit?: () => Promise<Octokit>,
  minAge?: BumpDeps["minAge"],
  releases?: (queries: readonly ReleaseQuery[]) => Promise<ReleaseAnswer[]>,
  companionSettings: CompanionSettings = {},
): Promise<CheckResult> {
  const flake = await readFlake(request.flakeDir);
  const { text, lock } = flake.original;
  const selection = selectInputs(lock, request);
  const { selected, skipped } = narrow(request, selection.selected, selection.skipped);
  const named = (name: string) => request.inputs.length === 0 || request.inputs.includes(name);
  const tagPinned = rootInputs(lock).filter(
    (input): input is Selected => input.kind === "node" && named(input.name),
  );
  const news =
    releases === undefined
      ? []
      : await releaseNews(tagPinned, request.follow ?? {}, releases, (name) => minAgeOf(request, name)?.ms);
  const answers = await heldBack(await freshness(selected), selected, skipped, (input) =>
    ageDecision(input, undefined, request, minAge === undefined ? {} : { minAge }),
  );
  // Current, or held where it is by min-age: either way a listed companion goes to the locked rev.
  const current = [
    ...answers.filter((answer) => answer.status === "current").map((answer) => answer.name),
    ...skipped.filter((entry) => catchesUp(entry, request.plans)).map((entry) => entry.name),
  ];
  const companions = await companionsBehind(
    await gitTopLevel(flake.dir),
    selected,
    current,
    companionSettings,
  );
  const engine = request.engine ?? "auto";
  const engines = await Promise.all(
    answers
      .filter((answer) => answer.status !== "current")
      .map(async (answer) => {
        const node = selected.find((input) => input.name === answer.name)?.node;
        if (answer.status === "unknown" || node === undefined) {
          return {
            name: answer.name,
            engine: "nix" as const,
            reason: answer.status === "unknown" ? answer.reason : "no lock node",
          };
        }
        const choice = await chooseEngine({
          // Judged as auto would judge it; with native a refusal then comes from the bump itself.
          engine: engine === "native" ? "auto" : engine,
          lock,
          lockText: text,
          name: answer.name,
          node,
          to: answer.latest,
          octokit,
        });
        return { name: answer.name, engine: choice.engine, reason: choice.reason };
      }),
  );
  const moving = news.some((entry) => entry.follows && entry.answer.status === "newer");
  const needsNix = moving || (engine !== "native" && engines.some((entry) => entry.engine === "nix"));
  return { answers, skipped, needsNix, engines, companions, releases: news };
}

/**
 * One thing a bump moves. Today that is a root input of flake.lock, moved to a dispatched SHA
 * (`exact`) or to its branch's head; it is the value later kinds of target extend.
 */
interface Target {
  input: Selected;
  /** The commit to lock: the dispatched SHA, or the head freshness read; undefined → Nix's own update. */
  to: string | undefined;
  /** Locked at exactly `to` (a dispatched SHA), not updated to whatever the branch holds by then. */
  exact: boolean;
  /** A release move: flake.nix's tag changes from `from` to `to`, and Nix locks what it names. */
  release?: { from: string; to: string; between?: readonly string[] };
}

/** The targets left once the checks that need no Nix ran, what those checks skipped, and what GitHub said. */
interface Targets {
  targets: Target[];
  skipped: Skipped[];
  /** The upstream commits the target check read for a dispatched SHA, for the PR body. */
  upstream?: Upstream;
  /**
   * The target check's compare of the locked rev and the SHA: it also tells the engine choice whether
   * the upstream's flake.nix or flake.lock changed, so a dispatch under auto asks GitHub no more than Nix's.
   */
  compared?: Compared;
}

/** A target and the engine that moves it. */
interface Move {
  target: Target;
  choice: EngineChoice;
}

/** A native move's result and why it was provably what Nix would write. */
interface NativeMove {
  result: NativeResult;
  reason: string;
}

/** The moves with their engines as they ended, and the native results by input. */
interface Engines {
  moves: Move[];
  natives: Map<string, NativeMove>;
}

/** Validate: the request's --rev, and the inputs it names or leaves to be found, against the lock. */
async function validate(request: BumpRequest, lock: FlakeLock, deps: BumpDeps): Promise<Selection> {
  if (request.rev !== undefined) {
    if (!v.is(Sha, request.rev)) {
      throw new UsageError(
        `--rev '${request.rev}' is not a full commit SHA; pass all 40 lowercase hex characters`,
      );
    }
    if (request.inputs.length > 1) {
      throw new UsageError(
        `--rev pins exactly one input, but ${request.inputs.length} were named; name one input`,
      );
    }
  }
  if (request.tag !== undefined && request.inputs.length !== 1) {
    throw new UsageError("--tag moves exactly one input; name it (bun scripts/bump.ts INPUT --tag TAG)");
  }
  const { repository, ref } = request;
  if (repository !== undefined && ref !== undefined && request.inputs.length === 0) {
    return selectByRef(lock, { ...request, repository, ref }, deps.refs);
  }
  const selection = selectInputs(lock, request);
  if (request.rev !== undefined && selection.selected.length !== 1 && request.repository === undefined) {
    throw new UsageError("--rev pins exactly one input; name it (bun scripts/bump.ts INPUT --rev SHA)");
  }
  return selection;
}

/**
 * Choose targets: a pushed tag's release moves; the dispatched SHA for the one input (--rev); a named
 * tag (--tag); else each selected input's head and each release-following input's newest release.
 */
async function chooseTargets(request: BumpRequest, selection: Selection, deps: BumpDeps): Promise<Targets> {
  const { selected } = selection;
  const [input] = selected;
  if (selection.pushedTag !== undefined && selection.pushedTag.length > 0) {
    return pushedReleaseTargets(selection.pushedTag, selected, request, deps);
  }
  if (request.tag !== undefined && input !== undefined) return namedTagTarget(input, request.tag, request);
  if (request.rev !== undefined && input !== undefined) {
    // A dispatched commit younger than min-age is held; a later scheduled run takes it once old enough.
    const young = await ageDecision(input, request.rev, request, deps);
    if (young !== undefined && "message" in young) return { targets: [], skipped: [young] };
    return dispatchedTarget(input, { ...request, rev: request.rev }, deps.checkTarget);
  }
  const released = await releaseTargets(selection.releases, request, deps);
  if (selected.length === 0) return released;
  const answers = deps.freshness === undefined ? undefined : await deps.freshness(selected);
  const out: Targets = { targets: [...released.targets], skipped: [...released.skipped] };
  for (const input of selected) {
    const answer = answers?.find((a) => a.name === input.name);
    const pin = request.pins?.get(input.name);
    const decided =
      pin !== undefined
        ? { rev: pin }
        : answer?.status === "current"
          ? undefined
          : await ageDecision(input, undefined, request, deps);
    if (answer?.status === "current" && pin === undefined) {
      out.skipped.push(skip(input, "up-to-date", `'${input.name}' is already up to date`));
    } else if (decided !== undefined && "message" in decided) {
      out.skipped.push(decided);
    } else if (decided !== undefined) {
      out.targets.push({ input, to: decided.rev, exact: true });
    } else {
      out.targets.push({
        input,
        to: answer?.status === "outdated" ? answer.latest : undefined,
        exact: false,
      });
    }
  }
  return out;
}

/**
 * A pushed tag's moves: each input to that tag, locked at the pushed commit (the tag's, peeled). One
 * batched question lists the series' tags up to the pushed one, for the tags in between and, under
 * min-age, its date: a tag younger than min-age is held; a later scheduled run takes it once old enough.
 */
async function pushedReleaseTargets(
  moves: readonly ReleaseMove[],
  selected: readonly Selected[],
  request: Pick<BumpRequest, "plans" | "rev">,
  deps: Pick<BumpDeps, "releases">,
): Promise<Targets> {
  const asked = moves.flatMap((move) =>
    selected.filter((input) => input.name === move.name).map((input) => ({ move, input })),
  );
  const queries = asked.flatMap(({ move, input }): ReleaseQuery[] => {
    const source = githubSource(input.node);
    const age = minAgeOf(request, move.name);
    if (source === undefined) return [];
    return [{ name: move.name, source, tag: move.from, upTo: move.to, ...(age && { minAgeMs: age.ms }) }];
  });
  const answers = deps.releases === undefined || queries.length === 0 ? [] : await deps.releases(queries);
  const out: Targets = { targets: [], skipped: [] };
  for (const { move, input } of asked) {
    const answer = answers.find((candidate) => candidate.name === move.name);
    const reached = answer?.status === "newer" && answer.tag === move.to ? answer : undefined;
    const age = minAgeOf(request, move.name);
    if (age !== undefined && reached === undefined) {
      const why =
        answer === undefined
          ? "tag dates are read from GitHub, and it is not a GitHub input"
          : answer.status === "unknown"
            ? answer.reason
            : `${move.to} is younger than that`;
      const message = `'${move.name}' is held at ${move.from} by ${age.why}: ${why}; a later scheduled run moves it once it is old enough`;
      out.skipped.push(skip(input, "held", message));
      continue;
    }
    const release = { from: move.from, to: move.to, ...(reached && { between: reached.between }) };
    out.targets.push({ input, to: request.rev, exact: request.rev !== undefined, release });
  }
  return out;
}

/** `--tag TAG` on one input: a tag of its series, never backwards unless --allow-downgrade. */
function namedTagTarget(input: Selected, tag: string, request: BumpRequest): Targets {
  const current = trackedRef(input.node.original);
  if (current === undefined || input.node.original?.rev !== undefined) {
    throw new UsageError(
      `--tag moves an input pinned to a tag in flake.nix, but '${input.name}' names no tag there; use --rev SHA instead`,
    );
  }
  const standing = releaseStanding(current, tag);
  if (standing === "same") {
    return { targets: [], skipped: [skip(input, "release", `'${input.name}' is already at ${tag}`)] };
  }
  if (standing === "other-series") {
    const pinned = releaseTag(current);
    const series = pinned === undefined ? current : seriesName(pinned);
    throw new UsageError(
      `--tag ${tag} is not of '${input.name}''s series ${series} (pinned at ${current}); name a tag of that series`,
    );
  }
  if (standing === "older" && request.allowDowngrade !== true) {
    throw new UsageError(
      `--tag ${tag} is older than '${input.name}''s ${current}: that is a downgrade; pass --allow-downgrade to move it back anyway`,
    );
  }
  return {
    targets: [{ input, to: undefined, exact: false, release: { from: current, to: tag } }],
    skipped: [],
  };
}

/** The release-following inputs' newest releases (one batched question), as targets or skips. */
async function releaseTargets(
  inputs: readonly Selected[],
  request: Pick<BumpRequest, "plans">,
  deps: BumpDeps,
): Promise<Targets> {
  const out: Targets = { targets: [], skipped: [] };
  const queries: ReleaseQuery[] = [];
  for (const input of inputs) {
    const source = githubSource(input.node);
    const tag = trackedRef(input.node.original);
    const age = minAgeOf(request, input.name);
    if (source !== undefined && tag !== undefined)
      queries.push({ name: input.name, source, tag, ...(age === undefined ? {} : { minAgeMs: age.ms }) });
    else
      out.skipped.push(
        skip(input, "release", `'${input.name}' follows releases, but only GitHub inputs' tags are listed`),
      );
  }
  if (queries.length === 0) return out;
  if (deps.releases === undefined) {
    throw new UsageError(
      `${queries.map((q) => `'${q.name}'`).join(", ")} follow releases, which needs GitHub's tag list; run with a GitHub token`,
    );
  }
  for (const answer of await deps.releases(queries)) {
    const input = inputs.find((candidate) => candidate.name === answer.name);
    const from = queries.find((query) => query.name === answer.name)?.tag;
    if (input === undefined || from === undefined) continue;
    if (answer.status === "newer") {
      out.targets.push({
        input,
        to: answer.rev,
        exact: true,
        release: { from, to: answer.tag, between: answer.between },
      });
    } else if (answer.status === "current") {
      out.skipped.push(
        skip(input, "up-to-date", `'${input.name}' is at the newest release of its series, ${from}`),
      );
    } else if (answer.status === "young") {
      const why = minAgeOf(request, input.name)?.why ?? "min-age";
      out.skipped.push(
        skip(input, "held", `'${input.name}' is held at ${from} by ${why}: ${youngLine(answer)}`),
      );
    } else if (minAgeOf(request, input.name) !== undefined) {
      const why = minAgeOf(request, input.name)?.why ?? "min-age";
      out.skipped.push(skip(input, "held", `'${input.name}' is held at ${from} by ${why}: ${answer.reason}`));
    } else {
      out.skipped.push(skip(input, "release", `'${input.name}' stays at ${from}: ${answer.reason}`));
    }
  }
  return out;
}

/** A dispatched SHA, unless the lock already holds it or a newer commit (dispatches arrive out of order). */
async function dispatchedTarget(
  input: Selected,
  request: BumpRequest & { rev: string },
  check: TargetCheck | undefined,
): Promise<Targets> {
  const { rev } = request;
  const lockedRev = input.node.locked?.rev;
  if (lockedRev === rev) {
    return {
      targets: [],
      skipped: [skip(input, "already-at-rev", `'${input.name}' is already locked to ${rev}`)],
    };
  }
  const out: Targets = { targets: [{ input, to: rev, exact: true }], skipped: [] };
  const source = githubSource(input.node);
  if (source === undefined) {
    const url = input.node.original?.type === "git" ? input.node.original.url : undefined;
    const backwards =
      url !== undefined && lockedRev !== undefined && (await isGitAncestor(url, rev, lockedRev));
    if (backwards === true) refuseDowngrade(input, request, lockedRev);
    return out;
  }
  if (check === undefined) return out;
  const verdict = await check({
    input: input.name,
    source,
    lockedRev,
    rev,
    upstream: (list) => {
      out.upstream = list;
    },
    compared: (answer) => {
      out.compared = answer;
    },
  });
  if (verdict !== "ahead") return out;
  // A person's --rev (no pushed repository) that moves backwards is refused unless they allow it.
  if (request.repository === undefined) {
    refuseDowngrade(input, request, lockedRev);
    return out;
  }
  const message = `'${input.name}' is already ahead: the lock holds ${lockedRev?.slice(0, 12)}, which already contains ${rev.slice(0, 12)}`;
  return { targets: [], skipped: [skip(input, "already-ahead", message)] };
}

/** A --rev older than the locked commit: a UsageError unless --allow-downgrade says to move back. */
function refuseDowngrade(
  input: Selected,
  request: BumpRequest & { rev: string },
  lockedRev: string | undefined,
): void {
  if (request.allowDowngrade === true) return;
  throw new UsageError(
    `--rev ${request.rev.slice(0, 12)} is older than '${input.name}''s locked ${lockedRev?.slice(0, 12) ?? "commit"}: that moves it backwards; pass --allow-downgrade to do it anyway`,
  );
}

/**
 * Choose engines: native where provably identical to Nix's result, Nix elsewhere. Nix is started
 * here when it may be needed, so finding it overlaps the engine choice's questions to GitHub.
 */
async function chooseEngines(
  chosen: Targets,
  ctx: { flake: Flake; deps: BumpDeps; engine: Engine; nix: NixRun },
): Promise<Move[]> {
  const { flake, deps, engine } = ctx;
  // A grouped pull request's members are locked beside the moved inputs in the same Nix run
  // (withGroupMembers), so a run that keeps an open group moves everything through Nix.
  const grouping = deps.group !== undefined && Object.keys(await deps.group.members()).length > 0;
  if (grouping && engine === "native") {
    throw nativeRefusal(
      chosen.targets.map((t) => t.input.name).join("', '"),
      "the open grouped pull request's other inputs must be locked beside it in one Nix run",
    );
  }
  const decided: Engine = grouping ? "nix" : engine;
  const releases = chosen.targets.filter((target) => target.release !== undefined);
  if (decided === "native" && releases.length > 0) {
    throw nativeRefusal(releases.map((t) => t.input.name).join("', '"), RELEASE_BY_NIX);
  }
  if (decided !== "native" || releases.length > 0) ctx.nix.start();
  return Promise.all(
    chosen.targets.map(async (target) => ({
      target,
      choice:
        target.release !== undefined
          ? { engine: "nix" as const, reason: RELEASE_BY_NIX }
          : await chooseEngine({
              engine: decided,
              lock: flake.original.lock,
              lockText: flake.original.text,
              name: target.input.name,
              node: target.input.node,
              to: target.to,
              octokit: deps.octokit,
              compared: chosen.compared,
            }),
    })),
  );
}

/** Why a release goes through Nix: the new flake.nix changes the input's `original`, which Nix writes. */
const RELEASE_BY_NIX = "a release changes flake.nix's tag, and Nix locks what flake.nix names";

/** flake.nix with the release edits of `targets`, or undefined when none edits it; refuses (UsageError, with lines) before anything is written. */
function editedFlakeNix(flake: Flake, targets: readonly Target[]): string | undefined {
  let text: string | undefined;
  for (const { input, release } of targets) {
    if (release === undefined) continue;
    text = withInputRef(text ?? flake.nixText, input.name, release.from, release.to, "flake.nix");
  }
  return text;
}

/** A release locked at another commit than the tag's (as GitHub listed it or the push carried it) means the tag moved. */
function checkReleases(moves: readonly Move[], lock: LockFile): void {
  for (const { target } of moves) {
    if (target.release === undefined || !target.exact || target.to === undefined) continue;
    const locked = rootNode(lock.lock, target.input.name)?.locked?.rev;
    if (locked !== target.to) {
      throw new RuntimeError(
        `Nix locked '${target.input.name}' at tag ${target.release.to} to ${locked ?? "nothing"}, but the tag's commit is ${target.to}; the tag may have moved since, so rerun; flake.nix and flake.lock were left as they were`,
      );
    }
  }
}

/** Fetch native results: the tarballs side by side; one that Nix would read differently goes back to Nix. */
async function fetchNatives(moves: readonly Move[], deps: BumpDeps, engine: Engine): Promise<Engines> {
  const { octokit } = deps;
  const fetched = await mapBounded(moves, NATIVE_DOWNLOADS, async (move) => {
    const { choice } = move;
    if (choice.engine !== "native" || octokit === undefined) return { move };
    try {
      return {
        move,
        native: {
          result: await fetchLocked(await octokit(), choice.source, choice.rev),
          reason: choice.reason,
        },
      };
    } catch (error) {
      if (!(error instanceof NotNative)) throw error;
      if (engine === "native") throw nativeRefusal(move.target.input.name, error.message);
      return { move: { ...move, choice: { engine: "nix" as const, reason: error.message } } };
    }
  });
  const natives = new Map<string, NativeMove>();
  for (const { move, native } of fetched) {
    if (native !== undefined) natives.set(move.target.input.name, native);
  }
  return { moves: fetched.map((entry) => entry.move), natives };
}

/** What Nix wrote for its inputs (the original lock when none needed it), and the engines as they ended. */
interface NixOutcome extends Engines {
  byNix: LockFile;
}

/**
 * Run Nix first, for its inputs, on the original lock. The native moves go on top of what it wrote,
 * each only when provably independent of Nix's changes; otherwise Nix moves everything (as before the
 * native engine existed), which is always correct.
 */
async function runNix(
  engines: Engines,
  ctx: { flake: Flake; nix: NixRun; engine: Engine; group: GroupDeps | undefined },
): Promise<NixOutcome> {
  const { flake, engine } = ctx;
  const viaNix = engines.moves.filter((move) => move.choice.engine === "nix");
  if (viaNix.length === 0) return { ...engines, byNix: flake.original };
  const byNix = await lockByNix(viaNix, ctx);
  const clash = [...engines.natives.keys()].find((name) => !composable(flake.original.lock, byNix, name));
  if (clash === undefined) return { ...engines, byNix };
  const reason = `Nix's run for the other inputs also changed '${clash}''s lock node, so the native move could not be combined with it`;
  if (engine === "native") throw nativeRefusal(clash, reason);
  const moves = engines.moves.map((move) =>
    move.choice.engine === "native" ? { ...move, choice: { engine: "nix" as const, reason } } : move,
  );
  return { moves, natives: new Map(), byNix: await lockByNix(moves, ctx) };
}

/** Which inputs need Nix and why, for the sentence when it cannot be found. */
function nixNeeds(moves: readonly Move[]): string {
  return moves
    .filter((move) => move.choice.engine === "nix")
    .map((move) => `'${move.target.input.name}' (${move.choice.reason})`)
    .join(", ");
}

/** One Nix run for `moves`: a pin for a dispatched SHA, else an update; a group's members beside them. */
async function lockByNix(
  moves: readonly Move[],
  ctx: { flake: Flake; nix: NixRun; group: GroupDeps | undefined },
): Promise<LockFile> {
  const [only, ...others] = moves;
  let plan: LockPlan;
  let failure: { what: string; hint: string };
  if (
    only?.target.exact &&
    only.target.to !== undefined &&
    only.target.release === undefined &&
    others.length === 0
  ) {
    const { input, to: rev } = only.target;
    plan = { kind: "pin", input: input.name, ref: pinnedRef(input.name, input.node, rev), rev };
    failure = {
      what: `lock '${input.name}' at ${rev}`,
      hint: "check that the commit exists upstream and is reachable from here",
    };
  } else {
    const names = moves.map((move) => move.target.input.name);
    plan = updatePlan(moves);
    failure = {
      what: `update ${names.map((name) => `'${name}'`).join(", ")}`,
      hint: "check that the inputs' sources are reachable and flake.nix evaluates",
    };
  }
  if (ctx.group !== undefined) plan = await withGroupMembers(plan, ctx.flake.original.lock, ctx.group);
  const flakeNix = editedFlakeNix(
    ctx.flake,
    moves.map((move) => move.target),
  );
  const lock = await ctx.nix.lock(plan, failure, nixNeeds(moves), flakeNix);
  checkReleases(moves, lock);
  return lock;
}

/** Combine: each native move laid onto what Nix wrote (runNix made sure they touch disjoint bytes). */
function combine(outcome: NixOutcome, lockFile: string): LockFile {
  let combined = outcome.byNix;
  for (const [name, { result }] of outcome.natives) {
    const text = movedLockText(combined.lock, name, result);
    combined = { text, lock: parseLock(text, lockFile) };
  }
  return combined;
}

/**
 * What one moved input's own commit carries: today its flake.lock, with only that input moved (or,
 * for a grouped pull request, the combined lock); the value later kinds of change extend.
 */
interface Carried {
  lock: LockFile;
  /** The gitlinks of the submodules that move with the input, beside flake.lock (and those left). */
  companions?: Companions | undefined;
  /** flake.nix with this input's release edit (a release); absent when the move leaves flake.nix. */
  flakeNix?: string;
}

/** A root input whose lock node moved (rather than went away). */
type Moved = NodeChange & { to: LockedSummary };

interface DescribeContext {
  flake: Flake;
  site: CompanionSite;
  nix: NixRun;
  outcome: NixOutcome;
  combined: LockFile;
  grouped: boolean;
  upstream: Upstream | undefined;
  plans: ReadonlyMap<string, InputPlan> | undefined;
}

/** Describe: one report entry per input whose lock node moved, each with what its commit carries. */
async function describeMoves(ctx: DescribeContext): Promise<InputChange[]> {
  const diff = diffLocks(ctx.flake.original.lock, ctx.combined.lock);
  const moved = diff.direct.filter((change): change is Moved => change.to !== undefined);
  const nixMoved = moved.filter((change) => !ctx.outcome.natives.has(change.path)).length;
  const entries: InputChange[] = [];
  for (const change of moved) {
    const carried = await carriedBy(change, nixMoved, ctx);
    const github = reportGitHub(rootNode(ctx.combined.lock, change.path));
    const companions = companionsOf(ctx.site, {
      name: change.path,
      ...change,
      ...(github ? { github } : {}),
    });
    entries.push(reportEntry(change, { ...carried, companions }, ctx));
  }
  return entries;
}

/** What `change`'s own commit carries (see Carried). */
async function carriedBy(change: Moved, nixMoved: number, ctx: DescribeContext): Promise<Carried> {
  // One grouped pull request carries every move in one lock: no input needs a lock of its own, so no
  // Nix run to make one.
  const { flake, outcome } = ctx;
  const move = outcome.moves.find((candidate) => candidate.target.input.name === change.path);
  if (ctx.grouped) {
    const flakeNix = editedFlakeNix(
      flake,
      outcome.moves.map((m) => m.target),
    );
    return flakeNix === undefined ? { lock: ctx.combined } : { lock: ctx.combined, flakeNix };
  }
  if (move?.target.release !== undefined) return releaseCarried(move, nixMoved, ctx);
  const native = outcome.natives.get(change.path);
  if (native !== undefined) {
    // Each input's pull request carries only that input's move: the base plus its own node.
    const text = movedLockText(flake.original.lock, change.path, native.result);
    return { lock: { text, lock: parseLock(text, flake.lockFile) } };
  }
  const node = rootNode(ctx.combined.lock, change.path);
  const rev = change.to.rev;
  if (nixMoved > 1 && rev !== undefined && node !== undefined) {
    // With several Nix moves, re-lock each one alone at the rev the combined run found
    // (deterministic, unlike a second "latest").
    const plan: LockPlan = { kind: "pin", input: change.path, ref: pinnedRef(change.path, node, rev), rev };
    const failure = {
      what: `lock '${change.path}' alone at ${rev}`,
      hint: "rerun, and report it if it persists",
    };
    return { lock: await ctx.nix.lock(plan, failure, nixNeeds(outcome.moves)) };
  }
  // What Nix alone wrote: the lock of its one input.
  return { lock: outcome.byNix };
}

/** A release's own commit: flake.nix with only its tag changed, and the lock Nix writes for that flake.nix. */
async function releaseCarried(move: Move, nixMoved: number, ctx: DescribeContext): Promise<Carried> {
  const flakeNix = editedFlakeNix(ctx.flake, [move.target]) ?? ctx.flake.nixText;
  if (nixMoved <= 1) return { lock: ctx.outcome.byNix, flakeNix };
  const name = move.target.input.name;
  const failure = {
    what: `lock '${name}' alone at ${move.target.release?.to}`,
    hint: "rerun, and report it if it persists",
  };
  const lock = await ctx.nix.lock(
    { kind: "update", inputs: [name] },
    failure,
    nixNeeds(ctx.outcome.moves),
    flakeNix,
  );
  checkReleases([move], lock);
  return { lock, flakeNix };
}

function reportEntry(change: Moved, carried: Carried, ctx: DescribeContext): InputChange {
  const native = ctx.outcome.natives.get(change.path);
  const entry: InputChange = {
    name: change.path,
    to: change.to,
    transitive: groupTransitive(diffLocks(ctx.flake.original.lock, carried.lock.lock), change.path),
    lock: lockText(carried.lock.text),
    engine: native === undefined ? "nix" : "native",
    engineReason:
      native?.reason ??
      ctx.outcome.moves.find((move) => move.target.input.name === change.path)?.choice.reason ??
      "moved by Nix",
  };
  if (change.from !== undefined) entry.from = change.from;
  const release = ctx.outcome.moves.find((move) => move.target.input.name === change.path)?.target.release;
  if (release !== undefined) {
    entry.release = { from: release.from, to: release.to };
    if (release.between !== undefined && release.between.length > 0)
      entry.release.between = [...release.between];
  }
  if (carried.flakeNix !== undefined) entry.flakeNix = lockText(carried.flakeNix);
  const plan = ctx.plans?.get(change.path);
  if (plan?.gate.move === true && plan.note !== undefined) entry.overrode = plan.note;
  const github = reportGitHub(rootNode(ctx.combined.lock, change.path));
  if (github !== undefined) entry.github = github;
  if (carried.companions !== undefined) entry.companions = carried.companions;
  const { upstream } = ctx;
  if (upstream !== undefined && upstream.from === change.from?.rev && upstream.to === change.to.rev) {
    entry.upstream = upstream;
  }
  return entry;
}

interface ReportParts {
  site: Report["flake"];
  grouped: boolean;
  selected: readonly Selected[];
  skipped: Skipped[];
  note?: string | undefined;
  /** The checkout's submodules: each skipped input names those on its repository. */
  companions: CompanionSite;
}

/** The report; `moved` is absent when nothing was a target, and then nothing changed. */
function buildReport(
  request: BumpRequest,
  parts: ReportParts,
  moved?: { inputs: InputChange[]; combined: LockFile; original: string; nix: NixRun; flakeNix?: string },
): Report {
  const inputs = moved?.inputs ?? [];
  const skipped = parts.skipped.filter((s) => !inputs.some((entry) => entry.name === s.name));
  for (const input of parts.selected) {
    if (!inputs.some((entry) => entry.name === input.name) && !skipped.some((s) => s.name === input.name)) {
      skipped.push(skip(input, "up-to-date", `'${input.name}' is already up to date`));
    }
  }
  for (const [i, entry] of skipped.entries()) skipped[i] = withSubmodules(parts.companions, entry);
  const report: Report = {
    schema: 1,
    // A run where Nix only reformatted the file counts as "nothing to do" and leaves it untouched;
    // a companion catching up with a current input is a change although the lock stays.
    changed:
      moved !== undefined &&
      inputs.length > 0 &&
      (moved.combined.text !== moved.original || inputs.some((entry) => lockUnmoved(entry))),
    dryRun: request.dryRun,
    requested: { inputs: [...request.inputs] },
    flake: parts.site,
    inputs,
    skipped,
    lock: null,
    nix: { version: moved?.nix.version ?? "", invocations: moved?.nix.invocations ?? 0 },
  };
  if (request.rev !== undefined) report.requested.rev = request.rev;
  if (parts.grouped) report.grouped = true;
  if (report.changed && moved !== undefined) report.lock = lockText(moved.combined.text);
  if (report.changed && moved?.flakeNix !== undefined) report.flakeNix = lockText(moved.flakeNix);
  if (parts.note !== undefined) report.note = parts.note;
  return report;
}

/**
 * Move the requested (or tracked) inputs and describe what moved. flake.lock is written once, at the
 * end, and only when something moved and this is no dry run.
 */
export async function bump(request: BumpRequest, deps: BumpDeps): Promise<Report> {
  const engine = request.engine ?? "auto";
  const grouped = deps.group !== undefined;
  // Read the flake and where it sits in git; then validate the request against its lock.
  const { flake, site } = await readSite(request.flakeDir);
  const validated = await validate(request, flake.original.lock, deps);
  // One target's share of the run, less what the policy holds (each held input reported, with why).
  const selection = narrowSelection(request, validated);
  // Choose targets: a pushed tag, a dispatched SHA, a named tag, or each input's head or newest
  // release; what is already there is skipped.
  const chosen = await chooseTargets(request, selection, deps);
  const { selected, note } = selection;
  const all = [...selected, ...selection.releases];
  // Read the submodules, and check the listed companions against them, before anything runs.
  const companions = await readCompanions(site.repoRoot, all, deps.companions ?? {});
  const skipped = [...selection.skipped, ...chosen.skipped];
  const parts = { site, grouped, selected: all, skipped, note, companions };
  // Choose engines (starting Nix, unseen, when some input may need it).
  const nix = new NixRun(deps.nix, flake);
  if (chosen.targets.length === 0) {
    // Nothing to lock; a current input whose listed companion points elsewhere still moves it alone.
    const inputs = catchUpCompanions(companions, flake.original, parts, [], request.plans);
    if (inputs.length === 0) return buildReport(request, parts);
    return finish(request, { flake, parts, inputs, combined: flake.original, nix });
  }
  // Edit flake.nix for the releases (in memory): a URL flake-bump cannot edit safely refuses here.
  const flakeNix = editedFlakeNix(flake, chosen.targets);
  const moves = await chooseEngines(chosen, { flake, deps, engine, nix });
  // Fetch the native results; a tarball Nix would read differently goes back to Nix.
  const engines = await fetchNatives(moves, deps, engine);
  // Run Nix for its inputs on the original lock (for all of them when it and a native move overlap).
  const outcome = await runNix(engines, { flake, nix, engine, group: deps.group });
  // Combine the native moves with what Nix wrote.
  const combined = combine(outcome, flake.lockFile);
  // Describe each moved input, with what its own commit carries.
  const described = {
    flake,
    site: companions,
    nix,
    outcome,
    combined,
    grouped,
    upstream: chosen.upstream,
    plans: request.plans,
  };
  const moved = await describeMoves(described);
  // Its own pull request carries the lock as it was; a grouped one, the group's combined lock.
  const caughtUp = catchUpCompanions(
    companions,
    grouped ? combined : flake.original,
    parts,
    moved,
    request.plans,
  );
  const inputs = [...moved, ...caughtUp];
  return finish(request, { flake, parts, inputs, combined, nix, flakeNix });
}

/**
 * Report, then write flake.nix (a release's tag) and flake.lock once each, atomically, when they
 * moved, and stage the companions' gitlinks beside them (a companion that catches up with a current
 * input moves although the lock does not).
 */
async function finish(
  request: BumpRequest,
  run: {
    flake: Flake;
    parts: ReportParts;
    inputs: InputChange[];
    combined: LockFile;
    nix: NixRun;
    flakeNix?: string | undefined;
  },
): Promise<Report> {
  const { flake, parts, inputs, combined, nix, flakeNix } = run;
  const moved = { inputs, combined, original: flake.original.text, nix };
  const report = buildReport(request, parts, flakeNix === undefined ? moved : { ...moved, flakeNix });
  if (report.changed && !request.dryRun) {
    if (flakeNix !== undefined) await writeAtomic(flake.nixFile, flakeNix);
    if (combined.text !== flake.original.text) await writeAtomic(flake.lockFile, combined.text);
    await stageCompanions(parts.site.repoRoot, inputs);
  }
  return report;
}

/**
 * Whether a skipped input's companions still catch up with the rev its lock holds: when it is
 * current, or held only by min-age (the lock stays where it is, and the companion goes there, not to
 * a young commit). An input the policy holds outright (follow: none, a schedule) moves nothing.
 */
function catchesUp(skipped: Skipped, plans: BumpRequest["plans"]): boolean {
  if (skipped.reason === "up-to-date" || skipped.reason === "already-at-rev") return true;
  // Holds by the policy's gate come from narrow(); a "held" past the gate is min-age's.
  return skipped.reason === "held" && plans?.get(skipped.name)?.gate.move === true;
}

/**
 * The entries of inputs already current (skipped as up to date or at the dispatched rev, or left
 * where Nix found them) whose listed companions point elsewhere: the lock node stays, and the commit
 * carries only those gitlinks, moved to the locked rev. `lock` is the one the run's commit holds.
 */
function catchUpCompanions(
  site: CompanionSite,
  lock: LockFile,
  parts: ReportParts,
  moved: readonly InputChange[],
  plans: BumpRequest["plans"],
): InputChange[] {
  const entries: InputChange[] = [];
  for (const input of parts.selected) {
    if (moved.some((entry) => entry.name === input.name)) continue;
    const skipped = parts.skipped.find((entry) => entry.name === input.name);
    if (skipped !== undefined && !catchesUp(skipped, plans)) continue;
    const companions = companionsToCatchUp(site, input);
    if (companions === undefined) continue;
    const at = summarize(input.node);
    const entry: InputChange = {
      name: input.name,
      from: at,
      to: at,
      transitive: { added: [], removed: [], changed: [] },
      lock: lockText(lock.text),
      companions,
      engineReason: "the lock already holds the rev; only its companion moves",
    };
    const github = reportGitHub(input.node);
    if (github !== undefined) entry.github = github;
    entries.push(entry);
  }
  return entries;
}

/**
 * The selected inputs this bump moves: those in `only` (the rest are another target's to report),
 * less those the policy holds, each of which is reported as skipped with why.
 */
function narrow(
  request: Pick<BumpRequest, "only" | "plans">,
  selected: readonly Selected[],
  skipped: readonly Skipped[],
): { selected: Selected[]; skipped: Skipped[] } {
  const { only, plans } = request;
  const out = {
    selected: [] as Selected[],
    skipped: skipped.filter((entry) => only?.has(entry.name) ?? true),
  };
  for (const input of selected) {
    if (only !== undefined && !only.has(input.name)) continue;
    const plan = plans?.get(input.name);
    if (plan === undefined || plan.gate.move) out.selected.push(input);
    else out.skipped.push(skip(input, "held", plan.note ?? `'${input.name}' is held by the policy file`));
  }
  return out;
}

/** `narrow` over a whole selection: the inputs following branches, those following releases, a pushed tag's moves. */
function narrowSelection(request: Pick<BumpRequest, "only" | "plans">, selection: Selection): Selection {
  const branch = narrow(request, selection.selected, selection.skipped);
  const releases = narrow(request, selection.releases, []);
  const out: Selection = {
    selected: branch.selected,
    skipped: [...branch.skipped, ...releases.skipped],
    releases: releases.selected,
  };
  if (selection.pushedTag !== undefined) {
    out.pushedTag = selection.pushedTag.filter((move) =>
      out.selected.some((input) => input.name === move.name),
    );
  }
  if (selection.note !== undefined) out.note = selection.note;
  return out;
}

/**
 * `--check`'s answers with min-age applied: an input behind its branch whose newer commits are all
 * younger than its min-age is reported held, not behind; one that may move is behind up to that commit.
 */
async function heldBack(
  answers: readonly Freshness[],
  selected: readonly Selected[],
  skipped: Skipped[],
  decide: (input: Selected) => Promise<{ rev: string } | Skipped | undefined>,
): Promise<Freshness[]> {
  const out: Freshness[] = [];
  for (const answer of answers) {
    const input = selected.find((candidate) => candidate.name === answer.name);
    const decided = answer.status === "outdated" && input !== undefined ? await decide(input) : undefined;
    if (decided !== undefined && "message" in decided) skipped.push(decided);
    else if (decided !== undefined && answer.status === "outdated")
      out.push({ ...answer, latest: decided.rev });
    else out.push(answer);
  }
  return out;
}

/** An input's min-age when it has a say (a policy above 0h, the input not named), and the words that cite it. */
function minAgeOf(
  request: Pick<BumpRequest, "plans">,
  name: string,
): { ms: number; why: string } | undefined {
  const plan = request.plans?.get(name);
  if (plan?.gate.move !== true || plan.gate.minAgeMs === 0) return undefined;
  const minAge = plan.policy["min-age"];
  return { ms: plan.gate.minAgeMs, why: `min-age: ${minAge.value} (${minAge.where})` };
}

/**
 * min-age's say on one input: undefined when it has none (no policy, 0h, or a named input), the
 * commit to lock, or the skip that holds it (young, or the lock already as new as allowed).
 */
async function ageDecision(
  input: Selected,
  rev: string | undefined,
  request: Pick<BumpRequest, "plans">,
  deps: Pick<BumpDeps, "minAge">,
): Promise<{ rev: string } | Skipped | undefined> {
  const age = minAgeOf(request, input.name);
  if (age === undefined) return undefined;
  const { ms, why } = age;
  const source = githubSource(input.node);
  if (source === undefined || deps.minAge === undefined) {
    const message = `'${input.name}' is held by ${why}: commit dates are read from GitHub, and it is not a GitHub input`;
    return skip(input, "held", message);
  }
  const target = await deps.minAge(source, input.node, ms, rev);
  if (target.kind === "move") return rev === undefined ? { rev: target.rev } : undefined;
  if (target.kind === "young") {
    const when = new Date(target.oldEnoughAt).toISOString().replace(/\.\d+Z$/, "Z");
    const message = `'${input.name}' is held by ${why}: its newer commits are younger; the first is old enough at ${when}`;
    return skip(input, "held", message);
  }
  return skip(
    input,
    "held",
    `'${input.name}' is held by ${why}: the lock already holds the newest commit that old`,
  );
}

/** Nix's plan for moves to their branch heads, with the exact ones (min-age, a run's pins) pinned. */
function updatePlan(moves: readonly Move[]): LockPlan {
  const pins: Pin[] = moves.flatMap(({ target }) =>
    target.exact && target.to !== undefined
      ? [
          {
            input: target.input.name,
            ref: pinnedRef(target.input.name, target.input.node, target.to),
            rev: target.to,
          },
        ]
      : [],
  );
  const names = moves.filter(({ target }) => !target.exact).map(({ target }) => target.input.name);
  const [first, ...rest] = pins;
  // Without a head to follow, the plan is a pin: an update naming no input would update them all.
  if (names.length === 0 && first !== undefined) {
    return rest.length > 0 ? { kind: "pin", ...first, also: rest } : { kind: "pin", ...first };
  }
  return pins.length === 0
    ? { kind: "update", inputs: names }
    : { kind: "update", inputs: names, also: pins };
}

/**
 * Whether a native move of `name` can be laid onto the lock Nix wrote for the other inputs: Nix's
 * file is in the format the native writer reproduces, and Nix left that input's node exactly as it
 * was, so the two moves touch disjoint bytes.
 */
function composable(before: FlakeLock, byNix: LockFile, name: string): boolean {
  if (serializeLock(byNix.lock) !== byNix.text) return false;
  const key = rootNodeKey(before, name);
  if (key === undefined || rootNodeKey(byNix.lock, name) !== key) return false;
  return Bun.deepEquals(before.nodes[key], byNix.lock.nodes[key], true);
}

/**
 * A grouped pull request holds one lock with every member moved, so a run that moves one input must
 * write a lock that still holds the others: each member the base lock is behind on is pinned at the
 * group's rev in the same Nix run (one `nix flake lock` with several --override-input, exactly as
 * Nix writes it). Members the base already has (same rev or newer) drop out. A dispatch older than
 * the group's own rev for that input locks the group's rev instead: a group never moves back.
 */
export async function withGroupMembers(
  plan: LockPlan,
  before: FlakeLock,
  group: GroupDeps,
): Promise<LockPlan> {
  const also: Pin[] = [...(plan.also ?? [])];
  let widened = plan;
  for (const [input, rev] of Object.entries(await group.members())) {
    const node = rootNode(before, input);
    // A member the flake no longer has, or one that only follows another, cannot be pinned.
    if (node === undefined || node.locked === undefined) continue;
    const source = githubSource(node);
    if (widened.kind === "pin" && widened.input === input) {
      if (widened.rev !== rev && (await group.isOlder(source, widened.rev, rev))) {
        widened = { ...widened, rev, ref: pinnedRef(input, node, rev) };
      }
      continue;
    }
    // Updated to its branch head anyway, which holds the group's rev (open-pr checks it).
    if (widened.kind === "update" && widened.inputs.includes(input)) continue;
    const locked = node.locked.rev;
    if (await sameOrNewer(group.isOlder, source, locked, rev)) continue;
    also.push({ input, ref: pinnedRef(input, node, rev), rev });
  }
  return also.length === 0 ? widened : { ...widened, also };
}

/**
 * The bump itself: choose the inputs, let Nix move them, check what Nix wrote, and describe it.
 * flake.lock is byte-identical afterwards whenever anything fails (or with dry-run).
 */
import { createHash } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { readFile, rename, writeFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import * as v from "valibot";
import { mapBounded } from "../core/bounded.ts";
import { RuntimeError, UsageError } from "../core/errors.ts";
import { Sha } from "../core/ids.ts";
import { checkoutHead, gitTopLevel } from "../flake/checkout.ts";
import { type GitHubSource, githubSource, pinnedRef } from "../flake/flakeref.ts";
import {
  diffLocks,
  type FlakeLock,
  type LockDiff,
  type LockNode,
  parseLock,
  pinReason,
  type RootInput,
  rootInputs,
} from "../flake/lock.ts";
import { LOCK_COMMAND, type LockPlan, lockArgs, type Nix, type Pin } from "../flake/nix.ts";
import type { InputChange, LockText, Report, Skipped, Upstream } from "../flake/report.ts";
import type { Octokit } from "../github/client.ts";
import type { Compared, TargetCheck } from "../github/upstream.ts";
import { chooseEngine, type Engine, type EngineChoice, nativeRefusal } from "./engine.ts";
import type { Freshness } from "./freshness.ts";
import { fetchLocked, movedLockText, type NativeResult, NotNative, serializeLock } from "./native.ts";

export interface BumpRequest {
  flakeDir: string;
  /** Input names; empty = every tracked input (or the one matching `repository`). */
  inputs: readonly string[];
  rev?: string;
  /** OWNER/REPO of a pushed upstream, used to choose the input when none is named. */
  repository?: string;
  dryRun: boolean;
  /** Who moves the inputs (default auto: native where provably identical, Nix elsewhere). */
  engine?: Engine;
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

/** Pick the root inputs a request names, or the tracked ones; pinned inputs are reported as skipped. */
export function selectInputs(
  lock: FlakeLock,
  request: Pick<BumpRequest, "inputs" | "repository" | "rev">,
): { selected: Selected[]; skipped: Skipped[] } {
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
    return { selected: [...new Map(selected.map((input) => [input.name, input])).values()], skipped };
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
  for (const input of candidates) {
    const reason = pinReason(input.node.original);
    if (reason === undefined) selected.push(input);
    else skipped.push(skip(input, "pinned", `'${input.name}' is ${reason} in flake.nix`));
  }
  if (request.repository !== undefined && request.rev !== undefined && selected.length > 1) {
    throw new UsageError(
      `inputs ${selected.map((i) => `'${i.name}'`).join(" and ")} all track '${request.repository}'; name the one to pin in the dispatch payload's 'input'`,
    );
  }
  return { selected, skipped };
}

/** Replace a file's contents atomically: a reader sees the old bytes or the new, never half. */
export async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.flake-bump-${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

function groupTransitive(diff: LockDiff, name: string): InputChange["transitive"] {
  const under = (change: { path: string }) => change.path.startsWith(`${name}/`);
  return {
    added: diff.transitive.added.filter(under),
    removed: diff.transitive.removed.filter(under),
    changed: diff.transitive.changed.filter(under),
  };
}

/**
 * Run Nix on the real flake and return what it wrote. The original bytes stay in memory and are put
 * back afterwards in every case (success, failure, interrupt), so the only lasting change to
 * flake.lock is the caller's single atomic write of the final result.
 */
async function nixLockText(
  lockFile: string,
  original: string,
  work: (signal: AbortSignal) => Promise<void>,
): Promise<string> {
  const abort = new AbortController();
  let running: Promise<unknown> = Promise.resolve();
  const onSignal = (signal: NodeJS.Signals) => {
    // Stop Nix first and wait for it, so it cannot write the lock after we put the original back.
    abort.abort();
    const settled = Promise.race([running.catch(() => undefined), Bun.sleep(10_000)]);
    void settled.then(() => {
      writeFileSync(lockFile, original);
      process.exit(signal === "SIGINT" ? 130 : 143);
    });
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    running = work(abort.signal);
    await running;
    return await readFile(lockFile, "utf8");
  } finally {
    await writeAtomic(lockFile, original);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

function lockText(text: string): LockText {
  return { text, sha256: createHash("sha256").update(text).digest("hex") };
}

function lockedRevOf(lock: FlakeLock, input: string): string | undefined {
  return selectedNode(lock, input)?.locked?.rev;
}

/** Read and parse the flake's lock, with the errors a user can act on. */
async function readFlake(
  flakeDir: string,
): Promise<{ dir: string; lockFile: string; text: string; lock: FlakeLock }> {
  const dir = resolve(flakeDir);
  if (!existsSync(join(dir, "flake.nix"))) {
    throw new UsageError(
      `there is no flake.nix in ${dir}; run in your flake's directory or pass --flake DIR`,
    );
  }
  const lockFile = join(dir, "flake.lock");
  let text: string;
  try {
    text = await readFile(lockFile, "utf8");
  } catch {
    throw new UsageError(
      `there is no flake.lock in ${dir}; create it with \`${LOCK_COMMAND}\`, commit it, then retry`,
    );
  }
  return { dir, lockFile, text, lock: parseLock(text, lockFile) };
}

/** `bump.ts --check`'s answer: which inputs are behind, and whether moving them needs Nix. */
export interface CheckResult {
  answers: Freshness[];
  skipped: Skipped[];
  /** True when some input that is behind (or that only Nix can judge) must go through Nix. */
  needsNix: boolean;
  /** The engine each input that is behind would get, and why. */
  engines: Array<{ name: string; engine: "native" | "nix"; reason: string }>;
}

/**
 * `bump.ts --check`: which of the requested (or tracked) inputs are behind, and which engine would
 * move each, without Nix or changes. `native` never needs Nix: what it cannot prove, bump refuses.
 */
export async function checkOutdated(
  request: Pick<BumpRequest, "flakeDir" | "inputs" | "repository" | "engine">,
  freshness: (inputs: readonly Selected[]) => Promise<Freshness[]>,
  octokit?: () => Promise<Octokit>,
): Promise<CheckResult> {
  const { text, lock } = await readFlake(request.flakeDir);
  const { selected, skipped } = selectInputs(lock, request);
  const answers = await freshness(selected);
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
  const needsNix = engine !== "native" && engines.some((entry) => entry.engine === "nix");
  return { answers, skipped, needsNix, engines };
}

/** One input to move, where to, and which engine moves it. */
interface Move {
  input: Selected;
  /** The commit to lock: the dispatched SHA, or the head freshness read; undefined → Nix's own update. */
  to: string | undefined;
  choice: EngineChoice;
}

/**
 * Nix 2.8's `--override-input` also writes the rev into a non-flake input's `original` (later Nix
 * does not). Left there, the next run would read the input as pinned in flake.nix and skip it, and
 * Nix itself would find the lock out of date with flake.nix. Put `original` back as it was.
 */
export function restoreOriginal(
  before: FlakeLock,
  after: { text: string; lock: FlakeLock },
  input: string,
  rev: string,
): { text: string; lock: FlakeLock } {
  const was = selectedNode(before, input)?.original;
  const key = after.lock.nodes[after.lock.root]?.inputs?.[input];
  const node = typeof key === "string" ? after.lock.nodes[key] : undefined;
  const now = node?.original;
  if (typeof key !== "string" || node === undefined || was === undefined || now === undefined) return after;
  if (was.rev !== undefined || now.rev !== rev || !Bun.deepEquals({ ...now, rev: undefined }, was)) {
    return after;
  }
  // Only a file in Nix's own format can be rewritten without touching any other byte.
  if (serializeLock(after.lock) !== after.text) return after;
  const lock: FlakeLock = {
    ...after.lock,
    nodes: { ...after.lock.nodes, [key]: { ...node, original: was } },
  };
  return { text: serializeLock(lock), lock };
}

/**
 * Whether a native move of `name` can be laid onto the lock Nix wrote for the other inputs: Nix's
 * file is in the format the native writer reproduces, and Nix left that input's node exactly as it
 * was, so the two moves touch disjoint bytes.
 */
function composable(before: FlakeLock, byNix: { text: string; lock: FlakeLock }, name: string): boolean {
  if (serializeLock(byNix.lock) !== byNix.text) return false;
  const key = before.nodes[before.root]?.inputs?.[name];
  if (typeof key !== "string" || byNix.lock.nodes[byNix.lock.root]?.inputs?.[name] !== key) return false;
  return Bun.deepEquals(before.nodes[key], byNix.lock.nodes[key], true);
}

export async function bump(request: BumpRequest, deps: BumpDeps): Promise<Report> {
  const engine = request.engine ?? "auto";
  // Started now, awaited later: git and the questions to GitHub overlap.
  const topLevel = readFlake(request.flakeDir).then(async (flake) => ({
    flake,
    repoRoot: await gitTopLevel(flake.dir),
  }));
  /** Nix is found once, and only started when some input may need it. */
  let nixProbe: Promise<Nix> | undefined;
  const startNix = () => {
    if (nixProbe === undefined) {
      nixProbe = deps.nix();
      // Handled when awaited; a run that ends up native never awaits it.
      nixProbe.catch(() => undefined);
    }
    return nixProbe;
  };
  // Not started before the inputs are known to be behind: a quiet night never starts Nix at all.

  const {
    flake: { dir, lockFile, text: originalText, lock: before },
    repoRoot,
  } = await topLevel;

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

  const { selected, skipped } = selectInputs(before, request);
  if (request.rev !== undefined && selected.length !== 1 && request.repository === undefined) {
    throw new UsageError("--rev pins exactly one input; name it (bun scripts/bump.ts INPUT --rev SHA)");
  }

  const report: Report = {
    schema: 1,
    changed: false,
    dryRun: request.dryRun,
    requested: { inputs: [...request.inputs] },
    flake: { dir },
    inputs: [],
    skipped,
    lock: null,
    nix: { version: "", invocations: 0 },
  };
  if (request.rev !== undefined) report.requested.rev = request.rev;
  if (deps.group !== undefined) report.grouped = true;
  if (repoRoot !== undefined) {
    report.flake.repoRoot = repoRoot;
    report.flake.lockPath = relative(repoRoot, lockFile);
    const head = await checkoutHead(repoRoot);
    if (head !== undefined) report.flake.head = head;
  }

  let upstream: Upstream | undefined;
  // The target check's compare of the locked rev and the SHA also tells the engine choice whether the
  // upstream's flake.nix or flake.lock changed, so a dispatch under auto asks GitHub no more than Nix's.
  let compared: Compared | undefined;
  const targets: Array<{ input: Selected; to: string | undefined }> = [];
  const target = selected[0];
  const pinning = request.rev !== undefined && target !== undefined;
  if (request.rev !== undefined && target !== undefined) {
    const lockedRev = target.node.locked?.rev;
    const source = githubSource(target.node);
    if (lockedRev === request.rev) {
      skipped.push(skip(target, "already-at-rev", `'${target.name}' is already locked to ${request.rev}`));
    } else if (
      source !== undefined &&
      deps.checkTarget !== undefined &&
      (await deps.checkTarget({
        input: target.name,
        source,
        lockedRev,
        rev: request.rev,
        upstream: (list) => {
          upstream = list;
        },
        compared: (answer) => {
          compared = answer;
        },
      })) === "ahead"
    ) {
      skipped.push(
        skip(
          target,
          "already-ahead",
          `'${target.name}' is already ahead: the lock holds ${lockedRev?.slice(0, 12)}, which already contains ${request.rev.slice(0, 12)}`,
        ),
      );
    } else {
      targets.push({ input: target, to: request.rev });
    }
  } else if (selected.length > 0) {
    let answers: Freshness[] | undefined;
    if (deps.freshness !== undefined) {
      answers = await deps.freshness(selected);
      for (const input of selected) {
        if (answers.some((a) => a.name === input.name && a.status === "current"))
          skipped.push(skip(input, "up-to-date", `'${input.name}' is already up to date`));
      }
    }
    for (const input of selected) {
      const answer = answers?.find((a) => a.name === input.name);
      if (answer?.status === "current") continue;
      targets.push({ input, to: answer?.status === "outdated" ? answer.latest : undefined });
    }
  }
  if (targets.length === 0) return report;
  // A grouped pull request's members are locked beside the moved inputs in the same Nix run
  // (withGroupMembers), so a run that keeps an open group moves everything through Nix.
  const grouping = deps.group !== undefined && Object.keys(await deps.group.members()).length > 0;
  if (grouping && engine === "native") {
    throw nativeRefusal(
      targets.map((t) => t.input.name).join("', '"),
      "the open grouped pull request's other inputs must be locked beside it in one Nix run",
    );
  }
  const chosen: Engine = grouping ? "nix" : engine;
  if (chosen !== "native") startNix();

  const moves: Move[] = await Promise.all(
    targets.map(async ({ input, to }) => ({
      input,
      to,
      choice: await chooseEngine({
        engine: chosen,
        lock: before,
        lockText: originalText,
        name: input.name,
        node: input.node,
        to,
        octokit: deps.octokit,
        compared,
      }),
    })),
  );

  // The native downloads, side by side; a tarball Nix would read differently goes back to Nix.
  const natives = new Map<string, { result: NativeResult; reason: string }>();
  await mapBounded(moves, NATIVE_DOWNLOADS, async (move) => {
    const { choice } = move;
    if (choice.engine !== "native" || deps.octokit === undefined) return;
    try {
      const result = await fetchLocked(await deps.octokit(), choice.source, choice.rev);
      natives.set(move.input.name, { result, reason: choice.reason });
    } catch (error) {
      if (!(error instanceof NotNative)) throw error;
      if (engine === "native") throw nativeRefusal(move.input.name, error.message);
      move.choice = { engine: "nix", reason: error.message };
    }
  });
  let viaNix = moves.filter((move) => move.choice.engine === "nix");

  /** Nix, or one sentence saying which input needs it and why when it is not there. */
  const needNix = async (): Promise<Nix> => {
    try {
      return await startNix();
    } catch (error) {
      const why = viaNix.map((move) => `'${move.input.name}' (${move.choice.reason})`).join(", ");
      const cause = error instanceof Error ? error.message : String(error);
      throw new RuntimeError(
        `${why} can only be moved by Nix, but ${cause.charAt(0).toLowerCase()}${cause.slice(1)}; flake.lock was left as it was`,
      );
    }
  };

  /** One Nix run on the original lock; returns the parsed result, the file itself untouched. */
  const run = async (step: LockPlan, what: string): Promise<{ text: string; lock: FlakeLock }> => {
    const nix = await needNix();
    report.nix.version = nix.version.version;
    report.nix.invocations++;
    const args = lockArgs(nix.version, step, dir);
    const text = await nixLockText(lockFile, originalText, (signal) =>
      nix.run(args, { cwd: dir, what, signal }),
    );
    let lock: FlakeLock;
    try {
      lock = parseLock(text, lockFile);
    } catch (error) {
      throw new RuntimeError(
        `Nix wrote a flake.lock that does not parse (${String(error)}); the original was kept`,
      );
    }
    if (step.kind === "pin" && lockedRevOf(lock, step.input) !== step.rev) {
      throw new RuntimeError(
        `Nix locked '${step.input}' to ${lockedRevOf(lock, step.input) ?? "nothing"} instead of ${step.rev}; flake.lock was kept as it was — report this with your Nix version (${nix.version.version})`,
      );
    }
    for (const pin of step.also ?? []) {
      if (lockedRevOf(lock, pin.input) !== pin.rev) {
        throw new RuntimeError(
          `Nix locked '${pin.input}' to ${lockedRevOf(lock, pin.input) ?? "nothing"} instead of the grouped pull request's ${pin.rev}; flake.lock was kept as it was — report this with your Nix version (${nix.version.version})`,
        );
      }
    }
    return step.kind === "pin"
      ? restoreOriginal(before, { text, lock }, step.input, step.rev)
      : { text, lock };
  };
  const runNixFor = async (inputs: readonly Move[]) => {
    const [only] = inputs;
    let plan: LockPlan;
    let what: string;
    if (pinning && only !== undefined && request.rev !== undefined) {
      const ref = pinnedRef(only.input.name, only.input.node, request.rev);
      plan = { kind: "pin", input: only.input.name, ref, rev: request.rev };
      what = `lock '${only.input.name}' at ${request.rev}; check that the commit exists upstream and is reachable from here`;
    } else {
      const names = inputs.map((move) => move.input.name);
      plan = { kind: "update", inputs: names };
      what = `update ${names.map((name) => `'${name}'`).join(", ")}; check that the inputs' sources are reachable and flake.nix evaluates`;
    }
    if (deps.group !== undefined) plan = await withGroupMembers(plan, before, deps.group);
    return run(plan, what);
  };

  // Nix first, for its inputs, on the original lock; then the native moves on top of what it wrote,
  // each only when provably independent of Nix's changes. Otherwise Nix moves everything (as before
  // the native engine existed), which is always correct.
  let combined: { text: string; lock: FlakeLock } = { text: originalText, lock: before };
  if (viaNix.length > 0) {
    combined = await runNixFor(viaNix);
    const clash = [...natives.keys()].find((name) => !composable(before, combined, name));
    if (clash !== undefined) {
      const reason = `Nix's run for the other inputs also changed '${clash}''s lock node, so the native move could not be combined with it`;
      if (engine === "native") throw nativeRefusal(clash, reason);
      for (const move of moves) if (move.choice.engine === "native") move.choice = { engine: "nix", reason };
      natives.clear();
      viaNix = moves;
      combined = await runNixFor(viaNix);
    }
  }
  /** What Nix alone wrote: the lock of its one input, when it moved one. */
  const byNix = combined;
  for (const [name, { result }] of natives) {
    const text = movedLockText(combined.lock, name, result);
    combined = { text, lock: parseLock(text, lockFile) };
  }

  const diff = diffLocks(before, combined.lock);
  const moved = diff.direct.filter((change) => change.to !== undefined);
  const nixMoved = moved.filter((change) => !natives.has(change.path));

  for (const change of moved) {
    if (change.to === undefined) continue;
    const node = selectedNode(combined.lock, change.path);
    const native = natives.get(change.path);
    const rev = change.to.rev;
    let own: { text: string; diff: LockDiff };
    if (report.grouped === true) {
      // One grouped pull request carries every move in one lock: no input needs a lock of its own,
      // so no Nix run to make one.
      own = { text: combined.text, diff };
    } else if (native !== undefined) {
      // Each input's pull request carries only that input's move: the base plus its own node.
      const text = movedLockText(before, change.path, native.result);
      own = { text, diff: diffLocks(before, parseLock(text, lockFile)) };
    } else if (nixMoved.length > 1 && rev !== undefined && node !== undefined) {
      // With several Nix moves, re-lock each one alone at the rev the combined run found
      // (deterministic, unlike a second "latest").
      const ref = pinnedRef(change.path, node, rev);
      const alone = await run(
        { kind: "pin", input: change.path, ref, rev },
        `lock '${change.path}' alone at ${rev}; rerun, and report it if it persists`,
      );
      own = { text: alone.text, diff: diffLocks(before, alone.lock) };
    } else {
      own = { text: byNix.text, diff: diffLocks(before, byNix.lock) };
    }
    const entry: InputChange = {
      name: change.path,
      to: change.to,
      transitive: groupTransitive(own.diff, change.path),
      lock: lockText(own.text),
      engine: native === undefined ? "nix" : "native",
      engineReason:
        native?.reason ??
        moves.find((move) => move.input.name === change.path)?.choice.reason ??
        "moved by Nix",
    };
    if (change.from !== undefined) entry.from = change.from;
    const github = reportGitHub(node);
    if (github !== undefined) entry.github = github;
    if (upstream !== undefined && upstream.from === change.from?.rev && upstream.to === rev)
      entry.upstream = upstream;
    report.inputs.push(entry);
  }
  for (const input of selected) {
    if (
      !report.inputs.some((entry) => entry.name === input.name) &&
      !skipped.some((s) => s.name === input.name)
    ) {
      skipped.push(skip(input, "up-to-date", `'${input.name}' is already up to date`));
    }
  }

  // A run where Nix only reformatted the file counts as "nothing to do" and leaves it untouched.
  report.changed = report.inputs.length > 0 && combined.text !== originalText;
  if (report.changed) {
    report.lock = lockText(combined.text);
    if (!request.dryRun) await writeAtomic(lockFile, combined.text);
  }
  return report;
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
    const node = selectedNode(before, input);
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
    if (locked === rev || (locked !== undefined && (await group.isOlder(source, rev, locked)))) continue;
    also.push({ input, ref: pinnedRef(input, node, rev), rev });
  }
  return also.length === 0 ? widened : { ...widened, also };
}

function selectedNode(lock: FlakeLock, name: string) {
  const key = lock.nodes[lock.root]?.inputs?.[name];
  return typeof key === "string" ? lock.nodes[key] : undefined;
}

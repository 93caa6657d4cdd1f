/**
 * The bump itself: choose the inputs, let Nix move them, check what Nix wrote, and describe it.
 * flake.lock is byte-identical afterwards whenever anything fails (or with dry-run).
 */
import { createHash } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { readFile, rename, writeFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import * as v from "valibot";
import { $ } from "zx/core";
import { RuntimeError, UsageError } from "./errors.ts";
import { type GitHubSource, githubSource, pinnedRef } from "./flakeref.ts";
import type { Freshness } from "./freshness.ts";
import { Sha } from "./ids.ts";
import {
  diffLocks,
  type FlakeLock,
  type LockDiff,
  type LockNode,
  parseLock,
  pinReason,
  type RootInput,
  rootInputs,
} from "./lock.ts";
import { type LockPlan, lockArgs, type Nix, type Pin } from "./nix.ts";
import type { CheckoutHead, InputChange, LockText, Report, Skipped, Upstream } from "./report.ts";
import type { TargetCheck } from "./upstream.ts";

export interface BumpRequest {
  flakeDir: string;
  /** Input names; empty = every tracked input (or the one matching `repository`). */
  inputs: readonly string[];
  rev?: string;
  /** OWNER/REPO of a pushed upstream, used to choose the input when none is named. */
  repository?: string;
  dryRun: boolean;
}

export interface BumpDeps {
  /** Nix is found lazily: a bump that has nothing to do needs no Nix at all. */
  nix: () => Promise<Nix>;
  checkTarget?: TargetCheck;
  /** Asks the inputs' sources which are behind, so Nix runs only for those (none on a quiet night). */
  freshness?: (inputs: readonly Selected[]) => Promise<Freshness[]>;
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

async function gitTopLevel(dir: string): Promise<string | undefined> {
  const out = await $({ cwd: dir, nothrow: true, quiet: true })`git rev-parse --show-toplevel`;
  return out.exitCode === 0 ? out.stdout.trim() : undefined;
}

/** HEAD's commit, its tree and the branch checked out; undefined before the first commit. */
async function checkoutHead(dir: string): Promise<CheckoutHead | undefined> {
  const out = await $({
    cwd: dir,
    nothrow: true,
    quiet: true,
  })`git rev-parse HEAD HEAD^{tree} --abbrev-ref HEAD`;
  const [commit, tree, branch] = out.stdout.trim().split("\n");
  if (out.exitCode !== 0 || commit === undefined || tree === undefined) return undefined;
  return branch === undefined || branch === "HEAD" ? { commit, tree } : { commit, tree, branch };
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
      `there is no flake.lock in ${dir}; create it with 'nix flake lock', commit it, then retry`,
    );
  }
  return { dir, lockFile, text, lock: parseLock(text, lockFile) };
}

/** `bump.ts --check`: which of the requested (or tracked) inputs are behind, without Nix or changes. */
export async function checkOutdated(
  request: Pick<BumpRequest, "flakeDir" | "inputs" | "repository">,
  freshness: (inputs: readonly Selected[]) => Promise<Freshness[]>,
): Promise<{ answers: Freshness[]; skipped: Skipped[] }> {
  const { lock } = await readFlake(request.flakeDir);
  const { selected, skipped } = selectInputs(lock, request);
  return { answers: await freshness(selected), skipped };
}

export async function bump(request: BumpRequest, deps: BumpDeps): Promise<Report> {
  const { dir, lockFile, text: originalText, lock: before } = await readFlake(request.flakeDir);

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

  const repoRoot = await gitTopLevel(dir);
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
  if (repoRoot !== undefined) {
    report.flake.repoRoot = repoRoot;
    report.flake.lockPath = relative(repoRoot, lockFile);
    const head = await checkoutHead(repoRoot);
    if (head !== undefined) report.flake.head = head;
  }

  let plan: LockPlan | undefined;
  let upstream: Upstream | undefined;
  const target = selected[0];
  if (request.rev !== undefined && target !== undefined) {
    const lockedRev = target.node.locked?.rev;
    const ref = pinnedRef(target.name, target.node, request.rev);
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
      plan = { kind: "pin", input: target.name, ref, rev: request.rev };
    }
  } else if (selected.length > 0) {
    let behind = selected;
    if (deps.freshness !== undefined) {
      const answers = await deps.freshness(selected);
      const current = new Set(answers.filter((a) => a.status === "current").map((a) => a.name));
      behind = selected.filter((input) => !current.has(input.name));
      for (const input of selected) {
        if (current.has(input.name))
          skipped.push(skip(input, "up-to-date", `'${input.name}' is already up to date`));
      }
    }
    if (behind.length > 0) plan = { kind: "update", inputs: behind.map((input) => input.name) };
  }
  if (plan === undefined) return report;
  if (deps.group !== undefined) plan = await withGroupMembers(plan, before, deps.group);

  const nix = await deps.nix();
  report.nix.version = nix.version.version;

  /** One Nix run on the original lock; returns the parsed result, the file itself untouched. */
  const run = async (step: LockPlan, what: string): Promise<{ text: string; lock: FlakeLock }> => {
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
    return { text, lock };
  };

  const combined = await run(
    plan,
    plan.kind === "pin"
      ? `lock '${plan.input}' at ${request.rev}; check that the commit exists upstream and is reachable from here`
      : `update ${plan.inputs.map((name) => `'${name}'`).join(", ")}; check that the inputs' sources are reachable and flake.nix evaluates`,
  );
  const diff = diffLocks(before, combined.lock);
  const moved = diff.direct.filter((change) => change.to !== undefined);

  for (const change of moved) {
    if (change.to === undefined) continue;
    // Each input's pull request must carry only that input's move: with several, re-lock each one
    // alone at the rev the combined run found (deterministic, unlike a second "latest").
    let own = { text: combined.text, diff };
    const rev = change.to.rev;
    const node = selectedNode(combined.lock, change.path);
    if (moved.length > 1 && rev !== undefined && node !== undefined) {
      const ref = pinnedRef(change.path, node, rev);
      const alone = await run(
        { kind: "pin", input: change.path, ref, rev },
        `lock '${change.path}' alone at ${rev}; rerun, and report it if it persists`,
      );
      own = { text: alone.text, diff: diffLocks(before, alone.lock) };
    }
    const entry: InputChange = {
      name: change.path,
      to: change.to,
      transitive: groupTransitive(own.diff, change.path),
      lock: lockText(own.text),
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

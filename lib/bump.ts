/**
 * The bump itself: choose the inputs, let Nix move them, check what Nix wrote, and describe it.
 * flake.lock is byte-identical afterwards whenever anything fails (or with dry-run).
 */
import { createHash } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { readFile, rename, writeFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { $ } from "zx";
import { RuntimeError, UsageError } from "./cli.ts";
import { FULL_SHA, type GitHubSource, githubSource, pinnedRef } from "./flakeref.ts";
import {
  diffLocks,
  type FlakeLock,
  type LockDiff,
  parseLock,
  pinReason,
  type RootInput,
  rootInputs,
} from "./lock.ts";
import { type LockPlan, lockArgs, type Nix } from "./nix.ts";
import type { InputChange, Report, Skipped } from "./report.ts";

export interface BumpRequest {
  flakeDir: string;
  /** Input names; empty = every tracked input (or the one matching `repository`). */
  inputs: readonly string[];
  rev?: string;
  /** OWNER/REPO of a pushed upstream, used to choose the input when none is named. */
  repository?: string;
  dryRun: boolean;
}

/**
 * Decides, before Nix runs, whether an exact target rev may be locked for a GitHub input. Returns
 * "ahead" when the lock already holds a newer commit (dispatches arrive out of order).
 */
export type TargetCheck = (args: {
  input: string;
  source: GitHubSource;
  lockedRev: string | undefined;
  rev: string;
}) => Promise<"ok" | "ahead">;

export interface BumpDeps {
  /** Nix is found lazily: a bump that has nothing to do needs no Nix at all. */
  nix: () => Promise<Nix>;
  log: (line: string) => void;
  checkTarget?: TargetCheck;
}

type Selected = Extract<RootInput, { kind: "node" }>;

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
    else
      skipped.push({
        name: input.name,
        reason: "pinned",
        message: `'${input.name}' is ${reason} in flake.nix`,
      });
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
 * Run Nix on the real flake with the original bytes held in memory: restored when Nix fails, when its
 * result is wrong, or when the process is interrupted. Returns the text Nix wrote.
 */
async function lockWithRestore(
  lockFile: string,
  original: string,
  work: () => Promise<void>,
): Promise<{ text: string; restore: () => Promise<void> }> {
  const restore = () => writeAtomic(lockFile, original);
  const onSignal = (signal: NodeJS.Signals) => {
    // Synchronous on purpose: the process is about to exit.
    writeFileSync(lockFile, original);
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    await work();
    const text = await readFile(lockFile, "utf8");
    return { text, restore };
  } catch (error) {
    await restore();
    throw error;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

export async function bump(request: BumpRequest, deps: BumpDeps): Promise<Report> {
  const dir = resolve(request.flakeDir);
  if (!existsSync(join(dir, "flake.nix"))) {
    throw new UsageError(
      `there is no flake.nix in ${dir}; run in your flake's directory or pass --flake DIR`,
    );
  }
  const lockFile = join(dir, "flake.lock");
  let originalText: string;
  try {
    originalText = await readFile(lockFile, "utf8");
  } catch {
    throw new UsageError(
      `there is no flake.lock in ${dir}; create it with 'nix flake lock', commit it, then retry`,
    );
  }
  const before = parseLock(originalText, lockFile);

  if (request.rev !== undefined) {
    if (!FULL_SHA.test(request.rev)) {
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
  }

  let plan: LockPlan | undefined;
  const target = selected[0];
  if (request.rev !== undefined && target !== undefined) {
    const lockedRev = target.node.locked?.rev;
    const ref = pinnedRef(target.name, target.node, request.rev);
    const source = githubSource(target.node);
    if (lockedRev === request.rev) {
      skipped.push({
        name: target.name,
        reason: "already-at-rev",
        message: `'${target.name}' is already locked to ${request.rev}`,
      });
    } else if (
      source !== undefined &&
      deps.checkTarget !== undefined &&
      (await deps.checkTarget({ input: target.name, source, lockedRev, rev: request.rev })) === "ahead"
    ) {
      skipped.push({
        name: target.name,
        reason: "already-ahead",
        message: `'${target.name}' is already ahead: the lock holds ${lockedRev?.slice(0, 12)}, which already contains ${request.rev.slice(0, 12)}`,
      });
    } else {
      plan = { kind: "pin", input: target.name, ref };
    }
  } else if (selected.length > 0) {
    plan = { kind: "update", inputs: selected.map((input) => input.name) };
  }
  if (plan === undefined) return report;

  const nix = await deps.nix();
  report.nix.version = nix.version.version;
  const what =
    plan.kind === "pin"
      ? `lock '${plan.input}' at ${request.rev}; check that the commit exists upstream and is reachable from here`
      : `update ${plan.inputs.map((name) => `'${name}'`).join(", ")}; check the input's source is reachable and flake.nix evaluates`;
  const args = lockArgs(nix.version, plan, dir);
  const result = await lockWithRestore(lockFile, originalText, async () => {
    report.nix.invocations++;
    await nix.run(args, { cwd: dir, what });
  });

  let after: FlakeLock;
  try {
    after = parseLock(result.text, lockFile);
  } catch (error) {
    await result.restore();
    throw new RuntimeError(
      `Nix wrote a flake.lock that does not parse (${String(error)}); the original was restored`,
    );
  }
  if (plan.kind === "pin") {
    const key = after.nodes[after.root]?.inputs?.[plan.input];
    const locked = typeof key === "string" ? after.nodes[key]?.locked?.rev : undefined;
    if (locked !== request.rev) {
      await result.restore();
      throw new RuntimeError(
        `Nix locked '${plan.input}' to ${locked ?? "nothing"} instead of ${request.rev}; flake.lock was restored — report this with your Nix version (${nix.version.version})`,
      );
    }
  }

  const diff = diffLocks(before, after);
  for (const change of diff.direct) {
    if (change.to === undefined) continue; // an input removed from flake.nix: visible in the lock diff only
    const node = selectedNode(after, change.path);
    const entry: InputChange = {
      name: change.path,
      to: change.to,
      transitive: groupTransitive(diff, change.path),
    };
    if (change.from !== undefined) entry.from = change.from;
    const source = node ? githubSource(node) : undefined;
    if (source !== undefined) {
      entry.github = { owner: source.owner, repo: source.repo };
      if (source.host !== undefined) entry.github.host = source.host;
    }
    report.inputs.push(entry);
  }
  for (const input of selected) {
    if (
      !report.inputs.some((entry) => entry.name === input.name) &&
      !skipped.some((s) => s.name === input.name)
    ) {
      skipped.push({
        name: input.name,
        reason: "up-to-date",
        message: `'${input.name}' is already up to date`,
      });
    }
  }

  const changed = result.text !== originalText;
  report.changed = changed && report.inputs.length > 0;
  if (changed) {
    report.lock = { text: result.text, sha256: createHash("sha256").update(result.text).digest("hex") };
  }
  // Restore on dry-run, and when Nix only reformatted the file: "nothing to do" leaves it untouched.
  if (changed && (request.dryRun || !report.changed)) await result.restore();
  if (!report.changed) report.lock = null;
  return report;
}

function selectedNode(lock: FlakeLock, name: string) {
  const key = lock.nodes[lock.root]?.inputs?.[name];
  return typeof key === "string" ? lock.nodes[key] : undefined;
}

/**
 * Nix as one bump uses it: found once, and only when some input may need it (a quiet night never
 * starts it); each run on the original flake.lock, which is put back afterwards whatever happens, and
 * each result parsed and checked against what was asked.
 */
import { writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { RuntimeError } from "../core/errors.ts";
import { writeAtomic } from "../core/files.ts";
import { interruptible } from "../core/interrupt.ts";
import { type FlakeLock, parseLock, rootNode, rootNodeKey } from "../flake/lock.ts";
import { type LockPlan, lockArgs, type Nix } from "../flake/nix.ts";
import { serializeLock } from "./native.ts";

/** A flake.lock's text and its parse. */
export interface LockFile {
  text: string;
  lock: FlakeLock;
}

/** The flake a bump works on: its directory, its flake.lock's path, and that file as it was read. */
export interface Flake {
  dir: string;
  lockFile: string;
  original: LockFile;
  /** flake.nix's path and its text as it was read (a release move edits it). */
  nixFile: string;
  nixText: string;
}

export class NixRun {
  /** The version that ran; empty while none did. */
  version = "";
  /** How many times Nix ran. */
  invocations = 0;
  private probe: Promise<Nix> | undefined;
  private readonly find: () => Promise<Nix>;
  private readonly flake: Flake;

  /** @param find locates Nix and reads its version; called at most once. */
  constructor(find: () => Promise<Nix>, flake: Flake) {
    this.find = find;
    this.flake = flake;
  }

  /** Start finding Nix now, so the search overlaps GitHub's answers; a failure surfaces in `lock`. */
  start(): Promise<Nix> {
    if (this.probe === undefined) {
      this.probe = this.find();
      // Handled when awaited; a run that ends up native never awaits it.
      this.probe.catch(() => undefined);
    }
    return this.probe;
  }

  /**
   * Carry out `plan` with Nix on the original lock and return what Nix wrote, checked; the file on
   * disk is left as it was (the caller writes the final result once).
   * @param failure what was being done (after "Nix failed to") and what to check when Nix failed for
   *   another reason than being too old for the flake.
   * @param needs which inputs only Nix can move, and why, for the sentence when there is no Nix.
   * @param flakeNix flake.nix as Nix should read it (a release's new tag); put back afterwards too.
   */
  async lock(
    plan: LockPlan,
    failure: { what: string; hint: string },
    needs: string,
    flakeNix?: string,
  ): Promise<LockFile> {
    const nix = await this.need(needs);
    this.version = nix.version.version;
    this.invocations++;
    const { dir, lockFile, original, nixFile, nixText } = this.flake;
    const args = lockArgs(nix.version, plan, dir);
    const files: Kept[] = [{ path: lockFile, text: original.text }];
    if (flakeNix !== undefined) files.push({ path: nixFile, text: nixText, during: flakeNix });
    const text = await nixLockText(files, (signal) =>
      nix.run(args, { cwd: dir, ...failure, lock: original.lock, signal }),
    );
    let lock: FlakeLock;
    try {
      lock = parseLock(text, lockFile);
    } catch (error) {
      throw new RuntimeError(
        `Nix wrote a flake.lock that does not parse (${String(error)}); the original was kept`,
      );
    }
    checkPins(plan, lock, nix.version.version);
    return plan.kind === "pin"
      ? restoreOriginal(original.lock, { text, lock }, plan.input, plan.rev)
      : { text, lock };
  }

  /** Nix, or one sentence saying which input needs it and why when it is not there. */
  private async need(needs: string): Promise<Nix> {
    try {
      return await this.start();
    } catch (error) {
      const cause = error instanceof Error ? error.message : String(error);
      throw new RuntimeError(
        `${needs} can only be moved by Nix, but ${cause.charAt(0).toLowerCase()}${cause.slice(1)}; flake.lock was left as it was`,
      );
    }
  }
}

function lockedRevOf(lock: FlakeLock, input: string): string | undefined {
  return rootNode(lock, input)?.locked?.rev;
}

/** Every rev the plan pins must be the one Nix locked: anything else is a Nix we do not understand. */
function checkPins(plan: LockPlan, lock: FlakeLock, version: string): void {
  if (plan.kind === "pin" && lockedRevOf(lock, plan.input) !== plan.rev) {
    throw new RuntimeError(
      `Nix locked '${plan.input}' to ${lockedRevOf(lock, plan.input) ?? "nothing"} instead of ${plan.rev}; flake.lock was kept as it was — report this with your Nix version (${version})`,
    );
  }
  for (const pin of plan.also ?? []) {
    if (lockedRevOf(lock, pin.input) !== pin.rev) {
      throw new RuntimeError(
        `Nix locked '${pin.input}' to ${lockedRevOf(lock, pin.input) ?? "nothing"} instead of the grouped pull request's ${pin.rev}; flake.lock was kept as it was — report this with your Nix version (${version})`,
      );
    }
  }
}

/** A file Nix may change (or that is changed for it, `during` the run) and that is put back afterwards. */
interface Kept {
  path: string;
  text: string;
  during?: string;
}

/**
 * Run Nix on the real flake and return the flake.lock it wrote (the first of `files`). The original
 * bytes stay in memory and are put back afterwards in every case (success, failure, interrupt), so
 * the only lasting change is the caller's single atomic write of the final result.
 */
async function nixLockText(
  files: readonly Kept[],
  work: (signal: AbortSignal) => Promise<void>,
): Promise<string> {
  const lockFile = files[0]?.path ?? "";
  const putBack = () => {
    for (const file of files) writeFileSync(file.path, file.text);
  };
  try {
    // Interrupted, Nix is stopped and waited for, so it cannot write the lock after the original
    // is put back.
    await interruptible(async (signal) => {
      for (const file of files) if (file.during !== undefined) await writeAtomic(file.path, file.during);
      await work(signal);
    }, putBack);
    return await readFile(lockFile, "utf8");
  } finally {
    for (const file of files) await writeAtomic(file.path, file.text);
  }
}

/**
 * Nix 2.8's `--override-input` also writes the rev into a non-flake input's `original` (later Nix
 * does not). Left there, the next run would read the input as pinned in flake.nix and skip it, and
 * Nix itself would find the lock out of date with flake.nix. Put `original` back as it was.
 */
export function restoreOriginal(before: FlakeLock, after: LockFile, input: string, rev: string): LockFile {
  const was = rootNode(before, input)?.original;
  const key = rootNodeKey(after.lock, input);
  const node = key === undefined ? undefined : after.lock.nodes[key];
  const now = node?.original;
  if (key === undefined || node === undefined || was === undefined || now === undefined) return after;
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

/**
 * lock_diff_ms: `diffLocks` (lib/flake/lock.ts) in process, on a synthetic 1000-node pair and on the real
 * fleet's before/after pair; `parseLock` (JSON + schema + edge checks) of both locks timed apart,
 * since bump.ts pays it too but it is not the diff.
 */
import { readFile } from "node:fs/promises";
import { RuntimeError } from "../lib/core/errors.ts";
import { diffLocks, parseLock } from "../lib/flake/lock.ts";
import { realLockPath } from "../tests/support/fixtures.ts";
import { median } from "./stats.ts";
import { syntheticLockPair } from "./synthetic-lock.ts";

export interface LockDiffCase {
  nodes: number;
  iterations: number;
  /** Median of `diffLocks(before, after)`. */
  diffMs: number;
  /** Median of `parseLock` of both texts together. */
  parsePairMs: number;
  /** What the diff found, so a reader can see it did the intended work. */
  found: { direct: string[]; transitiveChanged: number; added: number; removed: number };
}

export interface LockDiffResult {
  synthetic: LockDiffCase;
  real: LockDiffCase;
}

const WARMUP = 20;

function time(before: string, after: string, iterations: number): LockDiffCase {
  const parseTimes: number[] = [];
  const diffTimes: number[] = [];
  let found: LockDiffCase["found"] | undefined;
  for (let i = -WARMUP; i < iterations; i++) {
    const t0 = performance.now();
    const a = parseLock(before);
    const b = parseLock(after);
    const t1 = performance.now();
    const diff = diffLocks(a, b);
    const t2 = performance.now();
    if (i < 0) continue;
    parseTimes.push(t1 - t0);
    diffTimes.push(t2 - t1);
    found ??= {
      direct: diff.direct.map((change) => change.path),
      transitiveChanged: diff.transitive.changed.length,
      added: diff.transitive.added.length,
      removed: diff.transitive.removed.length,
    };
  }
  if (found === undefined) throw new Error("lock diff: no iterations ran");
  return {
    nodes: Object.keys(parseLock(before).nodes).length,
    iterations,
    diffMs: median(diffTimes),
    parsePairMs: median(parseTimes),
    found,
  };
}

export async function benchLockDiff(iterations: {
  synthetic: number;
  real: number;
}): Promise<LockDiffResult> {
  const pair = syntheticLockPair(1000);
  const synthetic = time(pair.before, pair.after, iterations.synthetic);
  // The generator promises one moved root input and its own inputs; a diff that disagrees did other work.
  if (
    synthetic.found.direct.join() !== pair.moved ||
    synthetic.found.transitiveChanged !== pair.movedTransitive
  ) {
    throw new RuntimeError(
      `the synthetic pair should differ in '${pair.moved}' and ${pair.movedTransitive} of its inputs, but diffLocks found ${JSON.stringify(synthetic.found)}`,
    );
  }
  let before: string;
  let after: string;
  try {
    [before, after] = await Promise.all([
      readFile(realLockPath("nixcfg-before-ec557951.flake.lock"), "utf8"),
      readFile(realLockPath("nixcfg-after-ec557951.flake.lock"), "utf8"),
    ]);
  } catch (error) {
    throw new RuntimeError(
      `the real lock pair could not be read (${error instanceof Error ? error.message : String(error)}); the bench reads it where the tests do`,
    );
  }
  const real = time(before, after, iterations.real);
  if (real.found.direct.join() !== "inspr-modules") {
    throw new RuntimeError(
      `the real pair moved 'inspr-modules' only, but diffLocks found ${JSON.stringify(real.found)}`,
    );
  }
  return { synthetic, real };
}

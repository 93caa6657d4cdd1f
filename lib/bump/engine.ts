/**
 * Which engine moves each input: the native writer (lib/bump/native.ts) where the result is provably what
 * Nix would write, Nix everywhere else. `auto` picks per input, `native` refuses what it cannot prove,
 * `nix` is Nix for everything. The decision needs the lock and at most one compare request per input
 * (none when bump's target check already compared the same revs); the download itself (and its own "not native after all") comes later, in bump().
 */
import { UsageError } from "../core/errors.ts";
import type { Engine } from "../core/ids.ts";
import type { FlakeLock, LockNode } from "../flake/lock.ts";
import type { Octokit } from "../github/client.ts";
import type { Compared } from "../github/upstream.ts";
import { lockEligibility, type NativeSource, upstreamEligibility } from "./native.ts";

export { Engine } from "../core/ids.ts";

export type EngineChoice =
  | { engine: "native"; source: NativeSource; rev: string; reason: string }
  | { engine: "nix"; reason: string };

export interface EngineQuestion {
  engine: Engine;
  lock: FlakeLock;
  /** flake.lock as read: the native writer only applies to a file in Nix's own format. */
  lockText: string;
  name: string;
  node: LockNode;
  /** Where the input moves: the dispatched SHA, or the branch head freshness read; unknown → Nix. */
  to: string | undefined;
  /** The client for the compare request; undefined when there is none (then: Nix). */
  octokit: (() => Promise<Octokit>) | undefined;
  /** The target check's compare of the locked rev and `to`, when it made one: then no request is made. */
  compared?: Compared | undefined;
}

/** The one sentence `--engine native` ends with when it cannot prove a move. */
export function nativeRefusal(name: string, reason: string): UsageError {
  return new UsageError(
    `--engine native cannot move '${name}' without Nix: ${reason}; use --engine auto to let Nix move it`,
  );
}

/** The lock-only part of the decision: no request, so `bump.ts --check` can afford it for every input. */
export function lockOnlyChoice(
  q: Omit<EngineQuestion, "octokit">,
): { engine: "nix"; reason: string } | { engine: "native"; source: NativeSource; rev: string } {
  if (q.engine === "nix") return { engine: "nix", reason: "--engine nix" };
  const lockWise = lockEligibility(q.lock, q.lockText, q.name);
  if (!lockWise.native) return { engine: "nix", reason: lockWise.reason };
  if (q.to === undefined) {
    return {
      engine: "nix",
      reason: "its new commit could not be read before Nix runs, so only Nix's own update can find it",
    };
  }
  return { engine: "native", source: lockWise.source, rev: q.to };
}

/**
 * Decide one input's engine. With `native`, anything unprovable is a UsageError (exit 2); with
 * `auto` it is Nix, with the reason. A compare that GitHub does not answer leaves `auto` with Nix.
 */
export async function chooseEngine(q: EngineQuestion): Promise<EngineChoice> {
  const refuse = (reason: string): EngineChoice => {
    if (q.engine === "native") throw nativeRefusal(q.name, reason);
    return { engine: "nix", reason };
  };
  const first = lockOnlyChoice(q);
  if (first.engine === "nix") return first.reason === "--engine nix" ? first : refuse(first.reason);
  if (q.octokit === undefined) return refuse("no GitHub client to read its upstream with");
  const from = q.node.locked?.rev;
  if (from === undefined) return refuse("the lock holds no rev to compare with");
  let upstream: Awaited<ReturnType<typeof upstreamEligibility>>;
  try {
    upstream = await upstreamEligibility(
      await q.octokit(),
      q.node,
      first.source,
      from,
      first.rev,
      q.compared,
    );
  } catch (error) {
    if (q.engine === "native") throw error;
    return {
      engine: "nix",
      reason: `GitHub could not compare the revs (${error instanceof Error ? error.message : String(error)})`,
    };
  }
  if (!upstream.native) return refuse(upstream.reason);
  const reason =
    q.node.flake === false
      ? "a flake = false github: input: only its own lock node moves"
      : "a github: input whose flake.nix and flake.lock are unchanged between the revs";
  return { engine: "native", source: upstream.source, rev: first.rev, reason };
}

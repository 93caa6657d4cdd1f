/**
 * min-age against GitHub: which commit of an input's branch an automatic run may take, read from
 * the branch's history with committer dates. One request when the locked commit or an old-enough
 * one is among the newest hundred (nearly always), a second with `until` otherwise.
 */
import type { GitHubSource } from "../flake/flakeref.ts";
import type { LockNode } from "../flake/lock.ts";
import type { Octokit } from "../github/client.ts";
import { datedHistory } from "../github/upstream.ts";
import { type AgeTarget, ageTarget } from "../policy/gate.ts";

const PAGE = 100;

/**
 * The min-age target of one GitHub input. With `rev` (a dispatched commit) only that commit is a
 * candidate: it is taken once old enough, and held until then.
 */
export async function minAgeTarget(args: {
  octokit: Octokit;
  source: GitHubSource;
  node: LockNode;
  minAgeMs: number;
  now: Date;
  rev?: string | undefined;
}): Promise<AgeTarget> {
  const { octokit, source, node, minAgeMs, now } = args;
  const locked = { rev: node.locked?.rev, lastModified: node.locked?.lastModified };
  if (args.rev !== undefined) {
    const history = await datedHistory(octokit, source, { from: args.rev, perPage: 1 });
    return ageTarget({ history, locked, minAgeMs, now });
  }
  let history = await datedHistory(octokit, source, { from: source.ref, perPage: PAGE });
  const cutoff = now.getTime() - minAgeMs;
  const reached = history.some((commit) => commit.sha === locked.rev || commit.committedAt <= cutoff);
  if (!reached && history.length === PAGE) {
    const older = await datedHistory(octokit, source, {
      from: source.ref,
      until: new Date(cutoff),
      perPage: 1,
    });
    history = [...history, ...older];
  }
  return ageTarget({ history, locked, minAgeMs, now });
}

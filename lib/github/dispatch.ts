/**
 * notify.ts's work: one `repository_dispatch` per downstream repository, concurrently but bounded
 * (POST /repos/{owner}/{repo}/dispatches).
 */
import * as v from "valibot";
import { mapBounded } from "../core/bounded.ts";
import { describeIssues, UsageError } from "../core/errors.ts";
import { DispatchPayload } from "../core/event.ts";
import type { RepositoryName } from "../core/ids.ts";
import { describeGitHubError, type Octokit } from "./client.ts";

export const DEFAULT_EVENT_TYPE = "flake-input-updated";
const CONCURRENCY = 4;

/**
 * Validate a payload exactly as bump.ts will read it. Its fields are bounded, so it is always within
 * GitHub's key and size limits (which bump.ts checks on what arrives).
 */
export function checkPayload(payload: DispatchPayload): DispatchPayload {
  const result = v.safeParse(DispatchPayload, payload);
  if (!result.success)
    throw new UsageError(`the dispatch payload is invalid (${describeIssues(result.issues)})`);
  return result.output;
}

export interface DispatchResult {
  repo: string;
  ok: boolean;
  message: string;
}

export async function dispatchAll(
  octokit: Octokit,
  repos: readonly RepositoryName[],
  eventType: string,
  payload: DispatchPayload,
  opts: { dryRun: boolean },
): Promise<DispatchResult[]> {
  const short = payload.sha.slice(0, 7);
  return mapBounded([...new Set(repos)], CONCURRENCY, async (full): Promise<DispatchResult> => {
    if (opts.dryRun) return { repo: full, ok: true, message: `would dispatch ${eventType} (${short})` };
    const [owner = "", repo = ""] = full.split("/");
    try {
      await octokit.rest.repos.createDispatchEvent({
        owner,
        repo,
        event_type: eventType,
        client_payload: { ...payload },
      });
      return { repo: full, ok: true, message: `dispatched ${eventType} (${short})` };
    } catch (error) {
      return {
        repo: full,
        ok: false,
        message: describeGitHubError(error, `dispatch to ${full}`, full).message,
      };
    }
  });
}

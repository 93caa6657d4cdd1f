/**
 * notify.ts's work: one `repository_dispatch` per downstream repository, concurrently but bounded.
 * (POST /repos/{owner}/{repo}/dispatches; GitHub allows at most 10 top-level client_payload keys and
 * less than 64 KB.)
 */
import * as v from "valibot";
import { mapBounded } from "./bounded.ts";
import { describeIssues, UsageError } from "./cli.ts";
import { DispatchPayload } from "./event.ts";
import { describeGitHubError, type Octokit } from "./github.ts";

export const DEFAULT_EVENT_TYPE = "flake-input-updated";
const MAX_KEYS = 10;
const MAX_BYTES = 64 * 1024;
const CONCURRENCY = 4;

export const EventType = v.pipe(
  v.string(),
  v.regex(/^[A-Za-z0-9][\w.-]{0,99}$/, "must be 1–100 letters, digits, '-', '_' or '.'"),
);

/** Validate a payload exactly as bump.ts will read it, plus GitHub's own limits. */
export function checkPayload(payload: DispatchPayload): DispatchPayload {
  const result = v.safeParse(DispatchPayload, payload);
  if (!result.success)
    throw new UsageError(`the dispatch payload is invalid (${describeIssues(result.issues)})`);
  const keys = Object.keys(payload).length;
  if (keys > MAX_KEYS)
    throw new UsageError(`the dispatch payload has ${keys} keys; GitHub allows at most ${MAX_KEYS}`);
  const bytes = Buffer.byteLength(JSON.stringify(payload));
  if (bytes >= MAX_BYTES)
    throw new UsageError(`the dispatch payload is ${bytes} bytes; GitHub allows less than 64 KB`);
  return result.output;
}

export interface DispatchResult {
  repo: string;
  ok: boolean;
  message: string;
}

export async function dispatchAll(
  octokit: Octokit,
  repos: readonly string[],
  eventType: string,
  payload: DispatchPayload,
  opts: { dryRun: boolean },
): Promise<DispatchResult[]> {
  const short = payload.sha.slice(0, 7);
  return mapBounded([...new Set(repos)], CONCURRENCY, async (full): Promise<DispatchResult> => {
    const [owner = "", repo = ""] = full.split("/");
    if (opts.dryRun) return { repo: full, ok: true, message: `would dispatch ${eventType} (${short})` };
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

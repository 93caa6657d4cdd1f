/**
 * The GitHub Actions event that started a run, read from `GITHUB_EVENT_PATH` and validated here —
 * never pasted into a shell through `${{ }}`. Anyone who can send a repository_dispatch controls its
 * `client_payload`, so every field is checked against a narrow pattern before it is used.
 */
import { readFile } from "node:fs/promises";
import * as v from "valibot";
import { describeIssues, UsageError } from "./errors.ts";
import { fullName, type GitHubRepository, GitRef, InputName, RepositoryName, Sha } from "./ids.ts";
import { splitNames } from "./inputs.ts";

/** What notify.ts sends and bump.ts accepts as `client_payload`. */
export const DispatchPayload = v.object({
  input: v.optional(InputName),
  repository: v.optional(RepositoryName),
  sha: Sha,
  ref: v.optional(GitRef),
});
export type DispatchPayload = v.InferOutput<typeof DispatchPayload>;

// GitHub refuses a dispatch whose client_payload has more than 10 top-level keys or 64 KB or more
// (POST /repos/{owner}/{repo}/dispatches): a payload beyond either did not come through its API.
// Keys bump.ts does not know are otherwise ignored, so a newer notify.ts can add some. The sending
// side needs no such check: DispatchPayload's four bounded fields always fit.
const MAX_PAYLOAD_KEYS = 10;
const MAX_PAYLOAD_BYTES = 64 * 1024;

const ClientPayload = v.pipe(
  v.record(v.string(), v.unknown()),
  v.check(
    (payload) => Object.keys(payload).length <= MAX_PAYLOAD_KEYS,
    (issue) => `has ${Object.keys(issue.input).length} keys; GitHub sends at most ${MAX_PAYLOAD_KEYS}`,
  ),
  v.check(
    (payload) => Buffer.byteLength(JSON.stringify(payload)) < MAX_PAYLOAD_BYTES,
    (issue) => `is ${Buffer.byteLength(JSON.stringify(issue.input))} bytes; GitHub sends less than 64 KB`,
  ),
  DispatchPayload,
);

const RepositoryDispatchEvent = v.object({
  action: v.optional(v.string()),
  client_payload: ClientPayload,
});

const WorkflowDispatchEvent = v.object({
  inputs: v.optional(
    v.nullable(
      v.object({
        inputs: v.optional(v.nullable(v.pipe(v.string(), v.maxLength(2000)))),
        rev: v.optional(v.nullable(v.string())),
      }),
    ),
  ),
});

/** What the event asks bump.ts to do. */
export interface EventRequest {
  event: string;
  inputs: string[];
  rev?: string;
  /** OWNER/REPO that was pushed, for choosing the input when the payload names none. */
  repository?: string;
  /** The pushed ref (`refs/heads/B`, `refs/tags/T`, or a short name GitHub resolves). */
  ref?: string;
}

function parseOrThrow<S extends v.GenericSchema>(schema: S, value: unknown, what: string): v.InferOutput<S> {
  const result = v.safeParse(schema, value);
  if (!result.success) {
    throw new UsageError(
      `${what} is malformed (${describeIssues(result.issues)}); fix the sender of the event`,
    );
  }
  return result.output;
}

/** Decide the request from an already-parsed event body. Pure, for table-driven tests. */
export function requestFromEvent(eventName: string, body: unknown): EventRequest {
  switch (eventName) {
    case "repository_dispatch": {
      const { client_payload: p } = parseOrThrow(
        RepositoryDispatchEvent,
        body,
        "the repository_dispatch client_payload",
      );
      const out: EventRequest = { event: eventName, inputs: p.input ? [p.input] : [], rev: p.sha };
      if (p.repository) out.repository = p.repository;
      if (p.ref) out.ref = p.ref;
      if (!p.input && !p.repository) {
        throw new UsageError(
          "the repository_dispatch client_payload names neither 'input' nor 'repository'; send one of them with 'sha' (notify.ts does)",
        );
      }
      return out;
    }
    case "workflow_dispatch": {
      const { inputs } = parseOrThrow(WorkflowDispatchEvent, body, "the workflow_dispatch inputs");
      const names = splitNames(inputs?.inputs ?? "");
      for (const name of names)
        parseOrThrow(InputName, name, `input name '${name}' in the workflow_dispatch inputs`);
      const out: EventRequest = { event: eventName, inputs: names };
      const rev = inputs?.rev?.trim();
      if (rev) out.rev = parseOrThrow(Sha, rev, "the workflow_dispatch 'rev' input");
      return out;
    }
    case "schedule":
    case "push":
      return { event: eventName, inputs: [] };
    default:
      throw new UsageError(
        `bump.ts does not handle the '${eventName}' event; trigger it with repository_dispatch, workflow_dispatch or schedule, or pass input names`,
      );
  }
}

/** The event file's JSON; undefined when it is missing or not JSON. */
async function readEventFile(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, "utf8"));
  } catch {
    return undefined;
  }
}

/** Read the event GitHub Actions describes in the environment, if any. */
export async function readEventRequest(
  env: NodeJS.ProcessEnv = process.env,
): Promise<EventRequest | undefined> {
  const name = env.GITHUB_EVENT_NAME;
  if (!name) return undefined;
  if (name === "schedule") return { event: name, inputs: [] };
  const path = env.GITHUB_EVENT_PATH;
  if (!path) {
    throw new UsageError(
      `GITHUB_EVENT_NAME is '${name}' but GITHUB_EVENT_PATH is not set; run inside GitHub Actions or pass input names and --rev`,
    );
  }
  const body = await readEventFile(path);
  if (body === undefined) {
    throw new UsageError(
      `the event file GITHUB_EVENT_PATH=${path} is missing or not JSON; run inside GitHub Actions or pass input names and --rev`,
    );
  }
  return requestFromEvent(name, body);
}

/** The repository most events carry: its default branch saves open-pr a request. */
const EventRepository = v.object({
  repository: v.object({ full_name: v.string(), default_branch: v.pipe(v.string(), v.minLength(1)) }),
});

/**
 * The default branch of `repo` as the Actions event names it, if the event is about `repo`. Only a
 * shortcut: any event without it (or no event at all) leaves the answer to GitHub.
 */
export async function eventDefaultBranch(
  env: NodeJS.ProcessEnv,
  repo: GitHubRepository,
): Promise<string | undefined> {
  if (!env.GITHUB_EVENT_PATH) return undefined;
  const result = v.safeParse(EventRepository, await readEventFile(env.GITHUB_EVENT_PATH));
  if (!result.success) return undefined;
  const { full_name, default_branch } = result.output.repository;
  return full_name.toLowerCase() === fullName(repo).toLowerCase() ? default_branch : undefined;
}

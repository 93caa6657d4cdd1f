#!/usr/bin/env bun
/**
 * notify.ts — tell downstream repositories that this upstream flake was pushed.
 * Parse args/env → lib/github/dispatch.ts → one line per repository; exit 1 if any failed.
 */
import * as v from "valibot";
import { appendSummary, group, info, setOutputs } from "../lib/core/actions.ts";
import { flags, parseCli, runMain } from "../lib/core/cli.ts";
import { RuntimeError, UsageError } from "../lib/core/errors.ts";
import type { DispatchPayload } from "../lib/core/event.ts";
import { EventType, GitRef, InputName, RepositoryName, Sha } from "../lib/core/ids.ts";
import { readActionInputs } from "../lib/core/inputs.ts";
import { githubToken } from "../lib/core/secrets.ts";
import { octokitFromEnv } from "../lib/github/client.ts";
import { checkPayload, DEFAULT_EVENT_TYPE, dispatchAll } from "../lib/github/dispatch.ts";

export const USAGE = `Usage: bun scripts/notify.ts --repo OWNER/REPO [--repo OWNER/REPO ...] [--input NAME] [--sha SHA]
                          [--ref REF] [--event-type TYPE] [--dry-run] [--help]

Send a repository_dispatch to each downstream repository so it bumps this flake.

  --repo OWNER/REPO  downstream repository, repeatable
  --input NAME       the input name downstream (default: chosen there by this repository's name)
  --sha SHA          the pushed commit (default in Actions: $GITHUB_SHA; required elsewhere)
  --ref REF          the pushed ref (default in Actions: $GITHUB_REF)
  --event-type TYPE  default: ${DEFAULT_EVENT_TYPE}
  --dry-run          validate and print, send nothing

In the notify action the inputs arrive as FLAKE_BUMP_REPOSITORIES, FLAKE_BUMP_INPUT, FLAKE_BUMP_SHA,
FLAKE_BUMP_REF, FLAKE_BUMP_EVENT_TYPE and FLAKE_BUMP_DRY_RUN; flags override them.
Needs GH_TOKEN (or GITHUB_TOKEN): a token with Contents: read and write on the downstream repositories.`;

const options = flags({
  string: ["input", "sha", "ref", "event-type"],
  boolean: ["dry-run"],
  list: ["repo"],
});

const Args = v.object({
  positionals: v.pipe(v.array(v.string()), v.maxLength(0, "takes no positional arguments")),
  repo: v.optional(v.array(RepositoryName), []),
  input: v.optional(InputName),
  sha: v.optional(Sha),
  ref: v.optional(GitRef),
  "event-type": v.optional(EventType),
  "dry-run": v.optional(v.boolean(), false),
});

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const args = parseCli(argv, options, Args, USAGE);
  if (args === undefined) return 0;
  const action = readActionInputs("notify", env);
  const repos = args.repo.length > 0 ? args.repo : (action.repositories ?? []);
  const eventType = args["event-type"] ?? action["event-type"] ?? DEFAULT_EVENT_TYPE;
  const dryRun = args["dry-run"] || (action["dry-run"] ?? false);
  if (repos.length === 0)
    throw new UsageError("no downstream repository given; pass --repo OWNER/REPO (repeatable)");
  const sha = args.sha ?? action.sha ?? env.GITHUB_SHA;
  if (!sha)
    throw new UsageError(
      "no commit to announce; pass --sha SHA (in GitHub Actions it defaults to $GITHUB_SHA)",
    );
  if (!githubToken(env) && !dryRun) {
    throw new UsageError(
      "notify needs a token that can write to the downstream repositories; set GH_TOKEN to a fine-grained token with Contents: read and write on them",
    );
  }
  const payload: DispatchPayload = { sha };
  if (env.GITHUB_REPOSITORY) payload.repository = env.GITHUB_REPOSITORY;
  const ref = args.ref ?? action.ref ?? env.GITHUB_REF;
  if (ref) payload.ref = ref;
  const input = args.input ?? action.input;
  if (input) payload.input = input;
  const checked = checkPayload(payload);

  const results = await group(`Dispatch ${eventType} to ${repos.length} repositories`, () =>
    dispatchAll(octokitFromEnv(env), repos, eventType, checked, { dryRun }),
  );
  for (const r of results) info(`${r.ok ? "✓" : "✗"} ${r.repo}: ${r.message}`);
  const failed = results.filter((r) => !r.ok);
  setOutputs(
    {
      dispatched: results
        .filter((r) => r.ok)
        .map((r) => r.repo)
        .join(","),
      failed: failed.map((r) => r.repo).join(","),
    },
    env,
  );
  appendSummary(
    [
      "### flake-bump: dispatches",
      "",
      ...results.map((r) => `- ${r.ok ? "✓" : "✗"} \`${r.repo}\`: ${r.message}`),
    ].join("\n"),
    env,
  );
  if (failed.length > 0) {
    throw new RuntimeError(
      `dispatch failed for ${failed.map((r) => r.repo).join(", ")}; see the lines above, fix the token or names, and rerun`,
    );
  }
  return 0;
}

if (import.meta.main) await runMain(() => main(process.argv.slice(2)));

#!/usr/bin/env bun
/**
 * open-pr.ts — turn bump.ts's report into one pull request per input (or update, or close it).
 * Parse args/env → lib/pull-request.ts → one line per input, Actions outputs and summary.
 */
import * as v from "valibot";
import { $ } from "zx/core";
import { appendSummary, group, inActions, info, setOutputs, warn } from "../lib/actions.ts";
import { parseCli, runMain } from "../lib/cli.ts";
import { UsageError } from "../lib/errors.ts";
import { eventDefaultBranch } from "../lib/event.ts";
import { octokitFromEnv } from "../lib/github.ts";
import { openGroupPullRequest } from "../lib/group.ts";
import {
  Branch,
  fullName,
  type GitHubRepository,
  Label,
  Login,
  parseRepository,
  RepositoryName,
} from "../lib/ids.ts";
import { readActionInputs } from "../lib/inputs.ts";
import { type OpenPrOptions, openPullRequests, type PullRequestResult } from "../lib/pull-request.ts";
import { defaultReportPath, readReport } from "../lib/report.ts";
import { githubToken } from "../lib/secrets.ts";

export const USAGE = `Usage: bun scripts/open-pr.ts [--report FILE] [--repo OWNER/REPO] [--base BRANCH] [--branch-prefix P]
                           [--label L ...] [--reviewer U ...] [--draft] [--group] [--dry-run] [--help]

Open or update one pull request per input that bump.ts moved; close ones made obsolete.

  --report FILE      bump.ts's report (default: ${defaultReportPath()})
  --repo OWNER/REPO  the repository to open it in (default: $GITHUB_REPOSITORY, else the
                     flake checkout's 'origin' remote)
  --base BRANCH      base branch (default: the repository's default branch)
  --branch-prefix P  branch name prefix (default: flake-bump/)
  --label L          label to add, repeatable (default: dependencies, automated)
  --reviewer U       reviewer to request, repeatable
  --draft            open as a draft
  --group            one pull request for every input the run moved, on branch P + "all", with the
                     report's combined flake.lock (pair with bump.ts --group)
  --dry-run          say what would happen, change nothing on GitHub

In the update action the inputs arrive as FLAKE_BUMP_REPORT, FLAKE_BUMP_BASE, FLAKE_BUMP_BRANCH_PREFIX,
FLAKE_BUMP_LABELS (comma or newline separated), FLAKE_BUMP_REVIEWERS, FLAKE_BUMP_DRAFT,
FLAKE_BUMP_GROUP and FLAKE_BUMP_DRY_RUN; flags override them.
Needs a token in GH_TOKEN or GITHUB_TOKEN with Contents and Pull requests: read and write.`;

const options = {
  report: { type: "string" },
  repo: { type: "string" },
  base: { type: "string" },
  "branch-prefix": { type: "string" },
  label: { type: "string", multiple: true },
  reviewer: { type: "string", multiple: true },
  draft: { type: "boolean" },
  group: { type: "boolean" },
  "dry-run": { type: "boolean" },
} as const;

const Args = v.object({
  positionals: v.pipe(v.array(v.string()), v.maxLength(0, "takes no positional arguments")),
  report: v.optional(v.pipe(v.string(), v.minLength(1))),
  repo: v.optional(RepositoryName),
  base: v.optional(Branch),
  "branch-prefix": v.optional(Branch),
  label: v.optional(v.array(Label)),
  reviewer: v.optional(v.array(Login)),
  draft: v.optional(v.boolean(), false),
  group: v.optional(v.boolean(), false),
  "dry-run": v.optional(v.boolean(), false),
});

async function originRepo(dir: string | undefined): Promise<GitHubRepository | undefined> {
  if (dir === undefined) return undefined;
  const out = await $({ cwd: dir, nothrow: true, quiet: true })`git remote get-url origin`;
  return out.exitCode === 0 ? parseRepository(out.stdout) : undefined;
}

function resultLine(result: PullRequestResult): string {
  const where = result.url ? ` ${result.url}` : result.number ? ` #${result.number}` : "";
  return `${result.input}: ${result.operation}${where} — ${result.detail}`;
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const args = parseCli(argv, options, Args, USAGE);
  if (args === undefined) return 0;
  const action = readActionInputs("open-pr", env);
  const dryRun = args["dry-run"] || (action["dry-run"] ?? false);
  const report = await readReport(args.report ?? action.report ?? defaultReportPath(env));
  const repo =
    (args.repo ? parseRepository(args.repo) : undefined) ??
    (env.GITHUB_REPOSITORY ? parseRepository(env.GITHUB_REPOSITORY) : undefined) ??
    (await originRepo(report.flake.repoRoot));
  if (repo === undefined) {
    throw new UsageError(
      "cannot tell which repository to open the pull request in; pass --repo OWNER/REPO (or run in Actions, or in a clone with an 'origin' remote on GitHub)",
    );
  }
  if (!githubToken(env) && !dryRun) {
    throw new UsageError(
      "open-pr needs a GitHub token; set GH_TOKEN (or GITHUB_TOKEN) to a token that can write to the repository",
    );
  }
  if (inActions(env) && (env.FLAKE_BUMP_DEFAULT_TOKEN === "true" || (!env.GH_TOKEN && env.GITHUB_TOKEN))) {
    warn(
      "pull requests opened with the default GITHUB_TOKEN do not start the repository's own checks; use a GitHub App or fine-grained token (see the README section 'Which token opens the pull request')",
    );
  }
  const opts: OpenPrOptions = {
    repo,
    branchPrefix: args["branch-prefix"] ?? action["branch-prefix"] ?? "flake-bump/",
    labels: args.label ?? action.labels ?? ["dependencies", "automated"],
    reviewers: args.reviewer ?? action.reviewers ?? [],
    draft: args.draft || (action.draft ?? false),
    dryRun,
  };
  const base = args.base ?? action.base ?? (await eventDefaultBranch(env, repo));
  if (base !== undefined) opts.base = base;

  const results = await group(`Pull requests in ${fullName(repo)}`, () =>
    args.group || action.group
      ? openGroupPullRequest(octokitFromEnv(env), report, opts)
      : openPullRequests(octokitFromEnv(env), report, opts),
  );
  for (const result of results) info(resultLine(result));
  if (results.length === 0) info("Nothing to do: the report moved no input.");

  const primary = results.find((r) => r.operation !== "none") ?? results[0];
  setOutputs(
    {
      "pull-request-number": results.flatMap((r) => (r.number ? [String(r.number)] : [])).join(","),
      "pull-request-url": results.flatMap((r) => (r.url ? [r.url] : [])).join(","),
      operation: primary?.operation ?? "none",
    },
    env,
  );
  appendSummary(
    [
      "### flake-bump: pull requests",
      "",
      "| input | operation | pull request |",
      "| --- | --- | --- |",
      ...results.map(
        (r) => `| \`${r.input}\` | ${r.operation} | ${r.url ?? (r.number ? `#${r.number}` : "—")} |`,
      ),
    ].join("\n"),
    env,
  );
  return 0;
}

if (import.meta.main) await runMain(() => main(process.argv.slice(2)));

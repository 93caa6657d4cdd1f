#!/usr/bin/env bun
/**
 * open-pr.ts — turn bump.ts's report into one pull request per input (or update, or close it).
 * Parse args/env → lib/pr/lifecycle.ts → one line per input, Actions outputs and summary.
 */
import * as v from "valibot";
import { $ } from "zx/core";
import { annotate, appendSummary, group, inActions, info, setOutputs, warn } from "../lib/core/actions.ts";
import { flags, parseCli, runMain } from "../lib/core/cli.ts";
import { UsageError } from "../lib/core/errors.ts";
import { eventDefaultBranch } from "../lib/core/event.ts";
import {
  Branch,
  fullName,
  type GitHubRepository,
  Label,
  Login,
  parseRepository,
  RepositoryName,
} from "../lib/core/ids.ts";
import { Footer, readActionInputs } from "../lib/core/inputs.ts";
import { githubToken } from "../lib/core/secrets.ts";
import {
  checkGrouping,
  checkReportCheckout,
  defaultReportPath,
  type Report,
  readReport,
} from "../lib/flake/report.ts";

import { defaultBranch, type Octokit, octokitFromEnv } from "../lib/github/client.ts";
import { DEFAULT_DEPLOY_SENTENCE } from "../lib/impact/text.ts";
import type { RunSettings } from "../lib/policy/effective.ts";
import { loadRunPolicy } from "../lib/policy/run.ts";

import { landGroupAuto, openGroupPullRequest } from "../lib/pr/group.ts";
import {
  type AutoOptions,
  checkAutoMergeSettings,
  commitDirect,
  type ImpactFile,
  type LandResult,
  landAuto,
  MergeMethod,
  MergeMode,
  readImpactFile,
} from "../lib/pr/land.ts";
import {
  closeObsoletePullRequests,
  type OpenPrOptions,
  openPullRequests,
  type PullRequestResult,
} from "../lib/pr/lifecycle.ts";

import { type PrTarget, prTargets } from "../lib/pr/targets.ts";

export const USAGE = `Usage: bun scripts/open-pr.ts [--report FILE] [--repo OWNER/REPO] [--base BRANCH] [--branch-prefix P]
                           [--label L ...] [--reviewer U ...] [--draft] [--group] [--footer TEXT]
                           [--merge review|auto|direct] [--merge-method merge|squash|rebase]
                           [--impact FILE] [--step open|land] [--config FILE] [--dry-run] [--help]

Open or update one pull request per input that bump.ts moved; close ones made obsolete; then land
them as --merge says.

  --report FILE      bump.ts's report (default: the one bump.ts wrote for this checkout, as
                     bump.ts --help says); one made for another checkout or commit is refused
  --repo OWNER/REPO  the repository to open it in (default: $GITHUB_REPOSITORY, else the
                     flake checkout's 'origin' remote)
  --base BRANCH      base branch (default: the repository's default branch)
  --branch-prefix P  branch name prefix (default: flake-bump/)
  --label L          label to add, repeatable (default: dependencies, automated)
  --reviewer U       reviewer to request, repeatable
  --draft            open as a draft
  --group            one pull request for every input the run moved, on branch P + "all", with the
                     report's combined flake.lock (pair with bump.ts --group)
  --footer TEXT      the body's closing sentence; {hosts} names the hosts to deploy
                     (default: "${DEFAULT_DEPLOY_SENTENCE}"; the impact step replaces it)
  --merge MODE       review (default): a human merges the pull request;
                     auto: GitHub's auto-merge once the required checks pass (merged at once when
                     nothing is required), never when --impact reports a host that fails;
                     direct: no pull request, the new lock is committed onto the base branch
                     (open ones the base has overtaken are still closed)
  --merge-method M   merge, squash (default) or rebase, for --merge auto
  --impact FILE      scripts/impact.ts's JSON: a host that no longer evaluates keeps the bump from
                     landing by itself (auto: left open for a human; direct: not committed)
  --step STEP        open: only open/update/close pull requests; land: only land (after the impact
                     step); default both
  --config FILE      the policy file (default: .github/flake-bump.yml of the flake's repository,
                     if it exists): each of its groups gets its own pull request on P + "group/" +
                     its name, and each input or group lands by its own merge mode (--merge wins)
  --dry-run          say what would happen, change nothing on GitHub

In the update action the inputs arrive as FLAKE_BUMP_REPORT, FLAKE_BUMP_BASE, FLAKE_BUMP_BRANCH_PREFIX,
FLAKE_BUMP_LABELS (comma or newline separated), FLAKE_BUMP_REVIEWERS, FLAKE_BUMP_DRAFT,
FLAKE_BUMP_GROUP, FLAKE_BUMP_MERGE, FLAKE_BUMP_MERGE_METHOD, FLAKE_BUMP_PR_FOOTER,
FLAKE_BUMP_IMPACT_REPORT, FLAKE_BUMP_CONFIG and FLAKE_BUMP_DRY_RUN; flags override them.
Needs a token in GH_TOKEN or GITHUB_TOKEN with Contents and Pull requests: read and write.`;

const options = flags({
  string: [
    "report",
    "repo",
    "base",
    "branch-prefix",
    "footer",
    "merge",
    "merge-method",
    "impact",
    "step",
    "config",
  ],
  boolean: ["draft", "group", "dry-run"],
  list: ["label", "reviewer"],
});

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
  footer: v.optional(Footer),
  merge: v.optional(MergeMode),
  "merge-method": v.optional(MergeMethod),
  impact: v.optional(v.pipe(v.string(), v.minLength(1))),
  step: v.optional(v.picklist(["open", "land"], "must be open or land")),
  "dry-run": v.optional(v.boolean(), false),
  config: v.optional(v.pipe(v.string(), v.minLength(1))),
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

/**
 * The report to act on (this checkout's by default; one made for another checkout or commit is
 * refused) and the repository to open pull requests in.
 */
async function reportAndRepository(
  args: { report?: string | undefined; repo?: string | undefined },
  action: { report?: string | undefined },
  env: NodeJS.ProcessEnv,
): Promise<{ report: Report; repo: GitHubRepository }> {
  const reportPath = args.report ?? action.report ?? (await defaultReportPath(process.cwd(), env));
  const report = await readReport(reportPath);
  await checkReportCheckout(report, reportPath, { cwd: process.cwd(), script: "open-pr.ts" });
  const repo =
    (args.repo ? parseRepository(args.repo) : undefined) ??
    (env.GITHUB_REPOSITORY ? parseRepository(env.GITHUB_REPOSITORY) : undefined) ??
    (await originRepo(report.flake.repoRoot));
  if (repo === undefined) {
    throw new UsageError(
      "cannot tell which repository to open the pull request in; pass --repo OWNER/REPO (or run in Actions, or in a clone with an 'origin' remote on GitHub)",
    );
  }
  return { report, repo };
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const args = parseCli(argv, options, Args, USAGE);
  if (args === undefined) return 0;
  const action = readActionInputs("open-pr", env);
  const dryRun = args["dry-run"] || (action["dry-run"] ?? false);
  const { report, repo } = await reportAndRepository(args, action, env);
  if (!githubToken(env) && !dryRun) {
    throw new UsageError(
      "open-pr needs a GitHub token; set GH_TOKEN (or GITHUB_TOKEN) to a token that can write to the repository",
    );
  }
  const grouped = args.group || (action.group ?? false);
  checkGrouping(report, grouped, "open-pr.ts");
  const targets = await targetsOf(report, args, action);
  const modes = [...new Set(targets.map((target) => target.mode))];
  const method = args["merge-method"] ?? action["merge-method"] ?? "squash";
  const draft = args.draft || (action.draft ?? false);
  if (modes.includes("auto") && draft) {
    throw new UsageError(
      "GitHub does not auto-merge draft pull requests; drop --draft (action input draft) or use --merge review",
    );
  }
  const impactPath = args.impact ?? action["impact-report"];
  const impact = impactPath === undefined ? undefined : await readImpactFile(impactPath);
  const defaultToken =
    inActions(env) && (env.FLAKE_BUMP_DEFAULT_TOKEN === "true" || (!env.GH_TOKEN && !!env.GITHUB_TOKEN));
  if (defaultToken && modes.some((mode) => mode !== "direct") && args.step !== "land") {
    warn(
      "pull requests opened with the default GITHUB_TOKEN do not start the repository's own checks; use a GitHub App or fine-grained token (see the README section 'Which token opens the pull request')",
    );
  }
  const opts: OpenPrOptions = {
    repo,
    branchPrefix: args["branch-prefix"] ?? action["branch-prefix"] ?? "flake-bump/",
    labels: args.label ?? action.labels ?? ["dependencies", "automated"],
    reviewers: args.reviewer ?? action.reviewers ?? [],
    draft,
    dryRun,
    disarmOnMove: false,
  };
  const footer = args.footer ?? action["pr-footer"];
  if (footer !== undefined) opts.footer = footer;
  const base = args.base ?? action.base ?? (await eventDefaultBranch(env, repo));
  if (base !== undefined) opts.base = base;
  const octokit = octokitFromEnv(env);

  const results =
    args.step === "land"
      ? []
      : await group(`Pull requests in ${fullName(repo)}`, async () => {
          const all: PullRequestResult[] = [];
          for (const target of targets) all.push(...(await openTarget(octokit, target, opts)));
          return all;
        });
  for (const result of results) info(resultLine(result));
  if (results.length === 0 && !report.changed && args.step !== "land") {
    info("Nothing to do: the report moved no input.");
  }

  const landing =
    args.step === "open"
      ? []
      : await landTargets(octokit, targets, {
          repo,
          method,
          base,
          impact,
          defaultToken,
          dryRun,
          branchPrefix: opts.branchPrefix,
        });
  for (const result of landing) {
    const where = result.url ? ` ${result.url}` : result.number ? ` #${result.number}` : "";
    info(`${result.input}: ${result.operation}${where} — ${result.detail}`);
    if (result.operation === "held" && inActions(env))
      annotate("warning", `${result.input}: ${result.detail}`);
  }
  if (landing.some((r) => r.operation === "auto-merge-enabled") && defaultToken) {
    warn(
      "auto-merge is enabled, but required checks do not start on pull requests written with the default GITHUB_TOKEN, so it will wait; give the update action a GitHub App or fine-grained token (README: 'Choose how bumps land')",
    );
  }

  const landed = landing.find((r) => ["merged", "auto-merge-enabled", "committed"].includes(r.operation));
  const primary = results.find((r) => r.operation !== "none") ?? results[0];
  const outputs: Record<string, string> = {};
  if (args.step !== "land") {
    outputs["pull-request-number"] = results.flatMap((r) => (r.number ? [String(r.number)] : [])).join(",");
    outputs["pull-request-url"] = results.flatMap((r) => (r.url ? [r.url] : [])).join(",");
  }
  // The landing step's operation is empty unless it landed something, so the action's output falls
  // back to the opening step's (created, updated, …).
  outputs.operation = landed?.operation ?? (args.step === "land" ? "" : (primary?.operation ?? "none"));
  outputs["commit-sha"] = landed?.sha ?? "";
  setOutputs(outputs, env);
  appendSummary(summary(modes, [...results, ...landing]), env);
  // A direct run that kept a bump off the base branch has not done its job: fail the step so
  // someone looks (auto leaves a pull request open instead, which is visible by itself).
  const directHeld = targets.some(
    (target) =>
      target.mode === "direct" &&
      landing.some(
        (r) => r.operation === "held" && target.report.inputs.some((c) => r.input.includes(c.name)),
      ),
  );
  return directHeld ? 1 : 0;
}

/** The step summary: one row per pull request (or commit) and what happened to it. */
function summary(modes: readonly MergeMode[], rows: ReadonlyArray<PullRequestResult | LandResult>): string {
  return [
    `### flake-bump: ${modes.every((mode) => mode === "direct") ? "direct commit" : "pull requests"} (merge: ${modes.join(", ")})`,
    "",
    "| input | operation | where | detail |",
    "| --- | --- | --- | --- |",
    ...rows.map(
      (r) =>
        `| \`${r.input}\` | ${r.operation} | ${r.url ?? (r.number ? `#${r.number}` : "—")} | ${r.detail.replaceAll("|", "\\|")} |`,
    ),
  ].join("\n");
}

/** Land every target whose merge mode lands by itself (auto, direct) and that moved something. */
async function landTargets(
  octokit: Octokit,
  targets: readonly PrTarget[],
  req: Omit<LandRequest, "mode" | "grouped" | "groupName">,
): Promise<LandResult[]> {
  const landing: LandResult[] = [];
  for (const target of targets) {
    if (target.mode === "review" || !target.report.changed) continue;
    const named = target.groupName === undefined ? {} : { groupName: target.groupName };
    const request: LandRequest = { ...req, ...named, mode: target.mode, grouped: target.grouped };
    landing.push(
      ...(await group(`Landing (merge: ${target.mode})`, () => land(octokit, target.report, request))),
    );
  }
  return landing;
}

/**
 * The report's pull requests and how each lands: the policy file's groups and merge modes, under
 * this run's --merge and --group and the action's merge and group.
 */
async function targetsOf(
  report: Report,
  args: { config?: string | undefined; merge?: MergeMode | undefined; group: boolean },
  action: { config?: string | undefined; merge?: MergeMode | undefined; group?: boolean | undefined },
): Promise<PrTarget[]> {
  const policy = await loadRunPolicy({
    config: args.config ?? action.config,
    root: report.flake.repoRoot ?? report.flake.dir,
  });
  const run: RunSettings = {
    flags: {
      ...(args.merge === undefined ? {} : { merge: args.merge }),
      ...(args.group ? { group: true } : {}),
    },
    action: {
      ...(action.merge === undefined ? {} : { merge: action.merge }),
      ...(action.group === true ? { group: true } : {}),
    },
  };
  return prTargets(report, policy, run);
}

/**
 * One target's pull request: opened, rolled forward or closed. direct opens none, it only closes the
 * ones the base has overtaken (left from before the switch to direct); the landing step commits.
 */
function openTarget(octokit: Octokit, target: PrTarget, base: OpenPrOptions): Promise<PullRequestResult[]> {
  const { report } = target;
  const opts: OpenPrOptions = {
    ...base,
    disarmOnMove: target.mode === "auto",
    ...(target.groupName === undefined ? {} : { groupName: target.groupName }),
  };
  if (target.mode !== "direct")
    return target.grouped
      ? openGroupPullRequest(octokit, report, opts)
      : openPullRequests(octokit, report, opts);
  if (!target.grouped) return closeObsoletePullRequests(octokit, report, opts);
  // Without a new lock the grouped call only closes an open group the base has overtaken.
  return report.changed ? Promise.resolve([]) : openGroupPullRequest(octokit, report, opts);
}

interface LandRequest extends Omit<AutoOptions, "impact"> {
  repo: GitHubRepository;
  mode: "auto" | "direct";
  /** One grouped pull request (auto lands it whole); direct commits the combined lock either way. */
  grouped: boolean;
  base: string | undefined;
  impact: ImpactFile | undefined;
}

async function land(octokit: Octokit, report: Report, req: LandRequest): Promise<LandResult[]> {
  const gh = { octokit, repo: req.repo };
  if (req.mode === "auto") {
    await checkAutoMergeSettings(gh, req.method);
    if (req.grouped) return [await landGroupAuto(gh, report, req)];
    const results: LandResult[] = [];
    for (const change of report.inputs) results.push(await landAuto(gh, change, req));
    return results;
  }
  if (report.dryRun && !req.dryRun) {
    throw new UsageError(
      "the report comes from a --dry-run; run bump.ts without --dry-run before committing",
    );
  }
  const { lockPath, repoRoot } = report.flake;
  if (lockPath === undefined || repoRoot === undefined) {
    throw new UsageError(
      `the flake in ${report.flake.dir} is not in a git repository, so there is no base commit to build on; run bump.ts in a clone of the repository`,
    );
  }
  const git = $({ cwd: repoRoot, quiet: true, nothrow: true });
  const head = await git`git rev-parse HEAD`;
  const lock = await git`git show ${`HEAD:${lockPath}`}`;
  if (head.exitCode !== 0 || lock.exitCode !== 0) {
    throw new UsageError(
      `${lockPath} is not committed at HEAD of ${repoRoot}, so there is no base lock to compare with; commit it first`,
    );
  }
  return commitDirect(gh, report, {
    base: req.base ?? (await defaultBranch(gh)),
    path: lockPath,
    from: { sha: head.stdout.trim(), lock: lock.stdout },
    impact: req.impact,
    dryRun: req.dryRun,
  });
}

if (import.meta.main) await runMain(() => main(process.argv.slice(2)));

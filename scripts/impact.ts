#!/usr/bin/env bun
/**
 * impact.ts — what a lock change does to the fleet's hosts, from evaluation alone (nothing is built).
 * Parse args/env → lib/impact/evaluate.ts → stderr for people, --json on stdout, the section in each moved
 * input's pull request, Actions outputs and summary.
 */
import { readFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import * as v from "valibot";
import { $ } from "zx/core";
import { annotate, appendSummary, group, inActions, info, setOutputs } from "../lib/core/actions.ts";
import { flags, parseCli, runMain } from "../lib/core/cli.ts";
import { RuntimeError, UsageError } from "../lib/core/errors.ts";
import { writeAtomic } from "../lib/core/files.ts";
import { Branch, parseRepository, RepositoryName } from "../lib/core/ids.ts";
import { Footer, Jobs, readActionInputs } from "../lib/core/inputs.ts";
import { interruptible } from "../lib/core/interrupt.ts";
import { githubToken } from "../lib/core/secrets.ts";
import { diffLocks, parseLock } from "../lib/flake/lock.ts";
import { detectNix } from "../lib/flake/nix.ts";
import { checkGrouping, defaultReportPath, lockUnmoved, readReport } from "../lib/flake/report.ts";
import { octokitFromEnv } from "../lib/github/client.ts";
import {
  computeImpact,
  flakeNamesHosts,
  type ImpactMode,
  type ImpactSide,
  type InputImpact,
  type OnlyFilter,
  parseOnly,
  planImpact,
} from "../lib/impact/evaluate.ts";
import { resolveJobs } from "../lib/impact/jobs.ts";
import { DEFAULT_DEPLOY_SENTENCE, describeImpact, summaryMarkdown } from "../lib/impact/text.ts";
import { type Comparison, impactComparisons, writeComparisonSections } from "../lib/pr/impact.ts";
import { loadPrTargets } from "../lib/pr/targets.ts";

export const USAGE = `Usage: bun scripts/impact.ts [--report FILE] [--flake DIR] [--base-lock FILE] [--lock FILE]
                            [--only ATTR ...] [--json] [--dry-run] [--timeout-minutes N] [--jobs N]
                            [--repo OWNER/REPO] [--branch-prefix P] [--group] [--config FILE]
                            [--footer TEXT] [--plan] [--help]

Say which hosts a lock change touches and how, by evaluating the flake with both locks (nothing is
built or downloaded): nixosConfigurations and darwinConfigurations (config.system.build.toplevel)
and homeConfigurations (activationPackage).

  --report FILE        bump.ts's report: one comparison per pull request open-pr.ts opened for it,
                       each moved input with its own lock, each group with its combined one
                       (default in Actions: $RUNNER_TEMP/flake-bump/report.json)
  --flake DIR          the flake's directory (default: the report's, else the current directory)
  --base-lock FILE     the lock before (default: flake.lock as committed at git HEAD)
  --lock FILE          the lock after (default: the report's locks; without a report, the
                       working tree's flake.lock)
  --only ATTR          only this output or host, repeatable (nixosConfigurations.web,
                       'homeConfigurations."me@laptop"', darwinConfigurations)
  --json               print the impact as JSON on stdout
  --dry-run            compute and print, change no pull request
  --timeout-minutes N  time budget (default 20); when it runs out the section says so, exit 0
  --jobs N             nix eval processes at once, each evaluating a share of the hosts (default
                       auto: one per CPU core, fewer when memory runs short)
  --repo OWNER/REPO    where the pull requests are (default: $GITHUB_REPOSITORY); with a report,
                       each of its open pull requests gets its host impact section
  --branch-prefix P    the pull requests' branch prefix (default: flake-bump/)
  --group              the report is a grouped run's (open-pr.ts --group): evaluate its combined
                       lock once and write one section into the grouped pull request (P + "all")
  --config FILE        the policy file (default: .github/flake-bump.yml of the flake's repository,
                       if it exists): each of its groups' combined lock is evaluated once and its
                       section written into the group's pull request (P + "group/" + its name)
  --footer TEXT        the closing sentence; {hosts} becomes the hosts to deploy
                       (default: "${DEFAULT_DEPLOY_SENTENCE}")
  --plan               only decide whether host impact will run (run=true|false), without Nix,
                       for the inputs that are behind in FLAKE_BUMP_OUTDATED (bump.ts --check)

In the update action the inputs arrive as FLAKE_BUMP_IMPACT (auto, true or false; auto runs when a
.nix file of the repository names one of those outputs), FLAKE_BUMP_IMPACT_TIMEOUT_MINUTES,
FLAKE_BUMP_IMPACT_JOBS, FLAKE_BUMP_REPORT, FLAKE_BUMP_OUTDATED, FLAKE_BUMP_FLAKE, FLAKE_BUMP_BRANCH_PREFIX,
FLAKE_BUMP_PR_FOOTER, FLAKE_BUMP_GROUP, FLAKE_BUMP_MERGE, FLAKE_BUMP_CONFIG and FLAKE_BUMP_DRY_RUN;
flags override them.

Exit codes: 0 impact computed (hosts that fail to evaluate are reported, not a failure),
1 failure (Nix missing, no flake), 2 bad usage.`;

const options = flags({
  string: [
    "report",
    "flake",
    "base-lock",
    "lock",
    "timeout-minutes",
    "jobs",
    "repo",
    "branch-prefix",
    "footer",
    "config",
  ],
  boolean: ["json", "dry-run", "group", "plan"],
  list: ["only"],
});

const Path = v.pipe(v.string(), v.minLength(1));
const Args = v.object({
  positionals: v.pipe(v.array(v.string()), v.maxLength(0, "takes no positional arguments")),
  report: v.optional(Path),
  flake: v.optional(Path),
  "base-lock": v.optional(Path),
  lock: v.optional(Path),
  only: v.optional(v.array(v.pipe(v.string(), v.minLength(1))), []),
  json: v.optional(v.boolean(), false),
  "dry-run": v.optional(v.boolean(), false),
  "timeout-minutes": v.optional(
    v.pipe(
      v.string(),
      v.regex(/^\d+(\.\d+)?$/, "must be a number of minutes, e.g. 20"),
      v.transform(Number),
      v.minValue(0.01, "must be more than 0"),
    ),
  ),
  jobs: v.optional(Jobs),
  repo: v.optional(RepositoryName),
  "branch-prefix": v.optional(Branch),
  group: v.optional(v.boolean(), false),
  footer: v.optional(Footer),
  plan: v.optional(v.boolean(), false),
  config: v.optional(Path),
});

async function readText(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch {
    throw new UsageError(`cannot read ${flag} ${path}; pass the path of an existing flake.lock`);
  }
}

/** flake.lock as committed at HEAD, from the git repository holding `flakeDir`. */
async function committedLock(flakeDir: string): Promise<string> {
  const git = $({ cwd: flakeDir, quiet: true, nothrow: true });
  const top = await git`git rev-parse --show-toplevel`;
  if (top.exitCode !== 0) {
    throw new UsageError(
      `${flakeDir} is not in a git repository, so there is no committed flake.lock to compare with; pass --base-lock FILE`,
    );
  }
  const path = relative(top.stdout.trim(), join(resolve(flakeDir), "flake.lock"));
  const shown = await git`git show ${`HEAD:${path}`}`;
  if (shown.exitCode !== 0) {
    throw new UsageError(`${path} is not committed at HEAD; commit it or pass --base-lock FILE`);
  }
  return shown.stdout;
}

/**
 * One comparison for a lock with no report, named after the root inputs it moves (`flake.lock` when
 * only transitive nodes moved); undefined when the two locks lock the same sources.
 */
function localSide(baseLock: string, lock: string): ImpactSide | undefined {
  const diff = diffLocks(parseLock(baseLock, "the base lock"), parseLock(lock, "the new lock"));
  const { added, removed, changed } = diff.transitive;
  if (diff.direct.length + added.length + removed.length + changed.length === 0) return undefined;
  const moved = diff.direct;
  const rev = moved.length === 1 ? (moved[0]?.to?.rev ?? "") : "";
  return { name: moved.map((change) => change.path).join(",") || "flake.lock", rev, lock };
}

/** `--plan`: whether host impact will run for the inputs that are behind, decided without Nix. */
async function plan(
  mode: ImpactMode,
  flake: string,
  outdated: readonly string[] | undefined,
  env: NodeJS.ProcessEnv,
): Promise<number> {
  const names = mode === "auto" ? await flakeNamesHosts(flake, env) : undefined;
  // The check step always answers: no value is its "nothing is behind".
  const answer = planImpact(mode, outdated ?? [], names);
  info(`Host impact ${answer.run ? "will run" : "will not run"}: ${answer.reason}.`);
  setOutputs({ run: String(answer.run) }, env);
  return 0;
}

/** A warning annotation for each host that no longer evaluates, and for a time budget run out. */
function annotateProblems(inputs: readonly InputImpact[], timeoutMinutes: number): void {
  for (const host of inputs.flatMap((input) => input.hosts)) {
    if (host.status === "failed") {
      annotate("warning", `${host.attr} no longer evaluates: ${(host.error ?? "").split("\n")[0]}`);
    }
  }
  if (inputs.some((input) => input.timedOut)) {
    annotate("warning", `host impact ran out of its time budget (${timeoutMinutes} minutes)`);
  }
}

/** Write each evaluated entry's section into its pull request, when there is a repository and a token. */
async function writeSections(
  evaluated: ReadonlyArray<{ comparison: Comparison; impact: InputImpact }>,
  ctx: {
    args: v.InferOutput<typeof Args>;
    action: ReturnType<typeof readActionInputs<"impact">>;
    env: NodeJS.ProcessEnv;
    text: { deploySentence: string; timeoutMinutes: number };
  },
): Promise<void> {
  const { args, action, env } = ctx;
  const repo =
    (args.repo ? parseRepository(args.repo) : undefined) ??
    (env.GITHUB_REPOSITORY ? parseRepository(env.GITHUB_REPOSITORY) : undefined);
  if (repo === undefined) return;
  if (!githubToken(env)) {
    info("No GH_TOKEN or GITHUB_TOKEN: the pull requests are left as they are.");
    return;
  }
  const where = {
    repo,
    branchPrefix: args["branch-prefix"] ?? action["branch-prefix"] ?? "flake-bump/",
    dryRun: args["dry-run"] || (action["dry-run"] ?? false),
    ...ctx.text,
  };
  const octokit = octokitFromEnv(env);
  const writes = await group(`Pull requests in ${repo.owner}/${repo.repo}`, () =>
    writeComparisonSections(octokit, evaluated, where),
  );
  for (const w of writes) info(`${w.input}: ${w.outcome}${w.url ? ` ${w.url}` : ""} — ${w.detail}`);
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const args = parseCli(argv, options, Args, USAGE);
  if (args === undefined) return 0;
  const action = readActionInputs("impact", env);
  // Run by hand the script computes; the action passes its own default, auto.
  const mode = action.impact ?? "true";
  if (args.plan)
    return plan(mode, resolve(args.flake ?? action.flake ?? process.cwd()), action.outdated, env);
  const skip = (why: string) => {
    info(why);
    setOutputs({ impact: "", "changed-hosts": "", "failed-hosts": "" }, env);
    return 0;
  };
  if (mode === "false") return skip("Host impact skipped: impact is false.");
  const only: OnlyFilter[] | null = args.only.length > 0 ? args.only.map(parseOnly) : null;
  const reportPath = args.report ?? action.report;
  const useReport = args.lock === undefined && (reportPath !== undefined || inActions(env));
  const report = useReport
    ? await readReport(
        reportPath ?? (await defaultReportPath(args.flake ?? action.flake ?? process.cwd(), env)),
      )
    : undefined;
  const groupAsked = args.group || (action.group ?? false);
  if (report !== undefined) checkGrouping(report, groupAsked, "impact.ts");
  const flakeDir = resolve(args.flake ?? report?.flake.dir ?? action.flake ?? process.cwd());
  if (report !== undefined && report.inputs.length === 0) {
    return skip("No input moved: there is no host impact to compute.");
  }
  if (report?.inputs.every((input) => lockUnmoved(input))) {
    return skip(
      "Only companion submodules moved; flake.lock did not, so there is no host impact to compute.",
    );
  }
  if (mode === "auto") {
    const plan = planImpact(mode, undefined, await flakeNamesHosts(flakeDir, env));
    if (!plan.run) return skip(`Host impact skipped: ${plan.reason}.`);
  }
  const baseLock =
    args["base-lock"] !== undefined
      ? await readText(args["base-lock"], "--base-lock")
      : await committedLock(flakeDir);
  parseLock(baseLock, "the base lock");

  // With a report, the pull requests open-pr.ts opened for it (lib/pr/targets.ts): each group's
  // combined lock once, each other moved input's own lock.
  let comparisons: Comparison[];
  if (report === undefined) {
    const side = localSide(baseLock, await readText(args.lock ?? join(flakeDir, "flake.lock"), "--lock"));
    if (side === undefined) {
      return skip(
        "No input moved: the lock locks the same sources as the base lock, so there is no host impact to compute.",
      );
    }
    comparisons = [{ side, grouped: false }];
  } else
    comparisons = impactComparisons(
      await loadPrTargets(report, { config: args.config, group: args.group }, action),
    );
  const sides = comparisons.map((comparison) => comparison.side);
  if (sides.length === 0) {
    return skip("No pull request of this run moves flake.lock: there is no host impact to compute.");
  }

  const nix = await detectNix({ env });
  const timeoutMinutes = args["timeout-minutes"] ?? action["impact-timeout-minutes"] ?? 20;
  const jobs = resolveJobs(args.jobs ?? action["impact-jobs"] ?? "auto");
  info(
    `Evaluating the hosts for ${sides.map((side) => side.name).join(", ")}; time budget ${timeoutMinutes} minutes, ${jobs} nix eval process${jobs === 1 ? "" : "es"} at once.`,
  );
  // Interrupted (a cancelled job, Ctrl-C), the nix eval processes are stopped too, and nothing is
  // written: no section claims a host timed out that was only cut short.
  const run = await group("Host impact", () =>
    interruptible((interrupted) =>
      computeImpact({
        flakeDir,
        baseLock,
        sides,
        only,
        nix: nix.version,
        env,
        signal: AbortSignal.any([AbortSignal.timeout(timeoutMinutes * 60_000), interrupted]),
        jobs,
        onProgress: info,
      }),
    ),
  );
  const { stats } = run;
  info(
    `Host impact took ${stats.processes} nix eval process${stats.processes === 1 ? "" : "es"} (${stats.jobs.start} at once${stats.memoryStops > 0 ? `, ${stats.jobs.end} after ${stats.memoryStops} stopped for memory` : ""})${stats.peakRssBytes > 0 ? `, at most ${Math.round(stats.peakRssBytes / 2 ** 20)} MB together` : ""}.`,
  );
  // computeImpact answers in the order of its sides: each answer belongs to its comparison.
  const evaluated = comparisons.map((comparison, i) => {
    const answer = run.impact.inputs[i];
    if (answer === undefined) throw new RuntimeError(`host impact has no answer for ${comparison.side.name}`);
    return { comparison, impact: comparison.grouped ? { ...answer, members: comparison.members } : answer };
  });
  const impact = { ...run.impact, inputs: evaluated.map((e) => e.impact) };
  for (const line of describeImpact(impact.inputs)) info(line);
  const json = `${JSON.stringify(impact, null, 2)}\n`;
  if (args.json) process.stdout.write(json);

  const path = join(dirname(await defaultReportPath(flakeDir, env)), "impact.json");
  await writeAtomic(path, json);
  if (inActions(env)) annotateProblems(impact.inputs, timeoutMinutes);
  const hosts = impact.inputs.flatMap((input) => input.hosts);
  const names = (status: string) =>
    [...new Set(hosts.filter((h) => h.status === status).map((h) => h.attr))].join(",");
  // The same sentence open-pr wrote as the body's footer, so the section does not replace it.
  const text = {
    deploySentence: args.footer ?? action["pr-footer"] ?? DEFAULT_DEPLOY_SENTENCE,
    timeoutMinutes,
  };

  if (report !== undefined) await writeSections(evaluated, { args, action, env, text });
  // A fixed host changes on deployment like any changed one.
  const changedHosts = [names("changed"), names("fixed")].filter(Boolean).join(",");
  setOutputs({ impact: path, "changed-hosts": changedHosts, "failed-hosts": names("failed") }, env);
  appendSummary(summaryMarkdown(impact.inputs, text), env);
  return 0;
}

if (import.meta.main) await runMain(() => main(process.argv.slice(2)));

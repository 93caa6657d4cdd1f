#!/usr/bin/env bun
/**
 * bump.ts — move flake inputs in flake.lock with the real Nix CLI.
 * Parse args/env/event → lib/bump/bump.ts → report (stderr for people, --json on stdout, Actions outputs).
 */
import * as v from "valibot";
import type { BumpDeps, BumpRequest, GroupDeps, Selected } from "../lib/bump/bump.ts";
import type { CompanionSettings } from "../lib/bump/companions.ts";
import type { Freshness } from "../lib/bump/freshness.ts";
import type { ReleaseAnswer, ReleaseQuery } from "../lib/bump/releases.ts";
import { appendSummary, group, info, setOutputs } from "../lib/core/actions.ts";
import { debugRequested, flags, parseCli, runMain } from "../lib/core/cli.ts";
import { RuntimeError, UsageError } from "../lib/core/errors.ts";
import { readEventRequest } from "../lib/core/event.ts";
import { Branch, Engine, GitRef, InputName, Sha } from "../lib/core/ids.ts";
import { readActionInputs } from "../lib/core/inputs.ts";
import { githubToken } from "../lib/core/secrets.ts";
import { githubSource } from "../lib/flake/flakeref.ts";
import { detectNix } from "../lib/flake/nix.ts";
import {
  checkReportPath,
  defaultReportPath,
  describeReport,
  type Report,
  reportMarkdown,
  serializeReport,
  writeReport,
} from "../lib/flake/report.ts";
import type { Octokit } from "../lib/github/client.ts";
import type { RunSettings } from "../lib/policy/effective.ts";
import { describePolicy, type EffectivePolicy } from "../lib/policy/effective.ts";
import type { Trigger } from "../lib/policy/gate.ts";
import {
  type InputPlan,
  loadRunPolicy,
  planInputs,
  repositoryRoot,
  runClock,
  targetsApart,
  targetsOf,
  triggerOf,
} from "../lib/policy/run.ts";

export const USAGE = `Usage: bun scripts/bump.ts [INPUT ...] [--rev SHA [--no-verify] | --tag TAG] [--allow-downgrade]
                       [--engine auto|native|nix] [--flake DIR] [--report FILE] [--config FILE] [--json]
                       [--dry-run] [--check] [--group [--branch-prefix P]] [--help]

Move flake inputs in flake.lock (natively or with Nix) and describe what moved.

  INPUT          direct inputs of the flake to update (default: every tracked input,
                 i.e. not pinned to a rev or tag in flake.nix)
  --rev SHA      lock exactly this commit (40 hex characters; exactly one INPUT); a commit older
                 than the locked one needs --allow-downgrade
  --no-verify    with --rev: lock it without asking GitHub that it is on the tracked branch
  --tag TAG      move one INPUT pinned to a tag in flake.nix to TAG, a tag of the same series
                 (flake.nix's tag is edited, then Nix locks it); an older tag needs --allow-downgrade
  --allow-downgrade  let --rev or --tag move the input backwards
  --engine E     who moves each input: 'native' writes a github: input's lock node itself
                 (only where that is provably what Nix writes; refuses otherwise), 'nix' runs
                 Nix for everything, 'auto' (default) is native where provable, Nix elsewhere
  --flake DIR    the flake's directory (default: current directory)
  --report FILE  where to write the JSON report (default: flake-bump/report.json in the git
                 directory of the flake's own checkout; in Actions, under $RUNNER_TEMP)
  --config FILE  the policy file (default: .github/flake-bump.yml of the flake's repository, if
                 it exists): schedules, min-age, follow (branch, releases, none), groups; naming
                 inputs overrides it
  --json         print the report on stdout (human output stays on stderr)
  --dry-run      compute and print everything, leave flake.lock untouched
  --check        only say which inputs are behind (outdated=NAMES) and whether moving them
                 needs Nix (needs-nix=true|false), and each input's policy and where it came
                 from; needs no Nix itself
  --group        keep the open grouped pull request's inputs in the new lock (for open-pr.ts --group):
                 each one the base is behind on is locked at the group's rev in the same Nix run;
                 every move is made in that one run, so open-pr.ts and impact.ts need --group too
  --branch-prefix P  the grouped branch is P + "all" (default: flake-bump/)
  --debug        show Nix's full output and stack traces

In GitHub Actions the event (repository_dispatch, workflow_dispatch, schedule) chooses the
inputs and rev; the update action's inputs (FLAKE_BUMP_INPUTS, FLAKE_BUMP_REV, FLAKE_BUMP_FLAKE,
FLAKE_BUMP_DRY_RUN, FLAKE_BUMP_ENGINE, FLAKE_BUMP_GROUP, FLAKE_BUMP_BRANCH_PREFIX, FLAKE_BUMP_CONFIG,
FLAKE_BUMP_MERGE) override it, and command-line arguments override both.
Exit codes: 0 done (changed or nothing to do), 1 failure, 2 bad usage or input.`;

const options = flags({
  string: ["rev", "tag", "flake", "report", "branch-prefix", "engine", "config"],
  boolean: ["json", "dry-run", "check", "group", "no-verify", "allow-downgrade"],
});

const Args = v.object({
  positionals: v.array(InputName),
  rev: v.optional(Sha),
  tag: v.optional(GitRef),
  "allow-downgrade": v.optional(v.boolean(), false),
  flake: v.optional(v.pipe(v.string(), v.minLength(1))),
  report: v.optional(v.pipe(v.string(), v.minLength(1))),
  json: v.optional(v.boolean(), false),
  "dry-run": v.optional(v.boolean(), false),
  check: v.optional(v.boolean(), false),
  group: v.optional(v.boolean(), false),
  "no-verify": v.optional(v.boolean(), false),
  "branch-prefix": v.optional(Branch),
  engine: v.optional(Engine),
  config: v.optional(v.pipe(v.string(), v.minLength(1))),
});

/** The inputs (and rev) a person asked for: the command line's, else the action's; each checked for sense. */
function askedInputs(
  args: v.InferOutput<typeof Args>,
  action: ReturnType<typeof readActionInputs<"bump">>,
): { named: string[]; asked: string | undefined } {
  if (args.rev !== undefined && args.positionals.length !== 1) {
    throw new UsageError("--rev pins exactly one input; name it: bun scripts/bump.ts INPUT --rev SHA");
  }
  if (args.tag !== undefined && (args.positionals.length !== 1 || args.rev !== undefined)) {
    throw new UsageError(
      "--tag moves exactly one input, without --rev; name it: bun scripts/bump.ts INPUT --tag TAG",
    );
  }
  const fromCli = args.positionals.length > 0 || args.rev !== undefined;
  const named = fromCli ? args.positionals : (action.inputs ?? []);
  if (!fromCli && action.rev !== undefined && named.length !== 1) {
    throw new UsageError(
      `action input 'rev' pins exactly one input, but 'inputs' names ${named.length}; name exactly one input in 'inputs'`,
    );
  }
  return { named, asked: fromCli ? args.rev : action.rev };
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const args = parseCli(argv, options, Args, USAGE);
  if (args === undefined) return 0;
  const action = readActionInputs("bump", env);
  const { named, asked } = askedInputs(args, action);

  // Arguments (or the action's inputs) override the event; it is read only when they say nothing.
  const given = named.length > 0 || asked !== undefined;
  const event = given ? undefined : await readEventRequest(env);
  const request: BumpRequest = {
    flakeDir: args.flake ?? action.flake ?? process.cwd(),
    inputs: given ? named : (event?.inputs ?? []),
    dryRun: args["dry-run"] || (action["dry-run"] ?? false),
    engine: args.engine ?? action.engine ?? "auto",
  };
  const rev = given ? asked : event?.rev;
  if (rev !== undefined) request.rev = rev;
  withPush(request, event, args);
  const now = runClock(env);
  const { plans, policy, listed } = await policyPlans(request.flakeDir, {
    config: args.config ?? action.config,
    // A person named the inputs: the command line, the action's `inputs`, the Run-workflow form.
    trigger: triggerOf(
      env.GITHUB_EVENT_NAME,
      given || (event?.event === "workflow_dispatch" && request.inputs.length > 0),
    ),
    now,
    flags: args.group ? { group: true } : {},
    action: {
      ...(action.group === true ? { group: true } : {}),
      ...(action.merge === undefined ? {} : { merge: action.merge }),
    },
  });
  request.plans = plans;
  request.follow = Object.fromEntries([...plans].map(([name, plan]) => [name, plan.policy.follow.value]));

  const [{ bump, checkOutdated }, { checkFreshness, nothingAnswered }] = await Promise.all([
    import("../lib/bump/bump.ts"),
    import("../lib/bump/freshness.ts"),
  ]);

  // Octokit is loaded only when a GitHub input needs asking: plain git bumps skip its start-up.
  let client: Promise<Octokit> | undefined;
  const octokit = () => {
    client ??= import("../lib/github/client.ts").then((github) => github.octokitFromEnv(env));
    return client;
  };
  const freshness = async (inputs: readonly Selected[]) => {
    const needsGitHub = inputs.some((input) => githubSource(input.node) !== undefined);
    return checkFreshness(inputs, needsGitHub ? { octokit: await octokit() } : {});
  };

  const minAge: NonNullable<BumpDeps["minAge"]> = async (source, node, minAgeMs, at) => {
    const { minAgeTarget } = await import("../lib/bump/age.ts");
    return minAgeTarget({ octokit: await octokit(), source, node, minAgeMs, now, rev: at });
  };
  const releases = releasesFrom(octokit, now);
  if (args.check)
    return check(
      request,
      { checkOutdated, nothingAnswered, freshness, octokit, minAge, policy, listed, releases },
      args.json,
      env,
    );

  const reportPath = args.report ?? (await defaultReportPath(request.flakeDir, env));
  await checkReportPath(reportPath);
  const targets = targetsOf(plans);
  // Repository and client only: GitHub is asked about a group only when Nix is about to run.
  const grouped = targets.rest.grouped || targets.named.length > 0;
  const members = grouped ? await groupDeps(request.flakeDir, args, action, env) : undefined;
  if (args["no-verify"] && request.rev !== undefined) {
    info(
      `note: --no-verify: ${request.rev.slice(0, 12)} is locked without checking that it is on the tracked branch`,
    );
  }
  const deps: BumpDeps = {
    nix: () => detectNix({ env, debug: debugRequested(argv, env) }),
    freshness,
    octokit,
    ...(args["no-verify"]
      ? {}
      : {
          checkTarget: async (target) => {
            const { targetCheck } = await import("../lib/github/upstream.ts");
            return targetCheck(await octokit(), { authenticated: githubToken(env) !== undefined })(target);
          },
        }),
    minAge,
    companions: companionSettings(request, env, listed),
    releases,
    // A push's ref may need GitHub's answer: is a short ref a tag, which branch is the default.
    ...(request.ref === undefined
      ? {}
      : { refs: (await import("../lib/bump/pushed-ref.ts")).githubRefQuestions(await octokit()) }),
  };
  const report: Report = await group("Update flake.lock", async () => {
    if (!targetsApart(targets))
      return bump(request, members === undefined ? deps : { ...deps, group: members() });
    const { bumpTargets } = await import("../lib/bump/targets.ts");
    return bumpTargets(request, deps, targets, { deps: (name) => members?.(name) });
  });

  await reportRun(report, reportPath, args.json, env);
  return 0;
}

/** The newest releases of tag-pinned inputs, asked of GitHub (releases.ts is loaded only when asked); min-age counts from `now`. */
function releasesFrom(octokit: () => Promise<Octokit>, now: Date) {
  return async (queries: readonly ReleaseQuery[]): Promise<ReleaseAnswer[]> =>
    (await import("../lib/bump/releases.ts")).newestReleases(queries, { octokit: await octokit(), now });
}

/** The run's report: the file, the log, --json on stdout, the Actions outputs and the step summary. */
async function reportRun(report: Report, path: string, json: boolean, env: NodeJS.ProcessEnv): Promise<void> {
  await writeReport(path, report);
  for (const line of describeReport(report)) info(line);
  if (json) process.stdout.write(serializeReport(report));
  setOutputs(
    {
      changed: String(report.changed),
      inputs: report.inputs.map((input) => input.name).join(","),
      report: path,
    },
    env,
  );
  appendSummary(reportMarkdown(report), env);
}

/** The pushed repository and ref (they pick the inputs), and the command line's --tag and --allow-downgrade. */
function withPush(
  request: BumpRequest,
  event: { repository?: string; ref?: string } | undefined,
  args: { tag?: string | undefined; "allow-downgrade": boolean },
): void {
  if (event?.repository !== undefined) request.repository = event.repository;
  if (event?.ref !== undefined) request.ref = event.ref;
  if (args.tag !== undefined) request.tag = args.tag;
  if (args["allow-downgrade"]) request.allowDowngrade = true;
}

/**
 * What bump needs to keep a grouped pull request's members, per group (undefined: `<prefix>all`):
 * asked of GitHub only if Nix will run.
 */
async function groupDeps(
  flakeDir: string,
  args: { "branch-prefix"?: string | undefined },
  action: { "branch-prefix"?: string | undefined },
  env: NodeJS.ProcessEnv,
): Promise<(name?: string) => GroupDeps> {
  const [{ parseRepository }, { $ }, { groupBranch, openGroupMembers }] = await Promise.all([
    import("../lib/core/ids.ts"),
    import("zx/core"),
    import("../lib/pr/group.ts"),
  ]);
  let repo = env.GITHUB_REPOSITORY ? parseRepository(env.GITHUB_REPOSITORY) : undefined;
  if (repo === undefined) {
    const origin = await $({ cwd: flakeDir, nothrow: true, quiet: true })`git remote get-url origin`;
    repo = origin.exitCode === 0 ? parseRepository(origin.stdout) : undefined;
  }
  if (repo === undefined) {
    throw new UsageError(
      "a grouped pull request (--group, or a group in the policy file) needs its repository; run in Actions or in a clone whose 'origin' remote is on GitHub",
    );
  }
  const where = repo;
  const prefix = args["branch-prefix"] ?? action["branch-prefix"] ?? "flake-bump/";
  const { octokitFromEnv } = await import("../lib/github/client.ts");
  const { isOlderOn } = await import("../lib/github/upstream.ts");
  const octokit = octokitFromEnv(env);
  return (name) => {
    const branch = groupBranch(prefix, name);
    let asked: Promise<Readonly<Record<string, string>>> | undefined;
    return {
      // Asked once: bump reads the members both to choose the engine and to widen Nix's plan.
      members: () => {
        asked ??= openGroupMembers(octokit, where, branch).then((members) => {
          const names = Object.keys(members);
          if (names.length > 0) info(`Grouped pull request on '${branch}' holds: ${names.join(", ")}`);
          return members;
        });
        return asked;
      },
      isOlder: isOlderOn(octokit),
    };
  };
}

/** The policy's companions and, when a relative submodule URL asks for it, the repository's own URL. */
function companionSettings(
  request: BumpRequest,
  env: NodeJS.ProcessEnv,
  listed: Readonly<Record<string, readonly string[]>>,
): CompanionSettings {
  return {
    listed,
    ownUrl: async () => {
      const { ownRepositoryUrl } = await import("../lib/flake/companions.ts");
      return ownRepositoryUrl(env, request.flakeDir);
    },
  };
}

interface CheckDeps {
  checkOutdated: typeof import("../lib/bump/bump.ts").checkOutdated;
  nothingAnswered: typeof import("../lib/bump/freshness.ts").nothingAnswered;
  freshness: (inputs: readonly Selected[]) => Promise<Freshness[]>;
  octokit: () => Promise<Octokit>;
  minAge: NonNullable<BumpDeps["minAge"]>;
  policy: ReadonlyMap<string, EffectivePolicy>;
  /** Input → the submodules its `companions` lists. */
  listed: Readonly<Record<string, readonly string[]>>;
  releases: (queries: readonly ReleaseQuery[]) => Promise<ReleaseAnswer[]>;
}

/**
 * `--check`: one line per input, `outdated=NAMES` on stdout (or the answers as JSON) and in
 * $GITHUB_OUTPUT, and each input's effective policy with where each value came from.
 */
async function check(
  request: BumpRequest,
  deps: CheckDeps,
  json: boolean,
  env: NodeJS.ProcessEnv,
): Promise<number> {
  const rev = request.rev;
  const { answers, skipped, needsNix, engines, companions, releases } = await deps.checkOutdated(
    request,
    async (inputs) =>
      rev === undefined
        ? deps.freshness(inputs)
        : inputs.map((input): Freshness => {
            const locked = input.node.locked?.rev;
            return locked === rev
              ? { name: input.name, status: "current", rev }
              : { name: input.name, status: "outdated", rev: locked, latest: rev };
          }),
    deps.octokit,
    deps.minAge,
    deps.releases,
    companionSettings(request, env, deps.listed),
  );
  const unanswered = deps.nothingAnswered(answers);
  if (unanswered !== undefined) {
    // Declaring every input outdated would install and run Nix for nothing: it cannot reach them either.
    throw new RuntimeError(
      `no source answered, so --check cannot tell which inputs are behind: ${unanswered}`,
    );
  }
  const { newsLine } = await import("../lib/bump/releases.ts");
  for (const a of answers) {
    if (a.status === "current") info(`• '${a.name}' is up to date (${a.rev.slice(0, 7)})`);
    else if (a.status === "outdated")
      info(`• '${a.name}' is behind: ${a.rev?.slice(0, 7) ?? "none"} → ${a.latest.slice(0, 7)}`);
    else info(`• '${a.name}' needs Nix to tell (${a.reason})`);
  }
  for (const c of companions) {
    const where = c.moved.map((m) => `'${m.path}' points at ${m.from.slice(0, 7)}`).join(", ");
    info(
      `• '${c.name}' is behind all the same: its companion ${where}, not the locked ${c.moved[0]?.to.slice(0, 7)}`,
    );
  }
  for (const news of releases) {
    const line = newsLine(news);
    if (line !== undefined) info(`• ${line}`);
  }
  for (const s of skipped) info(`• ${s.message}`);
  for (const e of engines)
    info(
      `• '${e.name}' would be moved by ${e.engine === "native" ? "the native engine" : "Nix"}: ${e.reason}`,
    );
  for (const [name, policy] of deps.policy) info(`• '${name}' policy: ${describePolicy(policy)}`);
  // "unknown" counts as outdated: only Nix can tell, so the workflow must install it.
  // A current input whose listed companion points elsewhere is behind too: the companion needs the move.
  const outdated = [
    ...new Set([
      ...answers.filter((a) => a.status !== "current").map((a) => a.name),
      ...companions.map((c) => c.name),
      ...releases.filter((r) => r.follows && r.answer.status === "newer").map((r) => r.name),
    ]),
  ];
  if (json) {
    const policy = Object.fromEntries(deps.policy);
    const answer = { outdated, needsNix, answers, engines, skipped, policy, companions, releases };
    process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
  } else process.stdout.write(`outdated=${outdated.join(",")}\nneeds-nix=${needsNix}\n`);
  setOutputs({ outdated: outdated.join(","), "needs-nix": String(needsNix) }, env);
  return 0;
}

/**
 * The policy file read and checked against flake.lock's root inputs, and each root input's plan
 * for this run. Without a readable flake.lock nothing is planned: the bump then says what is wrong.
 */
async function policyPlans(
  flakeDir: string,
  run: RunSettings & { config: string | undefined; trigger: Trigger; now: Date },
): Promise<{
  plans: Map<string, InputPlan>;
  policy: Map<string, EffectivePolicy>;
  /** Input → the submodules its `companions` lists. */
  listed: Record<string, string[]>;
}> {
  const [{ readFile }, { join }, { parseLock, rootInputs }] = await Promise.all([
    import("node:fs/promises"),
    import("node:path"),
    import("../lib/flake/lock.ts"),
  ]);
  const text = await readFile(join(flakeDir, "flake.lock"), "utf8").catch(() => undefined);
  const names = text === undefined ? undefined : rootInputs(parseLock(text)).map((input) => input.name);
  const root = repositoryRoot(flakeDir);
  const file = await loadRunPolicy({
    config: run.config,
    root,
    ...(names === undefined ? {} : { knownInputs: names }),
  });
  const plans = planInputs(names ?? [], file, run);
  return {
    plans,
    policy: new Map([...plans].map(([name, plan]) => [name, plan.policy])),
    listed: file?.companions ?? {},
  };
}

if (import.meta.main) await runMain(() => main(process.argv.slice(2)));

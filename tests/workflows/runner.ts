/**
 * A small stand-in for the GitHub Actions runner, for the wiring test: it runs one job of a workflow
 * file the way the runner would, so the test exercises the YAML as written rather than a copy of
 * what it is believed to do.
 *
 * What it does like the runner: the job's and each step's `if:`; `env:` at workflow, job and step
 * level with `${{ }}` evaluated (expressions.ts); `run:` scripts written to a file and run with the
 * step's shell (`shell: bash` = `bash --noprofile --norc -eo pipefail {0}`, none = `bash -e {0}`);
 * a fresh `$GITHUB_OUTPUT`/`$GITHUB_ENV`/`$GITHUB_PATH`/`$GITHUB_STEP_SUMMARY` file per step, read back
 * into `steps.<id>.outputs` and the environment of later steps; the default GITHUB_* and RUNNER_*
 * variables and the event file; composite actions (`uses: ./…`) expanded into their steps with
 * their own `inputs`, `steps` and `github.action_path`/`$GITHUB_ACTION_PATH`, and their outputs
 * evaluated from those steps.
 *
 * What it does differently, on purpose:
 * - Remote `uses:` steps are not downloaded: each needs a handler (by OWNER/REPO); the wiring test's
 *   handlers skip tool installers when the tool is already on PATH, as the installers themselves do.
 * - A missing step output, an undeclared action input or an unknown step id is an error, where
 *   GitHub would quietly substitute "" (see `strict` in expressions.ts). So is an unexpected `with:`
 *   key or a missing required input, which GitHub only warns about.
 * - `./` actions resolve against `actionsRoot` (a staged copy of flake-bump, as the runner stages a
 *   remote action under `_actions/OWNER/REPO/SHA/`), not against the workspace, because the
 *   workspace is the downstream flake: in a user's copy of update.yml the `uses:` names
 *   OWNER/flake-bump/.github/actions/update@SHA, which the runner stages exactly like that.
 */
import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse } from "yaml";
import {
  type Contexts,
  ExpressionError,
  evaluateCondition,
  evaluateValue,
  interpolate,
  strict,
  toText,
  type Value,
} from "./expressions.ts";

export interface StepResult {
  /** `job/step name`, with composite steps nested: `update/Update flake inputs/Bump flake inputs`. */
  path: string;
  id: string | undefined;
  uses: string | undefined;
  outcome: "success" | "failure" | "skipped";
  outputs: Record<string, string>;
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  /** Why the runner itself failed the step (an expression error, a missing handler, …). */
  error: string | undefined;
  /** Wall time of the step, in ms (composite: all of its steps). */
  ms: number;
}

export interface JobResult {
  conclusion: "success" | "failure" | "skipped";
  /** The workflow's `concurrency.group`, evaluated, if it has one. */
  concurrencyGroup: string | undefined;
  steps: StepResult[];
  /** `::error::`/`::warning::` annotations from every step. */
  annotations: string[];
  summary: string;
  /** Everything, in order: for a failing test's message. */
  log: string;
}

export interface UsesCall {
  uses: string;
  with: Record<string, string>;
  env: Record<string, string>;
  workspace: string;
}

/** Stands in for a remote action. Return its outputs; throw to fail the step. */
export type UsesHandler = (call: UsesCall) => Promise<Record<string, string> | undefined>;

export interface RunJobOptions {
  /** Path of the workflow file. */
  workflow: string;
  /** Job id; default: the workflow's only job. */
  job?: string;
  event: { name: string; payload: Record<string, unknown> };
  repository: string;
  sha: string;
  ref: string;
  actor?: string;
  /** `secrets.*`; GITHUB_TOKEN is added from `githubToken`, as GitHub does. */
  secrets?: Record<string, string>;
  /** The job's automatic token: `github.token` and `secrets.GITHUB_TOKEN`. */
  githubToken: string;
  /** The machine's environment (PATH, HOME, …) under the runner's own variables. */
  machineEnv: Record<string, string | undefined>;
  /** GITHUB_WORKSPACE; must exist (the checkout handler decides what is in it). */
  workspace: string;
  /** RUNNER_TEMP; created if missing. */
  runnerTemp: string;
  /** Where `uses: ./…` resolves (see the file comment). */
  actionsRoot: string;
  /** Remote actions by lower-case `owner/repo`. */
  handlers: Record<string, UsesHandler>;
  /**
   * Remote composite actions to expand rather than hand to a handler: lower-case `owner/repo` → the
   * directory the runner would download it to (`_actions/OWNER/REPO/SHA`).
   */
  remoteActions?: Record<string, string>;
  apiUrl: string;
  serverUrl: string;
}

type Json = Record<string, unknown>;

function isJson(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function str(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return undefined;
}

function stringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isJson(value)) return out;
  for (const [key, inner] of Object.entries(value)) out[key] = str(inner) ?? "";
  return out;
}

/** JSON-ish data (an event payload, parsed YAML) as an expression value. */
export function toValue(data: unknown): Value {
  if (data === null || data === undefined) return null;
  if (typeof data === "string" || typeof data === "number" || typeof data === "boolean") return data;
  if (Array.isArray(data)) return data.map(toValue);
  if (isJson(data)) {
    const out: Record<string, Value> = {};
    for (const [key, inner] of Object.entries(data)) out[key] = toValue(inner);
    return out;
  }
  return null;
}

/** `$GITHUB_OUTPUT`/`$GITHUB_ENV` file syntax: `name=value` lines and `name<<DELIMITER` heredocs. */
export function parseFileCommands(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? "";
    if (line === "") continue;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, name = "", delimiter = ""] = heredoc;
      const value: string[] = [];
      i++;
      while (i < lines.length && lines[i] !== delimiter) value.push(lines[i++] ?? "");
      if (i >= lines.length) throw new Error(`unterminated ${name}<<${delimiter} in a file command`);
      out[name] = value.join("\n");
      continue;
    }
    const eq = line.indexOf("=");
    if (eq <= 0) throw new Error(`invalid file command line: ${line}`);
    out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

interface Scope {
  label: string;
  contexts: Record<string, Value>;
  steps: Record<string, Value>;
  /** Environment every run step of this scope starts from (before the step's own env:). */
  env: () => Record<string, string>;
  failed: boolean;
  /** For composite steps: the action's directory. */
  actionPath: string | undefined;
}

export async function runJob(opts: RunJobOptions): Promise<JobResult> {
  const workflow: unknown = parse(readFileSync(opts.workflow, "utf8"));
  if (!isJson(workflow) || !isJson(workflow.jobs)) throw new Error(`${opts.workflow} has no jobs`);
  const jobIds = Object.keys(workflow.jobs);
  const jobId = opts.job ?? (jobIds.length === 1 ? jobIds[0] : undefined);
  const job = jobId === undefined ? undefined : workflow.jobs[jobId];
  if (jobId === undefined || !isJson(job)) throw new Error(`choose one of the jobs: ${jobIds.join(", ")}`);

  mkdirSync(opts.runnerTemp, { recursive: true });
  const commands = join(opts.runnerTemp, "_runner_file_commands");
  mkdirSync(commands, { recursive: true });
  const eventPath = join(opts.runnerTemp, "_github_workflow", "event.json");
  mkdirSync(join(opts.runnerTemp, "_github_workflow"), { recursive: true });
  writeFileSync(eventPath, JSON.stringify(opts.event.payload, null, 2));

  const [owner = ""] = opts.repository.split("/");
  const refName = opts.ref.replace(/^refs\/(heads|tags)\//, "");
  const workflowName = str(workflow.name) ?? opts.workflow;
  const github: Record<string, Value> = {
    event_name: opts.event.name,
    event: toValue(opts.event.payload),
    event_path: eventPath,
    repository: opts.repository,
    repository_owner: owner,
    sha: opts.sha,
    ref: opts.ref,
    ref_name: refName,
    ref_type: opts.ref.startsWith("refs/tags/") ? "tag" : "branch",
    head_ref: "",
    base_ref: "",
    workflow: workflowName,
    job: jobId,
    run_id: "4242",
    run_number: "7",
    run_attempt: "1",
    actor: opts.actor ?? "octocat",
    triggering_actor: opts.actor ?? "octocat",
    token: opts.githubToken,
    server_url: opts.serverUrl,
    api_url: opts.apiUrl,
    graphql_url: `${opts.apiUrl}/graphql`,
    workspace: opts.workspace,
    action_path: null,
    action: null,
  };
  const runner: Record<string, Value> = strict(
    {
      os: "Linux",
      arch: "X64",
      temp: opts.runnerTemp,
      tool_cache: join(opts.runnerTemp, "_tool"),
      name: "wiring-test",
    },
    "runner",
  );
  const secrets: Record<string, Value> = { ...opts.secrets, GITHUB_TOKEN: opts.githubToken };

  // `inputs`: every declared workflow_dispatch input; null when another event started the run.
  const declared =
    isJson(workflow.on) && isJson(workflow.on.workflow_dispatch)
      ? workflow.on.workflow_dispatch.inputs
      : undefined;
  const given = isJson(opts.event.payload.inputs) ? opts.event.payload.inputs : {};
  const inputs: Record<string, Value> = {};
  for (const [name, spec] of Object.entries(isJson(declared) ? declared : {})) {
    inputs[name] =
      opts.event.name === "workflow_dispatch"
        ? (str(given[name]) ?? str(isJson(spec) ? spec.default : undefined) ?? "")
        : null;
  }
  const base: Contexts = {
    github,
    inputs: strict(inputs, "the workflow's inputs"),
    vars: {},
    secrets,
    runner,
    needs: {},
  };

  const result: JobResult = {
    conclusion: "success",
    concurrencyGroup: undefined,
    steps: [],
    annotations: [],
    summary: "",
    log: "",
  };
  const log = (line: string): void => {
    result.log += `${line}\n`;
  };

  const concurrency = workflow.concurrency;
  const group = isJson(concurrency) ? str(concurrency.group) : str(concurrency);
  if (group !== undefined) result.concurrencyGroup = interpolate(group, base);

  if (!evaluateCondition(str(job.if), base)) {
    log(`job '${jobId}' skipped: if: ${str(job.if)}`);
    return { ...result, conclusion: "skipped" };
  }

  const runnerEnv: Record<string, string> = {
    CI: "true",
    GITHUB_ACTIONS: "true",
    GITHUB_ACTOR: toText(github.actor ?? null),
    GITHUB_API_URL: opts.apiUrl,
    GITHUB_BASE_REF: "",
    GITHUB_EVENT_NAME: opts.event.name,
    GITHUB_EVENT_PATH: eventPath,
    GITHUB_GRAPHQL_URL: `${opts.apiUrl}/graphql`,
    GITHUB_HEAD_REF: "",
    GITHUB_JOB: jobId,
    GITHUB_REF: opts.ref,
    GITHUB_REF_NAME: refName,
    GITHUB_REF_TYPE: toText(github.ref_type ?? null),
    GITHUB_REPOSITORY: opts.repository,
    GITHUB_REPOSITORY_OWNER: owner,
    GITHUB_RUN_ATTEMPT: "1",
    GITHUB_RUN_ID: "4242",
    GITHUB_RUN_NUMBER: "7",
    GITHUB_SERVER_URL: opts.serverUrl,
    GITHUB_SHA: opts.sha,
    GITHUB_WORKFLOW: workflowName,
    GITHUB_WORKSPACE: opts.workspace,
    RUNNER_ARCH: "X64",
    RUNNER_NAME: "wiring-test",
    RUNNER_OS: "Linux",
    RUNNER_TEMP: opts.runnerTemp,
    RUNNER_TOOL_CACHE: join(opts.runnerTemp, "_tool"),
  };
  const machine: Record<string, string> = {};
  for (const [key, value] of Object.entries(opts.machineEnv)) if (value !== undefined) machine[key] = value;

  const evalEnv = (env: unknown, ctx: Contexts): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(stringMap(env))) out[key] = toText(evaluateValue(value, ctx));
    return out;
  };
  // Set by steps through $GITHUB_ENV / $GITHUB_PATH, for every later step of the job.
  const added: Record<string, string> = {};
  const paths: string[] = [];
  const workflowEnv = evalEnv(workflow.env, base);
  const jobEnv = evalEnv(job.env, { ...base, env: strict({ ...workflowEnv }, "env") });
  const jobLevelEnv = (): Record<string, string> => ({ ...workflowEnv, ...jobEnv, ...added });
  const defaultShell =
    isJson(job.defaults) && isJson(job.defaults.run) ? str(job.defaults.run.shell) : undefined;
  const timeoutMs = Number(str(job["timeout-minutes"]) ?? "360") * 60_000;

  const shellCommand = (shell: string | undefined, file: string): string[] => {
    switch (shell ?? defaultShell) {
      case undefined:
        return ["bash", "-e", file];
      case "bash":
        return ["bash", "--noprofile", "--norc", "-eo", "pipefail", file];
      case "sh":
        return ["sh", "-e", file];
      default:
        throw new Error(`the wiring runner does not implement shell '${shell}'`);
    }
  };

  const record = (step: StepResult): StepResult => {
    result.steps.push(step);
    const exit = step.exitCode === undefined ? "" : `, exit ${step.exitCode}`;
    log(`▶ ${step.path} — ${step.outcome} (${Math.round(step.ms)} ms${exit})`);
    if (step.stdout.trim()) log(step.stdout.trimEnd());
    if (step.stderr.trim()) log(step.stderr.trimEnd());
    if (step.error) log(`runner: ${step.error}`);
    for (const line of `${step.stdout}\n${step.stderr}`.split("\n")) {
      if (/^::(error|warning|notice)\b/.test(line)) result.annotations.push(line);
    }
    return step;
  };

  const runScript = async (
    scope: Scope,
    step: Json,
    name: string,
    stepEnv: Record<string, string>,
    ctx: Contexts,
  ): Promise<Omit<StepResult, "path" | "id" | "uses" | "ms">> => {
    const files = {
      GITHUB_OUTPUT: join(commands, `set_output_${randomUUID()}`),
      GITHUB_ENV: join(commands, `set_env_${randomUUID()}`),
      GITHUB_PATH: join(commands, `add_path_${randomUUID()}`),
      GITHUB_STEP_SUMMARY: join(commands, `step_summary_${randomUUID()}`),
    };
    for (const file of Object.values(files)) writeFileSync(file, "");
    const script = join(opts.runnerTemp, `${randomUUID()}.sh`);
    writeFileSync(script, interpolate(str(step.run) ?? "", ctx));
    const env: Record<string, string> = { ...machine, ...runnerEnv, ...scope.env(), ...stepEnv, ...files };
    if (paths.length > 0)
      env.PATH = [...paths]
        .reverse()
        .concat(env.PATH ?? "")
        .join(":");
    if (scope.actionPath !== undefined) env.GITHUB_ACTION_PATH = scope.actionPath;
    env.GITHUB_ACTION = str(step.id) ?? name;
    const workdir = str(step["working-directory"]);
    const cwd = workdir === undefined ? opts.workspace : resolve(opts.workspace, interpolate(workdir, ctx));
    const proc = Bun.spawn(shellCommand(str(step.shell), script), {
      cwd,
      env,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      timeout: timeoutMs,
    });
    const [stdout, stderr, exitCode] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    Object.assign(added, parseFileCommands(readFileSync(files.GITHUB_ENV, "utf8")));
    for (const line of readFileSync(files.GITHUB_PATH, "utf8").split("\n"))
      if (line.trim()) paths.push(line.trim());
    result.summary += readFileSync(files.GITHUB_STEP_SUMMARY, "utf8");
    return {
      outcome: exitCode === 0 ? "success" : "failure",
      outputs: parseFileCommands(readFileSync(files.GITHUB_OUTPUT, "utf8")),
      exitCode,
      stdout,
      stderr,
      error: undefined,
    };
  };

  const runComposite = async (
    outer: Scope,
    path: string,
    actionDir: string,
    withValues: Record<string, string>,
    stepEnv: Record<string, string>,
  ): Promise<{ ok: boolean; outputs: Record<string, string> }> => {
    const file = ["action.yml", "action.yaml"].map((name) => join(actionDir, name)).find(existsSync);
    if (file === undefined) throw new Error(`no action.yml in ${actionDir}`);
    const action: unknown = parse(readFileSync(file, "utf8"));
    if (!isJson(action) || !isJson(action.runs) || action.runs.using !== "composite") {
      throw new Error(`${file} is not a composite action`);
    }
    const declaredInputs = isJson(action.inputs) ? action.inputs : {};
    for (const key of Object.keys(withValues)) {
      if (!Object.hasOwn(declaredInputs, key)) {
        throw new Error(
          `with: '${key}' is not an input of ${file} (it has: ${Object.keys(declaredInputs).join(", ")})`,
        );
      }
    }
    const actionGithub = { ...github, action_path: actionDir };
    const actionInputs: Record<string, Value> = {};
    for (const [name, spec] of Object.entries(declaredInputs)) {
      const given = withValues[name];
      const fallback = isJson(spec) ? str(spec.default) : undefined;
      if (given === undefined && isJson(spec) && spec.required === true && fallback === undefined) {
        throw new Error(`required input '${name}' of ${file} is not given`);
      }
      actionInputs[name] =
        given ??
        (fallback === undefined ? "" : toText(evaluateValue(fallback, { ...base, github: actionGithub })));
    }
    const inner: Scope = {
      label: path,
      contexts: { ...base, github: actionGithub, inputs: strict(actionInputs, `the inputs of ${file}`) },
      steps: strict({}, `the steps of ${file} so far`),
      env: () => ({ ...outer.env(), ...stepEnv }),
      failed: false,
      actionPath: actionDir,
    };
    const steps = Array.isArray(action.runs.steps) ? action.runs.steps : [];
    for (const step of steps) if (isJson(step)) await runStep(inner, step);
    const outputs: Record<string, string> = {};
    if (!inner.failed && isJson(action.outputs)) {
      const ctx = { ...inner.contexts, steps: inner.steps };
      for (const [name, spec] of Object.entries(action.outputs)) {
        outputs[name] = toText(evaluateValue(isJson(spec) ? (str(spec.value) ?? "") : "", ctx));
      }
    }
    return { ok: !inner.failed, outputs };
  };

  const runStep = async (scope: Scope, step: Json): Promise<void> => {
    const uses = str(step.uses);
    const id = str(step.id);
    const name =
      str(step.name) ?? (uses !== undefined ? uses : `Run ${(str(step.run) ?? "").split("\n")[0]}`);
    const path = `${scope.label}/${name}`;
    const started = performance.now();
    const ms = (): number => performance.now() - started;
    const blank = {
      path,
      id,
      uses,
      outputs: {},
      exitCode: undefined,
      stdout: "",
      stderr: "",
      error: undefined,
    };
    let done: StepResult;
    try {
      const ctx: Contexts = { ...scope.contexts, steps: scope.steps, env: strict({ ...scope.env() }, "env") };
      if (!evaluateCondition(str(step.if), ctx, { failed: scope.failed })) {
        done = record({ ...blank, outcome: "skipped", ms: ms() });
      } else {
        const stepEnv = evalEnv(step.env, ctx);
        const stepCtx: Contexts = { ...ctx, env: strict({ ...scope.env(), ...stepEnv }, "env") };
        if (uses === undefined) {
          done = record({ ...blank, ...(await runScript(scope, step, name, stepEnv, stepCtx)), ms: ms() });
        } else {
          const withValues = evalEnv(step.with, stepCtx);
          const [repoPath = ""] = uses.split("@");
          const key = repoPath.split("/").slice(0, 2).join("/").toLowerCase();
          const staged = opts.remoteActions?.[key];
          // A composite action to expand: by path, or a remote one staged like the runner would.
          const compositeDir = uses.startsWith("./")
            ? resolve(opts.actionsRoot, uses)
            : staged === undefined
              ? undefined
              : join(staged, repoPath.split("/").slice(2).join("/"));
          if (compositeDir !== undefined) {
            const ran = await runComposite(scope, path, compositeDir, withValues, stepEnv);
            const outcome = ran.ok ? "success" : "failure";
            done = record({ ...blank, outcome, outputs: ran.outputs, ms: ms() });
          } else {
            const handler = opts.handlers[key];
            if (handler === undefined) throw new Error(`no handler for uses: ${uses} (add one for '${key}')`);
            const outputs = await handler({
              uses,
              with: withValues,
              env: stepEnv,
              workspace: opts.workspace,
            });
            done = record({ ...blank, outcome: "success", outputs: outputs ?? {}, ms: ms() });
          }
        }
      }
    } catch (error) {
      const message = error instanceof ExpressionError ? `expression: ${error.message}` : String(error);
      done = record({ ...blank, outcome: "failure", error: message, ms: ms() });
    }
    if (id !== undefined) {
      scope.steps[id] = {
        outputs: strict({ ...done.outputs }, `steps.${id}.outputs`),
        outcome: done.outcome,
        conclusion:
          done.outcome === "failure" && step["continue-on-error"] === true ? "success" : done.outcome,
      };
    }
    if (done.outcome === "failure" && step["continue-on-error"] !== true) scope.failed = true;
  };

  const top: Scope = {
    label: jobId,
    contexts: base,
    steps: strict({}, "the job's steps so far"),
    env: jobLevelEnv,
    failed: false,
    actionPath: undefined,
  };
  const steps = Array.isArray(job.steps) ? job.steps : [];
  for (const step of steps) if (isJson(step)) await runStep(top, step);
  result.conclusion = top.failed ? "failure" : "success";
  return result;
}

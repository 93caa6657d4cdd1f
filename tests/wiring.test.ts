/**
 * The wiring, not only the scripts: the workflows and composite actions run as written — their
 * `run:` steps in order, with their `env:` blocks, `$GITHUB_OUTPUT` carried from step to step, the
 * runner's GITHUB_* variables and event file — by the small runner in tests/workflows/runner.ts,
 * against the fake GitHub and real Nix. One test per trigger: a dispatch sent by the upstream's
 * notify workflow, the button with and without `rev`, the nightly schedule. The dispatch's sender and
 * the button run the README's copies exactly as a new user pastes them (`uses: OWNER/flake-bump/…@SHA`,
 * staged like a downloaded action; tests/workflows.test.ts keeps those copies equal to the files in
 * .github/workflows), the other triggers this repository's update.yml. Then broken copies of the
 * action must fail: a renamed output, a wrong env name, steps in the wrong order.
 *
 * The install steps are real too: flake-bump is staged the way the runner stages a remote action
 * (`_actions/OWNER/REPO/SHA/`, without node_modules) and the action's own
 * `bun install --frozen-lockfile --production` fills it, so a script that imports a devDependency
 * fails here. Tool installers (checkout, setup-bun, install-nix-action) are skipped because the
 * tool is already there; checkout's stand-in is the test's `git clone` of the fake repository.
 *
 * Runs with the first Nix variant only: the workflow wiring does not depend on the Nix version, and
 * bump.test.ts and flow.test.ts cover each version. FLAKE_BUMP_WIRING_LOG=1 prints each job's log
 * with the time of every step.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { $ } from "zx";
import { parseLock } from "../lib/flake/lock.ts";
import { parseReport } from "../lib/flake/report.ts";
import { type FakeGitHub, fakeGitHub } from "./fake-github/index.ts";
import { nixTestEnv, nixVariants } from "./support/nix.ts";
import { readmeSection } from "./support/readme.ts";
import { cleanEnv } from "./support/run.ts";
import { type JobResult, runJob, type UsesHandler } from "./workflows/runner.ts";

const ROOT = resolve(import.meta.dir, "..");
const TIMEOUT = 120_000;
const UP = { owner: "acme", repo: "nixfleet" };
/**
 * One downstream repository per test, all locking the upstream's first commit, so the tests share one
 * world (set up once: ≈ 2 s) without seeing each other's pull requests. notify-example.yml names
 * acme/nixcfg, so the dispatch test uses that one.
 */
const DOWNSTREAMS = [
  "nixcfg",
  "nixcfg-rev",
  "nixcfg-all",
  "nixcfg-nightly",
  "nixcfg-broken",
  "nixcfg-inputs",
  "nixcfg-dry",
  "nixcfg-impact",
  "nixcfg-footer",
  "nixcfg-group",
  "nixcfg-policy",
] as const;
type Downstream = (typeof DOWNSTREAMS)[number];
/** The job's automatic GITHUB_TOKEN, and the App token a user stores as FLAKE_BUMP_TOKEN. */
const ACTIONS_TOKEN = "ghs_wiringGithubActionsToken000000000000";
const APP_TOKEN = "ghs_wiringFlakeBumpAppToken0000000000000";
/** What flake-bump's repository looks like to the runner after it downloads the action. */
const ACTION_FILES = ["package.json", "bun.lock", "bunfig.toml", "scripts", "lib", ".github"];

const upstreamFiles = (n: number) => ({ "flake.nix": `{ outputs = _: { version = ${n}; }; }\n` });
const downstreamNix = `{
  inputs.nixfleet.url = "github:acme/nixfleet?host=localhost";
  outputs = _: { };
}
`;
/** Hosts made of derivations that cannot build: `web` uses a tool whose version is the upstream's. */
const hostsNix = `{
  inputs.nixfleet.url = "github:acme/nixfleet?host=localhost";
  outputs = { nixfleet, ... }:
    let
      pkg = name: deps: derivation { inherit name deps; builder = "/bin/false"; system = "x86_64-linux"; };
      host = name: deps: { config.system.build.toplevel = pkg "nixos-system-\${name}-1" deps; };
    in {
      nixosConfigurations.web = host "web" [ (pkg "tool-1.\${toString nixfleet.version}" [ ]) ];
      nixosConfigurations.db = host "db" [ (pkg "postgresql-16.4" [ ]) ];
    };
}
`;
/** Two inputs from the same upstream, so one run can name several. */
const twoInputsNix = `{
  inputs.nixfleet.url = "github:acme/nixfleet?host=localhost";
  inputs.other.url = "github:acme/nixfleet?host=localhost";
  outputs = _: { };
}
`;

/** Two inputs and hosts: one grouped pull request, one combined host impact section. */
const groupHostsNix = hostsNix.replace(
  "inputs.nixfleet.url",
  'inputs.other.url = "github:acme/nixfleet?host=localhost";\n  inputs.nixfleet.url',
);

/** A policy file away from the default path, so only the action's `config` input can find it. */
const POLICY = "# nixfleet moves only when named\ninputs:\n  nixfleet:\n    follow: none\n";

let fake: FakeGitHub;
let scratch: string;
let nixEnv: ReturnType<typeof nixTestEnv>;
let machineEnv: Record<string, string | undefined>;
/** flake-bump as the runner stages it, before the action's install step. */
let staged: string;
let runs = 0;
const variant = nixVariants()[0];

beforeAll(async () => {
  fake = await fakeGitHub();
  scratch = mkdtempSync(join(tmpdir(), "flake-bump-wiring-"));
  staged = stageFlakeBump((text) => text);
  nixEnv = nixTestEnv({ certFile: fake.certFile });
  // The machine: PATH with Bun (what setup-bun adds) and Nix, the hermetic Nix settings, and no
  // token or GITHUB_* variable of the process running the tests.
  machineEnv = cleanEnv({
    ...nixEnv,
    ...variant?.env,
    PATH: [dirname(process.execPath), variant?.env.PATH ?? process.env.PATH ?? ""].join(delimiter),
    FLAKE_BUMP_WAIT_SCALE: "0",
    // The hermetic XDG_CACHE_HOME above would also move Bun's package cache (Bun keeps it under
    // XDG_CACHE_HOME when that is set), so every install step would download again, and fail where
    // only loopback is reachable. The runner's own cache is what a real runner's setup-bun keeps too.
    BUN_INSTALL_CACHE_DIR: (await $({ quiet: true })`${process.execPath} pm cache`).stdout.trim(),
  });
});

// The scratch dir holds staged copies of flake-bump with their node_modules: removing them takes
// longer than the default 5 s hook budget on a busy machine.
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
  await nixEnv[Symbol.asyncDispose]();
}, 60_000);

/** A copy of flake-bump's files where the runner keeps a downloaded action; `edit` changes update's action.yml. */
function stageFlakeBump(edit: (actionYml: string) => string): string {
  const root = join(scratch, "_actions", "acme", "flake-bump", `v${++runs}`);
  for (const file of ACTION_FILES) cpSync(join(ROOT, file), join(root, file), { recursive: true });
  const action = join(root, ".github", "actions", "update", "action.yml");
  const original = readFileSync(action, "utf8");
  const edited = edit(original);
  writeFileSync(action, edited);
  return root;
}

function handlers(): Record<string, UsesHandler> {
  const which = (tool: string): string | null => Bun.which(tool, { PATH: machineEnv.PATH ?? "" });
  return {
    "actions/checkout": async (call) => {
      expect(call.with["persist-credentials"]).toBe("false");
      if (!existsSync(join(call.workspace, ".git"))) throw new Error("the test did not clone the workspace");
      return undefined;
    },
    "cachix/install-nix-action": async () => {
      if (which("nix") === null) throw new Error("Nix is not on PATH");
      return undefined;
    },
    "oven-sh/setup-bun": async () => {
      if (which("bun") === null) throw new Error("Bun is not on PATH");
      return undefined;
    },
  };
}

async function clone(owner: string, repo: string): Promise<string> {
  const dir = join(scratch, `work-${++runs}`);
  await $({ quiet: true })`git clone --quiet ${fake.cloneUrl(owner, repo)} ${dir}`;
  return dir;
}

/**
 * The README's copies of the two workflows, as a new user pastes them (`uses: OWNER/flake-bump/…@SHA`,
 * which the runner stages like a downloaded action), written to files to run.
 */
function readmeWorkflows(): { update: string; notify: string } {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = readmeSection(readme, "Adopt flake-bump");
  const blocks = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((match) => match[1] ?? "");
  const pick = (name: string): string => {
    const block = blocks.find(
      (text) => text.startsWith(name === "update" ? "name:" : "on:") && text.includes(`/actions/${name}@`),
    );
    if (block === undefined) throw new Error(`the README's adoption guide has no ${name} workflow`);
    const file = join(scratch, `readme-${name}.yml`);
    writeFileSync(file, block);
    return file;
  };
  return { update: pick("update"), notify: pick("notify") };
}

interface Run {
  /** Default: this repository's update.yml. */
  workflow?: string;
  downstream: Downstream;
  event: { name: string; payload: Record<string, unknown> };
  secrets?: Record<string, string>;
  repository?: string;
  actionsRoot?: string;
}

/** update.yml's job, in a fresh clone of the downstream repository's main branch. */
async function runUpdate(run: Run): Promise<JobResult> {
  const workspace = await clone("acme", run.downstream);
  return runJob({
    workflow: run.workflow ?? join(ROOT, ".github", "workflows", "update.yml"),
    event: run.event,
    repository: run.repository ?? `acme/${run.downstream}`,
    sha: (await fake.branchSha("acme", run.downstream, "main")) ?? "",
    ref: "refs/heads/main",
    secrets: run.secrets ?? {},
    githubToken: ACTIONS_TOKEN,
    machineEnv,
    workspace,
    runnerTemp: join(scratch, `temp-${++runs}`),
    actionsRoot: run.actionsRoot ?? staged,
    handlers: handlers(),
    remoteActions: { "owner/flake-bump": run.actionsRoot ?? staged },
    apiUrl: fake.apiUrl,
    serverUrl: fake.serverUrl,
  });
}

/** notify-example.yml's job for a push of `sha` to the upstream's main branch. */
async function runNotify(workflow: string, sha: string, before: string): Promise<JobResult> {
  const workspace = await clone(UP.owner, UP.repo);
  return runJob({
    workflow,
    event: {
      name: "push",
      payload: {
        ref: "refs/heads/main",
        before,
        after: sha,
        repository: { full_name: `${UP.owner}/${UP.repo}`, name: UP.repo, owner: { login: UP.owner } },
        pusher: { name: "alice" },
      },
    },
    repository: `${UP.owner}/${UP.repo}`,
    sha,
    ref: "refs/heads/main",
    secrets: { FLAKE_BUMP_TOKEN: fake.token },
    githubToken: ACTIONS_TOKEN,
    machineEnv,
    workspace,
    runnerTemp: join(scratch, `temp-${++runs}`),
    actionsRoot: staged,
    handlers: handlers(),
    remoteActions: { "owner/flake-bump": staged },
    apiUrl: fake.apiUrl,
    serverUrl: fake.serverUrl,
  });
}

const workflowDispatch = (downstream: Downstream, inputs: { inputs: string; rev: string }) => ({
  name: "workflow_dispatch",
  payload: {
    inputs,
    ref: "refs/heads/main",
    repository: { full_name: `acme/${downstream}`, name: downstream, owner: { login: "acme" } },
    sender: { login: "alice" },
    workflow: ".github/workflows/update.yml",
  },
});
const schedule = { name: "schedule", payload: { schedule: "23 3 * * *" } };

/** The job succeeded, or the test fails with the whole log. */
function expectSuccess(job: JobResult): void {
  // FLAKE_BUMP_WIRING_LOG=1 prints every job's log (with each step's time), passing or not.
  if (process.env.FLAKE_BUMP_WIRING_LOG) process.stderr.write(job.log);
  if (job.conclusion !== "success") throw new Error(`the job ${job.conclusion}:\n${job.log}`);
}

/** The outputs of the update action's step (`./.github/actions/update` or the README's pinned copy). */
function actionOutputs(job: JobResult): Record<string, string> | undefined {
  return job.steps.find((step) => /(^\.|\/flake-bump)\/\.github\/actions\/update(@|$)/.test(step.uses ?? ""))
    ?.outputs;
}

async function branchLockRev(downstream: Downstream): Promise<string | undefined> {
  const text = await fake.readFile("acme", downstream, "flake-bump/nixfleet", "flake.lock");
  return text === undefined ? undefined : parseLock(text).nodes.nixfleet?.locked?.rev;
}

const openPulls = (downstream: Downstream) =>
  fake.pulls("acme", downstream).filter((pull) => pull.state === "open");
const defaultTokenWarning = (job: JobResult) =>
  job.annotations.filter((line) =>
    line.startsWith("::warning::pull requests opened with the default GITHUB_TOKEN"),
  );

/** A downstream repository whose main branch locks whatever the upstream's newest commit is now. */
async function lockedDownstream(downstream: Downstream, flakeNix = downstreamNix): Promise<string> {
  await fake.createRepo("acme", downstream, { files: { "flake.nix": flakeNix } });
  const checkout = await clone("acme", downstream);
  await $({
    cwd: checkout,
    env: machineEnv,
    quiet: true,
  })`nix --extra-experimental-features ${"nix-command flakes"} flake lock`;
  const lock = readFileSync(join(checkout, "flake.lock"), "utf8");
  await fake.push("acme", downstream, { "flake.lock": lock }, "lock");
  return lock;
}

/**
 * Upstream with four commits. The trigger tests' downstreams lock the first (so each has news);
 * the broken-action tests' downstream locks the newest, so no Nix runs before the wiring fails.
 */
async function world(): Promise<string[]> {
  await fake.reset();
  fake.addToken(ACTIONS_TOKEN, "github-actions[bot]");
  fake.addToken(APP_TOKEN, "flake-bump-app[bot]");
  await fake.createRepo(UP.owner, UP.repo, { files: upstreamFiles(0) });
  const revs = [(await fake.branchSha(UP.owner, UP.repo, "main")) ?? ""];
  const [first, ...others] = DOWNSTREAMS.filter(
    (name) => name !== "nixcfg-broken" && name !== "nixcfg-inputs" && name !== "nixcfg-group",
  );
  const lock = await lockedDownstream(first ?? "nixcfg");
  await lockedDownstream("nixcfg-inputs", twoInputsNix);
  await lockedDownstream("nixcfg-group", groupHostsNix);
  fake.setRepoSettings("acme", "nixcfg-group", { allowAutoMerge: true });
  await fake.push("acme", "nixcfg-inputs", { RELEASE: "1\n" }, "release branch", { branch: "release" });
  for (const downstream of others) {
    const flakeNix =
      downstream === "nixcfg-impact" || downstream === "nixcfg-footer" ? hostsNix : downstreamNix;
    await fake.createRepo("acme", downstream, { files: { "flake.nix": flakeNix, "flake.lock": lock } });
  }
  for (let i = 1; i <= 3; i++)
    revs.push(await fake.push(UP.owner, UP.repo, upstreamFiles(i), `feat: change ${i}`));
  await lockedDownstream("nixcfg-broken");
  await fake.push("acme", "nixcfg-policy", { "ops/policy.yml": POLICY }, "policy: nixfleet only by hand");
  return revs;
}

let revs: string[] = [];
beforeAll(async () => {
  revs = await world();
}, TIMEOUT);
afterEach(() => fake.assertNoViolations());

describe("update.yml and the actions, per trigger", () => {
  test(
    "an upstream push: the README's notify workflow dispatches, update.yml opens one PR pinning the pushed SHA with the App token",
    async () => {
      const pushed = revs[2] ?? "";
      // The upstream side exactly as a new user pastes it from the README.
      const notify = await runNotify(readmeWorkflows().notify, pushed, revs[1] ?? "");
      expectSuccess(notify);
      expect(notify.steps.map((step) => step.path)).toStrictEqual([
        "notify/OWNER/flake-bump/.github/actions/notify@SHA/Set up Bun",
        "notify/OWNER/flake-bump/.github/actions/notify@SHA/Install flake-bump's dependencies",
        "notify/OWNER/flake-bump/.github/actions/notify@SHA/Dispatch to the downstream repositories",
        "notify/OWNER/flake-bump/.github/actions/notify@SHA",
      ]);
      expect(notify.steps.at(-1)?.outputs).toStrictEqual({ dispatched: "acme/nixcfg", failed: "" });
      expect(fake.dispatches.map((d) => [d.owner, d.repo, d.event_type, d.client_payload])).toStrictEqual([
        [
          "acme",
          "nixcfg",
          "flake-input-updated",
          { sha: pushed, repository: "acme/nixfleet", ref: "refs/heads/main" },
        ],
      ]);

      const [dispatch] = fake.dispatches;
      if (dispatch === undefined) throw new Error("no dispatch");
      const update = await runUpdate({
        downstream: "nixcfg",
        event: { name: "repository_dispatch", payload: fake.repositoryDispatchEvent(dispatch) },
        secrets: { FLAKE_BUMP_TOKEN: APP_TOKEN },
      });
      expectSuccess(update);
      expect(update.concurrencyGroup).toBe("Update flake inputs-acme/nixfleet");
      expect(update.steps.map((step) => [step.path, step.outcome])).toStrictEqual([
        ["update/actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8", "success"],
        ["update/./.github/actions/update/Set up Bun", "success"],
        ["update/./.github/actions/update/Install flake-bump's dependencies", "success"],
        ["update/./.github/actions/update/Find the inputs that are behind", "success"],
        ["update/./.github/actions/update/Decide on host impact", "success"],
        ["update/./.github/actions/update/Install Nix", "success"],
        ["update/./.github/actions/update/Bump flake inputs", "success"],
        ["update/./.github/actions/update/Open or update the pull request", "success"],
        // Nix is already there for the bump: the second install is for host impact alone.
        ["update/./.github/actions/update/Install Nix for host impact", "skipped"],
        // impact: auto, and this flake names no host output: it stops before Nix.
        ["update/./.github/actions/update/Compute host impact", "success"],
        ["update/./.github/actions/update/Land the bump", "success"],
        ["update/./.github/actions/update", "success"],
      ]);
      const outputs = actionOutputs(update);
      expect(outputs).toMatchObject({
        changed: "true",
        inputs: "nixfleet",
        operation: "created",
        "pull-request-number": "1",
        "pull-request-url": `${fake.serverUrl}/acme/nixcfg/pull/1`,
      });
      expect(outputs?.report).toStartWith(join(scratch, "temp-"));
      const pulls = openPulls("nixcfg");
      expect(pulls.map((pull) => [pull.headRef, pull.user.login])).toStrictEqual([
        ["flake-bump/nixfleet", "flake-bump-app[bot]"],
      ]);
      expect(await branchLockRev("nixcfg")).toBe(pushed);
      expect(defaultTokenWarning(update)).toStrictEqual([]);
      // The token never reaches a log line, and the report stays out of the workspace.
      expect(update.log).not.toContain(APP_TOKEN);
      expect(outputs?.report?.startsWith(join(scratch, "work-"))).toBe(false);
    },
    TIMEOUT,
  );

  test(
    "the button with a rev (the README's update workflow) pins exactly that commit, opened by the default GITHUB_TOKEN, with the warning",
    async () => {
      const wanted = revs[1] ?? "";
      // The downstream side exactly as a new user pastes it from the README, with no secret set.
      const update = await runUpdate({
        workflow: readmeWorkflows().update,
        downstream: "nixcfg-rev",
        event: workflowDispatch("nixcfg-rev", { inputs: "nixfleet", rev: wanted }),
      });
      expectSuccess(update);
      expect(update.concurrencyGroup).toBe("Update flake inputs-nixfleet");
      expect(actionOutputs(update)).toMatchObject({
        changed: "true",
        inputs: "nixfleet",
        operation: "created",
      });
      expect(await branchLockRev("nixcfg-rev")).toBe(wanted);
      expect(openPulls("nixcfg-rev").map((pull) => pull.user.login)).toStrictEqual(["github-actions[bot]"]);
      expect(defaultTokenWarning(update)).toHaveLength(1);
      expect(update.log).not.toContain(ACTIONS_TOKEN);
    },
    TIMEOUT,
  );

  test(
    "the button without a rev moves every tracked input to its newest commit",
    async () => {
      const update = await runUpdate({
        downstream: "nixcfg-all",
        event: workflowDispatch("nixcfg-all", { inputs: "", rev: "" }),
        secrets: { FLAKE_BUMP_TOKEN: APP_TOKEN },
      });
      expectSuccess(update);
      expect(update.concurrencyGroup).toBe("Update flake inputs-all");
      expect(actionOutputs(update)).toMatchObject({
        changed: "true",
        inputs: "nixfleet",
        operation: "created",
      });
      expect(await branchLockRev("nixcfg-all")).toBe(revs[3]);
    },
    TIMEOUT,
  );

  test(
    "the nightly schedule catches a lost dispatch: every tracked input moves to its newest commit",
    async () => {
      const night = await runUpdate({
        downstream: "nixcfg-nightly",
        event: schedule,
        secrets: { FLAKE_BUMP_TOKEN: APP_TOKEN },
      });
      expectSuccess(night);
      expect(night.concurrencyGroup).toBe("Update flake inputs-all");
      expect(actionOutputs(night)).toMatchObject({
        changed: "true",
        inputs: "nixfleet",
        operation: "created",
      });
      expect(await branchLockRev("nixcfg-nightly")).toBe(revs[3]);
      expect(openPulls("nixcfg-nightly")).toHaveLength(1);
    },
    TIMEOUT,
  );
});

/** A workflow that runs one of the actions with `with`, written to a file the runner reads. */
function actionWorkflow(action: "update" | "notify", withInputs: Record<string, string>): string {
  const file = join(scratch, `${action}-inputs-${++runs}.yml`);
  const job =
    action === "update"
      ? { permissions: { contents: "write", "pull-requests": "write" } }
      : { permissions: {} };
  const checkout = {
    uses: "actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8",
    with: { "persist-credentials": false },
  };
  const workflow = {
    name: `every ${action} input`,
    on: action === "update" ? "workflow_dispatch" : "push",
    permissions: {},
    jobs: {
      [action]: {
        "runs-on": "ubuntu-latest",
        "timeout-minutes": 10,
        ...job,
        steps: [
          checkout,
          {
            uses: `./.github/actions/${action}`,
            with: { token: "${{ secrets.FLAKE_BUMP_TOKEN }}", ...withInputs },
          },
        ],
      },
    },
  };
  writeFileSync(file, JSON.stringify(workflow, null, 2));
  return file;
}

describe("every action input reaches GitHub", () => {
  test(
    "update: names split on commas and newlines, labels with spaces, several reviewers, draft, base and branch prefix",
    async () => {
      const job = await runUpdate({
        workflow: actionWorkflow("update", {
          inputs: "nixfleet,\n other\n",
          labels: "dependencies, needs review\nflake update",
          reviewers: "alice, bob\ncarol",
          draft: "true",
          base: "release",
          "branch-prefix": "bump/",
        }),
        downstream: "nixcfg-inputs",
        event: workflowDispatch("nixcfg-inputs", { inputs: "", rev: "" }),
        secrets: { FLAKE_BUMP_TOKEN: APP_TOKEN },
      });
      expectSuccess(job);
      expect(actionOutputs(job)).toMatchObject({
        changed: "true",
        inputs: "nixfleet,other",
        operation: "created",
      });
      const pulls = openPulls("nixcfg-inputs").map((pull) => ({
        head: pull.headRef,
        base: pull.baseRef,
        draft: pull.draft,
        labels: pull.labels.map((label) => label.name),
        reviewers: pull.requestedReviewers.map((account) => account.login),
      }));
      const expected = (input: string) => ({
        head: `bump/${input}`,
        base: "release",
        draft: true,
        labels: ["dependencies", "needs review", "flake update"],
        reviewers: ["alice", "bob", "carol"],
      });
      expect(pulls).toStrictEqual([expected("nixfleet"), expected("other")]);
      for (const input of ["nixfleet", "other"]) {
        const text = await fake.readFile("acme", "nixcfg-inputs", `bump/${input}`, "flake.lock");
        const lock = text === undefined ? undefined : parseLock(text);
        expect(lock?.nodes[input]?.locked?.rev).toBe(revs[3]);
      }
    },
    TIMEOUT,
  );

  test(
    "update: config reaches the check and bump steps: the file's follow: none holds the input, and the log says why",
    async () => {
      const job = await runUpdate({
        workflow: actionWorkflow("update", { config: "ops/policy.yml" }),
        downstream: "nixcfg-policy",
        event: workflowDispatch("nixcfg-policy", { inputs: "", rev: "" }),
        secrets: { FLAKE_BUMP_TOKEN: APP_TOKEN },
      });
      expectSuccess(job);
      expect(actionOutputs(job)).toMatchObject({ changed: "false", inputs: "", operation: "none" });
      const held = "'nixfleet' is held by follow: none (ops/policy.yml:4 (inputs.nixfleet.follow))";
      expect(job.log).toContain(held);
      expect(job.log).toContain(
        "• 'nixfleet' policy: its own pull request; merge: review (action input 'merge'), follow: none (ops/policy.yml:4",
      );
      expect(openPulls("nixcfg-policy")).toHaveLength(0);
    },
    TIMEOUT,
  );

  test(
    "update: impact, impact-timeout-minutes and impact-jobs reach the impact step; the PR body names the hosts it changes",
    async () => {
      const job = await runUpdate({
        workflow: actionWorkflow("update", {
          impact: "true",
          "impact-timeout-minutes": "7",
          "impact-jobs": "3",
        }),
        downstream: "nixcfg-impact",
        event: workflowDispatch("nixcfg-impact", { inputs: "", rev: "" }),
        secrets: { FLAKE_BUMP_TOKEN: APP_TOKEN },
      });
      expectSuccess(job);
      const step = (name: string) => job.steps.find((s) => s.path.endsWith(`/${name}`));
      expect(step("Decide on host impact")?.outputs).toStrictEqual({ run: "true" });
      expect(step("Compute host impact")?.outcome).toBe("success");
      expect(job.log).toContain("time budget 7 minutes, 3 nix eval processes at once");
      // One line per host as it finishes, on each lock.
      expect(job.log).toMatch(/\[\d+\/4\] nixosConfigurations\.web changed \(\d+\.\d s\)/);
      const outputs = actionOutputs(job);
      expect(outputs).toMatchObject({
        operation: "created",
        "changed-hosts": "nixosConfigurations.web",
        "failed-hosts": "",
      });
      expect(JSON.parse(readFileSync(outputs?.impact ?? "", "utf8"))).toMatchObject({
        schema: 1,
        inputs: [
          {
            name: "nixfleet",
            rev: revs[3],
            hosts: [
              { attr: "nixosConfigurations.db", status: "unchanged" },
              { attr: "nixosConfigurations.web", status: "changed" },
            ],
          },
        ],
      });
      const [pull] = openPulls("nixcfg-impact");
      expect(pull?.body).toContain("- `web`: tool 1.0 → 1.3");
      expect(pull?.body).toContain("After merging, deploy: `web` (`db` unchanged).");
      expect(pull?.body?.split("<!-- flake-bump:impact -->")).toHaveLength(2);
    },
    TIMEOUT,
  );

  test(
    "update: pr-footer reaches the impact step too; the section it writes keeps the custom sentence",
    async () => {
      const footer = "Merge, then roll out {hosts} with colmena";
      const job = await runUpdate({
        workflow: actionWorkflow("update", { impact: "true", "pr-footer": footer }),
        downstream: "nixcfg-footer",
        event: workflowDispatch("nixcfg-footer", { inputs: "", rev: "" }),
        secrets: { FLAKE_BUMP_TOKEN: APP_TOKEN },
      });
      expectSuccess(job);
      const step = (name: string) => job.steps.find((s) => s.path.endsWith(`/${name}`));
      expect(step("Compute host impact")?.outcome).toBe("success");
      expect(actionOutputs(job)).toMatchObject({
        operation: "created",
        "changed-hosts": "nixosConfigurations.web",
      });
      const [pull] = openPulls("nixcfg-footer");
      // The section was written (it lists the package change) and ends with the user's sentence.
      expect(pull?.body).toContain("- `web`: tool 1.0 → 1.3");
      expect(pull?.body).toContain("Merge, then roll out `web` (`db` unchanged) with colmena.");
      expect(pull?.body).not.toContain("After merging, deploy");
    },
    TIMEOUT,
  );

  test(
    "update: group with merge auto reaches open, impact and land; one grouped PR, one combined section, merged",
    async () => {
      const job = await runUpdate({
        workflow: actionWorkflow("update", { group: "true", merge: "auto", impact: "true" }),
        downstream: "nixcfg-group",
        event: workflowDispatch("nixcfg-group", { inputs: "", rev: "" }),
        secrets: { FLAKE_BUMP_TOKEN: APP_TOKEN },
      });
      expectSuccess(job);
      const outputs = actionOutputs(job);
      expect(outputs).toMatchObject({
        changed: "true",
        inputs: "nixfleet,other",
        operation: "merged",
        "changed-hosts": "nixosConfigurations.web",
        "failed-hosts": "",
      });
      expect(JSON.parse(readFileSync(outputs?.impact ?? "", "utf8"))).toMatchObject({
        inputs: [{ name: "nixfleet,other", members: { nixfleet: revs[3], other: revs[3] } }],
      });
      const pulls = fake.pulls("acme", "nixcfg-group");
      expect(pulls.map((pull) => [pull.headRef, pull.state, pull.title])).toStrictEqual([
        ["flake-bump/all", "closed", "chore(flake): update 2 inputs"],
      ]);
      const [pull] = pulls;
      expect(pull?.merged?.sha).toBe(outputs?.["commit-sha"] ?? "");
      expect(pull?.body?.split("<!-- flake-bump:impact -->")).toHaveLength(2);
      expect(pull?.body).toContain("- `web`: tool 1.0 → 1.3");
      expect(pull?.body).toContain("After merging, deploy: `web` (`db` unchanged).");
      const merge = fake.requests.find(
        (r) => r.operationId === "pulls/merge" && r.path.includes("nixcfg-group"),
      );
      const head = await fake.branchSha("acme", "nixcfg-group", "flake-bump/all");
      expect(merge?.body).toStrictEqual({ sha: head, merge_method: "squash" });
      const main = await fake.readFile("acme", "nixcfg-group", "main", "flake.lock");
      const lock = main === undefined ? undefined : parseLock(main);
      expect([lock?.nodes.nixfleet?.locked?.rev, lock?.nodes.other?.locked?.rev]).toStrictEqual([
        revs[3],
        revs[3],
      ]);
    },
    TIMEOUT,
  );

  test(
    "update: rev and dry-run reach both the check and the bump; nothing changes on GitHub",
    async () => {
      const wanted = revs[2] ?? "";
      const before = fake.requests.length;
      const job = await runUpdate({
        workflow: actionWorkflow("update", { inputs: "nixfleet", rev: wanted, "dry-run": "true" }),
        downstream: "nixcfg-dry",
        event: workflowDispatch("nixcfg-dry", { inputs: "", rev: "" }),
        secrets: { FLAKE_BUMP_TOKEN: APP_TOKEN },
      });
      expectSuccess(job);
      const check = job.steps.find((step) => step.path.endsWith("/Find the inputs that are behind"));
      expect(check?.outputs).toStrictEqual({ outdated: "nixfleet", "needs-nix": "true" });
      const outputs = actionOutputs(job);
      expect(outputs).toMatchObject({ changed: "true", inputs: "nixfleet", operation: "created" });
      const report = parseReport(readFileSync(outputs?.report ?? "", "utf8"), "report");
      expect([report.dryRun, report.requested.rev, report.inputs[0]?.to.rev]).toStrictEqual([
        true,
        wanted,
        wanted,
      ]);
      expect(fake.pulls("acme", "nixcfg-dry")).toStrictEqual([]);
      expect(await fake.branchSha("acme", "nixcfg-dry", "flake-bump/nixfleet")).toBeUndefined();
      const writes = fake.requests.slice(before).filter((r) => r.method !== "GET" && r.method !== "HEAD");
      expect(writes.filter((r) => r.path.includes("nixcfg-dry"))).toStrictEqual([]);
    },
    TIMEOUT,
  );

  test(
    "notify: repositories split on commas, spaces and newlines; input, sha, ref and event type; dry-run sends nothing",
    async () => {
      const sha = revs[1] ?? "";
      const inputs = {
        repositories: "acme/nixcfg-rev, acme/nixcfg-all\nacme/nixcfg-nightly",
        input: "nixfleet",
        sha,
        ref: "refs/heads/release",
        "event-type": "nixfleet-pushed",
      };
      const sent = () => fake.dispatches.filter((d) => d.event_type === "nixfleet-pushed");
      const dry = await runNotify(
        actionWorkflow("notify", { ...inputs, "dry-run": "true" }),
        revs[3] ?? "",
        "",
      );
      expectSuccess(dry);
      expect(sent()).toStrictEqual([]);
      expect(dry.steps.at(-1)?.outputs).toMatchObject({ failed: "" });

      const job = await runNotify(actionWorkflow("notify", inputs), revs[3] ?? "", "");
      expectSuccess(job);
      expect(
        sent()
          .map((d) => [`${d.owner}/${d.repo}`, d.client_payload])
          .sort(),
      ).toStrictEqual(
        ["acme/nixcfg-all", "acme/nixcfg-nightly", "acme/nixcfg-rev"].map((repo) => [
          repo,
          { sha, repository: "acme/nixfleet", ref: "refs/heads/release", input: "nixfleet" },
        ]),
      );
    },
    TIMEOUT,
  );
});

describe("in flake-bump's own repository", () => {
  test("both example workflows stand still: flake-bump itself is not a flake", async () => {
    for (const [file, event] of [
      ["update.yml", schedule],
      ["notify-example.yml", { name: "push", payload: {} }],
    ] as const) {
      const job = await runJob({
        workflow: join(ROOT, ".github", "workflows", file),
        event,
        repository: "acme/flake-bump",
        sha: "0".repeat(40),
        ref: "refs/heads/main",
        githubToken: ACTIONS_TOKEN,
        machineEnv,
        workspace: scratch,
        runnerTemp: join(scratch, `temp-${++runs}`),
        actionsRoot: staged,
        handlers: handlers(),
        apiUrl: fake.apiUrl,
        serverUrl: fake.serverUrl,
      });
      expect([file, job.conclusion, job.steps.length]).toStrictEqual([file, "skipped", 0]);
    }
  });
});

describe("a broken copy of the update action fails the run", () => {
  /** Replace `from` with `to` exactly once in the action (the test fails if the text is not there). */
  const replaceOnce =
    (from: string, to: string, nth = 0) =>
    (text: string): string => {
      const parts = text.split(from);
      if (parts.length < nth + 2) throw new Error(`the action no longer contains ${JSON.stringify(from)}`);
      return [parts.slice(0, nth + 1).join(from), parts.slice(nth + 1).join(from)].join(to);
    };
  const stepBlock = (text: string, name: string): string => {
    const start = text.indexOf(`    - name: ${name}\n`);
    const next = text.indexOf("\n    - name: ", start + 1);
    const comment = text.lastIndexOf("\n\n", next);
    return text.slice(start, next === -1 ? undefined : comment > start ? comment + 2 : next + 1);
  };
  const swapSteps = (first: string, second: string) => (text: string) => {
    const a = stepBlock(text, first);
    const b = stepBlock(text, second);
    if (!a || !b) throw new Error("step not found");
    return text.replace(a, "\u0000A").replace(b, a).replace("\u0000A", b);
  };

  const mutations: Array<{ name: string; edit: (text: string) => string; evidence: RegExp }> = [
    {
      name: "open-pr reads a renamed bump output",
      edit: replaceOnce(
        "FLAKE_BUMP_REPORT: ${{ steps.bump.outputs.report }}",
        "FLAKE_BUMP_REPORT: ${{ steps.bump.outputs.report-path }}",
      ),
      evidence: /steps\.bump\.outputs has no 'report-path'/,
    },
    {
      name: "the action's output names an output open-pr never sets",
      edit: replaceOnce("steps.open-pr.outputs.operation }}", "steps.open-pr.outputs.result }}"),
      evidence: /steps\.open-pr\.outputs has no 'result'/,
    },
    {
      name: "the action's output names an output impact never sets",
      edit: replaceOnce("${{ steps.impact.outputs.changed-hosts }}", "${{ steps.impact.outputs.changed }}"),
      evidence: /steps\.impact\.outputs has no 'changed'/,
    },
    {
      name: "impact's mode passed through unchecked text",
      edit: replaceOnce("FLAKE_BUMP_IMPACT: ${{ inputs.impact }}", "FLAKE_BUMP_IMPACT: on"),
      evidence: /action input 'impact' must be auto, true or false/,
    },
    {
      name: "open-pr's token under a wrong env name",
      edit: replaceOnce(
        "        GH_TOKEN: ${{ inputs.token }}",
        "        GITHUB_TOKNE: ${{ inputs.token }}",
        2,
      ),
      evidence: /open-pr needs a GitHub token/,
    },
    {
      name: "an action input passed through unchecked text",
      edit: replaceOnce("FLAKE_BUMP_DRAFT: ${{ inputs.draft }}", "FLAKE_BUMP_DRAFT: yes"),
      evidence: /action input 'draft' must be true or false/,
    },
    {
      name: "the scripts run before the dependencies are installed",
      edit: swapSteps("Install flake-bump's dependencies", "Find the inputs that are behind"),
      evidence: /Cannot find (package|module)/,
    },
    {
      name: "open-pr runs before bump",
      edit: swapSteps("Bump flake inputs", "Open or update the pull request"),
      evidence: /steps\.bump: the steps of .* so far has no 'bump'/,
    },
  ];

  test.each(mutations)(
    "$name",
    async ({ edit, evidence }) => {
      const broken = stageFlakeBump(edit);
      const original = readFileSync(join(ROOT, ".github", "actions", "update", "action.yml"), "utf8");
      expect(readFileSync(join(broken, ".github", "actions", "update", "action.yml"), "utf8")).not.toBe(
        original,
      );
      const job = await runUpdate({
        downstream: "nixcfg-broken",
        event: workflowDispatch("nixcfg-broken", { inputs: "nixfleet", rev: "" }),
        secrets: { FLAKE_BUMP_TOKEN: APP_TOKEN },
        actionsRoot: broken,
      });
      expect(job.conclusion).toBe("failure");
      expect(job.log).toMatch(evidence);
    },
    TIMEOUT,
  );

  test(
    "and the same run with the action as committed succeeds",
    async () => {
      const job = await runUpdate({
        downstream: "nixcfg-broken",
        event: workflowDispatch("nixcfg-broken", { inputs: "nixfleet", rev: "" }),
        secrets: { FLAKE_BUMP_TOKEN: APP_TOKEN },
      });
      expectSuccess(job);
      expect(actionOutputs(job)).toMatchObject({ changed: "false", inputs: "", operation: "none" });
    },
    TIMEOUT,
  );
});

/**
 * api_requests: how many REST requests each step of the chain makes, counted by the fake (Nix's own
 * fetches arrive on the other listener and are not counted). Driven as the workflows run it, like
 * tests/flow.test.ts: notify → the dispatch becomes the event → bump.ts → open-pr.ts, in a fresh clone.
 */
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { $ } from "zx";
import { RuntimeError } from "../lib/core/errors.ts";
import { parseReport } from "../lib/flake/report.ts";
import type { Dispatch } from "../tests/fake-github/index.ts";
import { apiRequestsSince, type Context, endpointList, nixLock, requestSequence } from "./context.ts";
import {
  type Env,
  expectSuccess,
  type Measured,
  measure,
  type ScriptName,
  scriptCommand,
} from "./measure.ts";

export interface ScenarioCount {
  /** REST requests made, all scripts of the scenario together. */
  requests: number;
  /** Per script, when a scenario runs more than one. */
  byScript: Partial<Record<ScriptName, number>>;
  /** `METHOD operationId`, in first-call order, `×N` when repeated. */
  endpoints: string[];
  /** Every request in order, with its status. */
  sequence: string[];
}

export interface ApiResult {
  notify: ScenarioCount;
  openPrCreate: ScenarioCount;
  openPrUpdate: ScenarioCount;
  openPrNoop: ScenarioCount;
  nightlyCurrent: ScenarioCount;
  /** Not targets, for context: bump.ts on a dispatch (verifies the SHA), and the nightly that closes a merged PR. */
  bumpDispatch: ScenarioCount;
  nightlyClose: ScenarioCount;
  /** Every script run here, for peak RSS. */
  runs: Array<{ script: ScriptName; run: Measured }>;
}

const UP = { owner: "acme", repo: "x" };
const DOWN = { owner: "acme", repo: "nixcfg" };
const FLAKE_NIX = `{
  inputs.x.url = "github:acme/x?host=localhost";
  outputs = _: { };
}
`;
const upstreamFiles = (n: number) => ({ "flake.nix": `{ outputs = _: { version = ${n}; }; }\n` });

export async function benchApi(ctx: Context): Promise<ApiResult> {
  const { fake, scratch } = ctx;
  const dir = join(scratch, "api");
  const checkout = join(dir, "nixcfg");
  const reportFile = join(dir, "report.json");
  const eventFile = join(dir, "event.json");
  const runs: ApiResult["runs"] = [];
  // As in a workflow run: outputs and summary files exist, the event is read from disk.
  const actionsEnv: Env = {
    ...ctx.env,
    GITHUB_ACTIONS: "true",
    GITHUB_OUTPUT: join(dir, "output"),
    GITHUB_STEP_SUMMARY: join(dir, "summary.md"),
  };

  await fake.reset();
  await mkdir(dir, { recursive: true });
  await fake.createRepo(UP.owner, UP.repo, { files: upstreamFiles(0) });
  await fake.createRepo(DOWN.owner, DOWN.repo, { files: { "flake.nix": FLAKE_NIX } });
  const freshCheckout = async () => {
    await rm(checkout, { recursive: true, force: true });
    await $({ quiet: true })`git clone --quiet ${fake.cloneUrl(DOWN.owner, DOWN.repo)} ${checkout}`;
  };
  await freshCheckout();
  await nixLock(checkout, ctx.env);
  await fake.push(
    DOWN.owner,
    DOWN.repo,
    { "flake.lock": await readFile(join(checkout, "flake.lock"), "utf8") },
    "lock",
  );
  const revs: string[] = [];
  for (let i = 1; i <= 2; i++)
    revs.push(await fake.push(UP.owner, UP.repo, upstreamFiles(i), `feat: change ${i}`));

  /** Run one script, check it succeeded and said what the scenario expects, count its REST requests. */
  const step = async (
    script: ScriptName,
    args: readonly string[],
    env: Env,
    cwd: string,
    expect?: string,
  ): Promise<ScenarioCount> => {
    const from = fake.requests.length;
    const run = expectSuccess(
      `${script}.ts`,
      await measure(scriptCommand(script, args), { cwd, env, scratch }),
    );
    if (expect !== undefined && !run.stderr.includes(expect)) {
      throw new RuntimeError(
        `${script}.ts did not report '${expect}'; the scenario is not what it claims:\n${run.stderr}`,
      );
    }
    runs.push({ script, run });
    const requests = apiRequestsSince(fake, from);
    return {
      requests: requests.length,
      byScript: { [script]: requests.length },
      endpoints: endpointList(requests),
      sequence: requestSequence(requests),
    };
  };
  const both = (a: ScenarioCount, b: ScenarioCount): ScenarioCount => ({
    requests: a.requests + b.requests,
    byScript: { ...a.byScript, ...b.byScript },
    endpoints: [...a.endpoints, ...b.endpoints],
    sequence: [...a.sequence, ...b.sequence],
  });

  const notify = (sha: string) =>
    step(
      "notify",
      ["--repo", `${DOWN.owner}/${DOWN.repo}`, "--input", "x"],
      {
        ...actionsEnv,
        GITHUB_SHA: sha,
        GITHUB_REF: "refs/heads/main",
        GITHUB_REPOSITORY: `${UP.owner}/${UP.repo}`,
      },
      dir,
      `✓ ${DOWN.owner}/${DOWN.repo}`,
    );
  const lastDispatch = (): Dispatch => {
    const dispatch = fake.dispatches.at(-1);
    if (dispatch === undefined)
      throw new RuntimeError("notify.ts reported success but the fake recorded no dispatch");
    return dispatch;
  };
  const downstreamEnv = (event: "repository_dispatch" | "schedule"): Env => ({
    ...actionsEnv,
    GITHUB_EVENT_NAME: event,
    GITHUB_EVENT_PATH: eventFile,
    GITHUB_REPOSITORY: `${DOWN.owner}/${DOWN.repo}`,
  });
  const bump = async (event: "repository_dispatch" | "schedule") => {
    const dispatch = lastDispatch();
    const body = fake.repositoryDispatchEvent(dispatch);
    // A schedule event carries the repository and sender, but no payload.
    const scheduled = { schedule: "17 3 * * *", repository: body.repository, sender: body.sender };
    await freshCheckout();
    await writeFile(eventFile, JSON.stringify(event === "schedule" ? scheduled : body));
    return step("bump", ["--report", reportFile], downstreamEnv(event), checkout);
  };
  const openPr = (event: "repository_dispatch" | "schedule", expect: string) =>
    step("open-pr", ["--report", reportFile], downstreamEnv(event), checkout, expect);

  const notifyCount = await notify(revs[0] ?? "");
  const bumpDispatch = await bump("repository_dispatch");
  const openPrCreate = await openPr("repository_dispatch", "x: created");

  await notify(revs[1] ?? "");
  await bump("repository_dispatch");
  const openPrUpdate = await openPr("repository_dispatch", "x: updated");
  // The same report again, as a rerun of the workflow's last step would.
  const openPrNoop = await openPr("repository_dispatch", "x: unchanged");

  // Someone merges the PR: main now locks the upstream head. The next nightly closes the PR…
  const merged = await fake.readFile(DOWN.owner, DOWN.repo, "flake-bump/x", "flake.lock");
  if (merged === undefined)
    throw new RuntimeError("the PR branch flake-bump/x has no flake.lock; open-pr did not push it");
  await fake.push(DOWN.owner, DOWN.repo, { "flake.lock": merged }, "Merge pull request #1");
  const nightlyClose = both(await bump("schedule"), await openPr("schedule", "x: closed"));
  // …and every nightly after it finds everything current: the steady state the target is about.
  const nightlyCurrent = both(await bump("schedule"), await openPr("schedule", "x: none"));
  const report = parseReport(await readFile(reportFile, "utf8"), reportFile);
  if (report.changed || report.nix.invocations !== 0) {
    throw new RuntimeError(
      `the 'all current' nightly moved something or ran Nix (${report.nix.invocations} times)`,
    );
  }
  fake.assertNoViolations();
  await rm(dir, { recursive: true, force: true });
  return {
    notify: notifyCount,
    openPrCreate,
    openPrUpdate,
    openPrNoop,
    nightlyCurrent,
    bumpDispatch,
    nightlyClose,
    runs,
  };
}

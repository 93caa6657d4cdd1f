/**
 * nightly_noop: a flake with 50 (and 200) `github:` inputs, all current, under the nightly (schedule) event.
 * bump.ts should ask GitHub which inputs are behind and, hearing "none", never start Nix. Nix
 * invocations are counted twice: from the report, and by a `nix` shim first on PATH that logs every
 * call, so a Nix run the report forgot to count still shows.
 */
import { chmod, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { $ } from "zx";
import { GRAPHQL_BATCH, headsQuery } from "../lib/bump/freshness.ts";
import { RuntimeError } from "../lib/core/errors.ts";
import { parseReport } from "../lib/flake/report.ts";
import { apiRequestsSince, type Context, endpointList, nixLock } from "./context.ts";
import { type Env, expectSuccess, type Measured, measure, scriptCommand } from "./measure.ts";
import { median } from "./stats.ts";

export const NIGHTLY_INPUTS = 50;
/** A large fleet: enough inputs that the freshness question needs more than one GraphQL batch. */
export const NIGHTLY_INPUTS_LARGE = 200;

export interface NightlyOptions {
  inputs: number;
  runs: number;
  /** Also time the fake alone and run open-pr.ts after (the 50-input figures only). */
  extras: boolean;
}

export interface NightlyResult {
  inputs: number;
  wallMedianMs: number;
  wallRunsMs: number[];
  /** Per run, from the report's `nix.invocations`. */
  nixInvocationsReport: number[];
  /** Per run, from the shim's log. */
  nixInvocationsShim: number[];
  /** REST requests per run of bump.ts (median), and what they were in one run. */
  bumpApiRequests: number;
  bumpEndpoints: string[];
  /** open-pr.ts after it, once: what "nothing to do" costs with 50 inputs (undefined without extras). */
  openPrApiRequests: number;
  openPrEndpoints: string[];
  bumpRuns: Measured[];
  openPrRun: Measured | undefined;
  /** How long the fake takes to answer bump.ts's requests on their own (median of three batches). */
  fakeBatchMs: number;
}

const DOWN = { owner: "acme", repo: "fleet" };
const inputName = (i: number) => `in${String(i).padStart(3, "0")}`;

export async function benchNightly(
  ctx: Context,
  options: NightlyOptions = { inputs: NIGHTLY_INPUTS, runs: ctx.runs, extras: true },
): Promise<NightlyResult> {
  const { fake, scratch } = ctx;
  const dir = join(scratch, "nightly");
  const checkout = join(dir, "fleet");
  const reportFile = join(dir, "report.json");
  const eventFile = join(dir, "event.json");
  const shimDir = join(dir, "shim");
  const callLog = join(dir, "nix-calls.log");
  await fake.reset();
  await mkdir(shimDir, { recursive: true });

  const names = Array.from({ length: options.inputs }, (_, i) => inputName(i));
  for (const name of names) {
    await fake.createRepo("acme", name, {
      files: { "flake.nix": `{ outputs = _: { name = "${name}"; }; }\n` },
    });
  }
  const flakeNix = [
    "{",
    ...names.map((name) => `  inputs.${name}.url = "github:acme/${name}?host=localhost";`),
    "  outputs = _: { };",
    "}",
    "",
  ].join("\n");
  await fake.createRepo(DOWN.owner, DOWN.repo, { files: { "flake.nix": flakeNix } });
  await $({ quiet: true })`git clone --quiet ${fake.cloneUrl(DOWN.owner, DOWN.repo)} ${checkout}`;
  await nixLock(checkout, ctx.env);
  const lockText = await readFile(join(checkout, "flake.lock"), "utf8");
  await fake.push(DOWN.owner, DOWN.repo, { "flake.lock": lockText }, "lock");
  // A fresh clone with the lock committed, as a workflow's checkout of main would be.
  await rm(checkout, { recursive: true, force: true });
  await $({ quiet: true })`git clone --quiet ${fake.cloneUrl(DOWN.owner, DOWN.repo)} ${checkout}`;

  const realNix = (await $({ env: ctx.env, quiet: true })`command -v nix`).stdout.trim();
  // The shim's only job is to leave a line per call; it must not change what Nix does.
  await writeFile(join(shimDir, "nix"), `#!/bin/sh\necho "$$ $*" >> '${callLog}'\nexec '${realNix}' "$@"\n`);
  await chmod(join(shimDir, "nix"), 0o755);
  await writeFile(callLog, "");
  const body = {
    schedule: "17 3 * * *",
    repository: { full_name: `${DOWN.owner}/${DOWN.repo}`, default_branch: "main" },
  };
  await writeFile(eventFile, JSON.stringify(body));
  const env: Env = {
    ...ctx.env,
    PATH: `${shimDir}${delimiter}${ctx.env.PATH ?? ""}`,
    GITHUB_ACTIONS: "true",
    GITHUB_EVENT_NAME: "schedule",
    GITHUB_EVENT_PATH: eventFile,
    GITHUB_REPOSITORY: `${DOWN.owner}/${DOWN.repo}`,
    GITHUB_OUTPUT: join(dir, "output"),
    GITHUB_STEP_SUMMARY: join(dir, "summary.md"),
  };
  // Proof the shim is the `nix` the scripts find: one call through it, logged, before counting starts.
  await $({ env, quiet: true })`nix --version`;
  if ((await shimCalls(callLog)) !== 1) {
    throw new RuntimeError(
      `the nix shim in ${shimDir} is not first on PATH; the Nix count would be meaningless`,
    );
  }

  const once = async () => {
    const callsBefore = await shimCalls(callLog);
    const from = fake.requests.length;
    const run = expectSuccess(
      "bump.ts (schedule)",
      await measure(scriptCommand("bump", ["--report", reportFile]), { cwd: checkout, env, scratch }),
    );
    const report = parseReport(await readFile(reportFile, "utf8"), reportFile);
    if (report.changed)
      throw new RuntimeError("the nightly over current inputs changed flake.lock; nothing to measure");
    const requests = apiRequestsSince(fake, from);
    return {
      run,
      report: report.nix.invocations,
      shim: (await shimCalls(callLog)) - callsBefore,
      requests: requests.length,
      endpoints: endpointList(requests),
    };
  };
  await once(); // warm-up, not counted
  const results: Awaited<ReturnType<typeof once>>[] = [];
  for (let i = 0; i < options.runs; i++) results.push(await once());

  // The fake runs one handler at a time and forks git for each, so its own time can be much of the
  // wall time. Measure it alone: the same requests, as bump.ts sends them.
  const fakeBatchMs = options.extras
    ? median([await fakeBatch(ctx, names), await fakeBatch(ctx, names), await fakeBatch(ctx, names)])
    : Number.NaN;

  const from = fake.requests.length;
  const openPrRun = options.extras
    ? expectSuccess(
        "open-pr.ts (schedule)",
        await measure(scriptCommand("open-pr", ["--report", reportFile]), { cwd: checkout, env, scratch }),
      )
    : undefined;
  const openPrRequests = apiRequestsSince(fake, from);
  fake.assertNoViolations();
  await rm(dir, { recursive: true, force: true });

  const wallRunsMs = results.map((r) => r.run.wallMs);
  return {
    inputs: options.inputs,
    wallMedianMs: median(wallRunsMs),
    wallRunsMs,
    nixInvocationsReport: results.map((r) => r.report),
    nixInvocationsShim: results.map((r) => r.shim),
    bumpApiRequests: median(results.map((r) => r.requests)),
    bumpEndpoints: results[0]?.endpoints ?? [],
    openPrApiRequests: openPrRequests.length,
    openPrEndpoints: endpointList(openPrRequests),
    bumpRuns: results.map((r) => r.run),
    openPrRun,
    fakeBatchMs,
  };
}

/**
 * Wall time of the GraphQL requests lib/bump/freshness.ts sends for these repositories (one per
 * GRAPHQL_BATCH), sent from here with plain fetch: what answering one nightly costs the fake by itself.
 */
async function fakeBatch(ctx: Context, repos: readonly string[]): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < repos.length; i += GRAPHQL_BATCH) {
    const body = headsQuery(repos.slice(i, i + GRAPHQL_BATCH).map((repo) => ({ owner: "acme", repo })));
    const response = await fetch(`${ctx.fake.apiUrl}/graphql`, {
      method: "POST",
      headers: { authorization: `bearer ${ctx.fake.token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok || text.includes('"errors"')) {
      throw new RuntimeError(
        `the fake answered ${response.status} to the freshness query: ${text.slice(0, 200)}`,
      );
    }
  }
  return performance.now() - started;
}

async function shimCalls(log: string): Promise<number> {
  return (await readFile(log, "utf8")).split("\n").filter((line) => line !== "").length;
}

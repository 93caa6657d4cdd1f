/**
 * From measurements to what the bench prints: the JSON object (figures judged against issue 5's
 * targets, with everything needed to check them) and the table and details people read. Pure.
 */
import type { ApiResult, ScenarioCount } from "./api.ts";
import { type Judged, judge, type Row, row } from "./figures.ts";
import type { LockDiffCase, LockDiffResult } from "./lock-diff.ts";
import type { NightlyResult } from "./nightly.ts";
import type { OverheadResult } from "./overhead.ts";
import { max, median, round } from "./stats.ts";

export const TARGETS = {
  // The target the project set for the overhead once GitHub questions came before Nix (60 ms before them).
  overheadMs: { op: "<=", limit: 200 },
  notify: { op: "<=", limit: 1 },
  openPrCreate: { op: "<=", limit: 6 },
  openPrUpdate: { op: "<=", limit: 6 },
  openPrNoop: { op: "<=", limit: 2 },
  nightlyCurrent: { op: "<=", limit: 2 },
  nightlyNix: { op: "=", limit: 0 },
  nightlyWallMs: { op: "<", limit: 1000 },
  /** bump.ts's own requests on a nightly with nothing to do, for 50 and for 200 inputs. */
  nightlyBumpRequests: { op: "<=", limit: 2 },
  lockDiffMs: { op: "<", limit: 20 },
} as const;

export interface Machine {
  bun: string;
  nix: string;
  cpus: number;
  cpu_model: string;
  platform: string;
  loadavg_before: number[];
  loadavg_after: number[];
}

/** The commit measured, and which of the measured files differed from it. */
export interface Source {
  commit: string;
  uncommitted: string[];
}

export interface Measurements {
  runs: number;
  overhead: OverheadResult;
  api: ApiResult;
  nightly: NightlyResult;
  /** The same nightly with 200 inputs, once: its request count. */
  nightlyLarge: NightlyResult;
  lockDiff: LockDiffResult;
  /** What a bare child of the launcher reports: the lowest peak RSS the method can show. */
  floorRssBytes: number[];
  machine: Machine;
  source: Source;
  notes: string[];
  totalSeconds: number;
}

const mb = (bytes: number) => round(bytes / 1024 / 1024, 1);
const ms = (value: number) => `${round(value)} ms`;

function countJson(count: ScenarioCount, target: Judged["target"]) {
  return {
    ...judge(count.requests, target),
    by_script: count.byScript,
    endpoints: count.endpoints,
    sequence: count.sequence,
  };
}

function countText(count: ScenarioCount): string {
  const parts = Object.entries(count.byScript);
  if (parts.length < 2) return String(count.requests);
  return `${count.requests} (${parts.map(([script, n]) => `${script} ${n}`).join(" + ")})`;
}

function lockDiffJson(c: LockDiffCase) {
  return {
    ...judge(round(c.diffMs, 3), TARGETS.lockDiffMs),
    nodes: c.nodes,
    iterations: c.iterations,
    parse_pair_ms: round(c.parsePairMs, 3),
    found: c.found,
  };
}

export function benchJson(m: Measurements) {
  const { overhead, api, nightly, nightlyLarge, lockDiff } = m;
  const rssOf = (script: ApiResult["runs"][number]["script"]) =>
    api.runs.filter((r) => r.script === script).map((r) => r.run.maxRssBytes);
  const rss = {
    bump: [...overhead.bumpRssBytes, ...rssOf("bump")],
    bumpNoNix: nightly.bumpRuns.map((r) => r.maxRssBytes),
    openPr: [...rssOf("open-pr"), ...(nightly.openPrRun ? [nightly.openPrRun.maxRssBytes] : [])],
    notify: rssOf("notify"),
    nix: overhead.nixRssBytes,
    floor: m.floorRssBytes,
  };
  const nixCalls = Math.max(...nightly.nixInvocationsReport, ...nightly.nixInvocationsShim);
  return {
    schema: 1,
    at: new Date().toISOString(),
    machine: m.machine,
    runs: m.runs,
    source: m.source,
    notes: m.notes,
    bump_overhead_ms: {
      ...judge(round(overhead.overheadMs), TARGETS.overheadMs),
      bump_median_ms: round(overhead.bumpMedianMs),
      nix_median_ms: round(overhead.nixMedianMs),
      bump_runs_ms: overhead.bumpRunsMs.map((t) => round(t)),
      nix_runs_ms: overhead.nixRunsMs.map((t) => round(t)),
      nix_command: overhead.nixCommand,
      bump_cpu_ms: round(overhead.bumpCpuMs),
      nix_cpu_ms: round(overhead.nixCpuMs),
      bump_api_requests: overhead.bumpApiRequests,
      bump_api_fake_ms: round(overhead.bumpApiFakeMs),
      breakdown: {
        bun_start_ms: round(overhead.breakdown.bunStartMs),
        bump_help_ms: round(overhead.breakdown.bumpHelpMs),
        nix_version_ms: round(overhead.breakdown.nixVersionMs),
        git_rev_parse_ms: round(overhead.breakdown.gitRevParseMs),
        import_ms: Object.fromEntries(
          Object.entries(overhead.breakdown.imports).map(([k, t]) => [k, round(t)]),
        ),
      },
      phases: {
        runs: overhead.phases.runs,
        before_nix_ms: round(overhead.phases.beforeNixMs),
        fake_answer_ms: round(overhead.phases.fakeAnswerMs),
        nix_version_ms: round(overhead.phases.nixVersionMs),
        between_ms: round(overhead.phases.betweenMs),
        nix_lock_ms: round(overhead.phases.nixLockMs),
        raw_nix_lock_ms: round(overhead.phases.rawNixLockMs),
        after_nix_ms: round(overhead.phases.afterNixMs),
      },
    },
    api_requests: {
      notify: countJson(api.notify, TARGETS.notify),
      open_pr_create: countJson(api.openPrCreate, TARGETS.openPrCreate),
      open_pr_update: countJson(api.openPrUpdate, TARGETS.openPrUpdate),
      open_pr_noop: countJson(api.openPrNoop, TARGETS.openPrNoop),
      nightly_current: countJson(api.nightlyCurrent, TARGETS.nightlyCurrent),
      context: {
        bump_dispatch: { value: api.bumpDispatch.requests, endpoints: api.bumpDispatch.endpoints },
        nightly_close_merged: {
          value: api.nightlyClose.requests,
          by_script: api.nightlyClose.byScript,
          endpoints: api.nightlyClose.endpoints,
        },
        nightly_current_50_inputs: {
          value: nightly.bumpApiRequests + nightly.openPrApiRequests,
          by_script: { bump: nightly.bumpApiRequests, "open-pr": nightly.openPrApiRequests },
          endpoints: [...nightly.bumpEndpoints, ...nightly.openPrEndpoints],
        },
      },
    },
    nightly_noop: {
      inputs: nightly.inputs,
      wall_ms: judge(round(nightly.wallMedianMs), TARGETS.nightlyWallMs),
      wall_runs_ms: nightly.wallRunsMs.map((t) => round(t)),
      // bump.ts's requests (open-pr's are in api_requests.context), by number of inputs.
      api_requests: {
        [nightly.inputs]: judge(nightly.bumpApiRequests, TARGETS.nightlyBumpRequests),
        [nightlyLarge.inputs]: judge(nightlyLarge.bumpApiRequests, TARGETS.nightlyBumpRequests),
      },
      endpoints: {
        [nightly.inputs]: nightly.bumpEndpoints,
        [nightlyLarge.inputs]: nightlyLarge.bumpEndpoints,
      },
      wall_ms_200_inputs: round(nightlyLarge.wallMedianMs),
      // The same requests sent to the fake without bump.ts: its own share of the wall time.
      fake_batch_ms: round(nightly.fakeBatchMs),
      nix_invocations: {
        ...judge(nixCalls, TARGETS.nightlyNix),
        report: nightly.nixInvocationsReport,
        shim: nightly.nixInvocationsShim,
      },
    },
    lock_diff_ms: {
      synthetic_1000: lockDiffJson(lockDiff.synthetic),
      real: lockDiffJson(lockDiff.real),
    },
    peak_rss_mb: {
      bump: {
        value: mb(max(rss.bump)),
        median: mb(median(rss.bump)),
        includes: "its Nix child",
        runs: rss.bump.length,
      },
      bump_without_nix: {
        value: mb(max(rss.bumpNoNix)),
        median: mb(median(rss.bumpNoNix)),
        runs: rss.bumpNoNix.length,
      },
      open_pr: { value: mb(max(rss.openPr)), median: mb(median(rss.openPr)), runs: rss.openPr.length },
      notify: { value: mb(max(rss.notify)), median: mb(median(rss.notify)), runs: rss.notify.length },
      nix_raw: { value: mb(max(rss.nix)), median: mb(median(rss.nix)), runs: rss.nix.length },
      floor: { value: mb(max(rss.floor)), note: "what a child of the launcher reports at least" },
    },
    total_s: m.totalSeconds,
  };
}

export type BenchJson = ReturnType<typeof benchJson>;

/** The table rows and the details below it, for people. */
export function benchText(json: BenchJson, m: Measurements): { rows: Row[]; details: string[] } {
  const { api, nightly } = m;
  const o = json.bump_overhead_ms;
  const a = json.api_requests;
  const n = json.nightly_noop;
  const d = json.lock_diff_ms;
  const r = json.peak_rss_mb;
  const rows: Row[] = [
    row("bump_overhead_ms", ms(o.value), o, "ms"),
    row(`  bump.ts x (median of ${m.runs})`, ms(o.bump_median_ms)),
    row(`  ${o.nix_command} (median of ${m.runs})`, ms(o.nix_median_ms)),
    row(`  of which the fake answering its ${o.bump_api_requests} REST request`, ms(o.bump_api_fake_ms)),
    row("api_requests.notify (1 downstream)", countText(api.notify), a.notify),
    row("api_requests.open_pr_create", countText(api.openPrCreate), a.open_pr_create),
    row("api_requests.open_pr_update (target moved)", countText(api.openPrUpdate), a.open_pr_update),
    row("api_requests.open_pr_noop (same report again)", countText(api.openPrNoop), a.open_pr_noop),
    row("api_requests.nightly_current (bump + open-pr)", countText(api.nightlyCurrent), a.nightly_current),
    row("  bump.ts on a dispatch (SHA checks)", countText(api.bumpDispatch)),
    row("  nightly that closes a merged PR", countText(api.nightlyClose)),
    row(
      `  nightly, ${nightly.inputs} current inputs`,
      `${a.context.nightly_current_50_inputs.value} (bump ${nightly.bumpApiRequests} + open-pr ${nightly.openPrApiRequests})`,
    ),
    row(
      `nightly_noop.wall_ms (${n.inputs} inputs, median of ${m.runs})`,
      ms(n.wall_ms.value),
      n.wall_ms,
      "ms",
    ),
    row(`  the fake alone answering the same GraphQL request(s)`, ms(n.fake_batch_ms)),
    ...Object.entries(n.api_requests).map(([inputs, judged]) =>
      row(`nightly_noop.api_requests (bump.ts, ${inputs} inputs)`, String(judged.value), judged),
    ),
    row(`  wall time with ${m.nightlyLarge.inputs} inputs (one run)`, ms(n.wall_ms_200_inputs)),
    row(
      "nightly_noop.nix_invocations (report / shim)",
      `${max(n.nix_invocations.report)} / ${max(n.nix_invocations.shim)}`,
      n.nix_invocations,
    ),
    row(
      `lock_diff_ms.synthetic_1000 (${d.synthetic_1000.nodes} nodes)`,
      `${d.synthetic_1000.value} ms`,
      d.synthetic_1000,
      "ms",
    ),
    row("  parseLock of both locks (not in the target)", `${d.synthetic_1000.parse_pair_ms} ms`),
    row(`lock_diff_ms.real (${d.real.nodes} nodes)`, `${d.real.value} ms`, d.real, "ms"),
    row("  parseLock of both locks (not in the target)", `${d.real.parse_pair_ms} ms`),
    row("peak_rss_mb.bump (with its Nix child)", `${r.bump.value} MB`),
    row("peak_rss_mb.bump_without_nix (nightly)", `${r.bump_without_nix.value} MB`),
    row("peak_rss_mb.open_pr", `${r.open_pr.value} MB`),
    row("peak_rss_mb.notify", `${r.notify.value} MB`),
    row(`  raw ${o.nix_command}`, `${r.nix_raw.value} MB`),
    row("  floor (a bare child of the launcher)", `${r.floor.value} MB`),
  ];

  const bd = o.breakdown;
  const ph = o.phases;
  const details = [
    "",
    `Inside bump.ts x (${ph.runs} more runs with a timing shim as \`nix\`, medians):`,
    `  start → nix --version        ${ms(ph.before_nix_ms)}  Bun, imports, git, Octokit, ${o.bump_api_requests} REST request (the fake: ${ms(ph.fake_answer_ms)})`,
    `  nix --version                ${ms(ph.nix_version_ms)}`,
    `  → nix flake lock             ${ms(ph.between_ms)}`,
    `  nix flake lock               ${ms(ph.nix_lock_ms)}  (raw, through the same shim: ${ms(ph.raw_nix_lock_ms)})`,
    `  Nix done → exit              ${ms(ph.after_nix_ms)}  checks, diff, report, lock written`,
    "Fresh-process costs (medians; 'import X' is `bun -e 'import \"X\"'` minus `bun -e 0`):",
    `  Bun start (bun -e 0)            ${ms(bd.bun_start_ms)}`,
    `  bump.ts --help (start+imports)  ${ms(bd.bump_help_ms)}`,
    `  nix --version                   ${ms(bd.nix_version_ms)}`,
    `  git rev-parse --show-toplevel   ${ms(bd.git_rev_parse_ms)}`,
    ...Object.entries(bd.import_ms).map(([name, t]) => `  import ${name.padEnd(38)} +${ms(t)}`),
    `  CPU time: bump.ts ${ms(o.bump_cpu_ms)} (with Nix) vs raw Nix ${ms(o.nix_cpu_ms)}`,
    "",
    "Endpoints per scenario:",
    ...Object.entries({
      notify: a.notify.endpoints,
      open_pr_create: a.open_pr_create.endpoints,
      open_pr_update: a.open_pr_update.endpoints,
      open_pr_noop: a.open_pr_noop.endpoints,
      nightly_current: a.nightly_current.endpoints,
      bump_dispatch: a.context.bump_dispatch.endpoints,
      nightly_close_merged: a.context.nightly_close_merged.endpoints,
      nightly_current_50_inputs: a.context.nightly_current_50_inputs.endpoints,
    }).map(([name, list]) => `  ${name}: ${list.join(", ") || "(none)"}`),
    "",
    `Measured: ${json.source.commit.slice(0, 12)}${json.source.uncommitted.length > 0 ? ` with uncommitted changes to ${json.source.uncommitted.join(", ")}` : ""}; Bun ${json.machine.bun}, Nix ${json.machine.nix}, ${json.machine.cpus} × ${json.machine.cpu_model}.`,
    ...m.notes.map((note) => `Note: ${note}`),
  ];
  return { rows, details };
}

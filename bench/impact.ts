/**
 * impact_ms: host impact (lib/impact/evaluate.ts, both sides evaluated, closures read and diffed) on a
 * synthetic fleet of 20 hosts × 2,000 derivations sharing most of their closure, against one bare
 * `nix eval` of the same 20 drvPaths; and the in-process diff of two 2,000-derivation closures.
 * Two bumps of the same fleet:
 * - worst case: the bump moves `pkg0`, on which every shared derivation depends, so every
 *   derivation of every host changes and the second side shares nothing with the first: two
 *   evaluations of everything, which no implementation can bring under about twice one evaluation;
 * - common case: the bump moves a leaf package that three of the twenty hosts use, so the sides
 *   share almost every derivation (Nix evaluates and hashes each once per process).
 * Runs alone too: `bun bench/impact.ts [RUNS]`.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { $ } from "zx";
import { RuntimeError } from "../lib/core/errors.ts";
import { detectNix } from "../lib/flake/nix.ts";
import { ClosureDiffer, type DrvGraph } from "../lib/impact/closure.ts";
import { computeImpact, evalArgs } from "../lib/impact/evaluate.ts";
import { defaultJobs, MemoryGuard, Slots } from "../lib/impact/jobs.ts";
import { benchNixVariant, type NixVariant, nixTestEnv, nixVariants } from "../tests/support/nix.ts";
import { cleanEnv } from "../tests/support/run.ts";
import {
  DEFAULT_FLEET,
  type FleetBump,
  type FleetSize,
  type PreparedFleet,
  prepareModuleFleet,
} from "./module-fleet.ts";
import { median, round } from "./stats.ts";

export type Scenario = "worst" | "leaf";

export interface ImpactResult {
  hosts: number;
  derivationsPerHost: number;
  runs: number;
  /** The worst case: every derivation moves. */
  impactMs: number;
  bareEvalMs: number;
  ratio: number;
  diffMs: number;
  changedPackages: number;
  /** The worst case in full. */
  worst: ScenarioResult;
  /** The common case: a leaf package of a few hosts moves. */
  leaf: ScenarioResult;
}

export interface ScenarioResult {
  /** Timed runs of the impact and of the bare evaluation, alternating (medians over these). */
  runs: number;
  impactMs: number;
  bareEvalMs: number;
  ratio: number;
  changedHosts: number;
  changedPackages: number;
  /** `nix eval` processes at once in the impact runs. */
  jobs: number;
  /** The same impact with one process (as before sharding), when measured. */
  sequential?: { impactMs: number; ratio: number; runs: number; peakRssMb: number };
  /** The most the impact's Nix processes held at once, and the bare evaluation's. */
  peakRssMb: { impact: number; bare: number };
  /** The machine's 1-minute load before and after. */
  load: [number, number];
  /** Whether the sharded runs gave exactly the sequential run's impact (when both ran). */
  identical?: boolean;
}

const HOSTS = 20;
const SHARED = 1_900;
const UNIQUE = 99;
const MOVED = 50;
/** Hosts that use the leaf package in the common case. */
const LEAF_HOSTS = 3;

function fleetFlake(upstream: string, scenario: Scenario): string {
  const worst = scenario === "worst";
  return `{
  inputs.tool.url = "path:${upstream}";
  outputs = { self, tool }:
    let
      mk = name: deps: derivation { inherit name deps; system = "x86_64-linux"; builder = "/bin/false"; };
      version = i: if ${worst} && i < ${MOVED} then tool.lib.version else "1.0";
      leaf = n: if !${worst} && n < ${LEAF_HOSTS} then [ (mk "tool-\${tool.lib.version}" [ ]) ] else [ ];
      shared = builtins.genList (i: mk "pkg\${toString i}-\${version i}"
        (if i == 0 then [ ] else [ (builtins.elemAt shared (i / 2)) ])) ${SHARED};
      host = n: {
        config.system.build.toplevel = mk "nixos-system-h\${toString n}-1.0"
          (shared ++ leaf n ++ builtins.genList (j: mk "h\${toString n}-u\${toString j}-1.0" [ ]) ${UNIQUE});
      };
    in {
      nixosConfigurations = builtins.listToAttrs (builtins.genList (n: { name = "h\${toString n}"; value = host n; }) ${HOSTS});
    };
}
`;
}

function upstreamFlake(version: string): string {
  return `{ outputs = _: { lib.version = "${version}"; }; }\n`;
}

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const start = performance.now();
  const value = await fn();
  return [performance.now() - start, value];
}

/** A closure of `size` derivations and the same with `moved` versions bumped, as Nix would show it. */
export function syntheticGraph(size: number, moved: number): { graph: DrvGraph; from: string; to: string } {
  const graph: DrvGraph = new Map();
  const build = (side: string, bump: boolean) => {
    const paths: string[] = [];
    for (let i = 0; i < size - 1; i++) {
      const version = bump && i < moved ? "2.0" : "1.0";
      const path = `/nix/store/${side}${String(i).padStart(31, "0")}-pkg${i}-${version}.drv`;
      graph.set(path, {
        name: `pkg${i}-${version}`,
        fixedOutput: false,
        inputDrvs: i > 0 ? [paths[i >> 1] ?? ""] : [],
      });
      paths.push(path);
    }
    const root = `/nix/store/${side}${"r".repeat(31)}-nixos-system-1.0.drv`;
    graph.set(root, { name: "nixos-system-1.0", fixedOutput: false, inputDrvs: paths });
    return root;
  };
  return { graph, from: build("a", false), to: build("b", true) };
}

/** The synthetic fleet in `dir`, locked before and after the scenario's bump. */
async function prepareSynthetic(
  dir: string,
  scenario: Scenario,
  env: NodeJS.ProcessEnv,
): Promise<PreparedFleet> {
  const up = join(dir, "up");
  const fleet = join(dir, "fleet");
  await $`mkdir -p ${up} ${fleet}`;
  await writeFile(join(fleet, "flake.nix"), fleetFlake(up, scenario));
  const lockAt = async (version: string) => {
    await writeFile(join(up, "flake.nix"), upstreamFlake(version));
    await $({
      cwd: fleet,
      env,
      quiet: true,
    })`nix --extra-experimental-features ${"nix-command flakes"} flake lock --update-input tool ${fleet}`;
    return readFile(join(fleet, "flake.lock"), "utf8");
  };
  // The upstream's source stays in the store under each lock's narHash, so both locks resolve.
  const baseLock = await lockAt("1.0");
  const newLock = await lockAt("2.0");
  return { flakeDir: fleet, baseLock, newLock };
}

export interface CompareOptions {
  /** `nix eval` processes at once for the impact runs. */
  jobs: number;
  /** Runs of the sequential impact (one process), for comparison; 0 for none. */
  sequentialRuns: number;
}

const MB = 2 ** 20;

/** Wall time and the most its Nix processes held at once, sampled as host impact samples its own. */
async function timedBare(expr: string, env: NodeJS.ProcessEnv): Promise<{ ms: number; peakBytes: number }> {
  const guard = new MemoryGuard(new Slots(1), { reserveBytes: 0 });
  const start = performance.now();
  const proc = $({ env, quiet: true })`nix ${evalArgs(expr)}`;
  const unwatch = guard.watch(proc.pid, () => {});
  await proc.finally(unwatch);
  const ms = performance.now() - start;
  guard.dispose();
  return { ms, peakBytes: guard.peakBytes };
}

/**
 * Median impact and bare-eval times of one prepared fleet, measured alternately so load hits both
 * alike; the bare evaluation is one `nix eval` of every host's toplevel drvPath with the new lock.
 */
export async function compareWithBare(
  fleet: PreparedFleet,
  runs: number,
  env: NodeJS.ProcessEnv,
  opts: CompareOptions,
): Promise<ScenarioResult> {
  const loadBefore = loadavg()[0] ?? 0;
  await writeFile(join(fleet.flakeDir, "flake.lock"), fleet.newLock);
  const nix = await detectNix({ env });
  const bareExpr = `map (h: h.config.system.build.toplevel.drvPath) (builtins.attrValues (builtins.getFlake "path:${fleet.flakeDir}").nixosConfigurations)`;
  const impact = (jobs: number) =>
    computeImpact({
      flakeDir: fleet.flakeDir,
      baseLock: fleet.baseLock,
      sides: [{ name: "bump", rev: "bench", lock: fleet.newLock }],
      only: null,
      nix: nix.version,
      env,
      jobs,
    });
  // Warm-up: writes every .drv once, so both measure evaluation, not the first store writes.
  await timedBare(bareExpr, env);
  const warm = await impact(opts.jobs);
  const changed = (warm.impact.inputs[0]?.hosts ?? []).filter((host) => host.status === "changed");
  const packages = changed[0]?.packages;
  const changedPackages = (packages?.changed.length ?? 0) + (packages?.added.length ?? 0);
  const bare: { ms: number; peakBytes: number }[] = [];
  const sharded: { ms: number; peakBytes: number }[] = [];
  const sequential: { ms: number; peakBytes: number }[] = [];
  let identical: boolean | undefined;
  for (let i = 0; i < runs; i++) {
    bare.push(await timedBare(bareExpr, env));
    const [ms, run] = await timed(() => impact(opts.jobs));
    sharded.push({ ms, peakBytes: run.stats.peakRssBytes });
    if (i < opts.sequentialRuns) {
      const [one, alone] = await timed(() => impact(1));
      sequential.push({ ms: one, peakBytes: alone.stats.peakRssBytes });
      identical = (identical ?? true) && JSON.stringify(alone.impact) === JSON.stringify(run.impact);
    }
  }
  const bareEvalMs = median(bare.map((run) => run.ms));
  const impactMs = median(sharded.map((run) => run.ms));
  const peak = (list: { peakBytes: number }[]) => round(Math.max(...list.map((run) => run.peakBytes)) / MB);
  return {
    runs,
    impactMs: round(impactMs),
    bareEvalMs: round(bareEvalMs),
    ratio: round(impactMs / bareEvalMs, 2),
    changedHosts: changed.length,
    changedPackages,
    jobs: opts.jobs,
    ...(sequential.length > 0
      ? {
          sequential: {
            impactMs: round(median(sequential.map((run) => run.ms))),
            ratio: round(median(sequential.map((run) => run.ms)) / bareEvalMs, 2),
            runs: sequential.length,
            peakRssMb: peak(sequential),
          },
        }
      : {}),
    peakRssMb: { impact: peak(sharded), bare: peak(bare) },
    load: [round(loadBefore, 2), round(loadavg()[0] ?? 0, 2)],
    ...(identical === undefined ? {} : { identical }),
  };
}

async function benchScenario(
  runs: number,
  env: NodeJS.ProcessEnv,
  scenario: Scenario,
): Promise<ScenarioResult> {
  const dir = await mkdtemp(join(tmpdir(), "flake-bump-bench-impact-"));
  try {
    // Today's one process beside the sharded runs, every run: "no slower than before" is judged here.
    return await compareWithBare(await prepareSynthetic(dir, scenario, env), runs, env, {
      jobs: defaultJobs(),
      sequentialRuns: runs,
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The module-system fleet on one Nix: both bumps. */
export interface FleetResult {
  nix: string;
  size: FleetSize;
  packages: ScenarioResult;
  monitoring: ScenarioResult;
}

/** Runs of the module-system fleet: each takes tens of seconds, so at most this many. */
const FLEET_RUNS = 5;
/** The module fleet's targets: impact against one bare evaluation, on this 2-core machine. */
const FLEET_TARGET = 1.3;

/**
 * The Nix versions the module fleet runs on: the system's and the newest the tests know (the
 * oldest and the newest, as the action installs the newest), or exactly what FLAKE_BUMP_TEST_NIX
 * names (`system,2.26`), as for the tests.
 */
export function benchNixVariants(): NixVariant[] {
  const all = nixVariants();
  if ((process.env.FLAKE_BUMP_TEST_NIX ?? "").trim() !== "") return all;
  return [...new Set([all[0], all.at(-1)])].filter((variant) => variant !== undefined);
}

/** The module-system fleet, both bumps, on the system's and the newest Nix (`benchNixVariants`). */
export async function benchModuleFleet(
  runs: number,
  env: NodeJS.ProcessEnv,
  size: FleetSize = DEFAULT_FLEET,
  log: (line: string) => void = () => {},
): Promise<FleetResult[]> {
  const results: FleetResult[] = [];
  for (const variant of benchNixVariants()) {
    const nixEnv = { ...env, ...variant.env };
    const bumps: Partial<Record<FleetBump, ScenarioResult>> = {};
    for (const bump of ["packages", "monitoring"] as const) {
      log(
        `bench: module-system fleet (${size.hosts} hosts × ${size.modules} modules), ${bump} bump, ${variant.name}…`,
      );
      const dir = await mkdtemp(join(tmpdir(), "flake-bump-bench-fleet-"));
      try {
        // The variant's Nix, not whatever PATH the caller's env had first.
        const measured = (await detectNix({ env: nixEnv })).version.version;
        if (measured !== variant.version) {
          throw new RuntimeError(
            `the module-system fleet meant to measure ${variant.name} found Nix ${measured} on PATH; pass an env without another Nix's PATH`,
          );
        }
        const fleet = await prepareModuleFleet(dir, size, bump, nixEnv);
        bumps[bump] = await compareWithBare(fleet, Math.min(runs, FLEET_RUNS), nixEnv, {
          jobs: defaultJobs(),
          sequentialRuns: 1,
        });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
    const { packages, monitoring } = bumps;
    if (packages && monitoring) results.push({ nix: variant.name, size, packages, monitoring });
  }
  return results;
}

export async function benchImpact(runs: number, env: NodeJS.ProcessEnv): Promise<ImpactResult> {
  const worst = await benchScenario(runs, env, "worst");
  const leaf = await benchScenario(runs, env, "leaf");
  const { graph, from, to } = syntheticGraph(2_000, MOVED);
  const diffTimes: number[] = [];
  for (let i = 0; i < 20; i++) {
    // A new differ each time: the measured diff computes both package sets from the graph.
    diffTimes.push((await timed(async () => new ClosureDiffer(graph).diff(from, to)))[0]);
  }
  return {
    hosts: HOSTS,
    derivationsPerHost: SHARED + UNIQUE + 1,
    runs,
    impactMs: worst.impactMs,
    bareEvalMs: worst.bareEvalMs,
    ratio: worst.ratio,
    diffMs: round(median(diffTimes), 2),
    changedPackages: worst.changedPackages,
    worst,
    leaf,
  };
}

/** Sharded slower than one process, beyond noise (5 %)? */
const slower = (result: ScenarioResult) =>
  result.sequential !== undefined && result.impactMs > result.sequential.impactMs * 1.05;

/** The impact figures that miss their target, by name. */
export function impactMisses(result: ImpactResult, fleets: readonly FleetResult[] = []): string[] {
  return [
    ...(result.ratio > 1.5 ? ["impact_ms.worst_case"] : []),
    ...(result.leaf.ratio > 1.5 ? ["impact_ms.leaf"] : []),
    ...(result.diffMs >= 50 ? ["impact_closure_diff_ms"] : []),
    ...(slower(result.worst) ? ["impact_ms.worst_case (slower than one process)"] : []),
    ...(slower(result.leaf) ? ["impact_ms.leaf (slower than one process)"] : []),
    ...fleets.flatMap((fleet) =>
      (["packages", "monitoring"] as const).flatMap((bump) => [
        ...(fleet[bump].ratio > FLEET_TARGET ? [`impact_ms.module_fleet.${bump} (${fleet.nix})`] : []),
        ...(fleet[bump].identical === false
          ? [`impact.module_fleet.${bump} differs from one process (${fleet.nix})`]
          : []),
      ]),
    ),
  ];
}

/** `jobs 2: 1.2 × bare; one process 1.9 ×; peak 800 MB (bare 400 MB); load 0.5 → 1.2`. */
function scenarioDetail(result: ScenarioResult): string {
  const one = result.sequential;
  return [
    `${result.jobs} processes at once`,
    ...(one ? [`one process ${one.impactMs} ms (${one.ratio} ×, median of ${one.runs})`] : []),
    `peak RSS ${result.peakRssMb.impact} MB${one ? ` (one process ${one.peakRssMb} MB)` : ""}, bare ${result.peakRssMb.bare} MB`,
    ...(result.identical === undefined
      ? []
      : [result.identical ? "same impact as one process" : "DIFFERENT impact from one process"]),
    `load ${result.load[0]} → ${result.load[1]}`,
  ].join("; ");
}

export function fleetLines(fleets: readonly FleetResult[]): string[] {
  return fleets.flatMap((fleet) =>
    (["packages", "monitoring"] as const).map((bump) => {
      const result = fleet[bump];
      const what =
        bump === "packages" ? "every package moves" : `a module of ${result.changedHosts} hosts moves`;
      return `impact_ms, module-system fleet, ${what} (${fleet.nix}, ${fleet.size.hosts} hosts × ${fleet.size.modules} modules): ${result.impactMs} ms median of ${result.runs} runs; bare nix eval ${result.bareEvalMs} ms; ratio ${result.ratio} (target ≤ ${FLEET_TARGET}) ${result.ratio <= FLEET_TARGET ? "ok" : "MISS"}\n  ${scenarioDetail(result)}`;
    }),
  );
}

export function impactLines(result: ImpactResult): string[] {
  const { leaf } = result;
  return [
    `impact_ms, worst case (every derivation moves): ${result.impactMs} ms median over ${result.runs} runs (${result.hosts} hosts × ${result.derivationsPerHost} derivations, ${result.changedPackages} packages moved per host); bare nix eval of the 20 drvPaths ${result.bareEvalMs} ms; ratio ${result.ratio} (target ≤ 1.5) ${result.ratio <= 1.5 ? "ok" : "MISS (two full evaluations: ~2 is the floor here)"}`,
    `  ${scenarioDetail(result.worst)}`,
    `impact_ms, common case (a leaf package of ${leaf.changedHosts} hosts moves): ${leaf.impactMs} ms median over ${result.runs} runs; bare nix eval ${leaf.bareEvalMs} ms; ratio ${leaf.ratio} (target ≤ 1.5) ${leaf.ratio <= 1.5 ? "ok" : "MISS"}`,
    `  ${scenarioDetail(leaf)}`,
    `impact closure diff (2,000 derivations each side): ${result.diffMs} ms median (target < 50) ${result.diffMs < 50 ? "ok" : "MISS"}`,
  ];
}

/** `12x1600` → `{ hosts: 12, modules: 1600 }`. */
export function parseFleetSize(text: string): FleetSize | undefined {
  const match = /^(\d+)x(\d+)$/.exec(text);
  return match ? { hosts: Number(match[1]), modules: Number(match[2]) } : undefined;
}

if (import.meta.main) {
  await using nixEnv = nixTestEnv();
  const runs = Number(process.argv[2] ?? "5");
  const size = parseFleetSize(process.argv[3] ?? "") ?? DEFAULT_FLEET;
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const fleets = await benchModuleFleet(runs, cleanEnv({ ...nixEnv }), size, log);
  // The same Nix as `bun run bench` (FLAKE_BUMP_BENCH_NIX, else current Nix when set up).
  const { variant, note } = benchNixVariant(process.env.FLAKE_BUMP_BENCH_NIX);
  log(`bench: measuring with ${variant.name}${note === undefined ? "" : ` (${note})`}`);
  const result = await benchImpact(runs, cleanEnv({ ...nixEnv, ...variant.env }));
  process.stderr.write(`${[...impactLines(result), ...fleetLines(fleets)].join("\n")}\n`);
  process.stdout.write(`${JSON.stringify({ synthetic: result, moduleFleet: fleets }, null, 2)}\n`);
}

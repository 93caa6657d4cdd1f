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
import { tmpdir } from "node:os";
import { join } from "node:path";
import { $ } from "zx";
import { detectNix } from "../lib/flake/nix.ts";
import { ClosureDiffer, type DrvGraph } from "../lib/impact/closure.ts";
import { computeImpact, evalArgs } from "../lib/impact/evaluate.ts";
import { benchNixVariant, nixTestEnv } from "../tests/support/nix.ts";
import { cleanEnv } from "../tests/support/run.ts";
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
  /** The common case: a leaf package of a few hosts moves. */
  leaf: ScenarioResult;
}

export interface ScenarioResult {
  impactMs: number;
  bareEvalMs: number;
  ratio: number;
  changedHosts: number;
  changedPackages: number;
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

/** Median impact and bare-eval times of one scenario, measured alternately so load hits both alike. */
async function benchScenario(
  runs: number,
  env: NodeJS.ProcessEnv,
  scenario: Scenario,
): Promise<ScenarioResult> {
  const dir = await mkdtemp(join(tmpdir(), "flake-bump-bench-impact-"));
  try {
    const up = join(dir, "up");
    const fleet = join(dir, "fleet");
    await $`mkdir -p ${up} ${fleet}`;
    await writeFile(join(fleet, "flake.nix"), fleetFlake(up, scenario));
    const nix = await detectNix({ env });
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
    await writeFile(join(fleet, "flake.lock"), newLock);
    const bareExpr = `map (h: h.config.system.build.toplevel.drvPath) (builtins.attrValues (builtins.getFlake "path:${fleet}").nixosConfigurations)`;
    const bare = () => $({ env, quiet: true })`nix ${evalArgs(bareExpr)}`;
    const impact = () =>
      computeImpact({
        flakeDir: fleet,
        baseLock,
        sides: [{ name: "tool", rev: "bench", lock: newLock }],
        only: null,
        nix: nix.version,
        env,
      });
    // Warm-up: writes every .drv once, so both measure evaluation, not the first store writes.
    await bare();
    const warm = await impact();
    const changed = (warm.impact.inputs[0]?.hosts ?? []).filter((host) => host.status === "changed");
    const packages = changed[0]?.packages;
    const changedPackages = (packages?.changed.length ?? 0) + (packages?.added.length ?? 0);
    const bareTimes: number[] = [];
    const impactTimes: number[] = [];
    for (let i = 0; i < runs; i++) {
      bareTimes.push((await timed(bare))[0]);
      impactTimes.push((await timed(impact))[0]);
    }
    const impactMs = median(impactTimes);
    const bareEvalMs = median(bareTimes);
    return {
      impactMs: round(impactMs),
      bareEvalMs: round(bareEvalMs),
      ratio: round(impactMs / bareEvalMs, 2),
      changedHosts: changed.length,
      changedPackages,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
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
    leaf,
  };
}

/** The impact figures that miss their target, by name. */
export function impactMisses(result: ImpactResult): string[] {
  return [
    ...(result.ratio > 1.5 ? ["impact_ms.worst_case"] : []),
    ...(result.leaf.ratio > 1.5 ? ["impact_ms.leaf"] : []),
    ...(result.diffMs >= 50 ? ["impact_closure_diff_ms"] : []),
  ];
}

export function impactLines(result: ImpactResult): string[] {
  const { leaf } = result;
  return [
    `impact_ms, worst case (every derivation moves): ${result.impactMs} ms median over ${result.runs} runs (${result.hosts} hosts × ${result.derivationsPerHost} derivations, ${result.changedPackages} packages moved per host); bare nix eval of the 20 drvPaths ${result.bareEvalMs} ms; ratio ${result.ratio} (target ≤ 1.5) ${result.ratio <= 1.5 ? "ok" : "MISS (two full evaluations: ~2 is the floor here)"}`,
    `impact_ms, common case (a leaf package of ${leaf.changedHosts} hosts moves): ${leaf.impactMs} ms median over ${result.runs} runs; bare nix eval ${leaf.bareEvalMs} ms; ratio ${leaf.ratio} (target ≤ 1.5) ${leaf.ratio <= 1.5 ? "ok" : "MISS"}`,
    `impact closure diff (2,000 derivations each side): ${result.diffMs} ms median (target < 50) ${result.diffMs < 50 ? "ok" : "MISS"}`,
  ];
}

if (import.meta.main) {
  await using nixEnv = nixTestEnv();
  const runs = Number(process.argv[2] ?? "5");
  // The same Nix as `bun run bench` (FLAKE_BUMP_BENCH_NIX, else current Nix when set up).
  const { variant, note } = benchNixVariant(process.env.FLAKE_BUMP_BENCH_NIX);
  process.stderr.write(`bench: measuring with ${variant.name}${note === undefined ? "" : ` (${note})`}\n`);
  const result = await benchImpact(runs, cleanEnv({ ...nixEnv, ...variant.env }));
  process.stderr.write(`${impactLines(result).join("\n")}\n`);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

#!/usr/bin/env bun
/**
 * `bun run bench`: flake-bump's speed and cost, measured side by side in one run on this machine
 * against the fake GitHub with real Nix (current Nix when it is set up, see USAGE). Prints a table (stdout; stderr with --json)
 * and, with --json, one JSON object on stdout. Not a test: it judges figures against the targets of
 * issue 5 and reports misses, but exits 0 unless the measurement itself failed.
 *
 * The fake listens on 127.0.0.1:443 for Nix, which only one process can hold: do not run this while
 * `bun test` runs (either one then fails to start the fake, with a message saying so).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import * as v from "valibot";
import { $ } from "zx";
import { parseCli, runMain } from "../lib/core/cli.ts";
import { RuntimeError } from "../lib/core/errors.ts";
import { fakeGitHub } from "../tests/fake-github/index.ts";
import { benchNixVariant, nixTestEnv } from "../tests/support/nix.ts";
import { cleanEnv } from "../tests/support/run.ts";
import { benchApi } from "./api.ts";
import { type Context, nixOnPath } from "./context.ts";
import { formatTable, markdownTable } from "./figures.ts";
import {
  benchImpact,
  benchModuleFleet,
  fleetLines,
  impactLines,
  impactMisses,
  parseFleetSize,
} from "./impact.ts";
import { benchLockDiff } from "./lock-diff.ts";
import { expectSuccess, measure, ROOT } from "./measure.ts";
import { DEFAULT_FLEET } from "./module-fleet.ts";
import { benchNative, nativeJson, nativeLines, nativeMisses } from "./native.ts";
import { benchNightly, NIGHTLY_INPUTS, NIGHTLY_INPUTS_LARGE } from "./nightly.ts";
import { benchOverhead } from "./overhead.ts";
import { round } from "./stats.ts";
import { benchJson, benchText, type Measurements } from "./summary.ts";

export const USAGE = `Usage: bun run bench [--json] [--markdown] [--runs N] [--fleet HOSTSxMODULES] [--help]

Measure flake-bump against the fake GitHub with real Nix and print a table of figures, each with
its target (issues 5 and 21). Takes a few minutes, most of them in the module-system fleet, which
runs on the system's Nix and the newest the tests know (FLAKE_BUMP_TEST_NIX selects).

  --json       print one JSON object on stdout; the table goes to stderr
  --markdown   print the table as markdown too (as in docs/performance.md)
  --runs N     timed runs per command, medians taken over them (default 9, 3–25; the
               module-system fleet runs at most 5 times)
  --fleet HxM  the module-system fleet's hosts and modules per host (default 12x1600)

The Nix measured: FLAKE_BUMP_BENCH_NIX=system, 2.26 or 2.34 (a version tests/support/setup-nix-*.sh
set up); by default current Nix (2.34) when it is set up, else the system's, with a note.

Do not run it while 'bun test' runs: both need port 443 on 127.0.0.1 for the fake GitHub.`;

const options = {
  json: { type: "boolean" },
  markdown: { type: "boolean" },
  runs: { type: "string" },
  fleet: { type: "string" },
} as const;

const Args = v.object({
  positionals: v.pipe(v.array(v.string()), v.maxLength(0, "takes no positional arguments")),
  json: v.optional(v.boolean(), false),
  markdown: v.optional(v.boolean(), false),
  runs: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^\d+$/, "must be a whole number"),
      v.transform(Number),
      v.minValue(3),
      v.maxValue(25),
    ),
    "9",
  ),
  fleet: v.optional(
    v.pipe(
      v.string(),
      v.transform(parseFleetSize),
      v.check(
        (size) => size !== undefined && size.hosts > 0 && size.modules > 0,
        "must be HOSTSxMODULES, e.g. 12x1600",
      ),
    ),
  ),
});

const LOCK_DIFF_ITERATIONS = { synthetic: 200, real: 1000 };

const benchStart = performance.now();

/** Progress for people, on stderr, with the seconds since the start (where does the time go?). */
function log(line: string): void {
  process.stderr.write(`[${round((performance.now() - benchStart) / 1000)} s] ${line}\n`);
}

async function sourceState(): Promise<{ commit: string; uncommitted: string[] }> {
  const sh = $({ cwd: ROOT, quiet: true, nothrow: true });
  const head = await sh`git rev-parse HEAD`;
  // A copy outside git (an export, a tarball) still benchmarks; it just cannot say which commit.
  if (head.exitCode !== 0) return { commit: "unknown", uncommitted: [] };
  const status = await sh`git status --porcelain -- lib scripts package.json bun.lock`;
  return {
    commit: head.stdout.trim(),
    uncommitted: status.stdout
      .split("\n")
      .filter(Boolean)
      .map((line) => line.slice(3)),
  };
}

/** FLAKE_BUMP_BENCH_NIX's Nix, or current Nix when it is set up (tests/support/nix.ts). */
function chosenNix(): ReturnType<typeof benchNixVariant> {
  try {
    return benchNixVariant(process.env.FLAKE_BUMP_BENCH_NIX);
  } catch (error) {
    throw new RuntimeError(error instanceof Error ? error.message : String(error));
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  const args = parseCli(argv, options, Args, USAGE);
  if (args === undefined) return 0;
  const started = performance.now();
  const loadBefore = loadavg();
  const notes: string[] = [
    "FLAKE_BUMP_WAIT_SCALE=0: the client's one-second spacing between writes is off; against github.com each open-pr write waits up to 1 s more.",
    "Wall times include each script's REST round trips to the fake on loopback (no network latency) and the fake's OpenAPI checks of every request.",
    "Peak RSS is the child's ru_maxrss as Bun.spawn's resourceUsage() reports it (bytes), taken from a small launcher process: forked from the bench itself, every child would report at least the bench's own RSS.",
  ];

  // Which Nix, before anything else: a wrong FLAKE_BUMP_BENCH_NIX fails at once.
  const { variant, note } = chosenNix();
  // First, and before the fake starts: in process and quick, and it fails fast when the real lock
  // fixtures cannot be read (tests/fixtures/real-flake-locks/) rather than after two minutes.
  log("bench: lock diff, in process…");
  const lockDiff = await benchLockDiff(LOCK_DIFF_ITERATIONS);
  log("bench: starting the fake GitHub (port 443 for Nix)…");
  const fake = await fakeGitHub().catch((error: unknown) => {
    throw new RuntimeError(
      `the fake GitHub could not start (${error instanceof Error ? error.message : String(error)}); the bench needs port 443 to itself: wait until no 'bun test' runs, then retry`,
    );
  });
  const scratch = await mkdtemp(join(tmpdir(), "flake-bump-bench-"));
  await using nixEnv = nixTestEnv({ certFile: fake.certFile });
  try {
    if (note !== undefined) notes.push(note);
    if (variant.pathPrefix !== undefined) {
      notes.push(
        `${variant.name}: the host sees that Nix's store under its chroot, not at /nix/store, so host impact reads closures with 'nix derivation show' where a runner reads the .drv files (unless the host's own store has the same ones).`,
      );
    }
    log(`bench: measuring with ${variant.name}`);
    // Without the measured variant's PATH: the module-system fleet lays each variant's own over it.
    const anyNix = cleanEnv({
      ...nixEnv,
      GITHUB_API_URL: fake.apiUrl,
      GH_TOKEN: fake.token,
      FLAKE_BUMP_WAIT_SCALE: "0",
    });
    const env = cleanEnv({ ...anyNix, ...variant.env });
    const nix = await nixOnPath(env);
    const ctx: Context = { fake, env, scratch, nix, runs: args.runs };

    log(`bench: bump overhead, ${args.runs} runs each of bump.ts and raw Nix ${nix.version}, alternating…`);
    const overhead = await benchOverhead(ctx);
    log("bench: native engine vs Nix, small and 50 MB repositories, fresh commits…");
    const native = await benchNative(ctx);
    log("bench: API requests per scenario (notify → bump → open-pr, as the workflows run them)…");
    const api = await benchApi(ctx);
    log(`bench: nightly over ${NIGHTLY_INPUTS} current inputs, ${args.runs} runs…`);
    const nightly = await benchNightly(ctx);
    log(`bench: nightly over ${NIGHTLY_INPUTS_LARGE} current inputs, once (request count)…`);
    const nightlyLarge = await benchNightly(ctx, { inputs: NIGHTLY_INPUTS_LARGE, runs: 1, extras: false });
    log(`bench: host impact on a synthetic fleet of 20 hosts, ${args.runs} runs…`);
    const impact = await benchImpact(args.runs, env);
    // Last: the longest, and on every Nix the tests use (FLAKE_BUMP_TEST_NIX selects).
    const fleets = await benchModuleFleet(args.runs, anyNix, args.fleet ?? DEFAULT_FLEET, log);
    // The launcher's own RSS is the lowest any child can report: a child starts as its copy.
    const floorRssBytes: number[] = [];
    for (let i = 0; i < 3; i++) {
      floorRssBytes.push(
        expectSuccess("true", await measure(["true"], { cwd: ROOT, env, scratch })).maxRssBytes,
      );
    }

    const loadAfter = loadavg();
    if (Math.max(loadBefore[0] ?? 0, loadAfter[0] ?? 0) > cpus().length / 2) {
      notes.push(
        `The machine was busy (1-minute load ${round(loadBefore[0] ?? 0, 2)} before, ${round(loadAfter[0] ?? 0, 2)} after, ${cpus().length} CPUs): times are higher than on an idle machine.`,
      );
    }
    const measurements: Measurements = {
      runs: args.runs,
      overhead,
      api,
      nightly,
      nightlyLarge,
      lockDiff,
      floorRssBytes,
      machine: {
        bun: Bun.version,
        nix: nix.version,
        cpus: cpus().length,
        cpu_model: cpus()[0]?.model ?? "unknown",
        platform: `${process.platform} ${process.arch}`,
        loadavg_before: loadBefore.map((l) => round(l, 2)),
        loadavg_after: loadAfter.map((l) => round(l, 2)),
      },
      // Others may be changing lib/ and scripts/ while this runs: say exactly what was measured.
      source: await sourceState(),
      notes,
      totalSeconds: round((performance.now() - started) / 1000),
    };
    const json = benchJson(measurements);
    const { rows, details } = benchText(json, measurements);
    const misses = [
      ...rows.filter((x) => x.result === "MISS").map((x) => x.figure),
      ...impactMisses(impact, fleets),
      ...nativeMisses(native),
    ];
    const text = [
      formatTable(rows),
      ...details,
      ...impactLines(impact),
      ...fleetLines(fleets),
      ...nativeLines(native),
      "",
      `${misses.length === 0 ? "All targets met" : `Missed: ${misses.join(", ")}`}. Bench took ${json.total_s} s.`,
      ...(args.markdown ? ["", markdownTable(rows)] : []),
    ].join("\n");
    if (args.json) {
      process.stderr.write(`${text}\n`);
      process.stdout.write(
        `${JSON.stringify({ ...json, impact, module_fleet: fleets, native: nativeJson(native) }, null, 2)}\n`,
      );
    } else {
      process.stdout.write(`${text}\n`);
    }
    return 0;
  } finally {
    await rm(scratch, { recursive: true, force: true });
    await fake.stop();
  }
}

if (import.meta.main) await runMain(() => main(process.argv.slice(2)));

/**
 * bump_overhead_ms: what `bun scripts/bump.ts X` costs on top of the Nix command it wraps, on the same
 * `github:` input served by the fake, each run really moving the input (the lock is reset in between).
 * Plus where the difference goes: Bun's start, the imports, `nix --version`, the API question.
 */
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { $ } from "zx";
import { RuntimeError } from "../lib/core/errors.ts";
import { parseLock } from "../lib/flake/lock.ts";
import { hasPositionalUpdate } from "../lib/flake/nix.ts";
import { parseReport } from "../lib/flake/report.ts";
import { gitRepo } from "../tests/support/git.ts";
import { type Context, nixLock } from "./context.ts";
import { expectSuccess, type Measured, measure, ROOT, scriptCommand } from "./measure.ts";
import { median } from "./stats.ts";

export interface OverheadResult {
  /** median(bump) − median(nix). */
  overheadMs: number;
  bumpMedianMs: number;
  nixMedianMs: number;
  bumpRunsMs: number[];
  nixRunsMs: number[];
  /** What the raw command was, for the table's notes. */
  nixCommand: string;
  /** CPU time (user + system, including children) of each, median. */
  bumpCpuMs: number;
  nixCpuMs: number;
  /** Peak RSS over the bump runs (bump.ts and its Nix child) and over the raw Nix runs. */
  bumpRssBytes: number[];
  nixRssBytes: number[];
  /** REST requests bump.ts made per run, and the fake's own time answering them (median per run). */
  bumpApiRequests: number;
  bumpApiFakeMs: number;
  breakdown: Breakdown;
  /** bump.ts cut at its Nix calls, and the raw Nix run timed by the same shim. */
  phases: Phases & { rawNixLockMs: number; runs: number };
}

/** One bump.ts run cut at its Nix calls (medians over the shim runs). */
export interface Phases {
  /** Spawn → `nix --version` starts: Bun's start, imports, git, the API question (and the fake's answer). */
  beforeNixMs: number;
  /** The fake's own time answering bump.ts's REST request(s), part of beforeNixMs. */
  fakeAnswerMs: number;
  nixVersionMs: number;
  /** `nix --version` ends → `nix flake lock` starts. */
  betweenMs: number;
  /** The Nix run that does the work, as bump.ts runs it. */
  nixLockMs: number;
  /** Nix ends → bump.ts has exited: checks, diff, report, lock written. */
  afterNixMs: number;
}

/** Fresh-process costs, each a median; "import X" is the wall time of `bun -e 'import "X"'` minus `bun -e 0`. */
export interface Breakdown {
  bunStartMs: number;
  bumpHelpMs: number;
  nixVersionMs: number;
  gitRevParseMs: number;
  imports: Record<string, number>;
}

const UPSTREAM = { owner: "acme", repo: "x" };
const FLAKE_NIX = `{
  inputs.x.url = "github:acme/x?host=localhost";
  outputs = _: { };
}
`;

/** Imports worth knowing the price of: the scripts' direct dependencies and what pulls them in. */
const IMPORTS = [
  "zx",
  "zx/core",
  "valibot",
  "@octokit/core",
  "@octokit/plugin-rest-endpoint-methods",
  "./lib/github/client.ts",
] as const;

export async function benchOverhead(ctx: Context): Promise<OverheadResult> {
  const { fake, env, scratch } = ctx;
  await fake.reset();
  await fake.createRepo(UPSTREAM.owner, UPSTREAM.repo, {
    files: { "flake.nix": "{ outputs = _: { version = 0; }; }\n" },
  });
  await using flake = await gitRepo({ files: { "flake.nix": FLAKE_NIX } });
  await nixLock(flake.dir, env);
  await flake.commit({}, "lock");
  const lockFile = join(flake.dir, "flake.lock");
  const original = await readFile(lockFile, "utf8");
  // One commit past the lock: every run below has exactly this to fetch and lock.
  const head = await fake.push(
    UPSTREAM.owner,
    UPSTREAM.repo,
    { "flake.nix": "{ outputs = _: { version = 1; }; }\n" },
    "feat: move",
  );

  const report = join(scratch, "overhead-report.json");
  const bumpCmd = scriptCommand("bump", ["x", "--report", report]);
  // The very command bump.ts runs for this plan on this Nix version (lib/flake/nix.ts lockArgs).
  const nixArgs = hasPositionalUpdate(ctx.nix)
    ? ["flake", "update", "x", "--flake", flake.dir]
    : ["flake", "lock", "--update-input", "x", flake.dir];
  const nixCmd = ["nix", "--extra-experimental-features", "nix-command flakes", ...nixArgs];

  const runBump = async (runEnv = env): Promise<{ run: Measured; requests: number; fakeMs: number }> => {
    await writeFile(lockFile, original);
    const from = fake.requests.length;
    const run = expectSuccess("bump.ts", await measure(bumpCmd, { cwd: flake.dir, env: runEnv, scratch }));
    const parsed = parseReport(await readFile(report, "utf8"), report);
    if (parsed.inputs[0]?.to.rev !== head || parsed.nix.invocations !== 1) {
      throw new RuntimeError(
        `bump.ts did not move 'x' to ${head} with one Nix run (report: ${JSON.stringify(parsed.inputs[0]?.to)}, ${parsed.nix.invocations} Nix runs); the overhead would be measured on the wrong work`,
      );
    }
    const api = fake.requests.slice(from).filter((r) => r.listener === "api");
    return { run, requests: api.length, fakeMs: api.reduce((sum, r) => sum + r.durationMs, 0) };
  };
  const runNix = async (runEnv = env): Promise<Measured> => {
    await writeFile(lockFile, original);
    const run = expectSuccess(
      nixCmd.join(" "),
      await measure(nixCmd, { cwd: flake.dir, env: runEnv, scratch }),
    );
    const key = parseLock(await readFile(lockFile, "utf8"), lockFile).nodes.x?.locked?.rev;
    if (key !== head) throw new RuntimeError(`raw Nix locked 'x' at ${key ?? "nothing"}, not ${head}`);
    return run;
  };

  // Warm-up, not counted: the first fetch fills Nix's tarball cache, the first Bun run its caches.
  await runBump();
  await runNix();

  const bump: Awaited<ReturnType<typeof runBump>>[] = [];
  const nix: Measured[] = [];
  for (let i = 0; i < ctx.runs; i++) {
    // Alternate which goes first, so drift (caches, a busy neighbour) falls on both alike.
    if (i % 2 === 0) {
      bump.push(await runBump());
      nix.push(await runNix());
    } else {
      nix.push(await runNix());
      bump.push(await runBump());
    }
  }
  // Where inside bump.ts the time goes: separate runs with a `nix` shim that logs when each Nix call
  // starts and ends (not the timed runs above: the shim adds a shell and two `date`s per call).
  const timings = join(scratch, "nix-timings.log");
  const shimDir = join(scratch, "timing-shim");
  await mkdir(shimDir, { recursive: true });
  const realNix = (await $({ env, quiet: true })`command -v nix`).stdout.trim();
  await writeFile(
    join(shimDir, "nix"),
    `#!/bin/sh\nstart=$(date +%s%N)\n'${realNix}' "$@"\ncode=$?\necho "$start $(date +%s%N) $1" >> '${timings}'\nexit $code\n`,
  );
  await chmod(join(shimDir, "nix"), 0o755);
  const shimEnv = { ...env, PATH: `${shimDir}${delimiter}${env.PATH ?? ""}` };
  const phaseRuns = Math.max(5, Math.ceil(ctx.runs / 2));
  const phaseSamples: Phases[] = [];
  const rawNixSamples: number[] = [];
  for (let i = 0; i < phaseRuns; i++) {
    await writeFile(timings, "");
    const { run, fakeMs } = await runBump(shimEnv);
    const calls = await shimLog(timings);
    const [version, lock] = calls;
    if (calls.length !== 2 || version === undefined || lock === undefined || version.arg !== "--version") {
      throw new RuntimeError(
        `expected bump.ts to call 'nix --version' then Nix once, but the shim logged: ${JSON.stringify(calls)}`,
      );
    }
    const end = run.startedAtMs + run.wallMs;
    phaseSamples.push({
      beforeNixMs: version.startMs - run.startedAtMs,
      fakeAnswerMs: fakeMs,
      nixVersionMs: version.endMs - version.startMs,
      betweenMs: lock.startMs - version.endMs,
      nixLockMs: lock.endMs - lock.startMs,
      afterNixMs: end - lock.endMs,
    });
    await writeFile(timings, "");
    await runNix(shimEnv);
    const [raw] = await shimLog(timings);
    if (raw !== undefined) rawNixSamples.push(raw.endMs - raw.startMs);
  }
  const phases: Phases & { rawNixLockMs: number; runs: number } = {
    beforeNixMs: median(phaseSamples.map((p) => p.beforeNixMs)),
    fakeAnswerMs: median(phaseSamples.map((p) => p.fakeAnswerMs)),
    nixVersionMs: median(phaseSamples.map((p) => p.nixVersionMs)),
    betweenMs: median(phaseSamples.map((p) => p.betweenMs)),
    nixLockMs: median(phaseSamples.map((p) => p.nixLockMs)),
    afterNixMs: median(phaseSamples.map((p) => p.afterNixMs)),
    rawNixLockMs: median(rawNixSamples),
    runs: phaseRuns,
  };

  await writeFile(lockFile, original);
  fake.assertNoViolations();

  const bumpRunsMs = bump.map((b) => b.run.wallMs);
  const nixRunsMs = nix.map((n) => n.wallMs);
  const bumpMedianMs = median(bumpRunsMs);
  const nixMedianMs = median(nixRunsMs);
  return {
    overheadMs: bumpMedianMs - nixMedianMs,
    bumpMedianMs,
    nixMedianMs,
    bumpRunsMs,
    nixRunsMs,
    nixCommand: `nix ${nixArgs.slice(0, -1).join(" ")} DIR`,
    bumpCpuMs: median(bump.map((b) => b.run.cpuMs)),
    nixCpuMs: median(nix.map((n) => n.cpuMs)),
    bumpRssBytes: bump.map((b) => b.run.maxRssBytes),
    nixRssBytes: nix.map((n) => n.maxRssBytes),
    bumpApiRequests: median(bump.map((b) => b.requests)),
    bumpApiFakeMs: median(bump.map((b) => b.fakeMs)),
    breakdown: await breakdown(ctx, flake.dir),
    phases,
  };
}

/** One line per Nix call the timing shim logged: wall-clock start and end (ms since the epoch), first argument. */
async function shimLog(file: string): Promise<Array<{ startMs: number; endMs: number; arg: string }>> {
  return (await readFile(file, "utf8"))
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const [start = "0", end = "0", arg = ""] = line.split(" ");
      return { startMs: Number(start) / 1e6, endMs: Number(end) / 1e6, arg };
    });
}

async function breakdown(ctx: Context, flakeDir: string): Promise<Breakdown> {
  const { env, scratch } = ctx;
  const runs = Math.max(5, Math.ceil(ctx.runs / 2));
  const wall = async (cmd: readonly string[], cwd: string): Promise<number> => {
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      times.push(expectSuccess(cmd.join(" "), await measure(cmd, { cwd, env, scratch })).wallMs);
    }
    return median(times);
  };
  const bun = process.execPath;
  const bunStartMs = await wall([bun, "-e", "0"], ROOT);
  const imports: Record<string, number> = {};
  for (const specifier of IMPORTS) {
    imports[specifier] = (await wall([bun, "-e", `import ${JSON.stringify(specifier)}`], ROOT)) - bunStartMs;
  }
  return {
    bunStartMs,
    bumpHelpMs: await wall(scriptCommand("bump", ["--help"]), ROOT),
    nixVersionMs: await wall(["nix", "--version"], ROOT),
    gitRevParseMs: await wall(["git", "rev-parse", "--show-toplevel"], flakeDir),
    imports,
  };
}

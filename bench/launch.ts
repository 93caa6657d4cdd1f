#!/usr/bin/env bun
/**
 * Runs one command and writes its wall time and resource usage to a JSON file:
 *   bun bench/launch.ts OUT.json CMD [ARG ...]
 *
 * Why a launcher instead of Bun.spawn from the bench itself: on Linux a child's `ru_maxrss` starts
 * from the RSS of the process that forked it (the forked copy's high-water mark survives exec), so
 * every child of the bench — which holds the fake GitHub and GitHub's whole OpenAPI description —
 * would report at least the bench's own few hundred MB. Forked from this small process instead, the
 * floor is a bare Bun's RSS, measured and printed by the bench (`peak_rss_mb.floor`).
 * The child inherits this process's stdio and environment; nothing is buffered here.
 */
import { writeFileSync } from "node:fs";
import * as v from "valibot";

const Argv = v.tupleWithRest(
  [v.pipe(v.string(), v.minLength(1)), v.pipe(v.string(), v.minLength(1))],
  v.string(),
);

const parsed = v.safeParse(Argv, process.argv.slice(2));
if (!parsed.success) {
  process.stderr.write("usage: bun bench/launch.ts OUT.json CMD [ARG ...]\n");
  process.exit(2);
}
const [out, ...cmd] = parsed.output;
const started = performance.now();
const child = Bun.spawn(cmd, { stdio: ["ignore", "inherit", "inherit"] });
const exitCode = await child.exited;
const wallMs = performance.now() - started;
const usage = child.resourceUsage();
writeFileSync(
  out,
  JSON.stringify({
    exitCode,
    // Wall-clock start in ms since the epoch, to line the run up with timestamps its children log.
    startedAtMs: performance.timeOrigin + started,
    wallMs,
    // Bun reports maxRSS in bytes (Linux's ru_maxrss is KiB; Bun converts). It covers the child and
    // the descendants it waited for (wait4 reports RUSAGE_BOTH), so bump.ts's figure includes Nix.
    maxRssBytes: usage?.maxRSS ?? 0,
    cpuMs: Number(usage?.cpuTime.total ?? 0n) / 1000,
  }),
);

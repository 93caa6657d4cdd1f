/**
 * Running a command as a measured child: wall time and peak RSS come from bench/launch.ts (see there
 * for why the bench does not fork its children itself), stdout and stderr come back here.
 */
import { readFile, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import * as v from "valibot";
import { describeIssues, RuntimeError } from "../lib/core/errors.ts";

export const ROOT = resolve(import.meta.dir, "..");
const LAUNCHER = join(ROOT, "bench", "launch.ts");

const LaunchResult = v.object({
  exitCode: v.number(),
  startedAtMs: v.number(),
  wallMs: v.number(),
  maxRssBytes: v.number(),
  cpuMs: v.number(),
});

export interface Measured {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** When the launcher spawned the child, in ms since the epoch. */
  startedAtMs: number;
  /** From just before the child's spawn to its exit, timed by the launcher (excludes the launcher's start). */
  wallMs: number;
  /** The child's peak RSS, including the descendants it waited for (Nix, git). */
  maxRssBytes: number;
  /** User + system CPU time of the child and its waited-for descendants. */
  cpuMs: number;
}

export type Env = Record<string, string | undefined>;

export type ScriptName = "bump" | "open-pr" | "notify";

/** `bun scripts/NAME.ts ARGS…` exactly as a user runs it. */
export function scriptCommand(name: ScriptName, args: readonly string[]): string[] {
  return [process.execPath, join(ROOT, "scripts", `${name}.ts`), ...args];
}

let sequence = 0;

/**
 * Run `cmd` through the launcher. `scratch` is a directory for the launcher's result file.
 * Throws when the launcher itself fails; the command's own exit code is the caller's to judge.
 */
export async function measure(
  cmd: readonly string[],
  opts: { cwd: string; env: Env; scratch: string },
): Promise<Measured> {
  sequence += 1;
  const out = join(opts.scratch, `launch-${process.pid}-${sequence}.json`);
  const proc = Bun.spawn([process.execPath, LAUNCHER, out, ...cmd], {
    cwd: opts.cwd,
    env: opts.env,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, launcherExit] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  let text: string;
  try {
    text = await readFile(out, "utf8");
  } catch {
    throw new RuntimeError(
      `the launcher wrote no result for '${cmd.join(" ")}' (exit ${launcherExit}): ${stderr.trim().slice(0, 500)}`,
    );
  }
  await rm(out, { force: true });
  const parsed = v.safeParse(LaunchResult, JSON.parse(text));
  if (!parsed.success) {
    throw new RuntimeError(
      `the launcher's result for '${cmd.join(" ")}' is malformed (${describeIssues(parsed.issues)})`,
    );
  }
  return { ...parsed.output, stdout, stderr };
}

/** Throws with the command's own error output when it did not exit 0: a failed run measures nothing. */
export function expectSuccess(what: string, run: Measured): Measured {
  if (run.exitCode !== 0) {
    throw new RuntimeError(
      `${what} exited ${run.exitCode}: ${(run.stderr || run.stdout).trim().slice(-800)}`,
    );
  }
  return run;
}

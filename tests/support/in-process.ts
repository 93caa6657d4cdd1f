/**
 * Run an entry script's exported `main(argv, env)` in this process and end it the way `runMain` ends
 * a real run: the same exit code and the same `error:` line (lib/core/cli.ts's `failure`), with what it
 * wrote to stdout and stderr captured. The fast tier's replacement for spawning `bun scripts/X.ts`.
 */
import { spyOn } from "bun:test";
import { failure } from "../../lib/core/cli.ts";
import { redact } from "../../lib/core/secrets.ts";
import type { RunResult } from "./run.ts";

export type Main = (argv: readonly string[], env: NodeJS.ProcessEnv) => Promise<number>;

function text(chunk: unknown): string {
  if (typeof chunk === "string") return chunk;
  if (chunk instanceof Uint8Array) return new TextDecoder().decode(chunk);
  return String(chunk);
}

/**
 * `cwd` is where the script would have been started: process.cwd() changes for the call and is
 * restored afterwards, so calls must not overlap (bun runs a file's tests one after another).
 */
export async function runInProcess(
  main: Main,
  argv: readonly string[],
  opts: { env: Record<string, string | undefined>; cwd: string },
): Promise<RunResult> {
  let stdout = "";
  let stderr = "";
  const out = spyOn(process.stdout, "write").mockImplementation((chunk: unknown) => {
    stdout += text(chunk);
    return true;
  });
  const err = spyOn(process.stderr, "write").mockImplementation((chunk: unknown) => {
    stderr += text(chunk);
    return true;
  });
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(opts.env)) if (value !== undefined) env[key] = value;
  const previous = process.cwd();
  process.chdir(opts.cwd);
  let exitCode: number;
  try {
    exitCode = await main(argv, env);
  } catch (error) {
    const ended = failure(error);
    stderr += `${redact(`error: ${ended.text}`)}\n`;
    exitCode = ended.exitCode;
  } finally {
    process.chdir(previous);
    out.mockRestore();
    err.mockRestore();
  }
  return { exitCode, stdout, stderr };
}

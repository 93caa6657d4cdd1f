import { resolve } from "node:path";

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

const ROOT = resolve(import.meta.dir, "..", "..");

/** Run one of the entry scripts exactly as a user would: `bun scripts/NAME.ts ARGS…`, as a child process. */
export async function runScript(
  name: "bump" | "notify" | "open-pr" | "impact",
  args: readonly string[],
  opts: { cwd: string; env: Record<string, string | undefined> },
): Promise<RunResult> {
  const proc = Bun.spawn([process.execPath, resolve(ROOT, "scripts", `${name}.ts`), ...args], {
    cwd: opts.cwd,
    env: opts.env,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  return await collect(proc);
}

/**
 * `runScript` on a terminal: the script's stdout and stderr are a pseudo-terminal (util-linux
 * `script`), as when a person runs it, so Nix writes its own progress and errors there. What the
 * terminal showed comes back as `stdout` (with carriage returns); `stderr` is empty.
 */
export async function runScriptOnTerminal(
  name: "bump" | "notify" | "open-pr" | "impact",
  args: readonly string[],
  opts: { cwd: string; env: Record<string, string | undefined> },
): Promise<RunResult> {
  const quote = (word: string) => `'${word.replaceAll("'", "'\\''")}'`;
  const command = [process.execPath, resolve(ROOT, "scripts", `${name}.ts`), ...args].map(quote).join(" ");
  const proc = Bun.spawn(["script", "--quiet", "--return", "--command", command, "/dev/null"], {
    cwd: opts.cwd,
    env: opts.env,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  return await collect(proc);
}

/** What a child process spawned with piped stdout and stderr printed, and how it exited. */
export async function collect(proc: {
  stdout: ReadableStream<Uint8Array>;
  stderr: ReadableStream<Uint8Array>;
  exited: Promise<number>;
}): Promise<RunResult> {
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { exitCode, stdout, stderr };
}

/** The environment a script sees in tests: the parent's, minus anything from a real Actions run or a real token. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(GITHUB_|RUNNER_|GH_|INPUT_)/.test(key) || key === "CI") continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

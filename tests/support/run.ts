import { resolve } from "node:path";

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

const ROOT = resolve(import.meta.dir, "..", "..");

type ScriptName = "bump" | "notify" | "open-pr" | "impact";
type ScriptOptions = { cwd: string; env: Record<string, string | undefined> };

/** `bun scripts/NAME.ts ARGS…` as argv. */
function scriptArgv(name: ScriptName, args: readonly string[]): string[] {
  return [process.execPath, resolve(ROOT, "scripts", `${name}.ts`), ...args];
}

/** `argv` as a child with no stdin and piped stdout and stderr. */
function spawnPiped(argv: string[], opts: ScriptOptions) {
  return Bun.spawn(argv, { cwd: opts.cwd, env: opts.env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
}

/**
 * Start one of the entry scripts as a user would, and leave it running: for a test that signals it
 * (then `collect` it).
 */
export function startScript(name: ScriptName, args: readonly string[], opts: ScriptOptions) {
  return spawnPiped(scriptArgv(name, args), opts);
}

/** Run one of the entry scripts exactly as a user would: `bun scripts/NAME.ts ARGS…`, as a child process. */
export async function runScript(
  name: ScriptName,
  args: readonly string[],
  opts: ScriptOptions,
): Promise<RunResult> {
  return await collect(startScript(name, args, opts));
}

/**
 * `runScript` on a terminal: the script's stdout and stderr are a pseudo-terminal (util-linux
 * `script`), as when a person runs it, so Nix writes its own progress and errors there. What the
 * terminal showed comes back as `stdout` (with carriage returns); `stderr` is empty.
 */
export async function runScriptOnTerminal(
  name: ScriptName,
  args: readonly string[],
  opts: ScriptOptions,
): Promise<RunResult> {
  const quote = (word: string) => `'${word.replaceAll("'", "'\\''")}'`;
  const command = scriptArgv(name, args).map(quote).join(" ");
  return await collect(
    spawnPiped(["script", "--quiet", "--return", "--command", command, "/dev/null"], opts),
  );
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

/**
 * The Nix CLI: which version is installed, which arguments update or pin inputs on it, and running it
 * with the user's own settings plus only what flakes need.
 */
import { stripVTControlCharacters } from "node:util";
import { RuntimeError } from "../core/errors.ts";
import { githubToken } from "../core/secrets.ts";

export interface NixVersion {
  /** `2.8.0`, `2.26.3`, `2.91.1` (Lix numbers its releases past Nix's). */
  version: string;
  major: number;
  minor: number;
  lix: boolean;
}

/** Parse `nix --version` output: `nix (Nix) 2.8.0`, `nix (Lix, like Nix) 2.91.1`, `nix (Determinate Nix 3.6.2) 2.29.0`. */
export function parseNixVersion(output: string): NixVersion | undefined {
  const matches = [...output.matchAll(/(\d+)\.(\d+)(?:\.(\d+))?(?:pre[\w.]*)?/g)];
  const last = matches.at(-1);
  if (last === undefined) return undefined;
  return {
    version: last[0],
    major: Number(last[1]),
    minor: Number(last[2]),
    lix: /\bLix\b/.test(output),
  };
}

/** Nix ≥ 2.19 and every Lix release take input names as positional arguments of `nix flake update`. */
export function hasPositionalUpdate(version: NixVersion): boolean {
  return version.lix || version.major > 2 || (version.major === 2 && version.minor >= 19);
}

export const EXPERIMENTAL = ["--extra-experimental-features", "nix-command flakes"] as const;

/**
 * The command that writes flake.lock, as hints give it to a person: a stock Nix enables neither
 * nix-command nor flakes, and a bare `nix flake lock` fails there ("experimental Nix feature
 * 'nix-command' is disabled").
 */
export const LOCK_COMMAND = `nix ${EXPERIMENTAL[0]} '${EXPERIMENTAL[1]}' flake lock`;

export interface Pin {
  input: string;
  ref: string;
  rev: string;
}

/**
 * `also`: more inputs pinned in the same Nix run (a grouped pull request's other members), so one
 * lock holds every move exactly as Nix writes it.
 */
export type LockPlan =
  | { kind: "update"; inputs: readonly string[]; also?: readonly Pin[] }
  | { kind: "pin"; input: string; ref: string; rev: string; also?: readonly Pin[] };

/**
 * The Nix arguments (after `nix`) that carry out a plan on `flakeDir` with the given version.
 * Pins use `nix flake lock --override-input`, which writes the override into `locked` only and keeps
 * `original` as flake.nix has it, on every version.
 */
export function lockArgs(version: NixVersion, plan: LockPlan, flakeDir: string): string[] {
  // Both `flake lock` and `flake update` take --override-input on every version (2.8, 2.26 tried).
  const also = (plan.also ?? []).flatMap((pin) => ["--override-input", pin.input, pin.ref]);
  if (plan.kind === "pin") {
    return [...EXPERIMENTAL, "flake", "lock", "--override-input", plan.input, plan.ref, ...also, flakeDir];
  }
  if (hasPositionalUpdate(version)) {
    return [...EXPERIMENTAL, "flake", "update", ...plan.inputs, ...also, "--flake", flakeDir];
  }
  // Nix < 2.19 has no positional inputs for `flake update` (it always recreates the whole lock).
  return [
    ...EXPERIMENTAL,
    "flake",
    "lock",
    ...plan.inputs.flatMap((input) => ["--update-input", input]),
    ...also,
    flakeDir,
  ];
}

/**
 * The environment for Nix: the user's own, plus a GitHub access token through NIX_CONFIG (never argv)
 * when one is present and the user has not configured access-tokens themselves. On GitHub Enterprise
 * Server (`GITHUB_SERVER_URL` names another host) the token is given for that host too, for inputs
 * written `github:o/r?host=…`.
 */
export function nixEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const token = githubToken(env);
  const config = env.NIX_CONFIG ?? "";
  if (!token || /^\s*access-tokens\s*=/m.test(config)) return env;
  const hosts = new Set(["github.com"]);
  try {
    if (env.GITHUB_SERVER_URL) hosts.add(new URL(env.GITHUB_SERVER_URL).host);
  } catch {
    // not a URL: only github.com
  }
  const line = `access-tokens = ${[...hosts].map((host) => `${host}=${token}`).join(" ")}`;
  return { ...env, NIX_CONFIG: config ? `${config}\n${line}` : line };
}

export interface Nix {
  version: NixVersion;
  /** Run `nix ARGS` in `cwd`; throws RuntimeError with Nix's own error line on failure. */
  run(args: readonly string[], opts: { cwd: string; what: string; signal?: AbortSignal }): Promise<void>;
}

/** The last `error:` paragraph Nix printed, folded to one line. */
export function nixErrorLine(stderr: string): string {
  const lines = stderr.split("\n");
  const start = lines.findLastIndex((line) => /^\s*error:/.test(line));
  const picked = start >= 0 ? lines.slice(start) : lines.filter((line) => line.trim()).slice(-3);
  return picked
    .map((line) => stripVTControlCharacters(line).trim())
    .filter(Boolean)
    .join(" ")
    .replace(/\s+/g, " ")
    .replace(/^error:\s*/, "")
    .slice(0, 600);
}

/** What `nix --version` answered; exitCode -1 when there is no `nix` to start. */
export interface VersionProbe {
  exitCode: number;
  stdout: string;
}

/** `nix --version` as a plain spawn (no shell, no zx to load first). Never rejects. */
function probeNix(env: NodeJS.ProcessEnv = process.env): Promise<VersionProbe> {
  try {
    const proc = Bun.spawn(["nix", "--version"], { env, stdin: "ignore", stdout: "pipe", stderr: "ignore" });
    return Promise.all([proc.exited, new Response(proc.stdout).text()]).then(
      ([exitCode, stdout]) => ({ exitCode, stdout }),
      () => ({ exitCode: -1, stdout: "" }),
    );
  } catch {
    return Promise.resolve({ exitCode: -1, stdout: "" });
  }
}

/**
 * Find Nix and detect its version once. On a terminal Nix draws its own progress bar on stderr; in CI
 * and other non-terminal runs its output is captured and only shown when it fails (or with --debug).
 */
export async function detectNix(opts: { env?: NodeJS.ProcessEnv; debug?: boolean } = {}): Promise<Nix> {
  const env = nixEnv(opts.env ?? process.env);
  // zx is only needed to run Nix: load it while `nix --version` runs.
  const zx = import("zx/core");
  zx.catch(() => undefined);
  const probe = await probeNix(env);
  const version = probe.exitCode === 0 ? parseNixVersion(probe.stdout) : undefined;
  if (version === undefined) {
    throw new RuntimeError(
      "Nix was not found on PATH (or 'nix --version' failed); install Nix (e.g. 'apt-get install nix-bin' or the Determinate/official installer) and retry",
    );
  }
  const { $, ProcessOutput } = await zx;
  const interactive = process.stderr.isTTY === true;
  return {
    version,
    async run(args, { cwd, what, signal }) {
      const stdio = interactive || opts.debug ? "inherit" : "pipe";
      try {
        await $({
          env,
          cwd,
          quiet: true,
          stdio: ["ignore", "pipe", stdio],
          ...(signal ? { signal } : {}),
        })`nix ${args}`;
      } catch (error) {
        if (!(error instanceof ProcessOutput)) throw error;
        const detail = interactive ? "see Nix's output above" : nixErrorLine(error.stderr);
        throw new RuntimeError(`Nix failed to ${what}: ${detail}`);
      }
    },
  };
}

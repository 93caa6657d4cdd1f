/**
 * The Nix CLI: which version is installed, which arguments update or pin inputs on it, and running it
 * with the user's own settings plus only what flakes need.
 */
import { stripVTControlCharacters } from "node:util";
import * as v from "valibot";
import { RuntimeError } from "../core/errors.ts";
import { githubToken } from "../core/secrets.ts";
import type { FlakeLock } from "./lock.ts";

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

/** `version` is at least release series `since` (`2.18`); Lix numbers its own releases, so never. */
/** A release series, `2.18` → major 2, minor 18. */
function series(release: string): { major: number; minor: number } {
  const [major = 0, minor = 0] = release.split(".").map(Number);
  return { major, minor };
}

function atLeast(version: NixVersion, since: string): boolean {
  const { major, minor } = series(since);
  return !version.lix && (version.major > major || (version.major === major && version.minor >= minor));
}

/**
 * The first Nix release series whose fetchers accept each input attribute (`locked`/`original` in
 * flake.lock, `?…` in a flake reference), read from each release's src/libfetchers in NixOS/nix.
 * Older releases refuse the whole lock with "unsupported tarball input attribute 'lastModified'"
 * (≤ 2.18) or "input attribute 'lfs' not supported by scheme 'git'" (≥ 2.19).
 */
const ATTRIBUTE_SINCE: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  // `unpack` from 2.9; `rev`/`revCount` (immutable tarball URLs, rl-2.17) from 2.17; `lastModified`
  // from 2.18 (backported to 2.13.6, 2.15.3, 2.16.2 and 2.17.1, never to 2.14). `file` inputs (2.9
  // on) share the list.
  tarball: { unpack: "2.9", rev: "2.17", revCount: "2.17", lastModified: "2.18" },
  file: { rev: "2.17", revCount: "2.17", lastModified: "2.18" },
  // Commit signature checks from 2.19, Git LFS (rl-2.27) from 2.27.
  git: { verifyCommit: "2.19", keytype: "2.19", publicKey: "2.19", publicKeys: "2.19", lfs: "2.27" },
};

/** Locked relative path inputs (`path:./sub`) need the lock format change of Nix 2.26 (rl-2.26). */
const RELATIVE_PATH_SINCE = "2.26";

/** Every Nix release up to 2.35 reads lock versions 5 to 7 and writes 7 (src/libflake/lockfile.cc). */
const LOCK_VERSIONS = "5 to 7";

/** The lock's node keys whose `locked` or `original` reference is a `type` input carrying `attribute`. */
function nodesWith(lock: FlakeLock | undefined, type: string, attribute: string): string[] {
  return Object.entries(lock?.nodes ?? {})
    .filter(([, node]) =>
      [node.locked, node.original].some((ref) => ref?.type === type && ref[attribute] !== undefined),
    )
    .map(([key]) => key);
}

/** `a`, `a and b`, `a, b and c`. */
function listed(names: readonly string[]): string {
  return names.length < 2 ? names.join("") : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
}

/** What a newer Nix accepts that this one refused, and since which release (undefined: none yet). */
interface TooOld {
  cause: string;
  since: string | undefined;
}

/** Which input type and attribute Nix's error refused, in either release's wording. */
function refusedAttribute(text: string): { type: string; attribute: string } | undefined {
  // ≥ 2.19: "input attribute 'lfs' not supported by scheme 'git'".
  const modern = /input attribute '([^']+)' not supported by scheme '([^']+)'/.exec(text);
  if (modern?.[1] !== undefined && modern[2] !== undefined) return { type: modern[2], attribute: modern[1] };
  // ≤ 2.18: "unsupported tarball input attribute 'lastModified'", "unsupported Git input attribute 'lfs'".
  const old = /unsupported (\w+) input attribute '([^']+)'/.exec(text);
  if (old?.[1] !== undefined && old[2] !== undefined)
    return { type: old[1].toLowerCase(), attribute: old[2] };
  return undefined;
}

/** A cause some Nix release mends: the one it names. */
type MendedBy = TooOld & { since: string };

/** `nodes` of the lock (none: somewhere in the flake) carry `attribute`, which Nix reads from `since` on. */
function carries(type: string, attribute: string, since: string, nodes: readonly string[]): MendedBy {
  const carry =
    nodes.length === 0
      ? `a '${type}' input in flake.nix or flake.lock carries`
      : `flake.lock's '${type}' input${nodes.length > 1 ? "s" : ""} ${listed(nodes)} carr${nodes.length > 1 ? "y" : "ies"}`;
  return { cause: `${carry} '${attribute}', which Nix accepts from ${since} on`, since };
}

const relativePath = (cause: string): MendedBy => ({
  cause: `flake.lock locks the relative path input '${cause}', which Nix reads from ${RELATIVE_PATH_SINCE} on`,
  since: RELATIVE_PATH_SINCE,
});

/**
 * What in `lock` this Nix cannot read, judged from the lock alone: for a failed run whose error went
 * to a terminal, where only its exit status is known here.
 */
function tooOldForLock(version: NixVersion, lock: FlakeLock | undefined): TooOld | undefined {
  // Lix's releases are numbered apart from Nix's: nothing here says what it reads.
  if (version.lix) return undefined;
  const found: MendedBy[] = [];
  for (const [type, attributes] of Object.entries(ATTRIBUTE_SINCE)) {
    for (const [attribute, since] of Object.entries(attributes)) {
      const nodes = atLeast(version, since) ? [] : nodesWith(lock, type, attribute);
      if (nodes.length > 0) found.push(carries(type, attribute, since, nodes));
    }
  }
  if (!atLeast(version, RELATIVE_PATH_SINCE)) {
    const path = Object.values(lock?.nodes ?? {})
      .map((node) => (node.locked?.type === "path" ? node.locked.path : undefined))
      .find((p): p is string => typeof p === "string" && !p.startsWith("/"));
    if (path !== undefined) found.push(relativePath(path));
  }
  // The cause that needs the newest Nix: the release it names reads everything else too.
  let newest: MendedBy | undefined;
  for (const cause of found)
    if (newest === undefined || newerSeries(cause.since, newest.since)) newest = cause;
  return newest;
}

/** Whether release series `a` is newer than `b`. */
function newerSeries(a: string, b: string): boolean {
  const [x, y] = [series(a), series(b)];
  return x.major !== y.major ? x.major > y.major : x.minor > y.minor;
}

/** Why this Nix refused what a newer one accepts, read from Nix's own error; undefined for any other failure. */
function tooOldCause(version: NixVersion, text: string, lock: FlakeLock | undefined): TooOld | undefined {
  const refused = refusedAttribute(text);
  if (refused !== undefined) {
    const { type, attribute } = refused;
    const since = ATTRIBUTE_SINCE[type]?.[attribute];
    if (since === undefined || atLeast(version, since)) return undefined;
    return carries(type, attribute, since, nodesWith(lock, type, attribute));
  }
  const lockVersion = /lock file '[^']*' has unsupported version (\d+)/.exec(text)?.[1];
  if (lockVersion !== undefined && Number(lockVersion) > 7) {
    return {
      cause: `flake.lock is lock version ${lockVersion}, written by a Nix newer than every release so far (they read versions ${LOCK_VERSIONS})`,
      since: undefined,
    };
  }
  // ≤ 2.25 take a locked relative path for an unlocked one: "lockfile contains mutable lock
  // '{"path":"./sub","type":"path"}'" (2.8), "lock file contains unlocked input '…'" (2.25).
  const unlocked = /lock ?file contains (?:mutable lock|unlocked input) '(\{[^']*\})'/i.exec(text)?.[1];
  if (unlocked !== undefined && !atLeast(version, RELATIVE_PATH_SINCE)) {
    const ref = v.safeParse(v.object({ type: v.literal("path"), path: v.string() }), safeJson(unlocked));
    if (ref.success && !ref.output.path.startsWith("/")) return relativePath(ref.output.path);
  }
  return undefined;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * The one-line error for a Nix run that failed only because this Nix is older than the lock or the
 * flake needs — naming the Nix found and the Nix needed — or undefined when the failure is anything
 * else. `stderr` is Nix's own output; `lock` (the lock Nix read) lets the message name its nodes.
 */
export function nixTooOld(
  version: NixVersion,
  what: string,
  stderr: string,
  lock?: FlakeLock,
): string | undefined {
  return tooOldSentence(version, what, tooOldCause(version, stripVTControlCharacters(stderr), lock));
}

/**
 * The same sentence for a failed run whose error Nix wrote to the terminal itself, judged from the
 * lock alone: undefined unless the lock holds something this Nix cannot read.
 */
export function nixTooOldForLock(version: NixVersion, what: string, lock?: FlakeLock): string | undefined {
  const sentence = tooOldSentence(version, what, tooOldForLock(version, lock));
  return sentence === undefined ? undefined : `${sentence}; Nix's own error is above`;
}

function tooOldSentence(version: NixVersion, what: string, tooOld: TooOld | undefined): string | undefined {
  const found = `${version.lix ? "Lix" : "Nix"} ${version.version}`;
  if (tooOld === undefined) return undefined;
  const fix =
    tooOld.since === undefined
      ? "use the Nix that wrote it"
      : `use Nix ${tooOld.since} or newer (the update action installs a current one)`;
  return `${found} is too old to ${what}: ${tooOld.cause}; ${fix}`;
}

export interface NixRunOptions {
  cwd: string;
  /** What the run does, after "Nix failed to": `update 'nixpkgs'`. */
  what: string;
  /** What to check when Nix failed for another reason than its version. */
  hint?: string;
  /** The lock Nix reads, so that an error about its content can name the nodes. */
  lock?: FlakeLock;
  signal?: AbortSignal;
}

export interface Nix {
  version: NixVersion;
  /**
   * Run `nix ARGS` in `cwd`; throws RuntimeError with Nix's own error line on failure, or with the
   * Nix needed when this one is too old for the lock or the flake.
   */
  run(args: readonly string[], opts: NixRunOptions): Promise<void>;
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
    async run(args, { cwd, what, hint, lock, signal }) {
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
        // On a terminal Nix's output went there itself, and only its exit status is known here: the
        // lock alone then says whether this Nix is too old for it.
        const tooOld =
          nixTooOld(version, what, error.stderr, lock) ??
          (stdio === "inherit" ? nixTooOldForLock(version, what, lock) : undefined);
        if (tooOld !== undefined) throw new RuntimeError(tooOld);
        const detail = error.stderr.trim() === "" ? "see Nix's output above" : nixErrorLine(error.stderr);
        throw new RuntimeError(`Nix failed to ${what}${hint === undefined ? "" : `; ${hint}`}: ${detail}`);
      }
    },
  };
}

import { existsSync, mkdirSync, mkdtempSync, realpathSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { $ } from "zx";

export interface NixTestEnvOptions {
  /**
   * PEM file Nix trusts for HTTPS (the fake GitHub's self-signed certificate). Keep it under
   * os.tmpdir(): the chroot Nix versions see only /tmp of the host.
   */
  certFile?: string;
}

/** Env variables, plus disposal (`await using`) of the temporary directory they point into. */
export type NixTestEnv = Record<string, string> & AsyncDisposable;

/**
 * Variables to lay over process.env so Nix runs hermetically: offline except for what the test serves
 * on loopback, with fresh caches, and without the developer's own Nix or registry configuration.
 * Each call gets its own directory, so one test's fetches never satisfy another's; dispose removes it.
 * The disposer is non-enumerable, so `{ ...process.env, ...env }` copies only the variables.
 */
export function nixTestEnv(opts: NixTestEnvOptions = {}): NixTestEnv {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), "flake-bump-nix-")));
  const registry = join(dir, "registry.json");
  writeFileSync(registry, `${JSON.stringify({ flakes: [], version: 2 })}\n`);
  const xdg = (name: string): string => {
    const sub = join(dir, name);
    mkdirSync(sub);
    return sub;
  };
  const config = [
    "experimental-features = nix-command flakes",
    // Empty, so registry references (`nixpkgs`) fail at once instead of downloading the global registry.
    `flake-registry = ${registry}`,
    // Re-resolve `github:` refs and branches on every call, as a fresh CI runner would.
    "tarball-ttl = 0",
    // Locked inputs with a narHash are first looked up in substituters; there are none offline.
    "substituters =",
    // Transient-error retries back off for seconds; a loopback server does not fail transiently.
    "download-attempts = 1",
    "connect-timeout = 5",
    // Test repos routinely have untracked flake.lock files; the warning would only be noise in assertions.
    "warn-dirty = false",
  ];
  const vars: Record<string, string> = {
    NIX_CONFIG: config.join("\n"),
    XDG_CACHE_HOME: xdg("cache"),
    // Hides the user's nix.conf and user registry (~/.config/nix/registry.json), which could add inputs.
    XDG_CONFIG_HOME: xdg("config"),
    XDG_STATE_HOME: xdg("state"),
    XDG_DATA_HOME: xdg("data"),
  };
  if (opts.certFile !== undefined) vars.NIX_SSL_CERT_FILE = opts.certFile;
  const env: NixTestEnv = { ...vars, [Symbol.asyncDispose]: () => rm(dir, { recursive: true, force: true }) };
  Object.defineProperty(env, Symbol.asyncDispose, { enumerable: false });
  return env;
}

export interface NixVariant {
  /** For test titles, e.g. `nix 2.8.0` or `nix 2.34.8 (sid chroot)`. */
  name: string;
  /** As `nix --version` prints it, e.g. `2.26.3`. */
  version: string;
  /** Directory to put first on PATH so `nix` is this variant; absent for the system Nix. */
  pathPrefix?: string;
  /** To lay over a test's env: `{ PATH }` with pathPrefix first, or nothing for the system Nix. */
  env: Record<string, string>;
}

/**
 * The Nix versions the tests run besides the system's, oldest first: each is a Debian suite's nix-bin in
 * a chroot that `bash tests/support/setup-nix-VERSION.sh` sets up (2.34 is what the action installs).
 */
export const CHROOT_NIX = [
  { version: "2.26", suite: "trixie" },
  { version: "2.34", suite: "sid" },
] as const;

/** Where tests/support/setup-nix-chroot.sh puts a version's chroot; the same default, spelled the same way. */
export function nixChrootDir(version: string, env: Record<string, string | undefined> = process.env): string {
  const cache = env.XDG_CACHE_HOME || join(env.HOME || homedir(), ".cache");
  return join(env.FLAKE_BUMP_NIX_ROOT || join(cache, "flake-bump"), `nix-${version}`);
}

/** PATH for running `variant`: its shim dir first, when it has one. */
export function variantPath(variant: Pick<NixVariant, "pathPrefix">, path = process.env.PATH ?? ""): string {
  return variant.pathPrefix === undefined ? path : `${variant.pathPrefix}${delimiter}${path}`;
}

/** Nix 2.8 prints `nix (Nix) 2.8.0`, Lix `nix (Lix, like Nix) 2.91.1`. */
export function parseNixVersion(output: string): string | undefined {
  const firstLine = output.split("\n", 1)[0] ?? "";
  return /\s(\d+\.\d+(?:\.\d+)?)\S*\s*$/.exec(firstLine)?.[1];
}

function probe(pathPrefix: string | undefined): { version: string } | { error: string } {
  const env = { ...process.env, PATH: variantPath(pathPrefix === undefined ? {} : { pathPrefix }) };
  const out = $.sync({ env, nothrow: true, quiet: true, timeout: "60s" })`nix --version`;
  const version = out.exitCode === 0 ? parseNixVersion(out.stdout) : undefined;
  if (version === undefined) {
    return { error: `'nix --version' failed (exit ${out.exitCode}): ${(out.stderr || out.stdout).trim()}` };
  }
  return { version };
}

/** Why a chroot Nix cannot be used here, or its variant. */
function chrootVariant({ version: wanted, suite }: (typeof CHROOT_NIX)[number]): NixVariant | string {
  const dir = nixChrootDir(wanted);
  const shimDir = join(dir, "bin");
  const setup = `bash tests/support/setup-nix-${wanted}.sh`;
  if (!existsSync(join(dir, "rootfs", ".flake-bump-ready")) || !existsSync(join(shimDir, "nix"))) {
    return `Nix ${wanted} is not set up in ${dir} (run as root: ${setup})`;
  }
  if (process.getuid?.() !== 0) return `the Nix ${wanted} chroot needs root (chroot and mount)`;
  // The chroot binds the host's /tmp only: test repos and certificates elsewhere would be invisible to it.
  const tmp = realpathSync(tmpdir());
  if (tmp !== "/tmp" && !tmp.startsWith("/tmp/")) {
    return `os.tmpdir() is ${tmp}, which the Nix ${wanted} chroot cannot see; unset TMPDIR or set it under /tmp`;
  }
  const result = probe(shimDir);
  if ("error" in result) return `the Nix ${wanted} shim in ${shimDir} does not run: ${result.error}`;
  return {
    name: `nix ${result.version} (${suite} chroot)`,
    version: result.version,
    pathPrefix: shimDir,
    env: { PATH: variantPath({ pathPrefix: shimDir }) },
  };
}

function versionMatches(version: string, wanted: string): boolean {
  return version === wanted || version.startsWith(`${wanted}.`);
}

/** A chroot Nix the tests know of: the version it should be, and its variant or why it is missing. */
export interface ChrootNix {
  wanted: string;
  found: NixVariant | string;
}

/**
 * Which variants to test, from what is available and the environment:
 * FLAKE_BUMP_TEST_NIX unset or empty → every available one; `all` → the system's and every chroot's,
 * all required; otherwise a comma/space separated list of `system` or version prefixes (`2.8`, `2.26`,
 * `2.34`), each required. With CI=true a missing chroot Nix is an error even by default, because
 * .ci/run sets them all up.
 */
export function selectNixVariants(
  available: { system: NixVariant; chroots: readonly ChrootNix[] },
  env: { FLAKE_BUMP_TEST_NIX?: string | undefined; CI?: string | undefined },
  /** The variable the choice came from, for the errors. */
  variable = "FLAKE_BUMP_TEST_NIX",
): { variants: NixVariant[]; skipped?: string } {
  const { system, chroots } = available;
  const wanted = (env.FLAKE_BUMP_TEST_NIX ?? "").split(/[\s,]+/).filter((token) => token !== "");
  const orThrow = (chroot: ChrootNix, why: string): NixVariant => {
    if (typeof chroot.found === "string") throw new Error(`${why}, but ${chroot.found}.`);
    return chroot.found;
  };
  if (wanted.length === 0) {
    const variants = [system];
    const skipped: string[] = [];
    for (const chroot of chroots) {
      if (typeof chroot.found !== "string") variants.push(chroot.found);
      else if (env.CI === "true") orThrow(chroot, `CI=true requires Nix ${chroot.wanted} in the tests`);
      else skipped.push(`Skipping the Nix ${chroot.wanted} tests: ${chroot.found}.`);
    }
    return skipped.length === 0 ? { variants } : { variants, skipped: skipped.join("\n") };
  }
  if (wanted.includes("all")) {
    const asked = (chroot: ChrootNix) => orThrow(chroot, `${variable}=all asks for Nix ${chroot.wanted}`);
    return { variants: [system, ...chroots.map(asked)] };
  }
  const variants: NixVariant[] = [];
  for (const token of wanted) {
    let match: NixVariant | undefined;
    if (token === "system" || versionMatches(system.version, token)) match = system;
    const chroot = chroots.find(({ wanted: version, found }) =>
      versionMatches(typeof found === "string" ? version : found.version, token),
    );
    if (match === undefined && chroot !== undefined) {
      match = orThrow(chroot, `${variable} asks for Nix ${token}`);
    }
    if (match === undefined) {
      const known = [
        system.version,
        ...chroots.map(({ wanted: version, found }) => (typeof found === "string" ? version : found.version)),
      ].join(", ");
      throw new Error(`${variable} names Nix '${token}', which is not one of: system, all, ${known}.`);
    }
    if (!variants.includes(match)) variants.push(match);
  }
  return { variants };
}

function systemVariant(): NixVariant {
  const probed = probe(undefined);
  if ("error" in probed) {
    throw new Error(`The tests need Nix on PATH (Debian: apt-get install nix-bin): ${probed.error}`);
  }
  return { name: `nix ${probed.version}`, version: probed.version, env: {} };
}

/**
 * The one Nix the benchmark measures: `wanted` (FLAKE_BUMP_BENCH_NIX: `system`, or a version as
 * FLAKE_BUMP_TEST_NIX takes them, e.g. `2.26`) when given; by default the newest chroot Nix (current
 * Nix, which the update action installs) when it is set up, else the system's, with a note saying so.
 */
export function benchNixVariant(wanted: string | undefined): { variant: NixVariant; note?: string } {
  const system = systemVariant();
  const newest = CHROOT_NIX[CHROOT_NIX.length - 1];
  if (wanted === undefined || wanted.trim() === "") {
    const found = newest === undefined ? "no chroot Nix is known" : chrootVariant(newest);
    if (typeof found !== "string") return { variant: found };
    return {
      variant: system,
      note: `Measured on the system's Nix ${system.version}, not current Nix: ${found}.`,
    };
  }
  const chroots = CHROOT_NIX.map((chroot) => ({ wanted: chroot.version, found: chrootVariant(chroot) }));
  const { variants } = selectNixVariants(
    { system, chroots },
    { FLAKE_BUMP_TEST_NIX: wanted },
    "FLAKE_BUMP_BENCH_NIX",
  );
  const [variant, ...more] = variants;
  if (variant === undefined || more.length > 0) {
    throw new Error(
      `FLAKE_BUMP_BENCH_NIX names ${variants.length} Nix versions; name one (system, or e.g. 2.34).`,
    );
  }
  return { variant };
}

let memo: NixVariant[] | undefined;

/**
 * The Nix versions to run integration tests against: `describe.each(nixVariants())`, with `variant.env`
 * (or `variantPath(variant)` as PATH) laid over the test's env. Probed once per process; throws when a
 * required one is missing.
 */
export function nixVariants(): NixVariant[] {
  if (memo === undefined) {
    const system = systemVariant();
    const { FLAKE_BUMP_TEST_NIX, CI } = process.env;
    const { variants, skipped } = selectNixVariants(
      {
        system,
        chroots: CHROOT_NIX.map((chroot) => ({ wanted: chroot.version, found: chrootVariant(chroot) })),
      },
      { FLAKE_BUMP_TEST_NIX, CI },
    );
    if (skipped !== undefined) console.warn(skipped);
    memo = variants;
  }
  return memo;
}

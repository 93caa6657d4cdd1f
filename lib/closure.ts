/**
 * Derivation closures: reading them from Nix (`derivation show -r`, one call for every root) and
 * diffing two of them as a reviewer reads a bump — packages by name and version, without the noise.
 */
import * as v from "valibot";
import { $ } from "zx/core";
import { RuntimeError } from "./cli.ts";
import { EXPERIMENTAL, type NixVersion, nixEnv, nixErrorLine } from "./nix.ts";

/** `builtins.parseDrvName`: the name ends at the first `-` not followed by a letter. */
export function parseDrvName(full: string): { name: string; version: string } {
  for (let i = 0; i + 1 < full.length; i++) {
    if (full[i] === "-" && !/[A-Za-z]/.test(full.charAt(i + 1))) {
      return { name: full.slice(0, i), version: full.slice(i + 1) };
    }
  }
  return { name: full, version: "" };
}

/** `/nix/store/<hash>-openssl-3.3.3.drv` → `openssl-3.3.3`. */
export function drvName(drvPath: string): string {
  const base = drvPath.slice(drvPath.lastIndexOf("/") + 1).replace(/\.drv$/, "");
  const dash = base.indexOf("-");
  return dash >= 0 ? base.slice(dash + 1) : base;
}

export interface DrvNode {
  /** The derivation's name (`openssl-3.3.3`). */
  name: string;
  /** Its output hash is known in advance: a fetcher (fetchurl, fetchgit, …), i.e. a source. */
  fixedOutput: boolean;
  inputDrvs: string[];
}

/** Every derivation of a closure by its .drv path. */
export type DrvGraph = Map<string, DrvNode>;

const ARCHIVE = /\.(tar(\.[a-z0-9]+)?|tgz|tbz2?|txz|zip|gem|jar|whl|crate|deb|rpm|gz|xz|bz2|zst|lz)$/i;

/**
 * What a reviewer does not read as a package: fixed-output derivations (every fetcher's result —
 * tarballs, git checkouts, patches fetched by URL), source and patch files however they were made,
 * and the bootstrap stages of the standard environment. They change with the packages that use them,
 * which are listed anyway.
 */
export function isNoise(node: Pick<DrvNode, "name" | "fixedOutput">): boolean {
  const { name } = node;
  return (
    node.fixedOutput ||
    ARCHIVE.test(name) ||
    /\.(patch|diff)$/i.test(name) ||
    /(^|-)(source|src)$/.test(name) ||
    /(^|-)bootstrap(-|$)/.test(name) ||
    /(^|-)stage[0-4](-|$)/.test(name)
  );
}

const DerivationShow = v.record(
  v.string(),
  v.object({
    outputs: v.record(v.string(), v.object({ hash: v.optional(v.string()) })),
    // Nix 2.8 lists output names; ≥ 2.18 gives `{ outputs, dynamicOutputs }`. Only the keys matter.
    inputDrvs: v.record(v.string(), v.unknown()),
  }),
);

/** The graph from `nix derivation show -r` (or `nix show-derivation -r` on Nix < 2.15). */
export function parseDerivationShow(json: unknown): DrvGraph {
  const result = v.safeParse(DerivationShow, json);
  if (!result.success) {
    throw new RuntimeError(
      "Nix printed derivations in a shape flake-bump does not know; report this with your Nix version",
    );
  }
  const graph: DrvGraph = new Map();
  for (const [path, drv] of Object.entries(result.output)) {
    graph.set(path, {
      name: drvName(path),
      fixedOutput: Object.values(drv.outputs).some((output) => output.hash !== undefined),
      inputDrvs: Object.keys(drv.inputDrvs),
    });
  }
  return graph;
}

/** `nix derivation show` appeared in 2.15; before, the same command was `nix show-derivation`. */
export function derivationShowArgs(version: NixVersion, drvPaths: readonly string[]): string[] {
  const modern = version.lix || version.major > 2 || (version.major === 2 && version.minor >= 15);
  return [
    ...EXPERIMENTAL,
    ...(modern ? ["derivation", "show"] : ["show-derivation"]),
    "--recursive",
    "--option",
    "substitute",
    "false",
    ...drvPaths,
  ];
}

/**
 * Read the closures of `drvPaths` in one Nix call. Evaluation has written these .drv files to the
 * store already; reading them builds and downloads nothing.
 */
export async function readDrvGraph(
  version: NixVersion,
  drvPaths: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; signal?: AbortSignal } = {},
): Promise<DrvGraph> {
  if (drvPaths.length === 0) return new Map();
  const out = await $({
    env: nixEnv(opts.env ?? process.env),
    quiet: true,
    nothrow: true,
    ...(opts.signal ? { signal: opts.signal } : {}),
  })`nix ${derivationShowArgs(version, drvPaths)}`;
  if (out.exitCode !== 0) {
    throw new RuntimeError(`Nix failed to read the hosts' derivations: ${nixErrorLine(out.stderr)}`);
  }
  return parseDerivationShow(JSON.parse(out.stdout));
}

/** Package name → the versions of it in one closure, without noise. */
export type PackageSet = Map<string, Set<string>>;

/** The packages of `root`'s closure in `graph`. */
export function closurePackages(graph: DrvGraph, root: string): PackageSet {
  const packages: PackageSet = new Map();
  const seen = new Set<string>([root]);
  const stack = [root];
  for (let path = stack.pop(); path !== undefined; path = stack.pop()) {
    const node = graph.get(path);
    if (node === undefined) continue;
    for (const input of node.inputDrvs) {
      if (!seen.has(input)) {
        seen.add(input);
        stack.push(input);
      }
    }
    if (isNoise(node)) continue;
    const { name, version } = parseDrvName(node.name);
    const versions = packages.get(name);
    if (versions === undefined) packages.set(name, new Set([version]));
    else versions.add(version);
  }
  return packages;
}

export interface PackageChange {
  name: string;
  from: string;
  to: string;
}
export interface PackageEntry {
  name: string;
  version: string;
}
export interface PackageDiff {
  changed: PackageChange[];
  added: PackageEntry[];
  removed: PackageEntry[];
}

const byVersion = new Intl.Collator("en", { numeric: true });

/**
 * What moved between two closures. A name whose versions differ pairs its old and new versions in
 * order (`openssl 3.3.2 → 3.3.3`); the unpaired rest are additions or removals of that version.
 * A package rebuilt at the same version is not listed: its version did not move.
 */
export function diffPackages(from: PackageSet, to: PackageSet): PackageDiff {
  const diff: PackageDiff = { changed: [], added: [], removed: [] };
  const names = new Set([...from.keys(), ...to.keys()]);
  for (const name of [...names].sort()) {
    const before = from.get(name) ?? new Set<string>();
    const after = to.get(name) ?? new Set<string>();
    const gone = [...before].filter((version) => !after.has(version)).sort(byVersion.compare);
    const come = [...after].filter((version) => !before.has(version)).sort(byVersion.compare);
    const pairs = before.size > 0 && after.size > 0 ? Math.min(gone.length, come.length) : 0;
    for (let i = 0; i < pairs; i++) diff.changed.push({ name, from: gone[i] ?? "", to: come[i] ?? "" });
    for (const version of gone.slice(pairs)) diff.removed.push({ name, version });
    for (const version of come.slice(pairs)) diff.added.push({ name, version });
  }
  return diff;
}

/**
 * Diffs many (from, to) root pairs over one graph. Hosts that share their closures share the work:
 * each root's package set is computed once, and a pair seen before is answered from the cache.
 */
export class ClosureDiffer {
  private readonly sets = new Map<string, PackageSet>();
  private readonly diffs = new Map<string, PackageDiff>();
  constructor(private readonly graph: DrvGraph) {}

  packages(root: string): PackageSet {
    let set = this.sets.get(root);
    if (set === undefined) {
      set = closurePackages(this.graph, root);
      this.sets.set(root, set);
    }
    return set;
  }

  diff(from: string, to: string): PackageDiff {
    const key = `${from}\n${to}`;
    let diff = this.diffs.get(key);
    if (diff === undefined) {
      diff = diffPackages(this.packages(from), this.packages(to));
      this.diffs.set(key, diff);
    }
    return diff;
  }
}

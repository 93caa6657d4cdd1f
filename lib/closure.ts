/**
 * Derivation closures: reading them (the store's .drv files directly where the store is local, else
 * `nix derivation show -r`) and diffing two of them as a reviewer reads a bump — packages by name and
 * version, without the noise.
 */
import { existsSync, readFileSync } from "node:fs";
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

/** A node's package as a reviewer reads it, or null for noise. */
export type PackageOf = (path: string, node: DrvNode) => { name: string; version: string } | null;

const packageOfNode: PackageOf = (_path, node) => (isNoise(node) ? null : parseDrvName(node.name));

/** The packages of `root`'s closure in `graph`. */
export function closurePackages(
  graph: DrvGraph,
  root: string,
  packageOf: PackageOf = packageOfNode,
): PackageSet {
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
    const pkg = packageOf(path, node);
    if (pkg === null) continue;
    const versions = packages.get(pkg.name);
    if (versions === undefined) packages.set(pkg.name, new Set([pkg.version]));
    else versions.add(pkg.version);
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
  // Each derivation is classified once, not once per closure it is in: hosts share most of theirs.
  private readonly nodePackages = new Map<string, { name: string; version: string } | null>();
  private readonly packageOf: PackageOf = (path, node) => {
    let pkg = this.nodePackages.get(path);
    if (pkg === undefined) {
      pkg = packageOfNode(path, node);
      this.nodePackages.set(path, pkg);
    }
    return pkg;
  };
  constructor(private readonly graph: DrvGraph) {}

  packages(root: string): PackageSet {
    let set = this.sets.get(root);
    if (set === undefined) {
      set = closurePackages(this.graph, root, this.packageOf);
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

/** A value of the ATerm text Nix writes a .drv in: strings, lists `[…]`, tuples `(…)`, `Ctor(…)`. */
export type ATerm = string | { list: ATerm[] } | { tuple: ATerm[] } | { ctor: string; args: ATerm[] };

class ATermSyntaxError extends Error {}

/**
 * Parse one ATerm. Strings are escaped as Nix's `printString` writes them (`\"`, `\\`, `\n`, `\r`,
 * `\t`); a string's end is found with indexOf, so the large `env` values of a host's top-level
 * derivation cost little more than a copy.
 */
export function parseATerm(text: string): ATerm {
  let pos = 0;
  // The next backslash at or after `pos`, found once per backslash: searching anew for every string
  // would scan to the end of a file that has none, quadratic in a host's large top-level derivation.
  let slash = -1;
  const fail = (what: string): never => {
    throw new ATermSyntaxError(`${what} at offset ${pos}`);
  };
  const string = (): string => {
    pos++; // the opening quote
    let out = "";
    for (;;) {
      const quote = text.indexOf('"', pos);
      if (quote < 0) fail("unterminated string");
      if (slash !== text.length && slash < pos) {
        slash = text.indexOf("\\", pos);
        if (slash < 0) slash = text.length;
      }
      if (slash > quote) {
        out += text.slice(pos, quote);
        pos = quote + 1;
        return out;
      }
      out += text.slice(pos, slash);
      const escaped = text.charAt(slash + 1);
      out += escaped === "n" ? "\n" : escaped === "r" ? "\r" : escaped === "t" ? "\t" : escaped;
      pos = slash + 2;
    }
  };
  const items = (close: string): ATerm[] => {
    pos++; // the opening bracket
    const out: ATerm[] = [];
    if (text[pos] === close) {
      pos++;
      return out;
    }
    for (;;) {
      out.push(value());
      const c = text[pos++];
      if (c === close) return out;
      if (c !== ",") fail(`expected ',' or '${close}'`);
    }
  };
  const value = (): ATerm => {
    const c = text[pos];
    if (c === '"') return string();
    if (c === "[") return { list: items("]") };
    if (c === "(") return { tuple: items(")") };
    const start = pos;
    while (pos < text.length && /[A-Za-z]/.test(text.charAt(pos))) pos++;
    if (pos === start || text[pos] !== "(") fail("expected a string, list, tuple or constructor");
    return { ctor: text.slice(start, pos), args: items(")") };
  };
  const result = value();
  if (pos !== text.length && text.slice(pos).trim() !== "") fail("unexpected text after the derivation");
  return result;
}

function tupleOf(term: ATerm | undefined): ATerm[] | undefined {
  return typeof term === "object" && "tuple" in term ? term.tuple : undefined;
}
function listOf(term: ATerm | undefined): ATerm[] | undefined {
  return typeof term === "object" && "list" in term ? term.list : undefined;
}

/**
 * The node of one .drv file's text (`drvPath` names it in errors and gives the name when the
 * environment has none, as with `__structuredAttrs`). `Derive(outputs, inputDrvs, inputSrcs, system,
 * builder, args, env)`; Nix's experimental dynamic derivations write `DrvWithVersion(version, …same)`.
 */
export function parseDrvFile(drvPath: string, text: string): DrvNode {
  const bad = (why: string): never => {
    throw new RuntimeError(
      `${drvPath} is not a derivation flake-bump can read (${why}); report this with your Nix version`,
    );
  };
  let term: ATerm;
  try {
    term = parseATerm(text);
  } catch (error) {
    return bad(error instanceof ATermSyntaxError ? error.message : String(error));
  }
  if (typeof term !== "object" || !("ctor" in term)) return bad("no Derive(…)");
  const fields =
    term.ctor === "Derive" ? term.args : term.ctor === "DrvWithVersion" ? term.args.slice(1) : bad(term.ctor);
  const outputs = listOf(fields[0]) ?? bad("outputs is not a list");
  const inputs = listOf(fields[1]) ?? bad("inputDrvs is not a list");
  const env = listOf(fields[6]) ?? bad("env is not a list");
  let fixedOutput = false;
  for (const output of outputs) {
    const hash = tupleOf(output)?.[3];
    if (typeof hash !== "string") return bad("an output is not (name, path, hashAlgo, hash)");
    if (hash !== "") fixedOutput = true;
  }
  const inputDrvs: string[] = [];
  for (const input of inputs) {
    const path = tupleOf(input)?.[0];
    if (typeof path !== "string") return bad("an input derivation is not (path, outputs)");
    inputDrvs.push(path);
  }
  let name: string | undefined;
  for (const entry of env) {
    const pair = tupleOf(entry);
    if (pair?.[0] === "name" && typeof pair[1] === "string") name = pair[1];
  }
  return { name: name ?? drvName(drvPath), fixedOutput, inputDrvs };
}

/**
 * Reads derivation closures into one graph shared by every root, so what the two sides of a bump
 * (and every host) have in common is read once. Where the store's .drv files are readable at their
 * paths (a local store), `add` parses a root's closure from its files at once, while the evaluation
 * of the other hosts still runs; elsewhere (a store in a chroot or container, a remote store) the
 * roots are collected and read by one `nix derivation show -r` in `graph()`.
 */
export class ClosureReader {
  private readonly nodes: DrvGraph = new Map();
  private readonly roots = new Set<string>();
  /** Decided by the first root: is its .drv file where its path says? */
  private direct: boolean | undefined;
  private unreadable = false;

  constructor(
    private readonly version: NixVersion,
    private readonly opts: { env?: NodeJS.ProcessEnv; signal?: AbortSignal } = {},
  ) {}

  /** Whether the .drv files are read directly (undefined before the first root). */
  get readsFiles(): boolean | undefined {
    return this.direct;
  }

  /**
   * Read `root`'s closure now (direct reading) or with the others later. Synchronous reads: the
   * files are small and in the page cache right after evaluation wrote them, and one walk at a time
   * needs no bound on open files.
   */
  add(root: string): void {
    if (this.roots.has(root)) return;
    this.roots.add(root);
    this.direct ??= existsSync(root);
    if (!this.direct || this.unreadable) return;
    const stack = [root];
    for (let path = stack.pop(); path !== undefined; path = stack.pop()) {
      if (this.nodes.has(path)) continue;
      let text: string;
      try {
        text = readFileSync(path, "utf8");
      } catch {
        // Gone since evaluation wrote it (garbage collected?): Nix reads what remains, in graph().
        this.unreadable = true;
        return;
      }
      const node = parseDrvFile(path, text);
      this.nodes.set(path, node);
      for (const input of node.inputDrvs) if (!this.nodes.has(input)) stack.push(input);
    }
  }

  /** Every added root's closure. */
  async graph(): Promise<DrvGraph> {
    if (this.direct && !this.unreadable) return this.nodes;
    return readDrvGraph(this.version, [...this.roots], this.opts);
  }
}

/**
 * Derivation closures: reading them (the store's .drv files directly where the store is local, else
 * `nix derivation show -r`) and diffing two of them as a reviewer reads a bump — packages by name and
 * version, without the noise.
 */
import { existsSync, readFileSync } from "node:fs";
import * as v from "valibot";
import { $ } from "zx/core";
import { RuntimeError } from "../core/errors.ts";
import { EXPERIMENTAL, type NixVersion, nixEnv, nixErrorLine } from "../flake/nix.ts";

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

// `hash` marks a fixed output: a string through JSON format 3, a content address from format 4 on.
const DrvOutputs = v.record(v.string(), v.object({ hash: v.optional(v.unknown()) }));
// Nix 2.8 lists output names; ≥ 2.18 gives `{ outputs, dynamicOutputs }`. Only the keys matter.
const DrvInputs = v.record(v.string(), v.unknown());

/** Nix ≤ 2.32 (derivation JSON formats 1–3): the map itself, inputs under `inputDrvs`. */
const DerivationShowV3 = v.record(v.string(), v.object({ outputs: DrvOutputs, inputDrvs: DrvInputs }));

/**
 * Nix ≥ 2.33 (format 4): `{ version, derivations }`, inputs under `inputs.drvs` (the 2.33 release
 * notes, "Derivation JSON format changes"; format 3 is no longer accepted there).
 */
const DerivationShowV4 = v.object({
  version: v.number(),
  derivations: v.record(v.string(), v.object({ outputs: DrvOutputs, inputs: v.object({ drvs: DrvInputs }) })),
});

/**
 * The graph from `nix derivation show -r` (or `nix show-derivation -r` on Nix < 2.15), keyed by full
 * store path as evaluation names them.
 * @param storeDir where the derivations live: Nix ≥ 2.32 names them by base name only (the 2.32
 * release notes, "Derivation JSON format now uses store path basenames only").
 */
export function parseDerivationShow(json: unknown, storeDir = "/nix/store"): DrvGraph {
  const full = (path: string) => (path.includes("/") ? path : `${storeDir}/${path}`);
  const graph: DrvGraph = new Map();
  const add = (path: string, outputs: v.InferOutput<typeof DrvOutputs>, inputs: Record<string, unknown>) =>
    graph.set(full(path), {
      name: drvName(path),
      fixedOutput: Object.values(outputs).some((output) => output.hash !== undefined),
      inputDrvs: Object.keys(inputs).map(full),
    });
  const v4 = v.safeParse(DerivationShowV4, json);
  if (v4.success) {
    for (const [path, drv] of Object.entries(v4.output.derivations)) add(path, drv.outputs, drv.inputs.drvs);
    return graph;
  }
  const v3 = v.safeParse(DerivationShowV3, json);
  if (!v3.success) {
    throw new RuntimeError(
      "Nix printed derivations in a shape flake-bump does not know; report this with your Nix version",
    );
  }
  for (const [path, drv] of Object.entries(v3.output)) add(path, drv.outputs, drv.inputDrvs);
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
  const first = drvPaths[0] ?? "";
  return parseDerivationShow(JSON.parse(out.stdout), first.slice(0, first.lastIndexOf("/")));
}

/** Package name → the versions of it in one closure, without noise. */
export type PackageSet = Map<string, Set<string>>;

/**
 * A closure's packages flat: `name\0version` keys and the names alone. Diffing two of these is set
 * lookups over strings made once per derivation, with no set of versions built per name and host.
 */
export interface PackageKeys {
  keys: Set<string>;
  names: Set<string>;
}

const SEP = "\0";

/** A derivation's package key (`openssl\03.3.3`), or null for noise. */
export function packageKey(node: Pick<DrvNode, "name" | "fixedOutput">): string | null {
  if (isNoise(node)) return null;
  const { name, version } = parseDrvName(node.name);
  return `${name}${SEP}${version}`;
}

/** The package keys of `root`'s closure in `graph`; `keyOf` may cache per derivation. */
export function closureKeys(
  graph: DrvGraph,
  root: string,
  keyOf: (path: string, node: DrvNode) => string | null = (_path, node) => packageKey(node),
): PackageKeys {
  const keys = new Set<string>();
  const names = new Set<string>();
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
    const key = keyOf(path, node);
    if (key === null || keys.has(key)) continue;
    keys.add(key);
    names.add(key.slice(0, key.indexOf(SEP)));
  }
  return { keys, names };
}

/** The packages of `root`'s closure in `graph`. */
export function closurePackages(graph: DrvGraph, root: string): PackageSet {
  return toPackageSet(closureKeys(graph, root));
}

function toPackageSet({ keys }: PackageKeys): PackageSet {
  const set: PackageSet = new Map();
  for (const key of keys) {
    const [name = "", version = ""] = key.split(SEP);
    const versions = set.get(name);
    if (versions === undefined) set.set(name, new Set([version]));
    else versions.add(version);
  }
  return set;
}

function toKeys(set: PackageSet): PackageKeys {
  const keys = new Set<string>();
  for (const [name, versions] of set) for (const version of versions) keys.add(`${name}${SEP}${version}`);
  return { keys, names: new Set(set.keys()) };
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

/**
 * A string's natural sort key: each run of digits becomes `0`, a character for its length and the
 * digits without leading zeros, so plain code unit order of the keys puts `pkg2` before `pkg10`
 * and `3.9` before `3.10`. A key rather than `Intl.Collator({ numeric: true })`: sorting 100,000
 * package names with the collator's compare takes 1.7 s on a CI-sized machine, since every compare
 * collates both strings again, while a key is made once per string and compared as a plain string.
 * Its order is also the same on every machine: no locale; case and punctuation count as written.
 */
export function naturalKey(text: string): string {
  return text.replace(/\d+/g, (digits) => {
    const value = digits.replace(/^0+(?=\d)/, "");
    return `0${String.fromCharCode(0x30 + value.length)}${value}`;
  });
}

function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Natural order (see naturalKey); strings with the same key (`01`, `1`) in code unit order. */
export function naturalOrder(a: string, b: string): number {
  return byCodeUnits(naturalKey(a), naturalKey(b)) || byCodeUnits(a, b);
}

/** `items` in natural order of `by(item)`, each key made once. */
export function naturalSort<T>(items: readonly T[], by: (item: T) => string): T[] {
  return items
    .map((item) => ({ item, text: by(item), key: naturalKey(by(item)) }))
    .sort((a, b) => byCodeUnits(a.key, b.key) || byCodeUnits(a.text, b.text))
    .map(({ item }) => item);
}

/**
 * What moved between two closures. A name whose versions differ pairs its old and new versions in
 * order (`openssl 3.3.2 → 3.3.3`); the unpaired rest are additions or removals of that version.
 * A package rebuilt at the same version is not listed: its version did not move.
 */
export function diffPackages(from: PackageSet, to: PackageSet): PackageDiff {
  return diffKeys(toKeys(from), toKeys(to));
}

/** `diffPackages` over flat keys: only the names whose versions differ are looked at. */
export function diffKeys(from: PackageKeys, to: PackageKeys): PackageDiff {
  const gone = new Map<string, string[]>();
  const come = new Map<string, string[]>();
  const collect = (side: PackageKeys, other: PackageKeys, into: Map<string, string[]>) => {
    for (const key of side.keys) {
      if (other.keys.has(key)) continue;
      const split = key.indexOf(SEP);
      const name = key.slice(0, split);
      const versions = into.get(name);
      if (versions === undefined) into.set(name, [key.slice(split + 1)]);
      else versions.push(key.slice(split + 1));
    }
  };
  collect(from, to, gone);
  collect(to, from, come);
  const diff: PackageDiff = { changed: [], added: [], removed: [] };
  for (const name of naturalSort([...new Set([...gone.keys(), ...come.keys()])], (name) => name)) {
    const removed = (gone.get(name) ?? []).sort(naturalOrder);
    const added = (come.get(name) ?? []).sort(naturalOrder);
    const pairs = from.names.has(name) && to.names.has(name) ? Math.min(removed.length, added.length) : 0;
    for (let i = 0; i < pairs; i++) diff.changed.push({ name, from: removed[i] ?? "", to: added[i] ?? "" });
    for (const version of removed.slice(pairs)) diff.removed.push({ name, version });
    for (const version of added.slice(pairs)) diff.added.push({ name, version });
  }
  return diff;
}

/**
 * Diffs many (from, to) root pairs over one graph. Hosts that share their closures share the work:
 * each derivation is classified once, each root's packages are collected once, and a pair seen
 * before is answered from the cache.
 */
export class ClosureDiffer {
  private readonly sets = new Map<string, PackageKeys>();
  private readonly diffs = new Map<string, PackageDiff>();
  private readonly nodeKeys = new Map<string, string | null>();
  private readonly keyOf = (path: string, node: DrvNode): string | null => {
    let key = this.nodeKeys.get(path);
    if (key === undefined) {
      key = packageKey(node);
      this.nodeKeys.set(path, key);
    }
    return key;
  };
  constructor(private readonly graph: DrvGraph) {}

  private keys(root: string): PackageKeys {
    let set = this.sets.get(root);
    if (set === undefined) {
      set = closureKeys(this.graph, root, this.keyOf);
      this.sets.set(root, set);
    }
    return set;
  }

  packages(root: string): PackageSet {
    return toPackageSet(this.keys(root));
  }

  diff(from: string, to: string): PackageDiff {
    const key = `${from}\n${to}`;
    let diff = this.diffs.get(key);
    if (diff === undefined) {
      diff = diffKeys(this.keys(from), this.keys(to));
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

  /** The graph read so far when the files are read directly: complete for every added root. */
  get local(): DrvGraph | undefined {
    return this.direct && !this.unreadable ? this.nodes : undefined;
  }

  /** Every added root's closure. */
  async graph(): Promise<DrvGraph> {
    if (this.direct && !this.unreadable) return this.nodes;
    return readDrvGraph(this.version, [...this.roots], this.opts);
  }
}

/**
 * A large, deterministic flake.lock pair shaped like a real fleet's (see the real-flake-locks README):
 * `github` nodes with the Nix key scheme (`nixpkgs`, `nixpkgs_2`, …), `follows` given as arrays of one
 * or two names, nested inputs several levels deep, some `flake = false` and `tarball` nodes, keys
 * written sorted as Nix writes them. In the second lock exactly one root input moved, together with
 * its own (non-follows) inputs, as a real bump of one input does.
 */

/** Deterministic PRNG (mulberry32), so every run measures the same lock. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Edge = string | string[];
interface Attrs {
  [key: string]: string | number;
}
interface Node {
  inputs?: Record<string, Edge>;
  locked?: Attrs;
  original?: Attrs;
  flake?: boolean;
}

export interface SyntheticPair {
  before: string;
  after: string;
  /** The root input that moved. */
  moved: string;
  /** How many of its own inputs moved with it (the diff's `transitive.changed`). */
  movedTransitive: number;
  nodes: number;
}

const INPUT_NAMES = [
  "nixpkgs",
  "flake-utils",
  "systems",
  "flake-parts",
  "home-manager",
  "treefmt-nix",
  "flake-compat",
  "nix-darwin",
  "git-hooks",
  "rust-overlay",
  "crane",
  "fenix",
  "disko",
  "sops-nix",
  "agenix",
  "nixos-hardware",
  "devshell",
  "pre-commit-hooks",
] as const;

/** Stringify with object keys sorted at every level and two-space indents, as Nix writes flake.lock. */
function sortedJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, v: unknown) => {
      if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
      return Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    },
    2,
  );
}

export function syntheticLockPair(nodeCount = 1000, seed = 20261125): SyntheticPair {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => {
    const item = items[Math.floor(random() * items.length)];
    if (item === undefined) throw new Error("pick from an empty list");
    return item;
  };
  const hex = (length: number) =>
    Array.from({ length }, () => "0123456789abcdef"[Math.floor(random() * 16)] ?? "0").join("");
  const narHash = () => {
    const bytes = new Uint8Array(32);
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
    return `sha256-${Buffer.from(bytes).toString("base64")}`;
  };
  const lastModified = () => 1_700_000_000 + Math.floor(random() * 90_000_000);

  const nodes: Record<string, Node> = {};
  const used = new Map<string, number>();
  /** Nix's key scheme: the input name, then `name_2`, `name_3`, … for further nodes of that name. */
  const allocate = (name: string): string => {
    const n = (used.get(name) ?? 0) + 1;
    used.set(name, n);
    return n === 1 ? name : `${name}_${n}`;
  };
  const budget = () => nodeCount - Object.keys(nodes).length;

  const leaf = (name: string): string => {
    const key = allocate(name);
    const owner = `${name.replace(/-/g, "")}-org`;
    if (random() < 0.03) {
      const url = `https://example.org/${name}/archive/${hex(12)}.tar.gz`;
      nodes[key] = {
        locked: { lastModified: lastModified(), narHash: narHash(), type: "tarball", url },
        original: { type: "tarball", url },
      };
      return key;
    }
    const node: Node = {
      locked: {
        lastModified: lastModified(),
        narHash: narHash(),
        owner,
        repo: name,
        rev: hex(40),
        type: "github",
      },
      original: { owner, repo: name, type: "github" },
    };
    if (random() < 0.3) node.original = { ...node.original, ref: pick(["main", "nixos-unstable", "master"]) };
    if (random() < 0.1) node.flake = false;
    nodes[key] = node;
    return key;
  };

  /** Root-level paths a follows edge may name; filled as root inputs with real nodes appear. */
  const followTargets: string[][] = [];

  /** A flake node with inputs of its own, nested up to `depth` more levels. */
  const flake = (name: string, depth: number): string => {
    const key = leaf(name);
    const node = nodes[key];
    if (node === undefined || node.flake === false || node.locked?.type === "tarball") return key;
    const inputs: Record<string, Edge> = {};
    const count = 2 + Math.floor(random() * 4);
    for (let i = 0; i < count; i++) {
      const child = pick(INPUT_NAMES);
      if (child in inputs) continue;
      const target = followTargets.find((path) => path.at(-1) === child);
      if (target !== undefined && (random() < 0.35 || budget() <= 1)) {
        inputs[child] = [...target];
      } else if (budget() > 1) {
        inputs[child] = depth > 0 && random() < 0.7 ? flake(child, depth - 1) : leaf(child);
      }
    }
    if (Object.keys(inputs).length > 0) node.inputs = inputs;
    return key;
  };

  nodes.root = { inputs: {} };
  const rootInputs: Record<string, Edge> = {};
  // The shared nixpkgs comes first so that most follows have somewhere to point, as in real fleets.
  rootInputs.nixpkgs = leaf("nixpkgs");
  followTargets.push(["nixpkgs"]);
  let index = 0;
  while (budget() > 0) {
    index += 1;
    const name = `${pick(INPUT_NAMES)}-${index}`;
    const key = flake(name, 4);
    rootInputs[name] = key;
    // Two-element follows, like `catppuccin: ["nixcfg", "catppuccin"]` in the real lock.
    for (const [child, edge] of Object.entries(nodes[key]?.inputs ?? {})) {
      if (typeof edge === "string" && !followTargets.some((path) => path.at(-1) === child)) {
        followTargets.push([name, child]);
      }
    }
  }
  nodes.root = { inputs: rootInputs };
  const before = { nodes, root: "root", version: 7 };

  // Move the root input with the most own inputs: the biggest real-looking bump in this lock.
  const candidates = Object.entries(rootInputs).flatMap(([name, edge]) =>
    typeof edge === "string" ? [{ name, key: edge }] : [],
  );
  const ownChildren = (key: string) =>
    Object.values(nodes[key]?.inputs ?? {}).filter((edge): edge is string => typeof edge === "string");
  const moved = candidates.reduce((best, c) =>
    ownChildren(c.key).length > ownChildren(best.key).length ? c : best,
  );
  const after: typeof before = structuredClone(before);
  const bumpNode = (key: string) => {
    const locked = after.nodes[key]?.locked;
    if (locked === undefined) return;
    locked.narHash = narHash();
    locked.lastModified = Number(locked.lastModified) + 86_400;
    if (locked.type === "github") locked.rev = hex(40);
  };
  bumpNode(moved.key);
  const children = ownChildren(moved.key);
  for (const child of children) bumpNode(child);

  return {
    before: `${sortedJson(before)}\n`,
    after: `${sortedJson(after)}\n`,
    moved: moved.name,
    movedTransitive: children.length,
    nodes: Object.keys(nodes).length,
  };
}

/**
 * A stand-in for the Nix CLI behind lib/flake/nix.ts's `Nix` interface, for the fast tier: it reads the
 * arguments bump() built (`flake lock --override-input`, `flake lock --update-input`, `flake update
 * INPUT… --flake DIR`) and writes flake.lock as Nix would — keys sorted, two-space indent, a final
 * newline (the real fixture locks are byte for byte that) — with the named inputs moved to what the
 * upstream "has". It knows no more than the table it is given: an unknown commit fails like Nix.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { RuntimeError } from "../../lib/core/errors.ts";
import { type Nix, type NixVersion, parseNixVersion } from "../../lib/flake/nix.ts";

/** What an upstream answers for a commit: the fields Nix writes into `locked`. */
export interface Commit {
  rev: string;
  lastModified: number;
  narHash: string;
  /** Lock nodes (by key) that the new commit's own lock moves too, as a real update drags them. */
  transitive?: Record<string, Omit<Commit, "transitive">>;
}

export interface StandInOptions {
  /** `nix --version`'s number: 2.8.0 takes `--update-input`, 2.19 and later positional inputs. */
  version?: string;
  /** The newest commit of each input's tracked branch, by input name: what an update moves it to. */
  heads?: Record<string, Commit>;
  /** More commits the upstreams know, by rev, beside the heads: what a pin (`--override-input`) may lock. */
  commits?: Record<string, Commit>;
  /** Replaces the text written on the given call (0-based): a lock Nix would never write. */
  corrupt?: { call: number; text: (written: string) => string };
  /** Fails the given call (0-based) as Nix does, after it may have half-written the lock. */
  fail?: { call: number; halfWrite?: boolean };
}

export interface NixStandIn extends Nix {
  /** Every argument list bump() ran, in order. */
  readonly calls: string[][];
}

/** flake.lock as Nix writes it: keys sorted at every level, two spaces, a final newline. */
export function nixJson(value: unknown): string {
  const sorted = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sorted);
    if (typeof v !== "object" || v === null) return v;
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((key) => [key, sorted(Reflect.get(v, key))]),
    );
  };
  return `${JSON.stringify(sorted(value), null, 2)}\n`;
}

/** A plausible narHash for a made-up commit (Nix's SRI form), stable per rev. */
export function narHashOf(rev: string): string {
  return `sha256-${new Bun.CryptoHasher("sha256").update(rev).digest("base64")}`;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

function plan(args: readonly string[]): { dir: string; moves: { input: string; rev?: string }[] } {
  const rest = args.slice(args.indexOf("flake") + 1);
  const [verb, ...tail] = rest;
  if (verb === "update") {
    const at = tail.indexOf("--flake");
    const dir = tail[at + 1];
    if (at < 0 || dir === undefined) throw new Error(`stand-in: no --flake in ${args.join(" ")}`);
    return { dir, moves: tail.slice(0, at).map((input) => ({ input })) };
  }
  if (verb !== "lock") throw new Error(`stand-in: unexpected nix ${args.join(" ")}`);
  const dir = tail.at(-1);
  if (dir === undefined) throw new Error("stand-in: no flake directory");
  const moves: { input: string; rev?: string }[] = [];
  for (let i = 0; i < tail.length - 1; i++) {
    const flag = tail[i];
    const input = tail[i + 1] ?? "";
    if (flag === "--update-input") moves.push({ input });
    if (flag === "--override-input") {
      const ref = tail[i + 2] ?? "";
      // `github:o/r/REV…` or `…?rev=REV…`: the rev is the only 40-hex run in a pinned ref.
      const rev = /(?:^|[/=])([0-9a-f]{40})(?:$|[?&/])/.exec(ref)?.[1];
      moves.push(rev === undefined ? { input } : { input, rev });
    }
  }
  return { dir, moves };
}

function move(node: unknown, commit: Omit<Commit, "transitive">): void {
  if (!isObject(node) || !isObject(node.locked)) throw new Error("stand-in: node without locked");
  Object.assign(node.locked, { rev: commit.rev, lastModified: commit.lastModified, narHash: commit.narHash });
}

export function nixStandIn(opts: StandInOptions = {}): NixStandIn {
  const version: NixVersion | undefined = parseNixVersion(`nix (Nix) ${opts.version ?? "2.26.3"}`);
  if (version === undefined) throw new Error("stand-in: bad version");
  const calls: string[][] = [];
  return {
    version,
    calls,
    async run(args, { cwd, what, hint }) {
      const call = calls.push([...args]) - 1;
      const failed = (detail: string) =>
        new RuntimeError(`Nix failed to ${what}${hint === undefined ? "" : `; ${hint}`}: ${detail}`);
      const { dir, moves } = plan(args);
      const file = join(dir === "." ? cwd : dir, "flake.lock");
      const original = await readFile(file, "utf8");
      const lock: unknown = JSON.parse(original);
      if (!isObject(lock) || !isObject(lock.nodes) || typeof lock.root !== "string") {
        throw new Error("stand-in: not a lock");
      }
      const nodes = lock.nodes;
      const root = nodes[lock.root];
      const inputs = isObject(root) && isObject(root.inputs) ? root.inputs : {};
      for (const { input, rev } of moves) {
        const key = inputs[input];
        if (typeof key !== "string") {
          throw failed(`input '${input}' does not exist in the lock`);
        }
        // A branch head is a commit like any other: a later pin of it finds it too.
        const known = [...Object.values(opts.heads ?? {}), ...Object.values(opts.commits ?? {})];
        const commit =
          rev === undefined ? opts.heads?.[input] : (opts.commits?.[rev] ?? known.find((c) => c.rev === rev));
        if (commit === undefined) {
          if (rev !== undefined) {
            throw failed(`cannot fetch revision ${rev} of input '${input}'`);
          }
          continue; // no newer head: Nix rewrites the lock unchanged
        }
        move(nodes[key], commit);
        for (const [transitiveKey, moved] of Object.entries(commit.transitive ?? {})) {
          move(nodes[transitiveKey], moved);
        }
      }
      const written = nixJson(lock);
      if (opts.fail?.call === call) {
        if (opts.fail.halfWrite === true) await writeFile(file, written.slice(0, written.length / 2));
        throw failed("error: unable to download (stand-in)");
      }
      await writeFile(file, opts.corrupt?.call === call ? opts.corrupt.text(written) : written);
    },
  };
}

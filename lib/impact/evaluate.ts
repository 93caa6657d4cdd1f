/**
 * Host impact: which of the flake's machines a lock change touches, and how — from evaluation alone.
 * Every side (base lock, new locks) is evaluated for every host, in one or several `nix eval`s;
 * closures are read from the store's .drv files (or one more Nix call) and diffed by package name
 * and version.
 */
import { cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { stripVTControlCharacters } from "node:util";
import * as v from "valibot";
import { $ } from "zx/core";
import { RuntimeError, UsageError } from "../core/errors.ts";
import { tryParseJson } from "../core/files.ts";
import { type FlakeLock, parseLock } from "../flake/lock.ts";
import { EXPERIMENTAL, type NixVersion, nixEnv, nixTooOld } from "../flake/nix.ts";
import { ClosureDiffer, ClosureReader, type PackageDiff } from "./closure.ts";
import { defaultReserveBytes, MemoryGuard, Slots } from "./jobs.ts";
import { ImpactProgress } from "./progress.ts";

/**
 * `fixed`: fails on the base lock, evaluates on the new one (the bump repairs it); `failed`: the
 * reverse; `unevaluable`: fails on both, not this bump's doing.
 */
export type HostStatus = "unchanged" | "changed" | "added" | "removed" | "failed" | "fixed" | "unevaluable";

export interface HostImpact {
  /** `nixosConfigurations.web`, `homeConfigurations."me@laptop"`. */
  attr: string;
  status: HostStatus;
  drvPath?: { from?: string; to?: string };
  /** For `changed` hosts whose closures could both be read. */
  packages?: PackageDiff;
  /** The first lines of Nix's error: on the new lock for `failed` hosts, on the base lock for `fixed`. */
  error?: string;
}

export interface InputImpact {
  name: string;
  rev: string;
  hosts: HostImpact[];
  /** Set only when the time budget ran out before this input's hosts were all evaluated. */
  timedOut?: true;
  /**
   * A grouped run's one entry: every member and its rev, all evaluated together in the combined lock
   * (then `name` lists the members and `rev` is that lock's sha256, since a group has no single rev).
   */
  members?: Record<string, string>;
}

export interface Impact {
  schema: 1;
  inputs: InputImpact[];
}

/** The outputs that are machines, and where each keeps the derivation a deployment builds. */
export const HOST_OUTPUTS = {
  nixosConfigurations: ["config", "system", "build", "toplevel"],
  darwinConfigurations: ["config", "system", "build", "toplevel"],
  homeConfigurations: ["activationPackage"],
} as const;
export type HostOutput = keyof typeof HOST_OUTPUTS;
const OUTPUT_NAMES = Object.keys(HOST_OUTPUTS);

/** A host as `[output, name]`; `name` null in a filter means every host of that output. */
export type HostPath = readonly [string, string];
export type OnlyFilter = readonly [string, string | null];

/** `homeConfigurations."me@laptop"`: the name quoted when Nix would quote it. */
export function attrName([output, name]: HostPath): string {
  return /^[A-Za-z_][\w'-]*$/.test(name) ? `${output}.${name}` : `${output}.${JSON.stringify(name)}`;
}

/** The host's own name for people: `web`, `me@laptop`. */
export function shortName(attr: string): string {
  const rest = attr.slice(attr.indexOf(".") + 1);
  return rest.startsWith('"') ? rest.slice(1, -1) : rest;
}

/** `--only nixosConfigurations.web`, `--only 'homeConfigurations."me@laptop"'`, `--only darwinConfigurations`. */
export function parseOnly(text: string): OnlyFilter {
  const dot = text.indexOf(".");
  const output = dot < 0 ? text : text.slice(0, dot);
  if (!OUTPUT_NAMES.includes(output)) {
    throw new UsageError(
      `--only ${text}: must start with one of ${OUTPUT_NAMES.join(", ")} (e.g. --only nixosConfigurations.web)`,
    );
  }
  if (dot < 0) return [output, null];
  let name = text.slice(dot + 1);
  if (/^".*"$/.test(name)) name = name.slice(1, -1);
  if (name === "") throw new UsageError(`--only ${text}: names no host; write e.g. ${output}.web`);
  return [output, name];
}

/** A Nix string literal holding `text` exactly. */
function nixString(text: string): string {
  return `"${text.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("${", "\\${")}"`;
}

const TRACE = "flake-bump-impact";

/** A host of one side of the comparison: `[side, output, name]`, side indexing the flake refs. */
export type SideHostPath = readonly [number, string, string];

/**
 * One of `count` `nix eval` processes, and which hosts it evaluates: the hosts × sides, side-major
 * (every host of the base lock, then every host of the next lock), cut into `count` contiguous
 * blocks. Each process then evaluates as few sides as it can — with two processes and two locks,
 * one lock each, so what the hosts of one lock share (a package set, the module system's library)
 * is evaluated once per lock, as in one process — and the blocks stay even when there are fewer
 * hosts than processes.
 */
export interface Shard {
  index: number;
  count: number;
}

/**
 * The expression evaluated for every side at once: per side (one `builtins.getFlake` each), every
 * selected host's drvPath, in order. One process for all sides lets Nix parse the files and hash the
 * derivations the sides share once. It traces each side before its flake is fetched and its host
 * list (every side's, before any host), then each host before and after its evaluation, so when one host (or one side's whole flake)
 * aborts the evaluation — which `builtins.tryEval` cannot catch — the traces say which one it was and
 * which finished.
 * @param skip hosts already answered (done or failed) in an earlier evaluation.
 * @param skipSides sides whose flake failed as a whole in an earlier evaluation.
 * @param shard this process's share of the hosts × sides; a host keeps its shard whatever is skipped.
 */
export function impactExpression(
  flakeRefs: readonly string[],
  only: readonly OnlyFilter[] | null,
  skip: readonly SideHostPath[] = [],
  skipSides: readonly number[] = [],
  shard: Shard = { index: 0, count: 1 },
) {
  const wanted = nixString(
    JSON.stringify({ refs: flakeRefs, only, skip, skipSides, shard, outputs: HOST_OUTPUTS }),
  );
  return `let
  wanted = builtins.fromJSON ${wanted};
  at = builtins.elemAt;
  sideCount = builtins.length wanted.refs;
  side = i: let
    flake = builtins.getFlake (at wanted.refs i);
    hostsOf = output: if flake ? \${output} then map (name: [ i output name ]) (builtins.attrNames flake.\${output}) else [ ];
    selected = p: wanted.only == null
      || builtins.any (o: at o 0 == at p 1 && (at o 1 == null || at o 1 == at p 2)) wanted.only;
    listed = builtins.filter selected (builtins.concatMap hostsOf (builtins.attrNames wanted.outputs));
    n = builtins.length listed;
    mine = k: (i * n + k) * wanted.shard.count / (n * sideCount) == wanted.shard.index;
    hosts = builtins.filter (p: !(builtins.elem p wanted.skip))
      (builtins.concatLists (builtins.genList (k: if mine k then [ (at listed k) ] else [ ]) n));
    drvOf = p: (builtins.foldl' (value: key: value.\${key}) flake.\${at p 1}.\${at p 2} wanted.outputs.\${at p 1}).drvPath;
    one = p: let key = builtins.toJSON p; in
      builtins.trace "${TRACE} begin \${key}" (let drv = drvOf p; in
        builtins.trace "${TRACE} done \${key} \${drv}" drv);
  in {
    hosts = builtins.trace "${TRACE} side \${toString i}"
      (builtins.trace "${TRACE} hosts \${toString i} \${builtins.toJSON hosts}" hosts);
    drvs = map one hosts;
  };
  sides = map side (builtins.filter (i: !(builtins.elem i wanted.skipSides)) (builtins.genList (i: i) sideCount));
# Every side's list first, so the log can count the hosts before the first one is evaluated.
in builtins.deepSeq (map (s: builtins.length s.hosts) sides) (map (s: s.drvs) sides)`;
}

/**
 * `nix eval` that evaluates and nothing else: import-from-derivation refused (it would build), no
 * substitution and no local builds, so a host needing either fails instead of building.
 */
export function evalArgs(expression: string): string[] {
  return [
    ...EXPERIMENTAL,
    "eval",
    "--json",
    "--impure",
    "--option",
    "allow-import-from-derivation",
    "false",
    "--option",
    "substitute",
    "false",
    "--option",
    "max-jobs",
    "0",
    "--expr",
    expression,
  ];
}

const SideHostJson = v.tuple([v.pipe(v.number(), v.integer()), v.string(), v.string()]);
const HostListJson = v.array(SideHostJson);

/** A host finished evaluating on one side. */
export interface HostDone {
  side: number;
  path: HostPath;
  drvPath: string;
}

export interface TraceState {
  /** Each side's host list, once its flake was fetched and listed. */
  hosts: Map<number, HostPath[]>;
  /** By `hostKey(side, path)`. */
  done: Map<string, HostDone>;
  /** What began and did not finish: a side's listing (no `path`) or one host's evaluation. */
  pending?: { side: number; path?: HostPath };
}

export function hostKey(side: number, path: HostPath): string {
  return `${side} ${attrName(path)}`;
}

/**
 * Reads the expression's traces line by line, as Nix prints them, so a finished host is known (and
 * its closure can be read) while the others still evaluate.
 */
export class TraceReader {
  readonly state: TraceState = { hosts: new Map(), done: new Map() };
  private partial = "";
  private readonly began = new Map<string, number>();
  /**
   * @param onDone called for each host as its trace arrives, with the seconds since its `begin`.
   * @param onHosts called with each side's host list as it arrives.
   */
  constructor(
    private readonly onDone: (done: HostDone, seconds?: number) => void = () => {},
    private readonly onHosts: (side: number, hosts: HostPath[]) => void = () => {},
  ) {}

  /** Feed a chunk of stderr; lines may be split across chunks. */
  write(chunk: string): void {
    const lines = (this.partial + chunk).split("\n");
    this.partial = lines.pop() ?? "";
    for (const line of lines) this.line(line);
  }

  end(): TraceState {
    if (this.partial !== "") this.line(this.partial);
    this.partial = "";
    return this.state;
  }

  private line(raw: string): void {
    const prefix = `trace: ${TRACE} `;
    const line = stripVTControlCharacters(raw).trim();
    if (!line.startsWith(prefix)) return;
    const rest = line.slice(prefix.length);
    const space = rest.indexOf(" ");
    const kind = rest.slice(0, space);
    const body = rest.slice(space + 1);
    const state = this.state;
    if (kind === "side") {
      const side = Number(body);
      if (Number.isInteger(side)) state.pending = { side };
    } else if (kind === "hosts") {
      const split = body.indexOf(" ");
      const side = Number(body.slice(0, split));
      const hosts = tryParseJson(HostListJson, body.slice(split + 1));
      if (hosts && Number.isInteger(side)) {
        const paths = hosts.map(([, output, name]) => [output, name] as const);
        state.hosts.set(side, paths);
        delete state.pending;
        this.onHosts(side, paths);
      }
    } else if (kind === "begin") {
      const path = tryParseJson(SideHostJson, body);
      if (path) {
        const host: HostPath = [path[1], path[2]];
        state.pending = { side: path[0], path: host };
        this.began.set(hostKey(path[0], host), performance.now());
      }
    } else if (kind === "done") {
      const split = body.lastIndexOf(" ");
      const path = tryParseJson(SideHostJson, body.slice(0, split));
      if (path) {
        const done: HostDone = { side: path[0], path: [path[1], path[2]], drvPath: body.slice(split + 1) };
        const began = this.began.get(hostKey(done.side, done.path));
        state.done.set(hostKey(done.side, done.path), done);
        delete state.pending;
        this.onDone(done, began === undefined ? undefined : (performance.now() - began) / 1000);
      }
    }
  }
}

/** What the expression's traces on stderr say about one evaluation. */
export function parseTraces(stderr: string): TraceState {
  const reader = new TraceReader();
  reader.write(stderr);
  return reader.end();
}

/** The first lines of Nix's own error (its last `error:` paragraph), without traces and hints. */
export function nixErrorExcerpt(stderr: string, maxLines = 6): string {
  const lines = stderr
    .split("\n")
    .map((line) => stripVTControlCharacters(line).trimEnd())
    .filter((line) => !line.startsWith("trace: ") && !/use '--show-trace'/.test(line));
  const start = lines.findLastIndex((line) => /^\s*error:/.test(line));
  const picked = (start >= 0 ? lines.slice(start) : lines).filter((line) => line.trim() !== "");
  const text = picked
    .slice(0, maxLines)
    .map((line) => line.trim())
    .join("\n")
    .replace(/^error:\s*/, "");
  return text.length > 1000 ? `${text.slice(0, 999)}…` : text || "Nix failed without an error message";
}

export type HostResult = { drvPath: string } | { error: string };

export interface SideResult {
  hosts: Map<string, HostResult>;
  /** The whole flake failed to evaluate (no host list): Nix's error. */
  error?: string;
  timedOut: boolean;
  /** `nix eval` processes this side took part in. */
  evaluations: number;
}

export interface EvalOptions {
  nix: NixVersion;
  only: readonly OnlyFilter[] | null;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Called for each host of each side as soon as its drvPath is known (and how long it took). */
  onHost?: (done: HostDone, seconds?: number) => void;
  /** Called when a process has listed the hosts it evaluates of one side. */
  onHosts?: (shard: Shard, side: number, hosts: readonly HostPath[]) => void;
  /** Called for each host of each side that fails to evaluate. */
  onHostError?: (side: number, path: HostPath, error: string) => void;
  /** `nix eval` processes at once (default 1), each evaluating a share of the hosts × sides. */
  jobs?: number;
  /** Memory to leave free (default: `defaultReserveBytes()`); see lib/impact/jobs.ts. */
  memoryReserveBytes?: number;
  /** What memory is left now, for the guard (default: the OS's answer). */
  availableMemory?: () => number;
  /** The base lock, so that an error about its content can name the nodes. */
  lock?: FlakeLock;
}

/** What the processes of one evaluation took, besides the results. */
export interface EvalStats {
  /** `nix eval` processes started, in all shards. */
  processes: number;
  /** The most memory the processes held at once (0 where it cannot be read: no /proc). */
  peakRssBytes: number;
  /** Processes stopped because memory ran short (their hosts ran again later). */
  memoryStops: number;
  /** Processes at once at the start and at the end (fewer after a memory stop). */
  jobs: { start: number; end: number };
}

/**
 * Every selected host's drvPath for every flake in `flakeRefs` (the sides), in `jobs` `nix eval`
 * processes at once, each evaluating its shard of the hosts × sides (see `Shard`). Within a shard,
 * when one host aborts the batch, it is recorded with Nix's error and the rest are evaluated again
 * without it and without what finished (one more process per failing host, not per host);
 * likewise a side whose flake fails as a whole. The results do not depend on `jobs`.
 */
export async function evaluateSides(
  flakeRefs: readonly string[],
  opts: EvalOptions,
): Promise<{ sides: SideResult[]; stats: EvalStats }> {
  const results: SideResult[] = flakeRefs.map(() => ({ hosts: new Map(), timedOut: false, evaluations: 0 }));
  const jobs = Math.max(1, Math.floor(opts.jobs ?? 1));
  // One failing shard (the flake cannot be listed at all) stops its siblings too.
  const stop = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
  const slots = new Slots(jobs);
  const guard = new MemoryGuard(slots, {
    reserveBytes: opts.memoryReserveBytes ?? defaultReserveBytes(),
    ...(opts.availableMemory ? { available: opts.availableMemory } : {}),
  });
  const shared = { results, slots, guard, signal, processes: 0 };
  try {
    await Promise.all(
      Array.from({ length: jobs }, (_, index) =>
        evaluateShard(flakeRefs, opts, { index, count: jobs }, shared).catch((error: unknown) => {
          stop.abort();
          throw error;
        }),
      ),
    );
  } finally {
    guard.dispose();
  }
  const stats: EvalStats = {
    processes: shared.processes,
    peakRssBytes: guard.peakBytes,
    memoryStops: guard.stops,
    jobs: { start: jobs, end: slots.capacity },
  };
  const sides = opts.signal?.aborted ? results.map((result) => ({ ...result, timedOut: true })) : results;
  return { sides, stats };
}

interface ShardContext {
  results: SideResult[];
  slots: Slots;
  guard: MemoryGuard;
  signal: AbortSignal;
  processes: number;
}

/** One shard's processes, one after another, until each of its hosts has an answer. */
async function evaluateShard(
  flakeRefs: readonly string[],
  opts: EvalOptions,
  shard: Shard,
  ctx: ShardContext,
): Promise<void> {
  const { results } = ctx;
  const skip: SideHostPath[] = [];
  const skipSides: number[] = [];
  const env = nixEnv(opts.env ?? process.env);
  for (;;) {
    const release = await ctx.slots.acquire();
    if (ctx.signal.aborted) return release();
    for (const [i, result] of results.entries()) if (!skipSides.includes(i)) result.evaluations++;
    ctx.processes++;
    const reader = new TraceReader(
      (done, seconds) => {
        results[done.side]?.hosts.set(attrName(done.path), { drvPath: done.drvPath });
        skip.push([done.side, ...done.path]);
        opts.onHost?.(done, seconds);
      },
      (side, hosts) => opts.onHosts?.(shard, side, hosts),
    );
    const memory = new AbortController();
    const proc = $({
      env,
      cwd: tmpdir(),
      quiet: true,
      nothrow: true,
      signal: AbortSignal.any([ctx.signal, memory.signal]),
    })`nix ${evalArgs(impactExpression(flakeRefs, opts.only, skip, skipSides, shard))}`;
    const unwatch = ctx.guard.watch(proc.pid, () => memory.abort());
    proc.stderr.setEncoding("utf8");
    proc.stderr.on("data", (chunk: string) => reader.write(chunk));
    const out = await proc.finally(() => {
      unwatch();
      release();
    });
    const traces = reader.end();
    if (ctx.signal.aborted) return;
    if (out.exitCode === 0) return;
    // Stopped to free memory: what it finished is kept, the rest runs again when a slot is free.
    if (memory.signal.aborted) continue;
    const error = nixErrorExcerpt(out.stderr);
    if (traces.pending?.path !== undefined)
      opts.onHostError?.(traces.pending.side, traces.pending.path, error);
    if (recordFailure(flakeRefs, results, traces, { error, stderr: out.stderr }, skip, skipSides, opts))
      return;
  }
}

/**
 * Records what a failed process says failed (a host, a side's flake, or every unfinished host when
 * it failed between hosts) and whether the shard is then complete.
 */
function recordFailure(
  flakeRefs: readonly string[],
  results: SideResult[],
  traces: TraceState,
  { error, stderr }: { error: string; stderr: string },
  skip: SideHostPath[],
  skipSides: number[],
  opts: EvalOptions,
): boolean {
  const pending = traces.pending;
  if (pending === undefined) {
    if (traces.hosts.size === 0) {
      const what = "evaluate the flake's hosts";
      throw new RuntimeError(
        nixTooOld(opts.nix, what, stderr, opts.lock) ?? `Nix failed to ${what}: ${error}`,
      );
    }
    // Failed between hosts (printing the result?): every listed host not done carries the error.
    for (const [side, hosts] of traces.hosts) {
      const result = results[side];
      for (const path of hosts) {
        if (result && !result.hosts.has(attrName(path))) result.hosts.set(attrName(path), { error });
      }
    }
    return true;
  }
  const result = results[pending.side] ?? expectSide(pending.side);
  if (pending.path === undefined) {
    // The side's flake itself failed (fetching, its lock, its outputs): no host list.
    result.error = error;
    skipSides.push(pending.side);
  } else {
    result.hosts.set(attrName(pending.path), { error });
    skip.push([pending.side, ...pending.path]);
  }
  const listed = (side: number) => traces.hosts.get(side) ?? [];
  return flakeRefs.every(
    (_, side) =>
      skipSides.includes(side) ||
      (traces.hosts.has(side) && listed(side).every((path) => results[side]?.hosts.has(attrName(path)))),
  );
}

/** The lock `text` parsed, for naming its nodes in an error; undefined when it does not parse. */
function lockOrUndefined(text: string | undefined): FlakeLock | undefined {
  try {
    return text === undefined ? undefined : parseLock(text);
  } catch {
    return undefined;
  }
}

function expectSide(side: number): never {
  throw new RuntimeError(`Nix traced side ${side}, which flake-bump did not ask for; report this`);
}

/** One flake's hosts: `evaluateSides` with one side. */
export async function evaluateHosts(flakeRef: string, opts: EvalOptions): Promise<SideResult> {
  const [result] = (await evaluateSides([flakeRef], opts)).sides;
  return result ?? expectSide(0);
}

/** Per-host status from the two sides (packages are filled in later, for changed hosts). */
export function classify(base: SideResult, next: SideResult): HostImpact[] {
  const attrs = new Set([...base.hosts.keys(), ...next.hosts.keys()]);
  const hosts: HostImpact[] = [];
  for (const attr of [...attrs].sort()) {
    // A side that failed as a whole fails for every host the other side has.
    const from = base.hosts.get(attr) ?? (base.error !== undefined ? { error: base.error } : undefined);
    const to = next.hosts.get(attr) ?? (next.error !== undefined ? { error: next.error } : undefined);
    const fromDrv = from && "drvPath" in from ? from.drvPath : undefined;
    const toDrv = to && "drvPath" in to ? to.drvPath : undefined;
    const drvPath = { ...(fromDrv ? { from: fromDrv } : {}), ...(toDrv ? { to: toDrv } : {}) };
    if (from === undefined && to !== undefined) {
      hosts.push(
        toDrv
          ? { attr, status: "added", drvPath }
          : { attr, status: "failed", error: "error" in to ? to.error : "" },
      );
    } else if (to === undefined) {
      hosts.push({ attr, status: "removed", drvPath });
    } else if (fromDrv !== undefined && toDrv !== undefined) {
      hosts.push({ attr, status: fromDrv === toDrv ? "unchanged" : "changed", drvPath });
    } else if (fromDrv !== undefined) {
      hosts.push({ attr, status: "failed", drvPath, error: "error" in to ? to.error : "" });
    } else if (toDrv !== undefined) {
      hosts.push({ attr, status: "fixed", drvPath, error: from && "error" in from ? from.error : "" });
    } else {
      hosts.push({ attr, status: "unevaluable" });
    }
  }
  return hosts;
}

/**
 * A copy of the flake with `lockText` as its lock, for `builtins.getFlake "path:…"`. Nix < 2.19 has
 * no `--reference-lock-file`, and the checkout's own lock must never be touched, so each side gets
 * its own copy: in a git repository, the files git tracks (what a `git+file` flake sees), else the
 * directory. Under the system temp directory, which Nix in a chroot or container also sees.
 */
export async function flakeCopy(
  flakeDir: string,
  lockText: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ ref: string } & AsyncDisposable> {
  const dir = await mkdtemp(join(tmpdir(), "flake-bump-impact-"));
  const dispose = () => rm(dir, { recursive: true, force: true });
  try {
    const top = await $({ cwd: flakeDir, env, quiet: true, nothrow: true })`git rev-parse --show-toplevel`;
    let target: string;
    if (top.exitCode === 0) {
      const root = top.stdout.trim();
      const listed = await $({ cwd: root, env, quiet: true })`git ls-files -z --cached`;
      const files = listed.stdout.split("\0").filter(Boolean);
      await Promise.all(
        files.map(async (file) => {
          const to = join(dir, file);
          await mkdir(dirname(to), { recursive: true });
          // A tracked file deleted in the work tree is gone for Nix too.
          await cp(join(root, file), to, { verbatimSymlinks: true }).catch(() => undefined);
        }),
      );
      target = join(dir, relative(root, resolve(flakeDir)));
    } else {
      await cp(flakeDir, dir, { recursive: true, verbatimSymlinks: true });
      target = dir;
    }
    if ((await stat(join(target, "flake.nix")).catch(() => undefined)) === undefined) {
      throw new RuntimeError(`${flakeDir} has no flake.nix; pass --flake DIR with the fleet's flake`);
    }
    await writeFile(join(target, "flake.lock"), lockText);
    return { ref: `path:${target}`, [Symbol.asyncDispose]: dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}

export interface ImpactSide {
  /** The input this lock moves (its pull request's branch), and the rev it moves it to. */
  name: string;
  rev: string;
  lock: string;
}

export interface ImpactRequest {
  flakeDir: string;
  baseLock: string;
  sides: readonly ImpactSide[];
  only: readonly OnlyFilter[] | null;
  nix: NixVersion;
  env?: NodeJS.ProcessEnv;
  /** The time budget; when it aborts, unfinished inputs are reported as timed out. */
  signal?: AbortSignal;
  /** `nix eval` processes at once (default 1); the results are the same for any number. */
  jobs?: number;
  /** Memory to leave free while several processes run (see lib/impact/jobs.ts). */
  memoryReserveBytes?: number;
  /** Progress lines for people, as hosts are listed and finish. */
  onProgress?: (line: string) => void;
}

export interface ImpactRun {
  impact: Impact;
  /** `nix eval` processes: one per shard when every host evaluates, plus one per failing host. */
  evaluations: number;
  /** What the evaluation's processes took (memory, stops, processes at once). */
  stats: EvalStats;
  /** `nix derivation show` processes: none where the store's .drv files are read directly. */
  closureReads: number;
}

/** The progress lines of one impact run: side 0 is the base lock, each other side its inputs' lock. */
function impactProgress(locks: readonly string[], request: ImpactRequest): ImpactProgress {
  return new ImpactProgress(
    locks.map((lock, i) =>
      i === 0
        ? "the base lock"
        : request.sides.flatMap((side) => (side.lock === lock ? [side.name] : [])).join(", "),
    ),
    request.onProgress ?? (() => {}),
    attrName,
  );
}

/**
 * Impact of every side against the base: all sides evaluated in `request.jobs` Nix processes
 * (`evaluateSides`), the same result for any number; the closures of a host that changed are read as soon as both its drvPaths are known, while the other hosts still
 * evaluate, into one graph shared by every host and side.
 */
export async function computeImpact(request: ImpactRequest): Promise<ImpactRun> {
  const readOpts = {
    ...(request.env ? { env: request.env } : {}),
    ...(request.signal ? { signal: request.signal } : {}),
  };
  // Side 0 is the base lock; a side whose lock is the base's (or another side's) is evaluated once.
  const locks = [...new Set([request.baseLock, ...request.sides.map((side) => side.lock)])];
  const copies = await Promise.allSettled(
    locks.map((lock) => flakeCopy(request.flakeDir, lock, request.env)),
  );
  await using stack = new AsyncDisposableStack();
  for (const copy of copies) if (copy.status === "fulfilled") stack.use(copy.value);
  const refs = copies.map((copy) => {
    if (copy.status === "rejected") throw copy.reason;
    return copy.value.ref;
  });

  const reader = new ClosureReader(request.nix, readOpts);
  let early: ClosureDiffer | undefined;
  const drvs = locks.map(() => new Map<string, string>());
  const onHost = ({ side, path, drvPath }: HostDone) => {
    const attr = attrName(path);
    drvs[side]?.set(attr, drvPath);
    for (const [other, map] of drvs.entries()) {
      const theirs = map.get(attr);
      if (other === side || theirs === undefined || theirs === drvPath || (side !== 0 && other !== 0))
        continue;
      reader.add(theirs);
      reader.add(drvPath);
      // Diffed now, while Nix evaluates the next hosts; the result waits in the differ's cache.
      const local = reader.local;
      if (local !== undefined) {
        early ??= new ClosureDiffer(local);
        if (side === 0) early.diff(drvPath, theirs);
        else early.diff(theirs, drvPath);
      }
    }
  };
  const progress = impactProgress(locks, request);
  const baseLock = lockOrUndefined(request.baseLock);
  const { sides: results, stats } = await evaluateSides(refs, {
    nix: request.nix,
    only: request.only,
    ...(baseLock ? { lock: baseLock } : {}),
    onHost: (done, seconds) => {
      const attr = attrName(done.path);
      progress.done({
        side: done.side,
        attr,
        drvPath: done.drvPath,
        ...(seconds === undefined ? {} : { seconds }),
      });
      onHost(done);
    },
    onHosts: (shard, side, hosts) => progress.hosts(shard, side, hosts),
    onHostError: (side, path, error) => progress.failed({ side, attr: attrName(path), error }),
    ...(request.jobs === undefined ? {} : { jobs: request.jobs }),
    ...(request.memoryReserveBytes === undefined ? {} : { memoryReserveBytes: request.memoryReserveBytes }),
    ...readOpts,
  });
  const evaluations = stats.processes;
  // A Nix too old for a lock fails the whole flake on it: this Nix's failing, not the bump's or the
  // base's, so not a list of broken hosts.
  for (const [side, result] of results.entries()) {
    const tooOld =
      result.error === undefined
        ? undefined
        : nixTooOld(request.nix, "evaluate the flake's hosts", result.error, lockOrUndefined(locks[side]));
    if (tooOld !== undefined) throw new RuntimeError(tooOld);
  }
  const base = results[0] ?? expectSide(0);
  const timedOut = (side: ImpactSide): InputImpact => ({
    name: side.name,
    rev: side.rev,
    hosts: [],
    timedOut: true,
  });
  if (base.timedOut) {
    return {
      impact: { schema: 1, inputs: request.sides.map(timedOut) },
      evaluations,
      stats,
      closureReads: 0,
    };
  }
  if (base.error !== undefined && base.hosts.size === 0) {
    throw new RuntimeError(
      `the flake does not evaluate with its base lock: ${base.error.split("\n")[0]}; fix the flake (or pass --base-lock FILE) and rerun`,
    );
  }

  const inputs: InputImpact[] = request.sides.map((side) => {
    const next = results[locks.indexOf(side.lock)] ?? expectSide(locks.indexOf(side.lock));
    return { name: side.name, rev: side.rev, hosts: classify(base, next) };
  });
  const changed = inputs.flatMap((input) => input.hosts.filter((host) => host.status === "changed"));
  let closureReads = 0;
  if (changed.length > 0 && !request.signal?.aborted) {
    for (const host of changed) {
      if (host.drvPath?.from !== undefined) reader.add(host.drvPath.from);
      if (host.drvPath?.to !== undefined) reader.add(host.drvPath.to);
    }
    if (reader.readsFiles === false) closureReads++;
    const graph = await reader.graph();
    const differ = early !== undefined && graph === reader.local ? early : new ClosureDiffer(graph);
    for (const host of changed) {
      const from = host.drvPath?.from;
      const to = host.drvPath?.to;
      if (from !== undefined && to !== undefined) host.packages = differ.diff(from, to);
    }
  }
  return { impact: { schema: 1, inputs }, evaluations, stats, closureReads };
}

/** A host output named in Nix code, outside a `#` comment line. */
const HOST_MENTION = new RegExp(`^(?!\\s*#).*\\b(${OUTPUT_NAMES.join("|")})\\b`, "m");

/** Whether Nix source text names one of the host outputs (the `auto` decision, file by file). */
export function mentionsHostOutputs(source: string): boolean {
  return HOST_MENTION.test(source);
}

/**
 * Whether the flake's repository names nixosConfigurations, darwinConfigurations or
 * homeConfigurations in any of its .nix files: the `impact: auto` decision, made before Nix is
 * installed, so it reads text instead of evaluating. The whole repository, not only flake.nix,
 * because a flake often keeps its hosts in imported files. A host output built entirely by a
 * library from an input (named nowhere in this repository) is missed: `impact: true` covers it.
 */
export async function flakeNamesHosts(
  flakeDir: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<boolean> {
  const top = await $({ cwd: flakeDir, env, quiet: true, nothrow: true })`git rev-parse --show-toplevel`;
  let files: string[];
  if (top.exitCode === 0) {
    const root = top.stdout.trim();
    const listed = await $({ cwd: root, env, quiet: true })`git ls-files -z --cached -- ${"*.nix"}`;
    files = listed.stdout
      .split("\0")
      .filter(Boolean)
      .map((file) => join(root, file));
  } else {
    files = await Array.fromAsync(new Bun.Glob("**/*.nix").scan({ cwd: flakeDir, absolute: true }));
  }
  for (const file of files) {
    const source = await readFile(file, "utf8").catch(() => "");
    if (mentionsHostOutputs(source)) return true;
  }
  return false;
}

/** The update action's `impact` input. */
export type ImpactMode = "auto" | "true" | "false";

export interface ImpactPlan {
  run: boolean;
  /** Why, in one sentence for the log. */
  reason: string;
}

/**
 * Whether host impact runs: decided before Nix is installed, so the action installs Nix only when
 * it will be used. `outdated` is the check step's answer (undefined outside the action);
 * `namesHosts` is `flakeNamesHosts`'s, needed only for `auto`.
 */
export function planImpact(
  mode: ImpactMode,
  outdated: readonly string[] | undefined,
  namesHosts?: boolean,
): ImpactPlan {
  if (mode === "false") return { run: false, reason: "impact is false" };
  if (outdated !== undefined && outdated.length === 0) {
    return { run: false, reason: "no input is behind, so no lock changes" };
  }
  if (mode === "true") return { run: true, reason: "impact is true" };
  return namesHosts
    ? { run: true, reason: "impact is auto and the flake names host outputs" }
    : {
        run: false,
        reason:
          "impact is auto and no .nix file names nixosConfigurations, darwinConfigurations or homeConfigurations; set impact: true if a library makes them",
      };
}

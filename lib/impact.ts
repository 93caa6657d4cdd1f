/**
 * Host impact: which of the flake's machines a lock change touches, and how — from evaluation alone.
 * Each side (base lock, new lock) is one `nix eval` for every host; closures are read in one more
 * Nix call and diffed by package name and version.
 */
import { cp, mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { stripVTControlCharacters } from "node:util";
import * as v from "valibot";
import { $ } from "zx/core";
import { RuntimeError, UsageError } from "./cli.ts";
import { ClosureDiffer, type PackageDiff, readDrvGraph } from "./closure.ts";
import { EXPERIMENTAL, type NixVersion, nixEnv } from "./nix.ts";

export type HostStatus = "unchanged" | "changed" | "added" | "removed" | "failed" | "unevaluable";

export interface HostImpact {
  /** `nixosConfigurations.web`, `homeConfigurations."me@laptop"`. */
  attr: string;
  status: HostStatus;
  drvPath?: { from?: string; to?: string };
  /** For `changed` hosts whose closures could both be read. */
  packages?: PackageDiff;
  /** For `failed` hosts: the first lines of Nix's error on the new lock. */
  error?: string;
}

export interface InputImpact {
  name: string;
  rev: string;
  hosts: HostImpact[];
  /** Set only when the time budget ran out before this input's hosts were all evaluated. */
  timedOut?: true;
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

/**
 * The expression evaluated for one side: every selected host's drvPath, in order. It traces the host
 * list, then each host before and after its evaluation, so when one host aborts the whole evaluation
 * (which `builtins.tryEval` cannot catch) the trace says which host it was and which ones finished.
 */
export function impactExpression(
  flakeRef: string,
  only: readonly OnlyFilter[] | null,
  skip: readonly HostPath[],
) {
  const wanted = nixString(JSON.stringify({ only, skip, outputs: HOST_OUTPUTS }));
  return `let
  flake = builtins.getFlake ${nixString(flakeRef)};
  wanted = builtins.fromJSON ${wanted};
  at = builtins.elemAt;
  hostsOf = output: if flake ? \${output} then map (name: [ output name ]) (builtins.attrNames flake.\${output}) else [ ];
  selected = p: !(builtins.elem p wanted.skip) && (wanted.only == null
    || builtins.any (o: at o 0 == at p 0 && (at o 1 == null || at o 1 == at p 1)) wanted.only);
  hosts = builtins.filter selected (builtins.concatMap hostsOf (builtins.attrNames wanted.outputs));
  drvOf = p: (builtins.foldl' (value: key: value.\${key}) flake.\${at p 0}.\${at p 1} wanted.outputs.\${at p 0}).drvPath;
  one = p: let key = builtins.toJSON p; in
    builtins.trace "${TRACE} begin \${key}" (let drv = drvOf p; in
      builtins.trace "${TRACE} done \${key} \${drv}" drv);
in builtins.trace "${TRACE} hosts \${builtins.toJSON hosts}" (map one hosts)`;
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

const HostPathJson = v.tuple([v.string(), v.string()]);
const HostListJson = v.array(HostPathJson);

export interface TraceState {
  hosts?: HostPath[];
  done: Map<string, { path: HostPath; drvPath: string }>;
  /** The host whose evaluation began and did not finish. */
  pending?: HostPath;
}

function parseJson<T extends v.GenericSchema>(schema: T, text: string): v.InferOutput<T> | undefined {
  try {
    const result = v.safeParse(schema, JSON.parse(text));
    return result.success ? result.output : undefined;
  } catch {
    return undefined;
  }
}

/** What the expression's traces on stderr say about one evaluation. */
export function parseTraces(stderr: string): TraceState {
  const state: TraceState = { done: new Map() };
  const prefix = `trace: ${TRACE} `;
  for (const raw of stderr.split("\n")) {
    const line = stripVTControlCharacters(raw).trim();
    if (!line.startsWith(prefix)) continue;
    const rest = line.slice(prefix.length);
    const space = rest.indexOf(" ");
    const kind = rest.slice(0, space);
    const body = rest.slice(space + 1);
    if (kind === "hosts") {
      const hosts = parseJson(HostListJson, body);
      if (hosts) state.hosts = hosts;
    } else if (kind === "begin") {
      const path = parseJson(HostPathJson, body);
      if (path) state.pending = path;
    } else if (kind === "done") {
      const split = body.lastIndexOf(" ");
      const path = parseJson(HostPathJson, body.slice(0, split));
      if (path) {
        state.done.set(attrName(path), { path, drvPath: body.slice(split + 1) });
        delete state.pending;
      }
    }
  }
  return state;
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
  /** `nix eval` processes started. */
  evaluations: number;
}

export interface EvalOptions {
  nix: NixVersion;
  only: readonly OnlyFilter[] | null;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

/**
 * Every selected host's drvPath for the flake at `flakeRef`: one `nix eval` when all evaluate; when
 * one aborts the batch, it is recorded with Nix's error and the rest are evaluated again without it
 * (one more process per failing host, not per host).
 */
export async function evaluateHosts(flakeRef: string, opts: EvalOptions): Promise<SideResult> {
  const result: SideResult = { hosts: new Map(), timedOut: false, evaluations: 0 };
  const skip: HostPath[] = [];
  const env = nixEnv(opts.env ?? process.env);
  for (;;) {
    if (opts.signal?.aborted) return { ...result, timedOut: true };
    result.evaluations++;
    const out = await $({
      env,
      cwd: tmpdir(),
      quiet: true,
      nothrow: true,
      ...(opts.signal ? { signal: opts.signal } : {}),
    })`nix ${evalArgs(impactExpression(flakeRef, opts.only, skip))}`;
    if (opts.signal?.aborted) return { ...result, timedOut: true };
    const traces = parseTraces(out.stderr);
    for (const [attr, { path, drvPath }] of traces.done) {
      result.hosts.set(attr, { drvPath });
      skip.push(path);
    }
    if (out.exitCode === 0) return result;
    const error = nixErrorExcerpt(out.stderr);
    if (traces.hosts === undefined) {
      if (result.evaluations === 1) return { ...result, error };
      throw new RuntimeError(`Nix failed to evaluate the flake's hosts: ${error}`);
    }
    if (traces.pending === undefined) {
      // Failed between hosts (printing the result?): every host not done carries the error.
      for (const path of traces.hosts) {
        if (!result.hosts.has(attrName(path))) result.hosts.set(attrName(path), { error });
      }
      return result;
    }
    result.hosts.set(attrName(traces.pending), { error });
    skip.push(traces.pending);
    if (traces.hosts.every((path) => result.hosts.has(attrName(path)))) return result;
  }
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
      // Broken on the base lock, evaluates on the new one: the bump changes it (and fixes it).
      hosts.push({ attr, status: "changed", drvPath });
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
}

export interface ImpactRun {
  impact: Impact;
  /** `nix eval` processes (one per side when every host evaluates) and closure reads. */
  evaluations: number;
  closureReads: number;
}

/** Impact of every side against the base: base evaluated once, all closures read in one Nix call. */
export async function computeImpact(request: ImpactRequest): Promise<ImpactRun> {
  const opts: EvalOptions = {
    nix: request.nix,
    only: request.only,
    ...(request.env ? { env: request.env } : {}),
    ...(request.signal ? { signal: request.signal } : {}),
  };
  let evaluations = 0;
  const evaluate = async (lock: string): Promise<SideResult> => {
    await using copy = await flakeCopy(request.flakeDir, lock, request.env);
    const side = await evaluateHosts(copy.ref, opts);
    evaluations += side.evaluations;
    return side;
  };
  const timedOut = (side: ImpactSide): InputImpact => ({
    name: side.name,
    rev: side.rev,
    hosts: [],
    timedOut: true,
  });
  const base = await evaluate(request.baseLock);
  if (base.error !== undefined && base.hosts.size === 0) {
    throw new RuntimeError(
      `the flake does not evaluate with its base lock: ${base.error.split("\n")[0]}; fix the flake (or pass --base-lock FILE) and rerun`,
    );
  }
  if (base.timedOut)
    return { impact: { schema: 1, inputs: request.sides.map(timedOut) }, evaluations, closureReads: 0 };

  const inputs: InputImpact[] = [];
  for (const side of request.sides) {
    const next = side.lock === request.baseLock ? base : await evaluate(side.lock);
    if (next.timedOut) inputs.push(timedOut(side));
    else inputs.push({ name: side.name, rev: side.rev, hosts: classify(base, next) });
  }

  const changed = inputs.flatMap((input) => input.hosts.filter((host) => host.status === "changed"));
  const roots = new Set(
    changed.flatMap((host) => [host.drvPath?.from, host.drvPath?.to].filter((p) => p !== undefined)),
  );
  let closureReads = 0;
  if (roots.size > 0 && !request.signal?.aborted) {
    closureReads++;
    const graph = await readDrvGraph(request.nix, [...roots], opts);
    const differ = new ClosureDiffer(graph);
    for (const host of changed) {
      const from = host.drvPath?.from;
      const to = host.drvPath?.to;
      if (from !== undefined && to !== undefined) host.packages = differ.diff(from, to);
    }
  }
  return { impact: { schema: 1, inputs }, evaluations, closureReads };
}

/**
 * What every scenario shares: the fake GitHub, the hermetic Nix environment, a scratch directory,
 * the measured Nix's version, and the small steps the scenarios repeat (lock a flake, count requests).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { $ } from "zx";
import { RuntimeError } from "../lib/core/errors.ts";
import { parseLock } from "../lib/flake/lock.ts";
import { type NixVersion, parseNixVersion } from "../lib/flake/nix.ts";
import type { FakeGitHub, RecordedRequest } from "../tests/fake-github/index.ts";
import type { Env } from "./measure.ts";

export interface Context {
  fake: FakeGitHub;
  /** The scripts' environment: cleaned of any real Actions or token variables, hermetic Nix, the fake. */
  env: Env;
  /** Removed when the bench ends. */
  scratch: string;
  nix: NixVersion;
  /** How many times each timed command runs (medians are taken over these). */
  runs: number;
}

/** The version of the Nix first on the scripts' PATH: the one the bench measures. */
export async function nixOnPath(env: Env): Promise<NixVersion> {
  const out = await $({ env, quiet: true, nothrow: true })`nix --version`;
  const version = out.exitCode === 0 ? parseNixVersion(out.stdout) : undefined;
  if (version === undefined) {
    throw new RuntimeError(
      `the bench needs Nix on PATH ('nix --version' exited ${out.exitCode}); install it (apt-get install nix-bin)`,
    );
  }
  return version;
}

/** `nix flake lock` in `dir`, as a user would create the lock the scenarios start from. */
export async function nixLock(dir: string, env: Env): Promise<void> {
  await $({
    cwd: dir,
    env,
    quiet: true,
  })`nix --extra-experimental-features ${"nix-command flakes"} flake lock`;
}

/** The rev flake.lock in `dir` holds for root input `name`. */
export async function lockedRev(dir: string, name: string): Promise<string | undefined> {
  const file = join(dir, "flake.lock");
  const lock = parseLock(await readFile(file, "utf8"), file);
  const key = lock.nodes[lock.root]?.inputs?.[name];
  return typeof key === "string" ? lock.nodes[key]?.locked?.rev : undefined;
}

/** REST requests the fake recorded from index `from` on (Nix's own fetches, on the "nix" listener, excluded). */
export function apiRequestsSince(fake: FakeGitHub, from: number): RecordedRequest[] {
  return fake.requests.slice(from).filter((request) => request.listener === "api");
}

/** Each request in order as `METHOD operationId → status`: what to read when a count surprises. */
export function requestSequence(requests: readonly RecordedRequest[]): string[] {
  return requests.map(
    (request) => `${request.method} ${request.operationId ?? request.path} → ${request.status}`,
  );
}

/** `GET repos/get` style names, in first-call order, with a count when repeated: what a scenario called. */
export function endpointList(requests: readonly RecordedRequest[]): string[] {
  const counts = new Map<string, number>();
  for (const request of requests) {
    const name = `${request.method} ${request.operationId ?? request.path}`;
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return [...counts].map(([name, count]) => (count > 1 ? `${name} ×${count}` : name));
}

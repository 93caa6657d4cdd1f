import { join } from "node:path";

/** Where the real flake.lock files live: in the repository (tests/fixtures/real-flake-locks/README.md). */
export const REAL_LOCKS = join(import.meta.dir, "..", "fixtures", "real-flake-locks");

/** The path of one real fixture file, e.g. `nixcfg-2026-08-22.flake.lock`. */
export function realLockPath(name: string): string {
  return join(REAL_LOCKS, name);
}

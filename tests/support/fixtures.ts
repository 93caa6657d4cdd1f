import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

/**
 * The real flake.lock files from a production fleet live in the shared fixtures folder beside the
 * project's checkout; tests read them in place. FLAKE_BUMP_REAL_LOCKS overrides where to look.
 */
export function realLockPath(name: string): string {
  const configured = process.env.FLAKE_BUMP_REAL_LOCKS;
  if (configured) return join(configured, name);
  let dir = resolve(import.meta.dir, "..", "..");
  for (let depth = 0; depth < 4; depth++) {
    const candidate = join(dir, "shared", "fixtures", "real-flake-locks");
    if (existsSync(candidate)) return join(candidate, name);
    dir = dirname(dir);
  }
  throw new Error("real-flake-locks fixtures not found next to the checkout; set FLAKE_BUMP_REAL_LOCKS");
}

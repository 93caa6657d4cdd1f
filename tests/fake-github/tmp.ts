/**
 * Temp dirs that do not outlive their test process. `bun test` exits without emitting the process
 * "exit" event, so cleanup at exit alone would leak a directory per run; instead each dir carries its
 * process id, and the next process to make one removes those whose process is gone.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return error instanceof Error && "code" in error && error.code === "EPERM";
  }
}

/** A new directory `<tmp>/<prefix>-<pid>-XXXXXX`; stale ones with the same prefix are swept first. */
export function processTempDir(prefix: string): string {
  const stale = new RegExp(`^${prefix}-(\\d+)-`);
  for (const name of readdirSync(tmpdir())) {
    const pid = Number(stale.exec(name)?.[1]);
    if (Number.isInteger(pid) && pid !== process.pid && !isRunning(pid)) {
      try {
        rmSync(join(tmpdir(), name), { recursive: true, force: true });
      } catch {
        // Another user's leftover (tests run as root, then as a contributor): theirs to sweep.
      }
    }
  }
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-${process.pid}-`));
  // Where the runtime does emit "exit" (bun run, node), clean up right away.
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

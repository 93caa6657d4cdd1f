/**
 * Temp dirs that do not outlive their test process. `bun test` exits without emitting the process
 * "exit" event, so cleanup at exit alone would leak a directory per run; instead each dir carries its
 * process id, and the next process to make one removes those whose process is gone.
 */
import { accessSync, constants, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const SHARED_MEMORY = "/dev/shm";

/**
 * Where the fake keeps its repositories: the shared-memory tmpfs when there is a writable one and
 * TMPDIR does not say otherwise, else os.tmpdir(). The fake writes every git object, ref and lock as
 * a new file; on a disk-backed /tmp creating a file costs ~0.5 ms, on tmpfs ~0.02 ms, and that was
 * most of what a fast-tier test spent. Nothing outside reads these paths but git on this machine
 * (Nix fetches through the fake's HTTPS listener), so any local directory serves.
 */
export function scratchRoot(): string {
  if (process.env.TMPDIR) return tmpdir();
  try {
    accessSync(SHARED_MEMORY, constants.W_OK);
    if (statSync(SHARED_MEMORY).isDirectory()) return SHARED_MEMORY;
  } catch {
    // no shared-memory tmpfs here (macOS, some containers)
  }
  return tmpdir();
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return error instanceof Error && "code" in error && error.code === "EPERM";
  }
}

/** A new directory `<root>/<prefix>-<pid>-XXXXXX`; stale ones with the same prefix are swept first. */
export function processTempDir(prefix: string, root = tmpdir()): string {
  const stale = new RegExp(`^${prefix}-(\\d+)-`);
  for (const name of readdirSync(root)) {
    const pid = Number(stale.exec(name)?.[1]);
    if (Number.isInteger(pid) && pid !== process.pid && !isRunning(pid)) {
      try {
        rmSync(join(root, name), { recursive: true, force: true });
      } catch {
        // Another user's leftover (tests run as root, then as a contributor): theirs to sweep.
      }
    }
  }
  const dir = mkdtempSync(join(root, `${prefix}-${process.pid}-`));
  // Where the runtime does emit "exit" (bun run, node), clean up right away.
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

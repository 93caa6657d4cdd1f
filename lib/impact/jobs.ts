/**
 * Running several `nix eval` processes at once without running out of memory: a pool of slots whose
 * size steps down when memory runs short, and a guard that watches what the processes hold.
 * Nix evaluation is single-threaded, so host impact runs one process per core; but each process's
 * heap grows with what it evaluates (a NixOS host is hundreds of MB), so the number that fit is
 * only known from what the first ones take. The guard samples the memory left every half second:
 * when it falls below the reserve while more than one process runs, it stops the newest, whose
 * unfinished hosts run again once another has finished, with one process fewer from then on.
 */
import { readdirSync, readFileSync } from "node:fs";
import { availableParallelism, totalmem } from "node:os";

/** Processes at once when not told: one per core. */
export function defaultJobs(): number {
  return Math.max(1, availableParallelism());
}

/** `auto` is one process per core (the guard lowers it further when memory runs short). */
export function resolveJobs(jobs: number | "auto"): number {
  return jobs === "auto" ? defaultJobs() : jobs;
}

/** Memory left free for everything else: a tenth of the machine's, at least 512 MiB. */
export function defaultReserveBytes(): number {
  return Math.max(512 * 2 ** 20, Math.floor(totalmem() / 10));
}

/** A counting semaphore whose size can only shrink, never below one. */
export class Slots {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private size: number) {}

  get capacity(): number {
    return this.size;
  }

  /** Resolves once a slot is free; call the returned function to free it. */
  async acquire(): Promise<() => void> {
    while (this.running >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.running++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running--;
      this.waiting.shift()?.();
    };
  }

  /** One slot fewer (the caller stops one running process to make it so). */
  shrink(): void {
    this.size = Math.max(1, this.size - 1);
  }
}

/** `/proc/PID/stat`: parent and resident pages, or nothing when there is no such process (or no /proc). */
function procStat(pid: string): { ppid: number; rssPages: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may hold spaces: fields count from after it.
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(fields[1]), rssPages: Number(fields[21]) };
  } catch {
    return undefined;
  }
}

const PAGE_BYTES = 4096;

/**
 * Resident bytes of each root process and all its descendants (a `nix` behind a shell or a wrapper
 * script is a child, not the root). Empty where there is no /proc (macOS): then only the memory left
 * is watched, not what the processes hold.
 */
export function treeRssBytes(roots: readonly number[]): Map<number, number> {
  const totals = new Map<number, number>();
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((name) => /^\d+$/.test(name));
  } catch {
    return totals;
  }
  const parent = new Map<number, number>();
  const rss = new Map<number, number>();
  for (const pid of pids) {
    const stat = procStat(pid);
    if (stat === undefined) continue;
    parent.set(Number(pid), stat.ppid);
    rss.set(Number(pid), stat.rssPages * PAGE_BYTES);
  }
  const rootSet = new Set(roots);
  for (const [pid, bytes] of rss) {
    // Walk up to a root; a process tree is shallow, the bound only guards against a cycle.
    let at: number | undefined = pid;
    for (let depth = 0; at !== undefined && depth < 64; depth++) {
      if (rootSet.has(at)) {
        totals.set(at, (totals.get(at) ?? 0) + bytes);
        break;
      }
      at = parent.get(at);
    }
  }
  return totals;
}

/** A process the guard watches, and how to stop it. */
interface Watched {
  pid: number;
  stop: () => void;
}

export interface GuardOptions {
  /** Memory to leave free; below it, the newest of several processes is stopped. */
  reserveBytes: number;
  /** What memory is left now (default: the OS's answer, which counts a cgroup's limit). */
  available?: () => number;
  intervalMs?: number;
}

/** Samples the watched processes' memory while they run; stops the newest when memory runs short. */
export class MemoryGuard {
  /** The most the watched processes held at once (sum of their trees' resident memory). */
  peakBytes = 0;
  /** Processes stopped to free memory. */
  stops = 0;
  private readonly watched: Watched[] = [];
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly available: () => number;
  /** After a stop, wait for the stopped process to go before judging again. */
  private stopping = false;

  constructor(
    private readonly slots: Slots,
    private readonly opts: GuardOptions,
  ) {
    this.available = opts.available ?? (() => process.availableMemory());
    this.timer = setInterval(() => this.sample(), opts.intervalMs ?? 500);
    // The guard never keeps the process alive by itself.
    this.timer.unref?.();
  }

  /** Watch a started process until the returned function is called (when it has exited). */
  watch(pid: number | undefined, stop: () => void): () => void {
    if (pid === undefined) return () => {};
    const entry = { pid, stop };
    this.watched.push(entry);
    // Judged at once, too: a process that starts when memory is already short is stopped before it grows.
    this.sample();
    return () => {
      const at = this.watched.indexOf(entry);
      if (at >= 0) this.watched.splice(at, 1);
      this.stopping = false;
      this.sample();
    };
  }

  sample(): void {
    const sizes = treeRssBytes(this.watched.map((entry) => entry.pid));
    let held = 0;
    for (const bytes of sizes.values()) held += bytes;
    this.peakBytes = Math.max(this.peakBytes, held);
    if (this.stopping || this.watched.length < 2 || this.available() >= this.opts.reserveBytes) return;
    const newest = this.watched.at(-1);
    if (newest === undefined) return;
    this.stopping = true;
    this.stops++;
    this.slots.shrink();
    newest.stop();
  }

  dispose(): void {
    clearInterval(this.timer);
  }
}

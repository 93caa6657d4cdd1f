/**
 * Work that SIGINT (Ctrl-C) or SIGTERM (a cancelled job, `kill`) must stop cleanly: its signal aborts,
 * so the child processes it started with that signal are stopped instead of left running; once it
 * has settled (or after a grace period), `cleanup` runs and the process exits 130 or 143, as a shell
 * reports a process killed by that signal. Nothing after the work runs: no half result is written.
 */

/** How long an interrupted piece of work may take to settle before the process exits anyway. */
const GRACE_MS = 10_000;

export async function interruptible<T>(
  work: (signal: AbortSignal) => Promise<T>,
  cleanup: () => void = () => {},
): Promise<T> {
  const abort = new AbortController();
  // Started before the handlers are in place, in the same turn: no signal is handled in between.
  const running = work(abort.signal);
  const onSignal = (signal: NodeJS.Signals) => {
    abort.abort();
    const settled = Promise.race([running.catch(() => undefined), Bun.sleep(GRACE_MS)]);
    void settled.then(() => {
      cleanup();
      process.exit(signal === "SIGINT" ? 130 : 143);
    });
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  // Once interrupted, the caller gets neither the result nor the error of its aborted work: the
  // handler's exit is the only outcome, so nothing after the work runs meanwhile.
  const stopped = () => new Promise<never>(() => {});
  try {
    const value = await running;
    if (abort.signal.aborted) return await stopped();
    return value;
  } catch (error) {
    if (abort.signal.aborted) return await stopped();
    throw error;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

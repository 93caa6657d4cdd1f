/**
 * Whether a run may move an input, decided from its effective policy, the kind of run and the clock:
 * `schedule` governs scheduled runs only, `follow: none` and `min-age` every automatic run, and a
 * person naming the input overrides all of them (the run then says what it overrode).
 */
import type { EffectivePolicy, Source } from "./effective.ts";
import { durationMs, type Schedule } from "./schema.ts";

/**
 * `schedule`: the nightly (or any cron) run. `automatic`: a dispatch for a push, or a run that names
 * no inputs. `ask`: a person named the inputs (the Run-workflow form's `inputs`, `bump.ts NAME`).
 */
export type Trigger = "schedule" | "automatic" | "ask";

const DAY_MS = 86_400_000;
const isoDay = (time: number): string => new Date(time).toISOString().slice(0, 10);

/**
 * Whether `schedule` lets a scheduled run move inputs at `now` (UTC), and the next day it does.
 * A missed day is not made up: the next run on such a day moves the input.
 */
export function scheduleDue(schedule: Schedule, now: Date): { due: boolean; next: string } {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const fits = (day: Date) =>
    schedule === "daily" || (schedule === "weekly" ? day.getUTCDay() === 1 : day.getUTCDate() === 1);
  let next = today;
  while (!fits(new Date(next))) next += DAY_MS;
  return { due: next === today, next: isoDay(next) };
}

/** A policy the run obeyed (held) or overrode, as a sentence's clause names it. */
export interface Applied extends Source {
  setting: "follow" | "schedule" | "min-age";
  value: string;
}

export type Gate =
  /** Nothing moves this input in this run. */
  | { move: false; held: Applied; reason: string }
  /**
   * The input may move; `minAgeMs` > 0 asks for the newest commit at least that old (see ageTarget),
   * and `overrode` lists the policies a person's ask set aside.
   */
  | { move: true; minAgeMs: number; overrode: Applied[] };

const applied = (policy: EffectivePolicy, setting: Applied["setting"]): Applied => ({
  setting,
  value: policy[setting].value,
  from: policy[setting].from,
  where: policy[setting].where,
});

/** Whether this run may move the input, under its policy; pure, `now` is the run's clock. */
export function gate(policy: EffectivePolicy, trigger: Trigger, now: Date): Gate {
  const minAgeMs = durationMs(policy["min-age"].value);
  if (trigger === "ask") {
    const overrode: Applied[] = [];
    if (policy.follow.value === "none") overrode.push(applied(policy, "follow"));
    if (minAgeMs > 0) overrode.push(applied(policy, "min-age"));
    return { move: true, minAgeMs: 0, overrode };
  }
  if (policy.follow.value === "none") {
    return {
      move: false,
      held: applied(policy, "follow"),
      reason: "only a run that names it moves it",
    };
  }
  if (trigger === "schedule") {
    const { due, next } = scheduleDue(policy.schedule.value, now);
    if (!due) {
      return {
        move: false,
        held: applied(policy, "schedule"),
        reason: `the next scheduled run that moves it is on ${next}`,
      };
    }
  }
  return { move: true, minAgeMs, overrode: [] };
}

/** A commit of the tracked branch, newest first as the branch's history lists them. */
export interface DatedCommit {
  sha: string;
  /** Committer date, milliseconds since the epoch. */
  committedAt: number;
}

export type AgeTarget =
  | { kind: "move"; rev: string; committedAt: number }
  /** The lock already holds the newest commit that is old enough. */
  | { kind: "current" }
  /** The lock holds something newer than every old-enough commit: min-age never moves backwards. */
  | { kind: "newer-locked" }
  /** No commit newer than the locked one is old enough yet; the first becomes so at `oldEnoughAt`. */
  | { kind: "young"; oldEnoughAt: number };

/**
 * The commit an automatic run under `min-age` moves to: the newest of `history` (the tracked
 * branch, newest first) whose committer date is at least `minAgeMs` before `now`. `history` must
 * reach back to the locked commit or to an old-enough one. `locked.lastModified` (seconds, as
 * flake.lock stores it: the locked commit's committer date) decides when the locked commit is not
 * in `history`.
 */
export function ageTarget(args: {
  history: readonly DatedCommit[];
  locked: { rev?: string | undefined; lastModified?: number | undefined };
  minAgeMs: number;
  now: Date;
}): AgeTarget {
  const { history, locked } = args;
  const cutoff = args.now.getTime() - args.minAgeMs;
  const lockedAt = history.findIndex((commit) => commit.sha === locked.rev);
  const oldEnough = history.findIndex((commit) => commit.committedAt <= cutoff);
  const candidate = history[oldEnough];
  if (candidate === undefined) {
    // Every listed commit is young: the oldest of those after the locked one comes of age first.
    const first = (lockedAt >= 0 ? history.slice(0, lockedAt) : history).at(-1);
    return first === undefined
      ? { kind: "current" }
      : { kind: "young", oldEnoughAt: first.committedAt + args.minAgeMs };
  }
  if (lockedAt === oldEnough) {
    // The lock holds the newest old-enough commit: the one after it is the next to come of age.
    const next = history[lockedAt - 1];
    return next === undefined
      ? { kind: "current" }
      : { kind: "young", oldEnoughAt: next.committedAt + args.minAgeMs };
  }
  if (lockedAt >= 0 && lockedAt < oldEnough) return { kind: "newer-locked" };
  // The locked commit is not listed: its committer date says whether the candidate is newer.
  const lockedTime = locked.lastModified === undefined ? undefined : locked.lastModified * 1000;
  if (lockedAt < 0 && lockedTime !== undefined && candidate.committedAt <= lockedTime)
    return { kind: "newer-locked" };
  return { kind: "move", rev: candidate.sha, committedAt: candidate.committedAt };
}

/**
 * Whether a run may move an input: schedules by the UTC day, follow: none and min-age for every
 * automatic run, a person's ask over all of them; and min-age's choice of commit, never backwards.
 */
import { expect, test } from "bun:test";
import { effectivePolicy } from "../../lib/policy/effective.ts";
import { parsePolicy } from "../../lib/policy/file.ts";
import {
  type AgeTarget,
  ageTarget,
  type DatedCommit,
  type Gate,
  gate,
  scheduleDue,
  type Trigger,
} from "../../lib/policy/gate.ts";
import type { Schedule } from "../../lib/policy/schema.ts";
import { EXAMPLE_POLICY } from "../support/policy.ts";

interface DueCase {
  schedule: Schedule;
  now: string;
  due: boolean;
  next: string;
}
// 2026-12-07 is a Monday; 2026-12-01 a Tuesday.
const dueCases: DueCase[] = [
  { schedule: "daily", now: "2026-12-08T03:00:00Z", due: true, next: "2026-12-08" },
  { schedule: "weekly", now: "2026-12-07T00:00:00Z", due: true, next: "2026-12-07" },
  { schedule: "weekly", now: "2026-12-07T23:59:59Z", due: true, next: "2026-12-07" },
  { schedule: "weekly", now: "2026-12-08T03:00:00Z", due: false, next: "2026-12-14" },
  { schedule: "weekly", now: "2026-12-06T23:59:59Z", due: false, next: "2026-12-07" },
  // Monday in UTC is still Sunday evening in New York: the UTC day counts.
  { schedule: "weekly", now: "2026-12-07T01:00:00-05:00", due: true, next: "2026-12-07" },
  { schedule: "monthly", now: "2026-12-01T03:00:00Z", due: true, next: "2026-12-01" },
  { schedule: "monthly", now: "2026-12-02T03:00:00Z", due: false, next: "2027-01-01" },
  { schedule: "monthly", now: "2027-02-28T03:00:00Z", due: false, next: "2027-03-01" },
];
test.each(dueCases)("$schedule at $now: due $due, next $next", ({ schedule, now, due, next }) => {
  expect(scheduleDue(schedule, new Date(now))).toStrictEqual({ due, next });
});

const FILE = ".github/flake-bump.yml";
const policy = parsePolicy(`${EXAMPLE_POLICY}  hostdash-dev:\n    min-age: 3d\n`, FILE);
const MONDAY = new Date("2026-12-07T03:00:00Z");
const TUESDAY = new Date("2026-12-08T03:00:00Z");
const DAY = 86_400_000;

interface GateCase {
  name: string;
  input: string;
  trigger: Trigger;
  now: Date;
  gate: Gate;
}
const gateCases: GateCase[] = [
  {
    name: "a weekly group member on a Monday night moves",
    input: "nixpkgs",
    trigger: "schedule",
    now: MONDAY,
    gate: { move: true, minAgeMs: 0, overrode: [] },
  },
  {
    name: "a weekly group member on a Tuesday night is held until next Monday",
    input: "nixpkgs",
    trigger: "schedule",
    now: TUESDAY,
    gate: {
      move: false,
      held: {
        setting: "schedule",
        value: "weekly",
        from: "group",
        where: `${FILE}:10 (groups.nixpkgs.schedule)`,
      },
      reason: "the next scheduled run that moves it is on 2026-12-14",
    },
  },
  {
    name: "schedule governs scheduled runs only: a dispatch on a Tuesday moves",
    input: "nixpkgs",
    trigger: "automatic",
    now: TUESDAY,
    gate: { move: true, minAgeMs: 0, overrode: [] },
  },
  {
    name: "follow: none holds every automatic run",
    input: "janus",
    trigger: "automatic",
    now: MONDAY,
    gate: {
      move: false,
      held: { setting: "follow", value: "none", from: "input", where: `${FILE}:14 (inputs.janus.follow)` },
      reason: "only a run that names it moves it",
    },
  },
  {
    name: "follow: none holds a scheduled run",
    input: "janus",
    trigger: "schedule",
    now: MONDAY,
    gate: {
      move: false,
      held: { setting: "follow", value: "none", from: "input", where: `${FILE}:14 (inputs.janus.follow)` },
      reason: "only a run that names it moves it",
    },
  },
  {
    name: "a person naming a follow: none input moves it and says what it overrode",
    input: "janus",
    trigger: "ask",
    now: TUESDAY,
    gate: {
      move: true,
      minAgeMs: 0,
      overrode: [
        { setting: "follow", value: "none", from: "input", where: `${FILE}:14 (inputs.janus.follow)` },
      ],
    },
  },
  {
    name: "min-age reaches an automatic run as the age to ask for",
    input: "hostdash-dev",
    trigger: "automatic",
    now: TUESDAY,
    gate: { move: true, minAgeMs: 3 * DAY, overrode: [] },
  },
  {
    name: "a person's ask takes the newest commit whatever min-age says, and says so",
    input: "hostdash-dev",
    trigger: "ask",
    now: TUESDAY,
    gate: {
      move: true,
      minAgeMs: 0,
      overrode: [
        { setting: "min-age", value: "3d", from: "input", where: `${FILE}:18 (inputs.hostdash-dev.min-age)` },
      ],
    },
  },
  {
    name: "an ask on a Tuesday for a weekly member overrides nothing: schedule is for scheduled runs",
    input: "home-manager",
    trigger: "ask",
    now: TUESDAY,
    gate: { move: true, minAgeMs: 0, overrode: [] },
  },
];
test.each(gateCases)("$name", ({ input, trigger, now, gate: expected }) => {
  expect(gate(effectivePolicy(input, policy), trigger, now)).toStrictEqual(expected);
});

const NOW = new Date("2026-12-08T12:00:00Z");
const at = (daysAgo: number) => NOW.getTime() - daysAgo * DAY;
const sha = (c: string) => c.repeat(40);
// The tracked branch, newest first: d is a day old, c two, b four, a ten.
const branch: DatedCommit[] = [
  { sha: sha("d"), committedAt: at(1) },
  { sha: sha("c"), committedAt: at(2) },
  { sha: sha("b"), committedAt: at(4) },
  { sha: sha("a"), committedAt: at(10) },
];

interface AgeCase {
  name: string;
  history: DatedCommit[];
  locked: { rev?: string; lastModified?: number };
  minAgeDays: number;
  now?: Date;
  target: AgeTarget;
}
const ageCases: AgeCase[] = [
  {
    name: "min-age 0: the newest commit",
    history: branch,
    locked: { rev: sha("a") },
    minAgeDays: 0,
    target: { kind: "move", rev: sha("d"), committedAt: at(1) },
  },
  {
    name: "min-age 3d on a busy branch: the newest commit that is three days old, not the newest",
    history: branch,
    locked: { rev: sha("a") },
    minAgeDays: 3,
    target: { kind: "move", rev: sha("b"), committedAt: at(4) },
  },
  {
    name: "exactly min-age old counts as old enough",
    history: branch,
    locked: { rev: sha("a") },
    minAgeDays: 2,
    target: { kind: "move", rev: sha("c"), committedAt: at(2) },
  },
  {
    name: "the lock holds the newest old-enough commit already: the next one comes of age later",
    history: branch,
    locked: { rev: sha("b") },
    minAgeDays: 3,
    target: { kind: "young", oldEnoughAt: at(2) + 3 * DAY },
  },
  {
    name: "the lock holds the branch head: nothing to wait for",
    history: branch,
    locked: { rev: sha("d") },
    minAgeDays: 0,
    target: { kind: "current" },
  },
  {
    name: "never backwards: the lock holds a commit newer than every old-enough one",
    history: branch,
    locked: { rev: sha("c") },
    minAgeDays: 3,
    target: { kind: "newer-locked" },
  },
  {
    name: "the only new commit is a day old under min-age 3d: held until it is three days old",
    history: branch.slice(0, 2),
    locked: { rev: sha("c") },
    minAgeDays: 3,
    target: { kind: "young", oldEnoughAt: at(1) + 3 * DAY },
  },
  {
    name: "the same commit once it is three days old moves",
    history: branch.slice(0, 2),
    locked: { rev: sha("c") },
    minAgeDays: 3,
    now: new Date(at(1) + 3 * DAY),
    target: { kind: "move", rev: sha("d"), committedAt: at(1) },
  },
  {
    name: "a locked commit older than the list: its lastModified says the candidate is newer",
    history: branch.slice(0, 3),
    locked: { rev: sha("a"), lastModified: at(10) / 1000 },
    minAgeDays: 3,
    target: { kind: "move", rev: sha("b"), committedAt: at(4) },
  },
  {
    name: "a locked commit not on the branch any more, newer than the candidate: never backwards",
    history: branch,
    locked: { rev: sha("e"), lastModified: at(3) / 1000 },
    minAgeDays: 3,
    target: { kind: "newer-locked" },
  },
  {
    name: "a dispatched commit a day old under min-age 3d is held",
    history: [{ sha: sha("d"), committedAt: at(1) }],
    locked: { rev: sha("a"), lastModified: at(10) / 1000 },
    minAgeDays: 3,
    target: { kind: "young", oldEnoughAt: at(1) + 3 * DAY },
  },
];
test.each(ageCases)("$name", ({ history, locked, minAgeDays, now = NOW, target }) => {
  expect(ageTarget({ history, locked, minAgeMs: minAgeDays * DAY, now })).toStrictEqual(target);
});

/**
 * Each input's effective policy: one precedence (flag > input > group > defaults > action > built-in),
 * and where every value came from.
 */
import { expect, test } from "bun:test";
import { type EffectivePolicy, effectivePolicy, type RunSettings } from "../../lib/policy/effective.ts";
import { parsePolicy } from "../../lib/policy/file.ts";
import { EXAMPLE_POLICY } from "../support/policy.ts";

const FILE = ".github/flake-bump.yml";
const example = parsePolicy(EXAMPLE_POLICY, FILE);
const partial = parsePolicy("groups:\n  nixpkgs:\n    inputs: [nixpkgs]\n    schedule: weekly\n", FILE);

const builtIn = { from: "built-in", where: "built-in" } as const;

interface Case {
  name: string;
  input: string;
  policy: typeof example | undefined;
  run: RunSettings;
  expected: Omit<EffectivePolicy, "input">;
}
const cases: Case[] = [
  {
    name: "no file, no action inputs: the built-in defaults",
    input: "nixpkgs",
    policy: undefined,
    run: {},
    expected: {
      grouping: { value: { kind: "single" }, ...builtIn },
      merge: { value: "review", ...builtIn },
      follow: { value: "branch", ...builtIn },
      schedule: { value: "daily", ...builtIn },
      "min-age": { value: "0h", ...builtIn },
    },
  },
  {
    name: "no file: the action's inputs, and group: true is the all-group",
    input: "nixpkgs",
    policy: undefined,
    run: { action: { merge: "auto", group: true } },
    expected: {
      grouping: { value: { kind: "all" }, from: "action", where: "action input 'group'" },
      merge: { value: "auto", from: "action", where: "action input 'merge'" },
      follow: { value: "branch", ...builtIn },
      schedule: { value: "daily", ...builtIn },
      "min-age": { value: "0h", ...builtIn },
    },
  },
  {
    name: "a group member: the group's settings over defaults, the defaults over the action",
    input: "home-manager",
    policy: example,
    run: { action: { merge: "direct", group: true } },
    expected: {
      grouping: {
        value: { kind: "named", name: "nixpkgs" },
        from: "group",
        where: `${FILE}:8 (groups.nixpkgs.inputs[2])`,
      },
      merge: { value: "auto", from: "group", where: `${FILE}:11 (groups.nixpkgs.merge)` },
      follow: { value: "branch", from: "defaults", where: `${FILE}:4 (defaults.follow)` },
      schedule: { value: "weekly", from: "group", where: `${FILE}:10 (groups.nixpkgs.schedule)` },
      "min-age": { value: "0h", from: "defaults", where: `${FILE}:6 (defaults.min-age)` },
    },
  },
  {
    name: "an input's own entry over the defaults",
    input: "janus",
    policy: example,
    run: {},
    expected: {
      grouping: { value: { kind: "single" }, ...builtIn },
      merge: { value: "review", from: "defaults", where: `${FILE}:3 (defaults.merge)` },
      follow: { value: "none", from: "input", where: `${FILE}:14 (inputs.janus.follow)` },
      schedule: { value: "daily", from: "defaults", where: `${FILE}:5 (defaults.schedule)` },
      "min-age": { value: "0h", from: "defaults", where: `${FILE}:6 (defaults.min-age)` },
    },
  },
  {
    name: "an input the file does not mention takes defaults; group: true puts it in the all-group",
    input: "disko",
    policy: example,
    run: { action: { group: true } },
    expected: {
      grouping: { value: { kind: "all" }, from: "action", where: "action input 'group'" },
      merge: { value: "review", from: "defaults", where: `${FILE}:3 (defaults.merge)` },
      follow: { value: "branch", from: "defaults", where: `${FILE}:4 (defaults.follow)` },
      schedule: { value: "daily", from: "defaults", where: `${FILE}:5 (defaults.schedule)` },
      "min-age": { value: "0h", from: "defaults", where: `${FILE}:6 (defaults.min-age)` },
    },
  },
  {
    name: "flags for this run beat every level of the file",
    input: "hostdash",
    policy: example,
    run: { flags: { merge: "review", "min-age": "3d", group: true }, action: { merge: "direct" } },
    expected: {
      grouping: { value: { kind: "all" }, from: "flag", where: "--group" },
      merge: { value: "review", from: "flag", where: "--merge" },
      follow: { value: "branch", from: "defaults", where: `${FILE}:4 (defaults.follow)` },
      schedule: { value: "daily", from: "defaults", where: `${FILE}:5 (defaults.schedule)` },
      "min-age": { value: "3d", from: "flag", where: "--min-age" },
    },
  },
  {
    name: "a file without defaults: what it leaves unset comes from the action, then the built-in",
    input: "nixpkgs",
    policy: partial,
    run: { action: { merge: "auto", schedule: "monthly" } },
    expected: {
      grouping: {
        value: { kind: "named", name: "nixpkgs" },
        from: "group",
        where: `${FILE}:2 (groups.nixpkgs.inputs[0])`,
      },
      merge: { value: "auto", from: "action", where: "action input 'merge'" },
      follow: { value: "branch", ...builtIn },
      schedule: { value: "weekly", from: "group", where: `${FILE}:4 (groups.nixpkgs.schedule)` },
      "min-age": { value: "0h", ...builtIn },
    },
  },
];

test.each(cases)("$name", ({ input, policy, run, expected }) => {
  expect(effectivePolicy(input, policy, run)).toStrictEqual({ input, ...expected });
});

import { expect, test } from "bun:test";
import { UsageError } from "../../lib/core/errors.ts";
import { envName, readActionInputs, splitLabels, splitNames } from "../../lib/core/inputs.ts";

const sha = "887daaf2b11c1375d98b35cc0c769fc9e9512861";

interface SplitCase {
  text: string;
  names: string[];
  labels: string[];
}
const splits: SplitCase[] = [
  { text: "a,b", names: ["a", "b"], labels: ["a", "b"] },
  { text: " a , b\nc  d ", names: ["a", "b", "c", "d"], labels: ["a", "b", "c  d"] },
  {
    text: "needs review,\n good first issue \n",
    names: ["needs", "review", "good", "first", "issue"],
    labels: ["needs review", "good first issue"],
  },
  { text: " ,\n, ", names: [], labels: [] },
];
test.each(splits)("split %j", ({ text, names, labels }) => {
  expect([splitNames(text), splitLabels(text)]).toStrictEqual([names, labels]);
});

test("envName is how the actions pass each input", () => {
  expect(["branch-prefix", "dry-run", "rev"].map(envName)).toStrictEqual([
    "FLAKE_BUMP_BRANCH_PREFIX",
    "FLAKE_BUMP_DRY_RUN",
    "FLAKE_BUMP_REV",
  ]);
});

test("open-pr's inputs: every one read, lists split by their own rule, empty ones absent", () => {
  expect(
    readActionInputs("open-pr", {
      FLAKE_BUMP_REPORT: "/tmp/r.json",
      FLAKE_BUMP_BASE: " release ",
      FLAKE_BUMP_BRANCH_PREFIX: "bump/",
      FLAKE_BUMP_LABELS: "dependencies, needs review\nflake update",
      FLAKE_BUMP_REVIEWERS: "alice, bob\ncarol",
      FLAKE_BUMP_DRAFT: "true",
      FLAKE_BUMP_DRY_RUN: "",
    }),
  ).toStrictEqual({
    report: "/tmp/r.json",
    base: "release",
    "branch-prefix": "bump/",
    labels: ["dependencies", "needs review", "flake update"],
    reviewers: ["alice", "bob", "carol"],
    draft: true,
  });
});

test("GitHub's INPUT_<NAME> is read when FLAKE_BUMP_<NAME> is not set, and loses to it", () => {
  expect(
    readActionInputs("notify", {
      "INPUT_EVENT-TYPE": "pushed",
      INPUT_REPOSITORIES: "acme/a acme/b",
      FLAKE_BUMP_REPOSITORIES: "acme/c",
      INPUT_SHA: sha,
      INPUT_REF: "refs/heads/main",
      INPUT_INPUT: "nixfleet",
      "INPUT_DRY-RUN": "false",
    }),
  ).toStrictEqual({
    "event-type": "pushed",
    repositories: ["acme/c"],
    sha,
    ref: "refs/heads/main",
    input: "nixfleet",
    "dry-run": false,
  });
});

test("bump's inputs: names with commas and newlines, rev, flake, dry-run, engine", () => {
  expect(
    readActionInputs("bump", {
      FLAKE_BUMP_INPUTS: "nixfleet,\n home-manager",
      FLAKE_BUMP_REV: sha,
      FLAKE_BUMP_FLAKE: "hosts",
      FLAKE_BUMP_DRY_RUN: "true",
      FLAKE_BUMP_ENGINE: " native ",
    }),
  ).toStrictEqual({
    inputs: ["nixfleet", "home-manager"],
    rev: sha,
    flake: "hosts",
    "dry-run": true,
    engine: "native",
  });
  expect(readActionInputs("bump", {})).toStrictEqual({});
});

interface BadCase {
  script: "bump" | "open-pr" | "notify";
  env: Record<string, string>;
  error: RegExp;
}
const bad: BadCase[] = [
  { script: "bump", env: { FLAKE_BUMP_REV: "abc" }, error: /^action input 'rev' must be a full commit SHA/ },
  {
    script: "bump",
    env: { FLAKE_BUMP_ENGINE: "fast" },
    error: /^action input 'engine' must be auto, native or nix/,
  },
  {
    script: "bump",
    env: { FLAKE_BUMP_INPUTS: "ok,../x" },
    error: /^action input 'inputs' \("\.\.\/x"\) must be a flake input name/,
  },
  {
    script: "open-pr",
    env: { FLAKE_BUMP_DRAFT: "yes" },
    error: /^action input 'draft' must be true or false/,
  },
  {
    script: "open-pr",
    env: { FLAKE_BUMP_BASE: "a..b" },
    error: /^action input 'base' must be a valid branch name/,
  },
  { script: "open-pr", env: { FLAKE_BUMP_LABELS: "x".repeat(51) }, error: /^action input 'labels' \(/ },
  {
    script: "open-pr",
    env: { FLAKE_BUMP_REVIEWERS: "alice, @bob" },
    error: /^action input 'reviewers' \("@bob"\) must be a plain name/,
  },
  {
    script: "notify",
    env: { FLAKE_BUMP_REPOSITORIES: "acme/a acme" },
    error: /^action input 'repositories' \("acme"\) must be OWNER\/REPO/,
  },
  {
    script: "notify",
    env: { FLAKE_BUMP_REF: "refs/heads/a b" },
    error: /^action input 'ref' must be a git ref/,
  },
  {
    script: "notify",
    env: { FLAKE_BUMP_EVENT_TYPE: "-x" },
    error: /^action input 'event-type' must be 1–100/,
  },
];
test.each(bad)("$script with $env is one sentence naming the action input", ({ script, env, error }) => {
  expect(() => readActionInputs(script, env)).toThrow(UsageError);
  expect(() => readActionInputs(script, env)).toThrow(error);
  expect(() => readActionInputs(script, env)).toThrow(/; fix it in the workflow step's 'with:'$/);
});

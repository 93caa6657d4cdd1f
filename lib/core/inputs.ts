/**
 * The composite actions' inputs, as the scripts read them: each action step passes its inputs through
 * `env:` as `FLAKE_BUMP_<NAME>` (GitHub does not export a composite action's inputs itself), and a
 * JavaScript-style runner sets `INPUT_<NAME>`. One schema per script turns that text into typed
 * values, with the same list rules everywhere, so action.yml holds no logic; command-line flags still
 * override what it says.
 */
import * as v from "valibot";
import { UsageError } from "./errors.ts";
import {
  Branch,
  Engine,
  EventType,
  GitRef,
  InputName,
  Label,
  Login,
  MergeMethod,
  MergeMode,
  RepositoryName,
  Sha,
} from "./ids.ts";

/** Names, reviewers, repositories: separated by commas, spaces or newlines. */
export function splitNames(text: string): string[] {
  return text.split(/[\s,]+/).filter(Boolean);
}

/** Labels may contain spaces ("good first issue"), so only commas and newlines separate them. */
export function splitLabels(text: string): string[] {
  return text
    .split(/[,\n]/)
    .map((label) => label.trim())
    .filter(Boolean);
}

const text = <S extends v.GenericSchema<string, string>>(schema: S) => v.pipe(v.string(), v.trim(), schema);
const list = <S extends v.GenericSchema<string, string>>(item: S, split = splitNames) =>
  v.pipe(v.string(), v.transform(split), v.array(item));
const flag = v.pipe(
  v.string(),
  v.trim(),
  v.picklist(["true", "false"], "must be true or false"),
  v.transform((value) => value === "true"),
);
const Path = v.pipe(v.string(), v.minLength(1));
const minutes = v.pipe(
  v.string(),
  v.trim(),
  v.regex(/^\d+(\.\d+)?$/, "must be a number of minutes, e.g. 20"),
  v.transform(Number),
  v.minValue(0.01, "must be more than 0"),
);
/** How many `nix eval` processes host impact runs at once: a whole number from 1, or `auto`. */
export const Jobs = v.pipe(
  v.string(),
  v.trim(),
  v.regex(/^(auto|[1-9]\d*)$/, "must be auto or a whole number of processes from 1, e.g. 2"),
  v.transform((value): number | "auto" => (value === "auto" ? "auto" : Number(value))),
);

/** The PR body's closing sentence: one line, short. */
export const Footer = v.pipe(
  v.string(),
  v.minLength(1),
  v.maxLength(300, "must be at most 300 characters"),
  v.regex(/^[^\n]*$/, "must be one line"),
);

/** Each script's action inputs, by their names in action.yml. An empty input counts as not given. */
export const ActionInputs = {
  bump: v.object({
    inputs: v.optional(list(InputName)),
    rev: v.optional(text(Sha)),
    flake: v.optional(text(Path)),
    "dry-run": v.optional(flag),
    /** With `group`, bump reads the grouped PR's branch (under this prefix) to keep its members. */
    group: v.optional(flag),
    "branch-prefix": v.optional(text(Branch)),
    engine: v.optional(text(Engine)),
    /** The policy file; empty: `.github/flake-bump.yml` of the flake's repository, if it exists. */
    config: v.optional(text(Path)),
    /** Only shown by `--check` (each input's effective policy); open-pr is the step that lands. */
    merge: v.optional(text(MergeMode)),
  }),
  "open-pr": v.object({
    /** Not an input of the action: the bump step's `report` output, wired through by the action. */
    report: v.optional(text(Path)),
    base: v.optional(text(Branch)),
    "branch-prefix": v.optional(text(Branch)),
    labels: v.optional(list(Label, splitLabels)),
    reviewers: v.optional(list(Login)),
    draft: v.optional(flag),
    "dry-run": v.optional(flag),
    group: v.optional(flag),
    merge: v.optional(text(MergeMode)),
    "merge-method": v.optional(text(MergeMethod)),
    "pr-footer": v.optional(text(Footer)),
    /** Not an input of the action: the impact step's `impact` output, wired through by the action. */
    "impact-report": v.optional(text(Path)),
    config: v.optional(text(Path)),
  }),
  impact: v.object({
    /** Not an input of the action: the bump step's `report` output, wired through by the action. */
    report: v.optional(text(Path)),
    /** Not an input either: the check step's `outdated` output, so `--plan` knows whether Nix will be needed. */
    outdated: v.optional(list(InputName)),
    impact: v.optional(text(v.picklist(["auto", "true", "false"], "must be auto, true or false"))),
    "impact-timeout-minutes": v.optional(minutes),
    "impact-jobs": v.optional(Jobs),
    flake: v.optional(text(Path)),
    "branch-prefix": v.optional(text(Branch)),
    "pr-footer": v.optional(text(Footer)),
    "dry-run": v.optional(flag),
    /** One combined section, evaluated with the report's combined lock, into the grouped pull request. */
    group: v.optional(flag),
  }),
  notify: v.object({
    repositories: v.optional(list(RepositoryName)),
    input: v.optional(text(InputName)),
    sha: v.optional(text(Sha)),
    ref: v.optional(text(GitRef)),
    "event-type": v.optional(text(EventType)),
    "dry-run": v.optional(flag),
  }),
} as const;
export type ActionInputs = { [K in keyof typeof ActionInputs]: v.InferOutput<(typeof ActionInputs)[K]> };

/** `FLAKE_BUMP_BRANCH_PREFIX` for `branch-prefix`: how the actions pass an input to a script. */
export function envName(input: string): string {
  return `FLAKE_BUMP_${input.toUpperCase().replaceAll("-", "_")}`;
}

/**
 * Read a script's action inputs from the environment: `FLAKE_BUMP_<NAME>`, else GitHub's
 * `INPUT_<NAME>` (upper case, hyphens kept). Invalid text is a UsageError naming the input.
 */
export function readActionInputs<K extends keyof typeof ActionInputs>(
  script: K,
  env: NodeJS.ProcessEnv,
): ActionInputs[K] {
  const schema = ActionInputs[script];
  const raw: Record<string, string> = {};
  for (const name of Object.keys(schema.entries)) {
    const value = env[envName(name)] ?? env[`INPUT_${name.toUpperCase()}`];
    if (value !== undefined && value.trim() !== "") raw[name] = value;
  }
  const result = v.safeParse(schema, raw);
  if (!result.success) {
    const clauses = result.issues.map((issue) => {
      const name = String(issue.path?.[0]?.key ?? "");
      const item = issue.path?.[1] === undefined ? "" : ` (${JSON.stringify(issue.input)})`;
      return `action input '${name}'${item} ${issue.message}`;
    });
    throw new UsageError(`${clauses.join("; ")}; fix it in the workflow step's 'with:'`);
  }
  return result.output;
}

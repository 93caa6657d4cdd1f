/**
 * The policy file `.github/flake-bump.yml`: its one schema, the values it holds and the durations of
 * `min-age`. The JSON Schema shipped for editors (docs/flake-bump.schema.json) is generated from this
 * schema, and a test keeps the two equal.
 */
import * as v from "valibot";
import { InputName, MergeMode } from "../core/ids.ts";

/** Where a repository keeps its policy, relative to the flake's repository root. */
export const POLICY_PATH = ".github/flake-bump.yml";

/**
 * What an automatic run tracks: the locked branch, newer release tags of the pinned tag's series
 * (`releases`: flake.nix's tag is edited), or nothing (`none`: only a person moves it).
 */
export const Follow = v.picklist(
  ["branch", "releases", "none"],
  "must be branch (follow the locked branch), releases (newer tags of the pinned tag's series) or none (only moved when named)",
);
export type Follow = v.InferOutput<typeof Follow>;

/** On which days a scheduled run may move an input (UTC): every day, Mondays, the 1st of the month. */
export const Schedule = v.picklist(["daily", "weekly", "monthly"], "must be daily, weekly or monthly");
export type Schedule = v.InferOutput<typeof Schedule>;

/** A whole number of hours or days: `0h`, `36h`, `3d`. */
export const Duration = v.pipe(
  v.string("must be a duration in hours or days, such as 36h or 3d"),
  v.regex(/^[0-9]{1,5}[hd]$/, "must be a duration in hours or days, such as 36h or 3d"),
);
export type Duration = v.InferOutput<typeof Duration>;

const HOUR_MS = 3_600_000;

/** `36h` → milliseconds. Only called on text the Duration schema accepted. */
export function durationMs(duration: Duration): number {
  const amount = Number.parseInt(duration, 10);
  return duration.endsWith("d") ? amount * 24 * HOUR_MS : amount * HOUR_MS;
}

/** The settings every level of the file may set; each level overrides the one it refines. */
export const SETTINGS = ["merge", "follow", "schedule", "min-age"] as const;
export type SettingName = (typeof SETTINGS)[number];
export interface Settings {
  merge: MergeMode;
  follow: Follow;
  schedule: Schedule;
  "min-age": Duration;
}

// The descriptions are what an editor shows from the generated JSON Schema.
const settings = {
  merge: v.optional(
    v.pipe(
      MergeMode,
      v.description(
        "How a bump lands: review (a person merges), auto (GitHub's auto-merge when host impact allows), direct (committed onto the base branch).",
      ),
    ),
  ),
  follow: v.optional(
    v.pipe(
      Follow,
      v.description(
        "What an automatic run moves the input to: the locked branch's newest commit, the newest release tag of the pinned tag's series (flake.nix's tag is edited), or none.",
      ),
    ),
  ),
  schedule: v.optional(
    v.pipe(
      Schedule,
      v.description(
        "When a scheduled run may move the input: daily, weekly (Mondays, UTC), monthly (the 1st).",
      ),
    ),
  ),
  "min-age": v.optional(
    v.pipe(
      Duration,
      v.description("An automatic run takes only commits at least this old by committer date: 0h, 36h, 3d."),
    ),
  ),
};

/** A mapping with exactly these keys: an unknown key's issue names the keys that are allowed. */
function mapping<E extends v.ObjectEntries>(entries: E) {
  const known = Object.keys(entries).join(", ");
  return v.strictObject(entries, (issue) => {
    // valibot takes a list for an object with keys 0, 1, …: the YAML then has `- item` lines.
    const list = Array.isArray(issue.path?.at(-1)?.input);
    if (issue.expected === "never" && !list) return `is not a known key (known here: ${known})`;
    const key = issue.path?.at(-1)?.key;
    if (!list && issue.received === "undefined" && typeof key === "string" && key in entries)
      return "is required";
    return `must be a mapping of ${known}`;
  });
}

/** A group's name becomes a branch component (`<branch-prefix>group/<name>`). */
export const GroupName = v.pipe(
  v.string(),
  v.regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, "must be a group name: letters, digits, '-' and '_'"),
);

const Group = mapping({
  inputs: v.pipe(
    v.array(InputName, "must be a list of input names, such as [nixpkgs, home-manager]"),
    v.minLength(1, "must name at least one input"),
    v.description("The inputs that share this group's pull request; an input is in one group at most."),
  ),
  ...settings,
});

/** An input's own entry: the settings, and the submodules that move with it (lib/flake/companions.ts). */
const InputEntry = mapping({
  ...settings,
  companions: v.optional(
    v.pipe(
      v.array(
        v.pipe(v.string(), v.minLength(1)),
        "must be a list of submodule paths as .gitmodules gives them, such as [doctrine]",
      ),
      v.description(
        "Submodules (paths as .gitmodules gives them) on the input's repository that move with it, in the same commit, wherever they point now.",
      ),
    ),
  ),
});

export const PolicyFile = mapping({
  defaults: v.optional(
    v.pipe(mapping(settings), v.description("Settings of every input the file does not set otherwise.")),
  ),
  groups: v.optional(
    v.pipe(
      v.record(GroupName, Group, "must be a mapping of group names to groups"),
      v.description("Named groups: each shares one pull request on <branch-prefix>group/<name>."),
    ),
  ),
  inputs: v.optional(
    v.pipe(
      v.record(InputName, InputEntry, "must be a mapping of input names to their settings"),
      v.description(
        "Settings of single inputs, by their names in flake.lock; they win over groups and defaults.",
      ),
    ),
  ),
});
export type PolicyFile = v.InferOutput<typeof PolicyFile>;

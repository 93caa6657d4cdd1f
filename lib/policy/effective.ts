/**
 * Each input's effective policy, from every place a setting can come from, with where each value
 * came from so `bump.ts --check` can show why an input did or did not move. One precedence:
 * a command-line flag for this run > the input's entry > its group > `defaults` > the action's
 * inputs > the built-in defaults.
 */
import type { Level, Policy, PolicyGroup } from "./file.ts";
import { SETTINGS, type SettingName, type Settings } from "./schema.ts";

export const BUILT_IN: Settings = { merge: "review", follow: "branch", schedule: "daily", "min-age": "0h" };

/** Where a value came from: the layer, and a reader's pointer into it. */
export interface Source {
  from: "flag" | "input" | "group" | "defaults" | "action" | "built-in";
  /** `--merge`, `.github/flake-bump.yml:11 (groups.nixpkgs.merge)`, `action input 'merge'`, `built-in`. */
  where: string;
}
export interface Sourced<T> extends Source {
  value: T;
}

/** Which pull request an input's bump goes into. */
export type Grouping =
  | { kind: "single" }
  /** The action's `group: true` (or `--group`): one pull request for everything on `<prefix>all`. */
  | { kind: "all" }
  /** A group of the policy file, on `<prefix>group/<name>`. */
  | { kind: "named"; name: string };

export type EffectivePolicy = { input: string; grouping: Sourced<Grouping> } & {
  [K in SettingName]: Sourced<Settings[K]>;
};

/** What this run was told outside the file: flags on the command line, and the action's inputs. */
export interface RunSettings {
  flags?: Partial<Settings> & { group?: boolean };
  action?: Partial<Settings> & { group?: boolean };
}

function fileSource(
  policy: Policy,
  level: { key: string; lines: Partial<Record<SettingName, number>> },
  key: SettingName,
) {
  return `${policy.file}:${level.lines[key] ?? 1} (${level.key}.${key})`;
}

/** The named group an input belongs to (the file allows one at most). */
export function groupOf(policy: Policy | undefined, input: string): PolicyGroup | undefined {
  return policy?.groups.find((group) => group.inputs.includes(input));
}

function grouping(input: string, policy: Policy | undefined, run: RunSettings): Sourced<Grouping> {
  if (run.flags?.group === true) return { value: { kind: "all" }, from: "flag", where: "--group" };
  const named = groupOf(policy, input);
  if (policy !== undefined && named !== undefined) {
    const at = named.inputs.indexOf(input);
    return {
      value: { kind: "named", name: named.name },
      from: "group",
      where: `${policy.file}:${named.line} (${named.key}.inputs[${at}])`,
    };
  }
  if (run.action?.group === true)
    return { value: { kind: "all" }, from: "action", where: "action input 'group'" };
  return { value: { kind: "single" }, from: "built-in", where: "built-in" };
}

function setting<K extends SettingName>(
  key: K,
  entry: Level | undefined,
  policy: Policy | undefined,
  run: RunSettings,
  named: PolicyGroup | undefined,
): Sourced<Settings[K]> {
  const flags: Partial<Settings> | undefined = run.flags;
  const actionInputs: Partial<Settings> | undefined = run.action;
  const flag = flags?.[key];
  if (flag !== undefined) return { value: flag, from: "flag", where: `--${key}` };
  if (policy !== undefined) {
    const levels = [
      ["input", entry],
      ["group", named],
      ["defaults", policy.defaults],
    ] as const;
    for (const [from, level] of levels) {
      const value = level?.settings[key];
      if (level !== undefined && value !== undefined)
        return { value, from, where: fileSource(policy, level, key) };
    }
  }
  const action = actionInputs?.[key];
  if (action !== undefined) return { value: action, from: "action", where: `action input '${key}'` };
  return { value: BUILT_IN[key], from: "built-in", where: "built-in" };
}

/**
 * One input's effective policy. A member of a `group: true` (`kind: "all"`) run takes no group
 * level from the file: the file's groups are its named ones.
 */
export function effectivePolicy(
  input: string,
  policy: Policy | undefined,
  run: RunSettings = {},
): EffectivePolicy {
  const where = grouping(input, policy, run);
  const named = where.value.kind === "named" ? groupOf(policy, input) : undefined;
  const settings = <K extends SettingName>(key: K) => setting(key, policy?.inputs[input], policy, run, named);
  return {
    input,
    grouping: where,
    merge: settings("merge"),
    follow: settings("follow"),
    schedule: settings("schedule"),
    "min-age": settings("min-age"),
  };
}

/**
 * How a grouped pull request lands: a named group's `merge` (its members set none of their own), or
 * for `group: true`'s one pull request of everything, the run's flag, `defaults`, the action's input.
 */
export function groupMerge(name: string | undefined, policy: Policy | undefined, run: RunSettings = {}) {
  const named = name === undefined ? undefined : policy?.groups.find((group) => group.name === name);
  return setting("merge", undefined, policy, run, named);
}

/** `merge: auto (.github/flake-bump.yml:11 (groups.nixpkgs.merge))`, one per setting, for --check. */
export function describePolicy(policy: EffectivePolicy): string {
  const parts = SETTINGS.map((key) => `${key}: ${policy[key].value} (${policy[key].where})`);
  const pr = policy.grouping.value;
  const into =
    pr.kind === "single"
      ? "its own pull request"
      : pr.kind === "all"
        ? "the grouped pull request"
        : `group '${pr.name}'`;
  return `${into}; ${parts.join(", ")}`;
}

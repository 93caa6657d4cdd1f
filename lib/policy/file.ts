/**
 * Reading the policy file: YAML parsed with its line numbers kept, the one schema applied, and the
 * references checked against flake.lock, so every mistake is one usage error naming the file, the
 * line and the key.
 */
import { readFile } from "node:fs/promises";
import * as v from "valibot";
import { isMap, isNode, isScalar, isSeq, LineCounter, parseDocument } from "yaml";
import { UsageError } from "../core/errors.ts";
import { PolicyFile, SETTINGS, type SettingName, type Settings } from "./schema.ts";

/** One level of the file: `defaults`, `groups.<name>` or `inputs.<name>`, where it starts. */
export interface Level {
  /** The key path as a reader finds it: `defaults`, `groups.nixpkgs`, `inputs.janus`. */
  key: string;
  line: number;
  /** The settings this level sets, and the line each is on. */
  settings: Partial<Settings>;
  lines: Partial<Record<SettingName, number>>;
}

export interface PolicyGroup extends Level {
  name: string;
  inputs: string[];
}

/** The policy file as the rest of flake-bump reads it. */
export interface Policy {
  /** The file as the messages name it (relative to the repository, as the user wrote it). */
  file: string;
  defaults: Level | undefined;
  groups: PolicyGroup[];
  inputs: Record<string, Level>;
}

type Path = readonly (string | number)[];

/** Lines of a parsed document by key path: where a key (or its value) is written. */
class Lines {
  constructor(
    private readonly root: unknown,
    private readonly counter: LineCounter,
  ) {}

  /** The line of the key at `path` (of the item, in a list); the nearest enclosing key when absent. */
  of(path: Path): number {
    let node: unknown = this.root;
    let line = 1;
    for (const segment of path) {
      if (isMap(node)) {
        const pair = node.items.find(
          (item) => isScalar(item.key) && String(item.key.value) === String(segment),
        );
        if (pair === undefined) break;
        line = this.lineOf(pair.key) ?? line;
        node = pair.value;
      } else if (isSeq(node) && typeof segment === "number") {
        node = node.items[segment];
        line = this.lineOf(node) ?? line;
      } else break;
    }
    return line;
  }

  private lineOf(node: unknown): number | undefined {
    const offset = isNode(node) ? node.range?.[0] : undefined;
    return offset === undefined ? undefined : this.counter.linePos(offset).line;
  }
}

const display = (path: Path): string =>
  path
    .map((segment, i) => (typeof segment === "number" ? `[${segment}]` : i === 0 ? segment : `.${segment}`))
    .join("");

const FIX = "fix the policy file (every key is described in docs/policy.md)";

/**
 * Parse and check a policy file's text. `knownInputs` are flake.lock's root inputs: every input the
 * file names must be one of them. Any problem is one UsageError listing each `FILE:LINE: key …`.
 */
export function parsePolicy(text: string, file: string, knownInputs?: readonly string[]): Policy {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  const syntax = doc.errors[0];
  if (syntax !== undefined) {
    const line = counter.linePos(syntax.pos[0]).line;
    throw new UsageError(`${file}:${line}: not valid YAML (${syntax.message}); ${FIX}`);
  }
  const lines = new Lines(doc.contents, counter);
  // An empty file (or one of comments only) sets nothing.
  const result = v.safeParse(PolicyFile, doc.toJS() ?? {});
  if (!result.success) {
    const problems = result.issues.map((issue) => {
      let path = (issue.path ?? []).map((item) =>
        typeof item.key === "number" ? item.key : String(item.key),
      );
      // A list where a mapping belongs fails once per item; name the list itself, once.
      if (Array.isArray(issue.path?.at(-1)?.input)) path = path.slice(0, -1);
      const where = path.length === 0 ? "the file" : `'${display(path)}'`;
      return `${file}:${lines.of(path)}: ${where} ${issue.message}`;
    });
    throw new UsageError(`${[...new Set(problems)].join("; ")}; ${FIX}`);
  }
  const policy = toPolicy(result.output, file, lines);
  const problems = knownInputs === undefined ? [] : unknownInputs(policy, lines, knownInputs);
  problems.push(...twiceGrouped(policy, lines), ...memberMerge(policy));
  if (problems.length > 0) throw new UsageError(`${problems.join("; ")}; ${FIX}`);
  return policy;
}

function toPolicy(parsed: PolicyFile, file: string, lines: Lines): Policy {
  const level = (path: Path, values: { [K in SettingName]?: Settings[K] | undefined }): Level => {
    const found: Level = { key: display(path), line: lines.of(path), settings: {}, lines: {} };
    const set = <K extends SettingName>(key: K, value: Settings[K] | undefined) => {
      if (value === undefined) return;
      found.settings[key] = value;
      found.lines[key] = lines.of([...path, key]);
    };
    for (const key of SETTINGS) set(key, values[key]);
    return found;
  };
  return {
    file,
    defaults: parsed.defaults === undefined ? undefined : level(["defaults"], parsed.defaults),
    groups: Object.entries(parsed.groups ?? {}).map(([name, group]) => ({
      ...level(["groups", name], group),
      name,
      inputs: group.inputs,
    })),
    inputs: Object.fromEntries(
      Object.entries(parsed.inputs ?? {}).map(([name, values]) => [name, level(["inputs", name], values)]),
    ),
  };
}

function unknownInputs(policy: Policy, lines: Lines, known: readonly string[]): string[] {
  const found = `flake.lock's root inputs are: ${known.join(", ") || "none"}`;
  const problems: string[] = [];
  for (const group of policy.groups) {
    group.inputs.forEach((name, i) => {
      if (!known.includes(name)) {
        const path = ["groups", group.name, "inputs", i];
        problems.push(
          `${policy.file}:${lines.of(path)}: '${display(path)}' names '${name}', which is not an input (${found})`,
        );
      }
    });
  }
  for (const [name, level] of Object.entries(policy.inputs)) {
    if (!known.includes(name))
      problems.push(`${policy.file}:${level.line}: '${level.key}' is not an input (${found})`);
  }
  return problems;
}

/** An input belongs to one group at most: both places are named, so either can be removed. */
function twiceGrouped(policy: Policy, lines: Lines): string[] {
  const first = new Map<string, { key: string; line: number }>();
  const problems: string[] = [];
  for (const group of policy.groups) {
    group.inputs.forEach((name, i) => {
      const here = {
        key: display(["groups", group.name, "inputs", i]),
        line: lines.of(["groups", group.name, "inputs", i]),
      };
      const earlier = first.get(name);
      if (earlier === undefined) first.set(name, here);
      else
        problems.push(
          `${policy.file}:${earlier.line} and ${policy.file}:${here.line}: input '${name}' is in two groups ('${earlier.key}' and '${here.key}'); keep it in one`,
        );
    });
  }
  return problems;
}

/** A group's pull request lands one way, so its members take the group's `merge`. */
function memberMerge(policy: Policy): string[] {
  return policy.groups.flatMap((group) =>
    group.inputs.flatMap((name) => {
      const entry = policy.inputs[name];
      if (entry?.settings.merge === undefined) return [];
      return [
        `${policy.file}:${entry.lines.merge ?? entry.line}: '${entry.key}.merge' is set, but '${name}' lands with its group's pull request; set merge on '${group.key}' instead`,
      ];
    }),
  );
}

/**
 * Read the policy file at `path` (shown as `file`). A missing file is no policy, unless the user
 * named it (`required`): then it is a usage error.
 */
export async function readPolicy(
  path: string,
  file: string,
  opts: { required: boolean; knownInputs?: readonly string[] },
): Promise<Policy | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const missing = error instanceof Error && "code" in error && error.code === "ENOENT";
    if (missing && !opts.required) return undefined;
    const reason = missing
      ? "does not exist"
      : `cannot be read (${error instanceof Error ? error.message : String(error)})`;
    throw new UsageError(`policy file ${file} ${reason}; create it or pass the right path to --config`);
  }
  return parsePolicy(text, file, opts.knownInputs);
}

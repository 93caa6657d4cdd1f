/**
 * Files the scripts hand each other: written atomically, so a reader sees the old bytes or the new,
 * never half; read and checked against the schema they were written with, so any problem is one
 * sentence naming the file and how to recover.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import * as v from "valibot";
import { describeIssues, UsageError } from "./errors.ts";

/**
 * Replace a file's contents atomically (temp file beside it, then rename), creating its directory.
 * @param mode the new file's permission bits; by default the umask decides.
 */
export async function writeAtomic(path: string, text: string, mode?: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.flake-bump-${process.pid}.tmp`;
  await writeFile(tmp, text, mode === undefined ? {} : { mode });
  await rename(tmp, path);
}

/** The sentences for each way a JSON input can be wrong; each names the file and the fix. */
export interface JsonProblems {
  /** The file cannot be read. */
  unreadable?: string;
  /** The text is not JSON; receives JSON.parse's reason. */
  notJson: (reason: string) => string;
  /** The JSON does not pass the schema; receives the issues as one clause. */
  invalid: (issues: string) => string;
}

/** Parse JSON text against `schema`; any problem is a UsageError with the matching sentence. */
export function parseJson<const S extends v.GenericSchema>(
  schema: S,
  text: string,
  problems: JsonProblems,
): v.InferOutput<S> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new UsageError(problems.notJson(error instanceof Error ? error.message : String(error)));
  }
  const result = v.safeParse(schema, json);
  if (!result.success) throw new UsageError(problems.invalid(describeIssues(result.issues)));
  return result.output;
}

/** JSON text that passes `schema`, or undefined when it is not JSON or does not pass: for text we wrote. */
export function tryParseJson<const S extends v.GenericSchema>(
  schema: S,
  text: string,
): v.InferOutput<S> | undefined {
  try {
    const result = v.safeParse(schema, JSON.parse(text));
    return result.success ? result.output : undefined;
  } catch {
    return undefined;
  }
}

/** Read a JSON file and parse it against `schema` (see parseJson). */
export async function readJson<const S extends v.GenericSchema>(
  schema: S,
  path: string,
  problems: JsonProblems,
): Promise<v.InferOutput<S>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    throw new UsageError(problems.unreadable ?? `cannot read ${path}`);
  }
  return parseJson(schema, text, problems);
}

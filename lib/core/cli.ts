/**
 * What every entry script shares: argument parsing, and the single place where errors are caught,
 * printed and turned into `process.exitCode`.
 */
import { type ParseArgsConfig, type ParseArgsOptionDescriptor, parseArgs } from "node:util";
import * as v from "valibot";
import { annotate, inActions } from "./actions.ts";
import { RuntimeError, UsageError } from "./errors.ts";
import { redact } from "./secrets.ts";

/** Flags every entry script takes. */
export const COMMON_OPTIONS = {
  debug: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * A script's flags for parseArgs, each named once by the kind of value it takes: `string` takes a
 * value, `boolean` none, `list` a value and may repeat. The values' rules are the script's schema.
 */
export function flags(kinds: {
  string?: readonly string[];
  boolean?: readonly string[];
  list?: readonly string[];
}): Options {
  const options: Record<string, ParseArgsOptionDescriptor> = {};
  for (const name of kinds.string ?? []) options[name] = { type: "string" };
  for (const name of kinds.boolean ?? []) options[name] = { type: "boolean" };
  for (const name of kinds.list ?? []) options[name] = { type: "string", multiple: true };
  return options;
}

/**
 * Parse argv with node's strict parser, then validate the values with a valibot schema. `--help`
 * prints the usage to stdout and returns undefined (the script then exits 0), whatever else is given.
 * Unknown flags, missing values and schema issues all become a one-line UsageError.
 */
export function parseCli<S extends v.GenericSchema>(
  argv: readonly string[],
  options: Options,
  schema: S,
  usage: string,
): v.InferOutput<S> | undefined {
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { ...COMMON_OPTIONS, ...options },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    if (argv.includes("--help") || argv.includes("-h")) return printUsage(usage);
    const message = error instanceof Error ? error.message.replace(/\.$/, "") : String(error);
    // Node adds a second sentence on `--` for unknown options; the first names the problem.
    throw new UsageError(`${message.split(/\.\s|\n/)[0]}; run with --help for usage`);
  }
  if (parsed.values.help === true) return printUsage(usage);
  const { help: _help, debug: _debug, ...values } = parsed.values;
  const result = v.safeParse(schema, { ...values, positionals: parsed.positionals });
  if (!result.success) {
    const clauses = result.issues.map((issue) => {
      const path = v.getDotPath(issue);
      const name = path === null ? "" : path.startsWith("positionals") ? "INPUT" : `--${path}`;
      return name ? `${name}: ${issue.message}` : issue.message;
    });
    throw new UsageError(`${clauses.join("; ")}; run with --help for usage`);
  }
  return result.output;
}

function printUsage(usage: string): undefined {
  process.stdout.write(`${usage}\n`);
  return undefined;
}

/** `--debug` on the command line, or FLAKE_BUMP_DEBUG=1 (for a workflow re-run with debug logging). */
export function debugRequested(argv: readonly string[], env: NodeJS.ProcessEnv): boolean {
  return argv.includes("--debug") || env.FLAKE_BUMP_DEBUG === "1";
}

export interface MainContext {
  readonly debug: boolean;
}

/**
 * Run an entry script's main function: the one place where errors are caught. Prints a one-line
 * error (a stack only with --debug), annotates it in GitHub Actions and sets the exit code.
 */
export async function runMain(main: (ctx: MainContext) => Promise<number | undefined>): Promise<void> {
  const debug = debugRequested(process.argv, process.env);
  try {
    process.exitCode = (await main({ debug })) ?? 0;
  } catch (error) {
    const { exitCode, text } = failure(error);
    process.stderr.write(`${redact(`error: ${text}`)}\n`);
    if (debug && error instanceof Error && error.stack) process.stderr.write(`${redact(error.stack)}\n`);
    if (inActions()) annotate("error", text);
    process.exitCode = exitCode;
  }
}

/**
 * What runMain makes of an error a main function threw: the exit code (2 usage, 1 anything else) and
 * the text after `error: `. Exported so in-process tests judge a main() exactly as a run would end.
 */
export function failure(error: unknown): { exitCode: 1 | 2; text: string } {
  const known = error instanceof UsageError || error instanceof RuntimeError;
  const message = error instanceof Error ? error.message : String(error);
  const text = known ? message : `unexpected error: ${message} (rerun with --debug for details)`;
  return { exitCode: error instanceof UsageError ? 2 : 1, text };
}

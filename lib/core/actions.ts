/**
 * The GitHub Actions runner environment: outputs, step summary, annotations and log groups.
 * Outside Actions each of these is a no-op or plain stderr, so scripts call them unconditionally.
 * (Workflow commands: https://docs.github.com/actions/reference/workflow-commands-for-github-actions)
 */

import { randomUUID } from "node:crypto";
import { appendFileSync } from "node:fs";
import { redact } from "./secrets.ts";

export function inActions(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.GITHUB_ACTIONS === "true";
}

// Workflow commands need %, CR and LF escaped or the message is cut at the first newline.
function escapeData(text: string): string {
  return text.replaceAll("%", "%25").replaceAll("\r", "%0D").replaceAll("\n", "%0A");
}

export function annotate(level: "error" | "warning" | "notice", message: string): void {
  process.stderr.write(`::${level}::${escapeData(redact(message))}\n`);
}

/** Log a human line to stderr (stdout is reserved for data such as --json). */
export function info(message: string): void {
  process.stderr.write(`${redact(message)}\n`);
}

/** Warn once: in Actions as an annotation, elsewhere as a `warning:` line. */
export function warn(message: string): void {
  if (inActions()) annotate("warning", message);
  else info(`warning: ${message}`);
}

/** Run `fn` inside a collapsible log group in Actions; plain elsewhere. */
export async function group<T>(title: string, fn: () => Promise<T>): Promise<T> {
  if (!inActions()) return fn();
  process.stderr.write(`::group::${escapeData(title)}\n`);
  try {
    return await fn();
  } finally {
    process.stderr.write("::endgroup::\n");
  }
}

/**
 * Write step outputs to `$GITHUB_OUTPUT` (heredoc form, so values may span lines) and log each as
 * `name = value`. Without `$GITHUB_OUTPUT` it only logs when running in Actions.
 */
export function setOutputs(outputs: Record<string, string>, env: NodeJS.ProcessEnv = process.env): void {
  const file = env.GITHUB_OUTPUT;
  for (const [name, raw] of Object.entries(outputs)) {
    const value = redact(raw);
    if (file) {
      const delimiter = `flake_bump_${randomUUID()}`;
      appendFileSync(file, `${name}<<${delimiter}\n${value}\n${delimiter}\n`);
    }
    if (file || inActions(env)) info(`${name} = ${value}`);
  }
}

/** Append markdown to the job's summary page, when there is one. */
export function appendSummary(markdown: string, env: NodeJS.ProcessEnv = process.env): void {
  const file = env.GITHUB_STEP_SUMMARY;
  if (file) appendFileSync(file, `${redact(markdown)}\n`);
}

/**
 * The two kinds of failure every script tells apart, and the one way valibot issues become a clause
 * of such an error's sentence.
 */
import * as v from "valibot";

/** Bad usage or invalid input: exit code 2. The message is one sentence naming the problem and the fix. */
export class UsageError extends Error {
  override name = "UsageError";
  readonly exitCode = 2;
}

/** Something failed at run time (Nix, git, GitHub): exit code 1. */
export class RuntimeError extends Error {
  override name = "RuntimeError";
  readonly exitCode = 1;
}

/** Turn valibot issues into one readable clause: `rev: must be 40 hex characters`. */
export function describeIssues(issues: readonly v.BaseIssue<unknown>[]): string {
  return issues
    .map((issue) => {
      const path = v.getDotPath(issue);
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join("; ");
}

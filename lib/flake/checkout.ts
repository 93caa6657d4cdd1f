/**
 * The git checkout a flake is in, as git answers: its top level, its own git directory, and HEAD.
 * Plain spawns: every bump asks git, and zx is not loaded for it.
 */
import * as v from "valibot";
import { Sha } from "../core/ids.ts";

/** The checkout bump.ts ran in: its HEAD commit, that commit's tree, and the branch checked out. */
export const CheckoutHead = v.object({
  commit: Sha,
  tree: Sha,
  /** Absent when HEAD is detached. */
  branch: v.optional(v.string()),
});
export type CheckoutHead = v.InferOutput<typeof CheckoutHead>;

/** `git ARGS` in `dir`: its stdout, or undefined when it fails (no git, not a repository). */
async function git(dir: string, args: readonly string[]): Promise<string | undefined> {
  try {
    const proc = Bun.spawn(["git", ...args], { cwd: dir, stdin: "ignore", stdout: "pipe", stderr: "ignore" });
    const [code, out] = await Promise.all([proc.exited, new Response(proc.stdout).text()]);
    return code === 0 ? out : undefined;
  } catch {
    return undefined;
  }
}

/** The top-level directory of the work tree around `dir`, if any. */
export async function gitTopLevel(dir: string): Promise<string | undefined> {
  return (await git(dir, ["rev-parse", "--show-toplevel"]))?.trim() || undefined;
}

/**
 * The git directory of this checkout alone: `.git` of a clone, `.git/worktrees/NAME` of a linked
 * worktree (`--git-dir`, not `--git-common-dir`, which every worktree of a repository shares).
 */
export async function checkoutGitDir(dir: string): Promise<string | undefined> {
  return (await git(dir, ["rev-parse", "--absolute-git-dir"]))?.trim() || undefined;
}

/** HEAD's commit, its tree and the branch checked out; undefined before the first commit. */
export async function checkoutHead(dir: string): Promise<CheckoutHead | undefined> {
  const out = await git(dir, ["rev-parse", "HEAD", "HEAD^{tree}", "--abbrev-ref", "HEAD"]);
  const [commit, tree, branch] = out?.trim().split("\n") ?? [];
  if (commit === undefined || tree === undefined) return undefined;
  return branch === undefined || branch === "HEAD" ? { commit, tree } : { commit, tree, branch };
}

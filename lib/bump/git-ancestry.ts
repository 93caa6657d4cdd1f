/**
 * Whether one commit of a git input's remote is an ancestor of another, for `--rev` on a `git+…`
 * input: GitHub answers this through its compare API, a plain git remote only through git itself.
 * The two commits are fetched into a throwaway bare repository without their trees or blobs
 * (`--filter=tree:0`, so only the commit graph travels) and `git merge-base --is-ancestor` decides.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** True when `older` is an ancestor of `newer` on `url`; undefined when git could not tell. */
export async function isGitAncestor(url: string, older: string, newer: string): Promise<boolean | undefined> {
  const { $ } = await import("zx/core");
  const dir = await mkdtemp(join(tmpdir(), "flake-bump-ancestry-"));
  // GIT_TERMINAL_PROMPT=0: a private remote must fail, not wait for a password nobody will type.
  const git = $({
    cwd: dir,
    nothrow: true,
    quiet: true,
    timeout: "60s",
    env: { ...process.env, GIT_TERMINAL_PROMPT: "0" },
  });
  try {
    if ((await git`git init --quiet --bare`).exitCode !== 0) return undefined;
    // Servers that refuse a filter or fetching by SHA answer non-zero: then git cannot tell.
    const fetched = await git`git fetch --quiet --filter=tree:0 -- ${url} ${older} ${newer}`;
    if (fetched.exitCode !== 0) return undefined;
    const answer = await git`git merge-base --is-ancestor ${older} ${newer}`;
    return answer.exitCode === 0 ? true : answer.exitCode === 1 ? false : undefined;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

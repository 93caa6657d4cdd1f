import { appendFile, mkdir, mkdtemp, realpath, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { $ } from "zx";

export interface GitRepo extends AsyncDisposable {
  /** Absolute, symlink-free path of the work tree (under os.tmpdir(), so the Nix 2.26 chroot sees it). */
  readonly dir: string;
  /** `git+file://<dir>`, ready for a flake input's `url`. */
  readonly url: string;
  /**
   * Writes `files` (paths relative to the repo, parents created), stages everything and commits.
   * `date` sets author and committer date, which Nix reports as the input's `lastModified`.
   * Returns the new commit's sha.
   */
  commit(files: Record<string, string>, message: string, opts?: { date?: Date }): Promise<string>;
  head(): Promise<string>;
  /** Runs `git ARGS…` in the repo; resolves to stdout without the trailing newline, throws on non-zero exit. */
  git(...args: string[]): Promise<string>;
}

export interface GitRepoOptions {
  /** Files of the initial commit; without any, the initial commit is empty. */
  files?: Record<string, string>;
  /** Initial branch, `main` by default. */
  branch?: string;
}

/**
 * The environment git runs with in test repos. Variables such as GIT_DIR or GIT_INDEX_FILE leak in when
 * the tests run from a git hook and would point every command at the enclosing repository, and a
 * developer's global config (commit signing, hooks, templates) must not change what the tests see.
 */
function gitEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith("GIT_")) env[key] = value;
  }
  env.GIT_CONFIG_NOSYSTEM = "1";
  env.GIT_CONFIG_GLOBAL = "/dev/null";
  return env;
}

async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    const target = join(dir, path);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, content);
  }
}

const LOCAL_CONFIG = `[user]
\tname = flake-bump tests
\temail = tests@flake-bump.invalid
[commit]
\tgpgsign = false
`;

/** A real git repository in a fresh temporary directory, removed on dispose (`await using`). */
export async function gitRepo(opts: GitRepoOptions = {}): Promise<GitRepo> {
  // realpath: Nix records the resolved path in flake.lock, so `url` must match it byte for byte.
  const dir = await realpath(await mkdtemp(join(tmpdir(), "flake-bump-git-")));
  const env = gitEnv();
  const sh = $({ cwd: dir, env, quiet: true });
  const git = async (...args: string[]): Promise<string> => (await sh`git ${args}`).stdout.trimEnd();

  const commit = async (
    files: Record<string, string>,
    message: string,
    commitOpts: { date?: Date } = {},
  ): Promise<string> => {
    await writeFiles(dir, files);
    await git("add", "--all");
    const dateEnv =
      commitOpts.date === undefined
        ? {}
        : {
            GIT_AUTHOR_DATE: commitOpts.date.toISOString(),
            GIT_COMMITTER_DATE: commitOpts.date.toISOString(),
          };
    await $({
      cwd: dir,
      env: { ...env, ...dateEnv },
      quiet: true,
    })`git commit --allow-empty --quiet -m ${message}`;
    return git("rev-parse", "HEAD");
  };

  try {
    await git("init", "--quiet", `--initial-branch=${opts.branch ?? "main"}`);
    // Local config rather than `-c`, so commits a test makes through `git(...)` work too; written directly
    // because three `git config` processes cost more than the rest of the set-up.
    await appendFile(join(dir, ".git", "config"), LOCAL_CONFIG);
    await commit(opts.files ?? {}, "initial commit");
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }

  return {
    dir,
    url: `git+file://${dir}`,
    commit,
    head: () => git("rev-parse", "HEAD"),
    git,
    [Symbol.asyncDispose]: () => rm(dir, { recursive: true, force: true }),
  };
}

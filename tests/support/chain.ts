/**
 * The upstream → downstream chain on the fake GitHub, driven through the real scripts: an upstream
 * flake `acme/nixfleet` with a few commits, a downstream `acme/nixcfg` whose flake.lock pins the first,
 * and helpers that run notify.ts and the downstream workflow's bump.ts + open-pr.ts in fresh clones.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { $ } from "zx";
import { parseLock } from "../../lib/flake/lock.ts";
import type { FakeGitHub } from "../fake-github/index.ts";
import { type NixTestEnv, type NixVariant, nixTestEnv } from "./nix.ts";
import { cleanEnv, type RunResult, runScript } from "./run.ts";

export const UP = { owner: "acme", repo: "nixfleet" } as const;
export const DOWN = { owner: "acme", repo: "nixcfg" } as const;
export const BRANCH = "flake-bump/nixfleet";

export const upstreamFiles = (n: number) => ({ "flake.nix": `{ outputs = _: { version = ${n}; }; }\n` });
const downstreamNix = `{
  inputs.nixfleet.url = "github:acme/nixfleet?host=localhost";
  outputs = _: { };
}
`;

export interface DownstreamRun {
  bump: RunResult;
  openPr: RunResult;
  /** impact.ts, when the run asked for it. */
  impact?: RunResult;
}

/** What the repositories hold: the upstream's flake at commit n, the downstream's flake.nix. */
export interface ChainFiles {
  upstream?: (n: number) => Record<string, string>;
  downstream?: string;
}

export interface AfterRun {
  checkout: string;
  reportFile: string;
  env: Record<string, string | undefined>;
}

export interface Chain extends AsyncDisposable {
  readonly scratch: string;
  /** Environment for the scripts: hermetic Nix, the fake's API and token, no waits. */
  env: Record<string, string | undefined>;
  /** Upstream commits, oldest first; [0] is what the downstream lock pins at the start. */
  revs: string[];
  /** Recreate both repositories on a reset fake (call in beforeEach). */
  seed(commits?: number, files?: ChainFiles): Promise<void>;
  notify(sha: string): Promise<RunResult>;
  /** bump.ts then open-pr.ts in a fresh clone, for `event` (default: the newest recorded dispatch). */
  downstreamRun(opts?: {
    event?: object;
    eventName?: string;
    env?: Record<string, string>;
    /** Run impact.ts after open-pr, as the update action does. */
    impact?: boolean;
    /** More open-pr.ts arguments (e.g. `--step open`). */
    openPrArgs?: string[];
    /** Runs between bump.ts and open-pr.ts, in the same checkout (a human pushing meanwhile). */
    beforeOpenPr?: () => Promise<void>;
    /** Runs after open-pr.ts, before the checkout is removed (the impact and landing steps). */
    after?: (run: AfterRun) => Promise<void>;
  }): Promise<DownstreamRun>;
  /** The rev flake.lock on the PR branch pins, if the branch exists. */
  branchLockRev(): Promise<string | undefined>;
  openPulls(): ReturnType<FakeGitHub["pulls"]>;
}

let runs = 0;

/**
 * The scripts' environment in an end-to-end test: the hermetic Nix settings and `variant`'s Nix, the
 * fake's API and token, no wait between writes, and none of the test process's own GitHub or token
 * variables; `extra` last.
 */
export function fakeScriptEnv(
  fake: FakeGitHub,
  nixEnv: NixTestEnv,
  variant: Pick<NixVariant, "env"> | undefined,
  extra: Record<string, string> = {},
): Record<string, string | undefined> {
  return cleanEnv({
    ...nixEnv,
    ...variant?.env,
    GITHUB_API_URL: fake.apiUrl,
    GH_TOKEN: fake.token,
    FLAKE_BUMP_WAIT_SCALE: "0",
    ...extra,
  });
}

/** A downstream flake.nix with one `github:acme/NAME?host=localhost` input per name, and no outputs. */
export function inputsFlake(names: readonly string[]): string {
  return `{
${names.map((n) => `  inputs.${n}.url = "github:acme/${n}?host=localhost";`).join("\n")}
  outputs = _: { };
}
`;
}

/** An upstream flake whose one output says which change `n` it is. */
export function upstreamFlake(name: string, n: number): Record<string, string> {
  return { "flake.nix": `{ outputs = _: { ${name} = ${n}; }; }\n` };
}

/** One upstream repository `acme/NAME` per name at change 0; each name's commits so far (one). */
export async function createUpstreams<N extends string>(
  fake: FakeGitHub,
  names: readonly N[],
): Promise<Record<N, string[]>> {
  const revs = {} as Record<N, string[]>;
  for (const name of names) {
    await fake.createRepo("acme", name, { files: upstreamFlake(name, 0) });
    revs[name] = [(await fake.branchSha("acme", name, "main")) ?? ""];
  }
  return revs;
}

/** The rev the flake.lock at `ref` of `repo` locks for each name (undefined: no such node, or no lock). */
export async function lockedRevs(
  fake: FakeGitHub,
  repo: { owner: string; repo: string },
  ref: string,
  names: readonly string[],
): Promise<Record<string, string | undefined>> {
  const text = await fake.readFile(repo.owner, repo.repo, ref, "flake.lock");
  const lock = text === undefined ? undefined : parseLock(text);
  return Object.fromEntries(names.map((n) => [n, lock?.nodes[n]?.locked?.rev]));
}

/** git on `repo`'s bare repository in the fake, read directly (no clone): `(...args) => stdout`, trimmed. */
export function bareGit(fake: FakeGitHub, repo: { owner: string; repo: string }) {
  const dir = fake.cloneUrl(repo.owner, repo.repo).replace(/^file:\/\//, "");
  return async (...args: string[]): Promise<string> =>
    (await $({ quiet: true })`git --git-dir ${dir} ${args}`).stdout.trim();
}

/** Lock the flake checked out in `dir` with Nix and push its flake.lock to `repo`'s default branch. */
export async function pushNixLock(
  fake: FakeGitHub,
  repo: { owner: string; repo: string },
  dir: string,
  env: Record<string, string | undefined>,
): Promise<void> {
  await $({
    cwd: dir,
    env,
    quiet: true,
  })`nix --extra-experimental-features ${"nix-command flakes"} flake lock`;
  await fake.push(
    repo.owner,
    repo.repo,
    { "flake.lock": await readFile(join(dir, "flake.lock"), "utf8") },
    "lock",
  );
}

export async function chain(fake: FakeGitHub, variant: NixVariant): Promise<Chain> {
  const scratch = await mkdtemp(join(tmpdir(), "flake-bump-chain-"));
  const nixEnv: NixTestEnv = nixTestEnv({ certFile: fake.certFile });
  const env = fakeScriptEnv(fake, nixEnv, variant);

  /** A fresh clone of the downstream repo's main branch, as a workflow run's checkout would be. */
  async function freshCheckout(id = ++runs): Promise<string> {
    const dir = join(scratch, `checkout-${id}`);
    await $({ quiet: true })`git clone --quiet ${fake.cloneUrl(DOWN.owner, DOWN.repo)} ${dir}`;
    return dir;
  }

  const self: Chain = {
    scratch,
    env,
    revs: [],
    async seed(commits = 3, files = {}) {
      const upstream = files.upstream ?? upstreamFiles;
      await fake.createRepo(UP.owner, UP.repo, { files: upstream(0) });
      self.revs = [(await fake.branchSha(UP.owner, UP.repo, "main")) ?? ""];
      await fake.createRepo(DOWN.owner, DOWN.repo, {
        files: { "flake.nix": files.downstream ?? downstreamNix },
      });
      const dir = await freshCheckout();
      await pushNixLock(fake, DOWN, dir, env);
      await rm(dir, { recursive: true, force: true });
      for (let i = 1; i <= commits; i++) {
        self.revs.push(await fake.push(UP.owner, UP.repo, upstream(i), `feat: change ${i} (#${10 + i})`));
      }
    },
    notify(sha) {
      return runScript("notify", ["--repo", `${DOWN.owner}/${DOWN.repo}`, "--input", "nixfleet"], {
        cwd: scratch,
        env: {
          ...env,
          GITHUB_ACTIONS: "true",
          GITHUB_SHA: sha,
          GITHUB_REF: "refs/heads/main",
          GITHUB_REPOSITORY: `${UP.owner}/${UP.repo}`,
        },
      });
    },
    async downstreamRun(opts = {}) {
      // Taken before any await: concurrent runs must not share an event or report file.
      const id = ++runs;
      const checkout = await freshCheckout(id);
      try {
        const dispatch = fake.dispatches.at(-1);
        const body = opts.event ?? (dispatch ? fake.repositoryDispatchEvent(dispatch) : {});
        const eventFile = join(scratch, `event-${id}.json`);
        const reportFile = join(scratch, `report-${id}.json`);
        await writeFile(eventFile, JSON.stringify(body));
        const runEnv = {
          ...env,
          GITHUB_ACTIONS: "true",
          GITHUB_EVENT_NAME:
            opts.eventName ?? (opts.event === undefined ? "repository_dispatch" : "schedule"),
          GITHUB_EVENT_PATH: eventFile,
          GITHUB_REPOSITORY: `${DOWN.owner}/${DOWN.repo}`,
          ...opts.env,
        };
        const bump = await runScript("bump", ["--report", reportFile], { cwd: checkout, env: runEnv });
        if (bump.exitCode !== 0) return { bump, openPr: { exitCode: -1, stdout: "", stderr: "not run" } };
        await opts.beforeOpenPr?.();
        const openPr = await runScript("open-pr", ["--report", reportFile, ...(opts.openPrArgs ?? [])], {
          cwd: checkout,
          env: runEnv,
        });
        await opts.after?.({ checkout, reportFile, env: runEnv });
        if (!opts.impact || openPr.exitCode !== 0) return { bump, openPr };
        const impact = await runScript("impact", ["--report", reportFile], {
          cwd: checkout,
          env: { ...runEnv, RUNNER_TEMP: join(scratch, `runner-${id}`) },
        });
        return { bump, openPr, impact };
      } finally {
        await rm(checkout, { recursive: true, force: true });
      }
    },
    async branchLockRev() {
      const text = await fake.readFile(DOWN.owner, DOWN.repo, BRANCH, "flake.lock");
      return text === undefined ? undefined : parseLock(text).nodes.nixfleet?.locked?.rev;
    },
    openPulls() {
      return fake.pulls(DOWN.owner, DOWN.repo).filter((pull) => pull.state === "open");
    },
    async [Symbol.asyncDispose]() {
      await rm(scratch, { recursive: true, force: true });
      await nixEnv[Symbol.asyncDispose]();
    },
  };
  return self;
}

/**
 * Which inputs are behind their branch, decided from the lock and the source's own answer — no Nix.
 * A nightly run with everything current then never starts Nix (nor installs it: `bump.ts --check`).
 * GitHub inputs ask `GET /repos/{o}/{r}/commits/{ref}`; git inputs ask `git ls-remote`. Anything that
 * cannot be answered this way is "unknown" and left to Nix.
 */
import { $ } from "zx/core";
import { mapBounded } from "./bounded.ts";
import { githubSource } from "./flakeref.ts";
import { type Octokit, statusOf } from "./github.ts";
import type { LockNode } from "./lock.ts";

export type Freshness =
  | { name: string; status: "current"; rev: string }
  | { name: string; status: "outdated"; rev: string | undefined; latest: string }
  | { name: string; status: "unknown"; reason: string };

const CONCURRENCY = 8;

export interface FreshnessDeps {
  /** A client for GitHub inputs; without one they are "unknown". */
  octokit?: Octokit;
}

async function gitHead(url: string, ref: string | undefined): Promise<string | undefined> {
  // GIT_TERMINAL_PROMPT=0: a private remote must fail, not wait for a password nobody will type.
  const out = await $({
    nothrow: true,
    quiet: true,
    timeout: "30s",
    env: { ...process.env, GIT_TERMINAL_PROMPT: "0" },
  })`git ls-remote -- ${url} ${ref ?? "HEAD"}`;
  if (out.exitCode !== 0) return undefined;
  const lines = out.stdout.split("\n").filter(Boolean);
  // `ls-remote URL main` may list refs/heads/main and refs/remotes/…/main: prefer the branch.
  const exact = lines.find((line) => /\trefs\/heads\//.test(line)) ?? lines[0];
  return exact?.split("\t")[0];
}

async function latestRev(node: LockNode, deps: FreshnessDeps): Promise<string | { reason: string }> {
  const github = githubSource(node);
  if (github !== undefined) {
    if (deps.octokit === undefined) return { reason: "no GitHub client" };
    try {
      // The list endpoint with per_page=1 answers with the head commit alone; `commits/{ref}` would
      // also send the commit's whole diff, which can be megabytes on a nixpkgs branch.
      const { data } = await deps.octokit.rest.repos.listCommits({
        owner: github.owner,
        repo: github.repo,
        ...(github.ref ? { sha: github.ref } : {}),
        per_page: 1,
      });
      const head = data[0]?.sha;
      return head ?? { reason: "GitHub listed no commits" };
    } catch (error) {
      return { reason: `GitHub answered ${statusOf(error) || "nothing"}` };
    }
  }
  const original = node.original;
  if (original?.type === "git" && original.url) {
    const ref = original.ref ?? node.locked?.ref;
    const head = await gitHead(original.url, ref);
    return head ?? { reason: "git ls-remote failed" };
  }
  return { reason: `a '${original?.type ?? "unknown"}' input is checked by Nix only` };
}

export async function checkFreshness(
  inputs: readonly { name: string; node: LockNode }[],
  deps: FreshnessDeps,
): Promise<Freshness[]> {
  return mapBounded(inputs, CONCURRENCY, async ({ name, node }): Promise<Freshness> => {
    const rev = node.locked?.rev;
    const latest = await latestRev(node, deps);
    if (typeof latest !== "string") return { name, status: "unknown", reason: latest.reason };
    return latest === rev ? { name, status: "current", rev } : { name, status: "outdated", rev, latest };
  });
}

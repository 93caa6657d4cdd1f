/**
 * Companion pins: a git submodule of the flake's own repository that names the same upstream
 * repository as a flake input, and so should point at the same commit. What a submodule is comes from
 * git itself (`git ls-files -s` for the gitlinks, `git config --file .gitmodules` for their entries),
 * never from a parser of ours; which of them move with an input is a pure decision. zx is loaded only
 * when git is asked: a flake without submodules never needs it.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { UsageError } from "../core/errors.ts";
import { type GitHubRepository, Sha } from "../core/ids.ts";

/** A submodule that moves with its input: its path and the commits its gitlink goes from and to. */
export const CompanionMove = v.object({ path: v.string(), from: Sha, to: Sha });
export type CompanionMove = v.InferOutput<typeof CompanionMove>;

/** A submodule on the input's repository left where it points, being out of step and not listed. */
export const CompanionLeft = v.object({ path: v.string(), at: Sha });
export type CompanionLeft = v.InferOutput<typeof CompanionLeft>;

/** The submodules that move with an input, in the same commit, and the ones left (the report's shape). */
export const Companions = v.object({ moved: v.array(CompanionMove), left: v.array(CompanionLeft) });
export type Companions = v.InferOutput<typeof Companions>;

/** A gitlink in the index that `.gitmodules` describes. */
export interface Submodule {
  /** The path, as `.gitmodules` and the index give it. */
  path: string;
  /** The name of its `.gitmodules` section. */
  name: string;
  url: string;
  /** The commit the gitlink points at. */
  sha: string;
}

/** `git ls-files -s` lines of mode 160000: path → commit. */
export function parseGitlinks(listing: string): Map<string, string> {
  const links = new Map<string, string>();
  for (const entry of listing.split("\0")) {
    const match = /^160000 ([0-9a-f]{40}) \d\t(.+)$/s.exec(entry);
    if (match?.[1] && match[2]) links.set(match[2], match[1]);
  }
  return links;
}

/** `git config --null --list` of a .gitmodules: section name → { path, url }. */
export function parseGitmodules(listing: string): Map<string, { path?: string; url?: string }> {
  const sections = new Map<string, { path?: string; url?: string }>();
  for (const entry of listing.split("\0")) {
    const newline = entry.indexOf("\n");
    if (newline === -1) continue;
    const [key, value] = [entry.slice(0, newline), entry.slice(newline + 1)];
    const match = /^submodule\.(.+)\.(path|url)$/.exec(key);
    if (!match?.[1] || !match[2]) continue;
    const section = sections.get(match[1]) ?? {};
    if (match[2] === "path") section.path = value;
    else section.url = value;
    sections.set(match[1], section);
  }
  return sections;
}

/** The gitlinks with a `.gitmodules` entry. A gitlink without one is not a submodule of ours, and not an error. */
export function submodulesOf(
  gitlinks: ReadonlyMap<string, string>,
  gitmodules: ReadonlyMap<string, { path?: string; url?: string }>,
): Submodule[] {
  const out: Submodule[] = [];
  for (const [name, { path, url }] of gitmodules) {
    const sha = path === undefined ? undefined : gitlinks.get(path);
    if (path !== undefined && url !== undefined && sha !== undefined) out.push({ path, name, url, sha });
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * The submodules of the checkout at `dir`, read before Nix runs: a `.gitmodules` that git cannot
 * parse is an error naming the file (never blamed on an upstream). No `.gitmodules`, no submodules.
 */
export async function readSubmodules(dir: string): Promise<Submodule[]> {
  // Without a .gitmodules no gitlink is a companion: git is not asked (every bump reads this).
  if (!existsSync(join(dir, ".gitmodules"))) return [];
  const { $ } = await import("zx");
  const index = await $({ cwd: dir, quiet: true })`git ls-files -s -z`;
  const gitlinks = parseGitlinks(index.stdout);
  if (gitlinks.size === 0) return [];
  const config = await $({
    cwd: dir,
    quiet: true,
    nothrow: true,
  })`git config --file .gitmodules --null --list`;
  if (config.exitCode !== 0) {
    const why = config.stderr.trim().replace(/^fatal: /, "");
    throw new UsageError(`.gitmodules in ${dir} cannot be read by git (${why}); fix the file and retry`);
  }
  return submodulesOf(gitlinks, parseGitmodules(config.stdout));
}

/**
 * The repository a submodule URL names on `host` (`github.com`, or an Enterprise host), or undefined:
 * `https://HOST/o/r`, with or without `.git`, `git@HOST:o/r.git`, `ssh://git@HOST/o/r`, and a relative
 * `../r.git` resolved against `self`, the flake repository's own URL (when it is known).
 */
export function submoduleRepository(
  url: string,
  host: string,
  self?: string,
): { owner: string; repo: string } | undefined {
  let text = url.trim();
  if (text.startsWith("./") || text.startsWith("../")) {
    if (self === undefined) return undefined;
    try {
      text = new URL(text, `${self.replace(/\/+$/, "").replace(/\.git$/, "")}/`).href;
    } catch {
      return undefined;
    }
  }
  const h = host.toLowerCase().replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const pattern = new RegExp(
    `^(?:https?://(?:[^@/]+@)?${h}(?::\\d+)?/|git@${h}:|ssh://git@${h}(?::\\d+)?/)([^/]+)/([^/]+?)(?:\\.git)?/?$`,
    "i",
  );
  const match = pattern.exec(text);
  return match?.[1] && match[2] ? { owner: match[1].toLowerCase(), repo: match[2].toLowerCase() } : undefined;
}

const sameRepository = (a: { owner: string; repo: string }, b: GitHubRepository): boolean =>
  a.owner.toLowerCase() === b.owner.toLowerCase() && a.repo.toLowerCase() === b.repo.toLowerCase();

/** The submodules whose URL names `source`'s repository (relative URLs resolved against `self`). */
export function submodulesOn(
  source: GitHubRepository,
  submodules: readonly Submodule[],
  self?: string,
): Submodule[] {
  const host = source.host ?? "github.com";
  return submodules.filter((s) => {
    const repo = submoduleRepository(s.url, host, self);
    return repo !== undefined && sameRepository(repo, source);
  });
}

export interface CompanionPlan {
  moves: CompanionMove[];
  /** Submodules on the same repository that stay, being out of step with the input and not listed. */
  left: CompanionLeft[];
}

export interface CompanionQuestion {
  input: string;
  /** Where the input lives on GitHub (with `host` for Enterprise). */
  source: GitHubRepository;
  /** The commit the input is locked to now, and the one it moves to. */
  from: string;
  to: string;
  /** The policy file's `companions` for this input, when it lists any: exactly those move. */
  listed?: readonly string[];
  /** The flake repository's own URL, against which relative submodule URLs resolve. */
  self?: string;
}

/**
 * Which submodules move with an input. Listed companions move, and must be submodules on the input's
 * repository (else a UsageError naming them). With none listed, a submodule on that repository moves
 * when it points at the commit the input is locked to now (they were kept together); one out of step
 * is left and reported.
 */
export function planCompanions(q: CompanionQuestion, submodules: readonly Submodule[]): CompanionPlan {
  const onRepo = submodulesOn(q.source, submodules, q.self);
  const plan: CompanionPlan = { moves: [], left: [] };
  if (q.listed !== undefined) {
    for (const path of q.listed) {
      const submodule = submodules.find((s) => s.path === path);
      if (submodule === undefined) {
        throw new UsageError(
          `companion '${path}' of input '${q.input}' is not a submodule of this repository (no gitlink with a .gitmodules entry at that path); list submodule paths as .gitmodules gives them`,
        );
      }
      if (!onRepo.includes(submodule)) {
        throw new UsageError(
          `companion '${path}' of input '${q.input}' is a submodule of ${submodule.url}, not of ${q.source.owner}/${q.source.repo}; list only submodules on the input's repository`,
        );
      }
      if (submodule.sha !== q.to) plan.moves.push({ path, from: submodule.sha, to: q.to });
    }
    return plan;
  }
  for (const submodule of onRepo) {
    if (submodule.sha === q.from && q.from !== q.to)
      plan.moves.push({ path: submodule.path, from: q.from, to: q.to });
    else if (submodule.sha !== q.from) plan.left.push({ path: submodule.path, at: submodule.sha });
  }
  return plan;
}

/**
 * The flake repository's own URL, against which relative submodule URLs resolve: in Actions
 * `GITHUB_SERVER_URL/GITHUB_REPOSITORY`, locally the `origin` remote of `dir` when it is a GitHub URL
 * (https or ssh); otherwise undefined, and a relative URL then names no companion. An origin on
 * another host resolves relative URLs onto that host, which no GitHub input's host matches.
 */
export async function ownRepositoryUrl(env: NodeJS.ProcessEnv, dir: string): Promise<string | undefined> {
  if (env.GITHUB_ACTIONS === "true" && env.GITHUB_REPOSITORY) {
    return `${(env.GITHUB_SERVER_URL || "https://github.com").replace(/\/+$/, "")}/${env.GITHUB_REPOSITORY}`;
  }
  const { $ } = await import("zx");
  const origin = await $({ cwd: dir, quiet: true, nothrow: true })`git remote get-url origin`;
  if (origin.exitCode !== 0) return undefined;
  const url = origin.stdout.trim();
  const match =
    /^(?:https?:\/\/(?:[^@/]+@)?|git@|ssh:\/\/git@)([^/:]+)(?::\d+)?[/:]([^/]+)\/([^/]+?)(?:\.git)?\/?$/.exec(
      url,
    );
  if (!match?.[1] || !match[2] || !match[3]) return undefined;
  return `https://${match[1]}/${match[2]}/${match[3]}`;
}

/**
 * Stage each move's gitlink in the index of the repository at `root` (`git update-index --cacheinfo`),
 * as `git add` of a checked-out submodule would; the submodule's working tree is left alone.
 */
export async function stageGitlinks(root: string, moves: readonly CompanionMove[]): Promise<void> {
  const { $ } = await import("zx");
  for (const move of moves) {
    await $({ cwd: root, quiet: true })`git update-index --cacheinfo ${`160000,${move.to},${move.path}`}`;
  }
}

/** The pull request's sentence for a submodule left behind. */
export function leftSentence(input: string, left: CompanionLeft): string {
  return `\`${left.path}\` stays at ${left.at.slice(0, 7)}, which is not what \`${input}\` is locked to; list it under companions to move it with the input`;
}

/** Every gitlink a report's inputs move, once per path (two inputs on one repository move it alike). */
export function gitlinkMoves(
  inputs: readonly { companions?: { moved: readonly CompanionMove[] } | undefined }[],
): CompanionMove[] {
  const byPath = new Map<string, CompanionMove>();
  for (const input of inputs) for (const move of input.companions?.moved ?? []) byPath.set(move.path, move);
  return [...byPath.values()];
}

/**
 * Host impact into each moved input's open pull request (or the one grouped pull request): its section
 * replaced in place, and only while the pull request still proposes what was evaluated.
 */

import { UsageError } from "../core/errors.ts";
import type { GitHubRepository } from "../core/ids.ts";
import { lockUnmoved, membersOf, revOf } from "../flake/report.ts";
import { type Octokit, type RepositoryClient, request } from "../github/client.ts";
import type { ImpactSide, InputImpact } from "../impact/evaluate.ts";
import { BODY_LIMIT, renderSection, SECTION_BUDGET, type SectionOptions } from "../impact/text.ts";
import { openPullOf } from "./branch.ts";
import { groupBranch, parseGroupMarker } from "./group.ts";
import { sameMembers } from "./land.ts";
import type { PrTarget } from "./targets.ts";
import { branchName, parseMarker, replaceSection } from "./text.ts";

export type SectionOutcome = "written" | "unchanged" | "moved" | "no-pull-request" | "dry-run";

export interface SectionWrite {
  input: string;
  outcome: SectionOutcome;
  number?: number;
  url?: string;
  detail: string;
}

export interface SectionWriteOptions extends SectionOptions {
  repo: GitHubRepository;
  branchPrefix: string;
  dryRun: boolean;
}

/** Where a section goes: the pull request of a branch, while it still proposes what was evaluated. */
interface SectionTarget {
  /** What the result names. */
  input: string;
  branch: string;
  /** What the pull request proposes now, when that is not what was evaluated; undefined when it is. */
  movedTo: (body: string | null) => string | undefined;
}

/** Write one section into its pull request, replaced in place, only while it proposes what was evaluated. */
async function writeSection(
  gh: RepositoryClient,
  target: SectionTarget,
  withSection: (body: string | null) => string,
  dryRun: boolean,
): Promise<SectionWrite> {
  const { input, branch } = target;
  const pull = await openPullOf(gh, branch);
  if (pull === undefined)
    return { input, outcome: "no-pull-request", detail: `no open pull request from ${branch}` };
  const where = { input, number: pull.number, url: pull.html_url };
  const moved = target.movedTo(pull.body);
  if (moved !== undefined)
    return { ...where, outcome: "moved", detail: `left alone: it now proposes ${moved}` };
  const body = withSection(pull.body);
  if (body === pull.body) return { ...where, outcome: "unchanged", detail: "section already up to date" };
  if (dryRun) return { ...where, outcome: "dry-run", detail: "would write the host impact section" };
  await request(gh, `update pull request #${pull.number}`, () =>
    gh.octokit.rest.pulls.update({ ...gh.repo, pull_number: pull.number, body }),
  );
  return { ...where, outcome: "written", detail: "host impact section written" };
}

/**
 * `body` with `input`'s section in place, the section kept to what the rest of the body leaves of
 * GitHub's limit (a grouped body, one part per member, can leave less than SECTION_BUDGET).
 */
export function bodyWithSection(body: string | null, input: InputImpact, opts: SectionOptions): string {
  // The blank lines replaceSection puts around a section, and a margin.
  const rest = replaceSection(body, "").length + 8;
  const budget = Math.min(opts.budget ?? SECTION_BUDGET, BODY_LIMIT - rest);
  return replaceSection(body, renderSection(input, { ...opts, budget }));
}

export async function writeImpactSections(
  octokit: Octokit,
  inputs: readonly InputImpact[],
  opts: SectionWriteOptions,
): Promise<SectionWrite[]> {
  const gh = { octokit, repo: opts.repo };
  const results: SectionWrite[] = [];
  for (const input of inputs) {
    const target: SectionTarget = {
      input: input.name,
      branch: branchName(input.name, opts.branchPrefix),
      movedTo: (body) => {
        const marker = parseMarker(body);
        if (marker?.input === input.name && marker.rev === input.rev) return undefined;
        return `${marker?.rev.slice(0, 7) ?? "another change"}, not the evaluated ${input.rev.slice(0, 7)}`;
      },
    };
    results.push(await writeSection(gh, target, (body) => bodyWithSection(body, input, opts), opts.dryRun));
  }
  return results;
}

/**
 * A group's one section, evaluated with its combined lock, into its pull request (`<prefix>all`, or
 * `<prefix>group/<name>` for a group of the policy file), written only while its marker still names
 * exactly the evaluated members and revs.
 */
export function writeGroupImpactSection(
  octokit: Octokit,
  input: InputImpact,
  opts: SectionWriteOptions & { groupName?: string | undefined },
): Promise<SectionWrite> {
  const members = input.members ?? {};
  const target: SectionTarget = {
    input: Object.keys(members).join(", "),
    branch: groupBranch(opts.branchPrefix, opts.groupName),
    movedTo: (body) => {
      const shown = parseGroupMarker(body);
      if (shown !== undefined && sameMembers(shown, members)) return undefined;
      const now =
        shown === undefined
          ? "another change"
          : Object.entries(shown)
              .map(([n, r]) => `${n} ${r.slice(0, 7)}`)
              .join(", ");
      return `${now}, not the evaluated members`;
    },
  };
  return writeSection(
    { octokit, repo: opts.repo },
    target,
    (body) => bodyWithSection(body, input, opts),
    opts.dryRun,
  );
}

/**
 * One lock host impact evaluates and the pull request its section goes into: one input's own, or a
 * group's (named, or `all` when `groupName` is absent) with its members.
 */
export type Comparison =
  | { side: ImpactSide; grouped: false }
  | { side: ImpactSide; grouped: true; groupName?: string; members: Record<string, string> };

/**
 * What host impact evaluates for the run's pull requests (lib/pr/targets.ts's, the ones open-pr.ts
 * opened): a group's combined lock once, with its members (a group has no single rev), else each
 * moved input's own lock.
 */
export function impactComparisons(targets: readonly PrTarget[]): Comparison[] {
  return targets.flatMap((target): Comparison[] => {
    const { report } = target;
    // An entry whose lock node stays (a companion catching up) changes no host: nothing to evaluate.
    const moved = report.inputs.filter((input) => !lockUnmoved(input));
    if (moved.length === 0) return [];
    if (!target.grouped)
      return moved.map((input) => ({
        side: { name: input.name, rev: revOf(input), lock: input.lock.text },
        grouped: false,
      }));
    if (report.lock === null) {
      throw new UsageError(
        "the report has no combined flake.lock, so a grouped host impact has nothing to evaluate; pass the report bump.ts wrote",
      );
    }
    const members = membersOf(report.inputs);
    const side = { name: Object.keys(members).join(","), rev: report.lock.sha256, lock: report.lock.text };
    const named = target.groupName === undefined ? {} : { groupName: target.groupName };
    return [{ side, grouped: true, ...named, members }];
  });
}

/** Each comparison's evaluated impact (in the same order) into its pull request. */
export async function writeComparisonSections(
  octokit: Octokit,
  evaluated: ReadonlyArray<{ comparison: Comparison; impact: InputImpact }>,
  opts: SectionWriteOptions,
): Promise<SectionWrite[]> {
  const results: SectionWrite[] = [];
  for (const { comparison, impact } of evaluated) {
    if (comparison.grouped)
      results.push(
        await writeGroupImpactSection(octokit, impact, { ...opts, groupName: comparison.groupName }),
      );
    else results.push(...(await writeImpactSections(octokit, [impact], opts)));
  }
  return results;
}

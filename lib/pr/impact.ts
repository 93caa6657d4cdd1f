/**
 * Host impact into each moved input's open pull request (or the one grouped pull request): its section
 * replaced in place, and only while the pull request still proposes what was evaluated.
 */

import type { GitHubRepository } from "../core/ids.ts";
import { describeGitHubError, type Octokit } from "../github/client.ts";
import type { InputImpact } from "../impact/evaluate.ts";
import { renderSection, type SectionOptions } from "../impact/text.ts";
import { openPullOf } from "./branch.ts";
import { groupBranch, parseGroupMarker } from "./group.ts";
import { sameMembers } from "./land.ts";
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

export async function writeImpactSections(
  octokit: Octokit,
  inputs: readonly InputImpact[],
  opts: SectionWriteOptions,
): Promise<SectionWrite[]> {
  const results: SectionWrite[] = [];
  const { owner, repo } = opts.repo;
  const gh = { octokit, repo: opts.repo };
  for (const input of inputs) {
    const branch = branchName(input.name, opts.branchPrefix);
    const pull = await openPullOf(gh, branch);
    if (pull === undefined) {
      results.push({
        input: input.name,
        outcome: "no-pull-request",
        detail: `no open pull request from ${branch}`,
      });
      continue;
    }
    const where = { number: pull.number, url: pull.html_url };
    const marker = parseMarker(pull.body);
    if (marker?.input !== input.name || marker.rev !== input.rev) {
      results.push({
        input: input.name,
        outcome: "moved",
        ...where,
        detail: `left alone: it now proposes ${marker?.rev.slice(0, 7) ?? "another change"}, not the evaluated ${input.rev.slice(0, 7)}`,
      });
      continue;
    }
    const body = replaceSection(pull.body, renderSection(input, opts));
    if (body === pull.body) {
      results.push({
        input: input.name,
        outcome: "unchanged",
        ...where,
        detail: "section already up to date",
      });
      continue;
    }
    if (opts.dryRun) {
      results.push({
        input: input.name,
        outcome: "dry-run",
        ...where,
        detail: "would write the host impact section",
      });
      continue;
    }
    try {
      await octokit.rest.pulls.update({ owner, repo, pull_number: pull.number, body });
    } catch (error) {
      throw describeGitHubError(error, `update pull request #${pull.number}`, `${owner}/${repo}`);
    }
    results.push({ input: input.name, outcome: "written", ...where, detail: "host impact section written" });
  }
  return results;
}

/**
 * A grouped run's one section, evaluated with the combined lock, into the grouped pull request
 * (`<prefix>all`), written only while its marker still names exactly the evaluated members and revs.
 */
export async function writeGroupImpactSection(
  octokit: Octokit,
  input: InputImpact,
  opts: SectionWriteOptions,
): Promise<SectionWrite> {
  const { owner, repo } = opts.repo;
  const gh = { octokit, repo: opts.repo };
  const branch = groupBranch(opts.branchPrefix);
  const members = input.members ?? {};
  const name = Object.keys(members).join(", ");
  const pull = await openPullOf(gh, branch);
  if (pull === undefined) {
    return { input: name, outcome: "no-pull-request", detail: `no open pull request from ${branch}` };
  }
  const where = { input: name, number: pull.number, url: pull.html_url };
  const shown = parseGroupMarker(pull.body);
  if (shown === undefined || !sameMembers(shown, members)) {
    const now =
      shown === undefined
        ? "another change"
        : Object.entries(shown)
            .map(([n, r]) => `${n} ${r.slice(0, 7)}`)
            .join(", ");
    return {
      ...where,
      outcome: "moved",
      detail: `left alone: it now proposes ${now}, not the evaluated members`,
    };
  }
  const body = replaceSection(pull.body, renderSection(input, opts));
  if (body === pull.body) return { ...where, outcome: "unchanged", detail: "section already up to date" };
  if (opts.dryRun) return { ...where, outcome: "dry-run", detail: "would write the host impact section" };
  try {
    await octokit.rest.pulls.update({ owner, repo, pull_number: pull.number, body });
  } catch (error) {
    throw describeGitHubError(error, `update pull request #${pull.number}`, `${owner}/${repo}`);
  }
  return { ...where, outcome: "written", detail: "host impact section written" };
}

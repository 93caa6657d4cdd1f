/**
 * What a flake-bump pull request says: branch, title, body and the hidden marker tools parse, and
 * how that text travels as the branch head's commit message. Pure functions of the report entry and
 * the upstream commit list.
 */
import * as v from "valibot";
import { tryParseJson } from "../core/files.ts";
import { fullName, Sha } from "../core/ids.ts";
import { leftSentence } from "../flake/companions.ts";
import {
  companionMoveText,
  formatDate,
  type InputChange,
  lockUnmoved,
  revOf,
  type UpstreamCommit,
} from "../flake/report.ts";
import { DEFAULT_DEPLOY_SENTENCE, SECTION_END, SECTION_HEADING, SECTION_START } from "../impact/text.ts";

/** How many upstream commits the body lists before "and N more". */
export const COMMIT_LIMIT = 30;
const TRANSITIVE_LIMIT = 40;

export function branchName(input: string, prefix = "flake-bump/"): string {
  return `${prefix}${input}`;
}

/** The title names the release tag a release move takes, else the short rev. */
export function prTitle(input: string, rev: string, tag?: string): string {
  return `chore(flake): update ${input} to ${tag ?? rev.slice(0, 7)}`;
}

/** How many releases' notes a body shows, and how much of each. */
export const RELEASE_NOTES_LIMIT = 10;
export const RELEASE_NOTE_CHARS = 2000;

/** A release tag and its GitHub release notes (undefined when the tag has no release). */
export interface ReleaseNotes {
  tag: string;
  notes: string | undefined;
}

/**
 * The title of one input's change; for a companion that catches up with an input the lock already
 * holds (lockUnmoved), the gitlinks it moves.
 */
export function changeTitle(
  change: Pick<InputChange, "name" | "from" | "to" | "companions" | "release">,
): string {
  const rev = revOf(change);
  if (!lockUnmoved(change)) return prTitle(change.name, rev, change.release?.to);
  const paths = (change.companions?.moved ?? []).map((move) => move.path).join(", ");
  return `chore(flake): move submodule ${paths} to ${rev.slice(0, 7)}, where ${change.name} is locked`;
}

/** A PR's title and body as the branch head commit's message carries them. */
export interface PrText {
  title: string;
  body: string;
}

export function commitMessage(text: PrText): string {
  return `${text.title}\n\n${text.body}`;
}

export function textFromMessage(message: string): PrText {
  const [title = "", ...rest] = message.split("\n");
  return { title, body: rest.join("\n").replace(/^\n/, "") };
}

export const Marker = v.object({ input: v.string(), rev: v.string() });
export type Marker = v.InferOutput<typeof Marker>;

const MARKER = /<!-- flake-bump (\{.*?\}) -->/;

export function renderMarker(marker: Marker): string {
  return `<!-- flake-bump ${JSON.stringify(marker)} -->`;
}

/** The marker of a pull request body written by flake-bump, if it has a valid one. */
export function parseMarker(body: string | null | undefined): Marker | undefined {
  const match = body ? MARKER.exec(body) : null;
  if (!match?.[1]) return undefined;
  return tryParseJson(Marker, match[1]);
}

/**
 * Which branch head a pull request's text was written for: only the PR body carries it (a commit
 * cannot name itself), so a PR listing whose `head.sha` matches it tells the head's rev without
 * reading the commit. `base` is that head's first parent, the base commit it was built on.
 */
export const HeadMarker = v.object({ sha: Sha, base: v.optional(Sha) });
export type HeadMarker = v.InferOutput<typeof HeadMarker>;

const HEAD_MARKER = /\n?<!-- flake-bump-head (\{.*?\}) -->/;

/** The PR body for a branch head: the head commit's body plus the head marker. */
export function bodyForHead(body: string, head: HeadMarker): string {
  const marker = head.base === undefined ? { sha: head.sha } : { sha: head.sha, base: head.base };
  return `${body}\n<!-- flake-bump-head ${JSON.stringify(marker)} -->`;
}

/** The head marker of a PR body and the body without it. */
export function parseHeadMarker(body: string | null | undefined): { head?: HeadMarker; body: string } {
  const text = body ?? "";
  const match = HEAD_MARKER.exec(text);
  if (!match?.[1]) return { body: text };
  const rest = text.replace(HEAD_MARKER, "");
  const head = tryParseJson(HeadMarker, match[1]);
  return head === undefined ? { body: rest } : { head, body: rest };
}

/** The web address of a GitHub input: github.com, or its Enterprise host. */
export function webBase(github: NonNullable<InputChange["github"]>): string {
  return `https://${github.host ?? "github.com"}/${github.owner}/${github.repo}`;
}

/**
 * A commit subject safe to paste into a downstream PR: `@user` would notify people and `#12` would
 * link the downstream repo's issue 12 instead of the upstream's.
 */
export function safeSubject(message: string, upstream: string): string {
  const subject = message.split("\n", 1)[0]?.trim() ?? "";
  return subject
    .replace(/[<>]/g, (c) => (c === "<" ? "&lt;" : "&gt;"))
    .replace(/@(?=[A-Za-z0-9])/g, "@\u200b")
    .replace(/(^|[^\w/])#(\d+)\b/g, `$1${upstream}#$2`);
}

function revLink(base: string | undefined, rev: string | undefined): string {
  if (rev === undefined) return "—";
  const short = `\`${rev.slice(0, 7)}\``;
  return base ? `[${short}](${base}/commit/${rev})` : short;
}

/**
 * The body's closing sentence when host impact has not replaced it: `footer` (the impact step's
 * DEFAULT_DEPLOY_SENTENCE when absent, `pr-footer` in the update action, so one template serves
 * both) with `{hosts}` standing for the hosts that use the inputs, ending as a sentence.
 */
function footerLine(footer: string | undefined, hosts: string): string {
  const template = footer ?? DEFAULT_DEPLOY_SENTENCE;
  const filled = (template.includes("{hosts}") ? template.replace("{hosts}", hosts) : template).trim();
  return /[.!?]$/.test(filled) ? filled : `${filled}.`;
}

/** The footer between the host impact markers, where the impact step writes its section. */
export function footerSection(footer: string | undefined, hosts: string): string[] {
  return [SECTION_START, footerLine(footer, hosts), SECTION_END];
}

export interface BodyInput {
  change: InputChange;
  /**
   * The closing sentence (DEFAULT_DEPLOY_SENTENCE when absent), written between the host impact markers so
   * the impact step replaces it with its concrete deploy line; null for no footer (a direct commit).
   */
  footer?: string | null;
  /** Upstream commits from the old rev to the new, oldest first (the compare API's order). */
  commits?: readonly UpstreamCommit[];
  /** The compare API's total, which may exceed the commits it returned. */
  totalCommits?: number;
  /** For a release move: the notes of each release it takes in, oldest first. */
  releases?: readonly ReleaseNotes[];
}

export function prBody(input: BodyInput): string {
  const { change, footer } = input;
  const lines = [...inputSection(input), ""];
  if (footer !== null) {
    lines.push(...footerSection(footer, `the hosts that use \`${change.name}\``), "");
  }
  lines.push(renderMarker({ input: change.name, rev: revOf(change) }));
  return lines.join("\n");
}

/** A companion-only change's part of a body: the lock stays, the listed submodules move to it. */
function catchUpSection(change: InputChange): string[] {
  const base = change.github ? webBase(change.github) : undefined;
  const { moved = [], left = [] } = change.companions ?? {};
  const lines = [
    `\`${change.name}\` is already locked to ${revLink(base, change.to.rev)} (${formatDate(change.to.lastModified)}); flake.lock does not change.`,
    "",
    "Moves the companion submodules listed for it to that commit:",
    ...moved.map((m) => `- ${companionMoveText(m)}`),
    "",
  ];
  for (const l of left) lines.push(`Left as it is: ${leftSentence(change.name, l)}.`, "");
  return lines;
}

/** One input's part of a body: from/to, compare link, upstream commits, transitive changes. */
export function inputSection({ change, commits, totalCommits, releases }: BodyInput): string[] {
  if (lockUnmoved(change)) return catchUpSection(change);
  const base = change.github ? webBase(change.github) : undefined;
  const upstream = change.github ? fullName(change.github) : change.name;
  const to = change.to;
  const lines: string[] = [
    `Updates the flake input \`${change.name}\`${change.github ? ` from [${upstream}](${base})` : ""}.`,
    "",
    "| | commit | date |",
    "| --- | --- | --- |",
    `| from | ${revLink(base, change.from?.rev)} | ${formatDate(change.from?.lastModified)} |`,
    `| to | ${revLink(base, to.rev)} | ${formatDate(to.lastModified)} |`,
    "",
  ];
  if (to.rev) lines.push(`New rev: \`${to.rev}\``);
  if (change.release !== undefined) lines.push(...releaseSection(change.release, base, releases));
  else if (base && change.from?.rev && to.rev) {
    lines.push(`Compare: ${base}/compare/${change.from.rev}...${to.rev}`);
  }
  lines.push("");
  const { moved = [], left = [] } = change.companions ?? {};
  if (moved.length > 0) {
    lines.push("Moves with it, in the same commit:", ...moved.map((m) => `- ${companionMoveText(m)}`), "");
  }
  for (const l of left) lines.push(`Left as it is: ${leftSentence(change.name, l)}.`, "");

  if (commits !== undefined) {
    const newestFirst = [...commits].reverse();
    const total = Math.max(totalCommits ?? commits.length, commits.length);
    lines.push(`### Upstream commits (${total})`, "");
    for (const commit of newestFirst.slice(0, COMMIT_LIMIT)) {
      const author = commit.author?.login
        ? `@\u200b${commit.author.login}`
        : (commit.commit.author?.name ?? "unknown");
      lines.push(
        `- ${revLink(base, commit.sha)} ${safeSubject(commit.commit.message, upstream)} — ${author}`,
      );
    }
    if (total > COMMIT_LIMIT) lines.push(`- … and ${total - COMMIT_LIMIT} more`);
    if (total === 0) lines.push("- (none: the new rev is not ahead of the old one)");
    lines.push("");
  }

  const { added, removed, changed } = change.transitive;
  const transitive = [
    ...changed.map(
      (c) => `- \`${c.path}\`: ${revLink(undefined, c.from?.rev)} → ${revLink(undefined, c.to?.rev)}`,
    ),
    ...added.map((c) => `- \`${c.path}\`: added at ${revLink(undefined, c.to?.rev)}`),
    ...removed.map((c) => `- \`${c.path}\`: removed`),
  ];
  lines.push("### Transitive lock changes", "");
  if (transitive.length === 0) lines.push("None: only this input moved.");
  else {
    lines.push(...transitive.slice(0, TRANSITIVE_LIMIT));
    if (transitive.length > TRANSITIVE_LIMIT)
      lines.push(`- … and ${transitive.length - TRANSITIVE_LIMIT} more`);
  }
  return lines;
}

/** A release move's part: the tags it takes in, the compare link between the tags, each release's notes (bounded). */
function releaseSection(
  release: NonNullable<InputChange["release"]>,
  base: string | undefined,
  notes: readonly ReleaseNotes[] | undefined,
): string[] {
  const taken = [...(release.between ?? []), release.to];
  const lines = [
    `Release: \`${release.from}\` → \`${release.to}\` (flake.nix's tag moves with flake.lock)`,
    `Tags taken in: ${taken.map((tag) => `\`${tag}\``).join(", ")}`,
  ];
  if (base) lines.push(`Compare: ${base}/compare/${release.from}...${release.to}`);
  const withNotes = (notes ?? []).filter((entry) => entry.notes !== undefined && entry.notes.trim() !== "");
  for (const { tag, notes: text = "" } of withNotes.slice(-RELEASE_NOTES_LIMIT).reverse()) {
    const cut = text.length > RELEASE_NOTE_CHARS ? `${text.slice(0, RELEASE_NOTE_CHARS)}…` : text;
    const link = base ? `[${tag}](${base}/releases/tag/${encodeURIComponent(tag)})` : tag;
    lines.push("", `#### ${link}`, "", ...quoted(cut));
  }
  if (withNotes.length > RELEASE_NOTES_LIMIT)
    lines.push("", `… and the notes of ${withNotes.length - RELEASE_NOTES_LIMIT} older releases`);
  return lines;
}

/** Release notes as a quote, their headings inside it and their @-mentions pinging nobody. */
function quoted(text: string): string[] {
  return text
    .trimEnd()
    .replaceAll("@", "@\u200b")
    .split("\n")
    .map((line) => `> ${line}`.trimEnd());
}

/**
 * `body` with its impact section replaced in place by `section`, or inserted before flake-bump's
 * marker (or at the end) when it has none. Stray extra sections are removed, so reruns never duplicate.
 */
export function replaceSection(body: string | null | undefined, section: string): string {
  const text = body ?? "";
  const pattern = sectionPattern();
  let placed = false;
  const replaced = text.replace(pattern, () => {
    if (placed) return "";
    placed = true;
    return section;
  });
  if (placed) return replaced.replace(/\n{3,}/g, "\n\n");
  return text ? insertBeforeMarker(text, section) : `${section}\n`;
}

/**
 * `text` with `section` before flake-bump's marker (per-input or grouped), a blank line either side;
 * at the end when it has no marker.
 */
export function insertBeforeMarker(text: string, section: string): string {
  const marker = /\n?<!-- flake-bump(?:-group)? \{.*?\} -->/.exec(text);
  if (marker === null) return `${text.replace(/\s+$/, "")}\n\n${section}\n`;
  const before = text.slice(0, marker.index).replace(/\s+$/, "");
  return `${before}\n\n${section}\n\n${text.slice(marker.index).replace(/^\n/, "")}`;
}

/**
 * `next`, the body open-pr is about to write, keeping the impact section of `shown` (the body the
 * pull request has) when both propose the same input at the same rev: the section then still
 * describes what the pull request proposes. A body for another rev gets none, since the old section
 * would describe a lock the pull request no longer holds (the impact step writes the new one).
 */
export function carrySection(
  shown: string | null | undefined,
  next: string,
  sameProposal: (shown: string | null | undefined, next: string) => boolean = sameInputAndRev,
): string {
  // Only a computed section is carried: the footer open-pr writes there until impact runs is not.
  const section = computedSection(shown);
  if (section === undefined || computedSection(next) !== undefined || !sameProposal(shown, next)) return next;
  return replaceSection(next, section);
}

/** Do both bodies' markers name the same input at the same rev? */
export function sameInputAndRev(shown: string | null | undefined, next: string): boolean {
  const [before, after] = [parseMarker(shown), parseMarker(next)];
  return before !== undefined && before.input === after?.input && before.rev === after.rev;
}

/** The computed host impact section of a body (not the footer placeholder), if it has one. */
export function computedSection(body: string | null | undefined): string | undefined {
  const section = body ? sectionPattern().exec(body)?.[0] : undefined;
  return section?.startsWith(`${SECTION_START}\n${SECTION_HEADING}`) ? section : undefined;
}

function sectionPattern(): RegExp {
  return new RegExp(`${escapeRegExp(SECTION_START)}[\\s\\S]*?${escapeRegExp(SECTION_END)}`, "g");
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

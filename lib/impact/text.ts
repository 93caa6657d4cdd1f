/**
 * What host impact says: the pull request's section (short, bounded), the step summary's full table
 * and the lines for people on stderr. Pure functions of the impact.
 *
 * A bump that moves a lot (a nixpkgs bump moves most packages of every host) moves the same packages
 * on many hosts. So the changes are grouped by the hosts they are on and each group is said once —
 * "On all 12 hosts: …", then what differs per host — with the most telling first: version changes
 * (major, then minor, patch and the rest), then packages added, then removed; hosts that were only
 * rebuilt (no version moved) come last. Names and hosts are in natural order (`pkg2` before `pkg10`).
 */
import { naturalKey, naturalOrder, naturalSort, type PackageDiff } from "./closure.ts";
import { type HostImpact, type InputImpact, shortName } from "./evaluate.ts";

/**
 * The markers around the part of a pull request body that host impact owns: the footer until impact
 * runs, then its section with the concrete deploy line.
 */
export const SECTION_START = "<!-- flake-bump:impact -->";
export const SECTION_END = "<!-- /flake-bump:impact -->";

/** The first line of a computed section, which tells it from the footer open-pr writes there. */
export const SECTION_HEADING = "### Host impact";

/** GitHub refuses pull request bodies over 65,536 characters. */
export const BODY_LIMIT = 65_536;

/** The section keeps to a fraction of BODY_LIMIT: the rest is the text open-pr writes. */
export const SECTION_BUDGET = 16_000;

/**
 * GitHub uploads at most 1 MiB of summary per step ("If more than 1MiB of content is added for a
 * step, then the upload for the step will fail", docs: workflow commands, step isolation and
 * limits). The table keeps to this many UTF-8 bytes, leaving room for the step's other lines.
 */
export const SUMMARY_BUDGET = 900_000;

export const DEFAULT_DEPLOY_SENTENCE = "After merging, deploy: {hosts}";

export interface SectionOptions {
  /** The closing sentence; `{hosts}` becomes the hosts to deploy (appended when it is missing). */
  deploySentence?: string;
  /** The time budget in minutes, named when it ran out. */
  timeoutMinutes?: number;
  /** The most characters the section may take (default SECTION_BUDGET). */
  budget?: number;
}

function code(text: string): string {
  return `\`${text.replaceAll("`", "'")}\``;
}

const count = new Intl.NumberFormat("en");

function byAttr(a: HostImpact, b: HostImpact): number {
  return naturalOrder(a.attr, b.attr);
}

/** `` `a`, `b`, … and 3 more `` in natural order, at most `max` names. */
function hostList(attrs: readonly string[], max = Number.POSITIVE_INFINITY): string {
  const names = attrs.map(shortName).sort(naturalOrder);
  if (max <= 0) return `${count.format(names.length)} ${names.length === 1 ? "host" : "hosts"}`;
  const shown = names.slice(0, max).map(code).join(", ");
  return names.length > max ? `${shown} and ${count.format(names.length - max)} more` : shown;
}

/**
 * How telling a package line is, most first: 0–3 a version change by the first component that
 * moved (major, minor, patch, beyond), 4 a package added, 5 one removed.
 */
export type Rank = 0 | 1 | 2 | 3 | 4 | 5;

/** One line of a host's package diff. */
export interface PackageLine {
  kind: "changed" | "added" | "removed";
  name: string;
  /** The old version (changed, removed), "" when added. */
  from: string;
  /** The new version (changed, added), "" when removed. */
  to: string;
  rank: Rank;
  /** Its place in a list: rank, then name and versions in natural order (compare as strings). */
  order: string;
}

/** Which component of a version moved first: 0 (`1.9` → `2.0`), 1 (`1.0` → `1.1`), 2, or 3 for any later. */
export function versionLevel(from: string, to: string): 0 | 1 | 2 | 3 {
  const a = from.split(/[-.+_]/);
  const b = to.split(/[-.+_]/);
  for (let i = 0; i < Math.max(a.length, b.length) && i < 3; i++) {
    if (a[i] !== b[i]) return i === 0 ? 0 : i === 1 ? 1 : 2;
  }
  return 3;
}

function packageLine(kind: PackageLine["kind"], name: string, from: string, to: string): PackageLine {
  const rank: Rank = kind === "added" ? 4 : kind === "removed" ? 5 : versionLevel(from, to);
  const order = `${rank}\0${naturalKey(name)}\0${naturalKey(from)}\0${naturalKey(to)}\0${name}\0${from}\0${to}`;
  return { kind, name, from, to, rank, order };
}

function byOrder(a: PackageLine, b: PackageLine): number {
  return a.order < b.order ? -1 : a.order > b.order ? 1 : 0;
}

/** Every line of a diff, unsorted, made by `make` (which may share lines between hosts). */
function diffLines(
  diff: PackageDiff,
  make: (kind: PackageLine["kind"], name: string, from: string, to: string) => PackageLine,
): PackageLine[] {
  return [
    ...diff.changed.map((c) => make("changed", c.name, c.from, c.to)),
    ...diff.added.map((a) => make("added", a.name, "", a.version)),
    ...diff.removed.map((r) => make("removed", r.name, r.version, "")),
  ];
}

/** A diff's lines, most telling first, then by name in natural order. */
export function rankedLines(diff: PackageDiff | undefined): PackageLine[] {
  return diff === undefined ? [] : diffLines(diff, packageLine).sort(byOrder);
}

const version = (text: string) => text || "(no version)";

function lineText(line: PackageLine): string {
  if (line.kind === "changed") return `${line.name} ${version(line.from)} → ${version(line.to)}`;
  if (line.kind === "added") return `+ ${line.name}${line.to ? ` ${line.to}` : ""}`;
  return `− ${line.name}${line.from ? ` ${line.from}` : ""}`;
}

/** `tool 1 → 2`, `+ bar 3`, `− baz 4`: every package line of a diff, most telling first. */
export function packageLines(diff: PackageDiff | undefined): string[] {
  return rankedLines(diff).map(lineText);
}

/** Version changes with the same `from → to` on this many packages or more are said as one item. */
const MERGE_AT = 3;

/**
 * What a list shows, in rank order: one line each, except that within a rank of version changes the
 * same `from → to` on MERGE_AT or more packages is one item, the largest of those first.
 * @param lines ranked (rankedLines' order)
 */
export function listItems(lines: readonly PackageLine[]): PackageLine[][] {
  const out: PackageLine[][] = [];
  let start = 0;
  while (start < lines.length) {
    const rank = lines[start]?.rank ?? 5;
    let end = start;
    while (end < lines.length && lines[end]?.rank === rank) end++;
    const ofRank = lines.slice(start, end);
    start = end;
    if (rank > 3) {
      out.push(...ofRank.map((line) => [line]));
      continue;
    }
    const same = new Map<string, PackageLine[]>();
    for (const line of ofRank) {
      const key = `${line.from}\0${line.to}`;
      const bucket = same.get(key);
      if (bucket === undefined) same.set(key, [line]);
      else bucket.push(line);
    }
    const merged = [...same.entries()]
      .filter(([, bucket]) => bucket.length >= MERGE_AT)
      .sort(([a, x], [b, y]) => y.length - x.length || naturalOrder(a, b))
      .map(([, bucket]) => bucket);
    const inMerged = new Set(merged.flat());
    const single = ofRank.filter((line) => !inMerged.has(line));
    out.push(...merged, ...single.map((line) => [line]));
  }
  return out;
}

/** One item: its line, or `1,066 packages 1.0 → 1.1 — a, b, … and 1,064 more` with at most `names` names. */
function itemText(item: readonly PackageLine[], names: number): string {
  const [first] = item;
  if (first === undefined) return "";
  if (item.length === 1) return lineText(first);
  const shown = item.slice(0, names).map((line) => line.name);
  const rest = item.length - shown.length;
  const list =
    shown.length > 0 ? ` — ${shown.join(", ")}${rest > 0 ? `, … and ${count.format(rest)} more` : ""}` : "";
  return `${count.format(item.length)} packages ${version(first.from)} → ${version(first.to)}${list}`;
}

/** Package lines that are on exactly the same changed hosts. */
export interface ChangeGroup {
  /** The hosts' attributes, in natural order. */
  hosts: string[];
  /** Ranked. */
  lines: PackageLine[];
}

export interface GroupedChanges {
  /** Every changed host's attribute, in natural order. */
  changed: string[];
  /**
   * Shared groups first (more hosts first, then more lines), then one group per host for what only
   * it has, in natural order of the host. Every line is in exactly one group.
   */
  groups: ChangeGroup[];
  /** Changed hosts on which no package version moved: rebuilt with new inputs. */
  rebuilt: string[];
  /** Changed hosts whose packages were not compared (the time budget ran out first). */
  unread: string[];
}

/** The changed hosts' package lines, each said once for all the hosts it is on. */
export function groupChanges(hosts: readonly HostImpact[]): GroupedChanges {
  const changed = naturalSort(
    hosts.filter((host) => host.status === "changed"),
    (host) => host.attr,
  );
  // One entry per distinct line, however many hosts have it: a fleet's lines are mostly shared.
  // Looked up by name, then versions, so no key string is built per host and line; its hosts are a
  // node of a trie of host sets (hosts are visited in order, so each set is one path), so lines on
  // the same hosts end on the same node without comparing host lists.
  const byName = new Map<string, { line: PackageLine; set: number }[]>();
  const parent = [-1];
  const last = [-1];
  const next = new Map<number, number>();
  let current = 0;
  const make = (kind: PackageLine["kind"], name: string, from: string, to: string): PackageLine => {
    let entries = byName.get(name);
    if (entries === undefined) {
      entries = [];
      byName.set(name, entries);
    }
    let entry = entries.find(({ line }) => line.kind === kind && line.from === from && line.to === to);
    if (entry === undefined) {
      entry = { line: packageLine(kind, name, from, to), set: 0 };
      entries.push(entry);
    }
    // A diff lists a line once, so a host meets it at most once.
    const step = entry.set * changed.length + current;
    let node = next.get(step);
    if (node === undefined) {
      node = parent.push(entry.set) - 1;
      last.push(current);
      next.set(step, node);
    }
    entry.set = node;
    return entry.line;
  };
  const rebuilt: string[] = [];
  const unread: string[] = [];
  for (const [index, host] of changed.entries()) {
    current = index;
    if (host.packages === undefined) unread.push(host.attr);
    else if (diffLines(host.packages, make).length === 0) rebuilt.push(host.attr);
  }
  const members = (node: number): number[] => {
    const out: number[] = [];
    for (let n = node; n > 0; n = parent[n] ?? 0) out.push(last[n] ?? 0);
    return out.reverse();
  };
  const bySet = new Map<number, { members: number[]; group: ChangeGroup }>();
  for (const { line, set } of [...byName.values()].flat()) {
    const known = bySet.get(set);
    if (known !== undefined) known.group.lines.push(line);
    else {
      const indices = members(set);
      const group = { hosts: indices.map((i) => changed[i]?.attr ?? ""), lines: [line] };
      bySet.set(set, { members: indices, group });
    }
  }
  const sets = [...bySet.values()];
  for (const { group } of sets) group.lines.sort(byOrder);
  const lexical = (a: readonly number[], b: readonly number[]) => {
    for (let i = 0; i < Math.min(a.length, b.length); i++)
      if (a[i] !== b[i]) return (a[i] ?? 0) - (b[i] ?? 0);
    return a.length - b.length;
  };
  sets.sort(
    (a, b) =>
      b.members.length - a.members.length ||
      (a.members.length > 1 ? b.group.lines.length - a.group.lines.length : 0) ||
      lexical(a.members, b.members),
  );
  const groups = sets.map(({ group }) => group);
  return { changed: changed.map((host) => host.attr), groups, rebuilt, unread };
}

/**
 * The hosts of a shared group: `all 12 hosts`, `both changed hosts`, `9 of 12 changed hosts, all but
 * `db``, or their names.
 */
function sharedHosts(group: ChangeGroup, grouped: GroupedChanges, every: boolean, maxHosts: number): string {
  const n = group.hosts.length;
  const of = grouped.changed.length;
  const hosts = every ? "hosts" : "changed hosts";
  if (n === of) return `${n === 2 ? "both" : `all ${count.format(n)}`} ${hosts}`;
  const on = new Set(group.hosts);
  const others = grouped.changed.filter((attr) => !on.has(attr));
  if (others.length <= 3 && n > 3) {
    return `${count.format(n)} of ${count.format(of)} ${hosts}, all but ${hostList(others)}`;
  }
  return hostList(group.hosts, maxHosts);
}

interface Limits {
  /** Items listed per group before "… and N more". */
  items: number;
  /** Package names listed per merged item. */
  names: number;
  /** Groups listed before pointing to the summary. */
  groups: number;
  /** Hosts listed per status, and named per host list. */
  hosts: number;
}

/**
 * One group: `Title: item` when it has one item, else `Title (N changes):` and a list.
 * @param nest "" for a paragraph and its list; "  " for a list item (`- Title`) and its nested list
 */
function groupLines(group: ChangeGroup, title: string, limits: Limits, nest: "" | "  "): string[] {
  const head = nest === "" ? title : `- ${title}`;
  const items = listItems(group.lines);
  const [only] = items;
  if (items.length === 1 && only !== undefined && limits.items > 0) {
    return [`${head}: ${itemText(only, limits.names)}`];
  }
  const n = group.lines.length;
  const shown = items.slice(0, limits.items);
  const hidden = items.slice(shown.length).reduce((sum, item) => sum + item.length, 0);
  return [
    `${head} (${count.format(n)} ${n === 1 ? "change" : "changes"})${shown.length > 0 ? ":" : nest === "" ? "." : ""}`,
    ...shown.map((item) => `${nest}- ${itemText(item, limits.names)}`),
    ...(hidden > 0 && shown.length > 0 ? [`${nest}- … and ${count.format(hidden)} more`] : []),
  ];
}

/**
 * The changed hosts' part of the section: each shared group once, then a list of what each host
 * has alone, then the hosts only rebuilt.
 */
function changedLines(input: InputImpact, grouped: GroupedChanges, limits: Limits): string[] {
  if (grouped.changed.length === 0) return [];
  const every = grouped.changed.length === input.hosts.length;
  const lines = [`**Changed (${count.format(grouped.changed.length)})**`, ""];
  const shown = grouped.groups.slice(0, limits.groups);
  const shared = shown.filter((group) => group.hosts.length > 1);
  for (const group of shared) {
    lines.push(
      ...groupLines(group, `On ${sharedHosts(group, grouped, every, limits.hosts)}`, limits, ""),
      "",
    );
  }
  const own = shown.filter((group) => group.hosts.length === 1);
  if (own.length > 0) {
    if (shared.length > 0) lines.push("Each host's own changes:", "");
    for (const group of own) {
      lines.push(...groupLines(group, code(shortName(group.hosts[0] ?? "")), limits, "  "));
    }
    lines.push("");
  }
  const more = grouped.groups.length - shown.length;
  if (more > 0) {
    lines.push(
      `… and ${count.format(more)} more ${more === 1 ? "host or set of hosts" : "hosts or sets of hosts"} with changes of their own: the workflow run's summary lists every change.`,
      "",
    );
  }
  const hostsLine = (text: string, attrs: readonly string[]) =>
    attrs.length > 0 ? [`${text}: ${hostList(attrs, limits.hosts)}.`, ""] : [];
  lines.push(
    ...hostsLine("Rebuilt with new inputs, no package version moved", grouped.rebuilt),
    ...hostsLine("Packages not compared (the time budget ran out)", grouped.unread),
  );
  return lines;
}

/** An error as a fenced block that its own text cannot close. */
function errorBlock(error: string | undefined, indent: string): string[] {
  const text = (error ?? "").replace(/`{3,}/g, "'''");
  return [`${indent}\`\`\``, ...text.split("\n").map((line) => `${indent}${line}`), `${indent}\`\`\``];
}

function firstLine(text: string | undefined): string {
  return (text ?? "").split("\n")[0] ?? "";
}

/** The deploy line: `After merging, deploy: `web`, `laptop` (`db` unchanged).` */
export function deployLine(hosts: readonly HostImpact[], sentence = DEFAULT_DEPLOY_SENTENCE): string {
  const attrs = (keep: (h: HostImpact) => boolean) => hosts.filter(keep).map((h) => h.attr);
  const deploy = attrs((h) => h.status === "changed" || h.status === "added" || h.status === "fixed");
  const unchanged = attrs((h) => h.status === "unchanged");
  const list = deploy.length > 0 ? hostList(deploy) : "no host";
  const aside = unchanged.length > 0 ? ` (${hostList(unchanged)} unchanged)` : "";
  const filled = sentence.includes("{hosts}")
    ? sentence.replace("{hosts}", `${list}${aside}`)
    : `${sentence.replace(/[.:\s]+$/, "")}: ${list}${aside}`;
  return /[.!?]$/.test(filled) ? filled : `${filled}.`;
}

function renderBody(
  input: InputImpact,
  grouped: GroupedChanges,
  opts: SectionOptions,
  limits: Limits,
): string {
  const lines: string[] = [SECTION_HEADING, ""];
  if (input.timedOut) {
    lines.push(
      `Not computed: evaluating the hosts took longer than the time budget${opts.timeoutMinutes ? ` (${opts.timeoutMinutes} minutes)` : ""}. Check the hosts yourself before merging, or raise \`impact-timeout-minutes\`.`,
    );
    return lines.join("\n");
  }
  if (input.hosts.length === 0) {
    lines.push("The flake has no hosts (nixosConfigurations, darwinConfigurations, homeConfigurations).");
    return lines.join("\n");
  }
  const of = (status: HostImpact["status"]) => input.hosts.filter((h) => h.status === status).sort(byAttr);
  const listHosts = (title: string, hosts: readonly HostImpact[], detail: (h: HostImpact) => string[]) => {
    if (hosts.length === 0) return;
    lines.push(`**${title} (${count.format(hosts.length)})**`, "");
    for (const host of hosts.slice(0, limits.hosts)) lines.push(...detail(host));
    if (hosts.length > limits.hosts) lines.push(`- … and ${count.format(hosts.length - limits.hosts)} more`);
    lines.push("");
  };
  listHosts("Fails to evaluate with this bump", of("failed"), (h) => [
    `- ${code(shortName(h.attr))}:`,
    ...errorBlock(h.error, "  "),
  ]);
  lines.push(...changedLines(input, grouped, limits));
  listHosts("Evaluates again with this bump (it failed on the base lock)", of("fixed"), (h) => [
    `- ${code(shortName(h.attr))}, which failed with:`,
    ...errorBlock(firstLine(h.error), "  "),
  ]);
  listHosts("Added", of("added"), (h) => [`- ${code(shortName(h.attr))}`]);
  listHosts("Removed", of("removed"), (h) => [`- ${code(shortName(h.attr))}`]);
  const unevaluable = of("unevaluable").map((h) => h.attr);
  if (unevaluable.length > 0) {
    lines.push(
      `Does not evaluate with either lock (not this bump's doing): ${hostList(unevaluable, limits.hosts)}.`,
      "",
    );
  }
  const unchanged = of("unchanged").map((h) => h.attr);
  if (unchanged.length > 0 && limits.hosts >= input.hosts.length) {
    lines.push(`Unchanged: ${hostList(unchanged)}.`, "");
  }
  lines.push(deployLine(input.hosts, opts.deploySentence));
  return lines.join("\n");
}

/** From the most said to the least, until the section fits its budget. */
const SECTION_LIMITS: readonly Limits[] = [
  { items: 10, names: 8, groups: 30, hosts: 200 },
  { items: 5, names: 5, groups: 15, hosts: 100 },
  { items: 3, names: 3, groups: 8, hosts: 50 },
  { items: 1, names: 2, groups: 4, hosts: 20 },
  { items: 0, names: 0, groups: 2, hosts: 10 },
];

/**
 * The pull request's section, between markers: failing hosts first, then each change said once for
 * the hosts it is on (a few items per group and "and N more"), then the other hosts and the deploy
 * line. It says less (fewer items, groups and hosts) until it fits `opts.budget` (SECTION_BUDGET),
 * so the body stays far under GitHub's limit however large the fleet or the bump.
 */
export function renderSection(input: InputImpact, opts: SectionOptions = {}): string {
  const wrap = (body: string) => `${SECTION_START}\n${body}\n${SECTION_END}`;
  const budget = opts.budget ?? SECTION_BUDGET;
  const grouped = groupChanges(input.hosts);
  for (const limits of SECTION_LIMITS) {
    const section = wrap(renderBody(input, grouped, opts, limits));
    if (section.length <= budget) return section;
  }
  return wrap(
    renderBody(
      input,
      grouped,
      { ...opts, deploySentence: "See the workflow run's summary for the hosts." },
      { items: 0, names: 0, groups: 0, hosts: 0 },
    ),
  );
}

/** What an entry evaluated: `nixfleet → abc1234`, or a group's members with theirs. */
export function impactLabel(input: InputImpact): string {
  if (input.members === undefined) return `\`${input.name}\` → \`${input.rev.slice(0, 12)}\``;
  const members = Object.entries(input.members).map(([name, rev]) => `\`${name}\` → \`${rev.slice(0, 7)}\``);
  return `the grouped update (${members.join(", ")})`;
}

function cell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("\n", "<br>");
}

/** A cell's worth of items: at most `limits.items`, then "… and N more". */
function itemCell(lines: readonly PackageLine[], limits: Pick<Limits, "items" | "names">): string[] {
  const items = listItems(lines);
  const shown = items.slice(0, limits.items);
  const hidden = items.slice(shown.length).reduce((sum, item) => sum + item.length, 0);
  return [
    ...shown.map((item) => itemText(item, limits.names)),
    ...(hidden > 0 ? [`… and ${count.format(hidden)} more`] : []),
  ];
}

/** One input's tables: every host with what only it has, then the changes hosts share. */
function summaryTables(
  input: InputImpact,
  grouped: GroupedChanges,
  opts: SectionOptions,
  limits: Pick<Limits, "items" | "names">,
): string[] {
  const out = [`### flake-bump: host impact of ${impactLabel(input)}`, ""];
  if (input.timedOut) {
    const budget = opts.timeoutMinutes ? ` (${opts.timeoutMinutes} minutes)` : "";
    return [...out, `Not computed: the time budget${budget} ran out.`, ""];
  }
  const own = new Map<string, ChangeGroup>();
  const sharing = new Set<string>();
  for (const group of grouped.groups) {
    const [only] = group.hosts;
    if (group.hosts.length === 1 && only !== undefined) own.set(only, group);
    else for (const attr of group.hosts) sharing.add(attr);
  }
  const rebuilt = new Set(grouped.rebuilt);
  const changedDetail = (attr: string): string[] => [
    ...itemCell(own.get(attr)?.lines ?? [], limits),
    ...(sharing.has(attr) ? ["and the changes it shares with other hosts (below)"] : []),
    ...(rebuilt.has(attr) ? ["no package version moved (rebuilt with new inputs)"] : []),
    ...(grouped.unread.includes(attr) ? ["packages not compared (the time budget ran out)"] : []),
  ];
  out.push("| host | status | packages / error |", "| --- | --- | --- |");
  for (const host of [...input.hosts].sort(byAttr)) {
    const detail =
      host.status === "failed"
        ? (host.error ?? "")
        : host.status === "fixed"
          ? `failed on the base lock: ${host.error ?? ""}`
          : host.status === "changed"
            ? changedDetail(host.attr).join("\n")
            : "";
    out.push(`| \`${cell(host.attr)}\` | ${host.status} | ${cell(detail) || "—"} |`);
  }
  const shared = grouped.groups.filter((group) => group.hosts.length > 1);
  if (shared.length > 0) {
    const every = grouped.changed.length === input.hosts.length;
    out.push(
      "",
      "Changes shared by several hosts, each said once:",
      "",
      "| hosts | packages |",
      "| --- | --- |",
    );
    for (const group of shared) {
      const hosts = sharedHosts(group, grouped, every, Number.POSITIVE_INFINITY);
      out.push(`| ${cell(hosts)} | ${cell(itemCell(group.lines, limits).join("\n"))} |`);
    }
  }
  out.push("", deployLine(input.hosts, opts.deploySentence), "");
  return out;
}

/** From everything to a few items per cell, until the summary fits SUMMARY_BUDGET. */
const SUMMARY_LIMITS: readonly Pick<Limits, "items" | "names">[] = [
  { items: Number.POSITIVE_INFINITY, names: Number.POSITIVE_INFINITY },
  { items: 200, names: 100 },
  { items: 50, names: 20 },
  { items: 10, names: 5 },
  { items: 0, names: 0 },
];

const SHORTENED =
  "*Shortened to fit GitHub's 1 MiB step summary: the file the step's `impact` output names has every change.*";

/**
 * The full tables for `$GITHUB_STEP_SUMMARY`: every host, every package line (each shared one once),
 * every error. Kept under `budget` UTF-8 bytes (SUMMARY_BUDGET): past it, fewer items per cell,
 * and as a last resort the text is cut at a line.
 */
export function summaryMarkdown(
  inputs: readonly InputImpact[],
  opts: SectionOptions = {},
  budget = SUMMARY_BUDGET,
): string {
  const bytes = (text: string) => Buffer.byteLength(text, "utf8");
  const grouped = inputs.map((input) => groupChanges(input.hosts));
  let text = "";
  for (const [index, limits] of SUMMARY_LIMITS.entries()) {
    const note = index === 0 ? [] : [SHORTENED, ""];
    const tables = inputs.flatMap((input, i) =>
      summaryTables(input, grouped[i] ?? groupChanges(input.hosts), opts, limits),
    );
    text = [...note, ...tables].join("\n");
    if (bytes(text) <= budget) return text;
  }
  const room = budget - bytes(SHORTENED) - 2;
  let cut = text.slice(0, room);
  while (bytes(cut) > room) cut = cut.slice(0, Math.floor(cut.length * 0.9));
  return `${cut.slice(0, cut.lastIndexOf("\n") + 1)}\n${SHORTENED}\n`;
}

/** One line per host for people (stderr), hosts in natural order, each host's most telling lines first. */
export function describeImpact(inputs: readonly InputImpact[]): string[] {
  const lines: string[] = [];
  for (const input of inputs) {
    lines.push(
      input.members !== undefined
        ? `Host impact of ${impactLabel(input).replaceAll("`", "")}:`
        : // A local lock that moves several inputs, or only transitive ones, has no one rev to name.
          input.rev === ""
          ? `Host impact of ${input.name}:`
          : `Host impact of ${input.name} → ${input.rev.slice(0, 7)}:`,
    );
    if (input.timedOut) lines.push("  not computed: the time budget ran out");
    for (const host of naturalSort(input.hosts, (h) => h.attr)) {
      const packages = packageLines(host.packages);
      const detail =
        host.status === "failed"
          ? `: ${firstLine(host.error)}`
          : host.status === "fixed"
            ? `: evaluates again (it failed on the base lock: ${firstLine(host.error)})`
            : packages.length > 0
              ? `: ${packages.slice(0, 5).join(", ")}${packages.length > 5 ? `, and ${packages.length - 5} more` : ""}`
              : "";
      lines.push(`  ${host.attr}: ${host.status}${detail}`);
    }
    if (!input.timedOut && input.hosts.length === 0) lines.push("  the flake has no hosts");
  }
  return lines;
}

/**
 * What host impact says: the pull request's section (short, bounded), the step summary's full table
 * and the lines for people on stderr. Pure functions of the impact.
 */
import type { PackageDiff } from "./closure.ts";
import { type HostImpact, type InputImpact, shortName } from "./evaluate.ts";

/**
 * The markers around the part of a pull request body that host impact owns: the footer until impact
 * runs, then its section with the concrete deploy line.
 */
export const SECTION_START = "<!-- flake-bump:impact -->";
export const SECTION_END = "<!-- /flake-bump:impact -->";

/** The first line of a computed section, which tells it from the footer open-pr writes there. */
export const SECTION_HEADING = "### Host impact";

/** GitHub refuses pull request bodies over 65,536 characters; the section keeps to a fraction of it. */
export const SECTION_BUDGET = 16_000;

export const DEFAULT_DEPLOY_SENTENCE = "After merging, deploy: {hosts}";

export interface SectionOptions {
  /** The closing sentence; `{hosts}` becomes the hosts to deploy (appended when it is missing). */
  deploySentence?: string;
  /** The time budget in minutes, named when it ran out. */
  timeoutMinutes?: number;
}

function code(text: string): string {
  return `\`${text.replaceAll("`", "'")}\``;
}

function hostList(hosts: readonly HostImpact[]): string {
  const names = hosts.map((host) => shortName(host.attr)).sort();
  return names.map(code).join(", ");
}

/** `tool 1 → 2`, `+ bar 3`, `− baz 4`: every package line of a diff, changes first. */
export function packageLines(diff: PackageDiff | undefined): string[] {
  if (diff === undefined) return [];
  const v = (version: string) => version || "(no version)";
  return [
    ...diff.changed.map((c) => `${c.name} ${v(c.from)} → ${v(c.to)}`),
    ...diff.added.map((a) => `+ ${a.name}${a.version ? ` ${a.version}` : ""}`),
    ...diff.removed.map((r) => `− ${r.name}${r.version ? ` ${r.version}` : ""}`),
  ];
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
  const deploy = hosts.filter((h) => h.status === "changed" || h.status === "added" || h.status === "fixed");
  const unchanged = hosts.filter((h) => h.status === "unchanged");
  const list = deploy.length > 0 ? hostList(deploy) : "no host";
  const aside = unchanged.length > 0 ? ` (${hostList(unchanged)} unchanged)` : "";
  const filled = sentence.includes("{hosts}")
    ? sentence.replace("{hosts}", `${list}${aside}`)
    : `${sentence.replace(/[.:\s]+$/, "")}: ${list}${aside}`;
  return /[.!?]$/.test(filled) ? filled : `${filled}.`;
}

function renderBody(input: InputImpact, opts: SectionOptions, perHost: number, maxHosts: number): string {
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
  const of = (status: HostImpact["status"]) => input.hosts.filter((h) => h.status === status);
  let shown = 0;
  const listHosts = (title: string, hosts: readonly HostImpact[], detail: (h: HostImpact) => string[]) => {
    if (hosts.length === 0) return;
    lines.push(`**${title} (${hosts.length})**`, "");
    for (const host of hosts) {
      if (shown >= maxHosts) {
        lines.push(`- … and ${hosts.length - hosts.indexOf(host)} more`);
        break;
      }
      shown++;
      lines.push(...detail(host));
    }
    lines.push("");
  };
  listHosts("Fails to evaluate with this bump", of("failed"), (h) => [
    `- ${code(shortName(h.attr))}:`,
    ...errorBlock(h.error, "  "),
  ]);
  listHosts("Changed", of("changed"), (h) => {
    const all = packageLines(h.packages);
    const head = `- ${code(shortName(h.attr))}`;
    if (all.length === 0) return [`${head}: no package version moved (rebuilt with new inputs)`];
    const more = all.length > perHost ? [`  - … and ${all.length - perHost} more`] : [];
    return [`${head}:`, ...all.slice(0, perHost).map((line) => `  - ${line}`), ...more];
  });
  listHosts("Evaluates again with this bump (it failed on the base lock)", of("fixed"), (h) => [
    `- ${code(shortName(h.attr))}, which failed with:`,
    ...errorBlock(firstLine(h.error), "  "),
  ]);
  listHosts("Added", of("added"), (h) => [`- ${code(shortName(h.attr))}`]);
  listHosts("Removed", of("removed"), (h) => [`- ${code(shortName(h.attr))}`]);
  const unevaluable = of("unevaluable");
  if (unevaluable.length > 0) {
    lines.push(
      `Does not evaluate with either lock (not this bump's doing): ${hostList(unevaluable.slice(0, maxHosts))}${unevaluable.length > maxHosts ? ` and ${unevaluable.length - maxHosts} more` : ""}.`,
      "",
    );
  }
  const unchanged = of("unchanged");
  if (unchanged.length > 0 && maxHosts >= input.hosts.length) {
    lines.push(`Unchanged: ${hostList(unchanged)}.`, "");
  }
  lines.push(deployLine(input.hosts, opts.deploySentence));
  return lines.join("\n");
}

/**
 * The pull request's section, between markers: hosts first, then at most a few package lines per host
 * and "and N more". It shrinks (fewer package lines, then fewer hosts) until it fits SECTION_BUDGET,
 * so the body stays far under GitHub's limit however large the fleet or the bump.
 */
export function renderSection(input: InputImpact, opts: SectionOptions = {}): string {
  const wrap = (body: string) => `${SECTION_START}\n${body}\n${SECTION_END}`;
  for (const [perHost, maxHosts] of [
    [10, 200],
    [3, 100],
    [0, 50],
    [0, 10],
  ] as const) {
    const section = wrap(renderBody(input, opts, perHost, maxHosts));
    if (section.length <= SECTION_BUDGET) return section;
  }
  return wrap(
    renderBody(input, { ...opts, deploySentence: "See the workflow run's summary for the hosts." }, 0, 0),
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

/** The full table for `$GITHUB_STEP_SUMMARY`: every host, every package line, every error. */
export function summaryMarkdown(inputs: readonly InputImpact[], opts: SectionOptions = {}): string {
  const out: string[] = [];
  for (const input of inputs) {
    out.push(`### flake-bump: host impact of ${impactLabel(input)}`, "");
    if (input.timedOut) {
      out.push(
        `Not computed: the time budget${opts.timeoutMinutes ? ` (${opts.timeoutMinutes} minutes)` : ""} ran out.`,
        "",
      );
      continue;
    }
    out.push("| host | status | packages / error |", "| --- | --- | --- |");
    for (const host of input.hosts) {
      const detail =
        host.status === "failed"
          ? (host.error ?? "")
          : host.status === "fixed"
            ? `failed on the base lock: ${host.error ?? ""}`
            : packageLines(host.packages).join("\n");
      out.push(`| \`${cell(host.attr)}\` | ${host.status} | ${cell(detail) || "—"} |`);
    }
    out.push("", deployLine(input.hosts, opts.deploySentence), "");
  }
  return out.join("\n");
}

/** One line per host for people (stderr). */
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
    for (const host of input.hosts) {
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

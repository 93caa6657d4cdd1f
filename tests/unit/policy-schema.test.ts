/**
 * The JSON Schema shipped for editors agrees with the valibot schema flake-bump validates the policy
 * file with: it is what valibot's converter generates from it, and both judge the same documents alike.
 */
import { describe, expect, test } from "bun:test";
import Ajv from "ajv";
import * as v from "valibot";
import { parse } from "yaml";
import { PolicyFile } from "../../lib/policy/schema.ts";
import { EXAMPLE_POLICY, policyJsonSchema, SHIPPED_SCHEMA as SHIPPED } from "../support/policy.ts";
import { readRepoFile } from "../support/readme.ts";

const shipped: object = JSON.parse(readRepoFile(SHIPPED));

test("the shipped JSON Schema is the one generated from the valibot schema", () => {
  if (!Bun.deepEquals(shipped, policyJsonSchema(), true)) {
    throw new Error(
      `${SHIPPED} differs from the valibot schema; regenerate it with 'bun tests/support/policy.ts'`,
    );
  }
});

interface Case {
  name: string;
  yaml: string;
  valid: boolean;
}
const cases: Case[] = [
  { name: "empty mapping", yaml: "{}", valid: true },
  {
    name: "the README's example",
    yaml: `defaults:\n  merge: review\n  follow: branch\n  schedule: daily\n  min-age: 0h\ngroups:\n  nixpkgs:\n    inputs: [nixpkgs, nixpkgs-stable, home-manager]\n    schedule: weekly\n    merge: auto\ninputs:\n  janus:\n    follow: none\n  hostdash:\n    merge: auto\n`,
    valid: true,
  },
  {
    name: "durations in hours and days",
    yaml: "defaults: {min-age: 36h}\ninputs: {a: {min-age: 3d}}",
    valid: true,
  },
  { name: "an unknown top-level key", yaml: "default: {merge: auto}", valid: false },
  { name: "an unknown setting", yaml: "defaults: {mrege: auto}", valid: false },
  { name: "a bad merge mode", yaml: "defaults: {merge: yolo}", valid: false },
  { name: "follow: releases", yaml: "defaults: {follow: releases}", valid: true },
  { name: "a follow value there is not", yaml: "defaults: {follow: tags}", valid: false },
  { name: "a bad schedule", yaml: "inputs: {a: {schedule: hourly}}", valid: false },
  { name: "a duration without unit", yaml: "defaults: {min-age: '3'}", valid: false },
  { name: "a duration as a number", yaml: "defaults: {min-age: 0}", valid: false },
  { name: "a duration in minutes", yaml: "defaults: {min-age: 30m}", valid: false },
  { name: "a fractional duration", yaml: "defaults: {min-age: 1.5d}", valid: false },
  { name: "a group without inputs", yaml: "groups: {g: {merge: auto}}", valid: false },
  { name: "a group with an empty list", yaml: "groups: {g: {inputs: []}}", valid: false },
  { name: "a group name with a slash", yaml: "groups: {'a/b': {inputs: [x]}}", valid: false },
  { name: "an input name with a space", yaml: "inputs: {'a b': {}}", valid: false },
  { name: "a group's input list holding a bad name", yaml: "groups: {g: {inputs: ['a b']}}", valid: false },
  { name: "an input entry that is a list", yaml: "inputs: {a: [merge]}", valid: false },
  { name: "an unknown key in a group", yaml: "groups: {g: {inputs: [a], branch: x}}", valid: false },
];

describe("valibot and the shipped JSON Schema judge documents alike", () => {
  const ajv = new Ajv({ strict: true, allErrors: true });
  const validate = ajv.compile(shipped);
  test.each(cases)("$name", ({ yaml, valid }) => {
    const document: unknown = parse(yaml);
    expect({ valibot: v.is(PolicyFile, document), jsonSchema: validate(document) }).toStrictEqual({
      valibot: valid,
      jsonSchema: valid,
    });
  });
});

describe("the README and docs/policy.md describe the file as it is", () => {
  test("the README shows the example, valid against both schemas, and names the JSON Schema", () => {
    const readme = readRepoFile("README.md");
    expect(readme).toContain(`\`\`\`yaml\n${EXAMPLE_POLICY}\`\`\`\n`);
    expect(readme).toContain(`(${SHIPPED})`);
    const document: unknown = parse(EXAMPLE_POLICY);
    expect([v.is(PolicyFile, document), new Ajv().compile(shipped)(document)]).toStrictEqual([true, true]);
  });

  test("docs/policy.md has a row for every key of the schema, and no other", () => {
    const keys = new Set<string>();
    const walk = (schema: unknown) => {
      const properties = Reflect.get(Object(schema), "properties");
      for (const [key, inner] of Object.entries(Object(properties))) {
        keys.add(key);
        walk(inner);
      }
      const additional = Reflect.get(Object(schema), "additionalProperties");
      if (typeof additional === "object") walk(additional);
    };
    walk(shipped);
    const rows = [...readRepoFile("docs/policy.md").matchAll(/^\| `([\w-]+)` \|/gm)].map((m) => m[1]);
    expect(new Set(rows)).toStrictEqual(keys);
  });
});

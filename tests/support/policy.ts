/**
 * The policy file as the tests use it: the example the README shows, and its JSON Schema for editors
 * (docs/flake-bump.schema.json), generated from the valibot schema flake-bump validates the file with
 * by valibot's own converter. A test keeps the shipped file equal to what this generates.
 *
 * `bun tests/support/policy.ts` rewrites the shipped JSON Schema after a change to the schema.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { toJsonSchema } from "@valibot/to-json-schema";
import { PolicyFile } from "../../lib/policy/schema.ts";
import { ROOT } from "./readme.ts";

/** The README's example: every key, and the fleet the policy issue describes. */
export const EXAMPLE_POLICY = `# every key optional
defaults:
  merge: review          # review | auto | direct
  follow: branch         # branch | none
  schedule: daily        # daily | weekly | monthly: when a scheduled run may move the input
  min-age: 0h            # an automatic run takes only commits at least this old: 36h, 3d
groups:
  nixpkgs:               # inputs in a group share one pull request on <branch-prefix>group/<name>
    inputs: [nixpkgs, nixpkgs-stable, home-manager]
    schedule: weekly
    merge: auto
inputs:
  janus:
    follow: none         # never moved by an automatic run
  hostdash:
    merge: auto
`;

export const SHIPPED_SCHEMA = "docs/flake-bump.schema.json";

export function policyJsonSchema(): Record<string, unknown> {
  // errorMode "throw": a rule the converter cannot express fails here instead of being left out of
  // the JSON Schema silently.
  const generated = toJsonSchema(PolicyFile, { errorMode: "throw" });
  return {
    $schema: generated.$schema,
    title: "flake-bump policy file (.github/flake-bump.yml)",
    description:
      "Which inputs flake-bump moves, when, and how each bump lands. Every key is optional; docs/policy.md describes them.",
    ...generated,
  };
}

if (import.meta.main) {
  const path = join(ROOT, SHIPPED_SCHEMA);
  writeFileSync(path, `${JSON.stringify(policyJsonSchema(), null, 2)}\n`);
  // Biome's layout, so `bun run lint` passes on the file as written.
  Bun.spawnSync([join(ROOT, "node_modules", ".bin", "biome"), "format", "--write", path], {
    stdout: "inherit",
  });
}

/**
 * The shape of lib/: one folder per concern, imports pointing one way between folders, no cycles.
 * A new folder has to be placed here first, which is the point: its place in the order is a decision.
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");

/** What each folder of lib/ may import from, besides itself. Lower layers never import higher ones. */
const MAY_IMPORT: Record<string, readonly string[]> = {
  core: [],
  flake: ["core"],
  github: ["core", "flake"],
  policy: ["core", "flake"],
  bump: ["core", "flake", "github", "policy"],
  impact: ["core", "flake"],
  pr: ["core", "flake", "github", "impact", "policy"],
};

function tsFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = `${dir}/${name}`;
    if (statSync(join(ROOT, path)).isDirectory()) return tsFiles(path);
    return name.endsWith(".ts") ? [path] : [];
  });
}

/** Relative imports of each .ts file under `dir`, resolved to repository paths. */
function importsOf(dir: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const file of tsFiles(dir)) {
    const text = readFileSync(join(ROOT, file), "utf8");
    const targets = [...text.matchAll(/^(?:import|export)[^;]*?from "(\.{1,2}\/[^"]+)"/gms)].map((m) =>
      relative(ROOT, join(ROOT, dirname(file), m[1] ?? "")).replaceAll("\\", "/"),
    );
    out.set(file, targets);
  }
  return out;
}

const folderOf = (file: string): string => file.split("/")[1] ?? "";

test("lib/ holds folders only, each one a known concern", () => {
  const loose = readdirSync(join(ROOT, "lib")).filter(
    (name) => !statSync(join(ROOT, "lib", name)).isDirectory(),
  );
  expect(loose).toStrictEqual([]);
  const unknown = readdirSync(join(ROOT, "lib")).filter((name) => !(name in MAY_IMPORT));
  expect(unknown).toStrictEqual([]);
});

/** Imports that leave their folder for one it may not import from, or leave lib/ altogether. */
function wrongImports(graph: Map<string, string[]>): string[] {
  return [...graph].flatMap(([file, targets]) =>
    targets
      .filter((target) => target !== "package.json")
      .filter((target) => {
        if (!target.startsWith("lib/")) return true;
        const [from, to] = [folderOf(file), folderOf(target)];
        return from !== to && !(MAY_IMPORT[from] ?? []).includes(to);
      })
      .map((target) => `${file} → ${target}`),
  );
}

test("imports point one way: scripts → lib, and between lib's folders only down the order", () => {
  const lib = importsOf("lib");
  expect(lib.size).toBeGreaterThan(20);
  expect(wrongImports(lib)).toStrictEqual([]);
  const sideways = [...importsOf("scripts")].flatMap(([file, targets]) =>
    targets.filter((t) => !t.startsWith("lib/")).map((t) => `${file} → ${t}`),
  );
  expect(sideways).toStrictEqual([]);
});

test("an upward or outward import is caught", () => {
  const graph = new Map([
    ["lib/impact/text.ts", ["lib/pr/text.ts", "lib/core/ids.ts"]],
    ["lib/core/ids.ts", ["tests/support/git.ts"]],
    ["lib/pr/text.ts", ["lib/impact/text.ts", "lib/pr/branch.ts"]],
  ]);
  expect(wrongImports(graph)).toStrictEqual([
    "lib/impact/text.ts → lib/pr/text.ts",
    "lib/core/ids.ts → tests/support/git.ts",
  ]);
});

test("lib has no import cycles", () => {
  const lib = importsOf("lib");
  const cycles: string[] = [];
  const done = new Set<string>();
  const visit = (file: string, path: string[]) => {
    if (path.includes(file)) {
      cycles.push([...path.slice(path.indexOf(file)), file].join(" → "));
      return;
    }
    if (done.has(file)) return;
    for (const next of lib.get(file) ?? []) visit(next, [...path, file]);
    done.add(file);
  };
  for (const file of lib.keys()) visit(file, []);
  expect(cycles).toStrictEqual([]);
});

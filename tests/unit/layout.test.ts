/**
 * The shape of lib/: one folder per concern, imports pointing one way between folders, no cycles.
 * A new folder has to be placed here first, which is the point: its place in the order is a decision.
 * And the shape of the code in lib/ and scripts/: no function longer than a reader can hold at once.
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import ts from "typescript";

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

/** The most lines a function in lib/ or scripts/ may span, its signature and nested functions included. */
const MAX_FUNCTION_LINES = 120;

/**
 * Functions still longer, each with the length it may not grow past. An entry goes once its function
 * is split (the test below says so); none is ever added.
 */
const STILL_LONG: Record<string, number> = {};

/** A function-like node's name as a reader would look it up: `f`, `Class.method`, `const f = () =>`. */
function functionName(node: ts.SignatureDeclaration): string {
  const named = (n: ts.Node | undefined): string | undefined =>
    n !== undefined && (ts.isIdentifier(n) || ts.isStringLiteral(n) || ts.isPrivateIdentifier(n))
      ? n.text
      : undefined;
  const own = named(node.name);
  const parent = node.parent;
  if (ts.isMethodDeclaration(node) || ts.isConstructorDeclaration(node) || ts.isAccessor(node)) {
    const owner = ts.isClassLike(parent) ? named(parent.name) : undefined;
    return `${owner ?? "(class)"}.${own ?? "constructor"}`;
  }
  if (own !== undefined) return own;
  if (
    ts.isVariableDeclaration(parent) ||
    ts.isPropertyAssignment(parent) ||
    ts.isPropertyDeclaration(parent)
  ) {
    return named(parent.name) ?? "(anonymous)";
  }
  return "(anonymous)";
}

/** Every function with a body in `text` that spans more than `max` lines, as `name` → lines. */
function longFunctions(file: string, text: string, max: number): Map<string, number> {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out = new Map<string, number>();
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && "body" in node && node.body !== undefined) {
      const first = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const last = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = last - first + 1;
      if (lines > max) {
        const name = functionName(node);
        out.set(out.has(name) ? `${name}@${first + 1}` : name, lines);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

test("the length check sees functions of every kind, nested ones too", () => {
  const body = (n: number) => Array.from({ length: n }, (_, i) => `  step(${i});`).join("\n");
  const text = [
    `export async function long() {\n${body(5)}\n}`,
    `const arrow = async () => {\n${body(5)}\n};`,
    `class Run {\n  lock() {\n${body(5)}\n  }\n}`,
    `function short() {\n  return 1;\n}`,
    `function outer() {\n  const inner = () => {\n${body(5)}\n  };\n}`,
  ].join("\n");
  expect(Object.fromEntries(longFunctions("x.ts", text, 6))).toStrictEqual({
    long: 7,
    arrow: 7,
    "Run.lock": 7,
    outer: 9,
    inner: 7,
  });
});

test(`no function in lib/ or scripts/ is longer than ${MAX_FUNCTION_LINES} lines`, () => {
  const over: Record<string, number> = {};
  for (const file of [...tsFiles("lib"), ...tsFiles("scripts")]) {
    for (const [name, lines] of longFunctions(
      file,
      readFileSync(join(ROOT, file), "utf8"),
      MAX_FUNCTION_LINES,
    )) {
      over[`${file} ${name}`] = lines;
    }
  }
  const grown = Object.entries(over)
    .filter(([key, lines]) => lines > (STILL_LONG[key] ?? MAX_FUNCTION_LINES))
    .map(([key, lines]) => `${key}: ${lines} lines; split it into named steps`);
  expect(grown).toStrictEqual([]);
  const split = Object.keys(STILL_LONG).filter((key) => !(key in over));
  expect(split.map((key) => `${key} is now short enough: remove it from STILL_LONG`)).toStrictEqual([]);
});

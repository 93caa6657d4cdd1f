/**
 * README.md and docs/ against what they describe: each script's `--help` verbatim, the composite
 * actions' inputs and outputs, the layout of lib/ and scripts/, every FLAKE_BUMP_* variable the code
 * reads, the commands a newcomer types (install, tests), and the links between the pages, so none of
 * them can drift from the code or from each other.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import {
  ACTIONS,
  actionTables,
  documentationPages,
  headingAnchors,
  pageSection,
  ROOT,
  readmeSection,
  readRepoFile,
  relativeLinks,
  withoutCodeBlocks,
} from "../support/readme.ts";
import { collect } from "../support/run.ts";

const readme = readRepoFile("README.md");
const pages = documentationPages();
const everything = pages.map((page) => page.text).join("\n");

/** The rows `| \`DIR/NAME\` | … |` of a page's tables, in order, with the row's other cells. */
function listedRows(text: string, dir: string): { name: string; cells: string[] }[] {
  const row = new RegExp(`^\\| \`${dir}/([\\w.-]+/?)\` \\| (.+) \\|$`, "gm");
  return [...text.matchAll(row)].map((match) => ({
    name: match[1] ?? "",
    cells: (match[2] ?? "").split(" | "),
  }));
}

const sourceFiles = (dir: string): string[] =>
  readdirSync(join(ROOT, dir))
    .filter((name) => name.endsWith(".ts"))
    .sort();

/** lib/'s folders as `name/`, and any source file loose in it as `name.ts`, sorted. */
const libEntries = (): string[] =>
  readdirSync(join(ROOT, "lib"), { withFileTypes: true })
    .flatMap((entry) => {
      if (entry.isDirectory()) return [`${entry.name}/`];
      return entry.name.endsWith(".ts") ? [entry.name] : [];
    })
    .sort();

/** Every source file under a directory, recursively, as paths from the repository's root. */
const sourceTree = (dir: string): string[] =>
  readdirSync(join(ROOT, dir), { recursive: true, encoding: "utf8" })
    .filter((name) => name.endsWith(".ts"))
    .map((name) => join(dir, name))
    .sort();

/** The other lib/ folders a lib/ folder's files import from (`../NAME/…`), as `NAME/`, sorted. */
function importedFolders(folder: string): string[] {
  const names = new Set<string>();
  for (const file of sourceFiles(join("lib", folder))) {
    const text = readRepoFile(join("lib", folder, file));
    for (const match of text.matchAll(/["']\.\.\/([\w-]+)\/[\w.-]+\.ts["']/g)) {
      if (match[1] !== undefined && match[1] !== folder) names.add(`${match[1]}/`);
    }
  }
  return [...names].sort();
}

/** The code spans of a table cell: "`a.ts`, `b.ts`" → [a.ts, b.ts] (sorted); "—" → []. */
const codeSpans = (cell: string): string[] =>
  [...cell.matchAll(/`([^`]+)`/g)].map((match) => match[1] ?? "").sort();

describe("each script's --help appears in the documentation verbatim", () => {
  // A home directory that cannot be anyone's, shown as `~` as a reader's shell would: the report's
  // default path is the only machine-specific part of the usage text.
  const home = "/nonexistent/flake-bump-readme-home";
  test.each(sourceFiles("scripts"))("scripts/%s", async (script) => {
    const proc = Bun.spawn([process.execPath, join(ROOT, "scripts", script), "--help"], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? "", HOME: home },
      stdout: "pipe",
      stderr: "pipe",
    });
    const { stdout, stderr, exitCode } = await collect(proc);
    expect({ exitCode, stderr }).toStrictEqual({ exitCode: 0, stderr: "" });
    expect(stdout).toStartWith(`Usage: bun scripts/${script}`);
    const help = stdout.replaceAll(home, "~");
    const shown = pages.flatMap((page) =>
      [...page.text.matchAll(/^```text\n(Usage: bun scripts\/([\w-]+\.ts)[\s\S]*?)^```$/gm)]
        .filter((match) => match[2] === script)
        .map((match) => ({ page: page.path, text: match[1] ?? "" })),
    );
    if (shown.length === 0) {
      throw new Error(
        `no page shows the --help of scripts/${script}; paste this as a \`\`\`text block into docs/local-use.md:\n${help}`,
      );
    }
    for (const copy of shown) {
      if (copy.text !== help) {
        throw new Error(
          `${copy.page} shows an old --help of scripts/${script}; replace its \`\`\`text block with:\n${help}`,
        );
      }
    }
  });
});

describe("the action tables are the actions' own inputs and outputs", () => {
  const adopt = readmeSection(readme, "Adopt flake-bump");
  test.each([...ACTIONS])(".github/actions/%s/action.yml", (name) => {
    const tables = actionTables(name);
    if (!adopt.includes(tables)) {
      throw new Error(
        `README.md's tables for the ${name} action differ from its action.yml; regenerate them with 'bun tests/support/readme.ts':\n${tables}`,
      );
    }
  });
});

describe("the layout tables match the source tree", () => {
  const layout = pageSection(readRepoFile("docs/development.md"), "Layout of `lib/`", "docs/development.md");
  const rows = listedRows(layout, "lib");

  test("lib/: one row per folder, and no source file outside the folders", () => {
    expect(rows.map((row) => row.name).sort()).toStrictEqual(libEntries());
    expect(libEntries().filter((entry) => !entry.endsWith("/"))).toStrictEqual([]);
  });

  test.each(rows.map((row, index) => [row.name, row.cells, index] as const))(
    "lib/%s: its files, the folders it imports from, each listed before it",
    (name, cells, index) => {
      const folder = name.slice(0, -1);
      const [, files = "", imports = ""] = cells;
      expect({ files: codeSpans(files), imports: codeSpans(imports) }).toStrictEqual({
        files: sourceFiles(join("lib", folder)),
        imports: importedFolders(folder),
      });
      const earlier = rows.slice(0, index).map((row) => row.name);
      expect(codeSpans(imports).filter((imported) => !earlier.includes(imported))).toStrictEqual([]);
    },
  );

  test("scripts/: the README's scripts table lists every script", () => {
    expect(
      listedRows(readmeSection(readme, "Use it locally"), "scripts").map((row) => row.name),
    ).toStrictEqual(sourceFiles("scripts"));
  });
});

test("every FLAKE_BUMP_* variable the code reads is documented", () => {
  const names = new Set<string>();
  for (const file of [...sourceTree("lib"), ...sourceTree("scripts")]) {
    for (const match of readRepoFile(file).matchAll(/\bFLAKE_BUMP_[A-Z][A-Z0-9_]*/g)) {
      names.add(match[0]);
    }
  }
  expect(names.size).toBeGreaterThan(10);
  expect([...names].filter((name) => !everything.includes(`\`${name}`)).sort()).toStrictEqual([]);
});

describe("the links between the pages lead somewhere", () => {
  const links = pages.flatMap((page) =>
    relativeLinks(page.text).map((target) => ({ page: page.path, target })),
  );

  test("the pages link to each other, and every docs/ page is linked from the README", () => {
    expect(links.length).toBeGreaterThan(10);
    const fromReadme = new Set(
      links.filter((link) => link.page === "README.md").map((link) => link.target.split("#")[0]),
    );
    const unlinked = pages
      .map((page) => page.path)
      .filter((path) => path !== "README.md" && !fromReadme.has(path));
    expect(unlinked).toStrictEqual([]);
  });

  test.each(links.map((link) => [link.page, link.target] as const))("%s → %s", (page, target) => {
    const [file = "", anchor] = target.split("#");
    const path = file === "" ? page : normalize(join(dirname(page), file));
    expect({ path, exists: existsSync(join(ROOT, path)) }).toStrictEqual({ path, exists: true });
    if (anchor !== undefined) {
      expect(path).toEndWith(".md");
      expect(headingAnchors(readRepoFile(path))).toContain(anchor);
    }
  });
});

// .github/workflows/ is left out: the adoption guide names files of the user's repositories there.
test("every repository path the pages name in code exists", () => {
  const named = pages.flatMap((page) =>
    [
      ...withoutCodeBlocks(page.text).matchAll(
        /`((?:lib|scripts|tests|bench|docs|\.github\/actions|\.ci)\/[\w./-]*)`/g,
      ),
    ].map((match) => `${page.path}: ${match[1] ?? ""}`),
  );
  expect(named.length).toBeGreaterThan(20);
  expect(
    named.filter((entry) => !existsSync(join(ROOT, entry.slice(entry.indexOf(": ") + 2)))),
  ).toStrictEqual([]);
});

describe("the commands a newcomer types are the ones CI runs", () => {
  const ciRun = readRepoFile(".ci/run");
  const packageJson: unknown = JSON.parse(readRepoFile("package.json"));
  const scripts = Reflect.get(Object(packageJson), "scripts");

  test("the install block is .ci/run's install, with the same Bun", () => {
    const bun = /npm install -g (bun@\d+\.\d+\.\d+)/.exec(ciRun)?.[1];
    expect(bun).toBeDefined();
    const install = /```sh\n([\s\S]*?)```/.exec(readmeSection(readme, "Use it locally"))?.[1] ?? "";
    for (const command of [
      `npm install -g ${bun}`,
      "apt-get install -y nix-bin",
      "bun install --frozen-lockfile",
      "bash tests/support/setup-nix-2.26.sh",
      "bash tests/support/setup-nix-2.34.sh",
    ]) {
      expect(ciRun).toContain(command.replace(" -y ", " -y -qq "));
      expect(install).toContain(command);
    }
  });

  test("the README's test command is the one .ci/run runs", () => {
    expect(ciRun).toMatch(/^bun run test 2>&1/m);
    expect(readmeSection(readme, "Development")).toContain("```sh\nbun run test\n```");
  });

  test("every `bun run X` in the README and docs/ is a package.json script", () => {
    const named = [...everything.matchAll(/\bbun run ([\w:-]+)/g)].map((match) => match[1] ?? "");
    expect(named.length).toBeGreaterThan(3);
    expect(named.filter((name) => !Object.hasOwn(Object(scripts), name))).toStrictEqual([]);
  });
});

/**
 * README.md against what it describes: each script's `--help` verbatim, the composite actions'
 * inputs and outputs, the layout of lib/ and scripts/, every FLAKE_BUMP_* variable the code reads,
 * and the commands a newcomer types (install, tests), so none of them can drift from the code.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { ACTIONS, actionTables, ROOT, readmeSection, readRepoFile } from "../support/readme.ts";
import { collect } from "../support/run.ts";

const readme = readRepoFile("README.md");

/** The rows `| \`DIR/NAME\` | … |` of the README's tables, in order. */
function listedFiles(text: string, dir: string): string[] {
  const row = new RegExp(`^\\| \`${dir}/([\\w.-]+)\` \\| (.+) \\|$`, "gm");
  return [...text.matchAll(row)].map((match) => match[1] ?? "");
}

const sourceFiles = (dir: string): string[] =>
  readdirSync(join(ROOT, dir))
    .filter((name) => name.endsWith(".ts"))
    .sort();

/** Every .ts file under `dir`, folders included, as paths relative to it. */
const sourceTree = (dir: string): string[] =>
  readdirSync(join(ROOT, dir), { recursive: true, encoding: "utf8" })
    .filter((name) => name.endsWith(".ts"))
    .map((name) => name.replaceAll("\\", "/"))
    .sort();

/** The layout table's rows: each folder of lib/ with the files it lists. */
function listedFolders(text: string): Record<string, string[]> {
  const row = /^\| `lib\/([\w-]+)\/` \| .+ \| (.+) \|$/gm;
  return Object.fromEntries(
    [...text.matchAll(row)].map((m) => [
      m[1] ?? "",
      [...(m[2] ?? "").matchAll(/`([\w.-]+)`/g)].map((f) => f[1] ?? ""),
    ]),
  );
}

describe("each script's --help appears in the README verbatim", () => {
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
    if (!readme.includes(`\`\`\`text\n${help}\`\`\`\n`)) {
      throw new Error(
        `README.md does not show the --help of scripts/${script} verbatim; paste this as a \`\`\`text block:\n${help}`,
      );
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

describe("the layout tables list exactly the source files", () => {
  const development = readmeSection(readme, "Development");
  test("lib/: one row per folder, each naming every file in it", () => {
    const folders = readdirSync(join(ROOT, "lib")).sort();
    const actual = Object.fromEntries(folders.map((folder) => [folder, sourceFiles(join("lib", folder))]));
    expect(listedFolders(development)).toStrictEqual(actual);
  });
  test("scripts/: the scripts table lists every script", () => {
    expect(listedFiles(readmeSection(readme, "Use it locally"), "scripts")).toStrictEqual(
      sourceFiles("scripts"),
    );
  });
});

test("every FLAKE_BUMP_* variable the code reads is documented", () => {
  const names = new Set<string>();
  for (const dir of ["lib", "scripts"]) {
    for (const file of sourceTree(dir)) {
      for (const match of readRepoFile(join(dir, file)).matchAll(/\bFLAKE_BUMP_[A-Z][A-Z0-9_]*/g)) {
        names.add(match[0]);
      }
    }
  }
  expect(names.size).toBeGreaterThan(10);
  expect([...names].filter((name) => !readme.includes(`\`${name}`)).sort()).toStrictEqual([]);
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
    ]) {
      expect(ciRun).toContain(command.replace(" -y ", " -y -qq "));
      expect(install).toContain(command);
    }
  });

  test("the README's test command is the one .ci/run runs", () => {
    expect(ciRun).toMatch(/^bun run test 2>&1/m);
    expect(readmeSection(readme, "Development")).toContain("```sh\nbun run test\n```");
  });

  test("every `bun run X` in the README is a package.json script", () => {
    const named = [...readme.matchAll(/\bbun run ([\w:-]+)/g)].map((match) => match[1] ?? "");
    expect(named.length).toBeGreaterThan(3);
    expect(named.filter((name) => !Object.hasOwn(Object(scripts), name))).toStrictEqual([]);
  });
});

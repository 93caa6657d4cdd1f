/**
 * The workflows and composite actions under `.github/`: the hardening rules hold on every file, each
 * rule trips on its deliberately bad fixture (tests/fixtures/workflows/), actionlint passes, and the
 * two files users copy stay short and shaped as the README promises.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { parse } from "yaml";
import { readmeSection } from "./support/readme.ts";
import { actionAsWorkflow, lintWithActionlint, loadActionlint } from "./workflows/actionlint.ts";
import { lintFiles, yamlFilesUnder } from "./workflows/lint.ts";
import { checkFile, type Finding, RULES, type RuleId } from "./workflows/rules.ts";
import { userCopy } from "./workflows/user-copy.ts";

const ROOT = resolve(import.meta.dir, "..");
const FIXTURES = join(import.meta.dir, "fixtures", "workflows");
const read = (path: string): string => readFileSync(resolve(ROOT, path), "utf8");

/** The value at `path` in parsed YAML (undefined when absent), so tests need no `any`. */
function at(value: unknown, ...path: Array<string | number>): unknown {
  let current = value;
  for (const key of path) {
    if (typeof current !== "object" || current === null) return undefined;
    current = Reflect.get(current, key);
  }
  return current;
}

const isString = (value: unknown): value is string => typeof value === "string";

const keys = (value: unknown): string[] =>
  typeof value === "object" && value !== null ? Object.keys(value) : [];

/** Lines that are neither blank nor only a comment: what the "≤ 15 / ≤ 30 lines" promises count. */
export function significantLines(text: string): number {
  return text.split("\n").filter((line) => !/^\s*(#.*)?$/.test(line)).length;
}

function isRuleId(name: string): name is RuleId {
  return Object.hasOwn(RULES, name);
}

/** `<rule>[--variant].yml` or `<rule>[--variant]/action.yml` → [path, rule]. */
function fixtures(): Array<{ path: string; rule: RuleId }> {
  const out: Array<{ path: string; rule: RuleId }> = [];
  for (const entry of readdirSync(FIXTURES, { withFileTypes: true })) {
    const stem = entry.name.replace(/\.ya?ml$/, "");
    if (!entry.isDirectory() && stem === entry.name) continue;
    const rule = stem.split("--")[0] ?? "";
    if (!isRuleId(rule)) throw new Error(`fixture ${entry.name} does not name a rule of rules.ts`);
    out.push({
      path: entry.isDirectory() ? join(FIXTURES, entry.name, "action.yml") : join(FIXTURES, entry.name),
      rule,
    });
  }
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

describe("every file under .github/", () => {
  const files = readdirSync(resolve(ROOT, ".github"), { recursive: true, encoding: "utf8" })
    .filter((path) => /\.ya?ml$/.test(path))
    .map((path) => join(".github", path))
    .sort();

  test("the files users adopt and the project's CI exist", () => {
    expect(files).toStrictEqual([
      ".github/actions/notify/action.yml",
      ".github/actions/update/action.yml",
      ".github/workflows/ci.yml",
      ".github/workflows/notify-example.yml",
      ".github/workflows/update.yml",
    ]);
  });

  test.each(files)("%s follows every hardening rule", (file) => {
    expect(checkFile(file, read(file))).toStrictEqual([]);
  });

  test("actionlint and the rules pass on all of .github/, and `bun run lint` looks nowhere else", async () => {
    const targets = await yamlFilesUnder(".github");
    expect(targets).toStrictEqual(files);
    expect(await lintFiles(targets)).toStrictEqual([]);
  });
});

describe("each rule fails on its deliberately bad fixture, and only that rule", () => {
  const cases = fixtures();

  test("every rule has a fixture", () => {
    const covered = [...new Set(cases.map((c): string => c.rule))].sort();
    expect(covered).toStrictEqual(Object.keys(RULES).sort());
  });

  test("no fixture is among the files GitHub and the linter read, so neither ever runs them", async () => {
    const live = new Set((await yamlFilesUnder(".github")).map((file) => read(file)));
    expect(live.size).toBeGreaterThan(0);
    expect(cases.filter((c) => live.has(readFileSync(c.path, "utf8"))).map((c) => c.path)).toStrictEqual([]);
    expect(cases.filter((c) => relative(ROOT, c.path).startsWith(".github"))).toStrictEqual([]);
  });

  test.each(cases.map((c) => [c.path.slice(FIXTURES.length + 1), c.rule, c.path] as const))(
    "%s → %s",
    (_name, rule, path) => {
      const findings = checkFile(path, readFileSync(path, "utf8"));
      expect(findings.length).toBeGreaterThan(0);
      expect([...new Set(findings.map((f) => f.rule))]).toStrictEqual([rule]);
    },
  );
});

describe("rule details", () => {
  interface Case {
    name: string;
    /** A job's steps (workflow) — wrapped in an otherwise clean workflow. */
    steps: string;
    want: Array<Pick<Finding, "rule">>;
  }
  const workflow = (steps: string): string =>
    `on: push\npermissions: {}\njobs:\n  j:\n    runs-on: ubuntu-latest\n    timeout-minutes: 5\n    steps:\n${steps}`;
  const cases: Case[] = [
    {
      name: "runner-owned paths may appear in a script",
      steps: '      - run: ls "${{ runner.temp }}" "${{ github.workspace }}"\n',
      want: [],
    },
    {
      name: "but not wrapped in a function",
      steps: "      - run: ls ${{ format('{0}', runner.temp) }}\n",
      want: [{ rule: "expression-in-run" }],
    },
    {
      name: "inputs in a script",
      steps: "      - run: echo ${{ inputs.rev }}\n",
      want: [{ rule: "expression-in-run" }],
    },
    {
      name: "env in a script",
      steps: "      - run: echo ${{ env.REV }}\n",
      want: [{ rule: "expression-in-run" }],
    },
    {
      name: "the ref name in a script",
      steps: "      - run: echo ${{ github.head_ref }}\n",
      want: [{ rule: "expression-in-run" }],
    },
    {
      name: "an expression in a custom shell",
      steps: "      - run: echo\n        shell: ${{ inputs.shell }} {0}\n",
      want: [{ rule: "expression-in-run" }],
    },
    {
      name: "event data through env: is the right way",
      steps:
        '      - env:\n          SHA: ${{ github.event.client_payload.sha }}\n        run: echo "$SHA"\n',
      want: [],
    },
    {
      name: "github-script's script is code too",
      steps:
        "      - uses: actions/github-script@f28e40c7f34bde8b3046d885e986cb6290c5673b # v7.1.0\n        with:\n          script: console.log('${{ github.event.issue.title }}')\n",
      want: [{ rule: "expression-in-run" }],
    },
    { name: "local actions need no pin", steps: "      - uses: ./.github/actions/update\n", want: [] },
    {
      name: "a branch is not a pin",
      steps: "      - uses: cachix/install-nix-action@master\n",
      want: [{ rule: "unpinned-uses" }],
    },
    {
      name: "a short SHA is not a pin",
      steps: "      - uses: cachix/install-nix-action@13d8dd5 # v31.11.1\n",
      want: [{ rule: "unpinned-uses" }],
    },
    {
      name: "a major-only comment does not say which release",
      steps: "      - uses: cachix/install-nix-action@13d8dd58da0234aa297dedd986986ccb8e7f3e24 # v31\n",
      want: [{ rule: "unpinned-uses" }],
    },
    {
      name: "an image needs a digest",
      steps: "      - uses: docker://alpine:3\n",
      want: [{ rule: "unpinned-uses" }],
    },
    {
      name: "persist-credentials as a string counts",
      steps:
        "      - uses: actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8 # v5.0.0\n        with:\n          persist-credentials: 'false'\n",
      want: [],
    },
    {
      name: "a token variable the script never expands is fine",
      steps:
        "      - env:\n          GH_TOKEN: ${{ secrets.T }}\n        run: bun scripts/notify.ts --repo a/b\n",
      want: [],
    },
    {
      name: "a look-alike name is not the token",
      steps: '      - env:\n          GH_TOKEN: ${{ secrets.T }}\n        run: echo "$GH_TOKEN_HELP"\n',
      want: [],
    },
  ];
  test.each(cases)("$name", ({ steps, want }) => {
    expect(checkFile("wf.yml", workflow(steps)).map(({ rule }) => ({ rule }))).toStrictEqual(want);
  });

  test("a '# why' on the next line is not on the permission's line", () => {
    const text =
      "on: push\npermissions: {}\njobs:\n  j:\n    runs-on: ubuntu-latest\n    timeout-minutes: 5\n    permissions:\n      contents: read\n      # needed to check out\n    steps:\n      - run: echo\n";
    expect(checkFile("wf.yml", text)).toStrictEqual([
      {
        rule: "permissions-job",
        line: 8,
        message: "job 'j' grants 'contents: read' without a '# why' comment on that line",
      },
    ]);
  });

  test("`on:` as a list is read too", () => {
    const text = "on: [push, pull_request_target]\npermissions: {}\njobs: {}\n";
    expect(checkFile("wf.yml", text).map((f) => f.rule)).toStrictEqual(["forbidden-trigger"]);
  });

  test("a job that calls a reusable workflow may not inherit every secret", () => {
    const text =
      "on: push\npermissions: {}\njobs:\n  j:\n    uses: ./.github/workflows/x.yml\n    secrets: inherit\n";
    expect(checkFile("wf.yml", text).map((f) => f.rule)).toStrictEqual(["secret-scope"]);
  });
});

describe("actionlint", () => {
  test("checks a composite action as a workflow and reports on the action's own lines", async () => {
    const run = await loadActionlint();
    const action = read(".github/actions/update/action.yml");
    const broken = action.replace("steps.open-pr.outputs.operation }}", "steps.open_pr.outputs.operation }}");
    expect(broken).not.toBe(action);
    const problems = lintWithActionlint(run, ".github/actions/update/action.yml", broken);
    const line = broken.split("\n").findIndex((l) => l.includes("steps.open_pr.outputs.operation")) + 1;
    expect(problems.map((p) => [p.line, p.kind])).toStrictEqual([[line, "expression"]]);
    expect(problems[0]?.message).toContain('property "open_pr" is not defined');
  });

  test("an undeclared input in an action's step is caught on its line", async () => {
    const run = await loadActionlint();
    const action = read(".github/actions/notify/action.yml");
    const broken = action.replace("${{ inputs.event-type }}", "${{ inputs.event_type }}");
    const line = broken.split("\n").findIndex((l) => l.includes("inputs.event_type")) + 1;
    const problems = lintWithActionlint(run, ".github/actions/notify/action.yml", broken);
    expect(problems.map((p) => p.line)).toStrictEqual([line]);
  });

  test("the synthetic workflow keeps every step line", () => {
    const action = read(".github/actions/update/action.yml");
    const synthetic = actionAsWorkflow(action);
    if (typeof synthetic === "string") throw new Error(synthetic);
    for (const [index, line] of synthetic.text.split("\n").entries()) {
      const origin = synthetic.lineMap[index];
      if (origin === undefined || origin.line === 1 || !line.trim()) continue;
      if (line.includes("run:") || line.includes("uses:")) {
        expect(line.slice(origin.shift)).toBe(action.split("\n")[origin.line - 1] ?? "");
      }
    }
  });
});

describe("the files users copy", () => {
  const update: unknown = parse(read(".github/workflows/update.yml"));
  const notify: unknown = parse(read(".github/workflows/notify-example.yml"));

  test("update.yml fits in 30 lines and notify-example.yml in 15 (not counting blanks and comments)", () => {
    expect(significantLines(read(".github/workflows/update.yml"))).toBeLessThanOrEqual(30);
    expect(significantLines(read(".github/workflows/notify-example.yml"))).toBeLessThanOrEqual(15);
  });

  test("update.yml runs on a dispatch, on the button (inputs, rev) and nightly", () => {
    expect(at(update, "on", "repository_dispatch")).toStrictEqual({ types: ["flake-input-updated"] });
    expect(keys(at(update, "on", "workflow_dispatch", "inputs"))).toStrictEqual(["inputs", "rev"]);
    expect(at(update, "on", "schedule")).toHaveLength(1);
    expect(at(update, "on", "schedule", 0, "cron")).toMatch(/^\d+ \d+ \* \* \*$/);
    expect(keys(at(update, "on")).sort()).toStrictEqual([
      "repository_dispatch",
      "schedule",
      "workflow_dispatch",
    ]);
  });

  test("update.yml serialises runs per input, from the dispatch payload or the button", () => {
    const group = String(at(update, "concurrency", "group"));
    expect(group).toContain("github.event.client_payload.input");
    expect(group).toContain("inputs.inputs");
    expect(at(update, "concurrency", "cancel-in-progress") ?? false).toBe(false);
  });

  test("update.yml's job may write contents and pull requests, nothing else", () => {
    expect(at(update, "jobs", "update", "permissions")).toStrictEqual({
      contents: "write",
      "pull-requests": "write",
    });
  });

  test("notify-example.yml runs on a push to the default branch with no GITHUB_TOKEN permissions", () => {
    expect(at(notify, "on")).toStrictEqual({ push: { branches: ["main"] } });
    expect(at(notify, "permissions")).toStrictEqual({});
    expect(at(notify, "jobs", "notify", "permissions")).toBeUndefined();
  });

  test("every $GITHUB_ACTION_PATH path in the actions' steps names a file of flake-bump's own checkout", () => {
    for (const name of ["update", "notify"]) {
      const actionPath = join(ROOT, ".github", "actions", name);
      const steps = at(parse(read(join(".github/actions", name, "action.yml"))), "runs", "steps");
      const runs = (Array.isArray(steps) ? steps : []).map((step) => at(step, "run")).filter(isString);
      const paths = runs.flatMap((run) =>
        [...run.matchAll(/"\$GITHUB_ACTION_PATH\/([^"]*)"/g)].map((m) => resolve(actionPath, m[1] ?? "")),
      );
      // The dependencies' install, and one script per other step.
      expect(paths.length).toBe(runs.length);
      for (const path of paths) {
        const target = path.endsWith(".ts") ? path : join(path, "bun.lock");
        expect([relative(ROOT, target), existsSync(target)]).toStrictEqual([relative(ROOT, target), true]);
        expect(relative(ROOT, target).startsWith("..")).toBe(false);
      }
    }
  });

  test("each step of the actions runs one line that starts a script or the install", () => {
    for (const name of ["update", "notify"]) {
      const steps = at(parse(read(join(".github/actions", name, "action.yml"))), "runs", "steps");
      for (const run of (Array.isArray(steps) ? steps : []).map((step) => at(step, "run")).filter(isString)) {
        expect(run.trim().split("\n")).toHaveLength(1);
        expect(run).toMatch(
          /^bun (--no-install "\$GITHUB_ACTION_PATH\/\.\.\/\.\.\/\.\.\/scripts\/[a-z-]+\.ts"( --check| --plan| --step (open|land))?|install --cwd "\$GITHUB_ACTION_PATH\/\.\.\/\.\.\/\.\." --frozen-lockfile --production)\s*$/,
        );
      }
    }
  });
});

describe("the README's adoption guide", () => {
  const readme = read("README.md");
  const section = readmeSection(readme, "Adopt flake-bump");
  const yamlBlocks = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((match) => match[1] ?? "");

  test("shows exactly the user's copies of update.yml and notify-example.yml", () => {
    expect(yamlBlocks).toContain(userCopy(read(".github/workflows/update.yml"), { dropCheckout: false }));
    expect(yamlBlocks).toContain(
      userCopy(read(".github/workflows/notify-example.yml"), { dropCheckout: true }),
    );
  });

  test("the copies keep their promises: ≤ 30 and ≤ 15 lines, and every rule", () => {
    const update = userCopy(read(".github/workflows/update.yml"), { dropCheckout: false });
    const notify = userCopy(read(".github/workflows/notify-example.yml"), { dropCheckout: true });
    expect(significantLines(update)).toBeLessThanOrEqual(30);
    expect(significantLines(notify)).toBeLessThanOrEqual(15);
    // The copies name a placeholder SHA; with a real one they pass every rule.
    const pinned = (text: string) => text.replaceAll("@SHA # vX.Y.Z", `@${"a".repeat(40)} # v1.0.0`);
    expect(checkFile("update.yml", pinned(update))).toStrictEqual([]);
    expect(checkFile("notify.yml", pinned(notify))).toStrictEqual([]);
  });

  test("has the section open-pr.ts points to about the default GITHUB_TOKEN", () => {
    expect(readme).toContain("\n### Which token opens the pull request\n");
    expect(read("scripts/open-pr.ts")).toContain("README section 'Which token opens the pull request'");
  });

  test("the App variant's step is pinned too", () => {
    const app = yamlBlocks.find((block) => block.includes("create-github-app-token"));
    const workflow = `on: push\npermissions: {}\njobs:\n  j:\n    runs-on: ubuntu-latest\n    timeout-minutes: 5\n    steps:\n${app ?? ""}`;
    expect(
      checkFile("app.yml", workflow.replaceAll("@SHA # vX.Y.Z", `@${"a".repeat(40)} # v1.0.0`)),
    ).toStrictEqual([]);
  });
});

test("the actions, CI and .ci/run run the same Bun", () => {
  const ciRun = /bun@(\d+\.\d+\.\d+)/.exec(read(".ci/run"))?.[1];
  expect(ciRun).toBeDefined();
  for (const action of ["update", "notify"]) {
    const inputs = at(parse(read(`.github/actions/${action}/action.yml`)), "inputs");
    expect(at(inputs, "bun-version", "default")).toBe(ciRun);
  }
  const steps = at(parse(read(".github/workflows/ci.yml")), "jobs", "test", "steps");
  const setupBun = (Array.isArray(steps) ? steps : []).find((step: unknown) =>
    String(at(step, "uses")).startsWith("oven-sh/setup-bun@"),
  );
  expect(at(setupBun, "with", "bun-version")).toBe(ciRun);
});

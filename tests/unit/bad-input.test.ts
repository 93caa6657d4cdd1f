/**
 * Every bad-input case (tests/support/bad-input-cases.ts) as its own test, through each script's
 * `main(argv, env)` in this process, ended the way runMain ends a run. The fake GitHub is this file's
 * own (REST only); the downstream lock is written as Nix writes it, and PATH holds no Nix, so a case
 * that wrongly got as far as Nix fails rather than runs it. `-t` picks out one case.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { bump } from "../../lib/bump/bump.ts";
import { serializeReport } from "../../lib/flake/report.ts";
import { main as bumpMain } from "../../scripts/bump.ts";
import { main as notifyMain } from "../../scripts/notify.ts";
import { main as openPrMain } from "../../scripts/open-pr.ts";
import { type FakeGitHub, localFakeGitHub } from "../fake-github/index.ts";
import { scratchRoot } from "../fake-github/tmp.ts";
import {
  type Case,
  cases,
  changes,
  DOWNSTREAM_NIX,
  type Outcome,
  problems,
  type Runner,
  runCase,
  snapshot,
  summaryLine,
  tally,
  UP,
  upstreamFiles,
  type World,
} from "../support/bad-input-cases.ts";
import { gitRepo } from "../support/git.ts";
import { runInProcess } from "../support/in-process.ts";
import { narHashOf, nixJson, nixStandIn } from "../support/nix-stand-in.ts";

const mains = { bump: bumpMain, notify: notifyMain, "open-pr": openPrMain } as const;
const inProcess: Runner = (script, args, opts) => runInProcess(mains[script], args, opts);

/** flake.lock for DOWNSTREAM_NIX with acme/nixfleet at `rev`, as `nix flake lock` writes it. */
function downstreamLock(rev: string): string {
  const source = { host: "localhost", owner: UP.owner, repo: UP.repo, type: "github" };
  return nixJson({
    nodes: {
      nixfleet: {
        locked: { ...source, lastModified: 1790000000, narHash: narHashOf(rev), rev },
        original: source,
      },
      root: { inputs: { nixfleet: "nixfleet" } },
    },
    root: "root",
    version: 7,
  });
}

let fake: FakeGitHub;
let scratch: string;
let w: World;
const outcomes = new Map<Case, Outcome>();

beforeAll(async () => {
  fake = await localFakeGitHub();
  scratch = await mkdtemp(join(scratchRoot(), "flake-bump-unit-bad-input-"));
  await fake.createRepo(UP.owner, UP.repo, { files: upstreamFiles(0) });
  await fake.createRepo("acme", "other", { files: { "flake.nix": "{ outputs = _: { }; }\n" } });
  const foreignSha = await fake.push("acme", "other", { "README.md": "other\n" }, "other's own commit");
  const revs = [(await fake.branchSha(UP.owner, UP.repo, "main")) ?? ""];
  for (let i = 1; i <= 2; i++) revs.push(await fake.push(UP.owner, UP.repo, upstreamFiles(i), `change ${i}`));
  const lockText = downstreamLock(revs[0] ?? "");
  const template = await gitRepo({ files: { "flake.nix": DOWNSTREAM_NIX, "flake.lock": lockText } });
  // Every case copies and hashes the checkout twice: git's sample hooks are half its files, unused.
  await rm(join(template.dir, ".git", "hooks"), { recursive: true, force: true });

  // The report bump() writes for the same flake outside any git repository: open-pr must refuse it.
  const nonGit = join(scratch, "not-a-git-repo");
  await mkdir(nonGit);
  await writeFile(join(nonGit, "flake.nix"), DOWNSTREAM_NIX);
  await writeFile(join(nonGit, "flake.lock"), lockText);
  const to = revs[1] ?? "";
  const nix = nixStandIn({
    commits: { [to]: { rev: to, lastModified: 1790000100, narHash: narHashOf(to) } },
  });
  const report = await bump(
    { flakeDir: nonGit, inputs: ["nixfleet"], rev: to, dryRun: false },
    { nix: async () => nix },
  );

  // An empty PATH: no case may reach Nix (or any other program found on PATH through the env given).
  const noPrograms = join(scratch, "empty-path");
  await mkdir(noPrograms);
  w = {
    revs,
    foreignSha,
    template,
    lockText,
    nonGitReport: serializeReport(report),
    env: {
      PATH: noPrograms,
      HOME: scratch,
      GITHUB_API_URL: fake.apiUrl,
      GH_TOKEN: fake.token,
      FLAKE_BUMP_WAIT_SCALE: "0",
    },
  };
}, 30_000);

afterAll(async () => {
  if (outcomes.size > 0) console.log(summaryLine("in process", tally(outcomes)));
  await w?.template[Symbol.asyncDispose]();
  if (scratch) await rm(scratch, { recursive: true, force: true });
  await fake?.stop();
});

test("the sandbox check can fail: a changed, an added and a removed file are all noticed", async () => {
  const dir = join(scratch, "snapshot-check");
  await mkdir(dir);
  await writeFile(join(dir, "kept"), "same");
  await writeFile(join(dir, "edited"), "before");
  await writeFile(join(dir, "gone"), "x");
  const before = await snapshot(dir);
  await writeFile(join(dir, "edited"), "after");
  await rm(join(dir, "gone"));
  await mkdir(join(dir, "new-dir"));
  await writeFile(join(dir, "new-dir", "report.json.123.tmp"), "");
  expect(changes(before, await snapshot(dir))).toStrictEqual([
    "added new-dir",
    "added new-dir/report.json.123.tmp",
    "changed edited",
    "removed gone",
  ]);
});

test("the non-git report has no repository path (what open-pr must refuse)", () => {
  expect(w.nonGitReport).toContain(`"rev": "${w.revs[1]}"`);
  expect(w.nonGitReport).not.toContain("repoRoot");
});

describe("bad input: exit code, one error line naming problem and fix, nothing changed", () => {
  test("the table has at least 40 cases and unique names", () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  test.each(cases)("$script: $name", async (c) => {
    const outcome = await runCase(c, cases.indexOf(c), scratch, w, inProcess);
    outcomes.set(c, outcome);
    expect(problems(c, outcome)).toStrictEqual([]);
  });

  // GitHub's 4xx answers are final (lib/github/client.ts's doNotRetry): asking again only costs requests.
  test("a repository that does not exist is asked about once", () => {
    const asked = fake.requests.filter((request) => request.path.startsWith("/repos/acme/missing/"));
    expect(asked.map((request) => `${request.method} ${request.path} ${request.status}`)).toStrictEqual([
      "GET /repos/acme/missing/pulls 404",
    ]);
  });

  test("closing count: every case rejected cleanly, none crashed, none changed a file", () => {
    const t = tally(outcomes);
    expect(t).toStrictEqual({ tried: cases.length, clean: cases.length, crashed: 0, changed: 0 });
    fake.assertNoViolations();
  });
});

/**
 * No way to GitHub: a GITHUB_API_URL whose name does not resolve, or whose port refuses. The scripts
 * run as child processes on a real checkout of the production fleet's flake (its real lock), as a
 * workflow or a user would run them; each must stop with one sentence naming the host and the cause
 * instead of retrying on GitHub's schedule and then guessing. That the client asks an unreachable
 * host exactly twice is tests/unit/github-pacing.test.ts's, with its recording clock.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Report, serializeReport } from "../lib/flake/report.ts";
import { localFakeGitHub } from "./fake-github/index.ts";
import { realLockPath } from "./support/fixtures.ts";
import { type GitRepo, gitRepo } from "./support/git.ts";
import { UNRESOLVABLE } from "./support/net.ts";
import { cleanEnv, type RunResult, runScript } from "./support/run.ts";

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

let fleet: GitRepo;
let scratch: string;
let refusingUrl: string;
let lockText: string;

beforeAll(async () => {
  lockText = await readFile(realLockPath("nixcfg-2026-08-22.flake.lock"), "utf8");
  fleet = await gitRepo({
    files: {
      "flake.nix": await readFile(realLockPath("nixcfg-2026-08-22.flake.nix"), "utf8"),
      "flake.lock": lockText,
    },
  });
  scratch = await mkdtemp(join(tmpdir(), "flake-bump-network-"));
  // A port that was just listening and now refuses.
  const gone = await localFakeGitHub();
  refusingUrl = gone.apiUrl;
  await gone.stop();
});
afterAll(async () => {
  await fleet?.[Symbol.asyncDispose]();
  await rm(scratch, { recursive: true, force: true });
});

/** What a user's shell would have: a token, the API root, and no Nix needed for these steps. */
const envFor = (apiUrl: string) =>
  cleanEnv({
    GITHUB_API_URL: apiUrl,
    GH_TOKEN: "ghp_000000000000000000000000000000000000",
    XDG_STATE_HOME: join(scratch, "state"),
  });

/** A report bump.ts would have written in the checkout: nixpkgs moved, at the checkout's HEAD. */
async function reportFile(): Promise<string> {
  const [commit, tree] = (await fleet.git("rev-parse", "HEAD", "HEAD^{tree}")).split("\n");
  const from = "61b7c44c4073f0b827768aff0049561b5110ea5a";
  const to = "1f0c2a8b3d4e5f60718293a4b5c6d7e8f9012345";
  const moved = lockText.replace(from, to);
  const report: Report = {
    schema: 1,
    changed: true,
    dryRun: false,
    requested: { inputs: ["nixpkgs"] },
    flake: {
      dir: fleet.dir,
      repoRoot: fleet.dir,
      lockPath: "flake.lock",
      head: { commit: commit ?? "", tree: tree ?? "", branch: "main" },
    },
    inputs: [
      {
        name: "nixpkgs",
        from: { ref: `github:nixos/nixpkgs/${from}`, rev: from },
        to: { ref: `github:nixos/nixpkgs/${to}`, rev: to },
        github: { owner: "nixos", repo: "nixpkgs" },
        transitive: { added: [], removed: [], changed: [] },
        lock: { text: moved, sha256: sha256(moved) },
      },
    ],
    skipped: [],
    lock: { text: moved, sha256: sha256(moved) },
    nix: { version: "2.26.3", invocations: 1 },
  };
  const file = join(scratch, "report.json");
  await writeFile(file, serializeReport(report));
  return file;
}

/** Exit 1, nothing on stdout, and exactly one error line (no stack) matching `pattern`. */
function expectOneError(result: RunResult, pattern: RegExp): void {
  const errors = result.stderr.split("\n").filter((line) => line.startsWith("error:"));
  expect({ exitCode: result.exitCode, stdout: result.stdout, errors: errors.length }).toStrictEqual({
    exitCode: 1,
    stdout: "",
    errors: 1,
  });
  expect(errors[0]).toMatch(pattern);
  expect(result.stderr).not.toContain("GitHub may be having trouble");
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

const hosts = [
  {
    name: "a GITHUB_API_URL whose name does not resolve",
    url: () => `https://${UNRESOLVABLE}`,
    cause: () =>
      `cannot resolve ${UNRESOLVABLE.replaceAll(".", "\\.")} \\(DNS lookup failed: (ENOTFOUND|EAI_AGAIN)\\)`,
  },
  {
    name: "a GITHUB_API_URL whose port refuses",
    url: () => refusingUrl,
    cause: () =>
      `${new URL(refusingUrl).host.replaceAll(".", "\\.")} refused the connection \\(ECONNREFUSED\\)`,
  },
];

describe.each(hosts)("$name", (h) => {
  test("bump.ts --check exits 1 naming the host and the cause, and says nothing is outdated", async () => {
    const result = await runScript("bump", ["--check"], { cwd: fleet.dir, env: envFor(h.url()) });
    expectOneError(
      result,
      new RegExp(
        `^error: no source answered, so --check cannot tell which inputs are behind: could not ask GitHub for the heads of \\d+ input\\(s\\): ${h.cause()} \\(POST /graphql\\); check the network or GITHUB_API_URL$`,
      ),
    );
    expect(result.stderr).not.toContain("asking REST");
  });

  test("bump.ts --rev on a GitHub input stops before locking an unverified commit", async () => {
    const rev = "1f0c2a8b3d4e5f60718293a4b5c6d7e8f9012345";
    const result = await runScript("bump", ["nixpkgs", "--rev", rev, "--report", join(scratch, "rev.json")], {
      cwd: fleet.dir,
      env: envFor(h.url()),
    });
    expectOneError(
      result,
      new RegExp(
        `^error: could not verify commit 1f0c2a8b3d4e against nixos/nixpkgs: ${h.cause()} \\(GET /repos/nixos/nixpkgs/compare/\\S+\\); check the network or GITHUB_API_URL, or pass --no-verify to lock it without checking that it is on the tracked branch$`,
      ),
    );
    expect(await readFile(join(fleet.dir, "flake.lock"), "utf8")).toBe(lockText);
  });

  test("bump.ts --rev --no-verify skips that check: what stops it is the native engine's own request", async () => {
    const rev = "1f0c2a8b3d4e5f60718293a4b5c6d7e8f9012345";
    // --engine native: the only way on is through GITHUB_API_URL, never to a real GitHub.
    const args = [
      "nixpkgs",
      "--rev",
      rev,
      "--no-verify",
      "--engine",
      "native",
      "--report",
      join(scratch, "nv.json"),
    ];
    const result = await runScript("bump", args, { cwd: fleet.dir, env: envFor(h.url()) });
    expect(result.stderr).toContain(
      "note: --no-verify: 1f0c2a8b3d4e is locked without checking that it is on the tracked branch\n",
    );
    expectOneError(
      result,
      new RegExp(
        `^error: could not compare 61b7c44c4073\\.\\.\\.1f0c2a8b3d4e of nixos/nixpkgs: ${h.cause()} `,
      ),
    );
    expect(await readFile(join(fleet.dir, "flake.lock"), "utf8")).toBe(lockText);
  });

  test("open-pr.ts --dry-run exits 1 naming the host and the cause", async () => {
    const result = await runScript(
      "open-pr",
      ["--report", await reportFile(), "--repo", "acme/fleet", "--dry-run"],
      { cwd: fleet.dir, env: envFor(h.url()) },
    );
    expectOneError(
      result,
      new RegExp(
        `^error: could not .*: ${h.cause()} \\(GET /repos/acme/fleet.*\\); check the network or GITHUB_API_URL$`,
      ),
    );
  });
});

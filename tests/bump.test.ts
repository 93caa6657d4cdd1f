/**
 * bump.ts end to end: the real script, real Nix (each version under test), real git repositories.
 * The downstream flake consumes an upstream by `git+file://`, plus one input pinned to a tag and one
 * that only follows another.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { $ } from "zx";
import { parseLock } from "../lib/flake/lock.ts";
import { parseReport, type Report } from "../lib/flake/report.ts";
import { type GitRepo, gitRepo } from "./support/git.ts";
import { nixTestEnv, nixVariants } from "./support/nix.ts";
import { cleanEnv, type RunResult, runScript } from "./support/run.ts";

const NIX_TIMEOUT = 120_000;

function upstreamFlake(n: number): Record<string, string> {
  return {
    "flake.nix": `{\n  description = "upstream";\n  outputs = _: { value = ${n}; };\n}\n`,
  };
}

function downstreamFlake(up: GitRepo, tagged: GitRepo): string {
  return `{
  inputs.up.url = "${up.url}";
  inputs.tagged.url = "${tagged.url}?ref=refs/tags/v1.0.0";
  inputs.alias.follows = "up";
  outputs = _: { };
}
`;
}

interface World {
  up: GitRepo;
  tagged: GitRepo;
  down: GitRepo;
  upRevs: string[];
  env: Record<string, string | undefined>;
  nixEnv: AsyncDisposable;
  reportFile: string;
  lockText: () => Promise<string>;
  bump: (...args: string[]) => Promise<RunResult>;
  report: () => Promise<Report>;
  lockedRev: (input: string) => Promise<string | undefined>;
}

/** One error line on stderr (no stack trace), naming the problem. */
function expectOneLineError(result: RunResult, code: number, pattern: RegExp): void {
  expect(result.exitCode).toBe(code);
  const errors = result.stderr.split("\n").filter((line) => line.startsWith("error:"));
  expect(errors).toHaveLength(1);
  expect(errors[0]).toMatch(pattern);
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

for (const variant of nixVariants()) {
  describe(`bump.ts with Nix ${variant.version}`, () => {
    let w: World;
    let scratch: string;

    beforeAll(async () => {
      scratch = await mkdtemp(join(tmpdir(), "flake-bump-bump-"));
      const nixEnv = nixTestEnv({});
      const env = cleanEnv({ ...nixEnv, ...variant.env });
      const up = await gitRepo({ files: upstreamFlake(0) });
      const upRevs = [await up.head()];
      const tagged = await gitRepo({ files: upstreamFlake(100) });
      await tagged.git("tag", "v1.0.0");
      await tagged.commit(upstreamFlake(101), "after the tag");
      const down = await gitRepo({ files: { "flake.nix": "" } });
      await writeFile(join(down.dir, "flake.nix"), downstreamFlake(up, tagged));
      await down.git("add", "flake.nix");
      await $({
        cwd: down.dir,
        env,
        quiet: true,
      })`nix --extra-experimental-features ${"nix-command flakes"} flake lock`;
      await down.commit({}, "lock");
      for (let i = 1; i <= 3; i++) upRevs.push(await up.commit(upstreamFlake(i), `upstream change ${i}`));
      const reportFile = join(scratch, "report.json");
      w = {
        up,
        tagged,
        down,
        upRevs,
        env,
        nixEnv,
        reportFile,
        lockText: () => readFile(join(down.dir, "flake.lock"), "utf8"),
        bump: (...args) => runScript("bump", ["--report", reportFile, ...args], { cwd: down.dir, env }),
        report: async () => parseReport(await readFile(reportFile, "utf8"), reportFile),
        lockedRev: async (input) => {
          const lock = parseLock(await readFile(join(down.dir, "flake.lock"), "utf8"));
          const key = lock.nodes[lock.root]?.inputs?.[input];
          return typeof key === "string" ? lock.nodes[key]?.locked?.rev : undefined;
        },
      };
    }, NIX_TIMEOUT);

    afterAll(async () => {
      await w.up[Symbol.asyncDispose]();
      await w.tagged[Symbol.asyncDispose]();
      await w.down[Symbol.asyncDispose]();
      await w.nixEnv[Symbol.asyncDispose]();
      await rm(scratch, { recursive: true, force: true });
    });

    /** Put the downstream lock back to its committed state between tests. */
    async function resetLock(): Promise<string> {
      await w.down.git("checkout", "--", "flake.lock");
      return w.lockText();
    }

    test(
      "--dry-run computes the update and leaves flake.lock byte-identical",
      async () => {
        const before = await resetLock();
        const result = await w.bump("up", "--dry-run");
        expect(result.exitCode).toBe(0);
        expect(await w.lockText()).toBe(before);
        expect(result.stderr).toContain("• Updated input 'up':");
        expect(result.stderr).toContain("Dry run: flake.lock is untouched.");
        const report = await w.report();
        expect(report).toMatchObject({ changed: true, dryRun: true });
        expect(report.inputs[0]?.to.rev).toBe(w.upRevs[3]);
      },
      NIX_TIMEOUT,
    );

    test(
      "an update moves exactly the named input to the newest upstream commit",
      async () => {
        await resetLock();
        const taggedBefore = await w.lockedRev("tagged");
        const result = await w.bump("up");
        expect(result.exitCode).toBe(0);
        expect(await w.lockedRev("up")).toBe(w.upRevs[3]);
        expect(await w.lockedRev("tagged")).toBe(taggedBefore);
        const report = await w.report();
        expect(report.changed).toBe(true);
        expect(report.inputs.map((input) => input.name)).toStrictEqual(["up"]);
        expect(report.inputs[0]?.from?.rev).toBe(w.upRevs[0]);
        expect(report.inputs[0]?.to.ref).toContain(`rev=${w.upRevs[3]}`);
        expect(report.lock?.text).toBe(await w.lockText());
        expect(report.flake.lockPath).toBe("flake.lock");
        expect(result.stderr).toMatch(
          /• Updated input 'up': {2}'git\+file:.*' \(\d{4}-\d\d-\d\d\) → '.*' \(\d{4}-\d\d-\d\d\)/,
        );
      },
      NIX_TIMEOUT,
    );

    test(
      "--rev locks exactly that commit, keeping the input's reference in `original`",
      async () => {
        const before = parseLock(await resetLock());
        const middle = w.upRevs[2] ?? "";
        const result = await w.bump("up", "--rev", middle);
        expect(result.exitCode).toBe(0);
        expect(await w.lockedRev("up")).toBe(middle);
        const after = parseLock(await w.lockText());
        expect(after.nodes.up?.original).toStrictEqual(before.nodes.up?.original);
        expect(after.nodes.up?.locked?.ref).toBe(before.nodes.up?.locked?.ref);
      },
      NIX_TIMEOUT,
    );

    test(
      "--rev of the commit already locked changes nothing and says so",
      async () => {
        const before = await resetLock();
        const result = await w.bump("up", "--rev", w.upRevs[0] ?? "");
        expect(result.exitCode).toBe(0);
        expect(await w.lockText()).toBe(before);
        expect(result.stderr).toContain("already locked to");
        expect((await w.report()).changed).toBe(false);
      },
      NIX_TIMEOUT,
    );

    test(
      "--json prints the report and nothing else on stdout",
      async () => {
        await resetLock();
        const result = await w.bump("up", "--json", "--dry-run");
        expect(result.exitCode).toBe(0);
        const report = parseReport(result.stdout, "stdout");
        expect(report.inputs[0]?.name).toBe("up");
        expect(result.stdout).not.toContain("Updated input");
      },
      NIX_TIMEOUT,
    );

    test(
      "with no input named, tracked inputs move and the tag-pinned one is left alone",
      async () => {
        await resetLock();
        const taggedBefore = await w.lockedRev("tagged");
        const result = await w.bump();
        expect(result.exitCode).toBe(0);
        expect(await w.lockedRev("up")).toBe(w.upRevs[3]);
        expect(await w.lockedRev("tagged")).toBe(taggedBefore);
        const report = await w.report();
        expect(report.skipped).toContainEqual(expect.objectContaining({ name: "tagged", reason: "pinned" }));
        expect(result.stderr).toContain("'tagged' is pinned to tag v1.0.0");
      },
      NIX_TIMEOUT,
    );

    test(
      "a nightly run with everything current invokes no update and leaves the lock alone",
      async () => {
        await resetLock();
        expect((await w.bump("up")).exitCode).toBe(0);
        const current = await w.lockText();
        const again = await w.bump("up");
        expect(again.exitCode).toBe(0);
        expect(await w.lockText()).toBe(current);
        expect(again.stderr).toContain("'up' is already up to date");
        const report = await w.report();
        expect(report.changed).toBe(false);
        // Decided by asking the source (git ls-remote), so Nix never started.
        expect(report.nix.invocations).toBe(0);
      },
      NIX_TIMEOUT,
    );

    test(
      "--check names the inputs that are behind, without Nix and without touching the lock",
      async () => {
        const before = await resetLock();
        // A PATH with git (for ls-remote) and nothing else: were Nix needed, it would not be found.
        const onlyGit = join(scratch, "only-git");
        await mkdir(onlyGit, { recursive: true });
        await symlink((await $`command -v git`).stdout.trim(), join(onlyGit, "git")).catch(() => {});
        const result = await runScript("bump", ["--check"], {
          cwd: w.down.dir,
          env: { ...w.env, PATH: onlyGit },
        });
        expect(result.exitCode).toBe(0);
        expect(result.stdout).toBe("outdated=up\nneeds-nix=true\n");
        expect(result.stderr).toContain("'tagged' is pinned to tag v1.0.0");
        expect(await w.lockText()).toBe(before);
        expect((await w.bump("up")).exitCode).toBe(0);
        const after = await runScript("bump", ["--check", "--json"], { cwd: w.down.dir, env: w.env });
        expect(JSON.parse(after.stdout).outdated).toStrictEqual([]);
      },
      NIX_TIMEOUT,
    );

    test(
      "a repository_dispatch event file chooses the input and the exact rev",
      async () => {
        await resetLock();
        const eventFile = join(scratch, "dispatch.json");
        const sha = w.upRevs[1] ?? "";
        await writeFile(
          eventFile,
          JSON.stringify({ action: "flake-input-updated", client_payload: { input: "up", sha } }),
        );
        const outputFile = join(scratch, "output.txt");
        const summaryFile = join(scratch, "summary.md");
        await writeFile(outputFile, "");
        const result = await runScript("bump", ["--report", w.reportFile], {
          cwd: w.down.dir,
          env: {
            ...w.env,
            GITHUB_ACTIONS: "true",
            GITHUB_EVENT_NAME: "repository_dispatch",
            GITHUB_EVENT_PATH: eventFile,
            GITHUB_OUTPUT: outputFile,
            GITHUB_STEP_SUMMARY: summaryFile,
          },
        });
        expect(result.exitCode).toBe(0);
        expect(await w.lockedRev("up")).toBe(sha);
        const outputs = await readFile(outputFile, "utf8");
        expect(outputs).toMatch(/^changed<<(\S+)\ntrue\n\1$/m);
        expect(outputs).toMatch(/^inputs<<(\S+)\nup\n\1$/m);
        expect(await readFile(summaryFile, "utf8")).toContain("| `up` |");
      },
      NIX_TIMEOUT,
    );

    describe("bad input: right exit code, one-line error, flake.lock untouched", () => {
      interface BadCase {
        name: string;
        args: () => string[];
        env?: () => Promise<Record<string, string>>;
        code: number;
        error: RegExp;
        prepare?: () => Promise<void>;
      }
      const zeros = "0".repeat(40);
      const cases: BadCase[] = [
        {
          name: "unknown input",
          args: () => ["nope"],
          code: 2,
          error: /'nope' is not a direct input .*found: alias, tagged, up/,
        },
        {
          name: "follows-only input",
          args: () => ["alias"],
          code: 2,
          error: /'alias' only follows 'up'.*bump 'up' instead/,
        },
        {
          name: "short SHA",
          args: () => ["up", "--rev", "abc1234"],
          code: 2,
          error: /--rev: must be a full commit SHA/,
        },
        {
          name: "uppercase SHA",
          args: () => ["up", "--rev", "A".repeat(40)],
          code: 2,
          error: /--rev: must be a full commit SHA/,
        },
        {
          name: "--rev with two inputs",
          args: () => ["up", "tagged", "--rev", zeros],
          code: 2,
          error: /exactly one input/,
        },
        { name: "--rev with no input", args: () => ["--rev", zeros], code: 2, error: /exactly one input/ },
        {
          name: "input with shell characters",
          args: () => ["up;id"],
          code: 2,
          error: /INPUT: must be a flake input name/,
        },
        {
          name: "unknown flag",
          args: () => ["--frobnicate"],
          code: 2,
          error: /Unknown option '--frobnicate'/,
        },
        {
          name: "malformed dispatch payload",
          args: () => [],
          env: async () => {
            const file = join(scratch, "bad-event.json");
            await writeFile(file, JSON.stringify({ client_payload: { input: "up", sha: "HEAD~1" } }));
            return { GITHUB_EVENT_NAME: "repository_dispatch", GITHUB_EVENT_PATH: file };
          },
          code: 2,
          error: /client_payload is malformed .*40 lowercase hex/,
        },
        {
          name: "missing event file",
          args: () => [],
          env: async () => ({
            GITHUB_EVENT_NAME: "repository_dispatch",
            GITHUB_EVENT_PATH: join(scratch, "absent.json"),
          }),
          code: 2,
          error: /event file .* is missing or not JSON/,
        },
        {
          name: "a rev that does not exist upstream",
          args: () => ["up", "--rev", zeros],
          code: 1,
          error: /Nix failed to lock 'up' at 0{40}; check that the commit exists upstream/,
        },
        {
          name: "corrupt flake.lock",
          args: () => ["up"],
          prepare: async () => {
            const text = await w.lockText();
            await writeFile(join(w.down.dir, "flake.lock"), text.slice(0, text.length / 2));
          },
          code: 2,
          error: /flake\.lock is not valid JSON.*restore it from git/,
        },
      ];
      test.each(cases)(
        "$name",
        async ({ args, env, code, error, prepare }) => {
          await resetLock();
          await prepare?.();
          const before = await w.lockText();
          const extra = env ? await env() : {};
          const result = await runScript("bump", ["--report", w.reportFile, ...args()], {
            cwd: w.down.dir,
            env: { ...w.env, ...extra },
          });
          expectOneLineError(result, code, error);
          expect(await w.lockText()).toBe(before);
        },
        NIX_TIMEOUT,
      );

      test(
        "missing flake.lock",
        async () => {
          await resetLock();
          await rm(join(w.down.dir, "flake.lock"));
          const result = await w.bump("up");
          expectOneLineError(
            result,
            2,
            /there is no flake\.lock in .*; create it with `[^`]+`, commit it, then retry$/,
          );
          // The hinted command works on a stock Nix, which enables neither nix-command nor flakes.
          const hint = /`([^`]+)`/.exec(result.stderr)?.[1] ?? "";
          const stock = (w.env.NIX_CONFIG ?? "")
            .split("\n")
            .filter((line) => !line.startsWith("experimental-features"))
            .join("\n");
          const ran = await $({
            cwd: w.down.dir,
            env: { ...w.env, NIX_CONFIG: stock },
            nothrow: true,
            quiet: true,
          })`sh -c ${hint}`;
          expect({ exitCode: ran.exitCode, stderr: ran.stderr }).toStrictEqual({
            exitCode: 0,
            stderr: expect.any(String),
          });
          expect(parseLock(await w.lockText()).nodes.up?.locked?.rev).toBeDefined();
          await w.down.git("checkout", "--", "flake.lock");
        },
        NIX_TIMEOUT,
      );

      test("a directory without flake.nix", async () => {
        const result = await runScript("bump", ["--report", w.reportFile, "--flake", scratch], {
          cwd: scratch,
          env: w.env,
        });
        expectOneLineError(result, 2, /there is no flake\.nix in .*pass --flake DIR/);
      });
    });

    test(
      'a registry input (`inputs.fleet.url = "fleet"`) updates and pins through the user\'s registry',
      async () => {
        await using up = await gitRepo({ files: upstreamFlake(0) });
        await using down = await gitRepo({ files: { "flake.nix": 'inputs.fleet.url = "fleet";' } });
        const registry = join(scratch, "registry.json");
        await writeFile(
          registry,
          JSON.stringify({
            version: 2,
            flakes: [
              { from: { type: "indirect", id: "fleet" }, to: { type: "git", url: `file://${up.dir}` } },
            ],
          }),
        );
        // The user's own setting, after the test defaults: later lines win in NIX_CONFIG.
        const env = { ...w.env, NIX_CONFIG: `${w.env.NIX_CONFIG}\nflake-registry = ${registry}` };
        await writeFile(join(down.dir, "flake.nix"), '{ inputs.fleet.url = "fleet"; outputs = _: { }; }\n');
        await $({
          cwd: down.dir,
          env,
          quiet: true,
        })`nix --extra-experimental-features ${"nix-command flakes"} flake lock`;
        const first = await up.commit(upstreamFlake(1), "one");
        const second = await up.commit(upstreamFlake(2), "two");
        const report = join(scratch, "registry-report.json");
        const latest = await runScript("bump", ["fleet", "--report", report], { cwd: down.dir, env });
        expect(latest.exitCode).toBe(0);
        const lockRev = async () =>
          parseLock(await readFile(join(down.dir, "flake.lock"), "utf8")).nodes.fleet?.locked?.rev;
        expect(await lockRev()).toBe(second);
        const pinned = await runScript("bump", ["fleet", "--rev", first, "--report", report], {
          cwd: down.dir,
          env,
        });
        expect(pinned.exitCode).toBe(0);
        expect(await lockRev()).toBe(first);
        const lock = parseLock(await readFile(join(down.dir, "flake.lock"), "utf8"));
        expect(lock.nodes.fleet?.original).toStrictEqual({ id: "fleet", type: "indirect" });
      },
      NIX_TIMEOUT,
    );

    test(
      "several inputs moving in one run each get a lock with only their own move",
      async () => {
        await using a = await gitRepo({ files: upstreamFlake(0) });
        await using b = await gitRepo({ files: upstreamFlake(0) });
        await using down = await gitRepo({ files: { "flake.nix": "" } });
        await writeFile(
          join(down.dir, "flake.nix"),
          `{ inputs.a.url = "${a.url}"; inputs.b.url = "${b.url}"; outputs = _: { }; }\n`,
        );
        await down.git("add", "flake.nix");
        await $({
          cwd: down.dir,
          env: w.env,
          quiet: true,
        })`nix --extra-experimental-features ${"nix-command flakes"} flake lock`;
        const before = parseLock(await readFile(join(down.dir, "flake.lock"), "utf8"));
        const aNew = await a.commit(upstreamFlake(1), "a moves");
        const bNew = await b.commit(upstreamFlake(1), "b moves");
        const file = join(scratch, "multi.json");
        const result = await runScript("bump", ["--report", file], { cwd: down.dir, env: w.env });
        expect(result.exitCode).toBe(0);
        expect(result.stderr).toContain("• Updated input 'a':");
        expect(result.stderr).toContain("• Updated input 'b':");
        const report = parseReport(await readFile(file, "utf8"), file);
        expect(report.inputs.map((i) => i.name)).toStrictEqual(["a", "b"]);
        const revsIn = (text: string | undefined) => {
          const lock = parseLock(text ?? "");
          return [lock.nodes.a?.locked?.rev, lock.nodes.b?.locked?.rev];
        };
        expect(revsIn(report.inputs[0]?.lock.text)).toStrictEqual([aNew, before.nodes.b?.locked?.rev]);
        expect(revsIn(report.inputs[1]?.lock.text)).toStrictEqual([before.nodes.a?.locked?.rev, bNew]);
        expect(revsIn(report.lock?.text)).toStrictEqual([aNew, bNew]);
        expect(revsIn(await readFile(join(down.dir, "flake.lock"), "utf8"))).toStrictEqual([aNew, bNew]);
      },
      NIX_TIMEOUT,
    );

    test(
      "two checkouts of one repository bumping at once keep their own reports; open-pr.ts refuses the other's",
      async () => {
        await resetLock();
        // A linked worktree: the case where one shared report path (or git's common dir) would collide.
        const second = join(scratch, "second-checkout");
        await w.down.git("worktree", "add", "--detach", second);
        try {
          const bumpIn = (cwd: string, rev: string) =>
            runScript("bump", ["up", "--rev", rev], { cwd, env: w.env });
          const [first, other] = await Promise.all([
            bumpIn(w.down.dir, w.upRevs[1] ?? ""),
            bumpIn(second, w.upRevs[2] ?? ""),
          ]);
          expect([first.exitCode, other.exitCode]).toStrictEqual([0, 0]);
          const reportOf = async (checkout: string) => {
            const gitDir = await $({ cwd: checkout, quiet: true })`git rev-parse --absolute-git-dir`;
            const file = join(gitDir.stdout.trim(), "flake-bump", "report.json");
            return { file, report: parseReport(await readFile(file, "utf8"), file) };
          };
          const mine = await reportOf(w.down.dir);
          const theirs = await reportOf(second);
          expect(mine.file).not.toBe(theirs.file);
          expect([mine.report.flake.repoRoot, mine.report.requested.rev]).toStrictEqual([
            w.down.dir,
            w.upRevs[1],
          ]);
          expect([theirs.report.flake.repoRoot, theirs.report.requested.rev]).toStrictEqual([
            second,
            w.upRevs[2],
          ]);
          // Each checkout's open-pr.ts finds its own report; handed the other's, it refuses, naming both.
          const openPr = (cwd: string, report: string) =>
            runScript("open-pr", ["--report", report, "--repo", "acme/down", "--dry-run"], {
              cwd,
              env: w.env,
            });
          const refused = await openPr(w.down.dir, theirs.file);
          expectOneLineError(
            refused,
            2,
            new RegExp(
              `was made for the checkout ${second}, not this one \\(${w.down.dir}\\); run open-pr\\.ts in ${second}, or run bump\\.ts here first$`,
            ),
          );
        } finally {
          await w.down.git("worktree", "remove", "--force", second);
          await w.down.git("checkout", "--", "flake.lock");
        }
      },
      NIX_TIMEOUT,
    );
  });
}

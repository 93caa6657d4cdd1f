/**
 * impact.ts end to end: the real script and lib on real Nix (each version under test) and real git
 * repositories. Hosts are plain derivations whose builder is /bin/false, so any build would fail
 * loudly; their names carry the version of an upstream input, so a bump moves a package.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, constants, openSync, writeSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as v from "valibot";
import { $ } from "zx";
import { lockArgs, parseNixVersion } from "../lib/flake/nix.ts";
import { createOctokit } from "../lib/github/client.ts";
import {
  computeImpact,
  evaluateHosts,
  flakeCopy,
  type Impact,
  type InputImpact,
} from "../lib/impact/evaluate.ts";
import { SECTION_START } from "../lib/impact/text.ts";
import { writeImpactSections } from "../lib/pr/impact.ts";
import { renderMarker } from "../lib/pr/text.ts";
import { FakeGitHub } from "./fake-github/index.ts";
import { type GitRepo, gitRepo } from "./support/git.ts";
import { nixTestEnv, nixVariants } from "./support/nix.ts";
import { cleanEnv, collect, type RunResult, runScript, startScript } from "./support/run.ts";

const Drvs = v.record(
  v.string(),
  v.object({
    outputs: v.record(v.string(), v.object({ path: v.optional(v.string()) })),
    env: v.record(v.string(), v.string()),
  }),
);
// Nix ≥ 2.33 wraps the map in `{ version, derivations }` and gives a fixed output no `path` (its env
// still names it); from 2.32 on, paths are base names.
const Wrapped = v.object({ derivations: Drvs });

/** Every output path `nix derivation show` names, as a full store path. */
function shownOutputPaths(json: unknown): string[] {
  const drvs = v.is(Drvs, json) ? json : v.parse(Wrapped, json).derivations;
  return Object.values(drvs)
    .flatMap((drv) => Object.entries(drv.outputs).map(([name, o]) => o.path ?? drv.env[name] ?? ""))
    .map((path) => (path.startsWith("/") ? path : `/nix/store/${path}`));
}

const NIX_TIMEOUT = 180_000;

function upstream(lib: string): Record<string, string> {
  return { "flake.nix": `{ outputs = _: { lib = ${lib}; }; }\n` };
}
const V1 = upstream(`{ version = "1.0"; feature = "1"; legacy = true; }`);
const V2 = upstream(`{ version = "2.0"; feature = "1"; canary = true; }`);
// Drops `feature`, which only the laptop's home configuration reads.
const V3 = upstream(`{ version = "3.0"; }`);

/** `salt` makes every derivation this run's own, so no other run's store already holds it. */
function fleet(tool: GitRepo, salt: string): string {
  return `{
  inputs.tool.url = "${tool.url}";
  outputs = { self, tool }:
    let
      mk = name: deps: derivation { inherit name deps; salt = "${salt}"; system = "x86_64-linux"; builder = "/bin/false"; };
      src = derivation {
        name = "tool-src.tar.gz"; system = "x86_64-linux"; builder = "/bin/false";
        outputHashMode = "flat"; outputHashAlgo = "sha256";
        outputHash = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
      };
      libfoo = mk "libfoo-2.1" [ ];
      toolPkg = mk "tool-\${tool.lib.version}" [ libfoo src ];
      host = name: pkgs: { config.system.build.toplevel = mk "nixos-system-\${name}" pkgs; };
    in {
      nixosConfigurations = {
        web = host "web" [ toolPkg ];
        db = host "db" [ (mk "postgresql-16.1" [ ]) ];
        # Import from derivation: evaluating it would need a build, which impact must refuse.
        ifd = host "ifd" [ (import (mk "ifd-expr" [ ])) ];
      }
      // (if tool.lib ? legacy then { legacy = host "legacy" [ libfoo ]; } else { })
      // (if tool.lib ? canary then { canary = host "canary" [ toolPkg ]; } else { });
      homeConfigurations."me@laptop".activationPackage =
        mk "home-manager-generation" [ toolPkg (mk "feature-\${tool.lib.feature}" [ ]) ];
    };
}
`;
}

function hostsOf(impact: Impact): Record<string, unknown> {
  const input = impact.inputs[0] ?? expect.unreachable();
  return Object.fromEntries(input.hosts.map((h) => [h.attr, h.status]));
}

for (const variant of nixVariants()) {
  describe(`impact with Nix ${variant.version}`, () => {
    let tool: GitRepo;
    let down: GitRepo;
    let revs: string[];
    let env: Record<string, string | undefined>;
    let nixEnv: AsyncDisposable;
    const version = parseNixVersion(`nix ${variant.version}`) ?? expect.unreachable();

    /** Lock `tool` at `rev` in the working tree (HEAD keeps the lock at V1). */
    async function pin(rev: string): Promise<string> {
      const plan = { kind: "pin", input: "tool", ref: `${tool.url}?rev=${rev}`, rev } as const;
      await $({ cwd: down.dir, env, quiet: true })`nix ${lockArgs(version, plan, down.dir)}`;
      return readFile(join(down.dir, "flake.lock"), "utf8");
    }

    function impact(...args: string[]): Promise<RunResult> {
      return runScript("impact", args, { cwd: down.dir, env });
    }

    beforeAll(async () => {
      const nix = nixTestEnv();
      nixEnv = nix;
      env = cleanEnv({ ...nix, ...variant.env });
      tool = await gitRepo({ files: V1 });
      revs = [await tool.head(), await tool.commit(V2, "v2"), await tool.commit(V3, "v3")];
      down = await gitRepo({ files: { "flake.nix": fleet(tool, crypto.randomUUID()) } });
      await pin(revs[0] ?? "");
      await down.commit({}, "lock tool at v1");
    }, NIX_TIMEOUT);

    afterAll(async () => {
      await down?.[Symbol.asyncDispose]();
      await tool?.[Symbol.asyncDispose]();
      await nixEnv?.[Symbol.asyncDispose]();
    });

    test(
      "interrupted while a host evaluates: its nix eval is stopped too, nothing is written, exit 143",
      async () => {
        // The host's evaluation reads a FIFO, so it blocks until this test writes to it.
        await using slow = await gitRepo({ files: { "flake.nix": "{ outputs = _: { }; }\n" } });
        const fifo = join(slow.dir, "..", `${crypto.randomUUID()}.fifo`);
        await $({ quiet: true })`mkfifo ${fifo}`;
        const flake = `{
  inputs.tool.url = "${tool.url}";
  outputs = { self, tool }: {
    nixosConfigurations.slow.config.system.build.toplevel = builtins.seq (builtins.readFile "${fifo}")
      (derivation { name = "slow-\${tool.lib.version}"; system = "x86_64-linux"; builder = "/bin/false"; });
  };
}
`;
        await Bun.write(join(slow.dir, "flake.nix"), flake);
        const lockAt = async (rev: string) => {
          const plan = { kind: "pin", input: "tool", ref: `${tool.url}?rev=${rev}`, rev } as const;
          await $({ cwd: slow.dir, env, quiet: true })`nix ${lockArgs(version, plan, slow.dir)}`;
        };
        await lockAt(revs[0] ?? "");
        await slow.commit({}, "lock tool at v1");
        await lockAt(revs[1] ?? "");
        const proc = startScript("impact", ["--json"], { cwd: slow.dir, env });
        // A writer can open the FIFO only once a reader has: then nix eval is blocked in readFile.
        let writer: number | undefined;
        for (const deadline = Date.now() + 60_000; writer === undefined && Date.now() < deadline; ) {
          try {
            writer = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
          } catch {
            await Bun.sleep(50);
          }
        }
        expect(writer).toBeDefined();
        proc.kill("SIGTERM");
        const result = await collect(proc);
        expect(result.exitCode).toBe(143);
        expect(result.stdout).toBe("");
        // No reader left: the interrupted nix eval went with impact.ts.
        expect(() => writeSync(writer ?? -1, "x")).toThrow(/EPIPE/);
        closeSync(writer ?? -1);
      },
      NIX_TIMEOUT,
    );

    test(
      "a bump: one host changed with its version change, others unchanged, added, removed, unevaluable",
      async () => {
        const lockBefore = await readFile(join(down.dir, "flake.lock"), "utf8");
        await pin(revs[1] ?? "");
        const lockAfter = await readFile(join(down.dir, "flake.lock"), "utf8");
        const result = await impact("--json");
        expect(result.stderr).toContain("nixosConfigurations.web: changed: tool 1.0 → 2.0");
        expect(result.exitCode).toBe(0);
        const out: Impact = JSON.parse(result.stdout);
        expect(hostsOf(out)).toStrictEqual({
          'homeConfigurations."me@laptop"': "changed",
          "nixosConfigurations.canary": "added",
          "nixosConfigurations.db": "unchanged",
          "nixosConfigurations.ifd": "unevaluable",
          "nixosConfigurations.legacy": "removed",
          "nixosConfigurations.web": "changed",
        });
        const input = out.inputs[0] ?? expect.unreachable();
        expect(input).toMatchObject({ name: "tool", rev: revs[1] });
        const web = input.hosts.find((h) => h.attr === "nixosConfigurations.web");
        // libfoo did not move; the fetched tarball is noise; the host's own derivation has no version.
        expect(web?.packages).toStrictEqual({
          changed: [{ name: "tool", from: "1.0", to: "2.0" }],
          added: [],
          removed: [],
        });
        expect(web?.drvPath?.from).toMatch(/^\/nix\/store\/\w{32}-nixos-system-web\.drv$/);
        expect(web?.drvPath?.to).not.toBe(web?.drvPath?.from);
        // The checkout is as it was: the lock is still the bumped one, HEAD's untouched.
        expect(await readFile(join(down.dir, "flake.lock"), "utf8")).toBe(lockAfter);
        expect(await down.git("show", "HEAD:flake.lock")).toBe(lockBefore.trimEnd());

        // --only narrows to one host, still one answer for it.
        const only = await impact("--json", "--only", 'homeConfigurations."me@laptop"');
        expect(only.exitCode).toBe(0);
        expect(hostsOf(JSON.parse(only.stdout))).toStrictEqual({
          'homeConfigurations."me@laptop"': "changed",
        });
      },
      NIX_TIMEOUT,
    );

    test(
      "a bump that breaks one host: failed with Nix's message, every other host still reported",
      async () => {
        await pin(revs[2] ?? "");
        const result = await impact("--json");
        expect(result.stderr).toMatch(
          /homeConfigurations."me@laptop": failed: .*attribute 'feature' missing/,
        );
        expect(result.exitCode).toBe(0);
        const out: Impact = JSON.parse(result.stdout);
        expect(hostsOf(out)).toStrictEqual({
          'homeConfigurations."me@laptop"': "failed",
          "nixosConfigurations.db": "unchanged",
          "nixosConfigurations.ifd": "unevaluable",
          "nixosConfigurations.legacy": "removed",
          "nixosConfigurations.web": "changed",
        });
        const input = out.inputs[0] ?? expect.unreachable();
        const laptop = input.hosts.find((h) => h.status === "failed");
        expect(laptop?.error).toMatch(/attribute 'feature' missing/);
        expect(laptop?.drvPath?.from).toBeDefined();
        expect(
          input.hosts.find((h) => h.attr === "nixosConfigurations.web")?.packages?.changed,
        ).toStrictEqual([{ name: "tool", from: "1.0", to: "3.0" }]);
      },
      NIX_TIMEOUT,
    );

    test(
      "a bump that fixes a host: fixed, with the base lock's error; every side in one evaluation",
      async () => {
        const broken = await pin(revs[2] ?? "");
        await Bun.write(join(down.dir, "broken.lock"), broken);
        const fixing = await pin(revs[1] ?? "");
        const result = await impact("--json", "--base-lock", "broken.lock");
        expect(result.exitCode).toBe(0);
        expect(result.stderr).toMatch(
          /homeConfigurations."me@laptop": fixed: evaluates again \(it failed on the base lock: .*attribute 'feature' missing/,
        );
        const input: InputImpact = JSON.parse(result.stdout).inputs[0];
        const laptop = input.hosts.find((h) => h.attr === 'homeConfigurations."me@laptop"');
        expect(laptop?.status).toBe("fixed");
        expect(laptop?.error).toMatch(/attribute 'feature' missing/);
        expect(laptop?.drvPath?.from).toBeUndefined();
        expect(laptop?.drvPath?.to).toMatch(/-home-manager-generation\.drv$/);

        // Three failures (ifd on each side, the laptop on the base) cost one more process each;
        // the system Nix's store is local, so its .drv files are parsed without another Nix process,
        // while the chroot's store is not where its paths say and is read by Nix.
        const request = {
          flakeDir: down.dir,
          baseLock: broken,
          sides: [{ name: "tool", rev: revs[1] ?? "", lock: fixing }],
          only: null,
          nix: version,
          env,
        };
        const run = await computeImpact(request);
        expect(run.evaluations).toBe(4);
        expect(run.closureReads).toBe(variant.pathPrefix === undefined ? 0 : 1);
        const web = run.impact.inputs[0]?.hosts.find((h) => h.attr === "nixosConfigurations.web");
        expect(web?.packages?.changed).toStrictEqual([{ name: "tool", from: "3.0", to: "2.0" }]);

        // Sharded over three processes, and with memory "short" so that the guard stops all but one
        // and their hosts run again: the same impact as the one process above, failures included.
        const lines: string[] = [];
        const sharded = await computeImpact({ ...request, jobs: 3, onProgress: (line) => lines.push(line) });
        expect(sharded.impact).toStrictEqual(run.impact);
        expect(sharded.stats.jobs).toStrictEqual({ start: 3, end: 3 });
        expect(lines).toContainEqual(
          expect.stringMatching(/^\[\d+\/\d+\] nixosConfigurations\.web changed \(\d+\.\d s\)$/),
        );
        expect(lines).toContainEqual(
          expect.stringMatching(/^\[\d+\/\d+\] nixosConfigurations\.ifd failed with the base lock: /),
        );
        const squeezed = await computeImpact({
          ...request,
          jobs: 3,
          memoryReserveBytes: Number.MAX_SAFE_INTEGER,
        });
        expect(squeezed.impact).toStrictEqual(run.impact);
        expect(squeezed.stats.memoryStops).toBeGreaterThan(0);
        expect(squeezed.stats.jobs).toStrictEqual({ start: 3, end: 1 });

        // All hosts evaluate on both sides: one process for both.
        const clean = await computeImpact({
          flakeDir: down.dir,
          baseLock: fixing,
          sides: [{ name: "tool", rev: revs[1] ?? "", lock: fixing }],
          only: [["nixosConfigurations", "web"]],
          nix: version,
          env,
        });
        expect(clean.evaluations).toBe(1);
      },
      NIX_TIMEOUT,
    );

    test(
      "a new lock on which the flake fails as a whole: every host failed, the base still evaluated",
      async () => {
        const lock = await pin(revs[1] ?? "");
        const run = await computeImpact({
          flakeDir: down.dir,
          baseLock: lock,
          // An input whose narHash matches nothing: the new side's getFlake fails before any host.
          sides: [
            {
              name: "tool",
              rev: "bad",
              lock: lock.replace(
                /"narHash": "sha256-[^"]+"/,
                '"narHash": "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="',
              ),
            },
          ],
          only: [
            ["nixosConfigurations", "web"],
            ["nixosConfigurations", "db"],
          ],
          nix: version,
          env,
        });
        const hosts = run.impact.inputs[0]?.hosts ?? [];
        expect(hosts.map((h) => [h.attr, h.status])).toStrictEqual([
          ["nixosConfigurations.db", "failed"],
          ["nixosConfigurations.web", "failed"],
        ]);
        expect(hosts[0]?.drvPath?.from).toMatch(/-nixos-system-db\.drv$/);
        expect(hosts[0]?.error).toMatch(/hash|mismatch/i);
      },
      NIX_TIMEOUT,
    );

    test(
      "nothing is built: import-from-derivation is refused, no output of any derivation exists",
      async () => {
        const lock = await pin(revs[1] ?? "");
        await using copy = await flakeCopy(down.dir, lock, env);
        const side = await evaluateHosts(copy.ref, { nix: version, only: null, env });
        const ifd = side.hosts.get("nixosConfigurations.ifd");
        expect(ifd !== undefined && "error" in ifd ? ifd.error : "").toMatch(/import-from-derivation/);
        const drvs = [...side.hosts.values()].flatMap((h) => ("drvPath" in h ? [h.drvPath] : []));
        expect(drvs).toHaveLength(4);
        // Every output path of every derivation in the closures: none may be in the store.
        const show = version.minor >= 15 ? ["derivation", "show"] : ["show-derivation"];
        const shown = await $({ env, quiet: true })`nix ${show} --recursive ${drvs}`;
        const outs = shownOutputPaths(JSON.parse(shown.stdout));
        expect(outs.length).toBeGreaterThanOrEqual(8);
        const expr = `map builtins.pathExists (builtins.fromJSON ''${JSON.stringify(outs)}'')`;
        const exists = await $({ env, quiet: true })`nix eval --json --impure --expr ${expr}`;
        expect(JSON.parse(exists.stdout)).toStrictEqual(outs.map(() => false));
      },
      NIX_TIMEOUT,
    );

    test(
      "the PR section: written, replaced on rerun (never duplicated), left alone once the PR moved on",
      async () => {
        await pin(revs[1] ?? "");
        const result = await impact("--json");
        const input: InputImpact = JSON.parse(result.stdout).inputs[0];
        const fake = await FakeGitHub.start({ httpsPort: 0 });
        try {
          await fake.createRepo("acme", "fleet", { files: { "flake.nix": "{}" } });
          await fake.push("acme", "fleet", { "flake.lock": "{}" }, "bump", { branch: "flake-bump/tool" });
          const octokit = createOctokit({ token: fake.token, baseUrl: fake.apiUrl, waitScale: 0 });
          const body = `Updates the flake input \`tool\`.\n\n${renderMarker({ input: "tool", rev: input.rev })}`;
          const { data: pull } = await octokit.rest.pulls.create({
            owner: "acme",
            repo: "fleet",
            head: "flake-bump/tool",
            base: "main",
            title: "chore(flake): update tool",
            body,
          });
          const opts = { repo: { owner: "acme", repo: "fleet" }, branchPrefix: "flake-bump/", dryRun: false };
          const first = await writeImpactSections(octokit, [input], opts);
          expect(first.map((w) => w.outcome)).toStrictEqual(["written"]);
          const written = fake.pulls("acme", "fleet")[0]?.body ?? "";
          expect(written).toContain("After merging, deploy: `canary`, `me@laptop`, `web` (`db` unchanged).");
          expect(written).toContain("tool 1.0 → 2.0");
          expect(written.endsWith(renderMarker({ input: "tool", rev: input.rev }))).toBeTrue();

          // A rerun with a different result replaces the section in place.
          const rerun = {
            ...input,
            hosts: input.hosts.filter((h) => h.attr !== "nixosConfigurations.canary"),
          };
          const second = await writeImpactSections(octokit, [rerun], {
            ...opts,
            deploySentence: "Ship it: {hosts}",
          });
          expect(second.map((w) => w.outcome)).toStrictEqual(["written"]);
          const replaced = fake.pulls("acme", "fleet")[0]?.body ?? "";
          expect(replaced.split(SECTION_START)).toHaveLength(2);
          expect(replaced).toContain("Ship it: `me@laptop`, `web` (`db` unchanged).");
          expect(replaced).not.toContain("`canary`");
          const third = await writeImpactSections(octokit, [rerun], {
            ...opts,
            deploySentence: "Ship it: {hosts}",
          });
          expect(third.map((w) => w.outcome)).toStrictEqual(["unchanged"]);

          // A newer run moved the PR to another rev: this (older) evaluation must not overwrite it.
          const newer = `Updates the flake input \`tool\`.\n\n${renderMarker({ input: "tool", rev: revs[2] ?? "" })}`;
          await octokit.rest.pulls.update({
            owner: "acme",
            repo: "fleet",
            pull_number: pull.number,
            body: newer,
          });
          const fourth = await writeImpactSections(octokit, [input], opts);
          expect(fourth.map((w) => w.outcome)).toStrictEqual(["moved"]);
          expect(fake.pulls("acme", "fleet")[0]?.body).toBe(newer);
          fake.assertNoViolations();
        } finally {
          await fake.stop();
        }
      },
      NIX_TIMEOUT,
    );
  });
}

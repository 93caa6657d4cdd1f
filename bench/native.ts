/**
 * bump_native_ms vs bump_nix_ms: `bump.ts x --rev SHA --engine native` against `--engine nix` on the
 * same `github:` input served by the fake, for a small repository and a 50 MB one, with peak RSS.
 * Each pair of runs locks a commit neither has seen (a fresh push), so both download the tarball, as
 * on a GitHub runner with an empty Nix store; Nix's start-up is part of its figure, as it is there.
 * Target: native ≤ 0.5 × Nix, and native's RSS flat in the tarball's size (it streams).
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RuntimeError } from "../lib/core/errors.ts";
import { parseReport } from "../lib/flake/report.ts";
import { fakeGitHub } from "../tests/fake-github/index.ts";
import { gitRepo } from "../tests/support/git.ts";
import { nixTestEnv } from "../tests/support/nix.ts";
import { cleanEnv } from "../tests/support/run.ts";
import { type Context, nixLock, nixOnPath } from "./context.ts";
import { expectSuccess, measure, scriptCommand } from "./measure.ts";
import { median } from "./stats.ts";

export interface NativeSizeResult {
  /** Bytes of the upstream's tree (what the tarball holds, before gzip). */
  treeBytes: number;
  nativeMedianMs: number;
  nixMedianMs: number;
  /** native / nix, medians. */
  ratio: number;
  nativeMaxRssBytes: number;
  nixMaxRssBytes: number;
  /** The median of the runs' peaks: steadier than their largest on a shared machine. */
  nativeMedianRssBytes: number;
  runs: number;
}

export interface NativeResult {
  small: NativeSizeResult;
  large: NativeSizeResult;
  /** large native RSS / small native RSS (medians of the runs' peaks): ≈ 1 when the tarball streams. */
  nativeRssGrowth: number;
}

/** Incompressible bytes (xorshift), so the tarball really is as large as the tree. */
function noise(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const FLAKE_NIX = (repo: string) => `{
  inputs.x.url = "github:acme/${repo}?host=localhost";
  outputs = _: { };
}
`;

async function benchSize(
  ctx: Context,
  repo: string,
  files: Record<string, string | Uint8Array>,
): Promise<NativeSizeResult> {
  const { fake, env, scratch } = ctx;
  await fake.createRepo("acme", repo, { files: { "flake.nix": "{ outputs = _: { }; }\n", ...files } });
  await using flake = await gitRepo({ files: { "flake.nix": FLAKE_NIX(repo) } });
  await nixLock(flake.dir, env);
  await flake.commit({}, "lock");
  const lockFile = join(flake.dir, "flake.lock");
  const original = await readFile(lockFile, "utf8");
  const report = join(scratch, `native-${repo}.json`);
  let pushes = 0;
  const run = async (engine: "native" | "nix", rev: string) => {
    await writeFile(lockFile, original);
    const cmd = scriptCommand("bump", ["x", "--rev", rev, "--engine", engine, "--report", report]);
    const measured = expectSuccess(
      `bump.ts --engine ${engine}`,
      await measure(cmd, { cwd: flake.dir, env, scratch }),
    );
    const parsed = parseReport(await readFile(report, "utf8"), report);
    const entry = parsed.inputs[0];
    if (entry?.to.rev !== rev || entry.engine !== engine) {
      throw new RuntimeError(
        `bump.ts --engine ${engine} did not move 'x' to ${rev} with that engine (report: ${JSON.stringify(entry?.to)}, ${entry?.engine}); the figure would be measured on the wrong work`,
      );
    }
    return { measured, lock: await readFile(lockFile, "utf8") };
  };
  // A commit that leaves flake.nix alone, new to both engines.
  // Its tarball is made before either engine asks (the fake caches archives, as GitHub does), so
  // both download the same ready bytes and the figure times the clients, not `git archive`.
  const fresh = async () => {
    const sha = await fake.push("acme", repo, { [`notes/${++pushes}.txt`]: `${pushes}\n` }, `note ${pushes}`);
    await fake.prepareTarball("acme", repo, sha);
    return sha;
  };

  // Warm-up, not counted: Bun's caches, Nix's evaluation cache.
  const warm = await fresh();
  await run("native", warm);
  await run("nix", warm);
  const native: number[] = [];
  const nix: number[] = [];
  const nativeRss: number[] = [];
  const nixRss: number[] = [];
  for (let i = 0; i < ctx.runs; i++) {
    const rev = await fresh();
    // Alternate which goes first, so drift falls on both alike.
    const order: Array<"native" | "nix"> = i % 2 === 0 ? ["native", "nix"] : ["nix", "native"];
    const locks: string[] = [];
    for (const engine of order) {
      const { measured, lock } = await run(engine, rev);
      locks.push(lock);
      (engine === "native" ? native : nix).push(measured.wallMs);
      (engine === "native" ? nativeRss : nixRss).push(measured.maxRssBytes);
    }
    if (locks[0] !== locks[1]) {
      throw new RuntimeError(`the native and Nix locks of ${repo} at ${rev} differ; the comparison is void`);
    }
  }
  await writeFile(lockFile, original);
  const treeBytes = Object.values(files).reduce((sum, content) => sum + content.length, 0);
  return {
    treeBytes,
    nativeMedianMs: median(native),
    nixMedianMs: median(nix),
    ratio: median(native) / median(nix),
    nativeMaxRssBytes: Math.max(...nativeRss),
    nixMaxRssBytes: Math.max(...nixRss),
    nativeMedianRssBytes: median(nativeRss),
    runs: ctx.runs,
  };
}

export async function benchNative(ctx: Context): Promise<NativeResult> {
  await ctx.fake.reset();
  const small = await benchSize(ctx, "small", { "README.md": "small\n", "lib/a.nix": "{ }\n" });
  const large = await benchSize(ctx, "large", {
    "README.md": "large\n",
    "data/blob-1.bin": noise(25 * 1024 * 1024, 1),
    "data/blob-2.bin": noise(25 * 1024 * 1024, 2),
  });
  ctx.fake.assertNoViolations();
  return { small, large, nativeRssGrowth: large.nativeMedianRssBytes / small.nativeMedianRssBytes };
}

/** The figures as `bun run bench --json` reports them. */
export function nativeJson(result: NativeResult) {
  const size = (r: NativeSizeResult) => ({
    tree_bytes: r.treeBytes,
    bump_native_ms: Math.round(r.nativeMedianMs),
    bump_nix_ms: Math.round(r.nixMedianMs),
    ratio: Number(r.ratio.toFixed(3)),
    target_ratio: 0.5,
    native_max_rss_bytes: r.nativeMaxRssBytes,
    native_median_rss_bytes: r.nativeMedianRssBytes,
    nix_max_rss_bytes: r.nixMaxRssBytes,
    runs: r.runs,
  });
  return {
    small: size(result.small),
    large: size(result.large),
    native_rss_growth: Number(result.nativeRssGrowth.toFixed(3)),
  };
}

/** The native figures that miss their target (time ≤ 0.5 × Nix, memory within 10 %), by name. */
export function nativeMisses(result: NativeResult): string[] {
  return [
    ...(result.small.ratio > 0.5 ? ["native_vs_nix.small"] : []),
    ...(result.large.ratio > 0.5 ? ["native_vs_nix.50mb"] : []),
    ...(result.nativeRssGrowth > 1.1 ? ["native_vs_nix.native_rss_growth"] : []),
  ];
}

/** Lines for the bench's text output. */
export function nativeLines(result: NativeResult): string[] {
  const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  const line = (name: string, r: NativeSizeResult) =>
    `  ${name} (${mb(r.treeBytes)} tree): native ${Math.round(r.nativeMedianMs)} ms vs Nix ${Math.round(r.nixMedianMs)} ms (ratio ${r.ratio.toFixed(2)}, target ≤ 0.5); peak RSS native ${mb(r.nativeMedianRssBytes)} median, ${mb(r.nativeMaxRssBytes)} largest; Nix ${mb(r.nixMaxRssBytes)}`;
  return [
    "",
    "Native engine vs Nix, pinning a fresh commit (medians):",
    line("small", result.small),
    line("50 MB", result.large),
    `  native RSS, 50 MB over small (medians): × ${result.nativeRssGrowth.toFixed(2)} (target within 10 %, flat when ≈ 1)`,
  ];
}

// `bun bench/native.ts [RUNS]`: this section alone, on the system's Nix (what bench/README.md's
// native runs measure). It needs port 443 to itself, as `bun run bench` does.
if (import.meta.main) {
  const runs = Number(process.argv[2] ?? "5");
  const fake = await fakeGitHub();
  await using nixEnv = nixTestEnv({ certFile: fake.certFile });
  const scratch = await mkdtemp(join(tmpdir(), "flake-bump-bench-"));
  try {
    const env = cleanEnv({ ...nixEnv, GITHUB_API_URL: fake.apiUrl, GH_TOKEN: fake.token });
    const result = await benchNative({ fake, env, scratch, nix: await nixOnPath(env), runs });
    process.stderr.write(`${nativeLines(result).join("\n")}\n`);
    process.stdout.write(`${JSON.stringify(nativeJson(result), null, 2)}\n`);
  } finally {
    await fake.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}

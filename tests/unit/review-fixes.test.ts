/** What review found: each fix with the test that would have caught it. */
import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { UsageError } from "../../lib/core/errors.ts";
import { eventDefaultBranch } from "../../lib/core/event.ts";
import { type Report, writeReport } from "../../lib/flake/report.ts";
import { numberFromEnv, octokitFromEnv } from "../../lib/github/client.ts";
import { main as notify } from "../../scripts/notify.ts";

const ROOT = resolve(import.meta.dir, "../..");
const sha = "887daaf2b11c1375d98b35cc0c769fc9e9512861";

const report = (): Report => ({
  schema: 1,
  changed: false,
  dryRun: false,
  requested: { inputs: [] },
  flake: { dir: "/flake" },
  inputs: [],
  skipped: [],
  lock: null,
  nix: { version: "", invocations: 0 },
});

test("writeReport validates with the report's schema and writes nothing when it fails", async () => {
  const dir = mkdtempSync(join(tmpdir(), "flake-bump-report-"));
  try {
    await writeReport(join(dir, "ok.json"), report());
    expect(JSON.parse(readFileSync(join(dir, "ok.json"), "utf8"))).toStrictEqual(report());
    const bad = { ...report(), requested: { inputs: [], rev: "not-a-sha" } };
    await expect(writeReport(join(dir, "bad.json"), bad)).rejects.toThrow(
      /requested\.rev: must be a full commit SHA/,
    );
    expect(existsSync(join(dir, "bad.json"))).toBe(false);
    expect(readdirSync(dir)).toStrictEqual(["ok.json"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

interface KnobCase {
  name: string;
  value: string | undefined;
  result: number | RegExp;
}
const knobs: KnobCase[] = [
  { name: "FLAKE_BUMP_WAIT_SCALE", value: undefined, result: 1 },
  { name: "FLAKE_BUMP_WAIT_SCALE", value: "0", result: 0 },
  { name: "FLAKE_BUMP_WAIT_SCALE", value: "0.5", result: 0.5 },
  {
    name: "FLAKE_BUMP_WAIT_SCALE",
    value: "fast",
    result: /^FLAKE_BUMP_WAIT_SCALE='fast' is not a number ≥ 0; set it/,
  },
  { name: "FLAKE_BUMP_WAIT_SCALE", value: "-1", result: /^FLAKE_BUMP_WAIT_SCALE='-1' is not a number ≥ 0/ },
  { name: "FLAKE_BUMP_REQUEST_TIMEOUT_MS", value: "", result: 30_000 },
  { name: "FLAKE_BUMP_REQUEST_TIMEOUT_MS", value: "500", result: 500 },
  {
    name: "FLAKE_BUMP_REQUEST_TIMEOUT_MS",
    value: "0",
    result: /^FLAKE_BUMP_REQUEST_TIMEOUT_MS='0' is not a number of milliseconds > 0/,
  },
  {
    name: "FLAKE_BUMP_REQUEST_TIMEOUT_MS",
    value: "30s",
    result:
      /is not a number of milliseconds > 0; set it to such a number or unset it for the default \(30000\)$/,
  },
];
test.each(knobs)("$name=$value", ({ name, value, result }) => {
  const env = value === undefined ? {} : { [name]: value };
  const fallback = name === "FLAKE_BUMP_WAIT_SCALE" ? 1 : 30_000;
  const range =
    name === "FLAKE_BUMP_WAIT_SCALE"
      ? { min: 0, meaning: "a number ≥ 0" }
      : { min: 0, exclusive: true, meaning: "a number of milliseconds > 0" };
  if (typeof result === "number") {
    expect(numberFromEnv(env, name, fallback, range)).toBe(result);
    expect(() => octokitFromEnv(env)).not.toThrow();
  } else {
    expect(() => numberFromEnv(env, name, fallback, range)).toThrow(result);
    // The client is built with exactly these rules: a bad knob stops it too.
    expect(() => octokitFromEnv(env)).toThrow(UsageError);
  }
});

test("notify --ref accepts a git ref only", async () => {
  const argv = (ref: string) => ["--repo", "acme/nixcfg", "--sha", sha, "--ref", ref, "--dry-run"];
  await expect(notify(argv("refs/heads/a b"), {})).rejects.toThrow(
    /^--ref: must be a git ref such as refs\/heads\/main/,
  );
  await expect(notify(argv("../../etc"), {})).rejects.toThrow(UsageError);
  expect(await notify(argv("refs/heads/main"), {})).toBe(0);
});

test("open-pr's default branch comes from the event through lib/core/event.ts, only for its own repository", async () => {
  const dir = mkdtempSync(join(tmpdir(), "flake-bump-event-"));
  try {
    const path = join(dir, "event.json");
    writeFileSync(
      path,
      JSON.stringify({ repository: { full_name: "Acme/NixCfg", default_branch: "trunk" } }),
    );
    const env = { GITHUB_EVENT_PATH: path };
    expect(await eventDefaultBranch(env, { owner: "acme", repo: "nixcfg" })).toBe("trunk");
    expect(await eventDefaultBranch(env, { owner: "acme", repo: "other" })).toBeUndefined();
    writeFileSync(path, "{ not json");
    expect(await eventDefaultBranch(env, { owner: "acme", repo: "nixcfg" })).toBeUndefined();
    expect(await eventDefaultBranch({}, { owner: "acme", repo: "nixcfg" })).toBeUndefined();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const script = readFileSync(join(ROOT, "scripts", "open-pr.ts"), "utf8");
  expect([script.includes("GITHUB_EVENT_PATH"), script.includes("readFile")]).toStrictEqual([false, false]);
});

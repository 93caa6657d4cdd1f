import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { type FlakeLock, LOCK_COMMAND, parseLock } from "../../lib/flake/lock.ts";
import {
  EXPERIMENTAL,
  type LockPlan,
  lockArgs,
  type NixVersion,
  nixEnv,
  nixErrorLine,
  nixTooOld,
  nixTooOldForLock,
  parseNixVersion,
} from "../../lib/flake/nix.ts";
import { realLockPath } from "../support/fixtures.ts";

interface VersionCase {
  output: string;
  expected: NixVersion | undefined;
}
const versionCases: VersionCase[] = [
  { output: "nix (Nix) 2.8.0\n", expected: { version: "2.8.0", major: 2, minor: 8, lix: false } },
  { output: "nix (Nix) 2.26.3", expected: { version: "2.26.3", major: 2, minor: 26, lix: false } },
  { output: "nix (Lix, like Nix) 2.91.1", expected: { version: "2.91.1", major: 2, minor: 91, lix: true } },
  {
    output: "nix (Determinate Nix 3.6.2) 2.29.0",
    expected: { version: "2.29.0", major: 2, minor: 29, lix: false },
  },
  {
    output: "nix (Nix) 2.19pre20231003_abcdef",
    expected: { version: "2.19pre20231003_abcdef", major: 2, minor: 19, lix: false },
  },
  { output: "command not found", expected: undefined },
];
test.each(versionCases)("parseNixVersion(%p)", ({ output, expected }) => {
  expect(parseNixVersion(output)).toStrictEqual(expected);
});

const v = (text: string): NixVersion => {
  const parsed = parseNixVersion(text);
  if (parsed === undefined) throw new Error(`bad version ${text}`);
  return parsed;
};

interface ArgsCase {
  name: string;
  version: NixVersion;
  plan: LockPlan;
  args: string[];
}
const ref = `github:o/r/${"a".repeat(40)}?host=localhost`;
const argsCases: ArgsCase[] = [
  {
    name: "Nix 2.8 updates with --update-input",
    version: v("nix (Nix) 2.8.0"),
    plan: { kind: "update", inputs: ["a", "b"] },
    args: [...EXPERIMENTAL, "flake", "lock", "--update-input", "a", "--update-input", "b", "/f"],
  },
  {
    name: "Nix 2.18 still uses --update-input",
    version: v("nix (Nix) 2.18.1"),
    plan: { kind: "update", inputs: ["a"] },
    args: [...EXPERIMENTAL, "flake", "lock", "--update-input", "a", "/f"],
  },
  {
    name: "Nix 2.19 takes positional inputs",
    version: v("nix (Nix) 2.19.0"),
    plan: { kind: "update", inputs: ["a", "b"] },
    args: [...EXPERIMENTAL, "flake", "update", "a", "b", "--flake", "/f"],
  },
  {
    name: "Nix 2.26 takes positional inputs",
    version: v("nix (Nix) 2.26.3"),
    plan: { kind: "update", inputs: ["a"] },
    args: [...EXPERIMENTAL, "flake", "update", "a", "--flake", "/f"],
  },
  {
    name: "Lix takes positional inputs",
    version: v("nix (Lix, like Nix) 2.91.1"),
    plan: { kind: "update", inputs: ["a"] },
    args: [...EXPERIMENTAL, "flake", "update", "a", "--flake", "/f"],
  },
  {
    name: "Nix 3.x (Determinate) takes positional inputs",
    version: { version: "3.0.0", major: 3, minor: 0, lix: false },
    plan: { kind: "update", inputs: ["a"] },
    args: [...EXPERIMENTAL, "flake", "update", "a", "--flake", "/f"],
  },
  {
    name: "pins use --override-input on 2.8",
    version: v("nix (Nix) 2.8.0"),
    plan: { kind: "pin", input: "a", ref, rev: "a".repeat(40) },
    args: [...EXPERIMENTAL, "flake", "lock", "--override-input", "a", ref, "/f"],
  },
  {
    name: "pins use --override-input on 2.26",
    version: v("nix (Nix) 2.26.3"),
    plan: { kind: "pin", input: "a", ref, rev: "a".repeat(40) },
    args: [...EXPERIMENTAL, "flake", "lock", "--override-input", "a", ref, "/f"],
  },
];
test.each(argsCases)("$name", ({ version, plan, args }) => {
  expect(lockArgs(version, plan, "/f")).toStrictEqual(args);
});

test("a GitHub token reaches Nix through NIX_CONFIG, appended to the user's own settings", () => {
  const env = nixEnv({ GITHUB_TOKEN: "ghs_secretsecret", NIX_CONFIG: "substituters = https://x" });
  expect(env.NIX_CONFIG).toBe("substituters = https://x\naccess-tokens = github.com=ghs_secretsecret");
});

test("on GitHub Enterprise Server the token also covers the server's host", () => {
  const env = nixEnv({ GITHUB_TOKEN: "ghs_secretsecret", GITHUB_SERVER_URL: "https://ghe.example.com" });
  expect(env.NIX_CONFIG).toBe("access-tokens = github.com=ghs_secretsecret ghe.example.com=ghs_secretsecret");
});

test("the user's own access-tokens setting wins", () => {
  const env = nixEnv({ GH_TOKEN: "ghs_secretsecret", NIX_CONFIG: "access-tokens = github.com=mine" });
  expect(env.NIX_CONFIG).toBe("access-tokens = github.com=mine");
});

test("without a token the environment is the user's, unchanged", () => {
  const input = { NIX_CONFIG: "x = 1" };
  expect(nixEnv(input)).toStrictEqual(input);
});

test("Nix's last error paragraph becomes one line", () => {
  const stderr = [
    "warning: Git tree '/x' is dirty",
    "error: Cannot find Git revision 'abc' in ref 'main' of repository '/up'!",
    "       Please make sure that the rev exists.",
    "(use '--show-trace' to show detailed location information)",
  ].join("\n");
  expect(nixErrorLine(stderr)).toBe(
    "Cannot find Git revision 'abc' in ref 'main' of repository '/up'! Please make sure that the rev exists. (use '--show-trace' to show detailed location information)",
  );
});

describe("nixTooOld: Nix's own errors for what a newer Nix accepts", () => {
  const nix = (output: string): NixVersion => parseNixVersion(output) ?? expect.unreachable();
  const v28 = nix("nix (Nix) 2.8.0");
  const v216 = nix("nix (Nix) 2.16.0");
  const v225 = nix("nix (Nix) 2.25.3");
  const v226 = nix("nix (Nix) 2.26.3");
  const v234 = nix("nix (Nix) 2.34.8");
  const lix = nix("nix (Lix, like Nix) 2.91.1");
  const realLock = parseLock(readFileSync(realLockPath("nixcfg-2026-08-22.flake.lock"), "utf8"));
  const lfsLock = parseLock(
    JSON.stringify({
      nodes: {
        g: {
          flake: false,
          locked: {
            lfs: true,
            narHash: "sha256-x",
            rev: "3d3127d728b4941b2865dc785d32ae1adb8f828e",
            type: "git",
            url: "file:///g",
          },
          original: { lfs: true, type: "git", url: "file:///g" },
        },
        root: { inputs: { g: "g" } },
      },
      root: "root",
      version: 7,
    }),
  );
  const what = "update 'inspr-modules'";
  const current = "use Nix 2.18 or newer (the update action installs a current one)";
  interface Case {
    what: string;
    version: NixVersion;
    /** Nix's stderr, as each version printed it (the 2.8, 2.26 and 2.34 ones seen on those versions). */
    stderr: string;
    lock?: FlakeLock;
    expected: string | undefined;
  }
  const cases: Case[] = [
    {
      what: "2.8 on the real lock's tarball nodes: every node named",
      version: v28,
      stderr:
        "warning: you don't have Internet access; disabling some network-dependent features\nerror: unsupported tarball input attribute 'lastModified'\n(use '--show-trace' to show detailed location information)\n",
      lock: realLock,
      expected: `Nix 2.8.0 is too old to ${what}: flake.lock's 'tarball' inputs nixpkgs, nixpkgs_3 and nixpkgs_5 carry 'lastModified', which Nix accepts from 2.18 on; ${current}`,
    },
    {
      what: "without the lock: no node names",
      version: v28,
      stderr: "error: unsupported tarball input attribute 'lastModified'\n",
      expected: `Nix 2.8.0 is too old to ${what}: a 'tarball' input in flake.nix or flake.lock carries 'lastModified', which Nix accepts from 2.18 on; ${current}`,
    },
    {
      what: "2.16's wording, an immutable tarball's rev",
      version: v216,
      stderr: "error: unsupported tarball input attribute 'rev'\n",
      expected: `Nix 2.16.0 is too old to ${what}: a 'tarball' input in flake.nix or flake.lock carries 'rev', which Nix accepts from 2.17 on; use Nix 2.17 or newer (the update action installs a current one)`,
    },
    {
      what: "2.8's capitalised Git, on a lock Nix 2.34 wrote with lfs",
      version: v28,
      stderr: "error: unsupported Git input attribute 'lfs'\n",
      lock: lfsLock,
      expected: `Nix 2.8.0 is too old to ${what}: flake.lock's 'git' input g carries 'lfs', which Nix accepts from 2.27 on; use Nix 2.27 or newer (the update action installs a current one)`,
    },
    {
      what: "2.26's wording, nested in context lines",
      version: v226,
      stderr:
        "error:\n       … while updating the lock file of flake 'git+file:///tmp/x'\n\n       error: input attribute 'lfs' not supported by scheme 'git'\n",
      lock: lfsLock,
      expected: `Nix 2.26.3 is too old to ${what}: flake.lock's 'git' input g carries 'lfs', which Nix accepts from 2.27 on; use Nix 2.27 or newer (the update action installs a current one)`,
    },
    {
      what: "Lix numbers its own releases: named as Lix, and classified by the message alone",
      version: lix,
      stderr: "error: input attribute 'lfs' not supported by scheme 'git'\n",
      expected: `Lix 2.91.1 is too old to ${what}: a 'git' input in flake.nix or flake.lock carries 'lfs', which Nix accepts from 2.27 on; use Nix 2.27 or newer (the update action installs a current one)`,
    },
    {
      what: "a Nix that should accept it: something else, not its version",
      version: v234,
      stderr: "error: input attribute 'lfs' not supported by scheme 'git'\n",
      expected: undefined,
    },
    {
      what: "an attribute no Nix accepts: a mistake, not a version",
      version: v28,
      stderr: "error: unsupported tarball input attribute 'bogus'\n",
      expected: undefined,
    },
    {
      what: "2.8's github wording names no type: not classified",
      version: v28,
      stderr: "error: unsupported input attribute 'lastModified'\n",
      expected: undefined,
    },
    {
      what: "2.8 on a locked relative path input",
      version: v28,
      stderr: `error: lockfile contains mutable lock '{"path":"./sub","type":"path"}'\n`,
      expected: `Nix 2.8.0 is too old to ${what}: flake.lock locks the relative path input './sub', which Nix reads from 2.26 on; use Nix 2.26 or newer (the update action installs a current one)`,
    },
    {
      what: "2.25's wording for the same",
      version: v225,
      stderr: `error: lock file contains unlocked input '{"path":"./sub","type":"path"}'\n`,
      expected: `Nix 2.25.3 is too old to ${what}: flake.lock locks the relative path input './sub', which Nix reads from 2.26 on; use Nix 2.26 or newer (the update action installs a current one)`,
    },
    {
      what: "an unlocked absolute path is the flake's own problem",
      version: v28,
      stderr: `error: lockfile contains mutable lock '{"path":"/srv/sub","type":"path"}'\n`,
      expected: undefined,
    },
    {
      what: "a lock version newer than any Nix reads",
      version: v226,
      stderr:
        "error:        error: lock file '/nix/store/1k2q78m38qxcrklq6j1ybvhniqbvr2bk-source/flake.lock' has unsupported version 8\n",
      expected: `Nix 2.26.3 is too old to ${what}: flake.lock is lock version 8, written by a Nix newer than every release so far (they read versions 5 to 7); use the Nix that wrote it`,
    },
    {
      what: "an old lock version is not a newer Nix's",
      version: v226,
      stderr: "error: lock file '/x/flake.lock' has unsupported version 4\n",
      expected: undefined,
    },
    {
      what: "any other failure",
      version: v28,
      stderr: "error: unable to download 'https://api.localhost/repos/acme/x/commits/main': HTTP error 404\n",
      expected: undefined,
    },
  ];
  test.each(cases)("$what", ({ version, stderr, lock, expected }) => {
    expect(nixTooOld(version, what, stderr, lock)).toStrictEqual(expected);
  });

  test("on a terminal, where Nix's error went by itself: judged from the lock alone", () => {
    const relative = parseLock(
      JSON.stringify({
        nodes: {
          sub: {
            locked: { path: "./sub", type: "path" },
            original: { path: "./sub", type: "path" },
            parent: [],
          },
          root: { inputs: { sub: "sub" } },
        },
        root: "root",
        version: 7,
      }),
    );
    const above = "; Nix's own error is above";
    expect(nixTooOldForLock(v28, what, realLock)).toBe(
      `Nix 2.8.0 is too old to ${what}: flake.lock's 'tarball' inputs nixpkgs, nixpkgs_3 and nixpkgs_5 carry 'lastModified', which Nix accepts from 2.18 on; ${current}${above}`,
    );
    expect(nixTooOldForLock(v226, what, lfsLock)).toBe(
      `Nix 2.26.3 is too old to ${what}: flake.lock's 'git' input g carries 'lfs', which Nix accepts from 2.27 on; use Nix 2.27 or newer (the update action installs a current one)${above}`,
    );
    expect(nixTooOldForLock(v225, what, relative)).toBe(
      `Nix 2.25.3 is too old to ${what}: flake.lock locks the relative path input './sub', which Nix reads from 2.26 on; use Nix 2.26 or newer (the update action installs a current one)${above}`,
    );
    // A Nix new enough for all of it, or no lock: the failure is something else, said as before.
    expect(nixTooOldForLock(v234, what, realLock)).toBeUndefined();
    expect(nixTooOldForLock(v226, what, relative)).toBeUndefined();
    expect(nixTooOldForLock(v28, what, undefined)).toBeUndefined();
    expect(nixTooOldForLock(lix, what, lfsLock)).toBeUndefined();
  });
});

test("the lock command hints give enables what every run enables (EXPERIMENTAL)", () => {
  expect(LOCK_COMMAND).toBe(`nix ${EXPERIMENTAL[0]} '${EXPERIMENTAL[1]}' flake lock`);
});

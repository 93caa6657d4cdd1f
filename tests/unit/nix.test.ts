import { expect, test } from "bun:test";
import {
  EXPERIMENTAL,
  type LockPlan,
  lockArgs,
  type NixVersion,
  nixEnv,
  nixErrorLine,
  parseNixVersion,
} from "../../lib/flake/nix.ts";

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

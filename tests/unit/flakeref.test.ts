import { expect, test } from "bun:test";
import { UsageError } from "../../lib/core/errors.ts";
import { githubSource, pinnedRef } from "../../lib/flake/flakeref.ts";
import type { LockNode } from "../../lib/flake/lock.ts";

const rev = "0123456789abcdef0123456789abcdef01234567";

interface PinCase {
  name: string;
  node: LockNode;
  ref: string;
}
const cases: PinCase[] = [
  {
    name: "github keeps host and dir, drops the branch (it stays in original)",
    node: { original: { type: "github", owner: "o", repo: "r", ref: "main", host: "localhost", dir: "sub" } },
    ref: `github:o/r/${rev}?host=localhost&dir=sub`,
  },
  {
    name: "github without extras",
    node: { original: { type: "github", owner: "o", repo: "r" } },
    ref: `github:o/r/${rev}`,
  },
  {
    name: "gitlab",
    node: { original: { type: "gitlab", owner: "g", repo: "p" } },
    ref: `gitlab:g/p/${rev}`,
  },
  {
    name: "sourcehut",
    node: { original: { type: "sourcehut", owner: "~u", repo: "p", ref: "trunk" } },
    ref: `sourcehut:~u/p/${rev}`,
  },
  {
    name: "git keeps its ref and extras",
    node: { original: { type: "git", url: "https://example.org/x.git", ref: "dev", submodules: true } },
    ref: `git+https://example.org/x.git?ref=dev&rev=${rev}&submodules=true`,
  },
  {
    name: "git without a ref keeps the branch Nix locked",
    node: {
      original: { type: "git", url: "file:///tmp/up" },
      locked: { type: "git", url: "file:///tmp/up", ref: "main", rev: "f".repeat(40) },
    },
    ref: `git+file:///tmp/up?ref=main&rev=${rev}`,
  },
  {
    name: "a registry input pins through its locked source",
    node: {
      original: { type: "indirect", id: "nixpkgs" },
      locked: {
        type: "github",
        owner: "NixOS",
        repo: "nixpkgs",
        rev: "f".repeat(40),
        narHash: "sha256-x",
        lastModified: 1,
      },
    },
    ref: `github:NixOS/nixpkgs/${rev}`,
  },
];
test.each(cases)("$name", ({ node, ref }) => {
  expect(pinnedRef("x", node, rev)).toBe(ref);
});

test("a tarball input cannot be pinned to a rev", () => {
  expect(() => pinnedRef("t", { original: { type: "tarball", url: "https://x/y.tar.gz" } }, rev)).toThrow(
    UsageError,
  );
});

test("githubSource reads owner, repo, host and the tracked ref", () => {
  expect(
    githubSource({
      original: { type: "github", owner: "o", repo: "r", ref: "main" },
      locked: { type: "github", owner: "o", repo: "r", host: "localhost", rev },
    }),
  ).toStrictEqual({ owner: "o", repo: "r", host: "localhost", ref: "main" });
  expect(githubSource({ locked: { type: "git", url: "file:///x" } })).toBeUndefined();
});

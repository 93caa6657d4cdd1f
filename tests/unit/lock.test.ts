import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../../lib/core/errors.ts";
import {
  describeRef,
  diffLocks,
  type FlakeRefAttrs,
  parseLock,
  pinReason,
  rootInputs,
} from "../../lib/flake/lock.ts";
import { realLockPath } from "../support/fixtures.ts";

const read = (name: string) => readFileSync(realLockPath(name), "utf8");

describe("real fleet lock files", () => {
  test("the 71-node fleet lock parses, with follows given as paths", () => {
    const lock = parseLock(read("nixcfg-2026-08-22.flake.lock"));
    expect(Object.keys(lock.nodes)).toHaveLength(71);
    const inputs = rootInputs(lock);
    expect(inputs.find((i) => i.name === "nixpkgs")).toMatchObject({ kind: "node", key: "nixpkgs_6" });
    expect(inputs.find((i) => i.name === "catppuccin")).toStrictEqual({
      name: "catppuccin",
      kind: "follows",
      follows: ["nixcfg", "catppuccin"],
    });
  });

  test("the hand-made bump diffs to exactly inspr-modules fceca8d → 887daaf", () => {
    const before = parseLock(read("nixcfg-before-ec557951.flake.lock"));
    const after = parseLock(read("nixcfg-after-ec557951.flake.lock"));
    const diff = diffLocks(before, after);
    expect(diff.transitive).toStrictEqual({ added: [], removed: [], changed: [] });
    expect(diff.direct).toHaveLength(1);
    expect(diff.direct[0]?.path).toBe("inspr-modules");
    expect(diff.direct[0]?.from?.rev).toBe("fceca8df71c1786d6ccbafd8c49532b7f5671423");
    expect(diff.direct[0]?.to?.rev).toBe("887daaf2b11c1375d98b35cc0c769fc9e9512861");
    expect(diff.direct[0]?.to?.ref).toBe(
      "github:inspr-at/inspr-modules/887daaf2b11c1375d98b35cc0c769fc9e9512861",
    );
  });

  test("a lock compared with itself has no changes", () => {
    const lock = parseLock(read("nixcfg-2026-08-22.flake.lock"));
    expect(diffLocks(lock, lock)).toStrictEqual({
      direct: [],
      transitive: { added: [], removed: [], changed: [] },
    });
  });

  test("pinned inputs of the real flake are exactly janus, janus-paimos-reporter and ncps", () => {
    const lock = parseLock(read("nixcfg-2026-08-22.flake.lock"));
    const pinned = rootInputs(lock)
      .filter((i) => i.kind === "node" && pinReason(i.node.original) !== undefined)
      .map((i) => i.name);
    expect(pinned).toStrictEqual(["janus", "janus-paimos-reporter", "ncps"]);
  });
});

interface PinCase {
  original: FlakeRefAttrs;
  pinned: boolean;
}
const pinCases: PinCase[] = [
  { original: { type: "github", owner: "o", repo: "r" }, pinned: false },
  { original: { type: "github", owner: "nixos", repo: "nixpkgs", ref: "nixos-unstable" }, pinned: false },
  { original: { type: "github", owner: "nixos", repo: "nixpkgs", ref: "nixos-25.05" }, pinned: false },
  { original: { type: "github", owner: "NixOS", repo: "nixos-hardware", ref: "master" }, pinned: false },
  { original: { type: "github", owner: "o", repo: "r", ref: "release-24.11" }, pinned: false },
  { original: { type: "github", owner: "i", repo: "janus", ref: "rust-engine-v0.1.17" }, pinned: true },
  { original: { type: "github", owner: "o", repo: "r", ref: "v1.2.3" }, pinned: true },
  { original: { type: "github", owner: "o", repo: "r", ref: "1.0.0-rc.1" }, pinned: true },
  { original: { type: "github", owner: "o", repo: "r", ref: "refs/tags/stable" }, pinned: true },
  { original: { type: "github", owner: "k", repo: "ncps", ref: "ff083aff" }, pinned: true },
  { original: { type: "github", owner: "o", repo: "r", rev: "a".repeat(40) }, pinned: true },
  { original: { type: "git", url: "https://example.org/x.git", ref: "main" }, pinned: false },
  { original: { type: "tarball", url: "https://example.org/x.tar.gz" }, pinned: false },
];
test.each(pinCases)("pinReason(%o)", ({ original, pinned }) => {
  expect(pinReason(original) !== undefined).toBe(pinned);
});

interface RefCase {
  attrs: FlakeRefAttrs;
  ref: string;
}
const refCases: RefCase[] = [
  { attrs: { type: "github", owner: "o", repo: "r", rev: "abc" }, ref: "github:o/r/abc" },
  {
    attrs: { type: "github", owner: "o", repo: "r", rev: "abc", host: "ghe.example" },
    ref: "github:o/r/abc?host=ghe.example",
  },
  {
    attrs: { type: "gitlab", owner: "o", repo: "r", ref: "main", dir: "sub" },
    ref: "gitlab:o/r/main?dir=sub",
  },
  {
    attrs: { type: "git", url: "file:///tmp/up", ref: "main", rev: "abc" },
    ref: "git+file:///tmp/up?ref=main&rev=abc",
  },
  { attrs: { type: "tarball", url: "https://example.org/x.tar.gz" }, ref: "https://example.org/x.tar.gz" },
  { attrs: { type: "path", path: "/src" }, ref: "path:/src" },
  { attrs: { type: "indirect", id: "nixpkgs" }, ref: "flake:nixpkgs" },
];
test.each(refCases)("describeRef → $ref", ({ attrs, ref }) => {
  expect(describeRef(attrs)).toBe(ref);
});

interface BadLockCase {
  name: string;
  text: string;
  message: RegExp;
}
const node = (inputs: Record<string, string | string[]>) => ({ inputs });
const badLocks: BadLockCase[] = [
  { name: "truncated", text: '{"nodes": {"root": {', message: /not valid JSON/ },
  { name: "empty", text: "", message: /not valid JSON/ },
  { name: "not an object", text: "[]", message: /not a flake lock file/ },
  {
    name: "unknown version",
    text: JSON.stringify({ nodes: { root: {} }, root: "root", version: 99 }),
    message: /version 99 is not supported/,
  },
  {
    name: "missing root node",
    text: JSON.stringify({ nodes: {}, root: "root", version: 7 }),
    message: /root node/,
  },
  {
    name: "dangling edge",
    text: JSON.stringify({ nodes: { root: node({ a: "nope" }) }, root: "root", version: 7 }),
    message: /missing node 'nope'/,
  },
  {
    name: "follows cycle",
    text: JSON.stringify({
      nodes: { root: node({ a: ["b"], b: ["a"] }) },
      root: "root",
      version: 7,
    }),
    message: /missing or cyclic/,
  },
];
test.each(badLocks)("a $name lock is refused with one sentence", ({ text, message }) => {
  let caught: unknown;
  try {
    parseLock(text, "flake.lock");
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(UsageError);
  const msg = caught instanceof Error ? caught.message : "";
  expect(msg).toMatch(message);
  expect(msg).not.toContain("\n");
  // A command that works on a stock Nix, where nix-command and flakes are not enabled.
  expect(msg).toEndWith(
    "recreate it with `nix --extra-experimental-features 'nix-command flakes' flake lock`",
  );
});

test("a cyclic node graph still diffs (each node visited once)", () => {
  const lock = parseLock(
    JSON.stringify({
      nodes: {
        root: { inputs: { a: "a" } },
        a: { inputs: { b: "b" }, locked: { type: "github", owner: "o", repo: "a", rev: "1" } },
        b: { inputs: { a: "a" }, locked: { type: "github", owner: "o", repo: "b", rev: "2" } },
      },
      root: "root",
      version: 7,
    }),
  );
  expect(diffLocks(lock, lock).direct).toStrictEqual([]);
});

test("the real-lock fixtures live inside the repository", () => {
  const repository = join(import.meta.dir, "..", "..");
  const path = realLockPath("nixcfg-2026-08-22.flake.lock");
  expect(path.startsWith(`${repository}/tests/fixtures/`)).toBe(true);
  expect(readFileSync(path, "utf8")).toContain('"root": "root"');
});

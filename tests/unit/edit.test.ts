import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../../lib/core/errors.ts";
import { inputUrl, urlRef, withInputRef } from "../../lib/flake/edit.ts";

const REAL = readFileSync(
  join(import.meta.dir, "..", "fixtures", "real-flake-locks", "nixcfg-2026-08-22.flake.nix"),
  "utf8",
);

/** Nix's `${expr}`, spelled so that it cannot be mistaken for a JavaScript template placeholder. */
const interp = (expr: string): string => ["$", "{", expr, "}"].join("");

/** The one place two texts differ, as [before, after], or undefined when they are equal. */
function difference(a: string, b: string): [string, string] | undefined {
  if (a === b) return undefined;
  let start = 0;
  while (a[start] === b[start]) start++;
  let [endA, endB] = [a.length, b.length];
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) [endA, endB] = [endA - 1, endB - 1];
  return [a.slice(start, endA), b.slice(start, endB)];
}

describe("withInputRef: only the ref in the input's URL changes, in every form Nix accepts", () => {
  const cases: [form: string, src: string, from: string, to: string, after: string][] = [
    [
      "inputs.x.url",
      '{\n  inputs.janus.url = "github:inspr-at/janus/v0.1.17"; # pinned\n  outputs = _: { };\n}\n',
      "v0.1.17",
      "v0.1.18",
      '{\n  inputs.janus.url = "github:inspr-at/janus/v0.1.18"; # pinned\n  outputs = _: { };\n}\n',
    ],
    [
      "inputs.x = { url }",
      '{\n  inputs.janus = {\n    url = "github:o/janus/v1.2?dir=nix";\n    flake = true;\n  };\n}\n',
      "v1.2",
      "v1.3",
      '{\n  inputs.janus = {\n    url = "github:o/janus/v1.3?dir=nix";\n    flake = true;\n  };\n}\n',
    ],
    [
      "inputs = { x.url }",
      '{\n  inputs = {\n    /* the engine */ janus.url = "github:o/janus?ref=v1.2";\n  };\n}\n',
      "v1.2",
      "v1.10",
      '{\n  inputs = {\n    /* the engine */ janus.url = "github:o/janus?ref=v1.10";\n  };\n}\n',
    ],
    [
      "git+https with refs/tags/",
      '{ inputs.janus.url = "git+https://git.example.org/janus?ref=refs/tags/v1.2&shallow=1"; }',
      "v1.2",
      "v1.3",
      '{ inputs.janus.url = "git+https://git.example.org/janus?ref=refs/tags/v1.3&shallow=1"; }',
    ],
    [
      "quoted input name, outputs with interpolation and an argument pattern",
      `{\n  inputs."janus-2".url = "github:o/janus/v2";\n  outputs = { self, ... }@inputs: { x = "${interp("self")}/a"; y = ''\n    ${interp('"}"')}\n  ''; };\n}\n`,
      "v2",
      "v3",
      `{\n  inputs."janus-2".url = "github:o/janus/v3";\n  outputs = { self, ... }@inputs: { x = "${interp("self")}/a"; y = ''\n    ${interp('"}"')}\n  ''; };\n}\n`,
    ],
  ];
  test.each(cases)("%s", (_form, src, from, to, after) => {
    const name = src.includes('"janus-2"') ? "janus-2" : "janus";
    expect(withInputRef(src, name, from, to)).toStrictEqual(after);
  });

  test("the real fleet's flake.nix: one tag changes, nothing else", () => {
    const after = withInputRef(REAL, "janus", "rust-engine-v0.1.17", "rust-engine-v0.1.18");
    expect(difference(REAL, after)).toStrictEqual(["7", "8"]);
    expect(inputUrl(after, "janus").url).toBe("github:inspr-at/janus/rust-engine-v0.1.18");
    expect(inputUrl(REAL, "nixpkgs-stable")).toMatchObject({
      url: "github:nixos/nixpkgs/nixos-25.05",
      line: 8,
    });
    expect(inputUrl(REAL, "nixos-anywhere")).toMatchObject({
      url: "github:nix-community/nixos-anywhere",
      line: 21,
    });
  });
});

describe("withInputRef refuses what it cannot edit safely, naming the lines", () => {
  const cases: [why: string, src: string, message: RegExp][] = [
    [
      "the same URL string used by two inputs",
      '{\n  inputs.a.url = "github:o/r/v1";\n  inputs.b.url = "github:o/r/v1";\n}\n',
      /for 'b' \(lines 2 and 3\)/,
    ],
    [
      "an escape sequence",
      '{\n  inputs.a.url = "github:o/r/v\\x1";\n}\n',
      /line 2: .*not one plain string literal/,
    ],
    [
      "interpolation",
      `{\n  inputs.a.url = "github:o/r/${interp("tag")}";\n}\n`,
      /line 2: .*not one plain string literal/,
    ],
    ["an unquoted URI", "{\n  inputs.a.url = github:o/r/v1;\n}\n", /line 2: .*not one plain string literal/],
    [
      "set twice",
      '{\n  inputs.a.url = "github:o/r/v1";\n  inputs.a = { url = "github:o/r/v2"; };\n}\n',
      /lines 2 and 3/,
    ],
    ["no url at all", '{\n  inputs.a.follows = "b";\n}\n', /no 'inputs.a.url'/],
    [
      "another ref than the lock's",
      '{\n  inputs.a.url = "github:o/r/v2";\n}\n',
      /line 2: .*does not name the ref 'v1' that flake\.lock has; lock the flake once \(`nix --extra-experimental-features 'nix-command flakes' flake lock`\) and retry$/,
    ],
    ["no ref in the URL", '{\n  inputs.a.url = "github:o/r";\n}\n', /does not name the ref 'v1'/],
    [
      "not an attribute set",
      'let x = 1; in { inputs.a.url = "github:o/r/v1"; }',
      /does not start with an attribute set/,
    ],
    [
      "an unterminated string",
      '{\n  inputs.a.url = "github:o/r/v1;\n}\n',
      /could not be read \(unterminated string\)/,
    ],
  ];
  test.each(cases)("%s", (_why, src, message) => {
    let thrown: unknown;
    try {
      withInputRef(src, "a", "v1", "v3");
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(UsageError);
    expect(thrown instanceof Error ? thrown.message : "").toMatch(message);
  });
});

describe("urlRef", () => {
  const cases: [url: string, ref: string | undefined][] = [
    ["github:o/r/rust-engine-v0.1.17", "rust-engine-v0.1.17"],
    ["github:o/r/release/1.0?dir=x", "release/1.0"],
    ["github:o/r?ref=v1&dir=x", "v1"],
    ["git+ssh://git@example.org/r?ref=refs/tags/v1.2", "v1.2"],
    ["git+file:///src/r?rev=abc&ref=v9", "v9"],
    ["github:o/r", undefined],
    ["github:o/r/v%2F1", undefined],
    ["path:./sub", undefined],
  ];
  test.each(cases)("%s → %s", (url, ref) => {
    expect(urlRef(url)?.ref).toStrictEqual(ref);
  });
});

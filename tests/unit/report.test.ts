import { expect, test } from "bun:test";
import { describeChange, formatDate, type InputChange, shortRef } from "../../lib/flake/report.ts";

const none = { added: [], removed: [], changed: [] };
const lock = { text: "{}", sha256: "0".repeat(64) };
const a = "abc1234def5678abc1234def5678abc1234def56";
const b = "def5678abc1234def5678abc1234def5678abc12";

interface Case {
  name: string;
  change: InputChange;
  line: string;
}
const cases: Case[] = [
  {
    name: "an update, in Nix's wording",
    change: {
      name: "nixfleet",
      from: { ref: `github:o/r/${a}`, rev: a, lastModified: 1_793_491_200 },
      to: { ref: `github:o/r/${b}`, rev: b, lastModified: 1_795_564_800 },
      transitive: none,
      lock,
    },
    line: "• Updated input 'nixfleet':  'github:o/r/abc1234…' (2026-11-01) → 'github:o/r/def5678…' (2026-11-25)",
  },
  {
    name: "an added input",
    change: {
      name: "x",
      to: { ref: `github:o/x/${b}`, rev: b, lastModified: 1_795_564_800 },
      transitive: none,
      lock,
    },
    line: "• Added input 'x':  'github:o/x/def5678…' (2026-11-25)",
  },
  {
    name: "a source without a rev",
    change: {
      name: "t",
      from: { ref: "https://x/a.tar.gz" },
      to: { ref: "https://x/b.tar.gz", lastModified: 1_795_564_800 },
      transitive: none,
      lock,
    },
    line: "• Updated input 't':  'https://x/a.tar.gz' (unknown date) → 'https://x/b.tar.gz' (2026-11-25)",
  },
];
test.each(cases)("$name", ({ change, line }) => {
  expect(describeChange(change)).toBe(line);
});

test("dates are UTC days", () => {
  expect(formatDate(0)).toBe("1970-01-01");
  expect(formatDate(undefined)).toBe("unknown date");
});

test("shortRef leaves references without a rev alone", () => {
  expect(shortRef({ ref: "path:/x" })).toBe("path:/x");
});

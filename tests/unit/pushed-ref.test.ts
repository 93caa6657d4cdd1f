/**
 * The pushed ref picks the input (lib/bump/pushed-ref.ts): the fleet, with two branches of
 * one repository and two tag pins of another, one of them following releases. GitHub's two answers
 * (is this short ref a tag, which branch is the default) come from a table, counted.
 */
import { expect, test } from "bun:test";
import { chooseByRef, type Follow, type RefCandidate, type RefQuestions } from "../../lib/bump/pushed-ref.ts";
import { UsageError } from "../../lib/core/errors.ts";

const nixpkgs = { owner: "nixos", repo: "nixpkgs" };
const janus = { owner: "inspr-at", repo: "janus" };
const gh = (source: { owner: string; repo: string }, ref?: string) => ({
  type: "github",
  ...source,
  ...(ref === undefined ? {} : { ref }),
});

const NIXPKGS: RefCandidate[] = [
  { name: "nixpkgs", original: gh(nixpkgs, "nixos-unstable"), source: nixpkgs },
  { name: "nixpkgs-stable", original: gh(nixpkgs, "nixos-25.05"), source: nixpkgs },
];
const JANUS: RefCandidate[] = [
  { name: "janus", original: gh(janus, "rust-engine-v0.1.17"), source: janus },
  { name: "janus-paimos-reporter", original: gh(janus, "rust-engine-v0.1.33"), source: janus },
];
const follow = (name: string): Follow => (name === "janus-paimos-reporter" ? "releases" : "branch");

/** GitHub's answers: the tags that exist and the default branch, with how often each was asked. */
function github(tags: readonly string[], defaultBranch = "main") {
  const asked = { isTag: 0, defaultBranch: 0 };
  const questions: RefQuestions = {
    isTag: async (_source, name) => {
      asked.isTag++;
      return tags.includes(name);
    },
    defaultBranch: async () => {
      asked.defaultBranch++;
      return defaultBranch;
    },
  };
  return { asked, questions };
}

interface Case {
  name: string;
  candidates: RefCandidate[];
  ref: string;
  tags?: string[];
  moves: { branch: string[]; releases: string[] };
  asked?: { isTag: number; defaultBranch: number };
  stays?: RegExp[];
}

const cases: Case[] = [
  {
    name: "a push to nixos-unstable moves only nixpkgs",
    candidates: NIXPKGS,
    ref: "refs/heads/nixos-unstable",
    moves: { branch: ["nixpkgs"], releases: [] },
    asked: { isTag: 0, defaultBranch: 0 },
    stays: [/'nixpkgs-stable' tracks 'nixos-25.05', not nixos-unstable/],
  },
  {
    name: "a push to nixos-25.05 moves only nixpkgs-stable",
    candidates: NIXPKGS,
    ref: "refs/heads/nixos-25.05",
    moves: { branch: ["nixpkgs-stable"], releases: [] },
  },
  {
    name: "a short ref that is no tag on GitHub is a branch, whatever its shape",
    candidates: NIXPKGS,
    ref: "nixos-25.05",
    tags: ["rust-engine-v0.1.34"],
    moves: { branch: ["nixpkgs-stable"], releases: [] },
    asked: { isTag: 1, defaultBranch: 0 },
  },
  {
    name: "a push of tag rust-engine-v0.1.34 moves only janus-paimos-reporter",
    candidates: JANUS,
    ref: "refs/tags/rust-engine-v0.1.34",
    moves: { branch: [], releases: ["janus-paimos-reporter"] },
    stays: [/janus: rust-engine-v0.1.34 is out; held at rust-engine-v0.1.17 by policy/],
  },
  {
    name: "a short ref that is a tag on GitHub is a tag",
    candidates: JANUS,
    ref: "rust-engine-v0.1.34",
    tags: ["rust-engine-v0.1.34"],
    moves: { branch: [], releases: ["janus-paimos-reporter"] },
    asked: { isTag: 1, defaultBranch: 0 },
  },
  {
    name: "an older tag moves nothing and says so",
    candidates: JANUS,
    ref: "refs/tags/rust-engine-v0.1.33",
    moves: { branch: [], releases: [] },
    stays: [
      /held at rust-engine-v0.1.17/,
      /'janus-paimos-reporter' stays at rust-engine-v0.1.33: rust-engine-v0.1.33 is the same release/,
    ],
  },
  {
    name: "a tag of another series moves nothing and names both series",
    candidates: JANUS,
    ref: "refs/tags/rust-engine-v0.1.40-rc1",
    moves: { branch: [], releases: [] },
    stays: [
      /held at rust-engine-v0.1.17/,
      /stays at rust-engine-v0.1.33: rust-engine-v0.1.40-rc1 is of another series \(rust-engine-v<n>.<n>.<n>-rc<n>, not rust-engine-v<n>.<n>.<n>\)/,
    ],
  },
  {
    name: "an input without a ref tracks the default branch, asked once",
    candidates: [
      { name: "a", original: gh(nixpkgs), source: nixpkgs },
      { name: "b", original: gh(nixpkgs, "nixos-25.05"), source: nixpkgs },
    ],
    ref: "refs/heads/master",
    tags: [],
    moves: { branch: ["a"], releases: [] },
    asked: { isTag: 0, defaultBranch: 1 },
  },
  {
    name: "a push to a branch nobody tracks moves nothing",
    candidates: NIXPKGS,
    ref: "refs/heads/staging",
    moves: { branch: [], releases: [] },
  },
];

test.each(cases)("$name", async ({ candidates, ref, tags, moves, asked, stays }) => {
  const { asked: count, questions } = github(tags ?? [], "master");
  const { choice } = await chooseByRef(ref, candidates, follow, questions);
  expect({ branch: choice.branch, releases: choice.releases.map((move) => move.name) }).toStrictEqual(moves);
  if (asked !== undefined) expect(count).toStrictEqual(asked);
  for (const pattern of stays ?? [])
    expect(choice.stays.map((stay) => stay.message).join("\n")).toMatch(pattern);
});

test("two inputs on one branch, none named: an error naming both and the 'input' setting", async () => {
  const both: RefCandidate[] = [
    { name: "nixpkgs", original: gh(nixpkgs, "nixos-unstable"), source: nixpkgs },
    { name: "nixpkgs-unfree", original: gh(nixpkgs, "nixos-unstable"), source: nixpkgs },
  ];
  const attempt = chooseByRef("refs/heads/nixos-unstable", both, follow, github([]).questions);
  await expect(attempt).rejects.toBeInstanceOf(UsageError);
  await expect(attempt).rejects.toThrow(
    /'nixpkgs' and 'nixpkgs-unfree' both track branch 'nixos-unstable'.*'input'/,
  );
});

test("a release move names the tag it leaves and the one it takes", async () => {
  const { choice } = await chooseByRef("refs/tags/rust-engine-v0.1.34", JANUS, follow, undefined);
  expect(choice.releases).toStrictEqual([
    { name: "janus-paimos-reporter", from: "rust-engine-v0.1.33", to: "rust-engine-v0.1.34" },
  ]);
});

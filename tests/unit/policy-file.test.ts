/**
 * The policy file as flake-bump reads it: the example of the README parsed with every line kept, and
 * each kind of mistake one usage error naming the file, the line and the key.
 */
import { expect, test } from "bun:test";
import { UsageError } from "../../lib/core/errors.ts";
import { type Policy, parsePolicy, readPolicy } from "../../lib/policy/file.ts";
import { EXAMPLE_POLICY as EXAMPLE } from "../support/policy.ts";

const FILE = ".github/flake-bump.yml";
const KNOWN = ["nixpkgs", "nixpkgs-stable", "home-manager", "janus", "hostdash"];
const FIX = "fix the policy file (every key is described in docs/policy.md)";

test("the example: every level, every setting and the line it is on", () => {
  const expected: Policy = {
    file: FILE,
    defaults: {
      key: "defaults",
      line: 2,
      settings: { merge: "review", follow: "branch", schedule: "daily", "min-age": "0h" },
      lines: { merge: 3, follow: 4, schedule: 5, "min-age": 6 },
    },
    groups: [
      {
        key: "groups.nixpkgs",
        line: 8,
        name: "nixpkgs",
        inputs: ["nixpkgs", "nixpkgs-stable", "home-manager"],
        settings: { merge: "auto", schedule: "weekly" },
        lines: { merge: 11, schedule: 10 },
      },
    ],
    inputs: {
      janus: { key: "inputs.janus", line: 13, settings: { follow: "none" }, lines: { follow: 14 } },
      hostdash: { key: "inputs.hostdash", line: 15, settings: { merge: "auto" }, lines: { merge: 16 } },
    },
    companions: {},
  };
  expect(parsePolicy(EXAMPLE, FILE, KNOWN)).toStrictEqual(expected);
});

test("an empty file, or one of comments only, sets nothing", () => {
  const none: Policy = { file: FILE, defaults: undefined, groups: [], inputs: {}, companions: {} };
  expect([parsePolicy("", FILE, KNOWN), parsePolicy("# nothing yet\n", FILE, KNOWN)]).toStrictEqual([
    none,
    none,
  ]);
});

interface Bad {
  name: string;
  yaml: string;
  error: string;
}
const bad: Bad[] = [
  {
    name: "an unknown top-level key",
    yaml: "defaults:\n  merge: auto\ndefault:\n  merge: auto\n",
    error: `${FILE}:3: 'default' is not a known key (known here: defaults, groups, inputs)`,
  },
  {
    name: "an unknown setting, on its own line",
    yaml: "inputs:\n  janus:\n    follow: none\n    mrege: auto\n",
    error: `${FILE}:4: 'inputs.janus.mrege' is not a known key (known here: merge, follow, schedule, min-age, companions)`,
  },
  {
    name: "a bad duration and a bad merge mode: both, each on its line",
    yaml: "defaults:\n  merge: yolo\n  min-age: 3x\n",
    error: `${FILE}:2: 'defaults.merge' must be review, auto or direct; ${FILE}:3: 'defaults.min-age' must be a duration in hours or days, such as 36h or 3d`,
  },
  {
    name: "a duration written as a number",
    yaml: "\n\ndefaults:\n  min-age: 0\n",
    error: `${FILE}:4: 'defaults.min-age' must be a duration in hours or days, such as 36h or 3d`,
  },
  {
    name: "a follow value there is not",
    yaml: "inputs:\n  janus:\n    follow: tags\n",
    error: `${FILE}:3: 'inputs.janus.follow' must be branch (follow the locked branch), releases (newer tags of the pinned tag's series) or none (only moved when named)`,
  },
  {
    name: "an input flake.lock does not have",
    yaml: "inputs:\n  nixfleet:\n    merge: auto\n",
    error: `${FILE}:2: 'inputs.nixfleet' is not an input (flake.lock's root inputs are: ${KNOWN.join(", ")})`,
  },
  {
    name: "a group member flake.lock does not have",
    yaml: "groups:\n  nixpkgs:\n    inputs:\n      - nixpkgs\n      - nixpkgs-stabel\n",
    error: `${FILE}:5: 'groups.nixpkgs.inputs[1]' names 'nixpkgs-stabel', which is not an input (flake.lock's root inputs are: ${KNOWN.join(", ")})`,
  },
  {
    name: "an input in two groups: both lines",
    yaml: "groups:\n  a:\n    inputs: [nixpkgs, janus]\n  b:\n    inputs:\n      - hostdash\n      - janus\n",
    error: `${FILE}:3 and ${FILE}:7: input 'janus' is in two groups ('groups.a.inputs[1]' and 'groups.b.inputs[1]'); keep it in one`,
  },
  {
    name: "a group member with a merge of its own",
    yaml: "groups:\n  nixpkgs:\n    inputs: [nixpkgs]\ninputs:\n  nixpkgs:\n    merge: direct\n",
    error: `${FILE}:6: 'inputs.nixpkgs.merge' is set, but 'nixpkgs' lands with its group's pull request; set merge on 'groups.nixpkgs' instead`,
  },
  {
    name: "a group without inputs",
    yaml: "groups:\n  nixpkgs:\n    merge: auto\n",
    error: `${FILE}:2: 'groups.nixpkgs.inputs' is required`,
  },
  {
    name: "a group name that cannot be a branch",
    yaml: "groups:\n  'a/b':\n    inputs: [nixpkgs]\n",
    error: `${FILE}:2: 'groups.a/b' must be a group name: letters, digits, '-' and '_'`,
  },
  {
    name: "an input entry left empty",
    yaml: "inputs:\n  janus:\n",
    error: `${FILE}:2: 'inputs.janus' must be a mapping of merge, follow, schedule, min-age, companions`,
  },
  {
    name: "a list where a mapping belongs",
    yaml: "defaults:\n  - merge\n  - auto\n",
    error: `${FILE}:1: 'defaults' must be a mapping of merge, follow, schedule, min-age`,
  },
  {
    name: "a file that is not a mapping",
    yaml: "just text\n",
    error: `${FILE}:1: the file must be a mapping of defaults, groups, inputs`,
  },
  {
    name: "a key twice",
    yaml: "defaults:\n  merge: auto\n  merge: review\n",
    error: `${FILE}:3: not valid YAML (Map keys must be unique)`,
  },
  {
    name: "broken YAML",
    yaml: "groups:\n  nixpkgs:\n    inputs: [nixpkgs\n",
    error: `${FILE}:4: not valid YAML (Flow sequence in block collection must be sufficiently indented and end with a ])`,
  },
];

test.each(bad)("$name: one usage error naming the file, the line and the key", ({ yaml, error }) => {
  let thrown: unknown;
  try {
    parsePolicy(yaml, FILE, KNOWN);
  } catch (caught) {
    thrown = caught;
  }
  expect(thrown).toBeInstanceOf(UsageError);
  expect(thrown instanceof Error ? thrown.message : thrown).toBe(`${error}; ${FIX}`);
});

test("without flake.lock's inputs the names are not checked, the rest is", () => {
  expect(Object.keys(parsePolicy("inputs:\n  anything: {}\n", FILE).inputs)).toStrictEqual(["anything"]);
  expect(() => parsePolicy("inputs:\n  anything: {merge: x}\n", FILE)).toThrow(UsageError);
});

test("a missing file is no policy, unless it was named", async () => {
  const missing = "/nonexistent/flake-bump-policy.yml";
  expect(await readPolicy(missing, FILE, { required: false })).toBeUndefined();
  await expect(readPolicy(missing, "ops/policy.yml", { required: true })).rejects.toThrow(
    "policy file ops/policy.yml does not exist; create it or pass the right path to --config",
  );
});

test("an input named 'group' outside every group: its branch would clash with the groups' branches", () => {
  const known = [...KNOWN, "group"];
  const grouped = "groups:\n  nixpkgs:\n    inputs: [nixpkgs]\n";
  expect(() => parsePolicy(grouped, FILE, known)).toThrow(
    new UsageError(
      `${FILE}:1: input 'group' would get its own branch <branch-prefix>group, which git cannot keep beside the groups' branches <branch-prefix>group/<name>; add 'group' to one of the groups (e.g. 'groups.nixpkgs.inputs'), or rename the input in flake.nix; ${FIX}`,
    ),
  );
  // In a group it has no branch of its own; without groups there is no group/<name> branch.
  const cases: Array<[string, string[]]> = [
    ["groups:\n  nixpkgs:\n    inputs: [nixpkgs, group]\n", ["nixpkgs"]],
    ["inputs:\n  group:\n    merge: auto\n", []],
    [grouped, ["nixpkgs"]],
  ];
  const members = cases.map(([yaml], i) =>
    parsePolicy(yaml, FILE, i === 2 ? KNOWN : known).groups.flatMap((g) =>
      g.inputs.filter((n) => n !== "group"),
    ),
  );
  expect(members).toStrictEqual(cases.map(([, m]) => m));
});

test("an input's companions: the submodule paths listed, beside its settings", () => {
  const yaml = "inputs:\n  hostdash:\n    merge: auto\n    companions: [doctrine, vendor/hostdash]\n";
  const policy = parsePolicy(yaml, FILE, KNOWN);
  expect(policy.companions).toStrictEqual({ hostdash: ["doctrine", "vendor/hostdash"] });
  expect(policy.inputs.hostdash?.settings).toStrictEqual({ merge: "auto" });
  expect(() => parsePolicy("inputs:\n  hostdash:\n    companions: doctrine\n", FILE, KNOWN)).toThrow(
    `${FILE}:3: 'inputs.hostdash.companions' must be a list of submodule paths as .gitmodules gives them, such as [doctrine]`,
  );
  // Companions are an input's own: a group or the defaults cannot list them.
  expect(() => parsePolicy("defaults:\n  companions: [doctrine]\n", FILE, KNOWN)).toThrow(
    "'defaults.companions' is not a known key",
  );
});

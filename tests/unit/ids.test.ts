import { expect, test } from "bun:test";
import * as v from "valibot";
import {
  Branch,
  EventType,
  GitRef,
  InputName,
  Label,
  Login,
  RepositoryName,
  Sha,
} from "../../lib/core/ids.ts";

interface Case {
  schema: v.GenericSchema;
  name: string;
  good: string[];
  bad: string[];
}
const cases: Case[] = [
  {
    schema: Sha,
    name: "Sha",
    good: ["887daaf2b11c1375d98b35cc0c769fc9e9512861"],
    bad: ["887daaf", "887DAAF2B11C1375D98B35CC0C769FC9E9512861"],
  },
  {
    schema: InputName,
    name: "InputName",
    good: ["nixpkgs", "home-manager", "x'"],
    bad: ["", "1x", "a/b", "a b"],
  },
  {
    schema: RepositoryName,
    name: "RepositoryName",
    good: ["acme/nixcfg", "a-b/c.d_e"],
    bad: ["acme", "acme/..", "acme/.", "-a/b", "a/b/c"],
  },
  {
    schema: Branch,
    name: "Branch",
    good: ["main", "flake-bump/", "release/2026"],
    bad: ["a..b", "a b", "/a", "x".repeat(201)],
  },
  {
    schema: GitRef,
    name: "GitRef",
    good: ["refs/heads/main", "main", "refs/tags/v1.0"],
    bad: ["a..b", "/refs", "a b", "x".repeat(256)],
  },
  { schema: EventType, name: "EventType", good: ["flake-input-updated", "a.b_c"], bad: ["", "-a", "a b"] },
  { schema: Login, name: "Login", good: ["alice", "bob-2"], bad: ["@alice", "a b"] },
  { schema: Label, name: "Label", good: ["needs review", "x".repeat(50)], bad: ["", "x".repeat(51)] },
];
test.each(cases)("$name", ({ schema, good, bad }) => {
  expect([good.map((text) => v.is(schema, text)), bad.map((text) => v.is(schema, text))]).toStrictEqual([
    good.map(() => true),
    bad.map(() => false),
  ]);
});

/**
 * The newest release of each release-following input (lib/bump/releases.ts) against the fast tier's
 * fake GitHub, with real git tags in its bare repositories: lightweight and annotated (peeled to
 * their commit), pre-releases and other series beside them, and the request budget of a quiet night.
 */
import { afterAll, beforeAll, beforeEach, expect, test } from "bun:test";
import { $ } from "zx/core";
import { newestReleases, newsLine, type ReleaseQuery, releaseNews } from "../../lib/bump/releases.ts";
import { createOctokit, type Octokit } from "../../lib/github/client.ts";
import { type FakeGitHub, localFakeGitHub } from "../fake-github/index.ts";

let fake: FakeGitHub;
let octokit: Octokit;
/** Tag → the commit it names. */
const commits = new Map<string, string>();

const GIT_ENV = {
  ...process.env,
  GIT_COMMITTER_NAME: "Release Bot",
  GIT_COMMITTER_EMAIL: "release@example.com",
  GIT_AUTHOR_NAME: "Release Bot",
  GIT_AUTHOR_EMAIL: "release@example.com",
};

/** A commit per tag, a day apart, tagged in the fake's bare repository: annotated when asked. */
async function release(tag: string, day: number, annotated = false): Promise<void> {
  const sha = await fake.push("inspr-at", "janus", { VERSION: `${tag}\n` }, `release ${tag}`, {
    date: new Date(Date.UTC(2026, 0, day)),
  });
  const gitDir = fake.repo("inspr-at", "janus").gitDir;
  const args = annotated ? ["-a", "-m", `Release ${tag}`, tag, sha] : [tag, sha];
  await $({ env: GIT_ENV, quiet: true })`git --git-dir=${gitDir} tag ${args}`;
  commits.set(tag, sha);
}

beforeAll(async () => {
  fake = await localFakeGitHub();
  octokit = createOctokit({ baseUrl: fake.apiUrl, token: fake.token, waitScale: 0 });
  await fake.createRepo("inspr-at", "janus", { files: { "flake.nix": "{ outputs = _: { }; }\n" } });
  // The fleet's day of three releases, the pinned ones, a later pre-release and other series.
  let day = 1;
  for (const n of [15, 16, 17, 33]) await release(`rust-engine-v0.1.${n}`, day++);
  await release("rust-engine-v0.1.34", day++, true);
  await release("rust-engine-v0.1.40-rc1", day++);
  await release("rust-engine-v0.2", day++);
  await release("python-v9.9.9", day++);
});
afterAll(() => fake?.stop());
beforeEach(() => {
  fake.faults.length = 0;
  fake.requests.length = 0;
});

const janus = { owner: "inspr-at", repo: "janus" };
const query = (name: string, tag: string): ReleaseQuery => ({ name, source: janus, tag });

test("the newest release of the series, annotated tag peeled to its commit, with the tags in between", async () => {
  const [answer] = await newestReleases([query("janus", "rust-engine-v0.1.17")], { octokit });
  expect(answer).toStrictEqual({
    name: "janus",
    status: "newer",
    tag: "rust-engine-v0.1.34",
    rev: commits.get("rust-engine-v0.1.34") ?? "",
    between: ["rust-engine-v0.1.33"],
  });
  fake.assertNoViolations();
});

test("a pin at the newest release is current; a pre-release pin follows its own series", async () => {
  const answers = await newestReleases(
    [query("reporter", "rust-engine-v0.1.34"), query("rc", "rust-engine-v0.1.39-rc1")],
    { octokit },
  );
  expect(answers.map((a) => [a.name, a.status, "tag" in a ? a.tag : undefined])).toStrictEqual([
    ["reporter", "current", "rust-engine-v0.1.34"],
    ["rc", "unknown", undefined],
  ]);
  // `rust-engine-v0.1.39-rc1` is no tag on GitHub: a ref shaped like a tag is not taken for one.
  expect(answers[1]).toMatchObject({ reason: "'rust-engine-v0.1.39-rc1' is not a tag of inspr-at/janus" });
});

test("a quiet night with 20 release inputs asks GitHub once", async () => {
  const queries = Array.from({ length: 20 }, (_, i) => query(`janus-${i}`, "rust-engine-v0.1.34"));
  const answers = await newestReleases(queries, { octokit });
  expect(answers.every((answer) => answer.status === "current")).toBe(true);
  expect(fake.requests.map((request) => request.operationId)).toStrictEqual(["graphql"]);
  fake.assertNoViolations();
});

test("without GraphQL, REST answers the same, peeling the annotated tag, and says so once", async () => {
  fake.injectFault({ path: "/graphql", status: 502, times: 10 });
  const warnings: string[] = [];
  const [answer] = await newestReleases([query("janus", "rust-engine-v0.1.17")], {
    octokit,
    warn: (line) => warnings.push(line),
  });
  expect(answer).toMatchObject({
    status: "newer",
    tag: "rust-engine-v0.1.34",
    rev: commits.get("rust-engine-v0.1.34"),
  });
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toMatch(/GraphQL API did not answer \(HTTP 502\)/);
  fake.assertNoViolations();
});

test("--check's news: a move for the input that follows releases, information for the one held back", async () => {
  const node = (tag: string) => ({
    locked: { type: "github", owner: "inspr-at", repo: "janus", rev: "0".repeat(40) },
    original: { type: "github", owner: "inspr-at", repo: "janus", ref: tag },
  });
  const inputs = [
    { name: "janus", node: node("rust-engine-v0.1.17") },
    { name: "janus-paimos-reporter", node: node("rust-engine-v0.1.33") },
    { name: "unreleased", node: node("rust-engine-v0.1.99") },
  ];
  const news = await releaseNews(inputs, { "janus-paimos-reporter": "releases" }, (queries) =>
    newestReleases(queries, { octokit }),
  );
  expect(news.map(newsLine)).toStrictEqual([
    "janus: rust-engine-v0.1.34 is out; held at rust-engine-v0.1.17 by policy",
    "'janus-paimos-reporter' is behind: rust-engine-v0.1.33 → rust-engine-v0.1.34 (follows releases)",
  ]);
  // One request for all three; `rust-engine-v0.1.99` is no tag on GitHub, so it says nothing.
  expect(fake.requests.map((request) => request.operationId)).toStrictEqual(["graphql"]);
});

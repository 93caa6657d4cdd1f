/**
 * The one commit writer (lib/pr/commit.ts), in process against a fake GitHub on an ephemeral port:
 * files, gitlinks (mode 160000, a submodule pin) and deletions in one Verified commit; the branch
 * created, or moved by a non-forced update with the hook run first; a lost swap re-read and planned
 * again, given up after SWAP_ATTEMPTS. Request sequences are asserted exactly.
 */

import {
  afterAll,
  afterEach,
  beforeAll,
  beforeEach,
  describe,
  expect,
  setDefaultTimeout,
  test,
} from "bun:test";
import { createOctokit, type Octokit, type RepositoryClient } from "../../lib/github/client.ts";
import {
  type BaseCommit,
  commitBySwap,
  type NewCommit,
  type PathChange,
  SWAP_ATTEMPTS,
  writeCommit,
} from "../../lib/pr/commit.ts";
import { type FakeGitHub, type HandlerContext, localFakeGitHub } from "../fake-github/index.ts";
import { runningFirst } from "../support/handlers.ts";

setDefaultTimeout(30_000);

const BRANCH = "flake-bump/x";
/** A commit of another repository, as a submodule pin names it: GitHub does not check it exists. */
const PINNED = "3".repeat(40);

let fake: FakeGitHub;
let octokit: Octokit;
let gh: RepositoryClient;
let down = { owner: "acme", repo: "cfg" };
let repos = 0;
let since = 0;
/** Runs inside the fake just before it applies a `git/update-ref` (a concurrent writer). */
let beforeUpdateRef: ((ctx: HandlerContext) => Promise<void>) | undefined;

const updateRef = runningFirst("git/update-ref", () => beforeUpdateRef);

const calls = () => fake.requests.slice(since).map((r) => `${r.operationId} ${r.status}`);
const mark = () => {
  since = fake.requests.length;
};

async function mainCommit(): Promise<BaseCommit> {
  const sha = (await fake.branchSha(down.owner, down.repo, "main")) ?? "";
  const { data } = await octokit.rest.git.getCommit({ ...down, commit_sha: sha });
  return { sha, tree: data.tree.sha };
}

/** Every entry of a commit's tree, as GitHub's recursive tree listing answers it. */
async function treeOf(sha: string) {
  const { data: commit } = await octokit.rest.git.getCommit({ ...down, commit_sha: sha });
  const { data } = await octokit.rest.git.getTree({ ...down, tree_sha: commit.tree.sha, recursive: "1" });
  return data.tree.map(({ path, mode, type, sha }) => ({ path, mode, type, sha }));
}

const parentsOf = async (sha: string) =>
  (await octokit.rest.git.getCommit({ ...down, commit_sha: sha })).data.parents.map((p) => p.sha);

function newCommit(base: BaseCommit, head: string | undefined, changes: readonly PathChange[]): NewCommit {
  return { base, head, changes, message: "chore: pin things\n\nbody" };
}

beforeAll(async () => {
  fake = await localFakeGitHub({ handlers: { "git/update-ref": updateRef } });
  octokit = createOctokit({ baseUrl: fake.apiUrl, token: fake.token, waitScale: 0 });
});
afterAll(() => fake?.stop());

beforeEach(async () => {
  beforeUpdateRef = undefined;
  down = { owner: "acme", repo: `cfg-${++repos}` };
  gh = { octokit, repo: down };
  await fake.createRepo(down.owner, down.repo, {
    files: { "flake.nix": "{ outputs = _: { }; }\n", "flake.lock": "{}\n", "old/notes.md": "gone soon\n" },
  });
  mark();
});
afterEach(() => fake.assertNoViolations());

describe("writeCommit", () => {
  test("a file, a gitlink and a deletion in one Verified commit on the base's tree", async () => {
    const base = await mainCommit();
    mark();
    const written = await writeCommit(
      gh,
      newCommit(base, undefined, [
        { path: "flake.lock", content: '{ "x": 1 }\n' },
        { path: "vendor/companion", gitlink: PINNED },
        { path: "old/notes.md", delete: true },
      ]),
    );
    expect(calls()).toStrictEqual(["git/create-tree 201", "git/create-commit 201"]);
    expect(written.base).toStrictEqual(base);
    expect(await parentsOf(written.sha)).toStrictEqual([base.sha]);
    expect(fake.isVerified(down.owner, down.repo, written.sha)).toBe(true);
    expect(fake.requests.find((r) => r.operationId === "git/create-commit")?.body).not.toHaveProperty(
      "author",
    );
    const tree = await treeOf(written.sha);
    expect(tree.find((entry) => entry.path === "vendor/companion")).toStrictEqual({
      path: "vendor/companion",
      mode: "160000",
      type: "commit",
      sha: PINNED,
    });
    expect(tree.map((entry) => entry.path).filter((path) => path.startsWith("old"))).toStrictEqual([]);
    expect(tree.find((entry) => entry.path === "flake.nix")).toMatchObject({ mode: "100644", type: "blob" });
  });

  test("a gitlink moved to another commit replaces the old pin", async () => {
    const base = await mainCommit();
    const first = await writeCommit(gh, newCommit(base, undefined, [{ path: "sub", gitlink: PINNED }]));
    const { data } = await octokit.rest.git.getCommit({ ...down, commit_sha: first.sha });
    const next = "4".repeat(40);
    const second = await writeCommit(
      gh,
      newCommit({ sha: first.sha, tree: data.tree.sha }, undefined, [{ path: "sub", gitlink: next }]),
    );
    expect((await treeOf(second.sha)).filter((entry) => entry.path === "sub")).toStrictEqual([
      { path: "sub", mode: "160000", type: "commit", sha: next },
    ]);
  });

  test("a base GitHub does not know is rebuilt on baseIfUnknown's", async () => {
    const base = await mainCommit();
    mark();
    const unknown = { sha: "1".repeat(40), tree: "2".repeat(40) };
    const written = await writeCommit(gh, {
      ...newCommit(unknown, undefined, [{ path: "flake.lock", content: "{}\n\n" }]),
      baseIfUnknown: async () => base,
    });
    expect(calls()).toStrictEqual(["git/create-tree 422", "git/create-tree 201", "git/create-commit 201"]);
    expect(written.base).toStrictEqual(base);
  });

  test("without baseIfUnknown an unknown base is GitHub's sentence", async () => {
    const unknown = { sha: "1".repeat(40), tree: "2".repeat(40) };
    await expect(writeCommit(gh, newCommit(unknown, undefined, []))).rejects.toThrow(
      "GitHub refused to create the git tree (422",
    );
  });
});

describe("commitBySwap", () => {
  /** A swap that writes one file onto `branch`, following whatever head the branch has. */
  const swap = (branch: string, base: BaseCommit, beforeMove?: () => Promise<void>) => ({
    branch,
    head: undefined as string | undefined,
    plan: async (head: string | undefined) => ({
      write: newCommit(base, head, [{ path: "flake.lock", content: `${head ?? "new"}\n` }]),
      wrote: (written: { sha: string }) => written.sha,
    }),
    reread: async () => fake.branchSha(down.owner, down.repo, branch),
    beforeMove,
  });

  test("creates a branch without running the hook, then moves it with a non-forced update after it", async () => {
    const base = await mainCommit();
    const order: string[] = [];
    const hook = async () => {
      order.push(`hook after ${calls().at(-1)}`);
    };
    mark();
    const created = await commitBySwap(gh, swap(BRANCH, base, hook));
    expect(calls()).toStrictEqual(["git/create-tree 201", "git/create-commit 201", "git/create-ref 201"]);
    expect(order).toStrictEqual([]);
    mark();
    const moved = await commitBySwap(gh, { ...swap(BRANCH, base, hook), head: created });
    expect(calls()).toStrictEqual(["git/create-tree 201", "git/create-commit 201", "git/update-ref 200"]);
    expect(order).toStrictEqual(["hook after git/create-commit 201"]);
    expect(fake.requests.find((r) => r.operationId === "git/update-ref")?.body).toMatchObject({
      force: false,
    });
    expect(await parentsOf(moved)).toStrictEqual([base.sha, created]);
    expect(await fake.branchSha(down.owner, down.repo, BRANCH)).toBe(moved);
  });

  test("a commit onto the base branch itself has the old head as its only parent", async () => {
    const base = await mainCommit();
    const sha = await commitBySwap(gh, { ...swap("main", base), head: base.sha });
    expect(await parentsOf(sha)).toStrictEqual([base.sha]);
    expect(await fake.branchSha(down.owner, down.repo, "main")).toBe(sha);
  });

  test("a lost swap is re-read and planned again on the new head; the hook runs once", async () => {
    const base = await mainCommit();
    const first = await commitBySwap(gh, swap(BRANCH, base));
    let theirs = "";
    beforeUpdateRef = async (ctx) => {
      beforeUpdateRef = undefined;
      const repo = ctx.world.repo(down.owner, down.repo);
      theirs = await ctx.world.push(repo, { "flake.lock": "theirs\n" }, "theirs", { branch: BRANCH });
    };
    let hooks = 0;
    mark();
    const sha = await commitBySwap(gh, {
      ...swap(BRANCH, base, async () => {
        hooks++;
      }),
      head: first,
    });
    expect(calls()).toStrictEqual([
      "git/create-tree 201",
      "git/create-commit 201",
      "git/update-ref 422",
      "git/create-tree 201",
      "git/create-commit 201",
      "git/update-ref 200",
    ]);
    expect(hooks).toBe(1);
    expect(await parentsOf(sha)).toStrictEqual([base.sha, theirs]);
  });

  test(`gives up after ${SWAP_ATTEMPTS} lost swaps with one sentence saying a rerun is safe`, async () => {
    const base = await mainCommit();
    const first = await commitBySwap(gh, swap(BRANCH, base));
    beforeUpdateRef = async (ctx) => {
      const repo = ctx.world.repo(down.owner, down.repo);
      await ctx.world.push(repo, { "flake.lock": `${Math.random()}\n` }, "theirs", { branch: BRANCH });
    };
    mark();
    await expect(commitBySwap(gh, { ...swap(BRANCH, base), head: first })).rejects.toThrow(
      `branch '${BRANCH}' kept moving under ${SWAP_ATTEMPTS} attempts (concurrent runs); rerun, it is safe to repeat`,
    );
    expect(calls().filter((c) => c === "git/update-ref 422")).toHaveLength(SWAP_ATTEMPTS);
  });
});

/**
 * The rolling branch's compare-and-swap (lib/pr/branch.ts), in process against a fake GitHub on an
 * ephemeral port: created, moved by fast-forward only, never moved back, retried after losing the
 * race to a concurrent writer, given up after SWAP_ATTEMPTS. Request sequences are asserted exactly,
 * so a change that costs a request fails here.
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
import { createHash } from "node:crypto";
import type { InputChange } from "../../lib/flake/report.ts";
import { createOctokit, type Octokit, type RepositoryClient } from "../../lib/github/client.ts";
import { type BranchHead, readHead, type Swap, swapBranch } from "../../lib/pr/branch.ts";
import { type BaseCommit, SWAP_ATTEMPTS } from "../../lib/pr/commit.ts";
import { commitMessage, type PrText, prBody, prTitle } from "../../lib/pr/text.ts";
import { type FakeGitHub, type HandlerContext, localFakeGitHub } from "../fake-github/index.ts";
import { runningFirst } from "../support/handlers.ts";
import { upstreamHistory } from "../support/history.ts";

// Each case makes a handful of real git objects in the fake; a busy machine needs more than 5 s.
setDefaultTimeout(30_000);

const UP = { owner: "acme", repo: "x" };
/** Each test gets its own downstream repository, so no test waits for a reset. */
let DOWN = { owner: "acme", repo: "cfg" };
let repos = 0;
/** Where the current test's own requests start in `fake.requests`. */
let since = 0;
const BRANCH = "flake-bump/x";

let fake: FakeGitHub;
let octokit: Octokit;
let gh: RepositoryClient;
/** acme/x's main, oldest first. */
let up: string[];
/**
 * A concurrent writer, run inside the fake just before it applies our `git/update-ref`: the branch
 * moves between our read and our write, as when another run wins the race.
 */
let beforeUpdateRef: ((ctx: HandlerContext) => Promise<void>) | undefined;

const updateRef = runningFirst("git/update-ref", () => beforeUpdateRef);

const at = (i: number) => up[i] ?? "";

function change(to: number, from = 0): InputChange {
  const text = `{ "x": "${at(to)}" }\n`;
  return {
    name: "x",
    from: { ref: `github:acme/x/${at(from)}`, rev: at(from) },
    to: { ref: `github:acme/x/${at(to)}`, rev: at(to) },
    github: UP,
    transitive: { added: [], removed: [], changed: [] },
    lock: { text, sha256: createHash("sha256").update(text).digest("hex") },
  };
}

const textOf = (c: InputChange): PrText => ({
  title: prTitle(c.name, c.to.rev ?? ""),
  body: prBody({ change: c }),
});

function swap(to: number, extra: Partial<Swap> = {}): Swap {
  const c = change(to);
  return {
    branch: BRANCH,
    base: "main",
    path: "flake.lock",
    change: c,
    text: async () => textOf(c),
    branchLikelyExists: true,
    ...extra,
  };
}

/** What the fake answered since `from`, as `operationId status`. */
const calls = () => fake.requests.slice(since).map((r) => `${r.operationId} ${r.status}`);
const mark = () => {
  since = fake.requests.length;
};

async function commit(sha: string) {
  const { data } = await octokit.rest.git.getCommit({ ...DOWN, commit_sha: sha });
  return data;
}

async function mainCommit(): Promise<BaseCommit> {
  const sha = (await fake.branchSha(DOWN.owner, DOWN.repo, "main")) ?? "";
  return { sha, tree: (await commit(sha)).tree.sha };
}

/**
 * Another run's head commit for `rev` on top of the branch, written straight into the repository
 * from inside a handler (the fake applies one request at a time, so it goes through its world).
 */
function concurrentHead(ctx: HandlerContext, to: number): Promise<string> {
  const c = change(to);
  return ctx.world.push(
    ctx.world.repo(DOWN.owner, DOWN.repo),
    { "flake.lock": c.lock.text },
    commitMessage(textOf(c)),
    {
      branch: BRANCH,
    },
  );
}

beforeAll(async () => {
  fake = await localFakeGitHub({ handlers: { "git/update-ref": updateRef } });
  octokit = createOctokit({ baseUrl: fake.apiUrl, token: fake.token, waitScale: 0 });
  up = await upstreamHistory(fake, UP, 4);
});
afterAll(() => fake?.stop());

beforeEach(async () => {
  beforeUpdateRef = undefined;
  DOWN = { owner: "acme", repo: `cfg-${++repos}` };
  gh = { octokit, repo: DOWN };
  await fake.createRepo(DOWN.owner, DOWN.repo, {
    files: { "flake.nix": '{ inputs.x.url = "github:acme/x"; outputs = _: { }; }\n', "flake.lock": "{}\n" },
  });
  mark();
});

/** Create the branch at `to` on the current main, then forget the requests it took. */
async function existing(to: number): Promise<BranchHead> {
  const { head } = await swapBranch(gh, swap(to, { branchLikelyExists: false }));
  mark();
  return head;
}

describe("swapBranch", () => {
  test("creates the branch from the base it reads: one commit, parents [base], no author (Verified)", async () => {
    const base = await mainCommit();
    mark();
    const { head, wrote } = await swapBranch(gh, swap(2, { branchLikelyExists: false }));
    expect(wrote).toBe(true);
    expect(calls()).toStrictEqual([
      "repos/get-commit 200",
      "git/create-tree 201",
      "git/create-commit 201",
      "git/create-ref 201",
    ]);
    expect(await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)).toBe(head.sha);
    expect((await commit(head.sha)).parents.map((p) => p.sha)).toStrictEqual([base.sha]);
    expect(fake.isVerified(DOWN.owner, DOWN.repo, head.sha)).toBe(true);
    expect(fake.requests.find((r) => r.operationId === "git/create-commit")?.body).not.toHaveProperty(
      "author",
    );
    expect(head).toMatchObject({ rev: at(2), base: base.sha });
    expect(await fake.readFile(DOWN.owner, DOWN.repo, BRANCH, "flake.lock")).toBe(change(2).lock.text);
  });

  test("a known checkout commit saves reading the base", async () => {
    const checkout = await mainCommit();
    mark();
    const { head } = await swapBranch(gh, swap(2, { branchLikelyExists: false, checkout }));
    expect(calls()).toStrictEqual(["git/create-tree 201", "git/create-commit 201", "git/create-ref 201"]);
    expect((await commit(head.sha)).parents.map((p) => p.sha)).toStrictEqual([checkout.sha]);
  });

  test("a checkout GitHub does not know (unpushed) falls back to reading the base", async () => {
    const base = await mainCommit();
    const checkout = { sha: "1".repeat(40), tree: "2".repeat(40) };
    mark();
    const { head } = await swapBranch(gh, swap(2, { branchLikelyExists: false, checkout }));
    expect(calls()).toStrictEqual([
      "git/create-tree 422",
      "repos/get-commit 200",
      "git/create-tree 201",
      "git/create-commit 201",
      "git/create-ref 201",
    ]);
    expect((await commit(head.sha)).parents.map((p) => p.sha)).toStrictEqual([base.sha]);
  });

  test("moves by fast-forward: parents [base, old head], a non-forced update", async () => {
    const old = await existing(1);
    const { head, wrote } = await swapBranch(
      gh,
      swap(3, { known: old, ancestors: async () => new Set([at(1)]) }),
    );
    expect(wrote).toBe(true);
    expect(calls()).toStrictEqual([
      "repos/get-commit 200",
      "git/create-tree 201",
      "git/create-commit 201",
      "git/update-ref 200",
    ]);
    expect(fake.requests.find((r) => r.operationId === "git/update-ref")?.body).toMatchObject({
      force: false,
    });
    expect((await commit(head.sha)).parents.map((p) => p.sha)).toStrictEqual([old.base ?? "", old.sha]);
    expect(await readHead(gh, BRANCH)).toMatchObject({ sha: head.sha, rev: at(3) });
  });

  test("reuses the checkout only when the old head was built on it, never an older base", async () => {
    const older = await mainCommit();
    await fake.push(DOWN.owner, DOWN.repo, { "README.md": "later\n" }, "docs");
    const newer = await mainCommit();
    const old = await existing(1); // built on `newer`
    expect(old.base).toBe(newer.sha);
    mark();

    const { head } = await swapBranch(gh, swap(2, { known: old, checkout: older }));
    expect(calls()).toContain("repos/get-commit 200");
    expect((await commit(head.sha)).parents.map((p) => p.sha)).toStrictEqual([newer.sha, old.sha]);

    mark();
    const again = await swapBranch(
      gh,
      swap(3, { known: head, checkout: newer, ancestors: async () => new Set([at(2)]) }),
    );
    expect(calls()).toStrictEqual(["git/create-tree 201", "git/create-commit 201", "git/update-ref 200"]);
    expect((await commit(again.head.sha)).parents.map((p) => p.sha)).toStrictEqual([newer.sha, head.sha]);
  });

  test("never moves back: a head at a newer rev stays, decided by the compare API", async () => {
    const newer = await existing(3);
    const { head, wrote } = await swapBranch(gh, swap(2, { known: newer }));
    expect(wrote).toBe(false);
    expect(head.sha).toBe(newer.sha);
    expect(calls()).toStrictEqual(["repos/compare-commits 200"]);
    expect(await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)).toBe(newer.sha);
  });

  test("a head at one of the upstream commits before the target is older without asking", async () => {
    const old = await existing(1);
    await swapBranch(gh, swap(3, { known: old, ancestors: async () => new Set([at(1), at(2), at(3)]) }));
    expect(calls()).not.toContain("repos/compare-commits 200");
  });

  test("the same rev and the same file: nothing written", async () => {
    const same = await existing(2);
    const { wrote } = await swapBranch(gh, swap(2, { known: same }));
    expect(wrote).toBe(false);
    expect(calls()).toStrictEqual(["repos/get-content 200"]);
  });

  test("loses the race to an older concurrent head: re-reads it and moves on top of it", async () => {
    const old = await existing(1);
    let theirs = "";
    beforeUpdateRef = async (ctx) => {
      beforeUpdateRef = undefined;
      theirs = await concurrentHead(ctx, 2);
    };
    const { head, wrote } = await swapBranch(
      gh,
      swap(3, { known: old, ancestors: async () => new Set([at(1), at(2)]) }),
    );
    expect(wrote).toBe(true);
    expect(calls()).toStrictEqual([
      "repos/get-commit 200",
      "git/create-tree 201",
      "git/create-commit 201",
      "git/update-ref 422",
      "git/get-ref 200",
      "git/get-commit 200",
      "repos/get-commit 200",
      "git/create-tree 201",
      "git/create-commit 201",
      "git/update-ref 200",
    ]);
    expect((await commit(head.sha)).parents.map((p) => p.sha)[1]).toBe(theirs);
    expect(await readHead(gh, BRANCH)).toMatchObject({ sha: head.sha, rev: at(3) });
  });

  test("loses the race to a newer concurrent head: steps back and returns theirs", async () => {
    const old = await existing(1);
    let theirs = "";
    beforeUpdateRef = async (ctx) => {
      beforeUpdateRef = undefined;
      theirs = await concurrentHead(ctx, 4);
    };
    const { head, wrote } = await swapBranch(
      gh,
      swap(3, { known: old, ancestors: async () => new Set([at(1), at(2)]) }),
    );
    expect(wrote).toBe(false);
    expect(head).toMatchObject({ sha: theirs, rev: at(4) });
    expect(calls().slice(-2)).toStrictEqual(["git/get-commit 200", "repos/compare-commits 200"]);
    expect(await fake.branchSha(DOWN.owner, DOWN.repo, BRANCH)).toBe(theirs);
  });

  test(`gives up after ${SWAP_ATTEMPTS} lost swaps with a sentence saying a rerun is safe`, async () => {
    const old = await existing(1);
    // Every write meets a branch someone just moved (each time to an older rev, so we keep trying).
    beforeUpdateRef = async (ctx) => {
      await concurrentHead(ctx, 1);
    };
    await expect(
      swapBranch(gh, swap(3, { known: old, ancestors: async () => new Set([at(1)]) })),
    ).rejects.toThrow(
      `branch '${BRANCH}' kept moving under ${SWAP_ATTEMPTS} attempts (concurrent runs); rerun, it is safe to repeat`,
    );
    expect(calls().filter((c) => c === "git/update-ref 422")).toHaveLength(SWAP_ATTEMPTS);
    expect(calls()).not.toContain("git/update-ref 200");
  });
});

afterEach(() => fake.assertNoViolations());

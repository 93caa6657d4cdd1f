import { expect, test } from "bun:test";
import { $ } from "zx";
import { mapBounded } from "../../lib/core/bounded.ts";
import { UsageError } from "../../lib/core/errors.ts";
import { parseRepository } from "../../lib/core/ids.ts";
import { checkPayload } from "../../lib/github/dispatch.ts";
import { gitBlobSha } from "../../lib/pr/branch.ts";

const sha = "887daaf2b11c1375d98b35cc0c769fc9e9512861";

interface RepoCase {
  text: string;
  repo: { owner: string; repo: string } | undefined;
}
const repos: RepoCase[] = [
  { text: "acme/nixcfg", repo: { owner: "acme", repo: "nixcfg" } },
  { text: "https://github.com/acme/nixcfg.git", repo: { owner: "acme", repo: "nixcfg" } },
  { text: "https://github.com/acme/nixcfg", repo: { owner: "acme", repo: "nixcfg" } },
  { text: "git@github.com:acme/nixcfg.git", repo: { owner: "acme", repo: "nixcfg" } },
  { text: "ssh://git@github.com/acme/nix.cfg.git", repo: { owner: "acme", repo: "nix.cfg" } },
  { text: "not a repo", repo: undefined },
  { text: "acme/..", repo: undefined },
  { text: "https://github.com/../x.git", repo: undefined },
];
test.each(repos)("parseRepository($text)", ({ text, repo }) => {
  expect(parseRepository(text)).toStrictEqual(repo);
});

test("gitBlobSha matches git hash-object", async () => {
  const text = '{\n  "nodes": {}\n}\n';
  const out = await $({ input: text, quiet: true })`git hash-object --stdin`;
  expect(gitBlobSha(text)).toBe(out.stdout.trim());
});

test("a valid payload passes; a bad SHA or an oversized ref is refused", () => {
  expect(checkPayload({ sha, repository: "acme/nixfleet", ref: "refs/heads/main" })).toStrictEqual({
    sha,
    repository: "acme/nixfleet",
    ref: "refs/heads/main",
  });
  expect(() => checkPayload({ sha: "abc" })).toThrow(UsageError);
  expect(() => checkPayload({ sha, ref: `refs/heads/${"x".repeat(300)}` })).toThrow(UsageError);
});

test("mapBounded keeps order and never runs more than the limit at once", async () => {
  let running = 0;
  let peak = 0;
  const out = await mapBounded([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
    running++;
    peak = Math.max(peak, running);
    await Bun.sleep(5 * (8 - n));
    running--;
    return n * 10;
  });
  expect(out).toStrictEqual([10, 20, 30, 40, 50, 60, 70]);
  expect(peak).toBe(3);
});

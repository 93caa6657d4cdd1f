/**
 * `--rev` on a git input moving it backwards is found by git itself (lib/bump/git-ancestry.ts): a real
 * repository behind a `file://` URL, its commits fetched without trees into a throwaway repository.
 */
import { expect, test } from "bun:test";
import { isGitAncestor } from "../../lib/bump/git-ancestry.ts";
import { gitRepo } from "../support/git.ts";

test("an older commit is an ancestor of a newer one, not the other way; an unknown commit cannot be told", async () => {
  await using repo = await gitRepo({ files: { "flake.nix": "{ outputs = _: { n = 0; }; }\n" } });
  const first = await repo.head();
  const second = await repo.commit({ "flake.nix": "{ outputs = _: { n = 1; }; }\n" }, "two");
  const url = `file://${repo.dir}`;
  expect(await isGitAncestor(url, first, second)).toBe(true);
  expect(await isGitAncestor(url, second, first)).toBe(false);
  expect(await isGitAncestor(url, "0".repeat(40), second)).toBeUndefined();
});

import type { FakeGitHub } from "../fake-github/index.ts";

/**
 * An upstream flake repository on the fake with `commits` commits after the first, each changing
 * flake.nix's output (commit i is titled `message(i)`); its main's SHAs, oldest first.
 */
export async function upstreamHistory(
  fake: FakeGitHub,
  repo: { owner: string; repo: string },
  commits: number,
  message: (i: number) => string = (i) => `v${i}`,
): Promise<string[]> {
  const flake = (v: number) => ({ "flake.nix": `{ outputs = _: { v = ${v}; }; }\n` });
  await fake.createRepo(repo.owner, repo.repo, { files: flake(0) });
  const shas = [(await fake.branchSha(repo.owner, repo.repo, "main")) ?? ""];
  for (let i = 1; i <= commits; i++) shas.push(await fake.push(repo.owner, repo.repo, flake(i), message(i)));
  return shas;
}

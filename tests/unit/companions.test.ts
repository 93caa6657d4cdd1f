/**
 * Companion pins: which submodules git says the checkout has (real repositories with real gitlinks),
 * and which of them move with an input (a table).
 */
import { describe, expect, test } from "bun:test";
import { UsageError } from "../../lib/core/errors.ts";
import {
  type CompanionQuestion,
  leftSentence,
  planCompanions,
  readSubmodules,
  type Submodule,
  submoduleRepository,
} from "../../lib/flake/companions.ts";
import { gitRepo } from "../support/git.ts";

const A = "a".repeat(40);
const B = "b".repeat(40);
const C = "c".repeat(40);

describe("readSubmodules reads what git reads", () => {
  test("gitlinks with a .gitmodules entry are submodules; a bare gitlink is not; no checkout needed", async () => {
    await using repo = await gitRepo({
      files: {
        ".gitmodules":
          '[submodule "doctrine"]\n\tpath = doctrine\n\turl = https://github.com/inspr-at/inspr-modules.git\n[submodule "other"]\n\tpath = vendor/other\n\turl = git@github.com:acme/other.git\n',
      },
    });
    // Gitlinks as a clone without `--recurse-submodules` has them: in the index, nothing checked out.
    await repo.git("update-index", "--add", "--cacheinfo", `160000,${A},doctrine`);
    await repo.git("update-index", "--add", "--cacheinfo", `160000,${B},vendor/other`);
    await repo.git("update-index", "--add", "--cacheinfo", `160000,${C},stray`);
    expect(await readSubmodules(repo.dir)).toStrictEqual([
      { path: "doctrine", name: "doctrine", url: "https://github.com/inspr-at/inspr-modules.git", sha: A },
      { path: "vendor/other", name: "other", url: "git@github.com:acme/other.git", sha: B },
    ]);
  });

  test("no gitlinks, or gitlinks without .gitmodules: no submodules", async () => {
    await using repo = await gitRepo({ files: { "flake.nix": "{ }\n" } });
    expect(await readSubmodules(repo.dir)).toStrictEqual([]);
    await repo.git("update-index", "--add", "--cacheinfo", `160000,${A},stray`);
    expect(await readSubmodules(repo.dir)).toStrictEqual([]);
  });

  test("a .gitmodules git cannot parse is a usage error naming the file", async () => {
    await using repo = await gitRepo({
      files: { ".gitmodules": '[submodule "doctrine"\n\tpath = doctrine\n' },
    });
    await repo.git("update-index", "--add", "--cacheinfo", `160000,${A},doctrine`);
    const error = await readSubmodules(repo.dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect(error instanceof Error ? error.message : "").toMatch(
      /^\.gitmodules in .* cannot be read by git \(bad config line 2 in file \.gitmodules\)/,
    );
  });
});

describe("submoduleRepository: the URL forms that name a repository on the host", () => {
  const self = "https://github.com/acme/nixcfg";
  const cases: [url: string, host: string, repo: string | undefined][] = [
    ["https://github.com/inspr-at/inspr-modules.git", "github.com", "inspr-at/inspr-modules"],
    ["https://github.com/Inspr-At/Inspr-Modules", "github.com", "inspr-at/inspr-modules"],
    ["https://GitHub.com/inspr-at/inspr-modules/", "github.com", "inspr-at/inspr-modules"],
    ["git@github.com:inspr-at/inspr-modules.git", "github.com", "inspr-at/inspr-modules"],
    ["ssh://git@github.com/inspr-at/inspr-modules", "github.com", "inspr-at/inspr-modules"],
    ["../inspr-modules.git", "github.com", "acme/inspr-modules"],
    ["../../other/inspr-modules", "github.com", "other/inspr-modules"],
    ["https://gitlab.com/inspr-at/inspr-modules.git", "github.com", undefined],
    ["https://ghe.example.com/inspr-at/inspr-modules.git", "ghe.example.com", "inspr-at/inspr-modules"],
    ["https://ghe.example.com/inspr-at/inspr-modules.git", "github.com", undefined],
    ["https://github.com.evil.org/inspr-at/inspr-modules", "github.com", undefined],
    ["/srv/git/inspr-modules", "github.com", undefined],
  ];
  test.each(cases)("%s on %s → %s", (url, host, repo) => {
    const found = submoduleRepository(url, host, self);
    expect(found === undefined ? undefined : `${found.owner}/${found.repo}`).toStrictEqual(repo);
  });
  test("a relative URL without a known own URL is no companion", () => {
    expect(submoduleRepository("../inspr-modules.git", "github.com")).toBeUndefined();
  });
});

describe("planCompanions: which submodules move with the input", () => {
  const doctrine: Submodule = {
    path: "doctrine",
    name: "doctrine",
    url: "https://github.com/inspr-at/inspr-modules.git",
    sha: A,
  };
  const other: Submodule = {
    path: "vendor/other",
    name: "other",
    url: "https://github.com/acme/other",
    sha: A,
  };
  const q: CompanionQuestion = {
    input: "inspr-modules",
    source: { owner: "inspr-at", repo: "inspr-modules" },
    from: A,
    to: C,
  };
  const cases: [
    why: string,
    q: CompanionQuestion,
    subs: Submodule[],
    plan: ReturnType<typeof planCompanions>,
  ][] = [
    ["in step: moves", q, [doctrine, other], { moves: [{ path: "doctrine", from: A, to: C }], left: [] }],
    [
      "out of step, unlisted: left",
      q,
      [{ ...doctrine, sha: B }],
      { moves: [], left: [{ path: "doctrine", at: B }] },
    ],
    [
      "listed: moves even out of step",
      { ...q, listed: ["doctrine"] },
      [{ ...doctrine, sha: B }],
      { moves: [{ path: "doctrine", from: B, to: C }], left: [] },
    ],
    [
      "listed and already there: nothing",
      { ...q, listed: ["doctrine"] },
      [{ ...doctrine, sha: C }],
      { moves: [], left: [] },
    ],
    // --check: the input is current, its listed companion is not, so the companion needs the move.
    [
      "current input, listed companion elsewhere",
      { ...q, from: C, listed: ["doctrine"] },
      [doctrine],
      { moves: [{ path: "doctrine", from: A, to: C }], left: [] },
    ],
    [
      "current input, unlisted in step: nothing",
      { ...q, from: C },
      [{ ...doctrine, sha: C }],
      { moves: [], left: [] },
    ],
    ["no submodules", q, [], { moves: [], left: [] }],
  ];
  test.each(cases)("%s", (_why, question, subs, plan) => {
    expect(planCompanions(question, subs)).toStrictEqual(plan);
  });

  const refused: [why: string, listed: string[], message: RegExp][] = [
    ["not a submodule", ["docs"], /companion 'docs' of input 'inspr-modules' is not a submodule/],
    ["outside the repository", ["../doctrine"], /companion '\.\.\/doctrine' .* is not a submodule/],
    [
      "another repository",
      ["vendor/other"],
      /is a submodule of https:\/\/github.com\/acme\/other, not of inspr-at\/inspr-modules/,
    ],
  ];
  test.each(refused)("listed companion %s: usage error", (_why, listed, message) => {
    expect(() => planCompanions({ ...q, listed }, [doctrine, other])).toThrow(message);
  });

  test("the sentence for a submodule left behind", () => {
    expect(
      leftSentence("inspr-modules", { path: "doctrine", at: "7598d63aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" }),
    ).toBe(
      "`doctrine` stays at 7598d63, which is not what `inspr-modules` is locked to; list it under companions to move it with the input",
    );
  });
});

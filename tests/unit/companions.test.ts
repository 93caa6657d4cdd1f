/**
 * Companion pins: which submodules git says the checkout has (real repositories with real gitlinks),
 * and which of them move with an input (a table).
 */
import { describe, expect, test } from "bun:test";
import { UsageError } from "../../lib/core/errors.ts";
import {
  type CompanionQuestion,
  gitlinkMoves,
  leftSentence,
  ownRepositoryUrl,
  planCompanions,
  readSubmodules,
  type Submodule,
  submoduleRepository,
} from "../../lib/flake/companions.ts";
import { describeReport, type Report, reportMarkdown } from "../../lib/flake/report.ts";
import { bumpChanges } from "../../lib/pr/commit.ts";
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

describe("ownRepositoryUrl: where relative submodule URLs resolve", () => {
  test("in Actions, the server and repository the run is for", async () => {
    const env = {
      GITHUB_ACTIONS: "true",
      GITHUB_SERVER_URL: "https://ghe.example.com/",
      GITHUB_REPOSITORY: "acme/nixcfg",
    };
    expect(await ownRepositoryUrl(env, "/nonexistent")).toBe("https://ghe.example.com/acme/nixcfg");
  });
  const origins: [origin: string | undefined, own: string | undefined][] = [
    ["https://github.com/acme/nixcfg.git", "https://github.com/acme/nixcfg"],
    ["git@github.com:acme/nixcfg.git", "https://github.com/acme/nixcfg"],
    ["ssh://git@github.com/acme/nixcfg", "https://github.com/acme/nixcfg"],
    ["https://x-access-token@github.com/acme/nixcfg", "https://github.com/acme/nixcfg"],
    ["/srv/git/nixcfg.git", undefined],
    [undefined, undefined],
  ];
  test.each(origins)("locally, origin %s → %s", async (origin, own) => {
    await using repo = await gitRepo({ files: { "flake.nix": "{ }\n" } });
    if (origin !== undefined) await repo.git("remote", "add", "origin", origin);
    expect(await ownRepositoryUrl({}, repo.dir)).toBe(own);
  });
});

describe("what a bump's commit changes", () => {
  test("flake.lock and each moving gitlink once, nothing else", () => {
    const doctrine = { path: "doctrine", from: A, to: C };
    expect(
      bumpChanges("hosts/flake.lock", "{}\n", {
        inputs: [
          { companions: { moved: [doctrine], left: [{ path: "vendor/x", at: B }] } },
          { companions: { moved: [doctrine], left: [] } },
          {},
        ],
      }),
    ).toStrictEqual([
      { path: "hosts/flake.lock", content: "{}\n" },
      { path: "doctrine", gitlink: C },
    ]);
    // A release's flake.nix travels beside its lock, in the lock's folder.
    expect(bumpChanges("hosts/flake.lock", "{}\n", { inputs: [], flakeNix: "{ }\n" })).toStrictEqual([
      { path: "hosts/flake.lock", content: "{}\n" },
      { path: "hosts/flake.nix", content: "{ }\n" },
    ]);
    expect(gitlinkMoves([{}])).toStrictEqual([]);
  });

  test("the log and the step summary name the moves and the submodules left", () => {
    const report = {
      ...emptyReport(),
      changed: true,
      inputs: [
        {
          name: "inspr-modules",
          from: { ref: `github:inspr-at/inspr-modules/${A}`, rev: A },
          to: { ref: `github:inspr-at/inspr-modules/${C}`, rev: C },
          transitive: { added: [], removed: [], changed: [] },
          lock: { text: "{}", sha256: "0".repeat(64) },
          companions: { moved: [{ path: "doctrine", from: A, to: C }], left: [{ path: "docs/x", at: B }] },
        },
      ],
    };
    const log = describeReport(report);
    expect(log).toContain("    `doctrine` (submodule) aaaaaaa → ccccccc");
    expect(log).toContain(`    ${leftSentence("inspr-modules", { path: "docs/x", at: B })}`);
    expect(log.at(-1)).toBe(
      "Staged the submodule gitlink (doctrine); the submodule's files are untouched: check them out with 'git submodule update doctrine'.",
    );
    expect(describeReport({ ...report, dryRun: true }).join("\n")).not.toContain("Staged");
    const summary = reportMarkdown(report);
    expect(summary).toContain("| `doctrine` (submodule) | `aaaaaaaaaaaa` | `cccccccccccc` |");
    expect(summary).toContain(`- ${leftSentence("inspr-modules", { path: "docs/x", at: B })}`);
  });
});

function emptyReport(): Report {
  return {
    schema: 1,
    changed: false,
    dryRun: false,
    requested: { inputs: [] },
    flake: { dir: "/flake" },
    inputs: [],
    skipped: [],
    lock: null,
    nix: { version: "", invocations: 0 },
  };
}

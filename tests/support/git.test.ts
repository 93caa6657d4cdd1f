import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, realpathSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gitRepo } from "./git.ts";

describe("gitRepo", () => {
  const savedGitDir = process.env.GIT_DIR;
  afterEach(() => {
    if (savedGitDir === undefined) delete process.env.GIT_DIR;
    else process.env.GIT_DIR = savedGitDir;
  });

  test("makes an initial commit of the files on main", async () => {
    await using repo = await gitRepo({ files: { "flake.nix": "{ }\n", "nested/dir/a.txt": "a" } });
    expect(await repo.git("symbolic-ref", "--short", "HEAD")).toBe("main");
    expect(await repo.git("ls-files")).toBe("flake.nix\nnested/dir/a.txt");
    expect(await readFile(join(repo.dir, "nested/dir/a.txt"), "utf8")).toBe("a");
    expect(await repo.git("status", "--porcelain")).toBe("");
    expect(repo.url).toBe(`git+file://${repo.dir}`);
    // Under the temp dir, which the Nix 2.26 chroot sees at the same path.
    expect(repo.dir.startsWith(join(realpathSync(tmpdir()), "flake-bump-git-"))).toBe(true);
  });

  test("honours another initial branch", async () => {
    await using repo = await gitRepo({ branch: "trunk" });
    expect(await repo.git("symbolic-ref", "--short", "HEAD")).toBe("trunk");
    expect(await repo.git("rev-list", "--count", "HEAD")).toBe("1");
  });

  test("commit returns the new head, with the given date", async () => {
    await using repo = await gitRepo({ files: { a: "1" } });
    const first = await repo.head();
    const date = new Date("2026-11-01T12:00:00Z");
    const sha = await repo.commit({ a: "2", b: "new" }, "second", { date });
    expect(sha).toMatch(/^[0-9a-f]{40}$/);
    expect(sha).not.toBe(first);
    expect(await repo.head()).toBe(sha);
    expect(await repo.git("log", "-1", "--format=%ct %s")).toBe(`${date.getTime() / 1000} second`);
    expect(await repo.git("rev-parse", "HEAD~1")).toBe(first);
  });

  test("a message with shell metacharacters reaches git verbatim", async () => {
    await using repo = await gitRepo();
    const message = `it's "quoted" $(echo no) ; echo no`;
    await repo.commit({ x: "x" }, message);
    expect(await repo.git("log", "-1", "--format=%s")).toBe(message);
  });

  test("ignores GIT_DIR inherited from a git hook", async () => {
    process.env.GIT_DIR = join(tmpdir(), "no-such-git-dir");
    await using repo = await gitRepo({ files: { a: "1" } });
    expect(await repo.git("rev-parse", "--show-toplevel")).toBe(repo.dir);
  });

  test("dispose removes the directory", async () => {
    let dir = "";
    {
      await using repo = await gitRepo();
      dir = repo.dir;
      expect(existsSync(dir)).toBe(true);
    }
    expect(existsSync(dir)).toBe(false);
  });
});

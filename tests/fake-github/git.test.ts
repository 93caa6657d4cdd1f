/**
 * The fake's in-process git layer against git itself: every answer it computes without a git process
 * (trees built, objects and refs read, refs updated) must be the one git gives on the same repository.
 */
import { beforeEach, describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GitNetwork, GitRepo, TreeBuilder, type TreeChange, ZERO_SHA } from "./git.ts";
import { processTempDir, scratchRoot } from "./tmp.ts";

const root = processTempDir("fake-git-test", scratchRoot());
let repo: GitRepo;
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(root, "repo-"));
  const network = await GitNetwork.create(join(dir, "network.git"));
  repo = await GitRepo.create(join(dir, "repo.git"), network, "main");
});

/** git on the test's repository, as the fake's own calls see it, with an empty work tree. */
async function git(args: string[], input?: string, extra: Record<string, string> = {}) {
  const work = join(dir, "work");
  await mkdir(work, { recursive: true });
  const proc = Bun.spawn(["git", ...args], {
    cwd: work,
    env: {
      PATH: process.env.PATH,
      HOME: dir,
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_CONFIG_GLOBAL: "/dev/null",
      GIT_LITERAL_PATHSPECS: "1",
      GIT_DIR: repo.gitDir,
      GIT_OBJECT_DIRECTORY: repo.network.objectsDir,
      GIT_ALTERNATE_OBJECT_DIRECTORIES: join(repo.gitDir, "objects"),
      GIT_WORK_TREE: work,
      ...extra,
    },
    stdin: input === undefined ? "ignore" : Buffer.from(input),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { stdout: stdout.trim(), stderr, exitCode };
}

/**
 * The tree git's index makes of the same change set: read-tree, rm --cached -r, update-index and
 * read-tree --prefix, write-tree (with a work tree, which `read-tree --prefix` insists on).
 */
async function gitTree(base: string | undefined, changes: readonly TreeChange[]): Promise<string> {
  const env = { GIT_INDEX_FILE: join(dir, `index-${crypto.randomUUID()}`) };
  const must = async (args: string[], input?: string) => {
    const result = await git(args, input, env);
    if (result.exitCode !== 0) throw new Error(`git ${args.join(" ")}: ${result.stderr}`);
    return result.stdout;
  };
  await must(base === undefined ? ["read-tree", "--empty"] : ["read-tree", base]);
  const paths = changes.map((change) => change.path);
  if (paths.length > 0) await must(["rm", "--cached", "-r", "-q", "--ignore-unmatch", "--", ...paths]);
  for (const change of changes) {
    if ("content" in change) {
      const blob = await repo.writeBlob(change.content);
      await must(["update-index", "-z", "--index-info"], `${change.mode} ${blob}\t${change.path}\0`);
    } else if (change.sha !== null && change.type === "tree") {
      await must(["read-tree", `--prefix=${change.path}/`, change.sha]);
    } else if (change.sha !== null) {
      await must(["update-index", "-z", "--index-info"], `${change.mode} ${change.sha}\t${change.path}\0`);
    }
  }
  return await must(["write-tree"]);
}

const file = (path: string, text: string, mode = "100644"): TreeChange => ({
  path,
  mode,
  type: "blob",
  content: Buffer.from(text),
});
const remove = (path: string): TreeChange => ({ path, mode: "100644", type: "blob", sha: null });

/** A base tree git would not write itself: a group-writable mode, empty directories, a submodule. */
async function oddBase(): Promise<string> {
  const blob = await repo.writeBlob("odd\n");
  const empty = await repo.network.writeObject("tree", Buffer.alloc(0));
  const entry = (mode: string, name: string, sha: string) =>
    Buffer.concat([Buffer.from(`${mode} ${name}\0`), Buffer.from(sha, "hex")]);
  const hollow = await repo.network.writeObject("tree", entry("40000", "inner", empty));
  const keep = await repo.network.writeObject(
    "tree",
    Buffer.concat([entry("100664", "group.txt", blob), entry("40000", "void", empty)]),
  );
  return await repo.network.writeObject(
    "tree",
    Buffer.concat([
      entry("100664", "group.txt", blob),
      entry("40000", "hollow", hollow),
      entry("40000", "keep", keep),
      entry("160000", "module", "1".repeat(40)),
    ]),
  );
}

describe("buildTree", () => {
  test("gives git's tree for every kind of change, in-process", async () => {
    const base = await gitTree(undefined, [
      file("README.md", "hello\n"),
      file("a.c", "c\n"),
      file("a/x", "x\n"),
      file("a0", "0\n"),
      file("a-b/deep/er/leaf", "leaf\n"),
      file("only/one.txt", "one\n"),
      file("dir/one", "1\n"),
      file("dir/sub/two", "2\n"),
      file("script.sh", "#!/bin/sh\n", "100755"),
    ]);
    const subtree = (await repo.lsTree(base, "dir")).at(0)?.sha ?? "";
    const odd = await oddBase();
    const emptyTree = await repo.network.writeObject("tree", Buffer.alloc(0));
    const cases: { name: string; base: string | undefined; changes: TreeChange[] }[] = [
      { name: "no change", base, changes: [] },
      { name: "no change, no base", base: undefined, changes: [] },
      { name: "nested new file", base, changes: [file("sub/deeper/new.txt", "new\n")] },
      { name: "modified file", base, changes: [file("README.md", "changed\n")] },
      { name: "deletion empties a directory", base, changes: [remove("only/one.txt")] },
      { name: "deletion of a whole directory", base, changes: [remove("dir")] },
      { name: "deletion of nothing", base, changes: [remove("nope"), remove("README.md/x")] },
      { name: "everything deleted", base, changes: (await repo.lsTree(base)).map((e) => remove(e.path)) },
      { name: "file replaced by a directory", base, changes: [file("README.md/inside", "in\n")] },
      { name: "directory replaced by a file", base, changes: [file("dir", "now a file\n")] },
      { name: "file deep under a file", base, changes: [file("a.c/b/c", "deep\n")] },
      {
        name: "modes",
        base,
        changes: [
          file("bin/run", "#!/bin/sh\n", "100755"),
          file("link", "README.md", "120000"),
          file("group", "g\n", "100664"),
          file("script.sh", "#!/bin/sh\necho\n"),
        ],
      },
      {
        name: "submodule",
        base,
        changes: [{ path: "vendor/lib", mode: "160000", type: "commit", sha: "2".repeat(40) }],
      },
      { name: "sort order", base, changes: [file("a/y", "y\n"), file("a.b", "b\n"), file("a+", "+\n")] },
      { name: "from nothing", base: undefined, changes: [file("x/y/z", "z\n"), file("x.y", "w\n")] },
      {
        name: "existing blob by sha",
        base,
        changes: [
          {
            path: "copy/of/readme",
            mode: "100644",
            type: "blob",
            sha: (await repo.lsTree(base, "README.md"))[0]?.sha ?? null,
          },
        ],
      },
      {
        name: "tree inserted",
        base,
        changes: [{ path: "copy", mode: "040000", type: "tree", sha: subtree }],
      },
      {
        name: "tree inserted over a file",
        base,
        changes: [{ path: "README.md/copy", mode: "040000", type: "tree", sha: subtree }],
      },
      {
        name: "empty tree inserted",
        base,
        changes: [{ path: "hole/x", mode: "040000", type: "tree", sha: emptyTree }],
      },
      { name: "odd base untouched", base: odd, changes: [] },
      { name: "odd base, root changed", base: odd, changes: [file("new", "n\n")] },
      { name: "odd base, inside changed", base: odd, changes: [file("keep/more", "m\n")] },
      { name: "odd base, empty directory removed", base: odd, changes: [remove("hollow")] },
      { name: "odd tree inserted", base, changes: [{ path: "odd", mode: "040000", type: "tree", sha: odd }] },
      {
        name: "odd tree inserted in an odd base",
        base: odd,
        changes: [{ path: "keep/odd", mode: "040000", type: "tree", sha: odd }],
      },
    ];
    for (const { name, base: from, changes } of cases) {
      const expected = await gitTree(from, changes);
      const built = await new TreeBuilder(repo).build(from, changes);
      expect({ name, tree: built }).toStrictEqual({ name, tree: expected });
      expect({ name, tree: await repo.buildTree(from, changes) }).toStrictEqual({ name, tree: expected });
    }
  });

  test("leaves odd paths, odd modes and overlapping changes to git, with git's result", async () => {
    const base = await gitTree(undefined, [file("README.md", "hello\n"), file("dir/one", "1\n")]);
    const cases: TreeChange[][] = [
      [file("with space", "s\n")],
      [file(".gitmodules", "x", "120000")],
      [remove("dir"), file("dir/two", "2\n")],
      [file("dir", "first\n"), file("dir", "second\n")],
    ];
    for (const changes of cases) {
      expect(await new TreeBuilder(repo).build(base, changes)).toBeUndefined();
      expect(await repo.buildTree(base, changes)).toBe(await gitTree(base, changes));
    }
  });

  test("refuses an entry whose object is missing, as git's write-tree does", async () => {
    const changes: TreeChange[] = [{ path: "gone", mode: "100644", type: "blob", sha: "3".repeat(40) }];
    expect(repo.buildTree(undefined, changes)).rejects.toThrow("invalid object");
  });
});

/** A commit on `main` of the test's repository, written by the fake. */
async function commit(files: Record<string, string>, parents: string[] = []): Promise<string> {
  const tree = await repo.buildTree(
    undefined,
    Object.entries(files).map(([path, text]) => file(path, text)),
  );
  const who = { name: "T", email: "t@example.com", date: new Date(1_700_000_000_000) };
  return await repo.writeCommit({ tree, parents, author: who, committer: who, message: "c\n" });
}

/** Moves `shas` into one pack of the repository's own store and deletes their loose copies. */
async function pack(shas: string[]): Promise<void> {
  const packed = await git(
    ["pack-objects", join(repo.gitDir, "objects", "pack", "pack")],
    `${shas.join("\n")}\n`,
  );
  expect(packed.exitCode).toBe(0);
  for (const sha of shas) {
    await rm(join(repo.network.objectsDir, sha.slice(0, 2), sha.slice(2)), { force: true });
  }
}

describe("objects", () => {
  test("read in-process or, when packed, through git, with git's answers", async () => {
    const loose = await commit({ "README.md": "hello\n", "dir/x": "x\n" });
    const packedCommit = await commit({ "other.txt": "o\n" }, [loose]);
    // Through git, so that the fake has not read (and kept) the objects before they move.
    const packedTree = (await git(["rev-parse", `${packedCommit}^{tree}`])).stdout;
    await pack([packedCommit, packedTree]);
    expect(await repo.looseObject(packedCommit)).toBeUndefined();
    for (const sha of [loose, packedCommit]) {
      const tree = (await repo.readCommit(sha)).tree;
      expect(await repo.objectType(sha)).toBe("commit");
      expect(await repo.objectType(tree)).toBe("tree");
      expect((await repo.readCommit(sha)).raw).toBe(`${(await git(["cat-file", "commit", sha])).stdout}\n`);
      const listed = (await repo.lsTree(sha)).map(
        (e) => `${e.mode} ${e.type} ${e.sha} ${e.size ?? "-"}\t${e.path}`,
      );
      const byGit = (await git(["ls-tree", "-l", sha])).stdout
        .split("\n")
        .map((line) => line.replace(/ +/g, " "));
      expect(listed).toStrictEqual(byGit);
      expect(await repo.resolveCommit(sha)).toBe(sha);
    }
    expect(await repo.lsTree(loose, "dir/x")).toStrictEqual([
      {
        mode: "100644",
        type: "blob",
        sha: (await git(["rev-parse", `${loose}:dir/x`])).stdout,
        size: 2,
        path: "dir/x",
      },
    ]);
    expect(await repo.lsTree(loose, "dir")).toHaveLength(1);
    expect(await repo.lsTree(loose, "README.md/nope")).toStrictEqual([]);
    expect((await repo.lsTree(`${loose}:dir`)).map((e) => e.path)).toStrictEqual(["x"]);
    const blob = (await repo.lsTree(loose, "README.md"))[0]?.sha ?? "";
    expect((await repo.readBlob(blob)).toString()).toBe("hello\n");
    expect(await repo.resolveCommit(blob)).toBeUndefined();
    expect(await repo.objectType("4".repeat(40))).toBeUndefined();
    expect(await repo.resolveCommit("4".repeat(40))).toBeUndefined();
  });

  test("resolveCommit follows git's rev-parse rules for names and peels tags", async () => {
    const first = await commit({ a: "1\n" });
    const second = await commit({ a: "2\n" }, [first]);
    const tag = await repo.network.writeObject(
      "tag",
      Buffer.from(`object ${second}\ntype commit\ntag v1\ntagger T <t@example.com> 1700000000 +0000\n\nv1\n`),
    );
    expect(await repo.updateRef("refs/heads/main", first)).toBe(true);
    expect(await repo.updateRef("refs/tags/v1", tag)).toBe(true);
    // A branch and a tag of the same name: rev-parse takes the tag.
    expect(await repo.updateRef("refs/heads/v1", first)).toBe(true);
    expect(await repo.updateRef("refs/heads/feature/x", second)).toBe(true);
    const names = [
      "main",
      "refs/heads/main",
      "heads/main",
      "v1",
      "tags/v1",
      "refs/tags/v1",
      "feature/x",
      "nope",
    ];
    names.push(first.slice(0, 7), "HEAD", "main~1", `${second}^`, "refs/heads/nope");
    for (const name of names) {
      const byGit = await git(["rev-parse", "--verify", "--quiet", `${name}^{commit}`]);
      expect({ name, sha: await repo.resolveCommit(name) }).toStrictEqual({
        name,
        sha: byGit.exitCode === 0 ? byGit.stdout : undefined,
      });
      const plain = await git(["rev-parse", "--verify", "--quiet", name]);
      expect({ name, sha: await repo.refSha(name) }).toStrictEqual({
        name,
        sha: plain.exitCode === 0 ? plain.stdout : undefined,
      });
    }
  });
});

describe("refs", () => {
  test("listRefs and refSha read loose and packed refs as git does", async () => {
    const one = await commit({ a: "1\n" });
    const two = await commit({ a: "2\n" }, [one]);
    const blob = await repo.writeBlob("tagged blob\n");
    await writeFile(
      join(repo.gitDir, "packed-refs"),
      `# pack-refs with: peeled fully-peeled sorted \n${one} refs/heads/main\n${one} refs/heads/packed\n${blob} refs/tags/blob\n`,
    );
    expect(await repo.updateRef("refs/heads/main", two, one)).toBe(true);
    expect(await repo.updateRef("refs/heads/a/b", two)).toBe(true);
    expect(await repo.updateRef("refs/heads/a-b", one)).toBe(true);
    await writeFile(join(repo.gitDir, "refs", "heads", "main.lock"), "");
    for (const prefix of [
      "refs/heads/",
      "refs/tags/",
      "refs/heads/a",
      "refs/heads/main",
      "refs/heads/mai",
      "refs/",
    ]) {
      const byGit = await git(["for-each-ref", "--format=%(refname) %(objectname) %(objecttype)", prefix]);
      const lines = (await repo.listRefs(prefix)).map((ref) => `${ref.ref} ${ref.sha} ${ref.type}`);
      expect({ prefix, lines }).toStrictEqual({
        prefix,
        lines: byGit.stdout.split("\n").filter((l) => l !== ""),
      });
    }
    expect(await repo.refSha("refs/heads/packed")).toBe(one);
    expect(await repo.refSha("refs/heads/main")).toBe(two);
    expect(await repo.resolveCommit("packed")).toBe(one);
  });

  test("updateRef compares and swaps under git's lock", async () => {
    const one = await commit({ a: "1\n" });
    const two = await commit({ a: "2\n" }, [one]);
    const ref = "refs/heads/flake-bump/x";
    expect(await repo.updateRef(ref, one, two)).toBe(false);
    expect(await repo.updateRef(ref, one, ZERO_SHA)).toBe(true);
    expect(await repo.updateRef(ref, two, ZERO_SHA)).toBe(false);
    expect(await repo.updateRef(ref, two, two)).toBe(false);
    expect(await readFile(join(repo.gitDir, ref), "utf8")).toBe(`${one}\n`);
    // Someone (a `git push`) holds the lock: the update fails and leaves their lock alone.
    await writeFile(join(repo.gitDir, `${ref}.lock`), "");
    expect(await repo.updateRef(ref, two, one)).toBe(false);
    await rm(join(repo.gitDir, `${ref}.lock`));
    expect(await repo.updateRef(ref, two, one)).toBe(true);
    expect((await git(["rev-parse", ref])).stdout).toBe(two);
    // A branch holds commits only, and a ref cannot sit where another one's directory is.
    const tree = (await repo.readCommit(one)).tree;
    expect(await repo.updateRef("refs/heads/tree", tree)).toBe(false);
    expect(await repo.updateRef("refs/tags/tree", tree)).toBe(true);
    expect(await repo.updateRef("refs/heads/flake-bump", one)).toBe(false);
    expect(await repo.updateRef(`${ref}/below`, one)).toBe(false);
    expect(await repo.updateRef("refs/heads/missing", "5".repeat(40))).toBe(false);
    expect((await git(["for-each-ref", "--format=%(refname)"])).stdout.split("\n")).toStrictEqual([
      ref,
      "refs/tags/tree",
    ]);
  });
});

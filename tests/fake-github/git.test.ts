/**
 * The fake's in-process git layer against git itself: every answer it computes without a git process
 * (trees built, objects and refs read, refs updated) must be the one git gives on the same repository.
 */
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { collect } from "../support/run.ts";
import { type FileChange, GitNetwork, GitRepo, TreeBuilder, type TreeChange, ZERO_SHA } from "./git.ts";
import { processTempDir, scratchRoot } from "./tmp.ts";

const root = processTempDir("fake-git-test", scratchRoot());
// On tmpfs a leftover holds memory until the next run sweeps it: remove it as soon as we are done.
afterAll(() => rm(root, { recursive: true, force: true }));
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
  const { stdout, stderr, exitCode } = await collect(proc);
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

/** A commit of exactly these entries (each a file change on an empty tree), written by the fake. */
async function commitOf(changes: TreeChange[], parents: string[] = [], message = "c\n"): Promise<string> {
  const tree = await repo.buildTree(undefined, changes);
  const who = { name: "T", email: "t@example.com", date: new Date(1_700_000_000_000) };
  return await repo.writeCommit({ tree, parents, author: who, committer: who, message });
}

/** `changedFiles` as git computes it: `diff --raw` for the paths, `--numstat` for the counts. */
async function gitChangedFiles(base: string | undefined, head: string): Promise<FileChange[]> {
  const from = base ?? "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
  const raw = await git(["diff", "--raw", "--no-abbrev", "-z", "--no-renames", from, head]);
  const numstat = await git(["diff", "--numstat", "-z", "--no-renames", from, head]);
  expect(raw.exitCode).toBe(0);
  const counts = new Map<string, { additions: number; deletions: number }>();
  for (const record of numstat.stdout.split("\0")) {
    const [additions = "", deletions = "", path = ""] = record.split("\t");
    if (path !== "")
      counts.set(path, { additions: Number(additions) || 0, deletions: Number(deletions) || 0 });
  }
  const fields = raw.stdout.split("\0");
  const changes: FileChange[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const [, , , sha = "", letter = ""] = (fields[i] ?? "").split(" ");
    const path = fields[i + 1] ?? "";
    const status = letter === "A" ? "added" : letter === "D" ? "removed" : "modified";
    changes.push({
      path,
      status,
      sha: status === "removed" ? null : sha,
      ...(counts.get(path) ?? { additions: 0, deletions: 0 }),
    });
  }
  return changes;
}

const binary = (path: string, bytes: number[]): TreeChange => ({
  path,
  mode: "100644",
  type: "blob",
  content: Buffer.from(bytes),
});

describe("changedFiles", () => {
  test("walks the trees in-process with git's paths, order, statuses and line counts", async () => {
    const base = await commitOf([
      file("README.md", "one\ntwo\nthree\nfour\nfive\n"),
      file("a.c", "c\n"),
      file("a/x", "x\n"),
      file("a0", "0\n"),
      file("dir/one", "1\n2\n3\n"),
      file("dir/sub/two", "2\n"),
      file("script.sh", "#!/bin/sh\n", "100755"),
      file("same.txt", "s\n"),
      binary("bin.dat", [1, 0, 2, 10]),
      file("empty", ""),
      file("nonl", "no newline"),
      file("gone/deep/file", "g\n"),
      file("x", "file that becomes a directory\n"),
      file("y/inner", "directory that becomes a file\n"),
      file("rotate", "a\nb\nc\nd\n"),
      file("repeats", "}\n}\n}\nkey\n}\n}\n}\n}\n}\n"),
      // git discards the "}" among unmatched lines, though it could match: 9 deletions, not 8.
      file("discarded", "u1\nu2\nu3\nu4\n}\nu5\nu6\nu7\nu8\n"),
    ]);
    const head = await commitOf([
      // Lines moved and replaced: counting position by position would get these wrong.
      file("README.md", "zero\none\nthree\nfour\nFIVE\nsix\n"),
      file("a.c", "c\n"),
      file("a/y", "y\n"),
      file("a0", "0\n"),
      file("dir/one", "1\n2\n3\n"),
      file("dir/sub/two", "two\n"),
      file("script.sh", "#!/bin/sh\n"),
      file("same.txt", "s\n", "100755"),
      binary("bin.dat", [1, 0, 3]),
      file("empty", "now text\n"),
      file("nonl", "no newline\n"),
      file("new/deep/file", "n\n"),
      file("x/inside", "inside\n"),
      file("y", "now a file"),
      file("rotate", "b\nc\nd\na\n"),
      file("repeats", "}\nkey\n}\n}\nnew\n}\n"),
      file("discarded", "}\n}\n}\n}\n}\n"),
      file("made-empty", ""),
    ]);
    const odd = await oddBase();
    const oddCommit = await repo.writeCommit({
      tree: odd,
      parents: [],
      author: { name: "T", email: "t@example.com", date: new Date(0) },
      committer: { name: "T", email: "t@example.com", date: new Date(0) },
      message: "odd\n",
    });
    const sameAsOdd = await commitOf([file("group.txt", "odd\n"), file("keep/group.txt", "odd\n")]);
    const pairs: [string | undefined, string][] = [
      [undefined, base],
      [base, head],
      [head, base],
      [base, base],
      [undefined, head],
      [await repo.readCommit(base).then((c) => c.tree), head],
    ];
    for (const [from, to] of pairs) {
      const expected = await gitChangedFiles(from, to);
      expect({ from, to, files: await repo.changedFilesInProcess(from, to) }).toStrictEqual({
        from,
        to,
        files: expected,
      });
      expect(await repo.changedFiles(from, to)).toStrictEqual(expected);
    }
    expect((await gitChangedFiles(base, head)).map((change) => change.path)).toContain("x/inside");
    // A submodule on both sides, unchanged, is no reason to ask git; a group-writable mode reads as 100644.
    expect(await repo.changedFilesInProcess(oddCommit, sameAsOdd)).toBeUndefined();
    expect(await repo.changedFiles(oddCommit, sameAsOdd)).toStrictEqual(
      await gitChangedFiles(oddCommit, sameAsOdd),
    );
    const moduleBoth = await repo.writeCommit({
      tree: await repo.buildTree(odd, [file("keep/more", "m\n")]),
      parents: [oddCommit],
      author: { name: "T", email: "t@example.com", date: new Date(0) },
      committer: { name: "T", email: "t@example.com", date: new Date(0) },
      message: "more\n",
    });
    expect(await repo.changedFilesInProcess(oddCommit, moduleBoth)).toStrictEqual(
      await gitChangedFiles(oddCommit, moduleBoth),
    );
  });

  test("counts lines as git's xdiff does, over random edits full of repeated lines", async () => {
    // A fixed-seed generator, so a failure can be replayed.
    let seed = 42;
    const random = (n: number) => {
      // mulberry32
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return Math.floor((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * n);
    };
    const alphabet = ["}\n", "{\n", "a\n", "b\n", "\n", "  x\n", "c\n", "d\n", "e\n", "f\n"];
    // Lines of one side only, among lines repeated on both: what xdiff's preparation discards.
    const line = (unique = 4) =>
      random(unique) === 0
        ? `only ${random(1_000_000)}\n`
        : (alphabet[random(random(2) === 0 ? 3 : 10)] ?? "");
    const text = (lines: string[]) => lines.join("") + (random(4) === 0 ? "tail" : "");
    const oldFiles: TreeChange[] = [];
    const newFiles: TreeChange[] = [];
    for (let index = 0; index < 400; index++) {
      const lines = Array.from({ length: random(60) }, line);
      const edited = [...lines];
      for (let edits = random(8); edits > 0; edits--) {
        const at = random(edited.length + 1);
        const run = Array.from({ length: random(14) }, () => line(random(2) === 0 ? 1 : 4));
        edited.splice(at, random(6), ...run);
      }
      oldFiles.push(file(`f${index}`, text(lines)));
      newFiles.push(file(`f${index}`, text(edited)));
    }
    const from = await commitOf(oldFiles);
    const to = await commitOf(newFiles);
    const expected = await gitChangedFiles(from, to);
    expect(expected.length).toBeGreaterThan(300);
    expect(await repo.changedFilesInProcess(from, to)).toStrictEqual(expected);
  });

  test("leaves symlinks, submodules, large blobs and packed objects to git, with git's answer", async () => {
    const base = await commitOf([
      file("link", "target", "120000"),
      file("big", "x\n".repeat(40_000)),
      file("a", "1\n"),
    ]);
    const cases: TreeChange[][] = [
      [file("link", "elsewhere", "120000"), file("big", "x\n".repeat(40_000)), file("a", "1\n")],
      [file("link", "target"), file("big", "x\n".repeat(40_000)), file("a", "1\n")],
      [file("link", "target", "120000"), file("big", `${"x\n".repeat(40_000)}y\n`), file("a", "1\n")],
      [
        file("link", "target", "120000"),
        file("big", "x\n".repeat(40_000)),
        { path: "a", mode: "160000", type: "commit", sha: "2".repeat(40) },
      ],
    ];
    for (const changes of cases) {
      const head = await commitOf(changes);
      expect(await repo.changedFilesInProcess(base, head)).toBeUndefined();
      expect(await repo.changedFiles(base, head)).toStrictEqual(await gitChangedFiles(base, head));
    }
    const one = await commitOf([file("a", "1\n")]);
    const two = await commitOf([file("a", "2\n")], [one]);
    const blob = (await git(["rev-parse", `${two}:a`])).stdout;
    await pack([blob]);
    expect(await repo.changedFilesInProcess(one, two)).toBeUndefined();
    expect(await repo.changedFiles(one, two)).toStrictEqual(await gitChangedFiles(one, two));
    expect(repo.changedFiles(one, "4".repeat(40))).rejects.toThrow("git diff");
  });
});

describe("commit walks", () => {
  /**
   *   c1 - c2 - c3 - c4 ------- m - c5      (m merges f2 into c4)
   *               \            /
   *                f1 ------ f2
   *   u1 - u2                                (unrelated)
   */
  async function histories() {
    const c1 = await commitOf([file("a", "1\n")], [], "c1\n");
    const c2 = await commitOf([file("a", "2\n")], [c1], "c2\n");
    const c3 = await commitOf([file("a", "3\n")], [c2], "c3\n");
    const c4 = await commitOf([file("a", "4\n")], [c3], "c4\n");
    const f1 = await commitOf([file("a", "3\n"), file("f", "1\n")], [c3], "f1\n");
    const f2 = await commitOf([file("a", "3\n"), file("f", "2\n")], [f1], "f2\n");
    const m = await commitOf([file("a", "4\n"), file("f", "2\n")], [c4, f2], "m\n");
    const c5 = await commitOf([file("a", "5\n"), file("f", "2\n")], [m], "c5\n");
    const u1 = await commitOf([file("u", "1\n")], [], "u1\n");
    const u2 = await commitOf([file("u", "2\n")], [u1], "u2\n");
    return { c1, c2, c3, c4, f1, f2, m, c5, u1, u2 };
  }

  const lines = (text: string) => text.split("\n").filter((line) => line !== "");

  test("answer as git does, in-process wherever the walk is one line", async () => {
    const commits = await histories();
    const { c1, c2, c3, c4, f1, f2, m, c5, u1, u2 } = commits;
    const all = Object.values(commits);
    let inProcess = 0;
    for (const a of all) {
      for (const b of all) {
        const base = await git(["merge-base", a, b]);
        const expectedBase = base.exitCode === 0 ? base.stdout : undefined;
        const known = await repo.mergeBaseInProcess(a, b);
        if (known !== null) {
          inProcess++;
          expect({ a, b, base: known }).toStrictEqual({ a, b, base: expectedBase });
        }
        expect({ a, b, base: await repo.mergeBase(a, b) }).toStrictEqual({ a, b, base: expectedBase });

        const ancestor = (await git(["merge-base", "--is-ancestor", a, b])).exitCode === 0;
        expect({ a, b, ancestor: await repo.isAncestorInProcess(a, b) }).toStrictEqual({ a, b, ancestor });
        expect(await repo.isAncestor(a, b)).toBe(ancestor);

        const between = lines((await git(["rev-list", "--reverse", "--topo-order", b, "--not", a])).stdout);
        const knownBetween = await repo.commitsBetweenInProcess(a, b);
        if (knownBetween !== undefined)
          expect({ a, b, between: knownBetween }).toStrictEqual({ a, b, between });
        expect({ a, b, between: await repo.commitsBetween(a, b) }).toStrictEqual({ a, b, between });
      }
      for (const limit of [0, 1, 2, 3, 10]) {
        const history = lines((await git(["rev-list", "--topo-order", `--max-count=${limit}`, a])).stdout);
        const known = await repo.historyInProcess(a, limit);
        if (known !== undefined) expect({ a, limit, history: known }).toStrictEqual({ a, limit, history });
        expect({ a, limit, history: await repo.history(a, limit) }).toStrictEqual({ a, limit, history });
      }
    }
    expect(inProcess).toBeGreaterThan(40);
    // Linear walks, equal commits and unrelated histories stay in-process.
    expect(await repo.mergeBaseInProcess(c4, f2)).toBe(c3);
    expect(await repo.mergeBaseInProcess(f2, f2)).toBe(f2);
    expect(await repo.mergeBaseInProcess(c2, c4)).toBe(c2);
    expect(await repo.mergeBaseInProcess(u2, c4)).toBeUndefined();
    expect(await repo.commitsBetweenInProcess(c1, f2)).toStrictEqual([c2, c3, f1, f2]);
    expect(await repo.commitsBetweenInProcess(f2, c4)).toStrictEqual([c4]);
    expect(await repo.commitsBetweenInProcess(c5, c5)).toStrictEqual([]);
    expect(await repo.commitsBetweenInProcess(m, c5)).toStrictEqual([c5]);
    expect(await repo.historyInProcess(c4, 10)).toStrictEqual([c4, c3, c2, c1]);
    expect(await repo.historyInProcess(c5, 1)).toStrictEqual([c5]);
    expect(await repo.isAncestorInProcess(f1, c5)).toBe(true);
    expect(await repo.isAncestorInProcess(u1, c5)).toBe(false);
    // A merge among the commits listed, or on the way to a merge base: git answers.
    expect(await repo.commitsBetweenInProcess(c4, c5)).toBeUndefined();
    expect(await repo.historyInProcess(c5, 2)).toBeUndefined();
    expect(await repo.mergeBaseInProcess(c5, f2)).toBeNull();
  });

  test("bad and packed input gets git's answer", async () => {
    const { c2, c3, c4 } = await histories();
    // A packed commit in the middle of the line (packed before the fake reads it): git walks it.
    await pack([c3]);
    expect(await repo.mergeBaseInProcess(c4, c2)).toBeNull();
    expect(await repo.mergeBase(c4, c2)).toBe(c2);
    expect(await repo.commitsBetween(c2, c4)).toStrictEqual([c3, c4]);
    expect(await repo.history(c4, 10)).toStrictEqual(lines((await git(["rev-list", c4])).stdout));
    expect(await repo.isAncestor(c2, c4)).toBe(true);
    const missing = "4".repeat(40);
    expect(await repo.mergeBase(missing, c3)).toBeUndefined();
    expect(await repo.mergeBase(c3, missing)).toBeUndefined();
    expect(await repo.isAncestor(missing, c3)).toBe(false);
    expect(await repo.isAncestor(c3, missing)).toBe(false);
    expect(repo.commitsBetween(c3, missing)).rejects.toThrow("git rev-list");
    expect(repo.commitsBetween(missing, c3)).rejects.toThrow("git rev-list");
    expect(repo.history(missing, 5)).rejects.toThrow("git rev-list");
    const tree = (await repo.readCommit(c3)).tree;
    expect(await repo.mergeBase(tree, c3)).toBeUndefined();
    expect(await repo.isAncestor(tree, c3)).toBe(false);
  });
});

describe("isValidRefName", () => {
  test("follows git check-ref-format, byte for byte", async () => {
    const names = [
      "refs/heads/main",
      "main",
      "heads/main",
      "refs/heads/flake-bump/nixfleet",
      "refs/heads/a..b",
      "refs/heads/a.b",
      "refs/heads/.hidden",
      "refs/heads/x/.y",
      "refs/heads/a.lock",
      "refs/heads/a.lock/b",
      "refs/heads/.lock",
      "refs/heads/lock",
      "refs/heads/a.",
      "refs/heads/a./b",
      "refs/heads/a/",
      "/refs/heads/a",
      "refs//heads/a",
      "refs/heads/a@{1}",
      "refs/heads/a@b",
      "refs/heads/a{b}",
      "refs/heads/@",
      "@",
      "refs/heads/a b",
      "refs/heads/a\tb",
      "refs/heads/a~1",
      "refs/heads/a^",
      "refs/heads/a:b",
      "refs/heads/a?",
      "refs/heads/a[b",
      "refs/heads/a]b",
      "refs/heads/a\\b",
      "refs/heads/a*",
      "refs/heads/a\x7f",
      "refs/heads/a\x01",
      "refs/heads/ünïcode",
      "refs/heads/emoji-🙂",
      "refs/heads/a!#$%&'()+,;<=>`|",
      "refs/tags/v1.0.0",
      "refs/heads/-dash",
      "refs/heads/a/-",
      "",
      ".",
      "a/.",
      "a/..",
      "x.lock/y",
      "refs/heads/a.lock.lock",
      "refs/heads/..",
    ];
    // And random names from the bytes that matter, a fixed seed for replay.
    let seed = 7;
    const alphabet = [
      "a",
      "b",
      ".",
      "/",
      "@",
      "{",
      "}",
      "*",
      "~",
      " ",
      "l",
      "o",
      "c",
      "k",
      "-",
      "é",
      "x",
      "y",
    ];
    for (let index = 0; index < 150; index++) {
      let name = "";
      seed = (seed * 48_271) % 2_147_483_647;
      for (let length = seed % 9; length >= 0; length--) {
        seed = (seed * 48_271) % 2_147_483_647;
        name += alphabet[seed % alphabet.length] ?? "";
      }
      if (!name.startsWith("-")) names.push(index % 2 === 0 ? `refs/heads/${name}` : name);
    }
    const script = 'for r in "$@"; do git check-ref-format "$r" && echo 1 || echo 0; done';
    const byGit = await shell(script, names);
    expect(byGit).toHaveLength(names.length);
    // Both answers are well represented, so a rule that always says yes or no fails.
    expect(byGit.filter((answer) => answer === "1").length).toBeGreaterThan(30);
    expect(byGit.filter((answer) => answer === "0").length).toBeGreaterThan(30);
    for (const [index, name] of names.entries()) {
      expect({ name, valid: await repo.isValidRefName(name) }).toStrictEqual({
        name,
        valid: byGit[index] === "1",
      });
    }
  });
});

/** Runs a POSIX shell script with `args`, one answer a line. */
async function shell(script: string, args: string[]): Promise<string[]> {
  const proc = Bun.spawn(["sh", "-c", script, "sh", ...args], {
    env: { PATH: process.env.PATH, GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  return stdout.split("\n").filter((line) => line !== "");
}

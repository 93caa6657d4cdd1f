/**
 * The fake's world: accounts, repositories (each a real bare git repository), pull requests, labels
 * and comments. The REST handlers and the test-facing API both work on this one model.
 */
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { GitNetwork, GitRepo, type TreeChange } from "./git.ts";
import type { Account, LabelInfo, PullInfo, RepoInfo } from "./objects.ts";

/** File contents for a commit, by path (nested paths allowed); `null` deletes the path. */
export type Files = Record<string, string | Uint8Array | null>;

export interface FakeRepo extends RepoInfo {
  /** `owner/name` as created (lookups are case-insensitive, like GitHub's). */
  fullName: string;
  git: GitRepo;
  /** The bare repository on disk. */
  gitDir: string;
  /** `file://` URL of the bare repository, for a test's `git clone`. */
  cloneUrl: string;
  parent: FakeRepo | undefined;
  forks: FakeRepo[];
  pulls: PullState[];
  labels: LabelInfo[];
  comments: CommentState[];
  /** Issues and pull requests share one sequence of numbers per repository, as on GitHub. */
  nextNumber: number;
  /** When GitHub itself signed a commit (created through the API without author): its "Verified" badge. */
  signed: Map<string, Date>;
  /** The repository's merge settings (Settings → General → Pull Requests). */
  settings: RepoSettings;
  /** Branch protection by branch name; a branch without an entry is unprotected. */
  protection: Map<string, BranchProtection>;
  /** Commits whose required checks have all passed (`fake.passChecks`). */
  passedChecks: Set<string>;
  /** Published releases (`fake.createRelease`), by tag. */
  releases: ReleaseState[];
}

/** A published GitHub release of a tag, with its notes. */
export interface ReleaseState {
  id: number;
  tag: string;
  name: string;
  body: string;
  createdAt: Date;
}

/** GitHub's defaults for a new repository: every merge method allowed, auto-merge not. */
export interface RepoSettings {
  allowAutoMerge: boolean;
  allowMergeCommit: boolean;
  allowSquashMerge: boolean;
  allowRebaseMerge: boolean;
}

export interface BranchProtection {
  /** "Require a pull request before merging": no direct update of the branch through the API. */
  requirePullRequest?: boolean;
  /** Names of required status checks; a pull request into the branch waits for them (BLOCKED). */
  requiredChecks?: string[];
}

export interface AutoMergeState {
  enabledAt: Date;
  enabledBy: Account;
  mergeMethod: "MERGE" | "SQUASH" | "REBASE";
}

export interface PullState {
  id: number;
  number: number;
  title: string;
  body: string | null;
  state: "open" | "closed";
  draft: boolean;
  user: Account;
  headRepo: FakeRepo;
  headRef: string;
  baseRef: string;
  labels: LabelInfo[];
  requestedReviewers: Account[];
  createdAt: Date;
  updatedAt: Date;
  closedAt: Date | null;
  /** The branch tips when the pull request was closed: GitHub keeps showing them after the branch is gone. */
  frozen: { headSha: string; baseSha: string } | undefined;
  /** Set by `enablePullRequestAutoMerge`; GitHub merges once the required checks pass. */
  autoMerge: AutoMergeState | undefined;
  merged: { at: Date; by: Account; sha: string } | undefined;
}

export interface CommentState {
  id: number;
  issueNumber: number;
  body: string;
  user: Account;
  createdAt: Date;
}

export interface CreateRepoOptions {
  /** Default `main`. A fork takes its parent's. */
  defaultBranch?: string;
  /** Contents of an initial commit on the default branch; without it the repository is empty. */
  files?: Files;
  private?: boolean;
  description?: string;
  /** `owner/name` of the repository to fork: the fork shares its objects and starts with its branches. */
  forkOf?: string;
  /** Merge settings; unset ones keep GitHub's defaults (auto-merge off, all merge methods on). */
  settings?: Partial<RepoSettings>;
}

export interface PushOptions {
  /** Default: the repository's default branch. A new branch starts from the default branch's tip. */
  branch?: string;
  author?: { name: string; email: string };
  /** Author and committer date; default now. */
  date?: Date;
}

// github-actions[bot]'s real account id, so ids in fixtures look like the ones a workflow sees.
const ACTIONS_BOT_ID = 41898282;

export class World {
  private nextId = 1000;
  private readonly accounts = new Map<string, Account>();
  private readonly repos = new Map<string, FakeRepo>();

  constructor(private readonly root: string) {}

  id(): number {
    this.nextId += 1;
    return this.nextId;
  }

  /** The account with this login, created on first mention (GitHub logins are case-insensitive). */
  account(login: string, type?: Account["type"]): Account {
    const key = login.toLowerCase();
    const known = this.accounts.get(key);
    if (known !== undefined) return known;
    const isBot = login.endsWith("[bot]");
    const account: Account = {
      login,
      id: login === "github-actions[bot]" ? ACTIONS_BOT_ID : this.id(),
      type: type ?? (isBot ? "Bot" : "User"),
    };
    this.accounts.set(key, account);
    return account;
  }

  findRepo(owner: string, name: string): FakeRepo | undefined {
    return this.repos.get(`${owner}/${name}`.toLowerCase());
  }

  /** The repository, or an error naming what does exist (for test authors, not API clients). */
  repo(owner: string, name: string): FakeRepo {
    const repo = this.findRepo(owner, name);
    if (repo !== undefined) return repo;
    const known = [...this.repos.values()].map((r) => r.fullName).join(", ") || "none";
    throw new Error(
      `fake-github has no repository ${owner}/${name} (it has: ${known}); call createRepo first`,
    );
  }

  allRepos(): FakeRepo[] {
    return [...this.repos.values()];
  }

  async createRepo(owner: string, name: string, options: CreateRepoOptions = {}): Promise<FakeRepo> {
    if (this.findRepo(owner, name) !== undefined) throw new Error(`fake-github already has ${owner}/${name}`);
    const parent = options.forkOf === undefined ? undefined : this.repoByFullName(options.forkOf);
    if (parent !== undefined && options.files !== undefined) {
      throw new Error(
        `createRepo: a fork starts with ${parent.fullName}'s branches; push to it instead of passing files`,
      );
    }
    const id = this.id();
    const gitDir = join(this.root, `${id}-${owner}-${name}.git`);
    const network = parent?.git.network ?? (await GitNetwork.create(join(this.root, `${id}-network.git`)));
    const defaultBranch = parent?.defaultBranch ?? options.defaultBranch ?? "main";
    const git = await GitRepo.create(gitDir, network, defaultBranch);
    const now = new Date();
    const repo: FakeRepo = {
      id,
      owner: this.account(owner),
      name,
      fullName: `${owner}/${name}`,
      private: options.private ?? parent?.private ?? false,
      description: options.description ?? null,
      defaultBranch,
      createdAt: now,
      pushedAt: now,
      parent,
      git,
      gitDir,
      cloneUrl: `file://${gitDir}`,
      forks: [],
      pulls: [],
      labels: [],
      comments: [],
      nextNumber: 1,
      signed: parent?.signed ?? new Map(),
      settings: {
        allowAutoMerge: false,
        allowMergeCommit: true,
        allowSquashMerge: true,
        allowRebaseMerge: true,
        ...options.settings,
      },
      protection: new Map(),
      passedChecks: parent?.passedChecks ?? new Set(),
      releases: [],
    };
    this.repos.set(repo.fullName.toLowerCase(), repo);
    if (parent !== undefined) {
      parent.forks.push(repo);
      for (const ref of [
        ...(await parent.git.listRefs("refs/heads/")),
        ...(await parent.git.listRefs("refs/tags/")),
      ]) {
        await git.updateRef(ref.ref, ref.sha);
      }
    }
    if (options.files !== undefined) await this.push(repo, options.files, "Initial commit", {});
    return repo;
  }

  private repoByFullName(fullName: string): FakeRepo {
    const [owner = "", name = ""] = fullName.split("/");
    return this.repo(owner, name);
  }

  /** Commits `files` on a branch (as a developer's `git push` would) and returns the new commit's SHA. */
  async push(repo: FakeRepo, files: Files, message: string, options: PushOptions): Promise<string> {
    const branch = options.branch ?? repo.defaultBranch;
    const ref = `refs/heads/${branch}`;
    const tip = await repo.git.refSha(ref);
    const parentSha = tip ?? (await repo.git.refSha(`refs/heads/${repo.defaultBranch}`));
    const baseTree = parentSha === undefined ? undefined : (await repo.git.readCommit(parentSha)).tree;
    const changes: TreeChange[] = Object.entries(files).map(([path, content]) =>
      content === null
        ? { path, mode: "100644", type: "blob", sha: null }
        : {
            path,
            mode: "100644",
            type: "blob",
            content: typeof content === "string" ? Buffer.from(content) : content,
          },
    );
    const tree = await repo.git.buildTree(baseTree, changes);
    const date = options.date ?? new Date();
    const author = {
      ...(options.author ?? { name: "Upstream Developer", email: "upstream@example.com" }),
      date,
    };
    const sha = await repo.git.writeCommit({
      tree,
      parents: parentSha === undefined ? [] : [parentSha],
      author,
      committer: author,
      message: message.endsWith("\n") ? message : `${message}\n`,
    });
    if (!(await repo.git.updateRef(ref, sha, tip ?? "0".repeat(40)))) {
      throw new Error(`push to ${repo.fullName} ${branch} raced with another update`);
    }
    this.touchBranch(repo, branch);
    return sha;
  }

  /** A branch moved: GitHub bumps the repository's pushed_at and its open pull requests' updated_at. */
  touchBranch(repo: FakeRepo, branch: string): void {
    const now = new Date();
    repo.pushedAt = now;
    for (const candidate of this.allRepos()) {
      for (const pull of candidate.pulls) {
        if (pull.state === "open" && pull.headRepo === repo && pull.headRef === branch) pull.updatedAt = now;
      }
    }
  }

  /** Pull requests (in any repository) whose head or base is this branch. */
  pullsOnBranch(repo: FakeRepo, branch: string): PullState[] {
    const found: PullState[] = [];
    for (const candidate of this.allRepos()) {
      for (const pull of candidate.pulls) {
        const onHead = pull.headRepo === repo && pull.headRef === branch;
        const onBase = candidate === repo && pull.baseRef === branch;
        if (onHead || onBase) found.push(pull);
      }
    }
    return found;
  }

  /** The repository a pull request belongs to. */
  repoOfPull(pull: PullState): FakeRepo {
    for (const repo of this.allRepos()) if (repo.pulls.includes(pull)) return repo;
    throw new Error(`pull request #${pull.number} belongs to no repository`);
  }

  /** Everything the response factories need, with live branch tips. */
  async pullInfo(repo: FakeRepo, pull: PullState): Promise<PullInfo> {
    const headSha = pull.frozen?.headSha ?? (await pull.headRepo.git.refSha(`refs/heads/${pull.headRef}`));
    const baseSha = pull.frozen?.baseSha ?? (await repo.git.refSha(`refs/heads/${pull.baseRef}`));
    return {
      id: pull.id,
      number: pull.number,
      title: pull.title,
      body: pull.body,
      state: pull.state,
      draft: pull.draft,
      user: pull.user,
      head: { repo: pull.headRepo, ref: pull.headRef, sha: headSha ?? "" },
      base: { repo, ref: pull.baseRef, sha: baseSha ?? "" },
      labels: pull.labels,
      requestedReviewers: pull.requestedReviewers,
      createdAt: pull.createdAt,
      updatedAt: pull.updatedAt,
      closedAt: pull.closedAt,
      autoMerge: pull.autoMerge,
      merged: pull.merged,
      comments: repo.comments.filter((comment) => comment.issueNumber === pull.number).length,
    };
  }

  /** Removes every repository and account (the temp dirs too); ids keep counting up. */
  async clear(): Promise<void> {
    this.repos.clear();
    this.accounts.clear();
    await rm(this.root, { recursive: true, force: true });
    await mkdir(this.root, { recursive: true });
  }
}

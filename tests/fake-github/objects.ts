/**
 * Factories for the JSON objects GitHub's REST API returns. Each one is typed with Octokit's own
 * response type (so TypeScript checks the shape) and the fake checks every response against the
 * OpenAPI description at run time (so the required fields and formats are GitHub's, not ours).
 */
import type { RestEndpointMethodTypes as Api } from "@octokit/plugin-rest-endpoint-methods";
import type { CommitObject, GitIdentity, TreeEntry } from "./git.ts";

type Data<R> = R extends { response: { data: infer D } } ? D : never;

export type FullRepository = Data<Api["repos"]["get"]>;
export type SimpleUser = FullRepository["owner"];
export type Repository = NonNullable<FullRepository["parent"]>;
export type PullRequest = Data<Api["pulls"]["get"]>;
export type PullRequestSimple = Data<Api["pulls"]["list"]>[number];
export type Commit = Data<Api["repos"]["getCommit"]>;
export type Comparison = Data<Api["repos"]["compareCommitsWithBasehead"]>;
export type GitCommit = Data<Api["git"]["getCommit"]>;
export type GitRef = Data<Api["git"]["getRef"]>;
export type GitTree = Data<Api["git"]["createTree"]>;
export type ShortBlob = Data<Api["git"]["createBlob"]>;
export type Label = Data<Api["issues"]["createLabel"]>;
export type IssueComment = Data<Api["issues"]["createComment"]>;
type Content = Data<Api["repos"]["getContent"]>;
export type ContentFile = Extract<Content, { type: "file" }>;
export type ContentDirectory = Extract<Content, unknown[]>;

/** Where the fake lives: `api` is the REST base URL, `html` the web base that `html_url`s use. */
export interface Site {
  api: string;
  html: string;
}

export interface Account {
  login: string;
  id: number;
  type: "User" | "Organization" | "Bot";
}

export interface RepoInfo {
  id: number;
  owner: Account;
  name: string;
  private: boolean;
  description: string | null;
  defaultBranch: string;
  createdAt: Date;
  pushedAt: Date;
  parent: RepoInfo | undefined;
}

export interface PullInfo {
  id: number;
  number: number;
  title: string;
  body: string | null;
  state: "open" | "closed";
  draft: boolean;
  user: Account;
  head: { repo: RepoInfo; ref: string; sha: string };
  base: { repo: RepoInfo; ref: string; sha: string };
  labels: LabelInfo[];
  requestedReviewers: Account[];
  createdAt: Date;
  updatedAt: Date;
  closedAt: Date | null;
  autoMerge: { enabledAt: Date; enabledBy: Account; mergeMethod: "MERGE" | "SQUASH" | "REBASE" } | undefined;
  merged: { at: Date; by: Account; sha: string } | undefined;
  comments: number;
}

export interface LabelInfo {
  id: number;
  name: string;
  color: string;
  description: string | null;
}

/**
 * GitHub's legacy global node id: base64 of "0<length of type>:<type><id>", e.g. "MDQ6VXNlcjE="
 * for User 1. Clients treat it as opaque; it only has to be a stable string.
 */
export function nodeId(type: string, id: number): string {
  return Buffer.from(`0${type.length}:${type}${id}`).toString("base64");
}

/** GitHub's timestamp format: ISO 8601 in UTC without milliseconds. */
export function timestamp(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

function fullName(repo: RepoInfo): string {
  return `${repo.owner.login}/${repo.name}`;
}

export function repoApiUrl(site: Site, repo: RepoInfo): string {
  return `${site.api}/repos/${fullName(repo)}`;
}

function repoHtmlUrl(site: Site, repo: RepoInfo): string {
  return `${site.html}/${fullName(repo)}`;
}

/** A published release as `GET /repos/{o}/{r}/releases/tags/{tag}` answers it (no assets). */
export function release(
  site: Site,
  repo: RepoInfo,
  state: { id: number; tag: string; name: string; body: string; createdAt: Date },
) {
  const api = `${repoApiUrl(site, repo)}/releases/${state.id}`;
  return {
    url: api,
    html_url: `${repoHtmlUrl(site, repo)}/releases/tag/${encodeURIComponent(state.tag)}`,
    assets_url: `${api}/assets`,
    upload_url: `${site.api.replace("//", "//uploads.")}/repos/${fullName(repo)}/releases/${state.id}/assets{?name,label}`,
    tarball_url: `${repoApiUrl(site, repo)}/tarball/${encodeURIComponent(state.tag)}`,
    zipball_url: `${repoApiUrl(site, repo)}/zipball/${encodeURIComponent(state.tag)}`,
    id: state.id,
    node_id: nodeId("Release", state.id),
    tag_name: state.tag,
    target_commitish: repo.defaultBranch,
    name: state.name,
    body: state.body,
    draft: false,
    prerelease: false,
    created_at: timestamp(state.createdAt),
    published_at: timestamp(state.createdAt),
    author: simpleUser(site, repo.owner),
    assets: [],
  };
}

export function simpleUser(site: Site, account: Account): SimpleUser {
  // Logins such as "github-actions[bot]" must be escaped to make valid URIs, as GitHub does.
  const login = encodeURIComponent(account.login);
  const api = `${site.api}/users/${login}`;
  return {
    login: account.login,
    id: account.id,
    node_id: nodeId(
      account.type === "Bot" ? "Bot" : account.type === "Organization" ? "Organization" : "User",
      account.id,
    ),
    avatar_url: `${site.html}/avatars/u/${account.id}?v=4`,
    gravatar_id: "",
    url: api,
    html_url: `${site.html}/${login}`,
    followers_url: `${api}/followers`,
    following_url: `${api}/following{/other_user}`,
    gists_url: `${api}/gists{/gist_id}`,
    starred_url: `${api}/starred{/owner}{/repo}`,
    subscriptions_url: `${api}/subscriptions`,
    organizations_url: `${api}/orgs`,
    repos_url: `${api}/repos`,
    events_url: `${api}/events{/privacy}`,
    received_events_url: `${api}/received_events`,
    type: account.type,
    user_view_type: "public",
    site_admin: false,
  };
}

/** The `repository` schema: what pulls' head/base and a fork's `parent` carry. */
export function repository(site: Site, repo: RepoInfo): Repository {
  return repositoryFields(site, repo);
}

// Left untyped on purpose: its inferred type fits both `repository` and `full-repository`, which
// disagree on details (nullable timestamps) that a typed spread would carry over.
function repositoryFields(site: Site, repo: RepoInfo) {
  const api = repoApiUrl(site, repo);
  const html = repoHtmlUrl(site, repo);
  const host = new URL(site.html).host;
  return {
    id: repo.id,
    node_id: nodeId("Repository", repo.id),
    name: repo.name,
    full_name: fullName(repo),
    owner: simpleUser(site, repo.owner),
    private: repo.private,
    html_url: html,
    description: repo.description,
    fork: repo.parent !== undefined,
    url: api,
    archive_url: `${api}/{archive_format}{/ref}`,
    assignees_url: `${api}/assignees{/user}`,
    blobs_url: `${api}/git/blobs{/sha}`,
    branches_url: `${api}/branches{/branch}`,
    collaborators_url: `${api}/collaborators{/collaborator}`,
    comments_url: `${api}/comments{/number}`,
    commits_url: `${api}/commits{/sha}`,
    compare_url: `${api}/compare/{base}...{head}`,
    contents_url: `${api}/contents/{+path}`,
    contributors_url: `${api}/contributors`,
    deployments_url: `${api}/deployments`,
    downloads_url: `${api}/downloads`,
    events_url: `${api}/events`,
    forks_url: `${api}/forks`,
    git_commits_url: `${api}/git/commits{/sha}`,
    git_refs_url: `${api}/git/refs{/sha}`,
    git_tags_url: `${api}/git/tags{/sha}`,
    git_url: `git://${host}/${fullName(repo)}.git`,
    issue_comment_url: `${api}/issues/comments{/number}`,
    issue_events_url: `${api}/issues/events{/number}`,
    issues_url: `${api}/issues{/number}`,
    keys_url: `${api}/keys{/key_id}`,
    labels_url: `${api}/labels{/name}`,
    languages_url: `${api}/languages`,
    merges_url: `${api}/merges`,
    milestones_url: `${api}/milestones{/number}`,
    notifications_url: `${api}/notifications{?since,all,participating}`,
    pulls_url: `${api}/pulls{/number}`,
    releases_url: `${api}/releases{/id}`,
    ssh_url: `git@${host}:${fullName(repo)}.git`,
    stargazers_url: `${api}/stargazers`,
    statuses_url: `${api}/statuses/{sha}`,
    subscribers_url: `${api}/subscribers`,
    subscription_url: `${api}/subscription`,
    tags_url: `${api}/tags`,
    teams_url: `${api}/teams`,
    trees_url: `${api}/git/trees{/sha}`,
    clone_url: `${html}.git`,
    mirror_url: null,
    hooks_url: `${api}/hooks`,
    svn_url: html,
    homepage: null,
    language: "Nix",
    forks_count: 0,
    stargazers_count: 0,
    watchers_count: 0,
    size: 1,
    default_branch: repo.defaultBranch,
    open_issues_count: 0,
    is_template: false,
    topics: [],
    has_issues: true,
    has_projects: true,
    has_wiki: true,
    has_pages: false,
    has_downloads: true,
    has_discussions: false,
    archived: false,
    disabled: false,
    visibility: repo.private ? "private" : "public",
    pushed_at: timestamp(repo.pushedAt),
    created_at: timestamp(repo.createdAt),
    updated_at: timestamp(repo.pushedAt),
    allow_forking: true,
    web_commit_signoff_required: false,
    license: null,
    forks: 0,
    open_issues: 0,
    watchers: 0,
  };
}

/** GET /repos/{owner}/{repo}. */
export function fullRepository(
  site: Site,
  repo: RepoInfo,
  counts: { openIssues: number; forks: number },
  settings?: {
    allowAutoMerge: boolean;
    allowMergeCommit: boolean;
    allowSquashMerge: boolean;
    allowRebaseMerge: boolean;
  },
): FullRepository {
  const base = repositoryFields(site, repo);
  const root = rootOf(repo);
  const full: FullRepository = {
    ...base,
    forks_count: counts.forks,
    forks: counts.forks,
    open_issues_count: counts.openIssues,
    open_issues: counts.openIssues,
    has_discussions: false,
    subscribers_count: 1,
    network_count: counts.forks,
    permissions: { admin: true, maintain: true, push: true, triage: true, pull: true },
  };
  if (settings !== undefined) {
    full.allow_auto_merge = settings.allowAutoMerge;
    full.allow_merge_commit = settings.allowMergeCommit;
    full.allow_squash_merge = settings.allowSquashMerge;
    full.allow_rebase_merge = settings.allowRebaseMerge;
  }
  if (repo.parent !== undefined) {
    full.parent = repository(site, repo.parent);
    full.source = repository(site, root);
  }
  return full;
}

function rootOf(repo: RepoInfo): RepoInfo {
  return repo.parent === undefined ? repo : rootOf(repo.parent);
}

function gitUser(identity: GitIdentity): { name: string; email: string; date: string } {
  return { name: identity.name, email: identity.email, date: timestamp(identity.date) };
}

/** How GitHub reports a commit's signature. `signed`: the commit was signed by GitHub itself. */
export interface Verification {
  verified: boolean;
  reason: string;
  signature: string | null;
  payload: string | null;
  verified_at: string | null;
}

export function verification(commit: CommitObject, signedAt: Date | undefined): Verification {
  if (signedAt === undefined) {
    return { verified: false, reason: "unsigned", signature: null, payload: null, verified_at: null };
  }
  return {
    verified: true,
    reason: "valid",
    signature: `-----BEGIN PGP SIGNATURE-----\n\nfake-github signature for ${commit.sha}\n-----END PGP SIGNATURE-----\n`,
    payload: commit.raw,
    verified_at: timestamp(signedAt),
  };
}

/** GET/POST /repos/{owner}/{repo}/git/commits. */
export function gitCommit(
  site: Site,
  repo: RepoInfo,
  commit: CommitObject,
  verified: Verification,
): GitCommit {
  const api = repoApiUrl(site, repo);
  return {
    sha: commit.sha,
    node_id: nodeId("Commit", shaNumber(commit.sha)),
    url: `${api}/git/commits/${commit.sha}`,
    html_url: `${repoHtmlUrl(site, repo)}/commit/${commit.sha}`,
    author: gitUser(commit.author),
    committer: gitUser(commit.committer),
    message: commit.message,
    tree: { sha: commit.tree, url: `${api}/git/trees/${commit.tree}` },
    parents: commit.parents.map((sha) => ({
      sha,
      url: `${api}/git/commits/${sha}`,
      html_url: `${repoHtmlUrl(site, repo)}/commit/${sha}`,
    })),
    verification: verified,
  };
}

/**
 * The `commit` schema (GET commits/{ref}, compare's commit list). `author`/`committer` are GitHub
 * accounts matched by email; the fake has none, and GitHub answers null in that case too.
 */
export function commit(
  site: Site,
  repo: RepoInfo,
  object: CommitObject,
  verified: Verification,
  files?: DiffEntry[],
): Commit {
  const api = repoApiUrl(site, repo);
  const html = repoHtmlUrl(site, repo);
  const result: Commit = {
    url: `${api}/commits/${object.sha}`,
    sha: object.sha,
    node_id: nodeId("Commit", shaNumber(object.sha)),
    html_url: `${html}/commit/${object.sha}`,
    comments_url: `${api}/commits/${object.sha}/comments`,
    commit: {
      url: `${api}/git/commits/${object.sha}`,
      author: gitUser(object.author),
      committer: gitUser(object.committer),
      message: object.message,
      comment_count: 0,
      tree: { sha: object.tree, url: `${api}/git/trees/${object.tree}` },
      verification: verified,
    },
    author: null,
    committer: null,
    parents: object.parents.map((sha) => ({
      sha,
      url: `${api}/commits/${sha}`,
      html_url: `${html}/commit/${sha}`,
    })),
  };
  if (files !== undefined) {
    const additions = files.reduce((sum, file) => sum + file.additions, 0);
    const deletions = files.reduce((sum, file) => sum + file.deletions, 0);
    result.stats = { additions, deletions, total: additions + deletions };
    result.files = files;
  }
  return result;
}

export type DiffEntry = NonNullable<Commit["files"]>[number];

export function diffEntry(
  site: Site,
  repo: RepoInfo,
  head: string,
  change: {
    path: string;
    additions: number;
    deletions: number;
    status: DiffEntry["status"];
    sha: string | null;
  },
): DiffEntry {
  const api = repoApiUrl(site, repo);
  const html = repoHtmlUrl(site, repo);
  const path = change.path.split("/").map(encodeURIComponent).join("/");
  return {
    sha: change.sha,
    filename: change.path,
    status: change.status,
    additions: change.additions,
    deletions: change.deletions,
    changes: change.additions + change.deletions,
    blob_url: `${html}/blob/${head}/${path}`,
    raw_url: `${html}/raw/${head}/${path}`,
    contents_url: `${api}/contents/${path}?ref=${head}`,
  };
}

/** GET /repos/{owner}/{repo}/compare/{base}...{head}. */
export function comparison(
  site: Site,
  repo: RepoInfo,
  spec: {
    base: string;
    head: string;
    baseCommit: Commit;
    mergeBaseCommit: Commit;
    aheadBy: number;
    behindBy: number;
    commits: Commit[];
    files: DiffEntry[];
  },
): Comparison {
  const api = repoApiUrl(site, repo);
  const html = repoHtmlUrl(site, repo);
  const range = `${spec.base}...${spec.head}`;
  const status =
    spec.aheadBy === 0 && spec.behindBy === 0
      ? "identical"
      : spec.behindBy === 0
        ? "ahead"
        : spec.aheadBy === 0
          ? "behind"
          : "diverged";
  return {
    url: `${api}/compare/${range}`,
    html_url: `${html}/compare/${range}`,
    permalink_url: `${html}/compare/${repo.owner.login}:${spec.baseCommit.sha.slice(0, 7)}...${repo.owner.login}:${spec.head.slice(0, 7)}`,
    diff_url: `${html}/compare/${range}.diff`,
    patch_url: `${html}/compare/${range}.patch`,
    base_commit: spec.baseCommit,
    merge_base_commit: spec.mergeBaseCommit,
    status,
    ahead_by: spec.aheadBy,
    behind_by: spec.behindBy,
    total_commits: spec.aheadBy,
    commits: spec.commits,
    files: spec.files,
  };
}

/** git/ref, git/refs responses. `ref` is fully qualified (`refs/heads/main`). */
export function gitRef(site: Site, repo: RepoInfo, ref: string, sha: string, type: string): GitRef {
  const api = repoApiUrl(site, repo);
  return {
    ref,
    node_id: nodeId("Ref", shaNumber(`${repo.id}:${ref}`)),
    url: `${api}/git/${ref}`,
    object: { type, sha, url: `${api}/git/${type === "tag" ? "tags" : "commits"}/${sha}` },
  };
}

export function gitTree(site: Site, repo: RepoInfo, sha: string, entries: TreeEntry[]): GitTree {
  const api = repoApiUrl(site, repo);
  return {
    sha,
    url: `${api}/git/trees/${sha}`,
    truncated: false,
    tree: entries.map((entry) => {
      const item: GitTree["tree"][number] = {
        path: entry.path,
        mode: entry.mode,
        type: entry.type,
        sha: entry.sha,
      };
      if (entry.size !== undefined) item.size = entry.size;
      if (entry.type === "blob") item.url = `${api}/git/blobs/${entry.sha}`;
      if (entry.type === "tree") item.url = `${api}/git/trees/${entry.sha}`;
      return item;
    }),
  };
}

export function shortBlob(site: Site, repo: RepoInfo, sha: string): ShortBlob {
  return { sha, url: `${repoApiUrl(site, repo)}/git/blobs/${sha}` };
}

export function label(site: Site, repo: RepoInfo, info: LabelInfo): Label {
  return {
    id: info.id,
    node_id: nodeId("Label", info.id),
    url: `${repoApiUrl(site, repo)}/labels/${encodeURIComponent(info.name)}`,
    name: info.name,
    description: info.description,
    color: info.color,
    default: false,
  };
}

export function issueComment(
  site: Site,
  repo: RepoInfo,
  comment: { id: number; issueNumber: number; body: string; user: Account; createdAt: Date },
): IssueComment {
  const api = repoApiUrl(site, repo);
  return {
    id: comment.id,
    node_id: nodeId("IssueComment", comment.id),
    url: `${api}/issues/comments/${comment.id}`,
    html_url: `${repoHtmlUrl(site, repo)}/pull/${comment.issueNumber}#issuecomment-${comment.id}`,
    body: comment.body,
    user: simpleUser(site, comment.user),
    created_at: timestamp(comment.createdAt),
    updated_at: timestamp(comment.createdAt),
    issue_url: `${api}/issues/${comment.issueNumber}`,
    author_association: "OWNER",
    reactions: {
      url: `${api}/issues/comments/${comment.id}/reactions`,
      total_count: 0,
      "+1": 0,
      "-1": 0,
      laugh: 0,
      confused: 0,
      heart: 0,
      hooray: 0,
      eyes: 0,
      rocket: 0,
    },
  };
}

function contentLinks(site: Site, repo: RepoInfo, ref: string, entry: TreeEntry) {
  const api = repoApiUrl(site, repo);
  const path = entry.path.split("/").map(encodeURIComponent).join("/");
  const kind = entry.type === "tree" ? "tree" : "blob";
  const self = `${api}/contents/${path}?ref=${encodeURIComponent(ref)}`;
  const git = `${api}/git/${entry.type === "tree" ? "trees" : "blobs"}/${entry.sha}`;
  const html = `${repoHtmlUrl(site, repo)}/${kind}/${encodeURIComponent(ref)}/${path}`;
  const raw = `${site.html}/raw/${fullName(repo)}/${encodeURIComponent(ref)}/${path}`;
  return { self, git, html, raw };
}

/** GET contents/{path} of a file. */
export function contentFile(
  site: Site,
  repo: RepoInfo,
  ref: string,
  entry: TreeEntry,
  content: Buffer,
): ContentFile {
  const links = contentLinks(site, repo, ref, entry);
  return {
    type: "file",
    encoding: "base64",
    size: content.length,
    name: entry.path.split("/").pop() ?? entry.path,
    path: entry.path,
    // GitHub wraps the base64 at 60 columns; clients must strip newlines before decoding.
    content: (content.toString("base64").match(/.{1,60}/g) ?? []).join("\n"),
    sha: entry.sha,
    url: links.self,
    git_url: links.git,
    html_url: links.html,
    download_url: links.raw,
    _links: { self: links.self, git: links.git, html: links.html },
  };
}

/** GET contents/{path} of a directory. */
export function contentDirectory(
  site: Site,
  repo: RepoInfo,
  ref: string,
  entries: TreeEntry[],
): ContentDirectory {
  return entries.map((entry) => {
    const links = contentLinks(site, repo, ref, entry);
    const type =
      entry.type === "tree"
        ? "dir"
        : entry.type === "commit"
          ? "submodule"
          : entry.mode === "120000"
            ? "symlink"
            : "file";
    return {
      type,
      size: entry.size ?? 0,
      name: entry.path.split("/").pop() ?? entry.path,
      path: entry.path,
      sha: entry.sha,
      url: links.self,
      git_url: links.git,
      html_url: links.html,
      download_url: type === "file" ? links.raw : null,
      _links: { self: links.self, git: links.git, html: links.html },
    };
  });
}

function pullLinks(site: Site, pull: PullInfo) {
  const api = repoApiUrl(site, pull.base.repo);
  const html = `${repoHtmlUrl(site, pull.base.repo)}/pull/${pull.number}`;
  const self = `${api}/pulls/${pull.number}`;
  return {
    self,
    html,
    issue: `${api}/issues/${pull.number}`,
    comments: `${api}/issues/${pull.number}/comments`,
    review_comments: `${self}/comments`,
    review_comment: `${api}/pulls/comments{/number}`,
    commits: `${self}/commits`,
    statuses: `${api}/statuses/${pull.head.sha}`,
  };
}

/** GET /repos/{owner}/{repo}/pulls items and the request-reviewers response. */
export function pullRequestSimple(site: Site, pull: PullInfo): PullRequestSimple {
  return {
    ...pullFields(site, pull),
    // pull-request-simple documents label descriptions as non-null strings, unlike the label schema.
    labels: pull.labels.map((info) => ({
      ...label(site, pull.base.repo, info),
      description: info.description ?? "",
    })),
  };
}

// Untyped for the same reason as repositoryFields: shared by two schemas that differ in details.
function pullFields(site: Site, pull: PullInfo) {
  const links = pullLinks(site, pull);
  const branch = (side: PullInfo["head"]) => ({
    label: `${side.repo.owner.login}:${side.ref}`,
    ref: side.ref,
    repo: repository(site, side.repo),
    sha: side.sha,
    user: simpleUser(site, side.repo.owner),
  });
  return {
    url: links.self,
    id: pull.id,
    node_id: nodeId("PullRequest", pull.id),
    html_url: links.html,
    diff_url: `${links.html}.diff`,
    patch_url: `${links.html}.patch`,
    issue_url: links.issue,
    commits_url: links.commits,
    review_comments_url: links.review_comments,
    review_comment_url: links.review_comment,
    comments_url: links.comments,
    statuses_url: links.statuses,
    number: pull.number,
    state: pull.state,
    locked: false,
    title: pull.title,
    user: simpleUser(site, pull.user),
    body: pull.body,
    milestone: null,
    active_lock_reason: null,
    created_at: timestamp(pull.createdAt),
    updated_at: timestamp(pull.updatedAt),
    closed_at: pull.closedAt === null ? null : timestamp(pull.closedAt),
    merged_at: pull.merged === undefined ? null : timestamp(pull.merged.at),
    merge_commit_sha: pull.merged?.sha ?? null,
    assignee: null,
    assignees: [],
    requested_reviewers: pull.requestedReviewers.map((account) => simpleUser(site, account)),
    requested_teams: [],
    head: branch(pull.head),
    base: branch(pull.base),
    _links: {
      self: { href: links.self },
      html: { href: links.html },
      issue: { href: links.issue },
      comments: { href: links.comments },
      review_comments: { href: links.review_comments },
      review_comment: { href: links.review_comment },
      commits: { href: links.commits },
      statuses: { href: links.statuses },
    },
    author_association: "CONTRIBUTOR" as const,
    auto_merge:
      pull.autoMerge === undefined
        ? null
        : {
            enabled_by: simpleUser(site, pull.autoMerge.enabledBy),
            merge_method: mergeMethodName(pull.autoMerge.mergeMethod),
            commit_title: pull.title,
            commit_message: "",
          },
    draft: pull.draft,
  };
}

/** GraphQL's PullRequestMergeMethod as REST spells it. */
export function mergeMethodName(method: "MERGE" | "SQUASH" | "REBASE"): "merge" | "squash" | "rebase" {
  return method === "MERGE" ? "merge" : method === "SQUASH" ? "squash" : "rebase";
}

/** GET/POST/PATCH a single pull request. */
export function pullRequest(
  site: Site,
  pull: PullInfo,
  stats: { commits: number; additions: number; deletions: number; changedFiles: number },
): PullRequest {
  return {
    ...pullFields(site, pull),
    labels: pull.labels.map((info) => label(site, pull.base.repo, info)),
    merged: pull.merged !== undefined,
    mergeable: pull.state === "open" ? true : null,
    rebaseable: pull.state === "open" ? true : null,
    mergeable_state: pull.state === "open" ? "clean" : "unknown",
    merged_by: pull.merged === undefined ? null : simpleUser(site, pull.merged.by),
    comments: pull.comments,
    review_comments: 0,
    maintainer_can_modify: false,
    commits: stats.commits,
    additions: stats.additions,
    deletions: stats.deletions,
    changed_files: stats.changedFiles,
  };
}

/** Basic-error bodies: what GitHub sends with 401, 403, 404 and most other failures. */
export function basicError(status: number, message: string, documentationUrl: string) {
  return { message, documentation_url: documentationUrl, status: String(status) };
}

/** One entry of a 422's `errors` list. */
export interface FieldError {
  resource?: string;
  field?: string;
  code: string;
  message?: string;
  index?: number;
}

export function validationError(message: string, documentationUrl: string, errors: FieldError[]) {
  const body: { message: string; documentation_url: string; status: string; errors?: FieldError[] } = {
    message,
    documentation_url: documentationUrl,
    status: "422",
  };
  if (errors.length > 0) body.errors = errors;
  return body;
}

/** A stable integer from a SHA or other text, for node ids of objects that have no numeric id. */
function shaNumber(text: string): number {
  let hash = 0;
  for (const char of text) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return hash;
}

// A local stand-in for Azure DevOps Services: the REST calls azure-devops-node-api 17 makes (resource areas,
// OPTIONS location lookups, projects, repositories, wikis), git smart HTTP through `git http-backend`, and the
// Git LFS batch API, all behind Azure DevOps-style auth, on one HTTP server on 127.0.0.1.
//
// Layout under `root`:
//   repos/<repoId>.git                         bare repositories (served by git http-backend)
//   lfs/<repoId>/<oid[0:2]>/<oid[2:4]>/<oid>   LFS objects, stored PER REPOSITORY (a restore into a new repo
//                                              must upload its objects again, as with the real service)
//
// Auth: `Bearer <t>` for t in tokens.bearer; `Basic base64(user:pass)` when pass (or user) is any known token
// (the real service also takes a job token through Basic). A PAT sent as Bearer, or anything else → 401.
//
// Faults (see `Faults`): each `count` is consumed by the requests it hits; `htmlRest`/`slowGit` stay until cleared.
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as path from 'path';
import { Transform } from 'stream';
import * as zlib from 'zlib';
import { pipeline } from 'stream/promises';
import { git, gitEnv } from './util';

export interface Project {
  id: string;
  name: string;
  description: string;
}

export interface StandInRepo {
  id: string;
  name: string;
  project: Project;
  /** The bare repository on disk. */
  gitDir: string;
  /** `http://<org>@127.0.0.1:<port>/<org>/<project>/_git/<repo>` (names URL-encoded), as the REST API reports it. */
  remoteUrl: string;
  /** `remoteUrl` without the user info. */
  cloneUrl: string;
  isDisabled: boolean;
  /** A project wiki: a hidden repository, listed only with `includeHidden=true` and by the wiki API. */
  isWiki: boolean;
  wikiId?: string;
  /**
   * Listed only (scale tests): no bare repository on disk; the REST API reports `listedSize` and a default
   * branch, git and LFS requests answer 404.
   */
  virtual?: boolean;
  /** Azure DevOps is maintaining it: REST says `isInMaintenance: true`, git requests are refused. */
  isInMaintenance?: boolean;
  /** The default branch a virtual repository reports. */
  virtualDefaultBranch?: string;
  /** Overrides the `size` the REST API reports (otherwise the size of `objects/` on disk). */
  listedSize?: number;
}

export interface RequestLogEntry {
  method: string;
  /** Path and query exactly as received. */
  url: string;
  /** 0 while the response is still open. */
  status: number;
  route: 'rest' | 'git' | 'lfs';
  /** The scheme of the Authorization header (`Bearer`, `Basic`, …), never its value. */
  authScheme?: string;
  /** True when the response was cut off (client gone or a `resetGit` fault). */
  aborted?: boolean;
  /** `Date.now()` when the request arrived. */
  at: number;
  /** The address the connection came from (a proxy's outgoing address when the client went through one). */
  remoteAddress?: string;
  /** `Date.now()` when the response closed (absent while open). */
  endedAt?: number;
  /** The Host header the request came with (e.g. `localhost:<port>` for a clone URL on another host name). */
  host?: string;
}

export interface Faults {
  /**
   * The next `count` REST requests (any REST route, OPTIONS included, after auth) get 429 + rate-limit headers.
   * With `path`, only requests whose path + query matches it count.
   */
  throttleRest?: { count: number; retryAfterSeconds: number; path?: RegExp };
  /**
   * The next `count` REST requests get `status` (e.g. 503, 403) with a JSON error (`message`, `typeKey` if given).
   * With `path`, only requests whose path + query matches it count.
   */
  failRest?: { count: number; status: number; path?: RegExp; message?: string; typeKey?: string; method?: string };
  /**
   * Malformed answers with status 200, as a broken proxy or a changed API might give them, for the next `count`
   * (default: every) REST requests whose path + query matches `path` (default: the repository list). `html`: a
   * sign-in page as text/html; `truncate`: the JSON cut in half; `transform`: the JSON body the route would have
   * sent, rewritten (return what to send instead: any JSON value, or a string sent as is).
   */
  malformedRest?: { path?: RegExp; count?: number; html?: boolean; truncate?: boolean; transform?(body: any): unknown };
  /**
   * The next `count` POST git-upload-pack requests of repo `repo` (name or id) lose their socket after the first
   * body bytes. `onlyPack`: only the requests that fetch a pack (v2 `command=fetch`, v0 `want` lines) count, not
   * v2's ref listing; `afterBytes`: the socket goes after that many bytes of the answer (mid-pack), not the first.
   */
  resetGit?: { repo: string; count: number; onlyPack?: boolean; afterBytes?: number };
  /** While true, every REST request gets a 200 text/html sign-in page. */
  htmlRest?: boolean;
  /** While set, every git smart-HTTP request of repo `repo` waits `delayMs` before it is answered. */
  slowGit?: { repo: string; delayMs: number };
  /**
   * Pushes (git-receive-pack: the ref advertisement and the pack) to repo `repo` (name or id; any when absent) are
   * refused with `status` as Azure DevOps refuses them: 403 `TF401027: You need the Git 'GenericContribute'
   * permission…` (no Contribute, or a job token that "Protect access to repositories in YAML pipelines" keeps out),
   * 401 TF400813 (a token that is no longer valid). `count` (default: every) goes down per refused request.
   */
  refusePush?: { repo?: string; status: 401 | 403; count?: number };
}

export interface StandInOptions {
  org: string;
  /** Folder the stand-in owns (bare repos + LFS store); created if missing. */
  root: string;
  /** Accepted tokens; a random bearer token and a random 52-char PAT are made when omitted. */
  tokens?: { bearer?: string[]; pat?: string[] };
  /**
   * The host name in every URL the stand-in hands out (default `127.0.0.1`); it must resolve to 127.0.0.1. A name
   * other than an IP literal or `localhost` makes clients that never proxy loopback addresses (git-lfs) use a proxy.
   */
  hostName?: string;
  /**
   * Which product to play (default `services`). `server2020` / `server2022` play Azure DevOps Server 2020 / 2022:
   * the collection URL has a path (`http://127.0.0.1:<port>/tfs/<org>/`, `org` being the collection name, e.g.
   * DefaultCollection) and every route lives under it; the OPTIONS location answers carry the Server's maxVersion
   * (6.0 / 7.0) and a request with a higher api-version is refused with 400 VssVersionOutOfRangeException as the
   * Server refuses it; repositories are listed without `size` (and, on 2020, without `isInMaintenance`); remote
   * URLs carry no user name; the pipeline general settings answer as that version's (6.0-preview.1 on 2020, without
   * the release scope field). PAT (Basic) and the job token (Bearer) work; there is no NTLM.
   */
  flavor?: Flavor;
}

export type Flavor = 'services' | 'server2020' | 'server2022';

/** What each product answers: the highest REST version, and the fields it reports. */
export const FLAVORS: Record<Flavor, { maxVersion: string; releasedVersion: string; virtualDir?: string; reportsSize: boolean; reportsMaintenance: boolean; name: string }> = {
  services: { maxVersion: '7.2', releasedVersion: '7.1', reportsSize: true, reportsMaintenance: true, name: 'Azure DevOps Services' },
  server2020: { maxVersion: '6.0', releasedVersion: '6.0', virtualDir: 'tfs', reportsSize: false, reportsMaintenance: false, name: 'Azure DevOps Server 2020' },
  server2022: { maxVersion: '7.0', releasedVersion: '7.0', virtualDir: 'tfs', reportsSize: false, reportsMaintenance: true, name: 'Azure DevOps Server 2022' },
};

const AREAS = {
  location: { id: 'e81700f7-3be2-46de-8624-2eb35882fcaa', name: 'Location' },
  core: { id: '79134c72-4a58-4b42-976c-04e7115f32bf', name: 'core' },
  git: { id: '4e080c62-fa21-4fbc-8fef-2a10a2b38049', name: 'git' },
  wiki: { id: 'bf7d82a0-8aa5-4613-94ef-6172a5ea01f3', name: 'wiki' },
  build: { id: '965220d5-5bb9-42cf-8d67-9b146df2a5a4', name: 'build' },
};

interface ApiLocation {
  id: string;
  area: string;
  resourceName: string;
  routeTemplate: string;
  resourceVersion: number;
  minVersion: string;
  maxVersion: string;
  releasedVersion: string;
}

const loc = (id: string, area: string, resourceName: string, routeTemplate: string, resourceVersion: number, preview = false): ApiLocation => ({
  id, area, resourceName, routeTemplate, resourceVersion, minVersion: '1.0', maxVersion: '7.2', releasedVersion: preview ? '0.0' : '7.1',
});

const LOCATIONS: ApiLocation[] = [
  loc('e81700f7-3be2-46de-8624-2eb35882fcaa', 'Location', 'ResourceAreas', '_apis/{resource}/{areaId}', 1),
  loc('00d9565f-ed9c-4a06-9a50-00e7896ccab4', 'Location', 'ConnectionData', '_apis/{resource}', 1),
  loc('603fe2ac-9723-48b9-88ad-09305aa6c6e1', 'core', 'projects', '_apis/{resource}/{*projectId}', 4),
  loc('225f7195-f9c7-4d14-ab28-a83f7ff77e1f', 'git', 'repositories', '{project}/_apis/{area}/{resource}/{repositoryId}', 2),
  loc('2d874a60-a811-4f62-9c9f-963a6ea0a55b', 'git', 'refs', '{project}/_apis/{area}/repositories/{repositoryId}/{resource}', 2),
  loc('288d122c-dbd4-451d-aa5f-7dbbba070728', 'wiki', 'wikis', '{project}/_apis/{area}/{resource}/{wikiIdentifier}', 2),
  // Preview-only on every product (the documented versions are 6.0-preview.1 … 7.2-preview.1).
  loc('c4aefd19-30ff-405b-80ad-aca021e7242a', 'build', 'generalsettings', '{project}/_apis/{area}/{resource}', 1, true),
];

/** A project's pipeline settings (`GET {project}/_apis/build/generalsettings`), the fields that limit the job token. */
export interface PipelineGeneralSettings {
  enforceJobAuthScope: boolean;
  enforceJobAuthScopeForReleases: boolean;
  enforceReferencedRepoScopedToken: boolean;
  [other: string]: boolean;
}

/** What a new project reports when nobody changed its settings (an organization created before the 2020 defaults). */
const DEFAULT_GENERAL_SETTINGS: PipelineGeneralSettings = {
  enforceJobAuthScope: false, enforceJobAuthScopeForReleases: false, enforceReferencedRepoScopedToken: false,
  enforceSettableVar: false, publishPipelineMetadata: false, statusBadgesArePrivate: true,
};

const LFS_JSON = 'application/vnd.git-lfs+json';
const FIXED_TIME = '2024-01-01T00:00:00.000Z';

/**
 * Pushes to refs/pull/* are refused (the service owns pull request refs), one ref at a time like the real service:
 * git's own `receive.hideRefs` rejects each such ref (`[remote rejected] … (deny updating a hidden ref)`) and lets
 * the others of the same push through. An `update` hook did the same with a shell process per ref: 9,000 refs cost
 * the stand-in half a minute.
 */
// core.fsync = none: a test server needs no durability, and fsync per pushed ref (9,000 refs) cost it minutes on a busy disk.
const REPO_CONFIG = '[http]\n\treceivepack = true\n[receive]\n\thideRefs = refs/pull/\n[core]\n\tfsync = none\n';

/** Sets the default branch to the first branch pushed into a repository whose HEAD points nowhere. */
const POST_RECEIVE_HOOK = `#!/bin/sh
git rev-parse -q --verify HEAD >/dev/null 2>&1 && exit 0
while read old new ref; do
  case "$ref" in refs/heads/*) git symbolic-ref HEAD "$ref"; exit 0 ;; esac
done
exit 0
`;

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly typeKey: string) {
    super(message);
  }
}

const repoNotFound = (nameOrId: string) =>
  new HttpError(404,
    `TF401019: The Git repository with name or identifier ${nameOrId} does not exist or you do not have permissions for the operation you are attempting.`,
    'GitRepositoryNotFoundException');

const projectNotFound = (nameOrId: string) =>
  new HttpError(404,
    `TF200016: The following project does not exist: ${nameOrId}. Verify that the name of the project is correct and that the project exists on the specified Azure DevOps Server.`,
    'ProjectDoesNotExistWithNameException');

const ASCII = /^[\x00-\x7f]*$/;
/** Case-insensitive, accent-sensitive, as Azure DevOps compares names (ASCII fast path: thousands of repositories). */
const sameName = (a: string, b: string) =>
  ASCII.test(a) && ASCII.test(b) ? a.toLowerCase() === b.toLowerCase() : a.localeCompare(b, undefined, { sensitivity: 'accent' }) === 0;

export class DevOpsStandIn {
  readonly org: string;
  readonly root: string;
  readonly tokens: { bearer: string[]; pat: string[] };
  readonly requests: RequestLogEntry[] = [];
  faults: Faults = {};
  /**
   * Job tokens limited to one project ("Limit job authorization scope to current project"): token → project name.
   * Such a token lists only that project and its repositories, and every other project is out of its sight (REST 404
   * as for a project that does not exist, git TF401019), as the project's build service identity experiences it.
   */
  readonly projectScopedTokens = new Map<string, string>();
  /** Pipeline settings by project id; projects not here report DEFAULT_GENERAL_SETTINGS. */
  readonly generalSettings = new Map<string, PipelineGeneralSettings>();

  private readonly projects: Project[] = [];
  private readonly repos: StandInRepo[] = [];
  /**
   * Service connections (workload identity federation): the pipeline's OIDC token API,
   * `POST {collection}/{project id}/_apis/distributedtask/hubs/{hub}/plans/{plan}/jobs/{job}/oidctoken?serviceConnectionId=<id>`,
   * answers `{ oidcToken }` for a connection id in `connections` (its value is the token's subject,
   * sc://<org>/<project>/<connection name>), signed by `issue`; a connection not there gets 400 (not found or not
   * authorized for the pipeline). It takes the job token (Bearer) only.
   */
  oidc?: { issue(subject: string): string; connections: Map<string, string> };
  /** Entra access tokens accepted as Bearer (organization-wide), e.g. `(t) => entra.accepts(t, DEVOPS_RESOURCE)`. */
  acceptEntraToken?: (token: string) => boolean;
  /** While true, the job tokens (tokens.bearer) are refused everywhere but on the OIDC token API. */
  jobTokenOnlyForOidc = false;
  /** OIDC tokens handed out. */
  readonly oidcIssued: string[] = [];
  /**
   * The port in the URLs the stand-in hands out from now on (default: the one it listens on), e.g. a proxy's that
   * forwards to it (the bench's network model). Repositories keep the URLs they were added with: set it first.
   */
  publicPort?: number;
  private readonly children = new Set<ChildProcess>();
  private server!: http.Server;
  private port = 0;
  private readonly hostName: string;
  readonly flavor: Flavor;

  private constructor(opts: StandInOptions) {
    this.org = opts.org;
    this.flavor = opts.flavor ?? 'services';
    this.hostName = opts.hostName ?? '127.0.0.1';
    this.root = path.resolve(opts.root);
    this.tokens = {
      bearer: opts.tokens?.bearer ?? [`job-${crypto.randomBytes(24).toString('hex')}`],
      pat: opts.tokens?.pat ?? [crypto.randomBytes(39).toString('base64url').slice(0, 52)],
    };
  }

  static async start(opts: StandInOptions): Promise<DevOpsStandIn> {
    const s = new DevOpsStandIn(opts);
    fs.mkdirSync(path.join(s.root, 'repos'), { recursive: true });
    fs.mkdirSync(path.join(s.root, 'lfs'), { recursive: true });
    s.server = http.createServer((req, res) => void s.handle(req, res));
    s.server.requestTimeout = 0;
    s.server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(0, '127.0.0.1', () => resolve());
    });
    s.port = (s.server.address() as net.AddressInfo).port;
    return s;
  }

  /** The port it listens on (`publicPort` aside). */
  get listenPort(): number {
    return this.port;
  }

  /** `http://127.0.0.1:<port>` */
  get baseUrl(): string {
    return `http://${this.hostName}:${this.publicPort ?? this.port}`;
  }

  /** `http://127.0.0.1:<port>/<org>/` (the collection URL, trailing slash); on Server `http://127.0.0.1:<port>/tfs/<collection>/`. */
  get orgUrl(): string {
    return `${this.collectionBase()}/`;
  }

  /** The collection URL without the trailing slash, on `host` (default: the stand-in's own host name and port). */
  private collectionBase(host = `${this.hostName}:${this.publicPort ?? this.port}`): string {
    const dir = FLAVORS[this.flavor].virtualDir;
    return `http://${host}${dir ? `/${dir}` : ''}/${encodeURIComponent(this.org)}`;
  }

  /**
   * Makes REST report the clone URL of `repo` on another host name (e.g. `localhost`, an internal name where the
   * collection URL uses a public one), as a Server whose public URL differs from the one agents use does. The
   * stand-in serves that host too (it must resolve to 127.0.0.1); `port` defaults to the stand-in's own.
   */
  setRemoteHost(repo: StandInRepo, hostName: string, port = this.port): void {
    const url = new URL(repo.cloneUrl);
    url.hostname = hostName;
    url.port = String(port);
    repo.cloneUrl = url.toString();
    repo.remoteUrl = this.flavor === 'services' ? repo.cloneUrl.replace('http://', `http://${encodeURIComponent(this.org)}@`) : repo.cloneUrl;
  }

  /** A valid Authorization header value: the first bearer token, or `Basic` with the first PAT. */
  authHeader(kind: 'bearer' | 'pat' = this.tokens.bearer.length ? 'bearer' : 'pat'): string {
    if (kind === 'bearer') return `Bearer ${this.tokens.bearer[0]}`;
    return `Basic ${Buffer.from(`user:${this.tokens.pat[0]}`).toString('base64')}`;
  }

  async stop(): Promise<void> {
    for (const child of this.children) child.kill('SIGKILL');
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  clearLog(): void {
    this.requests.length = 0;
  }

  // ---------------------------------------------------------------- data

  addProject(name: string, description = ''): Project {
    if (this.projects.some((p) => sameName(p.name, name))) throw new Error(`project ${name} exists`);
    const project: Project = { id: crypto.randomUUID(), name, description };
    this.projects.push(project);
    return project;
  }

  listProjects(): readonly Project[] {
    return this.projects;
  }

  listRepos(): readonly StandInRepo[] {
    return this.repos;
  }

  findRepo(projectName: string, repoName: string): StandInRepo | undefined {
    return this.repos.find((r) => sameName(r.project.name, projectName) && sameName(r.name, repoName));
  }

  /**
   * Creates an empty bare repository (HEAD → refs/heads/main, or `defaultBranch`); with `template`, a copy of the
   * bare repository at that path instead (objects, refs, HEAD, hooks: a file copy, no git process, fast for thousands).
   */
  addRepo(
    project: Project,
    name: string,
    opts: { id?: string; isDisabled?: boolean; wiki?: boolean; defaultBranch?: string; virtual?: boolean; listedSize?: number; template?: string } = {},
  ): StandInRepo {
    if (this.repos.some((r) => r.project.id === project.id && sameName(r.name, name))) {
      throw new Error(`repository ${project.name}/${name} exists`);
    }
    const id = opts.id ?? crypto.randomUUID();
    const gitDir = path.join(this.root, 'repos', `${id}.git`);
    const branch = opts.defaultBranch ?? (opts.wiki ? 'wikiMaster' : 'main');
    if (opts.template && !opts.virtual) {
      fs.cpSync(opts.template, gitDir, { recursive: true });
    } else if (!opts.virtual) {
      execFileSync('git', ['init', '--bare', '--quiet', `--initial-branch=${branch}`, gitDir], { env: gitEnv(), stdio: 'pipe' });
      fs.appendFileSync(path.join(gitDir, 'config'), REPO_CONFIG);
      fs.writeFileSync(path.join(gitDir, 'hooks', 'post-receive'), POST_RECEIVE_HOOK, { mode: 0o755 });
    }
    const cloneUrl = `${this.collectionBase()}/${encodeURIComponent(project.name)}/_git/${encodeURIComponent(name)}`;
    const repo: StandInRepo = {
      id, name, project, gitDir, cloneUrl,
      // Services puts the organization in the user info; a Server's clone URL has none.
      remoteUrl: this.flavor === 'services' ? cloneUrl.replace('http://', `http://${encodeURIComponent(this.org)}@`) : cloneUrl,
      isDisabled: opts.isDisabled ?? false,
      isWiki: opts.wiki ?? false,
      wikiId: opts.wiki ? crypto.randomUUID() : undefined,
    };
    if (opts.virtual) {
      repo.virtual = true;
      repo.virtualDefaultBranch = `refs/heads/${branch}`;
    }
    if (opts.listedSize !== undefined) repo.listedSize = opts.listedSize;
    this.repos.push(repo);
    return repo;
  }

  /**
   * Makes REST report `bytes` as the repository's `size` (what the backup reserves temp space by) instead of its
   * real size; `undefined` restores the real size.
   */
  /** Deletes a repository as the REST API's DELETE would: gone from every listing, git and LFS answer 404 TF401019. */
  deleteRepo(repo: StandInRepo): void {
    const i = this.repos.indexOf(repo);
    if (i >= 0) this.repos.splice(i, 1);
    fs.rmSync(repo.gitDir, { recursive: true, force: true });
  }

  setReportedSize(repoIdOrName: string, bytes: number | undefined): void {
    const repo = this.repos.find((r) => r.id === repoIdOrName || sameName(r.name, repoIdOrName));
    if (!repo) throw new Error(`no repository ${repoIdOrName}`);
    if (bytes === undefined) delete repo.listedSize;
    else repo.listedSize = bytes;
  }

  /** Sets a project's pipeline settings (merged over the defaults). */
  setGeneralSettings(project: Project, settings: Partial<PipelineGeneralSettings>): void {
    this.generalSettings.set(project.id, { ...DEFAULT_GENERAL_SETTINGS, ...this.generalSettings.get(project.id), ...settings } as PipelineGeneralSettings);
  }

  /** Puts a repository in (or out of) maintenance. */
  setRepoInMaintenance(id: string, inMaintenance: boolean): void {
    const repo = this.repos.find((r) => r.id === id);
    if (!repo) throw new Error(`no repository ${id}`);
    repo.isInMaintenance = inMaintenance;
  }

  setRepoDisabled(id: string, disabled: boolean): void {
    const repo = this.repos.find((r) => r.id === id);
    if (!repo) throw new Error(`no repository ${id}`);
    repo.isDisabled = disabled;
  }

  /** Where the LFS object `oid` of `repo` lives (whether or not it exists). */
  lfsObjectPath(repo: StandInRepo, oid: string): string {
    return path.join(this.root, 'lfs', repo.id, oid.slice(0, 2), oid.slice(2, 4), oid);
  }

  /** Seeds the LFS store of `repo` directly; returns the oid (sha256). */
  putLfsObject(repo: StandInRepo, content: Buffer): string {
    const oid = crypto.createHash('sha256').update(content).digest('hex');
    const file = this.lfsObjectPath(repo, oid);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content);
    return oid;
  }

  deleteLfsObject(repo: StandInRepo, oid: string): void {
    fs.rmSync(this.lfsObjectPath(repo, oid), { force: true });
  }

  /** The repository as `GET …/_apis/git/repositories` shows it. */
  repoJson(repo: StandInRepo): Record<string, unknown> {
    const encProject = encodeURIComponent(repo.project.name);
    const encName = encodeURIComponent(repo.name);
    const json: Record<string, unknown> = {
      id: repo.id,
      name: repo.name,
      url: `${this.orgUrl}${repo.project.id}/_apis/git/repositories/${repo.id}`,
      project: this.projectRef(repo.project),
    };
    const head = repo.virtual ? repo.virtualDefaultBranch : defaultBranchOf(repo.gitDir);
    if (head) json.defaultBranch = head;
    const f = FLAVORS[this.flavor];
    if (f.reportsSize) json.size = repo.listedSize ?? (repo.virtual ? 0 : dirSize(path.join(repo.gitDir, 'objects')));
    Object.assign(json, {
      remoteUrl: repo.remoteUrl,
      sshUrl: this.flavor === 'services'
        ? `git@ssh.dev.azure.com:v3/${encodeURIComponent(this.org)}/${encProject}/${encName}`
        : `ssh://${this.hostName}:22${new URL(this.orgUrl).pathname}${encProject}/_git/${encName}`,
      webUrl: `${this.orgUrl}${encProject}/_git/${encName}`,
      isDisabled: repo.isDisabled,
    });
    if (f.reportsMaintenance) json.isInMaintenance = repo.isInMaintenance ?? false;
    json.isFork = false;
    return json;
  }

  private projectRef(p: Project): Record<string, unknown> {
    return {
      id: p.id, name: p.name, description: p.description || undefined,
      url: `${this.orgUrl}_apis/projects/${p.id}`,
      state: 'wellFormed', revision: 1, visibility: 'private', lastUpdateTime: FIXED_TIME,
    };
  }

  private wikiJson(repo: StandInRepo): Record<string, unknown> {
    return {
      id: repo.wikiId, name: repo.name, type: 'projectWiki', projectId: repo.project.id, repositoryId: repo.id,
      mappedPath: '/', isDisabled: repo.isDisabled,
      url: `${this.orgUrl}${repo.project.id}/_apis/wiki/wikis/${repo.wikiId}`,
      remoteUrl: `${this.orgUrl}${encodeURIComponent(repo.project.name)}/_wiki/wikis/${repo.wikiId}`,
      versions: [{ version: 'wikiMaster' }],
    };
  }

  // ---------------------------------------------------------------- dispatch

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const rawUrl = req.url ?? '/';
    const qIndex = rawUrl.indexOf('?');
    const rawPath = qIndex < 0 ? rawUrl : rawUrl.slice(0, qIndex);
    const query = new URLSearchParams(qIndex < 0 ? '' : rawUrl.slice(qIndex + 1));
    let segs: string[];
    try {
      segs = rawPath.split('/').filter((s) => s !== '').map(decodeURIComponent);
    } catch {
      segs = [];
    }
    // On Server everything lives under the virtual directory (`/tfs/<collection>/…`): anything else is not found.
    const dir = FLAVORS[this.flavor].virtualDir;
    const dirOk = !dir || sameName(segs[0] ?? '', dir);
    if (dir) segs = segs.slice(1);
    const route: RequestLogEntry['route'] =
      segs[2] === '_git' ? (segs[4] === 'info' && segs[5] === 'lfs' ? 'lfs' : 'git') : 'rest';
    const entry: RequestLogEntry = { method: req.method ?? 'GET', url: rawUrl, status: 0, route, at: Date.now(), remoteAddress: req.socket.remoteAddress, host: req.headers.host };
    const scheme = /^\s*(\S+)/.exec(req.headers.authorization ?? '')?.[1];
    if (scheme) entry.authScheme = scheme;
    this.requests.push(entry);
    res.on('close', () => {
      entry.status = res.statusCode;
      entry.endedAt = Date.now();
      if (!res.writableFinished) entry.aborted = true;
    });

    try {
      if (!dirOk || !segs.length || !sameName(segs[0], this.org)) {
        throw new HttpError(404, dir ? `TF400898: The collection ${segs[0] ?? ''} was not found under /${dir}.` : `Organization not found: ${segs[0] ?? ''}`, 'NotFound');
      }
      if (route === 'rest' && segs.at(-1) === 'oidctoken' && segs[2] === '_apis' && segs[3] === 'distributedtask') {
        return this.oidcToken(req, res, query);
      }
      if (!this.authorized(req.headers.authorization)) return this.unauthorized(res, route);
      const scope = this.scopeOf(req.headers.authorization);
      if (route === 'rest') return await this.rest(req, res, segs.slice(1), query, scope);
      const project = this.project(segs[1], scope);
      const repoSeg = segs[3] ?? '';
      const repoName = repoSeg.endsWith('.git') ? repoSeg.slice(0, -4) : repoSeg;
      const repo = this.repos.find((r) => r.project.id === project.id && (sameName(r.name, repoName) || r.id === repoName));
      if (!repo || repo.isDisabled || repo.virtual) throw repoNotFound(repoName);
      if (repo.isInMaintenance) {
        throw new HttpError(503, `TF401043: The repository ${repo.name} is under maintenance and cannot be accessed now. Try again later.`, 'GitRepositoryInMaintenanceException');
      }
      if (route === 'lfs') return await this.lfs(req, res, repo, segs.slice(6));
      const rest = rawPath.split('/').filter((s) => s !== '').slice(dir ? 5 : 4).join('/');
      return await this.git(req, res, repo, rest, qIndex < 0 ? '' : rawUrl.slice(qIndex + 1));
    } catch (err) {
      this.fail(res, route, err);
    }
  }

  private oidcToken(req: http.IncomingMessage, res: http.ServerResponse, query: URLSearchParams): void {
    const m = /^\s*bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (req.method !== 'POST') return sendJson(res, 405, errorBody('Method not allowed.', 'MethodNotAllowed'));
    if (!m || !this.tokens.bearer.includes(m[1])) return this.unauthorized(res, 'rest');
    const id = query.get('serviceConnectionId') ?? '';
    const subject = this.oidc?.connections.get(id);
    if (!this.oidc || !subject) {
      return sendJson(res, 400, errorBody(`Service connection ${id} not found, or it is not authorized for this pipeline, or it does not use workload identity federation.`, 'InvalidServiceEndpointException'));
    }
    const token = this.oidc.issue(subject);
    this.oidcIssued.push(token);
    sendJson(res, 200, { oidcToken: token });
  }

  private authorized(header: string | undefined): boolean {
    if (!header) return false;
    const m = /^\s*(\S+)\s+(\S+)\s*$/.exec(header);
    if (!m) return false;
    const scheme = m[1].toLowerCase();
    if (scheme === 'bearer' && this.acceptEntraToken?.(m[2])) return true;
    if (this.jobTokenOnlyForOidc && this.tokens.bearer.some((t) => header.includes(t) || Buffer.from(m[2], 'base64').toString('utf8').includes(t))) return false;
    if (scheme === 'bearer') return this.tokens.bearer.includes(m[2]);
    if (scheme !== 'basic') return false;
    const decoded = Buffer.from(m[2], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const user = colon < 0 ? decoded : decoded.slice(0, colon);
    const pass = colon < 0 ? '' : decoded.slice(colon + 1);
    const known = [...this.tokens.bearer, ...this.tokens.pat];
    return known.includes(pass) || known.includes(user);
  }

  /** The one project a project-scoped job token may see, or undefined for an organization-wide credential. */
  private scopeOf(header: string | undefined): string | undefined {
    const m = /^\s*bearer\s+(\S+)\s*$/i.exec(header ?? '');
    return m ? this.projectScopedTokens.get(m[1]) : undefined;
  }

  private unauthorized(res: http.ServerResponse, route: RequestLogEntry['route']): void {
    res.setHeader('WWW-Authenticate', [
      'Bearer authorization_uri=https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000',
      `Basic realm="${this.baseUrl}/"`,
      'TFS-Federated',
    ]);
    const message = 'TF400813: The user is not authorized to access this resource.';
    if (route === 'rest') return sendJson(res, 401, errorBody(message, 'UnauthorizedRequestException'));
    if (route === 'lfs') return sendJson(res, 401, { message }, LFS_JSON);
    res.writeHead(401, { 'Content-Type': 'text/plain' }).end(message + '\n');
  }

  private fail(res: http.ServerResponse, route: RequestLogEntry['route'], err: unknown): void {
    const e = err instanceof HttpError ? err : new HttpError(500, String((err as Error)?.stack ?? err), 'InternalServerError');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (route === 'rest') sendJson(res, e.status, errorBody(e.message, e.typeKey));
    else if (route === 'lfs') sendJson(res, e.status, { message: e.message }, LFS_JSON);
    else res.writeHead(e.status, { 'Content-Type': 'text/plain; charset=utf-8' }).end(e.message + '\n');
  }

  /** A project by id or name; with `scope`, any other project is out of sight (as if it did not exist). */
  private project(idOrName: string | undefined, scope?: string): Project {
    const p = this.projects.find((x) => x.id === idOrName || sameName(x.name, idOrName ?? ''));
    if (!p || (scope !== undefined && !sameName(p.name, scope))) throw projectNotFound(idOrName ?? '');
    return p;
  }

  // ---------------------------------------------------------------- REST

  /** `segs` starts after the org: `[_apis, …]` or `[project, _apis, …]`. */
  private async rest(req: http.IncomingMessage, res: http.ServerResponse, segs: string[], query: URLSearchParams, scope?: string): Promise<void> {
    if (this.restFault(req, res)) return;
    const method = req.method ?? 'GET';
    const project = segs[0] !== '_apis' ? this.project(segs[0], scope) : undefined;
    const visible = (p: Project) => scope === undefined || sameName(p.name, scope);
    const api = segs.slice(project ? 2 : 1).map((s) => s.toLowerCase());
    const raw = segs.slice(project ? 2 : 1);
    if ((project ? segs[1] : segs[0]) !== '_apis') throw new HttpError(404, 'Not found', 'NotFound');

    const f = FLAVORS[this.flavor];
    if (method === 'OPTIONS' && !project) {
      const area = api[0];
      const value = (area ? LOCATIONS.filter((l) => l.area.toLowerCase() === area) : LOCATIONS)
        .map((l) => this.flavor === 'services' ? l : { ...l, maxVersion: f.maxVersion, releasedVersion: l.releasedVersion === '0.0' ? '0.0' : f.releasedVersion });
      return sendJson(res, 200, { count: value.length, value });
    }
    // The server refuses an api-version above the highest it knows, whatever the route (the client library
    // negotiates down through OPTIONS; a hand-written URL with a newer version gets this).
    const requested = query.get('api-version') ?? /api-version=([^;,\s]+)/i.exec(String(req.headers.accept ?? ''))?.[1];
    if (requested) {
      const m = /^(\d+)\.(\d+)/.exec(requested);
      const [maxMajor, maxMinor] = f.maxVersion.split('.').map(Number);
      if (m && (Number(m[1]) > maxMajor || (Number(m[1]) === maxMajor && Number(m[2]) > maxMinor))) {
        throw new HttpError(400, `The requested REST API version of ${m[1]}.${m[2]} is out of range for this server. The latest REST API version this server supports is ${f.maxVersion}.`,
          'VssVersionOutOfRangeException');
      }
    }
    if (method === 'GET' && !project && api[0] === 'resourceareas') {
      const areas = Object.values(AREAS).map((a) => ({ id: a.id, name: a.name, locationUrl: this.orgUrl }));
      if (api[1]) {
        const one = areas.find((a) => a.id === api[1]);
        if (!one) throw new HttpError(404, `Resource area ${raw[1]} not found`, 'ResourceAreaNotFoundException');
        return sendJson(res, 200, one);
      }
      return sendJson(res, 200, { count: areas.length, value: areas });
    }
    if (method === 'GET' && !project && api[0] === 'connectiondata') {
      return sendJson(res, 200, {
        authenticatedUser: { id: '00000000-0000-0000-0000-000000000001', providerDisplayName: 'Project Collection Build Service' },
        instanceId: '00000000-0000-0000-0000-0000000000aa', locationServiceData: { serviceOwner: '00025394-6065-48ca-87d9-7f5672854ef7' },
      });
    }
    if (method === 'GET' && !project && api[0] === 'projects') {
      if (raw[1]) return sendJson(res, 200, { ...this.projectRef(this.project(raw[1], scope)), capabilities: {} });
      const all = this.projects.filter(visible).sort((a, b) => a.name.localeCompare(b.name));
      const top = Math.max(1, Number(query.get('$top') ?? 100) || 100);
      const skip = Number(query.get('continuationToken') ?? query.get('$skip') ?? 0) || 0;
      const page = all.slice(skip, skip + top);
      if (skip + top < all.length) res.setHeader('x-ms-continuationtoken', String(skip + top));
      return sendJson(res, 200, { count: page.length, value: page.map((p) => this.projectRef(p)) });
    }
    if (api[0] === 'git' && api[1] === 'repositories') {
      const inScope = this.repos.filter((r) => (!project || r.project.id === project.id) && visible(r.project));
      if (!raw[2]) {
        if (method === 'GET') {
          const includeHidden = query.get('includeHidden')?.toLowerCase() === 'true';
          const value = inScope.filter((r) => includeHidden || !r.isWiki).map((r) => this.repoJson(r));
          return sendJson(res, 200, { count: value.length, value });
        }
        if (method === 'POST' && project) return this.createRepo(req, res, project);
      }
      const repo = inScope.find((r) => r.id === api[2] || (project && sameName(r.name, raw[2])));
      if (!repo || repo.isDisabled) throw repoNotFound(raw[2]);
      if (method === 'GET' && api.length === 3) return sendJson(res, 200, this.repoJson(repo));
      if (method === 'GET' && api[3] === 'refs' && api.length === 4) {
        const filter = query.get('filter');
        const refs = (await git(['--git-dir', repo.gitDir, 'for-each-ref', '--format=%(objectname) %(refname)']))
          .split('\n').filter(Boolean).map((l) => ({ name: l.slice(41), objectId: l.slice(0, 40) }))
          .filter((r) => !filter || r.name.startsWith(`refs/${filter}`));
        return sendJson(res, 200, { count: refs.length, value: refs });
      }
    }
    if (method === 'GET' && project && api[0] === 'build' && api[1] === 'generalsettings' && api.length === 2) {
      const settings: Record<string, boolean> = { ...(this.generalSettings.get(project.id) ?? DEFAULT_GENERAL_SETTINGS) };
      // 6.0 (Server 2020) has no release-pipeline scope setting.
      if (this.flavor === 'server2020') delete settings.enforceJobAuthScopeForReleases;
      return sendJson(res, 200, settings);
    }
    if (method === 'GET' && api[0] === 'wiki' && api[1] === 'wikis' && !api[2]) {
      const value = this.repos.filter((r) => r.isWiki && (!project || r.project.id === project.id) && visible(r.project)).map((r) => this.wikiJson(r));
      return sendJson(res, 200, { count: value.length, value });
    }
    throw new HttpError(404, `The resource cannot be found: ${method} ${req.url}`, 'NotFound');
  }

  private async createRepo(req: http.IncomingMessage, res: http.ServerResponse, project: Project): Promise<void> {
    let body: { name?: unknown };
    try {
      body = JSON.parse((await readBody(req, 1 << 20)).toString('utf8'));
    } catch {
      throw new HttpError(400, 'The request body is not valid JSON.', 'InvalidArgumentValueException');
    }
    const name = typeof body.name === 'string' ? body.name.trim() : '';
    if (!name) throw new HttpError(400, 'TF401025: A repository name is required.', 'InvalidArgumentValueException');
    if (this.repos.some((r) => r.project.id === project.id && sameName(r.name, name))) {
      throw new HttpError(409, `TF400948: A Git repository with the name ${name} already exists.`, 'GitRepositoryNameAlreadyExistsException');
    }
    const repo = this.addRepo(project, name);
    sendJson(res, 201, this.repoJson(repo));
  }

  /**
   * Applies htmlRest / throttleRest / failRest; true when the request was answered. Arms malformedRest for the
   * answer the route is about to send.
   */
  private restFault(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const f = this.faults;
    const target = req.url ?? '/';
    const hits = (p?: RegExp) => !p || p.test(target);
    if (f.htmlRest) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(SIGN_IN_PAGE);
      return true;
    }
    const bad = f.malformedRest;
    if (bad && (bad.count === undefined || bad.count > 0) && req.method !== 'OPTIONS' &&
        (bad.path ?? /\/_apis\/git\/repositories\/?(\?|$)/).test(target)) {
      if (bad.count !== undefined) bad.count--;
      if (bad.html) {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(SIGN_IN_PAGE);
        return true;
      }
      rewrites.set(res, (body) => {
        if (bad.truncate) return JSON.stringify(body).slice(0, Math.max(1, Math.floor(JSON.stringify(body).length / 2)));
        return bad.transform ? bad.transform(body) : body;
      });
    }
    if (f.throttleRest && f.throttleRest.count > 0 && hits(f.throttleRest.path)) {
      f.throttleRest.count--;
      const s = f.throttleRest.retryAfterSeconds;
      res.setHeader('Retry-After', String(s));
      res.setHeader('X-RateLimit-Resource', 'Core');
      res.setHeader('X-RateLimit-Delay', '1.5');
      res.setHeader('X-RateLimit-Limit', '200');
      res.setHeader('X-RateLimit-Remaining', '0');
      res.setHeader('X-RateLimit-Reset', String(Math.ceil(Date.now() / 1000) + s));
      sendJson(res, 429, errorBody(
        "TF400733: The request has been canceled: Request was blocked due to exceeding usage of resource 'Core' in namespace 'User'.",
        'RequestBlockedException'));
      return true;
    }
    if (f.failRest && f.failRest.count > 0 && hits(f.failRest.path) && (!f.failRest.method || f.failRest.method === req.method)) {
      f.failRest.count--;
      sendJson(res, f.failRest.status, errorBody(f.failRest.message ?? `Injected failure (${f.failRest.status}).`,
        f.failRest.typeKey ?? 'ServiceUnavailableException'));
      return true;
    }
    return false;
  }

  // ---------------------------------------------------------------- git smart HTTP

  /** `rest` is what follows the repository in the path (`info/refs`, `git-upload-pack`…), `queryString` the raw query. */
  private async git(req: http.IncomingMessage, res: http.ServerResponse, repo: StandInRepo, rest: string, queryString: string): Promise<void> {
    const refuse = this.faults.refusePush;
    if (refuse && (refuse.count === undefined || refuse.count > 0) && (!refuse.repo || sameName(refuse.repo, repo.name) || refuse.repo === repo.id) &&
        (rest === 'git-receive-pack' || /(^|&)service=git-receive-pack(&|$)/.test(queryString))) {
      if (refuse.count !== undefined) refuse.count--;
      if (refuse.status === 401) return this.unauthorized(res, 'git');
      res.writeHead(403, { 'Content-Type': 'text/plain; charset=utf-8' })
        .end(`TF401027: You need the Git 'GenericContribute' permission to perform this action. Details: identity 'Build\\${repo.project.id}', scope 'repository'.\n`);
      return;
    }
    const slow = this.faults.slowGit;
    if (slow && (sameName(slow.repo, repo.name) || slow.repo === repo.id)) await new Promise((r) => setTimeout(r, slow.delayMs));
    const reset = this.faults.resetGit;
    let cut = false;
    let requestBody: Buffer | undefined;
    if (reset && reset.count > 0 && req.method === 'POST' && rest === 'git-upload-pack' &&
        (sameName(reset.repo, repo.name) || reset.repo === repo.id)) {
      let isPack = true;
      if (reset.onlyPack) {
        requestBody = await readBody(req, 256 << 20);
        const text = (/gzip/i.test(req.headers['content-encoding'] ?? '') ? zlib.gunzipSync(requestBody) : requestBody).toString('latin1');
        isPack = /command=fetch|want [0-9a-f]{40}/.test(text);
      }
      if (isPack) {
        reset.count--;
        cut = true;
      }
    }
    const h = req.headers;
    const env: NodeJS.ProcessEnv = {
      ...gitEnv(),
      GIT_PROJECT_ROOT: path.join(this.root, 'repos'),
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: `/${repo.id}.git/${rest}`,
      QUERY_STRING: queryString,
      REQUEST_METHOD: req.method ?? 'GET',
      CONTENT_TYPE: h['content-type'] ?? '',
      REMOTE_USER: 'build-service',
      REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
    };
    if (h['content-length'] !== undefined) env.CONTENT_LENGTH = h['content-length'];
    if (h['content-encoding']) env.HTTP_CONTENT_ENCODING = h['content-encoding'];
    const protocol = h['git-protocol'];
    if (typeof protocol === 'string') env.GIT_PROTOCOL = env.HTTP_GIT_PROTOCOL = protocol;

    const child = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.children.add(child);
    child.on('error', () => undefined); // a spawn failure still ends in 'close' (→ 500 below)
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { if (stderr.length < 8192) stderr += d.toString(); });
    child.stdin.on('error', () => undefined);
    if (requestBody) child.stdin.end(requestBody);
    else req.pipe(child.stdin);
    res.on('close', () => { if (child.exitCode === null) child.kill('SIGKILL'); });
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => { this.children.delete(child); resolve(code); }));

    // Parse the CGI header block, then stream the body.
    let head = Buffer.alloc(0);
    await new Promise<void>((resolve) => {
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const m = /\r?\n\r?\n/.exec(head.toString('latin1'));
        if (!m) return;
        child.stdout.off('data', onData);
        child.stdout.pause();
        const headerText = head.subarray(0, m.index).toString('latin1');
        const body = head.subarray(m.index + m[0].length);
        let status = 200;
        for (const line of headerText.split(/\r?\n/)) {
          const colon = line.indexOf(':');
          if (colon < 0) continue;
          const name = line.slice(0, colon).trim();
          const value = line.slice(colon + 1).trim();
          if (name.toLowerCase() === 'status') status = parseInt(value, 10) || 500;
          else res.appendHeader(name, value);
        }
        res.writeHead(status);
        if (cut) {
          const limit = reset?.afterBytes ?? 0;
          let sent = 0;
          const hangUp = () => {
            child.stdout.off('data', send);
            setImmediate(() => req.socket.destroy());
            child.kill('SIGKILL');
          };
          const send = (chunk: Buffer) => {
            const take = chunk.subarray(0, Math.max(0, limit - sent));
            if (take.length) res.write(take);
            sent += take.length;
            if (sent >= limit) hangUp();
          };
          if (limit <= 0) {
            if (body.length) res.write(body);
            else res.flushHeaders();
            hangUp();
          } else {
            res.flushHeaders();
            send(body);
            if (sent < limit) {
              child.stdout.on('data', send);
              child.stdout.once('end', hangUp);
              child.stdout.resume();
            }
          }
        } else {
          if (body.length) res.write(body);
          child.stdout.pipe(res);
        }
        resolve();
      };
      child.stdout.on('data', onData);
      child.stdout.on('end', () => {
        if (!res.headersSent) {
          res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`git http-backend failed: ${stderr}`);
        }
        resolve();
      });
    });
    await exited;
  }

  // ---------------------------------------------------------------- Git LFS

  /** `rest` starts after `info/lfs`: `[objects, batch]`, `[objects, <oid>]`, `[locks, …]`. */
  private async lfs(req: http.IncomingMessage, res: http.ServerResponse, repo: StandInRepo, rest: string[]): Promise<void> {
    const method = req.method ?? 'GET';
    if (rest[0] === 'objects' && rest[1] === 'batch' && rest.length === 2 && method === 'POST') {
      return this.lfsBatch(req, res, repo);
    }
    if (rest[0] === 'objects' && rest.length === 2 && /^[0-9a-f]{64}$/.test(rest[1])) {
      const oid = rest[1];
      const file = this.lfsObjectPath(repo, oid);
      if (method === 'GET') {
        const stat = await fs.promises.stat(file).catch(() => undefined);
        if (!stat) throw new HttpError(404, `Object ${oid} does not exist.`, 'NotFound');
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': stat.size });
        await pipeline(fs.createReadStream(file), res);
        return;
      }
      if (method === 'PUT') return this.lfsPut(req, res, file, oid);
    }
    throw new HttpError(404, 'Not found', 'NotFound');
  }

  private async lfsBatch(req: http.IncomingMessage, res: http.ServerResponse, repo: StandInRepo): Promise<void> {
    let body: { operation?: string; objects?: Array<{ oid?: string; size?: number }> };
    try {
      body = JSON.parse((await readBody(req, 16 << 20)).toString('utf8'));
    } catch {
      throw new HttpError(422, 'Invalid batch request body.', 'InvalidArgument');
    }
    const op = body.operation;
    if (op !== 'download' && op !== 'upload') throw new HttpError(422, `Unsupported operation ${String(op)}.`, 'InvalidArgument');
    const auth = req.headers.authorization ?? '';
    const base = `${this.orgUrl}${encodeURIComponent(repo.project.name)}/_git/${encodeURIComponent(repo.name)}.git/info/lfs/objects/`;
    const objects = (body.objects ?? []).map(({ oid = '', size = 0 }) => {
      if (!/^[0-9a-f]{64}$/.test(oid)) return { oid, size, error: { code: 422, message: 'Invalid object id.' } };
      const exists = fs.existsSync(this.lfsObjectPath(repo, oid));
      const action = { href: base + oid, header: { Authorization: auth }, expires_in: 3600 };
      if (op === 'download') {
        return exists
          ? { oid, size, authenticated: true, actions: { download: action } }
          : { oid, size, error: { code: 404, message: `Object ${oid} does not exist.` } };
      }
      return exists ? { oid, size, authenticated: true } : { oid, size, authenticated: true, actions: { upload: action } };
    });
    sendJson(res, 200, { transfer: 'basic', objects }, LFS_JSON);
  }

  private async lfsPut(req: http.IncomingMessage, res: http.ServerResponse, file: string, oid: string): Promise<void> {
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.${crypto.randomBytes(6).toString('hex')}.tmp`;
    const hash = crypto.createHash('sha256');
    const hashing = new Transform({ transform(chunk: Buffer, _enc, done) { hash.update(chunk); done(null, chunk); } });
    try {
      await pipeline(req, hashing, fs.createWriteStream(tmp));
    } catch (err) {
      await fs.promises.rm(tmp, { force: true });
      throw err;
    }
    const actual = hash.digest('hex');
    if (actual !== oid) {
      await fs.promises.rm(tmp, { force: true });
      throw new HttpError(422, `Object content hash ${actual} does not match ${oid}.`, 'InvalidArgument');
    }
    await fs.promises.rename(tmp, file);
    res.writeHead(200, { 'Content-Length': 0 }).end();
  }
}

// ---------------------------------------------------------------- helpers

const SIGN_IN_PAGE = '<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title></head><body>Sign in</body></html>';

/** Responses whose JSON body a `malformedRest` fault rewrites (a string result is sent as is). */
const rewrites = new WeakMap<http.ServerResponse, (body: unknown) => unknown>();

function errorBody(message: string, typeKey: string): Record<string, unknown> {
  return {
    $id: '1', innerException: null, message,
    typeName: `Microsoft.TeamFoundation.Framework.Server.${typeKey}, Microsoft.TeamFoundation.Framework.Server`,
    typeKey, errorCode: 0, eventId: 3000,
  };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, type = 'application/json; charset=utf-8'): void {
  const rewrite = status === 200 ? rewrites.get(res) : undefined;
  const rewritten = rewrite ? rewrite(JSON.parse(JSON.stringify(body))) : body;
  const text = typeof rewritten === 'string' && rewrite ? rewritten : JSON.stringify(rewritten);
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(text) }).end(text);
}

async function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new HttpError(413, 'Request body too large.', 'RequestTooLarge');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The ref HEAD points at, if that ref exists (a repository without commits has no default branch). */
function defaultBranchOf(gitDir: string): string | undefined {
  const head = fs.readFileSync(path.join(gitDir, 'HEAD'), 'utf8').trim();
  if (!head.startsWith('ref: ')) return undefined;
  const ref = head.slice(5);
  if (fs.existsSync(path.join(gitDir, ref))) return ref;
  const packed = path.join(gitDir, 'packed-refs');
  if (fs.existsSync(packed) && fs.readFileSync(packed, 'utf8').split('\n').some((l) => l.endsWith(` ${ref}`))) return ref;
  return undefined;
}

function dirSize(dir: string): number {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += dirSize(p);
    else if (e.isFile()) total += fs.statSync(p).size;
  }
  return total;
}

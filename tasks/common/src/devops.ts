/**
 * The Azure DevOps REST client: the few calls RepoBackup needs, through azure-devops-node-api, with retries
 * that honour Retry-After (the library retries neither 429 nor most 5xx) and errors a person can act on.
 */
import { WebApi } from 'azure-devops-node-api';
import type { IRequestOptions } from 'azure-devops-node-api/interfaces/common/VsoBaseInterfaces';
import type { GitRepository } from 'azure-devops-node-api/interfaces/GitInterfaces';
import { DevOpsCredentials } from './credentials';
import { RunError } from './errors';
import { Logger } from './host';
import { RetryDecision, RetryPolicy, defaultRetryPolicy, withRetry } from './retry';

export interface RepoInfo {
  id: string;
  name: string;
  project: { id: string; name: string };
  /** Clone URL without user info. */
  remoteUrl: string;
  defaultBranch?: string;
  /** Bytes, as Azure DevOps reports them (0 for an empty repository, and when it reports none: see `sizeUnknown`). */
  size: number;
  /** Azure DevOps reported no size (Azure DevOps Server lists repositories without it): `size` is 0 but means nothing. */
  sizeUnknown?: boolean;
  isDisabled: boolean;
  /** Azure DevOps is maintaining the repository (e.g. a repack or move): it cannot be cloned now. */
  isInMaintenance: boolean;
  /** A project wiki (a hidden repository named `<project>.wiki`). */
  isWiki: boolean;
}

export interface ProjectInfo {
  id: string;
  name: string;
}

/** The pipeline settings of a project that decide what the job token may read (`GET {project}/_apis/build/generalsettings`). */
export interface JobScopeSettings {
  /** "Limit job authorization scope to current project for non-release pipelines". */
  enforceJobAuthScope?: boolean;
  /** The same for release pipelines. */
  enforceJobAuthScopeForReleases?: boolean;
  /** "Protect access to repositories in YAML pipelines". */
  enforceReferencedRepoScopedToken?: boolean;
}

const NETWORK_CODES = new Set(['ECONNRESET', 'ETIMEDOUT', 'ESOCKETTIMEDOUT', 'ECONNREFUSED', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH', 'ECONNABORTED']);

type RestFailure = {
  statusCode?: number;
  code?: string;
  rateLimit?: { retryAfter?: number; reset?: number };
  responseHeaders?: Record<string, string | string[] | undefined>;
};

/**
 * The wait a throttled or unavailable server asked for, in ms: `Retry-After` (seconds or an HTTP date), else
 * `X-RateLimit-Reset` (Unix seconds). The library parses these headers only for some calls (not for the location
 * look-ups every API client makes first), so the raw response headers are read too.
 */
export function serverRetryAfterMs(err: unknown, now = Date.now()): number | undefined {
  const e = err as RestFailure;
  const header = (name: string): string | undefined => {
    const v = e?.responseHeaders?.[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const retryAfter = e?.rateLimit?.retryAfter ?? header('retry-after');
  if (retryAfter !== undefined && String(retryAfter).trim() !== '') {
    const seconds = Number(retryAfter);
    if (Number.isFinite(seconds)) return Math.max(0, seconds) * 1000;
    const date = Date.parse(String(retryAfter));
    if (Number.isFinite(date)) return Math.max(0, date - now);
  }
  const reset = e?.rateLimit?.reset ?? Number(header('x-ratelimit-reset'));
  if (reset !== undefined && Number.isFinite(reset) && reset > 0) return Math.max(0, reset * 1000 - now);
  return undefined;
}

export function classifyRestError(err: unknown): RetryDecision {
  const e = err as RestFailure;
  if (e?.statusCode === 429) return { retry: true, afterMs: serverRetryAfterMs(err) };
  if (e?.statusCode !== undefined && [500, 502, 503, 504].includes(e.statusCode)) return { retry: true, afterMs: serverRetryAfterMs(err) };
  if (e?.code && NETWORK_CODES.has(e.code)) return { retry: true };
  return { retry: false };
}

/** A repository entry of a REST answer that lacks what a backup needs: what it is, as far as it can be told. */
export interface UnusableRepoEntry {
  /** `project/name`, the id, or `(unnamed)`. */
  label: string;
  /** The fields that are missing or invalid. */
  missing: string[];
}

export class DevOpsClient {
  private readonly api: WebApi;

  constructor(
    readonly orgUrl: string,
    private readonly credentials: DevOpsCredentials,
    private readonly log: Logger,
    private readonly policy: RetryPolicy = defaultRetryPolicy,
    options: IRequestOptions = {},
    /** Cancels waits between retries. */
    private readonly signal?: AbortSignal,
    /** What the token is used for: the PAT scope and permissions error messages ask for. */
    private readonly purpose: 'backup' | 'restore' | 'verify' = 'backup',
  ) {
    this.api = new WebApi(orgUrl, credentials.restHandler(), { socketTimeout: 120_000, ...options });
  }

  private call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let attempts = 0;
    return withRetry(what, () => { attempts++; return fn(); }, classifyRestError, this.log, this.policy, this.signal).catch((err) => {
      throw this.explain(what, err, attempts);
    });
  }

  /** The API clients do location look-ups first: those are retried and explained like any call. */
  private gitApi() {
    return this.call('connecting to Azure DevOps (Git)', () => this.api.getGitApi());
  }

  private coreApi() {
    return this.call('connecting to Azure DevOps (Core)', () => this.api.getCoreApi());
  }

  /**
   * The project's pipeline settings that limit the job token (job authorization scope, protected repositories).
   * Throws (explained) when they cannot be read: older servers, or a token without "View project-level settings".
   */
  async getJobScopeSettings(project: string): Promise<JobScopeSettings> {
    const build = await this.call('connecting to Azure DevOps (Build)', () => this.api.getBuildApi());
    const s = await this.call(`reading the pipeline settings of project ${project}`, () => build.getBuildGeneralSettings(project));
    if (!s || typeof s !== 'object') throw new RunError(`reading the pipeline settings of project ${project}: the answer was ${describeValue(s)}.`);
    const flag = (v: unknown) => (typeof v === 'boolean' ? v : undefined);
    return {
      enforceJobAuthScope: flag(s.enforceJobAuthScope),
      enforceJobAuthScopeForReleases: flag(s.enforceJobAuthScopeForReleases),
      enforceReferencedRepoScopedToken: flag(s.enforceReferencedRepoScopedToken),
    };
  }

  /**
   * Every repository of the organization, in one call (hidden ones = project wikis, when asked). Entries that
   * lack what a backup needs (id, name, project, clone URL) are left out: each is given to `onUnusable` when
   * passed, and logged as a warning otherwise.
   */
  async listRepositories(includeWikis: boolean, onUnusable?: (entry: UnusableRepoEntry) => void): Promise<RepoInfo[]> {
    const git = await this.gitApi();
    const repos = await this.call('listing repositories', () => git.getRepositories(undefined, false, false, includeWikis));
    if (!Array.isArray(repos)) {
      throw new RunError(`listing repositories: Azure DevOps at ${this.orgUrl} did not answer with a list (got ${describeValue(repos)}). Check that organizationUrl is the organization URL (https://dev.azure.com/<org>/) and that no proxy between the agent and Azure DevOps rewrites the answer.`);
    }
    const out: RepoInfo[] = [];
    for (const r of repos) {
      const repo = toRepoInfo(r);
      if (repo) {
        out.push(repo);
        continue;
      }
      const entry = unusable(r);
      if (onUnusable) onUnusable(entry);
      else this.log.warn(`Ignoring repository entry ${entry.label} of the REST answer: it has no ${entry.missing.join(', ')}.`);
    }
    return out;
  }

  /** Every project the credentials can see ($top/$skip paging; the client hides the continuation token). */
  async listProjects(): Promise<ProjectInfo[]> {
    const core = await this.coreApi();
    const top = 100;
    const out: ProjectInfo[] = [];
    for (let skip = 0; ; skip += top) {
      const page = await this.call('listing projects', () => core.getProjects(undefined, top, skip));
      if (!Array.isArray(page)) throw new RunError(`Azure DevOps at ${this.orgUrl} did not answer the project list with a list.`);
      for (const p of page) if (p?.id && p?.name) out.push({ id: p.id, name: p.name });
      if (page.length < top) return out;
    }
  }

  async getRepository(project: string, name: string): Promise<RepoInfo | undefined> {
    const git = await this.gitApi();
    try {
      const r = await this.call(`reading repository ${project}/${name}`, () => git.getRepository(name, project));
      return r ? toRepoInfo(r) : undefined;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404 || /TF401019/.test(String((err as Error).message))) return undefined;
      throw err;
    }
  }

  async getProject(name: string): Promise<ProjectInfo | undefined> {
    const core = await this.coreApi();
    try {
      const p = await this.call(`reading project ${name}`, () => core.getProject(name));
      return p?.id && p?.name ? { id: p.id, name: p.name } : undefined;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw err;
    }
  }

  /** Creates an empty repository (not retried: a create is not idempotent). */
  async createRepository(project: ProjectInfo, name: string): Promise<RepoInfo> {
    const git = await this.gitApi();
    try {
      const r = await git.createRepository({ name, project: { id: project.id } }, project.id);
      const repo = r && toRepoInfo(r);
      if (!repo) throw new RunError(`Azure DevOps created repository ${project.name}/${name} but answered without its details.`);
      return repo;
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      const detail = String((err as Error)?.message ?? err).split('\n')[0].slice(0, 300);
      if (status === 403 || /TF40027\d|TF401027/.test(detail)) {
        throw new RunError(`creating repository ${project.name}/${name}: ${this.credentials.description} may not create repositories in ${project.name} (403: ${detail}). Grant "Create repository" (Project settings → Repositories → Security) to ${this.credentials.type === 'pat'
          ? 'the PAT\'s user, and give the PAT scope Code (Read, write & manage) (Code (Read & write) cannot create repositories)'
          : 'the project build service identity ("<project> Build Service (<org>)")'}, or create the empty repository yourself and run again.`);
      }
      throw this.explain(`creating repository ${project.name}/${name}`, err);
    }
  }

  /** Turns a library error into one line a person can act on. */
  private explain(what: string, err: unknown, attempts = 1): Error {
    if (err instanceof RunError) return err;
    const e = err as { statusCode?: number; message?: string; code?: string };
    const status = e?.statusCode;
    const detail = String(e?.message ?? err).split('\n')[0].slice(0, 300);
    const tries = attempts > 1 ? ` after ${attempts} attempts` : '';
    if (this.credentials.type === 'serviceConnection' && (status === 401 || status === 403 || /TF400813|TF40027\d|TF401027/.test(detail))) {
      return new RunError(`${what}: Azure DevOps refused ${this.credentials.description} (${status ?? 401}). ` +
        `Its service principal must be a member of the organization ${this.orgUrl} (Organization settings → Users → Add users, access level Basic or Stakeholder; it may need to be added through a group) ` +
        `with ${this.purpose === 'restore' ? 'Contribute and Create repository' : 'Read'} on Repositories (Project settings → Repositories → Security), and the connection's tenant must be the organization's Microsoft Entra tenant.`);
    }
    if (status === 401 || /TF400813/.test(detail)) {
      return new RunError(`${what}: Azure DevOps refused ${this.credentials.description} (401). ${this.credentials.type === 'pat'
        ? `The PAT is wrong, expired, revoked or for another organization: create one with scope ${this.purpose === 'restore' ? 'Code (Read, write & manage) (it creates the target repository; Code (Read & write) when the target already exists)' : 'Code (Read)'} for this organization and update the secret variable.`
        : 'Make sure the job can use System.AccessToken (the SystemVssConnection endpoint) and that organizationUrl is this pipeline\'s organization; for another organization use authType: pat.'}`);
    }
    if (status === 403 || /TF40027\d|TF401027/.test(detail)) {
      return new RunError(`${what}: ${this.credentials.description} has no permission (403: ${detail}). ${this.credentials.type === 'pat'
        ? 'Give the PAT scope Code (Read) and make sure its user has Read on Repositories in every project to back up (Project settings → Repositories → Security).'
        : 'Give the project build service identity Read on Repositories (Project settings → Repositories → Security); to back up every project, turn off "Limit job authorization scope to current project" (Organization settings and Project settings → Pipelines → Settings).'}`);
    }
    if (status === 400 && /VssVersionOutOfRange|REST API version .* is out of range/i.test(detail)) {
      return new RunError(`${what}: ${this.orgUrl} is an Azure DevOps Server older than this task supports (${detail.replace(/\s+/g, ' ').slice(0, 200)}). ` +
        'The tasks speak REST 6.0 and later: Azure DevOps Services and Azure DevOps Server 2020 and later. Upgrade the Server, or back it up with plain git.');
    }
    if (status === 404 && /listing|connecting/.test(what)) {
      return new RunError(`${what}: ${this.orgUrl} answered 404. Check organizationUrl: it must be the organization (collection) URL, e.g. https://dev.azure.com/<org>/, or on Azure DevOps Server https://<server>/tfs/<collection>/.`);
    }
    // An HTML page or anything else that is not Azure DevOps' JSON: parse errors, or location look-ups that come
    // back empty ("Failed to find api location"), or a library tripping over a missing field (TypeError).
    if (/Unexpected token|JSON|<!DOCTYPE|<html|Failed to find api location/i.test(detail) || (status !== undefined && status < 300) || err instanceof TypeError) {
      return new RunError(`${what}: ${this.orgUrl} did not answer like Azure DevOps (${detail.replace(/\s+/g, ' ').slice(0, 120)}). Check organizationUrl (https://dev.azure.com/<org>/) and any proxy between the agent and Azure DevOps.`);
    }
    if (e?.code && NETWORK_CODES.has(e.code)) return new RunError(`${what}: cannot reach ${this.orgUrl} (${e.code})${tries}. Check organizationUrl and the agent's network or proxy settings.`);
    if (status !== undefined && status >= 500) {
      return new RunError(`${what} failed (HTTP ${status})${tries}: ${detail.replace(/\.+$/, '')}. Azure DevOps is unavailable; run the backup again later.`);
    }
    return new RunError(`${what} failed${status ? ` (HTTP ${status})` : ''}${tries}: ${detail}`);
  }
}

/** A short description of an unexpected JSON value, for messages (never its content). */
function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'no JSON body';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'an object' : typeof v;
}

function unusable(r: unknown): UnusableRepoEntry {
  const o = (r && typeof r === 'object' ? r : {}) as Record<string, unknown>;
  const project = (o.project && typeof o.project === 'object' ? o.project : {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
  const missing: string[] = [];
  if (!str(o.id)) missing.push('id');
  if (!str(o.name)) missing.push('name');
  if (!str(project.id) || !str(project.name)) missing.push('project');
  let urlOk = false;
  try { urlOk = !!str(o.remoteUrl) && /^https?:$/.test(new URL(o.remoteUrl as string).protocol); } catch { /* invalid */ }
  if (!urlOk) missing.push('remoteUrl');
  if (r === null || typeof r !== 'object') return { label: `(${r === null ? 'null' : typeof r} entry)`, missing: ['everything'] };
  const label = str(o.name) ? `${str(project.name) ?? '?'}/${str(o.name)}` : str(o.id) ?? '(unnamed)';
  return { label, missing };
}

function toRepoInfo(r: GitRepository | null | undefined): RepoInfo | undefined {
  if (!r || typeof r !== 'object') return undefined;
  const isText = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
  if (!isText(r.id) || !isText(r.name) || !r.project || typeof r.project !== 'object' || !isText(r.project.id) ||
      !isText(r.project.name) || !isText(r.remoteUrl)) return undefined;
  let remoteUrl: string;
  try {
    const u = new URL(r.remoteUrl);
    // Only http(s): a file://, ssh or ext:: clone URL from a rewritten answer is not something to run git on.
    if (u.protocol !== 'https:' && u.protocol !== 'http:') return undefined;
    u.username = '';
    u.password = '';
    remoteUrl = u.toString();
  } catch {
    return undefined;
  }
  const sized = typeof r.size === 'number' && Number.isFinite(r.size) && r.size >= 0;
  return {
    id: r.id,
    name: r.name,
    project: { id: r.project.id, name: r.project.name },
    remoteUrl,
    defaultBranch: isText(r.defaultBranch) ? r.defaultBranch : undefined,
    size: sized ? r.size! : 0,
    ...(sized ? {} : { sizeUnknown: true }),
    isDisabled: r.isDisabled === true,
    isInMaintenance: r.isInMaintenance === true,
    isWiki: r.name.toLowerCase() === `${r.project.name.toLowerCase()}.wiki`,
  };
}

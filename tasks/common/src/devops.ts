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
  /** Bytes, as Azure DevOps reports them (0 for an empty repository). */
  size: number;
  isDisabled: boolean;
  /** A project wiki (a hidden repository named `<project>.wiki`). */
  isWiki: boolean;
}

export interface ProjectInfo {
  id: string;
  name: string;
}

const NETWORK_CODES = new Set(['ECONNRESET', 'ETIMEDOUT', 'ESOCKETTIMEDOUT', 'ECONNREFUSED', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH', 'ECONNABORTED']);

export function classifyRestError(err: unknown): RetryDecision {
  const e = err as { statusCode?: number; code?: string; rateLimit?: { retryAfter?: number } };
  if (e?.statusCode === 429) {
    const after = e.rateLimit?.retryAfter;
    return { retry: true, afterMs: after !== undefined && Number.isFinite(after) ? Math.max(0, after) * 1000 : undefined };
  }
  if (e?.statusCode !== undefined && [500, 502, 503, 504].includes(e.statusCode)) return { retry: true };
  if (e?.code && NETWORK_CODES.has(e.code)) return { retry: true };
  return { retry: false };
}

export class DevOpsClient {
  private readonly api: WebApi;

  constructor(
    readonly orgUrl: string,
    private readonly credentials: DevOpsCredentials,
    private readonly log: Logger,
    private readonly policy: RetryPolicy = defaultRetryPolicy,
    options: IRequestOptions = {},
  ) {
    this.api = new WebApi(orgUrl, credentials.restHandler(), { socketTimeout: 120_000, ...options });
  }

  private call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return withRetry(what, fn, classifyRestError, this.log, this.policy).catch((err) => {
      throw this.explain(what, err);
    });
  }

  /** The API clients do location look-ups first: those are retried and explained like any call. */
  private gitApi() {
    return this.call('connecting to Azure DevOps (Git)', () => this.api.getGitApi());
  }

  private coreApi() {
    return this.call('connecting to Azure DevOps (Core)', () => this.api.getCoreApi());
  }

  /** Every repository of the organization, in one call (hidden ones = project wikis, when asked). */
  async listRepositories(includeWikis: boolean): Promise<RepoInfo[]> {
    const git = await this.gitApi();
    const repos = await this.call('listing repositories', () => git.getRepositories(undefined, false, false, includeWikis));
    if (!Array.isArray(repos)) {
      throw new RunError(`Azure DevOps at ${this.orgUrl} did not answer the repository list with a list. Check that organizationUrl is the organization URL (https://dev.azure.com/<org>/) and that no proxy rewrites the answer.`);
    }
    const out: RepoInfo[] = [];
    for (const r of repos) {
      const repo = toRepoInfo(r);
      if (repo) out.push(repo);
      else this.log.warn(`Ignoring a repository entry with missing fields in the REST answer: ${JSON.stringify(r)?.slice(0, 200)}`);
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
      throw this.explain(`creating repository ${project.name}/${name}`, err);
    }
  }

  /** Turns a library error into one line a person can act on. */
  private explain(what: string, err: unknown): Error {
    if (err instanceof RunError) return err;
    const e = err as { statusCode?: number; message?: string; code?: string };
    const status = e?.statusCode;
    const detail = String(e?.message ?? err).split('\n')[0].slice(0, 300);
    if (status === 401 || /TF400813/.test(detail)) {
      return new RunError(`${what}: Azure DevOps refused ${this.credentials.description} (401). ${this.credentials.type === 'pat'
        ? 'The PAT is wrong, expired or for another organization: create one with scope Code (Read) and update the secret.'
        : 'Make sure the job can use System.AccessToken (the SystemVssConnection endpoint) and that organizationUrl is this pipeline\'s organization; for another organization use authType: pat.'}`);
    }
    if (status === 403 || /TF40027\d|TF401027/.test(detail)) {
      return new RunError(`${what}: ${this.credentials.description} has no permission (403). Give the build service identity (or the PAT's user) Read on Repositories; for every project, turn off "Limit job authorization scope to current project" in Project settings → Pipelines → Settings.`);
    }
    if (status === 404 && /listing/.test(what)) {
      return new RunError(`${what}: ${this.orgUrl} answered 404. Check organizationUrl: it must be the organization (collection) URL, e.g. https://dev.azure.com/<org>/.`);
    }
    if (/Unexpected token|JSON/i.test(detail) || (status !== undefined && status < 300)) {
      return new RunError(`${what}: ${this.orgUrl} did not answer like Azure DevOps (${detail}). Check organizationUrl and any proxy between the agent and Azure DevOps.`);
    }
    if (e?.code && NETWORK_CODES.has(e.code)) return new RunError(`${what}: cannot reach ${this.orgUrl} (${e.code}).`);
    return new RunError(`${what} failed${status ? ` (HTTP ${status})` : ''}: ${detail}`);
  }
}

function toRepoInfo(r: GitRepository | null | undefined): RepoInfo | undefined {
  if (!r || typeof r !== 'object' || !r.id || !r.name || !r.project?.id || !r.project?.name || !r.remoteUrl) return undefined;
  let remoteUrl: string;
  try {
    const u = new URL(r.remoteUrl);
    u.username = '';
    u.password = '';
    remoteUrl = u.toString();
  } catch {
    return undefined;
  }
  return {
    id: r.id,
    name: r.name,
    project: { id: r.project.id, name: r.project.name },
    remoteUrl,
    defaultBranch: r.defaultBranch || undefined,
    size: typeof r.size === 'number' && r.size >= 0 ? r.size : 0,
    isDisabled: r.isDisabled === true,
    isWiki: r.name.toLowerCase() === `${r.project.name.toLowerCase()}.wiki`,
  };
}

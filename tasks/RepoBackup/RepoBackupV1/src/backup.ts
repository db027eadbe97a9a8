/**
 * The orchestrator: discover → plan → for each repository, N at a time: mirror → verify → pack → store →
 * clean up; then the manifest. One repository's failure is recorded and never stops the others.
 */
import { createHash } from 'crypto';
import { createReadStream, promises as fsp } from 'fs';
import * as path from 'path';
import { Readable } from 'stream';
import { pipeline } from 'stream/promises';
import { createArchiveStream, HashingStream, listFiles } from '../../../common/src/archive';
import { redact } from '../../../common/src/credentials';
import { AlreadyExistsError, Destination } from '../../../common/src/destinations';
import { DevOpsClient, RepoInfo } from '../../../common/src/devops';
import { errorMessage, RunError } from '../../../common/src/errors';
import { classifyGitError, Git } from '../../../common/src/git';
import { Logger } from '../../../common/src/host';
import { defaultRetryPolicy, RetryDecision, RetryPolicy, withRetry } from '../../../common/src/retry';
import { makePlan, Plan, PlannedRepo } from './plan';
import { buildManifest, formatBytes, RepoResult, RunReport } from './report';
import { BackupSettings } from './settings';

export interface BackupDeps {
  log: Logger;
  progress(percent: number, text: string): void;
  devops: Pick<DevOpsClient, 'listRepositories' | 'listProjects'>;
  git: Git;
  /** Absent in a dry run. */
  destination?: Destination;
  /** The environment for one git command against a remote (credentials included). */
  gitEnv(remoteUrl: string): NodeJS.ProcessEnv;
  retry?: RetryPolicy;
  signal?: AbortSignal;
  /** Free bytes where mirrors are written (overridable for tests). */
  freeBytes?(dir: string): Promise<number>;
}

export interface BackupOutcome {
  plan: Plan;
  report: RunReport;
  /** Where the manifest was stored, when it was. */
  manifest?: string;
}

const MIN_GIT = [2, 31];

export async function runBackup(settings: BackupSettings, deps: BackupDeps): Promise<BackupOutcome> {
  const { log } = deps;
  const startedAt = new Date();
  const warnings: string[] = [];
  const warn = (message: string) => { warnings.push(message); log.warn(message); };

  await preflight(settings, deps);

  log.info(`Listing the repositories of ${settings.organization.url}`);
  const repos = await deps.devops.listRepositories(settings.includeWikis);
  const plan = makePlan({
    repos, filter: settings.filter, includeWikis: settings.includeWikis, format: settings.archiveFormat,
    shard: settings.shard, organization: settings.organization.name, runId: settings.run.id,
    attempt: settings.run.attempt, startedAt: settings.run.startedAt,
  });
  await checkVisibility(settings, deps, repos, warn);
  log.info(`${plan.listed} repositories listed; ${plan.selected.length} to back up, ${plan.skipped.length} skipped` +
    (settings.shard.total > 1 ? `, ${plan.otherShards} left to the other ${settings.shard.total - 1} job(s) (this is job ${settings.shard.position} of ${settings.shard.total})` : '') +
    ` (filter: ${settings.filter.describe()})`);
  if (plan.selected.length + plan.skipped.length === 0 && plan.otherShards === 0) {
    warn(`The repositories filter (${settings.filter.describe()}) matches none of the ${plan.listed} repositories the token can see.`);
  }
  for (const s of plan.skipped) log.info(`Skipping ${s.repo.project.name}/${s.repo.name}: ${s.reason}`);

  const results: RepoResult[] = plan.skipped.map((s) => ({ repo: s.repo, status: 'skipped', error: s.reason, durationMs: 0 }));
  if (settings.dryRun) {
    for (const p of plan.selected) log.info(`Would back up ${p.repo.project.name}/${p.repo.name} (${formatBytes(p.repo.size)}) → ${p.archive}`);
    return { plan, report: { results: [...results, ...plan.selected.map((p) => ({ repo: p.repo, status: 'skipped' as const, archive: p.archive, error: 'dry run', durationMs: 0 }))], startedAt, finishedAt: new Date(), warnings } };
  }

  const destination = deps.destination;
  if (!destination) throw new Error('no destination');
  const runTemp = await fsp.mkdtemp(path.join(settings.run.tempDir, 'repobackup-'));
  try {
    const worker = new RepoWorker(settings, deps, destination, runTemp);
    let done = 0;
    const total = plan.selected.length;
    const ordered: RepoResult[] = new Array(total);
    await forEachLimit(plan.selected, settings.concurrency, deps.signal, async (planned, index) => {
      const result = await worker.backup(planned, index);
      ordered[index] = result;
      done++;
      const label = `${planned.repo.project.name}/${planned.repo.name}`;
      const line = result.status === 'ok'
        ? `[${done}/${total}] ${label}: ok, ${formatBytes(result.size ?? 0)} archive (mirror ${formatBytes(result.mirrorBytes ?? 0)}), ${result.refs} refs, ${result.lfsObjects} LFS objects, ${(result.durationMs / 1000).toFixed(1)} s`
        : `[${done}/${total}] ${label}: FAILED after ${(result.durationMs / 1000).toFixed(1)} s: ${result.error}`;
      if (result.status === 'ok') log.info(line); else log.error(line);
      deps.progress((done / total) * 100, `${done} of ${total} repositories`);
    });
    results.push(...ordered.filter(Boolean));
  } finally {
    await fsp.rm(runTemp, { recursive: true, force: true });
  }
  if (deps.signal?.aborted) return { plan, report: { results, startedAt, finishedAt: new Date(), warnings } };

  const report: RunReport = { results, startedAt, finishedAt: new Date(), warnings };
  const manifest = JSON.stringify(buildManifest(settings, plan, report, destination.description), null, 2);
  await withRetry('storing the manifest', () => destination.put(plan.manifestName, Readable.from([Buffer.from(manifest)]), {
    contentType: 'application/json',
    defaultTier: true,
    metadata: () => ({ sha256: createHash('sha256').update(manifest).digest('hex'), kind: 'repobackup-manifest' }),
  }), classifyStoreError, log, deps.retry ?? defaultRetryPolicy, deps.signal);
  log.info(`Manifest stored as ${plan.manifestName}`);
  return { plan, report, manifest: plan.manifestName };
}

async function preflight(settings: BackupSettings, deps: BackupDeps): Promise<void> {
  if (settings.dryRun) return;
  let version: string;
  try {
    version = await deps.git.version();
  } catch (err) {
    throw new RunError(`git is not available on this agent (${errorMessage(err)}). Install git 2.31 or later.`);
  }
  const m = /(\d+)\.(\d+)/.exec(version);
  if (m && (Number(m[1]) < MIN_GIT[0] || (Number(m[1]) === MIN_GIT[0] && Number(m[2]) < MIN_GIT[1]))) {
    throw new RunError(`${version} is too old: RepoBackup passes credentials through GIT_CONFIG_COUNT, which needs git 2.31 or later.`);
  }
  if (settings.includeLfs && !(await deps.git.lfsVersion())) {
    throw new RunError('git-lfs is not installed on this agent. Install it (e.g. apt-get install git-lfs) or set includeLfs: false.');
  }
  deps.log.debug(`${version}`);
}

/** Tells the user when the filter names projects the token cannot see (job authorization scope, usually). */
async function checkVisibility(settings: BackupSettings, deps: BackupDeps, repos: RepoInfo[], warn: (m: string) => void) {
  const named = settings.filter.literalProjects;
  if (named.length === 0) return;
  const visible = new Set(repos.map((r) => r.project.name.toLowerCase()));
  let missing = named.filter((p) => !visible.has(p.toLowerCase()));
  if (missing.length === 0) return;
  // A project with no repositories is still visible: ask the project list before warning.
  const projects = new Set((await deps.devops.listProjects()).map((p) => p.name.toLowerCase()));
  missing = missing.filter((p) => !projects.has(p.toLowerCase()));
  if (missing.length === 0) return;
  warn(`The repositories filter names project(s) ${missing.map((p) => `'${p}'`).join(', ')} that ${settings.credentials.description} cannot see. ` +
    (settings.credentials.type === 'systemToken'
      ? 'Turn off "Limit job authorization scope to current project" (Project settings → Pipelines → Settings, and at organization level) and give the project build service Read on those repositories, or use authType: pat.'
      : 'Check that the PAT\'s user has Read on those projects and that the names are spelled right.'));
}

function classifyStoreError(err: unknown): RetryDecision {
  if (err instanceof AlreadyExistsError) return { retry: false };
  return { retry: !/\(HTTP 4\d\d|\b403\b|refused/.test(errorMessage(err)) };
}

/** Runs `fn` over `items` with at most `limit` in flight; stops taking new items once `signal` aborts. */
async function forEachLimit<T>(items: T[], limit: number, signal: AbortSignal | undefined, fn: (item: T, index: number) => Promise<void>) {
  let next = 0;
  const lane = async () => {
    while (next < items.length && !signal?.aborted) {
      const index = next++;
      await fn(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

class RepoWorker {
  private reserved = 0;

  constructor(
    private readonly settings: BackupSettings,
    private readonly deps: BackupDeps,
    private readonly destination: Destination,
    private readonly runTemp: string,
  ) {}

  async backup(planned: PlannedRepo, index: number): Promise<RepoResult> {
    const { repo } = planned;
    const started = Date.now();
    const dir = path.join(this.runTemp, String(index));
    const policy = this.deps.retry ?? defaultRetryPolicy;
    const label = `${repo.project.name}/${repo.name}`;
    const { git, log, signal } = this.deps;
    const need = Math.ceil(repo.size * 1.1) + (16 << 20);
    let reservedHere = 0;
    try {
      await this.reserveDisk(need, label);
      reservedHere = need;
      const env = this.deps.gitEnv(repo.remoteUrl);
      await withRetry(`git clone ${label}`, async () => {
        await fsp.rm(dir, { recursive: true, force: true });
        await git.cloneMirror(repo.remoteUrl, dir, env, signal);
      }, classifyGitError, log, policy, signal);
      const refs = await git.refs(dir);
      let missing: string[] = [];
      if (this.settings.includeLfs && refs.length > 0) {
        ({ missing } = await withRetry(`git lfs fetch ${label}`, () => git.lfsFetchAll(dir, env, signal), classifyGitError, log, policy, signal));
      }
      if (this.settings.verify) await git.fsck(dir, signal);
      const files = await inventory(dir, this.settings.verify);
      const head = repo.defaultBranch ? await git.resolve(dir, repo.defaultBranch) : undefined;
      const stored = await withRetry(`storing ${label}`, () => this.store(planned, dir, { refs: refs.length, lfsObjects: files.lfsObjects }),
        classifyStoreError, log, policy, signal);
      const result: RepoResult = {
        repo, status: 'ok', archive: planned.archive, sha256: stored.sha256, size: stored.bytes, refs: refs.length, head,
        lfsObjects: files.lfsObjects, lfsBytes: files.lfsBytes, mirrorBytes: files.bytes, durationMs: Date.now() - started,
      };
      if (missing.length > 0) {
        result.status = 'failed';
        result.missingLfsObjects = missing;
        result.error = `${missing.length} LFS object(s) are missing on the server (${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''}); the git data and every other LFS object were stored`;
      }
      return result;
    } catch (err) {
      return { repo, status: 'failed', error: redact(errorMessage(err)), durationMs: Date.now() - started };
    } finally {
      this.reserved -= reservedHere;
      await fsp.rm(dir, { recursive: true, force: true }).catch((e) => log.warn(`Could not remove ${dir}: ${errorMessage(e)}`));
    }
  }

  /** Fails early, with a clear message, when the temp folder cannot hold the mirror (its size as Azure DevOps reports it). */
  private async reserveDisk(bytes: number, label: string): Promise<void> {
    const free = await (this.deps.freeBytes ?? freeBytes)(this.runTemp);
    if (free - this.reserved < bytes) {
      throw new RunError(`not enough disk space for ${label}: its mirror needs about ${formatBytes(bytes)} but ${formatBytes(Math.max(0, free - this.reserved))} is free in ${this.settings.run.tempDir} (Agent.TempDirectory). Free space, lower concurrency, or use an agent with a larger disk.`);
    }
    this.reserved += bytes;
  }

  private async store(planned: PlannedRepo, dir: string, facts: { refs: number; lfsObjects: number }) {
    const { repo } = planned;
    const archive = createArchiveStream(dir, this.settings.archiveFormat);
    const hashing = new HashingStream();
    const piping = pipeline(archive, hashing);
    const putting = this.destination.put(planned.archive, hashing, {
      contentType: this.settings.archiveFormat === 'zip' ? 'application/zip' : 'application/gzip',
      metadata: () => ({
        sha256: hashing.sha256,
        organization: encodeURIComponent(this.settings.organization.name),
        project: encodeURIComponent(repo.project.name),
        projectid: repo.project.id,
        repository: encodeURIComponent(repo.name),
        repositoryid: repo.id,
        refs: String(facts.refs),
        lfsobjects: String(facts.lfsObjects),
        format: this.settings.archiveFormat,
        runid: `${this.settings.run.id}.${this.settings.run.attempt}`,
        createdby: `RepoBackup/${this.settings.run.taskVersion}`,
      }),
    });
    const [piped, put] = await Promise.allSettled([piping, putting]);
    if (put.status === 'rejected') throw put.reason;
    if (piped.status === 'rejected') throw piped.reason;
    return { sha256: hashing.sha256, bytes: hashing.bytes };
  }
}

/** Mirror size, LFS object count and bytes; with `verify`, every LFS object's content must hash to its name. */
async function inventory(dir: string, verify: boolean) {
  let bytes = 0;
  let lfsObjects = 0;
  let lfsBytes = 0;
  const bad: string[] = [];
  for (const rel of await listFiles(dir)) {
    const { size } = await fsp.stat(path.join(dir, rel));
    bytes += size;
    const m = /^lfs\/objects\/[0-9a-f]{2}\/[0-9a-f]{2}\/([0-9a-f]{64})$/.exec(rel);
    if (!m) continue;
    lfsObjects++;
    lfsBytes += size;
    if (verify) {
      const hash = createHash('sha256');
      for await (const chunk of createReadStream(path.join(dir, rel))) hash.update(chunk as Buffer);
      if (hash.digest('hex') !== m[1]) bad.push(m[1]);
    }
  }
  if (bad.length) throw new RunError(`${bad.length} LFS object(s) do not match their SHA-256 after download: ${bad.slice(0, 3).join(', ')}`);
  return { bytes, lfsObjects, lfsBytes };
}

async function freeBytes(dir: string): Promise<number> {
  const s = await fsp.statfs(dir);
  return s.bavail * s.bsize;
}

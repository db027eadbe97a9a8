/**
 * The orchestrator: discover → plan → for each repository, N at a time: mirror → verify → pack → store →
 * clean up; then the manifest. One repository's failure is recorded and never stops the others.
 */
import { createHash } from 'crypto';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { removeQuietly, removeSyncQuietly, removeWithRetries } from '../../../common/src/platform/remove';
import { Readable } from 'stream';
import { pipeline } from 'stream/promises';
import { createArchiveStream, HashingStream } from '../../../common/src/archive';
import { redact } from '../../../common/src/credentials';
import { AlreadyExistsError, CopySourceError, Destination, Metadata } from '../../../common/src/destinations';
import { Source } from '../../../common/src/sources';
import { ArchiveShape, encryptionShape, findPreviousRun, Previous, refsDigest } from './incremental';
import { AGE_EXTENSION, AgeEncryptStream } from '../../../common/src/encryption';
import { DevOpsClient, UnusableRepoEntry } from '../../../common/src/devops';
import { errorMessage, RunError } from '../../../common/src/errors';
import { classifyGitError, Git, GitError } from '../../../common/src/git';
import { Logger } from '../../../common/src/host';
import { defaultRetryPolicy, RetryDecision, RetryPolicy, withRetry } from '../../../common/src/retry';
import { assessCoverage, Coverage, CoverageInput } from './coverage';
import { makePlan, Plan, PlannedRepo, unknownSizeNote } from './plan';
import { buildManifest, formatBytes, RepoResult, RunReport } from './report';
import { BackupSettings } from './settings';
import { forEachPaced, Pacer, reuseLanes } from './pace';
import { freeBytes, inventoryMirror, usedBytes } from '../../../common/src/mirror';

export interface BackupDeps {
  log: Logger;
  progress(percent: number, text: string): void;
  devops: Pick<DevOpsClient, 'listRepositories' | 'listProjects' | 'getJobScopeSettings'>;
  git: Git;
  /** Absent in a dry run. */
  destination?: Destination;
  /** The environment for one git command against a remote (credentials included). */
  gitEnv(remoteUrl: string): NodeJS.ProcessEnv;
  retry?: RetryPolicy;
  signal?: AbortSignal;
  /** Free bytes where mirrors are written (overridable for tests). */
  freeBytes?(dir: string): Promise<number>;
  /** Incremental runs: the destination read back (list + read), to find the previous run. */
  previousRuns?: Source;
}

export interface BackupOutcome {
  plan: Plan;
  report: RunReport;
  /** Where the manifest was stored, when it was. */
  manifest?: string;
}


export async function runBackup(settings: BackupSettings, deps: BackupDeps): Promise<BackupOutcome> {
  const { log } = deps;
  const startedAt = new Date();
  const warnings: string[] = [];
  const warn = (message: string) => { warnings.push(message); log.warn(message); };

  await preflight(settings, deps);
  if (settings.shard.note) log.info(settings.shard.note);

  log.info(`Listing the repositories of ${settings.organization.url}`);
  const unusable: UnusableRepoEntry[] = [];
  const repos = await deps.devops.listRepositories(settings.includeWikis, (entry) => unusable.push(entry));
  if (unusable.length > 0) {
    // Never silent: a repository the answer does not let us clone is a repository missing from the backup.
    warn(`${unusable.length} entr${unusable.length === 1 ? 'y' : 'ies'} of the repository list could not be used and ${unusable.length === 1 ? 'was' : 'were'} not backed up: ` +
      unusable.slice(0, 5).map((u) => `${u.label} (no ${u.missing.join(', ')})`).join('; ') + (unusable.length > 5 ? '; …' : '') +
      '. Azure DevOps (or a proxy in between) answered with incomplete data; run the backup again, and check the proxy if it persists.');
  }
  const sizeNote = unknownSizeNote(repos, settings.shard.total);
  if (sizeNote) log.info(sizeNote);
  const plan = makePlan({
    repos, filter: settings.filter, includeWikis: settings.includeWikis, format: settings.archiveFormat,
    shard: settings.shard, organization: settings.organization.name, runId: settings.run.id,
    attempt: settings.run.attempt, startedAt: settings.run.startedAt, tokenScope: settings.credentials.tokenScope,
  });
  if (settings.encryption) {
    // Encrypted archives are stored as <repo>.zip.age / <repo>.tar.gz.age: the name says what `age -d` gives back.
    for (const p of plan.selected) p.archive += AGE_EXTENSION;
    log.info(`Archives are encrypted with age to ${settings.encryption.recipients.length} recipient(s) (${settings.encryption.recipients.map((r) => r.text).join(', ')}) on their way to the destination; only the holder of a matching identity can read them.`);
  }
  const coverage = await checkCoverage(settings, deps);
  for (const gap of coverage.gaps) log.error(gap);
  // Repositories on a host the token may not go to: not cloned, and the run says which setting fixes it.
  for (const s of plan.skipped) if (s.gap) coverage.gaps.push(s.gap);
  log.info(`${plan.listed} repositories listed; ${plan.selected.length} to back up, ${plan.skipped.length} skipped` +
    (settings.shard.total > 1 ? `, ${plan.otherShards} left to the other ${settings.shard.total - 1} job(s) (this is job ${settings.shard.position} of ${settings.shard.total})` : '') +
    ` (filter: ${settings.filter.describe()})`);
  if (plan.selected.length + plan.skipped.length === 0 && plan.otherShards === 0) {
    warn(`The repositories filter (${settings.filter.describe()}) matches none of the ${plan.listed} repositories the token can see.`);
  }
  for (const s of plan.skipped) {
    const line = `Skipping ${s.repo.project.name}/${s.repo.name}: ${s.reason}`;
    if (s.warn) warn(line); else log.info(line);
  }

  const results: RepoResult[] = plan.skipped.map((s) => ({ repo: s.repo, status: 'skipped', error: s.reason, durationMs: 0 }));
  if (settings.dryRun) {
    for (const p of plan.selected) log.info(`Would back up ${p.repo.project.name}/${p.repo.name} (${p.repo.sizeUnknown ? 'size unknown' : formatBytes(p.repo.size)}) → ${p.archive}`);
    return { plan, report: { results: [...results, ...plan.selected.map((p) => ({ repo: p.repo, status: 'skipped' as const, archive: p.archive, error: 'dry run', durationMs: 0 }))], startedAt, finishedAt: new Date(), warnings, gaps: coverage.gaps } };
  }

  const destination = deps.destination;
  if (!destination) throw new Error('no destination');
  const runTemp = await fsp.mkdtemp(path.join(settings.run.tempDir, 'repobackup-'));
  // A hard exit (a second cancel signal, a run that does not wind down in time) skips the `finally` below.
  const removeOnExit = () => { removeSyncQuietly(runTemp); };
  process.on('exit', removeOnExit);
  const names = new NameClaims([plan.manifestName, ...plan.selected.map((p) => p.archive)]);
  let lanesNote: string | undefined;
  try {
    const previous = settings.incremental ? await lookUpPrevious(settings, deps, destination, plan.runFolder) : undefined;
    const worker = new RepoWorker(settings, deps, destination, runTemp, names, warn, previous);
    let done = 0;
    let reported = -1;
    const total = plan.selected.length;
    const ordered: RepoResult[] = new Array(total);
    const record = (planned: PlannedRepo, index: number, result: RepoResult) => {
      ordered[index] = result;
      done++;
      const label = `${planned.repo.project.name}/${planned.repo.name}`;
      const line = result.status === 'ok' && result.reusedFrom
        ? `[${done}/${total}] ${label}: ok, reused from ${result.reusedFromRun} (server-side copy of ${result.reusedFrom}, ${formatBytes(result.size ?? 0)}), ${result.refs} refs, ${(result.durationMs / 1000).toFixed(1)} s`
        : result.status === 'ok'
        ? `[${done}/${total}] ${label}: ok, ${formatBytes(result.size ?? 0)} archive (mirror ${formatBytes(result.mirrorBytes ?? 0)}), ${result.refs} refs, ${result.lfsObjects} LFS objects, ${(result.durationMs / 1000).toFixed(1)} s`
        : `[${done}/${total}] ${label}: FAILED after ${(result.durationMs / 1000).toFixed(1)} s: ${result.error}`;
      if (result.status === 'ok') log.info(line); else log.error(line);
      // At most one progress update per percent: 2,000 repositories give 100 updates, not 2,000.
      const percent = Math.floor((done / total) * 100);
      if (percent !== reported || done === total) {
        reported = percent;
        deps.progress((done / total) * 100, `${done} of ${total} repositories`);
      }
    };
    let rest = plan.selected.map((planned, index) => ({ planned, index }));
    if (previous) {
      // The reuse pass: unchanged repositories cost a ref listing and a server-side copy (round trips, no disk,
      // no CPU), so they go first and wide; what is left is made in full with the normal lanes.
      const wide = reuseLanes(settings.concurrency);
      const reuseStarted = Date.now();
      const left: typeof rest = [];
      await forEachPaced(rest, wide, deps.signal, async (item) => {
        const result = await worker.reuseOnly(item.planned);
        if (result) record(item.planned, item.index, result); else left.push(item);
        return 0;
      });
      log.info(`Incremental: ${rest.length - left.length} of ${rest.length} repositories checked and copied in ${((Date.now() - reuseStarted) / 1000).toFixed(1)} s (${wide} at once); ${left.length} to back up in full.`);
      rest = left.sort((a, b) => a.index - b.index);
    }
    const lanes = settings.concurrency;
    const pacer = lanes.auto ? new Pacer({ start: lanes.start, max: lanes.max }) : undefined;
    const paced = await forEachPaced(rest, pacer ?? lanes.start, deps.signal, async ({ planned, index }) => {
      const result = await worker.backup(planned, index);
      record(planned, index, result);
      return result.status === 'ok' ? result.size ?? 0 : 0;
    }, (now, step) => log.info(`Concurrency: ${now} repositories at once from now on (${step.why === 'grow' ? 'throughput rose' : step.why === 'shrink' ? 'throughput fell' : step.why}: ${formatBytes(step.throughput * 1000)}/s weighted over the last window).`));
    lanesNote = rest.length === 0 ? undefined : lanes.auto
      ? `concurrency auto: ended at ${paced.final} repositories at once (started at ${lanes.start}, at most ${paced.peak} in flight, cap ${lanes.max})`
      : `concurrency ${lanes.start} (fixed)`;
    if (lanesNote) log.info(`Concurrency: ${lanesNote}.`);
    results.push(...ordered.filter(Boolean));
  } finally {
    await removeQuietly(runTemp, (m) => log.warn(m));
    process.removeListener('exit', removeOnExit);
  }
  if (deps.signal?.aborted) return { plan, report: { results, startedAt, finishedAt: new Date(), warnings, gaps: coverage.gaps, lanes: lanesNote } };
  if (settings.incremental) {
    const copied = results.filter((r) => r.status === 'ok' && r.reusedFrom).length;
    const made = results.filter((r) => r.status === 'ok' && !r.reusedFrom).length;
    log.info(`Incremental: ${copied} archive(s) copied from the previous run, ${made} made in full.`);
  }
  if (names.renamed > 0) {
    log.warn(`${names.renamed} name(s) of this run already existed at ${destination.description} (a rerun of the same job attempt, or objects put there by other means). Nothing was overwritten: this run's copies are stored under names ending in ~2, ~3, …, as the manifest records.`);
  }

  for (const w of destination.warnings?.() ?? []) warn(w);
  const report: RunReport = { results, startedAt, finishedAt: new Date(), warnings, gaps: coverage.gaps, lanes: lanesNote };
  const manifest = JSON.stringify(buildManifest(settings, plan, report, destination.description), null, 2);
  const manifestName = await storeUnderFreeName(plan.manifestName, names, log, 'the manifest', (name) =>
    withRetry('storing the manifest', () => destination.put(name, Readable.from([Buffer.from(manifest)]), {
      contentType: 'application/json',
      defaultTier: true,
      signal: deps.signal,
      metadata: () => ({ sha256: createHash('sha256').update(manifest).digest('hex'), kind: 'repobackup-manifest' }),
    }), classifyStoreError, log, deps.retry ?? defaultRetryPolicy, deps.signal));
  log.info(`Manifest stored as ${manifestName.name}`);
  return { plan, report, manifest: manifestName.name };
}

/** `name` with `~n` before its extension: `p/api.zip` → `p/api~2.zip`, `p/api.tar.gz` → `p/api~2.tar.gz`, `p/api.zip.age` → `p/api~2.zip.age`. */
export function variantName(name: string, n: number): string {
  if (n <= 1) return name;
  const slash = name.lastIndexOf('/');
  const base = name.slice(slash + 1);
  const ext = /(\.tar\.gz|\.[^.]+)(\.age)?$/.exec(base)?.[0] ?? '';
  return `${name.slice(0, slash + 1)}${base.slice(0, base.length - ext.length)}~${n}${ext}`;
}

const MAX_VARIANTS = 100;

/** The names this run stores under: the planned ones, and the variants it took. No two stores of a run share one. */
class NameClaims {
  private readonly taken = new Set<string>();
  renamed = 0;

  constructor(planned: string[]) {
    for (const n of planned) this.taken.add(n.toLowerCase());
  }

  /** The first variant of `name` (`~2`, `~3`, …) that no store of this run has planned or taken; claims it. */
  next(name: string, after: number): { name: string; n: number } {
    for (let n = after + 1; n <= MAX_VARIANTS; n++) {
      const candidate = variantName(name, n);
      if (this.taken.has(candidate.toLowerCase())) continue;
      this.taken.add(candidate.toLowerCase());
      return { name: candidate, n };
    }
    throw new RunError(`'${name}' and its variants ~2 … ~${MAX_VARIANTS} all exist at the destination already; nothing was overwritten. Use a new destination folder or container.`);
  }
}

/**
 * Stores with `put(name)`; when the name is taken at the destination (AlreadyExistsError: a rerun of the same job
 * attempt, or an object put there by hand), stores again under the next free variant `~2`, `~3`, …, calling `put`
 * again (it must make a fresh body each call). Nothing is overwritten. Returns the name used.
 */
async function storeUnderFreeName<T>(
  name: string, names: NameClaims, log: Logger, what: string, put: (name: string) => Promise<T>,
): Promise<{ name: string; value: T }> {
  let current = { name, n: 1 };
  for (;;) {
    try {
      return { name: current.name, value: await put(current.name) };
    } catch (err) {
      if (!(err instanceof AlreadyExistsError)) throw err;
      const next = names.next(name, current.n);
      if (current.n === 1) names.renamed++;
      log.info(`'${current.name}' already exists at the destination and was left as it is; storing ${what} as '${next.name}'.`);
      current = next;
    }
  }
}

/**
 * Incremental: the newest complete previous run at the destination, or undefined (every repository is then made in
 * full, said in one info line). A destination that cannot copy, or no way to read it, is a RunError.
 */
async function lookUpPrevious(settings: BackupSettings, deps: BackupDeps, destination: Destination, runFolder: string): Promise<Previous | undefined> {
  if (!destination.copyFrom || !deps.previousRuns) throw new RunError(`incremental: true: ${destination.description} cannot copy previous archives. Set incremental: false.`);
  const orgSegment = runFolder.split('/')[0];
  const previous = await findPreviousRun(deps.previousRuns, settings.organization.name, orgSegment, runFolder, deps.log, deps.signal);
  if (!previous) {
    deps.log.info(`Incremental: no complete previous run of ${settings.organization.name} at ${destination.description}; every repository is backed up in full.`);
    return undefined;
  }
  deps.log.info(`Incremental: previous complete run ${previous.folder} (${previous.manifests.length} manifest(s), ${previous.size} repositories): unchanged repositories are copied from it server-side.`);
  return previous;
}

async function preflight(settings: BackupSettings, deps: BackupDeps): Promise<void> {
  if (settings.dryRun) return;
  const version = await deps.git.requireVersion();
  if (settings.includeLfs && !(await deps.git.lfsVersion())) {
    throw new RunError('git-lfs is not installed on this agent. Install it (e.g. apt-get install git-lfs) or set includeLfs: false.');
  }
  deps.log.debug(`${version}`);
  await deps.destination?.check?.(deps.signal);
}

/**
 * Whether the credentials can see everything the filter asks for (see coverage.ts). Reads the own project's
 * pipeline settings for the job token, and the project list when a project could be out of sight.
 */
async function checkCoverage(settings: BackupSettings, deps: BackupDeps): Promise<Coverage> {
  const systemToken = settings.credentials.type === 'systemToken';
  if (!systemToken && settings.filter.literalProjects.length === 0) return { gaps: [], notes: [] };
  let scope: CoverageInput['scope'];
  if (systemToken && settings.run.project) {
    try {
      scope = { settings: await deps.devops.getJobScopeSettings(settings.run.project) };
    } catch (err) {
      scope = { error: redact(errorMessage(err)) };
      deps.log.debug(`Pipeline settings of '${settings.run.project}' not read: ${scope.error}`);
    }
  }
  const visibleProjects = (await deps.devops.listProjects()).map((p) => p.name);
  const coverage = assessCoverage({
    credentialType: settings.credentials.type,
    credentialDescription: settings.credentials.description,
    ownProject: settings.run.project,
    hostType: settings.run.hostType,
    scope,
    visibleProjects,
    filter: settings.filter,
  });
  for (const note of coverage.notes) deps.log.info(note);
  return coverage;
}

const NO_SPACE = /No space left on device|ENOSPC|disk quota exceeded/i;

/** git faults are retried as git.ts says, except a full disk: another try would fill it again. */
export function classifyMirrorError(err: unknown): RetryDecision {
  if (err instanceof GitError && NO_SPACE.test(err.stderr)) return { retry: false };
  return classifyGitError(err);
}

/** One line for a failed repository; a full temp disk is said plainly. */
function failureMessage(err: unknown, tempDir: string): string {
  const message = errorMessage(err);
  if (NO_SPACE.test(message) || (err instanceof GitError && NO_SPACE.test(err.stderr))) {
    return `the temporary folder ${tempDir} (Agent.TempDirectory) ran out of space: the repository is bigger than Azure DevOps reports, or other files filled the disk. Free space or use an agent with a larger disk. (${message})`;
  }
  return message;
}

/** A previous archive that does not qualify is not retried (the repository is made in full); store faults as for uploads. */
function classifyCopyError(err: unknown): RetryDecision {
  if (err instanceof CopySourceError) return { retry: false };
  return classifyStoreError(err);
}

function classifyStoreError(err: unknown): RetryDecision {
  if (err instanceof AlreadyExistsError) return { retry: false };
  return { retry: !/\(HTTP 4\d\d|\b403\b|refused/.test(errorMessage(err)) };
}

class RepoWorker {
  /**
   * The mirrors being written now: the temp space each was granted, and where it writes. The file system's free
   * space already excludes what they have written so far, so only the rest of each grant is held back.
   */
  private readonly inFlight = new Map<string, { granted: number }>();
  /** Repositories waiting for a mirror in flight to finish (adaptive lanes wait for disk instead of failing). */
  private diskWaiters: Array<() => void> = [];
  private finishedMirrors = 0;

  constructor(
    private readonly settings: BackupSettings,
    private readonly deps: BackupDeps,
    private readonly destination: Destination,
    private readonly runTemp: string,
    private readonly names: NameClaims,
    private readonly warn: (message: string) => void = () => undefined,
    private readonly previous?: Previous,
  ) {}

  private get shape(): ArchiveShape {
    const e = this.settings.encryption;
    return {
      archiveFormat: this.settings.archiveFormat, includeLfs: this.settings.includeLfs,
      encryption: encryptionShape(e ? { format: e.format, recipients: e.recipients } : undefined),
      verify: this.settings.verify,
    };
  }

  /**
   * Incremental: the refs of the remote now (`git ls-remote --symref`, one request, no objects) against the
   * previous run's; when nothing changed, a server-side copy of the previous archive. Undefined when the repository
   * is to be made in full (the reason logged: info, or a warning when the previous archive should have served).
   */
  private async reuse(planned: PlannedRepo, started: number): Promise<RepoResult | undefined> {
    const previous = this.previous;
    if (!previous) return undefined;
    const { repo } = planned;
    const label = `${repo.project.name}/${repo.name}`;
    const { git, log, signal } = this.deps;
    const policy = this.deps.retry ?? defaultRetryPolicy;
    let digest: string;
    try {
      const remote = await withRetry(`git ls-remote ${label}`, () => git.lsRemoteSymref(repo.remoteUrl, this.deps.gitEnv(repo.remoteUrl), signal), classifyGitError, log, policy, signal);
      // A server that does not advertise HEAD's target (no symref capability): the default branch the REST listing
      // gave is what the mirror's HEAD was set to.
      digest = refsDigest(remote.refs, remote.head ?? repo.defaultBranch);
    } catch (err) {
      log.info(`${label}: its refs could not be listed (${redact(errorMessage(err))}); backing it up in full.`);
      return undefined;
    }
    const decision = previous.decide(repo, digest, this.shape);
    if (decision.kind === 'full') {
      const line = `${label}: backed up in full: ${decision.reason}.`;
      if (decision.warn) this.warn(line); else log.info(line);
      return undefined;
    }
    const { entry } = decision;
    const expected = { size: entry.size!, sha256: entry.sha256! };
    try {
      const stored = await storeUnderFreeName(planned.archive, this.names, log, label, (name) =>
        withRetry(`copying ${label}`, () => this.deps.destination!.copyFrom!(entry.archive!, name, expected, {
          signal,
          contentType: this.contentType,
          metadata: this.metadata(planned, {
            sha256: entry.sha256!, refs: entry.refs ?? 0, lfsObjects: entry.lfsObjects ?? 0,
            plaintextSha256: entry.plaintextSha256 ?? undefined, reusedFrom: entry.archive!,
          }),
        }), classifyCopyError, log, policy, signal));
      return {
        repo, status: 'ok', archive: stored.name, sha256: entry.sha256!, size: entry.size!, refs: entry.refs ?? undefined,
        head: entry.head ?? undefined, plaintextSha256: entry.plaintextSha256 ?? undefined, plaintextSize: entry.plaintextSize ?? undefined,
        lfsObjects: entry.lfsObjects ?? undefined, lfsBytes: entry.lfsBytes ?? undefined, mirrorBytes: entry.mirrorBytes ?? undefined,
        refsDigest: digest, reusedFrom: entry.archive!, reusedFromRun: decision.run, durationMs: Date.now() - started,
      };
    } catch (err) {
      if (signal?.aborted) throw err;
      const why = err instanceof CopySourceError ? err.message : `the server-side copy of '${entry.archive}' failed: ${redact(errorMessage(err))}`;
      this.warn(`${label}: ${why}; backed up in full instead.`);
      return undefined;
    }
  }

  /**
   * The reuse pass: the repository's archive copied from the previous run when its refs did not change; undefined
   * when it is to be made in full. A failure (only a cancel gets here) is the repository's, not the run's.
   */
  async reuseOnly(planned: PlannedRepo): Promise<RepoResult | undefined> {
    const started = Date.now();
    try {
      return await this.reuse(planned, started);
    } catch (err) {
      return { repo: planned.repo, status: 'failed', error: redact(errorMessage(err)), durationMs: Date.now() - started };
    }
  }

  private get contentType(): string {
    return this.settings.encryption ? 'application/octet-stream' : this.settings.archiveFormat === 'zip' ? 'application/zip' : 'application/gzip';
  }

  /** The blob metadata of an archive (made, or copied from `reusedFrom`). */
  private metadata(planned: PlannedRepo, facts: { sha256: string; refs: number; lfsObjects: number; plaintextSha256?: string; reusedFrom?: string }): Metadata {
    const { repo } = planned;
    return {
      sha256: facts.sha256,
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
      ...(this.settings.encryption ? { encryption: 'age', plaintextsha256: facts.plaintextSha256 ?? '' } : {}),
      ...(facts.reusedFrom ? { reusedfrom: encodeURIComponent(facts.reusedFrom) } : {}),
    };
  }

  async backup(planned: PlannedRepo, index: number): Promise<RepoResult> {
    const { repo } = planned;
    const started = Date.now();
    const dir = path.join(this.runTemp, String(index));
    const policy = this.deps.retry ?? defaultRetryPolicy;
    const label = `${repo.project.name}/${repo.name}`;
    const { git, log, signal } = this.deps;
    // The size Azure DevOps reports covers git objects, not LFS objects: an LFS-heavy repository can need more
    // than this (a full disk is then reported as such, without retries).
    const need = Math.ceil(repo.size * 1.1) + (16 << 20);
    try {
      await this.reserveDisk(dir, need, label);
      const env = this.deps.gitEnv(repo.remoteUrl);
      await withRetry(`git clone ${label}`, async () => {
        await removeWithRetries(dir);
        await git.cloneMirror(repo.remoteUrl, dir, env, signal);
      }, classifyMirrorError, log, policy, signal);
      const refs = await git.refs(dir);
      // What the archive holds, as a digest: the next incremental run compares the remote's refs with it.
      const digest = refsDigest(refs, await git.symbolicRef(dir));
      let missing: string[] = [];
      if (this.settings.includeLfs && refs.length > 0) {
        ({ missing } = await withRetry(`git lfs fetch ${label}`, () => git.lfsFetchAll(dir, env, signal), classifyMirrorError, log, policy, signal));
      }
      if (this.settings.verify) await git.fsck(dir, signal);
      const files = await inventory(dir, this.settings.verify);
      // A branch points at a commit: its id is in the ref list already (one git process less per repository).
      const head = repo.defaultBranch ? refs.find((r) => r.name === repo.defaultBranch)?.oid : undefined;
      const stored = await storeUnderFreeName(planned.archive, this.names, log, label, (name) =>
        withRetry(`storing ${label}`, () => this.store(planned, name, dir, { refs: refs.length, lfsObjects: files.lfsObjects, bytes: files.bytes }),
          classifyStoreError, log, policy, signal));
      const result: RepoResult = {
        repo, status: 'ok', archive: stored.name, sha256: stored.value.sha256, size: stored.value.bytes, refs: refs.length, head,
        plaintextSha256: stored.value.plaintextSha256, plaintextSize: stored.value.plaintextBytes,
        lfsObjects: files.lfsObjects, lfsBytes: files.lfsBytes, mirrorBytes: files.bytes, refsDigest: digest, durationMs: Date.now() - started,
      };
      if (missing.length > 0) {
        result.status = 'failed';
        result.missingLfsObjects = missing;
        result.error = `${missing.length} LFS object(s) are missing on the server (${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''}); the git data and every other LFS object were stored`;
      }
      return result;
    } catch (err) {
      return { repo, status: 'failed', error: redact(failureMessage(err, this.settings.run.tempDir)), durationMs: Date.now() - started };
    } finally {
      this.inFlight.delete(dir);
      await removeQuietly(dir, (m) => log.warn(m));
      const waiters = this.diskWaiters;
      this.diskWaiters = [];
      this.finishedMirrors++;
      for (const wake of waiters) wake();
    }
  }

  /**
   * Fails early, with a clear message, when the temp folder cannot hold the mirror (its size as Azure DevOps
   * reports it) besides what the mirrors in flight still have to write. Free space already excludes what they
   * wrote, so each holds back only the part of its grant it has not used yet.
   */
  private async reserveDisk(dir: string, bytes: number, label: string): Promise<void> {
    for (;;) {
      const generation = this.finishedMirrors;
      const free = await (this.deps.freeBytes ?? freeBytes)(this.runTemp);
      let pending = 0;
      let written = 0;
      // A snapshot: a mirror that finishes while we measure is still counted (and we are woken when it is gone).
      const others = [...this.inFlight];
      for (const [other, { granted }] of others) {
        const used = await usedBytes(other);
        written += used;
        pending += Math.max(0, granted - used);
      }
      if (free - pending >= bytes) break;
      // Adaptive lanes never go beyond what the disk grants: a lane the pacer added waits for a mirror in flight
      // to finish (and free its space) when that would make room; a fixed `concurrency` fails as it always did.
      if (!(this.settings.concurrency.auto && others.length > 0 && free + written >= bytes)) {
        this.refuseDisk(free, pending, bytes, label);
      }
      this.deps.log.debug(`${label}: waiting for a mirror in progress to finish (needs ${formatBytes(bytes)}, ${formatBytes(Math.max(0, free - pending))} free after the clones in progress).`);
      // A mirror that finished while we measured: measure again rather than wait for the next one.
      if (generation !== this.finishedMirrors) continue;
      await new Promise<void>((resolve) => this.diskWaiters.push(resolve));
    }
    this.inFlight.set(dir, { granted: bytes });
  }

  private refuseDisk(free: number, pending: number, bytes: number, label: string): never {
    throw new RunError(`not enough disk space for ${label}: its mirror needs about ${formatBytes(bytes)} but ${formatBytes(Math.max(0, free - pending))} is free in ${this.settings.run.tempDir} (Agent.TempDirectory). ` +
      `${pending > 0 ? `Clones in progress still need ${formatBytes(pending)} of the ${formatBytes(free)} left. ` : ''}Free space, lower concurrency, or use an agent with a larger disk.`);
  }

  private async store(planned: PlannedRepo, name: string, dir: string, facts: { refs: number; lfsObjects: number; bytes: number }) {
    const archive = createArchiveStream(dir, this.settings.archiveFormat);
    const hashing = new HashingStream();
    // Encrypted on the way: the plaintext archive exists only as the stream's chunks in memory.
    const encrypting = this.settings.encryption ? new AgeEncryptStream(this.settings.encryption.recipients) : undefined;
    const piping = encrypting ? pipeline(archive, encrypting, hashing) : pipeline(archive, hashing);
    const putting = this.destination.put(name, hashing, {
      signal: this.deps.signal,
      sizeHint: facts.bytes,
      contentType: this.contentType,
      metadata: () => this.metadata(planned, { sha256: hashing.sha256, refs: facts.refs, lfsObjects: facts.lfsObjects, plaintextSha256: encrypting?.plaintextSha256 }),
    });
    const [piped, put] = await Promise.allSettled([piping, putting]);
    if (put.status === 'rejected') throw put.reason;
    if (piped.status === 'rejected') throw piped.reason;
    return {
      sha256: hashing.sha256, bytes: hashing.bytes,
      plaintextSha256: encrypting?.plaintextSha256, plaintextBytes: encrypting?.plaintextBytes,
    };
  }
}

/** Mirror size, LFS object count and bytes; with `verify`, every LFS object's content must hash to its name. */
async function inventory(dir: string, verify: boolean) {
  const found = await inventoryMirror(dir, verify);
  const bad = found.badLfsObjects;
  if (bad.length) throw new RunError(`${bad.length} LFS object(s) do not match their SHA-256 after download: ${bad.slice(0, 3).join(', ')}`);
  return found;
}

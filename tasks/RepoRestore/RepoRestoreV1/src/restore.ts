/**
 * The orchestrator: check the target → locate → download + checksum → extract → fsck → create the target →
 * push LFS objects → push refs (in chunks) → verify. Nothing touches the target before the archive is verified,
 * extracted and checked; the only secrets are in the environment `gitEnv` gives each git command.
 */
import { createWriteStream, promises as fsp } from 'fs';
import * as path from 'path';
import { pipeline } from 'stream/promises';
import { HashingStream } from '../../../common/src/archive';
import { withGitConfig } from '../../../common/src/credentials';
import { DevOpsClient, ProjectInfo, RepoInfo } from '../../../common/src/devops';
import { errorMessage, RunError } from '../../../common/src/errors';
import { extractArchiveFile } from '../../../common/src/extract';
import { classifyGitError, Git, GitError, PushUpdate } from '../../../common/src/git';
import { Logger } from '../../../common/src/host';
import { defaultRetryPolicy, RetryPolicy, withRetry } from '../../../common/src/retry';
import { NotFoundError, Source } from '../../../common/src/sources';
import { locate, Located } from './locate';
import { formatBytes } from '../../../common/src/format';
import { RefKind, refKind, RestoreReport } from './report';
import { RestoreSettings } from './settings';
import { freeBytes, inventoryMirror } from '../../../common/src/mirror';

export interface RestoreDeps {
  log: Logger;
  progress(percent: number, text: string): void;
  devops: Pick<DevOpsClient, 'getProject' | 'getRepository' | 'createRepository'>;
  git: Git;
  source: Source;
  /** The environment for one git command against a remote (credentials included). */
  gitEnv(remoteUrl: string): NodeJS.ProcessEnv;
  retry?: RetryPolicy;
  signal?: AbortSignal;
  /** Free bytes in a folder (overridable for tests). */
  freeBytes?(dir: string): Promise<number>;
  /** Refspecs per `git push`, bounded by count and by characters (the command line). */
  pushChunk?: { maxRefs: number; maxChars: number };
}

export const DEFAULT_PUSH_CHUNK = { maxRefs: 500, maxChars: 24_000 };
/** Pull request refs: Azure DevOps owns them and refuses pushes to them. */
export const PULL_REFS = /^refs\/pull\//;

export function newReport(): RestoreReport {
  return {
    startedAt: new Date(),
    checksums: [],
    refs: { inArchive: 0, pushed: 0, upToDate: 0, byKind: { branches: 0, tags: 0, notes: 0, other: 0 }, skippedPull: [], rejected: [], verified: false },
    lfs: { objects: 0, bytes: 0, missing: [], pushed: false },
    warnings: [],
    checked: false,
    targetTouched: false,
  };
}

/** Runs the restore, filling `report` as it goes (so a failure still leaves what happened for the summary). */
export async function runRestore(settings: RestoreSettings, deps: RestoreDeps, report: RestoreReport): Promise<void> {
  const { log, git, signal } = deps;
  const warn = (message: string) => { report.warnings.push(message); log.warn(message); };
  const policy = deps.retry ?? defaultRetryPolicy;

  await preflight(deps);

  // 1. The target, read-only: the project must exist; an existing repository must be empty (unless allowed).
  const { project: projectName, repository: repoName } = settings.target;
  const project = await deps.devops.getProject(projectName);
  if (!project) {
    throw new RunError(`Input 'targetProject': project '${projectName}' does not exist in ${settings.organization.url}, or ${settings.credentials.description} cannot see it. Create the project first (restore creates repositories, not projects).`);
  }
  // Every git command runs in this folder (or the extracted repository below it), never in the agent's
  // checkout, whose config (e.g. a persisted extraheader) must not mix with ours.
  const work = await fsp.mkdtemp(path.join(settings.tempDir, 'reporestore-'));
  try {
    let target = await deps.devops.getRepository(project.name, repoName);
    report.target = { project: project.name, repository: repoName, state: 'missing' };
    if (target) await checkExistingTarget(target, settings, deps, report, work);
    else log.info(`Target repository ${project.name}/${repoName} does not exist; it will be created once the archive is verified.`);

    // 2. Locate and download while hashing; compare before anything else happens.
    const located = await locate(settings.selection, deps.source, log, warn, signal);
    report.archive = located.archive;
    report.manifest = located.manifest;
    report.format = located.format;
    if (located.entry) report.source = { project: located.entry.project, repository: located.entry.repository, isWiki: located.entry.isWiki === true };
    deps.progress(5, 'downloading the archive');
    const archiveFile = path.join(work, `archive.${located.format}`);
    const downloaded = await download(located, archiveFile, settings, deps, report);
    report.bytes = downloaded.bytes;
    report.sha256 = downloaded.sha256;
    if (!report.source && downloaded.metadata.project && downloaded.metadata.repository) {
      // Blob metadata as RepoBackup writes it (URL-encoded names).
      const decode = (v: string) => { try { return decodeURIComponent(v); } catch { return v; } };
      report.source = { project: decode(downloaded.metadata.project), repository: decode(downloaded.metadata.repository), isWiki: false };
    }

    // 3. Extract and check: a bare repository whose history is complete, LFS objects that match their names.
    deps.progress(45, 'extracting');
    const repoDir = path.join(work, 'repo');
    try {
      await extractArchiveFile(archiveFile, located.format, repoDir);
    } catch (err) {
      throw new RunError(`Cannot extract '${located.archive}': ${errorMessage(err)}. The archive is damaged or not a RepoBackup archive.`);
    }
    await fsp.rm(archiveFile, { force: true });
    const noHooks = path.join(work, 'no-hooks');
    await fsp.mkdir(noHooks);
    const objectFormat = await prepareRepository(repoDir, git);
    deps.progress(50, 'checking the repository (git fsck)');
    try {
      await git.fsck(repoDir, signal);
    } catch (err) {
      throw new RunError(`The archive's repository is incomplete (git fsck --connectivity-only failed): ${errorMessage(err)}`);
    }
    const refs = await git.refs(repoDir);
    const head = await git.symbolicRef(repoDir);
    const lfs = await lfsInventory(repoDir);
    report.refs.inArchive = refs.length;
    report.lfs.objects = lfs.objects;
    report.lfs.bytes = lfs.bytes;
    report.head = head;
    report.checked = true;
    log.info(`Archive checked: ${refs.length} refs, ${lfs.objects} LFS objects (${formatBytes(lfs.bytes)}), default branch ${head ?? '(none)'}${objectFormat !== 'sha1' ? `, object format ${objectFormat}` : ''}`);
    compareWithRecord(located.entry ?? downloaded.metadata, refs.length, lfs.objects, warn);
    if (lfs.objects > 0 && !(await git.lfsVersion())) {
      throw new RunError(`The archive holds ${lfs.objects} Git LFS objects but git-lfs is not installed on this agent. Install it (e.g. apt-get install git-lfs) and run again.`);
    }

    const toPush = refs.filter((r) => !PULL_REFS.test(r.name));
    report.refs.skippedPull = refs.filter((r) => PULL_REFS.test(r.name)).map((r) => r.name);
    if (report.refs.skippedPull.length > 0) {
      log.info(`Skipping ${report.refs.skippedPull.length} pull request ref(s) (refs/pull/*): Azure DevOps owns pull request refs and refuses pushes to them; the pull requests themselves are not part of a git backup.`);
    }

    // 4. The target: created now, when it did not exist.
    if (!target) {
      target = await createTarget(project, repoName, settings, deps, report, work);
    }
    const remoteUrl = target.remoteUrl;
    report.target.url = remoteUrl;
    await writeConfig(repoDir, objectFormat, remoteUrl);
    const lfsUrl = `${remoteUrl.replace(/\/+$/, '')}.git/info/lfs`;
    const env = () => withGitConfig(deps.gitEnv(remoteUrl), [
      ['core.hooksPath', noHooks],
      // Explicit LFS endpoints win over any .lfsconfig in the restored history.
      ['lfs.url', lfsUrl],
      ['lfs.pushurl', lfsUrl],
      ['lfs.locksverify', 'false'],
      ['lfs.allowincompletepush', 'true'],
    ]);

    // 5. LFS objects first (as a pre-push hook would), so no pushed commit points at content the server lacks.
    if (lfs.objects > 0) {
      deps.progress(55, `uploading ${lfs.objects} LFS objects`);
      log.info(`Uploading LFS objects: git lfs push --all to ${remoteUrl}`);
      report.targetTouched = true;
      const pushed = await withRetry('git lfs push', () => git.lfsPushAll(repoDir, 'origin', env(), signal), classifyGitError, log, policy, signal)
        .catch((err) => { throw pushError(err, settings, 'uploading LFS objects'); });
      report.lfs.pushed = true;
      report.lfs.missing = pushed.missing;
      if (pushed.missing.length > 0) {
        warn(`${pushed.missing.length} LFS object(s) referenced by the history are not in the archive and were not restored (${pushed.missing.slice(0, 3).join(', ')}${pushed.missing.length > 3 ? ', …' : ''}); they were missing when the backup was made.`);
      }
    }

    // 6. Refs, the default branch alone first (Azure DevOps makes the first branch pushed the default branch).
    const chunks = planPush(toPush.map((r) => r.name), head, deps.pushChunk ?? DEFAULT_PUSH_CHUNK);
    let done = 0;
    const updates = new Map<string, PushUpdate>();
    for (const chunk of chunks) {
      if (signal?.aborted) throw signal.reason;
      deps.progress(70 + (25 * done) / Math.max(1, toPush.length), `pushing refs ${done + 1}–${done + chunk.length} of ${toPush.length}`);
      report.targetTouched = true;
      const result = await withRetry(`git push (${chunk.length} refs)`, () => git.push(repoDir, 'origin', chunk.map((r) => `${r}:${r}`), env(), signal),
        classifyGitError, log, policy, signal).catch((err) => { throw pushError(err, settings, 'pushing refs'); });
      for (const u of result.updates) updates.set(u.ref, u);
      for (const ref of chunk) {
        const u = updates.get(ref);
        if (!u) {
          report.refs.rejected.push({ ref, reason: `git reported no status for it${result.stderr ? ` (${lastLine(result.stderr)})` : ''}` });
        } else if (u.flag === '!') {
          const differs = /non-fast-forward|fetch first|already exists|stale info/.test(u.summary)
            ? ' — the target already has this ref at another commit; it is never overwritten' : '';
          report.refs.rejected.push({ ref, reason: `${u.summary}${differs}${rejectionDetail(result.stderr, ref)}` });
        } else {
          if (u.flag === '=') report.refs.upToDate++;
          else report.refs.pushed++;
          report.refs.byKind[refKind(ref)]++;
        }
      }
      done += chunk.length;
      log.info(`Pushed ${done} of ${toPush.length} refs${report.refs.rejected.length ? ` (${report.refs.rejected.length} rejected)` : ''}`);
    }
    if (report.refs.rejected.length > 0) {
      for (const r of report.refs.rejected.slice(0, 20)) log.error(`Ref ${r.ref} was not restored: ${r.reason}`);
    }

    // 7. Verify: the target lists every restored ref at the archive's object id.
    deps.progress(96, 'verifying the target');
    if (toPush.length > 0 || report.target.state !== 'created') {
      const remoteRefs = await withRetry('git ls-remote', () => git.lsRemote('origin', env(), signal, repoDir), classifyGitError, log, policy, signal)
        .catch((err) => { throw pushError(err, settings, 'reading the target after the push'); });
      const there = new Map(remoteRefs.map((r) => [r.name, r.oid]));
      const rejected = new Set(report.refs.rejected.map((r) => r.ref));
      const wrong = toPush.filter((r) => !rejected.has(r.name) && there.get(r.name) !== r.oid);
      for (const r of wrong) report.refs.rejected.push({ ref: r.name, reason: `the target has ${there.get(r.name) ?? 'no such ref'} instead of ${r.oid} after the push` });
      report.refs.verified = wrong.length === 0;
    }
    const after = await deps.devops.getRepository(project.name, repoName).catch(() => undefined);
    report.defaultBranch = after?.defaultBranch;
    if (head && toPush.some((r) => r.name === head) && after && after.defaultBranch !== head) {
      warn(`The target's default branch is ${after.defaultBranch ?? '(none)'} but the backup's was ${head}. Set it in Repos → Branches → "Set as default branch".`);
    }
    if (report.source?.isWiki || /\.wiki$/i.test(report.source?.repository ?? '')) {
      warn('This backup is a project wiki. It was restored as a regular repository; to show it as a wiki, publish it from Wiki → "Publish code as wiki".');
    }
    if (report.refs.rejected.length > 0) {
      throw new RunError(`${report.refs.rejected.length} of ${toPush.length} refs were not restored (${report.refs.rejected.slice(0, 3).map((r) => `${r.ref}: ${r.reason}`).join('; ')}${report.refs.rejected.length > 3 ? '; …' : ''}).`);
    }
  } finally {
    await fsp.rm(work, { recursive: true, force: true, maxRetries: 3 }).catch((e) => log.warn(`Could not remove ${work}: ${errorMessage(e)}`));
  }
}

async function preflight(deps: RestoreDeps): Promise<void> {
  deps.log.debug(await deps.git.requireVersion());
}

async function checkExistingTarget(target: RepoInfo, settings: RestoreSettings, deps: RestoreDeps, report: RestoreReport, cwd: string): Promise<void> {
  const label = `${target.project.name}/${target.name}`;
  if (target.isDisabled) throw new RunError(`Target repository ${label} is disabled. Enable it (Project settings → Repositories) or restore into another repository.`);
  const policy = deps.retry ?? defaultRetryPolicy;
  const refs = await withRetry(`git ls-remote ${label}`, () => deps.git.lsRemote(target.remoteUrl, deps.gitEnv(target.remoteUrl), deps.signal, cwd),
    classifyGitError, deps.log, policy, deps.signal).catch((err) => { throw pushError(err, settings, `reading ${label}`); });
  report.target!.id = target.id;
  report.target!.existingRefs = refs.length;
  if (refs.length === 0) {
    report.target!.state = 'empty';
    deps.log.info(`Target repository ${label} exists and is empty.`);
    return;
  }
  report.target!.state = 'non-empty';
  if (!settings.allowNonEmpty) {
    throw new RunError(`Target repository ${label} already has ${refs.length} ref(s) (e.g. ${refs.slice(0, 3).map((r) => r.name).join(', ')}); refusing to restore into it. Choose a new targetRepository (it is created), or set allowNonEmpty: true to add the backup's refs to it (existing refs are only fast-forwarded, never overwritten).`);
  }
  deps.log.warn(`Target repository ${label} already has ${refs.length} ref(s); allowNonEmpty is true, so the backup's refs are added (existing refs are only fast-forwarded, never overwritten).`);
}

async function createTarget(project: ProjectInfo, name: string, settings: RestoreSettings, deps: RestoreDeps, report: RestoreReport, cwd: string): Promise<RepoInfo> {
  try {
    const repo = await deps.devops.createRepository(project, name);
    report.target = { ...report.target!, id: repo.id, state: 'created' };
    report.targetTouched = true;
    deps.log.info(`Created repository ${project.name}/${name} (${repo.id})`);
    return repo;
  } catch (err) {
    const message = errorMessage(err);
    if (/\(HTTP 409\)|TF400948/.test(message)) {
      // Someone created it meanwhile: treat it like an existing target.
      const repo = await deps.devops.getRepository(project.name, name);
      if (repo) {
        await checkExistingTarget(repo, settings, deps, report, cwd);
        return repo;
      }
    }
    if (/\(403\)/.test(message)) {
      throw new RunError(`Creating repository ${project.name}/${name}: ${settings.credentials.description} may not create repositories in ${project.name} (403). Grant "Create repository" (Project settings → Repositories → Security) to the build service identity or the PAT's user, or create the empty repository yourself and run again.`);
    }
    throw err;
  }
}

/**
 * Downloads the archive to `file` while hashing it, and compares the SHA-256 with every stored value (blob
 * metadata / `.sha256` file, manifest entry). A mismatch, or no value at all without allowMissingChecksum, fails.
 */
async function download(located: Located, file: string, settings: RestoreSettings, deps: RestoreDeps, report: RestoreReport) {
  const { log, signal } = deps;
  let obj;
  try {
    obj = await deps.source.open(located.archive, signal);
  } catch (err) {
    if (err instanceof NotFoundError) {
      throw new RunError(`${settings.selection.kind === 'archive' ? "Input 'archive': " : ''}${err.message}. Give the archive's path relative to the container or folder root, as the manifest lists it (e.g. contoso/2026-12-02/1234.1/Team Alpha/api.zip).`);
    }
    throw err;
  }
  const expected = [...located.expected];
  if (obj.sha256) expected.unshift({ sha256: obj.sha256, from: obj.sha256From ?? 'the source' });
  if (expected.length === 0) {
    if (!settings.allowMissingChecksum) {
      obj.stream.destroy();
      throw new RunError(`No SHA-256 is stored for '${located.archive}' (no blob metadata sha256, no .sha256 file${located.manifest ? ', none in the manifest' : ''}), so it cannot be verified. Select it through its manifest (repository: <project>/<repo>) so the manifest's checksum is used, or set allowMissingChecksum: true to restore it unverified.`);
    }
    const w = `No SHA-256 is stored for '${located.archive}'; restoring it unverified because allowMissingChecksum is true (git fsck and the LFS object hashes are still checked).`;
    report.warnings.push(w);
    log.warn(w);
  }
  const size = obj.size ?? located.size;
  if (size !== undefined) {
    // The archive, then the extracted repository (about as large: packs are stored, not recompressed).
    const need = Math.ceil(size * 2.2) + (16 << 20);
    const free = await (deps.freeBytes ?? freeBytes)(path.dirname(file));
    if (free < need) {
      obj.stream.destroy();
      throw new RunError(`Not enough disk space: the ${formatBytes(size)} archive needs about ${formatBytes(need)} to download and extract, but ${formatBytes(free)} is free in ${settings.tempDir} (Agent.TempDirectory). Free space or use an agent with a larger disk.`);
    }
  }
  log.info(`Downloading '${located.archive}'${size !== undefined ? ` (${formatBytes(size)})` : ''} from ${deps.source.description}`);
  const hashing = new HashingStream();
  const started = Date.now();
  const timer = setInterval(() => {
    const pct = size ? hashing.bytes / size : 0;
    deps.progress(5 + 40 * pct, `downloaded ${formatBytes(hashing.bytes)}${size ? ` of ${formatBytes(size)}` : ''}`);
  }, 3000);
  try {
    await pipeline(obj.stream, hashing, createWriteStream(file, { flags: 'wx' }), { signal });
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw new RunError(`Downloading '${located.archive}' failed after ${formatBytes(hashing.bytes)}: ${errorMessage(err)}`);
  } finally {
    clearInterval(timer);
  }
  const sha256 = hashing.sha256;
  log.info(`Downloaded ${formatBytes(hashing.bytes)} in ${((Date.now() - started) / 1000).toFixed(1)} s; SHA-256 ${sha256}`);
  for (const e of expected) {
    if (e.sha256 !== sha256) {
      throw new RunError(`The archive '${located.archive}' is corrupt or was changed: its SHA-256 is ${sha256} but ${e.from} says ${e.sha256}. Nothing was restored and the target repository was not ${report.target?.state === 'missing' ? 'created' : 'changed'}. Restore from another backup (e.g. name an older manifest).`);
    }
    report.checksums.push(e.from);
  }
  if (located.size !== undefined && located.size !== hashing.bytes) {
    throw new RunError(`The archive '${located.archive}' has ${hashing.bytes} bytes but manifest '${located.manifest}' says ${located.size}. Nothing was restored.`);
  }
  return { sha256, bytes: hashing.bytes, metadata: obj.metadata };
}

/**
 * Makes the extracted mirror a safe, plain bare repository: the folders git needs (archives carry no empty
 * folders), no hooks, no alternates, and a fresh config (only the repository format is kept), so nothing in the
 * archive can run code or redirect requests. Returns the object format (`sha1` or `sha256`).
 */
async function prepareRepository(dir: string, git: Git): Promise<string> {
  const head = await fsp.readFile(path.join(dir, 'HEAD'), 'utf8').catch(() => undefined);
  if (head === undefined) throw new RunError('The archive is not a RepoBackup archive: there is no HEAD at its root (it should hold a bare git repository).');
  let format = 'sha1';
  let version = '0';
  const config = path.join(dir, 'config');
  if (await fsp.stat(config).then(() => true, () => false)) {
    version = (await git.configFileGet(config, 'core.repositoryformatversion')) ?? '0';
    format = ((await git.configFileGet(config, 'extensions.objectformat')) ?? 'sha1').toLowerCase();
  }
  if (!/^[01]$/.test(version)) throw new RunError(`The archive's repository has format version ${version}, which this git cannot read.`);
  if (format !== 'sha1' && format !== 'sha256') throw new RunError(`The archive's repository uses object format '${format}', which this git cannot read.`);
  for (const sub of ['objects/info', 'objects/pack', 'refs/heads', 'refs/tags']) await fsp.mkdir(path.join(dir, sub), { recursive: true });
  for (const p of ['hooks', 'objects/info/alternates', 'objects/info/http-alternates', 'info/grafts', 'shallow', 'commondir']) {
    await fsp.rm(path.join(dir, p), { recursive: true, force: true });
  }
  await writeConfig(dir, format);
  return format;
}

/** Writes the repository's config: format, bare, and (once known) the target as `origin`, without credentials. */
async function writeConfig(dir: string, objectFormat: string, remoteUrl?: string): Promise<void> {
  const quote = (v: string) => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  const lines = ['[core]', `\trepositoryformatversion = ${objectFormat === 'sha1' ? 0 : 1}`, '\tbare = true', '\tlogallrefupdates = false'];
  if (objectFormat !== 'sha1') lines.push('[extensions]', `\tobjectformat = ${objectFormat}`);
  if (remoteUrl) lines.push('[remote "origin"]', `\turl = ${quote(remoteUrl)}`);
  await fsp.writeFile(path.join(dir, 'config'), lines.join('\n') + '\n');
}

/** LFS objects in the extracted store; each must hash to its name. */
async function lfsInventory(dir: string): Promise<{ objects: number; bytes: number }> {
  const { lfsObjects: objects, lfsBytes: bytes, badLfsObjects: bad } = await inventoryMirror(dir, true);
  if (bad.length) throw new RunError(`${bad.length} LFS object(s) in the archive do not match their SHA-256 (${bad.slice(0, 3).join(', ')}): the archive is damaged. Nothing was restored.`);
  return { objects, bytes };
}

/** Warns when the extracted counts differ from what the backup recorded (manifest entry or blob metadata). */
function compareWithRecord(record: { refs?: unknown; lfsObjects?: unknown; lfsobjects?: unknown } | undefined, refs: number, lfsObjects: number, warn: (m: string) => void): void {
  if (!record) return;
  const num = (v: unknown) => (typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : undefined);
  const recordedRefs = num(record.refs);
  const recordedLfs = num(record.lfsObjects ?? record.lfsobjects);
  if (recordedRefs !== undefined && recordedRefs !== refs) warn(`The backup recorded ${recordedRefs} refs but the archive holds ${refs}.`);
  if (recordedLfs !== undefined && recordedLfs !== lfsObjects) warn(`The backup recorded ${recordedLfs} LFS objects but the archive holds ${lfsObjects}.`);
}

/**
 * Orders refs for pushing and cuts them into chunks that keep each command line short: the default branch alone
 * first, then branches, tags, notes and the rest, each sorted.
 */
export function planPush(refs: string[], head: string | undefined, limits: { maxRefs: number; maxChars: number }): string[][] {
  const order: Record<RefKind, number> = { branches: 0, tags: 1, notes: 2, other: 3 };
  const rest = refs.filter((r) => r !== head).sort((a, b) => order[refKind(a)] - order[refKind(b)] || (a < b ? -1 : a > b ? 1 : 0));
  const chunks: string[][] = [];
  if (head && refs.includes(head)) chunks.push([head]);
  let current: string[] = [];
  let chars = 0;
  for (const ref of rest) {
    const length = ref.length * 2 + 2;
    if (current.length > 0 && (current.length >= limits.maxRefs || chars + length > limits.maxChars)) {
      chunks.push(current);
      current = [];
      chars = 0;
    }
    current.push(ref);
    chars += length;
  }
  if (current.length) chunks.push(current);
  return chunks;
}

function pushError(err: unknown, settings: RestoreSettings, what: string): Error {
  if (err instanceof RunError || (err as Error)?.name === 'AbortError') return err as Error;
  const message = errorMessage(err);
  if (err instanceof GitError && /\b(401|403)\b|TF401027|TF400813|Authentication failed|could not read Username|permission/i.test(err.stderr)) {
    return new RunError(`${what}: Azure DevOps refused ${settings.credentials.description} (${lastLine(err.stderr)}). The identity needs Contribute, Create branch, Create tag and Manage notes on the target repository${settings.credentials.type === 'pat' ? ' (a PAT with scope Code (Read & write))' : ' (the project build service identity; turn off "Limit job authorization scope to current project" to restore into another project)'}.`);
  }
  return new RunError(`${what} failed: ${message}`);
}

function rejectionDetail(stderr: string, ref: string): string {
  const line = stderr.split('\n').map((l) => l.replace(/^remote:\s*/, '').trim()).find((l) => l.includes(ref) && /TF\d+|error|denied|refused/i.test(l));
  return line ? ` — ${line}` : '';
}

function lastLine(text: string): string {
  return text.trim().split('\n').map((l) => l.trim()).filter(Boolean).pop() ?? '';
}



/**
 * Verify mode (the restore drill): for every archive a manifest selects, the stages restore uses — download with
 * SHA-256 (fetch.ts) → extract (unpack.ts) → check (check.ts) — then, instead of pushing, a comparison with the
 * live repository (compare.ts, `git ls-remote`). Nothing is created or pushed. `concurrency` slots, each with at
 * most one archive on disk, removed before the slot takes the next one.
 */
import { promises as fsp } from 'fs';
import * as path from 'path';
import { removeQuietly } from '../../../common/src/platform/remove';
import { withGitConfig } from '../../../common/src/credentials';
import { DevOpsClient, RepoInfo } from '../../../common/src/devops';
import { errorMessage, RunError } from '../../../common/src/errors';
import { formatOfName } from '../../../common/src/extract';
import { classifyGitError, Git } from '../../../common/src/git';
import { ExecOptions, ExecResult, Logger, TaskOutcome } from '../../../common/src/host';
import { defaultRetryPolicy, RetryPolicy, withRetry } from '../../../common/src/retry';
import { Source } from '../../../common/src/sources';
import { checkRepository, differencesFromRecord } from './check';
import { compareRefs, describeComparison, gitAncestry, RefComparison } from './compare';
import { BlobLocation, CorruptArchiveError, fetchArchive } from './fetch';
import { ArchivedManifestError, Located, ManifestEntry, readManifest } from './locate';
import { pushError } from './push';
import { VerifySettings } from './settings';
import { credentialWarning, unpackArchive } from './unpack';

/** `skipped`: the backup left it out by design (disabled in Azure DevOps, a dry run): nothing to check, not a failure. */
export type VerifyStatus = 'identical' | 'behind' | 'diverged' | 'deleted' | 'corrupt' | 'failed' | 'skipped';

export interface VerifyResult {
  project: string;
  repository: string;
  archive: string | null;
  status: VerifyStatus;
  /** The comparison with the live repository (absent when it could not be made). */
  refs: RefComparison | null;
  details: string;
  sha256?: string;
  lfsObjects?: number;
  manifest: string;
}

export interface VerifyReport {
  startedAt: Date;
  finishedAt?: Date;
  source: string;
  organization: string;
  manifests: string[];
  filter: string;
  repositories: VerifyResult[];
  warnings: string[];
  /** Set when the drill could not run at all. */
  error?: string;
}

export interface VerifyDeps {
  log: Logger;
  progress(percent: number, text: string): void;
  devops: Pick<DevOpsClient, 'getRepository'>;
  git: Git;
  /** Runs a tool (git) as the host does; used for the ancestry proof. */
  exec(tool: string, args: string[], options?: ExecOptions): Promise<ExecResult>;
  source: Source;
  gitEnv(remoteUrl: string): NodeJS.ProcessEnv;
  retry?: RetryPolicy;
  signal?: AbortSignal;
  freeBytes?(dir: string): Promise<number>;
  blob?: BlobLocation;
}

export function newVerifyReport(source: string, organization: string): VerifyReport {
  return { startedAt: new Date(), source, organization, manifests: [], filter: '', repositories: [], warnings: [] };
}

/** The manifests of one backup run: the one named, or every manifest in the folder of the newest one (one per job of a sharded run). */
export async function pickManifests(settings: Pick<VerifySettings, 'manifest'>, source: Source, signal?: AbortSignal): Promise<string[]> {
  if (settings.manifest) return [settings.manifest];
  const all = await source.listManifests(signal);
  if (all.length === 0) {
    throw new RunError(`${source.description} holds no manifest (manifest.json). Check sasUrl/folderPath points at the backup container or folder, or name one with the manifest input.`);
  }
  const dir = (n: string) => n.slice(0, n.lastIndexOf('/') + 1);
  const newest = dir(all[0].name);
  return all.filter((m) => dir(m.name) === newest).map((m) => m.name).sort();
}

export async function runVerify(settings: VerifySettings, deps: VerifyDeps, report: VerifyReport): Promise<void> {
  const { log } = deps;
  report.filter = settings.filter.describe();
  log.debug(await deps.git.requireVersion());
  const manifests = await pickManifests(settings, deps.source, deps.signal);
  report.manifests = manifests;
  const selected: Array<{ entry: ManifestEntry; manifest: string }> = [];
  let listed = 0;
  for (const m of manifests) {
    let entries: ManifestEntry[];
    try {
      entries = await readManifest(deps.source, m, deps.signal, deps.blob);
    } catch (err) {
      if (err instanceof ArchivedManifestError || manifests.length === 1) throw err;
      const w = `Manifest '${m}' could not be read: ${errorMessage(err)}`;
      report.warnings.push(w);
      log.warn(w);
      continue;
    }
    listed += entries.length;
    for (const entry of entries) if (settings.filter.matches(entry.project, entry.repository)) selected.push({ entry, manifest: m });
  }
  log.info(`Verifying ${selected.length} of ${listed} repositories listed in ${manifests.length === 1 ? `manifest '${manifests[0]}'` : `${manifests.length} manifests of run folder '${manifests[0].slice(0, manifests[0].lastIndexOf('/'))}'`} (repository: ${report.filter}), ${settings.concurrency} at a time, against ${settings.organization.url}`);
  if (selected.length === 0) {
    throw new RunError(`Input 'repository': '${report.filter}' matches none of the ${listed} repositories in ${manifests.map((m) => `'${m}'`).join(', ')}. Use project/repository globs such as 'Team Alpha/*' or '*/*'.`);
  }
  let next = 0;
  let done = 0;
  const results: VerifyResult[] = new Array(selected.length);
  const slot = async () => {
    while (next < selected.length) {
      if (deps.signal?.aborted) throw deps.signal.reason;
      const i = next++;
      results[i] = await verifyOne(selected[i].entry, selected[i].manifest, settings, deps);
      done++;
      const r = results[i];
      const line = `${r.project}/${r.repository}: ${r.status} — ${r.details}`;
      if (r.status === 'corrupt' || r.status === 'deleted') log.error(line);
      else if (r.status === 'diverged' || r.status === 'failed') log.warn(line);
      else log.info(line);
      deps.progress((100 * done) / selected.length, `${done} of ${selected.length} archives verified`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(settings.concurrency, selected.length) }, slot));
  report.repositories = results;
}

/** One archive, start to end. Never throws (except on cancel): every failure is a status. */
export async function verifyOne(entry: ManifestEntry, manifest: string, settings: VerifySettings, deps: VerifyDeps): Promise<VerifyResult> {
  const result: VerifyResult = { project: entry.project, repository: entry.repository, archive: entry.archive, status: 'failed', refs: null, details: '', manifest };
  const label = `${entry.project}/${entry.repository}`;
  if (!entry.archive) {
    result.details = `the backup has no archive of it (status ${entry.status}${entry.error ? `: ${entry.error}` : ''}); it was not backed up in this run`;
    // A repository the backup skipped by design (its run did not fail over it) is not a failed check; one whose
    // backup failed is.
    if (entry.status === 'skipped') result.status = 'skipped';
    return result;
  }
  const format = formatOfName(entry.archive);
  if (!format) {
    result.details = `manifest '${manifest}' names '${entry.archive}', which is not a .zip or .tar.gz archive`;
    return result;
  }
  const notes: string[] = [];
  if (entry.status !== 'ok') notes.push(`the backup recorded it as ${entry.status}${entry.error ? `: ${entry.error}` : ''}`);
  const quiet: Logger = { info: (m) => deps.log.debug(m), debug: (m) => deps.log.debug(m), warn: (m) => deps.log.warn(m), error: (m) => deps.log.error(m) };
  let work: string | undefined;
  try {
    work = await fsp.mkdtemp(path.join(settings.tempDir, 'repoverify-'));
    const sha = entry.sha256?.toLowerCase();
    const located: Located = {
      archive: entry.archive, format, manifest, entry,
      expected: sha && /^[0-9a-f]{64}$/.test(sha) ? [{ sha256: sha, from: `manifest '${manifest}'` }] : [],
      size: typeof entry.size === 'number' ? entry.size : undefined,
    };
    const file = path.join(work, `archive.${format}`);
    const fetched = await fetchArchive(located, file, { allowMissingChecksum: false, tempDir: settings.tempDir, byPath: false, identities: settings.identities },
      { ...deps, log: quiet, progress: () => undefined }, (m) => notes.push(m));
    result.sha256 = fetched.sha256;
    const unpacked = await unpackArchive(file, format, path.join(work, 'repo'), deps.git, entry.archive);
    await removeQuietly(file, (m) => deps.log.warn(m));
    if (unpacked.credentialKeys.length) notes.push(credentialWarning(entry.archive, unpacked.credentialKeys));
    const checked = await checkRepository(unpacked.repoDir, deps.git, deps.signal);
    result.lfsObjects = checked.lfs.objects;
    notes.push(...differencesFromRecord(entry, checked.refs.length, checked.lfs.objects));

    // The live repository: by name, else by id (renamed since the backup).
    let live: RepoInfo | undefined = await deps.devops.getRepository(entry.project, entry.repository);
    if (!live && entry.id) {
      live = await deps.devops.getRepository(entry.project, entry.id).catch(() => undefined);
      if (live) notes.push(`renamed to ${live.project.name}/${live.name} since the backup`);
    }
    if (!live) {
      result.status = 'deleted';
      result.details = `THE LIVE REPOSITORY IS GONE: ${label} no longer exists in ${settings.organization.url} (or ${settings.credentials.description} cannot see it). This archive (${entry.archive}, verified) is now its only copy: restore it with mode: restore.`;
      return result;
    }
    if (live.isDisabled) {
      result.details = `the live repository ${label} is disabled, so its refs cannot be read; the archive itself is sound (SHA-256, fsck, ${checked.lfs.objects} LFS objects)`;
      return result;
    }
    const noHooks = path.join(work, 'no-hooks');
    await fsp.mkdir(noHooks);
    const env = () => withGitConfig(deps.gitEnv(live!.remoteUrl), [['core.hooksPath', noHooks]]);
    const policy = deps.retry ?? defaultRetryPolicy;
    const liveRefs = await withRetry(`git ls-remote ${label}`, () => deps.git.lsRemote(live!.remoteUrl, env(), deps.signal, work), classifyGitError, quiet, policy, deps.signal)
      .catch((err) => { throw pushError(err, settings.credentials, `reading the live ${label}`, label, true); });
    const { status, refs } = await compareRefs(checked.refs, liveRefs, gitAncestry(deps.exec, unpacked.repoDir, live.remoteUrl, env, deps.signal));
    result.status = status;
    result.refs = refs;
    result.details = describeComparison(status, refs);
  } catch (err) {
    if (deps.signal?.aborted) throw deps.signal.reason;
    result.status = err instanceof CorruptArchiveError ? 'corrupt' : 'failed';
    result.details = errorMessage(err);
  } finally {
    if (work) await removeQuietly(work, (m) => deps.log.warn(m));
  }
  if (notes.length) result.details += ` (${notes.join(' ')})`;
  return result;
}

/** Failed on any corrupt archive; SucceededWithIssues on diverged, deleted or not checked; else Succeeded. */
export function verifyOutcome(report: VerifyReport): { outcome: TaskOutcome; message: string } {
  if (report.error) return { outcome: 'Failed', message: report.error };
  const count = (s: VerifyStatus) => report.repositories.filter((r) => r.status === s).length;
  const c = Object.fromEntries((['identical', 'behind', 'diverged', 'deleted', 'corrupt', 'failed', 'skipped'] as const).map((s) => [s, count(s)])) as Record<VerifyStatus, number>;
  const counts = (Object.entries(c) as Array<[VerifyStatus, number]>).filter(([s, n]) => n > 0 && s !== 'skipped').map(([s, n]) => `${n} ${s}`).join(', ') +
    (c.skipped ? `; ${c.skipped} listed without an archive, skipped by the backup (${report.repositories.filter((r) => r.status === 'skipped').slice(0, 3).map((r) => `${r.project}/${r.repository}`).join(', ')}${c.skipped > 3 ? ', …' : ''})` : '');
  const total = report.repositories.length - c.skipped;
  if (c.corrupt > 0) {
    return { outcome: 'Failed', message: `${c.corrupt} of ${total} archives are corrupt (${report.repositories.filter((r) => r.status === 'corrupt').slice(0, 3).map((r) => `${r.project}/${r.repository}`).join(', ')}${c.corrupt > 3 ? ', …' : ''}): ${counts}. Re-run the backup; restore those repositories from an older backup if needed.` };
  }
  if (c.diverged + c.deleted + c.failed > 0) {
    const parts: string[] = [];
    if (c.deleted) parts.push(`${c.deleted} live repositor${c.deleted === 1 ? 'y is' : 'ies are'} gone (the backup is the only copy)`);
    if (c.diverged) parts.push(`${c.diverged} ha${c.diverged === 1 ? 's' : 've'} refs rewritten or deleted since the backup`);
    if (c.failed) parts.push(`${c.failed} could not be checked (see the summary for why)`);
    return { outcome: 'SucceededWithIssues', message: `Verified ${total} archives: ${counts}. ${parts.join('; ')}.` };
  }
  return { outcome: 'Succeeded', message: `Verified ${total} archives: ${counts}.` };
}

/** The JSON report: `repositories[]` of `{ project, repository, archive, status, refs, details }`. */
export function verifyJson(report: VerifyReport, taskVersion: string): string {
  const { outcome } = verifyOutcome(report);
  return JSON.stringify({
    tool: { name: 'RepoRestore', version: taskVersion, mode: 'verify' },
    startedAt: report.startedAt.toISOString(),
    finishedAt: report.finishedAt?.toISOString(),
    source: report.source,
    organization: report.organization,
    manifests: report.manifests,
    filter: report.filter,
    result: outcome,
    error: report.error,
    warnings: report.warnings,
    repositories: report.repositories.map((r) => ({
      project: r.project, repository: r.repository, archive: r.archive, status: r.status, refs: r.refs, details: r.details,
      manifest: r.manifest, sha256: r.sha256, lfsObjects: r.lfsObjects,
    })),
  }, null, 1) + '\n';
}

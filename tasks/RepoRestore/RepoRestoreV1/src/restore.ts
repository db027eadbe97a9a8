/**
 * Restore mode, composed of the stages both modes share — locate (locate.ts) → download with SHA-256 (fetch.ts) →
 * extract (unpack.ts) → check (check.ts) — and its own end: create the target, push LFS objects and refs (push.ts).
 * Nothing touches the target before the archive is verified, extracted and checked; the only secrets are in the
 * environment `gitEnv` gives each git command.
 */
import { promises as fsp } from 'fs';
import * as path from 'path';
import { DevOpsClient } from '../../../common/src/devops';
import { RunError } from '../../../common/src/errors';
import { Git } from '../../../common/src/git';
import { Logger } from '../../../common/src/host';
import { RetryPolicy } from '../../../common/src/retry';
import { Source } from '../../../common/src/sources';
import { formatBytes } from '../../../common/src/format';
import { removeQuietly } from '../../../common/src/platform/remove';
import { checkRepository, differencesFromRecord } from './check';
import { BlobLocation, fetchArchive } from './fetch';
import { locate } from './locate';
import { checkExistingTarget, createTarget, PULL_REFS, PushDeps, pushLfs, pushRefs, targetEnv } from './push';
import { RestoreReport } from './report';
import { RestoreSettings } from './settings';
import { credentialWarning, unpackArchive, writeConfig } from './unpack';

export { DEFAULT_PUSH_CHUNK, planPush, PULL_REFS } from './push';

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
  /** The storage account and container, for the rehydrate command of an archived blob. */
  blob?: BlobLocation;
}

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
  if (!settings.target) throw new RunError('restore mode needs targetProject and targetRepository.');
  const push: PushDeps = { ...deps, credentials: settings.credentials };
  log.debug(await git.requireVersion());

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
    if (target) await checkExistingTarget(target, settings.allowNonEmpty, push, report, work);
    else log.info(`Target repository ${project.name}/${repoName} does not exist; it will be created once the archive is verified.`);

    // 2. Locate and download while hashing; compare before anything else happens.
    const located = await locate(settings.selection, deps.source, log, warn, signal, deps.blob);
    report.archive = located.archive;
    report.manifest = located.manifest;
    report.format = located.format;
    if (located.entry) report.source = { project: located.entry.project, repository: located.entry.repository, isWiki: located.entry.isWiki === true };
    deps.progress(5, 'downloading the archive');
    const archiveFile = path.join(work, `archive.${located.format}`);
    const downloaded = await fetchArchive(located, archiveFile, {
      allowMissingChecksum: settings.allowMissingChecksum, tempDir: settings.tempDir, byPath: settings.selection.kind === 'archive',
      identities: settings.identities,
      consequence: `Nothing was restored and the target repository was not ${report.target.state === 'missing' ? 'created' : 'changed'}. Restore from another backup (e.g. name an older manifest).`,
    }, deps, warn);
    report.bytes = downloaded.bytes;
    report.sha256 = downloaded.sha256;
    report.checksums.push(...downloaded.checksums);
    if (!report.source && downloaded.metadata.project && downloaded.metadata.repository) {
      // Blob metadata as RepoBackup writes it (URL-encoded names).
      const decode = (v: string) => { try { return decodeURIComponent(v); } catch { return v; } };
      report.source = { project: decode(downloaded.metadata.project), repository: decode(downloaded.metadata.repository), isWiki: false };
    }

    // 3. Extract: a bare repository at the root or in the one top folder; its config replaced, credentials dropped.
    deps.progress(45, 'extracting');
    const unpacked = await unpackArchive(archiveFile, located.format, path.join(work, 'repo'), git, located.archive);
    await removeQuietly(archiveFile, (m) => log.warn(m));
    report.layout = unpacked.layout.kind === 'root' ? 'at the root' : `in the top folder '${unpacked.layout.name}'`;
    if (unpacked.layout.kind === 'folder') log.info(`The repository is in the archive's top folder '${unpacked.layout.name}' (as a bare clone zipped with its folder).`);
    if (unpacked.credentialKeys.length) warn(credentialWarning(located.archive, unpacked.credentialKeys));
    const repoDir = unpacked.repoDir;
    const noHooks = path.join(work, 'no-hooks');
    await fsp.mkdir(noHooks);

    // 4. Check: complete history, LFS objects that match their names.
    deps.progress(50, 'checking the repository (git fsck)');
    const { refs, head, lfs } = await checkRepository(repoDir, git, signal);
    report.refs.inArchive = refs.length;
    report.lfs.objects = lfs.objects;
    report.lfs.bytes = lfs.bytes;
    report.head = head;
    report.checked = true;
    log.info(`Archive checked: ${refs.length} refs, ${lfs.objects} LFS objects (${formatBytes(lfs.bytes)}), default branch ${head ?? '(none)'}${unpacked.objectFormat !== 'sha1' ? `, object format ${unpacked.objectFormat}` : ''}`);
    for (const d of differencesFromRecord(located.entry ?? downloaded.metadata, refs.length, lfs.objects)) warn(d);
    if (lfs.objects > 0 && !(await git.lfsVersion())) {
      throw new RunError(`The archive holds ${lfs.objects} Git LFS objects but git-lfs is not installed on this agent. Install it (e.g. apt-get install git-lfs) and run again.`);
    }
    report.notInArchive = [['pull request refs (refs/pull/*)', /^refs\/pull\//], ['notes (refs/notes/*)', /^refs\/notes\//]]
      .filter(([, re]) => !refs.some((r) => (re as RegExp).test(r.name))).map(([what]) => what as string);
    if (refs.length && report.notInArchive.length) log.info(`Not in the archive, so not restored: ${report.notInArchive.join(', ')}.`);
    const toPush = refs.filter((r) => !PULL_REFS.test(r.name));
    report.refs.skippedPull = refs.filter((r) => PULL_REFS.test(r.name)).map((r) => r.name);
    if (report.refs.skippedPull.length > 0) {
      log.info(`Skipping ${report.refs.skippedPull.length} pull request ref(s) (refs/pull/*): Azure DevOps owns pull request refs and refuses pushes to them; the pull requests themselves are not part of a git backup.`);
    }

    // 5. The target: created now, when it did not exist; then LFS objects and refs.
    if (!target) target = await createTarget(project, repoName, settings.allowNonEmpty, push, report, work);
    const remoteUrl = target.remoteUrl;
    report.target.url = remoteUrl;
    await writeConfig(repoDir, unpacked.objectFormat, remoteUrl);
    const env = targetEnv(remoteUrl, noHooks, deps.gitEnv);
    await pushLfs(repoDir, lfs.objects, remoteUrl, env, push, report, warn);
    await pushRefs(repoDir, toPush, head, env, push, report);

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
    await removeQuietly(work, (m) => log.warn(m));
  }
}

/** Manifest (JSON stored next to the archives) and the markdown summary attached to the run. */
import { RepoInfo } from '../../../common/src/devops';
import { Plan } from './plan';
import { BackupSettings } from './settings';
import { cell, formatBytes } from '../../../common/src/format';

export type RepoStatus = 'ok' | 'skipped' | 'failed';

export interface RepoResult {
  repo: RepoInfo;
  status: RepoStatus;
  archive?: string;
  sha256?: string;
  /** Archive bytes (as stored: encrypted when encryption is on). */
  size?: number;
  /** SHA-256 and size of the archive before encryption (encrypted runs only). */
  plaintextSha256?: string;
  plaintextSize?: number;
  refs?: number;
  head?: string;
  lfsObjects?: number;
  lfsBytes?: number;
  missingLfsObjects?: string[];
  mirrorBytes?: number;
  /** sha256 of the refs the archive holds (incremental.ts refsDigest). */
  refsDigest?: string;
  /** Incremental runs: the previous run's archive this one is a server-side copy of, and that run (`<build>.<attempt>`). */
  reusedFrom?: string;
  reusedFromRun?: string;
  error?: string;
  durationMs: number;
}

export interface RunReport {
  results: RepoResult[];
  startedAt: Date;
  finishedAt: Date;
  warnings: string[];
  /**
   * What the filter asked for that this run could not back up (projects the credentials cannot see). Any gap ends
   * the run Failed, and the manifest says the run is incomplete.
   */
  gaps: string[];
  /** How many repositories ran at once (the final figure of an adaptive run). */
  lanes?: string;
}

export function counts(results: RepoResult[]) {
  const c = { ok: 0, skipped: 0, failed: 0, bytes: 0, copied: 0 };
  for (const r of results) {
    c[r.status]++;
    c.bytes += r.size ?? 0;
    if (r.status === 'ok' && r.reusedFrom) c.copied++;
  }
  return c;
}

export function buildManifest(settings: BackupSettings, plan: Plan, report: RunReport, destination: string) {
  return {
    schemaVersion: 1,
    tool: 'RepoBackup',
    taskVersion: settings.run.taskVersion,
    organization: { name: settings.organization.name, url: settings.organization.url },
    run: {
      id: settings.run.id,
      attempt: settings.run.attempt,
      buildNumber: settings.run.buildNumber,
      definition: settings.run.definition,
      startedAt: report.startedAt.toISOString(),
      finishedAt: report.finishedAt.toISOString(),
      durationMs: report.finishedAt.getTime() - report.startedAt.getTime(),
      shard: { position: settings.shard.position, total: settings.shard.total, fingerprint: plan.shardFingerprint ?? null },
      folder: plan.runFolder,
      archives: plan.archiveFolder,
      manifests: plan.manifestName.slice(0, plan.manifestName.lastIndexOf('/')),
    },
    options: {
      archiveFormat: settings.archiveFormat,
      includeLfs: settings.includeLfs,
      includeWikis: settings.includeWikis,
      verify: settings.verify,
      incremental: settings.incremental,
      filter: settings.filter.describe(),
      destination,
      encryption: settings.encryption ? { format: settings.encryption.format, recipients: settings.encryption.recipients.map((r) => r.text) } : null,
    },
    totals: { listed: plan.listed, ...counts(report.results), otherShards: plan.otherShards },
    warnings: report.warnings,
    coverage: { complete: report.gaps.length === 0, gaps: report.gaps },
    repositories: report.results.map((r) => ({
      project: r.repo.project.name,
      projectId: r.repo.project.id,
      repository: r.repo.name,
      id: r.repo.id,
      isWiki: r.repo.isWiki,
      status: r.status,
      archive: r.archive ?? null,
      sha256: r.sha256 ?? null,
      size: r.size ?? null,
      // sha256/size describe the stored (encrypted) bytes; the plaintext archive's hash is checked after decryption.
      encryption: r.archive && settings.encryption ? { format: settings.encryption.format, recipients: settings.encryption.recipients.map((x) => x.text) } : undefined,
      plaintextSha256: r.plaintextSha256,
      plaintextSize: r.plaintextSize,
      refs: r.refs ?? null,
      defaultBranch: r.repo.defaultBranch ?? null,
      head: r.head ?? null,
      lfsObjects: r.lfsObjects ?? null,
      lfsBytes: r.lfsBytes ?? null,
      missingLfsObjects: r.missingLfsObjects?.length ? r.missingLfsObjects : undefined,
      // null when Azure DevOps reported no size (Azure DevOps Server): 0 would claim an empty repository.
      sourceSize: r.repo.sizeUnknown ? null : r.repo.size,
      mirrorBytes: r.mirrorBytes ?? null,
      refsDigest: r.refsDigest ?? null,
      reusedFrom: r.reusedFrom,
      reusedFromRun: r.reusedFromRun,
      error: r.error ?? null,
      durationMs: r.durationMs,
    })),
  };
}

export { formatBytes };

export function summaryMarkdown(settings: BackupSettings, plan: Plan, report: RunReport, destination: string, manifestStored?: string): string {
  const c = counts(report.results);
  const seconds = ((report.finishedAt.getTime() - report.startedAt.getTime()) / 1000).toFixed(1);
  const lines = [
    `### RepoBackup: ${c.ok} backed up, ${c.failed} failed, ${c.skipped} skipped${settings.dryRun ? ' (dry run)' : ''}${settings.incremental && !settings.dryRun ? ` (${c.copied} copied from the previous run, ${c.ok - c.copied} made)` : ''}`,
    '',
    `Organization **${settings.organization.name}** → ${destination}${settings.shard.total > 1 ? ` · job ${settings.shard.position} of ${settings.shard.total}` : ''} · ${formatBytes(c.bytes)} in ${seconds} s`,
    manifestStored ? `\nManifest: \`${manifestStored}\`` : '',
    report.lanes ? `\nParallel repositories: ${report.lanes}.` : '',
    ...report.gaps.map((g) => `\n> ❌ **Incomplete:** ${cell(g)}`),
    ...report.warnings.map((w) => `\n> ⚠️ ${cell(w)}`),
    '',
    '| Status | Project | Repository | Archive | Size | Refs | LFS objects | Time | Note |',
    '|---|---|---|---|---:|---:|---:|---:|---|',
    ...report.results.map((r) =>
      `| ${r.status === 'ok' ? '✅ ok' : r.status === 'failed' ? '❌ failed' : '⏭️ skipped'} | ${cell(r.repo.project.name)} | ${cell(r.repo.name)}${r.repo.isWiki ? ' (wiki)' : ''} | ${r.archive ? `\`${cell(r.archive.slice(plan.archiveFolder.length + 1))}\`` : ''} | ${r.size !== undefined ? formatBytes(r.size) : ''} | ${r.refs ?? ''} | ${r.lfsObjects ?? ''} | ${(r.durationMs / 1000).toFixed(1)} s | ${cell(r.reusedFrom ? `reused from ${r.reusedFromRun}` : r.error ?? '')} |`),
  ];
  return lines.join('\n') + '\n';
}

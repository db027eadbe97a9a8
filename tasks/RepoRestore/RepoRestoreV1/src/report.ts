/** What a restore did, and the markdown summary attached to the run. */
import { ArchiveFormat } from '../../../common/src/archive';
import { cell, formatBytes } from '../../../common/src/format';
import type { VerifyReport, VerifyStatus } from './verify';

export type RefKind = 'branches' | 'tags' | 'notes' | 'other';

export function refKind(ref: string): RefKind {
  if (ref.startsWith('refs/heads/')) return 'branches';
  if (ref.startsWith('refs/tags/')) return 'tags';
  if (ref.startsWith('refs/notes/')) return 'notes';
  return 'other';
}

export interface RestoreReport {
  /** What was asked for, e.g. `Team Alpha/api (newest manifest)` or the archive path. */
  requested?: string;
  startedAt: Date;
  finishedAt?: Date;
  /** The archive path relative to the source root. */
  archive?: string;
  manifest?: string;
  format?: ArchiveFormat;
  /** The backed-up repository, as the manifest names it. */
  source?: { project: string; repository: string; isWiki: boolean };
  bytes?: number;
  sha256?: string;
  /** Where the SHA-256 values the archive matched came from. */
  checksums: string[];
  target?: {
    project: string;
    repository: string;
    id?: string;
    url?: string;
    /** Before the restore: missing (then created), empty, or non-empty (allowNonEmpty). */
    state: 'missing' | 'created' | 'empty' | 'non-empty';
    existingRefs?: number;
  };
  head?: string;
  /** Where the repository was in the archive: its root, or its one top folder (a bare clone zipped with its folder). */
  layout?: string;
  /** Ref kinds a mirror backup has and this archive lacks (e.g. a bare clone has no notes or pull request refs). */
  notInArchive?: string[];
  /** The target's default branch after the restore. */
  defaultBranch?: string;
  refs: {
    inArchive: number;
    /** Created or updated on the target. */
    pushed: number;
    /** Already there with the same object id. */
    upToDate: number;
    byKind: Record<RefKind, number>;
    skippedPull: string[];
    rejected: Array<{ ref: string; reason: string }>;
    /** The target listed every restored ref at the archive's object id afterwards. */
    verified: boolean;
  };
  lfs: { objects: number; bytes: number; missing: string[]; pushed: boolean };
  warnings: string[];
  /** The archive was downloaded, verified, extracted and checked. */
  checked: boolean;
  /** Whether anything was written to Azure DevOps (repository created, LFS objects or refs pushed). */
  targetTouched: boolean;
  error?: string;
}

const code = (s: string) => `\`${s.replace(/`/g, "'")}\``;

export function summaryMarkdown(report: RestoreReport, sourceDescription: string): string {
  const r = report;
  const ok = !r.error;
  const target = r.target ? `${r.target.project}/${r.target.repository}` : '(target)';
  const from = r.source ? `${r.source.project}/${r.source.repository}` : r.archive ? r.archive.split('/').slice(-2).join('/') : r.requested ?? '(archive)';
  const restored = r.refs.pushed + r.refs.upToDate;
  const seconds = r.finishedAt ? ((r.finishedAt.getTime() - r.startedAt.getTime()) / 1000).toFixed(1) : '?';
  const lines: string[] = [
    `### RepoRestore: ${ok ? (r.warnings.length ? '⚠️' : '✅') : '❌'} ${cell(from)} → ${cell(target)}`,
    '',
  ];
  if (r.error) lines.push(`**Failed:** ${cell(r.error)}`, '', r.targetTouched ? '> The target repository was changed before the failure; see the counts below.' : '> The target repository was not created or changed.', '');
  lines.push(
    `Source: ${cell(sourceDescription)}${r.archive ? ` · archive ${code(r.archive)}` : ''}${r.manifest ? ` (from manifest ${code(r.manifest)})` : ''}`,
  );
  if (r.sha256) {
    lines.push('', `Archive: ${formatBytes(r.bytes ?? 0)}, SHA-256 ${code(r.sha256)} ${r.checksums.length ? `verified against ${r.checksums.map(cell).join(' and ')}` : '**not verified** (no checksum stored)'}`);
  }
  if (r.target) {
    const state = { missing: 'does not exist', created: 'created by this run', empty: 'existed, empty', 'non-empty': `existed with ${r.target.existingRefs ?? '?'} refs` }[r.target.state];
    lines.push('', `Target: **${cell(target)}** — ${state}${r.defaultBranch ? ` · default branch ${code(r.defaultBranch)}` : ''}`);
  }
  if (r.checked) {
    lines.push('', '| | |', '|---|---|',
      `| Refs in the archive | ${r.refs.inArchive} |`,
      `| Refs restored | ${restored} (branches ${r.refs.byKind.branches}, tags ${r.refs.byKind.tags}, notes ${r.refs.byKind.notes}, other ${r.refs.byKind.other})${r.refs.upToDate ? `; ${r.refs.upToDate} of them were already there` : ''}${r.refs.verified ? ' — verified on the target' : ''} |`,
      `| LFS objects restored | ${r.lfs.pushed ? r.lfs.objects : 0} of ${r.lfs.objects} (${formatBytes(r.lfs.bytes)})${r.lfs.missing.length ? `; ${r.lfs.missing.length} referenced but missing from the backup` : ''} |`,
      ...(r.layout ? [`| Repository in the archive | ${cell(r.layout)} |`] : []),
      ...(r.notInArchive?.length ? [`| Not in the archive | ${cell(r.notInArchive.join(', '))} (nothing to restore: the archive was made without them, e.g. by git clone --bare) |`] : []),
      `| Skipped | ${r.refs.skippedPull.length ? `${r.refs.skippedPull.length} pull request ref(s) (${code('refs/pull/*')}): Azure DevOps owns them and refuses pushes; pull requests are not part of a git backup` : 'nothing'} |`,
      `| Time | ${seconds} s |`,
    );
  }
  if (r.refs.rejected.length) {
    lines.push('', `**${r.refs.rejected.length} ref(s) not restored:**`, '');
    for (const x of r.refs.rejected.slice(0, 50)) lines.push(`- ${code(x.ref)}: ${cell(x.reason)}`);
    if (r.refs.rejected.length > 50) lines.push(`- … and ${r.refs.rejected.length - 50} more`);
  }
  for (const w of r.warnings) lines.push('', `> ⚠️ ${cell(w)}`);
  return lines.join('\n') + '\n';
}

const STATUS_ICON: Record<VerifyStatus, string> = { identical: '✅', behind: '✅', diverged: '⚠️', deleted: '🚨', corrupt: '❌', failed: '⚠️', skipped: '⏭️' };

/** The restore drill's summary: every repository with its status. */
export function verifySummaryMarkdown(report: VerifyReport, outcome: { outcome: string; message: string }): string {
  const icon = outcome.outcome === 'Succeeded' ? '✅' : outcome.outcome === 'Failed' ? '❌' : '⚠️';
  const lines = [`### RepoRestore restore drill (mode: verify): ${icon} ${cell(outcome.message)}`, ''];
  lines.push(`Source: ${cell(report.source)}${report.manifests.length ? ` · manifest${report.manifests.length > 1 ? 's' : ''} ${report.manifests.map(code).join(', ')}` : ''} · live: ${cell(report.organization)} · repository: ${code(report.filter || '*/*')}`, '');
  lines.push('Each archive was downloaded and its SHA-256 checked, extracted, checked with `git fsck` and its LFS objects re-hashed, then its refs were compared with the live repository (`git ls-remote`). Nothing was created or pushed.', '');
  const deleted = report.repositories.filter((r) => r.status === 'deleted');
  if (deleted.length) lines.push(`> 🚨 **${deleted.length} live repositor${deleted.length === 1 ? 'y is' : 'ies are'} gone**: ${deleted.slice(0, 20).map((r) => cell(`${r.project}/${r.repository}`)).join(', ')}${deleted.length > 20 ? ', …' : ''}. The backup is the only copy.`, '');
  if (report.repositories.length) {
    lines.push('| repository | status | details |', '|---|---|---|');
    for (const r of report.repositories) lines.push(`| ${cell(`${r.project}/${r.repository}`)} | ${STATUS_ICON[r.status]} ${r.status} | ${cell(r.details)} |`);
  }
  for (const w of report.warnings) lines.push('', `> ⚠️ ${cell(w)}`);
  lines.push('', 'Statuses: **identical** every ref equal · **behind** the live repository only moved forward (proven by ancestry) · **diverged** a ref was rewritten or deleted since the backup · **deleted** the live repository is gone · **corrupt** hash, extraction, fsck or LFS check failed · **failed** could not be checked · **skipped** the backup left it out by design (e.g. disabled in Azure DevOps), nothing to check.');
  return lines.join('\n') + '\n';
}

/**
 * Discover → plan: which repositories this job backs up, which it skips and why, and the name each archive gets.
 * Pure functions over the REST answer, so they are tested without a server.
 */
import { createHash } from 'crypto';
import { ArchiveFormat, archiveExtension } from '../../../common/src/archive';
import { RepoInfo } from '../../../common/src/devops';
import { RepoFilter } from './filter';

export interface PlannedRepo {
  repo: RepoInfo;
  /** Archive path relative to the destination root. */
  archive: string;
}

export interface SkippedRepo {
  repo: RepoInfo;
  reason: string;
}

export interface Plan {
  /** Run folder relative to the destination root, e.g. `contoso/2026-11-26/1234.1`. */
  runFolder: string;
  manifestName: string;
  selected: PlannedRepo[];
  skipped: SkippedRepo[];
  /** Matched by the filter but backed up by another job of the phase. */
  otherShards: number;
  /** Repositories the organization listed (before filtering). */
  listed: number;
}

export interface PlanInput {
  repos: RepoInfo[];
  filter: RepoFilter;
  includeWikis: boolean;
  format: ArchiveFormat;
  shard: { position: number; total: number };
  organization: string;
  runId: string;
  attempt: number;
  startedAt: Date;
}

export function makePlan(input: PlanInput): Plan {
  const { shard } = input;
  const runFolder = [
    safeSegment(input.organization),
    input.startedAt.toISOString().slice(0, 10),
    safeSegment(`${input.runId}.${input.attempt}`),
  ].join('/');
  const manifestName = `${runFolder}/${shard.total > 1 ? `manifest.job-${shard.position}-of-${shard.total}.json` : 'manifest.json'}`;
  const matched = input.repos
    .filter((r) => input.includeWikis || !r.isWiki)
    .filter((r) => input.filter.matches(r.project.name, r.name));
  const mine = matched.filter((r) => shardOf(r, shard.total) === shard.position);
  const names = archiveNames(mine, input.format);
  const selected: PlannedRepo[] = [];
  const skipped: SkippedRepo[] = [];
  for (const repo of mine) {
    if (repo.isDisabled) skipped.push({ repo, reason: 'repository is disabled in Azure DevOps (it cannot be cloned)' });
    else selected.push({ repo, archive: `${runFolder}/${names.get(repo.id)}` });
  }
  // Largest first: the long clones start early and the small ones fill the gaps.
  selected.sort((a, b) => b.repo.size - a.repo.size || a.archive.localeCompare(b.archive));
  return { runFolder, manifestName, selected, skipped, otherShards: matched.length - mine.length, listed: input.repos.length };
}

/** The 1-based job that backs up `repo` when `total` jobs share the work: a stable hash of the repository id. */
export function shardOf(repo: Pick<RepoInfo, 'id'>, total: number): number {
  if (total <= 1) return 1;
  const h = createHash('sha256').update(repo.id.toLowerCase()).digest();
  return (h.readUInt32BE(0) % total) + 1;
}

/**
 * A name segment fit for Blob storage and for file systems (Windows shares included): no control characters,
 * no reserved characters, no trailing dot or space, at most 200 characters. Readable names are kept as they are.
 */
export function safeSegment(name: string): string {
  let s = name.normalize('NFC').replace(/[\u0000-\u001f\u007f\\/:*?"<>|]/g, '_').replace(/[. ]+$/, '');
  if (s.length > 200) s = s.slice(0, 200);
  if (!s || s === '.' || s === '..') s = '_';
  return s;
}

/** `project/repo.ext` for each repository; the repository id is added where two names would collide. */
export function archiveNames(repos: RepoInfo[], format: ArchiveFormat): Map<string, string> {
  const ext = archiveExtension(format);
  const base = (r: RepoInfo) => `${safeSegment(r.project.name)}/${safeSegment(r.name)}`;
  const counts = new Map<string, number>();
  for (const r of repos) counts.set(base(r).toLowerCase(), (counts.get(base(r).toLowerCase()) ?? 0) + 1);
  const names = new Map<string, string>();
  for (const r of repos) {
    const b = base(r);
    names.set(r.id, (counts.get(b.toLowerCase())! > 1 ? `${b}_${r.id}` : b) + `.${ext}`);
  }
  return names;
}

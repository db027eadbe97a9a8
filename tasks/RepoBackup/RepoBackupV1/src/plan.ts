/**
 * Discover → plan: which repositories this job backs up, which it skips and why, and the name each archive gets.
 * Pure functions over the REST answer, so they are tested without a server.
 */
import { createHash } from 'crypto';
import { ArchiveFormat, archiveExtension } from '../../../common/src/archive';
import { TokenScope, UntrustedHostError } from '../../../common/src/credentials';
import { RepoInfo } from '../../../common/src/devops';
import { MANIFESTS_PREFIX } from '../../../common/src/sources';
import { RepoFilter } from './filter';

export interface PlannedRepo {
  repo: RepoInfo;
  /** Archive path relative to the destination root. */
  archive: string;
}

export interface SkippedRepo {
  repo: RepoInfo;
  reason: string;
  /**
   * The repository was meant to be backed up and could not be now (in maintenance): the run warns, so that it does
   * not end Succeeded over it. A disabled repository is the owner's choice and is not a warning.
   */
  warn?: boolean;
  /** The repository is missing from the backup for a reason a setting fixes: the run ends Failed with this message. */
  gap?: string;
}

export interface Plan {
  /**
   * The run's own path, the same in every job of the run: `<org>/<yyyy-mm-dd>/<buildId>.<jobAttempt>`, e.g.
   * `contoso/2026-11-26/1234.1`. Its archives are under `archives/<runFolder>/`, its manifests under
   * `manifests/<runFolder>/` (see RUN_LAYOUT).
   */
  runFolder: string;
  /** `archives/<runFolder>`: where this run's archives go. */
  archiveFolder: string;
  /** `manifests/<runFolder>/manifest.json` (`manifest.job-<n>-of-<N>.json` when sharded). */
  manifestName: string;
  selected: PlannedRepo[];
  skipped: SkippedRepo[];
  /** Matched by the filter but backed up by another job of the phase. */
  otherShards: number;
  /** Repositories the organization listed (before filtering). */
  listed: number;
  /**
   * When sharded: a short hash of what the shard assignment depends on (the ids and size classes of the matched
   * repositories of 1 MiB or more, and the number of jobs). Jobs of one run that report different values listed
   * different organizations (a repository created, deleted or grown across a size class in between).
   */
  shardFingerprint?: string;
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
  /** When the run started: System.PipelineStartTime (see runStart), the same for every job; else this job's clock. */
  startedAt: Date;
  /** Where the token may go: a repository whose clone URL is elsewhere is not cloned (a gap naming trustedHosts). */
  tokenScope?: TokenScope;
}

/**
 * Top-level prefixes of the destination: archives and manifests live apart, so that a storage lifecycle policy
 * (which selects blobs by prefix, not by name ending) can tier the archives to Archive while the manifests stay
 * online for restores. Backups written before this layout keep `<org>/<date>/<run>/` with both inside; readers
 * (Source.listManifests, restore by the `archive` path a manifest records) handle both.
 */
export const RUN_LAYOUT = { archives: 'archives', manifests: MANIFESTS_PREFIX } as const;

export function makePlan(input: PlanInput): Plan {
  const { shard } = input;
  const runFolder = [
    safeSegment(input.organization),
    input.startedAt.toISOString().slice(0, 10),
    safeSegment(`${input.runId}.${input.attempt}`),
  ].join('/');
  const archiveFolder = `${RUN_LAYOUT.archives}/${runFolder}`;
  const manifestName = `${RUN_LAYOUT.manifests}/${runFolder}/${shard.total > 1 ? `manifest.job-${shard.position}-of-${shard.total}.json` : 'manifest.json'}`;
  const matched = input.repos
    .filter((r) => input.includeWikis || !r.isWiki)
    .filter((r) => input.filter.matches(r.project.name, r.name));
  const assignment = shard.total > 1 ? assignShards(matched, shard.total) : undefined;
  const mine = assignment ? matched.filter((r) => assignment.shards.get(r.id) === shard.position) : matched;
  // Names over every matched repository, not only this shard's: two jobs never pick the same name for different repositories.
  const names = archiveNames(matched, input.format);
  const selected: PlannedRepo[] = [];
  const skipped: SkippedRepo[] = [];
  for (const repo of mine) {
    if (repo.isDisabled) skipped.push({ repo, reason: 'repository is disabled in Azure DevOps (it cannot be cloned)' });
    else if (repo.isInMaintenance) {
      skipped.push({ repo, warn: true, reason: 'repository is in maintenance in Azure DevOps (isInMaintenance) and cannot be cloned now: it is NOT in this backup; run the backup again once the maintenance is over' });
    } else if (input.tokenScope && !input.tokenScope.allows(repo.remoteUrl)) {
      const reason = new UntrustedHostError(repo.remoteUrl, input.tokenScope, 'so it was NOT cloned and is not in this backup', 'its clone URL').message;
      skipped.push({ repo, warn: true, reason, gap: `${repo.project.name}/${repo.name}${repo.isWiki ? ' (wiki)' : ''}: ${reason}` });
    } else selected.push({ repo, archive: `${archiveFolder}/${names.get(repo.id)}` });
  }
  // Largest first: the long clones start early and the small ones fill the gaps.
  selected.sort((a, b) => b.repo.size - a.repo.size || a.archive.localeCompare(b.archive));
  return {
    runFolder, archiveFolder, manifestName, selected, skipped, otherShards: matched.length - mine.length, listed: input.repos.length,
    ...(assignment ? { shardFingerprint: assignment.fingerprint } : {}),
  };
}

/**
 * When the run started, for the date segment of its folder. Every job of a run (`strategy: parallel`, jobs that
 * queue for hours, past midnight UTC) must pick the same folder, so the date comes from what all jobs share:
 * `System.PipelineStartTime`, which Azure Pipelines sets to the run's start as a local time with its UTC offset,
 * e.g. `2026-11-27 23:59:58+00:00` (ISO 8601 with a `T`, fractions of a second or `Z` are read as well). Only when
 * it is missing or unreadable does this job's own clock decide (`from: 'clock'`); a sharded run then says so.
 */
export function runStart(pipelineStartTime: string | undefined, clock: Date): { at: Date; from: 'System.PipelineStartTime' | 'clock' } {
  const at = parsePipelineTime(pipelineStartTime);
  return at ? { at, from: 'System.PipelineStartTime' } : { at: clock, from: 'clock' };
}

/**
 * Reads System.PipelineStartTime for main.ts: returns the run's start (for `settings.run.startedAt`) and, in a
 * sharded run without the variable, warns that its jobs may write to different date folders.
 */
export function pipelineStartOf(
  host: { variable(name: string): string | undefined; warn(message: string): void },
  clock: Date,
  shard: { total: number },
): Date {
  const raw = host.variable('System.PipelineStartTime');
  const start = runStart(raw, clock);
  if (start.from === 'clock' && shard.total > 1) {
    host.warn(`System.PipelineStartTime is ${raw ? `unreadable ('${raw}')` : 'not set'}: the run folder's date is taken from this job's clock (${clock.toISOString().slice(0, 10)} UTC). Jobs of this run that start on another UTC day write to another date folder; find their manifests by Build.BuildId.`);
  }
  return start.at;
}

/** `yyyy-mm-dd[ T]hh:mm[:ss[.fff]][Z|±hh[:]mm]`; without an offset the time is taken as UTC. */
function parsePipelineTime(raw: string | undefined): Date | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i.exec(raw?.trim() ?? '');
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s = '0', frac = '0', zone] = m;
  let offsetMin = 0;
  if (zone && zone.toUpperCase() !== 'Z') {
    const digits = zone.replace(':', '');
    offsetMin = (zone[0] === '-' ? -1 : 1) * (Number(digits.slice(1, 3)) * 60 + Number(digits.slice(3, 5) || '0'));
  }
  const ms = Date.UTC(+y, +mo - 1, +d, +h, +mi, +s, Number(`0.${frac}`) * 1000) - offsetMin * 60_000;
  const at = new Date(ms);
  // Date.UTC rolls 2026-02-30 over to March: refuse what is not a real date and time.
  const check = new Date(Date.UTC(+y, +mo - 1, +d, +h, +mi, +s));
  if (Number.isNaN(ms) || check.getUTCMonth() !== +mo - 1 || check.getUTCDate() !== +d || check.getUTCHours() !== +h || +mi > 59 || +s > 59) return undefined;
  return at;
}

/**
 * The log line for a listing whose repositories have no size (Azure DevOps Server lists none), or undefined when
 * every one has. Without sizes the free-space check before a clone cannot reserve the mirror's size, and the jobs
 * of a sharded run share repositories by a stable hash of their ids (by count), not by bytes.
 */
export function unknownSizeNote(repos: Array<Pick<RepoInfo, 'sizeUnknown'>>, shardTotal: number): string | undefined {
  const unknown = repos.filter((r) => r.sizeUnknown).length;
  if (unknown === 0) return undefined;
  return `Azure DevOps reports no repository sizes for ${unknown === repos.length ? 'any' : `${unknown} of the ${repos.length}`} repositor${unknown === 1 ? 'y' : 'ies'} (Azure DevOps Server lists repositories without them): ` +
    'the free-space check before each clone reserves only the 16 MiB floor for those (a disk that fills up is reported as such when it happens), ' +
    (shardTotal > 1 ? `the ${shardTotal} jobs share them by a stable hash of their ids (by count, not by bytes), ` : '') +
    'and they are cloned in name order instead of largest first.';
}

/** Repositories below this listed size are sharded by hash alone; from it on, by size class. */
export const SHARD_BY_SIZE_FROM = 1 << 20;

/** The 1-based job a stable hash of the repository id gives, when `total` jobs share the work. */
export function shardOf(repo: Pick<RepoInfo, 'id'>, total: number): number {
  if (total <= 1) return 1;
  const h = createHash('sha256').update(repo.id.toLowerCase()).digest();
  return (h.readUInt32BE(0) % total) + 1;
}

/** Power-of-two size class of a repository of at least SHARD_BY_SIZE_FROM bytes: 0 for 1–2 MiB, 1 for 2–4 MiB, … */
export function sizeClass(size: number): number {
  return Math.max(0, Math.floor(Math.log2(size / SHARD_BY_SIZE_FROM)));
}

/**
 * Which of `total` jobs backs up each repository, balanced by bytes (the listed `size`), computed by every job
 * from its own listing with nothing shared between jobs:
 *  - repositories under 1 MiB go by a stable hash of their id (`shardOf`): they are many, their count evens out,
 *    and creating or deleting one never moves another;
 *  - larger ones are dealt out by size class, largest class first (ties by id), each to the job with the fewest
 *    class units so far (ties to the lowest job): greedy LPT, which spreads the big repositories over the jobs and
 *    keeps the largest shard within about 4/3 of the best possible (up to the factor two of a size class).
 * The assignment depends only on the ids and power-of-two size classes of the matched repositories of 1 MiB or
 * more (and on `total`): pushes between the jobs' listings change nothing unless a repository crosses a power of
 * two; a large repository created, deleted or crossing a class in between can move other large ones to another
 * job for that run (`fingerprint` then differs between the jobs' manifests).
 */
export function assignShards(repos: Array<Pick<RepoInfo, 'id' | 'size'>>, total: number): { shards: Map<string, number>; fingerprint: string } {
  const shards = new Map<string, number>();
  const large: Array<{ id: string; key: string; cls: number }> = [];
  for (const r of repos) {
    if (total <= 1) shards.set(r.id, 1);
    else if (r.size >= SHARD_BY_SIZE_FROM) large.push({ id: r.id, key: r.id.toLowerCase(), cls: sizeClass(r.size) });
    else shards.set(r.id, shardOf(r, total));
  }
  large.sort((a, b) => b.cls - a.cls || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const load = new Array<number>(Math.max(1, total)).fill(0);
  const hash = createHash('sha256').update(`${total}\n`);
  for (const r of large) {
    let best = 0;
    for (let j = 1; j < load.length; j++) if (load[j] < load[best]) best = j;
    load[best] += 2 ** r.cls;
    shards.set(r.id, best + 1);
    hash.update(`${r.key}:${r.cls}\n`);
  }
  return { shards, fingerprint: hash.digest('hex').slice(0, 12) };
}

/**
 * A name segment fit for Blob storage and for file systems (Windows shares included): no control characters,
 * no reserved characters, no trailing dot or space, at most 200 characters. Readable names are kept as they are.
 */
export function safeSegment(name: string): string {
  let s = name.normalize('NFC').replace(/[\u0000-\u001f\u007f\\/:*?"<>|]/g, '_').replace(/[. ]+$/, '');
  if (s.length > 200) s = s.slice(0, 200);
  if (!s || s === '.' || s === '..') s = '_';
  // Windows' device names (CON, AUX, NUL, COM1, LPT1, … with or without an extension) are no file or folder name.
  if (WINDOWS_DEVICE.test(s)) s = `${s}_`;
  return s;
}

const WINDOWS_DEVICE = /^(CON|PRN|AUX|NUL|COM[0-9\u00b9\u00b2\u00b3]|LPT[0-9\u00b9\u00b2\u00b3])(\..*)?$/i;

/**
 * The key under which two names are the same file on a case-insensitive file system (NTFS, APFS, SMB shares):
 * upper- then lower-cased, so that letters with one upper case but two lower cases (`ſ`/`s`, `ı`/`i`, the Kelvin
 * sign) fall together as Windows' upcase table puts them. It joins a few names no file system joins (`ß`/`ss`);
 * they get the id too, which costs nothing.
 */
export function caseFoldKey(name: string): string {
  return name.normalize('NFC').toUpperCase().toLowerCase();
}

/**
 * `project/repo.ext` for each repository; the repository id is added where two names would collide, also on a
 * case-insensitive file system (`caseFoldKey`). Temporary mirror folders are named by index, never by name.
 */
export function archiveNames(repos: RepoInfo[], format: ArchiveFormat): Map<string, string> {
  const ext = archiveExtension(format);
  const base = (r: RepoInfo) => `${safeSegment(r.project.name)}/${safeSegment(r.name)}`;
  const counts = new Map<string, number>();
  for (const r of repos) counts.set(caseFoldKey(base(r)), (counts.get(caseFoldKey(base(r))) ?? 0) + 1);
  const names = new Map<string, string>();
  for (const r of repos) {
    const b = base(r);
    names.set(r.id, (counts.get(caseFoldKey(b))! > 1 ? `${b}_${r.id}` : b) + `.${ext}`);
  }
  return names;
}

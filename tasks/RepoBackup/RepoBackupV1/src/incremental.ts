/**
 * Incremental runs: the newest complete previous run of the organization at the destination, and per repository
 * whether its archive can be copied from there (refs unchanged, nothing that shapes the archive changed) or must
 * be made in full. Reads through a Source (list + read); knows nothing of how the copy is made.
 */
import { createHash } from 'crypto';
import { ArchiveFormat } from '../../../common/src/archive';
import { RunError } from '../../../common/src/errors';
import { Ref } from '../../../common/src/git';
import { Logger } from '../../../common/src/host';
import { ArchivedError, MANIFESTS_PREFIX, ManifestInfo, readChecked, Source } from '../../../common/src/sources';

/**
 * sha256 of what a mirror clone takes: the sorted `<oid> <ref>` lines of every ref under `refs/` (peeled `^{}`
 * lines left out), plus `ref: <target> HEAD` when HEAD points at one of them (so a default-branch change counts;
 * an unborn HEAD, as in an empty repository, is left out on both sides). The same value from `git ls-remote
 * --symref` of the remote and from for-each-ref + symbolic-ref of the mirror of an unchanged repository.
 */
export function refsDigest(refs: Ref[], head?: string): string {
  const names = new Set<string>();
  const lines: string[] = [];
  for (const r of refs) {
    if (!r.name.startsWith('refs/') || r.name.endsWith('^{}')) continue;
    names.add(r.name);
    lines.push(`${r.oid} ${r.name}`);
  }
  // Byte order (UTF-8), not UTF-16 order: the same on every platform and for any ref name.
  lines.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  if (head && names.has(head)) lines.push(`ref: ${head} HEAD`);
  return createHash('sha256').update(lines.map((l) => `${l}\n`).join('')).digest('hex');
}

/** What shapes an archive's bytes besides the repository: a change of any of these means every archive is made anew. */
export interface ArchiveShape {
  archiveFormat: ArchiveFormat;
  includeLfs: boolean;
  /** `age:<recipients sorted>`, or undefined when archives are not encrypted. */
  encryption?: string;
  /**
   * Whether the mirror was checked (input verify) before it was archived. Not in the bytes, but in what they
   * promise: a run that verifies does not adopt an archive that was never verified. Undefined counts as true.
   */
  verify?: boolean;
}

export function encryptionShape(encryption: { format: string; recipients: Array<string | { text: string }> } | null | undefined): string | undefined {
  if (!encryption) return undefined;
  return `${encryption.format}:${encryption.recipients.map((r) => (typeof r === 'string' ? r : r.text)).sort().join(',')}`;
}

/** One entry of a previous manifest, as buildManifest writes it (only what reuse needs). */
export interface PreviousEntry {
  id: string;
  isWiki?: boolean;
  project: string;
  repository: string;
  status: string;
  archive: string | null;
  sha256: string | null;
  size: number | null;
  refs: number | null;
  head?: string | null;
  lfsObjects: number | null;
  lfsBytes?: number | null;
  mirrorBytes?: number | null;
  plaintextSha256?: string | null;
  plaintextSize?: number | null;
  refsDigest?: string | null;
}

export type Decision =
  | { kind: 'reuse'; entry: PreviousEntry; run: string }
  /** `warn`: the previous run should have been usable (a warning); otherwise an info line. */
  | { kind: 'full'; reason: string; warn: boolean };

interface Held {
  entry: PreviousEntry;
  shape: ArchiveShape;
}

/** The previous run: its folder, and its manifest entries by repository id (and wiki flag). */
export class Previous {
  constructor(
    /** `<org>/<date>/<run>`. */
    readonly folder: string,
    readonly manifests: string[],
    private readonly entries: Map<string, Held>,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** `<run>` of `<org>/<date>/<run>`: the build id and attempt. */
  get run(): string {
    return this.folder.slice(this.folder.lastIndexOf('/') + 1);
  }

  static key(id: string, isWiki?: boolean): string {
    return `${id.toLowerCase()}${isWiki ? '|wiki' : ''}`;
  }

  entry(id: string, isWiki?: boolean): PreviousEntry | undefined {
    return this.entries.get(Previous.key(id, isWiki))?.entry;
  }

  /** Reuse the previous archive, or make it anew (and why), given the digest of the remote's refs now. */
  decide(repo: { id: string; isWiki?: boolean }, digest: string, shape: ArchiveShape): Decision {
    const held = this.entries.get(Previous.key(repo.id, repo.isWiki));
    if (!held) return { kind: 'full', reason: `not in the previous run ${this.run}`, warn: false };
    const { entry } = held;
    const changed = shapeChange(held.shape, shape);
    if (changed) return { kind: 'full', reason: `${changed} since the previous run ${this.run}`, warn: false };
    if (entry.status !== 'ok' || !entry.archive || !entry.sha256 || typeof entry.size !== 'number') {
      return { kind: 'full', reason: `the previous run ${this.run} has no usable archive of it (status ${entry.status})`, warn: false };
    }
    if (!entry.refsDigest) return { kind: 'full', reason: `the previous run ${this.run} recorded no refs digest for it (made by an older version)`, warn: false };
    if (entry.refsDigest !== digest) return { kind: 'full', reason: `refs changed since the previous run ${this.run}`, warn: false };
    return { kind: 'reuse', entry, run: this.run };
  }
}

function shapeChange(before: ArchiveShape, now: ArchiveShape): string | undefined {
  if (before.archiveFormat !== now.archiveFormat) return `archiveFormat changed (${before.archiveFormat} → ${now.archiveFormat})`;
  if (before.includeLfs !== now.includeLfs) return `includeLfs changed (${before.includeLfs} → ${now.includeLfs})`;
  if ((before.encryption ?? '') !== (now.encryption ?? '')) return 'encryption (encryptionRecipients) changed';
  if (now.verify !== false && before.verify === false) return 'verify is on now but was off (the previous archive was never verified)';
  return undefined;
}

const JOB = /manifest\.job-(\d+)-of-(\d+)(~\d+)?\.json$/;
const MAX_FOLDERS_TRIED = 10;

/** `<org>/<date>/<run>` of a manifest name in either layout (`manifests/<org>/<date>/<run>/…`, or `<org>/<date>/<run>/…`). */
export function runFolderOf(manifest: string): string | undefined {
  const parts = manifest.split('/');
  const dirs = parts.slice(0, -1);
  if (dirs[0] === MANIFESTS_PREFIX && dirs.length === 4) return dirs.slice(1).join('/');
  if (dirs.length === 3 && dirs[0] !== MANIFESTS_PREFIX) return dirs.join('/');
  return undefined;
}

interface ReadManifest {
  name: string;
  json: {
    organization?: { name?: string };
    run?: { shard?: { position?: number; total?: number } };
    options?: { archiveFormat?: ArchiveFormat; includeLfs?: boolean; verify?: boolean; encryption?: { format: string; recipients: string[] } | null };
    coverage?: { complete?: boolean };
    repositories?: PreviousEntry[];
  };
}

/**
 * The newest complete previous run of `organization` (its path segment `orgSegment`) at the source: a run folder
 * other than `currentFolder` holding the manifest of every job of the run (`manifest.json`, or
 * `manifest.job-i-of-N.json` for every i), none of them incomplete (`coverage.complete: false`). Run folders are
 * tried newest first (by their date, then their newest manifest); an incomplete or unreadable one is passed over with an info line.
 * Undefined when there is none. A refused listing (no `l` right, a storage firewall) throws a RunError.
 */
export async function findPreviousRun(
  source: Source, organization: string, orgSegment: string, currentFolder: string, log: Logger, signal?: AbortSignal,
): Promise<Previous | undefined> {
  let listed: ManifestInfo[];
  try {
    listed = await source.listManifests(signal, [`${MANIFESTS_PREFIX}/${orgSegment}/`, `${orgSegment}/`]);
  } catch (err) {
    throw new RunError(`incremental: true needs to list the previous runs' manifests in ${source.description}, which failed: ${(err as Error).message}. ` +
      'Give the SAS list (l) and read (r) rights besides create + write (sp=rcwl; with a stored access policy, in the policy), or set incremental: false.');
  }
  const folders = new Map<string, ManifestInfo[]>();
  for (const m of listed) {
    const folder = runFolderOf(m.name);
    if (!folder || folder === currentFolder || folder.split('/')[0] !== orgSegment) continue;
    if (!folders.has(folder)) folders.set(folder, []);
    folders.get(folder)!.push(m);
  }
  // Newest first: by the run's date (the folder's `<yyyy-mm-dd>`), then by its newest manifest.
  const newest = (list: ManifestInfo[]) => Math.max(...list.map((m) => m.lastModified.getTime()));
  const date = (folder: string) => folder.split('/')[1] ?? '';
  const ordered = [...folders.entries()].sort((a, b) =>
    (date(a[0]) < date(b[0]) ? 1 : date(a[0]) > date(b[0]) ? -1 : 0) || newest(b[1]) - newest(a[1]) || (a[0] < b[0] ? 1 : -1));
  for (const [folder, list] of ordered.slice(0, MAX_FOLDERS_TRIED)) {
    const why = await completeness(source, organization, list, signal);
    if (typeof why === 'string') {
      log.info(`Incremental: the run folder ${folder} is passed over: ${why}.`);
      continue;
    }
    const entries = new Map<string, Held>();
    for (const m of why) {
      const o = m.json.options ?? {};
      const shape: ArchiveShape = { archiveFormat: o.archiveFormat ?? 'zip', includeLfs: o.includeLfs ?? true, encryption: encryptionShape(o.encryption), verify: o.verify };
      for (const e of m.json.repositories ?? []) {
        if (!e || typeof e.id !== 'string') continue;
        const key = Previous.key(e.id, e.isWiki);
        const had = entries.get(key);
        // A repository listed twice (a rerun's ~2 manifest): the ok entry wins.
        if (!had || (had.entry.status !== 'ok' && e.status === 'ok')) entries.set(key, { entry: e, shape });
      }
    }
    return new Previous(folder, why.map((m) => m.name), entries);
  }
  return undefined;
}

/** The run's manifests when they make a complete run; else why not. */
async function completeness(source: Source, organization: string, list: ManifestInfo[], signal?: AbortSignal): Promise<ReadManifest[] | string> {
  const read: ReadManifest[] = [];
  for (const m of list) {
    try {
      read.push({ name: m.name, json: await readJson(source, m.name, signal) });
    } catch (err) {
      return `its manifest '${m.name}' cannot be read (${err instanceof ArchivedError ? 'Archive access tier' : (err as Error).message})`;
    }
  }
  const other = read.find((m) => m.json.organization?.name !== undefined && m.json.organization.name.toLowerCase() !== organization.toLowerCase());
  if (other) return `its manifest '${other.name}' is of the organization '${other.json.organization?.name}'`;
  const incomplete = read.find((m) => m.json.coverage?.complete === false);
  if (incomplete) return `its manifest '${incomplete.name}' records an incomplete run (coverage.complete: false)`;
  let total = 1;
  const positions = new Set<number>();
  for (const m of read) {
    const job = JOB.exec(m.name);
    const t = job ? Number(job[2]) : (m.json.run?.shard?.total ?? 1);
    const p = job ? Number(job[1]) : (m.json.run?.shard?.position ?? 1);
    total = Math.max(total, t);
    positions.add(p);
  }
  const missing = Array.from({ length: total }, (_, i) => i + 1).filter((p) => !positions.has(p));
  if (missing.length) return `job(s) ${missing.join(', ')} of ${total} left no manifest there`;
  return read;
}

async function readJson(source: Source, name: string, signal?: AbortSignal): Promise<ReadManifest['json']> {
  const bytes = await readChecked(await source.open(name, signal));
  const json = JSON.parse(bytes.toString('utf8'));
  if (!json || typeof json !== 'object' || !Array.isArray(json.repositories)) throw new Error('not a RepoBackup manifest');
  return json;
}

/**
 * Locate: which archive to restore and which SHA-256 values it must match. By path, or by a repository in a
 * manifest (the newest manifest that lists it, when none is named).
 */
import { ArchiveFormat } from '../../../common/src/archive';
import { RunError } from '../../../common/src/errors';
import { formatOfName } from '../../../common/src/extract';
import { Logger } from '../../../common/src/host';
import { ArchivedError, ChecksumMismatchError, ManifestInfo, NotFoundError, readChecked, Source, TooLargeError } from '../../../common/src/sources';
import { archivedMessage, BlobLocation, rehydrateHint } from './fetch';
import { Selection } from './settings';

/** One entry of a manifest's `repositories[]`, as RepoBackup@1 writes it (only the fields restore reads). */
export interface ManifestEntry {
  project: string;
  repository: string;
  id?: string;
  isWiki?: boolean;
  status: string;
  archive: string | null;
  sha256: string | null;
  size: number | null;
  refs: number | null;
  lfsObjects: number | null;
  defaultBranch?: string | null;
  missingLfsObjects?: string[];
  error?: string | null;
  /** Encrypted backups (encryptionRecipients): the age recipients and the SHA-256 of the archive before encryption. */
  encryption?: { format: string; recipients: string[] } | null;
  plaintextSha256?: string | null;
}

export interface Located {
  archive: string;
  format: ArchiveFormat;
  /** The manifest the archive was found in. */
  manifest?: string;
  entry?: ManifestEntry;
  /** Checksums the archive must match besides the one stored with the object itself. */
  expected: Array<{ sha256: string; from: string }>;
  /** Archive size the manifest recorded. */
  size?: number;
}

/** How many manifests are read, newest first, when looking for a repository without a named manifest. */
export const MAX_MANIFESTS_SEARCHED = 200;
const SHA256 = /^[0-9a-f]{64}$/;

const same = (a: string, b: string) => a.normalize('NFC').localeCompare(b.normalize('NFC'), undefined, { sensitivity: 'accent' }) === 0;

/** `warn` records a warning that makes the run end SucceededWithIssues. */
export async function locate(selection: Selection, source: Source, log: Logger, warn: (message: string) => void, signal?: AbortSignal, blob?: BlobLocation): Promise<Located> {
  if (selection.kind === 'archive') return { archive: selection.path, format: selection.format, expected: [] };
  const label = `${selection.project}/${selection.repository}`;
  if (selection.manifest) {
    const entries = await readManifest(source, selection.manifest, signal, blob);
    const entry = entries.find((e) => same(e.project, selection.project) && same(e.repository, selection.repository));
    if (!entry) {
      const listed = entries.map((e) => `${e.project}/${e.repository}`);
      throw new RunError(`Input 'repository': '${label}' is not in manifest '${selection.manifest}'. It lists ${listed.length} repositories${listed.length ? `: ${listed.slice(0, 10).join(', ')}${listed.length > 10 ? ', …' : ''}` : ''}.`);
    }
    return fromEntry(entry, selection.manifest, warn);
  }
  log.info(`Looking for the newest manifest in ${source.description} that lists ${label}`);
  const manifests = await source.listManifests(signal);
  if (manifests.length === 0) {
    throw new RunError(`${source.description} holds no manifest (manifest.json). Check sasUrl/folderPath points at the backup container or folder, or name the archive with the archive input.`);
  }
  let read = 0;
  const archived: ManifestInfo[] = [];
  /** Newer backups that list the repository without an archive (it failed that night). */
  const withoutArchive: Array<{ manifest: ManifestInfo; entry: ManifestEntry }> = [];
  for (const m of manifests.slice(0, MAX_MANIFESTS_SEARCHED)) {
    read++;
    let entries: ManifestEntry[];
    try {
      entries = await readManifest(source, m.name, signal, blob);
    } catch (err) {
      if (err instanceof ArchivedManifestError) archived.push(m);
      else warn(`Skipping manifest '${m.name}': ${(err as Error).message}`);
      continue;
    }
    const entry = entries.find((e) => same(e.project, selection.project) && same(e.repository, selection.repository));
    if (entry && !entry.archive) {
      withoutArchive.push({ manifest: m, entry });
      continue;
    }
    if (entry) {
      log.info(`Using manifest '${m.name}' (${m.lastModified.toISOString()}), the newest of ${manifests.length} that lists ${label}${withoutArchive.length ? ' with an archive' : ''}`);
      if (withoutArchive.length) {
        const newest = withoutArchive[0];
        warn(`The newest backup of ${label} (manifest '${newest.manifest.name}', ${newest.manifest.lastModified.toISOString()}) has no archive of it (status ${newest.entry.status}${newest.entry.error ? `: ${newest.entry.error}` : ''})${withoutArchive.length > 1 ? `, nor do ${withoutArchive.length - 1} more after it` : ''}; restoring the older backup from manifest '${m.name}' (${m.lastModified.toISOString()}). Name a manifest with the manifest input to choose another.`);
      }
      if (archived.length) warn(`${archived.length} newer manifest(s) could not be read because they are in the Archive access tier (e.g. '${archived[0].name}'); they were not searched.`);
      return fromEntry(entry, m.name, warn);
    }
  }
  if (withoutArchive.length) {
    const newest = withoutArchive[0];
    throw new RunError(`Every manifest that lists ${label} records no archive for it (newest: '${newest.manifest.name}', status ${newest.entry.status}${newest.entry.error ? `: ${newest.entry.error}` : ''}). There is no backup of it to restore${archived.length ? `; ${archived.length} manifest(s) in the Archive access tier were not read` : ''}.`);
  }
  if (archived.length) {
    const names = archived.slice(0, 3).map((m) => `'${m.name}'`).join(', ');
    throw new RunError(`'${label}' was not found, but ${archived.length} of the ${read} manifests in ${source.description} could not be read because they are in the Archive access tier (${names}${archived.length > 3 ? ', …' : ''}), so it may be listed there. ` +
      `There is one manifest per run folder: rehydrate the one of the backup you need (the newest is '${archived[0].name}'). ${rehydrateHint(archived[0].name, blob)} Or name the archive with the archive input.`);
  }
  throw new RunError(`Input 'repository': '${label}' is not listed in ${read === manifests.length ? `any of the ${read}` : `the newest ${read} of ${manifests.length}`} manifests in ${source.description} (newest: '${manifests[0].name}'). Check the project and repository names, or name the manifest or the archive.`);
}

/** A manifest in the Archive access tier. */
export class ArchivedManifestError extends RunError {
  constructor(readonly manifest: string, message: string) {
    super(message);
    this.name = 'ArchivedManifestError';
  }
}

function fromEntry(entry: ManifestEntry, manifest: string, warn: (message: string) => void): Located {
  const label = `${entry.project}/${entry.repository}`;
  if (!entry.archive) {
    throw new RunError(`Manifest '${manifest}' records no archive for ${label} (status ${entry.status}${entry.error ? `: ${entry.error}` : ''}). Restore it from another backup: name an older manifest with the manifest input.`);
  }
  if (entry.status !== 'ok') {
    warn(`Manifest '${manifest}' records ${label} as ${entry.status}${entry.error ? ` (${entry.error})` : ''}; restoring the archive it stored.`);
  }
  const format = formatOfName(entry.archive);
  if (!format) throw new RunError(`Manifest '${manifest}' names '${entry.archive}' for ${label}, which is not a .zip or .tar.gz archive.`);
  const expected: Located['expected'] = [];
  const sha = entry.sha256?.toLowerCase();
  if (sha && SHA256.test(sha)) expected.push({ sha256: sha, from: `manifest '${manifest}'` });
  return { archive: entry.archive, format, manifest, entry, expected, size: typeof entry.size === 'number' ? entry.size : undefined };
}

/** Reads and checks a manifest: its own stored SHA-256 when there is one, and its shape. */
export async function readManifest(source: Source, name: string, signal?: AbortSignal, blob?: BlobLocation): Promise<ManifestEntry[]> {
  let obj;
  try {
    obj = await source.open(name, signal);
  } catch (err) {
    if (err instanceof ArchivedError) throw new ArchivedManifestError(name, `Manifest ${archivedMessage(name, blob)}`);
    if (err instanceof NotFoundError) throw new RunError(`Input 'manifest': ${err.message}. Give its path relative to the container or folder root, e.g. manifests/contoso/2026-12-02/1234.1/manifest.json.`);
    throw err;
  }
  let bytes: Buffer;
  try {
    bytes = await readChecked(obj);
  } catch (err) {
    if (err instanceof TooLargeError) throw new RunError(`'${name}' is larger than ${err.maxBytes >> 20} MB; it is not a RepoBackup manifest.`);
    if (err instanceof ChecksumMismatchError) throw new RunError(`Manifest '${name}' is corrupt or was changed: its SHA-256 is ${err.actual} but ${err.from} says ${err.expected}.`);
    throw err;
  }
  let json: { tool?: unknown; repositories?: unknown };
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new RunError(`'${name}' is not a RepoBackup manifest: ${(err as Error).message}`);
  }
  if (!json || typeof json !== 'object' || !Array.isArray(json.repositories)) {
    throw new RunError(`'${name}' is not a RepoBackup manifest (it has no repositories list).`);
  }
  return (json.repositories as unknown[]).filter((e): e is ManifestEntry =>
    !!e && typeof e === 'object' && typeof (e as ManifestEntry).project === 'string' && typeof (e as ManifestEntry).repository === 'string');
}

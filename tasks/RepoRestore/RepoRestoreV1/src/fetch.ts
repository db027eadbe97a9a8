/**
 * Stage 2 of both modes: download one archive to a file while hashing it, and compare the SHA-256 with every
 * value stored at backup time (blob metadata / `.sha256` file, manifest entry). A mismatch is a CorruptArchiveError.
 */
import { createWriteStream } from 'fs';
import * as path from 'path';
import { pipeline } from 'stream/promises';
import { HashingStream } from '../../../common/src/archive';
import { AgeDecryptStream, AgeIdentity, DecryptionError } from '../../../common/src/encryption';
import { isEncryptedName } from '../../../common/src/extract';
import { errorMessage, RunError } from '../../../common/src/errors';
import { formatBytes } from '../../../common/src/format';
import { Logger } from '../../../common/src/host';
import { freeBytes } from '../../../common/src/mirror';
import { ArchivedError, NotFoundError, Source } from '../../../common/src/sources';
import { Located } from './locate';

/** The archive itself is damaged: its hash, its extraction, git fsck or an LFS object hash failed. */
export class CorruptArchiveError extends RunError {
  constructor(message: string) {
    super(message);
    this.name = 'CorruptArchiveError';
  }
}

/** Where a Blob source lives, for the `az storage blob set-tier` command a person can paste. */
export interface BlobLocation {
  account: string;
  container: string;
}

/** The storage account and container of a container URL (`https://<acct>.blob.core.windows.net/<c>`, or an emulator's `http://host:port/<acct>/<c>`). */
export function blobLocation(containerUrl: string | URL): BlobLocation | undefined {
  try {
    const u = new URL(containerUrl.toString());
    const segs = u.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (/\.blob\./i.test(u.hostname) || /\.(core\.windows\.net|azure)/i.test(u.hostname)) {
      return segs[0] ? { account: u.hostname.split('.')[0], container: segs[0] } : undefined;
    }
    return segs.length >= 2 ? { account: segs[0], container: segs[1] } : undefined;
  } catch {
    return undefined;
  }
}

const shellQuote = (v: string) => (/^[A-Za-z0-9._\/-]+$/.test(v) ? v : `"${v.replace(/(["\\$`])/g, '\\$1')}"`);

/** The command that rehydrates `blob`, and how long it takes. */
export function rehydrateHint(blob: string, where?: BlobLocation): string {
  return `Rehydrate it: az storage blob set-tier --account-name ${where ? shellQuote(where.account) : '<account>'} --container-name ${where ? shellQuote(where.container) : '<container>'} ` +
    `--name ${shellQuote(blob)} --tier Hot --rehydrate-priority Standard (up to 15 hours) or High (usually under 1 hour for blobs under 10 GB), ` +
    'then run again once the blob\'s tier shows Hot (az storage blob show … --query properties.blobTier).';
}

export function archivedMessage(blob: string, where?: BlobLocation): string {
  return `'${blob}' is in the Archive access tier: Blob storage cannot read it until it is rehydrated. ${rehydrateHint(blob, where)}`;
}

export interface FetchDeps {
  source: Source;
  log: Logger;
  progress(percent: number, text: string): void;
  signal?: AbortSignal;
  /** Free bytes in a folder (overridable for tests). */
  freeBytes?(dir: string): Promise<number>;
  /** For the rehydrate command when the archive is in the Archive tier. */
  blob?: BlobLocation;
}

export interface FetchOptions {
  allowMissingChecksum: boolean;
  /** Agent.TempDirectory, for the disk-space message. */
  tempDir: string;
  /** The archive was named by the `archive` input (messages name it). */
  byPath: boolean;
  /** Appended to a checksum mismatch, e.g. "Nothing was restored …". */
  consequence?: string;
  /** Progress range [from, to] for the download. */
  progressRange?: [number, number];
  /** age identities (input decryptionIdentity): an encrypted archive is decrypted while it downloads. */
  identities?: AgeIdentity[];
}

export interface Fetched {
  sha256: string;
  bytes: number;
  metadata: Record<string, string>;
  /** Where the matched SHA-256 values came from. */
  checksums: string[];
  /** Encrypted archives: the SHA-256 of the decrypted archive (what `file` holds). */
  plaintextSha256?: string;
}

export async function fetchArchive(located: Located, file: string, options: FetchOptions, deps: FetchDeps, warn: (m: string) => void): Promise<Fetched> {
  const { log, signal } = deps;
  let obj;
  try {
    obj = await deps.source.open(located.archive, signal);
  } catch (err) {
    if (err instanceof NotFoundError) {
      throw new RunError(`${options.byPath ? "Input 'archive': " : ''}${err.message}. Give the archive's path relative to the container or folder root, as the manifest lists it (e.g. archives/contoso/2026-12-02/1234.1/Team Alpha/api.zip).`);
    }
    if (err instanceof ArchivedError) throw new RunError(archivedMessage(located.archive, deps.blob));
    throw err;
  }
  const expected = [...located.expected];
  if (obj.sha256) expected.unshift({ sha256: obj.sha256, from: obj.sha256From ?? 'the source' });
  if (expected.length === 0) {
    if (!options.allowMissingChecksum) {
      obj.stream.destroy();
      throw new RunError(`No SHA-256 is stored for '${located.archive}' (no blob metadata sha256, no .sha256 file${located.manifest ? ', none in the manifest' : ''}), so it cannot be verified. Select it through its manifest (repository: <project>/<repo>) so the manifest's checksum is used, or set allowMissingChecksum: true to restore it unverified.`);
    }
    warn(`No SHA-256 is stored for '${located.archive}' (e.g. an archive made by hand or by the PowerShell backup script); restoring it unverified because allowMissingChecksum is true. Checked instead: git fsck --connectivity-only (every ref's history is complete) and the SHA-256 of every LFS object against its name.`);
  }
  const encrypted = isEncryptedName(located.archive) || obj.metadata.encryption === 'age' || !!located.entry?.encryption;
  if (encrypted && !options.identities?.length) {
    obj.stream.destroy();
    throw new RunError(`Input 'decryptionIdentity': is empty, but '${located.archive}' is encrypted with age${located.entry?.encryption?.recipients?.length ? ` to ${located.entry.encryption.recipients.join(', ')}` : ''}. Give the identity (AGE-SECRET-KEY-1…) of one of its recipients from a secret variable or Key Vault, e.g. decryptionIdentity: $(BackupAgeIdentity).${options.consequence ? ` ${options.consequence}` : ''}`);
  }
  const size = obj.size ?? located.size;
  if (size !== undefined) {
    // The archive, then the extracted repository (about as large: packs are stored, not recompressed).
    const need = Math.ceil(size * 2.2) + (16 << 20);
    const free = await (deps.freeBytes ?? freeBytes)(path.dirname(file));
    if (free < need) {
      obj.stream.destroy();
      throw new RunError(`Not enough disk space: the ${formatBytes(size)} archive '${located.archive}' needs about ${formatBytes(need)} to download and extract, but ${formatBytes(free)} is free in ${options.tempDir} (Agent.TempDirectory). Free space or use an agent with a larger disk.`);
    }
  }
  log.info(`Downloading '${located.archive}'${size !== undefined ? ` (${formatBytes(size)})` : ''} from ${deps.source.description}`);
  const hashing = new HashingStream();
  const started = Date.now();
  const [from, to] = options.progressRange ?? [5, 45];
  const timer = setInterval(() => {
    const pct = size ? hashing.bytes / size : 0;
    deps.progress(from + (to - from) * pct, `downloaded ${formatBytes(hashing.bytes)}${size ? ` of ${formatBytes(size)}` : ''}`);
  }, 3000);
  // Encrypted: decrypted while downloading; the plaintext is only written to this run's temp file.
  const decrypting = encrypted ? new AgeDecryptStream(options.identities!) : undefined;
  try {
    if (decrypting) await pipeline(obj.stream, hashing, decrypting, createWriteStream(file, { flags: 'wx' }), { signal });
    else await pipeline(obj.stream, hashing, createWriteStream(file, { flags: 'wx' }), { signal });
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    if (err instanceof DecryptionError) {
      const then = options.consequence ? ` ${options.consequence}` : '';
      if (err.reason === 'identity') throw new RunError(`Input 'decryptionIdentity': cannot decrypt '${located.archive}': ${err.message}${located.entry?.encryption?.recipients?.length ? ` (recipients: ${located.entry.encryption.recipients.join(', ')})` : ''}.${then}`);
      throw new CorruptArchiveError(`The archive '${located.archive}' is corrupt or was changed: it cannot be decrypted: ${err.message}.${then}`);
    }
    throw new RunError(`Downloading '${located.archive}' failed after ${formatBytes(hashing.bytes)}: ${errorMessage(err)}`);
  } finally {
    clearInterval(timer);
  }
  const sha256 = hashing.sha256;
  log.info(`Downloaded ${formatBytes(hashing.bytes)} in ${((Date.now() - started) / 1000).toFixed(1)} s; SHA-256 ${sha256}`);
  const checksums: string[] = [];
  for (const e of expected) {
    if (e.sha256 !== sha256) {
      throw new CorruptArchiveError(`The archive '${located.archive}' is corrupt or was changed: its SHA-256 is ${sha256} but ${e.from} says ${e.sha256}.${options.consequence ? ` ${options.consequence}` : ''}`);
    }
    checksums.push(e.from);
  }
  if (located.size !== undefined && located.size !== hashing.bytes) {
    throw new CorruptArchiveError(`The archive '${located.archive}' has ${hashing.bytes} bytes but manifest '${located.manifest}' says ${located.size}.${options.consequence ? ` ${options.consequence}` : ''}`);
  }
  if (decrypting) {
    // The stored bytes matched; now the archive they decrypt to must be the one the backup encrypted.
    const plain = decrypting.plaintextSha256;
    const wanted = [
      { sha256: located.entry?.plaintextSha256?.toLowerCase(), from: `manifest '${located.manifest}' (plaintextSha256)` },
      { sha256: obj.metadata.plaintextsha256?.toLowerCase(), from: 'the blob metadata (plaintextsha256)' },
    ].filter((e): e is { sha256: string; from: string } => !!e.sha256);
    for (const e of wanted) {
      if (e.sha256 !== plain) {
        throw new CorruptArchiveError(`The archive '${located.archive}' decrypts to an archive whose SHA-256 is ${plain} but ${e.from} says ${e.sha256}.${options.consequence ? ` ${options.consequence}` : ''}`);
      }
      checksums.push(`${e.from}, after decryption`);
    }
    log.info(`Decrypted with age: ${formatBytes(decrypting.plaintextBytes)} archive, SHA-256 ${plain}`);
    return { sha256, bytes: hashing.bytes, metadata: obj.metadata, checksums, plaintextSha256: plain };
  }
  return { sha256, bytes: hashing.bytes, metadata: obj.metadata, checksums };
}

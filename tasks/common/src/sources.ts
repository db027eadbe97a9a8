/**
 * Where backups are read from, for restore: an Azure Blob container through a container SAS (read; list only to
 * find the newest manifest), or a folder. A Source opens one stored object as a stream together with the SHA-256
 * stored beside it (blob metadata `sha256`, or the `<name>.sha256` file a folder destination writes), and lists
 * manifests. It knows nothing of git or archives.
 */
import { createHash } from 'crypto';
import type { TokenCredential } from '@azure/core-auth';
import { AnonymousCredential, ContainerClient } from '@azure/storage-blob';
import { createReadStream, promises as fsp } from 'fs';
import * as path from 'path';
import { Readable } from 'stream';
import { redact } from './credentials';
import { RunError } from './errors';
import { isInside } from './platform/paths';

export interface SourceObject {
  stream: Readable;
  /** Bytes, when known before reading. */
  size?: number;
  /** The SHA-256 stored beside the object (lower-case hex), when there is one. */
  sha256?: string;
  /** Where `sha256` came from, for the log: `blob metadata`, `<name>.sha256`. */
  sha256From?: string;
  /** Other metadata stored with the object (blob metadata), keys lower-case. */
  metadata: Record<string, string>;
}

/** A manifest is a few MB even for 5,000 repositories: anything larger is not one. */
export const MAX_MANIFEST_BYTES = 64 << 20;

/** `readChecked`: the object is larger than allowed. */
export class TooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`larger than ${maxBytes >> 20} MB`);
    this.name = 'TooLargeError';
  }
}

/** `readChecked`: the bytes do not match the SHA-256 stored beside them. */
export class ChecksumMismatchError extends Error {
  constructor(readonly actual: string, readonly expected: string, readonly from: string) {
    super(`its SHA-256 is ${actual} but ${from} says ${expected}`);
    this.name = 'ChecksumMismatchError';
  }
}

/** Reads a small object whole (at most `maxBytes`), checked against the SHA-256 stored beside it when there is one. */
export async function readChecked(obj: SourceObject, maxBytes = MAX_MANIFEST_BYTES): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of obj.stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      obj.stream.destroy();
      throw new TooLargeError(maxBytes);
    }
    chunks.push(chunk);
  }
  const bytes = Buffer.concat(chunks);
  if (obj.sha256) {
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== obj.sha256) throw new ChecksumMismatchError(actual, obj.sha256, obj.sha256From ?? 'the stored checksum');
  }
  return bytes;
}

export interface ManifestInfo {
  /** Path relative to the source root, `/`-separated. */
  name: string;
  lastModified: Date;
}

export interface Source {
  /** Where the data comes from, safe to log (no SAS). */
  readonly description: string;
  /** Opens `name` (a `/`-separated path relative to the root). Throws NotFoundError when it does not exist. */
  open(name: string, signal?: AbortSignal): Promise<SourceObject>;
  /**
   * Every manifest (`manifest.json`, `manifest.job-N-of-M.json`) below the root, newest first; with `prefixes`,
   * only those whose name starts with one of them (a Blob listing then asks only for those prefixes).
   */
  listManifests(signal?: AbortSignal, prefixes?: string[]): Promise<ManifestInfo[]>;
}

export class NotFoundError extends Error {
  constructor(readonly objectName: string, where: string) {
    super(`'${objectName}' does not exist in ${where}`);
    this.name = 'NotFoundError';
  }
}

/**
 * The top-level folder RepoBackup stores manifests under (`manifests/<org>/<date>/<run>/manifest.json`); archives go
 * under `archives/`. Older backups hold both in `<org>/<date>/<run>/`. Listings find manifests in either layout.
 */
export const MANIFESTS_PREFIX = 'manifests';

/** A blob in the Archive access tier: it cannot be read until it is rehydrated (409 BlobArchived). */
export class ArchivedError extends Error {
  constructor(readonly objectName: string) {
    super(`'${objectName}' is in the Archive access tier and cannot be read until it is rehydrated: set its tier to Hot or Cool (e.g. az storage blob set-tier --tier Hot --rehydrate-priority High …), wait for the rehydration (hours), then run again.`);
    this.name = 'ArchivedError';
  }
}

/** A manifest's file name, as RepoBackup writes it (one per job of a run): `manifest.json`, `manifest.job-2-of-4.json`, and the `~2`, `~3` … variants a rerun stores when the name is taken. */
export const MANIFEST_NAME = /(^|\/)manifest(\.job-\d+-of-\d+)?(~\d+)?\.json$/;

const SHA256 = /^[0-9a-f]{64}$/;

function byNewest(a: ManifestInfo, b: ManifestInfo): number {
  return b.lastModified.getTime() - a.lastModified.getTime() || (a.name < b.name ? 1 : a.name > b.name ? -1 : 0);
}

/** Blob storage through a container SAS. Downloads resume where a broken stream stopped (the SDK retries). */
export class BlobSource implements Source {
  private readonly container: ContainerClient;

  /** The service connection whose Entra token is used instead of a SAS, if so. */
  private readonly connection?: string;

  /** `access`: a container SAS URL, or a container URL (no query) with a service connection's TokenCredential. */
  constructor(access: URL | { containerUrl: URL; credential: TokenCredential; connection: string }, readonly description: string, private readonly maxTries = 5,
    /** The agent's proxy or certificate authorities for this container (network.ts's azureClientOptions). */
    clientOptions: { proxyOptions?: { host: string; port: number; username?: string; password?: string }; tlsOptions?: { ca: string } } = {}) {
    const options = {
      retryOptions: { maxTries, retryDelayInMs: 1000, maxRetryDelayInMs: 30_000 },
      userAgentOptions: { userAgentPrefix: 'RepoRestore' },
      ...clientOptions,
    };
    if (access instanceof URL) {
      this.container = new ContainerClient(access.toString(), new AnonymousCredential(), options);
    } else {
      this.container = new ContainerClient(access.containerUrl.toString(), access.credential, options);
      this.connection = access.connection;
    }
  }

  async open(name: string, signal?: AbortSignal): Promise<SourceObject> {
    const blob = this.container.getBlobClient(name);
    let response;
    try {
      response = await blob.download(0, undefined, { maxRetryRequests: this.maxTries, abortSignal: signal });
    } catch (err) {
      throw blobReadError(err, name, this.description, 'r', this.connection);
    }
    const body = response.readableStreamBody;
    if (!body) throw new Error(`Blob storage answered the download of '${name}' without a body.`);
    const metadata: Record<string, string> = {};
    for (const [k, v] of Object.entries(response.metadata ?? {})) if (typeof v === 'string') metadata[k.toLowerCase()] = v;
    const sha = metadata.sha256?.trim().toLowerCase();
    return {
      stream: body as Readable,
      size: response.contentLength,
      sha256: sha && SHA256.test(sha) ? sha : undefined,
      sha256From: 'blob metadata',
      metadata,
    };
  }

  async listManifests(signal?: AbortSignal, prefixes?: string[]): Promise<ManifestInfo[]> {
    const out: ManifestInfo[] = [];
    try {
      for (const prefix of prefixes ?? [undefined]) {
        for await (const page of this.container.listBlobsFlat({ abortSignal: signal, prefix }).byPage({ maxPageSize: 5000 })) {
          for (const item of page.segment.blobItems) {
            if (MANIFEST_NAME.test(item.name)) out.push({ name: item.name, lastModified: item.properties.lastModified });
          }
        }
      }
    } catch (err) {
      throw blobReadError(err, '(listing)', this.description, 'l', this.connection);
    }
    return out.sort(byNewest);
  }
}

function blobReadError(err: unknown, name: string, where: string, permission: 'r' | 'l', connection?: string): Error {
  const e = err as { statusCode?: number; code?: string; message?: string; details?: { errorCode?: string }; name?: string };
  if (e?.name === 'AbortError') return err as Error;
  if (err instanceof RunError) return err;
  const code = e?.details?.errorCode ?? e?.code;
  if (connection && e?.statusCode === 403) {
    const what = permission === 'l' ? 'listing the container' : `reading '${name}'`;
    return new Error(`Blob storage refused ${what} to the service connection '${connection}' (403 ${code ?? 'AuthorizationPermissionMismatch'}): its service principal needs the role "Storage Blob Data Reader" (or Contributor) on the container: ` +
      'az role assignment create --assignee <application id> --role "Storage Blob Data Reader" --scope <container resource id>. A storage firewall that does not let this agent in gives the same answer.');
  }
  if (e?.statusCode === 404 && /BlobNotFound/i.test(String(code))) return new NotFoundError(name, where);
  if (e?.statusCode === 404 && /ContainerNotFound/i.test(String(code))) {
    return new Error(`The container of ${where} does not exist (404 ContainerNotFound). Check the container name in sasUrl.`);
  }
  if (e?.statusCode === 409 && /BlobArchived/i.test(String(code))) {
    return new ArchivedError(name);
  }
  if (e?.statusCode === 403) {
    const what = permission === 'l' ? 'listing the container' : `reading '${name}'`;
    return new Error(`Blob storage refused ${what} (403 ${code ?? ''}): the SAS lacks ${permission === 'l' ? 'list (l)' : 'read (r)'} rights, has expired, or the storage firewall blocks this agent.`);
  }
  const message = redact(String(e?.message ?? err).split('\n')[0]);
  return new Error(`${permission === 'l' ? 'listing the container' : `reading '${name}'`} failed${e?.statusCode ? ` (HTTP ${e.statusCode}${code ? ` ${code}` : ''})` : ''}: ${message}`);
}

/** A folder (local disk or file share) as a folder destination wrote it: `<name>` plus `<name>.sha256`. */
export class FolderSource implements Source {
  readonly description: string;
  private readonly root: string;

  /** `paths` is the platform's path module (`path.win32` in tests of Windows paths). */
  constructor(root: string, private readonly paths: path.PlatformPath = path) {
    this.root = paths.resolve(root);
    this.description = `folder ${this.root}`;
  }

  /** The file of `name`; refuses names that lead outside the folder (a drive root such as `E:\` included). */
  resolve(name: string): string {
    const target = this.paths.resolve(this.root, ...name.split('/'));
    if (!isInside(this.root, target, { paths: this.paths })) throw new Error(`'${name}' points outside ${this.description}`);
    return target;
  }

  async open(name: string): Promise<SourceObject> {
    const file = this.resolve(name);
    let size: number;
    try {
      const stat = await fsp.stat(file);
      if (!stat.isFile()) throw new NotFoundError(name, this.description);
      size = stat.size;
    } catch (err) {
      if (err instanceof NotFoundError || (err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') {
        throw new NotFoundError(name, this.description);
      }
      throw err;
    }
    let sha256: string | undefined;
    try {
      // `sha256sum` format: `<hex>  <file name>`.
      const first = (await fsp.readFile(`${file}.sha256`, 'utf8')).trim().split(/\s+/)[0]?.toLowerCase();
      if (first && SHA256.test(first)) sha256 = first;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return { stream: createReadStream(file, { highWaterMark: 1 << 20 }), size, sha256, sha256From: `${path.basename(file)}.sha256`, metadata: {} };
  }

  /**
   * Manifests sit in run folders: `manifests/<org>/<date>/<run>/` (the layout since archives and manifests were
   * split), or `<org>/<date>/<run>/` next to the archives (older backups). The walk goes no deeper than that.
   */
  async listManifests(_signal?: AbortSignal, prefixes?: string[]): Promise<ManifestInfo[]> {
    const out: ManifestInfo[] = [];
    const walk = async (rel: string, depth: number): Promise<void> => {
      const maxDepth = rel.split('/')[0] === MANIFESTS_PREFIX ? 4 : 3;
      let entries;
      try {
        entries = await fsp.readdir(path.join(this.root, ...rel.split('/').filter(Boolean)), { withFileTypes: true });
      } catch {
        return;
      }
      for (const entry of entries) {
        const child = rel ? `${rel}/${entry.name}` : entry.name;
        if (entry.isDirectory() && depth < maxDepth) await walk(child, depth + 1);
        else if (entry.isFile() && MANIFEST_NAME.test(entry.name)) {
          const stat = await fsp.stat(path.join(this.root, ...child.split('/')));
          out.push({ name: child, lastModified: stat.mtime });
        }
      }
    };
    await walk('', 0);
    return out.filter((m) => !prefixes || prefixes.some((p) => m.name.startsWith(p))).sort(byNewest);
  }
}

/**
 * Where archives go. A Destination stores a stream under a name, never overwriting, and knows nothing of git.
 */
import { AnonymousCredential, BlockBlobTier, ContainerClient } from '@azure/storage-blob';
import { constants as fsc, createWriteStream, promises as fsp } from 'fs';
import * as path from 'path';
import { Readable } from 'stream';
import { pipeline } from 'stream/promises';
import { randomBytes } from 'crypto';
import { redact } from './credentials';

export type Metadata = Record<string, string>;

export interface PutOptions {
  contentType?: string;
  /** Called once the body has ended (so it may carry the body's hash); the values end up with the stored object. */
  metadata?: () => Metadata;
  /** Leave the object in the account's default tier even when an access tier is configured (manifests must stay readable). */
  defaultTier?: boolean;
}

export class AlreadyExistsError extends Error {
  constructor(name: string) {
    super(`'${name}' already exists at the destination; it was not overwritten`);
    this.name = 'AlreadyExistsError';
  }
}

export interface Destination {
  /** Where the data goes, safe to log (no SAS). */
  readonly description: string;
  /** Stores `body` as `name` (a `/`-separated relative path). Fails rather than overwrite. */
  put(name: string, body: Readable, options?: PutOptions): Promise<void>;
}

export interface BlobUploadTuning {
  blockSize: number;
  /** Blocks staged in parallel per upload. */
  parallelBlocks: number;
  maxTries: number;
}

export const defaultBlobTuning: BlobUploadTuning = { blockSize: 8 << 20, parallelBlocks: 2, maxTries: 5 };

/**
 * Azure Blob through a container SAS that may grant only create + write. Streams are cut into blocks, staged
 * a few at a time and committed once with `If-None-Match: *` (so an existing blob is never replaced), the
 * access tier and metadata. Until the commit nothing is visible; a failed upload leaves only uncommitted
 * blocks, which the service discards. Never calls list, read or exists (403 with `cw`).
 */
export class BlobDestination implements Destination {
  private readonly container: ContainerClient;

  constructor(
    sasUrl: URL,
    readonly description: string,
    private readonly tier?: BlockBlobTier | string,
    private readonly tuning: BlobUploadTuning = defaultBlobTuning,
  ) {
    this.container = new ContainerClient(sasUrl.toString(), new AnonymousCredential(), {
      retryOptions: { maxTries: tuning.maxTries, retryDelayInMs: 1000, maxRetryDelayInMs: 30_000 },
      userAgentOptions: { userAgentPrefix: 'RepoBackup' },
    });
  }

  async put(name: string, body: Readable, options: PutOptions = {}): Promise<void> {
    const blob = this.container.getBlockBlobClient(name);
    const ids: string[] = [];
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    const stage = (index: number, data: Buffer) => {
      const id = Buffer.from(`rb-block-${String(index).padStart(8, '0')}`).toString('base64');
      ids.push(id);
      const p = blob
        .stageBlock(id, data, data.length)
        .then(() => undefined)
        .catch((err) => { failure ??= err; })
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
      return p;
    };
    try {
      let index = 0;
      for await (const block of blocks(body, this.tuning.blockSize)) {
        if (failure) break;
        void stage(index++, block);
        while (inFlight.size >= this.tuning.parallelBlocks && !failure) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
      if (failure) throw failure;
      await blob.commitBlockList(ids, {
        conditions: { ifNoneMatch: '*' },
        metadata: options.metadata?.(),
        tier: options.defaultTier ? undefined : this.tier || undefined,
        blobHTTPHeaders: { blobContentType: options.contentType ?? 'application/octet-stream' },
      });
    } catch (err) {
      body.destroy();
      throw blobError(err, name);
    }
  }
}

/** Re-chunks a stream into buffers of exactly `size` bytes (the last may be shorter); one empty stream gives none. */
async function* blocks(body: Readable, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let length = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    let buf = chunk;
    while (length + buf.length >= size) {
      const take = size - length;
      parts.push(buf.subarray(0, take));
      yield Buffer.concat(parts, size);
      buf = buf.subarray(take);
      parts = [];
      length = 0;
    }
    if (buf.length) {
      parts.push(buf);
      length += buf.length;
    }
  }
  if (length) yield Buffer.concat(parts, length);
}

function blobError(err: unknown, name: string): Error {
  const e = err as { statusCode?: number; code?: string; message?: string; details?: { errorCode?: string } };
  const code = e?.details?.errorCode ?? e?.code;
  if (e?.statusCode === 409 && /BlobAlreadyExists/i.test(`${code} ${e.message}`)) return new AlreadyExistsError(name);
  if (e?.statusCode === 403) {
    return new Error(`Blob storage refused '${name}' (403 ${code ?? ''}): the SAS lacks create/write rights, has expired, or the storage firewall blocks this agent.`);
  }
  const message = redact(String(e?.message ?? err).split('\n')[0]);
  return new Error(`upload of '${name}' failed${e?.statusCode ? ` (HTTP ${e.statusCode}${code ? ` ${code}` : ''})` : ''}: ${message}`);
}

/**
 * A folder (local disk or file share). Writes go to a hidden temporary name first and are linked into place
 * only when complete, so a reader never sees half an archive and nothing is replaced. A `<name>.sha256` file
 * in `sha256sum` format sits beside each archive whose metadata carries a `sha256`.
 */
export class FolderDestination implements Destination {
  readonly description: string;

  constructor(private readonly root: string) {
    this.description = `folder ${root}`;
  }

  async put(name: string, body: Readable, options: PutOptions = {}): Promise<void> {
    const target = path.join(this.root, ...name.split('/'));
    await fsp.mkdir(path.dirname(target), { recursive: true });
    const temp = path.join(path.dirname(target), `.${path.basename(target)}.partial-${randomBytes(4).toString('hex')}`);
    try {
      await pipeline(body, createWriteStream(temp, { flags: 'wx' }));
      await publish(temp, target, name);
      const sha = options.metadata?.().sha256;
      if (sha) await fsp.writeFile(`${target}.sha256`, `${sha}  ${path.basename(target)}\n`, { flag: 'wx' });
    } finally {
      await fsp.rm(temp, { force: true });
    }
  }
}

async function publish(temp: string, target: string, name: string): Promise<void> {
  try {
    await fsp.link(temp, target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new AlreadyExistsError(name);
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EXDEV' && code !== 'ENOSYS') throw err;
    // Shares without hard links: copy exclusively (fails if the name appeared meanwhile).
    try {
      await fsp.copyFile(temp, target, fsc.COPYFILE_EXCL);
    } catch (copyErr) {
      if ((copyErr as NodeJS.ErrnoException).code === 'EEXIST') throw new AlreadyExistsError(name);
      throw copyErr;
    }
  }
}

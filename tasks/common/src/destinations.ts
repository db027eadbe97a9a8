/**
 * Where archives go. A Destination stores a stream under a name, never overwriting, and knows nothing of git.
 */
import { AnonymousCredential, BlockBlobTier, ContainerClient } from '@azure/storage-blob';
import { constants as fsc, createWriteStream, promises as fsp } from 'fs';
import * as path from 'path';
import { Readable } from 'stream';
import { finished, pipeline } from 'stream/promises';
import { randomBytes } from 'crypto';
import { releaseArchiveChunk } from './archive';
import { redact } from './credentials';

export type Metadata = Record<string, string>;

export interface PutOptions {
  contentType?: string;
  /** Called once the body has ended (so it may carry the body's hash); the values end up with the stored object. */
  metadata?: () => Metadata;
  /** Leave the object in the account's default tier even when an access tier is configured (manifests must stay readable). */
  defaultTier?: boolean;
  /** Aborting stops the upload; nothing is committed (published) after it fired. */
  signal?: AbortSignal;
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
  /** Size of the first 10,000 blocks; it doubles every 10,000 blocks (a blob holds at most 50,000). */
  blockSize: number;
  /** Blocks staged in parallel per upload. */
  parallelBlocks: number;
  maxTries: number;
  /** Base delay of the storage client's own exponential retry, in ms (default 1000). */
  retryDelayMs?: number;
}

/**
 * 4 MiB blocks, 2 in flight per upload: with the default concurrency of 4 at most 12 block buffers (48 MiB) are in
 * use, and they are reused (see BlockPool). Growing blocks allow archives up to about 1.2 TiB.
 */
export const defaultBlobTuning: BlobUploadTuning = { blockSize: 4 << 20, parallelBlocks: 2, maxTries: 5 };

/** Blocks per size step: blocks 0–9,999 have `blockSize` bytes, the next 10,000 twice that, and so on. */
const BLOCKS_PER_STEP = 10_000;

/**
 * Azure Blob through a container SAS that may grant only create + write. Streams are cut into blocks, staged
 * a few at a time and committed once with `If-None-Match: *` (so an existing blob is never replaced), the
 * access tier and metadata. Until the commit nothing is visible; a failed upload leaves only uncommitted
 * blocks, which the service discards. Never calls list, read or exists (403 with `cw`).
 */
export class BlobDestination implements Destination {
  private readonly container: ContainerClient;
  private readonly pool = new BlockPool();

  constructor(
    sasUrl: URL,
    readonly description: string,
    private readonly tier?: BlockBlobTier | string,
    private readonly tuning: BlobUploadTuning = defaultBlobTuning,
  ) {
    this.container = new ContainerClient(sasUrl.toString(), new AnonymousCredential(), {
      retryOptions: { maxTries: tuning.maxTries, retryDelayInMs: tuning.retryDelayMs ?? 1000, maxRetryDelayInMs: 30_000 },
      userAgentOptions: { userAgentPrefix: 'RepoBackup' },
    });
  }

  async put(name: string, body: Readable, options: PutOptions = {}): Promise<void> {
    const blob = this.container.getBlockBlobClient(name);
    const ids: string[] = [];
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    const stage = (index: number, { data, buffer }: Block) => {
      const id = Buffer.from(`rb-block-${String(index).padStart(8, '0')}`).toString('base64');
      ids.push(id);
      const p = blob
        .stageBlock(id, data, data.length, { abortSignal: options.signal })
        .then(() => undefined)
        .catch((err) => { failure ??= err; })
        .finally(() => { inFlight.delete(p); this.pool.give(buffer); });
      inFlight.add(p);
      return p;
    };
    try {
      let index = 0;
      const sizeOf = (i: number) => this.tuning.blockSize * 2 ** Math.min(4, Math.floor(i / BLOCKS_PER_STEP));
      for await (const block of blocks(body, sizeOf, this.pool)) {
        if (failure) break;
        void stage(index++, block);
        while (inFlight.size >= this.tuning.parallelBlocks && !failure) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
      if (failure) throw failure;
      if (options.signal?.aborted) throw options.signal.reason;
      await blob.commitBlockList(ids, {
        abortSignal: options.signal,
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

interface Block {
  /** The bytes to stage. */
  data: Buffer;
  /** The pooled buffer `data` lives in, given back once the block is staged. */
  buffer: Buffer;
}

/**
 * Block buffers reused from one block (and one upload) to the next. Allocating and freeing a few MiB per block
 * fragments the heap: the task's RSS creeps up, and every git command the task forks then costs more (fork()
 * copies the page tables of everything resident, while the event loop waits).
 */
class BlockPool {
  private readonly free: Buffer[] = [];

  take(size: number): Buffer {
    const i = this.free.findIndex((b) => b.length === size);
    return i >= 0 ? this.free.splice(i, 1)[0] : Buffer.allocUnsafeSlow(size);
  }

  give(buffer: Buffer): void {
    if (this.free.length < 32) this.free.push(buffer);
  }
}

/**
 * Cuts a stream into blocks of exactly `sizeOf(index)` bytes (the last may be shorter), copied into pooled
 * buffers; the consumer gives each buffer back when done with it. An empty stream gives no block.
 */
async function* blocks(body: Readable, sizeOf: (index: number) => number, pool: BlockPool): AsyncGenerator<Block> {
  let index = 0;
  let buffer: Buffer | undefined = pool.take(sizeOf(0));
  let length = 0;
  try {
    for await (const chunk of chunksOf(body)) {
      for (let offset = 0; offset < chunk.length;) {
        if (!buffer) {
          buffer = pool.take(sizeOf(index));
          length = 0;
        }
        const n = chunk.copy(buffer, length, offset);
        length += n;
        offset += n;
        if (offset === chunk.length) releaseArchiveChunk(chunk);
        if (length === buffer.length) {
          const full = buffer;
          buffer = undefined;
          index++;
          yield { data: full, buffer: full };
        }
      }
    }
    if (buffer && length > 0) {
      const last = buffer;
      buffer = undefined;
      yield { data: last.subarray(0, length), buffer: last };
    }
  } finally {
    if (buffer) pool.give(buffer);
  }
}

/**
 * The chunks of a stream one by one, as they were pushed: flowing mode, paused while a chunk is handed over.
 * (The stream's own async iterator reads everything buffered at once, concatenated into a new buffer.)
 */
async function* chunksOf(body: Readable): AsyncGenerator<Buffer> {
  const pending: Buffer[] = [];
  const st: { state: 'open' | 'ended' | 'failed'; failure?: unknown } = { state: 'open' };
  let wake: (() => void) | undefined;
  const onData = (chunk: Buffer) => {
    pending.push(chunk);
    body.pause();
    wake?.();
  };
  body.on('data', onData);
  const done = finished(body).then(
    () => { st.state = 'ended'; },
    (err) => { st.state = 'failed'; st.failure = err; },
  ).finally(() => wake?.());
  try {
    for (;;) {
      const chunk = pending.shift();
      if (chunk) {
        yield chunk;
        if (pending.length === 0 && st.state === 'open') body.resume();
        continue;
      }
      if (st.state === 'failed') throw st.failure;
      if (st.state === 'ended') return;
      await new Promise<void>((resolve) => { wake = resolve; });
      wake = undefined;
    }
  } finally {
    body.off('data', onData);
    if (st.state === 'open') body.destroy();
    await done;
  }
}

function blobError(err: unknown, name: string): Error {
  const e = err as { statusCode?: number; code?: string; message?: string; details?: { errorCode?: string } };
  const code = e?.details?.errorCode ?? e?.code;
  if (e?.statusCode === 409 && /BlobAlreadyExists/i.test(`${code} ${e.message}`)) return new AlreadyExistsError(name);
  // The commit's only condition is If-None-Match: *, so a failed condition means the name is taken.
  if (e?.statusCode === 412 && /ConditionNotMet/i.test(`${code} ${e.message}`)) return new AlreadyExistsError(name);
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
      await pipeline(body, createWriteStream(temp, { flags: 'wx' }), ...(options.signal ? [{ signal: options.signal }] : []));
      if (options.signal?.aborted) throw options.signal.reason;
      const sha = options.metadata?.().sha256;
      // The checksum file is claimed first, so an existing one (a rerun, a file put there by hand) is never
      // replaced and never left beside someone else's archive.
      const sidecar = sha ? await claim(`${target}.sha256`, name) : undefined;
      try {
        await publish(temp, target, name);
      } catch (err) {
        await sidecar?.close();
        if (sidecar) await fsp.rm(`${target}.sha256`, { force: true });
        throw err;
      }
      if (sidecar) {
        await sidecar.writeFile(`${sha}  ${path.basename(target)}\n`);
        await sidecar.close();
      }
    } finally {
      await fsp.rm(temp, { force: true });
    }
  }
}

async function claim(file: string, name: string): Promise<fsp.FileHandle> {
  try {
    return await fsp.open(file, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new AlreadyExistsError(name);
    throw err;
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

/**
 * Where archives go. A Destination stores a stream under a name, never overwriting, and knows nothing of git.
 */
import type { TokenCredential } from '@azure/core-auth';
import { AnonymousCredential, BlockBlobClient, BlockBlobTier, ContainerClient } from '@azure/storage-blob';
import { constants as fsConstants, promises as fsp } from 'fs';
import * as path from 'path';
import { Readable } from 'stream';
import { finished, pipeline } from 'stream/promises';
import { randomBytes } from 'crypto';
import { RunError } from './errors';
import { sha256OfFile } from './mirror';
import { redact } from './credentials';
import { NameTakenError, probePublishing, publishFile, PublishFs, PublishMethod, realFs } from './platform/publish';
import { removeQuietly, RemoveOptions } from './platform/remove';

export type Metadata = Record<string, string>;

export interface PutOptions {
  contentType?: string;
  /** Called once the body has ended (so it may carry the body's hash); the values end up with the stored object. */
  metadata?: () => Metadata;
  /** Leave the object in the account's default tier even when an access tier is configured (manifests must stay readable). */
  defaultTier?: boolean;
  /** Aborting stops the upload; nothing is committed (published) after it fired. */
  signal?: AbortSignal;
  /** Roughly how many bytes the body will have (e.g. the mirror's size), when known: sizes the blocks of a big blob. */
  sizeHint?: number;
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
  /**
   * Called once before any work starts: proves what the settings alone cannot (a SAS whose rights live in a stored
   * access policy). Throws a RunError saying what to fix.
   */
  check?(signal?: AbortSignal): Promise<void>;
  /** What the destination had to do differently from the settings (each said once), for the run's warnings. */
  warnings?(): string[];
  /**
   * Incremental runs: stores a copy of the previous run's `previous` as `name` without the data passing through
   * this agent (Blob: a server-side copy; folder: a hard link), never overwriting. Checks the previous object
   * first (it exists, is readable, has `expected` size and SHA-256) and throws CopySourceError when it does not
   * qualify (the caller then backs up in full); checks the copy (length, SHA-256) after.
   */
  copyFrom?(previous: string, name: string, expected: CopyExpectation, options?: CopyOptions): Promise<void>;
}

export interface CopyExpectation {
  size: number;
  sha256: string;
}

export interface CopyOptions {
  /** The metadata of the copy (its `sha256` must equal the expected one). */
  metadata?: Metadata;
  contentType?: string;
  signal?: AbortSignal;
}

/** The previous archive cannot be reused (missing, in the Archive tier, size or hash not as recorded): back up in full. */
export class CopySourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CopySourceError';
  }
}

/** Copy Blob From URL copies up to 256 MiB; Put Blob From URL up to 5000 MiB; above that only the asynchronous Copy Blob. */
export const SYNC_COPY_MAX = 256 * (1 << 20);
export const PUT_FROM_URL_MAX = 5000 * (1 << 20);

export interface BlobUploadTuning {
  /** Size of the first 10,000 blocks (unless the size hint asks for more); it doubles every 10,000 blocks. */
  blockSize: number;
  /** Blocks staged in parallel per upload. */
  parallelBlocks: number;
  maxTries: number;
  /** Base delay of the storage client's own exponential retry, in ms (default 1000). */
  retryDelayMs?: number;
  /** Copies up to this size use Copy Blob From URL (default SYNC_COPY_MAX, the service's limit). */
  syncCopyMax?: number;
  /** Copies up to this size (above syncCopyMax) use Put Blob From URL (default PUT_FROM_URL_MAX); larger ones the asynchronous Copy Blob. */
  putFromUrlMax?: number;
}

/**
 * 4 MiB blocks, 2 in flight per upload: with the default concurrency of 4 at most 12 block buffers (48 MiB) are in
 * use, and they are reused (see BlockPool). Growing blocks allow archives up to about 1.2 TiB without a size hint;
 * with one, blocks start as big as needed, up to the service's largest blob.
 */
export const defaultBlobTuning: BlobUploadTuning = { blockSize: 4 << 20, parallelBlocks: 2, maxTries: 5 };

/** The service's limits for a block blob: 50,000 committed blocks of at most 4000 MiB (≈ 190.7 TiB). */
export const MAX_BLOCKS = 50_000;
export const MAX_BLOCK_BYTES = 4000 * (1 << 20);
/** Blocks per size step: blocks 0–9,999 have the first size, the next 10,000 twice that, and so on (capped). */
const BLOCKS_PER_STEP = 10_000;

export interface BlockPlan {
  /** Size of block `index` (0-based); only the last block of an upload may be shorter. */
  sizeOf(index: number): number;
  /** Bytes the 50,000 blocks hold: a longer body cannot be stored as one blob with this plan. */
  capacity: number;
}

/**
 * Block sizes for one upload. Blocks start at `blockSize` and double every 10,000 blocks (capped at 4000 MiB), so
 * small archives use small buffers. With `sizeHint` (the expected bytes) the first size doubles until the plan
 * holds the hint with a margin (5 % + 64 MiB: an archive is a little bigger than the files in it). Throws when even
 * 4000 MiB blocks cannot hold it: the largest block blob is 50,000 × 4000 MiB.
 */
export function planBlocks(blockSize: number, sizeHint?: number): BlockPlan {
  const plan = (first: number): BlockPlan => {
    const sizeOf = (index: number) => Math.min(MAX_BLOCK_BYTES, first * 2 ** Math.floor(index / BLOCKS_PER_STEP));
    let capacity = 0;
    for (let step = 0; step < MAX_BLOCKS / BLOCKS_PER_STEP; step++) capacity += BLOCKS_PER_STEP * sizeOf(step * BLOCKS_PER_STEP);
    return { sizeOf, capacity };
  };
  let first = Math.min(Math.max(1, blockSize), MAX_BLOCK_BYTES);
  let current = plan(first);
  if (sizeHint === undefined || !(sizeHint > 0)) return current;
  const largest = MAX_BLOCKS * MAX_BLOCK_BYTES;
  // Near the very top the margin is dropped: the largest plan is tried, and the upload stops if the body outgrows it.
  const need = Math.min(sizeHint * 1.05 + (64 << 20), Math.max(sizeHint, largest));
  while (current.capacity < need && first < MAX_BLOCK_BYTES) {
    first = Math.min(MAX_BLOCK_BYTES, first * 2);
    current = plan(first);
  }
  if (current.capacity < need) {
    throw new TooBigError(`about ${formatSize(sizeHint)} is more than the largest blob Azure Storage holds (${MAX_BLOCKS.toLocaleString('en-US')} blocks of 4000 MiB, ${formatSize(current.capacity)}); nothing was uploaded. Use a folder destination for this repository, or leave it out with the repositories filter.`);
  }
  return current;
}

/** An archive that cannot be stored as one blob, known before or while it is uploaded. Not worth retrying. */
export class TooBigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TooBigError';
  }
}

function formatSize(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/**
 * Azure Blob through a container SAS that may grant only create + write. Streams are cut into blocks, staged
 * a few at a time and committed once with `If-None-Match: *` (so an existing blob is never replaced), the
 * access tier and metadata. Until the commit nothing is visible; a failed upload leaves only uncommitted
 * blocks, which the service discards. Never calls list, read or exists (403 with `cw`).
 *
 * Block ids carry a random id of the upload. When the commit meets a taken name (409/412) it may be this upload's
 * own commit, whose answer was lost and which the storage client sent again: committing the same ids once more,
 * as blocks of the committed list only, succeeds exactly then (no other blob holds them) and changes nothing
 * else (a foreign blob makes it fail with InvalidBlockList, untouched).
 *
 * An access tier the account refuses (409 BlobAccessTierNotSupportedForAccountType, 400 InvalidHeaderValue on
 * x-ms-access-tier) is dropped for the rest of the run: the archive is committed without it, and `warnings()` says
 * so once.
 */
/** Proxy and TLS options as the Azure SDK takes them (network.ts's azureClientOptions). */
export interface AzureClientOptionsLike {
  proxyOptions?: { host: string; port: number; username?: string; password?: string };
  tlsOptions?: { ca: string };
}

export class BlobDestination implements Destination {
  private readonly container: ContainerClient;
  private readonly pool = new BlockPool();
  /** The stored access policy holding the SAS's rights (`si=` without `sp=`), if so. */
  private readonly policy?: string;
  /** Why the configured tier is not used any more (set on the first refusal). */
  private tierRefusal?: string;
  private readonly notes: string[] = [];
  /** Put Blob From URL was not served here: larger copies go straight to the asynchronous copy. */
  private noPutFromUrl = false;

  /** The service connection whose Entra token is used instead of a SAS, if so. */
  private readonly connection?: string;
  private readonly credential?: TokenCredential;

  /**
   * `access` is a container SAS URL, or a container URL (no query) with a TokenCredential from a service connection
   * (its token is requested for Azure Storage by the storage client and renewed by it before it expires).
   */
  constructor(
    access: URL | { containerUrl: URL; credential: TokenCredential; connection: string },
    readonly description: string,
    private readonly tier?: BlockBlobTier | string,
    private readonly tuning: BlobUploadTuning = defaultBlobTuning,
    /** The agent's proxy or certificate authorities for this container (network.ts's azureClientOptions). */
    clientOptions: AzureClientOptionsLike = {},
  ) {
    const options = {
      retryOptions: { maxTries: tuning.maxTries, retryDelayInMs: tuning.retryDelayMs ?? 1000, maxRetryDelayInMs: 30_000 },
      userAgentOptions: { userAgentPrefix: 'RepoBackup' },
      ...clientOptions,
    };
    if (access instanceof URL) {
      this.container = new ContainerClient(access.toString(), new AnonymousCredential(), options);
      const q = access.searchParams;
      if (q.get('si') && !q.get('sp')) this.policy = q.get('si')!;
    } else {
      this.container = new ContainerClient(access.containerUrl.toString(), access.credential, options);
      this.connection = access.connection;
      this.credential = access.credential;
    }
  }

  warnings(): string[] {
    return [...this.notes];
  }

  /**
   * A SAS bound to a stored access policy: its rights are in the policy, unseen until used. One block is staged
   * (the first step of every upload) under a name of its own, never committed: the service discards it within a
   * week and it is not listed. A refusal fails the run before any clone, naming the policy.
   */
  async check(signal?: AbortSignal): Promise<void> {
    if (this.connection) return this.checkRole(signal);
    if (!this.policy) return;
    const probe = this.container.getBlockBlobClient(`.repobackup-write-check/${randomBytes(8).toString('hex')}`);
    try {
      await probe.stageBlock(Buffer.from('rb-check').toString('base64'), Buffer.from('.'), 1, { abortSignal: signal });
    } catch (err) {
      const e = err as { statusCode?: number; code?: string; details?: { errorCode?: string }; name?: string };
      if (e?.name === 'AbortError') throw err;
      const code = e?.details?.errorCode ?? e?.code ?? '';
      if (e?.statusCode === 403 || e?.statusCode === 404) {
        throw new RunError(`Blob storage refused a first write (Put Block) with the SAS bound to the stored access policy '${this.policy}' (${e.statusCode} ${code}). ` +
          `The policy '${this.policy}' on the container must exist and grant write (w; create + write: cw), its start time must have passed and its expiry not; ` +
          'a storage firewall may also block this agent. Fix the policy (container → Access policy) or give a SAS with sp=cw, then run again.');
      }
      // Anything else (the service busy past its retries, the network) is left to the uploads and their retries.
    }
  }

  /**
   * With a service connection: the same uncommitted first block proves the principal may write (the role
   * "Storage Blob Data Contributor" on the container) before any clone. A token refusal from Entra arrives as the
   * explained RunError of identity.ts.
   */
  private async checkRole(signal?: AbortSignal): Promise<void> {
    const probe = this.container.getBlockBlobClient(`.repobackup-write-check/${randomBytes(8).toString('hex')}`);
    try {
      await probe.stageBlock(Buffer.from('rb-check').toString('base64'), Buffer.from('.'), 1, { abortSignal: signal });
    } catch (err) {
      if (err instanceof RunError) throw err;
      const e = err as { statusCode?: number; code?: string; details?: { errorCode?: string }; name?: string };
      if (e?.name === 'AbortError') throw err;
      const code = e?.details?.errorCode ?? e?.code ?? '';
      if (e?.statusCode === 403) throw new RunError(roleRefusal(this.connection!, code, this.description));
      if (e?.statusCode === 404) {
        throw new RunError(`Blob storage answered 404 ${code} for ${this.description}: check storageAccount/blobEndpoint and containerName (the container must exist).`);
      }
      if (e?.statusCode === 401) {
        throw new RunError(`Blob storage refused the service connection '${this.connection}''s token (401 ${code}) for ${this.description}. The storage account must allow Entra ID (Azure AD) authorization and be in the connection's tenant.`);
      }
    }
  }

  async put(name: string, body: Readable, options: PutOptions = {}): Promise<void> {
    const blob = this.container.getBlockBlobClient(name);
    const ids: string[] = [];
    const inFlight = new Set<Promise<void>>();
    // Every block id of a blob must have the same length: `rb-<12 hex of this upload>-<8 digits>`.
    const upload = randomBytes(6).toString('hex');
    let failure: unknown;
    const stage = (index: number, { data, buffer }: Block) => {
      const id = Buffer.from(`rb-${upload}-${String(index).padStart(8, '0')}`).toString('base64');
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
      const plan = planBlocks(this.tuning.blockSize, options.sizeHint);
      let index = 0;
      for await (const block of blocks(body, plan.sizeOf, this.pool)) {
        if (failure) break;
        if (index >= MAX_BLOCKS) {
          this.pool.give(block.buffer);
          throw new TooBigError(`the archive grew past ${formatSize(plan.capacity)} (${MAX_BLOCKS.toLocaleString('en-US')} blocks), the most this upload can hold${options.sizeHint ? ` (its size was expected to be about ${formatSize(options.sizeHint)})` : ''}; nothing was committed. Use a folder destination for this repository, or leave it out with the repositories filter.`);
        }
        void stage(index++, block);
        while (inFlight.size >= this.tuning.parallelBlocks && !failure) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
      if (failure) throw failure;
      if (options.signal?.aborted) throw options.signal.reason;
      await this.commit(blob, ids, options);
    } catch (err) {
      body.destroy();
      await Promise.allSettled(inFlight);
      if (err instanceof TooBigError) throw new TooBigError(`'${name}': ${err.message}`);
      throw blobError(err, name, this.policy, this.connection);
    }
  }

  private async commit(blob: BlockBlobClient, ids: string[], options: PutOptions): Promise<void> {
    const tier = options.defaultTier || this.tierRefusal ? undefined : this.tier || undefined;
    const common = {
      abortSignal: options.signal,
      metadata: options.metadata?.(),
      tier,
      blobHTTPHeaders: { blobContentType: options.contentType ?? 'application/octet-stream' },
    };
    try {
      await blob.commitBlockList(ids, { ...common, conditions: { ifNoneMatch: '*' } });
    } catch (err) {
      if (tier && tierRefused(err)) {
        this.refuseTier(err);
        return this.commit(blob, ids, options);
      }
      if (isNameTaken(err) && (await this.ownCommit(blob, ids, common))) return;
      throw err;
    }
  }

  /**
   * After a taken-name answer: is the blob there this upload's own commit (sent twice, the first answer lost)?
   * Commits the same ids again, from the committed list only, without a condition: only a blob made of exactly
   * these blocks accepts that, and it is stored again as it is (same bytes, metadata, type and tier).
   */
  private async ownCommit(blob: BlockBlobClient, ids: string[], common: { abortSignal?: AbortSignal; metadata?: Metadata; tier?: string; blobHTTPHeaders: { blobContentType: string } }): Promise<boolean> {
    if (ids.length === 0) return false; // an empty blob has no blocks to recognise it by
    const context = (blob as unknown as { blockBlobContext?: BlockBlobContext }).blockBlobContext;
    if (!context?.commitBlockList) return false;
    try {
      await context.commitBlockList({ committed: ids }, {
        abortSignal: common.abortSignal,
        metadata: common.metadata,
        tier: common.tier,
        blobHttpHeaders: common.blobHTTPHeaders,
      });
      return true;
    } catch {
      // InvalidBlockList: someone else's blob (left untouched); anything else: cannot tell, so the name counts as taken.
      return false;
    }
  }

  /**
   * Server-side copy of the previous run's archive (same container). The source is read first (Get Blob
   * Properties: needs `r`): missing, in the Archive tier, or not the recorded size and `sha256` metadata → a
   * CopySourceError. The copy is pinned to the ETag just read (`x-ms-source-if-match`) and never overwrites
   * (`If-None-Match: *`): up to 256 MiB Copy Blob From URL, up to 5000 MiB Put Blob From URL, above that (or where
   * Put Blob From URL is not implemented) the asynchronous Copy Blob, polled until done. The source URL carries the
   * SAS (read), or with a service connection the sync copies send the principal's bearer token as
   * x-ms-copy-source-authorization (the asynchronous copy within one account is authorized by the caller's token).
   * Metadata and the configured access tier travel in the copy request itself. Round trips per copy: one property
   * read of the source and one copy request; only the asynchronous copy is read back (length and sha256).
   */
  async copyFrom(previous: string, name: string, expected: CopyExpectation, options: CopyOptions = {}): Promise<void> {
    const source = this.container.getBlobClient(previous);
    let props;
    try {
      props = await source.getProperties({ abortSignal: options.signal });
    } catch (err) {
      const { status, code } = errorCode(err);
      if (status === 404) throw new CopySourceError(`the previous archive '${previous}' does not exist any more (404 ${code || 'BlobNotFound'})`);
      if (status === 403) throw new CopySourceError(`reading the previous archive '${previous}' was refused (403 ${code}): ${this.connection ? `the service connection '${this.connection}' needs read on the container` : 'the SAS needs read (r)'}`);
      throw blobError(err, previous, this.policy, this.connection);
    }
    if (/^archive$/i.test(props.accessTier ?? '') || props.archiveStatus) {
      throw new CopySourceError(`the previous archive '${previous}' is in the Archive access tier and cannot be copied without rehydration`);
    }
    if (props.contentLength !== expected.size) {
      throw new CopySourceError(`the previous archive '${previous}' has ${props.contentLength} bytes, its manifest records ${expected.size}`);
    }
    const stored = props.metadata?.sha256?.trim().toLowerCase();
    if (stored !== expected.sha256) {
      throw new CopySourceError(`the previous archive '${previous}' has sha256 metadata ${stored ?? '(none)'}, its manifest records ${expected.sha256}`);
    }
    const target = this.container.getBlockBlobClient(name);
    const how = await this.copyInto(source.url, target, expected.size, props.etag, options);
    // A synchronous copy (Copy Blob From URL, Put Blob From URL) answers only once the blob is committed, and its
    // source was pinned to the ETag whose length and sha256 metadata were just checked (x-ms-source-if-match: a
    // changed source is a 412, not a copy), with our metadata set by the same request: the success answer already
    // says what a read-back would. The asynchronous copy is checked, as its completion is only polled.
    if (how === 'trusted') return;
    let copy;
    try {
      copy = await target.getProperties({ abortSignal: options.signal });
    } catch (err) {
      throw blobError(err, name, this.policy, this.connection);
    }
    if (copy.contentLength !== expected.size || copy.metadata?.sha256 !== expected.sha256) {
      throw new Error(`the server-side copy '${name}' of '${previous}' does not match: ${copy.contentLength} bytes, sha256 metadata ${copy.metadata?.sha256 ?? '(none)'}; expected ${expected.size} bytes, ${expected.sha256}`);
    }
  }

  private async copyInto(sourceUrl: string, target: BlockBlobClient, size: number, etag: string | undefined, options: CopyOptions): Promise<'trusted' | 'check'> {
    const tier = this.tierRefusal ? undefined : this.tier || undefined;
    const sourceAuthorization = this.credential
      ? { scheme: 'Bearer', value: (await this.credential.getToken('https://storage.azure.com/.default', { abortSignal: options.signal }))?.token ?? '' }
      : undefined;
    const common = {
      abortSignal: options.signal,
      metadata: options.metadata,
      tier,
      conditions: { ifNoneMatch: '*' },
    };
    const sourceConditions = etag ? { ifMatch: etag } : undefined;
    try {
      if (size <= (this.tuning.syncCopyMax ?? SYNC_COPY_MAX)) {
        const answer = await target.syncCopyFromURL(sourceUrl, { ...common, sourceConditions, sourceAuthorization });
        if (answer.copyStatus && answer.copyStatus !== 'success') throw new Error(`Copy Blob From URL answered copy status '${answer.copyStatus}'`);
        // Pinned to the source's ETag and never onto an existing blob: success means our copy of those bytes.
        return etag ? 'trusted' : 'check';
      }
      if (size <= (this.tuning.putFromUrlMax ?? PUT_FROM_URL_MAX) && !this.noPutFromUrl) {
        try {
          await target.syncUploadFromURL(sourceUrl, {
            ...common, sourceAuthorization, sourceConditions, copySourceBlobProperties: false,
            blobHTTPHeaders: { blobContentType: options.contentType ?? 'application/octet-stream' },
          });
          return etag ? 'trusted' : 'check';
        } catch (err) {
          // Put Blob From URL is not implemented everywhere (Azurite 3.35 answers 500 without an error code; 501
          // elsewhere): the asynchronous copy does the same, and is used for the rest of the run.
          const { status, code } = errorCode(err);
          if (!(status === 501 || (status === 500 && !code))) throw err;
          this.noPutFromUrl = true;
        }
      }
      const poller = await target.beginCopyFromURL(sourceUrl, { ...common, sourceConditions, intervalInMs: 2000 });
      const done = await poller.pollUntilDone();
      if (done.copyStatus && done.copyStatus !== 'success') throw new Error(`the asynchronous copy ended '${done.copyStatus}'`);
      return 'check';
    } catch (err) {
      if (tier && tierRefused(err)) {
        this.refuseTier(err);
        return this.copyInto(sourceUrl, target, size, etag, options);
      }
      throw blobError(err, target.name, this.policy, this.connection);
    }
  }

  private refuseTier(err: unknown): void {
    if (this.tierRefusal) return;
    const e = err as { statusCode?: number; code?: string; details?: { errorCode?: string } };
    const code = e?.details?.errorCode ?? e?.code ?? '';
    this.tierRefusal = `${e?.statusCode ?? ''} ${code}`.trim();
    this.notes.push(`accessTier '${this.tier}' was refused by the storage account (${this.tierRefusal}): ` +
      (/AccountType/i.test(code) ? 'the account type does not support that tier' : 'the account does not accept an access tier on upload') +
      ` (Archive is not available on ZRS, GZRS and RA-GZRS accounts; premium and general-purpose v1 accounts take no tier). The archives of this run were stored in the account's default tier instead. ` +
      'Leave accessTier empty (a lifecycle management rule can move blobs to a cooler tier later), or choose a tier the account supports.');
  }
}

/** The generated client the storage SDK's BlockBlobClient wraps: it accepts committed-list block ids. */
interface BlockBlobContext {
  commitBlockList(blocks: { committed?: string[]; uncommitted?: string[]; latest?: string[] }, options: {
    abortSignal?: AbortSignal; metadata?: Metadata; tier?: string; blobHttpHeaders?: { blobContentType?: string };
  }): Promise<unknown>;
}

function errorCode(err: unknown): { status?: number; code: string; text: string } {
  const e = err as { statusCode?: number; code?: string; message?: string; details?: { errorCode?: string; HeaderName?: string; headerName?: string } };
  const code = e?.details?.errorCode ?? e?.code ?? '';
  const header = e?.details?.HeaderName ?? e?.details?.headerName ?? '';
  return { status: e?.statusCode, code, text: `${code} ${header} ${e?.message ?? ''}` };
}

/** The account refuses the access tier: 409 BlobAccessTierNotSupportedForAccountType, or 400 InvalidHeaderValue naming x-ms-access-tier. */
export function tierRefused(err: unknown): boolean {
  const { status, code, text } = errorCode(err);
  if (status === 409 && /BlobAccessTierNotSupportedForAccountType/i.test(code)) return true;
  return status === 400 && /InvalidHeaderValue/i.test(code) && /x-ms-access-tier/i.test(text);
}

/** The commit's only condition is If-None-Match: *, so 409 BlobAlreadyExists or 412 ConditionNotMet means the name is taken. */
function isNameTaken(err: unknown): boolean {
  const { status, text } = errorCode(err);
  return (status === 409 && /BlobAlreadyExists/i.test(text)) || (status === 412 && /ConditionNotMet/i.test(text));
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

/** The message for a 403 to a service connection's principal: the missing role and the command that grants it. */
export function roleRefusal(connection: string, code: string, where: string): string {
  return `Blob storage refused the service connection '${connection}' (403 ${code || 'AuthorizationPermissionMismatch'}) on ${where}: ` +
    'its service principal needs the role "Storage Blob Data Contributor" on the container (a role assignment can take a few minutes to apply): ' +
    'az role assignment create --assignee <application id> --role "Storage Blob Data Contributor" --scope /subscriptions/<subscription>/resourceGroups/<group>/providers/Microsoft.Storage/storageAccounts/<account>/blobServices/default/containers/<container>. ' +
    'A storage firewall that does not let this agent in gives the same answer (AuthorizationFailure).';
}

function blobError(err: unknown, name: string, policy?: string, connection?: string): Error {
  const e = err as { statusCode?: number; code?: string; message?: string; details?: { errorCode?: string }; name?: string };
  if (err instanceof AlreadyExistsError) return err;
  if (err instanceof RunError) return err;
  const code = e?.details?.errorCode ?? e?.code;
  if (isNameTaken(err)) return new AlreadyExistsError(name);
  if (e?.statusCode === 403) {
    if (connection) return new Error(roleRefusal(connection, code ?? '', `'${name}'`));
    if (policy) {
      return new Error(`Blob storage refused '${name}' (403 ${code ?? ''}): the stored access policy '${policy}' the SAS is bound to lacks write (w) rights, has expired or was removed, or the storage firewall blocks this agent.`);
    }
    return new Error(`Blob storage refused '${name}' (403 ${code ?? ''}): the SAS lacks create/write rights, has expired, or the storage firewall blocks this agent.`);
  }
  const message = redact(String(e?.message ?? err).split('\n')[0]);
  return new Error(`upload of '${name}' failed${e?.statusCode ? ` (HTTP ${e.statusCode}${code ? ` ${code}` : ''})` : ''}: ${message}`);
}

/**
 * A folder (local disk or file share). Writes go to a hidden temporary name first and are published under the
 * final name only when complete (see platform/publish.ts: a hard link, or where the file system has none an
 * exclusively created name the finished file is renamed over), so a reader never sees half an archive and nothing
 * is replaced. A `<name>.sha256` file in `sha256sum` format sits beside each archive whose metadata carries a
 * `sha256`. Clean-up that fails (a scanner holding the temporary file) never fails a published archive.
 */
export class FolderDestination implements Destination {
  readonly description: string;
  private method: PublishMethod = 'link';
  private readonly notes: string[] = [];

  constructor(private readonly root: string, private readonly fs: PublishFs = realFs, private readonly removal: RemoveOptions = {}) {
    this.description = `folder ${root}`;
  }

  /** Before any work: finds out whether the folder has hard links (FAT/exFAT and some NAS do not). */
  async check(): Promise<void> {
    try {
      await fsp.mkdir(this.root, { recursive: true });
      this.method = (await probePublishing(this.root, this.fs)).method;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new RunError(`The destination folder ${this.root} cannot be written (${code ?? errorText(err)}). Grant the agent's account write access, or choose another folder.`);
    }
  }

  /** How archives are published here: `link` (hard link) or `claim` (exclusive create, then rename). */
  get publishing(): PublishMethod {
    return this.method;
  }

  warnings(): string[] {
    return [...this.notes];
  }

  /** Hard link (or copy) of the previous run's archive, see folderCopy. */
  async copyFrom(previous: string, name: string, expected: CopyExpectation): Promise<void> {
    await folderCopy(this.root, previous, name, expected, this.method, this.fs, this.notes, this.removal);
  }

  async put(name: string, body: Readable, options: PutOptions = {}): Promise<void> {
    try {
      await this.store(name, body, options);
    } catch (err) {
      // Whatever failed (the folder, the write, the publish), the body is stopped: a producer piped into it would
      // otherwise wait for a reader for ever.
      body.destroy();
      throw err;
    }
  }

  private async store(name: string, body: Readable, options: PutOptions): Promise<void> {
    const target = path.join(this.root, ...name.split('/'));
    await fsp.mkdir(path.dirname(target), { recursive: true });
    const temp = path.join(path.dirname(target), `.${path.basename(target)}.partial-${randomBytes(4).toString('hex')}`);
    // Created before anything is piped, so that the clean-up below always comes after it: a stream that opens its
    // file lazily could create it after a failed pipeline had already removed the name (a partial file left behind).
    const handle = await fsp.open(temp, 'wx');
    try {
      try {
        await pipeline(body, handle.createWriteStream(), ...(options.signal ? [{ signal: options.signal }] : []));
      } finally {
        await handle.close().catch(() => undefined);
      }
      if (options.signal?.aborted) throw options.signal.reason;
      const sha = options.metadata?.().sha256;
      // The checksum file is claimed first, so an existing one (a rerun, a file put there by hand) is never
      // replaced and never left beside someone else's archive.
      const sidecar = sha ? await claim(`${target}.sha256`, name) : undefined;
      try {
        this.method = await publishFile(temp, target, this.method, this.fs);
      } catch (err) {
        await sidecar?.close();
        if (sidecar) await removeQuietly(`${target}.sha256`, (m) => this.notes.push(m), this.removal);
        if (err instanceof NameTakenError) throw new AlreadyExistsError(name);
        throw err;
      }
      if (sidecar) {
        await sidecar.writeFile(`${sha}  ${path.basename(target)}\n`);
        await sidecar.close();
      }
    } finally {
      // Published (or not): the temporary name goes. A scanner holding it must not fail a stored archive.
      await removeQuietly(temp, (m) => this.notes.push(m), this.removal);
    }
  }
}

/**
 * Folder: the previous run's file is hard-linked under the new name (where the file system has no hard links, or
 * the previous run is on another volume, copied to a temporary name and published as `put` does), with its
 * `<name>.sha256` file. Before: the previous file must exist with the recorded size and its content must hash to
 * the recorded SHA-256 (read locally, nothing leaves the machine). Never overwrites.
 */
export async function folderCopy(root: string, previous: string, name: string, expected: CopyExpectation, method: PublishMethod, fs: PublishFs, notes: string[], removal: RemoveOptions): Promise<'link' | 'copy'> {
  const source = path.join(root, ...previous.split('/'));
  const target = path.join(root, ...name.split('/'));
  let size: number;
  try {
    const stat = await fsp.stat(source);
    if (!stat.isFile()) throw Object.assign(new Error('not a file'), { code: 'ENOENT' });
    size = stat.size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new CopySourceError(`the previous archive '${previous}' does not exist any more`);
    throw err;
  }
  if (size !== expected.size) throw new CopySourceError(`the previous archive '${previous}' has ${size} bytes, its manifest records ${expected.size}`);
  const actual = await sha256OfFile(source);
  if (actual !== expected.sha256) throw new CopySourceError(`the previous archive '${previous}' hashes to ${actual}, its manifest records ${expected.sha256}`);
  await fsp.mkdir(path.dirname(target), { recursive: true });
  const sidecar = await claim(`${target}.sha256`, name);
  let how: 'link' | 'copy' = 'link';
  try {
    try {
      await fs.link(source, target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new NameTakenError(target);
      how = 'copy';
      const temp = path.join(path.dirname(target), `.${path.basename(target)}.partial-${randomBytes(4).toString('hex')}`);
      try {
        await fsp.copyFile(source, temp, fsConstants.COPYFILE_EXCL);
        await publishFile(temp, target, method, fs);
      } finally {
        await removeQuietly(temp, (m) => notes.push(m), removal);
      }
    }
  } catch (err) {
    await sidecar.close();
    await removeQuietly(`${target}.sha256`, (m) => notes.push(m), removal);
    if (err instanceof NameTakenError) throw new AlreadyExistsError(name);
    throw err;
  }
  await sidecar.writeFile(`${expected.sha256}  ${path.basename(target)}\n`);
  await sidecar.close();
  const copied = (await fsp.stat(target)).size;
  if (copied !== expected.size) throw new Error(`the copy '${name}' of '${previous}' has ${copied} bytes, expected ${expected.size}`);
  return how;
}

function errorText(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0];
}

async function claim(file: string, name: string): Promise<fsp.FileHandle> {
  try {
    return await fsp.open(file, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new AlreadyExistsError(name);
    throw err;
  }
}

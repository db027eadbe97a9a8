/**
 * Directory ⇄ archive stream. A mirror goes in as a bare repository at the archive root (plus `lfs/objects`).
 * Pack files, loose objects and LFS objects are already compressed: zip stores them as they are; only the other
 * files of 4 KiB or more (packed-refs, …) are deflated, tiny ones (HEAD, config) are stored too. tar.gz gzips the
 * whole stream at a fast level. Files are read one at a time in 1 MiB chunks, each into a buffer of its own: a chunk
 * handed downstream is never written to again, so any consumer (a hash, a tee, a look-ahead) may keep it.
 */
import archiver from 'archiver';
import crc32 from 'crc-32';
import { createHash } from 'crypto';
import { once } from 'events';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { PassThrough, Readable, Transform, TransformCallback } from 'stream';
import * as zlib from 'zlib';

export type ArchiveFormat = 'zip' | 'tar.gz';

export const archiveExtension = (format: ArchiveFormat) => (format === 'zip' ? 'zip' : 'tar.gz');

/**
 * archiver's zip (compress-commons, crc32-stream) computes every entry's CRC-32 with the pure-JavaScript `crc-32`
 * package, about a tenth of the task's own CPU on the bench. Node ≥ 20.15 has zlib's native crc32 (≈ 25×
 * faster, the same CRC-32 and seed semantics): where it exists, `crc-32`'s `buf` is pointed at it (signed result,
 * like the original). The archive bytes are identical either way.
 */
const nativeCrc32 = (zlib as unknown as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
if (typeof nativeCrc32 === 'function') {
  (crc32 as { buf: (data: Uint8Array, seed?: number) => number }).buf = (data, seed) => nativeCrc32(data, (seed ?? 0) >>> 0) | 0;
}

/** Files smaller than this are stored in a zip as they are: deflating a few hundred bytes saves nothing and costs a zlib stream each. */
const SMALL_FILE = 4096;

/** Read size for archived files. */
const READ_CHUNK = 1 << 20;

/** Paths (relative, `/`-separated) that hold data compressed already. */
const PRECOMPRESSED = /^(objects\/|lfs\/objects\/)/;
/** git-lfs scratch space and git's sample hooks (templates, the same in every repository): never part of a backup. */
const SKIPPED = /^(lfs\/(tmp|incomplete)(\/|$)|hooks\/[^/]+\.sample$)/;

export interface TreeEntry {
  /** Relative, `/`-separated. */
  rel: string;
  isDirectory: boolean;
}

/**
 * Every directory and file below `dir`, relative and sorted, so that the same mirror gives the same archive order.
 * Directories are listed too: git only recognises a repository whose `refs/` and `objects/` exist, empty or not.
 */
export async function listTree(dir: string): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  async function walk(rel: string): Promise<void> {
    const entries = await fsp.readdir(path.join(dir, rel), { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (SKIPPED.test(child)) continue;
      if (entry.isDirectory()) {
        out.push({ rel: child, isDirectory: true });
        await walk(child);
      } else if (entry.isFile()) {
        out.push({ rel: child, isDirectory: false });
      }
    }
  }
  await walk('');
  return out;
}

/** Every file (not directory) below `dir`, relative and sorted. */
export async function listFiles(dir: string): Promise<string[]> {
  return (await listTree(dir)).filter((e) => !e.isDirectory).map((e) => e.rel);
}

/**
 * Streams the files below `dir` as an archive. The returned stream errors if reading or archiving fails.
 * Nothing is written to disk.
 */
export function createArchiveStream(dir: string, format: ArchiveFormat): Readable {
  const archive =
    format === 'zip'
      ? archiver('zip', { zlib: { level: 6 }, forceZip64: false })
      : archiver('tar', { gzip: true, gzipOptions: { level: 1 } });
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  archive.on('warning', (err) => out.destroy(err));
  archive.on('error', (err) => out.destroy(err));
  archive.pipe(out);
  // One entry at a time (one open file), read in 1 MiB chunks: archiver's own file() reads 64 KiB at a time, and
  // every chunk crosses half a dozen streams, which cost more CPU than the bytes themselves. The entry carries the
  // file's stats (mode, mtime, and the size tar needs up front).
  // A consumer that stops reading (a failed upload destroys its body) stops the archive and closes the open file.
  const stop = new AbortController();
  let current: Readable | undefined;
  out.once('close', () => {
    if (out.readableEnded) return;
    stop.abort();
    current?.destroy();
    archive.abort();
  });
  (async () => {
    for (const { rel, isDirectory } of await listTree(dir)) {
      if (stop.signal.aborted) return;
      // Created before the append (the event may fire during it) but awaited only after the lstat below: a stop in
      // between rejects it while nobody awaits it yet, so it is marked handled now (an unhandled rejection ends the
      // task as `Unhandled: The operation was aborted`, losing every repository in flight).
      const added = once(archive, 'entry', { signal: stop.signal });
      added.catch(() => { /* awaited below; a stop is handled by the return after it */ });
      if (isDirectory) {
        archive.append(Buffer.alloc(0), { name: `${rel}/`, type: 'directory', mode: 0o755 } as archiver.EntryData);
      } else {
        const file = path.join(dir, rel);
        const stats = await fsp.lstat(file);
        current = fileStream(file);
        archive.append(current, { name: rel, stats, store: format === 'zip' && (PRECOMPRESSED.test(rel) || stats.size < SMALL_FILE) } as archiver.EntryData);
      }
      try {
        await added;
      } catch (err) {
        if (stop.signal.aborted) return;
        throw err;
      }
      current = undefined;
    }
    await archive.finalize();
  })().catch((err) => { if (!stop.signal.aborted) out.destroy(err); });
  return out;
}

/**
 * A file's bytes, read (once the archiver asks) in chunks of READ_CHUNK bytes, each into a fresh buffer. (Reusing
 * read buffers was measured: on a 300 MB mirror it saved no wall time and at most a few % CPU, within noise, while
 * it made every consumer of the stream responsible for the bytes staying valid.)
 */
function fileStream(file: string): Readable {
  let handle: fsp.FileHandle | undefined;
  let destroyed = false;
  return new Readable({
    highWaterMark: READ_CHUNK,
    read() {
      (async () => {
        if (!handle) {
          const opened = await fsp.open(file, 'r');
          if (destroyed) {
            // Destroyed while opening: nobody will close it otherwise.
            await opened.close();
            return;
          }
          handle = opened;
        }
        const buffer = Buffer.allocUnsafeSlow(READ_CHUNK);
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
        if (bytesRead === 0) {
          this.push(null);
          return;
        }
        this.push(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead));
      })().catch((err) => {
        this.destroy(err);
      });
    },
    destroy(err, callback) {
      destroyed = true;
      const h = handle;
      handle = undefined;
      (h ? h.close() : Promise.resolve()).then(() => callback(err), () => callback(err));
    },
  });
}

/** A pass-through that counts bytes and computes the SHA-256 of everything that flows through it. */
export class HashingStream extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;
  private digestValue?: string;

  constructor() {
    super({ highWaterMark: 1 << 20 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.digestValue = this.hash.digest('hex');
    callback();
  }

  /** The hex SHA-256, available once the stream has ended. */
  get sha256(): string {
    if (!this.digestValue) throw new Error('the archive stream has not ended yet');
    return this.digestValue;
  }
}

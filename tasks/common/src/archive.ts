/**
 * Directory ⇄ archive stream. A mirror goes in as a bare repository at the archive root (plus `lfs/objects`).
 * Pack files, loose objects and LFS objects are already compressed: zip stores them as they are; only the small
 * text files (refs, config) are deflated. tar.gz gzips the whole stream at a fast level.
 */
import archiver from 'archiver';
import { createHash } from 'crypto';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { PassThrough, Readable, Transform, TransformCallback } from 'stream';

export type ArchiveFormat = 'zip' | 'tar.gz';

export const archiveExtension = (format: ArchiveFormat) => (format === 'zip' ? 'zip' : 'tar.gz');

/** Paths (relative, `/`-separated) that hold data compressed already. */
const PRECOMPRESSED = /^(objects\/|lfs\/objects\/)/;
/** git-lfs scratch space: never part of a backup. */
const SKIPPED = /^lfs\/(tmp|incomplete)(\/|$)/;

/** Every file below `dir`, relative and sorted, so that the same mirror gives the same archive order. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(rel: string): Promise<void> {
    const entries = await fsp.readdir(path.join(dir, rel), { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (SKIPPED.test(child)) continue;
      if (entry.isDirectory()) await walk(child);
      else if (entry.isFile()) out.push(child);
    }
  }
  await walk('');
  return out;
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
  listFiles(dir)
    .then((files) => {
      for (const rel of files) {
        archive.file(path.join(dir, rel), { name: rel, store: format === 'zip' && PRECOMPRESSED.test(rel) } as archiver.EntryData);
      }
      return archive.finalize();
    })
    .catch((err) => out.destroy(err));
  return out;
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

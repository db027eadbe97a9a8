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
  listTree(dir)
    .then((entries) => {
      for (const { rel, isDirectory } of entries) {
        if (isDirectory) archive.append(Buffer.alloc(0), { name: `${rel}/`, type: 'directory', mode: 0o755 } as archiver.EntryData);
        else archive.file(path.join(dir, rel), { name: rel, store: format === 'zip' && PRECOMPRESSED.test(rel) } as archiver.EntryData);
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

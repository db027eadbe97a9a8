/** Facts about a bare mirror on disk (as cloned, or as extracted from an archive) that both tasks need, and the disk it is on. */
import { createHash } from 'crypto';
import { createReadStream, promises as fsp } from 'fs';
import * as path from 'path';
import { listFiles } from './archive';

const LFS_OBJECT = /^lfs\/objects\/[0-9a-f]{2}\/[0-9a-f]{2}\/([0-9a-f]{64})$/;

export interface MirrorInventory {
  /** Bytes of every file of the mirror. */
  bytes: number;
  lfsObjects: number;
  lfsBytes: number;
  /** With `verifyLfs`: the LFS objects whose content does not hash to their id. */
  badLfsObjects: string[];
}

/** Walks the mirror once: sizes, LFS objects, and (with `verifyLfs`) every LFS object's SHA-256 against its name. */
export async function inventoryMirror(dir: string, verifyLfs: boolean): Promise<MirrorInventory> {
  const out: MirrorInventory = { bytes: 0, lfsObjects: 0, lfsBytes: 0, badLfsObjects: [] };
  for (const rel of await listFiles(dir)) {
    const file = path.join(dir, rel);
    const { size } = await fsp.stat(file);
    out.bytes += size;
    const m = LFS_OBJECT.exec(rel);
    if (!m) continue;
    out.lfsObjects++;
    out.lfsBytes += size;
    if (verifyLfs && (await sha256OfFile(file)) !== m[1]) out.badLfsObjects.push(m[1]);
  }
  return out;
}

/** The SHA-256 (lower-case hex) of a file's content, read in 1 MiB pieces. */
export async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Free bytes for an unprivileged writer in the file system that holds `dir`. */
export async function freeBytes(dir: string): Promise<number> {
  const s = await fsp.statfs(dir);
  return s.bavail * s.bsize;
}

/** Bytes written below `dir` so far (0 when it does not exist yet); files that vanish while it counts are skipped. */
export async function usedBytes(dir: string): Promise<number> {
  let total = 0;
  let entries;
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += await usedBytes(p);
    else if (e.isFile()) total += await fsp.stat(p).then((st) => st.size, () => 0);
  }
  return total;
}

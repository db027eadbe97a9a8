/**
 * Putting a finished file in place under its final name without ever replacing one that exists, on whatever file
 * system the folder is: local disks, NTFS, FAT/exFAT sticks, SMB and NFS shares, NAS boxes.
 *
 * - `link`: a hard link from the temporary name to the final one. Atomic, and it fails with EEXIST when the name
 *   is taken. NTFS, ext4, APFS and most shares have hard links.
 * - `claim`: where there are none (FAT/exFAT and some NAS answer `EPERM`, `EACCES`, `EISDIR`, `ENOTSUP`, …),
 *   the final name is first created exclusively (`wx`: fails with EEXIST when taken), empty; then the finished
 *   file is renamed over that empty file, which is this run's own. Nothing of anyone else is ever replaced;
 *   for a moment a reader can see the name with no content.
 *
 * Which one a folder supports is probed once before any work starts (`probePublishing`); a link refused later
 * (a share mounted differently below the root) falls back to `claim` for that file and every later one.
 */
import { randomBytes } from 'crypto';
import { promises as fsp } from 'fs';
import * as path from 'path';

export type PublishMethod = 'link' | 'claim';

/** The file operations publishing uses (injectable for tests that play another file system's refusals). */
export interface PublishFs {
  link(existing: string, created: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  open(file: string, flags: string): Promise<{ close(): Promise<void> }>;
  writeFile(file: string, data: string, options: { flag: string }): Promise<void>;
  rm(target: string, options: { force: boolean }): Promise<void>;
}

export const realFs: PublishFs = {
  link: (a, b) => fsp.link(a, b),
  rename: (a, b) => fsp.rename(a, b),
  open: (f, flags) => fsp.open(f, flags),
  writeFile: (f, d, o) => fsp.writeFile(f, d, o),
  rm: (t, o) => fsp.rm(t, o),
};

/** The final name is taken (the `code` is EEXIST whichever method found it). */
export class NameTakenError extends Error {
  readonly code = 'EEXIST';
  constructor(readonly target: string) {
    super(`'${target}' already exists`);
    this.name = 'NameTakenError';
  }
}

const codeOf = (err: unknown) => (err as NodeJS.ErrnoException)?.code ?? '';

/**
 * Which method `dir` supports: writes a probe file, links it, removes both. Any refusal of the link means `claim`
 * (`why` says what the file system answered). A probe file that cannot be written at all throws.
 */
export async function probePublishing(dir: string, fs: PublishFs = realFs): Promise<{ method: PublishMethod; why?: string }> {
  const probe = path.join(dir, `.repobackup-link-probe-${randomBytes(4).toString('hex')}`);
  await fs.writeFile(probe, '', { flag: 'wx' });
  try {
    await fs.link(probe, `${probe}-2`);
    return { method: 'link' };
  } catch (err) {
    return { method: 'claim', why: codeOf(err) || String(err) };
  } finally {
    await fs.rm(`${probe}-2`, { force: true }).catch(() => undefined);
    await fs.rm(probe, { force: true }).catch(() => undefined);
  }
}

/**
 * Publishes `temp` (finished, in the same folder) as `target`, never replacing an existing `target`: throws
 * NameTakenError then. Returns the method that worked: `claim` when a link was refused, so the caller can stop
 * trying links. With `link`, `temp` stays as a second name of the file (the caller removes it); with `claim` it
 * is gone.
 */
export async function publishFile(temp: string, target: string, method: PublishMethod, fs: PublishFs = realFs): Promise<PublishMethod> {
  if (method === 'link') {
    try {
      await fs.link(temp, target);
      return 'link';
    } catch (err) {
      if (codeOf(err) === 'EEXIST') throw new NameTakenError(target);
      // No hard links here after all (EPERM, EACCES, EISDIR, ENOTSUP, EXDEV, ENOSYS, …): claim the name instead.
    }
  }
  let placeholder;
  try {
    placeholder = await fs.open(target, 'wx');
  } catch (err) {
    if (codeOf(err) === 'EEXIST') throw new NameTakenError(target);
    throw err;
  }
  await placeholder.close();
  try {
    // The placeholder is this run's own, empty file: replacing it is the only overwrite that can happen. A scanner
    // that opened the fresh file may make Windows refuse the rename for a moment.
    for (let attempt = 1; ; attempt++) {
      try {
        await fs.rename(temp, target);
        break;
      } catch (err) {
        if (attempt >= 5 || !['EBUSY', 'EPERM', 'EACCES'].includes(codeOf(err))) throw err;
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
  } catch (err) {
    await fs.rm(target, { force: true }).catch(() => undefined);
    throw err;
  }
  return 'claim';
}

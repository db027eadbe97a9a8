/**
 * Stage 4 of both modes: prove an extracted repository whole. `git fsck --connectivity-only` (every ref's history
 * is complete and readable) and the SHA-256 of every LFS object against its name. Failures are CorruptArchiveErrors.
 */
import { errorMessage } from '../../../common/src/errors';
import { Git, Ref } from '../../../common/src/git';
import { inventoryMirror } from '../../../common/src/mirror';
import { CorruptArchiveError } from './fetch';

export interface Checked {
  refs: Ref[];
  /** The ref HEAD points at (the default branch), when it exists. */
  head?: string;
  lfs: { objects: number; bytes: number };
}

export async function checkRepository(repoDir: string, git: Git, signal?: AbortSignal): Promise<Checked> {
  try {
    await git.fsck(repoDir, signal);
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw new CorruptArchiveError(`The archive's repository is incomplete (git fsck --connectivity-only failed): ${errorMessage(err)}`);
  }
  const refs = await git.refs(repoDir);
  const head = await git.symbolicRef(repoDir);
  const { lfsObjects: objects, lfsBytes: bytes, badLfsObjects: bad } = await inventoryMirror(repoDir, true);
  if (bad.length) {
    throw new CorruptArchiveError(`${bad.length} LFS object(s) in the archive do not match their SHA-256 (${bad.slice(0, 3).join(', ')}${bad.length > 3 ? ', …' : ''}): the archive is damaged.`);
  }
  return { refs, head, lfs: { objects, bytes } };
}

/** Differences between the extracted counts and what the backup recorded (manifest entry or blob metadata). */
export function differencesFromRecord(record: { refs?: unknown; lfsObjects?: unknown; lfsobjects?: unknown } | undefined, refs: number, lfsObjects: number): string[] {
  if (!record) return [];
  const num = (v: unknown) => (typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : undefined);
  const recordedRefs = num(record.refs);
  const recordedLfs = num(record.lfsObjects ?? record.lfsobjects);
  const out: string[] = [];
  if (recordedRefs !== undefined && recordedRefs !== refs) out.push(`The backup recorded ${recordedRefs} refs but the archive holds ${refs}.`);
  if (recordedLfs !== undefined && recordedLfs !== lfsObjects) out.push(`The backup recorded ${recordedLfs} LFS objects but the archive holds ${lfsObjects}.`);
  return out;
}

/**
 * Removing files and folders where something else may hold them for a moment: on Windows an antivirus scanner or
 * the search indexer opens every new file (a fresh git pack, a published archive), and while it does, deleting
 * fails with EBUSY or EPERM. Node's own `maxRetries` covers a few hundred milliseconds; a scan of a large pack
 * takes longer. Removal is retried with a growing pause, and clean-up never turns a good result into a failure.
 */
import { promises as fsp, rmSync } from 'fs';
import { errorMessage } from '../errors';

/** Errors a scanner, an indexer or a slow share gives while it holds a file; worth waiting for. */
const TRANSIENT = new Set(['EBUSY', 'EPERM', 'EACCES', 'ENOTEMPTY', 'EMFILE', 'ENFILE']);

export interface RemoveOptions {
  /** Tries in all (default 7: about 6 s of waiting in all). */
  attempts?: number;
  /** First pause between tries in ms; it doubles each time (default 100). */
  delayMs?: number;
  /** For tests: the removal itself and the pause. */
  rm?: (target: string, options: { recursive: boolean; force: boolean; maxRetries: number; retryDelay: number }) => Promise<void>;
  sleep?: (ms: number) => Promise<void>;
}

/** Removes `target` (file or folder, recursively; a missing one is fine). Throws the last error when every try failed. */
export async function removeWithRetries(target: string, options: RemoveOptions = {}): Promise<void> {
  const attempts = Math.max(1, options.attempts ?? 7);
  const rm = options.rm ?? ((t, o) => fsp.rm(t, o));
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let delay = options.delayMs ?? 100;
  for (let attempt = 1; ; attempt++) {
    try {
      await rm(target, { recursive: true, force: true, maxRetries: 2, retryDelay: 50 });
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (attempt >= attempts || !TRANSIENT.has(code)) throw err;
      await sleep(delay);
      delay *= 2;
    }
  }
}

/**
 * Clean-up that must not fail what it cleans up after: removes `target` with retries and, when it still cannot,
 * reports it through `warn` (naming what is left) and resolves. Returns whether it is gone.
 */
export async function removeQuietly(target: string, warn: (message: string) => void, options: RemoveOptions = {}): Promise<boolean> {
  try {
    await removeWithRetries(target, options);
    return true;
  } catch (err) {
    warn(`Could not remove ${target}: ${errorMessage(err)}. Another process (an antivirus scanner, the search indexer) may hold it; it is left behind and can be deleted.`);
    return false;
  }
}

/**
 * For `process.on('exit')` handlers, which cannot wait: one synchronous removal (Node's own short retries) that
 * never throws (an exception there would skip the other exit handlers). Whatever is left stays for the agent's
 * clean-up of Agent.TempDirectory; returns whether it is gone.
 */
export function removeSyncQuietly(target: string, rm: (t: string, o: { recursive: boolean; force: boolean; maxRetries: number }) => void = rmSync): boolean {
  try {
    rm(target, { recursive: true, force: true, maxRetries: 3 });
    return true;
  } catch {
    return false;
  }
}

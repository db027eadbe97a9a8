import { Logger } from './host';

export interface RetryPolicy {
  /** Total attempts, the first included. */
  attempts: number;
  /** Base delay of the exponential backoff in ms (doubled each retry, with jitter). */
  baseDelayMs: number;
  /** The longest single wait, also for a server's Retry-After. */
  maxDelayMs: number;
}

export const defaultRetryPolicy: RetryPolicy = { attempts: 5, baseDelayMs: 1000, maxDelayMs: 60_000 };

export interface RetryDecision {
  retry: boolean;
  /** The wait the server asked for (Retry-After), in ms. */
  afterMs?: number;
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(timer); reject(signal!.reason); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/**
 * Runs `fn` until it succeeds, `classify` says the error is not transient, or the attempts are used up.
 * Waits as the server asked (Retry-After) or with exponential backoff and jitter.
 */
export async function withRetry<T>(
  what: string,
  fn: (attempt: number) => Promise<T>,
  classify: (err: unknown) => RetryDecision,
  log: Logger,
  policy: RetryPolicy = defaultRetryPolicy,
  signal?: AbortSignal,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      const decision = classify(err);
      if (!decision.retry || attempt >= policy.attempts || signal?.aborted) throw err;
      const backoff = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      const wait = Math.min(policy.maxDelayMs, decision.afterMs ?? backoff * (0.75 + Math.random() * 0.5));
      const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
      log.warn(`${what}: attempt ${attempt} of ${policy.attempts} failed (${reason}); retrying in ${(wait / 1000).toFixed(1)} s`);
      await sleep(wait, signal);
    }
  }
}

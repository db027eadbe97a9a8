// Adaptive concurrency: how many repositories to back up at once, grown while throughput rises.
//
// The best number of lanes depends on where the time goes: over a long round trip each lane waits on connection
// setups and negotiations, so more lanes help; on a CPU- or disk-bound agent more lanes only compete. A Pacer starts
// at `start` lanes and, after each window of finished repositories (at least `windowRepos` and `windowMs`), compares
// the window's throughput with the previous one: a gain of at least `gain` adds a lane (up to `max`), a loss of at
// least `gain` removes one (down to `min`) and holds for `holdWindows` windows. A throttling answer (429) removes a
// lane at once and holds. Throughput counts archive bytes plus `repoWeight` bytes per repository, so that an
// organization of tiny repositories is paced by repositories per second.
//
// Pure: the clock is injected; the worker pool asks `lanes` before starting the next repository.

export interface PaceOptions {
  start: number;
  max: number;
  min?: number;
  windowRepos?: number;
  windowMs?: number;
  gain?: number;
  holdWindows?: number;
  repoWeight?: number;
}

export interface PaceStep {
  at: number;
  lanes: number;
  /** Bytes per millisecond (weighted) of the window that led to this step. */
  throughput: number;
  why: 'grow' | 'shrink' | 'hold' | 'throttled' | 'cap';
}

export class Pacer {
  private current: number;
  private readonly o: Required<PaceOptions>;
  private windowStart: number;
  private bytes = 0;
  private repos = 0;
  private previous: number | undefined;
  private hold = 0;
  readonly steps: PaceStep[] = [];

  constructor(options: PaceOptions, private readonly clock: () => number = Date.now) {
    const min = options.min ?? 1;
    if (!(Number.isInteger(options.start) && Number.isInteger(options.max) && min >= 1 && min <= options.start && options.start <= options.max)) {
      throw new Error(`pace: need integers 1 ≤ min (${min}) ≤ start (${options.start}) ≤ max (${options.max})`);
    }
    this.o = { min, windowRepos: 8, windowMs: 10_000, gain: 0.1, holdWindows: 2, repoWeight: 1 << 20, ...options };
    this.current = options.start;
    this.windowStart = clock();
  }

  /** How many repositories may run at once from now on. */
  get lanes(): number {
    return this.current;
  }

  /** One repository finished with an archive of `bytes`; returns the lanes from now on. */
  finished(bytes: number): number {
    this.bytes += bytes;
    this.repos++;
    const now = this.clock();
    const elapsed = now - this.windowStart;
    if (this.repos < this.o.windowRepos || elapsed < this.o.windowMs) return this.current;
    const throughput = (this.bytes + this.repos * this.o.repoWeight) / elapsed;
    this.bytes = 0;
    this.repos = 0;
    this.windowStart = now;
    const before = this.previous;
    this.previous = throughput;
    if (this.hold > 0) {
      this.hold--;
      return this.step(now, throughput, 'hold');
    }
    if (before === undefined || throughput >= before * (1 + this.o.gain)) {
      if (this.current >= this.o.max) return this.step(now, throughput, 'cap');
      this.current++;
      return this.step(now, throughput, 'grow');
    }
    if (throughput <= before * (1 - this.o.gain) && this.current > this.o.min) {
      this.current--;
      this.hold = this.o.holdWindows;
      return this.step(now, throughput, 'shrink');
    }
    // Flat: more lanes stopped paying; stay.
    return this.step(now, throughput, 'hold');
  }

  /** The service answered 429 (or asked to slow down): one lane less at once, then hold. */
  throttled(): number {
    if (this.current > this.o.min) this.current--;
    this.hold = this.o.holdWindows;
    this.previous = undefined;
    this.bytes = 0;
    this.repos = 0;
    this.windowStart = this.clock();
    return this.step(this.windowStart, 0, 'throttled');
  }

  private step(at: number, throughput: number, why: PaceStep['why']): number {
    this.steps.push({ at, lanes: this.current, throughput, why });
    return this.current;
  }
}

/** How many repositories run at once: a fixed number, or adaptive (a Pacer from `start` up to `max`). */
export interface Lanes {
  auto: boolean;
  start: number;
  max: number;
}

export const AUTO_LANES = { start: 4, max: 16 } as const;
/** The reuse pass (incremental runs): copies are latency-bound and use no disk or CPU, so it runs this many times wider. */
export const REUSE_WIDTH = 4;
export const REUSE_MAX = 32;

/** The lanes of the reuse pass: `REUSE_WIDTH` × the most the normal pass may use, at most `REUSE_MAX`. */
export function reuseLanes(lanes: Lanes): number {
  return Math.min(REUSE_MAX, REUSE_WIDTH * lanes.max);
}

export interface PacedRun {
  /** The lanes at the end (fixed: the number given). */
  final: number;
  /** The most lanes that were in use at once. */
  peak: number;
  steps: PaceStep[];
}

/**
 * Runs `fn` over `items`, at most `lanes` at once: fixed, or adaptive (`pacer` asked after each item, which
 * returns its archive bytes). A lane over the current figure ends after its item; a new figure above the running
 * lanes starts more at once. Stops taking new items once `signal` aborts. `onChange` hears every change of the figure.
 */
export async function forEachPaced<T>(
  items: T[], limit: number | Pacer, signal: AbortSignal | undefined,
  fn: (item: T, index: number) => Promise<number>, onChange?: (lanes: number, step: PaceStep) => void,
): Promise<PacedRun> {
  const pacer = typeof limit === 'number' ? undefined : limit;
  const target = () => (pacer ? pacer.lanes : (limit as number));
  let next = 0;
  let running = 0;
  let peak = 0;
  let failure: unknown;
  return new Promise<PacedRun>((resolve, reject) => {
    const finish = () => {
      if (running > 0) return;
      if (failure !== undefined) reject(failure);
      else resolve({ final: target(), peak, steps: pacer ? pacer.steps : [] });
    };
    const fill = () => {
      while (running < target() && next < items.length && !signal?.aborted && failure === undefined) {
        const index = next++;
        running++;
        peak = Math.max(peak, running);
        fn(items[index], index).then((bytes) => {
          if (pacer) {
            const before = pacer.lanes;
            const after = pacer.finished(bytes);
            if (after !== before) onChange?.(after, pacer.steps[pacer.steps.length - 1]);
          }
        }, (err) => { failure ??= err; }).finally(() => {
          running--;
          fill();
          finish();
        });
      }
    };
    fill();
    finish();
  });
}

// Adaptive concurrency (tasks/RepoBackup/RepoBackupV1/src/pace.ts), against simulated agents: throughput as a
// function of the lanes, on an injected clock.
import assert from 'assert';
import { AUTO_LANES, forEachPaced, Pacer, reuseLanes } from '../../tasks/RepoBackup/RepoBackupV1/src/pace';
import { readConcurrency } from '../../tasks/RepoBackup/RepoBackupV1/src/settings';
import { FakeHost } from './fake-host';

const MB = 1 << 20;

/**
 * Runs `repos` repositories of `size` bytes through `pacer`, the clock advancing as `rate(lanes)` (bytes per ms,
 * weighted as the pacer weighs them) allows; returns the lanes after each repository.
 */
function simulate(pacer: Pacer, clock: { now: number }, rate: (lanes: number) => number, repos: number, size = 10 * MB): number[] {
  const lanes: number[] = [];
  for (let i = 0; i < repos; i++) {
    clock.now += (size + MB) / rate(pacer.lanes);
    lanes.push(pacer.finished(size));
  }
  return lanes;
}

describe('Pacer (adaptive concurrency)', () => {
  it('network-bound: grows while throughput rises, stops at the knee', () => {
    const clock = { now: 0 };
    const pacer = new Pacer({ start: 4, max: 16, windowMs: 1000 }, () => clock.now);
    // Each lane adds 5 MB/s until the link's 50 MB/s: the knee is at 10 lanes.
    const lanes = simulate(pacer, clock, (l) => (Math.min(l * 5, 50) * 1e6) / 1000, 400);
    const last = lanes.at(-1)!;
    assert.ok(last >= 10 && last <= 11, `ended with ${last} lanes: ${pacer.steps.map((s) => `${s.why}→${s.lanes}`).join(' ')}`);
    assert.ok(pacer.steps.some((s) => s.why === 'grow'));
  });

  it('CPU-bound: the same throughput at any lane count, so it stops after one try', () => {
    const clock = { now: 0 };
    const pacer = new Pacer({ start: 4, max: 16, windowMs: 1000 }, () => clock.now);
    const lanes = simulate(pacer, clock, () => 30_000, 200);
    assert.strictEqual(lanes.at(-1), 5, pacer.steps.map((s) => `${s.why}→${s.lanes}`).join(' '));
  });

  it('worse with more lanes: grows once, then falls back and holds', () => {
    const clock = { now: 0 };
    const pacer = new Pacer({ start: 4, max: 16, windowMs: 1000 }, () => clock.now);
    const lanes = simulate(pacer, clock, (l) => (l <= 4 ? 40_000 : 20_000), 200);
    assert.strictEqual(lanes.at(-1), 4, pacer.steps.map((s) => `${s.why}→${s.lanes}`).join(' '));
    assert.ok(pacer.steps.some((s) => s.why === 'shrink'));
  });

  it('never above max, never below min; a 429 removes a lane at once', () => {
    const clock = { now: 0 };
    const pacer = new Pacer({ start: 2, max: 3, min: 2, windowMs: 1000 }, () => clock.now);
    simulate(pacer, clock, (l) => l * 100_000, 200);
    assert.strictEqual(pacer.lanes, 3);
    assert.strictEqual(pacer.throttled(), 2);
    assert.strictEqual(pacer.throttled(), 2);
  });

  it('waits for a whole window (repositories and time) before deciding', () => {
    const clock = { now: 0 };
    const pacer = new Pacer({ start: 4, max: 16, windowRepos: 8, windowMs: 10_000 }, () => clock.now);
    for (let i = 0; i < 20; i++) { clock.now += 100; pacer.finished(MB); } // 20 repositories in 2 s
    assert.strictEqual(pacer.lanes, 4);
    assert.strictEqual(pacer.steps.length, 0);
  });

  it('refuses inconsistent options', () => {
    assert.throws(() => new Pacer({ start: 8, max: 4 }), /start \(8\) ≤ max \(4\)/);
    assert.throws(() => new Pacer({ start: 0, max: 4 }), /min/);
  });
});

/** A task that takes `ms` on the real clock and reports `bytes`; records how many ran at once. */
function tracker() {
  let running = 0;
  const seen: number[] = [];
  const fn = (ms: number, bytes = 0) => async () => {
    running++;
    seen.push(running);
    await new Promise((r) => setTimeout(r, ms));
    running--;
    return bytes;
  };
  return { seen, fn, max: () => Math.max(0, ...seen) };
}

describe('forEachPaced (the repository pool)', () => {
  it('fixed: exactly `limit` at once, every item once, in order of start', async () => {
    const t = tracker();
    const started: number[] = [];
    const run = await forEachPaced(Array.from({ length: 12 }, (_, i) => i), 3, undefined, async (item, index) => {
      assert.strictEqual(item, index);
      started.push(index);
      return t.fn(5)();
    });
    assert.deepStrictEqual(started, [...Array(12).keys()]);
    assert.strictEqual(t.max(), 3);
    assert.deepStrictEqual(run, { final: 3, peak: 3, steps: [] });
  });

  it('adaptive: starts more lanes as soon as the pacer grows, lets lanes end when it shrinks, never more than the figure', async () => {
    // Fake clock: every finished item advances it by 1 s / rate; the rate rises with the lanes running up to 6, then falls.
    const clock = { now: 0 };
    const pacer = new Pacer({ start: 2, max: 16, windowRepos: 2, windowMs: 1 }, () => clock.now);
    let running = 0;
    let over = 0;
    let peakRunning = 0;
    const changes: number[] = [];
    const run = await forEachPaced(Array.from({ length: 120 }, (_, i) => i), pacer, undefined, async () => {
      running++;
      peakRunning = Math.max(peakRunning, running);
      if (running > pacer.lanes) over++;
      await new Promise((r) => setTimeout(r, 2));
      clock.now += 1000 / (running <= 6 ? running : Math.max(1, 12 - running));
      running--;
      return 0;
    }, (lanes) => changes.push(lanes));
    const story = `changes ${changes.join(',')}; ${pacer.steps.map((s) => `${s.why}→${s.lanes}`).join(' ')}`;
    assert.strictEqual(over, 0, `an item started beyond the figure: ${story}`);
    assert.strictEqual(changes[0], 3, story);
    assert.ok(changes.some((c, i) => i > 0 && c < changes[i - 1]), `it dropped back: ${story}`);
    assert.strictEqual(run.peak, peakRunning);
    assert.ok(run.peak >= 6 && run.peak <= Math.max(...changes), `peak ${run.peak}: ${story}`);
    assert.ok(run.final >= 4 && run.final <= 10, `final ${run.final}: ${story}`);
  });

  it('stops taking items once the signal aborts; a thrown error ends the pool after the running ones', async () => {
    const ac = new AbortController();
    let ran = 0;
    await forEachPaced(Array.from({ length: 50 }, (_, i) => i), 4, ac.signal, async (i) => {
      ran++;
      if (i === 5) ac.abort();
      await new Promise((r) => setTimeout(r, 1));
      return 0;
    });
    assert.ok(ran <= 10, `ran ${ran}`);
    let after = 0;
    await assert.rejects(forEachPaced([1, 2, 3, 4, 5, 6], 2, undefined, async (i) => {
      if (i === 2) throw new Error('boom');
      after++;
      await new Promise((r) => setTimeout(r, 5));
      return 0;
    }), /boom/);
    assert.ok(after <= 2, `after ${after}`);
    assert.deepStrictEqual(await forEachPaced([], 4, undefined, async () => 0), { final: 4, peak: 0, steps: [] });
  });
});

describe('concurrency input (settings.readConcurrency)', () => {
  it('empty or auto: adaptive from 4 up to 16; a number: fixed; garbage named with the fix', () => {
    assert.deepStrictEqual(readConcurrency(new FakeHost()), { auto: true, start: 4, max: 16 });
    assert.deepStrictEqual(readConcurrency(new FakeHost({ concurrency: 'Auto' })), { auto: true, ...AUTO_LANES });
    assert.deepStrictEqual(readConcurrency(new FakeHost({ concurrency: '8' })), { auto: false, start: 8, max: 8 });
    const host = new FakeHost({ concurrency: '100' });
    assert.deepStrictEqual(readConcurrency(host), { auto: false, start: 64, max: 64 });
    assert.match(host.warnings()[0], /concurrency.*using 64/);
    assert.throws(() => readConcurrency(new FakeHost({ concurrency: 'fast' })), /^InputError: Input 'concurrency': 'fast' is not a whole number or 'auto'\. Use auto .* or a number from 1 to 64\.$/);
    assert.throws(() => readConcurrency(new FakeHost({ concurrency: '0' })), /concurrency.*too small/);
  });

  it('the reuse pass runs 4× the most lanes, at most 32', () => {
    assert.strictEqual(reuseLanes({ auto: true, start: 4, max: 16 }), 32);
    assert.strictEqual(reuseLanes({ auto: false, start: 4, max: 4 }), 16);
    assert.strictEqual(reuseLanes({ auto: false, start: 1, max: 1 }), 4);
    assert.strictEqual(reuseLanes({ auto: false, start: 64, max: 64 }), 32);
  });
});

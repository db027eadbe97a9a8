// Adaptive concurrency (tasks/RepoBackup/RepoBackupV1/src/pace.ts), against simulated agents: throughput as a
// function of the lanes, on an injected clock.
import assert from 'assert';
import { Pacer } from '../../tasks/RepoBackup/RepoBackupV1/src/pace';

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

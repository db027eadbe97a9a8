import assert from 'assert';
import { CANCEL_SIGNALS, runWithCancellation } from '../../tasks/common/src/cancel';

/** Runs `runWithCancellation` in this process with `exit` recorded, sends `signals` (as the agent would), returns what happened. */
async function cancelWith(signals: NodeJS.Signals[]) {
  const lines: string[] = [];
  const exits: number[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => { lines.push(a.join(' ')); };
  let reason: unknown;
  let release!: () => void;
  const finished = new Promise<void>((r) => { release = r; });
  try {
    runWithCancellation(async (signal) => {
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      reason = signal.reason;
      // Clean-up takes a moment, as the finally blocks of a real run do; a second signal may arrive meanwhile.
      await new Promise((r) => setTimeout(r, 50));
      release();
    }, 60_000, (code) => { exits.push(code); });
    await new Promise((r) => setImmediate(r));
    for (const s of signals) (process.emit as (e: string, ...a: unknown[]) => boolean)(s, s); // as Node delivers a signal: its name as argument
    await finished;
    await new Promise((r) => setImmediate(r));
  } finally {
    console.log = log;
  }
  return { lines, exits, reason };
}

describe('cancel: the agent\'s cancel signals on every platform', () => {
  it('listens to SIGINT, SIGTERM and SIGBREAK (Windows CTRL_BREAK), and stops listening when the run ends', async () => {
    assert.deepStrictEqual(CANCEL_SIGNALS, ['SIGINT', 'SIGTERM', 'SIGBREAK']);
    const before = process.listenerCount('SIGBREAK');
    await cancelWith(['SIGINT']);
    assert.strictEqual(process.listenerCount('SIGBREAK'), before);
  });

  it('Windows: CTRL_C (SIGINT) aborts the run; CTRL_BREAK (SIGBREAK) after it exits at once', async () => {
    const { lines, exits, reason } = await cancelWith(['SIGINT', 'SIGBREAK']);
    assert.match(String((reason as Error).message), /canceled \(SIGINT\)/);
    assert.deepStrictEqual(exits, [1]);
    assert.ok(lines.some((l) => /Received SIGBREAK as well: exiting now/.test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => l.startsWith('##vso[task.complete result=Failed;]Canceled')));
  });

  it('SIGBREAK alone aborts the run like SIGINT (no exit while it winds down)', async () => {
    const { exits, reason } = await cancelWith(['SIGBREAK']);
    assert.match(String((reason as Error).message), /canceled \(SIGBREAK\)/);
    assert.deepStrictEqual(exits, []);
  });
});

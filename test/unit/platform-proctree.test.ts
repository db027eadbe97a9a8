import assert from 'assert';
import { spawn } from 'child_process';
import {
  descendantsIn, endTree, isRunning, killTreeSync, parsePs, processTable, ProcSystem, ProcTable, realSystem,
} from '../../tasks/common/src/platform/proctree';

/**
 * A process table that plays the kernel: signals change states, a zombie still answers kill(pid, 0) (as on every
 * Unix) until its parent reaps it, and `ps` lists it with stat Z.
 */
function fakeUnix(platform: NodeJS.Platform, table: Map<number, { ppid: number; state: string; onTerm?: 'die' | 'zombie' | 'ignore' }>) {
  const calls: string[] = [];
  const sys: ProcSystem = {
    platform,
    run: async (file, args) => {
      calls.push(`${file} ${args.join(' ')}`);
      const out = [...table].map(([pid, e]) => `${pid} ${e.ppid} ${e.state}s`).join('\n');
      return { code: 0, stdout: `${out}\n` };
    },
    runSync: (file, args) => { calls.push(`sync ${file} ${args.join(' ')}`); return [...table].map(([pid, e]) => `${pid} ${e.ppid} ${e.state}`).join('\n'); },
    startDetached: (file, args) => { calls.push(`detached ${file} ${args.join(' ')}`); },
    kill: (pid, sig) => {
      const e = table.get(pid);
      if (!e) throw Object.assign(new Error('ESRCH'), { code: 'ESRCH' });
      if (sig === 0) return;
      calls.push(`${sig} ${pid}`);
      if (sig === 'SIGKILL' || e.onTerm === 'die') table.delete(pid);
      else if (e.onTerm === 'zombie') e.state = 'Z';
    },
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  };
  return { sys, calls };
}

describe('platform/proctree: ending a tool and everything it started, per platform', () => {
  it('ps output: pid, parent, state; zombies (Z) and dead (X) processes are not running', () => {
    const table = parsePs('  1     0 Ss\n 100     1 S+\n 101   100 Z+\n 102   101 R\n 103   100 X\ngarbage\n');
    assert.deepStrictEqual(descendantsIn(table, 100), [101, 103, 102]);
    assert.deepStrictEqual([100, 101, 102, 103].map((p) => isRunning(table, p)), [true, false, true, false]);
    assert.strictEqual(isRunning(table, 999), false);
  });

  it('macOS: children that are zombies after SIGTERM end the wait at once (not after the grace period)', async () => {
    const table = new Map([
      [100, { ppid: 1, state: 'S', onTerm: 'die' as const }],
      [101, { ppid: 100, state: 'S', onTerm: 'zombie' as const }],
      [102, { ppid: 101, state: 'S', onTerm: 'zombie' as const }],
    ]);
    const { sys, calls } = fakeUnix('darwin', table);
    const started = Date.now();
    await endTree(100, 5000, sys);
    const ms = Date.now() - started;
    console.log(`      endTree with two zombies (grace 5000 ms): ${ms} ms`);
    assert.ok(ms < 1000, `took ${ms} ms: the zombies were waited on`);
    assert.ok(calls.includes('ps -A -o pid= -o ppid= -o stat='), calls.join('; '));
    assert.deepStrictEqual(calls.filter((c) => c.startsWith('SIG')), ['SIGTERM 100', 'SIGTERM 101', 'SIGTERM 102'], 'no SIGKILL needed');
  });

  it('macOS: a process that ignores SIGTERM is killed after the grace period; a child it starts meanwhile is signalled too', async () => {
    const table = new Map([[200, { ppid: 1, state: 'S', onTerm: 'ignore' as const }]]);
    const { sys, calls } = fakeUnix('darwin', table);
    setTimeout(() => table.set(201, { ppid: 200, state: 'R', onTerm: 'ignore' }), 50);
    await endTree(200, 300, sys);
    assert.deepStrictEqual(calls.filter((c) => c.startsWith('SIG')), ['SIGTERM 200', 'SIGTERM 201', 'SIGKILL 200', 'SIGKILL 201']);
    assert.strictEqual(table.size, 0);
  });

  it('a hard exit while the tree is being ended kills the helpers already signalled, even once re-parented', async () => {
    const table = new Map([
      [300, { ppid: 1, state: 'S', onTerm: 'die' as const }],
      [301, { ppid: 300, state: 'S', onTerm: 'ignore' as const }],
    ]);
    const { sys, calls } = fakeUnix('linux', table);
    sys.readProc = () => parsePs([...table].map(([pid, e]) => `${pid} ${e.ppid} ${e.state}`).join('\n'));
    const ending = endTree(300, 400, sys);
    await new Promise((r) => setTimeout(r, 50));
    table.get(301)!.ppid = 1; // its parent ended: init adopted it, it is no longer below the root
    killTreeSync(300, sys);
    assert.ok(calls.includes('SIGKILL 301'), calls.join('; '));
    await ending;
  });

  it('a real zombie here, read through ps as on macOS: it answers kill(pid, 0) but is not running', async function () {
    // `sh` starts `sleep 0.05` in the background and becomes `sleep 30`, which never reaps it: a zombie.
    const child = spawn('sh', ['-c', 'sleep 0.05 & exec sleep 30'], { stdio: 'ignore' });
    try {
      const ps: ProcSystem = { ...realSystem, platform: 'darwin', readProc: undefined };
      let zombie: number | undefined;
      for (let i = 0; i < 100 && zombie === undefined; i++) {
        await new Promise((r) => setTimeout(r, 20));
        const table = (await processTable(ps)) as ProcTable;
        zombie = descendantsIn(table, child.pid!).find((p) => table.get(p)?.state === 'Z');
      }
      assert.ok(zombie, 'a zombie child of the test process');
      process.kill(zombie!, 0); // still "exists" for a signal
      assert.strictEqual(isRunning((await processTable(ps))!, zombie!), false);
      const started = Date.now();
      await endTree(child.pid!, 5000, ps);
      const ms = Date.now() - started;
      console.log(`      endTree of sleep + zombie via ps (grace 5000 ms): ${ms} ms`);
      assert.ok(ms < 2500, `took ${ms} ms`);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('Windows: taskkill /T /F runs without blocking the event loop; the exit handler starts it detached', async () => {
    const calls: string[] = [];
    let rootAlive = true;
    const sys: ProcSystem = {
      platform: 'win32',
      run: (file, args) => {
        calls.push(`${file} ${args.join(' ')}`);
        return new Promise((r) => setTimeout(() => { rootAlive = false; r({ code: 0, stdout: '' }); }, 300));
      },
      runSync: () => { throw new Error('no synchronous child process on Windows paths'); },
      startDetached: (file, args) => { calls.push(`detached ${file} ${args.join(' ')}`); },
      kill: (_pid, sig) => { if (sig !== 0) throw new Error('no POSIX signals here'); if (!rootAlive) throw new Error('ESRCH'); },
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    };
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    try {
      await endTree(4242, 1500, sys);
    } finally {
      clearInterval(timer);
    }
    console.log(`      event loop ticks (10 ms) while taskkill ran 300 ms: ${ticks}`);
    assert.ok(ticks >= 10, `the event loop was blocked (${ticks} ticks)`);
    assert.deepStrictEqual(calls, ['taskkill /PID 4242 /T /F']);
    const started = Date.now();
    killTreeSync(4243, sys);
    assert.ok(Date.now() - started < 100);
    assert.deepStrictEqual(calls.slice(1), ['detached taskkill /PID 4243 /T /F']);
  });
});

// The suite's own promise: one failing test ends `npm test` within seconds, never a hang that would sit until CI's
// time limit. Runs a fixture suite (a task timed out mid-clone, a server left listening) with the options of
// .mocharc.json, and once more without mocha's exit to show the fixture would hang (so this test can fail).
import assert from 'assert';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '..', '..');
const MOCHA = path.join(ROOT, 'node_modules', 'mocha', 'bin', 'mocha.js');
const FIXTURE = path.join(ROOT, 'build', 'test', 'fixtures', 'hang.fixture.js');

function runSuite(exit: boolean, limitMs: number): Promise<{ code: number | null; ms: number; killed: boolean; out: string }> {
  const config = JSON.parse(fs.readFileSync(path.join(ROOT, '.mocharc.json'), 'utf8'));
  const args = [MOCHA, '--no-config', '--reporter', 'dot', '--timeout', String(config.timeout), ...(config.require ?? []).flatMap((r: string) => ['--require', r]),
    exit ? '--exit' : '--no-exit', FIXTURE];
  const started = Date.now();
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  let killed = false;
  const timer = setTimeout(() => { killed = true; try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } }, limitMs);
  return new Promise((resolve) => child.once('close', (code) => { clearTimeout(timer); resolve({ code, ms: Date.now() - started, killed, out }); }));
}

describe('the suite ends when a test fails', function () {
  this.timeout(120_000);

  it('.mocharc.json makes mocha exit after the last test, and names what was left open', async () => {
    const config = JSON.parse(fs.readFileSync(path.join(ROOT, '.mocharc.json'), 'utf8'));
    assert.strictEqual(config.exit, true);
    const r = await runSuite(true, 60_000);
    console.log(`      failing fixture suite ended in ${r.ms} ms (exit code ${r.code})`);
    assert.ok(!r.killed, `the suite hung:\n${r.out}`);
    assert.strictEqual(r.code, 1, r.out);
    assert.match(r.out, /deliberate failure \(timed out: true\)/);
    assert.match(r.out, /Still open after the suite \(left by a test\): .*TCPServerWrap/);
  });

  it('without exit, the same fixture would hang (what the first case guards against)', async () => {
    const r = await runSuite(false, 15_000);
    assert.ok(r.killed, `expected a hang, but it ended with ${r.code} in ${r.ms} ms`);
  });
});

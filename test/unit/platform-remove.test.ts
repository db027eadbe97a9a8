import assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { removeQuietly, removeSyncQuietly, removeWithRetries } from '../../tasks/common/src/platform/remove';

const busy = (code = 'EBUSY') => Object.assign(new Error(`${code}: resource busy or locked, rmdir 'x'`), { code });

/** An `rm` that fails `failures` times with `code` (as a scanner holding a file makes Windows do), then removes for real. */
function flakyRm(failures: number, code = 'EBUSY') {
  const calls: string[] = [];
  const rm = async (target: string, options: { recursive: boolean; force: boolean }) => {
    calls.push(target);
    if (calls.length <= failures) throw busy(code);
    await fs.promises.rm(target, options);
  };
  return { rm, calls };
}

describe('platform/remove: removal with retries (Windows scanners and indexers)', () => {
  let dir: string;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rb-remove-')); });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('retries EBUSY / EPERM / EACCES with a growing pause until the folder is gone', async () => {
    for (const code of ['EBUSY', 'EPERM', 'EACCES', 'ENOTEMPTY']) {
      const target = path.join(dir, code);
      fs.mkdirSync(path.join(target, 'objects', 'pack'), { recursive: true });
      fs.writeFileSync(path.join(target, 'objects', 'pack', 'pack-1.pack'), 'x');
      const { rm, calls } = flakyRm(4, code);
      const pauses: number[] = [];
      await removeWithRetries(target, { rm, sleep: async (ms) => { pauses.push(ms); } });
      assert.strictEqual(fs.existsSync(target), false, code);
      assert.strictEqual(calls.length, 5, code);
      assert.deepStrictEqual(pauses, [100, 200, 400, 800], code);
    }
  });

  it('gives up after the last try with the error, and does not retry errors no wait can fix', async () => {
    const { rm, calls } = flakyRm(100);
    await assert.rejects(removeWithRetries(path.join(dir, 'x'), { rm, attempts: 3, sleep: async () => undefined }), /EBUSY/);
    assert.strictEqual(calls.length, 3);
    const other = flakyRm(100, 'EROFS');
    await assert.rejects(removeWithRetries(path.join(dir, 'x'), { rm: other.rm, sleep: async () => undefined }), /EROFS/);
    assert.strictEqual(other.calls.length, 1);
  });

  it('removeQuietly never throws: what is left is named in a warning', async () => {
    const warnings: string[] = [];
    const { rm } = flakyRm(100);
    const gone = await removeQuietly(path.join(dir, 'held'), (m) => warnings.push(m), { rm, attempts: 2, sleep: async () => undefined });
    assert.strictEqual(gone, false);
    assert.strictEqual(warnings.length, 1);
    assert.match(warnings[0], /Could not remove .*held: .*EBUSY.*left behind/);
    assert.strictEqual(await removeQuietly(path.join(dir, 'missing'), (m) => warnings.push(m)), true, 'a missing path is fine');
  });

  it('with the real file system: a folder of read-only files (git packs) goes at once', async () => {
    const target = path.join(dir, 'mirror');
    fs.mkdirSync(path.join(target, 'objects', 'pack'), { recursive: true });
    const pack = path.join(target, 'objects', 'pack', 'pack-1.pack');
    fs.writeFileSync(pack, 'x');
    fs.chmodSync(pack, 0o444);
    await removeWithRetries(target);
    assert.strictEqual(fs.existsSync(target), false);
  });
});

describe('platform/remove: in exit handlers', () => {
  it('removeSyncQuietly never throws (an exception in an exit handler would skip the others)', () => {
    const busy = () => { throw Object.assign(new Error('EBUSY: resource busy or locked'), { code: 'EBUSY' }); };
    assert.strictEqual(removeSyncQuietly('/nonexistent/x', busy), false);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rb-remove-sync-'));
    fs.writeFileSync(path.join(dir, 'f'), 'x');
    assert.strictEqual(removeSyncQuietly(dir), true);
    assert.strictEqual(fs.existsSync(dir), false);
  });
});

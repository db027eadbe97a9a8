import assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { isInside } from '../../tasks/common/src/platform/paths';
import { FolderSource } from '../../tasks/common/src/sources';

describe('platform/paths: inside a folder, drive roots included', () => {
  it('Windows: a drive root (E:\\) holds its files; other drives and .. do not', () => {
    const w = path.win32;
    assert.strictEqual(isInside('E:\\', 'E:\\archives\\p\\r.zip', { paths: w }), true);
    assert.strictEqual(isInside('E:\\', 'e:\\archives\\r.zip', { paths: w }), true, 'drive letters compare case-insensitively');
    assert.strictEqual(isInside('E:\\Backups', 'e:\\backups\\p\\r.zip', { paths: w }), true);
    assert.strictEqual(isInside('E:\\', 'F:\\r.zip', { paths: w }), false);
    assert.strictEqual(isInside('E:\\Backups', 'E:\\Backups2\\r.zip', { paths: w }), false);
    assert.strictEqual(isInside('E:\\Backups', 'E:\\r.zip', { paths: w }), false);
    assert.strictEqual(isInside('E:\\', 'E:\\', { paths: w }), false);
    assert.strictEqual(isInside('E:\\', 'E:\\', { paths: w, orSelf: true }), true);
    assert.strictEqual(isInside('\\\\nas\\share\\', '\\\\nas\\share\\p\\r.zip', { paths: w }), true, 'a UNC share root');
    assert.strictEqual(isInside('E:\\b', 'E:\\b\\..foo', { paths: w }), true, 'a name starting with two dots is inside');
  });

  it('POSIX: the file system root (/) and /Volumes/X hold their files', () => {
    const p = path.posix;
    assert.strictEqual(isInside('/', '/archives/r.zip', { paths: p }), true);
    assert.strictEqual(isInside('/Volumes/Backup', '/Volumes/Backup/p/r.zip', { paths: p }), true);
    assert.strictEqual(isInside('/Volumes/Backup', '/Volumes/Backup2/r.zip', { paths: p }), false);
    assert.strictEqual(isInside('/Volumes/Backup', '/Volumes/r.zip', { paths: p }), false);
  });

  it('FolderSource at a drive root resolves names below it and refuses escapes (Windows paths)', () => {
    const source = new FolderSource('E:\\', path.win32);
    assert.strictEqual(source.resolve('archives/p/r.zip'), 'E:\\archives\\p\\r.zip');
    assert.strictEqual(source.resolve('p/../../r.zip'), 'E:\\r.zip', '.. stops at the drive root');
    assert.throws(() => new FolderSource('E:\\Backups', path.win32).resolve('../Backups2/x.zip'), /points outside/);
  });

  it('FolderSource at the real root (/) opens a file below it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rb-root-'));
    try {
      fs.writeFileSync(path.join(dir, 'a.zip'), 'zip');
      const source = new FolderSource('/');
      const name = path.relative('/', path.join(dir, 'a.zip')).split(path.sep).join('/');
      const opened = await source.open(name);
      const chunks: Buffer[] = [];
      for await (const c of opened.stream) chunks.push(c as Buffer);
      assert.strictEqual(Buffer.concat(chunks).toString(), 'zip');
      assert.strictEqual(opened.size, 3);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

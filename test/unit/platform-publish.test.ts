import assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Readable } from 'stream';
import { AlreadyExistsError, FolderDestination } from '../../tasks/common/src/destinations';
import { NameTakenError, probePublishing, publishFile, PublishFs, realFs } from '../../tasks/common/src/platform/publish';

const refusal = (code: string) => Object.assign(new Error(`${code}: operation refused, link`), { code });

/** The real file system, except that hard links are refused with `code` (as FAT/exFAT and some NAS answer). */
function noLinks(code: string): PublishFs & { links: number } {
  const fsx = { ...realFs, links: 0 };
  fsx.link = async () => { fsx.links++; throw refusal(code); };
  return fsx;
}

describe('platform/publish: never overwriting, with or without hard links', () => {
  let dir: string;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rb-publish-')); });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('the probe finds hard links here, and none where every link is refused (EISDIR, EACCES, EPERM, ENOTSUP)', async () => {
    assert.deepStrictEqual(await probePublishing(dir), { method: 'link' });
    for (const code of ['EISDIR', 'EACCES', 'EPERM', 'ENOTSUP']) {
      assert.deepStrictEqual(await probePublishing(dir, noLinks(code)), { method: 'claim', why: code });
    }
    assert.deepStrictEqual(fs.readdirSync(dir), [], 'the probe leaves nothing behind');
  });

  it('link refused with EISDIR or EACCES: published by claim + rename, and later files skip the link', async () => {
    for (const code of ['EISDIR', 'EACCES']) {
      const fsx = noLinks(code);
      const temp = path.join(dir, `.a-${code}.partial`);
      fs.writeFileSync(temp, 'archive bytes');
      const method = await publishFile(temp, path.join(dir, `a-${code}.zip`), 'link', fsx);
      assert.strictEqual(method, 'claim');
      assert.strictEqual(fs.readFileSync(path.join(dir, `a-${code}.zip`), 'utf8'), 'archive bytes');
      assert.strictEqual(fs.existsSync(temp), false);
      fs.writeFileSync(temp, 'second');
      await publishFile(temp, path.join(dir, `b-${code}.zip`), method, fsx);
      assert.strictEqual(fsx.links, 1, 'once known, no more link attempts');
    }
  });

  it('claim never replaces an existing file, and leaves it exactly as it was', async () => {
    const target = path.join(dir, 'taken.zip');
    fs.writeFileSync(target, 'someone else');
    const temp = path.join(dir, '.taken.partial');
    fs.writeFileSync(temp, 'ours');
    for (const method of ['link', 'claim'] as const) {
      await assert.rejects(publishFile(temp, target, method, noLinks('EISDIR')), (e: unknown) => e instanceof NameTakenError);
      await assert.rejects(publishFile(temp, target, method), (e: unknown) => e instanceof NameTakenError);
    }
    assert.strictEqual(fs.readFileSync(target, 'utf8'), 'someone else');
    assert.strictEqual(fs.readFileSync(temp, 'utf8'), 'ours');
  });

  it('a rename that fails removes the claimed (empty) name again', async () => {
    const fsx: PublishFs = { ...realFs, link: async () => { throw refusal('EPERM'); }, rename: async () => { throw refusal('EIO'); } };
    const temp = path.join(dir, '.c.partial');
    fs.writeFileSync(temp, 'x');
    await assert.rejects(publishFile(temp, path.join(dir, 'c.zip'), 'link', fsx), /EIO/);
    assert.deepStrictEqual(fs.readdirSync(dir), ['.c.partial']);
  });

  describe('FolderDestination', () => {
    it('check() probes the folder before any work: a folder without hard links publishes by claim', async () => {
      const dest = new FolderDestination(dir, noLinks('EISDIR'));
      await dest.check();
      assert.strictEqual(dest.publishing, 'claim');
      await dest.put('p/r.zip', Readable.from([Buffer.from('zip')]), { metadata: () => ({ sha256: 'ab'.repeat(32) }) });
      assert.strictEqual(fs.readFileSync(path.join(dir, 'p', 'r.zip'), 'utf8'), 'zip');
      assert.match(fs.readFileSync(path.join(dir, 'p', 'r.zip.sha256'), 'utf8'), /^(ab){32} {2}r\.zip\n$/);
      await assert.rejects(dest.put('p/r.zip', Readable.from([Buffer.from('other')])), (e: unknown) => e instanceof AlreadyExistsError);
      assert.strictEqual(fs.readFileSync(path.join(dir, 'p', 'r.zip'), 'utf8'), 'zip');
      assert.deepStrictEqual(fs.readdirSync(path.join(dir, 'p')).sort(), ['r.zip', 'r.zip.sha256'], 'no temporary file left');
      const real = new FolderDestination(dir);
      await real.check();
      assert.strictEqual(real.publishing, 'link');
    });

    it('check() fails before any work, naming the folder, when it cannot be written', async () => {
      const fsx: PublishFs = { ...realFs, writeFile: async () => { throw Object.assign(new Error('EROFS: read-only file system'), { code: 'EROFS' }); } };
      await assert.rejects(new FolderDestination(dir, fsx).check(), (e: Error) => e.message.includes(dir) && /EROFS/.test(e.message) && /write access/.test(e.message));
    });

    it('a temporary file a scanner holds (EBUSY) does not fail a published archive: it is stored once, and the leftover is named', async () => {
      let held = 0;
      const rm = async (target: string, options: { recursive: boolean; force: boolean }) => {
        if (target.includes('.partial-')) { held++; throw Object.assign(new Error(`EBUSY: resource busy or locked, unlink '${target}'`), { code: 'EBUSY' }); }
        await fs.promises.rm(target, options);
      };
      const dest = new FolderDestination(dir, realFs, { rm, sleep: async () => undefined, attempts: 3 });
      await dest.put('p/r.zip', Readable.from([Buffer.from('zip')]), { metadata: () => ({ sha256: 'cd'.repeat(32) }) });
      assert.strictEqual(held, 3, 'removal was retried');
      assert.strictEqual(fs.readFileSync(path.join(dir, 'p', 'r.zip'), 'utf8'), 'zip');
      assert.ok(fs.existsSync(path.join(dir, 'p', 'r.zip.sha256')));
      const notes = dest.warnings();
      assert.strictEqual(notes.length, 1);
      assert.match(notes[0], /Could not remove .*\.r\.zip\.partial-[0-9a-f]+: EBUSY.*left behind/);
    });
  });
});

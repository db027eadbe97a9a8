import assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Readable } from 'stream';
import {
  AlreadyExistsError, FolderDestination, MAX_BLOCK_BYTES, MAX_BLOCKS, planBlocks, tierRefused, TooBigError,
} from '../../tasks/common/src/destinations';

const MiB = 1 << 20;
const TiB = 2 ** 40;

describe('destinations', () => {
  describe('block plan (item 11)', () => {
    const base = 4 * MiB;

    it('without a size hint: 4 MiB blocks doubling every 10,000 blocks, about 1.2 TiB in 50,000 blocks', () => {
      const plan = planBlocks(base);
      assert.strictEqual(plan.sizeOf(0), 4 * MiB);
      assert.strictEqual(plan.sizeOf(9_999), 4 * MiB);
      assert.strictEqual(plan.sizeOf(10_000), 8 * MiB);
      assert.strictEqual(plan.sizeOf(MAX_BLOCKS - 1), 64 * MiB);
      assert.strictEqual(plan.capacity, 10_000 * (4 + 8 + 16 + 32 + 64) * MiB);
    });

    it('a hint the default plan holds changes nothing (small archives keep small buffers)', () => {
      for (const hint of [0, 1, 100 * MiB, 1 * TiB]) assert.strictEqual(planBlocks(base, hint).sizeOf(0), 4 * MiB, String(hint));
    });

    it('bigger hints get bigger first blocks, always holding the hint with its margin, never a block over 4000 MiB', () => {
      for (const hint of [1.2 * TiB, 2 * TiB, 10 * TiB, 50 * TiB, 120 * TiB, 190 * TiB]) {
        const plan = planBlocks(base, hint);
        assert.ok(plan.capacity >= Math.min(hint * 1.05, MAX_BLOCKS * MAX_BLOCK_BYTES) && plan.capacity >= hint, `${hint / TiB} TiB: capacity ${plan.capacity / TiB} TiB`);
        let total = 0;
        for (let i = 0; i < MAX_BLOCKS; i += 1000) {
          assert.ok(plan.sizeOf(i) <= MAX_BLOCK_BYTES && plan.sizeOf(i) >= plan.sizeOf(Math.max(0, i - 1000)), `${hint / TiB} TiB block ${i}`);
        }
        for (let i = 0; i < MAX_BLOCKS; i++) total += plan.sizeOf(i);
        assert.strictEqual(total, plan.capacity, 'capacity = the sum of the 50,000 block sizes');
      }
      assert.strictEqual(planBlocks(base, 2 * TiB).sizeOf(0), 8 * MiB);
      const largest = planBlocks(base, 190 * TiB);
      assert.strictEqual(largest.sizeOf(0), MAX_BLOCK_BYTES);
      assert.strictEqual(largest.capacity, MAX_BLOCKS * MAX_BLOCK_BYTES);
    });

    it('refuses, before any upload, an archive larger than the largest block blob', () => {
      assert.throws(() => planBlocks(base, 200 * TiB), (e: unknown) => e instanceof TooBigError && /more than the largest blob Azure Storage holds \(50,000 blocks of 4000 MiB, 190\.7 TiB\); nothing was uploaded/.test((e as Error).message));
    });
  });

  describe('access tier refusals (item 10)', () => {
    it('recognises the account refusing a tier, and nothing else', () => {
      assert.ok(tierRefused({ statusCode: 409, details: { errorCode: 'BlobAccessTierNotSupportedForAccountType' } }));
      assert.ok(tierRefused({ statusCode: 400, details: { errorCode: 'InvalidHeaderValue', HeaderName: 'x-ms-access-tier' } }));
      assert.ok(!tierRefused({ statusCode: 400, details: { errorCode: 'InvalidHeaderValue', HeaderName: 'x-ms-blob-content-type' } }));
      assert.ok(!tierRefused({ statusCode: 409, details: { errorCode: 'BlobAlreadyExists' } }));
      assert.ok(!tierRefused({ statusCode: 403, details: { errorCode: 'AuthorizationPermissionMismatch' } }));
      assert.ok(!tierRefused(new Error('x-ms-access-tier')));
    });
  });

  describe('FolderDestination', () => {
    let root: string;
    beforeEach(() => { root = fs.mkdtempSync(path.join(os.tmpdir(), 'rb-unit-folder-')); });
    afterEach(() => fs.rmSync(root, { recursive: true, force: true }));
    const listAll = () => {
      const out: string[] = [];
      const walk = (rel: string) => {
        for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
          const child = rel ? `${rel}/${e.name}` : e.name;
          if (e.isDirectory()) walk(child); else out.push(child);
        }
      };
      walk('');
      return out.sort();
    };

    it('stores the body and a sha256sum-style checksum beside it', async () => {
      const d = new FolderDestination(root);
      await d.put('org/p/a.zip', Readable.from([Buffer.from('hello')]), { metadata: () => ({ sha256: 'ab'.repeat(32) }) });
      assert.deepStrictEqual(listAll(), ['org/p/a.zip', 'org/p/a.zip.sha256']);
      assert.strictEqual(fs.readFileSync(path.join(root, 'org/p/a.zip'), 'utf8'), 'hello');
      assert.strictEqual(fs.readFileSync(path.join(root, 'org/p/a.zip.sha256'), 'utf8'), `${'ab'.repeat(32)}  a.zip\n`);
    });

    it('never replaces an existing file or checksum', async () => {
      const d = new FolderDestination(root);
      await d.put('a.zip', Readable.from([Buffer.from('first')]));
      await assert.rejects(d.put('a.zip', Readable.from([Buffer.from('second')])), AlreadyExistsError);
      assert.strictEqual(fs.readFileSync(path.join(root, 'a.zip'), 'utf8'), 'first');
      fs.writeFileSync(path.join(root, 'b.zip.sha256'), 'someone else\n');
      await assert.rejects(d.put('b.zip', Readable.from([Buffer.from('x')]), { metadata: () => ({ sha256: 'cd'.repeat(32) }) }), AlreadyExistsError);
      assert.deepStrictEqual(listAll(), ['a.zip', 'b.zip.sha256']);
    });

    it('a body that fails mid-way leaves nothing behind (no archive, no partial file)', async () => {
      const d = new FolderDestination(root);
      const body = new Readable({ read() { this.push(Buffer.alloc(1 << 16)); setImmediate(() => this.destroy(new Error('archive broke'))); } });
      await assert.rejects(d.put('p/a.zip', body), /archive broke/);
      assert.deepStrictEqual(listAll(), []);
    });

    it('a folder that cannot be made rejects, and the body is stopped (a producer piped into it would wait for ever)', async () => {
      const d = new FolderDestination(root);
      fs.writeFileSync(path.join(root, 'p'), 'a file where the project folder goes');
      const body = new Readable({ read() { this.push(Buffer.alloc(1024)); } });
      await assert.rejects(d.put('p/a.zip', body), /EEXIST|ENOTDIR/);
      assert.ok(body.destroyed, 'body destroyed');
    });

    it('a write that fails (the folder is not writable) rejects, and the body is stopped', async function () {
      if (process.getuid?.() === 0) this.skip(); // root writes anywhere
      const d = new FolderDestination(root);
      fs.mkdirSync(path.join(root, 'p'));
      fs.chmodSync(path.join(root, 'p'), 0o555);
      const body = Readable.from([Buffer.from('x')]);
      await assert.rejects(d.put('p/a.zip', body), /EACCES/);
      assert.ok(body.destroyed);
    });
  });
});

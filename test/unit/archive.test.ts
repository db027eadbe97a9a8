import assert from 'assert';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PassThrough, Readable } from 'stream';
import { pipeline } from 'stream/promises';
import { createArchiveStream, HashingStream, listTree } from '../../tasks/common/src/archive';
import { extractArchiveFile } from '../../tasks/common/src/extract';

function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `rb-unit-${prefix}-`));
}

/** A bare-repository-like tree: many small files (like loose objects / LFS objects), a few big ones, empty dirs. */
function makeTree(files: number, bigBytes = 0): string {
  const dir = tempDir('tree');
  fs.mkdirSync(path.join(dir, 'refs', 'heads'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'hooks'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'hooks', 'pre-commit.sample'), 'sample');
  fs.mkdirSync(path.join(dir, 'lfs', 'tmp'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'lfs', 'tmp', 'partial'), 'x');
  fs.writeFileSync(path.join(dir, 'HEAD'), 'ref: refs/heads/main\n');
  for (let i = 0; i < files; i++) {
    const sub = path.join(dir, 'objects', (i % 256).toString(16).padStart(2, '0'));
    fs.mkdirSync(sub, { recursive: true });
    fs.writeFileSync(path.join(sub, `f${i}`), randomBytes(200 + (i % 7) * 900));
  }
  if (bigBytes) {
    fs.mkdirSync(path.join(dir, 'objects', 'pack'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'objects', 'pack', 'pack-1.pack'), randomBytes(bigBytes));
  }
  return dir;
}

/** Reads `stream` until `bytes` went through, then destroys it the way a failed upload does. */
async function consumeThenStop(stream: Readable, bytes: number): Promise<void> {
  let seen = 0;
  await new Promise<void>((resolve) => {
    stream.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (seen >= bytes) {
        stream.destroy();
        resolve();
      }
    });
    stream.on('end', resolve);
    stream.on('error', () => resolve());
  });
}

describe('archive (directory → archive stream)', () => {
  const made: string[] = [];
  after(() => { for (const d of made) fs.rmSync(d, { recursive: true, force: true }); });

  it('lists directories and files sorted, without git-lfs scratch space or sample hooks', async () => {
    const dir = makeTree(3);
    made.push(dir);
    const tree = await listTree(dir);
    const rels = tree.map((e) => e.rel);
    assert.deepStrictEqual(rels, [...rels].sort());
    assert.ok(rels.includes('refs') && rels.includes('refs/heads'), 'empty directories are listed');
    assert.ok(!rels.some((r) => r.startsWith('lfs/tmp') || r.endsWith('.sample')), rels.join(','));
  });

  for (const format of ['zip', 'tar.gz'] as const) {
    it(`${format}: round-trips the tree byte for byte, hashed on the way`, async () => {
      const dir = makeTree(40, 3 << 20);
      made.push(dir);
      const hashing = new HashingStream();
      const chunks: Buffer[] = [];
      const sink = new PassThrough();
      sink.on('data', (c: Buffer) => chunks.push(Buffer.from(c)));
      await pipeline(createArchiveStream(dir, format), hashing, sink);
      const file = path.join(tempDir('out'), `a.${format}`);
      made.push(path.dirname(file));
      fs.writeFileSync(file, Buffer.concat(chunks));
      assert.strictEqual(hashing.bytes, fs.statSync(file).size);
      assert.match(hashing.sha256, /^[0-9a-f]{64}$/);
      const out = tempDir('x');
      made.push(out);
      await extractArchiveFile(file, format, out);
      for (const e of await listTree(dir)) {
        if (e.isDirectory) assert.ok(fs.statSync(path.join(out, e.rel)).isDirectory(), e.rel);
        else assert.deepStrictEqual(fs.readFileSync(path.join(out, e.rel)), fs.readFileSync(path.join(dir, e.rel)), e.rel);
      }
    });
  }

  it('a consumer that stops mid-archive never leaves an unhandled rejection (item 5)', async function () {
    this.timeout(60_000);
    const dir = makeTree(1500);
    made.push(dir);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    // mocha installs its own handler; ours records what would reach task-lib's.
    const previous = process.listeners('unhandledRejection');
    process.removeAllListeners('unhandledRejection');
    process.on('unhandledRejection', onUnhandled);
    let stops = 0;
    try {
      for (let i = 0; i < 16; i++) {
        for (const format of ['zip', 'tar.gz'] as const) {
          // Stop at a different point each time so the stop lands both while a file is being opened and while an entry is written.
          await consumeThenStop(createArchiveStream(dir, format), 40_000 + i * 41_000);
          stops++;
          await new Promise((r) => setImmediate(r));
        }
      }
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      process.removeListener('unhandledRejection', onUnhandled);
      for (const l of previous) process.on('unhandledRejection', l as (...args: unknown[]) => void);
    }
    console.log(`      (${stops} archives stopped mid-stream; ${unhandled.length} unhandled rejection(s))`);
    assert.deepStrictEqual(unhandled.map(String), []);
  });

  it('an unreadable directory makes the stream error, not the process', async () => {
    const stream = createArchiveStream(path.join(os.tmpdir(), `does-not-exist-${process.pid}`), 'zip');
    await assert.rejects(pipeline(stream, new PassThrough().resume()), /ENOENT/);
  });
});

describe('archive stream chunks (item 15)', () => {
  it('every chunk handed downstream stays as it was: a consumer that keeps them sees the same bytes as one that hashes on the fly', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rb-unit-keep-'));
    try {
      fs.mkdirSync(path.join(dir, 'objects', 'pack'), { recursive: true });
      for (let i = 0; i < 6; i++) fs.writeFileSync(path.join(dir, 'objects', 'pack', `p${i}.pack`), randomBytes((3 << 20) + i * 4097));
      const kept: Buffer[] = [];
      const hashing = new HashingStream();
      const sink = new PassThrough();
      sink.on('data', (c: Buffer) => kept.push(c)); // references, not copies
      await pipeline(createArchiveStream(dir, 'zip'), hashing, sink);
      const { createHash } = await import('crypto');
      assert.strictEqual(createHash('sha256').update(Buffer.concat(kept)).digest('hex'), hashing.sha256);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("crc-32 (archiver's zip CRC) gives the standard CRC-32, chained by seed, whichever implementation is in use", async () => {
    const crc32 = (await import('crc-32')).default as { buf(data: Uint8Array, seed?: number): number };
    await import('../../tasks/common/src/archive');
    assert.strictEqual(crc32.buf(Buffer.from('123456789')) >>> 0, 0xcbf43926);
    const a = randomBytes(100_000);
    const b = randomBytes(12_345);
    assert.strictEqual(crc32.buf(b, crc32.buf(a)), crc32.buf(Buffer.concat([a, b])));
  });
});

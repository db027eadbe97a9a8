// encryption.ts: age v1 on node:crypto, proven against the reference CLI (age / age-keygen) in both directions.
import assert from 'assert';
import { execFileSync, spawnSync } from 'child_process';
import { createHash, randomBytes } from 'crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { Readable, Writable } from 'stream';
import { pipeline } from 'stream/promises';
import {
  AgeDecryptStream, AgeEncryptStream, DecryptionError, generateIdentity, KeyFormatError, parseIdentities, parseRecipients, payloadSize, recipientOf,
} from '../../tasks/common/src/encryption';

/** A key pair made by the reference age-keygen: the identity file text and its recipient. */
function keygen(): { file: string; recipient: string } {
  const file = execFileSync('age-keygen', { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  const recipient = /# public key: (age1\S+)/.exec(file)![1];
  return { file, recipient };
}

async function run(stream: AgeEncryptStream | AgeDecryptStream, input: Buffer, pieces = 7): Promise<Buffer> {
  const parts: Buffer[] = [];
  const step = Math.max(1, Math.ceil(input.length / pieces));
  const chunks = input.length === 0 ? [] : Array.from({ length: Math.ceil(input.length / step) }, (_, i) => input.subarray(i * step, (i + 1) * step));
  await pipeline(Readable.from(chunks), stream, new Writable({ write(c, _e, cb) { parts.push(c); cb(); } }));
  return Buffer.concat(parts);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('encryption (age v1)', function () {
  this.timeout(60000);
  let dir: string;
  before(() => { dir = mkdtempSync(path.join(tmpdir(), 'age-unit-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  // Sizes around the 64 KiB chunk boundary: empty, short, exactly one chunk, one byte more, several chunks.
  const sizes = [0, 1, 65535, 65536, 65537, 3 * 65536, 200_001];

  it('the CLI decrypts what the stream encrypted (every size around the chunk boundary)', async () => {
    const a = keygen();
    writeFileSync(path.join(dir, 'a.txt'), a.file);
    for (const size of sizes) {
      const plain = randomBytes(size);
      const enc = new AgeEncryptStream(parseRecipients(a.recipient));
      const cipher = await run(enc, plain);
      assert.strictEqual(enc.plaintextSha256, sha(plain));
      assert.strictEqual(enc.plaintextBytes, size);
      assert.ok(cipher.length > payloadSize(size), `header + payload for ${size}`);
      const file = path.join(dir, `x${size}.age`);
      writeFileSync(file, cipher);
      const out = spawnSync('age', ['-d', '-i', path.join(dir, 'a.txt'), file]);
      assert.strictEqual(out.status, 0, `age -d failed for ${size} bytes: ${out.stderr}`);
      assert.ok(out.stdout.equals(plain), `plaintext of ${size} bytes`);
    }
  });

  it('the stream decrypts what the CLI encrypted, to one or several recipients', async () => {
    const a = keygen();
    const b = keygen();
    for (const size of sizes) {
      const plain = randomBytes(size);
      const file = path.join(dir, `cli${size}`);
      writeFileSync(file, plain);
      const cipher = execFileSync('age', ['-r', a.recipient, '-r', b.recipient, file]);
      for (const who of [a, b]) {
        const dec = new AgeDecryptStream(parseIdentities(who.file));
        const out = await run(dec, cipher, 5);
        assert.ok(out.equals(plain), `plaintext of ${size} bytes`);
        assert.strictEqual(dec.plaintextSha256, sha(plain));
      }
    }
  });

  it('several recipients: the CLI opens the file with any one of their identities, not with another', async () => {
    const keys = [keygen(), keygen(), keygen()];
    const plain = randomBytes(100_000);
    const cipher = await run(new AgeEncryptStream(parseRecipients(keys.map((k) => k.recipient).join('\n'))), plain);
    const file = path.join(dir, 'multi.age');
    writeFileSync(file, cipher);
    for (const [i, k] of keys.entries()) {
      writeFileSync(path.join(dir, `k${i}.txt`), k.file);
      const out = spawnSync('age', ['-d', '-i', path.join(dir, `k${i}.txt`), file]);
      assert.strictEqual(out.status, 0, String(out.stderr));
      assert.ok(out.stdout.equals(plain));
    }
    writeFileSync(path.join(dir, 'other.txt'), keygen().file);
    assert.notStrictEqual(spawnSync('age', ['-d', '-i', path.join(dir, 'other.txt'), file]).status, 0);
  });

  it('a wrong identity, a flipped byte (header or payload), a truncated file: DecryptionError, one line, no secret', async () => {
    const a = keygen();
    const other = keygen();
    const plain = randomBytes(150_000);
    const cipher = await run(new AgeEncryptStream(parseRecipients(a.recipient)), plain);
    const fail = async (bytes: Buffer, ids: string, pattern: RegExp) => {
      await assert.rejects(run(new AgeDecryptStream(parseIdentities(ids)), bytes), (err: Error) => {
        assert.ok(err instanceof DecryptionError, String(err));
        assert.match(err.message, pattern);
        assert.ok(!err.message.includes('\n'));
        assert.ok(!/AGE-SECRET-KEY/i.test(err.message));
        return true;
      });
    };
    await fail(cipher, other.file, /none of the 1 identity given can open it/);
    const headerEnd = cipher.indexOf('\n---') + 1;
    for (const at of [30, headerEnd + 10, headerEnd + 80, cipher.length - 1, 100_000]) {
      const bad = Buffer.from(cipher);
      bad[at] ^= 0x01;
      await fail(bad, a.file, /not an age|malformed|changed|MAC|authenticate|none of/);
    }
    await fail(cipher.subarray(0, cipher.length - 20), a.file, /changed or truncated|truncated/);
    await fail(cipher.subarray(0, 65536 + 200), a.file, /changed or truncated|truncated/);
    await fail(randomBytes(1000), a.file, /not an age-encrypted file/);
    await fail(Buffer.alloc(0), a.file, /truncated|not an age/);
  });

  it('recipients: age1 lines, comments and blanks skipped, duplicates once; malformed lines named', () => {
    const a = keygen();
    const b = generateIdentity();
    const got = parseRecipients(`# ops team\n${a.recipient}\n\n  ${b.recipient}  \n${a.recipient}\n`);
    assert.deepStrictEqual(got.map((r) => r.text), [a.recipient, b.recipient]);
    assert.deepStrictEqual(parseRecipients(''), []);
    assert.deepStrictEqual(parseRecipients(undefined), []);
    const bad = (text: string, pattern: RegExp) => assert.throws(() => parseRecipients(text), (err: Error) => err instanceof KeyFormatError && pattern.test(err.message));
    bad(`${a.recipient}\nage1qqqqqqqq`, /Input 'encryptionRecipients', line 2: 'age1qqqqqqqq' is not an age recipient/);
    bad(a.recipient.slice(0, -1) + (a.recipient.endsWith('q') ? 'p' : 'q'), /line 1: .* is not an age recipient/);
    bad(a.recipient.toUpperCase(), /is not an age recipient/);
    bad(b.text, /is a secret key \(an identity\), not a recipient/);
    bad('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHs= me@host', /SSH recipients \(ssh-ed25519\) are not supported/);
    bad('age1pq1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq', /post-quantum or tag recipient/);
    // The secret never appears in the message.
    assert.throws(() => parseRecipients(b.text), (err: Error) => !err.message.includes(b.text.slice(20)));
  });

  it('identities: the age-keygen file as is, several keys; a public key, garbage, empty or an SSH key refused without echo', () => {
    const a = keygen();
    const g = generateIdentity();
    const ids = parseIdentities(`${a.file}\n${g.text}\n`);
    assert.deepStrictEqual(ids.map(recipientOf), [a.recipient, g.recipient]);
    const bad = (text: string | undefined, pattern: RegExp) => assert.throws(() => parseIdentities(text), (err: Error) => {
      assert.ok(err instanceof KeyFormatError);
      assert.match(err.message, pattern);
      if (text) for (const line of text.split('\n')) if (line.length > 10) assert.ok(!err.message.includes(line), 'no echo');
      return true;
    });
    bad(a.recipient, /line 1: is a public key \(a recipient\), not an identity/);
    bad(`${g.text}\n${g.text.slice(0, -3)}XYZ`, /line 2: is not an age identity/);
    bad(g.text.toLowerCase(), /line 1: is not an age identity/);
    bad('', /Input 'decryptionIdentity' is empty/);
    bad(undefined, /is empty/);
    bad('-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----', /SSH private keys are not supported/);
  });

  it('a generated identity is what the CLI reads: age-keygen -y gives the same recipient', () => {
    const g = generateIdentity();
    const file = path.join(dir, 'g.txt');
    writeFileSync(file, g.text + '\n');
    assert.strictEqual(execFileSync('age-keygen', ['-y', file]).toString().trim(), g.recipient);
    assert.strictEqual(readFileSync(file, 'utf8').trim(), g.text);
  });
});

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
import { formatOfName, isEncryptedName } from '../../tasks/common/src/extract';
import { variantName } from '../../tasks/RepoBackup/RepoBackupV1/src/backup';
import { readEncryption } from '../../tasks/RepoBackup/RepoBackupV1/src/settings';
import { readDecryptionIdentity } from '../../tasks/RepoRestore/RepoRestoreV1/src/settings';
import { FakeHost } from './fake-host';

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
    bad('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHs= me@host', /is not a valid ssh-ed25519 public key/);
    bad('ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ me@host', /SSH recipients of type ssh-rsa are not supported/);
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
    bad('-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----', /the SSH private key cannot be read/);
    bad('-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----', /only OpenSSH ed25519 private keys/);
  });

  it('a generated identity is what the CLI reads: age-keygen -y gives the same recipient', () => {
    const g = generateIdentity();
    const file = path.join(dir, 'g.txt');
    writeFileSync(file, g.text + '\n');
    assert.strictEqual(execFileSync('age-keygen', ['-y', file]).toString().trim(), g.recipient);
    assert.strictEqual(readFileSync(file, 'utf8').trim(), g.text);
  });

  it('settings: encryptionRecipients → recipients (empty = no encryption); errors name the input', () => {
    const a = generateIdentity();
    assert.strictEqual(readEncryption(new FakeHost({})), undefined);
    assert.strictEqual(readEncryption(new FakeHost({ encryptionRecipients: '# nobody yet\n' })), undefined);
    assert.deepStrictEqual(readEncryption(new FakeHost({ encryptionRecipients: a.recipient }))?.recipients.map((r) => r.text), [a.recipient]);
    assert.throws(() => readEncryption(new FakeHost({ encryptionRecipients: 'age1oops' })), /^InputError: Input 'encryptionRecipients': line 1: 'age1oops' is not an age recipient/);
    assert.throws(() => readEncryption(new FakeHost({ encryptionRecipients: 'age1oops' })), (e: Error) => e.name === 'InputError');
    // A pasted identity: masked before anything can print it, and refused without repeating it.
    const secretLine = a.text.split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-1'))!;
    const host = new FakeHost({ encryptionRecipients: `${a.recipient}\n${secretLine}` });
    assert.throws(() => readEncryption(host), (e: Error) => e.name === 'InputError' && !e.message.includes(secretLine));
    assert.ok(host.secrets.includes(secretLine), 'the identity line is registered with the masker');
  });

  it('settings: decryptionIdentity is read as a secret, each key line registered with the masker, never echoed', () => {
    const a = keygen();
    const host = new FakeHost({ decryptionIdentity: a.file });
    const ids = readDecryptionIdentity(host)!;
    assert.deepStrictEqual(ids.map(recipientOf), [a.recipient]);
    const secretLine = a.file.split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-1'))!;
    assert.ok(host.secrets.includes(secretLine), 'the key line is masked');
    assert.strictEqual(readDecryptionIdentity(new FakeHost({})), undefined);
    const bad = new FakeHost({ decryptionIdentity: `${secretLine.slice(0, -2)}QQ` });
    assert.throws(() => readDecryptionIdentity(bad), (e: Error) => e.name === 'InputError' && /^Input 'decryptionIdentity': line 1: is not an age identity/.test(e.message) && !e.message.includes(secretLine.slice(20, 40)));
  });

  it('names: .zip.age / .tar.gz.age are recognised; variants keep .age last', () => {
    assert.strictEqual(formatOfName('a/api.zip.age'), 'zip');
    assert.strictEqual(formatOfName('a/api.tar.gz.age'), 'tar.gz');
    assert.strictEqual(formatOfName('a/api.age'), undefined);
    assert.ok(isEncryptedName('a/api.tar.gz.age') && isEncryptedName('a/API.ZIP.AGE'));
    assert.ok(!isEncryptedName('a/api.zip') && !isEncryptedName('a/key.age'));
    assert.strictEqual(variantName('o/d/1.1/Team Alpha/api.zip.age', 2), 'o/d/1.1/Team Alpha/api~2.zip.age');
    assert.strictEqual(variantName('o/d/1.1/Team Alpha/api.tar.gz.age', 3), 'o/d/1.1/Team Alpha/api~3.tar.gz.age');
  });

  it('memory stays bounded: 64 MiB through encrypt → decrypt keeps the streams\' buffers small', async () => {
    const ids = [generateIdentity()];
    const enc = new AgeEncryptStream(parseRecipients(ids[0].recipient));
    const dec = new AgeDecryptStream(parseIdentities(ids[0].text));
    const piece = randomBytes(1 << 20);
    let sent = 0;
    let maxBuffered = 0;
    let got = 0;
    const src = new Readable({ read() { if (sent >= 64) return void this.push(null); sent++; this.push(piece); } });
    await pipeline(src, enc, dec, new Writable({
      write(c, _e, cb) {
        got += c.length;
        maxBuffered = Math.max(maxBuffered, enc.readableLength + enc.writableLength + dec.readableLength + dec.writableLength);
        cb();
      },
    }));
    assert.strictEqual(got, 64 << 20);
    console.log(`      64 MiB round trip: at most ${(maxBuffered / (1 << 20)).toFixed(1)} MiB buffered in the two streams`);
    assert.ok(maxBuffered < 8 << 20, `buffered ${maxBuffered}`);
  });

  it('ssh-ed25519: the CLI decrypts with the SSH key what was encrypted to its .pub line, and the other way round', async () => {
    const key = path.join(dir, 'id_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ops@example', '-f', key]);
    const pub = readFileSync(`${key}.pub`, 'utf8');
    const recipients = parseRecipients(`${pub}\n${keygen().recipient}`);
    assert.strictEqual(recipients[0].text, pub.split(' ').slice(0, 2).join(' '), 'the comment is not part of the recipient');
    for (const size of [0, 65536, 200_001]) {
      const plain = randomBytes(size);
      const file = path.join(dir, `ssh${size}.age`);
      writeFileSync(file, await run(new AgeEncryptStream(recipients), plain));
      const out = spawnSync('age', ['-d', '-i', key, file]);
      assert.strictEqual(out.status, 0, String(out.stderr));
      assert.ok(out.stdout.equals(plain));
      writeFileSync(path.join(dir, 'p'), plain);
      const cli = execFileSync('age', ['-R', `${key}.pub`, path.join(dir, 'p')]);
      assert.ok((await run(new AgeDecryptStream(parseIdentities(readFileSync(key, 'utf8'))), cli)).equals(plain));
    }
    // A passphrase-protected key cannot be used by a pipeline: said so, without echo.
    const locked = path.join(dir, 'locked');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret-passphrase', '-f', locked]);
    assert.throws(() => parseIdentities(readFileSync(locked, 'utf8')), /protected by a passphrase/);
    // Another SSH key: not this file's identity.
    const other = path.join(dir, 'other_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    const cipher = await run(new AgeEncryptStream(recipients), randomBytes(1000));
    await assert.rejects(run(new AgeDecryptStream(parseIdentities(readFileSync(other, 'utf8'))), cipher), /none of the 1 identity given can open it/);
  });
});

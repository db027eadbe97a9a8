/**
 * Client-side encryption of archive streams to age recipients (https://age-encryption.org/v1), on node:crypto:
 * X25519 (and ssh-ed25519) recipient stanzas, HKDF-SHA-256, an HMAC-SHA-256 header MAC and the ChaCha20-Poly1305 STREAM payload in
 * 64 KiB chunks. Files written here decrypt with the reference CLI (`age -d -i key.txt repo.zip.age`), and files the
 * CLI writes to `age1…` recipients decrypt here. Both directions are streams with bounded memory (one chunk plus
 * the stream's buffers): the plaintext never needs to be on disk.
 *
 * ssh-ed25519 recipients and (unencrypted OpenSSH) identities follow age's agessh: the Ed25519 key mapped to Curve25519,
 * a tweak bound to the SSH key. Only public keys are needed to back up; identities only to restore.
 */
import {
  createCipheriv, createDecipheriv, createHash, createHmac, createPrivateKey, createPublicKey, diffieHellman, hkdfSync, KeyObject,
  randomBytes, timingSafeEqual,
} from 'crypto';
import { Transform, TransformCallback } from 'stream';

export const AGE_EXTENSION = '.age';
const VERSION_LINE = 'age-encryption.org/v1';
const CHUNK = 64 * 1024;
const TAG = 16;
const X25519_INFO = 'age-encryption.org/v1/X25519';
const SSH_ED25519_INFO = 'age-encryption.org/v1/ssh-ed25519';
/** A header larger than this is not an age header we wrote or the CLI writes for a few recipients. */
const MAX_HEADER = 64 * 1024;

/** A recipient or identity input that cannot be used. The message never contains a secret. */
export class KeyFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyFormatError';
  }
}

/**
 * The encrypted stream is not age or was changed (`corrupt`), or no identity given can open it (`identity`). The
 * message completes "The archive … cannot be decrypted: " and never contains a key.
 */
export class DecryptionError extends Error {
  constructor(message: string, readonly reason: 'corrupt' | 'identity' = 'corrupt') {
    super(message);
    this.name = 'DecryptionError';
  }
}

// ---- bech32 (BIP 173 checksum; age does not apply the 90-character limit) ----

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const GEN = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function polymod(values: number[]): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GEN[i];
  }
  return chk >>> 0;
}

const hrpExpand = (hrp: string) => [...[...hrp].map((c) => c.charCodeAt(0) >> 5), 0, ...[...hrp].map((c) => c.charCodeAt(0) & 31)];

function convertBits(data: number[], from: number, to: number, pad: boolean): number[] | undefined {
  let acc = 0;
  let bits = 0;
  const out: number[] = [];
  const maxv = (1 << to) - 1;
  for (const value of data) {
    acc = (acc << from) | value;
    bits += from;
    while (bits >= to) {
      bits -= to;
      out.push((acc >> bits) & maxv);
    }
  }
  if (pad) {
    if (bits > 0) out.push((acc << (to - bits)) & maxv);
  } else if (bits >= from || ((acc << (to - bits)) & maxv)) {
    return undefined;
  }
  return out;
}

/** Decodes a bech32 string with the given human-readable part; undefined when it is not one. */
export function bech32Decode(s: string, hrp: string): Buffer | undefined {
  if (s !== s.toLowerCase() && s !== s.toUpperCase()) return undefined;
  const lower = s.toLowerCase();
  const sep = lower.lastIndexOf('1');
  if (sep < 1 || lower.slice(0, sep) !== hrp || lower.length - sep - 1 < 6) return undefined;
  const data: number[] = [];
  for (const c of lower.slice(sep + 1)) {
    const v = CHARSET.indexOf(c);
    if (v < 0) return undefined;
    data.push(v);
  }
  if (polymod([...hrpExpand(hrp), ...data]) !== 1) return undefined;
  const bytes = convertBits(data.slice(0, -6), 5, 8, false);
  return bytes ? Buffer.from(bytes) : undefined;
}

export function bech32Encode(hrp: string, bytes: Buffer): string {
  const data = convertBits([...bytes], 8, 5, true)!;
  const mod = polymod([...hrpExpand(hrp), ...data, 0, 0, 0, 0, 0, 0]) ^ 1;
  const checksum = Array.from({ length: 6 }, (_, i) => (mod >>> (5 * (5 - i))) & 31);
  return hrp + '1' + [...data, ...checksum].map((v) => CHARSET[v]).join('');
}

// ---- X25519 keys as node:crypto KeyObjects ----

const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519 = Buffer.from('302a300506032b656e032100', 'hex');

const privateKeyOf = (raw: Buffer) => createPrivateKey({ key: Buffer.concat([PKCS8_X25519, raw]), format: 'der', type: 'pkcs8' });
const publicKeyOf = (raw: Buffer) => createPublicKey({ key: Buffer.concat([SPKI_X25519, raw]), format: 'der', type: 'spki' });
const rawPublic = (key: KeyObject) => (key.export({ format: 'der', type: 'spki' }) as Buffer).subarray(SPKI_X25519.length);

const hkdf = (ikm: Buffer, salt: Buffer, info: string) => Buffer.from(hkdfSync('sha256', ikm, salt, info, 32));
const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');

/** Strict unpadded standard base64 (as age writes it); undefined when not canonical. */
function unb64(s: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]*$/.test(s) || s.length % 4 === 1) return undefined;
  const b = Buffer.from(s, 'base64');
  return b64(b) === s ? b : undefined;
}

/** Ciphertext and tag, as two buffers (no copy to join them). */
function sealParts(key: Buffer, nonce: Buffer, plaintext: Buffer): [Buffer, Buffer] {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG });
  const out = c.update(plaintext);
  c.final();
  return [out, c.getAuthTag()];
}

const seal = (key: Buffer, nonce: Buffer, plaintext: Buffer) => Buffer.concat(sealParts(key, nonce, plaintext));

/** Throws when the tag does not match. */
function open(key: Buffer, nonce: Buffer, sealed: Buffer): Buffer {
  if (sealed.length < TAG) throw new Error('short ciphertext');
  const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG });
  d.setAuthTag(sealed.subarray(sealed.length - TAG));
  const out = d.update(sealed.subarray(0, sealed.length - TAG));
  d.final();
  return out;
}

// ---- recipients and identities ----

export interface AgeRecipient {
  /** The public key as written (`age1…`, lower case; `ssh-ed25519 AAAA…` without its comment). */
  text: string;
  /** X25519 public key (for ssh-ed25519: the Ed25519 key mapped to Curve25519). */
  key: Buffer;
  /** ssh-ed25519 recipients: the key in SSH wire format. */
  ssh?: Buffer;
}

export interface AgeIdentity {
  privateKey: KeyObject;
  publicKey: Buffer;
  /** ssh-ed25519 identities: the public key in SSH wire format (its tag and tweak derive from it). */
  ssh?: Buffer;
}

// ---- ssh-ed25519 (age's agessh): Ed25519 keys used as X25519 keys, with a tweak bound to the SSH key ----

const P = (1n << 255n) - 19n;
const modPow = (b: bigint, e: bigint) => { let r = 1n; b %= P; while (e > 0n) { if (e & 1n) r = (r * b) % P; b = (b * b) % P; e >>= 1n; } return r; };
const leToBig = (b: Buffer) => { let n = 0n; for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]); return n; };
const bigToLe = (n: bigint) => { const out = Buffer.alloc(32); for (let i = 0; i < 32; i++) { out[i] = Number(n & 0xffn); n >>= 8n; } return out; };

/** The Montgomery u-coordinate of an Ed25519 public key: u = (1 + y) / (1 − y) mod p. */
function edwardsToMontgomery(pk: Buffer): Buffer {
  const yb = Buffer.from(pk);
  yb[31] &= 0x7f;
  const y = leToBig(yb);
  if (y >= P || y === 1n) throw new KeyFormatError('not a valid Ed25519 public key');
  return bigToLe(((1n + y) * modPow((1n - y + P) % P, P - 2n)) % P);
}

/** Reads SSH wire strings (uint32 length + bytes). */
class SshReader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}
  string(): Buffer {
    if (this.pos + 4 > this.buf.length) throw new Error('truncated');
    const n = this.buf.readUInt32BE(this.pos);
    if (this.pos + 4 + n > this.buf.length) throw new Error('truncated');
    const out = this.buf.subarray(this.pos + 4, this.pos + 4 + n);
    this.pos += 4 + n;
    return out;
  }
  uint32(): number {
    if (this.pos + 4 > this.buf.length) throw new Error('truncated');
    const n = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return n;
  }
}

function sshEd25519Wire(b64: string): { wire: Buffer; pk: Buffer } | undefined {
  try {
    const wire = Buffer.from(b64, 'base64');
    const r = new SshReader(wire);
    if (r.string().toString('latin1') !== 'ssh-ed25519') return undefined;
    const pk = r.string();
    return pk.length === 32 ? { wire, pk: Buffer.from(pk) } : undefined;
  } catch {
    return undefined;
  }
}

const sshTag = (wire: Buffer) => b64(createHash('sha256').update(wire).digest().subarray(0, 4));
const x25519 = (scalar: Buffer, point: Buffer) => diffieHellman({ privateKey: privateKeyOf(scalar), publicKey: publicKeyOf(point) });
const sshTweak = (wire: Buffer) => hkdf(Buffer.alloc(0), wire, SSH_ED25519_INFO);

/** An unencrypted OpenSSH ed25519 private key file → identity. */
function parseOpenSshEd25519(pem: string, input: string): AgeIdentity {
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(pem);
  const bad = (why: string) => new KeyFormatError(`Input '${input}': the SSH private key ${why}`);
  if (!m) throw bad('is not in the OpenSSH format (-----BEGIN OPENSSH PRIVATE KEY-----). Convert it with ssh-keygen -p -f <file> or use an age identity.');
  try {
    const raw = Buffer.from(m[1].replace(/\s+/g, ''), 'base64');
    const magic = Buffer.from('openssh-key-v1\0', 'latin1');
    if (!raw.subarray(0, magic.length).equals(magic)) throw bad('is not an openssh-key-v1 key.');
    const r = new SshReader(raw.subarray(magic.length));
    const cipher = r.string().toString('latin1');
    r.string(); r.string();
    if (cipher !== 'none') throw bad('is protected by a passphrase, which this task cannot ask for. Use an age identity (age-keygen) for backups the pipeline restores.');
    if (r.uint32() !== 1) throw bad('file holds more than one key.');
    const wire = Buffer.from(r.string());
    const priv = new SshReader(r.string());
    if (priv.uint32() !== priv.uint32()) throw bad('is damaged (check bytes differ).');
    const type = priv.string().toString('latin1');
    if (type !== 'ssh-ed25519') throw bad(`is of type ${type}; only ssh-ed25519 keys are supported.`);
    priv.string();
    const sk = priv.string();
    if (sk.length !== 64) throw bad('is damaged.');
    const scalar = createHash('sha512').update(sk.subarray(0, 32)).digest().subarray(0, 32);
    const parsed = sshEd25519Wire(wire.toString('base64'));
    if (!parsed) throw bad('is damaged.');
    return { privateKey: privateKeyOf(Buffer.from(scalar)), publicKey: edwardsToMontgomery(parsed.pk), ssh: wire };
  } catch (err) {
    if (err instanceof KeyFormatError) throw err;
    throw bad('cannot be read (truncated or damaged).');
  }
}

/**
 * Parses the `encryptionRecipients` input: one recipient per line; blank lines and `#` comments are skipped (so
 * the output of `age-keygen -y`, or a recipients file, can be pasted). Throws KeyFormatError naming the line.
 */
export function parseRecipients(text: string | undefined, input = 'encryptionRecipients'): AgeRecipient[] {
  const out: AgeRecipient[] = [];
  const seen = new Set<string>();
  const lines = (text ?? '').split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const where = `Input '${input}', line ${i + 1}`;
    const shown = line.length > 24 ? `${line.slice(0, 20)}…` : line;
    if (/^AGE-SECRET-KEY-/i.test(line) || /PRIVATE KEY/.test(line)) {
      throw new KeyFormatError(`${where}: is a secret key (an identity), not a recipient. Give the public key (age1…, printed by age-keygen and by age-keygen -y key.txt) here; keep the identity for RepoRestore's decryptionIdentity.`);
    }
    if (/^ssh-ed25519\s/.test(line)) {
      const fields = line.split(/\s+/);
      const parsed = fields[1] ? sshEd25519Wire(fields[1]) : undefined;
      if (!parsed) throw new KeyFormatError(`${where}: '${shown}' is not a valid ssh-ed25519 public key (the line of a .pub file: ssh-ed25519 AAAA… comment).`);
      const text = `ssh-ed25519 ${fields[1]}`;
      if (seen.has(text)) return;
      seen.add(text);
      out.push({ text, key: edwardsToMontgomery(parsed.pk), ssh: parsed.wire });
      return;
    }
    if (/^ssh-\S+\s/.test(line)) {
      throw new KeyFormatError(`${where}: SSH recipients of type ${line.split(/\s/)[0]} are not supported. Give an age recipient (age1…, from age-keygen) or an ssh-ed25519 public key.`);
    }
    if (/^age1pq1|^age1tag/i.test(line)) {
      throw new KeyFormatError(`${where}: '${shown}' is a post-quantum or tag recipient, which is not supported. Give an X25519 recipient (age1…, 62 characters) made with age-keygen -o key.txt.`);
    }
    const key = /\s/.test(line) ? undefined : bech32Decode(line, 'age');
    if (!key || key.length !== 32 || line !== line.toLowerCase()) {
      throw new KeyFormatError(`${where}: '${shown}' is not an age recipient. Each line must be an X25519 public key: age1 followed by 58 characters, as age-keygen prints it ("Public key: age1…").`);
    }
    if (seen.has(line)) return;
    seen.add(line);
    try {
      publicKeyOf(key);
    } catch {
      throw new KeyFormatError(`${where}: '${shown}' is not a valid X25519 public key.`);
    }
    out.push({ text: line, key });
  });
  return out;
}

/**
 * Parses the `decryptionIdentity` input: `AGE-SECRET-KEY-1…` lines (the file age-keygen writes, comments included).
 * Messages name the line, never its content.
 */
export function parseIdentities(text: string | undefined, input = 'decryptionIdentity'): AgeIdentity[] {
  const out: AgeIdentity[] = [];
  const value = text ?? '';
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(value)) {
    if (!/-----BEGIN OPENSSH PRIVATE KEY-----/.test(value)) {
      throw new KeyFormatError(`Input '${input}': only OpenSSH ed25519 private keys (-----BEGIN OPENSSH PRIVATE KEY-----) and age identities (AGE-SECRET-KEY-1…) are supported.`);
    }
    return [parseOpenSshEd25519(value, input)];
  }
  value.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const key = /\s/.test(line) ? undefined : bech32Decode(line, 'age-secret-key-');
    if (!key || key.length !== 32 || line !== line.toUpperCase()) {
      const what = /^age1/.test(line) ? 'is a public key (a recipient), not an identity' : 'is not an age identity';
      throw new KeyFormatError(`Input '${input}', line ${i + 1}: ${what}. Each line must be a secret key AGE-SECRET-KEY-1… as age-keygen writes it (lines starting with # are skipped).`);
    }
    const privateKey = privateKeyOf(key);
    out.push({ privateKey, publicKey: rawPublic(createPublicKey(privateKey)) });
  });
  if (out.length === 0) {
    throw new KeyFormatError(`Input '${input}' is empty. Give the age identity (AGE-SECRET-KEY-1…) whose public key the backup was encrypted to, from a secret variable or Key Vault: decryptionIdentity: $(BackupAgeIdentity).`);
  }
  return out;
}

/** The recipient (`age1…`) of an identity (for messages and tests). */
export function recipientOf(identity: AgeIdentity): string {
  return bech32Encode('age', identity.publicKey);
}

/** A fresh identity (tests, docs examples); `text` is the AGE-SECRET-KEY-1… line. */
export function generateIdentity(): { text: string; recipient: string } {
  const raw = randomBytes(32);
  const identity = { privateKey: privateKeyOf(raw), publicKey: rawPublic(createPublicKey(privateKeyOf(raw))) };
  return { text: bech32Encode('age-secret-key-', raw).toUpperCase(), recipient: recipientOf(identity) };
}

// ---- header ----

interface Stanza {
  type: string;
  args: string[];
  body: Buffer;
}

function wrapBody(body: Buffer): string {
  const s = b64(body);
  let out = '';
  for (let i = 0; i < s.length; i += 64) out += s.slice(i, i + 64) + '\n';
  if (s.length % 64 === 0) out += '\n';
  return out;
}

function x25519Stanza(fileKey: Buffer, recipient: AgeRecipient): Stanza {
  const ephemeral = privateKeyOf(randomBytes(32));
  const share = rawPublic(createPublicKey(ephemeral));
  const shared = diffieHellman({ privateKey: ephemeral, publicKey: publicKeyOf(recipient.key) });
  if (shared.equals(Buffer.alloc(32))) throw new KeyFormatError(`the recipient ${recipient.text} is a low-order point`);
  const wrapKey = hkdf(shared, Buffer.concat([share, recipient.key]), X25519_INFO);
  return { type: 'X25519', args: [b64(share)], body: seal(wrapKey, Buffer.alloc(12), fileKey) };
}

function sshEd25519Stanza(fileKey: Buffer, recipient: AgeRecipient): Stanza {
  const ephemeral = randomBytes(32);
  const share = rawPublic(createPublicKey(privateKeyOf(ephemeral)));
  const shared = x25519(sshTweak(recipient.ssh!), x25519(ephemeral, recipient.key));
  const wrapKey = hkdf(shared, Buffer.concat([share, recipient.key]), SSH_ED25519_INFO);
  return { type: 'ssh-ed25519', args: [sshTag(recipient.ssh!), b64(share)], body: seal(wrapKey, Buffer.alloc(12), fileKey) };
}

function headerMac(fileKey: Buffer, headerUpToDashes: Buffer): Buffer {
  return createHmac('sha256', hkdf(fileKey, Buffer.alloc(0), 'header')).update(headerUpToDashes).digest();
}

function buildHeader(fileKey: Buffer, recipients: AgeRecipient[]): Buffer {
  let text = VERSION_LINE + '\n';
  for (const r of recipients) {
    const s = r.ssh ? sshEd25519Stanza(fileKey, r) : x25519Stanza(fileKey, r);
    text += `-> ${s.type} ${s.args.join(' ')}\n${wrapBody(s.body)}`;
  }
  text += '---';
  const mac = headerMac(fileKey, Buffer.from(text, 'latin1'));
  return Buffer.from(`${text} ${b64(mac)}\n`, 'latin1');
}

interface ParsedHeader {
  stanzas: Stanza[];
  mac: Buffer;
  /** The header bytes up to and including `---`. */
  macInput: Buffer;
  /** Length of the whole header, including the MAC line's newline. */
  length: number;
}

/** Parses the header at the start of `buf`; undefined while more bytes are needed. */
function parseHeader(buf: Buffer): ParsedHeader | undefined {
  const lines: { text: string; end: number }[] = [];
  let pos = 0;
  const nextLine = () => {
    const nl = buf.indexOf(0x0a, pos);
    if (nl < 0) return undefined;
    const line = { text: buf.toString('latin1', pos, nl), end: nl + 1 };
    pos = nl + 1;
    lines.push(line);
    return line;
  };
  const bad = (why: string): never => { throw new DecryptionError(`it is not an age-encrypted file (${why})`); };
  if (buf.length >= VERSION_LINE.length && !buf.subarray(0, VERSION_LINE.length).equals(Buffer.from(VERSION_LINE))) {
    if (buf.subarray(0, 30).toString('latin1').startsWith('-----BEGIN AGE ENCRYPTED FILE')) bad('ASCII-armored: decrypt it with age -d first, or store it unarmored');
    bad('no age-encryption.org/v1 header');
  }
  const first = nextLine();
  if (!first) return undefined;
  if (first.text !== VERSION_LINE) bad('unknown version line');
  const stanzas: Stanza[] = [];
  for (;;) {
    const line = nextLine();
    if (!line) return undefined;
    if (line.text.startsWith('---')) {
      const m = /^--- ([A-Za-z0-9+/]{43})$/.exec(line.text);
      const mac = m ? unb64(m[1]) : undefined;
      if (!mac) bad('malformed header MAC');
      return { stanzas, mac: mac!, macInput: buf.subarray(0, line.end - line.text.length - 1 + 3), length: line.end };
    }
    if (!line.text.startsWith('-> ')) bad('malformed stanza');
    const [type, ...args] = line.text.slice(3).split(' ');
    if (!type || args.some((a) => a === '')) bad('malformed stanza');
    const parts: Buffer[] = [];
    for (;;) {
      const b = nextLine();
      if (!b) return undefined;
      const chunk = unb64(b.text);
      if (!chunk || b.text.length > 64) bad('malformed stanza body');
      parts.push(chunk!);
      if (b.text.length < 64) break;
    }
    stanzas.push({ type, args, body: Buffer.concat(parts) });
  }
}

function unwrapFileKey(stanzas: Stanza[], identities: AgeIdentity[]): Buffer | undefined {
  for (const s of stanzas) {
    if (s.type === 'ssh-ed25519') {
      const share = s.args.length === 2 ? unb64(s.args[1]) : undefined;
      if (!share || share.length !== 32 || s.body.length !== 32) throw new DecryptionError('it has a malformed ssh-ed25519 stanza');
      for (const id of identities) {
        if (!id.ssh || sshTag(id.ssh) !== s.args[0]) continue;
        let shared: Buffer;
        try {
          shared = x25519(sshTweak(id.ssh), diffieHellman({ privateKey: id.privateKey, publicKey: publicKeyOf(share) }));
        } catch {
          throw new DecryptionError('it has an ssh-ed25519 stanza with an invalid share');
        }
        try {
          return open(hkdf(shared, Buffer.concat([share, id.publicKey]), SSH_ED25519_INFO), Buffer.alloc(12), s.body);
        } catch {
          // a tag collision: not this identity
        }
      }
      continue;
    }
    if (s.type !== 'X25519') continue;
    const share = s.args.length === 1 ? unb64(s.args[0]) : undefined;
    if (!share || share.length !== 32 || s.body.length !== 32) throw new DecryptionError('it has a malformed X25519 stanza');
    for (const id of identities) {
      if (id.ssh) continue;
      const shared = diffieHellman({ privateKey: id.privateKey, publicKey: publicKeyOf(share) });
      if (shared.equals(Buffer.alloc(32))) throw new DecryptionError('it has an X25519 stanza with a low-order share');
      const wrapKey = hkdf(shared, Buffer.concat([share, id.publicKey]), X25519_INFO);
      try {
        return open(wrapKey, Buffer.alloc(12), s.body);
      } catch {
        // not this identity's stanza
      }
    }
  }
  return undefined;
}

// ---- payload STREAM ----

function chunkNonce(counter: number, last: boolean): Buffer {
  const n = Buffer.alloc(12);
  n.writeUIntBE(counter, 5, 6);
  n[11] = last ? 1 : 0;
  return n;
}

/** Collects buffers and hands out fixed-size slices without copying more than once. */
class Pending {
  private parts: Buffer[] = [];
  length = 0;

  add(b: Buffer) {
    this.parts.push(b);
    this.length += b.length;
  }

  /** The first `n` bytes (n ≤ length): a view when they lie in one buffer, else one copy of just those bytes. */
  take(n: number): Buffer {
    this.length -= n;
    const first = this.parts[0];
    if (first.length >= n) {
      if (first.length === n) this.parts.shift(); else this.parts[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const part = this.parts[0];
      const use = Math.min(part.length, n - filled);
      part.copy(out, filled, 0, use);
      filled += use;
      if (use === part.length) this.parts.shift(); else this.parts[0] = part.subarray(use);
    }
    return out;
  }

  peekAll(): Buffer {
    return this.length ? this.take(this.length) : Buffer.alloc(0);
  }
}

/**
 * Plaintext in, age file out. `plaintextSha256` / `plaintextBytes` describe what went in (for the manifest), once
 * the stream has ended. Holds at most one chunk (plus what the writer hands it) in memory.
 */
export class AgeEncryptStream extends Transform {
  private readonly hash = createHash('sha256');
  private readonly payloadKey: Buffer;
  private readonly pending = new Pending();
  private counter = 0;
  private headerOut = false;
  private readonly head: Buffer;
  plaintextBytes = 0;
  private digest?: string;

  constructor(recipients: AgeRecipient[]) {
    super({ highWaterMark: 1 << 20 });
    if (recipients.length === 0) throw new KeyFormatError('no recipients to encrypt to');
    const fileKey = randomBytes(16);
    const nonce = randomBytes(16);
    this.head = Buffer.concat([buildHeader(fileKey, recipients), nonce]);
    this.payloadKey = hkdf(fileKey, nonce, 'payload');
  }

  private chunk(plain: Buffer, last: boolean): [Buffer, Buffer] {
    return sealParts(this.payloadKey, chunkNonce(this.counter++, last), plain);
  }

  override _transform(data: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(data);
    this.plaintextBytes += data.length;
    this.pending.add(data);
    const out: Buffer[] = [];
    if (!this.headerOut) { out.push(this.head); this.headerOut = true; }
    // Keep the last full chunk back: only the end of the stream says whether it is the last one.
    while (this.pending.length > CHUNK) out.push(...this.chunk(this.pending.take(CHUNK), false));
    for (const b of out) this.push(b);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    const out: Buffer[] = [];
    if (!this.headerOut) { out.push(this.head); this.headerOut = true; }
    out.push(...this.chunk(this.pending.peekAll(), true));
    this.digest = this.hash.digest('hex');
    for (const b of out) this.push(b);
    callback();
  }

  get plaintextSha256(): string {
    if (!this.digest) throw new Error('the stream has not ended yet');
    return this.digest;
  }
}

/**
 * age file in, plaintext out. Fails with DecryptionError when the input is not age, the header MAC or any chunk
 * does not authenticate (a flipped or missing byte), the file ends early, or none of `identities` opens it.
 */
export class AgeDecryptStream extends Transform {
  private readonly pending = new Pending();
  private payloadKey?: Buffer;
  private counter = 0;
  private readonly hash = createHash('sha256');
  plaintextBytes = 0;
  private digest?: string;

  constructor(private readonly identities: AgeIdentity[]) {
    super({ highWaterMark: 1 << 20 });
  }

  private readHeader(): boolean {
    const buf = this.pending.length ? this.pending.peekAll() : Buffer.alloc(0);
    if (buf.length) this.pending.add(buf);
    const header = parseHeader(buf.subarray(0, MAX_HEADER));
    if (!header) {
      if (buf.length >= MAX_HEADER) throw new DecryptionError(`it is not an age-encrypted file (no header end in the first ${MAX_HEADER} bytes)`);
      return false;
    }
    if (buf.length < header.length + 16) return false;
    const fileKey = unwrapFileKey(header.stanzas, this.identities);
    if (!fileKey) {
      const types = [...new Set(header.stanzas.map((s) => s.type))].join(', ');
      throw new DecryptionError(`none of the ${this.identities.length} identit${this.identities.length === 1 ? 'y' : 'ies'} given can open it (it is encrypted to ${header.stanzas.length} recipient(s) of type ${types || 'none'}): give the identity whose public key was in encryptionRecipients when it was backed up`, 'identity');
    }
    if (!timingSafeEqual(headerMac(fileKey, header.macInput), header.mac)) throw new DecryptionError('its header was changed (the header MAC does not match)');
    const nonce = buf.subarray(header.length, header.length + 16);
    this.payloadKey = hkdf(fileKey, Buffer.from(nonce), 'payload');
    this.pending.take(header.length + 16);
    return true;
  }

  private open(sealed: Buffer, last: boolean): Buffer {
    try {
      return open(this.payloadKey!, chunkNonce(this.counter++, last), sealed);
    } catch {
      throw new DecryptionError(`it was changed or truncated: chunk ${this.counter - 1} (at about byte ${(this.counter - 1) * (CHUNK + TAG)} of the payload) does not authenticate`);
    }
  }

  private pushPlain(plain: Buffer[]) {
    for (const p of plain) { this.hash.update(p); this.plaintextBytes += p.length; }
    if (plain.length) this.push(plain.length === 1 ? plain[0] : Buffer.concat(plain));
  }

  override _transform(data: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    try {
      this.pending.add(data);
      if (!this.payloadKey && !this.readHeader()) return callback();
      const out: Buffer[] = [];
      while (this.pending.length > CHUNK + TAG) out.push(this.open(this.pending.take(CHUNK + TAG), false));
      this.pushPlain(out);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      if (!this.payloadKey && !this.readHeader()) throw new DecryptionError('it ends inside its header (truncated, or not an age-encrypted file)');
      const rest = this.pending.peekAll();
      if (rest.length < TAG) throw new DecryptionError('it was truncated: the last chunk is missing');
      const plain = this.open(rest, true);
      if (plain.length === 0 && this.counter > 1) throw new DecryptionError('it ends with an empty chunk, which age files never do');
      this.pushPlain([plain]);
      this.digest = this.hash.digest('hex');
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  get plaintextSha256(): string {
    if (!this.digest) throw new Error('the stream has not ended yet');
    return this.digest;
  }
}

/** Encrypted size for a plaintext of `bytes` (header excluded): 16-byte nonce plus a tag per 64 KiB chunk. */
export function payloadSize(bytes: number): number {
  return 16 + bytes + TAG * Math.max(1, Math.ceil(bytes / CHUNK));
}

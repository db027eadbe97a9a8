// The cost of encrypting the archive stream, measured on one ~300 MB stream in the same run: no encryption, age v1
// on node:crypto (tasks/common/src/encryption.ts, what the task uses), and the age-encryption package (pure
// JavaScript, @noble) for comparison. Runs alternate; medians reported. `node build/bench/encryption.js` runs it alone.
import { randomBytes } from 'crypto';
import { Readable, Writable } from 'stream';
import { pipeline } from 'stream/promises';
import { HashingStream } from '../tasks/common/src/archive';
import { AgeEncryptStream, generateIdentity, parseRecipients } from '../tasks/common/src/encryption';

export interface StreamBenchRow { label: string; runs: number[]; medianMs: number; mbPerS: number }

const MB = 1 << 20;
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

/** `bytes` of incompressible data in 1 MiB pieces (the archive stream's piece size), the same buffer reused. */
function source(bytes: number, piece: Buffer): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= bytes) return void this.push(null);
      sent += piece.length;
      this.push(piece);
    },
  });
}

const sink = () => new Writable({ highWaterMark: 1 << 20, write(_c, _e, cb) { cb(); } });

// The package is ESM-only; this keeps tsc (CommonJS output) from turning the import into require().
const importEsm = new Function('s', 'return import(s)') as (s: string) => Promise<any>;

export async function streamBench(bytes = 300 * MB, rounds = 3): Promise<StreamBenchRow[]> {
  const piece = randomBytes(MB);
  const recipient = generateIdentity().recipient;
  const recipients = parseRecipients(recipient);
  const lib = await importEsm('age-encryption').catch(() => undefined);
  const variants: Array<[string, () => Promise<void>]> = [
    ['archive stream → SHA-256 (no encryption)', () => pipeline(source(bytes, piece), new HashingStream(), sink())],
    ['→ age (node:crypto, the task) → SHA-256', () => pipeline(source(bytes, piece), new AgeEncryptStream(recipients), new HashingStream(), sink())],
  ];
  if (lib) {
    variants.push(['→ age-encryption 0.3.1 (pure JS) → SHA-256', async () => {
      const e = new lib.Encrypter();
      e.addRecipient(recipient);
      const web = Readable.toWeb(source(bytes, piece)) as unknown as ReadableStream<Uint8Array>;
      const out = await e.encrypt(web);
      await pipeline(Readable.fromWeb(out as any), new HashingStream(), sink());
    }]);
  }
  const runs = new Map<string, number[]>(variants.map(([l]) => [l, []]));
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < variants.length; i++) {
      const [label, run] = variants[(i + round) % variants.length];
      const t = performance.now();
      await run();
      runs.get(label)!.push(Math.round(performance.now() - t));
    }
  }
  return variants.map(([label]) => {
    const r = runs.get(label)!;
    const m = median(r);
    return { label, runs: r, medianMs: m, mbPerS: bytes / MB / (m / 1000) };
  });
}

export function streamBenchMarkdown(rows: StreamBenchRow[], bytes = 300 * MB): string[] {
  const base = rows[0].medianMs;
  return [
    `One ${bytes / MB} MB incompressible stream in 1 MiB pieces, the variants alternating, ${rows[0].runs.length} runs each (one core; the task does this per archive, 4 at a time).`, '',
    '| stream | median | runs (ms) | throughput | extra time vs no encryption |', '|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.label} | ${(r.medianMs / 1000).toFixed(2)} s | ${r.runs.join(', ')} | ${r.mbPerS.toFixed(0)} MB/s | ${r === rows[0] ? '—' : `+${((r.medianMs - base) / 1000).toFixed(2)} s`} |`),
  ];
}

if (require.main === module) {
  streamBench(Number(process.argv[2] ?? 300) * MB, Number(process.argv[3] ?? 3)).then((rows) => {
    console.log(streamBenchMarkdown(rows, Number(process.argv[2] ?? 300) * MB).join('\n'));
  }, (err) => { console.error(err); process.exit(1); });
}

// The bench's network model (bench/netmodel.ts): its arithmetic, then the proxy measured with real sockets.
// Lower bounds are what the model must cost; upper bounds are generous (the machine is shared): both are printed.
import assert from 'assert';
import * as net from 'net';
import { performance } from 'perf_hooks';
import { Direction, Link, linkFromEnv, serializationMs } from '../../bench/netmodel';

const MB = 1 << 20;

describe('bench network model', () => {
  describe('arithmetic', () => {
    it('serializationMs: 10 MiB at 400 Mbit/s is about 210 ms', () => {
      assert.ok(Math.abs(serializationMs(10 * MB, 400) - 209.7152) < 1e-6);
      assert.strictEqual(serializationMs(0, 400), 0);
    });

    it('a chunk on an idle link leaves one-way delay after it arrives', () => {
      const d = new Direction(20, 400);
      assert.strictEqual(d.schedule(100, 1000), 1020);
      // Much later, the link is idle again: delay only.
      assert.strictEqual(d.schedule(100, 5000), 5020);
    });

    it('pipelined: back-to-back chunks leave bytes/bandwidth apart, not one round trip apart', () => {
      const d = new Direction(20, 400);
      const chunk = 64 * 1024;
      const step = serializationMs(chunk, 400);
      const first = d.schedule(chunk, 0);
      let last = first;
      for (let i = 1; i < 160; i++) last = d.schedule(chunk, 0); // 10 MiB arriving at once
      assert.strictEqual(first, 20);
      assert.ok(Math.abs(last - (20 + 159 * step)) < 1e-6, `last departure ${last}`);
      assert.ok(last >= 200 && last < 240, `10 MiB leave over ${last.toFixed(1)} ms`);
      assert.deepStrictEqual([d.bytes, d.chunks], [10 * MB, 160]);
    });

    it('shared: two connections interleaving on one direction get the bandwidth between them', () => {
      const d = new Direction(0, 400);
      const step = serializationMs(MB, 400);
      const times = [];
      for (let i = 0; i < 10; i++) times.push(d.schedule(MB, 0), d.schedule(MB, 0)); // A, B, A, B…
      assert.ok(Math.abs(times.at(-1)! - 19 * step) < 1e-6);
    });

    it('reads BENCH_RTT_MS and BENCH_MBIT, refuses nonsense naming the variable', () => {
      assert.deepStrictEqual(linkFromEnv({}), { rttMs: 40, mbit: 400 });
      assert.deepStrictEqual(linkFromEnv({ BENCH_RTT_MS: '100', BENCH_MBIT: '50' }), { rttMs: 100, mbit: 50 });
      assert.deepStrictEqual(linkFromEnv({ BENCH_RTT_MS: '0' }), { rttMs: 0, mbit: 400 });
      assert.throws(() => linkFromEnv({ BENCH_MBIT: '0' }), /BENCH_MBIT=0 .*> 0/);
      assert.throws(() => linkFromEnv({ BENCH_RTT_MS: 'fast' }), /BENCH_RTT_MS=fast/);
    });
  });

  describe('the proxy, measured', () => {
    let link: Link;
    let server: net.Server;
    let port: number;
    const open = new Set<net.Socket>();

    before(async () => {
      // Upstream: "size N\n" → N bytes back; anything else is echoed.
      server = net.createServer((s) => {
        open.add(s);
        s.on('close', () => open.delete(s));
        s.once('data', (d: Buffer) => {
          const m = /^size (\d+)\n/.exec(d.toString());
          if (m) s.end(Buffer.alloc(Number(m[1]), 7));
          else { s.write(d); s.pipe(s); }
        });
        s.on('error', () => undefined);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
      link = new Link({ rttMs: 40, mbit: 400 });
      port = await link.forward((server.address() as net.AddressInfo).port);
    });
    after(async () => {
      await link?.close();
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    });

    /** Connects through the link, sends `request`, resolves with the bytes received and the ms from connect to the end. */
    function exchange(request: string, until: number): Promise<{ bytes: number; ms: number }> {
      return new Promise((resolve, reject) => {
        const t = performance.now();
        let bytes = 0;
        const s = net.connect({ host: '127.0.0.1', port }, () => s.write(request));
        s.on('data', (d: Buffer) => {
          bytes += d.length;
          if (bytes >= until) { s.destroy(); resolve({ bytes, ms: performance.now() - t }); }
        });
        s.on('error', reject);
        setTimeout(() => { s.destroy(); reject(new Error(`timed out with ${bytes} of ${until} bytes`)); }, 10_000).unref();
      });
    }

    it('one small request costs the connect round trip plus one round trip', async () => {
      const { ms } = await exchange('ping\n', 5);
      console.log(`      small request through a 40 ms link: ${ms.toFixed(1)} ms (model: ≥ 80 ms)`);
      assert.ok(ms >= 78, `${ms} ms`);
      assert.ok(ms < 2000, `${ms} ms`);
    });

    it('10 MiB down at 400 Mbit/s takes at least the serialization time', async () => {
      const { bytes, ms } = await exchange(`size ${10 * MB}\n`, 10 * MB);
      const floor = serializationMs(10 * MB, 400);
      console.log(`      10 MiB through 400 Mbit/s: ${ms.toFixed(1)} ms (${((bytes * 8) / (ms * 1000)).toFixed(0)} Mbit/s; model ≥ ${floor.toFixed(0)} ms + 60 ms of round trips)`);
      assert.strictEqual(bytes, 10 * MB);
      assert.ok(ms >= floor, `${ms} ms`);
      assert.ok(ms < 5000, `${ms} ms`);
    });

    it('two connections share the link: 2 × 5 MiB at once take as long as 10 MiB', async () => {
      const t = performance.now();
      await Promise.all([exchange(`size ${5 * MB}\n`, 5 * MB), exchange(`size ${5 * MB}\n`, 5 * MB)]);
      const ms = performance.now() - t;
      console.log(`      2 × 5 MiB at once: ${ms.toFixed(1)} ms (model ≥ ${serializationMs(10 * MB, 400).toFixed(0)} ms)`);
      assert.ok(ms >= serializationMs(10 * MB, 400), `${ms} ms`);
      assert.ok(ms < 5000, `${ms} ms`);
    });

    it('uploads go through in order and intact (echo of 3 MiB)', async () => {
      const payload = Buffer.alloc(3 * MB);
      for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
      const got: Buffer[] = [];
      await new Promise<void>((resolve, reject) => {
        let n = 0;
        const s = net.connect({ host: '127.0.0.1', port }, () => s.write(payload));
        s.on('data', (d: Buffer) => { got.push(d); n += d.length; if (n >= payload.length) { s.destroy(); resolve(); } });
        s.on('error', reject);
        setTimeout(() => { s.destroy(); reject(new Error('timed out')); }, 10_000).unref();
      });
      assert.ok(Buffer.concat(got).equals(payload));
      const stats = link.stats();
      assert.ok(stats.bytesUp >= 3 * MB && stats.bytesDown >= 13 * MB + 3 * MB && stats.connections === 5, JSON.stringify(stats));
    });
  });
});

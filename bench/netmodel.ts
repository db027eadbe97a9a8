// A network between the task and the services it talks to, for the bench: a TCP forwarding proxy with one listening
// port per upstream (the Azure DevOps stand-in, Azurite), all of them behind ONE modelled link.
//
// The link, per direction (up: client → services, down: services → client):
//   - one-way delay rttMs / 2, applied to every chunk;
//   - bandwidth mbit per direction, shared by every connection of the link (one serializer per direction, like
//     one uplink), PIPELINED: a chunk that arrives at time a leaves at max(a + one-way delay, the previous departure
//     in that direction + its bytes / bandwidth); nothing waits for an acknowledgement;
//   - a new connection costs a round trip before its first byte is forwarded (the TCP handshake);
//   - per connection at most WINDOW bytes in flight per direction (then its source is paused), which bounds the
//     proxy's memory; at the defaults one connection can still fill the link (4 MiB / 40 ms ≫ 400 Mbit/s).
// Not modelled: loss and retransmission, TCP slow start and congestion control, TLS handshakes, DNS, jitter.
//
//   const link = new Link(linkFromEnv());
//   const devops = await link.forward(standinPort);   // → a port on 127.0.0.1
//   ...
//   await link.close();
import * as net from 'net';
import { performance } from 'perf_hooks';

export interface LinkOptions {
  /** Round trip, milliseconds (default 40). */
  rttMs: number;
  /** Bandwidth per direction, Mbit/s (10^6 bits; default 400). */
  mbit: number;
}

/** BENCH_RTT_MS and BENCH_MBIT, or the defaults (40 ms, 400 Mbit/s); refuses values that are not positive numbers. */
export function linkFromEnv(env: NodeJS.ProcessEnv = process.env): LinkOptions {
  const num = (name: string, fallback: number, allowZero: boolean) => {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0)) {
      throw new Error(`${name}=${raw} is not a valid number: set it to ${allowZero ? 'a number ≥ 0' : 'a number > 0'} (default ${fallback}), or unset it`);
    }
    return n;
  };
  return { rttMs: num('BENCH_RTT_MS', 40, true), mbit: num('BENCH_MBIT', 400, false) };
}

/** Milliseconds `bytes` take at `mbit` Mbit/s. */
export function serializationMs(bytes: number, mbit: number): number {
  return (bytes * 8) / (mbit * 1000);
}

/**
 * One direction of the link: when each chunk leaves. Pure arithmetic (times in ms, any origin), so it can be tested
 * without sockets. Departures never go back in time, so chunks of every connection stay in order.
 */
export class Direction {
  private last = -Infinity;
  bytes = 0;
  chunks = 0;

  constructor(private readonly oneWayMs: number, private readonly mbit: number) {}

  /** The departure of a chunk of `bytes` that arrives at `arrivalMs`. */
  schedule(bytes: number, arrivalMs: number): number {
    const at = Math.max(arrivalMs + this.oneWayMs, this.last + serializationMs(bytes, this.mbit));
    this.last = at;
    this.bytes += bytes;
    this.chunks++;
    return at;
  }
}

const WINDOW = 4 << 20;

interface Pending {
  at: number;
  flow: Flow;
  chunk?: Buffer;
  end?: boolean;
}

/** A timer queue per direction: departures are monotonic, so a FIFO with one timer at its head is enough. */
class Wire {
  private readonly queue: Pending[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;

  push(p: Pending): void {
    this.queue.push(p);
    if (!this.timer) this.arm();
  }

  private arm(): void {
    if (this.head >= this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
      this.timer = undefined;
      return;
    }
    const wait = Math.max(0, this.queue[this.head].at - performance.now());
    this.timer = setTimeout(() => this.fire(), wait);
  }

  private fire(): void {
    const now = performance.now();
    // setTimeout may fire up to ~1 ms early or late; a chunk due within half a millisecond goes now.
    while (this.head < this.queue.length && this.queue[this.head].at <= now + 0.5) {
      const p = this.queue[this.head];
      this.queue[this.head++] = undefined as unknown as Pending;
      p.flow.deliver(p);
    }
    if (this.head > 4096) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.arm();
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    this.head = 0;
  }
}

/** One direction of one connection: from `src` through the link to `dst`. */
class Flow {
  inFlight = 0;
  private paused = false;

  constructor(readonly src: net.Socket, readonly dst: net.Socket, private readonly dir: Direction, private readonly wire: Wire,
    private readonly readyAt: () => number) {
    src.on('data', (chunk: Buffer) => {
      const at = this.dir.schedule(chunk.length, Math.max(performance.now(), this.readyAt()));
      this.inFlight += chunk.length;
      this.wire.push({ at, flow: this, chunk });
      this.pace();
    });
    src.on('end', () => {
      const at = this.dir.schedule(0, Math.max(performance.now(), this.readyAt()));
      this.wire.push({ at, flow: this, end: true });
    });
    dst.on('drain', () => this.pace());
  }

  deliver(p: Pending): void {
    if (this.dst.destroyed) return;
    if (p.end) {
      this.dst.end();
      return;
    }
    this.inFlight -= p.chunk!.length;
    this.dst.write(p.chunk!);
    this.pace();
  }

  /** Pauses the source while too much is in flight or the destination is not draining, resumes it after. */
  private pace(): void {
    const hold = this.inFlight >= WINDOW || this.dst.writableNeedDrain;
    if (hold && !this.paused) {
      this.paused = true;
      this.src.pause();
    } else if (!hold && this.paused) {
      this.paused = false;
      this.src.resume();
    }
  }
}

export interface LinkStats {
  connections: number;
  bytesUp: number;
  bytesDown: number;
}

/** The modelled link; `forward(port)` adds a listening port in front of one upstream. */
export class Link {
  readonly up: Direction;
  readonly down: Direction;
  connections = 0;
  private readonly upWire = new Wire();
  private readonly downWire = new Wire();
  private readonly servers: net.Server[] = [];
  private readonly sockets = new Set<net.Socket>();

  constructor(readonly options: LinkOptions) {
    this.up = new Direction(options.rttMs / 2, options.mbit);
    this.down = new Direction(options.rttMs / 2, options.mbit);
  }

  /** Listens on 127.0.0.1 (a free port); every connection is forwarded to `host:port` through the link. */
  async forward(port: number, host = '127.0.0.1'): Promise<number> {
    // allowHalfOpen: a side that finished sending may still be receiving what the link holds for it.
    const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (client) => {
      this.connections++;
      // The handshake: nothing goes through before a round trip has passed.
      const readyAt = performance.now() + this.options.rttMs;
      const upstream = net.connect({ host, port, allowHalfOpen: true });
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.setNoDelay(true);
        // A reset on one side resets the other; an orderly end travels through the link (Flow) after the data.
        s.on('close', (hadError) => {
          this.sockets.delete(s);
          if (hadError) { client.destroy(); upstream.destroy(); }
        });
        s.on('error', () => { client.destroy(); upstream.destroy(); });
      }
      new Flow(client, upstream, this.up, this.upWire, () => readyAt);
      new Flow(upstream, client, this.down, this.downWire, () => readyAt);
      client.resume();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.servers.push(server);
    return (server.address() as net.AddressInfo).port;
  }

  stats(): LinkStats {
    return { connections: this.connections, bytesUp: this.up.bytes, bytesDown: this.down.bytes };
  }

  describe(): string {
    return `${this.options.rttMs} ms round trip (${this.options.rttMs / 2} ms each way), ${this.options.mbit} Mbit/s per direction shared by all connections`;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.upWire.clear();
    this.downWire.clear();
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

// A fault-injecting HTTP reverse proxy, put in front of Azurite (or any HTTP service) to make the storage endpoint
// refuse requests or die in the middle of an upload, per request and per count:
//
//   const proxy = await startFaultProxy(azurite.blobUrl);
//   const sasUrl = proxy.rewrite(azurite.containerSasUrl('c', 'cw'));     // the same SAS, through the proxy
//   proxy.faults.push({ match: /\/api\.zip\?.*comp=block\b/, count: 2, action: 'status', status: 503 });
//   proxy.faults.push({ match: /comp=block\b/, count: 1, action: 'reset', afterBytes: 1024 });
//
// `match` is tested against `METHOD path?query` (e.g. `PUT /devstoreaccount1/c/x.zip?comp=block&…`). A fault fires
// for the next `count` matching requests (Infinity: for ever); the first fault that matches wins. Actions:
//   status      answer `status` with a Blob-style XML error (x-ms-error-code), after reading the request body;
//               `withHeader` limits a fault to requests carrying a header (e.g. x-ms-access-tier);
//   reset       forward the request, but destroy both sockets once `afterBytes` of the request body went through
//               (the client sees a connection reset mid-upload; the service never gets a complete request);
//   lostAnswer  forward the whole request, let the service act on it, then destroy the client socket instead of
//               relaying the answer (the client cannot know whether it worked).
// Every request is logged (`requests`), with the fault applied, if any. Header values are never stored.
import { randomUUID } from 'crypto';
import * as http from 'http';
import * as net from 'net';

export interface ProxyFault {
  match: RegExp;
  count: number;
  action: 'status' | 'reset' | 'lostAnswer';
  /** For `status`; default 503. */
  status?: number;
  /** For `status`; default ServerBusy. */
  errorCode?: string;
  /** For `reset`: request body bytes forwarded before the sockets are destroyed; default 0. */
  afterBytes?: number;
  /** Fires only for requests that carry this header (lower-case name), e.g. `x-ms-access-tier`. */
  withHeader?: string;
  /** For `status`: the error's `<Message>` first line (the service appends RequestId and Time); default a note. */
  message?: string;
  /** For `status`: more elements inside `<Error>`, e.g. `<HeaderName>x-ms-access-tier</HeaderName>`. */
  detailXml?: string;
}

export interface ProxyLogEntry {
  method: string;
  /** Path and query as received. */
  url: string;
  /** The status the client got; 0 when its connection was destroyed. */
  status: number;
  fault?: ProxyFault['action'];
  at: number;
}

export interface FaultProxy {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  readonly faults: ProxyFault[];
  readonly requests: ProxyLogEntry[];
  /** `url` with its origin replaced by the proxy's (path and query kept). */
  rewrite(url: string): string;
  stop(): Promise<void>;
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  const faults: ProxyFault[] = [];
  const requests: ProxyLogEntry[] = [];
  const sockets = new Set<net.Socket>();

  const server = http.createServer((req, res) => {
    const line = `${req.method} ${req.url}`;
    const entry: ProxyLogEntry = { method: req.method ?? 'GET', url: req.url ?? '/', status: 0, at: Date.now() };
    requests.push(entry);
    const fault = faults.find((f) => f.count > 0 && f.match.test(line) && (!f.withHeader || req.headers[f.withHeader] !== undefined));
    if (fault) {
      fault.count--;
      entry.fault = fault.action;
    }
    if (fault?.action === 'status') {
      req.resume();
      req.on('end', () => {
        const status = fault.status ?? 503;
        const code = fault.errorCode ?? 'ServerBusy';
        // The service's shape: the message carries RequestId and Time lines; headers name the request and version.
        const requestId = randomUUID();
        const message = `${fault.message ?? 'Injected by the fault proxy.'}\nRequestId:${requestId}\nTime:${new Date().toISOString()}`;
        const body = `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${message}</Message>${fault.detailXml ?? ''}</Error>`;
        entry.status = status;
        res.writeHead(status, {
          'Content-Type': 'application/xml', 'x-ms-error-code': code, 'x-ms-request-id': requestId,
          'x-ms-version': String(req.headers['x-ms-version'] ?? '2025-11-05'), Server: 'Windows-Azure-Blob/1.0 Microsoft-HTTPAPI/2.0',
          'Content-Length': Buffer.byteLength(body),
        }).end(body);
      });
      return;
    }
    const headers = { ...req.headers, host: upstream.host };
    const out = http.request({
      host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers,
    }, (answer) => {
      if (fault?.action === 'lostAnswer') {
        answer.resume();
        answer.on('end', () => req.socket.destroy());
        return;
      }
      entry.status = answer.statusCode ?? 0;
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    out.on('error', () => { if (!res.headersSent) req.socket.destroy(); });
    if (fault?.action === 'reset') {
      let sent = 0;
      const limit = fault.afterBytes ?? 0;
      const cut = () => { out.destroy(); req.socket.destroy(); };
      if (limit <= 0) return cut();
      req.on('data', (chunk: Buffer) => {
        if (sent >= limit) return;
        const take = chunk.subarray(0, limit - sent);
        sent += take.length;
        out.write(take);
        if (sent >= limit) setImmediate(cut);
      });
      req.on('end', cut);
      return;
    }
    req.pipe(out);
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const origin = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return {
    origin,
    faults,
    requests,
    rewrite(url: string) {
      const u = new URL(url);
      return origin + u.pathname + u.search;
    },
    stop: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

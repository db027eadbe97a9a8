// An HTTPS front for a local HTTP server, as a TLS-terminating reverse proxy in front of Azure DevOps Server or a
// load balancer with a public URL plays it: it answers on https://127.0.0.1:<port> with a certificate of the caller's
// choice (e.g. one signed by a test CA that only Agent.CAInfo names), forwards every request to the HTTP server, and
// rewrites the server's own base URL (http://<host>:<port>, also with a user name as in remoteUrl) to its public
// https:// URL in JSON answers (REST bodies, Git LFS batch hrefs), so clients never learn the inner address.
// Other bodies (git packs) stream through untouched. `requests` logs what arrived through the front.
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import * as net from 'net';

export interface TlsFront {
  /** `https://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** `METHOD path` of every request that came through, in arrival order. */
  requests: string[];
  /** TLS handshakes the front saw fail (a client that refused the certificate). */
  refusedHandshakes: number;
  stop(): Promise<void>;
}

/** `inner`: the HTTP server's base URL (`http://127.0.0.1:<port>`); `cert`/`key`: PEM files. */
export async function startTlsFront(inner: string, pem: { cert: string; key: string }): Promise<TlsFront> {
  const target = new URL(inner);
  const sockets = new Set<net.Socket>();
  const front: TlsFront = { url: '', port: 0, requests: [], refusedHandshakes: 0, stop: async () => undefined };
  const innerHost = target.host;
  // http://127.0.0.1:1234 and http://<user>@127.0.0.1:1234 (Azure DevOps' remoteUrl form) both become the front.
  const pattern = new RegExp(`http://(?:[^/@"\\s]+@)?${innerHost.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'g');
  const server = https.createServer({ cert: fs.readFileSync(pem.cert), key: fs.readFileSync(pem.key) }, (req, res) => {
    front.requests.push(`${req.method} ${req.url}`);
    const headers = { ...req.headers, host: innerHost };
    const upstream = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers }, (answer) => {
      const type = String(answer.headers['content-type'] ?? '');
      if (!/json/i.test(type)) {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        return;
      }
      const chunks: Buffer[] = [];
      answer.on('data', (c: Buffer) => chunks.push(c));
      answer.on('end', () => {
        const body = Buffer.from(Buffer.concat(chunks).toString('utf8').replace(pattern, front.url));
        const out = { ...answer.headers, 'content-length': String(body.length) };
        delete out['transfer-encoding'];
        res.writeHead(answer.statusCode ?? 502, out);
        res.end(body);
      });
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('connection', (s: net.Socket) => { sockets.add(s); s.once('close', () => sockets.delete(s)); });
  server.on('tlsClientError', () => { front.refusedHandshakes++; });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  front.port = (server.address() as net.AddressInfo).port;
  front.url = `https://127.0.0.1:${front.port}`;
  front.stop = () => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  });
  return front;
}

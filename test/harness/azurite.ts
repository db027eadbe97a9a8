// Starts Azurite's blob service as a child process on a free port of 127.0.0.1.
// Request log: Azurite prints an access log line per request on stdout (`"PUT /devstoreaccount1/c/b?sv=… HTTP/1.1" 201`);
// the handle collects them, so `requestUrls()` shows every path + query that reached the storage service.
import {
  BlobServiceClient,
  ContainerClient,
  ContainerSASPermissions,
  generateBlobSASQueryParameters,
  StorageSharedKeyCredential,
} from '@azure/storage-blob';
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import * as net from 'net';
import * as path from 'path';
import { tmpDir } from './util';

export const AZURITE_ACCOUNT = 'devstoreaccount1';
/** Azurite's well-known development account key (public, not a secret). */
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteRequest {
  method: string;
  /** Path and query as received. */
  url: string;
  status: number;
}

export interface AzuriteHandle {
  /** `http://127.0.0.1:<port>/devstoreaccount1` */
  blobUrl: string;
  accountName: string;
  accountKey: string;
  connectionString: string;
  /** The folder Azurite persists to. */
  location: string;
  /** A client authorized with the account key. */
  serviceClient(): BlobServiceClient;
  createContainer(name: string): Promise<ContainerClient>;
  /** A real container SAS URL (`sr=c`), e.g. permissions `cw`; valid from 5 minutes ago for 1 hour unless given. */
  containerSasUrl(container: string, permissions: string, opts?: { expiresOn?: Date; startsOn?: Date }): string;
  /** Every request Azurite logged so far. */
  requests(): AzuriteRequest[];
  /** `requests()` URLs only. */
  requestUrls(): string[];
  stop(): Promise<void>;
  /**
   * With `tls`: Azurite's own HTTPS endpoint (`https://127.0.0.1:<port>/devstoreaccount1`), for the task (which trusts
   * the test CA through NODE_EXTRA_CA_CERTS). `blobUrl` is then a plain-HTTP forwarder to it, for the test's own
   * shared-key clients (the test process cannot add a CA to the storage client's agent).
   */
  tlsBlobUrl?: string;
}

export interface AzuriteOptions {
  dir?: string;
  /** Serve HTTPS with this certificate (PEM files) signed by `ca`. */
  tls?: { cert: string; key: string; ca: string };
  /** `--oauth basic`: accept Entra bearer tokens (aud https://storage.azure.com, iss sts.windows.net, not expired). Needs `tls`. */
  oauth?: boolean;
}

export async function startAzurite(opts: AzuriteOptions = {}): Promise<AzuriteHandle> {
  const location = opts.dir ?? tmpDir('azurite');
  fs.mkdirSync(location, { recursive: true });
  const main = path.join(path.dirname(require.resolve('azurite/package.json')), 'dist', 'src', 'blob', 'main.js');
  const child = spawn(process.execPath, [
    main, '--blobHost', '127.0.0.1', '--blobPort', '0', '--location', location,
    '--skipApiVersionCheck', '--disableTelemetry', '--loose',
    ...(opts.tls ? ['--cert', opts.tls.cert, '--key', opts.tls.key] : []),
    ...(opts.oauth ? ['--oauth', 'basic'] : []),
  ], { cwd: location, stdio: ['ignore', 'pipe', 'pipe'] });

  const log: AzuriteRequest[] = [];
  let output = '';
  let pending = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`Azurite did not start within 30 s:\n${output}`)), 30_000);
    const fail = (err: Error) => { clearTimeout(timer); child.kill('SIGKILL'); reject(err); };
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`Azurite exited (${code}) before listening:\n${output}`)));
    child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
    child.stdout.on('data', (d: Buffer) => {
      pending += d.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const access = /"([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3})/.exec(line);
        if (access) {
          log.push({ method: access[1], url: access[2], status: Number(access[3]) });
          continue;
        }
        if (output.length < 64 * 1024) output += line + '\n';
        const listening = /successfully listens on (https?:\/\/\S+)/.exec(line);
        if (listening) {
          clearTimeout(timer);
          child.removeAllListeners('exit');
          resolve(listening[1]);
        }
      }
    });
  });

  let blobUrl = `${url}/${AZURITE_ACCOUNT}`;
  let tlsBlobUrl: string | undefined;
  let forwarder: http.Server | undefined;
  if (opts.tls) {
    tlsBlobUrl = blobUrl;
    const target = new URL(url);
    const ca = fs.readFileSync(opts.tls.ca);
    forwarder = http.createServer((req, res) => {
      const upstream = https.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, ca }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => forwarder!.listen(0, '127.0.0.1', () => resolve()));
    blobUrl = `http://127.0.0.1:${(forwarder.address() as net.AddressInfo).port}/${AZURITE_ACCOUNT}`;
  }
  const credential = new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY);
  const serviceClient = () => new BlobServiceClient(blobUrl, credential);
  return {
    blobUrl,
    accountName: AZURITE_ACCOUNT,
    accountKey: AZURITE_KEY,
    connectionString:
      `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${blobUrl};`,
    location,
    serviceClient,
    async createContainer(name: string) {
      const container = serviceClient().getContainerClient(name);
      await container.createIfNotExists();
      return container;
    },
    containerSasUrl(container, permissions, sasOpts = {}) {
      const now = Date.now();
      const sas = generateBlobSASQueryParameters({
        containerName: container,
        permissions: ContainerSASPermissions.parse(permissions),
        startsOn: sasOpts.startsOn ?? new Date(now - 5 * 60_000),
        expiresOn: sasOpts.expiresOn ?? new Date(now + 60 * 60_000),
      }, credential);
      return `${blobUrl}/${encodeURIComponent(container)}?${sas.toString()}`;
    },
    requests: () => [...log],
    requestUrls: () => log.map((r) => r.url),
    stop: async () => {
      forwarder?.closeAllConnections?.();
      if (forwarder) await new Promise<void>((resolve) => forwarder!.close(() => resolve()));
      await stopChild(child);
    },
    tlsBlobUrl,
  };
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => { clearTimeout(force); resolve(); });
    child.kill('SIGTERM');
  });
}

/**
 * The agent's network settings, read once: its proxy (Agent.ProxyUrl, Agent.ProxyUsername, Agent.ProxyPassword,
 * Agent.ProxyBypassList) and its certificate settings (Agent.CAInfo, Agent.SkipCertValidation). Hands out the
 * options each client needs: azure-devops-node-api request options, git/git-lfs config entries for one command
 * (given through the environment by credentials.ts's withGitConfig, never argv or files), and proxy options for
 * @azure/storage-blob and @azure/identity. The proxy password is a secret: masked as soon as it is read, never in
 * argv, a URL that is logged, or an error.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import * as net from 'net';
import * as tls from 'tls';
import type { IRequestOptions } from 'azure-devops-node-api/interfaces/common/VsoBaseInterfaces';
import { RunError } from './errors';
import { TaskHost } from './host';

export interface ProxySettings {
  /** The proxy's address without credentials (`http://proxy:8080/`). */
  url: URL;
  username?: string;
  password?: string;
  /** Agent.ProxyBypassList as given (regular expressions matched against the request URL, case-insensitive). */
  bypass: string[];
}

export interface NetworkSettings {
  proxy?: ProxySettings;
  /** Agent.CAInfo: a PEM file of the certificate authorities to trust. */
  caFile?: string;
  /** Agent.SkipCertValidation: accept any server certificate. */
  skipCertValidation: boolean;
}

type NetworkHost = Pick<TaskHost, 'variable' | 'setSecret'> & Partial<Pick<TaskHost, 'secretVariable' | 'warn'>>;

/** Reads the agent's settings; bad values fail with the variable's name and the fix, before any work starts. */
export function readNetworkSettings(host: NetworkHost): NetworkSettings {
  const settings: NetworkSettings = { skipCertValidation: /^true$/i.test(host.variable('Agent.SkipCertValidation') ?? '') };
  const rawUrl = host.variable('Agent.ProxyUrl');
  if (rawUrl) {
    let url: URL;
    try {
      url = new URL(rawUrl);
    } catch {
      throw new RunError(`Agent.ProxyUrl is not a URL (expected e.g. http://proxy.example.com:8080). Fix the agent's proxy setting (.proxy file or --proxyurl).`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new RunError(`Agent.ProxyUrl must be an http:// or https:// URL, not ${url.protocol}. Fix the agent's proxy setting (.proxy file or --proxyurl).`);
    }
    // Credentials in the URL itself are taken as the username and password (and masked).
    let username = host.variable('Agent.ProxyUsername') ?? (url.username ? decodeURIComponent(url.username) : undefined);
    let password = (host.secretVariable ? host.secretVariable('Agent.ProxyPassword') : host.variable('Agent.ProxyPassword'))
      ?? (url.password ? decodeURIComponent(url.password) : undefined);
    if (!username) { username = undefined; password = undefined; }
    if (password) {
      host.setSecret(password);
      if (encodeURIComponent(password) !== password) host.setSecret(encodeURIComponent(password));
    }
    url.username = '';
    url.password = '';
    let bypass: string[] = [];
    const rawBypass = host.variable('Agent.ProxyBypassList');
    if (rawBypass) {
      try {
        const parsed: unknown = JSON.parse(rawBypass);
        if (!Array.isArray(parsed) || parsed.some((p) => typeof p !== 'string')) throw new Error('not an array of strings');
        bypass = parsed as string[];
      } catch {
        throw new RunError(`Agent.ProxyBypassList must be a JSON array of regular expressions (e.g. ["\\\\.internal\\\\.example\\\\.com"]). Fix the agent's .proxybypass file.`);
      }
      for (const p of bypass) {
        try { new RegExp(p, 'i'); } catch { throw new RunError(`Agent.ProxyBypassList: '${p}' is not a valid regular expression. Fix the agent's .proxybypass file.`); }
      }
    }
    settings.proxy = { url, username, password, bypass };
  }
  const ca = host.variable('Agent.CAInfo');
  if (ca) {
    if (!fs.existsSync(ca) || !fs.statSync(ca).isFile()) {
      throw new RunError(`Agent.CAInfo names '${ca}', which is not a file on this agent. Point the agent's --sslcacert setting at the PEM file of your certificate authority.`);
    }
    settings.caFile = ca;
  }
  return settings;
}

export interface AzureClientOptions {
  /** For an http:// URL through the proxy: the SDK's own proxy support. */
  proxyOptions?: { host: string; port: number; username?: string; password?: string };
  /**
   * For an https:// URL: an agent that carries Agent.CAInfo / Agent.SkipCertValidation and, when the URL is
   * proxied, tunnels through the proxy (CONNECT) with them. The SDK's own proxyOptions would drop the TLS settings
   * behind a proxy, where a TLS-inspecting proxy makes Agent.CAInfo matter most.
   */
  agent?: https.Agent;
}

/** TLS settings from Agent.CAInfo / Agent.SkipCertValidation, as node's tls.connect takes them. */
export interface TlsOptions { ca?: string; rejectUnauthorized?: boolean }

/** The node/OpenSSL error codes of a server certificate the client does not trust. */
const CERT_ERRORS = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_UNTRUSTED', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_SIGNATURE_FAILURE', 'CERT_REJECTED', 'HOSTNAME_MISMATCH',
]);

/** Whether `err` (node, or a message from git/git-lfs/an SDK) is a refused server certificate. */
export function isCertificateError(err: unknown): boolean {
  const e = err as { code?: string; message?: string; cause?: unknown } | undefined;
  if (e?.code && CERT_ERRORS.has(e.code)) return true;
  if (e?.cause && e.cause !== err && isCertificateError(e.cause)) return true;
  const m = typeof err === 'string' ? err : e?.message ?? '';
  return /self[- ]signed certificate|unable to (?:verify the first|get (?:local )?issuer) certificate|certificate (?:verify failed|has expired|signed by unknown authority)|server certificate verification failed|x509: certificate/i.test(m);
}

/** The message for a refused server certificate: names Agent.CAInfo (and what it holds now) and the fix. */
export function certificateMessage(what: string, err: unknown, caFile?: string): string {
  const e = err as { code?: string; message?: string } | undefined;
  const detail = (e?.code ?? e?.message ?? String(err)).split('\n')[0].slice(0, 200);
  return `The server certificate of ${what} is not trusted (${detail}): ${caFile
    ? `Agent.CAInfo (${caFile}) does not hold the certificate authority that signed it`
    : 'it is signed by a certificate authority this agent does not know, and Agent.CAInfo is not set'}. ` +
    'Point Agent.CAInfo at the PEM file of that certificate authority (the agent\'s --sslcacert setting, or the pipeline variable Agent.CAInfo).';
}

/**
 * An https.Agent that opens each connection as a CONNECT tunnel through the agent's proxy (Basic credentials in
 * the CONNECT only), then TLS to the server with the agent's CA and verification settings (they are merged into
 * `options` by node's Agent). Node waits for the callback when createConnection returns nothing.
 */
class TunnelAgent extends https.Agent {
  constructor(private readonly proxy: ProxySettings, tlsOptions: TlsOptions) {
    super({ keepAlive: true, ...tlsOptions });
  }

  createConnection(requestOptions: http.RequestOptions, callback?: (err: Error | null, stream: net.Socket) => void): undefined {
    const options = requestOptions as tls.ConnectionOptions & { host?: string; port?: number | string; path?: unknown };
    const host = options.host ?? 'localhost';
    const port = Number(options.port) || 443;
    openTunnel(this.proxy, host, port, { ca: options.ca as string | undefined, rejectUnauthorized: options.rejectUnauthorized }).then((raw) => {
      const { path: _path, port: _port, ...rest } = options;
      void _path; void _port;
      callback!(null, tls.connect({ ...rest, host, socket: raw, servername: options.servername ?? (net.isIP(host) ? undefined : host) }));
    }, (err: Error) => callback!(err, undefined as unknown as net.Socket));
    return undefined;
  }
}

function proxyPort(url: URL): number {
  return url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}

function proxyAuthorization(p: ProxySettings): string | undefined {
  return p.username ? `Basic ${Buffer.from(`${p.username}:${p.password ?? ''}`).toString('base64')}` : undefined;
}

/** A CONNECT tunnel to host:port through the proxy; refusals name the agent setting that fixes them. */
function openTunnel(p: ProxySettings, host: string, port: number, proxyTls: TlsOptions, timeoutMs = 30_000): Promise<net.Socket> {
  return new Promise<net.Socket>((resolve, reject) => {
    const proxyHost = p.url.hostname.replace(/^\[|\]$/g, '');
    const socket: net.Socket = p.url.protocol === 'https:'
      ? tls.connect({ host: proxyHost, port: proxyPort(p.url), servername: net.isIP(proxyHost) ? undefined : proxyHost, ...proxyTls })
      : net.connect({ host: proxyHost, port: proxyPort(p.url) });
    const authority = `${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
    let answer = Buffer.alloc(0);
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      socket.removeListener('data', onData);
      socket.setTimeout(0);
      if (err) { socket.destroy(); reject(err); } else resolve(socket);
    };
    const onData = (chunk: Buffer) => {
      answer = Buffer.concat([answer, chunk]);
      const end = answer.indexOf('\r\n\r\n');
      if (end < 0) {
        if (answer.length > 16_384) finish(new RunError(`The agent's proxy ${p.url.origin} (Agent.ProxyUrl) answered CONNECT ${authority} with no valid HTTP answer.`));
        return;
      }
      const statusLine = answer.subarray(0, answer.indexOf('\r\n')).toString('latin1');
      const status = Number(/^HTTP\/\d(?:\.\d)?\s+(\d{3})/.exec(statusLine)?.[1]);
      if (status === 200) {
        const rest = answer.subarray(end + 4);
        if (rest.length) socket.unshift(rest);
        finish();
      } else if (status === 407 || status === 401) {
        finish(new RunError(`The agent's proxy ${p.url.origin} (Agent.ProxyUrl) refused ${p.username ? `the credentials of Agent.ProxyUsername '${p.username}'` : 'to work without credentials'} (HTTP ${status}) for ${authority}. ` +
          'Fix the agent\'s proxy user name and password (Agent.ProxyUsername, Agent.ProxyPassword).'));
      } else {
        finish(new RunError(`The agent's proxy ${p.url.origin} (Agent.ProxyUrl) refused to open a tunnel to ${authority}: ${statusLine.slice(0, 120)}. ` +
          'Allow this host and port on the proxy, or add the host to the agent\'s bypass list (Agent.ProxyBypassList, the agent\'s .proxybypass file).'));
      }
    };
    socket.on('data', onData);
    socket.once('error', (err: NodeJS.ErrnoException) => finish(isCertificateError(err)
      ? new RunError(certificateMessage(`the agent's proxy ${p.url.origin} (Agent.ProxyUrl)`, err, undefined))
      : new RunError(`The agent's proxy ${p.url.origin} (Agent.ProxyUrl) cannot be reached: ${err.code ?? err.message}. Check that the proxy is running and reachable from this agent.`)));
    socket.once('close', () => finish(new RunError(`The agent's proxy ${p.url.origin} (Agent.ProxyUrl) closed the connection while opening a tunnel to ${authority}.`)));
    socket.setTimeout(timeoutMs, () => finish(new RunError(`The agent's proxy ${p.url.origin} (Agent.ProxyUrl) did not open a tunnel to ${authority} within ${Math.round(timeoutMs / 1000)} s.`)));
    const auth = proxyAuthorization(p);
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth ? `Proxy-Authorization: ${auth}\r\n` : ''}\r\n`);
  });
}

/** The answer of `Network.request`: what fetch's Response offers that the callers use. */
export interface SmallResponse { ok: boolean; status: number; text(): Promise<string> }

const cache = new WeakMap<object, Network>();

export class Network {
  private readonly bypass: RegExp[];
  private readonly agents = new Map<'direct' | 'tunnel', https.Agent>();
  private ca?: string;

  constructor(readonly settings: NetworkSettings = { skipCertValidation: false }) {
    this.bypass = (settings.proxy?.bypass ?? []).map((p) => new RegExp(p, 'i'));
  }

  /**
   * The agent's settings for this host, read once (the same instance for the tasks' own clients and for the
   * service connection's credentials); Agent.SkipCertValidation is said as a warning, once.
   */
  static read(host: NetworkHost): Network {
    const known = cache.get(host);
    if (known) return known;
    const network = new Network(readNetworkSettings(host));
    if (network.settings.skipCertValidation) {
      host.warn?.('Agent.SkipCertValidation is true: server certificates are NOT validated (Azure DevOps, git, git-lfs, Azure Storage, Entra ID). ' +
        'Anyone on the network path can read and change the traffic, tokens included. Point Agent.CAInfo at your certificate authority instead.');
    }
    cache.set(host, network);
    return network;
  }

  /** Whether requests to `url` go through the proxy (there is one, and the bypass list does not name the URL). */
  proxied(url: string | URL): boolean {
    if (!this.settings.proxy) return false;
    const u = url.toString();
    return !this.bypass.some((re) => re.test(u));
  }

  /** One log line (no credentials). */
  describe(): string | undefined {
    const parts: string[] = [];
    const p = this.settings.proxy;
    if (p) parts.push(`proxy ${p.url.origin}${p.username ? ' (authenticated)' : ''}${p.bypass.length ? `, ${p.bypass.length} bypass pattern(s)` : ''}`);
    if (this.settings.caFile) parts.push(`certificate authorities from Agent.CAInfo (${this.settings.caFile})`);
    if (this.settings.skipCertValidation) parts.push('server certificates NOT validated (Agent.SkipCertValidation)');
    return parts.length ? `Network: ${parts.join('; ')}` : undefined;
  }

  /** azure-devops-node-api (typed-rest-client) options: it applies the bypass list to each request URL itself. */
  restOptions(): IRequestOptions {
    const options: IRequestOptions = {};
    const p = this.settings.proxy;
    if (p) {
      options.proxy = { proxyUrl: p.url.origin, proxyBypassHosts: p.bypass };
      if (p.username) {
        options.proxy.proxyUsername = p.username;
        options.proxy.proxyPassword = p.password ?? '';
      }
    }
    if (this.settings.caFile) options.cert = { caFile: this.settings.caFile };
    if (this.settings.skipCertValidation) options.ignoreSslError = true;
    return options;
  }

  /**
   * git and git-lfs config entries for one command against `remoteUrl`, to be given through GIT_CONFIG_COUNT (the
   * environment): `http.proxy` (its credentials only there), or an empty `http.proxy` when the bypass list names the
   * URL (no proxy, whatever http_proxy says); `http.sslCAInfo`; `http.sslVerify=false`.
   */
  gitConfig(remoteUrl: string): Array<[string, string]> {
    const entries: Array<[string, string]> = [];
    const p = this.settings.proxy;
    if (p) {
      if (this.proxied(remoteUrl)) {
        const auth = p.username ? `${encodeURIComponent(p.username)}:${encodeURIComponent(p.password ?? '')}@` : '';
        entries.push(['http.proxy', `${p.url.protocol}//${auth}${p.url.host}`]);
        if (p.username) entries.push(['http.proxyAuthMethod', 'basic']);
      } else {
        entries.push(['http.proxy', '']);
      }
    }
    if (this.settings.caFile) entries.push(['http.sslCAInfo', this.settings.caFile]);
    if (this.settings.skipCertValidation) entries.push(['http.sslVerify', 'false']);
    return entries;
  }

  /** Agent.CAInfo's certificates and Agent.SkipCertValidation, as tls.connect takes them. */
  tlsOptions(): TlsOptions {
    const o: TlsOptions = {};
    if (this.settings.caFile) o.ca = this.ca ??= fs.readFileSync(this.settings.caFile, 'utf8');
    if (this.settings.skipCertValidation) o.rejectUnauthorized = false;
    return o;
  }

  /**
   * The https.Agent for an https:// URL: a CONNECT tunnel through the proxy when the URL is proxied, else a plain
   * agent with the TLS settings; undefined when nothing is configured (node's defaults apply).
   */
  httpsAgent(url: string | URL): https.Agent | undefined {
    const tunnel = this.proxied(url);
    if (!tunnel && !this.settings.caFile && !this.settings.skipCertValidation) return undefined;
    const kind = tunnel ? 'tunnel' : 'direct';
    let agent = this.agents.get(kind);
    if (!agent) {
      agent = tunnel ? new TunnelAgent(this.settings.proxy!, this.tlsOptions()) : new https.Agent({ keepAlive: true, ...this.tlsOptions() });
      this.agents.set(kind, agent);
    }
    return agent;
  }

  /**
   * Client options for the Azure SDK clients (@azure/storage-blob, @azure/identity) talking to `url`: an https URL
   * gets `agent` (proxy tunnel and/or Agent.CAInfo / Agent.SkipCertValidation); an http URL through the proxy
   * gets the SDK's `proxyOptions`.
   */
  azureClientOptions(url: string | URL): AzureClientOptions {
    if (new URL(url.toString()).protocol === 'https:') {
      const agent = this.httpsAgent(url);
      return agent ? { agent } : {};
    }
    const proxyOptions = this.azureProxyOptions(url);
    return proxyOptions ? { proxyOptions } : {};
  }

  /** Like azureClientOptions, never through the proxy (the VM's own managed identity endpoint, which no proxy can reach). */
  directClientOptions(url: string | URL): AzureClientOptions {
    if (new URL(url.toString()).protocol !== 'https:' || (!this.settings.caFile && !this.settings.skipCertValidation)) return {};
    let agent = this.agents.get('direct');
    if (!agent) this.agents.set('direct', agent = new https.Agent({ keepAlive: true, ...this.tlsOptions() }));
    return { agent };
  }

  /**
   * One HTTP request with the agent's settings (the proxy and its bypass list, Agent.CAInfo,
   * Agent.SkipCertValidation): https through a CONNECT tunnel, http through the proxy as an absolute URI.
   */
  request(url: URL, init: { method: string; headers: Record<string, string>; body?: string }, timeoutMs = 60_000): Promise<SmallResponse> {
    const headers: Record<string, string> = { ...init.headers };
    if (init.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(init.body));
    let req: http.ClientRequest;
    const p = this.settings.proxy;
    if (url.protocol === 'https:') {
      req = https.request(url, { method: init.method, headers, agent: this.httpsAgent(url) ?? new https.Agent() });
    } else if (p && this.proxied(url)) {
      const auth = proxyAuthorization(p);
      const proxyHost = p.url.hostname.replace(/^\[|\]$/g, '');
      req = (p.url.protocol === 'https:' ? https : http).request({
        host: proxyHost, port: proxyPort(p.url), path: url.href, method: init.method,
        headers: { ...headers, Host: url.host, ...(auth ? { 'Proxy-Authorization': auth } : {}) },
        ...(p.url.protocol === 'https:' ? this.tlsOptions() : {}),
      });
    } else {
      req = http.request(url, { method: init.method, headers });
    }
    return new Promise<SmallResponse>((resolve, reject) => {
      req.once('error', reject);
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`)));
      req.once('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('error', reject);
        res.once('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          resolve({ ok: status >= 200 && status < 300, status, text: async () => body });
        });
      });
      req.end(init.body);
    });
  }

  /**
   * Before any work: one HEAD request to `targetUrl` (an https URL) with the agent's settings, so a server
   * certificate the agent does not trust fails the run at once with a message naming Agent.CAInfo, instead of
   * retries and a TLS error code. Any other failure is left to the requests themselves (they retry and explain).
   */
  async checkTrust(targetUrl: string, timeoutMs = 15_000): Promise<void> {
    const url = new URL(targetUrl);
    if (url.protocol !== 'https:') return;
    try {
      await this.request(url, { method: 'HEAD', headers: {} }, timeoutMs);
    } catch (err) {
      if (err instanceof RunError) throw err;
      if (isCertificateError(err)) throw new RunError(certificateMessage(url.origin, err, this.settings.caFile));
    }
  }

  /** `proxyOptions` for the Azure SDK clients (@azure/storage-blob, @azure/identity) talking to `url`. */
  azureProxyOptions(url: string | URL): { host: string; port: number; username?: string; password?: string } | undefined {
    const p = this.settings.proxy;
    if (!p || !this.proxied(url)) return undefined;
    const port = p.url.port ? Number(p.url.port) : p.url.protocol === 'https:' ? 443 : 80;
    return { host: `${p.url.protocol}//${p.url.hostname}`, port, ...(p.username ? { username: p.username, password: p.password ?? '' } : {}) };
  }

  /**
   * Fails fast, before any work, when the proxy for `targetUrl` does not accept connections or refuses the agent's
   * proxy credentials (407), instead of every request retrying for minutes: the message names Agent.ProxyUrl, or
   * Agent.ProxyUsername/Agent.ProxyPassword. Any other answer (a proxy that only tunnels to port 443…) is left to the
   * requests themselves.
   */
  async checkProxy(targetUrl: string, timeoutMs = 10_000): Promise<void> {
    const p = this.settings.proxy;
    if (!p || !this.proxied(targetUrl)) return;
    const port = p.url.port ? Number(p.url.port) : p.url.protocol === 'https:' ? 443 : 80;
    const target = new URL(targetUrl);
    const authority = `${target.hostname}:${target.port || (target.protocol === 'https:' ? 443 : 80)}`;
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const socket = net.connect({ host: p.url.hostname.replace(/^\[|\]$/g, ''), port });
      let answer = '';
      const fail = (why: string) => {
        socket.destroy();
        reject(new RunError(`The agent's proxy ${p.url.origin} (Agent.ProxyUrl) cannot be reached: ${why}. Check that the proxy is running and reachable from this agent, or fix the agent's proxy setting (.proxy file or --proxyurl).`));
      };
      socket.setTimeout(timeoutMs, () => fail(`no answer within ${Math.round(timeoutMs / 1000)} s`));
      socket.once('error', (err: NodeJS.ErrnoException) => fail(err.code ?? err.message));
      socket.once('connect', () => {
        if (p.url.protocol === 'https:') { socket.destroy(); resolve(undefined); return; }
        const auth = p.username ? `Proxy-Authorization: Basic ${Buffer.from(`${p.username}:${p.password ?? ''}`).toString('base64')}\r\n` : '';
        socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth}\r\n`);
      });
      socket.on('data', (chunk: Buffer) => {
        answer += chunk.toString('latin1');
        if (answer.includes('\r\n') || answer.length > 8192) {
          socket.destroy();
          const m = /^HTTP\/\d(?:\.\d)?\s+(\d{3})/.exec(answer);
          resolve(m ? Number(m[1]) : undefined);
        }
      });
      socket.once('end', () => resolve(undefined));
    });
    // 407 is the standard answer; some proxies (tinyproxy) answer a CONNECT with bad credentials with 401.
    if (status === 407 || status === 401) {
      throw new RunError(`The agent's proxy ${p.url.origin} (Agent.ProxyUrl) refused ${p.username ? `the credentials of Agent.ProxyUsername '${p.username}'` : 'to work without credentials'} (HTTP ${status}, proxy authentication required). ` +
        `Fix the agent's proxy user name and password (Agent.ProxyUsername, Agent.ProxyPassword: the agent's .proxycredentials, or --proxyusername/--proxypassword).`);
    }
  }
}

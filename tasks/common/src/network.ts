/**
 * The agent's network settings, read once: its proxy (Agent.ProxyUrl, Agent.ProxyUsername, Agent.ProxyPassword,
 * Agent.ProxyBypassList) and its certificate settings (Agent.CAInfo, Agent.SkipCertValidation). Hands out the
 * options each client needs: azure-devops-node-api request options, git/git-lfs config entries for one command
 * (given through the environment by credentials.ts's withGitConfig, never argv or files), and proxy options for
 * @azure/storage-blob and @azure/identity. The proxy password is a secret: masked as soon as it is read, never in
 * argv, a URL that is logged, or an error.
 */
import * as fs from 'fs';
import * as net from 'net';
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

type NetworkHost = Pick<TaskHost, 'variable' | 'setSecret'> & Partial<Pick<TaskHost, 'secretVariable'>>;

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
  proxyOptions?: { host: string; port: number; username?: string; password?: string };
  tlsOptions?: { ca: string };
}

export class Network {
  private readonly bypass: RegExp[];

  constructor(readonly settings: NetworkSettings = { skipCertValidation: false }) {
    this.bypass = (settings.proxy?.bypass ?? []).map((p) => new RegExp(p, 'i'));
  }

  static read(host: NetworkHost): Network {
    return new Network(readNetworkSettings(host));
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

  /**
   * Client options for the Azure SDK clients (@azure/storage-blob) talking to `url`: `proxyOptions`, or, when
   * the URL goes direct, `tlsOptions.ca` with Agent.CAInfo's certificates (the SDK ignores TLS settings behind a
   * proxy: there the proxy's own trust applies).
   */
  azureClientOptions(url: string | URL): AzureClientOptions {
    const proxyOptions = this.azureProxyOptions(url);
    if (proxyOptions) return { proxyOptions };
    if (this.settings.caFile) return { tlsOptions: { ca: fs.readFileSync(this.settings.caFile, 'utf8') } };
    return {};
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

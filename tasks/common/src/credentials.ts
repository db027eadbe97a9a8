/**
 * The only module that holds secrets: the job token or PAT, an Entra token for Azure DevOps (kept fresh by
 * identity.ts's TokenKeeper), and the SAS signature. It registers each with the
 * agent's masker, hands REST clients an auth handler, and hands git one command's worth of environment config.
 * Secrets never go to argv, URLs, files or logs.
 */
import { getBearerHandler, getPersonalAccessTokenHandler } from 'azure-devops-node-api';
import type { IHttpClientResponse, IRequestHandler } from 'azure-devops-node-api/interfaces/common/VsoBaseInterfaces';
import { InputError, RunError } from './errors';
import { TaskHost } from './host';

export type AuthType = 'systemToken' | 'pat' | 'serviceConnection';

/** A token that changes over time (an Entra token renewed before it expires): each use reads the current one. */
export interface TokenSource {
  current(): string;
  /** Gets the first token (a refusal throws a message naming the fix). */
  start?(): Promise<void>;
  /** Stops renewing (end of the run). */
  stop?(): void;
}

export class DevOpsCredentials {
  /** Where git may send the token; unset = wherever it is asked to (set by the tasks' settings before any work). */
  private scope?: TokenScope;

  private constructor(readonly type: AuthType, private readonly source: TokenSource, readonly connection?: string) {}

  /** From now on gitEnv gives the token only for URLs `scope` allows, and refuses any other. */
  restrictTo(scope: TokenScope): this {
    this.scope = scope;
    return this;
  }

  /** The hosts the token may go to (undefined before `restrictTo`). */
  get tokenScope(): TokenScope | undefined {
    return this.scope;
  }

  /** Wraps the token and registers it (and the header forms derived from it) as secrets. */
  static create(type: Exclude<AuthType, 'serviceConnection'>, token: string, host: Pick<TaskHost, 'setSecret'>): DevOpsCredentials {
    const creds = new DevOpsCredentials(type, { current: () => token });
    host.setSecret(token);
    if (type === 'pat') host.setSecret(basic(token));
    return creds;
  }

  /**
   * An Entra token for Azure DevOps from an Azure Resource Manager service connection, used as Bearer. The source
   * (identity.ts's TokenKeeper) masks each token as it is issued and renews it before it expires.
   */
  static fromServiceConnection(connection: string, source: TokenSource): DevOpsCredentials {
    return new DevOpsCredentials('serviceConnection', source, connection);
  }

  get description(): string {
    if (this.type === 'serviceConnection') return `the service principal of the service connection '${this.connection}'`;
    return this.type === 'pat' ? 'the personal access token' : 'the job access token (System.AccessToken)';
  }

  /** Gets the first token of a service connection before any work starts (nothing to do for a fixed token). */
  async prepare(): Promise<void> {
    await this.source.start?.();
  }

  /** Stops renewing a service connection's token (nothing to do for a fixed token). */
  dispose(): void {
    this.source.stop?.();
  }

  /** The Authorization header as Azure DevOps accepts it: Bearer for the job token or an Entra token, Basic for a PAT. */
  private authorization(): string {
    return this.type === 'pat' ? `Basic ${basic(this.source.current())}` : `Bearer ${this.source.current()}`;
  }

  restHandler(): IRequestHandler {
    if (this.type === 'serviceConnection') return new CurrentBearerHandler(this.source);
    return this.type === 'pat' ? getPersonalAccessTokenHandler(this.source.current()) : getBearerHandler(this.source.current());
  }

  /**
   * The environment for one git or git-lfs command against `remoteUrl`: the Authorization header as
   * `http.<origin>/.extraheader`, given through GIT_CONFIG_COUNT/KEY/VALUE (git ≥ 2.31), so it is never in
   * argv, in a URL or in the repository's config, and is sent only to that origin. Credential helpers and
   * prompts are off: a bad token fails fast instead of waiting for input.
   */
  gitEnv(remoteUrl: string, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
    // The last line of defence: whatever a caller forgot to check, the token never goes to a host nobody trusted.
    if (this.scope && !this.scope.allows(remoteUrl)) throw new UntrustedHostError(remoteUrl, this.scope);
    const origin = new URL(remoteUrl).origin + '/';
    return withGitConfig(base, [
      ['credential.helper', ''],
      [`http.${origin}.extraheader`, `AUTHORIZATION: ${this.authorization()}`],
    ]);
  }
}

/**
 * The hosts a clone URL may be on for git to get the token: the collection URL's own origin (scheme, host, port),
 * on Services its other name (`dev.azure.com/<org>` ⇄ `<org>.visualstudio.com`), and the hosts the `trustedHosts`
 * input names (`host` = any port, `host:port` = that port; https, or http only when the collection URL is http).
 * Azure DevOps Server reports clone URLs on the name set as its public URL, which can differ from the one the agent
 * uses: the token then goes there only when a person said so.
 */
export class TokenScope {
  private readonly origin: URL;
  private readonly aliases: string[] = [];

  constructor(collectionUrl: string, readonly trustedHosts: readonly string[] = []) {
    this.origin = new URL(collectionUrl);
    const host = this.origin.hostname.toLowerCase();
    const org = this.origin.pathname.split('/').filter(Boolean)[0];
    if (host === 'dev.azure.com' && org) this.aliases.push(`${org.toLowerCase()}.visualstudio.com`);
    const vs = /^([^.]+)\.visualstudio\.com$/.exec(host);
    if (vs) this.aliases.push('dev.azure.com');
  }

  /** True when git may send the token to `url`. */
  allows(url: string): boolean {
    let u: URL;
    try { u = new URL(url); } catch { return false; }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') return false;
    if (u.origin === this.origin.origin) return true;
    const host = u.hostname.toLowerCase();
    if (u.protocol === 'https:' && !u.port && this.aliases.includes(host)) return true;
    if (u.protocol === 'http:' && this.origin.protocol !== 'http:') return false;
    const port = u.port || (u.protocol === 'https:' ? '443' : '80');
    return this.trustedHosts.some((t) => {
      const [h, p] = splitHostPort(t);
      return h === host && (p === undefined || p === port);
    });
  }

  /** `host[:port]` of a URL, for messages. */
  static hostOf(url: string): string {
    try { return new URL(url).host; } catch { return '(unparsable URL)'; }
  }

  /** For the log: where the token may go. */
  describe(): string {
    const own = [this.origin.host, ...this.aliases].join(', ');
    return `the collection's host (${own})${this.trustedHosts.length ? ` and the trustedHosts ${this.trustedHosts.join(', ')}` : ''}`;
  }
}

function splitHostPort(entry: string): [string, string | undefined] {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(entry);
  return m ? [m[1], m[2]] : [entry, undefined];
}

/**
 * The `trustedHosts` input: host names (optionally `:port`), separated by commas, spaces or new lines; empty = none.
 * Throws an InputError for anything that is not a plain host name (a URL, a path, a wildcard).
 */
export function parseTrustedHosts(raw: string | undefined, input = 'trustedHosts'): string[] {
  const out: string[] = [];
  for (const entry of (raw ?? '').split(/[\s,;]+/).map((e) => e.trim()).filter(Boolean)) {
    let ok = false;
    let normal = entry.toLowerCase();
    try {
      const u = new URL(`https://${entry}`);
      ok = !/[/?#@*]/.test(entry) && u.host.length > 0;
      normal = u.port ? `${u.hostname}:${u.port}` : u.hostname;
      // new URL drops :443; keep the port a person wrote.
      const written = /:(\d+)$/.exec(entry)?.[1];
      if (written && !u.port) normal = `${u.hostname}:${written}`;
    } catch { ok = false; }
    if (!ok) {
      throw new InputError(input, `'${entry}' is not a host name. Enter host names only (optionally with :port), separated by commas or new lines, e.g. git.contoso.com or tfs.internal:8443.`);
    }
    if (!out.includes(normal)) out.push(normal);
  }
  return out;
}

/** git was asked to use the token for a clone URL on a host the token may not go to. */
export class UntrustedHostError extends RunError {
  readonly host: string;
  /** `subject` names the URL (default: the URL itself), `consequence` what was not done (default: git was not run against it). */
  constructor(url: string, scope: TokenScope, consequence = 'so git was not run against it', subject = `The clone URL ${safeUrl(url)}`) {
    const host = TokenScope.hostOf(url);
    super(`${subject} is on host ${host}, which is not the collection URL's host: the token is sent only to ${scope.describe()}, ${consequence}. ` +
      `If ${host} is your Azure DevOps (e.g. the Server's public URL differs from the one the agent uses), add it to the trustedHosts input.`);
    this.name = 'UntrustedHostError';
    this.host = host;
  }
}

/** Bearer with whatever token is current when each request is prepared (the token is renewed during a long run). */
class CurrentBearerHandler implements IRequestHandler {
  constructor(private readonly source: TokenSource) {}

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  prepareRequest(options: any): void {
    if (!options.headers) throw new Error('The request has no headers');
    options.headers.Authorization = `Bearer ${this.source.current()}`;
    options.headers['X-TFS-FedAuthRedirect'] = 'Suppress';
  }

  canHandleAuthentication(): boolean {
    return false;
  }

  handleAuthentication(): Promise<IHttpClientResponse> {
    throw new Error('not implemented');
  }
}

function basic(pat: string): string {
  return Buffer.from(`:${pat}`).toString('base64');
}

/** Adds config entries to an environment through GIT_CONFIG_COUNT, keeping entries already there. */
export function withGitConfig(base: NodeJS.ProcessEnv, entries: Array<[string, string]>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, GIT_TERMINAL_PROMPT: '0', GCM_INTERACTIVE: 'never', GIT_ASKPASS: '', SSH_ASKPASS: '' };
  let count = Number.parseInt(base.GIT_CONFIG_COUNT ?? '0', 10);
  if (!Number.isFinite(count) || count < 0) count = 0;
  for (const [key, value] of entries) {
    env[`GIT_CONFIG_KEY_${count}`] = key;
    env[`GIT_CONFIG_VALUE_${count}`] = value;
    count++;
  }
  env.GIT_CONFIG_COUNT = String(count);
  return env;
}

/** Registers a SAS URL's signature and query as secrets. */
export function registerSasSecrets(sasUrl: URL, host: Pick<TaskHost, 'setSecret'>): void {
  const sig = sasUrl.searchParams.get('sig');
  if (sig) {
    host.setSecret(sig);
    if (encodeURIComponent(sig) !== sig) host.setSecret(encodeURIComponent(sig));
  }
  if (sasUrl.search.length > 1) host.setSecret(sasUrl.search.slice(1));
}

/** A URL fit for a log line: no query (a SAS), no user info. */
export function safeUrl(url: string | URL): string {
  try {
    const u = new URL(url.toString());
    u.username = '';
    u.password = '';
    const hadQuery = u.search.length > 0;
    u.search = '';
    return u.toString() + (hadQuery ? '?…' : '');
  } catch {
    return '(unparsable URL)';
  }
}

/** Removes anything that looks like a credential from a message (SAS signatures, Authorization values). */
export function redact(text: string): string {
  return text
    .replace(/([?&]sig=)[^&\s"']+/gi, '$1***')
    .replace(/(authorization:\s*(?:bearer|basic)\s+)[^\s"']+/gi, '$1***')
    .replace(/(https?:\/\/)[^/@\s:]+:[^/@\s]+@/gi, '$1***@');
}

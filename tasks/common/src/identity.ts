/**
 * Where an Entra (Azure AD) token comes from when the tasks authenticate through an Azure Resource Manager service
 * connection (`azureSubscription`): workload identity federation (an OIDC token for the connection from the pipeline,
 * exchanged as a client assertion), a service principal secret, or the managed identity of the agent's VM. The
 * exchange itself is @azure/identity's (ClientAssertionCredential, ClientSecretCredential, ManagedIdentityCredential)
 * with the endpoint's authority host; nothing here writes a JWT or calls a token endpoint by hand.
 *
 * The rest of the engine sees a TokenCredential (for @azure/storage-blob) and a `TokenKeeper` that always holds a
 * valid Azure DevOps token (renewed before it expires) for the REST auth handler and each git command's header.
 * Every token, assertion and secret is registered with the agent's masker the moment it exists.
 *
 * Every request here (the OIDC token request, the token requests to the authority host) goes out with the agent's
 * network settings (network.ts): Agent.ProxyUrl and its credentials and bypass list, Agent.CAInfo,
 * Agent.SkipCertValidation. The managed identity endpoint of the VM never goes through the proxy.
 */
import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import { ClientAssertionCredential, ClientSecretCredential, ManagedIdentityCredential } from '@azure/identity';
import { InputError, RunError } from './errors';
import { Logger, TaskHost } from './host';
import { certificateMessage, isCertificateError, Network, SmallResponse } from './network';

/** Azure DevOps' resource (application) id: tokens for it are accepted as Bearer by REST, git and LFS. */
export const DEVOPS_RESOURCE = '499b84ac-1321-427f-aa17-267ca6975798';
export const DEVOPS_SCOPE = `${DEVOPS_RESOURCE}/.default`;
export const STORAGE_SCOPE = 'https://storage.azure.com/.default';

export const SUPPORTED_SCHEMES = ['WorkloadIdentityFederation', 'ServicePrincipal', 'ManagedServiceIdentity'] as const;
export type ConnectionScheme = typeof SUPPORTED_SCHEMES[number];

export interface ServiceConnection {
  /** The endpoint id the agent passes (the input's value). */
  id: string;
  scheme: ConnectionScheme;
  tenantId?: string;
  clientId?: string;
  /** e.g. https://login.microsoftonline.com/ (ENDPOINT_DATA_<id>_ENVIRONMENTAUTHORITYURL). */
  authorityHost: string;
  /** AzureCloud, AzureUSGovernment, AzureChinaCloud, … (ENDPOINT_DATA_<id>_ENVIRONMENT). */
  environment?: string;
  /** For ServicePrincipal: the client secret (masked). */
  secret?: string;
}

/** Authority hosts Entra's instance discovery knows; any other (a sovereign or private host) skips discovery. */
const KNOWN_AUTHORITIES = ['login.microsoftonline.com', 'login.windows.net', 'login.microsoftonline.us', 'login.chinacloudapi.cn', 'login.partner.microsoftonline.cn'];

/**
 * Reads the AzureRM service connection named by `input` as the agent passes it (ENDPOINT_AUTH_SCHEME_<id>,
 * ENDPOINT_AUTH_PARAMETER_<id>_TENANTID / SERVICEPRINCIPALID / SERVICEPRINCIPALKEY, ENDPOINT_DATA_<id>_…).
 * `why` says which setting asked for it, for the message when it is empty.
 */
export function readServiceConnection(host: TaskHost, input: string, why: string): ServiceConnection {
  const id = host.input(input);
  if (!id) {
    throw new InputError(input, `is empty while ${why}. Choose an Azure Resource Manager service connection (workload identity federation recommended) and authorize it for this pipeline.`);
  }
  const rawScheme = host.endpointAuthScheme(id);
  if (!rawScheme) {
    throw new InputError(input, `'${id}': the agent passed no service connection by that name or id. Check the name, and that the connection is authorized for this pipeline (Project settings → Service connections → the connection → Security → Pipeline permissions).`);
  }
  const scheme = SUPPORTED_SCHEMES.find((s) => s.toLowerCase() === rawScheme.toLowerCase());
  if (!scheme) {
    throw new InputError(input, `'${id}' uses the authentication scheme '${rawScheme}', which this task does not support. Supported: ${SUPPORTED_SCHEMES.join(', ')} (an Azure Resource Manager connection; workload identity federation recommended).`);
  }
  const param = (k: string) => host.endpointAuthParameter(id, k);
  const data = (k: string) => host.endpointData?.(id, k);
  const authority = data('environmentAuthorityUrl') ?? data('activeDirectoryAuthority') ?? 'https://login.microsoftonline.com/';
  let authorityHost: string;
  try {
    authorityHost = new URL(authority).toString();
  } catch {
    throw new InputError(input, `'${id}': the connection's authority URL '${authority}' is not a URL. Edit the service connection (environment) and try again.`);
  }
  const conn: ServiceConnection = { id, scheme, authorityHost, environment: data('environment'), tenantId: param('tenantid'), clientId: param('serviceprincipalid') };
  if (scheme !== 'ManagedServiceIdentity') {
    if (!conn.tenantId) throw new InputError(input, `'${id}' (${scheme}) carries no tenant id. Edit the service connection so it names its tenant.`);
    if (!conn.clientId) throw new InputError(input, `'${id}' (${scheme}) carries no service principal (application) id. Edit the service connection.`);
  }
  if (scheme === 'ServicePrincipal') {
    if ((param('authenticationType') ?? 'spnKey').toLowerCase() === 'spncertificate') {
      throw new InputError(input, `'${id}' is a service principal connection with a certificate, which this task does not support. Use workload identity federation (recommended) or a secret.`);
    }
    conn.secret = param('serviceprincipalkey');
    if (!conn.secret) throw new InputError(input, `'${id}' is a service principal connection without a secret. Convert it to workload identity federation (recommended) or give it a secret.`);
    host.setSecret(conn.secret);
  }
  return conn;
}

/** Masks every token a credential hands out before anyone can log it. */
export function maskedCredential(inner: TokenCredential, host: Pick<TaskHost, 'setSecret'>): TokenCredential {
  return {
    async getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
      const token = await inner.getToken(scopes, options);
      if (token?.token) host.setSecret(token.token);
      return token;
    },
  };
}

/** How the OIDC request is sent (tests give their own; by default Network.request, with the agent's proxy and CA). */
export type OidcFetch = (url: URL, init: { method: string; headers: Record<string, string>; body?: string }) => Promise<SmallResponse>;

export interface OidcSource {
  /** An OIDC token (a JWT issued by Azure DevOps for this service connection), fresh on each call. */
  (): Promise<string>;
}

/**
 * The pipeline's OIDC token for a service connection: `POST <System.OidcRequestUri>?serviceConnectionId=<id>` with the
 * job token (the distributed-task `oidctoken` API, built from System.CollectionUri, TeamProjectId, HostType, PlanId
 * and JobId, when the variable is absent).
 */
export function pipelineOidc(host: TaskHost, connectionId: string, jobToken: string | undefined, fetchImpl?: OidcFetch): OidcSource {
  return async () => {
    let base = host.variable('System.OidcRequestUri');
    if (!base) {
      const v = (n: string) => host.variable(n);
      const collection = v('System.CollectionUri') ?? v('System.TeamFoundationCollectionUri');
      if (collection && v('System.TeamProjectId') && v('System.PlanId') && v('System.JobId')) {
        base = `${collection.replace(/\/?$/, '/')}${v('System.TeamProjectId')}/_apis/distributedtask/hubs/${v('System.HostType') ?? 'build'}/plans/${v('System.PlanId')}/jobs/${v('System.JobId')}/oidctoken`;
      }
    }
    if (!base || !jobToken) {
      throw new RunError(`The service connection '${connectionId}' uses workload identity federation, but this job cannot request an OIDC token (${!base ? 'System.OidcRequestUri is not set' : 'the job access token is not available'}). Run the task in an Azure Pipelines job on an agent that supports workload identity federation (agent 3.227 or later).`);
    }
    const url = new URL(base);
    url.searchParams.set('api-version', '7.1');
    url.searchParams.set('serviceConnectionId', connectionId);
    let res: SmallResponse;
    const network = Network.read(host);
    const send: OidcFetch = fetchImpl ?? ((u, init) => network.request(u, init));
    try {
      res = await send(url, { method: 'POST', headers: { Authorization: `Bearer ${jobToken}`, 'Content-Type': 'application/json', Accept: 'application/json' }, body: '{}' });
    } catch (err) {
      if (err instanceof RunError) throw err;
      if (isCertificateError(err)) throw new RunError(`Requesting the OIDC token for the service connection '${connectionId}' failed: ${certificateMessage(url.origin, err, network.settings.caFile)}`);
      throw new RunError(`Requesting the OIDC token for the service connection '${connectionId}' failed: ${(err as Error).message}. Check the agent's network or proxy settings.`);
    }
    const text = await res.text();
    if (!res.ok) {
      throw new RunError(`Azure DevOps refused the OIDC token for the service connection '${connectionId}' (${res.status}). ` +
        'The connection must be authorized for this pipeline (Project settings → Service connections → the connection → Security → Pipeline permissions) and use workload identity federation.');
    }
    let token: string | undefined;
    try { token = (JSON.parse(text) as { oidcToken?: string }).oidcToken; } catch { /* below */ }
    if (!token) throw new RunError(`Azure DevOps answered the OIDC token request for the service connection '${connectionId}' without a token.`);
    host.setSecret(token);
    return token;
  };
}

/** The VM's managed identity endpoint (IMDS, or the one @azure/identity takes from AZURE_POD_IDENTITY_AUTHORITY_HOST). */
function managedIdentityEndpoint(): string {
  return process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST || 'http://169.254.169.254/';
}

/**
 * The @azure/identity credential for a connection, its tokens masked; its requests use the agent's network
 * settings (`network`, by default the agent's own: the proxy for the authority host, Agent.CAInfo,
 * Agent.SkipCertValidation).
 */
export function connectionCredential(conn: ServiceConnection, host: TaskHost, oidc?: OidcSource, network: Network = Network.read(host)): TokenCredential {
  const authorityHost = conn.authorityHost;
  const disableInstanceDiscovery = !KNOWN_AUTHORITIES.includes(new URL(authorityHost).hostname.toLowerCase());
  const common = { authorityHost, disableInstanceDiscovery, additionallyAllowedTenants: ['*'], ...network.azureClientOptions(authorityHost) };
  let inner: TokenCredential;
  let oidcFailure: Error | undefined;
  switch (conn.scheme) {
    case 'WorkloadIdentityFederation': {
      if (!oidc) throw new Error('workload identity federation needs an OIDC source');
      // @azure/identity wraps a failed assertion callback in its own error: keep ours, which names the fix.
      const assertion = async () => {
        try {
          oidcFailure = undefined;
          return await oidc();
        } catch (err) {
          oidcFailure = err as Error;
          throw err;
        }
      };
      inner = new ClientAssertionCredential(conn.tenantId!, conn.clientId!, assertion, common);
      break;
    }
    case 'ServicePrincipal':
      inner = new ClientSecretCredential(conn.tenantId!, conn.clientId!, conn.secret!, common);
      break;
    case 'ManagedServiceIdentity': {
      const options = network.directClientOptions(managedIdentityEndpoint());
      inner = conn.clientId ? new ManagedIdentityCredential({ clientId: conn.clientId, ...options }) : new ManagedIdentityCredential(options);
      break;
    }
  }
  // MSAL reports a refused certificate or proxy only as "endpoints cannot be resolved": on a failure, one request to
  // the authority host with the same settings tells which (Agent.CAInfo, Agent.ProxyUrl…).
  const diagnose = conn.scheme === 'ManagedServiceIdentity' ? async () => undefined : () => network.checkTrust(authorityHost);
  return explainingCredential(maskedCredential(inner, host), conn, () => oidcFailure, network.settings.caFile, diagnose);
}

/** Turns Entra's refusals into messages that name the fix. */
export function explainEntraError(err: unknown, conn: Pick<ServiceConnection, 'id' | 'scheme'>, scope: string): Error {
  if (err instanceof RunError) return err;
  const e = err as { message?: string; errorResponse?: { error?: string; errorDescription?: string } };
  const detail = `${e?.errorResponse?.errorDescription ?? ''} ${e?.message ?? String(err)}`;
  const code = /AADSTS\d+/.exec(detail)?.[0];
  const what = scope === STORAGE_SCOPE ? 'Azure Storage' : scope === DEVOPS_SCOPE ? 'Azure DevOps' : scope;
  const prefix = `Entra ID refused a token for ${what} to the service connection '${conn.id}' (${conn.scheme}${code ? `, ${code}` : ''})`;
  if (code === 'AADSTS700213' || code === 'AADSTS70021' || code === 'AADSTS700211' || code === 'AADSTS700212') {
    return new RunError(`${prefix}: the federated credential of the app registration (or managed identity) does not match this service connection. ` +
      'Its issuer and subject must be the ones the service connection shows (subject sc://<organization>/<project>/<connection name>): fix them under the app registration → Certificates & secrets → Federated credentials.');
  }
  if (code === 'AADSTS7000215' || code === 'AADSTS7000222') {
    return new RunError(`${prefix}: the service principal's secret is wrong or expired. Renew it in the service connection, or convert the connection to workload identity federation.`);
  }
  if (code === 'AADSTS700016' || code === 'AADSTS90002') {
    return new RunError(`${prefix}: the application or tenant does not exist in the connection's cloud. Check the service connection's tenant and application id.`);
  }
  if (/ManagedIdentity|IMDS|managed identity/i.test(detail) && conn.scheme === 'ManagedServiceIdentity') {
    return new RunError(`${prefix}: no managed identity is available on this agent. ManagedServiceIdentity connections work only on a self-hosted agent on an Azure VM with a managed identity.`);
  }
  const first = (e?.errorResponse?.errorDescription ?? e?.message ?? String(err)).split('\n')[0].slice(0, 300);
  return new RunError(`${prefix}: ${first}`);
}

function explainingCredential(inner: TokenCredential, conn: ServiceConnection, oidcFailure: () => Error | undefined, caFile?: string,
  diagnose: () => Promise<void> = async () => undefined): TokenCredential {
  return {
    async getToken(scopes, options) {
      try {
        return await inner.getToken(scopes, options);
      } catch (err) {
        if ((err as Error)?.name === 'AbortError') throw err;
        const own = oidcFailure();
        if (own instanceof RunError) throw own;
        if (isCertificateError(err)) throw new RunError(`Requesting a token from Entra ID for the service connection '${conn.id}' failed: ${certificateMessage(conn.authorityHost, err, caFile)}`);
        if (!(err as { errorResponse?: { error?: string } })?.errorResponse?.error?.startsWith('invalid_')) {
          try {
            await diagnose();
          } catch (why) {
            if (why instanceof RunError) throw new RunError(`Requesting a token from Entra ID for the service connection '${conn.id}' failed: ${why.message}`);
          }
        }
        throw explainEntraError(err, conn, Array.isArray(scopes) ? scopes[0] : scopes);
      }
    },
  };
}

/**
 * Holds one valid token for `scope` and renews it in the background halfway through its lifetime, so synchronous
 * users (a REST request's header, a git command's environment) always read a token that has at least half its
 * lifetime left when they start (about 30 minutes for Entra's tokens: enough for a long `git lfs fetch`, which keeps
 * the header it started with). Each renewal uses a fresh credential from `newCredential`: @azure/identity's cache
 * would hand back the same token until 5 minutes before it expires. A failed renewal is tried again every few
 * seconds while the old token lasts, and said in the log.
 */
export class TokenKeeper {
  private token?: AccessToken;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  /** How many tokens were obtained (for logs and tests). */
  renewals = 0;

  constructor(private readonly newCredential: () => TokenCredential, readonly scope: string, private readonly log?: Pick<Logger, 'warn' | 'debug'>,
    private readonly now: () => number = Date.now) {}

  /** Gets the first token (throws the explained refusal) and starts renewing. */
  async start(): Promise<void> {
    await this.renew();
  }

  /** The current token; throws if `start` did not succeed. */
  current(): string {
    if (!this.token) throw new Error('no token yet: TokenKeeper.start() was not awaited');
    return this.token.token;
  }

  /** A token for `scope`, from the credential (used by callers that can wait). */
  async getToken(): Promise<string> {
    if (!this.token || this.token.expiresOnTimestamp - this.now() < 5_000) await this.renew();
    return this.current();
  }

  private async renew(): Promise<void> {
    const previous = this.token;
    const next = await this.newCredential().getToken(this.scope);
    if (!next) throw new RunError(`No token was issued for ${this.scope}.`);
    this.token = next;
    this.renewals++;
    const lifetime = next.expiresOnTimestamp - this.now();
    const same = previous && previous.token === next.token;
    this.log?.debug(`Token for ${this.scope} ${previous ? 'renewed' : 'obtained'}; it expires ${new Date(next.expiresOnTimestamp).toISOString()}.`);
    // A credential that answered from a cache gets asked again sooner rather than at the same expiry.
    this.schedule(Math.max(1_000, same ? lifetime / 4 : lifetime / 2));
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.renew().catch((err) => {
        this.log?.warn(`Renewing the token for ${this.scope} failed; trying again: ${(err as Error).message}`);
        const left = (this.token?.expiresOnTimestamp ?? 0) - this.now();
        this.schedule(Math.max(1_000, Math.min(5_000, left / 4)));
      });
    }, delay);
    this.timer.unref?.();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}

/** Storage account endpoint suffix for the connection's cloud. */
export function blobSuffixFor(environment: string | undefined): string | undefined {
  switch ((environment ?? 'AzureCloud').toLowerCase()) {
    case 'azurecloud': return 'blob.core.windows.net';
    case 'azureusgovernment': return 'blob.core.usgovcloudapi.net';
    case 'azurechinacloud': return 'blob.core.chinacloudapi.cn';
    case 'azuregermancloud': return 'blob.core.cloudapi.de';
    default: return undefined;
  }
}

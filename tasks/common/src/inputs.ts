/** Readers for the inputs both tasks share. Every message names the input and says what to do. */
import { constants as fsc, promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { TokenCredential } from '@azure/core-auth';
import { AuthType, DevOpsCredentials, registerSasSecrets } from './credentials';
import { InputError } from './errors';
import { TaskHost } from './host';
import {
  blobSuffixFor, connectionCredential, DEVOPS_SCOPE, pipelineOidc, readServiceConnection, ServiceConnection, TokenKeeper,
} from './identity';
import { ContainerSas, parseContainerSas } from './sas';
import { defaultRetryPolicy, RetryPolicy } from './retry';

export interface Organization {
  /** Normalized, with a trailing slash. */
  url: string;
  /** The organization (collection) name, used in blob names. */
  name: string;
}

export const SYSTEM_CONNECTION = 'SYSTEMVSSCONNECTION';

export function organizationName(url: URL): string {
  const host = url.hostname.toLowerCase();
  const segments = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  if (host === 'dev.azure.com' && segments[0]) return segments[0];
  const vs = /^([^.]+)\.visualstudio\.com$/.exec(host);
  if (vs) return vs[1];
  return segments.at(-1) ?? host;
}

export function readOrganization(host: TaskHost): Organization {
  const raw = host.input('organizationUrl') ?? host.variable('System.CollectionUri') ?? host.variable('System.TeamFoundationCollectionUri');
  if (!raw) {
    throw new InputError('organizationUrl', 'is empty and System.TeamFoundationCollectionUri is not set. Enter the organization URL, e.g. https://dev.azure.com/<org>/.');
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InputError('organizationUrl', `'${raw}' is not a URL. Enter the organization URL, e.g. https://dev.azure.com/<org>/.`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new InputError('organizationUrl', `must be an http(s) URL, got ${url.protocol}. Enter e.g. https://dev.azure.com/<org>/.`);
  }
  if (url.search || url.hash || url.username || url.password) {
    throw new InputError('organizationUrl', 'must not carry a query, fragment or user name. Enter just the organization URL, e.g. https://dev.azure.com/<org>/.');
  }
  if (url.hostname.toLowerCase() === 'dev.azure.com' && url.pathname.split('/').filter(Boolean).length !== 1) {
    throw new InputError('organizationUrl', `must be the organization, https://dev.azure.com/<org>/, not a project or repository URL ('${raw}').`);
  }
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return { url: url.toString(), name: organizationName(url) };
}

/** The input that names the Azure Resource Manager service connection (Microsoft's tasks use the same name). */
export const AZURE_CONNECTION_INPUT = 'azureSubscription';

interface AzureConnection {
  conn: ServiceConnection;
  /** One credential (its token cache shared by every user of it). */
  credential: TokenCredential;
  /** A new credential with an empty cache, for a renewal that must not get a cached token back. */
  newCredential(): TokenCredential;
}

const connections = new WeakMap<TaskHost, AzureConnection>();

/**
 * The AzureRM service connection (`azureSubscription`) and its @azure/identity credential, read once per host and
 * shared by the Azure DevOps and the Blob side. `why` names the setting that needs it, for the message when it is empty.
 */
export function readAzureConnection(host: TaskHost, why: string): AzureConnection {
  const known = connections.get(host);
  if (known) return known;
  const conn = readServiceConnection(host, AZURE_CONNECTION_INPUT, why);
  let oidc: ReturnType<typeof pipelineOidc> | undefined;
  if (conn.scheme === 'WorkloadIdentityFederation') {
    // The job token only asks for the connection's OIDC token here; it is masked like every other secret.
    const jobToken = host.endpointAuthParameter(SYSTEM_CONNECTION, 'AccessToken');
    if (jobToken) host.setSecret(jobToken);
    oidc = pipelineOidc(host, conn.id, jobToken);
  }
  const newCredential = () => connectionCredential(conn, host, oidc);
  const entry = { conn, credential: newCredential(), newCredential };
  connections.set(host, entry);
  return entry;
}

export function readCredentials(host: TaskHost): DevOpsCredentials {
  const type = readPickList(host, 'authType', ['systemToken', 'pat', 'serviceConnection'] as const, 'systemToken') as AuthType;
  if (type === 'serviceConnection') {
    const { conn, newCredential } = readAzureConnection(host, 'authType is serviceConnection');
    return DevOpsCredentials.fromServiceConnection(conn.id, new TokenKeeper(newCredential, DEVOPS_SCOPE, host));
  }
  if (type === 'pat') {
    const pat = host.secretInput('personalAccessToken');
    if (!pat) {
      throw new InputError('personalAccessToken', 'is empty while authType is pat. Create a PAT with scope Code (Read), store it as a secret variable and pass it here, or use authType: systemToken.');
    }
    return DevOpsCredentials.create('pat', pat, host);
  }
  const token = host.endpointAuthParameter(SYSTEM_CONNECTION, 'AccessToken');
  if (!token) {
    throw new InputError('authType', 'is systemToken but the job access token is not available to this task. Run it in an Azure Pipelines job (the agent provides the SystemVssConnection endpoint), or use authType: pat with a personalAccessToken.');
  }
  return DevOpsCredentials.create('systemToken', token, host);
}

export function readPickList<T extends string>(host: TaskHost, name: string, options: readonly T[], fallback: T): T {
  const raw = host.input(name);
  if (raw === undefined) return fallback;
  const match = options.find((o) => o.toLowerCase() === raw.toLowerCase());
  if (match === undefined) {
    throw new InputError(name, `'${raw}' is not one of ${options.map((o) => `'${o || '(empty)'}'`).join(', ')}.`);
  }
  return match;
}

export function readBoolean(host: TaskHost, name: string, fallback: boolean): boolean {
  const raw = host.input(name);
  if (raw === undefined) return fallback;
  if (/^(true|yes|1)$/i.test(raw)) return true;
  if (/^(false|no|0)$/i.test(raw)) return false;
  throw new InputError(name, `'${raw}' is not a boolean. Use true or false.`);
}

/** A whole number in [min, max]; above max it is capped with a warning. */
export function readInteger(host: TaskHost, name: string, fallback: number, min: number, max: number): number {
  const raw = host.input(name);
  if (raw === undefined) return fallback;
  if (!/^[+-]?\d+$/.test(raw)) throw new InputError(name, `'${raw}' is not a whole number. Use a number from ${min} to ${max}.`);
  const value = Number.parseInt(raw, 10);
  if (value < min) throw new InputError(name, `${value} is too small. Use a number from ${min} to ${max}.`);
  if (value > max) {
    host.warn(`Input '${name}': ${value} is more than ${max}; using ${max}.`);
    return max;
  }
  return value;
}

/**
 * A container SAS URL input: read without echo, registered as a secret (whole URL, query and signature),
 * then checked (`parseContainerSas`). `whenEmpty` says what to give instead.
 */
export function readContainerSasInput(
  host: TaskHost, name: string, needs: Parameters<typeof parseContainerSas>[2], whenEmpty: string, now: Date,
): ContainerSas {
  const raw = host.secretInput(name);
  if (!raw) throw new InputError(name, `is empty. ${whenEmpty}`);
  let parsed: URL | undefined;
  try { parsed = new URL(raw); } catch { /* parseContainerSas says what is wrong */ }
  if (parsed) registerSasSecrets(parsed, host);
  return parseContainerSas(raw, name, needs, host, now);
}

/** A container reached with an Entra token from the service connection (blobAuth: serviceConnection). */
export interface EntraContainer {
  /** `https://<account>.blob.<suffix>/<container>`: no query, safe to log. */
  containerUrl: URL;
  container: string;
  credential: TokenCredential;
  connection: string;
}

/** `blobAuth`: `sas` (default) or `serviceConnection`. */
export function readBlobAuth(host: TaskHost): 'sas' | 'serviceConnection' {
  return readPickList(host, 'blobAuth', ['sas', 'serviceConnection'] as const, 'sas');
}

const CONTAINER_NAME = /^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$/;

/**
 * `blobAuth: serviceConnection`: the container from `storageAccount` (account name, in the connection's cloud) or
 * `blobEndpoint` (full https endpoint: sovereign clouds, private endpoints) plus `containerName`, and the connection's
 * credential (its token is asked for Azure Storage by @azure/storage-blob).
 */
export function readEntraContainer(host: TaskHost): EntraContainer {
  const account = host.input('storageAccount');
  const endpoint = host.input('blobEndpoint');
  const container = host.input('containerName');
  if (account && endpoint) {
    throw new InputError('storageAccount', 'and blobEndpoint are both set. Give the account name (storageAccount) or, for a sovereign cloud or a private endpoint, the full blobEndpoint, not both.');
  }
  if (!account && !endpoint) {
    throw new InputError('storageAccount', 'is empty while blobAuth is serviceConnection. Enter the storage account name (e.g. contosobackups), or the full blobEndpoint (https://<account>.blob.core.windows.net/).');
  }
  if (!container) {
    throw new InputError('containerName', 'is empty while blobAuth is serviceConnection. Enter the name of the blob container (e.g. repo-backups).');
  }
  if (!CONTAINER_NAME.test(container)) {
    throw new InputError('containerName', `'${container}' is not a container name: 3 to 63 lower-case letters, digits and single hyphens, starting and ending with a letter or digit.`);
  }
  const { conn, credential } = readAzureConnection(host, 'blobAuth is serviceConnection');
  let base: URL;
  if (account) {
    if (!/^[a-z0-9]{3,24}$/.test(account)) {
      throw new InputError('storageAccount', `'${account}' is not a storage account name (3 to 24 lower-case letters and digits). For a full URL use blobEndpoint.`);
    }
    const suffix = blobSuffixFor(conn.environment);
    if (!suffix) {
      throw new InputError('storageAccount', `the service connection's cloud '${conn.environment}' has no known storage endpoint. Give the full blobEndpoint (https://<account>.blob.<suffix>/) instead.`);
    }
    base = new URL(`https://${account}.${suffix}/`);
  } else {
    try {
      base = new URL(endpoint!);
    } catch {
      throw new InputError('blobEndpoint', `'${endpoint}' is not a URL. Enter the account's blob endpoint, e.g. https://contosobackups.blob.core.windows.net/.`);
    }
    if (base.search || base.hash || base.username || base.password) {
      throw new InputError('blobEndpoint', 'must be the plain blob endpoint, without a query (no SAS), fragment or user name, e.g. https://contosobackups.blob.core.windows.net/.');
    }
    if (base.protocol !== 'https:') {
      throw new InputError('blobEndpoint', `must be https (an Entra token is never sent over ${base.protocol.replace(':', '')}). Enter e.g. https://contosobackups.blob.core.windows.net/.`);
    }
  }
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  const containerUrl = new URL(encodeURIComponent(container), base);
  return { containerUrl, container, credential, connection: conn.id };
}

/**
 * A folder input that must exist and be readable (`read`) or writable (`write`, proven by writing a probe file:
 * permission bits say little on file shares). `hints` say what to enter when it is empty or missing.
 */
export async function readFolderInput(
  host: TaskHost, name: string, access: 'read' | 'write', hints: { empty: string; missing: string },
): Promise<string> {
  const folder = host.input(name);
  if (!folder) throw new InputError(name, `is empty. ${hints.empty}`);
  const resolved = path.resolve(folder);
  try {
    const stat = await fsp.stat(resolved);
    if (!stat.isDirectory()) throw new InputError(name, `'${folder}' is not a folder.`);
    await fsp.access(resolved, access === 'write' ? fsc.W_OK : fsc.R_OK);
    if (access === 'write') {
      const probe = path.join(resolved, `.repobackup-write-test-${process.pid}`);
      await fsp.writeFile(probe, '');
      await fsp.rm(probe, { force: true });
    }
  } catch (err) {
    if (err instanceof InputError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(name, code === 'ENOENT'
      ? `'${folder}' does not exist. ${hints.missing}`
      : `'${folder}' is not ${access === 'write' ? 'writable' : 'readable'} by the agent (${code ?? 'error'}). Grant the agent's account ${access} access.`);
  }
  return resolved;
}

export function readTempDir(host: TaskHost): string {
  return host.variable('Agent.TempDirectory') ?? os.tmpdir();
}

/**
 * The retry policy for transient faults (REST, git, storage), from two optional pipeline variables:
 * `RepoBackup.RetryAttempts` (total attempts, 1–10, default 5) and `RepoBackup.RetryDelayMs` (base of the
 * exponential backoff, 10–60000 ms, default 1000). A server's Retry-After always wins over the backoff.
 * A value out of range is ignored with a warning: retries are a tuning knob, never a reason to fail.
 */
export function readRetryPolicy(host: Pick<TaskHost, 'variable' | 'warn'>): RetryPolicy {
  const read = (name: string, fallback: number, min: number, max: number): number => {
    const raw = host.variable(name);
    if (raw === undefined) return fallback;
    const value = /^\d+$/.test(raw) ? Number.parseInt(raw, 10) : NaN;
    if (!Number.isFinite(value) || value < min || value > max) {
      host.warn(`Variable ${name}: '${raw}' is not a whole number from ${min} to ${max}; using ${fallback}.`);
      return fallback;
    }
    return value;
  };
  return {
    ...defaultRetryPolicy,
    attempts: read('RepoBackup.RetryAttempts', defaultRetryPolicy.attempts, 1, 10),
    baseDelayMs: read('RepoBackup.RetryDelayMs', defaultRetryPolicy.baseDelayMs, 10, 60_000),
  };
}

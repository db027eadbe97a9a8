/** Readers for the inputs both tasks share. Every message names the input and says what to do. */
import { constants as fsc, promises as fsp } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AuthType, DevOpsCredentials, registerSasSecrets } from './credentials';
import { InputError } from './errors';
import { TaskHost } from './host';
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

export function readCredentials(host: TaskHost): DevOpsCredentials {
  const type = readPickList(host, 'authType', ['systemToken', 'pat'] as const, 'systemToken') as AuthType;
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

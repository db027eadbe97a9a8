/** Parsing and checking a container SAS URL before any work starts. */
import { InputError } from './errors';
import { Logger } from './host';

export interface ContainerSas {
  url: URL;
  /** The container URL without the query, safe to log. */
  containerUrl: string;
  container: string;
  permissions: string;
  expiresOn?: Date;
}

const EMULATOR_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

export function isEmulatorHost(url: URL): boolean {
  return EMULATOR_HOSTS.has(url.hostname);
}

/**
 * Checks a container SAS URL and returns its parts. `needs` lists permission letters of which at least one
 * (`anyOf`) or all (`allOf`) must be granted. Throws an InputError naming `input` with what to do.
 */
export function parseContainerSas(
  raw: string,
  input: string,
  needs: { anyOf?: string[]; allOf?: string[]; purpose: string },
  log: Logger,
  now = new Date(),
): ContainerSas {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InputError(input, 'is not a URL. Paste the container SAS URL: https://<account>.blob.core.windows.net/<container>?sv=…&sr=c&sp=…&sig=…');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isEmulatorHost(url))) {
    throw new InputError(input, `must use https (http is allowed only for the local storage emulator), got ${url.protocol}//${url.host}.`);
  }
  const q = url.searchParams;
  if (!q.get('sig')) {
    throw new InputError(input, 'has no SAS signature (sig=…). Generate a container SAS, e.g. `az storage container generate-sas --permissions cw --expiry <date> --https-only`, and paste the full URL with its query.');
  }
  if (q.get('ss') || q.get('srt')) {
    throw new InputError(input, 'is an account SAS. Use a container SAS (sr=c) for just the backup container, so a leak exposes nothing else.');
  }
  const sr = q.get('sr');
  if (sr !== 'c') {
    throw new InputError(input, `must be a container SAS (sr=c), got sr=${sr ?? '(none)'}${sr === 'b' ? ' (a blob SAS)' : ''}. Generate it for the container, not for a blob.`);
  }
  const segments = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  const containerIndex = isEmulatorHost(url) ? 1 : 0; // the emulator puts the account name first
  if (segments.length !== containerIndex + 1) {
    throw new InputError(input, segments.length > containerIndex + 1
      ? 'points at a blob, not a container. Use the container URL (https://<account>.blob.core.windows.net/<container>?<sas>).'
      : 'names no container. Use https://<account>.blob.core.windows.net/<container>?<sas>.');
  }
  const permissions = q.get('sp') ?? '';
  if (needs.anyOf && !needs.anyOf.some((p) => permissions.includes(p))) {
    throw new InputError(input, `grants sp=${permissions || '(none)'}; ${needs.purpose} needs ${needs.anyOf.join(' or ')} (create/write). Generate the SAS with --permissions ${needs.anyOf.join('')}.`);
  }
  if (needs.allOf && !needs.allOf.every((p) => permissions.includes(p))) {
    throw new InputError(input, `grants sp=${permissions || '(none)'}; ${needs.purpose} needs ${needs.allOf.join(' and ')}. Generate the SAS with --permissions ${needs.allOf.join('')}.`);
  }
  const se = q.get('se');
  let expiresOn: Date | undefined;
  if (se) {
    expiresOn = new Date(se);
    if (Number.isNaN(expiresOn.getTime())) throw new InputError(input, `has an unreadable expiry se=${se}.`);
    if (expiresOn <= now) {
      throw new InputError(input, `expired on ${expiresOn.toISOString()}. Generate a new SAS with a later --expiry and update the secret variable.`);
    }
    const hours = (expiresOn.getTime() - now.getTime()) / 3_600_000;
    if (hours < 6) log.warn(`Input '${input}': the SAS expires in ${hours.toFixed(1)} h (${expiresOn.toISOString()}); a long run may fail part way.`);
  }
  const st = q.get('st');
  if (st && new Date(st).getTime() > now.getTime() + 5 * 60_000) {
    throw new InputError(input, `is not valid before ${st} (st). Use a SAS whose start time has passed.`);
  }
  const containerUrl = `${url.origin}/${url.pathname.split('/').filter(Boolean).join('/')}`;
  return { url, containerUrl, container: segments[containerIndex], permissions, expiresOn };
}

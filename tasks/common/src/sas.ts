/** Parsing and checking a container SAS URL before any work starts. */
import { InputError } from './errors';
import { Logger } from './host';

export interface ContainerSas {
  url: URL;
  /** The container URL without the query, safe to log. */
  containerUrl: string;
  container: string;
  /** The `sp` letters; empty when the SAS is bound to a stored access policy that holds them (`policy`). */
  permissions: string;
  expiresOn?: Date;
  /** The stored access policy (`si=`) the SAS is bound to, if any. */
  policy?: string;
  /** True when the permissions live in the stored access policy (`si=` without `sp=`): they cannot be checked up front. */
  permissionsInPolicy: boolean;
}

/** What a task needs of a container SAS. */
export interface SasNeeds {
  /** Permission letters of which at least one must be granted. */
  anyOf?: string[];
  /** Permission letters that must all be granted. */
  allOf?: string[];
  /**
   * Every letter the task can use. Set it to have any other granted letter (delete, list, read…) warned about once,
   * as more than the task needs; leave it out to accept any extra right silently.
   */
  allowed?: string;
  /** What the SAS is for, in messages: `uploading backups`. */
  purpose: string;
}

/**
 * A backup stages blocks (Put Block) and commits them (Put Block List): both need write (`w`); create (`c`) alone is
 * refused with 403 on the first block. `c` is harmless beside `w`; anything else is more than a backup uses.
 */
export const BACKUP_SAS_NEEDS: SasNeeds = { allOf: ['w'], allowed: 'cw', purpose: 'uploading backups' };

/**
 * An incremental backup (input incremental) also lists the previous runs' manifests (`l`), reads them and the
 * previous archives (`r`: Get Blob Properties, and the source of a server-side copy) besides writing (`w`).
 */
export const INCREMENTAL_SAS_NEEDS: SasNeeds = {
  allOf: ['r', 'w', 'l'], allowed: 'rcwl',
  purpose: 'incremental: true (list and read the previous run, copy its archives, upload the rest)',
};

const PERMISSION_NAMES: Record<string, string> = {
  r: 'read', a: 'add', c: 'create', w: 'write', d: 'delete', x: 'delete versions', y: 'permanent delete', l: 'list',
  t: 'tags', f: 'find by tags', m: 'move', e: 'execute', o: 'ownership', p: 'permissions', i: 'set immutability policy',
};

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
  needs: SasNeeds,
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
  const policy = q.get('si') || undefined;
  const permissionsInPolicy = !!policy && !permissions;
  if (permissionsInPolicy) {
    // Bound to a stored access policy: the rights (and usually the expiry) live in the container's policy, which
    // only the account key can read. The first request proves them; say once where to look when it is refused.
    log.info(`Input '${input}': the SAS is bound to the stored access policy '${policy}' (si=${policy}); its permissions and expiry are set in that policy on the container, not in the URL, so they are checked by the storage service on the first request. ${needs.purpose} needs ${describeNeeds(needs)}.`);
  } else {
    if (!permissions) {
      throw new InputError(input, `grants no permissions (no sp=…, and no stored access policy si=…). Generate the SAS with --permissions ${suggested(needs)}, or bind it to a stored access policy of the container.`);
    }
    if (needs.anyOf && !needs.anyOf.some((p) => permissions.includes(p))) {
      throw new InputError(input, `grants sp=${permissions}; ${needs.purpose} needs ${letters(needs.anyOf, 'or')}. Generate the SAS with --permissions ${suggested(needs)}.`);
    }
    const missing = (needs.allOf ?? []).filter((p) => !permissions.includes(p));
    if (missing.length > 0) {
      const why = missing.includes('w') && permissions.includes('c')
        ? ' (create alone cannot stage the blocks an upload is made of: every Put Block would be refused with 403)'
        : '';
      throw new InputError(input, `grants sp=${permissions}; ${needs.purpose} needs ${letters(needs.allOf ?? [], 'and')}; ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing${why}. Generate the SAS with --permissions ${suggested(needs)}.`);
    }
    if (needs.allowed !== undefined) {
      const extra = [...new Set(permissions)].filter((p) => !needs.allowed!.includes(p) && !(needs.allOf ?? []).includes(p) && !(needs.anyOf ?? []).includes(p));
      if (extra.length > 0) {
        log.warn(`Input '${input}': the SAS grants ${letters(extra, 'and')}, more than ${needs.purpose} needs (${describeNeeds(needs)}); anyone who obtains it can use those rights too. Generate it with --permissions ${suggested(needs)}.`);
      }
    }
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
  return { url, containerUrl, container: segments[containerIndex], permissions, expiresOn, policy, permissionsInPolicy };
}

/** `r and l (read and list)`. */
function letters(list: string[], joiner: 'and' | 'or'): string {
  const join = (items: string[]) => (items.length <= 2 ? items.join(` ${joiner} `) : `${items.slice(0, -1).join(', ')} ${joiner} ${items.at(-1)}`);
  return `${join(list)} (${join(list.map((l) => PERMISSION_NAMES[l] ?? l))})`;
}

/** The letters to generate the SAS with: everything allowed (in `racwdxltmeop` order), else what is needed. */
function suggested(needs: SasNeeds): string {
  const letters = new Set([...(needs.allowed ?? ''), ...(needs.allOf ?? []), ...(needs.anyOf ?? [])]);
  return [...'racwdxyltfmeopi'].filter((l) => letters.has(l)).join('');
}

function describeNeeds(needs: SasNeeds): string {
  const parts: string[] = [];
  if (needs.allOf?.length) parts.push(letters(needs.allOf, 'and'));
  if (needs.anyOf?.length) parts.push(letters(needs.anyOf, 'or'));
  return parts.join(', plus ') || 'no particular right';
}

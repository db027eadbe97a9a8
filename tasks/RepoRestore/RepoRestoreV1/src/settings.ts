/** RepoRestore@1's inputs → one typed, validated settings object. Every validation message lives here. */
import { ArchiveFormat } from '../../../common/src/archive';
import { DevOpsCredentials, parseTrustedHosts, TokenScope } from '../../../common/src/credentials';
import { InputError } from '../../../common/src/errors';
import { AgeIdentity, KeyFormatError, parseIdentities } from '../../../common/src/encryption';
import { formatOfName, isEncryptedName } from '../../../common/src/extract';
import { TaskHost } from '../../../common/src/host';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { parseFilter, RepoFilter } from '../../../RepoBackup/RepoBackupV1/src/filter';
import { EntraContainer, Organization, readBlobAuth, readBoolean, readEntraContainer, readInteger, readContainerSasInput, readCredentials, readFolderInput, readOrganization, readPickList, readTempDir } from '../../../common/src/inputs';
import { ContainerSas } from '../../../common/src/sas';

export type SourceSettings =
  /** Exactly one of `sas` (blobAuth: sas) and `entra` (blobAuth: serviceConnection) is set. */
  | { kind: 'azureBlob'; sas?: ContainerSas; entra?: EntraContainer }
  | { kind: 'folder'; path: string };

export type Selection =
  /** An archive named by its path relative to the container / folder root. */
  | { kind: 'archive'; path: string; format: ArchiveFormat; encrypted?: boolean }
  /** A repository looked up in a manifest (the newest one below the root when `manifest` is absent). */
  | { kind: 'manifest'; manifest?: string; project: string; repository: string };

export type Mode = 'restore' | 'verify';

/** `mode: verify`: the restore drill. Same source inputs; archives picked by globs from a manifest (or the newest run). */
export interface VerifySettings {
  mode: 'verify';
  organization: Organization;
  credentials: DevOpsCredentials;
  source: SourceSettings;
  /** The manifest to read; absent = every manifest of the newest run (the folder of the newest manifest). */
  manifest?: string;
  filter: RepoFilter;
  /** Where the JSON report is written. */
  reportPath: string;
  /** Archives checked at once (each downloaded, extracted, checked and removed in its own slot). */
  concurrency: number;
  tempDir: string;
  taskVersion: string;
  /** age identities for encrypted archives (input decryptionIdentity); absent when the input is empty. */
  identities?: AgeIdentity[];
}

export function readMode(host: TaskHost): Mode {
  return readPickList(host, 'mode', ['restore', 'verify'] as const, 'restore');
}

export async function readVerifySettings(host: TaskHost, taskVersion: string, now = new Date()): Promise<VerifySettings> {
  const organization = readOrganization(host);
  const credentials = readCredentialsFor(host, 'Code (Read)').restrictTo(new TokenScope(organization.url, parseTrustedHosts(host.input('trustedHosts'))));
  if (host.input('archive')) {
    throw new InputError('archive', 'is for mode: restore. In mode: verify, pick the archives with repository (globs such as Team Alpha/*, one per line, ! to exclude) from manifest (or the newest backup run when manifest is empty).');
  }
  let filter: RepoFilter;
  try {
    filter = parseFilter(host.input('repository') ?? '*/*');
  } catch (err) {
    if (err instanceof InputError) throw new InputError('repository', err.message.replace(/^Input 'repositories': /, ''));
    throw err;
  }
  const manifestInput = host.input('manifest');
  let manifest: string | undefined;
  if (manifestInput) {
    manifest = relativePath('manifest', manifestInput);
    if (!/\.json$/i.test(manifest)) throw new InputError('manifest', `'${manifest}' is not a manifest (.json). Example: manifests/contoso/2026-12-02/1234.1/manifest.json.`);
  }
  const source = await readSource(host, { kind: 'manifest', manifest, project: '*', repository: '*' }, now);
  const concurrency = readInteger(host, 'concurrency', 2, 1, 16);
  const tempDir = readTempDir(host);
  const reportPath = path.resolve(host.input('reportPath') ?? path.join(tempDir, 'repobackup-verify.json'));
  const stat = await fsp.stat(reportPath).catch(() => undefined);
  if (stat?.isDirectory()) throw new InputError('reportPath', `'${reportPath}' is a folder. Give a file path, e.g. $(Agent.TempDirectory)/repobackup-verify.json.`);
  const identities = readDecryptionIdentity(host);
  return { mode: 'verify', organization, credentials, source, manifest, filter, reportPath, concurrency, tempDir, taskVersion, identities };
}

export interface RestoreSettings {
  mode?: 'restore';
  organization: Organization;
  credentials: DevOpsCredentials;
  source: SourceSettings;
  selection: Selection;
  target: { project: string; repository: string };
  /** Push into a target repository that already has refs (fast-forward only; nothing is overwritten). */
  allowNonEmpty: boolean;
  /** Restore an archive for which no SHA-256 is stored anywhere (a mismatch always fails). */
  allowMissingChecksum: boolean;
  tempDir: string;
  taskVersion: string;
  /** age identities for an encrypted archive (input decryptionIdentity); absent when the input is empty. */
  identities?: AgeIdentity[];
}

export async function readRestoreSettings(host: TaskHost, taskVersion: string, now = new Date()): Promise<RestoreSettings> {
  const organization = readOrganization(host);
  const credentials = readCredentialsFor(host, 'Code (Read, write & manage) (Code (Read & write) is enough when the target repository already exists)')
    .restrictTo(new TokenScope(organization.url, parseTrustedHosts(host.input('trustedHosts'))));
  const selection = readSelection(host);
  const source = await readSource(host, selection, now);
  const target = readTarget(host);
  const allowNonEmpty = readBoolean(host, 'allowNonEmpty', false);
  const allowMissingChecksum = readBoolean(host, 'allowMissingChecksum', false);
  const identities = readDecryptionIdentity(host);
  if (!identities && selection.kind === 'archive' && selection.encrypted) {
    throw new InputError('decryptionIdentity', `is empty, but '${selection.path}' is encrypted (age). Give the identity (AGE-SECRET-KEY-1…) whose public key the backup was encrypted to, from a secret variable: decryptionIdentity: $(BackupAgeIdentity).`);
  }
  return { mode: 'restore', organization, credentials, source, selection, target, allowNonEmpty, allowMissingChecksum, tempDir: readTempDir(host), taskVersion, identities };
}

/**
 * `decryptionIdentity`: age secret keys, read without echo and masked (every key line) before anything can print
 * them. Empty = undefined (an encrypted archive then fails before download, naming this input).
 */
export function readDecryptionIdentity(host: Pick<TaskHost, 'secretInput' | 'setSecret'>): AgeIdentity[] | undefined {
  const raw = host.secretInput('decryptionIdentity');
  if (!raw || !raw.trim()) return undefined;
  // secretInput registered the value (line by line) with the masker already; every key line is registered as is.
  for (const line of raw.split(/\r?\n/)) if (/^AGE-SECRET-KEY-/i.test(line.trim())) host.setSecret(line.trim());
  try {
    return parseIdentities(raw);
  } catch (err) {
    if (err instanceof KeyFormatError) throw new InputError('decryptionIdentity', err.message.replace(/^Input 'decryptionIdentity'(, |: )?/, ''));
    throw err;
  }
}

/** The shared reader, with the PAT scope this mode needs in its message. */
function readCredentialsFor(host: TaskHost, scope: string): DevOpsCredentials {
  try {
    return readCredentials(host);
  } catch (err) {
    if (err instanceof InputError && err.input === 'personalAccessToken') {
      throw new InputError('personalAccessToken', `is empty while authType is pat. Create a PAT with scope ${scope}, store it as a secret variable and pass it here, or use authType: systemToken or serviceConnection.`);
    }
    throw err;
  }
}

/** A `/`-separated path relative to the source root; no `.`/`..` segments, no URL. */
function relativePath(input: string, raw: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
    throw new InputError(input, 'is a URL. Give the path relative to the container or folder root, e.g. archives/contoso/2026-12-02/1234.1/Team Alpha/api.zip.');
  }
  const segments = raw.replace(/\\/g, '/').split('/').filter((s) => s !== '');
  if (segments.length === 0) throw new InputError(input, 'is empty.');
  if (segments.some((s) => s === '.' || s === '..')) throw new InputError(input, `'${raw}' must not contain '.' or '..' segments.`);
  return segments.join('/');
}

function readSelection(host: TaskHost): Selection {
  const archive = host.input('archive');
  const manifest = host.input('manifest');
  const repository = host.input('repository');
  if (archive) {
    if (manifest || repository) {
      throw new InputError('archive', 'is set together with manifest/repository. Name the archive (archive: <path>) or a repository in a manifest (repository: <project>/<repo>, optionally manifest: <path>), not both.');
    }
    const p = relativePath('archive', archive);
    const format = formatOfName(p);
    if (!format) throw new InputError('archive', `'${p}' is not a .zip or .tar.gz archive (or .zip.age / .tar.gz.age). Give the path of an archive RepoBackup wrote, e.g. archives/contoso/2026-12-02/1234.1/Team Alpha/api.zip.`);
    return { kind: 'archive', path: p, format, encrypted: isEncryptedName(p) };
  }
  if (!repository) {
    throw new InputError('repository', 'is empty and no archive is named. Give the repository to restore as <project>/<repository> (it is looked up in the manifest, the newest one when manifest is empty), or give archive: <path of the archive>.');
  }
  const slash = repository.indexOf('/');
  const project = slash > 0 ? repository.slice(0, slash).trim() : '';
  const repo = slash > 0 ? repository.slice(slash + 1).trim() : '';
  if (!project || !repo || repo.includes('/')) {
    throw new InputError('repository', `'${repository}' is not <project>/<repository>. Example: Team Alpha/api.`);
  }
  let manifestPath: string | undefined;
  if (manifest) {
    manifestPath = relativePath('manifest', manifest);
    if (!/\.json$/i.test(manifestPath)) throw new InputError('manifest', `'${manifestPath}' is not a manifest (.json). Example: manifests/contoso/2026-12-02/1234.1/manifest.json.`);
  }
  return { kind: 'manifest', manifest: manifestPath, project, repository: repo };
}

async function readSource(host: TaskHost, selection: Selection, now: Date): Promise<SourceSettings> {
  const kind = readPickList(host, 'source', ['azureBlob', 'folder'] as const, 'azureBlob');
  if (kind === 'azureBlob') {
    if (readBlobAuth(host) === 'serviceConnection') {
      if (host.input('sasUrl')) host.warn('Input \'sasUrl\' is ignored: blobAuth is serviceConnection (the container is read with the service connection\'s Entra token).');
      return { kind, entra: readEntraContainer(host) };
    }
    const needsList = selection.kind === 'manifest' && !selection.manifest;
    const sas = readContainerSasInput(host, 'sasUrl', needsList
      ? { allOf: ['r', 'l'], purpose: 'reading a backup and finding the newest manifest (manifest is empty)' }
      : { allOf: ['r'], purpose: 'reading a backup' },
    'Give a container SAS URL with read rights (sp=r; sp=rl to pick the newest manifest), stored as a secret variable, e.g. sasUrl: $(RestoreSasUrl); or set source: folder.', now);
    return { kind, sas };
  }
  const folder = await readFolderInput(host, 'folderPath', 'read', {
    empty: 'source is folder: enter the folder (or file share) the backup task wrote to.',
    missing: 'Enter the folder the backup task wrote to.',
  });
  return { kind, path: folder };
}

const RESERVED = /^(con|prn|aux|nul|com\d|lpt\d)$/i;
const FORBIDDEN = /[\\/:*?"<>|;#$*{},+=[\]]/;

/** Azure Repos' naming rules for a repository, so a bad name fails before anything is downloaded. */
export function repositoryNameProblem(name: string): string | undefined {
  if (name.length > 64) return `is ${name.length} characters long; Azure Repos allows at most 64.`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\ud800-\udfff]/.test(name)) return 'contains control characters.';
  const bad = FORBIDDEN.exec(name);
  if (bad) return `contains '${bad[0]}', which Azure Repos does not allow in a repository name (none of \\ / : * ? " < > | ; # $ { } , + = [ ]).`;
  if (name.startsWith('_')) return 'starts with an underscore, which Azure Repos does not allow.';
  if (name.startsWith('.') || name.endsWith('.')) return 'starts or ends with a period, which Azure Repos does not allow.';
  if (RESERVED.test(name)) return `is a reserved name (${name}).`;
  return undefined;
}

function readTarget(host: TaskHost): { project: string; repository: string } {
  const project = host.input('targetProject');
  if (!project) throw new InputError('targetProject', 'is empty. Enter the Azure DevOps project that receives the restored repository, e.g. Team Alpha.');
  const repository = host.input('targetRepository');
  if (!repository) throw new InputError('targetRepository', 'is empty. Enter the name of the repository to restore into; it is created when it does not exist, e.g. api-restored.');
  const problem = repositoryNameProblem(repository);
  if (problem) throw new InputError('targetRepository', `'${repository}' ${problem}`);
  return { project, repository };
}

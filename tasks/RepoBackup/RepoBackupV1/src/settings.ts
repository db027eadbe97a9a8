/** RepoBackup@1's inputs → one typed, validated settings object. Every validation message lives here. */
import { ArchiveFormat } from '../../../common/src/archive';
import { DevOpsCredentials, parseTrustedHosts, TokenScope } from '../../../common/src/credentials';
import { AgeRecipient, KeyFormatError, parseRecipients } from '../../../common/src/encryption';
import { InputError } from '../../../common/src/errors';
import { TaskHost } from '../../../common/src/host';
import {
  EntraContainer, Organization, readBlobAuth, readBoolean, readContainerSasInput, readEntraContainer, readCredentials, readFolderInput, readInteger, readOrganization, readPickList, readRetryPolicy, readTempDir,
} from '../../../common/src/inputs';
import { RetryPolicy } from '../../../common/src/retry';
import { BACKUP_SAS_NEEDS, ContainerSas, INCREMENTAL_SAS_NEEDS } from '../../../common/src/sas';
import { parseFilter, RepoFilter } from './filter';
import { pipelineStartOf } from './plan';
import { AUTO_LANES, Lanes } from './pace';

export type DestinationSettings =
  /** Exactly one of `sas` (blobAuth: sas) and `entra` (blobAuth: serviceConnection) is set. */
  | { kind: 'azureBlob'; sas?: ContainerSas; entra?: EntraContainer; accessTier?: string }
  | { kind: 'folder'; path: string };

export interface RunInfo {
  /** Build.BuildId, or a local stamp outside a pipeline. */
  id: string;
  attempt: number;
  /** When the run started (System.PipelineStartTime, the same for every job of the run; else this job's clock): dates its folder. */
  startedAt: Date;
  tempDir: string;
  taskVersion: string;
  buildNumber?: string;
  definition?: string;
  /** System.TeamProject: the pipeline's own project (the job token may be limited to it). */
  project?: string;
  /** System.HostType: `build` or `release`. */
  hostType?: string;
}

export interface BackupSettings {
  organization: Organization;
  credentials: DevOpsCredentials;
  destination: DestinationSettings;
  filter: RepoFilter;
  includeLfs: boolean;
  includeWikis: boolean;
  archiveFormat: ArchiveFormat;
  /** Repositories at once: `auto` (the default) adapts from 4 up to 16; a number is fixed. */
  concurrency: Lanes;
  onRepoFailure: 'fail' | 'warn';
  verify: boolean;
  dryRun: boolean;
  /** Copy the archives of unchanged repositories from the newest complete previous run at the destination (server-side). */
  incremental: boolean;
  /**
   * 1-based position of this job among `total` slices of a `parallel:` (multi-agent) job. `note` says why a
   * multi-job phase is not sliced (matrix legs each back up everything their inputs select).
   */
  shard: { position: number; total: number; note?: string };
  run: RunInfo;
  /** Attempts and backoff for transient faults (pipeline variables RepoBackup.RetryAttempts / RetryDelayMs). */
  retry: RetryPolicy;
  /** Archives are encrypted to these age recipients (input encryptionRecipients); absent = stored as they are. */
  encryption?: { format: 'age'; recipients: AgeRecipient[] };
}

export const MAX_CONCURRENCY = 64;

/** `concurrency`: empty or `auto` = adaptive (4 up to 16 lanes); a whole number 1–64 = that many, fixed. */
export function readConcurrency(host: TaskHost): Lanes {
  const raw = host.input('concurrency')?.trim();
  if (raw === undefined || raw === '' || /^auto$/i.test(raw)) return { auto: true, ...AUTO_LANES };
  if (!/^[+-]?\d+$/.test(raw)) throw new InputError('concurrency', `'${raw}' is not a whole number or 'auto'. Use auto (adapts from ${AUTO_LANES.start} up to ${AUTO_LANES.max}) or a number from 1 to ${MAX_CONCURRENCY}.`);
  const n = readInteger(host, 'concurrency', AUTO_LANES.start, 1, MAX_CONCURRENCY);
  return { auto: false, start: n, max: n };
}

export async function readBackupSettings(host: TaskHost, taskVersion: string, now = new Date()): Promise<BackupSettings> {
  const organization = readOrganization(host);
  // Before the credentials: a bad entry fails before anything is set up.
  const trustedHosts = parseTrustedHosts(host.input('trustedHosts'));
  const credentials = readCredentials(host).restrictTo(new TokenScope(organization.url, trustedHosts));
  const incremental = readBoolean(host, 'incremental', false);
  const destination = await readDestination(host, now, incremental);
  const filter = parseFilter(host.input('repositories'));
  const archiveFormat = readPickList(host, 'archiveFormat', ['zip', 'tar.gz'] as const, 'zip');
  const concurrency = readConcurrency(host);
  const onRepoFailure = readPickList(host, 'onRepoFailure', ['fail', 'warn'] as const, 'fail');
  const includeLfs = readBoolean(host, 'includeLfs', true);
  const includeWikis = readBoolean(host, 'includeWikis', true);
  const verify = readBoolean(host, 'verify', true);
  const dryRun = readBoolean(host, 'dryRun', false);
  const encryption = readEncryption(host);
  const shard = readShard(host);
  return {
    organization, credentials, destination, filter, includeLfs, includeWikis, archiveFormat, concurrency,
    onRepoFailure, verify, dryRun, incremental,
    shard,
    // One run, one date folder for all its jobs: dated by System.PipelineStartTime, not by this job's clock.
    run: readRun(host, taskVersion, now, pipelineStartOf(host, now, shard)),
    retry: readRetryPolicy(host),
    encryption,
  };
}

/**
 * `encryptionRecipients`: age public keys, one per line; empty = no encryption. Only public keys belong here, but a
 * pasted identity must not be echoed: the input is read without task-lib's debug echo, and a secret-looking line is
 * masked before it is refused.
 */
export function readEncryption(host: Pick<TaskHost, 'quietInput' | 'setSecret'>): BackupSettings['encryption'] {
  let recipients: AgeRecipient[];
  const text = host.quietInput('encryptionRecipients');
  for (const line of (text ?? '').split(/\r?\n/)) if (/^AGE-SECRET-KEY-/i.test(line.trim())) host.setSecret(line.trim());
  try {
    recipients = parseRecipients(text);
  } catch (err) {
    if (err instanceof KeyFormatError) throw new InputError('encryptionRecipients', err.message.replace(/^Input 'encryptionRecipients'(, |: )?/, ''));
    throw err;
  }
  return recipients.length ? { format: 'age', recipients } : undefined;
}

async function readDestination(host: TaskHost, now: Date, incremental: boolean): Promise<DestinationSettings> {
  const kind = readPickList(host, 'destination', ['azureBlob', 'folder'] as const, 'azureBlob');
  if (kind === 'azureBlob') {
    const accessTier = readPickList(host, 'accessTier', ['', 'Hot', 'Cool', 'Cold', 'Archive'] as const, '') || undefined;
    if (readBlobAuth(host) === 'serviceConnection') {
      if (host.input('sasUrl')) host.warn('Input \'sasUrl\' is ignored: blobAuth is serviceConnection (the container is reached with the service connection\'s Entra token).');
      return { kind, entra: readEntraContainer(host), accessTier };
    }
    let sas: ContainerSas;
    try {
      sas = readContainerSasInput(host, 'sasUrl', incremental ? INCREMENTAL_SAS_NEEDS : BACKUP_SAS_NEEDS,
        `Give a container SAS URL with ${incremental ? 'read, create, write and list (sp=rcwl, for incremental: true)' : 'create+write'} rights (store it as a secret variable, e.g. sasUrl: $(BackupSasUrl)), use blobAuth: serviceConnection with an Azure Resource Manager connection, or set destination: folder.`, now);
    } catch (err) {
      // Read and list are only for incremental runs: the other way out is to turn it off.
      if (incremental && err instanceof InputError && /\b(r|l) \(|are missing|is missing/.test(err.message) && /incremental/.test(err.message)) {
        throw new InputError('sasUrl', `${err.message.replace(/^Input 'sasUrl': /, '')} Or set incremental: false (then create + write, sp=cw, is enough).`);
      }
      throw err;
    }
    return { kind, sas, accessTier };
  }
  const folder = await readFolderInput(host, 'folderPath', 'write', {
    empty: 'destination is folder: enter an existing folder or file share path the agent can write to.',
    missing: 'Create it first (the task does not create the root of a share).',
  });
  return { kind, path: folder };
}

/**
 * Slices the organization only across the jobs of a `parallel: N` strategy (classic: "Multi-agent"), which the agent
 * reports as System.ParallelExecutionType `MultiMachine`. The legs of a `strategy: matrix` (`MultiConfiguration`)
 * differ by their variables (one organization or filter per leg, typically): slicing them would back up 1/N of each
 * and call it done. Anything else, or no type at all, is not sliced either: a job that backs up more than its share
 * costs time; one that backs up less leaves a gap.
 */
export function readShard(host: Pick<TaskHost, 'variable'>): { position: number; total: number; note?: string } {
  const total = Number.parseInt(host.variable('System.TotalJobsInPhase') ?? '1', 10);
  const position = Number.parseInt(host.variable('System.JobPositionInPhase') ?? '1', 10);
  if (!Number.isInteger(total) || total <= 1) return { position: 1, total: 1 };
  const type = host.variable('System.ParallelExecutionType');
  if (!Number.isInteger(position) || position < 1 || position > total) {
    return { position: 1, total: 1, note: `System.JobPositionInPhase '${host.variable('System.JobPositionInPhase') ?? ''}' is not a position among ${total} jobs: this job backs up everything its filter selects.` };
  }
  if (type?.toLowerCase() !== 'multimachine') {
    return {
      position: 1, total: 1,
      note: `This phase has ${total} jobs, but they are ${type?.toLowerCase() === 'multiconfiguration' ? 'matrix legs' : `not slices of a parallel: strategy (System.ParallelExecutionType is '${type ?? 'not set'}')`}: ` +
        `this job (${position} of ${total}) backs up everything its filter selects, not a share. Use 'parallel: N' to split one organization across jobs.`,
    };
  }
  return { position, total };
}

function readRun(host: TaskHost, taskVersion: string, now: Date, startedAt: Date): RunInfo {
  const buildId = host.variable('Build.BuildId');
  const attempt = Number.parseInt(host.variable('System.JobAttempt') ?? '1', 10);
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return {
    id: buildId && /^[\w.-]+$/.test(buildId) ? buildId : `local-${stamp}`,
    attempt: Number.isInteger(attempt) && attempt > 0 ? attempt : 1,
    startedAt,
    tempDir: readTempDir(host),
    taskVersion,
    buildNumber: host.variable('Build.BuildNumber'),
    definition: host.variable('Build.DefinitionName'),
    project: host.variable('System.TeamProject'),
    hostType: host.variable('System.HostType'),
  };
}

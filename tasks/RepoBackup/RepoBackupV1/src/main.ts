/** Composition root: wires the agent host, settings, REST client, git, destination and the orchestrator. */
import { promises as fsp } from 'fs';
import * as path from 'path';
import { DevOpsClient } from '../../../common/src/devops';
import { BlobDestination, defaultBlobTuning, Destination, FolderDestination } from '../../../common/src/destinations';
import { errorMessage, InputError, RunError } from '../../../common/src/errors';
import { redact, safeUrl, withGitConfig } from '../../../common/src/credentials';
import { Network } from '../../../common/src/network';
import { Git } from '../../../common/src/git';
import { BlobSource, FolderSource, Source } from '../../../common/src/sources';
import { TaskHost, TaskOutcome } from '../../../common/src/host';
import { runBackup } from './backup';
import { counts, summaryMarkdown } from './report';
import { BackupSettings, readBackupSettings } from './settings';
import taskJson from '../task.json';

export const TASK_VERSION = `${taskJson.version.Major}.${taskJson.version.Minor}.${taskJson.version.Patch}`;

export function destinationFor(settings: BackupSettings, network: Network = new Network()): { destination: Destination; description: string } {
  const d = settings.destination;
  if (d.kind === 'azureBlob') {
    const tuning = { ...defaultBlobTuning, maxTries: settings.retry.attempts, retryDelayMs: settings.retry.baseDelayMs };
    if (d.entra) {
      const description = `Azure Blob container ${safeUrl(d.entra.containerUrl)} (service connection '${d.entra.connection}')`;
      return { destination: new BlobDestination(d.entra, description, d.accessTier, tuning, network.azureClientOptions(d.entra.containerUrl)), description };
    }
    const description = `Azure Blob container ${safeUrl(d.sas!.containerUrl)}`;
    return { destination: new BlobDestination(d.sas!.url, description, d.accessTier, tuning, network.azureClientOptions(d.sas!.containerUrl)), description };
  }
  const destination = new FolderDestination(d.path);
  return { destination, description: destination.description };
}

/** Incremental runs read the destination back through the same settings: list the previous runs, read their manifests. */
export function previousRunsFor(settings: BackupSettings, network: Network = new Network()): Source {
  const d = settings.destination;
  if (d.kind === 'azureBlob') {
    if (d.entra) return new BlobSource(d.entra, `Azure Blob container ${safeUrl(d.entra.containerUrl)}`, settings.retry.attempts, network.azureClientOptions(d.entra.containerUrl));
    return new BlobSource(d.sas!.url, `Azure Blob container ${safeUrl(d.sas!.containerUrl)}`, settings.retry.attempts, network.azureClientOptions(d.sas!.containerUrl));
  }
  return new FolderSource(d.path);
}

export async function run(host: TaskHost, signal?: AbortSignal): Promise<TaskOutcome> {
  let settings: BackupSettings;
  let network: Network;
  try {
    network = Network.read(host);
    settings = await readBackupSettings(host, TASK_VERSION);
  } catch (err) {
    return fail(host, err);
  }
  const { destination, description } = destinationFor(settings, network);
  host.info(`RepoBackup ${TASK_VERSION}: ${settings.organization.url} → ${description}${settings.dryRun ? ' (dry run)' : ''}`);
  const networkLine = network.describe();
  if (networkLine) host.info(networkLine);
  try {
    await network.checkProxy(settings.organization.url);
    await network.checkTrust(settings.organization.url);
    if (settings.destination.kind === 'azureBlob') await network.checkTrust((settings.destination.entra?.containerUrl ?? settings.destination.sas!.containerUrl).toString());
    // A service connection's first Entra token for Azure DevOps, before anything else: a refusal names its fix.
    await settings.credentials.prepare();
    const outcome = await runBackup(settings, {
      log: host,
      progress: (p, t) => host.setProgress(p, t),
      devops: new DevOpsClient(settings.organization.url, settings.credentials, host, settings.retry, network.restOptions(), signal),
      git: new Git(host),
      destination: settings.dryRun ? undefined : destination,
      gitEnv: (remoteUrl) => withGitConfig(settings.credentials.gitEnv(remoteUrl), network.gitConfig(remoteUrl)),
      retry: settings.retry,
      signal,
      previousRuns: settings.incremental && !settings.dryRun ? previousRunsFor(settings, network) : undefined,
    });
    if (signal?.aborted) {
      host.setResult('Failed', 'Canceled: the backup was stopped before it finished; no manifest was written.');
      return 'Failed';
    }
    const summaryPath = path.join(settings.run.tempDir, `repobackup-summary-${settings.run.id}-${settings.shard.position}.md`);
    await fsp.writeFile(summaryPath, summaryMarkdown(settings, outcome.plan, outcome.report, description, outcome.manifest));
    host.uploadSummary(summaryPath);

    const c = counts(outcome.report.results);
    const tally = `${c.ok} backed up, ${c.failed} failed, ${c.skipped} skipped${settings.incremental && !settings.dryRun ? ` (${c.copied} copied from the previous run, ${c.ok - c.copied} made)` : ''}`;
    let result: TaskOutcome = 'Succeeded';
    let message = settings.dryRun ? `Dry run: ${outcome.plan.selected.length} repositories would be backed up, ${outcome.plan.skipped.length} skipped` : tally;
    const gaps = outcome.report.gaps;
    if (gaps.length > 0) {
      // Never Succeeded over a gap: what could be seen is stored, but this is not a backup of what was asked for.
      result = 'Failed';
      message = `${tally}; INCOMPLETE: ${gaps[0]}`;
    } else if (c.failed > 0) {
      result = settings.onRepoFailure === 'warn' ? 'SucceededWithIssues' : 'Failed';
      message = `${tally}: ${outcome.report.results.filter((r) => r.status === 'failed').map((r) => `${r.repo.project.name}/${r.repo.name}`).slice(0, 5).join(', ')}${c.failed > 5 ? ', …' : ''}`;
    } else if (outcome.report.warnings.length > 0) {
      result = 'SucceededWithIssues';
      message = `${message}; ${outcome.report.warnings.length} warning(s)`;
    }
    host.setResult(result, message);
    return result;
  } catch (err) {
    return fail(host, err);
  } finally {
    settings.credentials.dispose();
  }
}

function fail(host: TaskHost, err: unknown): TaskOutcome {
  const message = redact(errorMessage(err));
  if (!(err instanceof InputError) && !(err instanceof RunError)) host.debug(redact(String((err as Error)?.stack ?? err)));
  host.setResult('Failed', message);
  return 'Failed';
}

/** Composition root: wires the agent host, settings, REST client, git, the archive source and the orchestrator. */
import { promises as fsp } from 'fs';
import * as path from 'path';
import { redact, safeUrl, withGitConfig } from '../../../common/src/credentials';
import { Network } from '../../../common/src/network';
import { DevOpsClient } from '../../../common/src/devops';
import { errorMessage, InputError, RunError } from '../../../common/src/errors';
import { Git } from '../../../common/src/git';
import { TaskHost, TaskOutcome } from '../../../common/src/host';
import { BlobSource, FolderSource, Source } from '../../../common/src/sources';
import { blobLocation } from './fetch';
import { summaryMarkdown, verifySummaryMarkdown } from './report';
import { newReport, runRestore } from './restore';
import { readMode, readRestoreSettings, readVerifySettings, RestoreSettings, VerifySettings } from './settings';
import { newVerifyReport, runVerify, verifyJson, verifyOutcome } from './verify';
import taskJson from '../task.json';

export const TASK_VERSION = `${taskJson.version.Major}.${taskJson.version.Minor}.${taskJson.version.Patch}`;

export function sourceFor(settings: Pick<RestoreSettings, 'source'>, network: Network = new Network()): Source {
  const s = settings.source;
  if (s.kind === 'azureBlob' && s.entra) {
    return new BlobSource(s.entra, `Azure Blob container ${safeUrl(s.entra.containerUrl)} (service connection '${s.entra.connection}')`, undefined, network.azureClientOptions(s.entra.containerUrl));
  }
  if (s.kind === 'azureBlob') return new BlobSource(s.sas!.url, `Azure Blob container ${safeUrl(s.sas!.containerUrl)}`, undefined, network.azureClientOptions(s.sas!.containerUrl));
  return new FolderSource(s.path);
}

export async function run(host: TaskHost, signal?: AbortSignal): Promise<TaskOutcome> {
  let settings: RestoreSettings;
  let network: Network;
  try {
    network = Network.read(host);
    if (readMode(host) === 'verify') return await runDrill(host, await readVerifySettings(host, TASK_VERSION), network, signal);
    settings = await readRestoreSettings(host, TASK_VERSION);
  } catch (err) {
    return fail(host, err);
  }
  const networkLine = network.describe();
  if (networkLine) host.info(networkLine);
  const source = sourceFor(settings, network);
  const what = settings.selection.kind === 'archive'
    ? `'${settings.selection.path}'`
    : `${settings.selection.project}/${settings.selection.repository} (${settings.selection.manifest ? `manifest '${settings.selection.manifest}'` : 'newest manifest'})`;
  host.info(`RepoRestore ${TASK_VERSION}: ${what} from ${source.description} → ${settings.organization.url} ${settings.target.project}/${settings.target.repository}`);
  const report = newReport();
  report.requested = what;
  try {
    await network.checkProxy(settings.organization.url);
    await network.checkTrust(settings.organization.url);
    if (settings.source.kind === 'azureBlob') await network.checkTrust((settings.source.entra?.containerUrl ?? settings.source.sas!.containerUrl).toString());
    await settings.credentials.prepare();
    await runRestore(settings, stageDeps(host, settings, source, 'restore', network, signal), report);
  } catch (err) {
    report.error = signal?.aborted ? 'Canceled: the restore was stopped before it finished.' : redact(errorMessage(err));
    if (!(err instanceof InputError) && !(err instanceof RunError)) host.debug(redact(String((err as Error)?.stack ?? err)));
  } finally {
    settings.credentials.dispose();
  }
  report.finishedAt = new Date();
  try {
    const summaryPath = path.join(settings.tempDir, `reporestore-summary-${process.pid}-${Date.now()}.md`);
    await fsp.writeFile(summaryPath, summaryMarkdown(report, source.description));
    host.uploadSummary(summaryPath);
  } catch (err) {
    host.warn(`Could not attach the summary: ${errorMessage(err)}`);
  }
  const target = `${settings.target.project}/${settings.target.repository}`;
  if (report.error) {
    host.setResult('Failed', report.error);
    return 'Failed';
  }
  const restored = report.refs.pushed + report.refs.upToDate;
  const message = `Restored ${restored} refs and ${report.lfs.objects} LFS objects into ${target}` +
    (report.refs.skippedPull.length ? `; skipped ${report.refs.skippedPull.length} pull request ref(s)` : '') +
    (report.warnings.length ? `; ${report.warnings.length} warning(s)` : '');
  const outcome: TaskOutcome = report.warnings.length ? 'SucceededWithIssues' : 'Succeeded';
  host.setResult(outcome, message);
  return outcome;
}

/** What both modes' stages are wired with: the agent, the REST client, git, the source and the target's credentials. */
function stageDeps(host: TaskHost, settings: RestoreSettings | VerifySettings, source: Source, purpose: 'restore' | 'verify', network: Network, signal?: AbortSignal) {
  return {
    log: host,
    progress: (p: number, t: string) => host.setProgress(p, t),
    devops: new DevOpsClient(settings.organization.url, settings.credentials, host, undefined, network.restOptions(), signal, purpose),
    git: new Git(host),
    source,
    gitEnv: (remoteUrl: string) => withGitConfig(settings.credentials.gitEnv(remoteUrl), network.gitConfig(remoteUrl)),
    signal,
    blob: settings.source.kind === 'azureBlob' ? blobLocation((settings.source.entra?.containerUrl ?? settings.source.sas!.containerUrl).toString()) : undefined,
  };
}

/** mode: verify — the restore drill. Writes the JSON report and the summary whatever happens. */
async function runDrill(host: TaskHost, settings: VerifySettings, network: Network, signal?: AbortSignal): Promise<TaskOutcome> {
  const networkLine = network.describe();
  if (networkLine) host.info(networkLine);
  const source = sourceFor(settings, network);
  host.info(`RepoRestore ${TASK_VERSION} (mode: verify): archives of ${settings.manifest ? `manifest '${settings.manifest}'` : 'the newest backup run'} in ${source.description}, compared with ${settings.organization.url}; nothing is created or pushed`);
  const report = newVerifyReport(source.description, settings.organization.url);
  try {
    await network.checkProxy(settings.organization.url);
    await network.checkTrust(settings.organization.url);
    if (settings.source.kind === 'azureBlob') await network.checkTrust((settings.source.entra?.containerUrl ?? settings.source.sas!.containerUrl).toString());
    await settings.credentials.prepare();
    await runVerify(settings, {
      ...stageDeps(host, settings, source, 'verify', network, signal),
      exec: (tool, args, options) => host.exec(tool, args, options),
    }, report);
  } catch (err) {
    report.error = signal?.aborted ? 'Canceled: the restore drill was stopped before it finished.' : redact(errorMessage(err));
    if (!(err instanceof InputError) && !(err instanceof RunError)) host.debug(redact(String((err as Error)?.stack ?? err)));
  } finally {
    settings.credentials.dispose();
  }
  report.finishedAt = new Date();
  const result = verifyOutcome(report);
  try {
    await fsp.mkdir(path.dirname(settings.reportPath), { recursive: true });
    await fsp.writeFile(settings.reportPath, redact(verifyJson(report, TASK_VERSION)));
    host.info(`Report: ${settings.reportPath}`);
  } catch (err) {
    host.warn(`Could not write the report to ${settings.reportPath} (reportPath): ${errorMessage(err)}`);
  }
  try {
    const summaryPath = path.join(settings.tempDir, `reporestore-verify-summary-${process.pid}-${Date.now()}.md`);
    await fsp.writeFile(summaryPath, redact(verifySummaryMarkdown(report, result)));
    host.uploadSummary(summaryPath);
  } catch (err) {
    host.warn(`Could not attach the summary: ${errorMessage(err)}`);
  }
  host.setResult(result.outcome, result.message);
  return result.outcome;
}

function fail(host: TaskHost, err: unknown): TaskOutcome {
  const message = redact(errorMessage(err));
  if (!(err instanceof InputError) && !(err instanceof RunError)) host.debug(redact(String((err as Error)?.stack ?? err)));
  host.setResult('Failed', message);
  return 'Failed';
}

/** Composition root: wires the agent host, settings, REST client, git, the archive source and the orchestrator. */
import { promises as fsp } from 'fs';
import * as path from 'path';
import { redact, safeUrl } from '../../../common/src/credentials';
import { DevOpsClient } from '../../../common/src/devops';
import { errorMessage, InputError, RunError } from '../../../common/src/errors';
import { Git } from '../../../common/src/git';
import { TaskHost, TaskOutcome } from '../../../common/src/host';
import { BlobSource, FolderSource, Source } from '../../../common/src/sources';
import { summaryMarkdown } from './report';
import { newReport, runRestore } from './restore';
import { readRestoreSettings, RestoreSettings } from './settings';
import taskJson from '../task.json';

export const TASK_VERSION = `${taskJson.version.Major}.${taskJson.version.Minor}.${taskJson.version.Patch}`;

export function sourceFor(settings: RestoreSettings): Source {
  const s = settings.source;
  if (s.kind === 'azureBlob') return new BlobSource(s.sas.url, `Azure Blob container ${safeUrl(s.sas.containerUrl)}`);
  return new FolderSource(s.path);
}

export async function run(host: TaskHost, signal?: AbortSignal): Promise<TaskOutcome> {
  let settings: RestoreSettings;
  try {
    settings = await readRestoreSettings(host, TASK_VERSION);
  } catch (err) {
    return fail(host, err);
  }
  const source = sourceFor(settings);
  const what = settings.selection.kind === 'archive'
    ? `'${settings.selection.path}'`
    : `${settings.selection.project}/${settings.selection.repository} (${settings.selection.manifest ? `manifest '${settings.selection.manifest}'` : 'newest manifest'})`;
  host.info(`RepoRestore ${TASK_VERSION}: ${what} from ${source.description} → ${settings.organization.url} ${settings.target.project}/${settings.target.repository}`);
  const report = newReport();
  report.requested = what;
  try {
    await runRestore(settings, {
      log: host,
      progress: (p, t) => host.setProgress(p, t),
      devops: new DevOpsClient(settings.organization.url, settings.credentials, host),
      git: new Git(host),
      source,
      gitEnv: (remoteUrl) => settings.credentials.gitEnv(remoteUrl),
      signal,
    }, report);
  } catch (err) {
    report.error = signal?.aborted ? 'Canceled: the restore was stopped before it finished.' : redact(errorMessage(err));
    if (!(err instanceof InputError) && !(err instanceof RunError)) host.debug(redact(String((err as Error)?.stack ?? err)));
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

function fail(host: TaskHost, err: unknown): TaskOutcome {
  const message = redact(errorMessage(err));
  if (!(err instanceof InputError) && !(err instanceof RunError)) host.debug(redact(String((err as Error)?.stack ?? err)));
  host.setResult('Failed', message);
  return 'Failed';
}

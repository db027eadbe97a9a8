// `npm run demo`: the backup task, run as the Azure Pipelines agent runs it, against the local Azure DevOps
// stand-in (sample repositories: branches, tags, notes, a pull request ref, LFS, a wiki, an empty and a disabled
// repository, non-ASCII names) and Azurite. Prints the task's log, its summary and what landed in the container.
import * as fs from 'fs';
import * as path from 'path';
import { startAzurite } from './azurite';
import { buildStandardCorpus } from './corpus';
import { DevOpsStandIn } from './devops-standin';
import { runTask } from './run-task';
import { cleanupAll, tmpDir } from './util';

const ENTRY = path.resolve(__dirname, '../../../tasks/RepoBackup/RepoBackupV1/dist/index.js');

async function main() {
  const token = `demo-job-token-${process.pid}`;
  console.log('Starting the Azure DevOps stand-in and Azurite…');
  const standin = await DevOpsStandIn.start({ org: 'contoso', root: tmpDir('demo-standin'), tokens: { bearer: [token] } });
  const azurite = await startAzurite();
  try {
    const corpus = await buildStandardCorpus(standin);
    console.log(`Organization ${standin.orgUrl}: ${corpus.all.map((r) => `${r.project}/${r.name}${r.disabled ? ' (disabled)' : r.hidden ? ' (wiki)' : r.empty ? ' (empty)' : ''}`).join(', ')}`);
    const container = await azurite.createContainer('backups');
    const sasUrl = azurite.containerSasUrl('backups', 'cw');

    console.log(`\n$ node ${path.relative(process.cwd(), ENTRY)}   # inputs: sasUrl=<container SAS, sp=cw>; everything else default\n`);
    // As the agent sets it: the run's start as local time with its offset (the run folder is dated by it).
    const pipelineStart = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, '+00:00');
    const run = await runTask(ENTRY, {
      inputs: { sasUrl }, orgUrl: standin.orgUrl, token, tempDir: tmpDir('demo-run'), variables: { 'System.PipelineStartTime': pipelineStart },
    });
    for (const line of run.lines) {
      if (line.startsWith('##vso[task.debug]') || line.startsWith('##vso[task.setsecret]')) continue; // the agent hides these
      console.log(`  ${line}`);
    }
    const summary = run.commands.find((c) => c.command === 'task.uploadsummary');
    if (summary && fs.existsSync(summary.message)) {
      console.log('\nSummary attached to the run:\n');
      console.log(fs.readFileSync(summary.message, 'utf8').replace(/^/gm, '  '));
    }
    console.log('Blobs in the container (read back with the account key):\n');
    for await (const blob of container.listBlobsFlat({ includeMetadata: true })) {
      const sha = blob.metadata?.sha256 ? `  sha256=${blob.metadata.sha256.slice(0, 16)}…` : '';
      console.log(`  ${String(blob.properties.contentLength).padStart(9)} B  ${blob.name}${sha}`);
    }
    console.log(`\nTask result: ${run.result?.result} — ${run.result?.message} (${(run.durationMs / 1000).toFixed(1)} s)`);
    process.exitCode = run.result?.result === 'Succeeded' ? 0 : 1;
  } finally {
    await standin.stop();
    await azurite.stop();
    await cleanupAll();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

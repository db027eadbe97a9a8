// `npm run demo`: the backup task, run as the Azure Pipelines agent runs it, against the local Azure DevOps
// stand-in (sample repositories: branches, tags, notes, a pull request ref, LFS, a wiki, an empty and a disabled
// repository, non-ASCII names) and Azurite. Prints the task's log, its summary and what landed in the container.
//
// `npm run demo -- --service-connection`: the secretless path. No SAS and no PAT: the task authenticates through an
// Azure Resource Manager service connection with workload identity federation (the stand-in's OIDC token API, a local
// Entra ID over HTTPS) to Azure DevOps (Bearer) and to Azurite in OAuth mode over HTTPS.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { AzuriteHandle, startAzurite } from './azurite';
import { EntraStandIn, makeTestPki, OidcIssuer } from './entra-standin';
import { buildStandardCorpus } from './corpus';
import { DevOpsStandIn } from './devops-standin';
import { runTask } from './run-task';
import { cleanupAll, tmpDir } from './util';

const ENTRY = path.resolve(__dirname, '../../../tasks/RepoBackup/RepoBackupV1/dist/index.js');

/** The service connection variant: a local Entra ID, the OIDC token API, Azurite over HTTPS in OAuth mode. */
async function secretless(standin: DevOpsStandIn): Promise<{ azurite: AzuriteHandle; entra: EntraStandIn; inputs: Record<string, string>; env: Record<string, string>; variables: Record<string, string> }> {
  const pki = makeTestPki(tmpDir('demo-pki'));
  const oidc = new OidcIssuer();
  const entra = await EntraStandIn.start(pki, oidc);
  const clientId = crypto.randomUUID();
  const id = crypto.randomUUID();
  const subject = 'sc://contoso/Team Alpha/repo-backup-wif';
  entra.register({ clientId, federated: { issuer: oidc.issuer, subject } });
  standin.oidc = { issue: (sub) => oidc.issue(sub), connections: new Map([[id, subject]]) };
  standin.acceptEntraToken = (t) => entra.accepts(t, '499b84ac-1321-427f-aa17-267ca6975798');
  const azurite = await startAzurite({ tls: { cert: pki.cert, key: pki.key, ca: pki.caCert }, oauth: true });
  const params = { tenantid: entra.tenantId, serviceprincipalid: clientId };
  const env: Record<string, string> = {
    NODE_EXTRA_CA_CERTS: pki.caCert, // the agent's custom CA (Agent.CAInfo) as the task sees it
    [`ENDPOINT_URL_${id}`]: 'https://management.azure.com/',
    [`ENDPOINT_AUTH_${id}`]: JSON.stringify({ parameters: params, scheme: 'WorkloadIdentityFederation' }),
    [`ENDPOINT_AUTH_SCHEME_${id}`]: 'WorkloadIdentityFederation',
    [`ENDPOINT_AUTH_PARAMETER_${id}_TENANTID`]: params.tenantid,
    [`ENDPOINT_AUTH_PARAMETER_${id}_SERVICEPRINCIPALID`]: params.serviceprincipalid,
    [`ENDPOINT_DATA_${id}_ENVIRONMENTAUTHORITYURL`]: entra.authorityHost,
  };
  const inputs = { authType: 'serviceConnection', azureSubscription: id, blobAuth: 'serviceConnection', blobEndpoint: azurite.tlsBlobUrl!, containerName: 'backups' };
  const variables = { 'System.OidcRequestUri': `${standin.orgUrl}00000000-0000-0000-0000-00000000a1fa/_apis/distributedtask/hubs/build/plans/${crypto.randomUUID()}/jobs/${crypto.randomUUID()}/oidctoken` };
  return { azurite, entra, inputs, env, variables };
}

async function main() {
  const token = `demo-job-token-${process.pid}`;
  const viaConnection = process.argv.includes('--service-connection');
  console.log(`Starting the Azure DevOps stand-in and Azurite${viaConnection ? ' (HTTPS, OAuth) and a local Entra ID' : ''}…`);
  const standin = await DevOpsStandIn.start({ org: 'contoso', root: tmpDir('demo-standin'), tokens: { bearer: [token] } });
  const sc = viaConnection ? await secretless(standin) : undefined;
  const azurite = sc?.azurite ?? await startAzurite();
  try {
    const corpus = await buildStandardCorpus(standin);
    console.log(`Organization ${standin.orgUrl}: ${corpus.all.map((r) => `${r.project}/${r.name}${r.disabled ? ' (disabled)' : r.hidden ? ' (wiki)' : r.empty ? ' (empty)' : ''}`).join(', ')}`);
    const container = await azurite.createContainer('backups');
    let inputs: Record<string, string> = { sasUrl: azurite.containerSasUrl('backups', 'cw') };
    if (sc) {
      inputs = sc.inputs;
      standin.jobTokenOnlyForOidc = true; // the job token only asks for the OIDC token; Azure DevOps sees Entra tokens
      console.log(`\n$ node ${path.relative(process.cwd(), ENTRY)}   # inputs: authType=serviceConnection, blobAuth=serviceConnection, azureSubscription=<WIF connection>, blobEndpoint, containerName; no SAS, no PAT\n`);
    } else {
      console.log(`\n$ node ${path.relative(process.cwd(), ENTRY)}   # inputs: sasUrl=<container SAS, sp=cw>; everything else default\n`);
    }
    // As the agent sets it: the run's start as local time with its offset (the run folder is dated by it).
    const pipelineStart = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, '+00:00');
    const run = await runTask(ENTRY, {
      inputs, orgUrl: standin.orgUrl, token, tempDir: tmpDir('demo-run'), env: sc?.env,
      variables: { 'System.PipelineStartTime': pipelineStart, ...sc?.variables },
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
    if (sc) {
      const schemes = [...new Set(standin.requests.filter((q) => !q.url.includes('/oidctoken')).map((q) => q.authScheme ?? 'none'))].join(', ');
      console.log(`\nEntra ID issued ${sc.entra.issued.length} tokens (${[...new Set(sc.entra.requests.map((q) => q.scope))].join(', ')}), all exchanged for OIDC client assertions; ` +
        `Azure DevOps saw ${schemes} only; storage requests with a SAS: ${azurite.requestUrls().filter((u) => /[?&]sig=/.test(u)).length}.`);
    }
    console.log(`\nTask result: ${run.result?.result} — ${run.result?.message} (${(run.durationMs / 1000).toFixed(1)} s)`);
    process.exitCode = run.result?.result === 'Succeeded' ? 0 : 1;
  } finally {
    await standin.stop();
    await azurite.stop();
    await sc?.entra.stop();
    await cleanupAll();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

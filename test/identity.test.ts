// Secretless runs through an Azure Resource Manager service connection, on real parts: RepoBackup@1 and RepoRestore@1 run
// as the agent runs them, with workload identity federation: the task asks the Azure DevOps stand-in's OIDC API for
// a token for the connection (with the job token, which the stand-in refuses everywhere else), exchanges it with the
// Entra stand-in (HTTPS, OpenID discovery, signed JWTs) through @azure/identity, and uses the Entra tokens as Bearer
// for REST, git and LFS and, through @azure/storage-blob, against Azurite in OAuth mode over HTTPS. No SAS and no PAT
// exist anywhere. The task trusts the test CA as an agent with a custom CA does (NODE_EXTRA_CA_CERTS).
import * as assert from 'assert';
import * as crypto from 'crypto';
import * as path from 'path';
import { AzuriteHandle, startAzurite } from './harness/azurite';
import { allFileBytes, assertArchiveMatches, assertNoSecretInBytes, assertNoSecretInOutput, assertNoSecretInUrls, manifests, readContainer } from './harness/checks';
import { buildStandardCorpus, StandardCorpus } from './harness/corpus';
import { DevOpsStandIn } from './harness/devops-standin';
import { EntraStandIn, makeTestPki, OidcIssuer, TestPki } from './harness/entra-standin';
import { runTask, TaskRun } from './harness/run-task';
import { cleanupAll, refMap, tmpDir } from './harness/util';
import { DEVOPS_RESOURCE, DEVOPS_SCOPE, STORAGE_SCOPE } from '../tasks/common/src/identity';

const ROOT = path.resolve(__dirname, '..', '..');
const BACKUP = path.join(ROOT, 'tasks/RepoBackup/RepoBackupV1/dist/index.js');
const RESTORE = path.join(ROOT, 'tasks/RepoRestore/RepoRestoreV1/dist/index.js');
const JOB_TOKEN = `canaryjob${crypto.randomBytes(16).toString('hex')}`;
const SP_SECRET = `canarysecret${crypto.randomBytes(16).toString('hex')}`;
const CONNECTION = crypto.randomUUID();
const SUBJECT = 'sc://contoso/Team Alpha/backup-wif';
const PROJECT_ID = '00000000-0000-0000-0000-00000000a1fa';

describe('Service connection (workload identity federation): no SAS, no PAT', function () {
  this.timeout(180_000);
  let pki: TestPki;
  let oidc: OidcIssuer;
  let entra: EntraStandIn;
  let standin: DevOpsStandIn;
  let azurite: AzuriteHandle;
  let corpus: StandardCorpus;
  const clientId = crypto.randomUUID();
  const runs: TaskRun[] = [];

  /** The agent's view of an AzureRM connection: ENDPOINT_AUTH_* / ENDPOINT_DATA_* for `id`. */
  function endpointEnv(id: string, scheme: string, params: Record<string, string>): Record<string, string> {
    const env: Record<string, string> = {
      [`ENDPOINT_URL_${id}`]: 'https://management.azure.com/',
      [`ENDPOINT_AUTH_${id}`]: JSON.stringify({ parameters: params, scheme }),
      [`ENDPOINT_AUTH_SCHEME_${id}`]: scheme,
      [`ENDPOINT_DATA_${id}_ENVIRONMENTAUTHORITYURL`]: entra.authorityHost,
      [`ENDPOINT_DATA_${id}_ENVIRONMENT`]: 'AzureCloud',
    };
    for (const [k, v] of Object.entries(params)) env[`ENDPOINT_AUTH_PARAMETER_${id}_${k.toUpperCase()}`] = v;
    return env;
  }

  const wifParams = () => ({ tenantid: entra.tenantId, serviceprincipalid: clientId, workloadIdentityFederationIssuer: oidc.issuer, workloadIdentityFederationSubject: SUBJECT });

  async function task(entry: string, inputs: Record<string, string>, opts: { env?: Record<string, string>; variables?: Record<string, string> } = {}): Promise<TaskRun> {
    const run = await runTask(entry, {
      inputs: { organizationUrl: standin.orgUrl, azureSubscription: CONNECTION, ...inputs },
      orgUrl: standin.orgUrl, token: JOB_TOKEN, tempDir: tmpDir('run'),
      variables: {
        'System.OidcRequestUri': `${standin.orgUrl}${PROJECT_ID}/_apis/distributedtask/hubs/build/plans/${crypto.randomUUID()}/jobs/${crypto.randomUUID()}/oidctoken`,
        ...opts.variables,
      },
      env: { NODE_PATH: '', NODE_OPTIONS: '', NODE_EXTRA_CA_CERTS: pki.caCert, ...endpointEnv(CONNECTION, 'WorkloadIdentityFederation', wifParams()), ...opts.env },
      timeoutMs: 150_000,
    });
    runs.push(run);
    return run;
  }
  const explain = (run: TaskRun) =>
    `result ${JSON.stringify(run.result)}, exit ${run.code}\n--- stdout\n${run.stdout.slice(-5000)}\n--- stderr\n${run.stderr.slice(-2000)}`;
  const blobInputs = () => ({ destination: 'azureBlob', blobAuth: 'serviceConnection', blobEndpoint: azurite.tlsBlobUrl!, containerName: 'backups' });
  /** Every secret of this suite: the job token, the SP secret, every OIDC token and every Entra token issued. */
  const secrets = () => [JOB_TOKEN, SP_SECRET, ...oidc.issued, ...entra.issued];

  before(async function () {
    pki = makeTestPki(tmpDir('pki'));
    oidc = new OidcIssuer();
    entra = await EntraStandIn.start(pki, oidc);
    entra.register({ clientId, federated: { issuer: oidc.issuer, subject: SUBJECT } });
    [standin, azurite] = await Promise.all([
      DevOpsStandIn.start({ org: 'contoso', root: tmpDir('standin'), tokens: { bearer: [JOB_TOKEN], pat: [] } }),
      startAzurite({ tls: { cert: pki.cert, key: pki.key, ca: pki.caCert }, oauth: true }),
    ]);
    standin.oidc = { issue: (sub) => oidc.issue(sub), connections: new Map([[CONNECTION, SUBJECT]]) };
    standin.acceptEntraToken = (t) => entra.accepts(t, DEVOPS_RESOURCE);
    corpus = await buildStandardCorpus(standin);
    standin.jobTokenOnlyForOidc = true;
    await azurite.createContainer('backups');
  });

  after(async () => {
    await Promise.all([standin?.stop(), azurite?.stop(), entra?.stop()]);
    await cleanupAll();
  });

  it('backs up every repository to Blob and restores one, with Entra tokens only; no token in any output, URL, archive or manifest', async () => {
    const backup = await task(BACKUP, { ...blobInputs(), authType: 'serviceConnection' }, { variables: { 'Build.BuildId': '2001' } });
    assert.strictEqual(backup.result?.result, 'Succeeded', explain(backup));
    const files = await readContainer(azurite.serviceClient().getContainerClient('backups'));
    const [manifest] = manifests(files);
    assert.ok(manifest, 'a manifest was stored');
    let checked = 0;
    for (const r of corpus.all.filter((x) => !x.disabled)) {
      const entry = manifest.repositories.find((e) => e.project === r.project && e.repository === r.name);
      assert.ok(entry?.archive && entry.status === 'ok', `${r.project}/${r.name} backed up`);
      await assertArchiveMatches(files.get(entry.archive)!.bytes, entry.archive, r);
      checked++;
    }
    // Who talked to whom: Entra saw client assertions for both resources; Azure DevOps saw only Bearer (Entra) on
    // REST/git/LFS, the job token being refused there; Azurite saw no SAS.
    const scopes = new Set(entra.requests.filter((q) => q.status === 200).map((q) => `${q.grant} ${q.scope}`));
    assert.ok(scopes.has(`assertion ${DEVOPS_SCOPE}`) && scopes.has(`assertion ${STORAGE_SCOPE}`), `Entra token requests: ${[...scopes].join(', ')}`);
    assert.ok(oidc.issued.length >= 1, 'the OIDC token API was used');
    const devopsRequests = standin.requests.filter((q) => !q.url.includes('/oidctoken'));
    assert.deepStrictEqual([...new Set(devopsRequests.filter((q) => q.status !== 401).map((q) => q.authScheme))], ['Bearer']);
    assert.ok(devopsRequests.some((q) => q.route === 'git') && devopsRequests.some((q) => q.route === 'lfs'), 'git and LFS went through with the Entra token');
    assert.ok(!azurite.requestUrls().some((u) => /[?&]sig=/.test(u)), 'no SAS reached the storage');

    const restore = await task(RESTORE, { ...blobInputs(), source: 'azureBlob', authType: 'serviceConnection', repository: 'Team Alpha/assets', targetProject: 'Team Alpha', targetRepository: 'assets-restored' });
    assert.strictEqual(restore.result?.result, 'Succeeded', explain(restore));
    const restored = standin.findRepo('Team Alpha', 'assets-restored');
    assert.ok(restored, 'the target repository was created');
    assert.deepStrictEqual(await refMap(restored.gitDir), Object.fromEntries(Object.entries(corpus.repos.assets.refs).filter(([n]) => !n.startsWith('refs/pull/'))));

    // Every token was registered with the masker before use, and none is anywhere it must not be.
    const masked = new Set(runs.flatMap((r) => r.lines.filter((l) => l.startsWith('##vso[task.setsecret]')).map((l) => l.slice('##vso[task.setsecret]'.length))));
    for (const t of [...oidc.issued, ...entra.issued]) assert.ok(masked.has(t), 'every OIDC and Entra token is masked (setSecret)');
    for (const run of runs) assertNoSecretInOutput(run, secrets());
    assertNoSecretInBytes('an archive or manifest', [...files.values()].map((f) => f.bytes), secrets());
    assertNoSecretInBytes('the restored repository', allFileBytes(restored.gitDir), secrets());
    assertNoSecretInUrls('Azurite', azurite.requestUrls(), secrets());
    assertNoSecretInUrls('Azure DevOps', standin.requests.map((q) => q.url), secrets());
    console.log(`      WIF: ${checked} archives verified, ${entra.requests.length} Entra token requests, ${oidc.issued.length} OIDC tokens, ${entra.issued.length} access tokens, all masked; backup ${backup.durationMs} ms, restore ${restore.durationMs} ms`);
  });
});

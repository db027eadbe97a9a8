// Secretless runs through an Azure Resource Manager service connection, on real parts: RepoBackup@1 and RepoRestore@1 run
// as the agent runs them, with workload identity federation: the task asks the Azure DevOps stand-in's OIDC API for
// a token for the connection (with the job token, which the stand-in refuses everywhere else), exchanges it with the
// Entra stand-in (HTTPS, OpenID discovery, signed JWTs) through @azure/identity, and uses the Entra tokens as Bearer
// for REST, git and LFS and, through @azure/storage-blob, against Azurite in OAuth mode over HTTPS. No SAS and no PAT
// exist anywhere. The task trusts the test CA as an agent with a custom CA does (NODE_EXTRA_CA_CERTS).
import * as assert from 'assert';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as https from 'https';
import * as net from 'net';
import * as path from 'path';
import { AzuriteHandle, startAzurite } from './harness/azurite';
import { allFileBytes, assertArchiveMatches, assertNoSecretInBytes, assertNoSecretInOutput, assertNoSecretInUrls, manifests, readContainer } from './harness/checks';
import { buildStandardCorpus, StandardCorpus } from './harness/corpus';
import { DevOpsStandIn } from './harness/devops-standin';
import { EntraStandIn, makeTestPki, OidcIssuer, TestPki } from './harness/entra-standin';
import { allCmdlines } from './harness/procs';
import { runTask, TaskRun } from './harness/run-task';
import { startTinyproxy } from './harness/tinyproxy';
import { cleanupAll, delay, refMap, tmpDir } from './harness/util';
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

  async function task(entry: string, inputs: Record<string, string>, opts: { env?: Record<string, string>; variables?: Record<string, string>; secrets?: Record<string, string> } = {}): Promise<TaskRun> {
    const run = await runTask(entry, {
      inputs: { organizationUrl: standin.orgUrl, azureSubscription: CONNECTION, ...inputs },
      orgUrl: standin.orgUrl, token: JOB_TOKEN, tempDir: tmpDir('run'),
      variables: {
        'System.OidcRequestUri': `${standin.orgUrl}${PROJECT_ID}/_apis/distributedtask/hubs/build/plans/${crypto.randomUUID()}/jobs/${crypto.randomUUID()}/oidctoken`,
        ...opts.variables,
      },
      env: { NODE_PATH: '', NODE_OPTIONS: '', NODE_EXTRA_CA_CERTS: pki.caCert, ...endpointEnv(CONNECTION, 'WorkloadIdentityFederation', wifParams()), ...opts.env },
      secrets: opts.secrets,
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
    // System.Debug on: task-lib's and the task's debug lines are scanned too.
    const backup = await task(BACKUP, { ...blobInputs(), authType: 'serviceConnection' }, { variables: { 'Build.BuildId': '2001', 'System.Debug': 'true' } });
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

    // The restore drill (mode: verify) reads the same run with the same connection: Entra for Blob and for git ls-remote.
    const reportPath = path.join(tmpDir('report'), 'verify.json');
    const drill = await task(RESTORE, { ...blobInputs(), source: 'azureBlob', authType: 'serviceConnection', mode: 'verify', repository: 'Team Alpha/*', reportPath });
    const drilled = (JSON.parse(fs.readFileSync(reportPath, 'utf8')).repositories as Array<{ repository: string; status: string }>);
    assert.strictEqual(drill.result?.result, 'Succeeded', `${JSON.stringify(drilled)}\n${explain(drill)}`);
    // Every archive identical; the disabled repository (skipped by the backup, which Succeeded) is listed as skipped.
    const expected = corpus.all.filter((x) => x.project === 'Team Alpha');
    assert.strictEqual(drilled.length, expected.length, JSON.stringify(drilled));
    for (const d of drilled) assert.strictEqual(d.status, expected.find((x) => x.name === d.repository)?.disabled ? 'skipped' : 'identical', JSON.stringify(d));

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

  it('renews tokens with a 20-second lifetime in a run that lasts longer (REST, git and storage)', async () => {
    entra.tokenLifetimeSec = 20;
    oidc.lifetimeSec = 20;
    await azurite.createContainer('refresh');
    standin.clearLog();
    const since = entra.requests.length;
    // The repository list is throttled once for 12 s and every git request of 'api' waits 4 s: the run lasts well past
    // the first tokens' expiry, and the stand-ins check expiry on every request.
    standin.faults.throttleRest = { count: 1, retryAfterSeconds: 12, path: /_apis\/git\/repositories/ };
    standin.faults.slowGit = { repo: 'api', delayMs: 4000 };
    // Every process's argv on the machine, sampled through the run (git, git-lfs, the task): checked for tokens after.
    const argv = new Set<string>();
    let sampling = true;
    let sawClone = false;
    const sampler = (async () => {
      while (sampling) {
        for (const { cmdline } of allCmdlines()) {
          if (cmdline.includes('clone\0--mirror')) sawClone = true;
          argv.add(cmdline.toString('utf8'));
        }
        await delay(100);
      }
    })();
    try {
      const run = await task(BACKUP, { ...blobInputs(), containerName: 'refresh', authType: 'serviceConnection', concurrency: '1' }, { variables: { 'Build.BuildId': '2002' } });
      assert.strictEqual(run.result?.result, 'Succeeded', explain(run));
      const mine = entra.requests.slice(since).filter((q) => q.status === 200);
      const devops = mine.filter((q) => q.scope === DEVOPS_SCOPE);
      const storage = mine.filter((q) => q.scope === STORAGE_SCOPE);
      const first = devops[0].at;
      const last = Math.max(...standin.requests.map((q) => q.at));
      assert.ok(last - first > 20_000, `Azure DevOps was used ${last - first} ms after the first token (must outlast its 20 s lifetime)`);
      assert.ok(devops.length >= 2, `the Azure DevOps token was renewed (${devops.length} tokens)`);
      assert.ok(storage.length >= 2, `the storage token was renewed (${storage.length} tokens)`);
      assert.deepStrictEqual(standin.requests.filter((q) => q.status === 401).map((q) => q.url), [], 'no request was refused for an expired token');
      const files = await readContainer(azurite.serviceClient().getContainerClient('refresh'));
      assert.strictEqual(manifests(files).length, 1, 'the manifest was stored after the renewals');
      for (const r of runs) assertNoSecretInOutput(r, secrets());
      sampling = false;
      await sampler;
      assert.ok(sawClone, 'argv was sampled while git clone --mirror ran');
      assertNoSecretInUrls('a process argv', [...argv], secrets());
      console.log(`      argv: ${argv.size} distinct command lines sampled, no token in any`);
      console.log(`      refresh: run ${run.durationMs} ms with 20 s tokens; Azure DevOps used ${last - first} ms after the first token; ${devops.length} Azure DevOps and ${storage.length} storage tokens`);
    } finally {
      sampling = false;
      await sampler;
      standin.faults = {};
      entra.tokenLifetimeSec = 3600;
      oidc.lifetimeSec = 600;
    }
  });

  it('through the agent\'s proxy, trusting the test CA only through Agent.CAInfo: OIDC and Entra token requests pass the proxy, its password nowhere', async () => {
    const PROXY_USER = 'backupagent';
    const PROXY_PASSWORD = `canaryProxyPw${crypto.randomBytes(12).toString('hex')}`;
    const proxy = await startTinyproxy(tmpDir('tinyproxy'), { auth: { user: PROXY_USER, password: PROXY_PASSWORD }, bind: '127.0.0.2' });
    try {
      await azurite.createContainer('proxied');
      const variables = { 'Agent.ProxyUrl': proxy.url, 'Agent.ProxyUsername': PROXY_USER, 'Build.BuildId': '2005', 'System.Debug': 'true' };
      const inputs = { ...blobInputs(), containerName: 'proxied', authType: 'serviceConnection', repositories: 'Team Alpha/api' };
      // No NODE_EXTRA_CA_CERTS: the Entra stand-in and Azurite (HTTPS, test CA) are trusted through Agent.CAInfo or not at all.
      const env = { NODE_EXTRA_CA_CERTS: '' };

      // Without it (and to a folder, so the first HTTPS request is Entra's): the token request refuses the certificate.
      const since = entra.requests.length;
      const folder = tmpDir('backups');
      const untrusted = await task(BACKUP, { organizationUrl: standin.orgUrl, destination: 'folder', folderPath: folder, authType: 'serviceConnection', repositories: 'Team Alpha/api' },
        { env, variables, secrets: { 'Agent.ProxyPassword': PROXY_PASSWORD } });
      assert.strictEqual(untrusted.result?.result, 'Failed', explain(untrusted));
      assert.match(untrusted.result!.message, /Entra ID .*server certificate of https:\/\/127\.0\.0\.1:\d+ is not trusted.*Agent\.CAInfo/, untrusted.result!.message);
      assert.ok(proxy.log().includes(new URL(entra.authorityHost).host), 'the refused token request was tunnelled through the proxy');
      assert.strictEqual(entra.requests.length, since, 'no token request reached Entra without the CA');
      console.log(`      proxied, without Agent.CAInfo: ${untrusted.result!.message.slice(0, 220)}`);

      standin.clearLog();
      const logBefore = proxy.log().length;
      const run = await task(BACKUP, inputs, { env, variables: { ...variables, 'Agent.CAInfo': pki.caCert }, secrets: { 'Agent.ProxyPassword': PROXY_PASSWORD } });
      assert.strictEqual(run.result?.result, 'Succeeded', explain(run));
      const mine = entra.requests.slice(since).filter((q) => q.status === 200);
      assert.ok(mine.some((q) => q.scope === DEVOPS_SCOPE) && mine.some((q) => q.scope === STORAGE_SCOPE), 'Entra issued both tokens');
      const log = proxy.log().slice(logBefore);
      const entraHost = new URL(entra.authorityHost).host;
      assert.ok(log.includes(entraHost), `the Entra token requests went through the proxy (tinyproxy log names ${entraHost})`);
      assert.ok(log.includes(new URL(azurite.tlsBlobUrl!).host), 'the storage requests went through the proxy');
      const oidcRequests = standin.requests.filter((q) => q.url.includes('/oidctoken'));
      assert.ok(oidcRequests.length > 0, 'the OIDC token was requested');
      assert.deepStrictEqual(oidcRequests.filter((q) => q.remoteAddress !== '127.0.0.2').map((q) => q.url), [], 'the OIDC request went through the proxy');
      assert.deepStrictEqual(standin.requests.filter((q) => q.route === 'rest' && q.remoteAddress !== '127.0.0.2').map((q) => q.url), [], 'REST went through the proxy');
      for (const r of [untrusted, run]) assertNoSecretInOutput(r, [...secrets(), PROXY_PASSWORD]);
      assertNoSecretInUrls('Azure DevOps', standin.requests.map((q) => q.url), [PROXY_PASSWORD]);
      assertNoSecretInUrls('Azurite', azurite.requestUrls(), [PROXY_PASSWORD]);
      const files = await readContainer(azurite.serviceClient().getContainerClient('proxied'));
      assertNoSecretInBytes('an archive or manifest', [...files.values()].map((f) => f.bytes), [PROXY_PASSWORD, ...secrets()]);
      assert.strictEqual(manifests(files)[0].repositories.find((e) => e.repository === 'api')?.status, 'ok');
      console.log(`      proxied WIF: ${mine.length} Entra token requests and ${oidcRequests.length} OIDC request(s) through tinyproxy; run ${run.durationMs} ms`);
    } finally {
      await proxy.stop();
    }
  });

  describe('refusals name the fix before any clone', () => {
    const CONN_OTHER = crypto.randomUUID();
    const CONN_UNAUTHORIZED = crypto.randomUUID();
    const CONN_NONMEMBER = crypto.randomUUID();
    const nonMember = crypto.randomUUID();
    const spClient = crypto.randomUUID();
    let storage403: https.Server;
    let storage403Url = '';

    before(async () => {
      standin.oidc!.connections.set(CONN_OTHER, 'sc://contoso/Team Alpha/some-other-connection');
      standin.oidc!.connections.set(CONN_NONMEMBER, 'sc://contoso/Team Alpha/non-member');
      entra.register({ clientId: nonMember, federated: { issuer: oidc.issuer, subject: 'sc://contoso/Team Alpha/non-member' } });
      entra.register({ clientId: spClient, secret: SP_SECRET });
      const accepts = standin.acceptEntraToken!;
      const appOf = (t: string) => { try { return JSON.parse(Buffer.from(t.split('.')[1], 'base64url').toString()).appid; } catch { return undefined; } };
      standin.acceptEntraToken = (t) => accepts(t) && appOf(t) !== nonMember;
      // Azure Storage as it answers a principal without a data role on the container.
      storage403 = https.createServer({ cert: fs.readFileSync(pki.cert), key: fs.readFileSync(pki.key) }, (req, res) => {
        req.resume();
        req.on('end', () => res.writeHead(403, { 'Content-Type': 'application/xml', 'x-ms-error-code': 'AuthorizationPermissionMismatch' })
          .end('<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthorizationPermissionMismatch</Code><Message>This request is not authorized to perform this operation using this permission.</Message></Error>'));
      });
      await new Promise<void>((resolve) => storage403.listen(0, '127.0.0.1', () => resolve()));
      storage403Url = `https://127.0.0.1:${(storage403.address() as net.AddressInfo).port}/acct`;
    });
    after(async () => {
      storage403?.closeAllConnections?.();
      await new Promise<void>((resolve) => (storage403 ? storage403.close(() => resolve()) : resolve()));
    });

    async function refused(label: string, inputs: Record<string, string>, env: Record<string, string>, expect: RegExp[], entry = BACKUP): Promise<void> {
      standin.clearLog();
      // The one uncommitted probe block of the storage check (never committed, never listed) is not an upload.
      const uploads = () => azurite.requests().filter((q) => q.method === 'PUT' && !q.url.includes('.repobackup-write-check')).length;
      const putsBefore = uploads();
      const run = await task(entry, inputs, { env });
      assert.strictEqual(run.result?.result, 'Failed', `${label}: ${explain(run)}`);
      for (const re of expect) assert.match(run.result!.message, re, `${label}: ${run.result!.message}`);
      assert.deepStrictEqual(standin.requests.filter((q) => q.route !== 'rest').map((q) => q.url), [], `${label}: no git or LFS request`);
      assert.strictEqual(uploads(), putsBefore, `${label}: nothing uploaded`);
      assertNoSecretInOutput(run, secrets());
      console.log(`      ${label}: ${run.result!.message.slice(0, 160)}…`);
    }
    const endpoint = (id: string, scheme: string, params: Record<string, string>) => endpointEnv(id, scheme, params);
    const backupInputs = (id: string) => ({ ...blobInputs(), authType: 'serviceConnection', azureSubscription: id });

    it('the federated credential does not match the service connection', () =>
      refused('subject mismatch', backupInputs(CONN_OTHER), endpoint(CONN_OTHER, 'WorkloadIdentityFederation', wifParams()),
        [/federated credential/, /sc:\/\/<organization>\/<project>\/<connection name>/, /AADSTS700213/]));

    it('the connection is not authorized for this pipeline', () =>
      refused('not authorized', backupInputs(CONN_UNAUTHORIZED), endpoint(CONN_UNAUTHORIZED, 'WorkloadIdentityFederation', wifParams()),
        [/^Azure DevOps refused the OIDC token/, /authorized for this pipeline/, /Pipeline permissions/]));

    it('the principal is not a member of the organization', () =>
      refused('not a member', backupInputs(CONN_NONMEMBER), endpoint(CONN_NONMEMBER, 'WorkloadIdentityFederation', { ...wifParams(), serviceprincipalid: nonMember }),
        [/member of the organization/, /Read on Repositories/]));

    it('the principal lacks Storage Blob Data Contributor (403 AuthorizationPermissionMismatch)', () =>
      refused('no data role', { ...backupInputs(CONNECTION), blobEndpoint: storage403Url }, {},
        [/Storage Blob Data Contributor/, /AuthorizationPermissionMismatch/, /az role assignment create/]));

    it('restore: the principal lacks a data role on the container (403)', () =>
      refused('restore no data role', { ...backupInputs(CONNECTION), blobEndpoint: storage403Url, source: 'azureBlob', repository: 'Team Alpha/api', targetProject: 'Team Alpha', targetRepository: 'never' }, {},
        [/Storage Blob Data Reader/, /AuthorizationPermissionMismatch/, /az role assignment create/], RESTORE));

    it('an unsupported scheme lists the supported ones', () =>
      refused('unsupported scheme', backupInputs(CONNECTION), endpoint(CONNECTION, 'UsernamePassword', { username: 'u', password: SP_SECRET }),
        [/UsernamePassword/, /WorkloadIdentityFederation, ServicePrincipal, ManagedServiceIdentity/]));

    it('a service principal secret that Entra refuses', () =>
      refused('wrong secret', backupInputs(CONNECTION), endpoint(CONNECTION, 'ServicePrincipal', { tenantid: entra.tenantId, serviceprincipalid: spClient, serviceprincipalkey: `${SP_SECRET}x`, authenticationType: 'spnKey' }),
        [/secret is wrong or expired/, /AADSTS7000215/]));

    it('restore: the connection is not authorized for this pipeline', () =>
      refused('restore not authorized', { ...backupInputs(CONN_UNAUTHORIZED), source: 'azureBlob', repository: 'Team Alpha/api', targetProject: 'Team Alpha', targetRepository: 'never' },
        endpoint(CONN_UNAUTHORIZED, 'WorkloadIdentityFederation', wifParams()), [/authorized for this pipeline/], RESTORE));
  });

  it('ServicePrincipal (secret) backs up too, the secret masked and nowhere else', async () => {
    const spClient = crypto.randomUUID();
    entra.register({ clientId: spClient, secret: SP_SECRET });
    await azurite.createContainer('sp-backups');
    const run = await task(BACKUP, { ...blobInputs(), containerName: 'sp-backups', authType: 'serviceConnection', repositories: 'Team Alpha/api' },
      { env: endpointEnv(CONNECTION, 'ServicePrincipal', { tenantid: entra.tenantId, serviceprincipalid: spClient, serviceprincipalkey: SP_SECRET, authenticationType: 'spnKey' }), variables: { 'Build.BuildId': '2003' } });
    assert.strictEqual(run.result?.result, 'Succeeded', explain(run));
    assert.ok(run.lines.includes(`##vso[task.setsecret]${SP_SECRET}`), 'the secret is masked');
    assert.ok(entra.requests.some((q) => q.clientId === spClient && q.grant === 'secret' && q.status === 200));
    const files = await readContainer(azurite.serviceClient().getContainerClient('sp-backups'));
    const entry = manifests(files)[0].repositories.find((e) => e.repository === 'api')!;
    await assertArchiveMatches(files.get(entry.archive!)!.bytes, entry.archive!, corpus.repos.api);
    assertNoSecretInOutput(run, secrets());
    assertNoSecretInBytes('an archive or manifest', [...files.values()].map((f) => f.bytes), secrets());
  });

  it('ManagedServiceIdentity (self-hosted agent on an Azure VM) backs up through IMDS; without an identity it says so', async () => {
    const vm = crypto.randomUUID();
    entra.managedIdentity = { clientId: vm };
    await azurite.createContainer('msi-backups');
    const msiEnv = { ...endpointEnv(CONNECTION, 'ManagedServiceIdentity', { tenantid: entra.tenantId }), AZURE_POD_IDENTITY_AUTHORITY_HOST: entra.authorityHost };
    try {
      const run = await task(BACKUP, { ...blobInputs(), containerName: 'msi-backups', authType: 'serviceConnection', repositories: 'Team Alpha/api' },
        { env: msiEnv, variables: { 'Build.BuildId': '2004' } });
      assert.strictEqual(run.result?.result, 'Succeeded', explain(run));
      const imds = entra.requests.filter((q) => q.clientId === '(system-assigned)' && q.status === 200).map((q) => q.scope);
      assert.ok(imds.some((r) => r.startsWith(DEVOPS_RESOURCE)) && imds.some((r) => r.startsWith('https://storage.azure.com')), `IMDS tokens for both resources: ${imds.join(', ')}`);
      const files = await readContainer(azurite.serviceClient().getContainerClient('msi-backups'));
      const entry = manifests(files)[0].repositories.find((e) => e.repository === 'api')!;
      await assertArchiveMatches(files.get(entry.archive!)!.bytes, entry.archive!, corpus.repos.api);
      assertNoSecretInOutput(run, secrets());

      entra.managedIdentity = undefined;
      standin.clearLog();
      const none = await task(BACKUP, { ...blobInputs(), containerName: 'msi-backups', authType: 'serviceConnection' }, { env: msiEnv });
      assert.strictEqual(none.result?.result, 'Failed', explain(none));
      assert.match(none.result!.message, /ManagedServiceIdentity/);
      assert.deepStrictEqual(standin.requests.filter((q) => q.route !== 'rest').map((q) => q.url), [], 'no git request');
      console.log(`      MSI without an identity: ${none.result!.message.slice(0, 200)}`);
    } finally {
      entra.managedIdentity = undefined;
    }
  });
});

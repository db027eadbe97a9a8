// Storage-path trust: never report a backup that was not made, never die of a storage refusal, never store one
// archive twice. RepoBackup@1 runs as the agent runs it, against the Azure DevOps stand-in and Azurite; where the
// real service behaves differently from Azurite (an account that refuses access tiers, an answer lost on the way)
// the fault proxy in front of Azurite plays the real service's answer.
import assert from 'assert';
import {
  ContainerClient, ContainerSASPermissions, generateBlobSASQueryParameters, StorageSharedKeyCredential,
} from '@azure/storage-blob';
import { randomBytes } from 'crypto';
import * as path from 'path';
import { AzuriteHandle, startAzurite } from './harness/azurite';
import { assertNoSecretInOutput, Manifest, manifests, readContainer, sha256, StoredFile } from './harness/checks';
import { populate, prngBytes } from './harness/corpus';
import { DevOpsStandIn } from './harness/devops-standin';
import { FaultProxy, startFaultProxy } from './harness/fault-proxy';
import { runTask, TaskRun, HARNESS_RUN_DATE } from './harness/run-task';
import { cleanupAll, tmpDir } from './harness/util';

const ENTRY = path.resolve(__dirname, '../../tasks/RepoBackup/RepoBackupV1/dist/index.js');
const TOKEN = `canaryTrustToken${randomBytes(12).toString('hex')}`;
const FAST = { 'RepoBackup.RetryAttempts': '3', 'RepoBackup.RetryDelayMs': '100' };
const REPOS = ['alpha', 'many', 'beta'];

describe('RepoBackup@1 storage-path trust', function () {
  this.timeout(180_000);
  let standin: DevOpsStandIn;
  let azurite: AzuriteHandle;
  let proxy: FaultProxy;
  let containers = 0;
  let buildId = 7000;
  const sigs: string[] = [];

  before(async () => {
    standin = await DevOpsStandIn.start({ org: 'contoso', root: tmpDir('standin'), tokens: { bearer: [TOKEN] } });
    const project = standin.addProject('Trust');
    const files: Record<string, { lfs: Buffer }> = {};
    // 400 LFS objects of 30 KB: a 12 MB archive of many entries, so an upload that stops does so mid-archive.
    for (let i = 0; i < 400; i++) files[`blobs/f${i}.bin`] = { lfs: prngBytes(`many-${i}`, 30_000) };
    [azurite] = await Promise.all([
      startAzurite(),
      populate(standin, standin.addRepo(project, 'alpha'), { commits: [{ message: 'a', files: { 'a.txt': 'alpha\n' } }] }),
      populate(standin, standin.addRepo(project, 'many'), { commits: [{ message: 'many', files: { '.gitattributes': '*.bin filter=lfs diff=lfs merge=lfs -text\n', ...files } }] }),
      populate(standin, standin.addRepo(project, 'beta'), { commits: [{ message: 'b', files: { 'b.txt': 'beta\n' } }] }),
    ]);
    proxy = await startFaultProxy(azurite.blobUrl);
  });

  afterEach(() => { proxy.faults.length = 0; });

  after(async () => {
    await standin?.stop();
    await proxy?.stop();
    await azurite?.stop();
    await cleanupAll();
  });

  async function container(): Promise<ContainerClient> {
    return azurite.createContainer(`trust${++containers}`);
  }

  function sasFor(client: ContainerClient, permissions: string): string {
    const url = azurite.containerSasUrl(client.containerName, permissions);
    sigs.push(new URL(url).searchParams.get('sig')!);
    return url;
  }

  async function backup(inputs: Record<string, string>, variables: Record<string, string> = {}): Promise<TaskRun> {
    const run = await runTask(ENTRY, {
      inputs: { includeWikis: 'false', ...inputs }, orgUrl: standin.orgUrl, token: TOKEN, tempDir: tmpDir('run'),
      variables: { 'Build.BuildId': String(++buildId), ...FAST, ...variables }, timeoutMs: 170_000,
    });
    assertNoSecretInOutput(run, [TOKEN, ...sigs]);
    const completes = run.commands.filter((c) => c.command === 'task.complete');
    assert.strictEqual(completes.length, 1, `one task.complete: ${completes.map((c) => c.props.result).join(', ')}`);
    assert.ok(!/Unhandled|uncaught/i.test(run.stdout + run.stderr), `no unhandled rejection:\n${run.stdout}\n${run.stderr}`);
    return run;
  }

  const warningsOf = (run: TaskRun) => run.commands.filter((c) => c.command === 'task.issue' && c.props.type === 'warning').map((c) => c.message);
  const entry = (m: Manifest, repo: string) => m.repositories.find((e) => e.repository === repo)!;
  const gitRequests = () => standin.requests.filter((r) => r.route !== 'rest').length;

  function assertStored(files: Map<string, StoredFile>, manifest: Manifest, repos: string[]) {
    for (const repo of repos) {
      const e = entry(manifest, repo);
      assert.strictEqual(e.status, 'ok', `${repo}: ${e.error}`);
      const file = files.get(e.archive!);
      assert.ok(file, `${e.archive} stored`);
      assert.strictEqual(sha256(file.bytes), e.sha256, `${repo}: stored bytes = manifest sha256`);
      assert.strictEqual(file.metadata.sha256, e.sha256);
    }
  }

  it('item 5: the upload of one repository refused mid-archive: that repository failed, the others and the manifest stored, no Unhandled', async () => {
    const client = await container();
    // Every block of many.zip refused for good (403): the upload gives up after its first block, mid-archive.
    proxy.faults.push({ match: /^PUT .*\/many\.zip\?.*comp=block(&|$)/, count: Infinity, action: 'status', status: 403, errorCode: 'AuthorizationPermissionMismatch', message: 'This request is not authorized to perform this operation using this permission.' });
    const run = await backup({ sasUrl: proxy.rewrite(sasFor(client, 'cw')), onRepoFailure: 'warn', concurrency: '3' });
    assert.strictEqual(run.result?.result, 'SucceededWithIssues', run.stdout);
    assert.strictEqual(run.result!.message, '2 backed up, 1 failed, 0 skipped: Trust/many');
    const files = await readContainer(client);
    const [manifest] = manifests(files);
    assert.ok(manifest, 'the manifest was written');
    assert.match(entry(manifest, 'many').error!, /Blob storage refused '.*\/Trust\/many\.zip' \(403 AuthorizationPermissionMismatch\)/);
    assertStored(files, manifest, ['alpha', 'beta']);
    assert.ok(![...files.keys()].some((k) => k.endsWith('many.zip')), 'nothing committed for many');
    const refused = proxy.requests.filter((r) => r.fault && /many\.zip/.test(r.url)).length;
    console.log(`      (${refused} Put Block request(s) refused; run ${run.durationMs} ms)`);
  });

  it('item 8: a SAS with create but not write is refused before any clone or blob request', async () => {
    const client = await container();
    standin.clearLog();
    const sasRequests = () => azurite.requestUrls().filter((u) => /[?&]sig=/.test(u)).length;
    const before = sasRequests();
    const run = await backup({ sasUrl: sasFor(client, 'c') });
    assert.strictEqual(run.result?.result, 'Failed');
    assert.match(run.result!.message, /^Input 'sasUrl': grants sp=c; uploading backups needs w \(write\); w is missing \(create alone cannot stage the blocks .*\)\. Generate the SAS with --permissions cw\.$/);
    assert.strictEqual(gitRequests(), 0);
    assert.strictEqual(sasRequests(), before, 'no request reached Blob storage');
  });

  it('item 2: a SAS with more rights than a backup needs works, with one warning naming the extra rights', async () => {
    const client = await container();
    const run = await backup({ sasUrl: sasFor(client, 'racwdxl'), repositories: 'Trust/alpha' });
    assert.strictEqual(run.result?.result, 'Succeeded', run.stdout);
    const extra = warningsOf(run).filter((w) => /more than uploading backups needs/.test(w));
    assert.strictEqual(extra.length, 1, warningsOf(run).join('\n'));
    assert.match(extra[0], /grants r, a, d, x and l \(read, add, delete, delete versions and list\)/);
  });

  describe('item 9: a SAS bound to a stored access policy (si=, no sp/se)', () => {
    const credential = () => new StorageSharedKeyCredential(azurite.accountName, azurite.accountKey);

    async function policySas(client: ContainerClient, id: string, permissions: string): Promise<string> {
      const now = Date.now();
      await client.setAccessPolicy(undefined, [{
        id, accessPolicy: { permissions: ContainerSASPermissions.parse(permissions).toString(), startsOn: new Date(now - 5 * 60_000), expiresOn: new Date(now + 3600_000) },
      }]);
      const query = generateBlobSASQueryParameters({ containerName: client.containerName, identifier: id }, credential()).toString();
      const q = new URLSearchParams(query);
      assert.ok(q.get('si') === id && !q.get('sp') && !q.get('se'), `policy-bound SAS: ${[...q.keys()].join(',')}`);
      sigs.push(q.get('sig')!);
      return `${azurite.blobUrl}/${client.containerName}?${query}`;
    }

    it('a policy granting cw: accepted, said once, every repository stored', async () => {
      const client = await container();
      const run = await backup({ sasUrl: await policySas(client, 'backup-writer', 'cw') });
      assert.strictEqual(run.result?.result, 'Succeeded', run.stdout);
      assert.strictEqual(run.lines.filter((l) => /stored access policy 'backup-writer'/.test(l)).length, 1);
      const files = await readContainer(client);
      const [manifest] = manifests(files);
      assertStored(files, manifest, REPOS);
      assert.ok(![...files.keys()].some((k) => k.includes('repobackup-write-check')), 'the write check left no blob');
    });

    it('a policy without write: Failed before any clone, naming the policy', async () => {
      const client = await container();
      const sasUrl = await policySas(client, 'reader-only', 'rl');
      standin.clearLog();
      const run = await backup({ sasUrl });
      assert.strictEqual(run.result?.result, 'Failed');
      assert.match(run.result!.message, /^Blob storage refused a first write \(Put Block\) with the SAS bound to the stored access policy 'reader-only' \(403 \w+\)\. The policy 'reader-only' .* grant write \(w; create \+ write: cw\)/);
      assert.ok(run.durationMs < 30_000, `${run.durationMs} ms`);
      assert.strictEqual(gitRequests(), 0, 'no clone');
      assert.strictEqual((await readContainer(client)).size, 0);
    });
  });

  describe('item 10: an access tier the account does not support', () => {
    const refusals: Array<[string, { status: number; errorCode: string; message: string; detailXml?: string }]> = [
      ['409 BlobAccessTierNotSupportedForAccountType (Archive on a ZRS account)', { status: 409, errorCode: 'BlobAccessTierNotSupportedForAccountType', message: 'Blob access tier is not supported on this storage account type.' }],
      ['400 InvalidHeaderValue on x-ms-access-tier (a premium account)', { status: 400, errorCode: 'InvalidHeaderValue', message: 'The value for one of the HTTP headers is not in the correct format.', detailXml: '<HeaderName>x-ms-access-tier</HeaderName><HeaderValue>Archive</HeaderValue>' }],
    ];
    for (const [what, refusal] of refusals) {
      it(`${what}: every repository stored without the tier, one warning, SucceededWithIssues`, async () => {
        const client = await container();
        proxy.requests.length = 0;
        proxy.faults.push({ match: /^PUT .*comp=blocklist/, count: Infinity, action: 'status', withHeader: 'x-ms-access-tier', ...refusal });
        const run = await backup({ sasUrl: proxy.rewrite(sasFor(client, 'cw')), accessTier: 'Archive', concurrency: '1' });
        assert.strictEqual(run.result?.result, 'SucceededWithIssues', run.stdout);
        const tierWarnings = warningsOf(run).filter((w) => /accessTier 'Archive' was refused/.test(w));
        assert.strictEqual(tierWarnings.length, 1, warningsOf(run).join('\n'));
        assert.match(tierWarnings[0], new RegExp(`\\(${refusal.status} ${refusal.errorCode}\\)`));
        const files = await readContainer(client);
        const [manifest] = manifests(files);
        assertStored(files, manifest, REPOS);
        assert.ok((manifest as unknown as { warnings: string[] }).warnings.some((w) => /accessTier 'Archive' was refused/.test(w)), 'the manifest lists the warning');
        for await (const blob of client.listBlobsFlat()) assert.notStrictEqual(blob.properties.accessTier, 'Archive', blob.name);
        // Remembered for the run: one refused commit, then none carries the tier.
        assert.strictEqual(proxy.requests.filter((r) => r.fault).length, 1);
      });
    }
  });

  it('item 12: the answer to the first commit is lost: stored once under its own name, no ~2, manifest right', async () => {
    const client = await container();
    proxy.requests.length = 0;
    proxy.faults.push({ match: /^PUT .*\/alpha\.zip\?.*comp=blocklist/, count: 1, action: 'lostAnswer' });
    const run = await backup({ sasUrl: proxy.rewrite(sasFor(client, 'cw')) });
    assert.strictEqual(run.result?.result, 'Succeeded', run.stdout);
    assert.ok(proxy.faults[0].count === 0, 'the fault fired');
    const files = await readContainer(client);
    const [manifest] = manifests(files);
    assert.strictEqual(manifests(files).length, 1);
    assertStored(files, manifest, REPOS);
    assert.match(entry(manifest, 'alpha').archive!, /\/Trust\/alpha\.zip$/);
    assert.deepStrictEqual([...files.keys()].filter((k) => /~\d/.test(k)), [], 'no ~2 copy');
    assert.ok(!warningsOf(run).some((w) => /already existed/.test(w)));
    const commits = proxy.requests.filter((r) => /alpha\.zip\?.*comp=blocklist/.test(r.url)).map((r) => r.status);
    console.log(`      (alpha.zip commits seen by the proxy, status each: ${commits.join(', ')})`);
  });

  it('item 12, the other side: a blob put there by someone else is still never overwritten (~2)', async () => {
    const client = await container();
    const id = ++buildId;
    const folder = `archives/contoso/${HARNESS_RUN_DATE}/${id}.1`;
    const squatter = Buffer.from('not a backup');
    await client.getBlockBlobClient(`${folder}/Trust/alpha.zip`).upload(squatter, squatter.length);
    const run = await backup({ sasUrl: sasFor(client, 'cw'), repositories: 'Trust/alpha' }, { 'Build.BuildId': String(id) });
    assert.strictEqual(run.result?.result, 'Succeeded', run.stdout);
    const files = await readContainer(client);
    assert.deepStrictEqual(files.get(`${folder}/Trust/alpha.zip`)!.bytes, squatter, 'untouched');
    const [manifest] = manifests(files);
    assert.strictEqual(entry(manifest, 'alpha').archive, `${folder}/Trust/alpha~2.zip`);
    assertStored(files, manifest, ['alpha']);
  });
});

// Azure DevOps Server: RepoBackup@1 and RepoRestore@1 (restore and the verify drill), run as the agent runs them,
// against the stand-in playing Azure DevOps Server 2020 and 2022 (collection URL under /tfs/, REST versions capped at
// 6.0 / 7.0 with the Server's refusal above them, repositories listed without `size`, no user name in clone URLs).
// Plus the token's host scoping: a clone URL on another host than the collection URL gets no token unless the
// trustedHosts input names that host.
import assert from 'assert';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { AzuriteHandle, startAzurite } from './harness/azurite';
import {
  allFileBytes, assertArchiveMatches, assertNoSecretInBytes, assertNoSecretInOutput, assertNoSecretInUrls, Manifest, manifests, readContainer, readFolder, sha256, StoredFile,
} from './harness/checks';
import { buildStandardCorpus, StandardCorpus } from './harness/corpus';
import { DevOpsStandIn, Flavor, FLAVORS } from './harness/devops-standin';
import { runTask, TaskRun } from './harness/run-task';
import { cleanupAll, refMap, tmpDir } from './harness/util';

const BACKUP = path.resolve(__dirname, '../../tasks/RepoBackup/RepoBackupV1/dist/index.js');
const RESTORE = path.resolve(__dirname, '../../tasks/RepoRestore/RepoRestoreV1/dist/index.js');
const TOKEN = `canarySrvJobToken${randomBytes(12).toString('hex')}`;
const PAT = `canarysrvpat${randomBytes(20).toString('hex')}`;

const explain = (run: TaskRun) => `${run.result?.result}: ${run.result?.message}\n${run.stdout.split('\n').filter((l) => /##vso\[task\.(issue|complete)|error|warn/i.test(l)).slice(0, 30).join('\n')}`;

/** A raw request to the stand-in (no client library): status and body. */
function request(url: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

for (const flavor of ['server2020', 'server2022'] as Flavor[]) {
  describe(`Azure DevOps Server: ${FLAVORS[flavor].name} (stand-in flavor ${flavor})`, function () {
    this.timeout(180_000);
    let standin: DevOpsStandIn;
    let azurite: AzuriteHandle | undefined;
    let corpus: StandardCorpus;
    const timings: string[] = [];
    const started = Date.now();
    // 2022 backs up to Blob (Azurite), 2020 to a folder: both destinations are crossed with a Server source.
    const toBlob = flavor === 'server2022';
    let folder = '';
    let files: Map<string, StoredFile>;
    let manifest: Manifest;
    let sig = '';
    let containerClient: Awaited<ReturnType<AzuriteHandle['createContainer']>> | undefined;

    async function task(label: string, entry: string, inputs: Record<string, string>, secrets: string[] = []): Promise<TaskRun> {
      const t0 = Date.now();
      const run = await runTask(entry, { inputs: { organizationUrl: standin.orgUrl, ...inputs }, orgUrl: standin.orgUrl, token: TOKEN, tempDir: tmpDir('run') });
      timings.push(`${label}: ${Date.now() - t0} ms`);
      assertNoSecretInOutput(run, [TOKEN, PAT, ...secrets]);
      return run;
    }

    before(async function () {
      this.timeout(120_000);
      standin = await DevOpsStandIn.start({ org: 'DefaultCollection', root: tmpDir('standin'), tokens: { bearer: [TOKEN], pat: [PAT] }, flavor });
      corpus = await buildStandardCorpus(standin);
      if (toBlob) azurite = await startAzurite();
    });

    after(async () => {
      await standin?.stop();
      await azurite?.stop();
      await cleanupAll();
      // eslint-disable-next-line no-console
      console.log(`      ${flavor}: ${timings.join('; ')}; suite ${Date.now() - started} ms`);
    });

    it('plays the Server: collection under /tfs/, versions capped with the Server\'s refusal, no size, PAT and job token, no NTLM', async () => {
      const max = FLAVORS[flavor].maxVersion;
      assert.match(standin.orgUrl, /^http:\/\/127\.0\.0\.1:\d+\/tfs\/DefaultCollection\/$/);
      const basic = standin.authHeader('pat');
      const options = await request(`${standin.orgUrl}_apis/git`, { method: 'OPTIONS', headers: { Authorization: basic } });
      assert.strictEqual(options.status, 200);
      const repositories = JSON.parse(options.body).value.find((l: { resourceName: string }) => l.resourceName === 'repositories');
      assert.strictEqual(repositories.maxVersion, max);
      const over = await request(`${standin.orgUrl}_apis/git/repositories?api-version=7.1`, { headers: { Authorization: basic } });
      if (flavor === 'server2020' || flavor === 'server2022') {
        assert.strictEqual(over.status, 400);
        assert.strictEqual(JSON.parse(over.body).typeKey, 'VssVersionOutOfRangeException');
        assert.strictEqual(JSON.parse(over.body).message,
          `The requested REST API version of 7.1 is out of range for this server. The latest REST API version this server supports is ${max}.`);
      }
      const list = await request(`${standin.orgUrl}_apis/git/repositories?api-version=${max}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
      assert.strictEqual(list.status, 200);
      const repos = JSON.parse(list.body).value as Array<Record<string, unknown>>;
      assert.ok(repos.length > 0 && repos.every((r) => !('size' in r)), 'no size on Server');
      assert.ok(repos.every((r) => !String(r.remoteUrl).includes('@')), 'no user name in the clone URL');
      assert.strictEqual(repos.some((r) => 'isInMaintenance' in r), flavor !== 'server2020');
      // Outside the virtual directory nothing is served; NTLM is not spoken.
      assert.strictEqual((await request(`${standin.orgUrl.replace('/tfs/', '/')}_apis/git/repositories?api-version=${max}`, { headers: { Authorization: basic } })).status, 404);
      assert.strictEqual((await request(`${standin.orgUrl}_apis/git/repositories?api-version=${max}`, { headers: { Authorization: 'NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw==' } })).status, 401);
    });

    it('backs up the corpus (branches, tags, LFS, wiki, empty and disabled repositories) with the job token', async () => {
      let inputs: Record<string, string>;
      if (toBlob) {
        containerClient = await azurite!.createContainer('srv');
        const sasUrl = azurite!.containerSasUrl('srv', 'cw');
        sig = new URL(sasUrl).searchParams.get('sig')!;
        inputs = { destination: 'azureBlob', sasUrl };
      } else {
        folder = tmpDir('srv-backups');
        inputs = { destination: 'folder', folderPath: folder, archiveFormat: 'tar.gz' };
      }
      standin.clearLog();
      const run = await task('backup', BACKUP, inputs, sig ? [sig] : []);
      assert.strictEqual(run.result?.result, 'Succeeded', explain(run));
      assert.match(run.result!.message, /5 backed up, 0 failed, 1 skipped/);
      assert.ok(run.lines.some((l) => /reports no repository sizes/.test(l)), 'the log says sizes are unknown');
      files = toBlob ? await readContainer(containerClient!) : readFolder(folder);
      [manifest] = manifests(files);
      assert.ok(manifest, `a manifest among ${[...files.keys()]}`);
      for (const source of corpus.all.filter((r) => !r.disabled)) {
        const entry = manifest.repositories.find((e) => e.id === source.repo.id)!;
        assert.strictEqual(entry?.status, 'ok', `${source.name}: ${entry?.error}`);
        const file = files.get(entry.archive!)!;
        assert.strictEqual(entry.sha256, sha256(file.bytes));
        assert.strictEqual(entry.refs, Object.keys(source.refs).length);
        assert.strictEqual((entry as unknown as { sourceSize: unknown }).sourceSize, null, 'no size claimed where the Server reported none');
        const dir = await assertArchiveMatches(file.bytes, entry.archive!, source);
        assertNoSecretInBytes(`archive ${entry.archive}`, [file.bytes, ...allFileBytes(dir)], [TOKEN, PAT, sig].filter(Boolean));
      }
      assert.strictEqual(manifest.repositories.find((e) => e.id === corpus.repos.disabled.repo.id)?.status, 'skipped');
      assertNoSecretInBytes('manifest', [...files.values()].filter((f) => f.name.endsWith('.json')).map((f) => f.bytes), [TOKEN, PAT, sig].filter(Boolean));
      assertNoSecretInUrls('the stand-in', standin.requests.map((r) => r.url), [TOKEN, PAT, sig].filter(Boolean));
      // Every REST call fitted the Server's versions (a refusal would be a 400 here).
      assert.deepStrictEqual(standin.requests.filter((r) => r.status === 400).map((r) => r.url), []);
      assert.ok(standin.requests.some((r) => r.route === 'lfs'));
    });

    it('restores an archive into a new repository with a PAT, refs and LFS objects equal', async () => {
      const assets = corpus.repos.assets;
      const entry = manifest.repositories.find((e) => e.id === assets.repo.id)!;
      const source: Record<string, string> = toBlob ? { source: 'azureBlob', sasUrl: azurite!.containerSasUrl('srv', 'rl') } : { source: 'folder', folderPath: folder };
      const run = await task('restore', RESTORE, {
        ...source, archive: entry.archive!, targetProject: 'Team Alpha', targetRepository: 'assets restored', authType: 'pat', personalAccessToken: PAT,
      });
      assert.strictEqual(run.result?.result, 'Succeeded', explain(run));
      assert.match(run.result!.message, /Restored 2 refs and 3 LFS objects/);
      const target = standin.findRepo('Team Alpha', 'assets restored')!;
      assert.deepStrictEqual(await refMap(target.gitDir), await refMap(assets.repo.gitDir));
      for (const oid of new Set(assets.lfs.map((l) => l.oid))) assert.ok(fs.existsSync(standin.lfsObjectPath(target, oid)), `LFS ${oid} uploaded`);
      assert.ok(standin.requests.some((r) => r.authScheme === 'Basic'), 'the PAT went as Basic');
      assert.deepStrictEqual(standin.requests.filter((r) => r.status === 400).map((r) => r.url), [], 'no request above the Server\'s versions');
    });

    it('runs the verify drill over the whole backup: every archive matches the live repository', async () => {
      const source: Record<string, string> = toBlob ? { source: 'azureBlob', sasUrl: azurite!.containerSasUrl('srv', 'rl') } : { source: 'folder', folderPath: folder };
      const reportPath = path.join(tmpDir('srv-report'), 'verify.json');
      const run = await task('verify', RESTORE, { mode: 'verify', ...source, reportPath });
      assert.ok(/^Succeeded/.test(run.result?.result ?? ''), explain(run));
      assert.deepStrictEqual(standin.requests.filter((r) => r.status === 400).map((r) => r.url), [], 'no request above the Server\'s versions');
      const report = JSON.parse(fs.readFileSync(reportPath, 'utf8'));
      const statuses = Object.fromEntries(report.repositories.map((r: { project: string; repository: string; status: string }) => [`${r.project}/${r.repository}`, r.status]));
      // Every archive of the backup is identical to its live repository (the disabled one has no archive).
      const expected = Object.fromEntries(corpus.all.filter((r) => !r.disabled).map((r) => [`${r.project}/${r.name}`, 'identical']));
      for (const [name, status] of Object.entries(expected)) assert.strictEqual(statuses[name], status, `${name}: ${JSON.stringify(report.repositories.find((r: { repository: string }) => name.endsWith(`/${r.repository}`)))}`);
    });
  });
}

// The token goes only where it should: a clone URL on another host than the collection URL (internal vs public name)
// is not cloned with the token unless trustedHosts names that host. The stand-in serves both names (127.0.0.1 and
// localhost on the same port), so a leak would show as a request with an Authorization header arriving there.
describe('Azure DevOps Server: clone URLs on another host (trustedHosts)', function () {
  this.timeout(180_000);
  let standin: DevOpsStandIn;
  let corpus: StandardCorpus;
  let trustedFolder = '';

  before(async function () {
    this.timeout(120_000);
    standin = await DevOpsStandIn.start({ org: 'DefaultCollection', root: tmpDir('standin-hosts'), tokens: { bearer: [TOKEN], pat: [PAT] }, flavor: 'server2022' });
    corpus = await buildStandardCorpus(standin);
    // The Server reports two repositories (one a wiki) on its other name.
    standin.setRemoteHost(corpus.repos.api.repo, 'localhost');
    standin.setRemoteHost(corpus.repos.wiki.repo, 'localhost');
  });

  after(async () => {
    await standin?.stop();
    await cleanupAll();
  });

  const otherHost = () => standin.requests.filter((r) => (r.host ?? '').toLowerCase().startsWith('localhost'));

  it('does not send the token to a host nobody named: those repositories are a gap, the run fails naming them, the host and trustedHosts', async () => {
    standin.clearLog();
    const folder = tmpDir('hosts-untrusted');
    const run = await runTask(BACKUP, {
      inputs: { organizationUrl: standin.orgUrl, destination: 'folder', folderPath: folder }, orgUrl: standin.orgUrl, token: TOKEN, tempDir: tmpDir('run'),
    });
    assertNoSecretInOutput(run, [TOKEN, PAT]);
    assert.strictEqual(run.result?.result, 'Failed', explain(run));
    const host = `localhost:${standin.listenPort}`;
    assert.match(run.result!.message, /INCOMPLETE: .*Team Alpha\/(api|Team Alpha\.wiki).*localhost:\d+.*trustedHosts/);
    for (const name of ['Team Alpha/api', 'Team Alpha/Team Alpha.wiki']) {
      assert.ok(run.lines.some((l) => l.includes('##vso[task.issue type=warning') && l.includes(`Skipping ${name}: its clone URL is on host ${host}`) && l.includes('trustedHosts')),
        `a warning names ${name}, ${host} and trustedHosts`);
    }
    // Everything else was backed up; nothing at all went to the other host.
    assert.match(run.result!.message, /3 backed up, 0 failed, 3 skipped/);
    assert.deepStrictEqual(otherHost().map((r) => `${r.method} ${r.url} ${r.authScheme ?? ''}`), [], 'no request reached the other host');
    const [manifest] = manifests(readFolder(folder));
    assert.strictEqual(manifest.repositories.find((e) => e.id === corpus.repos.api.repo.id)?.status, 'skipped');
  });

  it('sends it there once trustedHosts names the host, and backs those repositories up', async () => {
    standin.clearLog();
    const folder = trustedFolder = tmpDir('hosts-trusted');
    const run = await runTask(BACKUP, {
      inputs: { organizationUrl: standin.orgUrl, destination: 'folder', folderPath: folder, trustedHosts: 'git.example.invalid, LOCALHOST' },
      orgUrl: standin.orgUrl, token: TOKEN, tempDir: tmpDir('run'),
    });
    assertNoSecretInOutput(run, [TOKEN, PAT]);
    assert.strictEqual(run.result?.result, 'Succeeded', explain(run));
    assert.match(run.result!.message, /5 backed up, 0 failed, 1 skipped/);
    assert.ok(otherHost().some((r) => r.route === 'git' && r.authScheme === 'Bearer' && r.status === 200), 'the clone went to the other host with the token');
  });

  it('the verify drill gives no token to the other host either: those repositories are not compared, the run is not Succeeded', async () => {
    // The backup of the previous test holds api and the wiki (cloned from localhost with trustedHosts).
    standin.clearLog();
    const reportPath = path.join(tmpDir('hosts-verify'), 'verify.json');
    const run = await runTask(RESTORE, {
      inputs: { organizationUrl: standin.orgUrl, mode: 'verify', source: 'folder', folderPath: trustedFolder, reportPath }, orgUrl: standin.orgUrl, token: TOKEN, tempDir: tmpDir('run'),
    });
    assertNoSecretInOutput(run, [TOKEN, PAT]);
    assert.notStrictEqual(run.result?.result, 'Succeeded', explain(run));
    const report = JSON.parse(fs.readFileSync(reportPath, 'utf8'));
    const by = (name: string) => report.repositories.find((r: { repository: string }) => r.repository === name);
    for (const name of ['api', 'Team Alpha.wiki']) {
      assert.strictEqual(by(name)?.status, 'failed', JSON.stringify(by(name)));
      assert.match(by(name).details, /localhost:\d+.*trustedHosts/);
    }
    assert.strictEqual(by('assets')?.status, 'identical');
    assert.deepStrictEqual(otherHost().map((r) => `${r.method} ${r.url}`), [], 'no request reached the other host');
  });

  it('refuses a trustedHosts entry that is not a host name before any request', async () => {
    standin.clearLog();
    const run = await runTask(BACKUP, {
      inputs: { organizationUrl: standin.orgUrl, destination: 'folder', folderPath: tmpDir('hosts-bad'), trustedHosts: 'https://tfs.contoso.com/tfs' },
      orgUrl: standin.orgUrl, token: TOKEN, tempDir: tmpDir('run'),
    });
    assert.strictEqual(run.result?.result, 'Failed');
    assert.match(run.result!.message, /^Input 'trustedHosts': 'https:\/\/tfs\.contoso\.com\/tfs' is not a host name/);
    assert.deepStrictEqual(standin.requests, []);
  });

  it('RepoRestore refuses to push to a target whose clone URL is on a host nobody named', async () => {
    // A backup of api (on 127.0.0.1) to restore from.
    const folder = tmpDir('hosts-restore');
    const backup = await runTask(BACKUP, {
      inputs: { organizationUrl: standin.orgUrl, destination: 'folder', folderPath: folder, repositories: 'Team Alpha/assets' }, orgUrl: standin.orgUrl, token: TOKEN, tempDir: tmpDir('run'),
    });
    assert.strictEqual(backup.result?.result, 'Succeeded', explain(backup));
    // The empty target repository exists, reported on the other host.
    const target = standin.addRepo(corpus.alpha, 'restore target elsewhere');
    standin.setRemoteHost(target, 'localhost');
    standin.clearLog();
    const run = await runTask(RESTORE, {
      inputs: { organizationUrl: standin.orgUrl, source: 'folder', folderPath: folder, repository: 'Team Alpha/assets', targetProject: 'Team Alpha', targetRepository: 'restore target elsewhere' },
      orgUrl: standin.orgUrl, token: TOKEN, tempDir: tmpDir('run'),
    });
    assertNoSecretInOutput(run, [TOKEN, PAT]);
    assert.strictEqual(run.result?.result, 'Failed', explain(run));
    assert.match(run.result!.message, /localhost:\d+.*trustedHosts/);
    assert.deepStrictEqual(otherHost().map((r) => `${r.method} ${r.url}`), [], 'no request reached the other host');
  });
});


// RepoBackup@1 end to end: the bundled task run as the agent runs it, against the Azure DevOps stand-in
// (REST + git http-backend + LFS), real git and git-lfs, and Azurite. Content is proven, not just presence.
import assert from 'assert';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { AzuriteHandle, startAzurite } from './harness/azurite';
import {
  allFileBytes, assertArchiveMatches, assertNoSecretInBytes, assertNoSecretInOutput, assertNoSecretInUrls, Manifest,
  manifests, readContainer, readFolder, sha256, StoredFile,
} from './harness/checks';
import { buildStandardCorpus, CorpusRepo, StandardCorpus } from './harness/corpus';
import { DevOpsStandIn } from './harness/devops-standin';
import { runTask, TaskRun, HARNESS_RUN_DATE } from './harness/run-task';
import { cleanupAll, tmpDir } from './harness/util';

const ENTRY = path.resolve(__dirname, '../../tasks/RepoBackup/RepoBackupV1/dist/index.js');
const TOKEN = `canaryJobToken${randomBytes(12).toString('hex')}`;
const PAT = `canarypat${randomBytes(20).toString('hex')}`;

describe('RepoBackup@1 end to end', function () {
  this.timeout(180_000);
  let standin: DevOpsStandIn;
  let azurite: AzuriteHandle;
  let corpus: StandardCorpus;
  let containerCount = 0;

  before(async () => {
    standin = await DevOpsStandIn.start({ org: 'contoso', root: tmpDir('standin'), tokens: { bearer: [TOKEN], pat: [PAT] } });
    corpus = await buildStandardCorpus(standin);
    azurite = await startAzurite();
  });

  after(async () => {
    await standin?.stop();
    await azurite?.stop();
    await cleanupAll();
  });

  /** A fresh container and its create+write SAS; the SAS signature joins the secrets every check scans for. */
  async function container() {
    const name = `backups${++containerCount}`;
    const client = await azurite.createContainer(name);
    const sasUrl = azurite.containerSasUrl(name, 'cw');
    const sig = new URL(sasUrl).searchParams.get('sig')!;
    return { client, sasUrl, sig };
  }

  async function backup(inputs: Record<string, string>, opts: { variables?: Record<string, string>; secrets?: string[] } = {}): Promise<TaskRun> {
    const run = await runTask(ENTRY, { inputs, orgUrl: standin.orgUrl, token: TOKEN, tempDir: tmpDir('run'), variables: opts.variables });
    assertNoSecretInOutput(run, [TOKEN, PAT, ...(opts.secrets ?? [])]);
    return run;
  }

  const byName = (repo: CorpusRepo) => `${repo.project}/${repo.name}`;
  const expectedOk = () => corpus.all.filter((r) => !r.disabled);

  async function assertStoredRun(files: Map<string, StoredFile>, manifest: Manifest, secrets: string[], format: 'zip' | 'tar.gz') {
    for (const source of expectedOk()) {
      const entry = manifest.repositories.find((e) => e.id === source.repo.id);
      assert.ok(entry, `manifest lists ${byName(source)}`);
      assert.strictEqual(entry.status, 'ok', `${byName(source)}: ${entry.error}`);
      assert.strictEqual(entry.project, source.project);
      assert.strictEqual(entry.repository, source.name);
      assert.ok(entry.archive!.endsWith(format === 'zip' ? '.zip' : '.tar.gz'));
      const file = files.get(entry.archive!);
      assert.ok(file, `archive ${entry.archive} stored`);
      assert.strictEqual(entry.sha256, sha256(file.bytes), 'manifest sha256 = stored bytes');
      assert.strictEqual(entry.size, file.bytes.length);
      assert.strictEqual(entry.refs, Object.keys(source.refs).length);
      assert.strictEqual(entry.lfsObjects, new Set(source.lfs.map((l) => l.oid)).size);
      const dir = await assertArchiveMatches(file.bytes, entry.archive!, source);
      assertNoSecretInBytes(`archive ${entry.archive}`, [file.bytes, ...allFileBytes(dir)], secrets);
    }
    const disabled = manifest.repositories.find((e) => e.id === corpus.repos.disabled.repo.id);
    assert.strictEqual(disabled?.status, 'skipped');
    assert.match(disabled!.error!, /disabled/);
  }

  it('backs up every repository of the organization to Blob with default inputs, content proven', async () => {
    const { client, sasUrl, sig } = await container();
    standin.clearLog();
    const run = await backup({ sasUrl }, { secrets: [sig] });
    assert.strictEqual(run.result?.result, 'Succeeded', run.stdout);
    assert.match(run.result!.message, /5 backed up, 0 failed, 1 skipped/);

    const files = await readContainer(client);
    const [manifest] = manifests(files);
    assert.ok(manifest, `a manifest among ${[...files.keys()]}`);
    assert.strictEqual(manifest.run.folder, `contoso/${HARNESS_RUN_DATE}/1234.1`);
    assert.ok(files.has(`manifests/${manifest.run.folder}/manifest.json`));
    assert.strictEqual(manifest.run.archives, `archives/${manifest.run.folder}`);
    assert.strictEqual(manifest.run.manifests, `manifests/${manifest.run.folder}`);
    assert.strictEqual(manifest.repositories.length, corpus.all.length, 'wiki included, disabled listed');
    await assertStoredRun(files, manifest, [TOKEN, PAT, sig], 'zip');

    // Blob metadata carries the archive hash and ids; nothing else is in the container.
    for (const e of manifest.repositories.filter((r) => r.status === 'ok')) {
      const meta = files.get(e.archive!)!.metadata;
      assert.strictEqual(meta.sha256, e.sha256);
      assert.strictEqual(meta.repositoryid, e.id);
      assert.strictEqual(decodeURIComponent(meta.project), e.project);
    }
    assert.strictEqual(files.size, 1 + 5);
    assertNoSecretInBytes('manifest', [...files.values()].filter((f) => f.name.endsWith('.json')).map((f) => f.bytes), [TOKEN, PAT, sig]);
    assertNoSecretInBytes('blob metadata', [...files.values()].map((f) => Buffer.from(JSON.stringify(f.metadata))), [TOKEN, PAT, sig]);
    assertNoSecretInUrls('the Azure DevOps stand-in', standin.requests.map((r) => r.url), [TOKEN, PAT, sig]);
    assert.ok(standin.requests.some((r) => r.route === 'lfs'), 'LFS objects were fetched over the batch API');
    assert.ok(standin.requests.every((r) => r.authScheme === undefined || r.authScheme.toLowerCase() === 'bearer'), 'the job token goes as Bearer');

    // The agent gets progress, a summary file and one log line per repository.
    assert.ok(run.commands.some((c) => c.command === 'task.setprogress'));
    const summary = run.commands.find((c) => c.command === 'task.uploadsummary');
    assert.ok(summary && fs.existsSync(summary.message));
    const md = fs.readFileSync(summary.message, 'utf8');
    assert.match(md, /5 backed up, 0 failed, 1 skipped/);
    assert.match(md, /naïve repo/);
    for (const r of expectedOk()) assert.ok(run.lines.some((l) => l.includes(`${byName(r)}: ok,`)), `log line for ${byName(r)}`);
    // The mirrors' temp folders are gone.
    const agentTemp = path.dirname(summary.message);
    assert.deepStrictEqual(fs.readdirSync(agentTemp).filter((n) => n.startsWith('repobackup-') && !n.endsWith('.md')), []);
  });

  it('backs up into a folder as tar.gz with include and exclude filters, and a PAT', async () => {
    const folder = tmpDir('dest');
    standin.clearLog();
    const run = await backup({
      authType: 'pat', personalAccessToken: PAT, destination: 'folder', folderPath: folder, archiveFormat: 'tar.gz',
      repositories: 'team alpha/*\nÉquipe Bêta/*\n!*/empty\n!*/*.wiki',
    });
    assert.strictEqual(run.result?.result, 'Succeeded', run.stdout);
    const files = readFolder(folder);
    const [manifest] = manifests(files);
    const statuses = Object.fromEntries(manifest.repositories.map((e) => [e.repository, e.status]));
    assert.deepStrictEqual(statuses, { api: 'ok', assets: 'ok', disabled: 'skipped', 'naïve repo': 'ok' });
    for (const e of manifest.repositories.filter((r) => r.status === 'ok')) {
      const source = corpus.all.find((c) => c.repo.id === e.id)!;
      const file = files.get(e.archive!)!;
      assert.strictEqual(sha256(file.bytes), e.sha256);
      assert.strictEqual(files.get(`${e.archive}.sha256`)?.bytes.toString(), `${e.sha256}  ${path.basename(e.archive!)}\n`);
      await assertArchiveMatches(file.bytes, e.archive!, source);
    }
    assert.deepStrictEqual([...files.keys()].filter((k) => k.includes('.partial')), [], 'no partial files left');
    const gitRequests = standin.requests.filter((r) => r.route !== 'rest');
    assert.ok(gitRequests.length > 0 && gitRequests.every((r) => r.authScheme?.toLowerCase() === 'basic'), 'a PAT goes as Basic');
  });

  it('dry run lists the plan, clones and uploads nothing', async () => {
    const { client } = await container();
    const sasUrl = azurite.containerSasUrl(client.containerName, 'cw');
    standin.clearLog();
    const run = await backup({ sasUrl, dryRun: 'true' }, { secrets: [new URL(sasUrl).searchParams.get('sig')!] });
    assert.strictEqual(run.result?.result, 'Succeeded', run.stdout);
    assert.match(run.result!.message, /Dry run: 5 repositories would be backed up, 1 skipped/);
    assert.ok(run.lines.some((l) => l.includes('Would back up Team Alpha/api')));
    assert.deepStrictEqual(standin.requests.filter((r) => r.route !== 'rest'), [], 'no git or LFS request');
    assert.strictEqual((await readContainer(client)).size, 0);
  });

  it('shards the organization across 3 parallel jobs: every repository exactly once', async () => {
    const folder = tmpDir('shards');
    const seen = new Map<string, number>();
    for (let position = 1; position <= 3; position++) {
      const run = await backup({ destination: 'folder', folderPath: folder, includeLfs: 'false', verify: 'false' },
        { variables: { 'System.JobPositionInPhase': String(position), 'System.TotalJobsInPhase': '3', 'System.ParallelExecutionType': 'MultiMachine' } });
      assert.strictEqual(run.result?.result, 'Succeeded', run.stdout);
    }
    const all = manifests(readFolder(folder));
    assert.deepStrictEqual(all.map((m) => m.run.shard.position).sort(), [1, 2, 3]);
    for (const m of all) for (const e of m.repositories) seen.set(e.id, (seen.get(e.id) ?? 0) + 1);
    assert.deepStrictEqual([...seen.keys()].sort(), corpus.all.map((r) => r.repo.id).sort(), 'union = every repository');
    assert.ok([...seen.values()].every((n) => n === 1), 'no repository in two shards');
  });

  it('finishes every repository when one fails, and reports it per onRepoFailure', async () => {
    // The server lost an LFS object of "assets": that repository fails (its git data is still stored), the rest succeed.
    const folder = tmpDir('fail');
    const assets = corpus.repos.assets;
    const lost = assets.lfs.find((l) => l.branch !== assets.defaultBranch) ?? assets.lfs[0];
    const content = fs.readFileSync(standin.lfsObjectPath(assets.repo, lost.oid));
    standin.deleteLfsObject(assets.repo, lost.oid);
    try {
      const run = await backup({ destination: 'folder', folderPath: folder, onRepoFailure: 'warn', includeWikis: 'false' });
      assert.strictEqual(run.result?.result, 'SucceededWithIssues', run.stdout);
      assert.match(run.result!.message, /3 backed up, 1 failed, 1 skipped: Team Alpha\/assets/);
      const files = readFolder(folder);
      const [manifest] = manifests(files);
      const entry = manifest.repositories.find((e) => e.id === assets.repo.id)!;
      assert.strictEqual(entry.status, 'failed');
      assert.deepStrictEqual(entry.missingLfsObjects, [lost.oid]);
      assert.match(entry.error!, new RegExp(`1 LFS object\\(s\\) are missing on the server \\(${lost.oid}\\)`));
      assert.ok(entry.archive && files.has(entry.archive), 'the git data of the failed repository is still stored');
      assert.strictEqual(manifest.repositories.filter((e) => e.status === 'ok').length, 3);
      assert.ok(run.commands.some((c) => c.command === 'task.issue' && c.props.type === 'error' && c.message.includes('Team Alpha/assets: FAILED')));

      const strict = await backup({ destination: 'folder', folderPath: tmpDir('fail2'), repositories: 'Team Alpha/assets' });
      assert.strictEqual(strict.result?.result, 'Failed', 'onRepoFailure: fail (the default) fails the task');
    } finally {
      assert.strictEqual(standin.putLfsObject(assets.repo, content), lost.oid);
    }
  });

  describe('bad input fails before any work, naming the input', () => {
    const future = new Date(Date.now() + 86_400_000).toISOString().slice(0, 19) + 'Z';
    const sasFor = (q: string, p = '/devstoreaccount1/c') => `http://127.0.0.1:10000${p}?${q}`;
    const cases: Array<[string, Record<string, string>, RegExp, Record<string, string>?]> = [
      ['organizationUrl not a URL', { organizationUrl: 'not a url', sasUrl: sasFor(`sv=1&sr=c&sp=cw&se=${future}&sig=x`) }, /organizationUrl/],
      ['organizationUrl a project URL', { organizationUrl: 'https://dev.azure.com/contoso/Team%20Alpha/', sasUrl: sasFor(`sv=1&sr=c&sp=cw&se=${future}&sig=x`) }, /organizationUrl.*not a project/],
      ['sasUrl empty', {}, /Input 'sasUrl': is empty/],
      ['sasUrl not a URL', { sasUrl: 'backups' }, /sasUrl.*not a URL/],
      ['sasUrl http to a remote host', { sasUrl: `http://acct.blob.core.windows.net/c?sv=1&sr=c&sp=cw&se=${future}&sig=x` }, /sasUrl.*https/],
      ['sasUrl without sig', { sasUrl: sasFor(`sv=1&sr=c&sp=cw&se=${future}`) }, /sasUrl.*signature/],
      ['sasUrl service-scoped', { sasUrl: sasFor(`sv=1&ss=b&srt=sco&sp=cw&se=${future}&sig=x`) }, /sasUrl.*account SAS/],
      ['sasUrl blob-scoped', { sasUrl: sasFor(`sv=1&sr=b&sp=cw&se=${future}&sig=x`, '/devstoreaccount1/c/x.zip') }, /sasUrl.*sr=c/],
      ['sasUrl a blob URL', { sasUrl: sasFor(`sv=1&sr=c&sp=cw&se=${future}&sig=x`, '/devstoreaccount1/c/x.zip') }, /sasUrl.*points at a blob/],
      ['sasUrl read-only', { sasUrl: sasFor(`sv=1&sr=c&sp=rl&se=${future}&sig=x`) }, /sasUrl.*needs w \(write\); w is missing/],
      ['sasUrl expired', { sasUrl: sasFor('sv=1&sr=c&sp=cw&se=2020-01-01T00:00:00Z&sig=x') }, /sasUrl.*expired/],
      ['repositories invalid', { destination: 'folder', folderPath: '/tmp', repositories: 'api' }, /repositories/],
      ['concurrency 0', { destination: 'folder', folderPath: '/tmp', concurrency: '0' }, /concurrency.*too small/],
      ['concurrency -1', { destination: 'folder', folderPath: '/tmp', concurrency: '-1' }, /concurrency.*too small/],
      ['concurrency abc', { destination: 'folder', folderPath: '/tmp', concurrency: 'abc' }, /concurrency.*whole number/],
      ['folderPath missing', { destination: 'folder' }, /folderPath.*empty/],
      ['folderPath does not exist', { destination: 'folder', folderPath: '/nonexistent/backups' }, /folderPath.*does not exist/],
      ['folderPath a file', { destination: 'folder', folderPath: '/etc/hostname' }, /folderPath.*not a folder/],
      ['archiveFormat unknown', { destination: 'folder', folderPath: '/tmp', archiveFormat: 'rar' }, /archiveFormat.*'rar'/],
      ['accessTier unknown', { sasUrl: sasFor(`sv=1&sr=c&sp=cw&se=${future}&sig=x`), accessTier: 'Frozen' }, /accessTier.*'Frozen'/],
      ['authType unknown', { authType: 'kerberos' }, /authType/],
      ['pat empty', { authType: 'pat', destination: 'folder', folderPath: '/tmp' }, /personalAccessToken.*empty/],
      ['destination unknown', { destination: 'ftp' }, /destination.*'ftp'/],
    ];
    for (const [what, inputs, re] of cases) {
      it(what, async () => {
        standin.clearLog();
        const before = azurite.requestUrls().length;
        const run = await backup(inputs, { secrets: ['x'].filter(() => false) });
        assert.strictEqual(run.result?.result, 'Failed', run.stdout);
        assert.match(run.result!.message, re);
        // Refused before any work: no request anywhere (below). The time is printed, not bounded (loaded machines vary).
        console.log(`        refused in ${run.durationMs} ms`);
        assert.deepStrictEqual(standin.requests, [], 'no request reached Azure DevOps');
        assert.strictEqual(azurite.requestUrls().length, before, 'no request reached Blob storage');
        assert.ok(!/\n\s+at /.test(run.result!.message), 'no stack trace as the message');
      });
    }

    it('concurrency 10000 is capped with a warning, not refused', async () => {
      const run = await backup({ destination: 'folder', folderPath: tmpDir('cap'), concurrency: '10000', dryRun: 'true' });
      assert.strictEqual(run.result?.result, 'Succeeded', run.stdout);
      assert.ok(run.commands.some((c) => c.command === 'task.issue' && c.props.type === 'warning' && /concurrency.*using 64/.test(c.message)));
    });

    it('a filter naming a project the token cannot see is a gap: Failed, saying so', async () => {
      const run = await backup({ destination: 'folder', folderPath: tmpDir('none'), repositories: 'Nope/*' });
      assert.strictEqual(run.result?.result, 'Failed', run.stdout);
      assert.match(run.result!.message, /INCOMPLETE: .*'Nope' that the job access token \(System\.AccessToken\) cannot see/);
    });

    it('a glob that matches no repository ends SucceededWithIssues with a warning', async () => {
      const run = await backup({ destination: 'folder', folderPath: tmpDir('none'), repositories: '*/nope-*' });
      assert.strictEqual(run.result?.result, 'SucceededWithIssues', run.stdout);
      assert.ok(run.commands.some((c) => c.command === 'task.issue' && /matches none of the/.test(c.message)), 'says the filter matches nothing');
    });

    it('a wrong token fails with what to do, after one REST call and no git', async () => {
      standin.clearLog();
      const run = await runTask(ENTRY, { inputs: { destination: 'folder', folderPath: tmpDir('401') }, orgUrl: standin.orgUrl, token: 'wrong-token', tempDir: tmpDir('run') });
      assert.strictEqual(run.result?.result, 'Failed');
      assert.match(run.result!.message, /refused the job access token.*\(401\)\. Make sure/);
      assert.deepStrictEqual(standin.requests.filter((r) => r.route !== 'rest'), []);
    });
  });
});

// RepoRestore@1 mode: verify (the restore drill), run as the agent runs it against the stand-in. A backup of five
// repositories, then changes on the live side: one untouched, one moved forward, one force-pushed, one deleted, and
// one archive with a flipped byte. The drill must give exactly those five statuses, push nothing, and end Failed
// (a corrupt archive); without the corrupt one it ends SucceededWithIssues. Also the Archive access tier, on Azurite.
import * as assert from 'assert';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { AzuriteHandle, startAzurite } from './harness/azurite';
import { populate } from './harness/corpus';
import { DevOpsStandIn, StandInRepo } from './harness/devops-standin';
import { runTask, TaskRun } from './harness/run-task';
import { authEnv, cleanupAll, git, tmpDir } from './harness/util';

const ROOT = path.resolve(__dirname, '..', '..');
const BACKUP = path.join(ROOT, 'tasks/RepoBackup/RepoBackupV1/dist/index.js');
const RESTORE = path.join(ROOT, 'tasks/RepoRestore/RepoRestoreV1/dist/index.js');
const TOKEN = `canaryjob${crypto.randomBytes(16).toString('hex')}`;

describe('RepoRestore@1 mode: verify (restore drill)', function () {
  this.timeout(120_000);
  let standin: DevOpsStandIn;
  let azurite: AzuriteHandle;
  let folder: string;
  const repos: Record<string, StandInRepo> = {};
  const runs: TaskRun[] = [];
  const sasUrls: string[] = [];

  const explain = (run: TaskRun) => `result ${JSON.stringify(run.result)}\n--- stdout\n${run.stdout.slice(-5000)}\n--- stderr\n${run.stderr.slice(-1500)}`;
  async function task(entry: string, inputs: Record<string, string>, variables: Record<string, string> = {}): Promise<TaskRun> {
    const run = await runTask(entry, {
      inputs: { organizationUrl: standin.orgUrl, ...inputs }, orgUrl: standin.orgUrl, token: TOKEN, tempDir: tmpDir('run'), variables,
      env: { NODE_PATH: '', NODE_OPTIONS: '' }, timeoutMs: 90_000,
    });
    runs.push(run);
    return run;
  }
  const env = () => authEnv(`Bearer ${TOKEN}`);

  /** A working clone of `repo` with a new commit on `branch`, pushed (optionally forced onto `base`). */
  async function commitAndPush(repo: StandInRepo, file: string, opts: { newBranch?: string } = {}): Promise<void> {
    const work = tmpDir('work');
    await git(['clone', '--quiet', repo.cloneUrl, work], { env: env() });
    fs.writeFileSync(path.join(work, file), `${file} ${Date.now()}\n`);
    await git(['add', file], { cwd: work });
    await git(['-c', 'user.name=T', '-c', 'user.email=t@example.com', 'commit', '--quiet', '-m', `add ${file}`], { cwd: work });
    await git(['push', '--quiet', 'origin', 'HEAD:refs/heads/main', ...(opts.newBranch ? [`HEAD:refs/heads/${opts.newBranch}`] : [])], { cwd: work, env: env() });
  }

  before(async function () {
    [standin, azurite] = await Promise.all([DevOpsStandIn.start({ org: 'contoso', root: tmpDir('standin'), tokens: { bearer: [TOKEN] } }), startAzurite()]);
    const drill = standin.addProject('Drill');
    for (const name of ['same', 'forward', 'forced', 'gone', 'flipped']) {
      repos[name] = standin.addRepo(drill, name);
      await populate(standin, repos[name], {
        commits: [
          { message: 'one', files: { 'a.txt': `${name} 1\n` } },
          { message: 'two', files: { 'a.txt': `${name} 2\n`, 'big.bin': { lfs: crypto.randomBytes(2000) } } },
          { branch: 'topic', from: 'main', message: 'topic', files: { 't.txt': 't\n' } },
        ],
        tags: [{ name: 'v1', target: 'main', message: 'v1' }],
      });
    }
    folder = tmpDir('backups');
    await azurite.createContainer('drill');
    const sas = azurite.containerSasUrl('drill', 'cw');
    sasUrls.push(sas);
    const [toFolder, toBlob] = await Promise.all([
      task(BACKUP, { destination: 'folder', folderPath: folder, repositories: 'Drill/*' }, { 'Build.BuildId': '41' }),
      task(BACKUP, { destination: 'azureBlob', sasUrl: sas, repositories: 'Drill/same\nDrill/forward', archiveFormat: 'tar.gz' }, { 'Build.BuildId': '42' }),
    ]);
    assert.strictEqual(toFolder.result?.result, 'Succeeded', explain(toFolder));
    assert.strictEqual(toBlob.result?.result, 'Succeeded', explain(toBlob));

    // The live side moves on.
    await commitAndPush(repos.forward, 'later.txt', { newBranch: 'feature/new' });
    const work = tmpDir('force');
    await git(['clone', '--quiet', repos.forced.cloneUrl, work], { env: env() });
    await git(['push', '--quiet', '--force', 'origin', 'HEAD~1:refs/heads/main'], { cwd: work, env: env() });
    standin.deleteRepo(repos.gone);
    // One byte flipped in the middle of the archive (its .sha256 file and the manifest keep the original hash).
    const manifestFile = fs.readdirSync(path.join(folder, 'manifests'), { recursive: true }).map(String).find((f) => f.endsWith('manifest.json'))!;
    const manifest = JSON.parse(fs.readFileSync(path.join(folder, 'manifests', manifestFile), 'utf8'));
    const flipped = manifest.repositories.find((r: { repository: string }) => r.repository === 'flipped').archive;
    const file = path.join(folder, ...flipped.split('/'));
    const bytes = fs.readFileSync(file);
    bytes[Math.floor(bytes.length / 2)] ^= 0x10;
    fs.writeFileSync(file, bytes);
  });

  after(async () => {
    await standin?.stop();
    await azurite?.stop();
    await cleanupAll();
  });

  it('gives identical, behind, diverged, deleted and corrupt, pushes nothing, ends Failed; the JSON report lists every repository', async () => {
    standin.clearLog();
    const reportPath = path.join(tmpDir('report'), 'drill', 'verify.json');
    const run = await task(RESTORE, { mode: 'verify', source: 'folder', folderPath: folder, repository: 'Drill/*', reportPath });
    assert.strictEqual(run.result?.result, 'Failed', explain(run));
    assert.match(run.result!.message, /^1 of 5 archives are corrupt \(Drill\/flipped\)/);
    const report = JSON.parse(fs.readFileSync(reportPath, 'utf8'));
    const statuses = Object.fromEntries(report.repositories.map((r: { repository: string; status: string }) => [r.repository, r.status]));
    assert.deepStrictEqual(statuses, { same: 'identical', forward: 'behind', forced: 'diverged', gone: 'deleted', flipped: 'corrupt' });
    for (const r of report.repositories) {
      assert.deepStrictEqual(Object.keys(r).slice(0, 6), ['project', 'repository', 'archive', 'status', 'refs', 'details']);
      assert.ok(r.archive && typeof r.details === 'string' && r.details.length > 0, JSON.stringify(r));
    }
    const by = (name: string) => report.repositories.find((r: { repository: string }) => r.repository === name);
    assert.deepStrictEqual(by('forward').refs.forward, ['refs/heads/main']);
    assert.deepStrictEqual(by('forward').refs.added, ['refs/heads/feature/new']);
    assert.deepStrictEqual(by('forced').refs.rewritten, ['refs/heads/main']);
    assert.match(by('forced').details, /rewritten since the backup: refs\/heads\/main/);
    assert.match(by('gone').details, /THE LIVE REPOSITORY IS GONE/);
    assert.match(by('flipped').details, /is corrupt or was changed: its SHA-256 is/);
    assert.strictEqual(by('same').refs.equal, 3);
    assert.strictEqual(by('same').refs.pullRefs.inArchive, 0);
    // Nothing created or pushed: no POST, no receive-pack, no LFS upload.
    const writes = standin.requests.filter((r) => r.method === 'POST' && /\/_apis\//.test(r.url) || /git-receive-pack/.test(r.url) || r.method === 'PUT');
    assert.deepStrictEqual(writes.map((r) => `${r.method} ${r.url}`), []);
    const summary = fs.readFileSync(run.commands.find((c) => c.command === 'task.uploadsummary')!.message, 'utf8');
    for (const s of ['identical', 'behind', 'diverged', 'deleted', 'corrupt']) assert.ok(summary.includes(` ${s} |`), `summary lists ${s}`);
    assert.match(summary, /1 live repository is gone/);
    assert.ok(run.lines.some((l) => /Drill\/gone: deleted — THE LIVE REPOSITORY IS GONE/.test(l)), 'the log says it loudly');
    console.log(`      drill over 5 archives: ${JSON.stringify(statuses)}; ${standin.requests.length} requests to the stand-in`);
  });

  it('without the corrupt archive ends SucceededWithIssues (diverged, deleted); only behind/identical ends Succeeded', async () => {
    const issues = await task(RESTORE, { mode: 'verify', source: 'folder', folderPath: folder, repository: 'Drill/*\n!Drill/flipped' });
    assert.strictEqual(issues.result?.result, 'SucceededWithIssues', explain(issues));
    assert.match(issues.result!.message, /4 archives: 1 identical, 1 behind, 1 diverged, 1 deleted\. 1 live repository is gone/);
    const clean = await task(RESTORE, { mode: 'verify', source: 'folder', folderPath: folder, repository: 'Drill/same\nDrill/forw*', concurrency: '1' });
    assert.strictEqual(clean.result?.result, 'Succeeded', explain(clean));
    assert.match(clean.result!.message, /Verified 2 archives: 1 identical, 1 behind\./);
  });

  it('checks inputs before any request: archive is for mode restore, globs, concurrency, reportPath', async () => {
    standin.clearLog();
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ archive: 'a/b.zip' }, /^Input 'archive': is for mode: restore/],
      [{ repository: 'nodash' }, /^Input 'repository': 'nodash' has no '\/'/],
      [{ concurrency: '0' }, /^Input 'concurrency': 0 is too small/],
      [{ reportPath: folder }, /^Input 'reportPath': .* is a folder/],
      [{ mode: 'drill' }, /^Input 'mode': 'drill' is not one of 'restore', 'verify'/],
    ];
    const results = await Promise.all(cases.map(([inputs]) => task(RESTORE, { mode: 'verify', source: 'folder', folderPath: folder, ...inputs })));
    results.forEach((run, i) => {
      assert.strictEqual(run.result?.result, 'Failed', explain(run));
      assert.match(run.result!.message, cases[i][1]);
    });
    assert.deepStrictEqual(standin.requests.map((r) => r.url), []);
  });

  it('verifies from Blob storage; archives in the Archive tier are failed with the rehydrate command, manifests in it are named', async () => {
    const container = azurite.serviceClient().getContainerClient('drill');
    const names: string[] = [];
    for await (const b of container.listBlobsFlat()) names.push(b.name);
    const manifest = names.find((n) => n.endsWith('manifest.json'))!;
    const forward = names.find((n) => n.endsWith('/forward.tar.gz'))!;
    const sas = azurite.containerSasUrl('drill', 'rl');
    sasUrls.push(sas);
    const ok = await task(RESTORE, { mode: 'verify', source: 'azureBlob', sasUrl: sas });
    assert.strictEqual(ok.result?.result, 'Succeeded', explain(ok));
    assert.match(ok.result!.message, /Verified 2 archives: 1 identical, 1 behind\./);

    // Restore of an archived archive: exactly that, the blob, the command, how long.
    await container.getBlobClient(forward).setAccessTier('Archive');
    const restore = await task(RESTORE, { source: 'azureBlob', sasUrl: sas, repository: 'Drill/forward', targetProject: 'Drill', targetRepository: 'forward again' });
    assert.strictEqual(restore.result?.result, 'Failed', explain(restore));
    assert.ok(restore.result!.message.includes(`'${forward}' is in the Archive access tier`), restore.result!.message);
    assert.ok(restore.result!.message.includes(`az storage blob set-tier --account-name devstoreaccount1 --container-name drill --name ${forward} --tier Hot --rehydrate-priority Standard (up to 15 hours) or High (usually under 1 hour for blobs under 10 GB)`), restore.result!.message);
    assert.strictEqual(standin.findRepo('Drill', 'forward again'), undefined);
    const drill = await task(RESTORE, { mode: 'verify', source: 'azureBlob', sasUrl: sas });
    assert.strictEqual(drill.result?.result, 'SucceededWithIssues', explain(drill));
    assert.match(drill.result!.message, /1 identical, 1 failed\. 1 could not be checked/);

    // Manifests archived too (an older layout): not "not listed … check the names", but why and how to rehydrate.
    await container.getBlobClient(manifest).setAccessTier('Archive');
    const lost = await task(RESTORE, { source: 'azureBlob', sasUrl: sas, repository: 'Drill/same', targetProject: 'Drill', targetRepository: 'same again' });
    assert.strictEqual(lost.result?.result, 'Failed', explain(lost));
    assert.match(lost.result!.message, /^'Drill\/same' was not found, but 1 of the 1 manifests in .* could not be read because they are in the Archive access tier \('manifests\/contoso\/.*manifest\.json'\).*az storage blob set-tier --account-name devstoreaccount1 --container-name drill --name .*manifest\.json --tier Hot/);
    assert.doesNotMatch(lost.result!.message, /Check the project and repository names/);
    const drillLost = await task(RESTORE, { mode: 'verify', source: 'azureBlob', sasUrl: sas });
    assert.strictEqual(drillLost.result?.result, 'Failed', explain(drillLost));
    assert.match(drillLost.result!.message, /^Manifest '.*manifest\.json' is in the Archive access tier.*set-tier/);
  });

  it('never shows the token or a SAS signature', () => {
    const secrets = [TOKEN, ...sasUrls.map((u) => new URL(u).searchParams.get('sig')!)];
    const leaks = runs.flatMap((run) => [...run.lines, ...run.stderr.split('\n')].filter((l) => secrets.some((s) => l.includes(s)) && !l.startsWith('##vso[task.setsecret]')));
    assert.deepStrictEqual(leaks, []);
  });
});

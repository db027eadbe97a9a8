// RepoRestore@1 round trips: the standard corpus is backed up by RepoBackup@1 and restored by RepoRestore@1, both
// run as the agent runs them (bundled entry, inputs in the environment), against the Azure DevOps stand-in and
// Azurite. Every restored repository must list the same refs as its source (minus refs/pull/*), and its LFS objects
// must come back from a fresh mirror clone + `git lfs fetch --all` with the right hashes.
import * as assert from 'assert';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { AzuriteHandle, startAzurite } from './harness/azurite';
import { buildStandardCorpus, CorpusRepo, populate, StandardCorpus } from './harness/corpus';
import { DevOpsStandIn } from './harness/devops-standin';
import { runTask, TaskRun } from './harness/run-task';
import { authEnv, cleanupAll, git, refMap, tmpDir } from './harness/util';
import { FakeHost } from './unit/fake-host';
import { planPush, newReport, runRestore } from '../tasks/RepoRestore/RepoRestoreV1/src/restore';
import { PUSH_REFSPEC } from '../tasks/RepoRestore/RepoRestoreV1/src/push';
import { readRestoreSettings, repositoryNameProblem } from '../tasks/RepoRestore/RepoRestoreV1/src/settings';
import { sourceFor } from '../tasks/RepoRestore/RepoRestoreV1/src/main';
import { DevOpsClient } from '../tasks/common/src/devops';
import { Git, parsePushPorcelain } from '../tasks/common/src/git';

const ROOT = path.resolve(__dirname, '..', '..');
const BACKUP = path.join(ROOT, 'tasks/RepoBackup/RepoBackupV1/dist/index.js');
const RESTORE = path.join(ROOT, 'tasks/RepoRestore/RepoRestoreV1/dist/index.js');
const TOKEN = `canaryjob${crypto.randomBytes(16).toString('hex')}`;
const PAT = `canarypat${crypto.randomBytes(24).toString('hex')}`.slice(0, 52);

const withoutPull = (refs: Record<string, string>) =>
  Object.fromEntries(Object.entries(refs).filter(([name]) => !name.startsWith('refs/pull/')));

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

function listFilesRecursive(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listFilesRecursive(p));
    else out.push(p);
  }
  return out;
}

describe('RepoRestore@1 round trip', function () {
  this.timeout(120_000);
  let standin: DevOpsStandIn;
  let azurite: AzuriteHandle;
  let corpus: StandardCorpus;
  let folder: string;
  /** Archive paths (relative to the root) by `project/repo`, from each backup's manifest. */
  const zipArchives = new Map<string, string>();
  const tarArchives = new Map<string, string>();
  const runs: Array<{ label: string; run: TaskRun }> = [];
  const sasUrls: string[] = [];
  /** Numbers for the report: per case, refs and LFS objects compared. */
  const compared: string[] = [];

  const sas = (permissions: string) => {
    const url = azurite.containerSasUrl('backups', permissions);
    sasUrls.push(url);
    return url;
  };
  const restorable = () => corpus.all.filter((r) => !r.disabled);
  const key = (r: CorpusRepo) => `${r.project}/${r.name}`;

  async function task(label: string, entry: string, inputs: Record<string, string>, variables: Record<string, string> = {}): Promise<TaskRun> {
    const run = await runTask(entry, {
      inputs, orgUrl: standin.orgUrl, token: TOKEN, tempDir: tmpDir('run'), variables,
      env: { NODE_PATH: '', NODE_OPTIONS: '' }, timeoutMs: 60_000,
    });
    runs.push({ label, run });
    return run;
  }
  const explain = (run: TaskRun) =>
    `result ${JSON.stringify(run.result)}, exit ${run.code}\n--- stdout\n${run.stdout.slice(-5000)}\n--- stderr\n${run.stderr.slice(-2000)}`;

  function restore(label: string, inputs: Record<string, string>): Promise<TaskRun> {
    return task(label, RESTORE, { organizationUrl: standin.orgUrl, ...inputs });
  }

  /** Refs equal minus refs/pull/*, default branch kept, LFS objects retrievable by a fresh clone with the right hashes. */
  async function assertRoundTrip(label: string, src: CorpusRepo, targetProject: string, targetName: string): Promise<void> {
    const target = standin.findRepo(targetProject, targetName);
    assert.ok(target, `${label}: target ${targetProject}/${targetName} was not created`);
    const want = withoutPull(await refMap(src.repo.gitDir));
    const got = await refMap(target.gitDir);
    assert.deepStrictEqual(got, want, `${label}: refs of ${targetProject}/${targetName} differ from ${key(src)}`);
    assert.strictEqual(standin.repoJson(target).defaultBranch, src.defaultBranch, `${label}: default branch`);
    const expectedLfs = [...new Set(src.lfs.map((l) => l.oid))].sort();
    let fetched: string[] = [];
    if (Object.keys(got).length > 0) {
      const dir = tmpDir('verify');
      const env = authEnv(`Bearer ${TOKEN}`, [['lfs.locksverify', 'false']]);
      await git(['clone', '--mirror', '--quiet', target.cloneUrl, dir], { env });
      await git(['lfs', 'fetch', '--all', 'origin'], { cwd: dir, env });
      const store = path.join(dir, 'lfs', 'objects');
      const files = fs.existsSync(store) ? listFilesRecursive(store) : [];
      for (const f of files) assert.strictEqual(sha256(fs.readFileSync(f)), path.basename(f), `${label}: LFS object ${f} has the wrong content`);
      fetched = files.map((f) => path.basename(f)).sort();
    }
    assert.deepStrictEqual(fetched, expectedLfs, `${label}: LFS objects of ${targetProject}/${targetName}`);
    const pulls = Object.keys(src.refs).filter((r) => r.startsWith('refs/pull/')).length;
    compared.push(`${label}: ${key(src)} → ${targetProject}/${targetName}: ${Object.keys(want).length} refs equal (${pulls} refs/pull skipped), ${fetched.length} LFS objects fetched and hashed`);
  }

  before(async function () {
    this.timeout(120_000);
    [standin, azurite] = await Promise.all([
      DevOpsStandIn.start({ org: 'contoso', root: tmpDir('standin'), tokens: { bearer: [TOKEN], pat: [PAT] } }),
      startAzurite(),
    ]);
    corpus = await buildStandardCorpus(standin);
    await azurite.createContainer('backups');
    folder = tmpDir('backup-folder');
    const [toBlob, toFolder] = await Promise.all([
      task('backup zip → blob', BACKUP, { organizationUrl: standin.orgUrl, destination: 'azureBlob', sasUrl: sas('cw'), archiveFormat: 'zip' }, { 'Build.BuildId': '1001' }),
      task('backup tar.gz → folder', BACKUP, { organizationUrl: standin.orgUrl, destination: 'folder', folderPath: folder, archiveFormat: 'tar.gz' }, { 'Build.BuildId': '1002' }),
    ]);
    for (const run of [toBlob, toFolder]) assert.ok(/^Succeeded/.test(run.result?.result ?? ''), explain(run));

    const container = azurite.serviceClient().getContainerClient('backups');
    let blobManifest: string | undefined;
    for await (const b of container.listBlobsFlat()) if (b.name.endsWith('/manifest.json')) blobManifest = b.name;
    assert.ok(blobManifest, 'no manifest in the container');
    const zipManifest = JSON.parse((await container.getBlobClient(blobManifest).downloadToBuffer()).toString('utf8'));
    const folderManifest = listFilesRecursive(folder).find((f) => f.endsWith(`${path.sep}manifest.json`));
    assert.ok(folderManifest, 'no manifest in the folder');
    const tarManifest = JSON.parse(fs.readFileSync(folderManifest, 'utf8'));
    for (const [m, map] of [[zipManifest, zipArchives], [tarManifest, tarArchives]] as const) {
      for (const e of m.repositories) if (e.status === 'ok') map.set(`${e.project}/${e.repository}`, e.archive);
    }
    for (const r of restorable()) {
      assert.ok(zipArchives.has(key(r)) && tarArchives.has(key(r)), `no archive of ${key(r)} in the backups`);
    }
  });

  after(async () => {
    if (process.env.RESTORE_TEST_DUMP) {
      for (const { label, run } of runs) {
        if (!new RegExp(process.env.RESTORE_TEST_DUMP).test(label)) continue;
        const summary = run.commands.find((c) => c.command === 'task.uploadsummary');
        console.log(`=== ${label}\n${run.lines.filter((l) => !l.startsWith('##vso[task.debug]')).join('\n')}\n--- summary\n${summary ? fs.readFileSync(summary.message, 'utf8') : '(none)'}`);
      }
    }
    await standin?.stop();
    await azurite?.stop();
    await cleanupAll();
    if (compared.length) console.log(`      compared:\n${compared.map((c) => `        ${c}`).join('\n')}`);
  });

  it('restores every repository from zip archives in Blob storage, found through the newest manifest', async () => {
    const listSas = sas('rl');
    const results = await Promise.all(restorable().map(async (r) => {
      const targetName = `${r.hidden ? 'Team Alpha wiki' : r.name} zip`;
      const run = await restore(`restore ${key(r)} (zip, blob)`, {
        source: 'azureBlob', sasUrl: listSas, repository: key(r), targetProject: r.project, targetRepository: targetName,
      });
      return { r, run, targetName };
    }));
    for (const { r, run, targetName } of results) {
      // The wiki comes back as a regular repository, with a warning saying so.
      assert.strictEqual(run.result?.result, r.hidden ? 'SucceededWithIssues' : 'Succeeded', explain(run));
      await assertRoundTrip('zip/blob', r, r.project, targetName);
    }
    const api = results.find((x) => x.r === corpus.repos.api)!.run;
    assert.match(api.result!.message, /Restored 6 refs and 0 LFS objects .*skipped 1 pull request ref/);
    assert.ok(api.lines.some((l) => /Skipping 1 pull request ref\(s\) \(refs\/pull\/\*\)/.test(l)), 'the log names the skipped pull request refs');
    const summary = api.commands.find((c) => c.command === 'task.uploadsummary');
    assert.ok(summary, 'a summary is attached');
  });

  it('restores every repository from tar.gz archives in a folder, named by path (one with a PAT)', async () => {
    const results = await Promise.all(restorable().map(async (r) => {
      const targetName = `${r.hidden ? 'Team Alpha wiki' : r.name} tgz`;
      const pat = r === corpus.repos.naive;
      const run = await restore(`restore ${key(r)} (tar.gz, folder${pat ? ', PAT' : ''})`, {
        source: 'folder', folderPath: folder, archive: tarArchives.get(key(r))!, targetProject: r.project, targetRepository: targetName,
        ...(pat ? { authType: 'pat', personalAccessToken: PAT } : {}),
      });
      return { r, run, targetName };
    }));
    for (const { r, run, targetName } of results) {
      assert.ok(/^Succeeded/.test(run.result?.result ?? ''), explain(run));
      await assertRoundTrip('tar.gz/folder', r, r.project, targetName);
    }
    assert.ok(standin.requests.some((r) => r.authScheme === 'Basic'), 'the PAT was used (Basic auth)');
    const assets = results.find((x) => x.r === corpus.repos.assets)!.run;
    assert.match(assets.result!.message, /Restored 2 refs and 3 LFS objects/);
  });

  it('pushes refs in chunks (engine run in-process with 2 refs per push)', async () => {
    const host = new FakeHost({
      organizationUrl: standin.orgUrl, source: 'folder', folderPath: folder, repository: 'Team Alpha/api',
      targetProject: 'Team Alpha', targetRepository: 'api chunked',
    }, { 'Agent.TempDirectory': tmpDir('chunk-temp') }, { token: TOKEN });
    const settings = await readRestoreSettings(host, 'test');
    const report = newReport();
    // Each push carries the refs created in the push repository just before it (one pattern refspec, not one per ref).
    const pushes: string[][] = [];
    const refspecs: string[][] = [];
    let staged: string[] = [];
    const gitTool = new Git(host);
    const push = gitTool.push.bind(gitTool);
    const updateRefs = gitTool.updateRefs.bind(gitTool);
    gitTool.updateRefs = (dir, commands) => {
      const created = commands.filter((c) => c.startsWith('create ')).map((c) => c.split(' ')[1]);
      if (created.length) staged = created;
      return updateRefs(dir, commands);
    };
    gitTool.push = (dir, remote, specs, env, signal) => { pushes.push(staged); refspecs.push(specs); return push(dir, remote, specs, env, signal); };
    await runRestore(settings, {
      log: host, progress: () => undefined, git: gitTool, source: sourceFor(settings),
      devops: new DevOpsClient(settings.organization.url, settings.credentials, host),
      gitEnv: (u) => settings.credentials.gitEnv(u), pushChunk: { maxRefs: 2, maxChars: 10_000 },
    }, report);
    assert.deepStrictEqual(pushes.map((p) => p.length), [1, 2, 2, 1], 'default branch alone, then chunks of 2');
    assert.deepStrictEqual(pushes[0], ['refs/heads/main']);
    assert.ok(refspecs.every((r) => r.length === 1 && r[0] === PUSH_REFSPEC), JSON.stringify(refspecs));
    assert.strictEqual(report.refs.pushed, 6);
    assert.ok(report.refs.verified);
    await assertRoundTrip('chunked', corpus.repos.api, 'Team Alpha', 'api chunked');
  });

  it('refuses an archive with one byte flipped, in a folder and in Blob storage; the target is not created', async () => {
    // Folder: a copy of the api archive and its .sha256 file, one byte flipped.
    const rel = `corrupt/${path.basename(tarArchives.get('Team Alpha/api')!)}`;
    const src = path.join(folder, ...tarArchives.get('Team Alpha/api')!.split('/'));
    fs.mkdirSync(path.join(folder, 'corrupt'), { recursive: true });
    const bytes = fs.readFileSync(src);
    bytes[Math.floor(bytes.length / 2)] ^= 0x01;
    fs.writeFileSync(path.join(folder, rel), bytes);
    fs.copyFileSync(`${src}.sha256`, path.join(folder, `${rel}.sha256`));
    // Blob: the api zip re-uploaded under another name with its metadata, one byte flipped.
    const container = azurite.serviceClient().getContainerClient('backups');
    const original = container.getBlobClient(zipArchives.get('Team Alpha/api')!);
    const props = await original.getProperties();
    const zip = await original.downloadToBuffer();
    zip[Math.floor(zip.length / 2)] ^= 0x80;
    await container.getBlockBlobClient('corrupt/api.zip').uploadData(zip, { metadata: props.metadata });

    standin.clearLog();
    const [fromFolder, fromBlob] = await Promise.all([
      restore('corrupt tar.gz (folder)', { source: 'folder', folderPath: folder, archive: rel, targetProject: 'Team Alpha', targetRepository: 'api corrupt folder' }),
      restore('corrupt zip (blob)', { source: 'azureBlob', sasUrl: sas('r'), archive: 'corrupt/api.zip', targetProject: 'Team Alpha', targetRepository: 'api corrupt blob' }),
    ]);
    for (const [run, name, from] of [[fromFolder, 'api corrupt folder', /\.sha256/], [fromBlob, 'api corrupt blob', /blob metadata/]] as const) {
      assert.strictEqual(run.result?.result, 'Failed', explain(run));
      assert.match(run.result!.message, /is corrupt or was changed: its SHA-256 is [0-9a-f]{64} but .* says [0-9a-f]{64}/);
      assert.match(run.result!.message, from);
      assert.match(run.result!.message, /target repository was not created/);
      assert.strictEqual(standin.findRepo('Team Alpha', name), undefined, `${name} must not exist`);
    }
    assert.deepStrictEqual(standin.requests.filter((r) => r.method === 'POST' || /git-receive-pack|info\/lfs/.test(r.url)).map((r) => `${r.method} ${r.url}`), [],
      'nothing was created or pushed');
  });

  it('refuses a non-empty target; allowNonEmpty adds the missing refs and keeps the existing ones', async () => {
    const before = await refMap(corpus.repos.naive.repo.gitDir);
    const refused = await restore('non-empty target', {
      source: 'folder', folderPath: folder, repository: 'Team Alpha/api', targetProject: 'Équipe Bêta', targetRepository: 'naïve repo',
    });
    assert.strictEqual(refused.result?.result, 'Failed', explain(refused));
    assert.match(refused.result!.message, /Target repository Équipe Bêta\/naïve repo already has 1 ref\(s\) .*refusing to restore into it.*allowNonEmpty/);
    assert.deepStrictEqual(await refMap(corpus.repos.naive.repo.gitDir), before, 'the target is unchanged');

    // A target that already has the default branch: the rest is added, main is "up to date".
    const partial = standin.addRepo(corpus.alpha, 'api partial');
    await git(['--git-dir', corpus.repos.api.repo.gitDir, 'push', '--quiet', partial.cloneUrl, 'refs/heads/main:refs/heads/main'], { env: authEnv(`Bearer ${TOKEN}`) });
    const allowed = await restore('allowNonEmpty', {
      source: 'azureBlob', sasUrl: sas('r'), archive: zipArchives.get('Team Alpha/api')!, targetProject: 'Team Alpha', targetRepository: 'api partial', allowNonEmpty: 'true',
    });
    assert.strictEqual(allowed.result?.result, 'Succeeded', explain(allowed));
    await assertRoundTrip('allowNonEmpty', corpus.repos.api, 'Team Alpha', 'api partial');

    // A target whose main went elsewhere: main is not overwritten, everything else is restored, the task fails.
    const diverged = standin.addRepo(corpus.alpha, 'api diverged');
    await git(['--git-dir', corpus.repos.api.repo.gitDir, 'push', '--quiet', diverged.cloneUrl, 'refs/heads/feature/login:refs/heads/main'], { env: authEnv(`Bearer ${TOKEN}`) });
    const theirs = (await refMap(diverged.gitDir))['refs/heads/main'];
    const clash = await restore('allowNonEmpty, diverged', {
      source: 'folder', folderPath: folder, archive: tarArchives.get('Team Alpha/api')!, targetProject: 'Team Alpha', targetRepository: 'api diverged', allowNonEmpty: 'true',
    });
    assert.strictEqual(clash.result?.result, 'Failed', explain(clash));
    assert.match(clash.result!.message, /^1 of 6 refs were not restored \(refs\/heads\/main: \[rejected\]/);
    const after = await refMap(diverged.gitDir);
    assert.strictEqual(after['refs/heads/main'], theirs, 'main was not overwritten');
    assert.deepStrictEqual({ ...after, 'refs/heads/main': 'x' }, { ...withoutPull(corpus.repos.api.refs), 'refs/heads/main': 'x' }, 'the other refs were restored');
  });

  it('refuses an archive without any stored checksum unless allowMissingChecksum is true', async () => {
    const rel = `nochecksum/${path.basename(tarArchives.get('Team Alpha/assets')!)}`;
    fs.mkdirSync(path.join(folder, 'nochecksum'), { recursive: true });
    fs.copyFileSync(path.join(folder, ...tarArchives.get('Team Alpha/assets')!.split('/')), path.join(folder, rel));
    const inputs = { source: 'folder', folderPath: folder, archive: rel, targetProject: 'Team Alpha', targetRepository: 'assets unverified' };
    const refused = await restore('no checksum', inputs);
    assert.strictEqual(refused.result?.result, 'Failed', explain(refused));
    assert.match(refused.result!.message, /No SHA-256 is stored .*allowMissingChecksum: true/);
    assert.strictEqual(standin.findRepo('Team Alpha', 'assets unverified'), undefined);
    const allowed = await restore('no checksum, allowed', { ...inputs, allowMissingChecksum: 'true' });
    assert.strictEqual(allowed.result?.result, 'SucceededWithIssues', explain(allowed));
    await assertRoundTrip('unverified', corpus.repos.assets, 'Team Alpha', 'assets unverified');
  });

  it('validates inputs before any request', async () => {
    standin.clearLog();
    const base = { source: 'azureBlob', targetProject: 'Team Alpha', targetRepository: 'x' };
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ ...base, sasUrl: sas('cw'), archive: 'a/b.zip' }, /^Input 'sasUrl': grants sp=cw; reading a backup needs r\b/],
      [{ ...base, sasUrl: sas('r'), repository: 'Team Alpha/api' }, /^Input 'sasUrl': grants sp=r; .*needs r and l/],
      [{ ...base, sasUrl: sas('r'), archive: 'a/b.zip', repository: 'Team Alpha/api' }, /^Input 'archive': is set together with manifest\/repository/],
      [{ ...base, sasUrl: sas('r'), archive: 'a/b.7z' }, /^Input 'archive': 'a\/b.7z' is not a .zip or .tar.gz archive/],
      [{ ...base, sasUrl: sas('r') }, /^Input 'repository': is empty and no archive is named/],
      [{ ...base, sasUrl: sas('rl'), repository: 'api' }, /^Input 'repository': 'api' is not <project>\/<repository>/],
      [{ ...base, sasUrl: sas('r'), archive: 'a/b.zip', targetRepository: '_bad:name' }, /^Input 'targetRepository': '_bad:name' contains ':'/],
      [{ source: 'folder', folderPath: path.join(folder, 'nope'), archive: 'a/b.zip', targetProject: 'Team Alpha', targetRepository: 'x' }, /^Input 'folderPath': .* does not exist/],
      [{ ...base, sasUrl: sas('r'), archive: 'a/b.zip', targetProject: '' }, /^Input 'targetProject': is empty/],
    ];
    const results = await Promise.all(cases.map(([inputs], i) => restore(`invalid input ${i}`, inputs)));
    results.forEach((run, i) => {
      assert.strictEqual(run.result?.result, 'Failed', explain(run));
      assert.match(run.result!.message, cases[i][1]);
    });
    assert.deepStrictEqual(standin.requests.map((r) => r.url), [], 'no request reached Azure DevOps');
  });

  it('fails clearly when the archive or the target project does not exist', async () => {
    const [missing, noProject] = await Promise.all([
      restore('missing archive', { source: 'azureBlob', sasUrl: sas('r'), archive: 'contoso/2000-01-01/1.1/Team Alpha/api.zip', targetProject: 'Team Alpha', targetRepository: 'never' }),
      restore('missing project', { source: 'folder', folderPath: folder, archive: tarArchives.get('Team Alpha/api')!, targetProject: 'No Such Project', targetRepository: 'never' }),
    ]);
    assert.strictEqual(missing.result?.result, 'Failed', explain(missing));
    assert.match(missing.result!.message, /^Input 'archive': 'contoso\/2000-01-01\/1.1\/Team Alpha\/api.zip' does not exist in Azure Blob container/);
    assert.strictEqual(noProject.result?.result, 'Failed', explain(noProject));
    assert.match(noProject.result!.message, /^Input 'targetProject': project 'No Such Project' does not exist/);
    assert.strictEqual(standin.findRepo('Team Alpha', 'never'), undefined);
  });

  it('restores a backup that lacked an LFS object, with a warning; the newest manifest that lists a repository is used', async () => {
    // An LFS object lost on the server before the backup: the backup records it and still stores the archive.
    const gap = standin.addRepo(corpus.alpha, 'lfs gap');
    const populated = await populate(standin, gap, {
      commits: [{ message: 'Two blobs', files: { 'kept.bin': { lfs: 'kept content' }, 'lost.bin': { lfs: 'lost content' } } }],
    });
    const lost = populated.lfs.find((l) => l.path === 'lost.bin')!.oid;
    const kept = populated.lfs.find((l) => l.path === 'kept.bin')!.oid;
    standin.deleteLfsObject(gap, lost);
    const backup = await task('backup lfs gap', BACKUP, {
      organizationUrl: standin.orgUrl, destination: 'folder', folderPath: folder, archiveFormat: 'zip', repositories: 'Team Alpha/lfs gap',
    }, { 'Build.BuildId': '1003' });
    assert.strictEqual(backup.result?.result, 'Failed', explain(backup));

    const [restored, older] = await Promise.all([
      restore('restore lfs gap', { source: 'folder', folderPath: folder, repository: 'Team Alpha/lfs gap', targetProject: 'Team Alpha', targetRepository: 'lfs gap restored' }),
      // Build 1003's manifest is newer but does not list this repository: build 1002's is used.
      restore('restore naive from an older manifest', { source: 'folder', folderPath: folder, repository: 'Équipe Bêta/NAÏVE REPO', targetProject: 'Équipe Bêta', targetRepository: 'naïve again' }),
    ]);
    assert.strictEqual(restored.result?.result, 'SucceededWithIssues', explain(restored));
    const warnings = restored.commands.filter((c) => c.command === 'task.issue' && c.props.type === 'warning').map((c) => c.message);
    assert.ok(warnings.some((w) => /records Team Alpha\/lfs gap as failed/.test(w)), warnings.join('\n'));
    assert.ok(warnings.some((w) => w.includes(lost) && /not in the archive and were not restored/.test(w)), warnings.join('\n'));
    const target = standin.findRepo('Team Alpha', 'lfs gap restored')!;
    assert.deepStrictEqual(await refMap(target.gitDir), await refMap(gap.gitDir));
    assert.ok(fs.existsSync(standin.lfsObjectPath(target, kept)), 'the LFS object the backup had was uploaded');
    assert.ok(!fs.existsSync(standin.lfsObjectPath(target, lost)));
    compared.push(`lfs gap: Team Alpha/lfs gap → Team Alpha/lfs gap restored: 1 ref equal, 1 of 2 LFS objects (the other was missing at backup time)`);

    assert.strictEqual(older.result?.result, 'Succeeded', explain(older));
    assert.ok(older.lines.some((l) => /Using manifest '.*\/1002\.1\/manifest\.json'.*newest of 2 that lists/.test(l)), older.stdout);
    await assertRoundTrip('older manifest', corpus.repos.naive, 'Équipe Bêta', 'naïve again');
  });

  it('never shows the token, the PAT or a SAS signature (log lines, stderr, request URLs)', () => {
    const secrets = [TOKEN, PAT, Buffer.from(`:${PAT}`).toString('base64')];
    for (const url of sasUrls) {
      const sig = new URL(url).searchParams.get('sig')!;
      secrets.push(sig, encodeURIComponent(sig));
    }
    assert.ok(runs.length > 20, `only ${runs.length} runs were scanned`);
    const leaks: string[] = [];
    for (const { label, run } of runs) {
      for (const line of [...run.lines, ...run.stderr.split(/\r?\n/)]) {
        if (!secrets.some((s) => line.includes(s))) continue;
        if (/^##vso\[task\.setsecret\]/.test(line)) continue;
        let shown = line;
        for (const s of secrets) shown = shown.split(s).join('<SECRET>');
        leaks.push(`${label}: ${shown}`);
      }
    }
    for (const { label, run } of runs) {
      for (const c of run.commands.filter((x) => x.command === 'task.uploadsummary')) {
        const text = fs.readFileSync(c.message, 'utf8');
        if (secrets.some((x) => text.includes(x))) leaks.push(`${label}: summary ${c.message}`);
      }
    }
    assert.deepStrictEqual(leaks, [], 'a secret appears in the log');
    const badUrls = standin.requests.map((r) => r.url).filter((u) => secrets.some((s) => u.includes(s)));
    assert.deepStrictEqual(badUrls, [], 'a secret in a request URL');
  });

  describe('pieces', () => {
    it('planPush: default branch alone first, then branches, tags, notes, other; bounded by count and characters', () => {
      const refs = ['refs/tags/v1', 'refs/heads/b', 'refs/notes/commits', 'refs/heads/main', 'refs/heads/a', 'refs/keep/x'];
      assert.deepStrictEqual(planPush(refs, 'refs/heads/main', { maxRefs: 2, maxChars: 1000 }),
        [['refs/heads/main'], ['refs/heads/a', 'refs/heads/b'], ['refs/tags/v1', 'refs/notes/commits'], ['refs/keep/x']]);
      const many = Array.from({ length: 5000 }, (_, i) => `refs/tags/t${String(i).padStart(5, '0')}`);
      const chunks = planPush(many, undefined, { maxRefs: 500, maxChars: 24_000 });
      assert.strictEqual(chunks.flat().length, 5000);
      for (const c of chunks) assert.ok(c.length <= 500 && c.reduce((n, r) => n + r.length * 2 + 2, 0) <= 24_000);
      assert.deepStrictEqual(planPush([], undefined, { maxRefs: 2, maxChars: 100 }), []);
    });

    it('parsePushPorcelain reads git push --porcelain', () => {
      const out = 'To http://x/_git/r\n*\trefs/heads/main:refs/heads/main\t[new branch]\n=\trefs/tags/v1:refs/tags/v1\t[up to date]\n!\trefs/heads/é:refs/heads/é\t[rejected] (non-fast-forward)\nDone\n';
      assert.deepStrictEqual(parsePushPorcelain(out), [
        { flag: '*', ref: 'refs/heads/main', summary: '[new branch]' },
        { flag: '=', ref: 'refs/tags/v1', summary: '[up to date]' },
        { flag: '!', ref: 'refs/heads/é', summary: '[rejected] (non-fast-forward)' },
      ]);
    });

    it('repositoryNameProblem follows the Azure Repos naming rules', () => {
      for (const ok of ['api', 'naïve repo', 'Team Alpha.wiki', 'a-b_c.d (zip)']) assert.strictEqual(repositoryNameProblem(ok), undefined, ok);
      for (const bad of ['_x', '.x', 'x.', 'a/b', 'a:b', 'a#b', 'CON', 'x'.repeat(65), 'a\u0001b']) assert.ok(repositoryNameProblem(bad), bad);
    });
  });
});

// incremental: true end to end: the bundled task against the Azure DevOps stand-in, real git and git-lfs, Azurite and a
// folder. A second run of an unchanged organization copies every archive server-side (no clone, no upload), and
// the run folder is still a complete snapshot.
import assert from 'assert';
import { randomBytes } from 'crypto';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { generateBlobSASQueryParameters, StorageSharedKeyCredential } from '@azure/storage-blob';
import { AzuriteHandle, startAzurite } from './harness/azurite';
import {
  assertArchiveMatches, assertNoSecretInBytes, assertNoSecretInOutput, assertNoSecretInUrls, readContainer, readFolder, secretForms, sha256, StoredFile,
} from './harness/checks';
import { buildStandardCorpus, StandardCorpus } from './harness/corpus';
import { AlreadyExistsError, BlobDestination, CopySourceError, defaultBlobTuning } from '../tasks/common/src/destinations';
import { DevOpsStandIn } from './harness/devops-standin';
import { runTask, TaskRun } from './harness/run-task';
import * as procs from './harness/procs';
import { cleanupAll, git, refMap, tmpDir } from './harness/util';

const ENTRY = path.resolve(__dirname, '../../tasks/RepoBackup/RepoBackupV1/dist/index.js');
const RESTORE = path.resolve(__dirname, '../../tasks/RepoRestore/RepoRestoreV1/dist/index.js');
const TOKEN = `canaryJobToken${randomBytes(12).toString('hex')}`;

interface Entry {
  project: string; repository: string; id: string; isWiki?: boolean; status: string; archive: string | null; sha256: string | null;
  size: number | null; refs: number | null; refsDigest: string | null; reusedFrom?: string; reusedFromRun?: string; error: string | null;
}
interface Manifest { run: { folder: string }; options: Record<string, unknown>; repositories: Entry[]; warnings: string[] }

describe('RepoBackup@1 incremental runs', function () {
  this.timeout(180_000);
  let standin: DevOpsStandIn;
  let azurite: AzuriteHandle;
  let corpus: StandardCorpus;
  let containers = 0;
  let build = 5000;
  const secrets: string[] = [TOKEN];

  before(async () => {
    standin = await DevOpsStandIn.start({ org: 'contoso', root: tmpDir('standin'), tokens: { bearer: [TOKEN], pat: [] } });
    corpus = await buildStandardCorpus(standin);
    // A branch with a non-ASCII name beside the corpus's tags, annotated tags, notes and refs/pull/1/merge.
    const api = corpus.repos.api.repo.gitDir;
    const main = (await git(['--git-dir', api, 'rev-parse', 'refs/heads/main'])).trim();
    await git(['--git-dir', api, 'update-ref', 'refs/heads/été/ñandú', main]);
    azurite = await startAzurite();
  });

  after(async () => {
    await standin?.stop();
    await azurite?.stop();
    await cleanupAll();
  });

  async function container(permissions = 'rcwl') {
    const name = `incr${++containers}`;
    const client = await azurite.createContainer(name);
    const sasUrl = azurite.containerSasUrl(name, permissions);
    secrets.push(new URL(sasUrl).searchParams.get('sig')!);
    return { client, sasUrl };
  }

  /** 8. Every process's command line, sampled while a task runs: no token or SAS signature in any argv. */
  let argvSamples = 0;
  /** Sampling every process's argv costs the shared cores: on for the runs of case 1 only. */
  let sampleArgv = false;
  async function task(entry: string, inputs: Record<string, string>, variables: Record<string, string>): Promise<TaskRun> {
    const forms = secrets.flatMap(secretForms);
    const leaks: string[] = [];
    const sampler = procs.every(50, () => {
      if (!sampleArgv) return;
      argvSamples++;
      for (const { pid, cmdline } of procs.allCmdlines()) for (const f of forms) if (cmdline.includes(f)) leaks.push(`pid ${pid}`);
    });
    const run = await runTask(entry, { inputs, orgUrl: standin.orgUrl, token: TOKEN, tempDir: tmpDir('run'), variables }).finally(() => sampler.stop());
    assert.deepStrictEqual(leaks, [], 'a secret was on a command line');
    assertNoSecretInOutput(run, secrets);
    return run;
  }

  /** One run as its own build (a run folder of its own), incremental unless said otherwise. */
  function backup(inputs: Record<string, string>, variables: Record<string, string> = {}): Promise<TaskRun> {
    return task(ENTRY, { incremental: 'true', ...inputs }, { 'Build.BuildId': String(++build), ...variables });
  }

  const manifestsOf = (files: Map<string, StoredFile>, runId: string): Manifest[] =>
    [...files.values()].filter((f) => f.name.startsWith('manifests/') && f.name.includes(`/${runId}.1/`) && f.name.endsWith('.json'))
      .map((f) => JSON.parse(f.bytes.toString('utf8')));
  const entriesOf = (files: Map<string, StoredFile>, runId: string) => manifestsOf(files, runId).flatMap((m) => m.repositories);
  const okIds = () => corpus.all.filter((r) => !r.disabled).map((r) => r.repo.id).sort();
  /** git requests per repository path (decoded), and LFS requests, since `from`. */
  const gitRequestsOf = (from: number, repoName: string) => standin.requests.slice(from)
    .filter((r) => r.route !== 'rest' && decodeURIComponent(r.url).includes(`/_git/${repoName}/`));

  it('1. first run is full and records refsDigest; an unchanged second run copies every archive (1 ref listing, 1 property read + 1 copy per repository), restorable', async () => {
    const { client, sasUrl } = await container();
    sampleArgv = true;
    const first = await backup({ sasUrl });
    assert.strictEqual(first.result?.result, 'Succeeded', first.stdout);
    assert.ok(first.lines.some((l) => /no complete previous run of contoso/.test(l)), 'one info line: nothing previous');
    const firstId = String(build);
    let files = await readContainer(client);
    const made = entriesOf(files, firstId).filter((e) => e.status === 'ok');
    assert.deepStrictEqual(made.map((e) => e.id).sort(), okIds());
    for (const e of made) {
      assert.match(e.refsDigest ?? '', /^[0-9a-f]{64}$/, `${e.repository}: refsDigest recorded`);
      assert.strictEqual(e.reusedFrom, undefined);
    }

    const standinMark = standin.requests.length;
    const azuriteMark = azurite.requests().length;
    const t0 = Date.now();
    const second = await backup({ sasUrl });
    const secondMs = Date.now() - t0;
    const azuriteEnd = azurite.requests().length; // the test's own reads below are not the run's
    assert.strictEqual(second.result?.result, 'Succeeded', second.stdout);
    assert.match(second.result!.message, /5 backed up, 0 failed, 1 skipped \(5 copied from the previous run, 0 made\)/);
    // The reuse pass: every unchanged repository checked and copied first, 4× the lanes of concurrency: auto.
    assert.ok(second.lines.some((l) => /Incremental: 5 of 5 repositories checked and copied in [\d.]+ s \(32 at once\); 0 to back up in full\./.test(l)), second.stdout);
    const secondId = String(build);
    files = await readContainer(client);
    const copied = entriesOf(files, secondId).filter((e) => e.status === 'ok');
    assert.deepStrictEqual(copied.map((e) => e.id).sort(), okIds());
    for (const e of copied) {
      const before = made.find((m) => m.id === e.id)!;
      assert.strictEqual(e.reusedFrom, before.archive, `${e.repository}: reusedFrom names the previous archive`);
      assert.strictEqual(e.reusedFromRun, `${firstId}.1`);
      assert.strictEqual(e.sha256, before.sha256);
      assert.strictEqual(e.size, before.size);
      assert.strictEqual(e.refsDigest, before.refsDigest);
      // Self-contained: the copy is in this run's own folder, with the same bytes and its sha256 metadata.
      assert.ok(e.archive!.startsWith(`archives/contoso/`) && e.archive!.includes(`/${secondId}.1/`), e.archive!);
      const blob = files.get(e.archive!)!;
      assert.strictEqual(sha256(blob.bytes), e.sha256);
      assert.strictEqual(blob.metadata.sha256, e.sha256);
      assert.strictEqual(decodeURIComponent(blob.metadata.reusedfrom), before.archive);
      assert.strictEqual(blob.metadata.runid, `${secondId}.1`);
      assert.ok(second.lines.some((l) => l.includes(`${e.project}/${e.repository}: ok, reused from ${firstId}.1`)), `log line for ${e.repository}`);
      // Requests: one ref listing (GET info/refs, no upload-pack, no LFS) at the stand-in…
      const gitReqs = gitRequestsOf(standinMark, e.repository);
      assert.deepStrictEqual(gitReqs.map((r) => `${r.method} ${r.route} ${r.url.replace(/^.*\/_git\/[^/]+/, '')}`),
        ['GET git /info/refs?service=git-upload-pack'], `${e.repository}: one ref listing`);
      // …and two at the storage service: one property read of the previous archive, then one copy (a PUT without
      // comp=, no staged block) carrying metadata and tier; the synchronous copy's answer is not read back.
      const storageReqs = azurite.requests().slice(azuriteMark, azuriteEnd).flatMap((r) => {
        const blob = decodeURIComponent(r.url.split('?')[0]);
        const kind = r.method === 'PUT' ? (/[?&]comp=/.test(r.url) ? 'staged' : 'copy') : r.method;
        return blob.endsWith(`/${before.archive}`) ? [`${kind} previous`] : blob.endsWith(`/${e.archive}`) ? [`${kind} new`] : [];
      });
      assert.deepStrictEqual(storageReqs, ['HEAD previous', 'copy new'], `${e.repository}: one property read, one copy`);
    }
    assert.strictEqual(standin.requests.slice(standinMark).filter((r) => r.route === 'lfs' || /git-upload-pack$/.test(r.url.split('?')[0])).length, 0, 'no clone, no LFS fetch');
    console.log(`      first run ${first.durationMs} ms, unchanged second run ${secondMs} ms`);
    // A copied archive is an ordinary archive: it restores the source's refs and LFS objects.
    for (const key of ['api', 'assets'] as const) {
      const src = corpus.repos[key];
      const e = copied.find((c) => c.id === src.repo.id)!;
      await assertArchiveMatches(files.get(e.archive!)!.bytes, e.archive!, src);
    }
    // RepoRestore@1 finds the newest manifest that lists assets (this run's, a copy) and restores it: refs equal
    // (refs/pull/* aside, which Azure Repos refuses), LFS objects pushed.
    const restoreSas = azurite.containerSasUrl(client.containerName, 'rl');
    secrets.push(new URL(restoreSas).searchParams.get('sig')!);
    const restored = await task(RESTORE, {
      organizationUrl: standin.orgUrl, source: 'azureBlob', sasUrl: restoreSas, repository: 'Team Alpha/assets', targetProject: 'Team Alpha', targetRepository: 'assets restored',
    }, {});
    assert.strictEqual(restored.result?.result, 'Succeeded', restored.stdout);
    assert.ok(restored.lines.some((l) => l.includes(`/${secondId}.1/manifest.json`)), 'restored from the incremental run\'s manifest');
    const target = standin.findRepo('Team Alpha', 'assets restored')!;
    const withoutPull = (m: Record<string, string>) => Object.fromEntries(Object.entries(m).filter(([r]) => !r.startsWith('refs/pull/')));
    assert.deepStrictEqual(await refMap(target.gitDir), withoutPull(await refMap(corpus.repos.assets.repo.gitDir)));
    standin.deleteRepo(target); // the other cases count the corpus's repositories
    assert.ok(argvSamples > 0, 'argv was sampled');
    sampleArgv = false;
    const summary = fs.readFileSync(second.commands.find((c) => c.command === 'task.uploadsummary')!.message, 'utf8');
    assert.match(summary, /5 copied from the previous run, 0 made/);
    assert.match(summary, new RegExp(`reused from ${firstId}\\.1`));
    // 8. No secret in manifests, blob metadata or the stand-in's URLs.
    assertNoSecretInBytes('manifests and metadata', [...files.values()].flatMap((f) => [Buffer.from(JSON.stringify(f.metadata)), ...(f.name.endsWith('.json') ? [f.bytes] : [])]), secrets);
    assertNoSecretInUrls('the Azure DevOps stand-in', standin.requests.map((r) => r.url), secrets);
  });

  it('3. a previous archive deleted, altered or in the Archive tier → that repository in full with a warning', async () => {
    const { client, sasUrl } = await container();
    const first = await backup({ sasUrl });
    assert.strictEqual(first.result?.result, 'Succeeded', first.stdout);
    const firstId = String(build);
    const made = entriesOf(await readContainer(client), firstId);
    const arch = (key: 'api' | 'assets' | 'naive') => made.find((e) => e.id === corpus.repos[key].repo.id)!.archive!;
    await client.getBlobClient(arch('api')).delete();
    await client.getBlobClient(arch('assets')).setMetadata({ sha256: '0'.repeat(64) });
    await client.getBlobClient(arch('naive')).setAccessTier('Archive');

    const second = await backup({ sasUrl });
    assert.strictEqual(second.result?.result, 'SucceededWithIssues', second.stdout);
    const secondId = String(build);
    await client.getBlobClient(arch('naive')).setAccessTier('Hot'); // readable again for the reads below
    const files = await readContainer(client);
    const entries = entriesOf(files, secondId);
    for (const key of ['api', 'assets', 'naive'] as const) {
      const e = entries.find((x) => x.id === corpus.repos[key].repo.id)!;
      assert.strictEqual(e.status, 'ok');
      assert.strictEqual(e.reusedFrom, undefined, `${key} made in full`);
      assert.strictEqual(sha256(files.get(e.archive!)!.bytes), e.sha256);
    }
    assert.strictEqual(entries.filter((e) => e.reusedFrom).length, 2, 'the wiki and the empty repository copied');
    const [manifest] = manifestsOf(files, secondId);
    assert.ok(manifest.warnings.some((w) => /api: the previous archive .* does not exist any more.*; backed up in full instead/.test(w)), manifest.warnings.join('\n'));
    assert.ok(manifest.warnings.some((w) => /assets: the previous archive .* sha256 metadata 0{64}, its manifest records/.test(w)), manifest.warnings.join('\n'));
    assert.ok(manifest.warnings.some((w) => /naïve repo: the previous archive .* Archive access tier/.test(w)), manifest.warnings.join('\n'));
  });

  it('4. archiveFormat or includeLfs changed → every repository in full (info, not a warning)', async () => {
    const { client, sasUrl } = await container();
    assert.strictEqual((await backup({ sasUrl })).result?.result, 'Succeeded');
    const tgz = await backup({ sasUrl, archiveFormat: 'tar.gz' });
    assert.strictEqual(tgz.result?.result, 'Succeeded', tgz.stdout);
    assert.match(tgz.result!.message, /\(0 copied from the previous run, 5 made\)/);
    assert.ok(tgz.lines.some((l) => /backed up in full: archiveFormat changed \(zip → tar\.gz\)/.test(l)));
    const noLfs = await backup({ sasUrl, archiveFormat: 'tar.gz', includeLfs: 'false' });
    assert.strictEqual(noLfs.result?.result, 'Succeeded', noLfs.stdout);
    assert.match(noLfs.result!.message, /\(0 copied from the previous run, 5 made\)/);
    assert.ok(noLfs.lines.some((l) => /backed up in full: includeLfs changed \(true → false\)/.test(l)));
    const entries = entriesOf(await readContainer(client), String(build));
    assert.ok(entries.filter((e) => e.status === 'ok').every((e) => e.archive!.endsWith('.tar.gz') && !e.reusedFrom));
  });

  it('4b. encrypted runs: unchanged → copied with the plaintext hash carried; other recipients → all made (info)', async function () {
    const recipient = () => /# public key: (age1\S+)/.exec(execFileSync('age-keygen', { stdio: ['ignore', 'pipe', 'ignore'] }).toString())![1];
    let alice: string;
    try { alice = recipient(); } catch { this.skip(); }
    const { client, sasUrl } = await container();
    const first = await backup({ sasUrl, encryptionRecipients: alice! });
    assert.strictEqual(first.result?.result, 'Succeeded', first.stdout);
    const before = entriesOf(await readContainer(client), String(build));
    const second = await backup({ sasUrl, encryptionRecipients: alice! });
    assert.match(second.result!.message, /\(5 copied from the previous run, 0 made\)/, second.stdout);
    const files = await readContainer(client);
    for (const e of entriesOf(files, String(build)).filter((x) => x.status === 'ok')) {
      const prev = before.find((b) => b.id === e.id)!;
      assert.ok(e.archive!.endsWith('.zip.age'));
      assert.strictEqual((e as unknown as { plaintextSha256: string }).plaintextSha256, (prev as unknown as { plaintextSha256: string }).plaintextSha256);
      assert.strictEqual(files.get(e.archive!)!.metadata.plaintextsha256, (prev as unknown as { plaintextSha256: string }).plaintextSha256);
      assert.strictEqual(sha256(files.get(e.archive!)!.bytes), e.sha256);
    }
    const third = await backup({ sasUrl, encryptionRecipients: recipient() });
    assert.match(third.result!.message, /\(0 copied from the previous run, 5 made\)/);
    assert.strictEqual(third.result?.result, 'Succeeded');
    assert.ok(third.lines.some((l) => /backed up in full: encryption \(encryptionRecipients\) changed/.test(l)));
  });

  it('5. a SAS without read and list fails before any clone, naming sasUrl, incremental and the fix', async () => {
    const { sasUrl } = await container('cw');
    const mark = standin.requests.length;
    const run = await backup({ sasUrl });
    assert.strictEqual(run.result?.result, 'Failed');
    assert.match(run.result!.message, /Input 'sasUrl'.*sp=cw.*incremental: true.*r, l are missing.*--permissions rcwl.*Or set incremental: false/);
    assert.strictEqual(standin.requests.slice(mark).filter((r) => r.route !== 'rest').length, 0, 'no git request');

    // A SAS bound to a stored access policy (si=) that grants only create + write: listing is refused, before any clone.
    const name = `incr${++containers}`;
    const client = await azurite.createContainer(name);
    await client.setAccessPolicy(undefined, [{ id: 'cw-only', accessPolicy: { permissions: 'cw', startsOn: new Date(Date.now() - 300_000), expiresOn: new Date(Date.now() + 3_600_000) } }]);
    const query = generateBlobSASQueryParameters({ containerName: name, identifier: 'cw-only' }, new StorageSharedKeyCredential(azurite.accountName, azurite.accountKey)).toString();
    secrets.push(new URLSearchParams(query).get('sig')!);
    const mark2 = standin.requests.length;
    const policyRun = await backup({ sasUrl: `${azurite.blobUrl}/${name}?${query}` });
    assert.strictEqual(policyRun.result?.result, 'Failed', policyRun.stdout);
    assert.match(policyRun.result!.message, /incremental: true needs to list the previous runs' manifests .*list \(l\) and read \(r\).*or set incremental: false/);
    assert.strictEqual(standin.requests.slice(mark2).filter((r) => r.route !== 'rest').length, 0, 'no git request');
  });

  it('6. a previous run of 2 jobs, then a run of 3 jobs: every archive copied (repositories moved between shards)', async () => {
    const { client, sasUrl } = await container();
    const sharded = (total: number, position: number) => ({
      'System.TotalJobsInPhase': String(total), 'System.JobPositionInPhase': String(position), 'System.ParallelExecutionType': 'MultiMachine',
    });
    build++;
    const firstId = String(build);
    for (const p of [1, 2]) {
      const r = await backup({ sasUrl }, { ...sharded(2, p), 'Build.BuildId': firstId });
      build--; // the same build: both jobs write one run folder
      assert.strictEqual(r.result?.result, 'Succeeded', r.stdout);
    }
    build++;
    build++;
    const secondId = String(build);
    let copied = 0;
    let made = 0;
    for (const p of [1, 2, 3]) {
      const r = await backup({ sasUrl }, { ...sharded(3, p), 'Build.BuildId': secondId });
      build--;
      assert.strictEqual(r.result?.result, 'Succeeded', r.stdout);
      assert.ok(r.lines.some((l) => l.includes(`previous complete run contoso/`) && l.includes(`/${firstId}.1 (2 manifest(s)`)), r.stdout);
      const m = /\((\d+) copied from the previous run, (\d+) made\)/.exec(r.result!.message)!;
      copied += Number(m[1]);
      made += Number(m[2]);
    }
    build++;
    assert.strictEqual(made, 0);
    assert.strictEqual(copied, 5);
    const entries = entriesOf(await readContainer(client), secondId).filter((e) => e.status === 'ok');
    assert.deepStrictEqual(entries.map((e) => e.id).sort(), okIds());
  });

  it('7. folder destination: the unchanged second run hard-links every archive, with its .sha256 file', async () => {
    const folder = tmpDir('incr-folder');
    const first = await backup({ destination: 'folder', folderPath: folder });
    assert.strictEqual(first.result?.result, 'Succeeded', first.stdout);
    const firstId = String(build);
    const mark = standin.requests.length;
    const second = await backup({ destination: 'folder', folderPath: folder });
    assert.strictEqual(second.result?.result, 'Succeeded', second.stdout);
    assert.match(second.result!.message, /\(5 copied from the previous run, 0 made\)/);
    const files = readFolder(folder);
    const before = entriesOf(files, firstId);
    for (const e of entriesOf(files, String(build)).filter((x) => x.status === 'ok')) {
      const prev = before.find((b) => b.id === e.id)!;
      assert.strictEqual(e.reusedFrom, prev.archive);
      const a = fs.statSync(path.join(folder, e.archive!));
      const b = fs.statSync(path.join(folder, prev.archive!));
      assert.strictEqual(a.ino, b.ino, `${e.repository}: a hard link`);
      assert.strictEqual(files.get(`${e.archive}.sha256`)!.bytes.toString().split(' ')[0], e.sha256);
    }
    assert.strictEqual(standin.requests.slice(mark).filter((r) => /git-upload-pack$/.test(r.url.split('?')[0]) || r.route === 'lfs').length, 0);
  });

  it('BlobDestination.copyFrom above the sync-copy limit: Put Blob From URL (500 on Azurite 3.35 → asynchronous copy) and the asynchronous copy; never overwrites', async () => {
    const { client, sasUrl } = await container();
    const body = randomBytes(300_000);
    const meta = { sha256: sha256(body), kind: 'test' };
    await client.getBlockBlobClient('archives/a/prev.zip').uploadData(body, { metadata: meta });
    const expected = { size: body.length, sha256: meta.sha256 };
    const requests = azurite.requests().length;
    for (const [label, tuning] of [['put-from-url', { syncCopyMax: 0 }], ['async', { syncCopyMax: 0, putFromUrlMax: 0 }], ['sync', {}]] as const) {
      const dest = new BlobDestination(new URL(sasUrl), 'test', 'Cool', { ...defaultBlobTuning, maxTries: 2, retryDelayMs: 50, ...tuning });
      const name = `archives/b/${label}.zip`;
      await dest.copyFrom('archives/a/prev.zip', name, expected, { metadata: { ...meta, runid: label } });
      const props = await client.getBlobClient(name).getProperties();
      assert.strictEqual(props.contentLength, body.length, label);
      assert.deepStrictEqual(props.metadata, { ...meta, runid: label }, label);
      assert.strictEqual(props.accessTier, 'Cool', `${label}: the configured tier applies`);
      assert.ok((await client.getBlobClient(name).downloadToBuffer()).equals(body), label);
      await assert.rejects(dest.copyFrom('archives/a/prev.zip', name, expected, { metadata: meta }), AlreadyExistsError, `${label}: never overwrites`);
      await assert.rejects(dest.copyFrom('archives/a/prev.zip', `${name}.x`, { ...expected, sha256: 'f'.repeat(64) }), CopySourceError);
    }
    const puts = azurite.requests().slice(requests).filter((r) => r.method === 'PUT' && /\/archives\/b\//.test(r.url)).map((r) => r.status);
    console.log(`      Azurite answered the copy requests it logged with ${puts.join(', ')} (Put Blob From URL: 500)`);
    assert.strictEqual(puts[0], 500, 'Put Blob From URL was tried first (Azurite 3.35 does not implement it)');
  });

  it('2. one repository changed (a new tag, a new commit, a default-branch change) → only that one in full', async () => {
    const { client, sasUrl } = await container();
    assert.strictEqual((await backup({ sasUrl })).result?.result, 'Succeeded');
    const api = corpus.repos.api.repo.gitDir;
    const naive = corpus.repos.naive.repo.gitDir;
    const changes: Array<[string, () => Promise<unknown>]> = [
      ['api', () => git(['--git-dir', api, 'tag', 'v2.0-new', 'refs/heads/main'])],
      ['naïve repo', async () => {
        const tree = (await git(['--git-dir', naive, 'rev-parse', 'HEAD^{tree}'])).trim();
        const parent = (await git(['--git-dir', naive, 'rev-parse', 'HEAD'])).trim();
        const who = { GIT_AUTHOR_NAME: 'Test', GIT_AUTHOR_EMAIL: 'test@example.com', GIT_COMMITTER_NAME: 'Test', GIT_COMMITTER_EMAIL: 'test@example.com' };
        const commit = (await git(['--git-dir', naive, 'commit-tree', tree, '-p', parent, '-m', 'Encore'], { env: who })).trim();
        await git(['--git-dir', naive, 'update-ref', 'refs/heads/main', commit]);
      }],
      ['api', () => git(['--git-dir', api, 'symbolic-ref', 'HEAD', 'refs/heads/release/1.0'])],
    ];
    for (const [name, change] of changes) {
      await change();
      const run = await backup({ sasUrl });
      assert.strictEqual(run.result?.result, 'Succeeded', run.stdout);
      assert.match(run.result!.message, /\(4 copied from the previous run, 1 made\)/, `${name}: ${run.result!.message}`);
      assert.ok(run.lines.some((l) => /Incremental: 4 of 5 repositories checked and copied in [\d.]+ s \(32 at once\); 1 to back up in full\./.test(l)), run.stdout);
      const entries = entriesOf(await readContainer(client), String(build));
      const full = entries.filter((e) => e.status === 'ok' && !e.reusedFrom).map((e) => e.repository);
      assert.deepStrictEqual(full, [name]);
      assert.ok(run.lines.some((l) => l.includes(`${name}: backed up in full: refs changed since the previous run`)), run.stdout);
    }
  });
});


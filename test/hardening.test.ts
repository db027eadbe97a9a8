// Hardening (issue 6): RepoBackup@1 keeps working under faults, refuses bad input clearly, loses nothing and leaks
// nothing. Every case runs the bundled task the way the agent runs it, against the Azure DevOps stand-in (REST, git
// http-backend, LFS), real git and git-lfs, and Azurite (behind a fault-injecting proxy where storage must fail),
// and ends by checking that the manifest and the task result tell the truth.
//
// Covered elsewhere, not repeated here: an LFS object the server lost (404) → test/backup.test.ts, "finishes every
// repository when one fails": the git data and every other LFS object are stored, the repository is `failed` with
// `missingLfsObjects` (README, "Behaviour you can rely on"). The bad-input table for inputs is in backup.test.ts too;
// the cases below add what needs a live server (an organizationUrl that is not Azure DevOps, 401, 403).
//
// Every run goes through `backup()`, which scans for the canary job token, PAT and SAS signatures in every stdout
// and stderr line (but the ##vso[task.setsecret] ones), every file left in the run's folders, and every URL the
// stand-in, the proxy and (token/PAT) Azurite saw, and checks that no failure is a bare stack trace.
import assert from 'assert';
import { ChildProcess, execFileSync } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as path from 'path';
import { extractArchiveFile, formatOfName } from '../tasks/common/src/extract';
import { AzuriteHandle, startAzurite } from './harness/azurite';
import { addManyRepos } from './harness/bulk';
import {
  allFileBytes, assertArchiveMatches, assertNoSecretInBytes, assertNoSecretInOutput, assertNoSecretInUrls, Manifest,
  ManifestEntry, manifests, readContainer, readFolder, secretForms, sha256, StoredFile,
} from './harness/checks';
import { buildStandardCorpus, makeRandomRepo, populate, StandardCorpus } from './harness/corpus';
import { DevOpsStandIn } from './harness/devops-standin';
import { FaultProxy, startFaultProxy } from './harness/fault-proxy';
import * as procs from './harness/procs';
import { runTask, TaskRun, HARNESS_RUN_DATE } from './harness/run-task';
import { cleanupAll, delay, tmpDir } from './harness/util';

const ENTRY = path.resolve(__dirname, '../../tasks/RepoBackup/RepoBackupV1/dist/index.js');
const TOKEN = `canaryJobToken${randomBytes(12).toString('hex')}`;
const PAT = `canarypat${randomBytes(20).toString('hex')}`;
/** Fast retries for the cases that must exhaust them: 3 attempts, 100 ms base (pipeline variables, documented). */
const FAST = { 'RepoBackup.RetryAttempts': '3', 'RepoBackup.RetryDelayMs': '100' };
/**
 * Repositories of the big-organization case (REPOBACKUP_BIG_ORG_REPOS scales it). 500 keeps every bound the case
 * checks (memory, open files, child processes, one progress update per percent) within a suite that must finish on a
 * loaded 2-core machine; the 2,000- and 5,000-repository figures are measured by `npm run bench`.
 */
const BIG_ORG = Number(process.env.REPOBACKUP_BIG_ORG_REPOS ?? 500);
/** The task's budget for that case: about 5× what it takes on a quiet machine (~1 s per 40 repositories). */
const BIG_ORG_BUDGET_MS = Math.max(120_000, BIG_ORG * 300);

describe('RepoBackup@1 hardening: faults, bad input, secrets', function () {
  this.timeout(180_000);
  let standin: DevOpsStandIn;
  let azurite: AzuriteHandle;
  let proxy: FaultProxy;
  let corpus: StandardCorpus;
  let containers = 0;
  let buildId = 5000;
  /** Every SAS signature handed to a run: scanned for like the token and the PAT. */
  const sigs: string[] = [];
  /** Every stand-in whose log is scanned for secrets. */
  const standins: DevOpsStandIn[] = [];

  before(async () => {
    standin = await DevOpsStandIn.start({ org: 'contoso', root: tmpDir('standin'), tokens: { bearer: [TOKEN], pat: [PAT] } });
    standins.push(standin);
    [corpus, azurite] = await Promise.all([buildStandardCorpus(standin), startAzurite()]);
    proxy = await startFaultProxy(azurite.blobUrl);
  });

  afterEach(() => {
    standin.faults = {};
    proxy.faults.length = 0;
  });

  after(async () => {
    for (const s of standins) await s.stop();
    await proxy?.stop();
    await azurite?.stop();
    await cleanupAll();
  });

  /** A fresh container, its create+write SAS (direct, and through the fault proxy); the signature joins the canaries. */
  async function container() {
    const name = `hardening${++containers}`;
    const client = await azurite.createContainer(name);
    const sasUrl = azurite.containerSasUrl(name, 'cw');
    sigs.push(new URL(sasUrl).searchParams.get('sig')!);
    return { client, sasUrl, proxied: proxy.rewrite(sasUrl) };
  }

  interface RunOptions {
    variables?: Record<string, string>;
    token?: string;
    orgUrl?: string;
    tempDir?: string;
    onSpawn?(child: ChildProcess): void;
    /** Extra folders whose files are scanned for secrets (e.g. a temp mount). */
    scan?: string[];
  }

  /** Runs the task with a fresh Build.BuildId (unless given), then scans everything it touched for secrets. */
  async function backup(inputs: Record<string, string>, opts: RunOptions & { timeoutMs?: number } = {}): Promise<{ run: TaskRun; tempDir: string }> {
    const tempDir = opts.tempDir ?? tmpDir('run');
    const run = await runTask(ENTRY, {
      inputs, orgUrl: opts.orgUrl ?? standin.orgUrl, token: opts.token ?? TOKEN, tempDir, onSpawn: opts.onSpawn,
      variables: { 'Build.BuildId': String(++buildId), ...opts.variables }, timeoutMs: opts.timeoutMs ?? 170_000,
    });
    const secrets = [TOKEN, PAT, ...sigs];
    assertNoSecretInOutput(run, secrets);
    for (const dir of [tempDir, ...(opts.scan ?? [])]) assertNoSecretInBytes(`a file left in ${dir}`, allFileBytes(dir), secrets);
    for (const s of standins) assertNoSecretInUrls('the Azure DevOps stand-in', s.requests.map((r) => r.url), secrets);
    // Storage authenticates by the SAS in the URL: only the DevOps credentials must never reach it.
    assertNoSecretInUrls('the storage proxy', proxy.requests.map((r) => r.url), [TOKEN, PAT]);
    assertNoSecretInUrls('Azurite', azurite.requestUrls(), [TOKEN, PAT]);
    assertCleanResult(run);
    return { run, tempDir };
  }

  /** A result was set, and a failure reads as one line a person can act on, not a stack trace. */
  function assertCleanResult(run: TaskRun): void {
    assert.ok(run.result, `the task set a result:\n${run.stdout}\n${run.stderr}`);
    assert.ok(run.result.message.trim().length > 10, 'a message that says something');
    assert.ok(!/\n\s+at /.test(run.result.message), `no stack trace in the result: ${run.result.message}`);
    assert.ok(!/^(TypeError|ReferenceError|SyntaxError|RangeError|Error):/.test(run.result.message), `not a bare exception: ${run.result.message}`);
    assert.ok(!/^\s+at .+:\d+:\d+\)?$/m.test(run.stderr) && !/Unhandled|uncaught/i.test(run.stderr), `no crash on stderr: ${run.stderr}`);
  }

  /** Storage requests a task made: they carry a SAS (the test's own, e.g. creating a container, use the account key). */
  const sasRequests = () => azurite.requestUrls().filter((u) => /[?&]sig=/.test(u)).length;
  const runFolder = (id: number, attempt = 1) => `contoso/${HARNESS_RUN_DATE}/${id}.${attempt}`;
  /** Where a run's archives and its manifests go (`archives/<run>/`, `manifests/<run>/`). */
  const archiveFolder = (id: number, attempt = 1) => `archives/${runFolder(id, attempt)}`;
  const manifestFolder = (id: number, attempt = 1) => `manifests/${runFolder(id, attempt)}`;
  const entryOf = (m: Manifest, name: string) => m.repositories.find((e) => e.repository === name)!;
  const leftovers = (tempDir: string) => fs.readdirSync(path.join(tempDir, 'agent-temp')).filter((n) => n.startsWith('repobackup-') && !n.endsWith('.md'));
  const gitRequests = (s: DevOpsStandIn, repo: string) =>
    s.requests.filter((r) => r.route !== 'rest' && decodeURIComponent(r.url).includes(`/_git/${repo}`));
  const packRequests = (repo: string) => gitRequests(standin, repo).filter((r) => r.method === 'POST' && r.url.endsWith('/git-upload-pack'));
  const issues = (run: TaskRun, type: string) => run.commands.filter((c) => c.command === 'task.issue' && c.props.type === type).map((c) => c.message);

  /** Every stored ok entry is complete: the bytes hash to the manifest's sha256 and extract to the source repository. */
  async function assertOkEntries(files: Map<string, StoredFile>, manifest: Manifest, names: string[]) {
    for (const name of names) {
      const entry = entryOf(manifest, name);
      assert.strictEqual(entry?.status, 'ok', `${name}: ${entry?.error}`);
      const file = files.get(entry.archive!);
      assert.ok(file, `${entry.archive} stored`);
      assert.strictEqual(sha256(file.bytes), entry.sha256, `${name}: stored bytes = manifest sha256`);
      const source = corpus.all.find((c) => c.repo.id === entry.id)!;
      await assertArchiveMatches(file.bytes, entry.archive!, source);
    }
  }

  // ------------------------------------------------------------------------------------------------ REST faults

  describe('REST faults', () => {
    it('429 with Retry-After and X-RateLimit-* on the first requests: waits as told, then succeeds', async () => {
      // Default retry policy: its first backoff (0.75–1.25 s) is shorter than the 2 s the server asks for.
      standin.clearLog();
      standin.faults.throttleRest = { count: 2, retryAfterSeconds: 2 };
      const folder = tmpDir('throttle');
      const { run } = await backup({ destination: 'folder', folderPath: folder, repositories: 'Team Alpha/api\nTeam Alpha/assets' });
      assert.strictEqual(run.result?.result, 'Succeeded', run.stdout);
      const rest = standin.requests.filter((r) => r.route === 'rest');
      const throttled = rest.filter((r) => r.status === 429);
      assert.strictEqual(throttled.length, 2);
      for (const t of throttled) {
        const next = rest[rest.indexOf(t) + 1];
        assert.ok(next, 'a request after the 429');
        const waited = next.at - t.endedAt!;
        assert.ok(waited >= 1950, `waited ${waited} ms after a 429 with Retry-After: 2`);
      }
      assert.strictEqual(issues(run, 'warning').filter((w) => /attempt \d of 5 failed .*TF400733.*retrying in 2\.0 s/.test(w)).length, 2);
      const [manifest] = manifests(readFolder(folder));
      assert.deepStrictEqual(manifest.repositories.map((e) => e.status), ['ok', 'ok']);

      // The same on the repository list itself (a different code path of the REST library).
      standin.clearLog();
      standin.faults.throttleRest = { count: 1, retryAfterSeconds: 2, path: /_apis\/git\/repositories\?/ };
      const again = await backup({ destination: 'folder', folderPath: tmpDir('throttle2'), repositories: 'Team Alpha/api', includeLfs: 'false' });
      assert.strictEqual(again.run.result?.result, 'Succeeded', again.run.stdout);
      const lists = standin.requests.filter((r) => /_apis\/git\/repositories\?/.test(r.url));
      assert.deepStrictEqual(lists.map((r) => r.status), [429, 200]);
      assert.ok(lists[1].at - lists[0].endedAt! >= 1950, 'Retry-After honoured on the list call');
    });

    it('persistent 503: a bounded number of attempts, then one clear failure, no git, no storage', async () => {
      standin.clearLog();
      standin.faults.failRest = { count: 100, status: 503, path: /_apis\/git\/repositories\?/ };
      const { client, sasUrl } = await container();
      const before = sasRequests();
      const { run } = await backup({ sasUrl }, { variables: FAST });
      assert.strictEqual(run.result?.result, 'Failed');
      assert.match(run.result!.message, /^listing repositories failed \(HTTP 503\) after 3 attempts: Injected failure \(503\)\. Azure DevOps is unavailable; run the backup again later\.$/);
      assert.strictEqual(standin.requests.filter((r) => /_apis\/git\/repositories\?/.test(r.url)).length, 3, 'exactly the configured attempts');
      assert.deepStrictEqual(standin.requests.filter((r) => r.route !== 'rest'), [], 'no git request');
      assert.strictEqual(sasRequests(), before, 'no storage request');
      assert.strictEqual((await readContainer(client)).size, 0, 'no manifest claiming anything');
    });
  });

  // ------------------------------------------------------------------------------------------------ git faults

  describe('git connection reset mid-pack', () => {
    it('transient (first 2 tries): retried, the repository is backed up intact', async () => {
      standin.clearLog();
      standin.faults.resetGit = { repo: 'api', count: 2, onlyPack: true, afterBytes: 300 };
      const folder = tmpDir('reset');
      const { run } = await backup({ destination: 'folder', folderPath: folder, includeWikis: 'false' }, { variables: FAST });
      assert.strictEqual(run.result?.result, 'Succeeded', run.stdout);
      const packs = packRequests('api');
      assert.strictEqual(packs.filter((r) => r.aborted).length, 2, 'two pack transfers were cut');
      assert.strictEqual(packs.filter((r) => !r.aborted && r.status === 200).length >= 1, true);
      assert.strictEqual(issues(run, 'warning').filter((w) => /^git clone Team Alpha\/api: attempt [12] of 3 failed/.test(w)).length, 2);
      const files = readFolder(folder);
      const [manifest] = manifests(files);
      await assertOkEntries(files, manifest, ['api', 'assets', 'empty', 'naïve repo']);
    });

    it('permanent: that repository fails, every other one is backed up, the result follows onRepoFailure', async () => {
      standin.clearLog();
      standin.faults.resetGit = { repo: 'api', count: 1000, onlyPack: true, afterBytes: 300 };
      const folder = tmpDir('reset-perm');
      const { run, tempDir } = await backup({ destination: 'folder', folderPath: folder, onRepoFailure: 'warn' }, { variables: FAST });
      assert.strictEqual(run.result?.result, 'SucceededWithIssues', run.stdout);
      assert.strictEqual(run.result!.message, '4 backed up, 1 failed, 1 skipped: Team Alpha/api');
      assert.strictEqual(packRequests('api').filter((r) => r.aborted).length, 3, 'bounded: the configured 3 attempts, each cut mid-pack');
      const files = readFolder(folder);
      const [manifest] = manifests(files);
      const api = entryOf(manifest, 'api');
      assert.strictEqual(api.status, 'failed');
      assert.strictEqual(api.archive, null, 'no archive claimed for it');
      assert.match(api.error!, /^git clone --mirror .* failed \(exit code \d+\): /);
      assert.ok(![...files.keys()].some((k) => k.includes('/api.zip')), 'nothing stored for it');
      await assertOkEntries(files, manifest, ['assets', 'empty', 'naïve repo', 'Team Alpha.wiki']);
      assert.strictEqual(manifest.totals.failed, 1);
      assert.deepStrictEqual(leftovers(tempDir), []);

      standin.faults.resetGit = { repo: 'api', count: 1000, onlyPack: true, afterBytes: 300 };
      const strict = await backup({ destination: 'folder', folderPath: tmpDir('reset-strict'), repositories: 'Team Alpha/api\nTeam Alpha/empty' }, { variables: FAST });
      assert.strictEqual(strict.run.result?.result, 'Failed', 'onRepoFailure: fail (the default)');
      assert.strictEqual(strict.run.result!.message, '1 backed up, 1 failed, 0 skipped: Team Alpha/api');
    });
  });

  // ------------------------------------------------------------------------------------------------ storage faults

  describe('Blob storage refusing or dying mid-upload', () => {
    it('transient 503s and a connection cut mid-block: retried, every archive intact', async () => {
      const { client, proxied } = await container();
      proxy.requests.length = 0;
      proxy.faults.push(
        { match: /^PUT .*\/api\.zip\?.*comp=block(&|$)/, count: 2, action: 'status', status: 503 },
        { match: /^PUT .*\/assets\.zip\?.*comp=block(&|$)/, count: 1, action: 'reset', afterBytes: 700 },
        { match: /^PUT .*\/na%C3%AFve%20repo\.zip\?.*comp=blocklist/i, count: 1, action: 'status', status: 500, errorCode: 'InternalError' },
        { match: /^PUT .*\/manifest\.json\?.*comp=block(&|$)/, count: 1, action: 'reset', afterBytes: 100 },
      );
      const { run, tempDir } = await backup({ sasUrl: proxied, includeWikis: 'false' }, { variables: FAST });
      assert.strictEqual(run.result?.result, 'Succeeded', run.stdout);
      assert.ok(proxy.faults.every((f) => f.count === 0), 'every fault fired');
      assert.strictEqual(proxy.requests.filter((r) => r.fault).length, 5);
      const files = await readContainer(client);
      const [manifest] = manifests(files);
      await assertOkEntries(files, manifest, ['api', 'assets', 'empty', 'naïve repo']);
      for (const e of manifest.repositories.filter((r) => r.status === 'ok')) assert.strictEqual(files.get(e.archive!)!.metadata.sha256, e.sha256);
      assert.deepStrictEqual(leftovers(tempDir), []);
    });

    it('refusing for good (503) or dying mid-upload every time: bounded tries, that repository failed, nothing committed', async () => {
      const { client, proxied } = await container();
      proxy.requests.length = 0;
      proxy.faults.push(
        { match: /^PUT .*\/api\.zip\?/, count: Infinity, action: 'status', status: 503 },
        { match: /^PUT .*\/assets\.zip\?.*comp=block(&|$)/, count: Infinity, action: 'reset', afterBytes: 700 },
      );
      const { run, tempDir } = await backup({ sasUrl: proxied, onRepoFailure: 'warn', includeWikis: 'false' }, { variables: FAST });
      assert.strictEqual(run.result?.result, 'SucceededWithIssues', run.stdout);
      assert.strictEqual(run.result!.message, '2 backed up, 2 failed, 1 skipped: Team Alpha/api, Team Alpha/assets');
      const files = await readContainer(client);
      const [manifest] = manifests(files);
      const api = entryOf(manifest, 'api');
      const assets = entryOf(manifest, 'assets');
      assert.strictEqual(api.status, 'failed');
      assert.match(api.error!, /^upload of '.*\/Team Alpha\/api\.zip' failed \(HTTP 503 ServerBusy\)/);
      assert.strictEqual(assets.status, 'failed');
      assert.match(assets.error!, /^upload of '.*\/Team Alpha\/assets\.zip' failed/);
      // 3 attempts of the orchestrator × 3 tries of the storage client at most, per block.
      for (const name of ['api', 'assets']) {
        const tries = proxy.requests.filter((r) => r.url.includes(`/${name}.zip?`)).length;
        assert.ok(tries > 3 && tries <= 9, `${name}: ${tries} upload requests`);
      }
      // Nothing committed: no blob by that name, not even in the listing with uncommitted blobs.
      for (const name of [`archives/${manifest.run.folder}/Team Alpha/api.zip`, `archives/${manifest.run.folder}/Team Alpha/assets.zip`]) {
        assert.ok(!files.has(name));
        await assert.rejects(client.getBlobClient(name).getProperties(), (e: { statusCode?: number }) => e.statusCode === 404);
      }
      await assertOkEntries(files, manifest, ['empty', 'naïve repo']);
      assert.deepStrictEqual(leftovers(tempDir), [], 'temp folders cleaned');
    });

    it('the manifest cannot be stored: Failed, saying so; the archives stored are complete', async () => {
      const { client, proxied } = await container();
      proxy.faults.push({ match: /^PUT .*\/manifest\.json\?/, count: Infinity, action: 'status', status: 503 });
      const { run, tempDir } = await backup({ sasUrl: proxied, repositories: 'Team Alpha/api' }, { variables: FAST });
      assert.strictEqual(run.result?.result, 'Failed');
      assert.match(run.result!.message, /^upload of '.*\/manifest\.json' failed \(HTTP 503 ServerBusy\)/);
      const files = await readContainer(client);
      assert.deepStrictEqual([...files.keys()].map((k) => k.replace(/^.*\/\d+\.1\//, '')), ['Team Alpha/api.zip']);
      const api = [...files.values()][0];
      assert.strictEqual(sha256(api.bytes), api.metadata.sha256);
      assert.deepStrictEqual(leftovers(tempDir), []);
    });
  });

  // ------------------------------------------------------------------------------------------------ names taken

  describe('a name that already exists at the destination', () => {
    it('Blob: a pre-created blob and a rerun of the same job attempt are never overwritten; the run stores under ~2, ~3', async () => {
      const { client, sasUrl } = await container();
      const id = ++buildId;
      const folder = archiveFolder(id);
      const mfolder = manifestFolder(id);
      const squatter = Buffer.from('not a backup: put here by someone else');
      await client.getBlockBlobClient(`${folder}/Team Alpha/api.zip`).upload(squatter, squatter.length);

      const first = await backup({ sasUrl }, { variables: { 'Build.BuildId': String(id) } });
      assert.strictEqual(first.run.result?.result, 'Succeeded', first.run.stdout);
      let files = await readContainer(client);
      const m1 = JSON.parse(files.get(`${mfolder}/manifest.json`)!.bytes.toString());
      assert.strictEqual(entryOf(m1, 'api').archive, `${folder}/Team Alpha/api~2.zip`);
      assert.strictEqual(entryOf(m1, 'assets').archive, `${folder}/Team Alpha/assets.zip`);
      assert.deepStrictEqual(files.get(`${folder}/Team Alpha/api.zip`)!.bytes, squatter, 'the existing blob is untouched');
      assert.ok(issues(first.run, 'warning').some((w) => /1 name\(s\) of this run already existed .*Nothing was overwritten/.test(w)));
      const snapshot = new Map([...files].map(([k, v]) => [k, sha256(v.bytes)]));

      // The same Build.BuildId and System.JobAttempt again (e.g. retryCountOnTaskFailure).
      const rerun = await backup({ sasUrl }, { variables: { 'Build.BuildId': String(id) } });
      assert.strictEqual(rerun.run.result?.result, 'Succeeded', rerun.run.stdout);
      files = await readContainer(client);
      for (const [name, hash] of snapshot) assert.strictEqual(sha256(files.get(name)!.bytes), hash, `${name} unchanged`);
      const m2: Manifest = JSON.parse(files.get(`${mfolder}/manifest~2.json`)!.bytes.toString());
      assert.strictEqual(entryOf(m2, 'api').archive, `${folder}/Team Alpha/api~3.zip`);
      assert.strictEqual(entryOf(m2, 'assets').archive, `${folder}/Team Alpha/assets~2.zip`);
      assert.strictEqual(entryOf(m2, 'naïve repo').archive, `${folder}/Équipe Bêta/naïve repo~2.zip`);
      await assertOkEntries(files, m2, ['api', 'assets', 'empty', 'naïve repo', 'Team Alpha.wiki']);

      // A new attempt of the job writes to a folder of its own: no renaming at all.
      const attempt2 = await backup({ sasUrl, repositories: 'Team Alpha/api' }, { variables: { 'Build.BuildId': String(id), 'System.JobAttempt': '2' } });
      assert.strictEqual(attempt2.run.result?.result, 'Succeeded');
      files = await readContainer(client);
      assert.ok(files.has(`${archiveFolder(id, 2)}/Team Alpha/api.zip`) && files.has(`${manifestFolder(id, 2)}/manifest.json`));
      assert.ok(!issues(attempt2.run, 'warning').some((w) => /already existed/.test(w)));
    });

    it('folder: existing files (and a lone checksum file) are left alone; the run stores under names of its own', async () => {
      const root = tmpDir('taken');
      const id = ++buildId;
      // Manifests under manifests/<run>/, archives under archives/<run>/.
      const rel = (name: string) => `${/^manifest/.test(name) ? manifestFolder(id) : archiveFolder(id)}/${name}`;
      const put = (name: string, text: string) => {
        const file = path.join(root, ...rel(name).split('/'));
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, text);
      };
      put('Team Alpha/api.zip', 'old api');
      put('Team Alpha/api~2.zip', 'old api 2');
      put('Équipe Bêta/naïve repo.zip.sha256', 'old checksum');
      put('manifest.json', '{"old": true}');
      const { run } = await backup({ destination: 'folder', folderPath: root }, { variables: { 'Build.BuildId': String(id) } });
      assert.strictEqual(run.result?.result, 'Succeeded', run.stdout);
      const files = readFolder(root);
      assert.strictEqual(files.get(rel('Team Alpha/api.zip'))!.bytes.toString(), 'old api');
      assert.strictEqual(files.get(rel('Team Alpha/api~2.zip'))!.bytes.toString(), 'old api 2');
      assert.strictEqual(files.get(rel('Équipe Bêta/naïve repo.zip.sha256'))!.bytes.toString(), 'old checksum');
      assert.strictEqual(files.get(rel('manifest.json'))!.bytes.toString(), '{"old": true}');
      assert.ok(!files.has(rel('Équipe Bêta/naïve repo.zip')), 'no archive beside a checksum file that is not its own');
      const manifest: Manifest = JSON.parse(files.get(rel('manifest~2.json'))!.bytes.toString());
      assert.strictEqual(entryOf(manifest, 'api').archive, rel('Team Alpha/api~3.zip'));
      assert.strictEqual(entryOf(manifest, 'naïve repo').archive, rel('Équipe Bêta/naïve repo~2.zip'));
      assert.strictEqual(entryOf(manifest, 'assets').archive, rel('Team Alpha/assets.zip'));
      for (const e of manifest.repositories.filter((r) => r.status === 'ok')) {
        assert.strictEqual(files.get(`${e.archive}.sha256`)!.bytes.toString(), `${e.sha256}  ${path.basename(e.archive!)}\n`);
      }
      await assertOkEntries(files, manifest, ['api', 'assets', 'empty', 'naïve repo', 'Team Alpha.wiki']);
      assert.deepStrictEqual([...files.keys()].filter((k) => k.includes('.partial')), []);
    });
  });

  // ------------------------------------------------------------------------------------------------ cancellation

  describe('cancellation as the agent does it (SIGINT, then SIGTERM)', () => {
    /**
     * Starts a backup whose clone of `api` hangs (slowGit), waits until that clone runs, sends `signals` (ms after
     * the first, as the agent: SIGINT, SIGTERM ~5 s later), and watches every process the task started.
     */
    async function cancelDuringClone(signals: Array<[NodeJS.Signals, number]>) {
      const { client, sasUrl } = await container();
      standin.faults.slowGit = { repo: 'api', delayMs: 60_000 };
      let child: ChildProcess | undefined;
      let closedAt = 0;
      const seen = new Map<number, string>();
      const argvLeaks: string[] = [];
      const forms = [TOKEN, PAT, ...sigs].flatMap(secretForms);
      const sampler = procs.every(15, () => {
        if (!child?.pid) return;
        for (const pid of procs.descendants(child.pid)) {
          const argv = procs.argv(pid);
          if (argv && /git/.test(argv[0])) seen.set(pid, argv.join(' '));
        }
        for (const { pid, cmdline } of procs.allCmdlines()) {
          for (const f of forms) if (cmdline.includes(f)) argvLeaks.push(`pid ${pid}: ${cmdline.toString().split(f).join('<SECRET>')}`);
        }
      });
      const running = backup({ sasUrl }, { onSpawn: (c) => { child = c; c.once('close', () => { closedAt = Date.now(); }); } });
      const cloning = () => [...seen.values()].some((a) => a.includes('clone') && a.includes('/_git/api'));
      for (const start = Date.now(); !cloning(); await delay(20)) {
        if (Date.now() - start > 60_000) throw new Error(`the clone of api never started; saw ${[...seen.values()].join('\n')}`);
      }
      // Signal only once git's remote helper runs (the process that used to be left behind), not after a guessed delay.
      for (const start = Date.now(); ![...seen.values()].some((a) => /remote-http/.test(a)); await delay(20)) {
        if (Date.now() - start > 60_000) throw new Error(`git's remote helper never started; saw ${[...seen.values()].join('\n')}`);
      }
      const helpers = [...seen.values()].filter((a) => /remote-http/.test(a));
      const t0 = Date.now();
      const timers = signals.map(([sig, after]) => setTimeout(() => { if (!closedAt) child!.kill(sig); }, after));
      const { run, tempDir } = await running;
      timers.forEach(clearTimeout);
      await sampler.stop();
      return { run, tempDir, client, exitMs: closedAt - t0, seen, helpers, argvLeaks };
    }

    async function assertCanceledCleanly(c: Awaited<ReturnType<typeof cancelDuringClone>>) {
      // The task exits by itself 4 s after the first signal at the latest; the bound is generous for loaded machines.
      console.log(`      exited ${c.exitMs} ms after SIGINT`);
      assert.ok(c.exitMs < 25_000, `exited ${c.exitMs} ms after SIGINT`);
      assert.ok(c.helpers.length > 0, 'git had started its remote helper (the process that used to be left behind)');
      const alive = [...c.seen].filter(([pid]) => procs.isAlive(pid));
      assert.deepStrictEqual(alive, [], 'every git process the task started has ended');
      assert.deepStrictEqual(c.argvLeaks, [], 'no secret in any process argv');
      assert.deepStrictEqual(leftovers(c.tempDir), [], 'temporary folders removed');
      assert.strictEqual(c.run.result?.result, 'Failed');
      assert.match(c.run.result!.message, /^Canceled: .*no manifest was written/);
      const files = await readContainer(c.client);
      assert.deepStrictEqual(manifests(files), [], 'no manifest');
      assert.ok(![...files.keys()].some((k) => k.endsWith('/api.zip')), 'nothing for the repository being cloned');
      for (const f of files.values()) assert.strictEqual(sha256(f.bytes), f.metadata.sha256, `${f.name} is complete, not half-committed`);
    }

    it('SIGINT during a slow clone: git and its helpers end, temp folders go, the task exits by itself, no manifest', async function () {
      if (!procs.hasProc) this.skip();
      const c = await cancelDuringClone([['SIGINT', 0], ['SIGTERM', 30_000]]);
      await assertCanceledCleanly(c);
      // The graceful path, told by what the task did, not by the clock: no hard exit, no second signal needed.
      assert.ok(!c.run.lines.some((l) => /exiting now/.test(l)), `the graceful path, not the hard exit:\n${c.run.stdout}`);
      assert.ok(c.run.lines.some((l) => /^Received SIGINT: stopping/.test(l)));
    });

    it('SIGINT then SIGTERM at once (the hard exit path): the same guarantees', async function () {
      if (!procs.hasProc) this.skip();
      const c = await cancelDuringClone([['SIGINT', 0], ['SIGTERM', 30]]);
      await assertCanceledCleanly(c);
    });
  });

  // ------------------------------------------------------------------------------------------------ low disk

  describe('low disk', () => {
    it('a repository bigger than the free temp space fails early with a clear message; the others are backed up', async () => {
      standin.clearLog();
      standin.setReportedSize('api', 2 ** 50);
      try {
        const folder = tmpDir('disk');
        const { run } = await backup({ destination: 'folder', folderPath: folder, onRepoFailure: 'warn', includeWikis: 'false' });
        assert.strictEqual(run.result?.result, 'SucceededWithIssues', run.stdout);
        const files = readFolder(folder);
        const [manifest] = manifests(files);
        assert.match(entryOf(manifest, 'api').error!, /^not enough disk space for Team Alpha\/api: its mirror needs about 1\d{3} TB but .* is free in .*agent-temp \(Agent\.TempDirectory\)\. (Clones in progress still need .* left\. )?Free space, lower concurrency, or use an agent with a larger disk\.$/);
        assert.deepStrictEqual(gitRequests(standin, 'api'), [], 'failed before any git request');
        await assertOkEntries(files, manifest, ['assets', 'empty', 'naïve repo']);
      } finally {
        standin.setReportedSize('api', undefined);
      }
    });

    it('concurrency auto never goes beyond the disk: a mirror that fits alone waits for the one in progress; a fixed concurrency fails it as before', async () => {
      standin.clearLog();
      const probe = tmpDir('disk-probe');
      const st = fs.statfsSync(probe);
      const free = st.bavail * st.bsize;
      // Each needs 60% of the free space (reported size × 1.1 + 16 MiB): one fits, two at once do not.
      const size = Math.floor((0.6 * free - (16 << 20)) / 1.1);
      standin.setReportedSize('api', size);
      standin.setReportedSize('assets', size);
      try {
        const auto = tmpDir('disk-auto');
        const { run } = await backup({ destination: 'folder', folderPath: auto, onRepoFailure: 'warn', includeWikis: 'false' }, { tempDir: probe });
        console.log(`      free ${(free / 2 ** 30).toFixed(1)} GiB; each mirror granted ${((size * 1.1 + (16 << 20)) / 2 ** 30).toFixed(1)} GiB`);
        assert.strictEqual(run.result?.result, 'Succeeded', run.stdout);
        const files = readFolder(auto);
        await assertOkEntries(files, manifests(files)[0], ['api', 'assets', 'empty', 'naïve repo']);
        assert.ok(run.lines.some((l) => /Concurrency: concurrency auto: ended at \d+ repositories at once \(started at 4, at most \d+ in flight, cap 16\)\./.test(l)), run.stdout);
        const fixed = tmpDir('disk-fixed');
        const { run: run4 } = await backup({ destination: 'folder', folderPath: fixed, onRepoFailure: 'warn', includeWikis: 'false', concurrency: '4' });
        assert.strictEqual(run4.result?.result, 'SucceededWithIssues', run4.stdout);
        const [manifest] = manifests(readFolder(fixed));
        const failed = manifest.repositories.filter((e: ManifestEntry) => e.status === 'failed');
        assert.strictEqual(failed.length, 1, run4.stdout);
        assert.match(failed[0].error!, /^not enough disk space for Team Alpha\/(api|assets): .* Clones in progress still need .* Free space, lower concurrency, or use an agent with a larger disk\.$/);
        assert.ok(run4.lines.some((l) => l.includes('Concurrency: concurrency 4 (fixed).')), run4.stdout);
      } finally {
        standin.setReportedSize('api', undefined);
        standin.setReportedSize('assets', undefined);
      }
    });

    it('a real small tmpfs as Agent.TempDirectory: refused early by reported size, and a size that lies fills the disk without retries', async function () {
      const mount = tmpDir('tmpfs');
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mount], { stdio: 'pipe' });
      } catch (err) {
        console.log(`      (skipped: cannot mount a tmpfs here: ${String((err as Error).message).split('\n')[0]})`);
        this.skip();
      }
      const disk = await DevOpsStandIn.start({ org: 'fabrikam', root: tmpDir('standin-disk'), tokens: { bearer: [TOKEN], pat: [PAT] } });
      standins.push(disk);
      try {
        const project = disk.addProject('Disk');
        await populate(disk, disk.addRepo(project, 'small'), { commits: [{ message: 'one', files: { 'a.txt': 'a\n' } }] });
        await makeRandomRepo(disk, disk.addRepo(project, 'big'), { sizeBytes: 30 << 20, files: 3, seed: 'big' });
        await makeRandomRepo(disk, disk.addRepo(project, 'liar'), { sizeBytes: 30 << 20, files: 3, seed: 'liar' });
        disk.setReportedSize('liar', 0);
        const folder = tmpDir('disk-dest');
        const { run } = await backup({ destination: 'folder', folderPath: folder, onRepoFailure: 'warn', concurrency: '1', includeLfs: 'false' },
          { orgUrl: disk.orgUrl, variables: { 'Agent.TempDirectory': mount, ...FAST }, scan: [mount] });
        assert.strictEqual(run.result?.result, 'SucceededWithIssues', run.stdout);
        assert.strictEqual(run.result!.message, '1 backed up, 2 failed, 0 skipped: Disk/big, Disk/liar');
        const [manifest] = manifests(readFolder(folder));
        assert.match(entryOf(manifest, 'big').error!, /^not enough disk space for Disk\/big: its mirror needs about \d+ MB but 2\d(\.\d)? MB is free in /);
        assert.deepStrictEqual(gitRequests(disk, 'big'), [], 'refused before any git request');
        assert.strictEqual(entryOf(manifest, 'small').status, 'ok');
        assert.match(entryOf(manifest, 'liar').error!, /^the temporary folder .* \(Agent\.TempDirectory\) ran out of space: the repository is bigger than Azure DevOps reports/);
        const liarPacks = gitRequests(disk, 'liar').filter((r) => r.method === 'POST');
        assert.ok(liarPacks.length <= 2, `a full disk is not retried (${liarPacks.length} upload-pack requests)`);
        assert.deepStrictEqual(fs.readdirSync(mount).filter((n) => n.startsWith('repobackup-') && !n.endsWith('.md')), [], 'no mirror left on the tmpfs');
        const free = fs.statfsSync(mount);
        assert.ok(free.bavail * free.bsize > 23 << 20, 'all space given back');
      } finally {
        execFileSync('umount', [mount]);
      }
    });
  });

  // ------------------------------------------------------------------------------------------------ big organization

  describe('big organization', () => {
    it(`${BIG_ORG} small repositories: completes, memory and open files bounded, progress reported`, async function () {
      this.timeout(BIG_ORG_BUDGET_MS + 120_000);
      // File creation on this machine's disk costs ~1 ms; mirrors and archives of a scale run go to RAM when /dev/shm
      // is a tmpfs (the engine is what is measured, not the disk).
      const shm = fs.existsSync('/dev/shm') && procs.hasProc ? fs.mkdtempSync('/dev/shm/repobackup-hardening-') : tmpDir('big');
      const big = await DevOpsStandIn.start({ org: 'bigorg', root: path.join(shm, 'standin'), tokens: { bearer: [TOKEN], pat: [PAT] } });
      standins.push(big);
      try {
        const made = Date.now();
        const bulk = await addManyRepos(big, 'Bulk', BIG_ORG);
        const makeMs = Date.now() - made;
        const folder = path.join(shm, 'dest');
        fs.mkdirSync(folder);
        let pid = 0;
        let peakRss = 0;
        let maxFds = 0;
        let maxProcs = 0;
        const sampler = procs.every(100, () => {
          if (!pid) return;
          const m = procs.memory(pid);
          if (m) peakRss = Math.max(peakRss, m.peakRss);
          maxFds = Math.max(maxFds, procs.openFds(pid) ?? 0);
          maxProcs = Math.max(maxProcs, procs.descendants(pid).length);
        });
        const started = Date.now();
        let run: TaskRun;
        try {
          ({ run } = await backup({ destination: 'folder', folderPath: folder, includeLfs: 'false', verify: 'false', concurrency: '8' },
            { orgUrl: big.orgUrl, tempDir: path.join(shm, 'run'), onSpawn: (c) => { pid = c.pid!; }, timeoutMs: BIG_ORG_BUDGET_MS }));
        } finally {
          await sampler.stop();
        }
        const runMs = Date.now() - started;
        assert.ok(!run.timedOut, `not done within the budget of ${BIG_ORG_BUDGET_MS / 1000} s (took ${(runMs / 1000).toFixed(1)} s):\n${run.stdout.slice(-2000)}`);
        console.log(`      ${BIG_ORG} repositories: made in ${(makeMs / 1000).toFixed(1)} s, backed up in ${(runMs / 1000).toFixed(1)} s; task peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MB, at most ${maxFds} open fds, ${maxProcs} child processes`);
        assert.strictEqual(run.result?.result, 'Succeeded', run.stdout.slice(-3000));
        assert.strictEqual(run.result!.message, `${BIG_ORG} backed up, 0 failed, 0 skipped`);
        assert.ok(!/EMFILE|ENFILE|too many open files/i.test(run.stdout + run.stderr), 'no EMFILE');
        const files = readFolder(folder);
        const [manifest] = manifests(files);
        assert.strictEqual(manifest.repositories.length, BIG_ORG);
        assert.ok(manifest.repositories.every((e: ManifestEntry) => e.status === 'ok' && e.refs === Object.keys(bulk.content.refs).length));
        assert.strictEqual(files.size, 2 + 2 * BIG_ORG, 'one archive and one .sha256 per repository, and the manifest with its own');
        const sample = manifest.repositories[BIG_ORG >> 1];
        assert.strictEqual(sha256(files.get(sample.archive!)!.bytes), sample.sha256);
        // Bounded: what one repository needs, times the concurrency, not times the organization.
        assert.ok(peakRss > 0 && peakRss < 400 * 2 ** 20, `peak RSS ${peakRss}`);
        assert.ok(maxFds > 0 && maxFds < 200, `open fds ${maxFds}`);
        assert.ok(maxProcs <= 8 * 6, `child processes ${maxProcs}`);
        const progress = run.commands.filter((c) => c.command === 'task.setprogress');
        assert.ok(progress.length >= Math.min(BIG_ORG, 100) && progress.length <= 101, `${progress.length} progress updates: one per percent`);
        assert.strictEqual(progress.at(-1)!.props.value, '100');
        assert.strictEqual(progress.at(-1)!.message, `${BIG_ORG} of ${BIG_ORG} repositories`);
        assert.ok(run.lines.some((l) => l.startsWith(`[${BIG_ORG}/${BIG_ORG}] Bulk/`)));
      } finally {
        await big.stop();
        standins.splice(standins.indexOf(big), 1);
        fs.rmSync(shm, { recursive: true, force: true });
      }
    });
  });

  // ------------------------------------------------------------------------------------------------ malformed REST

  describe('malformed REST data (a proxy or a changed API): a clear error, no crash', () => {
    it('entries with missing fields, nulls or a non-http clone URL: the rest is backed up, the gap is reported', async () => {
      const marker = path.join(tmpDir('ext'), 'pwned');
      standin.faults.malformedRest = {
        transform: (body: { value: Array<Record<string, unknown>> }) => {
          const value: Array<Record<string, unknown>> = body.value.map((r) => ({ ...r, size: null, isDisabled: r.isDisabled ? true : null }));
          const byName = (n: string) => value.find((r) => r.name === n)!;
          delete byName('api').remoteUrl;
          byName('assets').project = null;
          byName('empty').remoteUrl = `ext::sh -c touch% ${marker}`;
          byName('Team Alpha.wiki').defaultBranch = null;
          return { count: value.length + 2, value: [null, ...value, { id: null, name: 42 }] };
        },
      };
      const folder = tmpDir('malformed');
      const { run } = await backup({ destination: 'folder', folderPath: folder }, { variables: FAST });
      assert.strictEqual(run.result?.result, 'SucceededWithIssues', run.stdout);
      assert.match(run.result!.message, /^2 backed up, 0 failed, 1 skipped; 1 warning\(s\)$/);
      const [manifest] = manifests(readFolder(folder));
      assert.deepStrictEqual(manifest.repositories.map((e) => `${e.repository}:${e.status}`).sort(),
        ['Team Alpha.wiki:ok', 'disabled:skipped', 'naïve repo:ok']);
      const warning = (manifest as unknown as { warnings: string[] }).warnings.join('\n');
      assert.match(warning, /^5 entries of the repository list could not be used and were not backed up: \(null entry\) \(no everything\); Team Alpha\/api \(no remoteUrl\); \?\/assets \(no project\); Team Alpha\/empty \(no remoteUrl\); \(unnamed\) \(no id, name, project, remoteUrl\)\./);
      assert.ok(issues(run, 'warning').some((w) => w === warning));
      assert.ok(!fs.existsSync(marker), 'git never ran on an ext:: URL');
    });

    const failures: Array<[string, () => void, RegExp]> = [
      ['the list is null', () => { standin.faults.malformedRest = { transform: (b) => ({ ...b, value: null }) }; },
        /^listing repositories: Azure DevOps at http:\/\/127\.0\.0\.1:\d+\/contoso\/ did not answer with a list \(got (null|an object)\)\. Check that organizationUrl/],
      ['the list is an object', () => { standin.faults.malformedRest = { transform: () => ({ value: { id: 'x' } }) }; },
        /did not answer with a list \(got an object\)/],
      ['no JSON body at all', () => { standin.faults.malformedRest = { transform: () => '' }; },
        /did not answer with a list \(got (null|no JSON body)\)/],
      ['an HTML sign-in page with status 200 for the list', () => { standin.faults.malformedRest = { html: true }; },
        /^listing repositories: .* did not answer with a list .* no proxy between the agent and Azure DevOps rewrites the answer\.$/],
      ['the JSON cut in half', () => { standin.faults.malformedRest = { truncate: true }; },
        /^listing repositories: .* did not answer with a list/],
      ['HTML pages with status 200 for every call, location look-ups included', () => { standin.faults.htmlRest = true; },
        /^connecting to Azure DevOps \(Git\): http:\/\/127\.0\.0\.1:\d+\/contoso\/ did not answer like Azure DevOps .*Check organizationUrl/],
    ];
    for (const [what, arm, re] of failures) {
      it(`${what}: Failed with one clear line`, async () => {
        arm();
        standin.clearLog();
        const { run } = await backup({ destination: 'folder', folderPath: tmpDir('malformed') }, { variables: FAST });
        assert.strictEqual(run.result?.result, 'Failed', run.stdout);
        assert.match(run.result!.message, re);
        assert.deepStrictEqual(standin.requests.filter((r) => r.route !== 'rest'), [], 'no git request');
      });
    }
  });

  // ------------------------------------------------------------------------------------------------ bad input

  describe('bad input that takes a server to see: Failed within seconds, naming what to fix, no git or blob request', () => {
    /** A web server that is not Azure DevOps: every request gets `status` and an HTML page. */
    async function webServer(status: number): Promise<{ url: string; close(): Promise<void> }> {
      const server = http.createServer((req, res) => {
        req.resume();
        res.writeHead(status, { 'Content-Type': 'text/html' }).end('<!DOCTYPE html><html><body><h1>Welcome to nginx!</h1></body></html>');
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
      return {
        url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/contoso/`,
        close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
      };
    }

    const GENERIC_READ = "TF401027: You need the Git 'GenericRead' permission to perform this action. Details: identity 'Build\\\\contoso', scope 'repository'.";
    const cases: Array<[string, () => Promise<{ inputs: Record<string, string>; orgUrl?: string; token?: string; close?(): Promise<void> }>, RegExp]> = [
      ['organizationUrl answers an HTML page (200): not Azure DevOps', async () => {
        const web = await webServer(200);
        return { inputs: { organizationUrl: web.url }, orgUrl: web.url, close: web.close };
      }, /^connecting to Azure DevOps \(Git\): http:\/\/127\.0\.0\.1:\d+\/contoso\/ did not answer like Azure DevOps .*Check organizationUrl \(https:\/\/dev\.azure\.com\/<org>\/\)/],
      ['organizationUrl answers 404 HTML: not Azure DevOps', async () => {
        const web = await webServer(404);
        return { inputs: { organizationUrl: web.url }, orgUrl: web.url, close: web.close };
      }, /^connecting to Azure DevOps \(Git\): http:\/\/127\.0\.0\.1:\d+\/contoso\/ (answered 404|did not answer like Azure DevOps).*Check organizationUrl/],
      ['a PAT Azure DevOps refuses (401)', async () => ({ inputs: { authType: 'pat', personalAccessToken: `${PAT}x` } }),
        /refused the personal access token \(401\)\. The PAT is wrong, expired, revoked or for another organization: create one with scope Code \(Read\)/],
      ['a job token without Read on Repositories (403)', async () => {
        standin.faults.failRest = { count: 1, status: 403, path: /_apis\/git\/repositories\?/, message: GENERIC_READ, typeKey: 'GitNeedsPermissionException' };
        return { inputs: {} };
      }, /^listing repositories: the job access token \(System\.AccessToken\) has no permission \(403: TF401027.*\)\. Give the project build service identity Read on Repositories .*"Limit job authorization scope to current project"/],
      ['a PAT without Read (403)', async () => {
        standin.faults.failRest = { count: 1, status: 403, path: /_apis\/git\/repositories\?/, message: GENERIC_READ, typeKey: 'GitNeedsPermissionException' };
        return { inputs: { authType: 'pat', personalAccessToken: PAT } };
      }, /^listing repositories: the personal access token has no permission \(403: .*\)\. Give the PAT scope Code \(Read\) and make sure its user has Read on Repositories/],
    ];
    for (const [what, setup, re] of cases) {
      it(what, async () => {
        const { sasUrl } = await container();
        const s = await setup();
        standin.clearLog();
        const before = sasRequests();
        try {
          const { run } = await backup({ sasUrl, ...s.inputs }, { orgUrl: s.orgUrl });
          assert.strictEqual(run.result?.result, 'Failed', run.stdout);
          assert.match(run.result!.message, re);
          assert.ok(run.durationMs < 10_000, `${run.durationMs} ms`);
          assert.deepStrictEqual(standin.requests.filter((r) => r.route !== 'rest'), [], 'no git or LFS request');
          assert.strictEqual(sasRequests(), before, 'no request reached Blob storage');
        } finally {
          await s.close?.();
        }
      });
    }
  });

  // ------------------------------------------------------------------------------------------------ secrets

  describe('secrets never leak', () => {
    async function assertStoredNothingSecret(files: Map<string, StoredFile>) {
      const secrets = [TOKEN, PAT, ...sigs];
      const [manifest] = manifests(files);
      assert.ok(manifest);
      for (const f of files.values()) {
        assertNoSecretInBytes(`stored ${f.name}`, [f.bytes, Buffer.from(JSON.stringify(f.metadata))], secrets);
        const format = formatOfName(f.name);
        if (format) {
          const work = tmpDir('extract');
          const file = path.join(work, path.basename(f.name));
          fs.writeFileSync(file, f.bytes);
          await extractArchiveFile(file, format, path.join(work, 'x'));
          assertNoSecretInBytes(`the files inside ${f.name}`, allFileBytes(path.join(work, 'x')), secrets);
        }
      }
    }

    it('System.Debug=true with the job token: debug output, archives, manifest, metadata, temp files and URLs carry none', async () => {
      const { client, sasUrl } = await container();
      const { run } = await backup({ sasUrl }, { variables: { 'System.Debug': 'true' } });
      assert.strictEqual(run.result?.result, 'Succeeded', run.stdout);
      assert.ok(run.commands.filter((c) => c.command === 'task.debug').length > 50, 'debug output was on');
      assert.ok(run.commands.some((c) => c.command === 'task.setsecret'), 'the secrets were registered with the masker');
      await assertStoredNothingSecret(await readContainer(client));
    });

    it('System.Debug=true with a PAT, sampling every process argv while a slow clone runs: no token, PAT or signature', async function () {
      if (!procs.hasProc) this.skip();
      const { client, sasUrl } = await container();
      standin.faults.slowGit = { repo: 'api', delayMs: 700 };
      const forms = [TOKEN, PAT, ...sigs].flatMap(secretForms);
      let samples = 0;
      let sawClone = false;
      const leaks: string[] = [];
      const sampler = procs.every(10, () => {
        samples++;
        for (const { pid, cmdline } of procs.allCmdlines()) {
          if (cmdline.includes('clone\0--mirror')) sawClone = true;
          for (const f of forms) if (cmdline.includes(f)) leaks.push(`pid ${pid}: ${cmdline.toString().split(f).join('<SECRET>')}`);
        }
      });
      const { run } = await backup({ sasUrl, authType: 'pat', personalAccessToken: PAT }, { variables: { 'System.Debug': 'true' } });
      await sampler.stop();
      assert.strictEqual(run.result?.result, 'Succeeded', run.stdout);
      assert.ok(sawClone && samples > 50, `sampled ${samples} times, saw a clone: ${sawClone}`);
      assert.deepStrictEqual(leaks, []);
      await assertStoredNothingSecret(await readContainer(client));
    });

    it('a SAS the storage refuses (wrong signature): the storage error is reported without the signature', async () => {
      const { client } = await container();
      const wrong = `canarySig${randomBytes(16).toString('base64')}`;
      sigs.push(wrong);
      const good = new URL(azurite.containerSasUrl(client.containerName, 'cw'));
      good.searchParams.set('sig', wrong);
      const { run } = await backup({ sasUrl: good.toString(), repositories: 'Team Alpha/api' }, { variables: FAST });
      assert.strictEqual(run.result?.result, 'Failed');
      assert.match(run.result!.message, /Blob storage refused '.*manifest\.json' \(403 \w+\): the SAS lacks create\/write rights, has expired, or the storage firewall blocks this agent\./);
      assert.ok(run.lines.some((l) => /Team Alpha\/api: FAILED .*\(403 \w+\): the SAS lacks create\/write rights/.test(l)));
      assert.strictEqual((await readContainer(client)).size, 0);
    });
  });
});

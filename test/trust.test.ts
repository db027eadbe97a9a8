// Trust: a run never ends Succeeded over a gap. Each case is one way a backup could silently miss data: a job token
// limited to its own project, matrix legs taken for shards, ref lists longer than a capped buffer, a repository in
// maintenance, an agent that fell back to an old Node.js, and a temp-space check that counted clones in flight twice.
// The bundled tasks run as the agent runs them, against the Azure DevOps stand-in (REST + git http-backend + LFS).
import assert from 'assert';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { assertNoSecretInOutput, Manifest, readFolder } from './harness/checks';
import { makeRandomRepo, populate } from './harness/corpus';
import { DevOpsStandIn, Project } from './harness/devops-standin';
import { runTask, TaskRun } from './harness/run-task';
import { authEnv, cleanupAll, git, refMap, tmpDir } from './harness/util';
import { FakeHost } from './unit/fake-host';
import { DevOpsClient } from '../tasks/common/src/devops';
import { Destination, FolderDestination, PutOptions } from '../tasks/common/src/destinations';
import { Git } from '../tasks/common/src/git';
import { runBackup } from '../tasks/RepoBackup/RepoBackupV1/src/backup';
import { usedBytes } from '../tasks/common/src/mirror';
import { readBackupSettings } from '../tasks/RepoBackup/RepoBackupV1/src/settings';

const ROOT = path.resolve(__dirname, '..', '..');
const BACKUP = path.join(ROOT, 'tasks/RepoBackup/RepoBackupV1/dist/index.js');
const RESTORE = path.join(ROOT, 'tasks/RepoRestore/RepoRestoreV1/dist/index.js');
const TOKEN = `canaryOrgToken${randomBytes(12).toString('hex')}`;
const SCOPED = `canaryScopedToken${randomBytes(12).toString('hex')}`;

describe('Trust: never Succeeded over a gap', function () {
  this.timeout(180_000);
  let standin: DevOpsStandIn;
  let alpha: Project;
  let beta: Project;
  let buildId = 5000;

  before(async () => {
    standin = await DevOpsStandIn.start({ org: 'contoso', root: tmpDir('standin'), tokens: { bearer: [TOKEN, SCOPED] } });
    standin.projectScopedTokens.set(SCOPED, 'Team Alpha');
    alpha = standin.addProject('Team Alpha');
    beta = standin.addProject('Team Beta');
    const one = (name: string) => ({ commits: [{ message: `first of ${name}`, files: { 'README.md': `# ${name}\n` } }] });
    await Promise.all([
      populate(standin, standin.addRepo(alpha, 'api'), one('api')),
      populate(standin, standin.addRepo(alpha, 'web'), one('web')),
      populate(standin, standin.addRepo(beta, 'billing'), one('billing')),
    ]);
  });

  after(async () => {
    await standin?.stop();
    await cleanupAll();
  });

  async function backup(inputs: Record<string, string>, opts: { token?: string; variables?: Record<string, string>; env?: Record<string, string> } = {}) {
    const folder = tmpDir('dest');
    const run = await runTask(BACKUP, {
      inputs: { destination: 'folder', folderPath: folder, ...inputs },
      orgUrl: standin.orgUrl, token: opts.token ?? TOKEN, tempDir: tmpDir('run'),
      variables: { 'Build.BuildId': String(++buildId), ...opts.variables }, env: opts.env, timeoutMs: 150_000,
    });
    assertNoSecretInOutput(run, [TOKEN, SCOPED]);
    const files = readFolder(folder);
    const manifests = [...files.values()].filter((f) => /manifest[^/]*\.json$/.test(f.name)).map((f) => JSON.parse(f.bytes.toString('utf8')) as Manifest & Record<string, any>);
    return { run, folder, files, manifests };
  }
  const explain = (run: TaskRun) => `result ${JSON.stringify(run.result)}\n${run.stdout.slice(-4000)}\n${run.stderr.slice(-1000)}`;
  const backedUp = (m: Manifest) => m.repositories.filter((r) => r.status === 'ok').map((r) => `${r.project}/${r.repository}`).sort();

  describe('job token limited to its own project (item 1)', () => {
    afterEach(() => {
      standin.generalSettings.clear();
      standin.faults = {};
    });

    it('settings say the scope is limited: the default filter backs up what it sees, ends Failed and names the setting', async () => {
      standin.setGeneralSettings(alpha, { enforceJobAuthScope: true });
      const { run, manifests } = await backup({}, { token: SCOPED });
      assert.strictEqual(run.result?.result, 'Failed', explain(run));
      assert.match(run.result!.message, /INCOMPLETE/);
      assert.match(run.stdout, /Limit job authorization scope to current project for non-release pipelines/);
      assert.match(run.stdout, /Organization settings → Pipelines → Settings/);
      assert.match(run.stdout, /'Team Alpha\/\*'/, 'names the filter that would make it complete');
      assert.match(run.stdout, /authType: pat/);
      // What is visible is stored, and the manifest says the run is incomplete.
      assert.strictEqual(manifests.length, 1);
      assert.deepStrictEqual(backedUp(manifests[0]), ['Team Alpha/api', 'Team Alpha/web']);
      assert.strictEqual(manifests[0].coverage.complete, false);
      assert.match(manifests[0].coverage.gaps[0], /Only project 'Team Alpha'/);
    });

    it('a filter that names only the visible project gets no warning and ends Succeeded', async () => {
      standin.setGeneralSettings(alpha, { enforceJobAuthScope: true });
      const { run, manifests } = await backup({ repositories: 'Team Alpha/*' }, { token: SCOPED });
      assert.strictEqual(run.result?.result, 'Succeeded', explain(run));
      assert.ok(!run.commands.some((c) => c.command === 'task.issue' && c.props.type === 'warning'), 'no warning');
      assert.strictEqual(manifests[0].coverage.complete, true);
      assert.deepStrictEqual(backedUp(manifests[0]), ['Team Alpha/api', 'Team Alpha/web']);
    });

    it('settings unreadable and only the own project visible: treated as limited, Failed', async () => {
      standin.faults.failRest = { count: 10, status: 403, path: /generalsettings/, message: 'TF50309: no permission to view project-level build settings.', typeKey: 'AccessDeniedException' };
      const { run, manifests } = await backup({ repositories: '*/*\nTeam Beta/billing' }, { token: SCOPED });
      assert.strictEqual(run.result?.result, 'Failed', explain(run));
      assert.match(run.stdout, /could not be read/);
      assert.deepStrictEqual(backedUp(manifests[0]), ['Team Alpha/api', 'Team Alpha/web']);
    });

    it('an organization-wide token with the limit off: everything, Succeeded (the settings were read)', async () => {
      standin.clearLog();
      const { run, manifests } = await backup({});
      assert.strictEqual(run.result?.result, 'Succeeded', explain(run));
      assert.deepStrictEqual(backedUp(manifests[0]), ['Team Alpha/api', 'Team Alpha/web', 'Team Beta/billing']);
      assert.ok(standin.requests.some((r) => /\/Team%20Alpha\/_apis\/build\/generalsettings/.test(r.url) && r.status === 200), 'general settings read');
      assert.match(run.stdout, /scope to current project for non-release pipelines" is off/);
    });

    it('a filter naming a project the credentials cannot see: Failed, naming the project', async () => {
      const { run } = await backup({ repositories: 'Team Alpha/*\nTeam Gamma/*' });
      assert.strictEqual(run.result?.result, 'Failed', explain(run));
      assert.match(run.result!.message, /'Team Gamma'/);
    });
  });

  describe('matrix legs are not shards (item 2)', () => {
    it('MultiConfiguration (matrix): each leg backs up everything, and says why it does not slice', async () => {
      const { run, manifests } = await backup({}, { variables: { 'System.TotalJobsInPhase': '3', 'System.JobPositionInPhase': '2', 'System.ParallelExecutionType': 'MultiConfiguration' } });
      assert.strictEqual(run.result?.result, 'Succeeded', explain(run));
      assert.deepStrictEqual(backedUp(manifests[0]), ['Team Alpha/api', 'Team Alpha/web', 'Team Beta/billing']);
      assert.deepStrictEqual(manifests[0].run.shard, { position: 1, total: 1, fingerprint: null });
      assert.strictEqual(run.lines.filter((l) => /matrix legs/.test(l)).length, 1, 'one line says why');
    });

    it('MultiMachine (parallel: N): sliced, each job a share, together everything once', async () => {
      const seen: string[] = [];
      for (const position of [1, 2]) {
        const { run, manifests } = await backup({}, { variables: { 'Build.BuildId': '77', 'System.TotalJobsInPhase': '2', 'System.JobPositionInPhase': String(position), 'System.ParallelExecutionType': 'MultiMachine' } });
        assert.strictEqual(run.result?.result, 'Succeeded', explain(run));
        assert.strictEqual(manifests[0].run.shard.total, 2);
        seen.push(...backedUp(manifests[0]));
      }
      assert.deepStrictEqual(seen.sort(), ['Team Alpha/api', 'Team Alpha/web', 'Team Beta/billing']);
    });
  });

  describe('a repository in maintenance (item 4)', () => {
    it('is skipped with its reason and a warning: SucceededWithIssues, the others backed up', async () => {
      const repo = standin.findRepo('Team Alpha', 'web')!;
      standin.setRepoInMaintenance(repo.id, true);
      try {
        const { run, manifests } = await backup({});
        assert.strictEqual(run.result?.result, 'SucceededWithIssues', explain(run));
        const entry = manifests[0].repositories.find((r) => r.repository === 'web')!;
        assert.strictEqual(entry.status, 'skipped');
        assert.match(entry.error!, /maintenance/);
        assert.ok(run.commands.some((c) => c.command === 'task.issue' && c.props.type === 'warning' && /maintenance/.test(c.message)));
        assert.deepStrictEqual(backedUp(manifests[0]), ['Team Alpha/api', 'Team Beta/billing']);
      } finally {
        standin.setRepoInMaintenance(repo.id, false);
      }
    });
  });

  describe('Node.js older than 20 (item 7)', () => {
    it('fails at once with one line that says why and what to do; nothing is listed or cloned', async () => {
      const preload = path.join(tmpDir('preload'), 'node16.js');
      fs.writeFileSync(preload, "Object.defineProperty(process, 'versions', { value: { ...process.versions, node: '16.20.2' } });\n");
      standin.clearLog();
      const { run, files } = await backup({}, { env: { NODE_OPTIONS: `--require ${preload}` } });
      assert.strictEqual(run.result?.result, 'Failed', explain(run));
      assert.match(run.result!.message, /needs Node\.js 20 or later, but the agent ran it with Node\.js 16\.20\.2/);
      assert.match(run.result!.message, /glibc/);
      assert.strictEqual(standin.requests.length, 0, 'no request');
      assert.strictEqual(files.size, 0);
    });
  });

  describe('long git output is never cut (item 3)', () => {
    it('a repository with 9,000+ refs (non-ASCII branches, tags, refs/pull): manifest count exact, head set, restore equal', async function () {
      this.timeout(300_000);
      const repo = standin.addRepo(alpha, 'many-refs');
      await populate(standin, repo, { commits: [{ message: 'one', files: { 'a.txt': 'a\n' } }, { message: 'two', files: { 'b.txt': 'b\n' } }] });
      const main = (await refMap(repo.gitDir))['refs/heads/main'];
      const first = (await git(['--git-dir', repo.gitDir, 'rev-parse', 'main~1'])).trim();
      const lines: string[] = [];
      // Branch names with multi-byte characters at every offset, so that chunk boundaries fall inside characters.
      for (let i = 0; i < 5000; i++) lines.push(`create refs/heads/feature/${'ü'.repeat(i % 7)}ñame-ßß-${String(i).padStart(5, '0')}-日本 ${i % 2 ? main : first}`);
      for (let i = 0; i < 3000; i++) lines.push(`create refs/tags/v1.${i} ${i % 3 ? main : first}`);
      for (let i = 1; i <= 1000; i++) lines.push(`create refs/pull/${i}/merge ${main}`);
      await git(['--git-dir', repo.gitDir, 'update-ref', '--stdin'], { input: lines.join('\n') + '\n' });
      await git(['--git-dir', repo.gitDir, 'pack-refs', '--all']);
      const source = await refMap(repo.gitDir);
      const refCount = Object.keys(source).length;
      assert.ok(refCount >= 9001, `${refCount} refs`);
      const listing = Object.entries(source).map(([n, o]) => `${o} ${n}\n`).join('');
      assert.ok(Buffer.byteLength(listing) > 512 * 1024, `ref listing ${Buffer.byteLength(listing)} bytes (more than the old 256 KiB cap)`);

      const { run, manifests, folder } = await backup({ repositories: 'Team Alpha/many-refs' });
      assert.strictEqual(run.result?.result, 'Succeeded', explain(run));
      const entry = manifests[0].repositories.find((r) => r.repository === 'many-refs')! as Manifest['repositories'][number] & { head: string | null };
      assert.strictEqual(entry.refs, refCount, 'every ref counted');
      assert.strictEqual(entry.head, main, 'head found');

      const restored = await runTask(RESTORE, {
        inputs: { organizationUrl: standin.orgUrl, source: 'folder', folderPath: folder, archive: entry.archive!, targetProject: 'Team Beta', targetRepository: 'many-refs restored' },
        orgUrl: standin.orgUrl, token: TOKEN, tempDir: tmpDir('run'), timeoutMs: 280_000,
      });
      assert.strictEqual(restored.result?.result, 'Succeeded', explain(restored));
      const target = standin.findRepo('Team Beta', 'many-refs restored')!;
      const live = await refMap(target.gitDir);
      const expected = Object.fromEntries(Object.entries(source).filter(([n]) => !n.startsWith('refs/pull/')));
      assert.strictEqual(Object.keys(live).length, Object.keys(expected).length);
      assert.deepStrictEqual(live, expected);
      // The same list read over HTTP by the client, as a restore's verification does.
      const remote = await git(['ls-remote', target.cloneUrl], { env: authEnv(`Bearer ${TOKEN}`) });
      assert.strictEqual(remote.split('\n').filter((l) => l.includes('\trefs/')).length, Object.keys(expected).length);
      console.log(`      ${refCount} refs, listing ${Buffer.byteLength(listing)} bytes; backup ${(run.durationMs / 1000).toFixed(1)} s, restore ${(restored.durationMs / 1000).toFixed(1)} s`);
    });
  });
});

describe('Trust: temp space is not counted twice for clones in flight (item 6)', function () {
  this.timeout(120_000);
  let standin: DevOpsStandIn;

  before(async () => {
    standin = await DevOpsStandIn.start({ org: 'contoso', root: tmpDir('standin'), tokens: { bearer: [TOKEN] } });
  });
  after(async () => {
    await standin?.stop();
    await cleanupAll();
  });

  it('a disk that holds two mirrors at a time backs up three, two in parallel', async () => {
    const project = standin.addProject('Disk');
    const MB = 1 << 20;
    const sizes = { a: 12 * MB, b: 10 * MB, c: 8 * MB };
    for (const [name, size] of Object.entries(sizes)) await makeRandomRepo(standin, standin.addRepo(project, name), { sizeBytes: size, files: 2, seed: name });
    // The engine reserves 1.1 × the listed size + 16 MiB per mirror; the simulated disk holds a's and b's grants together.
    const listed = (name: string) => (standin.repoJson(standin.findRepo('Disk', name)!).size as number);
    const grant = (name: string) => Math.ceil(listed(name) * 1.1) + 16 * MB;
    const capacity = grant('a') + grant('b') + MB;

    const folder = tmpDir('dest');
    const host = new FakeHost({ organizationUrl: standin.orgUrl, destination: 'folder', folderPath: folder, concurrency: '2', includeLfs: 'false' },
      { 'Agent.TempDirectory': tmpDir('agent-temp'), 'Build.BuildId': '1', 'System.TeamProject': 'Disk' }, { url: standin.orgUrl, token: TOKEN });
    const settings = await readBackupSettings(host, '1.0.0');
    // b's upload waits until c has reserved its space and cloned: c then starts while b's whole mirror is on disk.
    let releaseB!: () => void;
    const bHeld = new Promise<void>((resolve) => { releaseB = resolve; });
    // Should c fail (the bug: "not enough disk space"), b must not wait for ever: the test then fails on its assertions.
    const originalError = host.error.bind(host);
    host.error = (message: string) => { if (/Disk\/c: FAILED/.test(message)) releaseB(); originalError(message); };
    const inner = new FolderDestination(folder);
    const destination: Destination = Object.assign(Object.create(inner), {
      put: async (name: string, body: NodeJS.ReadableStream, opts: PutOptions) => {
        if (name.endsWith('/b.zip')) await bHeld;
        if (name.endsWith('/c.zip')) releaseB();
        return inner.put(name, body as never, opts);
      },
    });
    let peak = 0;
    const outcome = await runBackup(settings, {
      log: host, progress: () => undefined,
      devops: new DevOpsClient(settings.organization.url, settings.credentials, host, settings.retry),
      git: new Git(host), destination, gitEnv: (url) => settings.credentials.gitEnv(url), retry: settings.retry,
      freeBytes: async (dir) => {
        const used = await usedBytes(dir);
        peak = Math.max(peak, used);
        return capacity - used;
      },
    });
    const failed = outcome.report.results.filter((r) => r.status !== 'ok').map((r) => `${r.repo.name}: ${r.error}`);
    assert.deepStrictEqual(failed, [], 'no false "not enough disk space"');
    assert.strictEqual(outcome.report.results.filter((r) => r.status === 'ok').length, 3);
    console.log(`      simulated disk ${(capacity / MB).toFixed(1)} MiB; grants a ${(grant('a') / MB).toFixed(1)}, b ${(grant('b') / MB).toFixed(1)}, c ${(grant('c') / MB).toFixed(1)} MiB; peak written ${(peak / MB).toFixed(1)} MiB`);
  });
});

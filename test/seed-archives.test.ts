// RepoRestore@1 on the archives people already have: made exactly as the PowerShell backup script does
// (`git clone -c http.extraheader=… --bare <remoteUrl> <folder>`, `git lfs fetch --all`, then a zip of that folder,
// so the repository is one folder down, with no manifest or checksum and the token in its config), and tar.gz files
// of plain `git clone --mirror` folders. Plus the restore error messages, each provoked on the stand-in.
import * as assert from 'assert';
import { execFileSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { buildStandardCorpus, CorpusRepo, StandardCorpus } from './harness/corpus';
import { DevOpsStandIn } from './harness/devops-standin';
import { runTask, TaskRun } from './harness/run-task';
import { authEnv, cleanupAll, git, refMap, tmpDir } from './harness/util';

const ROOT = path.resolve(__dirname, '..', '..');
const BACKUP = path.join(ROOT, 'tasks/RepoBackup/RepoBackupV1/dist/index.js');
const RESTORE = path.join(ROOT, 'tasks/RepoRestore/RepoRestoreV1/dist/index.js');
/** The restore's job token. */
const TOKEN = `canaryjob${crypto.randomBytes(16).toString('hex')}`;
/** The token the seed script's run had (its System.AccessToken), stored by `git clone -c` in every archive. */
const SEED_TOKEN = `canaryseed${crypto.randomBytes(16).toString('hex')}`;
const PAT = `canarypat${crypto.randomBytes(24).toString('hex')}`.slice(0, 52);

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

const headsAndTags = (refs: Record<string, string>) =>
  Object.fromEntries(Object.entries(refs).filter(([n]) => n.startsWith('refs/heads/') || n.startsWith('refs/tags/')));

describe('RepoRestore@1 on seed-pipeline archives, and its error messages', function () {
  this.timeout(120_000);
  let standin: DevOpsStandIn;
  let corpus: StandardCorpus;
  let folder: string;
  const runs: Array<{ label: string; run: TaskRun }> = [];
  const measured: string[] = [];

  async function restore(label: string, inputs: Record<string, string>): Promise<TaskRun> {
    const run = await runTask(RESTORE, {
      inputs: { organizationUrl: standin.orgUrl, source: 'folder', folderPath: folder, ...inputs },
      orgUrl: standin.orgUrl, token: TOKEN, tempDir: tmpDir('run'), env: { NODE_PATH: '', NODE_OPTIONS: '' }, timeoutMs: 60_000,
    });
    runs.push({ label, run });
    return run;
  }
  const explain = (run: TaskRun) => `result ${JSON.stringify(run.result)}\n--- stdout\n${run.stdout.slice(-4000)}\n--- stderr\n${run.stderr.slice(-1500)}`;
  const warnings = (run: TaskRun) => run.commands.filter((c) => c.command === 'task.issue' && c.props.type === 'warning').map((c) => c.message);

  /** The seed script's steps for one repository, with zip -r of the clone folder (repository one folder down). */
  async function seedZip(r: CorpusRepo, folderName: string): Promise<string> {
    const work = tmpDir('seed');
    const clone = path.join(work, folderName);
    // The remoteUrl as the REST API gives it (with the org as user info), the token stored by `git clone -c`.
    await git(['clone', '-c', `http.extraheader=AUTHORIZATION: bearer ${SEED_TOKEN}`, '--bare', '--quiet', r.repo.remoteUrl, clone]);
    await git(['lfs', 'fetch', '--all'], { cwd: clone });
    const rel = `seed/2024-03-02_${folderName}.zip`;
    fs.mkdirSync(path.join(folder, 'seed'), { recursive: true });
    execFileSync('zip', ['-q', '-r', path.join(folder, rel), folderName], { cwd: work });
    return rel;
  }

  before(async function () {
    standin = await DevOpsStandIn.start({ org: 'contoso', root: tmpDir('standin'), tokens: { bearer: [TOKEN, SEED_TOKEN], pat: [PAT] } });
    corpus = await buildStandardCorpus(standin);
    folder = tmpDir('backups');
  });

  after(async () => {
    await standin?.stop();
    await cleanupAll();
    if (measured.length) console.log(`      measured:\n${measured.map((m) => `        ${m}`).join('\n')}`);
  });

  it('restores seed-style zips (bare clone one folder down, token in its config): heads and tags equal, LFS back, no token left', async () => {
    const cases = [
      { r: corpus.repos.api, folderName: 'api', target: 'api from seed' },
      { r: corpus.repos.assets, folderName: 'Team-Alpha_assets', target: 'assets from seed' },
    ];
    for (const c of cases) {
      const rel = await seedZip(c.r, c.folderName);
      const listing = execFileSync('unzip', ['-Z1', path.join(folder, rel)], { encoding: 'utf8' }).split('\n');
      assert.ok(listing.includes(`${c.folderName}/HEAD`) && !listing.includes('HEAD'), 'the repository is one folder down in the zip');
      const config = execFileSync('unzip', ['-p', path.join(folder, rel), `${c.folderName}/config`], { encoding: 'utf8' });
      assert.ok(config.includes(SEED_TOKEN), 'the seed archive carries the token in its config, as the script leaves it');

      const refused = await restore(`seed ${c.folderName} without allowMissingChecksum`, { archive: rel, targetProject: 'Team Alpha', targetRepository: c.target });
      assert.strictEqual(refused.result?.result, 'Failed', explain(refused));
      assert.match(refused.result!.message, /No SHA-256 is stored .*allowMissingChecksum: true/);

      const run = await restore(`seed ${c.folderName}`, { archive: rel, targetProject: 'Team Alpha', targetRepository: c.target, allowMissingChecksum: 'true' });
      assert.strictEqual(run.result?.result, 'SucceededWithIssues', explain(run));
      const target = standin.findRepo('Team Alpha', c.target)!;
      assert.ok(target, 'the target was created');
      const want = headsAndTags(c.r.refs);
      assert.deepStrictEqual(await refMap(target.gitDir), want, 'heads and tags equal (a bare clone has no notes or pull refs)');
      for (const l of c.r.lfs) assert.ok(fs.existsSync(standin.lfsObjectPath(target, l.oid)), `LFS object ${l.oid} uploaded`);
      const leaks = filesUnder(target.gitDir).filter((f) => fs.readFileSync(f).includes(SEED_TOKEN));
      assert.deepStrictEqual(leaks, [], 'no token in the restored repository');
      const w = warnings(run);
      assert.strictEqual(w.filter((x) => /contains credentials in its repository config \(http\.extraheader/.test(x)).length, 1, w.join('\n'));
      assert.ok(w.some((x) => /the archive itself still contains them: re-create the backup/.test(x)), w.join('\n'));
      assert.ok(w.some((x) => /Checked instead: git fsck --connectivity-only .* SHA-256 of every LFS object/.test(x)), w.join('\n'));
      assert.ok(run.lines.some((l) => l.includes(`in the archive's top folder '${c.folderName}'`)), 'the log says where the repository was');
      const summary = fs.readFileSync(run.commands.find((x) => x.command === 'task.uploadsummary')!.message, 'utf8');
      assert.match(summary, /\| Not in the archive \| pull request refs \(refs\/pull\/\*\), notes \(refs\/notes\/\*\) \(nothing to restore/);
      assert.match(summary, new RegExp(`Repository in the archive \\| in the top folder '${c.folderName}'`));
      assert.match(summary, new RegExp(`Refs restored \\| ${Object.keys(want).length} \\(branches \\d+, tags \\d+, notes 0, other 0\\)`));
      measured.push(`seed zip ${c.folderName}: ${Object.keys(want).length} refs equal, ${c.r.lfs.length} LFS objects, ${fs.statSync(path.join(folder, rel)).size} bytes`);
    }
  });

  it('restores a tar.gz of a plain git clone --mirror folder (one folder down), every ref but refs/pull', async () => {
    const work = tmpDir('mirror');
    await git(['clone', '--mirror', '--quiet', corpus.repos.api.repo.cloneUrl, path.join(work, 'api.git')], { env: authEnv(`Bearer ${TOKEN}`) });
    fs.mkdirSync(path.join(folder, 'mirrors'), { recursive: true });
    execFileSync('tar', ['-czf', path.join(folder, 'mirrors/api.tar.gz'), 'api.git'], { cwd: work });
    const run = await restore('mirror tar.gz', { archive: 'mirrors/api.tar.gz', targetProject: 'Team Alpha', targetRepository: 'api from mirror', allowMissingChecksum: 'true' });
    assert.strictEqual(run.result?.result, 'SucceededWithIssues', explain(run));
    const want = Object.fromEntries(Object.entries(corpus.repos.api.refs).filter(([n]) => !n.startsWith('refs/pull/')));
    assert.deepStrictEqual(await refMap(standin.findRepo('Team Alpha', 'api from mirror')!.gitDir), want);
    assert.ok(!warnings(run).some((w) => /contains credentials/.test(w)), 'a clone made with environment config stores no credential');
  });

  it('refuses an archive with two top folders, naming what it holds', async () => {
    const work = tmpDir('two');
    fs.mkdirSync(path.join(work, 'a'));
    fs.mkdirSync(path.join(work, 'b'));
    fs.writeFileSync(path.join(work, 'a', 'x.txt'), 'x');
    fs.writeFileSync(path.join(work, 'b', 'y.txt'), 'y');
    execFileSync('zip', ['-q', '-r', path.join(folder, 'seed/two.zip'), 'a', 'b'], { cwd: work });
    const run = await restore('two folders', { archive: 'seed/two.zip', targetProject: 'Team Alpha', targetRepository: 'never two', allowMissingChecksum: 'true' });
    assert.strictEqual(run.result?.result, 'Failed', explain(run));
    assert.match(run.result!.message, /holds no bare git repository: there is no HEAD at its root nor in its one top folder \(it has 'a', 'b'\)/);
    assert.strictEqual(standin.findRepo('Team Alpha', 'never two'), undefined);
  });

  describe('error messages, provoked on the stand-in', () => {
    let apiZip: string;
    before(async () => {
      apiZip = await seedZip(corpus.repos.api, 'api-msg');
    });
    const base = () => ({ archive: apiZip, targetProject: 'Team Alpha', allowMissingChecksum: 'true' });

    it('creating the repository refused with 403 says Grant "Create repository"', async () => {
      standin.faults.failRest = { count: 1, status: 403, method: 'POST', path: /\/_apis\/git\/repositories/i, typeKey: 'UnauthorizedRequestException',
        message: 'TF401027: You need the Git \'CreateRepository\' permission to perform this action.' };
      try {
        const job = await restore('create 403 (job token)', { ...base(), targetRepository: 'no create' });
        assert.strictEqual(job.result?.result, 'Failed', explain(job));
        assert.match(job.result!.message, /may not create repositories in Team Alpha \(403: TF401027.*Grant "Create repository" .* build service identity/);
        standin.faults.failRest = { count: 1, status: 403, method: 'POST', path: /\/_apis\/git\/repositories/i, typeKey: 'UnauthorizedRequestException', message: 'TF401027: denied' };
        const pat = await restore('create 403 (PAT)', { ...base(), targetRepository: 'no create', authType: 'pat', personalAccessToken: PAT });
        assert.match(pat.result!.message, /Grant "Create repository" .* PAT scope Code \(Read, write & manage\) \(Code \(Read & write\) cannot create repositories\)/);
      } finally {
        standin.faults.failRest = undefined;
      }
    });

    it('a push refused with 403 names the permissions and, for the job token, "Protect access to repositories in YAML pipelines"', async () => {
      standin.faults.refusePush = { status: 403 };
      try {
        const job = await restore('push 403 (job token)', { ...base(), targetRepository: 'no push' });
        assert.strictEqual(job.result?.result, 'Failed', explain(job));
        assert.match(job.result!.message, /pushing refs: the job access token \(System.AccessToken\) may not write to Team Alpha\/no push \(403: .*Contribute, Create branch, Create tag and Manage notes.*"Protect access to repositories in YAML pipelines"/);
        const pat = await restore('push 403 (PAT)', { ...base(), targetRepository: 'no push', authType: 'pat', personalAccessToken: PAT, allowNonEmpty: 'true' });
        assert.match(pat.result!.message, /may not write to .*\(403: .*PAT needs scope Code \(Read & write\)/);
        assert.doesNotMatch(pat.result!.message, /Protect access/);
      } finally {
        standin.faults.refusePush = undefined;
      }
    });

    it('a push refused with 401, and a wrong PAT on REST, say which token and the scope a restore needs', async () => {
      standin.faults.refusePush = { status: 401 };
      try {
        const job = await restore('push 401', { ...base(), targetRepository: 'no push 401' });
        assert.strictEqual(job.result?.result, 'Failed', explain(job));
        assert.match(job.result!.message, /pushing refs: Azure DevOps refused the job access token \(System.AccessToken\) \(401: /);
      } finally {
        standin.faults.refusePush = undefined;
      }
      const wrong = await restore('wrong PAT', { ...base(), targetRepository: 'x', authType: 'pat', personalAccessToken: 'not-a-valid-pat-0000000000000000000000000000000000' });
      assert.strictEqual(wrong.result?.result, 'Failed', explain(wrong));
      assert.match(wrong.result!.message, /\(401\)\. .*scope Code \(Read, write & manage\)/);
      assert.doesNotMatch(wrong.result!.message, /scope Code \(Read\) /);
    });

    it('an empty manifest input falls back to an older backup when the newest lists the repository without an archive, and says which', async () => {
      // A real backup (build 7), then a newer manifest where the repository failed (no archive).
      const backup = await runTask(BACKUP, {
        inputs: { organizationUrl: standin.orgUrl, destination: 'folder', folderPath: folder, repositories: 'Équipe Bêta/*' },
        orgUrl: standin.orgUrl, token: TOKEN, tempDir: tmpDir('run'), variables: { 'Build.BuildId': '7' }, env: { NODE_PATH: '', NODE_OPTIONS: '' },
      });
      assert.strictEqual(backup.result?.result, 'Succeeded', explain(backup));
      const older = filesUnder(folder).find((f) => f.endsWith(`${path.sep}7.1${path.sep}manifest.json`))!;
      const manifest = JSON.parse(fs.readFileSync(older, 'utf8'));
      for (const e of manifest.repositories) Object.assign(e, { status: 'failed', archive: null, sha256: null, size: null, error: 'clone failed: connection reset' });
      const newer = path.join(folder, 'contoso', '2099-01-01', '8.1', 'manifest.json');
      fs.mkdirSync(path.dirname(newer), { recursive: true });
      fs.writeFileSync(newer, JSON.stringify(manifest));
      const future = new Date(Date.now() + 3600_000);
      fs.utimesSync(newer, future, future);
      const run = await restore('fallback', { repository: 'Équipe Bêta/naïve repo', targetProject: 'Équipe Bêta', targetRepository: 'naïve fallback' });
      assert.strictEqual(run.result?.result, 'SucceededWithIssues', explain(run));
      const w = warnings(run);
      assert.ok(w.some((x) => /The newest backup of Équipe Bêta\/naïve repo \(manifest 'contoso\/2099-01-01\/8\.1\/manifest\.json', \d{4}-.*\) has no archive of it \(status failed: clone failed: connection reset\); restoring the older backup from manifest 'manifests\/contoso\/.*\/7\.1\/manifest\.json' \(\d{4}-/.test(x)), w.join('\n'));
      assert.deepStrictEqual(await refMap(standin.findRepo('Équipe Bêta', 'naïve fallback')!.gitDir), corpus.repos.naive.refs);
    });
  });

  describe('all runs', () => it('never show a token or the PAT (log lines, stderr, summaries, request URLs)', () => {
    const secrets = [TOKEN, SEED_TOKEN, PAT, Buffer.from(`:${PAT}`).toString('base64')];
    assert.ok(runs.length >= 10, `only ${runs.length} runs`);
    const leaks: string[] = [];
    for (const { label, run } of runs) {
      for (const line of [...run.lines, ...run.stderr.split(/\r?\n/)]) {
        if (secrets.some((s) => line.includes(s)) && !/^##vso\[task\.setsecret\]/.test(line)) leaks.push(`${label}: ${line.slice(0, 200)}`);
      }
      for (const c of run.commands.filter((x) => x.command === 'task.uploadsummary')) {
        if (secrets.some((s) => fs.readFileSync(c.message, 'utf8').includes(s))) leaks.push(`${label}: summary`);
      }
    }
    assert.deepStrictEqual(leaks, []);
    assert.deepStrictEqual(standin.requests.map((r) => r.url).filter((u) => secrets.some((s) => u.includes(s))), []);
  }));
});

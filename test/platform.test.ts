// Platform behaviour of the tasks as the agent runs them (Linux here): which git and git-lfs are used, what a
// missing git says, and a folder destination that leaves nothing of its probing behind. The Windows and macOS
// branches are proven by the unit specs test/unit/platform-*.test.ts; what needs a real Windows agent: README "Platforms".
import assert from 'assert';
import { randomBytes } from 'crypto';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { assertNoSecretInOutput, manifests, readFolder } from './harness/checks';
import { buildStandardCorpus } from './harness/corpus';
import { DevOpsStandIn } from './harness/devops-standin';
import { runTask } from './harness/run-task';
import { cleanupAll, tmpDir } from './harness/util';

const ENTRY = path.resolve(__dirname, '../../tasks/RepoBackup/RepoBackupV1/dist/index.js');
const TOKEN = `canaryJobToken${randomBytes(12).toString('hex')}`;

describe('platforms: git lookup and folder publishing, end to end', function () {
  this.timeout(180_000);
  let standin: DevOpsStandIn;

  before(async () => {
    standin = await DevOpsStandIn.start({ org: 'contoso', root: tmpDir('standin'), tokens: { bearer: [TOKEN] } });
    await buildStandardCorpus(standin);
  });

  after(async () => {
    await standin?.stop();
    await cleanupAll();
  });

  it('says which git and git-lfs it used; the folder holds archives and checksums only (no probe, no partial file)', async () => {
    const folder = tmpDir('dest');
    const run = await runTask(ENTRY, { inputs: { destination: 'folder', folderPath: folder, repositories: 'Team Alpha/*' }, orgUrl: standin.orgUrl, token: TOKEN, tempDir: tmpDir('run') });
    assertNoSecretInOutput(run, [TOKEN]);
    assert.strictEqual(run.result?.result, 'Succeeded', run.stdout);
    const gitPath = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
    const lfsPath = execFileSync('sh', ['-c', 'command -v git-lfs'], { encoding: 'utf8' }).trim();
    assert.ok(run.lines.includes(`Using git ${gitPath} (on PATH); git-lfs ${lfsPath} (on PATH).`), run.stdout);
    assert.ok(run.lines.some((l) => /^git: git version \d+\.\d+/.test(l)), run.stdout);
    assert.ok(run.lines.some((l) => /^git-lfs: git-lfs\/\d+\.\d+/.test(l)), run.stdout);
    const files = readFolder(folder);
    const [manifest] = manifests(files);
    assert.ok(manifest.repositories.filter((e) => e.status === 'ok').length >= 3);
    const strays = [...files.keys()].filter((k) => /\.partial-|link-probe/.test(k));
    assert.deepStrictEqual(strays, []);
  });

  it('no git on PATH (and no agent copy): fails before any work, naming PATH and what to install', async () => {
    const emptyBin = tmpDir('nogit-bin');
    standin.clearLog();
    const run = await runTask(ENTRY, {
      inputs: { destination: 'folder', folderPath: tmpDir('dest') }, orgUrl: standin.orgUrl, token: TOKEN, tempDir: tmpDir('run'),
      env: { PATH: emptyBin },
    });
    assert.strictEqual(run.result?.result, 'Failed', run.stdout);
    assert.match(run.result!.message, /git was not found on PATH\. Install Git 2\.31 or later with Git LFS/);
    assert.deepStrictEqual(standin.requests.filter((r) => r.route !== 'rest'), [], 'no git or LFS request');
    assert.ok(fs.existsSync(emptyBin));
  });
});

// The restore drill over a 5,000-repository manifest, engine run in-process: real archives (5,000 hard links of one
// small zip in a folder source), real download + SHA-256, extraction, git fsck and LFS walk; the live side answers
// `git ls-remote` from the archive's own refs (5,000 live repositories over HTTP would measure the stand-in, not the
// drill). Proves disk stays bounded (at most `concurrency` archives on disk at once, none left) and memory stays flat.
import * as assert from 'assert';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { Git } from '../tasks/common/src/git';
import { ExecOptions } from '../tasks/common/src/host';
import { FolderSource } from '../tasks/common/src/sources';
import { parseFilter } from '../tasks/RepoBackup/RepoBackupV1/src/filter';
import { DevOpsCredentials } from '../tasks/common/src/credentials';
import { verifySummaryMarkdown } from '../tasks/RepoRestore/RepoRestoreV1/src/report';
import { newVerifyReport, runVerify, verifyJson, verifyOutcome } from '../tasks/RepoRestore/RepoRestoreV1/src/verify';
import { cleanupAll, git, tmpDir } from './harness/util';
import { FakeHost } from './unit/fake-host';

// 300 in the suite (bounded disk and heap show at any size; ~20 s quiet); VERIFY_SCALE_COUNT=5000 for the full size
// (measured: 5,000 archives in 496 s under load, 10 archives/s).
const COUNT = Number(process.env.VERIFY_SCALE_COUNT ?? 300);
const CONCURRENCY = 4;

describe(`RepoRestore@1 mode: verify over a ${COUNT}-repository manifest (VERIFY_SCALE_COUNT)`, function () {
  this.timeout(600_000);
  after(() => cleanupAll());

  it('checks every archive with at most `concurrency` on disk at once, leaves nothing behind, memory flat', async () => {
    // One small real repository, mirrored and zipped as RepoBackup stores it (repository at the root).
    const work = tmpDir('scale-src');
    await git(['init', '--quiet', '-b', 'main', path.join(work, 'w')]);
    fs.writeFileSync(path.join(work, 'w', 'a.txt'), 'a\n');
    await git(['add', '.'], { cwd: path.join(work, 'w') });
    await git(['-c', 'user.name=T', '-c', 'user.email=t@example.com', 'commit', '--quiet', '-m', 'a'], { cwd: path.join(work, 'w') });
    await git(['tag', 'v1'], { cwd: path.join(work, 'w') });
    await git(['clone', '--quiet', '--mirror', path.join(work, 'w'), path.join(work, 'm.git')]);
    execFileSync('zip', ['-q', '-r', path.join(work, 'a.zip'), '.'], { cwd: path.join(work, 'm.git') });
    const zip = fs.readFileSync(path.join(work, 'a.zip'));
    const sha256 = crypto.createHash('sha256').update(zip).digest('hex');
    const lsRemote = (await git(['--git-dir', path.join(work, 'm.git'), 'for-each-ref', '--format=%(objectname)\t%(refname)']));

    const root = tmpDir('scale-backups');
    const entries = [];
    for (let i = 0; i < COUNT; i++) {
      const project = `P${String(i % 50).padStart(2, '0')}`;
      const archive = `o/2026-12-02/1.1/${project}/r${i}.zip`;
      fs.mkdirSync(path.join(root, 'o/2026-12-02/1.1', project), { recursive: true });
      fs.linkSync(path.join(work, 'a.zip'), path.join(root, ...archive.split('/')));
      entries.push({ project, repository: `r${i}`, id: `id${i}`, status: 'ok', archive, sha256, size: zip.length, refs: 2, lfsObjects: 0 });
    }
    fs.writeFileSync(path.join(root, 'o/2026-12-02/1.1/manifest.json'), JSON.stringify({ repositories: entries }));

    const temp = tmpDir('scale-temp');
    const host = new FakeHost({}, {}, {});
    const exec = (tool: string, args: string[], options?: ExecOptions) =>
      args[0] === 'ls-remote' ? Promise.resolve({ code: 0, stdout: lsRemote, stderr: '' }) : host.exec(tool, args, options);
    const gitTool = new Git({ ...host, exec } as unknown as FakeHost);
    const settings = {
      mode: 'verify' as const, organization: { url: 'https://dev.azure.com/o/' } as never,
      credentials: DevOpsCredentials.create('systemToken', 'tok', host), source: { kind: 'folder' as const, path: root },
      filter: parseFilter('*/*'), reportPath: path.join(temp, 'r.json'), concurrency: CONCURRENCY, tempDir: temp, taskVersion: 'test',
    };
    let maxOnDisk = 0;
    let samples = 0;
    const poll = setInterval(() => {
      const n = fs.readdirSync(temp).filter((d) => d.startsWith('repoverify-')).length;
      maxOnDisk = Math.max(maxOnDisk, n);
      samples++;
    }, 10);
    global.gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    let heapPeak = heapBefore;
    const heapPoll = setInterval(() => { heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed); }, 50);
    const started = Date.now();
    const report = newVerifyReport('folder', 'https://dev.azure.com/o/');
    try {
      await runVerify(settings, {
        log: host, progress: () => undefined, git: gitTool, exec, source: new FolderSource(root), gitEnv: (u) => settings.credentials.gitEnv(u),
        devops: { getRepository: async (project: string, name: string) => ({ id: name, name, project: { id: project, name: project }, remoteUrl: `https://dev.azure.com/o/${project}/_git/${name}`, size: 1, isDisabled: false, isInMaintenance: false, isWiki: false }) },
      }, report);
    } finally {
      clearInterval(poll);
      clearInterval(heapPoll);
    }
    const seconds = (Date.now() - started) / 1000;
    const json = verifyJson(report, 'test');
    const summary = verifySummaryMarkdown(report, verifyOutcome(report));
    console.log(`      ${COUNT} archives in ${seconds.toFixed(1)} s (${(COUNT / seconds).toFixed(0)}/s, concurrency ${CONCURRENCY}); at most ${maxOnDisk} on disk at once (${samples} samples); ` +
      `heap ${(heapBefore / 2 ** 20).toFixed(0)} → peak ${(heapPeak / 2 ** 20).toFixed(0)} MB; report ${(json.length / 2 ** 20).toFixed(1)} MB, summary ${(summary.length / 2 ** 20).toFixed(1)} MB`);
    assert.strictEqual(report.repositories.length, COUNT);
    assert.deepStrictEqual([...new Set(report.repositories.map((r) => r.status))], ['identical'], report.repositories.find((r) => r.status !== 'identical')?.details);
    assert.strictEqual(verifyOutcome(report).outcome, 'Succeeded');
    assert.ok(maxOnDisk >= 1 && maxOnDisk <= CONCURRENCY, `at most ${CONCURRENCY} archives on disk at once, saw ${maxOnDisk}`);
    assert.deepStrictEqual(fs.readdirSync(temp), [], 'every archive and extraction removed');
    // Bounded, not tight: what the run keeps is its results (a few hundred bytes each); 256 MB is far above it.
    assert.ok(heapPeak - heapBefore < 256 * 2 ** 20, `heap grew by ${((heapPeak - heapBefore) / 2 ** 20).toFixed(0)} MB`);
  });
});

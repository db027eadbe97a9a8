// verify.ts: which manifests a drill reads, its outcome rule and the JSON report's shape; settings.ts for mode: verify.
import assert from 'assert';
import * as os from 'os';
import * as path from 'path';
import { Readable } from 'stream';
import { ManifestInfo, Source } from '../../tasks/common/src/sources';
import { readVerifySettings } from '../../tasks/RepoRestore/RepoRestoreV1/src/settings';
import { newVerifyReport, pickManifests, VerifyResult, verifyJson, verifyOutcome, VerifyStatus } from '../../tasks/RepoRestore/RepoRestoreV1/src/verify';
import { verifySummaryMarkdown } from '../../tasks/RepoRestore/RepoRestoreV1/src/report';
import { FakeHost } from './fake-host';

const listing = (names: Array<[string, number]>): Source => ({
  description: 'test source',
  open: async () => ({ stream: Readable.from([]), metadata: {} }),
  listManifests: async () => names.map(([name, t]): ManifestInfo => ({ name, lastModified: new Date(t) })).sort((a, b) => b.lastModified.getTime() - a.lastModified.getTime()),
});

const result = (repository: string, status: VerifyStatus): VerifyResult =>
  ({ project: 'P', repository, archive: `o/d/1.1/P/${repository}.zip`, status, refs: null, details: status, manifest: 'o/d/1.1/manifest.json' });

describe('restore verify', () => {
  it('pickManifests: the named one, else every manifest of the newest run folder (sharded jobs)', async () => {
    const src = listing([['o/d1/1.1/manifest.json', 1], ['o/d2/2.1/manifest.job-1-of-2.json', 5], ['o/d2/2.1/manifest.job-2-of-2.json', 6], ['o/d1/1.2/manifest.json', 2]]);
    assert.deepStrictEqual(await pickManifests({}, src), ['o/d2/2.1/manifest.job-1-of-2.json', 'o/d2/2.1/manifest.job-2-of-2.json']);
    assert.deepStrictEqual(await pickManifests({ manifest: 'o/d1/1.1/manifest.json' }, src), ['o/d1/1.1/manifest.json']);
    await assert.rejects(pickManifests({}, listing([])), /holds no manifest/);
  });

  it('outcome: Failed on any corrupt; SucceededWithIssues on diverged, deleted or failed; else Succeeded', () => {
    const report = newVerifyReport('src', 'org');
    const outcome = (...s: VerifyStatus[]) => { report.repositories = s.map((x, i) => result(`r${i}`, x)); return verifyOutcome(report); };
    assert.strictEqual(outcome('identical', 'behind').outcome, 'Succeeded');
    assert.strictEqual(outcome('identical', 'diverged').outcome, 'SucceededWithIssues');
    assert.match(outcome('deleted').message, /1 live repository is gone/);
    assert.strictEqual(outcome('failed').outcome, 'SucceededWithIssues');
    assert.strictEqual(outcome('identical', 'deleted', 'corrupt').outcome, 'Failed');
    // Skipped by the backup by design (disabled): listed, not counted as checked, not an issue.
    assert.deepStrictEqual(outcome('identical', 'skipped'), { outcome: 'Succeeded', message: 'Verified 1 archives: 1 identical; 1 listed without an archive, skipped by the backup (P/r1).' });
    assert.strictEqual(outcome('skipped', 'failed').outcome, 'SucceededWithIssues');
    report.repositories = [];
    report.error = 'no manifest';
    assert.deepStrictEqual(verifyOutcome(report), { outcome: 'Failed', message: 'no manifest' });
  });

  it('the JSON report lists repositories[] of { project, repository, archive, status, refs, details }', () => {
    const report = newVerifyReport('src', 'org');
    report.repositories = [result('a', 'identical'), result('b', 'corrupt')];
    const json = JSON.parse(verifyJson(report, '1.0.0'));
    assert.strictEqual(json.result, 'Failed');
    assert.deepStrictEqual(json.repositories.map((r: object) => Object.keys(r).slice(0, 6)), Array(2).fill(['project', 'repository', 'archive', 'status', 'refs', 'details']));
  });

  it('5,000 repositories: JSON report and summary stay small and quick to build', () => {
    const report = newVerifyReport('src', 'org');
    const statuses: VerifyStatus[] = ['identical', 'behind', 'diverged', 'deleted', 'corrupt', 'failed'];
    report.repositories = Array.from({ length: 5000 }, (_, i) => result(`repo-${i}`, statuses[i % 6]));
    const started = Date.now();
    const json = verifyJson(report, '1.0.0');
    const md = verifySummaryMarkdown(report, verifyOutcome(report));
    const ms = Date.now() - started;
    console.log(`      5,000 results: JSON ${(json.length / 2 ** 20).toFixed(2)} MB, summary ${(md.length / 2 ** 20).toFixed(2)} MB, built in ${ms} ms`);
    assert.strictEqual(JSON.parse(json).repositories.length, 5000);
    assert.strictEqual(md.split('\n').filter((l) => /^\| P\/repo-/.test(l)).length, 5000, 'the summary lists every repository');
    assert.match(md, /833 live repositories are gone/);
    assert.ok(ms < 5000, `${ms} ms`);
  });

  it('settings for mode: verify: defaults, no target inputs needed', async () => {
    const temp = os.tmpdir();
    const host = new FakeHost({ mode: 'verify', source: 'folder', folderPath: temp, organizationUrl: 'https://dev.azure.com/contoso/' }, { 'Agent.TempDirectory': temp }, { token: 'job' });
    const s = await readVerifySettings(host, 'test');
    assert.strictEqual(s.reportPath, path.join(temp, 'repobackup-verify.json'));
    assert.strictEqual(s.concurrency, 2);
    assert.strictEqual(s.filter.describe(), '*/*');
    assert.ok(s.filter.matches('Team Alpha', 'api'));
    assert.strictEqual(s.manifest, undefined);
    const pat = new FakeHost({ mode: 'verify', source: 'folder', folderPath: temp, authType: 'pat', organizationUrl: 'https://dev.azure.com/contoso/' }, { 'Agent.TempDirectory': temp });
    await assert.rejects(readVerifySettings(pat, 'test'), /: Input 'personalAccessToken': is empty while authType is pat\. Create a PAT with scope Code \(Read\),/);
  });
});

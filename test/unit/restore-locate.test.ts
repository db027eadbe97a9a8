// locate.ts with an in-memory source: the older-backup fallback says which backup, archived manifests are named.
import assert from 'assert';
import { Readable } from 'stream';
import { ArchivedError, NotFoundError, Source } from '../../tasks/common/src/sources';
import { locate } from '../../tasks/RepoRestore/RepoRestoreV1/src/locate';
import { FakeHost } from './fake-host';

function source(manifests: Record<string, { t: number; repositories?: object[]; archived?: boolean }>): Source {
  return {
    description: 'memory',
    async open(name) {
      const m = manifests[name];
      if (!m) throw new NotFoundError(name, 'memory');
      if (m.archived) throw new ArchivedError(name);
      return { stream: Readable.from([Buffer.from(JSON.stringify({ repositories: m.repositories }))]), metadata: {} };
    },
    async listManifests() {
      return Object.entries(manifests).map(([name, m]) => ({ name, lastModified: new Date(m.t) })).sort((a, b) => b.lastModified.getTime() - a.lastModified.getTime());
    },
  };
}
const ok = (archive: string) => ({ project: 'P', repository: 'r', status: 'ok', archive, sha256: 'a'.repeat(64), size: 10, refs: 1, lfsObjects: 0 });
const failed = { project: 'P', repository: 'r', status: 'failed', archive: null, sha256: null, size: null, refs: null, lfsObjects: null, error: 'boom' };
const selection = { kind: 'manifest' as const, project: 'P', repository: 'r' };

describe('restore locate', () => {
  it('the newest manifest without an archive falls back to an older one, with a warning naming both backups and dates', async () => {
    const warnings: string[] = [];
    const located = await locate(selection, source({
      'o/d3/3.1/manifest.json': { t: Date.UTC(2026, 2, 2), repositories: [failed] },
      'o/d2/2.1/manifest.json': { t: Date.UTC(2026, 1, 2), repositories: [ok('o/d2/2.1/P/r.zip')] },
    }), new FakeHost(), (w) => warnings.push(w));
    assert.strictEqual(located.archive, 'o/d2/2.1/P/r.zip');
    assert.deepStrictEqual(warnings, ["The newest backup of P/r (manifest 'o/d3/3.1/manifest.json', 2026-03-02T00:00:00.000Z) has no archive of it (status failed: boom); restoring the older backup from manifest 'o/d2/2.1/manifest.json' (2026-02-02T00:00:00.000Z). Name a manifest with the manifest input to choose another."]);
  });

  it('archived manifests: not "check the names", but how many could not be read and how to rehydrate', async () => {
    const src = source({ 'o/d1/1.1/manifest.json': { t: 1, archived: true }, 'o/d2/2.1/manifest.json': { t: 2, repositories: [] } });
    await assert.rejects(locate(selection, src, new FakeHost(), () => undefined, undefined, { account: 'acct', container: 'c' }), (err: Error) => {
      assert.match(err.message, /^'P\/r' was not found, but 1 of the 2 manifests in memory could not be read because they are in the Archive access tier \('o\/d1\/1.1\/manifest.json'\).*az storage blob set-tier --account-name acct --container-name c --name o\/d1\/1.1\/manifest.json --tier Hot/);
      assert.doesNotMatch(err.message, /Check the project and repository names/);
      return true;
    });
    await assert.rejects(locate(selection, source({ 'o/d2/2.1/manifest.json': { t: 2, repositories: [] } }), new FakeHost(), () => undefined), /is not listed in any of the 1 manifests .*Check the project and repository names/);
  });
});

// plan.ts archive names on the file systems agents write to: case-insensitive (NTFS, APFS, SMB) and Windows' own rules.
import assert from 'assert';
import { archiveNames, caseFoldKey, safeSegment } from '../../tasks/RepoBackup/RepoBackupV1/src/plan';
import { RepoInfo } from '../../tasks/common/src/devops';

function repo(project: string, name: string, id: string): RepoInfo {
  return { id, name, project: { id: `p-${project}`, name: project }, remoteUrl: `https://dev.azure.com/o/p/_git/${id}`, size: 1, isDisabled: false, isInMaintenance: false, isWiki: false };
}

describe('plan: archive names on case-insensitive file systems and Windows', () => {
  it('names that differ only in case never share an archive name (ASCII, ſ/s, ı/i, Kelvin sign, composed/decomposed)', () => {
    const pairs: [string, string][] = [['Api', 'api'], ['ſtore', 'store'], ['lıb', 'LIB'], ['\u212Aelvin', 'kelvin'], ['Cafe\u0301', 'café']];
    pairs.forEach(([a, b], i) => {
      const names = archiveNames([repo('P', a, `a${i}`), repo('P', b, `b${i}`)], 'zip');
      const [na, nb] = [names.get(`a${i}`)!, names.get(`b${i}`)!];
      assert.notStrictEqual(caseFoldKey(na), caseFoldKey(nb), `${a} / ${b}: ${na} ${nb}`);
      assert.ok(na.endsWith(`_a${i}.zip`) && nb.endsWith(`_b${i}.zip`), `${na} ${nb}`);
    });
    // Projects that differ only in case: same folder on Windows, so the repository names must differ too.
    const names = archiveNames([repo('Team', 'web', 'x1'), repo('TEAM', 'Web', 'x2'), repo('Team', 'api', 'x3')], 'zip');
    assert.deepStrictEqual([...names.values()], ['Team/web_x1.zip', 'TEAM/Web_x2.zip', 'Team/api.zip']);
  });

  it('Windows device names are never a file or folder name', () => {
    for (const n of ['CON', 'con', 'Aux', 'NUL', 'prn', 'COM1', 'lpt9', 'COM\u00b9', 'con.txt', 'NUL.tar']) {
      assert.strictEqual(safeSegment(n), `${n}_`, n);
    }
    for (const n of ['console', 'CONTOSO', 'com10', 'auxiliary', 'nul-repo']) assert.strictEqual(safeSegment(n), n, n);
    const names = archiveNames([repo('AUX', 'con', 'id1')], 'tar.gz');
    assert.strictEqual(names.get('id1'), 'AUX_/con_.tar.gz');
  });
});

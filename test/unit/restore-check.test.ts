// check.ts: differences between what the backup recorded and what the archive holds.
import assert from 'assert';
import { differencesFromRecord } from '../../tasks/RepoRestore/RepoRestoreV1/src/check';

describe('restore check', () => {
  it('differencesFromRecord: manifest numbers or blob metadata strings; nothing recorded, nothing said', () => {
    assert.deepStrictEqual(differencesFromRecord({ refs: 5, lfsObjects: 2 }, 5, 2), []);
    assert.deepStrictEqual(differencesFromRecord({ refs: '6', lfsobjects: '1' }, 5, 2), [
      'The backup recorded 6 refs but the archive holds 5.', 'The backup recorded 1 LFS objects but the archive holds 2.']);
    assert.deepStrictEqual(differencesFromRecord(undefined, 5, 2), []);
    assert.deepStrictEqual(differencesFromRecord({}, 5, 2), []);
  });
});

// fetch.ts: the storage account and container for the rehydrate command, and the command itself.
import assert from 'assert';
import { archivedMessage, blobLocation, rehydrateHint } from '../../tasks/RepoRestore/RepoRestoreV1/src/fetch';

describe('restore fetch', () => {
  it('blobLocation: Azure and emulator container URLs', () => {
    assert.deepStrictEqual(blobLocation('https://acct.blob.core.windows.net/backups'), { account: 'acct', container: 'backups' });
    assert.deepStrictEqual(blobLocation('http://127.0.0.1:10000/devstoreaccount1/drill'), { account: 'devstoreaccount1', container: 'drill' });
    assert.strictEqual(blobLocation('not a url'), undefined);
  });

  it('the rehydrate command names account, container and blob (quoted when needed), both priorities and their times', () => {
    const hint = rehydrateHint('contoso/2026-12-02/1.1/Team Alpha/api.zip', { account: 'acct', container: 'backups' });
    assert.match(hint, /az storage blob set-tier --account-name acct --container-name backups --name "contoso\/2026-12-02\/1.1\/Team Alpha\/api.zip" --tier Hot --rehydrate-priority Standard \(up to 15 hours\) or High \(usually under 1 hour for blobs under 10 GB\)/);
    assert.match(archivedMessage('a/b.zip'), /^'a\/b.zip' is in the Archive access tier: .*--account-name <account> --container-name <container> --name a\/b.zip/);
  });
});

// unpack.ts: where the repository is in an extracted archive, and which config keys hold credentials.
import assert from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { credentialKeys, findRepository } from '../../tasks/RepoRestore/RepoRestoreV1/src/unpack';

describe('restore unpack', () => {
  it('credentialKeys: extraheader (any URL), credential.*, URLs with user info; names only', () => {
    const config = [
      '[core]', '\trepositoryformatversion = 0', '\tbare = true',
      '[http]', '\textraheader = AUTHORIZATION: bearer secret-token',
      '[http "https://dev.azure.com/"]', '\textraHeader = AUTHORIZATION: basic abc',
      '[credential "https://dev.azure.com"]', '\tusername = someone',
      '[remote "origin"]', '\turl = https://contoso@dev.azure.com/contoso/p/_git/r', '\tfetch = +refs/*:refs/*',
      '[remote "backup"]', '\turl = https://dev.azure.com/contoso/p/_git/r',
      '[lfs]', '\turl = https://user:pw@lfs.example.com/x',
    ].join('\n');
    const keys = credentialKeys(config);
    assert.deepStrictEqual(keys, ['credential.https://dev.azure.com.username', 'http.extraheader', 'http.https://dev.azure.com/.extraHeader', 'lfs.url', 'remote.origin.url']);
    assert.ok(!keys.join(' ').includes('secret-token'));
    assert.deepStrictEqual(credentialKeys('[core]\n\tbare = true\n[remote "origin"]\n\turl = https://dev.azure.com/x\n'), []);
  });

  it('findRepository: the root, or the one top folder holding a bare repository; nothing else', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'unpack-'));
    try {
      const root = path.join(base, 'root');
      fs.mkdirSync(path.join(root, 'objects'), { recursive: true });
      fs.writeFileSync(path.join(root, 'HEAD'), 'ref: refs/heads/main\n');
      assert.deepStrictEqual(await findRepository(root), { kind: 'root' });
      const one = path.join(base, 'one');
      fs.mkdirSync(path.join(one, 'api', 'objects'), { recursive: true });
      fs.writeFileSync(path.join(one, 'api', 'HEAD'), 'ref: refs/heads/main\n');
      assert.deepStrictEqual(await findRepository(one), { kind: 'folder', name: 'api' });
      fs.mkdirSync(path.join(one, 'other'));
      assert.strictEqual(await findRepository(one), undefined, 'two top folders');
      const deeper = path.join(base, 'deeper');
      fs.mkdirSync(path.join(deeper, 'a', 'b', 'objects'), { recursive: true });
      fs.writeFileSync(path.join(deeper, 'a', 'b', 'HEAD'), 'x');
      assert.strictEqual(await findRepository(deeper), undefined, 'two levels down is not searched');
    } finally {
      fs.rmSync(base, { recursive: true, force: true });
    }
  });
});

// The access tier input reaches the archives but never the manifest (a restore must be able to read it).
import assert from 'assert';
import * as path from 'path';
import { AzuriteHandle, startAzurite } from './harness/azurite';
import { populate } from './harness/corpus';
import { DevOpsStandIn } from './harness/devops-standin';
import { runTask } from './harness/run-task';
import { cleanupAll, tmpDir } from './harness/util';

const ENTRY = path.resolve(__dirname, '../../tasks/RepoBackup/RepoBackupV1/dist/index.js');

describe('RepoBackup@1 access tier', function () {
  this.timeout(120_000);
  let standin: DevOpsStandIn;
  let azurite: AzuriteHandle;
  const token = 'tier-test-token';

  before(async () => {
    standin = await DevOpsStandIn.start({ org: 'fabrikam', root: tmpDir('standin'), tokens: { bearer: [token] } });
    const web = standin.addProject('Web');
    await populate(standin, standin.addRepo(web, 'site'), { commits: [{ message: 'init', files: { 'a.txt': 'a' } }] });
    azurite = await startAzurite();
  });

  after(async () => {
    await standin?.stop();
    await azurite?.stop();
    await cleanupAll();
  });

  for (const tier of ['Cool', 'Cold', 'Archive']) {
    it(`sets ${tier} on archives and leaves the manifest in the default tier`, async () => {
      const container = await azurite.createContainer(`tier-${tier.toLowerCase()}`);
      const run = await runTask(ENTRY, {
        inputs: { sasUrl: azurite.containerSasUrl(container.containerName, 'cw'), accessTier: tier },
        orgUrl: standin.orgUrl, token, tempDir: tmpDir('run'),
      });
      assert.strictEqual(run.result?.result, 'Succeeded', run.stdout);
      const tiers: Record<string, string | undefined> = {};
      for await (const blob of container.listBlobsFlat()) tiers[path.basename(blob.name)] = blob.properties.accessTier;
      assert.deepStrictEqual(Object.keys(tiers).sort(), ['manifest.json', 'site.zip']);
      assert.strictEqual(tiers['site.zip'], tier);
      assert.notStrictEqual(tiers['manifest.json'], tier);
    });
  }
});

// devops.ts against the stand-in playing Azure DevOps Server 2020 and 2022: the client negotiates every call down to
// the Server's versions, reads repositories without size (sizeUnknown), and explains the Server's version refusal.
import assert from 'assert';
import { DevOpsCredentials } from '../../tasks/common/src/credentials';
import { DevOpsClient } from '../../tasks/common/src/devops';
import { buildStandardCorpus } from '../harness/corpus';
import { DevOpsStandIn, Flavor } from '../harness/devops-standin';
import { cleanupAll, tmpDir } from '../harness/util';

const TOKEN = 'canaryDevopsServerToken42';
const log = { info: () => undefined, warn: () => undefined, debug: () => undefined, error: () => undefined };
const noRetry = { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 };

for (const flavor of ['server2020', 'server2022'] as Flavor[]) {
  describe(`devops: Azure DevOps Server (stand-in ${flavor})`, function () {
    this.timeout(60_000);
    let standin: DevOpsStandIn;
    let client: DevOpsClient;

    before(async () => {
      standin = await DevOpsStandIn.start({ org: 'DefaultCollection', root: tmpDir('standin-devops'), tokens: { bearer: [TOKEN], pat: [] }, flavor });
      await buildStandardCorpus(standin);
      const creds = DevOpsCredentials.create('systemToken', TOKEN, { setSecret: () => undefined });
      client = new DevOpsClient(standin.orgUrl, creds, log as never, noRetry as never);
    });
    after(async () => {
      await standin?.stop();
      await cleanupAll();
    });

    it('lists repositories (wikis too) at the Server\'s version, each marked sizeUnknown, clone URLs under /tfs/', async () => {
      standin.clearLog();
      const repos = await client.listRepositories(true);
      assert.strictEqual(repos.length, 6);
      assert.ok(repos.every((r) => r.sizeUnknown === true && r.size === 0));
      assert.ok(repos.every((r) => r.remoteUrl.startsWith(standin.orgUrl)), repos.map((r) => r.remoteUrl).join(' '));
      assert.ok(repos.some((r) => r.isWiki) && repos.some((r) => r.isDisabled));
      assert.ok(repos.every((r) => r.isInMaintenance === false));
      // The stand-in refuses (400) any api-version above the Server's: every call fitted.
      assert.ok(standin.requests.length > 0 && standin.requests.every((r) => r.status === 200), JSON.stringify(standin.requests.map((r) => [r.url, r.status])));
    });

    it('reads the pipeline settings at the preview version the Server has (no release scope field on 2020)', async () => {
      const project = standin.listProjects().find((p) => p.name === 'Team Alpha')!;
      standin.setGeneralSettings(project, { enforceJobAuthScope: true, enforceJobAuthScopeForReleases: true });
      const s = await client.getJobScopeSettings('Team Alpha');
      assert.strictEqual(s.enforceJobAuthScope, true);
      assert.strictEqual(s.enforceJobAuthScopeForReleases, flavor === 'server2020' ? undefined : true);
    });

    it('explains the Server\'s refusal of a newer REST version, naming the supported products', async () => {
      standin.faults.failRest = {
        count: 1, status: 400, path: /_apis\/git\/repositories/,
        message: 'The requested REST API version of 7.1 is out of range for this server. The latest REST API version this server supports is 5.0.',
        typeKey: 'VssVersionOutOfRangeException',
      };
      await assert.rejects(client.listRepositories(false), (e: Error) => /older than this task supports .*out of range.*Azure DevOps Server 2020 and later/.test(e.message) && !e.message.includes(TOKEN));
    });
  });
}

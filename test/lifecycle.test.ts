// What the storage layout promises over a backup's life: a real run (two shard jobs, as the agent runs them) writes to
// Azurite, samples/lifecycle-policy.json is applied to what it wrote by the lifecycle stand-in (test/harness/lifecycle.ts)
// as the days pass, and RepoRestore@1 is run against the result:
//  - the manifests are never tiered to Archive, so a restore by repository finds them on day 100 and only the archive
//    is out of reach (and the message says so);
//  - a rehydrated archive is not re-archived by the same rule the next day (daysAfterLastTierChangeGreaterThan), so
//    the restore then succeeds;
//  - deletion never leaves a manifest pointing at a deleted archive;
//  - both jobs of the run write into one folder, dated by System.PipelineStartTime, not by their clocks;
//  - manifests of the layout before archives/ and manifests/ were split are still found and restored.
import * as assert from 'assert';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { ContainerClient } from '@azure/storage-blob';
import { AzuriteHandle, startAzurite } from './harness/azurite';
import { populate } from './harness/corpus';
import { DevOpsStandIn } from './harness/devops-standin';
import { decide, LifecycleSimulator, parsePolicy, Tier } from './harness/lifecycle';
import { runTask, TaskRun } from './harness/run-task';
import { cleanupAll, tmpDir } from './harness/util';
import { BlobSource, FolderSource } from '../tasks/common/src/sources';

const ROOT = path.resolve(__dirname, '..', '..');
const BACKUP = path.join(ROOT, 'tasks/RepoBackup/RepoBackupV1/dist/index.js');
const RESTORE = path.join(ROOT, 'tasks/RepoRestore/RepoRestoreV1/dist/index.js');
const POLICY = JSON.parse(fs.readFileSync(path.join(ROOT, 'samples', 'lifecycle-policy.json'), 'utf8'));
/** The container name the sample policy's prefixes are written for (setup-storage.sh rewrites it for others). */
const CONTAINER = 'repo-backups';
const TOKEN = 'lifecycle-test-token';
/** A run that started late on Feb 28 UTC (01:30 on Mar 1 in UTC+2): its folder is dated 2026-02-28 whatever the jobs' clocks say. */
const PIPELINE_START = '2026-03-01 01:30:00+02:00';
const RUN = 'contoso/2026-02-28/5150.1';

interface Entry { project: string; repository: string; status: string; archive: string | null; sha256: string | null }

describe('storage layout over a backup\'s life: lifecycle policy, restore, one folder per run', function () {
  this.timeout(180_000);
  let standin: DevOpsStandIn;
  let azurite: AzuriteHandle;
  let container: ContainerClient;
  const runs: TaskRun[] = [];

  const explain = (run: TaskRun) => `result ${JSON.stringify(run.result)}\n${run.stdout.slice(-4000)}\n${run.stderr.slice(-1000)}`;
  async function task(entry: string, inputs: Record<string, string>, variables: Record<string, string> = {}): Promise<TaskRun> {
    const run = await runTask(entry, { inputs, orgUrl: standin.orgUrl, token: TOKEN, tempDir: tmpDir('run'), variables, timeoutMs: 90_000 });
    runs.push(run);
    return run;
  }
  const restore = (c: string, inputs: Record<string, string>) => task(RESTORE, {
    organizationUrl: standin.orgUrl, source: 'azureBlob', sasUrl: azurite.containerSasUrl(c, 'rl'), targetProject: 'Web', ...inputs,
  });
  async function names(c: ContainerClient = container): Promise<Map<string, Tier>> {
    const out = new Map<string, Tier>();
    for await (const b of c.listBlobsFlat()) out.set(b.name, (b.properties.accessTier as Tier | undefined) ?? 'Hot');
    return out;
  }
  async function manifestEntries(c: ContainerClient, name: string): Promise<Entry[]> {
    return JSON.parse((await c.getBlobClient(name).downloadToBuffer()).toString('utf8')).repositories;
  }

  before(async () => {
    [standin, azurite] = await Promise.all([
      DevOpsStandIn.start({ org: 'contoso', root: tmpDir('standin'), tokens: { bearer: [TOKEN] } }),
      startAzurite(),
    ]);
    const web = standin.addProject('Web');
    for (const name of ['site', 'api', 'docs']) {
      await populate(standin, standin.addRepo(web, name), { commits: [{ message: `init ${name}`, files: { [`${name}.txt`]: `${name}\n` } }, { message: 'two', files: { 'b.txt': 'b' } }] });
    }
    container = await azurite.createContainer(CONTAINER);
    // Two jobs of one sharded run, as `strategy: parallel: 2` starts them; the agent's clock is today's, the run's start is not.
    for (const position of ['1', '2']) {
      const run = await task(BACKUP, { sasUrl: azurite.containerSasUrl(CONTAINER, 'cw') }, {
        'Build.BuildId': '5150', 'System.TotalJobsInPhase': '2', 'System.JobPositionInPhase': position, 'System.ParallelExecutionType': 'MultiMachine', 'System.PipelineStartTime': PIPELINE_START,
      });
      assert.strictEqual(run.result?.result, 'Succeeded', explain(run));
    }
  });

  after(async () => {
    await standin?.stop();
    await azurite?.stop();
    await cleanupAll();
  });

  it('both shard jobs write into one run folder dated by System.PipelineStartTime: archives/<run>/ and manifests/<run>/', async () => {
    const all = [...(await names()).keys()].sort();
    console.log(`      stored: ${all.join(', ')}`);
    assert.deepStrictEqual(all.filter((n) => !n.startsWith(`archives/${RUN}/`) && !n.startsWith(`manifests/${RUN}/`)), []);
    assert.deepStrictEqual(all.filter((n) => n.startsWith('manifests/')), [`manifests/${RUN}/manifest.job-1-of-2.json`, `manifests/${RUN}/manifest.job-2-of-2.json`]);
    assert.deepStrictEqual(all.filter((n) => n.startsWith('archives/')), ['api', 'docs', 'site'].map((r) => `archives/${RUN}/Web/${r}.zip`));
  });

  it('the sample policy never tiers a manifest to Archive: on day 100 RepoRestore by repository reads the manifest and names the archived archive', async () => {
    const sim = new LifecycleSimulator(container, POLICY);
    for (const day of [31, 91, 100]) {
      sim.advance(day - sim.day());
      await sim.run();
    }
    const tiers = await names();
    console.log(`      day ${sim.day()}: ${[...tiers].map(([n, t]) => `${path.basename(n)}=${t}`).join(', ')}; actions: ${sim.history.map((a) => `day ${a.day} ${path.basename(a.blob)} ${a.action}`).join('; ')}`);
    for (const [name, tier] of tiers) assert.strictEqual(tier, name.startsWith('manifests/') ? 'Hot' : 'Archive', name);

    const run = await restore(CONTAINER, { repository: 'Web/site', targetRepository: 'site-day100' });
    assert.strictEqual(run.result?.result, 'Failed', explain(run));
    const message = run.result!.message;
    assert.ok(message.includes(`archives/${RUN}/Web/site.zip`), `the failure names the archive blob: ${message}`);
    assert.match(message, /Archive/);
    assert.doesNotMatch(message, /not listed in any of the/);
    assert.ok(!standin.findRepo('Web', 'site-day100'), 'nothing was created before the archive could be read');

    // Rehydrate (az storage blob set-tier --tier Hot) on day 100: the rule must not send it back the next day(s).
    const site = `archives/${RUN}/Web/site.zip`;
    await sim.setTier(site, 'Hot');
    for (let d = 0; d < 7; d++) {
      sim.advance(1);
      await sim.run();
      assert.notStrictEqual((await names()).get(site), 'Archive', `re-archived on day ${sim.day()}`);
    }
    const ok = await restore(CONTAINER, { repository: 'Web/site', targetRepository: 'site-rehydrated' });
    assert.match(ok.result?.result ?? '', /^Succeeded/, explain(ok));
    assert.ok(standin.findRepo('Web', 'site-rehydrated'));
    console.log(`      day ${sim.day()}: rehydrated ${path.basename(site)} is ${(await names()).get(site)}; restored by repository`);
    // …and once nobody needs it, the same rule archives it again (14 days after its last tier change).
    sim.advance(30);
    await sim.run();
    assert.strictEqual((await names()).get(site), 'Archive');
  });

  it('the stand-in can tell: the former policy archives manifests, and a rule without the re-tier guard re-archives a rehydrated blob', () => {
    const former = {
      rules: [{
        enabled: true, name: 'repoBackupsTierAndExpire', type: 'Lifecycle',
        definition: {
          filters: { blobTypes: ['blockBlob'], prefixMatch: ['repo-backups/'] },
          actions: { baseBlob: { tierToCool: { daysAfterModificationGreaterThan: 30 }, tierToArchive: { daysAfterModificationGreaterThan: 90 }, delete: { daysAfterModificationGreaterThan: 400 } } },
        },
      }],
    };
    const written = new Date('2026-01-01T00:00:00Z');
    const day = (n: number) => new Date(written.getTime() + n * 86_400_000);
    const manifest = { name: `${RUN}/manifest.json`, blobType: 'blockBlob', tier: 'Cool' as Tier, createdOn: written, lastModified: written, tierChangedOn: day(31) };
    assert.deepStrictEqual(decide(parsePolicy(former), CONTAINER, manifest, day(100)), { rule: 'repoBackupsTierAndExpire', action: 'tierToArchive' });
    assert.strictEqual(decide(parsePolicy(POLICY), CONTAINER, { ...manifest, name: `manifests/${RUN}/manifest.json`, tier: 'Hot', tierChangedOn: undefined }, day(100)), undefined);
    const rehydrated = { name: `archives/${RUN}/Web/site.zip`, blobType: 'blockBlob', tier: 'Hot' as Tier, createdOn: written, lastModified: written, tierChangedOn: day(100) };
    assert.strictEqual(decide(parsePolicy(former), CONTAINER, rehydrated, day(101))?.action, 'tierToArchive');
    assert.strictEqual(decide(parsePolicy(POLICY), CONTAINER, rehydrated, day(101))?.action, 'tierToCool');
    // The stand-in refuses what it does not play rather than ignoring it.
    assert.throws(() => parsePolicy({ rules: [{ ...former.rules[0], definition: { ...former.rules[0].definition, filters: { blobTypes: ['blockBlob'], blobIndexMatch: [] } } }] }), /blobIndexMatch/);
  });

  it('manifests of the layout before the split (<org>/<date>/<run>/ with the archives) are still listed and restored', async () => {
    // A container holding one run of each layout: the new run as written, and an older run in the former layout.
    const mixed = await azurite.createContainer('mixed');
    const legacy = 'contoso/2025-12-02/4000.1';
    const fresh = await azurite.createContainer('fresh');
    const run = await task(BACKUP, { sasUrl: azurite.containerSasUrl('fresh', 'cw'), repositories: 'Web/site' }, { 'Build.BuildId': '4000' });
    assert.strictEqual(run.result?.result, 'Succeeded', explain(run));
    const stored = await names(fresh);
    const manifestName = [...stored.keys()].find((n) => n.startsWith('manifests/'))!;
    for (const name of stored.keys()) {
      let bytes = await fresh.getBlobClient(name).downloadToBuffer();
      const props = await fresh.getBlobClient(name).getProperties();
      const metadata = { ...props.metadata };
      let target = name.replace(/^(archives|manifests)\/contoso\/\d{4}-\d{2}-\d{2}\/4000\.1\//, `${legacy}/`);
      if (name === manifestName) {
        const m = JSON.parse(bytes.toString('utf8'));
        for (const e of m.repositories) if (e.archive) e.archive = e.archive.replace(/^archives\/contoso\/\d{4}-\d{2}-\d{2}\/4000\.1\//, `${legacy}/`);
        bytes = Buffer.from(JSON.stringify(m, null, 2));
        metadata.sha256 = createHash('sha256').update(bytes).digest('hex');
        target = `${legacy}/manifest.json`;
      }
      await mixed.getBlockBlobClient(target).upload(bytes, bytes.length, { metadata });
    }
    const listed = (await new BlobSource(new URL(azurite.containerSasUrl('mixed', 'rl')), 'mixed').listManifests()).map((m) => m.name);
    assert.deepStrictEqual(listed, [`${legacy}/manifest.json`]);
    // Add the new-layout run from the shard jobs next to it: both are listed.
    for (const name of (await names()).keys()) {
      if (!name.startsWith('manifests/')) continue;
      const bytes = await container.getBlobClient(name).downloadToBuffer();
      await mixed.getBlockBlobClient(name).upload(bytes, bytes.length);
    }
    const both = (await new BlobSource(new URL(azurite.containerSasUrl('mixed', 'rl')), 'mixed').listManifests()).map((m) => m.name).sort();
    assert.deepStrictEqual(both, [`${legacy}/manifest.json`, `manifests/${RUN}/manifest.job-1-of-2.json`, `manifests/${RUN}/manifest.job-2-of-2.json`]);

    const ok = await restore('mixed', { repository: 'Web/site', manifest: `${legacy}/manifest.json`, targetRepository: 'site-legacy' });
    assert.match(ok.result?.result ?? '', /^Succeeded/, explain(ok));
    assert.ok(standin.findRepo('Web', 'site-legacy'));

    // A folder destination: the walk finds manifests/<org>/<date>/<run>/ and <org>/<date>/<run>/, and nothing deeper.
    const root = tmpDir('layouts');
    for (const rel of [`manifests/${RUN}/manifest.json`, `${legacy}/manifest.job-1-of-2.json`, `archives/${RUN}/Web/manifest.json`, `${legacy}/Web/manifest.json`]) {
      fs.mkdirSync(path.join(root, path.dirname(rel)), { recursive: true });
      fs.writeFileSync(path.join(root, rel), '{}');
    }
    const inFolder = (await new FolderSource(root).listManifests()).map((m) => m.name).sort();
    assert.deepStrictEqual(inFolder, [`${legacy}/manifest.job-1-of-2.json`, `manifests/${RUN}/manifest.json`]);
  });
  it('deletion removes a run\'s manifests before its archives: no manifest ever points at a deleted archive', async () => {
    const sim = new LifecycleSimulator(container, POLICY);
    sim.advance(385);
    const lastSeen: Record<string, number> = {};
    while (sim.day() < 405) {
      sim.advance(1);
      await sim.run();
      const present = await names();
      for (const n of present.keys()) lastSeen[n] = sim.day();
      for (const m of [...present.keys()].filter((n) => n.startsWith('manifests/'))) {
        for (const e of await manifestEntries(container, m)) {
          if (e.archive) assert.ok(present.has(e.archive), `day ${sim.day()}: ${m} lists ${e.archive}, which is gone`);
        }
      }
    }
    assert.deepStrictEqual([...(await names()).keys()], [], 'everything is deleted by day 405');
    const manifestsGone = Math.max(...Object.entries(lastSeen).filter(([n]) => n.startsWith('manifests/')).map(([, d]) => d)) + 1;
    const archivesGone = Math.min(...Object.entries(lastSeen).filter(([n]) => n.startsWith('archives/')).map(([, d]) => d)) + 1;
    console.log(`      manifests deleted on day ${manifestsGone}, archives on day ${archivesGone}`);
    assert.ok(manifestsGone < archivesGone);
  });

});

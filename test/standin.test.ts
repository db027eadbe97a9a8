// Proves the test harness is faithful: the Azure DevOps stand-in answers azure-devops-node-api, git and git-lfs
// like the real service; Azurite enforces SAS permissions; runTask gives a task the agent's environment.
import * as assert from 'assert';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as azdev from 'azure-devops-node-api';
import { AzuriteHandle, startAzurite } from './harness/azurite';
import { buildStandardCorpus, makeRandomRepo, StandardCorpus } from './harness/corpus';
import { DevOpsStandIn } from './harness/devops-standin';
import { runTask } from './harness/run-task';
import { authEnv, cleanupAll, git, GitError, refMap, tmpDir } from './harness/util';

const BEARER = 'job-token-0123456789abcdef';
const PAT = 'p'.repeat(48) + 'AZDO';

describe('DevOps stand-in', function () {
  this.timeout(60_000);
  let standin: DevOpsStandIn;
  let corpus: StandardCorpus;
  const bearerApi = () => new azdev.WebApi(standin.orgUrl, azdev.getBearerHandler(BEARER));
  const bearerEnv = () => authEnv(`Bearer ${BEARER}`);

  before(async () => {
    standin = await DevOpsStandIn.start({ org: 'contoso', root: tmpDir('standin'), tokens: { bearer: [BEARER], pat: [PAT] } });
    corpus = await buildStandardCorpus(standin);
  });
  after(async () => {
    await standin?.stop();
    await cleanupAll();
  });

  describe('REST through azure-devops-node-api', () => {
    it('lists projects and repositories with a bearer token; the wiki only with includeHidden', async () => {
      const api = bearerApi();
      const projects = await (await api.getCoreApi()).getProjects();
      assert.deepStrictEqual(projects.map((p) => p.name).sort(), ['Team Alpha', 'Équipe Bêta']);

      const gitApi = await api.getGitApi();
      const all = await gitApi.getRepositories(undefined, undefined, undefined, true);
      assert.deepStrictEqual(all.map((r) => `${r.project?.name}/${r.name}`).sort(),
        corpus.all.map((r) => `${r.project}/${r.name}`).sort());
      const visible = await gitApi.getRepositories();
      assert.ok(!visible.some((r) => r.name === 'Team Alpha.wiki'));
      assert.strictEqual(visible.length, all.length - 1);

      const byName = new Map(all.map((r) => [r.name, r]));
      assert.strictEqual(byName.get('api')?.defaultBranch, 'refs/heads/main');
      assert.strictEqual(byName.get('Team Alpha.wiki')?.defaultBranch, 'refs/heads/wikiMaster');
      assert.strictEqual(byName.get('empty')?.defaultBranch, undefined);
      assert.strictEqual(byName.get('disabled')?.isDisabled, true);
      assert.ok((byName.get('api')?.size ?? 0) > 0);
      const naive = byName.get('naïve repo');
      assert.strictEqual(naive?.remoteUrl, `${standin.orgUrl.replace('http://', 'http://contoso@')}%C3%89quipe%20B%C3%AAta/_git/na%C3%AFve%20repo`);
      assert.strictEqual(naive?.project?.name, 'Équipe Bêta');

      const inBeta = await gitApi.getRepositories('Équipe Bêta');
      assert.deepStrictEqual(inBeta.map((r) => r.name), ['naïve repo']);
      assert.strictEqual((await gitApi.getRepository('naïve repo', 'Équipe Bêta')).id, corpus.repos.naive.repo.id);

      const wikis = await (await api.getWikiApi()).getAllWikis('Team Alpha');
      assert.deepStrictEqual(wikis.map((w) => [w.name, w.repositoryId]), [['Team Alpha.wiki', corpus.repos.wiki.repo.id]]);
    });

    it('makes the same lookups as the real service: resource areas and OPTIONS location lists', async () => {
      standin.clearLog();
      await (await bearerApi().getGitApi()).getRepositories(undefined, undefined, undefined, true);
      assert.deepStrictEqual(standin.requests.map((r) => `${r.method} ${r.url} ${r.status}`), [
        'OPTIONS /contoso/_apis/Location 200',
        'GET /contoso/_apis/ResourceAreas 200',
        'OPTIONS /contoso/_apis/git 200',
        'GET /contoso/_apis/git/repositories?includeHidden=true 200',
      ]);
    });

    it('answers single resource-area lookups and the full OPTIONS location list', async () => {
      const headers = { Authorization: `Bearer ${BEARER}` };
      for (const q of ['', '?organizationName=contoso']) {
        const area = (await (await fetch(`${standin.orgUrl}_apis/ResourceAreas/4e080c62-fa21-4fbc-8fef-2a10a2b38049${q}`, { headers })).json()) as { name: string; locationUrl: string };
        assert.deepStrictEqual([area.name, area.locationUrl], ['git', standin.orgUrl]);
      }
      const all = (await (await fetch(`${standin.orgUrl}_apis/`, { method: 'OPTIONS', headers })).json()) as { count: number; value: { id: string; maxVersion: string }[] };
      assert.strictEqual(all.count, all.value.length);
      assert.ok(all.value.some((l) => l.id === '2d874a60-a811-4f62-9c9f-963a6ea0a55b' && Number(l.maxVersion) >= 7.2));
    });

    it('accepts a PAT through Basic auth and rejects it as Bearer', async () => {
      const patApi = new azdev.WebApi(standin.orgUrl, azdev.getPersonalAccessTokenHandler(PAT));
      assert.strictEqual((await (await patApi.getCoreApi()).getProjects()).length, 2);
      const patAsBearer = new azdev.WebApi(standin.orgUrl, azdev.getBearerHandler(PAT));
      await assert.rejects(patAsBearer.getCoreApi().then((c) => c.getProjects()), { statusCode: 401 });
    });

    it('answers a wrong token with 401', async () => {
      const api = new azdev.WebApi(standin.orgUrl, azdev.getBearerHandler('wrong'));
      await assert.rejects(api.getGitApi().then((g) => g.getRepositories()), { statusCode: 401 });
      const res = await fetch(`${standin.orgUrl}_apis/projects`);
      assert.strictEqual(res.status, 401);
    });

    it('creates repositories (201) and refuses a taken name (409 TF400948)', async () => {
      const gitApi = await bearerApi().getGitApi();
      const created = await gitApi.createRepository({ name: 'restored', project: { id: corpus.beta.id } }, corpus.beta.id);
      assert.strictEqual(created.name, 'restored');
      assert.strictEqual(created.defaultBranch, undefined);
      assert.ok(fs.existsSync(standin.findRepo('Équipe Bêta', 'restored')!.gitDir));
      await assert.rejects(gitApi.createRepository({ name: 'API', project: { id: corpus.alpha.id } }, 'Team Alpha'),
        (err: Error & { statusCode?: number }) => err.statusCode === 409 && /TF400948/.test(err.message));
    });

    it('answers an unknown or disabled repository with 404 TF401019', async () => {
      for (const name of ['nope', 'disabled']) {
        const res = await fetch(`${standin.orgUrl}Team%20Alpha/_apis/git/repositories/${name}`, { headers: { Authorization: `Bearer ${BEARER}` } });
        assert.strictEqual(res.status, 404);
        const body = (await res.json()) as { message: string; typeKey: string };
        assert.match(body.message, /^TF401019: .* (nope|disabled) does not exist/);
      }
    });

    it('pages projects with $top/$skip and x-ms-continuationtoken', async () => {
      const headers = { Authorization: `Bearer ${BEARER}` };
      const first = await fetch(`${standin.orgUrl}_apis/projects?$top=1`, { headers });
      assert.strictEqual(first.headers.get('x-ms-continuationtoken'), '1');
      const second = await fetch(`${standin.orgUrl}_apis/projects?$top=1&continuationToken=1`, { headers });
      assert.strictEqual(second.headers.get('x-ms-continuationtoken'), null);
      const names = [(await first.json()) as { value: { name: string }[] }, (await second.json()) as { value: { name: string }[] }]
        .map((b) => b.value[0].name);
      assert.deepStrictEqual(names.sort(), ['Team Alpha', 'Équipe Bêta']);
    });
  });

  describe('faults', () => {
    it('throttles with 429, Retry-After and X-RateLimit-* headers', async () => {
      const core = await bearerApi().getCoreApi();
      standin.faults.throttleRest = { count: 1, retryAfterSeconds: 7 };
      const err = await core.getProjects().then(() => undefined, (e: unknown) => e) as
        { statusCode: number; message: string; responseHeaders: Record<string, string>; rateLimit?: { retryAfter?: number } };
      assert.strictEqual(err.statusCode, 429);
      assert.match(err.message, /TF400733/);
      assert.strictEqual(err.responseHeaders['retry-after'], '7');
      assert.strictEqual(err.rateLimit?.retryAfter, 7);
      for (const h of ['resource', 'delay', 'limit', 'remaining', 'reset']) assert.ok(err.responseHeaders[`x-ratelimit-${h}`], h);
      assert.strictEqual(standin.faults.throttleRest.count, 0);
    });

    it('fails REST with a chosen status, or answers an HTML page', async () => {
      const headers = { Authorization: `Bearer ${BEARER}` };
      standin.faults.failRest = { count: 1, status: 503 };
      assert.strictEqual((await fetch(`${standin.orgUrl}_apis/projects`, { headers })).status, 503);
      assert.strictEqual((await fetch(`${standin.orgUrl}_apis/projects`, { headers })).status, 200);
      standin.faults.htmlRest = true;
      const html = await fetch(`${standin.orgUrl}_apis/projects`, { headers });
      standin.faults.htmlRest = false;
      assert.strictEqual(html.status, 200);
      assert.match(html.headers.get('content-type') ?? '', /text\/html/);
    });

    it('resets an upload-pack connection mid-response, then serves again', async () => {
      standin.faults.resetGit = { repo: 'api', count: 1 };
      const dir = tmpDir('reset');
      await assert.rejects(git(['clone', '--mirror', corpus.repos.api.repo.remoteUrl, path.join(dir, 'a')], { env: bearerEnv() }));
      await git(['clone', '--mirror', corpus.repos.api.repo.remoteUrl, path.join(dir, 'b')], { env: bearerEnv() });
      assert.ok(standin.requests.some((r) => r.aborted && r.url.endsWith('/api/git-upload-pack')));
    });

    it('delays git answers of one repository', async () => {
      standin.faults.slowGit = { repo: 'naïve repo', delayMs: 400 };
      const t = Date.now();
      await git(['ls-remote', corpus.repos.naive.repo.remoteUrl], { env: bearerEnv() });
      standin.faults.slowGit = undefined;
      assert.ok(Date.now() - t >= 400);
    });
  });

  describe('git and LFS over HTTP', () => {
    it('clone --mirror gets every ref, refs/pull/1/merge and notes included', async () => {
      const mirror = path.join(tmpDir('mirror'), 'api.git');
      await git(['clone', '--mirror', '--quiet', corpus.repos.api.repo.remoteUrl, mirror], { env: bearerEnv() });
      assert.deepStrictEqual(await refMap(mirror), corpus.repos.api.refs);
      assert.ok(corpus.repos.api.refs['refs/pull/1/merge']);
      assert.ok(corpus.repos.api.refs['refs/notes/commits']);
      assert.strictEqual((await git(['--git-dir', mirror, 'cat-file', '-t', 'refs/tags/v1.0'])).trim(), 'tag');
      assert.strictEqual((await git(['--git-dir', mirror, 'notes', 'show', 'main'])).trim(), 'Reviewed-by: Bob');
    });

    it('git lfs fetch --all gets every LFS object, including those only on a non-default branch', async () => {
      const mirror = path.join(tmpDir('mirror'), 'assets.git');
      const env = authEnv(`Bearer ${BEARER}`);
      await git(['clone', '--mirror', '--quiet', corpus.repos.assets.repo.remoteUrl, mirror], { env });
      await git(['lfs', 'fetch', '--all'], { cwd: mirror, env });
      const expected = corpus.repos.assets.lfs;
      assert.strictEqual(expected.length, 3);
      assert.ok(expected.some((o) => o.branch !== 'main'));
      for (const o of expected) {
        const file = path.join(mirror, 'lfs', 'objects', o.oid.slice(0, 2), o.oid.slice(2, 4), o.oid);
        assert.strictEqual(crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex'), o.oid);
      }
    });

    it('reports a missing LFS object per object (404) in the batch answer', async () => {
      const repo = corpus.repos.assets.repo;
      const oid = '0'.repeat(64);
      const res = await fetch(`${standin.orgUrl}Team%20Alpha/_git/assets.git/info/lfs/objects/batch`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${BEARER}`, 'Content-Type': 'application/vnd.git-lfs+json', Accept: 'application/vnd.git-lfs+json' },
        body: JSON.stringify({ operation: 'download', objects: [{ oid, size: 1 }, { oid: corpus.repos.assets.lfs[0].oid, size: corpus.repos.assets.lfs[0].size }] }),
      });
      assert.strictEqual(res.headers.get('content-type'), 'application/vnd.git-lfs+json');
      const body = (await res.json()) as { transfer: string; objects: Array<{ error?: { code: number }; actions?: { download: { href: string; header: Record<string, string> } } }> };
      assert.strictEqual(body.transfer, 'basic');
      assert.strictEqual(body.objects[0].error?.code, 404);
      assert.strictEqual(body.objects[1].actions?.download.header.Authorization, `Bearer ${BEARER}`);
      assert.ok(fs.existsSync(standin.lfsObjectPath(repo, corpus.repos.assets.lfs[0].oid)));
    });

    it('refuses a disabled repository with TF401019', async () => {
      const err = await git(['clone', '--mirror', corpus.repos.disabled.repo.remoteUrl, path.join(tmpDir('disabled'), 'd')], { env: bearerEnv() })
        .then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof GitError);
      assert.match(err.stderr, /TF401019/);
    });

    it('refuses pushing refs/pull/*, ref by ref', async () => {
      const work = path.join(tmpDir('push'), 'api');
      await git(['clone', '--quiet', corpus.repos.api.repo.remoteUrl, work], { env: bearerEnv() });
      const err = await git(['push', 'origin', 'HEAD:refs/pull/9/merge', 'HEAD:refs/heads/pushed-beside'], { cwd: work, env: bearerEnv() }).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof GitError);
      assert.match(err.stderr, /refs\/pull\/9\/merge \(deny updating a hidden ref\)/);
      const refs = await refMap(corpus.repos.api.repo.gitDir);
      assert.strictEqual(refs['refs/pull/9/merge'], undefined);
      assert.ok(refs['refs/heads/pushed-beside'], 'the other ref of the same push went through');
      await git(['push', 'origin', ':refs/heads/pushed-beside'], { cwd: work, env: bearerEnv() });
    });

    it('asks git for credentials (401 + WWW-Authenticate Basic) without a token', async () => {
      const err = await git(['ls-remote', corpus.repos.api.repo.remoteUrl]).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof GitError);
      assert.match(err.stderr, /terminal prompts disabled|Authentication failed/);
    });

    it('makes deterministic random repositories with LFS for benches', async () => {
      const repo = standin.addRepo(corpus.beta, 'bench');
      const made = await makeRandomRepo(standin, repo, { sizeBytes: 1_000_000, files: 5, tags: 2, lfsBytes: 200_000, seed: 42 });
      const mirror = path.join(tmpDir('bench'), 'bench.git');
      await git(['clone', '--mirror', '--quiet', repo.remoteUrl, mirror], { env: bearerEnv() });
      assert.deepStrictEqual(await refMap(mirror), made.refs);
      assert.deepStrictEqual(Object.keys(made.refs).sort(), ['refs/heads/main', 'refs/tags/light-1', 'refs/tags/v0']);
      await git(['lfs', 'fetch', '--all'], { cwd: mirror, env: bearerEnv() });
      for (const oid of made.lfsOids) assert.ok(fs.existsSync(path.join(mirror, 'lfs', 'objects', oid.slice(0, 2), oid.slice(2, 4), oid)));
      const again = standin.addRepo(corpus.beta, 'bench-again');
      assert.strictEqual((await makeRandomRepo(standin, again, { sizeBytes: 1_000_000, files: 5, tags: 2, lfsBytes: 200_000, seed: 42 })).head, made.head);
    });

    it('never logs a token', () => {
      const log = JSON.stringify(standin.requests);
      assert.ok(standin.requests.length > 20);
      for (const secret of [BEARER, PAT, Buffer.from(`PAT:${PAT}`).toString('base64')]) assert.ok(!log.includes(secret));
      assert.ok(standin.requests.some((r) => r.authScheme === 'Basic'));
      assert.ok(standin.requests.some((r) => r.route === 'lfs'));
    });
  });
});

describe('Azurite', function () {
  this.timeout(60_000);
  let azurite: AzuriteHandle;
  before(async () => { azurite = await startAzurite(); });
  after(async () => {
    await azurite?.stop();
    await cleanupAll();
  });

  it('a cw container SAS can create blobs once, but cannot list', async () => {
    const { ContainerClient } = await import('@azure/storage-blob');
    await azurite.createContainer('backups');
    const container = new ContainerClient(azurite.containerSasUrl('backups', 'cw'));
    const blob = container.getBlockBlobClient('org/2024/api.zip');
    await blob.upload(Buffer.from('hello'), 5, { conditions: { ifNoneMatch: '*' } });
    await assert.rejects(blob.upload(Buffer.from('again'), 5, { conditions: { ifNoneMatch: '*' } }), { statusCode: 409 });
    await assert.rejects(container.listBlobsFlat().next(), { statusCode: 403 });
    const read = await azurite.serviceClient().getContainerClient('backups').getBlobClient('org/2024/api.zip').downloadToBuffer();
    assert.strictEqual(read.toString(), 'hello');
    assert.ok(azurite.requestUrls().some((u) => u.startsWith('/devstoreaccount1/backups/org/2024/api.zip?') && u.includes('sig=')));
  });
});

describe('runTask', () => {
  after(cleanupAll);
  it('runs an entry with the agent environment and parses ##vso commands', async () => {
    const dir = tmpDir('task');
    const entry = path.join(dir, 'index.js');
    fs.writeFileSync(entry, [
      "const e = process.env;",
      "console.log('##vso[task.setvariable variable=seen;issecret=false]' + [e.INPUT_SASURL, e.INPUT_AUTH_TYPE, e.ENDPOINT_URL_SYSTEMVSSCONNECTION, e.SYSTEM_TEAMPROJECT, e.MY_VAR, String(e.INPUT_LEAK)].join('|'));",
      "console.log('##vso[task.issue type=warning;]50%AZP25 done%0Asecond line');",
      "console.log('##vso[task.complete result=SucceededWithIssues;]all%3B good');",
    ].join('\n'));
    process.env.INPUT_LEAK = 'developer value';
    try {
      const run = await runTask(entry, {
        inputs: { sasUrl: 'http://x/c?sig=1', 'auth type': 'pat' }, orgUrl: 'http://127.0.0.1:1/org/', token: 'tok',
        tempDir: dir, variables: { 'My.Var': 'v' },
      });
      assert.strictEqual(run.code, 0);
      assert.strictEqual(run.commands[0].message, 'http://x/c?sig=1|pat|http://127.0.0.1:1/org/|Team Alpha|v|undefined');
      assert.deepStrictEqual(run.commands[1], { command: 'task.issue', props: { type: 'warning' }, message: '50% done\nsecond line' });
      assert.deepStrictEqual(run.result, { result: 'SucceededWithIssues', message: 'all%3B good' });
    } finally {
      delete process.env.INPUT_LEAK;
    }
  });
});

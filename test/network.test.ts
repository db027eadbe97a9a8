// The agent's proxy and certificate settings, end to end: both tasks run as the agent runs them behind a real
// tinyproxy (Debian package, started here in the foreground with its own config, Basic proxy authentication).
// tinyproxy makes its outgoing connections from 127.0.0.2 (`Bind`), so the Azure DevOps stand-in (its request log
// keeps each connection's address) and a gate in front of Azurite (which records every connection's address) tell
// a request that went through the proxy from one that went direct.
import assert from 'assert';
import { randomBytes } from 'crypto';
import { promises as dns } from 'dns';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { AzuriteHandle, startAzurite } from './harness/azurite';
import { assertNoSecretInBytes, assertNoSecretInOutput, manifests, readContainer, secretForms } from './harness/checks';
import { buildStandardCorpus, StandardCorpus } from './harness/corpus';
import { DevOpsStandIn } from './harness/devops-standin';
import { makeTestPki, TestPki } from './harness/entra-standin';
import * as procs from './harness/procs';
import { runTask, TaskRun } from './harness/run-task';
import { startTinyproxy as startProxy, Tinyproxy } from './harness/tinyproxy';
import { startTlsFront, TlsFront } from './harness/tls-front';
import { cleanupAll, freePort, refMap, tmpDir } from './harness/util';

const BACKUP = path.resolve(__dirname, '../../tasks/RepoBackup/RepoBackupV1/dist/index.js');
const RESTORE = path.resolve(__dirname, '../../tasks/RepoRestore/RepoRestoreV1/dist/index.js');
const TOKEN = `canaryJobToken${randomBytes(12).toString('hex')}`;
// tinyproxy's config syntax takes a plain word as the password.
const PROXY_USER = 'backupagent';
const PROXY_PASSWORD = `canaryProxyPw${randomBytes(12).toString('hex')}`;
const PROXY_OUT = '127.0.0.2';
const startTinyproxy = (dir: string, auth?: { user: string; password: string }) => startProxy(dir, { auth, bind: PROXY_OUT });

/** A TCP gate in front of a server: records the address every connection comes from. */
interface Gate { port: number; from: string[]; stop(): Promise<void> }
async function startGate(targetPort: number): Promise<Gate> {
  const from: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    from.push(client.remoteAddress ?? '?');
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client); sockets.add(upstream);
    client.pipe(upstream).pipe(client);
    const end = () => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream); };
    client.once('error', end); upstream.once('error', end); client.once('close', end); upstream.once('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    from,
    stop: () => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}

describe('Agent proxy and certificate settings (tinyproxy)', function () {
  this.timeout(180_000);
  let standin: DevOpsStandIn;
  let azurite: AzuriteHandle;
  let corpus: StandardCorpus;
  let proxy: Tinyproxy;
  let gate: Gate;
  let containers = 0;

  /**
   * git-lfs (Go's proxy rules) never proxies `localhost` or a loopback IP literal, so the stand-in is named by this
   * machine's host name when that resolves to 127.0.0.1 (as in /etc/hosts here); otherwise LFS requests are
   * not required to pass the proxy, and the test says so.
   */
  let lfsProxied = false;

  before(async () => {
    const hostName = os.hostname();
    lfsProxied = await dns.lookup(hostName, { family: 4 }).then((a) => a.address === '127.0.0.1', () => false);
    if (!lfsProxied) console.log(`      ${hostName} does not resolve to 127.0.0.1: LFS requests (git-lfs never proxies loopback literals) are not checked`);
    standin = await DevOpsStandIn.start({ org: 'contoso', root: tmpDir('standin'), tokens: { bearer: [TOKEN] }, hostName: lfsProxied ? hostName : undefined });
    corpus = await buildStandardCorpus(standin);
    azurite = await startAzurite();
    gate = await startGate(Number(new URL(azurite.blobUrl).port));
    proxy = await startTinyproxy(tmpDir('tinyproxy'), { user: PROXY_USER, password: PROXY_PASSWORD });
  });

  after(async () => {
    await proxy?.stop();
    await gate?.stop();
    await standin?.stop();
    await azurite?.stop();
    await cleanupAll();
  });

  /** A fresh container; its SAS URL points at the gate (the signature covers the account and path, not the port). */
  async function container() {
    const name = `proxied${++containers}`;
    const client = await azurite.createContainer(name);
    const direct = new URL(azurite.containerSasUrl(name, 'cwrl'));
    direct.port = String(gate.port);
    return { client, sasUrl: direct.toString(), sig: direct.searchParams.get('sig')! };
  }

  const proxyVariables = (bypass?: string[]) => ({
    'Agent.ProxyUrl': proxy.url,
    'Agent.ProxyUsername': PROXY_USER,
    ...(bypass ? { 'Agent.ProxyBypassList': JSON.stringify(bypass) } : {}),
    'System.Debug': 'true',
  });

  /** Runs a task and samples every process's argv on this machine while it runs, for the proxy password. */
  async function runSampled(entry: string, inputs: Record<string, string>, variables: Record<string, string>, secrets: Record<string, string>) {
    const forms = [PROXY_PASSWORD, TOKEN].flatMap(secretForms);
    const leaks: string[] = [];
    let samples = 0;
    const sampler = procs.every(20, () => {
      samples++;
      for (const { pid, cmdline } of procs.allCmdlines()) {
        for (const f of forms) if (cmdline.includes(f)) leaks.push(`pid ${pid}: ${cmdline.toString().split(f).join('<SECRET>')}`);
      }
    });
    let run: TaskRun;
    try {
      run = await runTask(entry, { inputs, orgUrl: standin.orgUrl, token: TOKEN, tempDir: tmpDir('run'), variables, secrets });
    } finally {
      await sampler.stop();
    }
    assert.deepStrictEqual(leaks, [], 'no process argv carries the proxy password or the token');
    assert.ok(samples > 5, `argv sampled (${samples} samples)`);
    assertNoSecretInOutput(run, [TOKEN, PROXY_PASSWORD]);
    return run;
  }

  it('backs up through an authenticated proxy: every REST, git, LFS and Blob request goes through it, the password nowhere', async () => {
    const { client, sasUrl, sig } = await container();
    standin.clearLog();
    gate.from.length = 0;
    const logBefore = proxy.log().length;
    const run = await runSampled(BACKUP, { sasUrl }, proxyVariables(), { 'Agent.ProxyPassword': PROXY_PASSWORD });
    assert.strictEqual(run.result?.result, 'Succeeded', run.stdout);
    assert.match(run.stdout, /Network: proxy http:\/\/127\.0\.0\.1:\d+ \(authenticated\)/);

    const routes = new Set(standin.requests.map((r) => r.route));
    assert.deepStrictEqual([...routes].sort(), ['git', 'lfs', 'rest'], 'REST, git and LFS requests were made');
    const direct = standin.requests.filter((r) => r.remoteAddress !== PROXY_OUT && (lfsProxied || r.route !== 'lfs'));
    assert.deepStrictEqual(direct.map((r) => `${r.method} ${r.url} from ${r.remoteAddress}`), [], 'every stand-in request came through the proxy');
    assert.ok(gate.from.length > 0, 'the container was reached');
    assert.deepStrictEqual(gate.from.filter((a) => a !== PROXY_OUT), [], 'every Azurite connection came through the proxy');
    const log = proxy.log().slice(logBefore);
    assert.ok(log.includes(`${new URL(standin.orgUrl).host}`), 'tinyproxy logged the stand-in');
    assert.ok(log.includes(`127.0.0.1:${gate.port}`), 'tinyproxy logged the storage account');
    console.log(`      stand-in requests via proxy: ${standin.requests.length}; storage connections via proxy: ${gate.from.length}`);

    const files = await readContainer(client);
    const [manifest] = manifests(files);
    assert.ok(manifest.repositories.filter((e) => e.status === 'ok').length >= 5);
    assertNoSecretInBytes('stored archives and manifests', [...files.values()].map((f) => f.bytes), [PROXY_PASSWORD, sig]);
    assert.ok(!standin.requests.some((r) => r.url.includes(PROXY_PASSWORD)));
  });

  it('honours Agent.ProxyBypassList: the stand-in is reached directly, storage still through the proxy', async () => {
    const { sasUrl } = await container();
    standin.clearLog();
    gate.from.length = 0;
    const bypass = [`^https?://[^/]*:${new URL(standin.orgUrl).port}/`];
    const run = await runSampled(BACKUP, { sasUrl, repositories: 'Team Alpha/api' }, proxyVariables(bypass), { 'Agent.ProxyPassword': PROXY_PASSWORD });
    assert.strictEqual(run.result?.result, 'Succeeded', run.stdout);
    assert.ok(standin.requests.some((r) => r.route === 'git'));
    assert.deepStrictEqual(standin.requests.filter((r) => r.remoteAddress !== '127.0.0.1').map((r) => r.url), [], 'the bypassed host is reached directly');
    assert.ok(gate.from.length > 0);
    assert.deepStrictEqual(gate.from.filter((a) => a !== PROXY_OUT), [], 'storage still goes through the proxy');
  });

  it('a wrong proxy password fails fast naming Agent.ProxyPassword, and nothing passes the proxy', async () => {
    const { sasUrl } = await container();
    standin.clearLog();
    const wrong = `canaryWrongPw${randomBytes(8).toString('hex')}`;
    const started = Date.now();
    const run = await runTask(BACKUP, { inputs: { sasUrl }, orgUrl: standin.orgUrl, token: TOKEN, tempDir: tmpDir('run'),
      variables: { ...proxyVariables(), 'Agent.ProxyPassword': '' }, secrets: { 'Agent.ProxyPassword': wrong } });
    assertNoSecretInOutput(run, [TOKEN, wrong]);
    const took = Date.now() - started;
    console.log(`      wrong proxy password: ended in ${took} ms: ${run.result?.message}`);
    assert.strictEqual(run.result?.result, 'Failed', run.stdout);
    assert.match(run.result!.message, /HTTP 40[17], proxy authentication required/);
    assert.match(run.result!.message, /Agent\.ProxyPassword/);
    assert.ok(took < 30_000, `failed fast (${took} ms)`);
    assert.strictEqual(standin.requests.length, 0, 'nothing reached the stand-in');
  });

  it('an unreachable proxy fails fast with a message naming Agent.ProxyUrl', async () => {
    const { sasUrl } = await container();
    standin.clearLog();
    const closed = await freePort();
    const started = Date.now();
    const run = await runTask(BACKUP, { inputs: { sasUrl }, orgUrl: standin.orgUrl, token: TOKEN, tempDir: tmpDir('run'),
      variables: { 'Agent.ProxyUrl': `http://127.0.0.1:${closed}`, 'Agent.ProxyUsername': PROXY_USER }, secrets: { 'Agent.ProxyPassword': PROXY_PASSWORD } });
    const took = Date.now() - started;
    console.log(`      unreachable proxy: task ended in ${took} ms`);
    assert.strictEqual(run.result?.result, 'Failed', run.stdout);
    assert.match(run.result!.message, /Agent\.ProxyUrl/);
    assert.match(run.result!.message, new RegExp(`127\\.0\\.0\\.1:${closed}`));
    assert.ok(took < 30_000, `failed fast (${took} ms)`);
    assert.strictEqual(standin.requests.length, 0);
    assertNoSecretInOutput(run, [TOKEN, PROXY_PASSWORD]);
  });

  it('RepoRestore (verify drill) reads the archives and compares with the live repositories through the proxy', async () => {
    const { sasUrl } = await container();
    const backup = await runSampled(BACKUP, { sasUrl, repositories: 'Team Alpha/api' }, proxyVariables(), { 'Agent.ProxyPassword': PROXY_PASSWORD });
    assert.strictEqual(backup.result?.result, 'Succeeded', backup.stdout);
    standin.clearLog();
    gate.from.length = 0;
    const run = await runSampled(RESTORE, { mode: 'verify', source: 'azureBlob', sasUrl, repository: 'Team Alpha/api' }, proxyVariables(), { 'Agent.ProxyPassword': PROXY_PASSWORD });
    assert.strictEqual(run.result?.result, 'Succeeded', run.stdout);
    assert.ok(standin.requests.length > 0 && gate.from.length > 0);
    assert.deepStrictEqual(standin.requests.filter((r) => r.remoteAddress !== PROXY_OUT).map((r) => r.url), []);
    assert.deepStrictEqual(gate.from.filter((a) => a !== PROXY_OUT), []);
    void corpus;
  });
});

describe('Agent.CAInfo: HTTPS storage signed by a CA only Agent.CAInfo names', function () {
  this.timeout(180_000);
  let standin: DevOpsStandIn;
  let azurite: AzuriteHandle;
  let pki: TestPki;

  before(async () => {
    pki = makeTestPki(tmpDir('pki'));
    standin = await DevOpsStandIn.start({ org: 'contoso', root: tmpDir('standin'), tokens: { bearer: [TOKEN] } });
    await buildStandardCorpus(standin);
    azurite = await startAzurite({ tls: { cert: pki.cert, key: pki.key, ca: pki.caCert } });
  });

  after(async () => {
    await standin?.stop();
    await azurite?.stop();
    await cleanupAll();
  });

  async function httpsSas(name: string) {
    const client = await azurite.createContainer(name);
    const sas = new URL(azurite.containerSasUrl(name, 'cw'));
    const tls = new URL(azurite.tlsBlobUrl!);
    sas.protocol = tls.protocol;
    sas.host = tls.host;
    return { client, sasUrl: sas.toString() };
  }

  const run = (sasUrl: string, variables: Record<string, string>) => runTask(BACKUP, {
    inputs: { sasUrl, repositories: 'Team Alpha/api' }, orgUrl: standin.orgUrl, token: TOKEN, tempDir: tmpDir('run'), variables,
    env: { NODE_EXTRA_CA_CERTS: '' },
  });

  it('without Agent.CAInfo the untrusted certificate fails the run; with it the backup is stored', async () => {
    const refused = await httpsSas('untrusted');
    const without = await run(refused.sasUrl, {});
    console.log(`      without Agent.CAInfo: ${without.result?.result}: ${without.result?.message.slice(0, 160)}`);
    assert.notStrictEqual(without.result?.result, 'Succeeded', 'the test CA is not trusted by default');
    assert.match(without.stdout, /certificate/i, 'refused for its certificate');
    assert.strictEqual((await readContainer(refused.client)).size, 0);

    const trusted = await httpsSas('trusted');
    const ok = await run(trusted.sasUrl, { 'Agent.CAInfo': pki.caCert });
    assert.strictEqual(ok.result?.result, 'Succeeded', ok.stdout);
    assert.match(ok.stdout, /certificate authorities from Agent\.CAInfo/);
    const [manifest] = manifests(await readContainer(trusted.client));
    assert.ok(manifest.repositories.some((e) => e.repository === 'api' && e.status === 'ok'));
  });

  it('Agent.SkipCertValidation: the untrusted storage certificate is accepted, with a warning that certificates are not validated', async () => {
    const refused = await httpsSas('skipoff');
    const without = await run(refused.sasUrl, {});
    assert.notStrictEqual(without.result?.result, 'Succeeded', 'the test CA is not trusted by default');
    const skipped = await httpsSas('skipon');
    const ok = await run(skipped.sasUrl, { 'Agent.SkipCertValidation': 'true' });
    assert.strictEqual(ok.result?.result, 'Succeeded', ok.stdout);
    const warnings = ok.lines.filter((l) => /^##vso\[task\.(?:log)?issue type=warning/.test(l));
    assert.ok(warnings.some((w) => /Agent\.SkipCertValidation is true: server certificates are NOT validated/.test(w)), `a warning says so: ${warnings.join('\n')}`);
    const [manifest] = manifests(await readContainer(skipped.client));
    assert.ok(manifest.repositories.some((e) => e.repository === 'api' && e.status === 'ok'));
  });

  it('a missing Agent.CAInfo file fails before any work, naming the variable', async () => {
    const { sasUrl } = await httpsSas('missingca');
    standin.clearLog();
    const r = await run(sasUrl, { 'Agent.CAInfo': '/nonexistent/ca.pem' });
    assert.strictEqual(r.result?.result, 'Failed');
    assert.match(r.result!.message, /Agent\.CAInfo names '\/nonexistent\/ca\.pem'/);
    assert.strictEqual(standin.requests.length, 0);
  });
});

describe('Agent.CAInfo end to end: Azure DevOps behind HTTPS signed by a CA only Agent.CAInfo names', function () {
  this.timeout(180_000);
  let standin: DevOpsStandIn;
  let front: TlsFront;
  let azurite: AzuriteHandle;
  let corpus: StandardCorpus;
  let pki: TestPki;

  before(async () => {
    pki = makeTestPki(tmpDir('pki'));
    standin = await DevOpsStandIn.start({ org: 'contoso', root: tmpDir('standin'), tokens: { bearer: [TOKEN] } });
    corpus = await buildStandardCorpus(standin);
    front = await startTlsFront(standin.baseUrl, pki);
    azurite = await startAzurite();
  });

  after(async () => {
    await front?.stop();
    await standin?.stop();
    await azurite?.stop();
    await cleanupAll();
  });

  const orgUrl = () => `${front.url}/contoso/`;
  const task = (entry: string, inputs: Record<string, string>, variables: Record<string, string>) => runTask(entry, {
    inputs, orgUrl: orgUrl(), token: TOKEN, tempDir: tmpDir('run'), variables, env: { NODE_EXTRA_CA_CERTS: '' },
  });

  it('without Agent.CAInfo the run fails before any work, naming Agent.CAInfo', async () => {
    await azurite.createContainer('noca');
    standin.clearLog();
    front.requests.length = 0;
    const started = Date.now();
    const r = await task(BACKUP, { sasUrl: azurite.containerSasUrl('noca', 'cwrl') }, {});
    const took = Date.now() - started;
    console.log(`      without Agent.CAInfo: ${took} ms: ${r.result?.message}`);
    assert.strictEqual(r.result?.result, 'Failed', r.stdout);
    assert.match(r.result!.message, /server certificate of https:\/\/127\.0\.0\.1:\d+ is not trusted/);
    assert.match(r.result!.message, /Agent\.CAInfo is not set.*Point Agent\.CAInfo at the PEM file/);
    assert.ok(front.refusedHandshakes > 0, 'the task refused the certificate');
    assert.deepStrictEqual(standin.requests.map((q) => q.url), [], 'nothing reached Azure DevOps');
    assertNoSecretInOutput(r, [TOKEN]);

    const wrong = makeTestPki(tmpDir('otherpki'));
    const r2 = await task(BACKUP, { sasUrl: azurite.containerSasUrl('noca', 'cwrl') }, { 'Agent.CAInfo': wrong.caCert });
    assert.strictEqual(r2.result?.result, 'Failed', r2.stdout);
    assert.match(r2.result!.message, new RegExp(`Agent\\.CAInfo \\(${wrong.caCert.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\) does not hold the certificate authority`));
  });

  it('with Agent.CAInfo: REST list, git clone and LFS fetch over HTTPS, then a restore push', async () => {
    const client = await azurite.createContainer('withca');
    standin.clearLog();
    front.requests.length = 0;
    const backup = await task(BACKUP, { sasUrl: azurite.containerSasUrl('withca', 'cwrl'), repositories: 'Team Alpha/assets' }, { 'Agent.CAInfo': pki.caCert });
    assert.strictEqual(backup.result?.result, 'Succeeded', backup.stdout);
    const through = front.requests;
    assert.ok(through.some((q) => /_apis\/git\/repositories/.test(q)), 'the REST list came through the HTTPS front');
    assert.ok(through.some((q) => /\/_git\/assets.*git-upload-pack/.test(q)), 'git clone came through the HTTPS front');
    assert.ok(through.some((q) => /info\/lfs\/objects\/batch/.test(q)) && through.some((q) => /^GET .*info\/lfs\/objects\/[0-9a-f]{64}/.test(q)), 'LFS batch and download came through the HTTPS front');
    assert.strictEqual(standin.requests.length, through.length, `every Azure DevOps request came through the front (${standin.requests.length} vs ${through.length})`);
    const [manifest] = manifests(await readContainer(client));
    const entry = manifest.repositories.find((e) => e.repository === 'assets');
    assert.strictEqual(entry?.status, 'ok');

    front.requests.length = 0;
    standin.clearLog();
    const restore = await task(RESTORE, { source: 'azureBlob', sasUrl: azurite.containerSasUrl('withca', 'rl'), repository: 'Team Alpha/assets', targetProject: 'Team Alpha', targetRepository: 'assets-https' },
      { 'Agent.CAInfo': pki.caCert });
    assert.strictEqual(restore.result?.result, 'Succeeded', restore.stdout);
    assert.ok(front.requests.some((q) => /^POST .*\/_git\/assets-https.*git-receive-pack/.test(q)), 'the push came through the HTTPS front');
    assert.ok(front.requests.some((q) => /^PUT .*info\/lfs\/objects\//.test(q)) || front.requests.some((q) => /info\/lfs\/objects\/batch/.test(q)), 'LFS objects went through the front');
    assert.strictEqual(standin.requests.length, front.requests.length);
    const restored = standin.findRepo('Team Alpha', 'assets-https');
    assert.ok(restored);
    assert.deepStrictEqual(await refMap(restored.gitDir), Object.fromEntries(Object.entries(corpus.repos.assets.refs).filter(([n]) => !n.startsWith('refs/pull/'))));
    console.log(`      HTTPS front: backup ${backup.durationMs} ms, restore ${restore.durationMs} ms, ${front.requests.length} requests in the restore`);
    assertNoSecretInOutput(backup, [TOKEN]);
    assertNoSecretInOutput(restore, [TOKEN]);
  });
});

import assert from 'assert';
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { RunError } from '../../tasks/common/src/errors';
import { certificateMessage, isCertificateError, Network, readNetworkSettings } from '../../tasks/common/src/network';
import { makeTestPki, TestPki } from '../harness/entra-standin';
import { FakeHost } from './fake-host';

const PW = 'p@ss w:rd/%';

describe('network settings (Agent.Proxy*, Agent.CAInfo, Agent.SkipCertValidation)', () => {
  const host = (variables: Record<string, string>) => new FakeHost({}, variables);
  const proxied = (extra: Record<string, string> = {}) => {
    const h = host({ 'Agent.ProxyUrl': 'http://proxy.corp:3128', 'Agent.ProxyUsername': 'svc', 'Agent.ProxyPassword': PW, ...extra });
    return { h, network: Network.read(h) };
  };

  it('nothing set: no options, no git config, no proxy', () => {
    const n = Network.read(host({}));
    assert.deepStrictEqual(n.restOptions(), {});
    assert.deepStrictEqual(n.gitConfig('https://dev.azure.com/o/p/_git/r'), []);
    assert.strictEqual(n.azureProxyOptions('https://a.blob.core.windows.net/c'), undefined);
    assert.strictEqual(n.describe(), undefined);
  });

  it('masks the password (and its URL-encoded form) and keeps it out of the description', () => {
    const { h, network } = proxied();
    assert.ok(h.secrets.includes(PW));
    assert.ok(h.secrets.includes(encodeURIComponent(PW)));
    assert.doesNotMatch(network.describe()!, /p@ss/);
    assert.match(network.describe()!, /proxy http:\/\/proxy\.corp:3128 \(authenticated\)/);
  });

  it('REST options carry the proxy, the bypass list, the CA and ignoreSslError', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'net-unit-'));
    const ca = path.join(dir, 'ca.pem');
    fs.writeFileSync(ca, '-----BEGIN CERTIFICATE-----\n');
    const { network } = proxied({ 'Agent.ProxyBypassList': '["\\\\.corp$", "internal"]', 'Agent.CAInfo': ca, 'Agent.SkipCertValidation': 'true' });
    assert.deepStrictEqual(network.restOptions(), {
      proxy: { proxyUrl: 'http://proxy.corp:3128', proxyBypassHosts: ['\\.corp$', 'internal'], proxyUsername: 'svc', proxyPassword: PW },
      cert: { caFile: ca },
      ignoreSslError: true,
    });
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('git config: http.proxy with encoded credentials, empty http.proxy for a bypassed URL, CA and sslVerify', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'net-unit-'));
    const ca = path.join(dir, 'ca.pem');
    fs.writeFileSync(ca, 'x');
    const { network } = proxied({ 'Agent.ProxyBypassList': '["internal\\\\.example"]', 'Agent.CAInfo': ca, 'Agent.SkipCertValidation': 'True' });
    const entries = network.gitConfig('https://dev.azure.com/o/p/_git/r');
    assert.deepStrictEqual(entries, [
      ['http.proxy', `http://svc:${encodeURIComponent(PW)}@proxy.corp:3128`],
      ['http.proxyAuthMethod', 'basic'],
      ['http.sslCAInfo', ca],
      ['http.sslVerify', 'false'],
    ]);
    assert.deepStrictEqual(network.gitConfig('https://git.INTERNAL.example/o/_git/r')[0], ['http.proxy', ''], 'bypass is case-insensitive');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('Azure SDK proxyOptions, none for a bypassed URL', () => {
    const { network } = proxied({ 'Agent.ProxyBypassList': '["\\\\.blob\\\\.core\\\\.windows\\\\.net"]' });
    assert.strictEqual(network.azureProxyOptions('https://acct.blob.core.windows.net/c'), undefined);
    assert.deepStrictEqual(network.azureProxyOptions('https://login.microsoftonline.com/'), { host: 'http://proxy.corp', port: 3128, username: 'svc', password: PW });
    assert.deepStrictEqual(Network.read(host({ 'Agent.ProxyUrl': 'http://p' })).azureProxyOptions('https://x/'), { host: 'http://p', port: 80 });
  });

  it('Azure SDK client options: an https agent with the CA / verification (tunnelling when proxied), proxyOptions for http behind the proxy', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'net-unit-'));
    const ca = path.join(dir, 'ca.pem');
    fs.writeFileSync(ca, 'PEM');
    const n = Network.read(host({ 'Agent.ProxyUrl': 'http://p:1', 'Agent.ProxyBypassList': '["direct"]', 'Agent.CAInfo': ca }));
    const direct = n.azureClientOptions('https://direct.example/c').agent as https.Agent & { options: https.AgentOptions };
    assert.ok(direct instanceof https.Agent && direct.options.ca === 'PEM' && direct.options.keepAlive === true);
    const tunnel = n.azureClientOptions('https://other.example/c').agent as https.Agent & { options: https.AgentOptions };
    assert.ok(tunnel instanceof https.Agent && tunnel !== direct && tunnel.options.ca === 'PEM', 'behind the proxy the CA is kept (the tunnel agent carries it)');
    assert.strictEqual(n.azureClientOptions('https://other2.example/c').agent, tunnel, 'one tunnel agent per run');
    assert.deepStrictEqual(n.azureClientOptions('http://other.example/c'), { proxyOptions: { host: 'http://p', port: 1 } });
    assert.deepStrictEqual(n.azureClientOptions('http://direct.example/c'), {});
    assert.deepStrictEqual(Network.read(host({})).azureClientOptions('https://x/'), {});
    const skip = Network.read(host({ 'Agent.SkipCertValidation': 'true' })).azureClientOptions('https://x/').agent as https.Agent & { options: https.AgentOptions };
    assert.strictEqual(skip.options.rejectUnauthorized, false);
    assert.deepStrictEqual(n.directClientOptions('http://169.254.169.254/'), {}, 'IMDS: never the proxy');
    assert.strictEqual(n.directClientOptions('https://pod-identity.example/').agent, direct);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('read once per host; Agent.SkipCertValidation is said as one warning', () => {
    const h = host({ 'Agent.SkipCertValidation': 'true' });
    const n = Network.read(h);
    assert.strictEqual(Network.read(h), n);
    assert.deepStrictEqual(h.warnings().filter((w) => /Agent\.SkipCertValidation is true: server certificates are NOT validated/.test(w)).length, 1);
    assert.deepStrictEqual(host({}).warnings(), []);
  });

  it('isCertificateError / certificateMessage: node codes, git and git-lfs texts; the message names Agent.CAInfo', () => {
    for (const e of [{ code: 'SELF_SIGNED_CERT_IN_CHAIN' }, { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }, { message: 'x', cause: { code: 'CERT_HAS_EXPIRED' } },
      'fatal: unable to access \'https://h/\': server certificate verification failed. CAfile: none', 'x509: certificate signed by unknown authority',
      new Error('SSL certificate problem: unable to get local issuer certificate')]) assert.ok(isCertificateError(e), JSON.stringify(e));
    for (const e of [{ code: 'ECONNREFUSED' }, new Error('socket hang up'), 'HTTP 404']) assert.ok(!isCertificateError(e), JSON.stringify(e));
    assert.match(certificateMessage('https://h', { code: 'SELF_SIGNED_CERT_IN_CHAIN' }), /not trusted \(SELF_SIGNED_CERT_IN_CHAIN\).*Agent\.CAInfo is not set.*Point Agent\.CAInfo/);
    assert.match(certificateMessage('https://h', { code: 'X' }, '/etc/ca.pem'), /Agent\.CAInfo \(\/etc\/ca\.pem\) does not hold/);
  });

  it('credentials in Agent.ProxyUrl are used, masked and dropped from the URL', () => {
    const h = host({ 'Agent.ProxyUrl': 'http://u:s%40cret@proxy:8080' });
    const settings = readNetworkSettings(h);
    assert.strictEqual(settings.proxy!.url.toString(), 'http://proxy:8080/');
    assert.strictEqual(settings.proxy!.username, 'u');
    assert.strictEqual(settings.proxy!.password, 's@cret');
    assert.ok(h.secrets.includes('s@cret'));
  });

  it('a secret read through secretVariable wins over the public variables', () => {
    const h = host({ 'Agent.ProxyUrl': 'http://proxy:8080', 'Agent.ProxyUsername': 'u' });
    const withSecret = Object.assign(h, { secretVariable: (n: string) => (n === 'Agent.ProxyPassword' ? 'vaulted' : undefined) });
    assert.strictEqual(readNetworkSettings(withSecret).proxy!.password, 'vaulted');
  });

  it('bad values fail naming the variable and the fix', () => {
    const bad = (variables: Record<string, string>, re: RegExp) =>
      assert.throws(() => readNetworkSettings(host(variables)), (e: Error) => e instanceof RunError && re.test(e.message));
    bad({ 'Agent.ProxyUrl': 'not a url' }, /Agent\.ProxyUrl is not a URL/);
    bad({ 'Agent.ProxyUrl': 'socks5://p:1080' }, /Agent\.ProxyUrl must be an http/);
    bad({ 'Agent.ProxyUrl': 'http://p', 'Agent.ProxyBypassList': 'a,b' }, /Agent\.ProxyBypassList must be a JSON array/);
    bad({ 'Agent.ProxyUrl': 'http://p', 'Agent.ProxyBypassList': '["("]' }, /Agent\.ProxyBypassList: '\(' is not a valid regular expression/);
    bad({ 'Agent.CAInfo': '/nonexistent/ca.pem' }, /Agent\.CAInfo names '\/nonexistent\/ca\.pem', which is not a file/);
  });

  it('checkProxy: a closed port fails naming Agent.ProxyUrl; a bypassed target is not checked', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise<void>((r) => server.close(() => r()));
    const n = Network.read(host({ 'Agent.ProxyUrl': `http://127.0.0.1:${port}`, 'Agent.ProxyBypassList': '["bypassed\\\\.example"]' }));
    await assert.rejects(n.checkProxy('https://dev.azure.com/o/'), /Agent\.ProxyUrl\) cannot be reached: ECONNREFUSED/);
    await n.checkProxy('https://bypassed.example/o/');
  });

  it('checkProxy: 407 names Agent.ProxyUsername and Agent.ProxyPassword; 200 passes; the CONNECT carries Basic credentials', async () => {
    const seen: string[] = [];
    let answer = 'HTTP/1.1 407 Proxy Authentication Required\r\n\r\n';
    const server = net.createServer((s) => s.once('data', (d) => { seen.push(d.toString()); s.end(answer); }));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const n = Network.read(host({ 'Agent.ProxyUrl': `http://127.0.0.1:${port}`, 'Agent.ProxyUsername': 'svc', 'Agent.ProxyPassword': 'pw' }));
      await assert.rejects(n.checkProxy('https://dev.azure.com/o/'), (e: Error) => /HTTP 407/.test(e.message) && /Agent\.ProxyPassword/.test(e.message) && !e.message.includes('pw@'));
      assert.match(seen[0], /^CONNECT dev\.azure\.com:443 HTTP\/1\.1\r\n/);
      assert.ok(seen[0].includes(`Proxy-Authorization: Basic ${Buffer.from('svc:pw').toString('base64')}`));
      answer = 'HTTP/1.1 200 Connection established\r\n\r\n';
      await n.checkProxy('https://dev.azure.com/o/');
      answer = 'HTTP/1.1 403 Forbidden\r\n\r\n';
      await n.checkProxy('http://dev.azure.com:8080/o/'); // other refusals are left to the requests themselves
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  describe('on the wire: an HTTPS server signed by a test CA, a CONNECT proxy', () => {
    let pki: TestPki;
    let server: https.Server;
    let proxy: net.Server;
    let target = '';
    let proxyUrl = '';
    const connects: string[] = [];
    const open = new Set<net.Socket>();
    let proxyAnswer = '';

    before(async () => {
      pki = makeTestPki(fs.mkdtempSync(path.join(os.tmpdir(), 'net-unit-pki-')));
      server = https.createServer({ cert: fs.readFileSync(pki.cert), key: fs.readFileSync(pki.key) }, (req, res) => { req.resume(); res.end(`hello ${req.method}`); });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      target = `https://127.0.0.1:${(server.address() as net.AddressInfo).port}/x`;
      // A CONNECT proxy: records the request head, answers `proxyAnswer` when set, else tunnels.
      proxy = net.createServer((client) => {
        open.add(client);
        client.once('close', () => open.delete(client));
        client.once('data', (head: Buffer) => {
          const text = head.toString('latin1');
          connects.push(text);
          if (proxyAnswer) { client.end(proxyAnswer); return; }
          const [, hostPort] = /^CONNECT (\S+) /.exec(text) ?? [];
          const [h, p] = hostPort.split(':');
          const up = net.connect(Number(p), h, () => {
            open.add(up); client.write('HTTP/1.1 200 Connection established\r\n\r\n'); client.pipe(up).pipe(client); });
          up.on('error', () => client.destroy());
          client.on('error', () => up.destroy());
        });
      });
      await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
      proxyUrl = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
    });
    after(async () => {
      server?.closeAllConnections?.();
      for (const s of open) s.destroy();
      await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
      await new Promise<void>((r) => (proxy ? proxy.close(() => r()) : r()));
    });
    beforeEach(() => { connects.length = 0; proxyAnswer = ''; });

    it('checkTrust: untrusted fails naming Agent.CAInfo; with Agent.CAInfo or Agent.SkipCertValidation it passes; http and closed ports are left alone', async () => {
      await assert.rejects(Network.read(host({})).checkTrust(target), (e: Error) => e instanceof RunError && /is not trusted.*Agent\.CAInfo is not set/.test(e.message));
      const other = makeTestPki(fs.mkdtempSync(path.join(os.tmpdir(), 'net-unit-pki-')));
      await assert.rejects(Network.read(host({ 'Agent.CAInfo': other.caCert })).checkTrust(target), /Agent\.CAInfo \(.*\) does not hold the certificate authority/);
      await Network.read(host({ 'Agent.CAInfo': pki.caCert })).checkTrust(target);
      await Network.read(host({ 'Agent.SkipCertValidation': 'true' })).checkTrust(target);
      await Network.read(host({})).checkTrust('http://127.0.0.1:1/');
      await Network.read(host({})).checkTrust('https://127.0.0.1:1/');
    });

    it('request through the proxy: a CONNECT tunnel with Basic credentials, then TLS with Agent.CAInfo', async () => {
      const n = Network.read(host({ 'Agent.ProxyUrl': proxyUrl, 'Agent.ProxyUsername': 'svc', 'Agent.ProxyPassword': 'pw', 'Agent.CAInfo': pki.caCert }));
      const res = await n.request(new URL(target), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
      assert.strictEqual(res.status, 200);
      assert.strictEqual(await res.text(), 'hello POST');
      assert.match(connects[0], new RegExp(`^CONNECT 127\\.0\\.0\\.1:${new URL(target).port} HTTP/1\\.1\r\n`));
      assert.ok(connects[0].includes(`Proxy-Authorization: Basic ${Buffer.from('svc:pw').toString('base64')}`));
      // Without the CA, through the same tunnel: refused for the certificate, named.
      await assert.rejects(Network.read(host({ 'Agent.ProxyUrl': proxyUrl })).checkTrust(target), /is not trusted.*Agent\.CAInfo/);
      assert.ok(connects.length >= 2, 'the check went through the proxy too');
    });

    it('the tunnel refused: 407 names Agent.ProxyPassword (no password in the message), 403 names the bypass list', async () => {
      const n = Network.read(host({ 'Agent.ProxyUrl': proxyUrl, 'Agent.ProxyUsername': 'svc', 'Agent.ProxyPassword': 'secretpw' }));
      proxyAnswer = 'HTTP/1.1 407 Proxy Authentication Required\r\n\r\n';
      await assert.rejects(n.request(new URL(target), { method: 'GET', headers: {} }), (e: Error) => e instanceof RunError && /HTTP 407/.test(e.message) && /Agent\.ProxyPassword/.test(e.message) && !e.message.includes('secretpw'));
      proxyAnswer = 'HTTP/1.1 403 Forbidden\r\n\r\n';
      await assert.rejects(n.request(new URL(target), { method: 'GET', headers: {} }), /refused to open a tunnel to 127\.0\.0\.1:\d+: HTTP\/1\.1 403 Forbidden.*Agent\.ProxyBypassList/);
    });

    it('request for an http URL behind the proxy: the absolute URI with Proxy-Authorization; a bypassed URL goes direct', async () => {
      const seen: Array<{ url?: string; auth?: string; host?: string }> = [];
      const fake = http.createServer((req, res) => { seen.push({ url: req.url, auth: req.headers['proxy-authorization'], host: req.headers.host }); req.resume(); res.end('ok'); });
      await new Promise<void>((r) => fake.listen(0, '127.0.0.1', () => r()));
      const port = (fake.address() as net.AddressInfo).port;
      try {
        const n = Network.read(host({ 'Agent.ProxyUrl': `http://127.0.0.1:${port}`, 'Agent.ProxyUsername': 'svc', 'Agent.ProxyPassword': 'pw', 'Agent.ProxyBypassList': '["bypassed"]' }));
        const res = await n.request(new URL('http://devops.example:8080/o/_apis/x?a=1'), { method: 'POST', headers: {}, body: '{}' });
        assert.strictEqual(await res.text(), 'ok');
        assert.deepStrictEqual(seen[0], { url: 'http://devops.example:8080/o/_apis/x?a=1', auth: `Basic ${Buffer.from('svc:pw').toString('base64')}`, host: 'devops.example:8080' });
        await n.request(new URL(`http://127.0.0.1:${port}/bypassed`), { method: 'GET', headers: {} });
        assert.deepStrictEqual(seen[1], { url: '/bypassed', auth: undefined, host: `127.0.0.1:${port}` });
      } finally {
        await new Promise<void>((r) => fake.close(() => r()));
      }
    });
  });
});

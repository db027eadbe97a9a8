import assert from 'assert';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { RunError } from '../../tasks/common/src/errors';
import { Network, readNetworkSettings } from '../../tasks/common/src/network';
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

  it('Azure SDK client options: the proxy when proxied, else the CA from Agent.CAInfo as tlsOptions', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'net-unit-'));
    const ca = path.join(dir, 'ca.pem');
    fs.writeFileSync(ca, 'PEM');
    const n = Network.read(host({ 'Agent.ProxyUrl': 'http://p:1', 'Agent.ProxyBypassList': '["direct"]', 'Agent.CAInfo': ca }));
    assert.deepStrictEqual(n.azureClientOptions('https://direct.example/c'), { tlsOptions: { ca: 'PEM' } });
    assert.deepStrictEqual(n.azureClientOptions('https://other.example/c'), { proxyOptions: { host: 'http://p', port: 1 } });
    assert.deepStrictEqual(Network.read(host({})).azureClientOptions('https://x/'), {});
    fs.rmSync(dir, { recursive: true, force: true });
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
});

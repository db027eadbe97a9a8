// credentials.ts: where git may send the token (TokenScope), the trustedHosts input, and gitEnv's refusal.
import assert from 'assert';
import { DevOpsCredentials, parseTrustedHosts, TokenScope, UntrustedHostError } from '../../tasks/common/src/credentials';
import { InputError } from '../../tasks/common/src/errors';

const TOKEN = 'canaryScopeToken0123456789';
const masked: string[] = [];
const creds = () => DevOpsCredentials.create('systemToken', TOKEN, { setSecret: (s: string) => { masked.push(s); } });
const headerKeys = (env: NodeJS.ProcessEnv) =>
  Object.keys(env).filter((k) => k.startsWith('GIT_CONFIG_KEY_')).map((k) => env[k]!).filter((v) => v.endsWith('.extraheader'));

describe('credentials: token scope by host', () => {
  it('allows the collection URL\'s own origin only (scheme, host and port), on Server with its /tfs/ path', () => {
    const s = new TokenScope('https://tfs.contoso.com/tfs/DefaultCollection/');
    assert.ok(s.allows('https://tfs.contoso.com/tfs/DefaultCollection/Proj/_git/Repo'));
    assert.ok(s.allows('https://TFS.contoso.com:443/tfs/DefaultCollection/Proj/_git/Repo'));
    assert.ok(!s.allows('https://tfs01.corp.local/tfs/DefaultCollection/Proj/_git/Repo'), 'another host');
    assert.ok(!s.allows('https://tfs.contoso.com:8443/tfs/DefaultCollection/Proj/_git/Repo'), 'another port');
    assert.ok(!s.allows('http://tfs.contoso.com/tfs/DefaultCollection/Proj/_git/Repo'), 'plain http to an https collection');
    assert.ok(!s.allows('ssh://tfs.contoso.com:22/tfs/DefaultCollection/Proj/_git/Repo'));
    assert.ok(!s.allows('not a url'));
  });

  it('treats dev.azure.com/<org> and <org>.visualstudio.com as one organization, and no other', () => {
    const a = new TokenScope('https://dev.azure.com/Contoso/');
    assert.ok(a.allows('https://contoso.visualstudio.com/Proj/_git/Repo'));
    assert.ok(a.allows('https://dev.azure.com/Contoso/Proj/_git/Repo'));
    assert.ok(!a.allows('https://fabrikam.visualstudio.com/Proj/_git/Repo'));
    assert.ok(!a.allows('https://contoso.visualstudio.com.evil.example/Proj/_git/Repo'));
    const b = new TokenScope('https://contoso.visualstudio.com/');
    assert.ok(b.allows('https://dev.azure.com/contoso/Proj/_git/Repo'));
    assert.ok(!b.allows('https://ssh.dev.azure.com/v3/contoso/Proj/Repo'));
  });

  it('allows the hosts trustedHosts names: any port without one, that port with one; http only when the collection is http', () => {
    const s = new TokenScope('https://tfs.contoso.com/tfs/DefaultCollection/', parseTrustedHosts('tfs01.corp.local\nbuild.corp.local:8443'));
    assert.ok(s.allows('https://tfs01.corp.local/tfs/DefaultCollection/P/_git/R'));
    assert.ok(s.allows('https://TFS01.corp.local:8080/tfs/DefaultCollection/P/_git/R'));
    assert.ok(s.allows('https://build.corp.local:8443/x'));
    assert.ok(!s.allows('https://build.corp.local/x'), 'default port 443 is not 8443');
    assert.ok(!s.allows('http://tfs01.corp.local/x'), 'no plain http from an https collection');
    assert.ok(new TokenScope('http://127.0.0.1:8080/tfs/C/', ['localhost']).allows('http://localhost:8080/tfs/C/P/_git/R'));
    assert.match(s.describe(), /tfs\.contoso\.com.*trustedHosts tfs01\.corp\.local, build\.corp\.local:8443/);
  });

  it('parses trustedHosts: commas, spaces, new lines; lower-cased, deduplicated; anything but a host name is refused', () => {
    assert.deepStrictEqual(parseTrustedHosts(''), []);
    assert.deepStrictEqual(parseTrustedHosts(undefined), []);
    assert.deepStrictEqual(parseTrustedHosts(' A.corp ,b.corp\n\nc.corp:8443; a.CORP  d.corp:443'), ['a.corp', 'b.corp', 'c.corp:8443', 'd.corp:443']);
    for (const bad of ['https://tfs.contoso.com', 'tfs.contoso.com/tfs', '*.contoso.com', 'user@host', 'host:port', 'a b?c']) {
      assert.throws(() => parseTrustedHosts(bad), (e: unknown) => e instanceof InputError && e.input === 'trustedHosts' && /is not a host name/.test(e.message), bad);
    }
  });

  it('gitEnv gives the header for an allowed URL and throws, naming the host and trustedHosts, for any other', () => {
    const c = creds().restrictTo(new TokenScope('http://127.0.0.1:8080/tfs/DefaultCollection/'));
    const env = c.gitEnv('http://127.0.0.1:8080/tfs/DefaultCollection/P/_git/R', {});
    assert.deepStrictEqual(headerKeys(env), ['http.http://127.0.0.1:8080/.extraheader']);
    assert.throws(() => c.gitEnv('http://localhost:8080/tfs/DefaultCollection/P/_git/R', {}),
      (e: unknown) => e instanceof UntrustedHostError && e.host === 'localhost:8080' && /trustedHosts/.test(e.message) && !e.message.includes(TOKEN));
    // Without a scope (not set by the settings), the header goes to the URL's origin as before.
    assert.deepStrictEqual(headerKeys(creds().gitEnv('https://x.example/p', {})), ['http.https://x.example/.extraheader']);
  });
});

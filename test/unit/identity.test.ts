// identity.ts and the service-connection input readers: how the agent's endpoint becomes a connection, how the Blob
// container is named, where the OIDC token is asked for, how Entra's refusals read, and the token keeper's renewals.
import * as assert from 'assert';
import * as http from 'http';
import * as net from 'net';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { DevOpsCredentials } from '../../tasks/common/src/credentials';
import { InputError, RunError } from '../../tasks/common/src/errors';
import {
  DEVOPS_SCOPE, explainEntraError, maskedCredential, pipelineOidc, readServiceConnection, STORAGE_SCOPE, TokenKeeper,
} from '../../tasks/common/src/identity';
import { readCredentials, readEntraContainer } from '../../tasks/common/src/inputs';
import { FakeHost } from './fake-host';

interface Endpoint { scheme?: string; params?: Record<string, string>; data?: Record<string, string> }

/** A FakeHost with AzureRM endpoints as the agent passes them (ENDPOINT_AUTH_SCHEME_/PARAMETER_/DATA_). */
class EndpointHost extends FakeHost {
  constructor(inputs: Record<string, string>, private readonly endpoints: Record<string, Endpoint>, variables: Record<string, string> = {}, jobToken?: string) {
    super(inputs, variables, { token: jobToken });
  }
  override endpointAuthScheme(id?: string) { return id && this.endpoints[id] ? this.endpoints[id].scheme : super.endpointAuthScheme(); }
  override endpointAuthParameter(id: string, key: string) {
    const ep = this.endpoints[id];
    if (!ep) return super.endpointAuthParameter(id, key);
    const k = Object.keys(ep.params ?? {}).find((x) => x.toLowerCase() === key.toLowerCase());
    return k ? ep.params![k] : undefined;
  }
  endpointData(id: string, key: string) {
    const d = this.endpoints[id]?.data ?? {};
    const k = Object.keys(d).find((x) => x.toLowerCase() === key.toLowerCase());
    return k ? d[k] : undefined;
  }
}

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const CLIENT = '5a1b2c3d-0000-4000-8000-000000000001';
const wif = (data: Record<string, string> = {}): Endpoint => ({ scheme: 'WorkloadIdentityFederation', params: { tenantid: TENANT, serviceprincipalid: CLIENT }, data });

const throwsInput = (fn: () => unknown, input: string, re: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof InputError && e.input === input && re.test(e.message), `${input}: ${re}`);

describe('identity: reading the service connection', () => {
  it('names the input and the fix when it is empty, unknown to the agent, or of an unsupported scheme', () => {
    throwsInput(() => readServiceConnection(new EndpointHost({}, {}), 'azureSubscription', 'authType is serviceConnection'),
      'azureSubscription', /is empty while authType is serviceConnection.*Azure Resource Manager service connection/);
    throwsInput(() => readServiceConnection(new EndpointHost({ azureSubscription: 'nope' }, {}), 'azureSubscription', 'x'),
      'azureSubscription', /'nope'.*authorized for this pipeline/);
    throwsInput(() => readServiceConnection(new EndpointHost({ azureSubscription: 'c' }, { c: { scheme: 'UsernamePassword' } }), 'azureSubscription', 'x'),
      'azureSubscription', /'UsernamePassword'.*Supported: WorkloadIdentityFederation, ServicePrincipal, ManagedServiceIdentity/);
    throwsInput(() => readServiceConnection(new EndpointHost({ azureSubscription: 'c' }, { c: { scheme: 'WorkloadIdentityFederation', params: { serviceprincipalid: CLIENT } } }), 'azureSubscription', 'x'),
      'azureSubscription', /no tenant id/);
    throwsInput(() => readServiceConnection(new EndpointHost({ azureSubscription: 'c' }, { c: { scheme: 'ServicePrincipal', params: { tenantid: TENANT, serviceprincipalid: CLIENT } } }), 'azureSubscription', 'x'),
      'azureSubscription', /without a secret/);
    throwsInput(() => readServiceConnection(new EndpointHost({ azureSubscription: 'c' }, { c: { scheme: 'ServicePrincipal', params: { tenantid: TENANT, serviceprincipalid: CLIENT, authenticationType: 'spnCertificate', servicePrincipalCertificate: 'x' } } }), 'azureSubscription', 'x'),
      'azureSubscription', /certificate, which this task does not support/);
  });

  it('reads the scheme case-insensitively, the authority from the endpoint data (public cloud by default), and masks a secret', () => {
    const host = new EndpointHost({ azureSubscription: 'c' }, { c: { scheme: 'serviceprincipal', params: { tenantid: TENANT, serviceprincipalid: CLIENT, serviceprincipalkey: 'the-secret' }, data: { environment: 'AzureUSGovernment', environmentAuthorityUrl: 'https://login.microsoftonline.us/' } } });
    const conn = readServiceConnection(host, 'azureSubscription', 'x');
    assert.deepStrictEqual([conn.scheme, conn.tenantId, conn.clientId, conn.authorityHost, conn.environment], ['ServicePrincipal', TENANT, CLIENT, 'https://login.microsoftonline.us/', 'AzureUSGovernment']);
    assert.ok(host.secrets.includes('the-secret'));
    const msi = readServiceConnection(new EndpointHost({ azureSubscription: 'm' }, { m: { scheme: 'ManagedServiceIdentity' } }), 'azureSubscription', 'x');
    assert.strictEqual(msi.authorityHost, 'https://login.microsoftonline.com/');
    assert.strictEqual(msi.tenantId, undefined);
  });

  it('authType: serviceConnection gives Bearer credentials described by the connection; other values list it', () => {
    const creds = readCredentials(new EndpointHost({ authType: 'serviceConnection', azureSubscription: 'c' }, { c: wif() }, {}, 'job'));
    assert.strictEqual(creds.type, 'serviceConnection');
    assert.match(creds.description, /service connection 'c'/);
    throwsInput(() => readCredentials(new EndpointHost({ authType: 'entra' }, {})), 'authType', /'serviceConnection'/);
  });
});

describe('identity: the Blob container of blobAuth: serviceConnection', () => {
  const host = (inputs: Record<string, string>, data: Record<string, string> = {}) => new EndpointHost({ azureSubscription: 'c', ...inputs }, { c: wif(data) }, {}, 'job');

  it('builds the container URL from storageAccount in the connection\'s cloud, or from blobEndpoint', () => {
    assert.strictEqual(readEntraContainer(host({ storageAccount: 'contoso', containerName: 'repo-backups' })).containerUrl.toString(), 'https://contoso.blob.core.windows.net/repo-backups');
    assert.strictEqual(readEntraContainer(host({ storageAccount: 'contoso', containerName: 'bkp' }, { environment: 'AzureChinaCloud' })).containerUrl.toString(), 'https://contoso.blob.core.chinacloudapi.cn/bkp');
    assert.strictEqual(readEntraContainer(host({ blobEndpoint: 'https://127.0.0.1:10000/devstoreaccount1', containerName: 'bkp' })).containerUrl.toString(), 'https://127.0.0.1:10000/devstoreaccount1/bkp');
    const c = readEntraContainer(host({ blobEndpoint: 'https://contoso.privatelink.blob.core.windows.net/', containerName: 'bkp' }));
    assert.strictEqual(c.containerUrl.toString(), 'https://contoso.privatelink.blob.core.windows.net/bkp');
    assert.strictEqual(c.connection, 'c');
  });

  it('refuses what cannot work, naming the input', () => {
    throwsInput(() => readEntraContainer(host({ containerName: 'bkp' })), 'storageAccount', /is empty while blobAuth is serviceConnection/);
    throwsInput(() => readEntraContainer(host({ storageAccount: 'a1b', blobEndpoint: 'https://x/', containerName: 'bkp' })), 'storageAccount', /both set/);
    throwsInput(() => readEntraContainer(host({ storageAccount: 'contoso' })), 'containerName', /is empty/);
    throwsInput(() => readEntraContainer(host({ storageAccount: 'contoso', containerName: 'Repo_Backups' })), 'containerName', /not a container name/);
    throwsInput(() => readEntraContainer(host({ storageAccount: 'Contoso.Blob', containerName: 'bkp' })), 'storageAccount', /not a storage account name/);
    throwsInput(() => readEntraContainer(host({ storageAccount: 'contoso', containerName: 'bkp' }, { environment: 'AzureStack' })), 'storageAccount', /give the full blobEndpoint/i);
    throwsInput(() => readEntraContainer(host({ blobEndpoint: 'http://contoso.blob.core.windows.net/', containerName: 'bkp' })), 'blobEndpoint', /must be https/);
    throwsInput(() => readEntraContainer(host({ blobEndpoint: 'https://contoso.blob.core.windows.net/?sv=1&sig=x', containerName: 'bkp' })), 'blobEndpoint', /without a query \(no SAS\)/);
    throwsInput(() => readEntraContainer(host({ blobEndpoint: 'not a url', containerName: 'bkp' })), 'blobEndpoint', /is not a URL/);
  });
});

describe('identity: the pipeline\'s OIDC token', () => {
  type Call = { url: string; init: RequestInit };
  const fakeFetch = (status: number, body: string, calls: Call[]) =>
    (async (url: string | URL, init?: RequestInit) => { calls.push({ url: url.toString(), init: init! }); return new Response(body, { status }); }) as typeof fetch;

  it('POSTs to System.OidcRequestUri with the job token and the connection id, and masks the answer', async () => {
    const host = new EndpointHost({}, {}, { 'System.OidcRequestUri': 'https://dev.azure.com/contoso/p1/_apis/distributedtask/hubs/build/plans/pl/jobs/jb/oidctoken' });
    const calls: Call[] = [];
    const token = await pipelineOidc(host, 'conn-1', 'job-token', fakeFetch(200, '{"oidcToken":"oidc-jwt"}', calls))();
    assert.strictEqual(token, 'oidc-jwt');
    assert.strictEqual(calls[0].init.method, 'POST');
    assert.strictEqual((calls[0].init.headers as Record<string, string>).Authorization, 'Bearer job-token');
    const url = new URL(calls[0].url);
    assert.strictEqual(url.searchParams.get('serviceConnectionId'), 'conn-1');
    assert.ok(url.searchParams.get('api-version'));
    assert.ok(host.secrets.includes('oidc-jwt'));
  });

  it('builds the distributed-task oidctoken URL without System.OidcRequestUri, and names the fix when it cannot ask', async () => {
    const host = new EndpointHost({}, {}, { 'System.CollectionUri': 'https://dev.azure.com/contoso/', 'System.TeamProjectId': 'pid', 'System.HostType': 'release', 'System.PlanId': 'plan', 'System.JobId': 'job' });
    const calls: Call[] = [];
    await pipelineOidc(host, 'c', 'job-token', fakeFetch(200, '{"oidcToken":"t"}', calls))();
    assert.strictEqual(calls[0].url.split('?')[0], 'https://dev.azure.com/contoso/pid/_apis/distributedtask/hubs/release/plans/plan/jobs/job/oidctoken');
    await assert.rejects(pipelineOidc(new EndpointHost({}, {}), 'c', 'job', fakeFetch(200, '{}', []))(), (e: Error) => e instanceof RunError && /cannot request an OIDC token.*System.OidcRequestUri/.test(e.message));
    await assert.rejects(pipelineOidc(host, 'c', undefined, fakeFetch(200, '{}', []))(), /job access token is not available/);
    await assert.rejects(pipelineOidc(host, 'c', 'job', fakeFetch(400, '{"message":"not found"}', []))(), (e: Error) => e instanceof RunError && /refused the OIDC token.*\(400\).*authorized for this pipeline/.test(e.message));
    await assert.rejects(pipelineOidc(host, 'c', 'job', fakeFetch(200, '{}', []))(), /without a token/);
  });
});

describe('identity: the OIDC request uses the agent\'s network settings', () => {
  it('goes through Agent.ProxyUrl (absolute URI, Proxy-Authorization) when no fetch is given; the proxy password is masked', async () => {
    const seen: Array<{ method?: string; url?: string; auth?: string; proxyAuth?: string }> = [];
    const proxy = http.createServer((req, res) => {
      seen.push({ method: req.method, url: req.url, auth: req.headers.authorization, proxyAuth: req.headers['proxy-authorization'] });
      req.resume();
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"oidcToken":"oidc-via-proxy"}');
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    try {
      const host = new EndpointHost({}, {}, {
        'System.OidcRequestUri': 'http://devops.example/contoso/p1/_apis/distributedtask/hubs/build/plans/pl/jobs/jb/oidctoken',
        'Agent.ProxyUrl': `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`, 'Agent.ProxyUsername': 'svc', 'Agent.ProxyPassword': 'proxy-pw',
      });
      assert.strictEqual(await pipelineOidc(host, 'conn-1', 'job-token')(), 'oidc-via-proxy');
      assert.strictEqual(seen.length, 1);
      assert.strictEqual(seen[0].method, 'POST');
      assert.match(seen[0].url!, /^http:\/\/devops\.example\/contoso\/.*\/oidctoken\?.*serviceConnectionId=conn-1/);
      assert.strictEqual(seen[0].auth, 'Bearer job-token');
      assert.strictEqual(seen[0].proxyAuth, `Basic ${Buffer.from('svc:proxy-pw').toString('base64')}`);
      assert.ok(host.secrets.includes('proxy-pw') && host.secrets.includes('oidc-via-proxy'));
    } finally {
      await new Promise<void>((r) => proxy.close(() => r()));
    }
  });
});

describe('identity: Entra\'s refusals', () => {
  const conn = { id: 'backup-wif', scheme: 'WorkloadIdentityFederation' as const };
  const aad = (code: number, text: string) => Object.assign(new Error(`${text}`), { errorResponse: { error: 'invalid_client', errorDescription: `AADSTS${code}: ${text}` } });

  it('names the fix for a subject mismatch, a wrong secret, an unknown app, and keeps anything else readable', () => {
    assert.match(explainEntraError(aad(700213, 'No matching federated identity record found for presented assertion subject'), conn, DEVOPS_SCOPE).message,
      /token for Azure DevOps.*AADSTS700213.*federated credential.*sc:\/\/<organization>\/<project>\/<connection name>/);
    assert.match(explainEntraError(aad(7000215, 'Invalid client secret provided.'), { ...conn, scheme: 'ServicePrincipal' }, STORAGE_SCOPE).message, /Azure Storage.*secret is wrong or expired/);
    assert.match(explainEntraError(aad(700016, 'Application not found'), conn, DEVOPS_SCOPE).message, /tenant and application id/);
    assert.match(explainEntraError(new Error('socket hang up'), conn, DEVOPS_SCOPE).message, /refused a token for Azure DevOps.*socket hang up/);
    const own = new RunError('ours');
    assert.strictEqual(explainEntraError(own, conn, DEVOPS_SCOPE), own);
  });
});

describe('identity: tokens are masked and renewed', () => {
  const counter = { n: 0 };
  /** A credential factory whose tokens live `lifetimeMs`; `fail` makes the next calls throw. */
  function factory(lifetimeMs: number, state: { fail?: boolean; made: number } = { made: 0 }) {
    return {
      state,
      make: (): TokenCredential => {
        state.made++;
        return {
          async getToken(): Promise<AccessToken> {
            if (state.fail) throw new Error('Entra is down');
            return { token: `tok-${++counter.n}`, expiresOnTimestamp: Date.now() + lifetimeMs };
          },
        };
      },
    };
  }

  it('maskedCredential registers every token it hands out', async () => {
    const host = new FakeHost();
    const t = await maskedCredential(factory(60_000).make(), host).getToken(STORAGE_SCOPE);
    assert.ok(t && host.secrets.includes(t.token));
  });

  it('renews halfway through the lifetime with a fresh credential, so each use reads a valid token; stops when told', async () => {
    const f = factory(2_000);
    const keeper = new TokenKeeper(f.make, DEVOPS_SCOPE);
    assert.throws(() => keeper.current(), /start\(\) was not awaited/);
    await keeper.start();
    const first = keeper.current();
    await new Promise((r) => setTimeout(r, 1_400));
    const second = keeper.current();
    assert.notStrictEqual(second, first, 'renewed after half the lifetime');
    assert.ok(f.state.made >= 2, 'each renewal used a new credential (no cached token)');
    keeper.stop();
    const made = f.state.made;
    await new Promise((r) => setTimeout(r, 1_500));
    assert.strictEqual(f.state.made, made, 'no renewal after stop()');
  });

  it('a failed renewal is said and tried again while the old token lasts', async () => {
    const f = factory(2_000);
    const host = new FakeHost();
    const keeper = new TokenKeeper(f.make, DEVOPS_SCOPE, host);
    await keeper.start();
    const first = keeper.current();
    f.state.fail = true;
    await new Promise((r) => setTimeout(r, 1_200));
    assert.strictEqual(keeper.current(), first, 'the old token stays while renewals fail');
    assert.ok(host.warnings().some((w) => /Renewing the token .* failed; trying again: Entra is down/.test(w)), host.warnings().join('\n'));
    f.state.fail = false;
    await new Promise((r) => setTimeout(r, 1_200));
    assert.notStrictEqual(keeper.current(), first, 'renewed once Entra answers again');
    keeper.stop();
  });

  it('DevOpsCredentials from a service connection: each git command and each REST request reads the current token', () => {
    let current = 'entra-1';
    const creds = DevOpsCredentials.fromServiceConnection('c', { current: () => current });
    const header = (env: NodeJS.ProcessEnv) => Object.entries(env).find(([k, v]) => k.startsWith('GIT_CONFIG_VALUE_') && /^AUTHORIZATION:/.test(String(v)))?.[1];
    assert.strictEqual(header(creds.gitEnv('https://dev.azure.com/contoso/p/_git/r', {})), 'AUTHORIZATION: Bearer entra-1');
    const options = { headers: {} as Record<string, string> };
    creds.restHandler().prepareRequest(options as never);
    assert.strictEqual(options.headers.Authorization, 'Bearer entra-1');
    current = 'entra-2';
    assert.strictEqual(header(creds.gitEnv('https://dev.azure.com/contoso/p/_git/r', {})), 'AUTHORIZATION: Bearer entra-2');
    creds.restHandler().prepareRequest(options as never);
    assert.strictEqual(options.headers.Authorization, 'Bearer entra-2');
  });
});

// A local Microsoft Entra ID (Azure AD) for the service connection tests, plus the pieces around it:
//
//   makeTestPki(dir)   a test CA and a server certificate for 127.0.0.1/localhost (openssl), so the Entra stand-in
//                      and Azurite can serve HTTPS that the task trusts as an agent configured with a custom CA does
//                      (NODE_EXTRA_CA_CERTS=<ca.pem> in the task's environment).
//   OidcIssuer         Azure DevOps' OIDC issuer for service connections: RS256 JWTs with iss, aud
//                      api://AzureADTokenExchange and sub sc://<org>/<project>/<connection name>.
//   EntraStandIn       OpenID discovery (`/<tenant>/v2.0/.well-known/openid-configuration`) and the v2 token endpoint
//                      (`/<tenant>/oauth2/v2.0/token`, client_credentials) over HTTPS. A client assertion is accepted
//                      only when the OidcIssuer signed it, it has not expired, and its issuer and subject are the
//                      federated credential registered for that application; a client secret only when it is the
//                      registered one. Refusals use Entra's AADSTS codes and JSON error shape. Access tokens are
//                      RS256 JWTs with aud (the resource of the scope), iss https://sts.windows.net/<tenant>/, tid,
//                      appid, oid, nbf, exp: Azurite (`--oauth basic`) and the Azure DevOps stand-in check them.
//                      It also answers as the Azure Instance Metadata Service (IMDS) of a VM with a managed identity
//                      (`GET /metadata/identity/oauth2/token`, `Metadata: true` required), reached by
//                      @azure/identity through AZURE_POD_IDENTITY_AUTHORITY_HOST=<authorityHost>.
//
// Every issued token and assertion is kept (`issued`) so tests can scan outputs for them.
import { execFileSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as https from 'https';
import * as net from 'net';
import * as path from 'path';

export interface TestPki {
  caCert: string;
  cert: string;
  key: string;
}

/** A CA and a server certificate (SAN IP:127.0.0.1, DNS:localhost) signed by it, written to `dir`. */
export function makeTestPki(dir: string): TestPki {
  fs.mkdirSync(dir, { recursive: true });
  const p = (n: string) => path.join(dir, n);
  const run = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2', '-subj', '/CN=RepoBackup Test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=127.0.0.1']);
  fs.writeFileSync(p('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  run(['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('server.pem'), '-days', '2', '-extfile', p('server.ext')]);
  return { caCert: p('ca.pem'), cert: p('server.pem'), key: p('server.key') };
}

const b64 = (v: object | Buffer) => (Buffer.isBuffer(v) ? v : Buffer.from(JSON.stringify(v))).toString('base64url');

export function signJwt(payload: Record<string, unknown>, key: crypto.KeyObject, kid: string): string {
  const head = `${b64({ alg: 'RS256', typ: 'JWT', kid })}.${b64(payload)}`;
  return `${head}.${crypto.sign('sha256', Buffer.from(head), key).toString('base64url')}`;
}

/** The payload of an RS256 JWT whose signature `key` verifies, or an error string. */
export function verifyJwt(token: string, key: crypto.KeyObject): Record<string, unknown> | string {
  const parts = token.split('.');
  if (parts.length !== 3) return 'not a JWT';
  if (!crypto.verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), key, Buffer.from(parts[2], 'base64url'))) return 'bad signature';
  try {
    return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return 'unreadable payload';
  }
}

export function decodeJwt(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** Azure DevOps' OIDC issuer for service connections (the `oidctoken` API signs with it). */
export class OidcIssuer {
  private readonly keys = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  readonly issued: string[] = [];

  /** `issuer` is what Azure DevOps uses: https://vstoken.dev.azure.com/<organization id>. */
  constructor(readonly issuer = `https://vstoken.dev.azure.com/${crypto.randomUUID()}`, public lifetimeSec = 600) {}

  issue(subject: string): string {
    const now = Math.floor(Date.now() / 1000);
    const token = signJwt({ iss: this.issuer, sub: subject, aud: 'api://AzureADTokenExchange', iat: now, nbf: now, exp: now + this.lifetimeSec, jti: crypto.randomUUID() },
      this.keys.privateKey, 'devops-oidc');
    this.issued.push(token);
    return token;
  }

  verify(token: string): Record<string, unknown> | string {
    return verifyJwt(token, this.keys.publicKey);
  }
}

export interface EntraApp {
  clientId: string;
  /** The federated credential: issuer + subject (sc://<org>/<project>/<connection>). */
  federated?: { issuer: string; subject: string };
  /** A client secret. */
  secret?: string;
}

export interface TokenRequestLog {
  clientId: string;
  scope: string;
  grant: 'assertion' | 'secret' | 'none';
  status: number;
  at: number;
  error?: string;
}

const STORAGE_AUDIENCE = 'https://storage.azure.com';

export class EntraStandIn {
  readonly tenantId: string;
  readonly apps = new Map<string, EntraApp>();
  /** Every access token handed out. */
  readonly issued: string[] = [];
  readonly requests: TokenRequestLog[] = [];
  /** Lifetime of the access tokens (seconds). */
  tokenLifetimeSec = 3600;
  /** The VM's managed identity as IMDS serves it; undefined: IMDS answers that no identity is assigned. */
  managedIdentity?: { clientId: string };
  private readonly keys = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  private server!: https.Server;
  private port = 0;

  private constructor(readonly oidc: OidcIssuer, tenantId?: string) {
    this.tenantId = tenantId ?? crypto.randomUUID();
  }

  static async start(pki: TestPki, oidc: OidcIssuer, tenantId?: string): Promise<EntraStandIn> {
    const s = new EntraStandIn(oidc, tenantId);
    s.server = https.createServer({ cert: fs.readFileSync(pki.cert), key: fs.readFileSync(pki.key) }, (req, res) => void s.handle(req, res));
    s.server.keepAliveTimeout = 2000;
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(0, '127.0.0.1', () => resolve());
    });
    s.port = (s.server.address() as net.AddressInfo).port;
    return s;
  }

  /** The authority host, as a service connection's environmentAuthorityUrl gives it (trailing slash). */
  get authorityHost(): string {
    return `https://127.0.0.1:${this.port}/`;
  }

  get issuer(): string {
    return `https://sts.windows.net/${this.tenantId}/`;
  }

  register(app: EntraApp): EntraApp {
    this.apps.set(app.clientId, app);
    return app;
  }

  /** Whether `token` is an access token this stand-in issued for `audience`, still valid. */
  accepts(token: string, audience: string): boolean {
    const payload = verifyJwt(token, this.keys.publicKey);
    if (typeof payload === 'string') return false;
    return payload.aud === audience && payload.iss === this.issuer && typeof payload.exp === 'number' && payload.exp * 1000 > Date.now();
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections?.();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private send(res: import('http').ServerResponse, status: number, body: object): void {
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' }).end(JSON.stringify(body));
  }

  private refuse(res: import('http').ServerResponse, status: number, error: string, code: number, text: string): void {
    this.send(res, status, {
      error, error_description: `AADSTS${code}: ${text} Trace ID: ${crypto.randomUUID()} Correlation ID: ${crypto.randomUUID()} Timestamp: ${new Date().toISOString()}`,
      error_codes: [code], timestamp: new Date().toISOString(), trace_id: crypto.randomUUID(), correlation_id: crypto.randomUUID(),
    });
  }

  private async handle(req: import('http').IncomingMessage, res: import('http').ServerResponse): Promise<void> {
    // `//metadata/…` (a client joining a host with a trailing slash) is a path here, not a protocol-relative URL.
    const url = new URL((req.url ?? '/').replace(/^\/+/, ''), this.authorityHost);
    const segs = url.pathname.split('/').filter(Boolean);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (segs.join('/') === 'metadata/identity/oauth2/token') return this.imds(req, res, url);
    const tenant = segs[0];
    if (tenant !== this.tenantId) {
      return this.refuse(res, 400, 'invalid_request', 90002, `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`);
    }
    const base = `${this.authorityHost}${this.tenantId}`;
    if (req.method === 'GET' && url.pathname.endsWith('/v2.0/.well-known/openid-configuration')) {
      return this.send(res, 200, {
        token_endpoint: `${base}/oauth2/v2.0/token`,
        authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
        end_session_endpoint: `${base}/oauth2/v2.0/logout`,
        jwks_uri: `${base}/discovery/v2.0/keys`,
        issuer: `${this.authorityHost}${this.tenantId}/v2.0`,
        token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
        response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
        tenant_region_scope: 'EU',
      });
    }
    if (req.method === 'POST' && url.pathname === `/${this.tenantId}/oauth2/v2.0/token`) {
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      return this.token(res, form);
    }
    this.send(res, 404, { error: 'not_found' });
  }

  private imds(req: import('http').IncomingMessage, res: import('http').ServerResponse, url: URL): void {
    const resource = url.searchParams.get('resource') ?? '';
    const log: TokenRequestLog = { clientId: url.searchParams.get('client_id') ?? '(system-assigned)', scope: resource, grant: 'none', status: 200, at: Date.now() };
    this.requests.push(log);
    const refuse = (status: number, error: string, description: string) => {
      log.status = status;
      log.error = error;
      this.send(res, status, { error, error_description: description });
    };
    if (req.headers.metadata !== 'true') return refuse(400, 'invalid_request', 'Required metadata header not specified');
    if (!resource) return refuse(400, 'invalid_request', 'Required query variable \'resource\' is missing');
    const wanted = url.searchParams.get('client_id');
    if (!this.managedIdentity || (wanted && wanted !== this.managedIdentity.clientId)) {
      return refuse(400, 'invalid_request', 'Identity not found');
    }
    const aud = resource.replace(/\/$/, '');
    const now = Math.floor(Date.now() / 1000);
    const accessToken = signJwt({ aud, iss: this.issuer, tid: this.tenantId, appid: this.managedIdentity.clientId, oid: this.managedIdentity.clientId, iat: now, nbf: now - 1, exp: now + this.tokenLifetimeSec, ver: '1.0' },
      this.keys.privateKey, 'entra-standin');
    this.issued.push(accessToken);
    this.send(res, 200, {
      access_token: accessToken, client_id: this.managedIdentity.clientId, expires_in: String(this.tokenLifetimeSec), expires_on: String(now + this.tokenLifetimeSec),
      ext_expires_in: String(this.tokenLifetimeSec), not_before: String(now - 1), resource, token_type: 'Bearer',
    });
  }

  private token(res: import('http').ServerResponse, form: URLSearchParams): void {
    const clientId = form.get('client_id') ?? '';
    const scope = form.get('scope') ?? '';
    const assertion = form.get('client_assertion');
    const secret = form.get('client_secret');
    const log: TokenRequestLog = { clientId, scope, grant: assertion ? 'assertion' : secret ? 'secret' : 'none', status: 200, at: Date.now() };
    this.requests.push(log);
    const refuse = (status: number, error: string, code: number, text: string) => {
      log.status = status;
      log.error = `AADSTS${code}`;
      this.refuse(res, status, error, code, text);
    };
    if (form.get('grant_type') !== 'client_credentials') return refuse(400, 'unsupported_grant_type', 70003, 'The app requested an unsupported grant type.');
    const app = this.apps.get(clientId);
    if (!app) return refuse(400, 'unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory '${this.tenantId}'.`);
    if (assertion) {
      if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') return refuse(400, 'invalid_request', 50027, 'Invalid client assertion type.');
      const payload = this.oidc.verify(assertion);
      if (typeof payload === 'string') return refuse(401, 'invalid_client', 50027, `JWT token is invalid or malformed (${payload}).`);
      if (typeof payload.exp !== 'number' || payload.exp * 1000 < Date.now()) return refuse(400, 'invalid_client', 700024, 'Client assertion is not within its valid time range.');
      if (payload.aud !== 'api://AzureADTokenExchange') return refuse(400, 'invalid_client', 700212, `No matching federated identity record found for presented assertion audience '${String(payload.aud)}'.`);
      if (!app.federated || app.federated.issuer !== payload.iss) {
        return refuse(400, 'invalid_client', 700211, `No matching federated identity record found for presented assertion issuer '${String(payload.iss)}'.`);
      }
      if (app.federated.subject !== payload.sub) {
        return refuse(400, 'invalid_client', 700213, `No matching federated identity record found for presented assertion subject '${String(payload.sub)}'. Check your federated identity credential Subject, Audience and Issuer against the presented assertion.`);
      }
    } else if (secret) {
      if (!app.secret || app.secret !== secret) return refuse(401, 'invalid_client', 7000215, 'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.');
    } else {
      return refuse(401, 'invalid_client', 7000216, "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.");
    }
    const resource = scope.replace(/\/\.default$/, '').split(' ')[0];
    const aud = resource.replace(/\/$/, '') === STORAGE_AUDIENCE ? STORAGE_AUDIENCE : resource;
    const now = Math.floor(Date.now() / 1000);
    const accessToken = signJwt({
      aud, iss: this.issuer, tid: this.tenantId, appid: clientId, oid: crypto.createHash('sha256').update(clientId).digest('hex').slice(0, 32),
      iat: now, nbf: now - 1, exp: now + this.tokenLifetimeSec, ver: '1.0', jti: crypto.randomUUID(),
    }, this.keys.privateKey, 'entra-standin');
    this.issued.push(accessToken);
    this.send(res, 200, { token_type: 'Bearer', expires_in: this.tokenLifetimeSec, ext_expires_in: this.tokenLifetimeSec, access_token: accessToken });
  }
}

import assert from 'assert';
import { BACKUP_SAS_NEEDS, parseContainerSas } from '../../tasks/common/src/sas';
import { InputError } from '../../tasks/common/src/errors';
import { organizationName } from '../../tasks/common/src/inputs';
import { redact, safeUrl, withGitConfig } from '../../tasks/common/src/credentials';
import { classifyRestError } from '../../tasks/common/src/devops';
import { classifyGitError, GitError, missingLfsObjects } from '../../tasks/common/src/git';
import { FakeHost } from './fake-host';

const now = new Date('2026-11-26T12:00:00Z');
const sas = (query: string, path = '/backups') => `https://acct.blob.core.windows.net${path}?${query}`;
const good = 'sv=2022-11-02&sr=c&sp=cw&se=2027-01-01T00:00:00Z&sig=abc%2Bdef';

describe('container SAS checks', () => {
  const parse = (raw: string, host = new FakeHost()) => parseContainerSas(raw, 'sasUrl', BACKUP_SAS_NEEDS, host, now);

  it('accepts a cw container SAS and keeps secrets out of its description', () => {
    const s = parse(sas(good));
    assert.strictEqual(s.container, 'backups');
    assert.strictEqual(s.containerUrl, 'https://acct.blob.core.windows.net/backups');
    assert.strictEqual(s.permissions, 'cw');
  });

  it('accepts the emulator over http, with the account in the path', () => {
    const s = parse(`http://127.0.0.1:10000/devstoreaccount1/backups?${good}`);
    assert.strictEqual(s.container, 'backups');
  });

  const bad: Array<[string, string, RegExp]> = [
    ['not a URL', 'not a url', /is not a URL/],
    ['http to a real host', sas(good).replace('https:', 'http:'), /must use https/],
    ['no signature', sas('sv=1&sr=c&sp=cw&se=2027-01-01'), /no SAS signature/],
    ['account SAS', sas('sv=1&ss=b&srt=sco&sp=cw&se=2027-01-01&sig=x'), /account SAS/],
    ['blob SAS', sas('sv=1&sr=b&sp=cw&se=2027-01-01&sig=x', '/backups/a.zip'), /container SAS \(sr=c\), got sr=b/],
    ['blob URL', sas(good, '/backups/a.zip'), /points at a blob/],
    ['no container', sas(good, '/'), /names no container/],
    ['read-only', sas('sv=1&sr=c&sp=rl&se=2027-01-01&sig=x'), /grants sp=rl; uploading backups needs w \(write\); w is missing\. Generate the SAS with --permissions cw\./],
    ['create without write (item 8)', sas('sv=1&sr=c&sp=c&se=2027-01-01&sig=x'), /grants sp=c; .*w is missing \(create alone cannot stage the blocks .*403\)\. Generate the SAS with --permissions cw/],
    ['no permissions and no stored access policy', sas('sv=1&sr=c&se=2027-01-01&sig=x'), /grants no permissions \(no sp=…, and no stored access policy si=…\)/],
    ['expired', sas('sv=1&sr=c&sp=cw&se=2026-01-01&sig=x'), /expired on 2026-01-01/],
  ];
  for (const [what, raw, re] of bad) {
    it(`refuses ${what}, naming the input`, () => {
      assert.throws(() => parse(raw), (e: unknown) => e instanceof InputError && e.input === 'sasUrl' && re.test(e.message) && !/sig=x|abc/.test(e.message));
    });
  }

  it('accepts w alone and cw without a warning', () => {
    for (const sp of ['w', 'cw', 'wc']) {
      const host = new FakeHost();
      assert.strictEqual(parse(sas(`sv=1&sr=c&sp=${sp}&se=2027-01-01&sig=x`), host).permissions, sp);
      assert.deepStrictEqual(host.warnings(), []);
    }
  });

  it('warns once, naming them, about rights a backup does not need (d, x, l, r, …)', () => {
    const host = new FakeHost();
    const s = parse(sas('sv=1&sr=c&sp=racwdxl&se=2027-01-01&sig=x'), host);
    assert.strictEqual(s.permissions, 'racwdxl');
    const warnings = host.warnings();
    assert.strictEqual(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0], /^Input 'sasUrl': the SAS grants r, a, d, x and l \(read, add, delete, delete versions and list\), more than uploading backups needs \(w \(write\)\); .*--permissions cw\.$/);
  });

  it('without an allowed list, extra rights are accepted silently (restore passes only what it needs)', () => {
    const host = new FakeHost();
    parseContainerSas(sas('sv=1&sr=c&sp=racwdl&se=2027-01-01&sig=x'), 'sasUrl', { allOf: ['r'], purpose: 'reading a backup' }, host, now);
    assert.deepStrictEqual(host.warnings(), []);
  });

  it('accepts a SAS bound to a stored access policy (si=, no sp/se), saying once where its rights live (item 9)', () => {
    for (const needs of [BACKUP_SAS_NEEDS, { allOf: ['r', 'l'], purpose: 'reading a backup' }]) {
      const host = new FakeHost();
      const s = parseContainerSas(sas('sv=2022-11-02&sr=c&si=backup-writer&sig=abc'), 'sasUrl', needs, host, now);
      assert.strictEqual(s.policy, 'backup-writer');
      assert.strictEqual(s.permissionsInPolicy, true);
      assert.strictEqual(s.permissions, '');
      assert.strictEqual(s.expiresOn, undefined);
      const infos = host.lines.filter((l) => l.level === 'info' && /stored access policy 'backup-writer'/.test(l.message));
      assert.strictEqual(infos.length, 1);
      assert.deepStrictEqual(host.warnings(), []);
    }
  });

  it('a policy-bound SAS that also carries sp= is checked like any other', () => {
    const s = parse(sas('sv=1&sr=c&si=p1&sp=cw&sig=x'));
    assert.strictEqual(s.permissionsInPolicy, false);
    assert.strictEqual(s.policy, 'p1');
    assert.throws(() => parse(sas('sv=1&sr=c&si=p1&sp=c&sig=x')), /w is missing/);
  });

  it('warns when the SAS expires within hours', () => {
    const host = new FakeHost();
    parse(sas('sv=1&sr=c&sp=cw&se=2026-11-26T14:00:00Z&sig=x'), host);
    assert.match(host.warnings().join('\n'), /expires in 2\.0 h/);
  });
});

describe('small pure helpers', () => {
  it('derives the organization name', () => {
    assert.strictEqual(organizationName(new URL('https://dev.azure.com/contoso/')), 'contoso');
    assert.strictEqual(organizationName(new URL('https://fabrikam.visualstudio.com/')), 'fabrikam');
    assert.strictEqual(organizationName(new URL('http://127.0.0.1:8080/tfs/DefaultCollection/')), 'DefaultCollection');
  });

  it('redacts credentials from messages and URLs', () => {
    assert.strictEqual(redact('GET https://a/b?sv=1&sig=SECRET&x=1 failed'), 'GET https://a/b?sv=1&sig=***&x=1 failed');
    assert.strictEqual(redact('AUTHORIZATION: bearer TOKEN123'), 'AUTHORIZATION: bearer ***');
    assert.strictEqual(redact('https://user:pw@host/x'), 'https://***@host/x');
    assert.strictEqual(safeUrl('https://org@dev.azure.com/o/p?sig=1'), 'https://dev.azure.com/o/p?…');
  });

  it('appends git config entries to the environment, keeping existing ones', () => {
    const env = withGitConfig({ GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'a.b', GIT_CONFIG_VALUE_0: 'c' }, [['x.y', 'z']]);
    assert.strictEqual(env.GIT_CONFIG_COUNT, '2');
    assert.strictEqual(env.GIT_CONFIG_KEY_1, 'x.y');
    assert.strictEqual(env.GIT_CONFIG_KEY_0, 'a.b');
    assert.strictEqual(env.GIT_TERMINAL_PROMPT, '0');
  });

  it('classifies REST and git errors for retry', () => {
    assert.deepStrictEqual(classifyRestError({ statusCode: 429, rateLimit: { retryAfter: 3 } }), { retry: true, afterMs: 3000 });
    assert.strictEqual(classifyRestError({ statusCode: 503 }).retry, true);
    assert.strictEqual(classifyRestError({ statusCode: 401 }).retry, false);
    assert.strictEqual(classifyRestError({ code: 'ECONNRESET' }).retry, true);
    assert.strictEqual(classifyGitError(new GitError('git clone', 128, 'error: RPC failed; curl 56 Recv failure: Connection reset by peer')).retry, true);
    assert.strictEqual(classifyGitError(new GitError('git clone', 128, "remote: TF401019: The Git repository with name or identifier x does not exist")).retry, false);
    assert.strictEqual(classifyGitError(new Error('x')).retry, false);
  });

  it('finds the LFS object ids git-lfs reports missing', () => {
    const oid = 'a'.repeat(64);
    assert.deepStrictEqual(missingLfsObjects(`[${oid}] Object does not exist on the server: [404] Object does not exist on the server\nerror: failed to fetch some objects`), [oid]);
  });
});

// Unit checks behind the hardening end-to-end tests (test/hardening.test.ts): names that never overwrite, waits the
// server asked for, retry tuning that never fails a run, REST entries that cannot be used.
import assert from 'assert';
import { classifyMirrorError, variantName } from '../../tasks/RepoBackup/RepoBackupV1/src/backup';
import { GitError } from '../../tasks/common/src/git';
import { classifyRestError, serverRetryAfterMs } from '../../tasks/common/src/devops';
import { readRetryPolicy } from '../../tasks/common/src/inputs';
import { MANIFEST_NAME } from '../../tasks/common/src/sources';
import { defaultRetryPolicy } from '../../tasks/common/src/retry';
import { FakeHost } from './fake-host';

describe('hardening units', () => {
  it('variant names keep the extension, tar.gz included', () => {
    assert.strictEqual(variantName('o/d/1.1/Team Alpha/api.zip', 1), 'o/d/1.1/Team Alpha/api.zip');
    assert.strictEqual(variantName('o/d/1.1/Team Alpha/api.zip', 2), 'o/d/1.1/Team Alpha/api~2.zip');
    assert.strictEqual(variantName('o/d/1.1/p/repo.v2.tar.gz', 3), 'o/d/1.1/p/repo.v2~3.tar.gz');
    assert.strictEqual(variantName('o/d/1.1/manifest.job-2-of-3.json', 2), 'o/d/1.1/manifest.job-2-of-3~2.json');
    assert.strictEqual(variantName('noext', 2), 'noext~2');
  });

  it('restore finds manifests under their variant names too', () => {
    for (const n of ['manifest.json', 'o/d/1.1/manifest~2.json', 'o/d/1.1/manifest.job-2-of-3~12.json']) assert.ok(MANIFEST_NAME.test(n), n);
    for (const n of ['o/d/1.1/manifest~x.json', 'o/d/1.1/mymanifest.json', 'o/d/1.1/manifest.json.sha256']) assert.ok(!MANIFEST_NAME.test(n), n);
  });

  it('Retry-After as seconds or an HTTP date, else X-RateLimit-Reset, from parsed or raw headers', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.strictEqual(serverRetryAfterMs({ rateLimit: { retryAfter: 7 } }, now), 7000);
    assert.strictEqual(serverRetryAfterMs({ responseHeaders: { 'retry-after': '3' } }, now), 3000);
    assert.strictEqual(serverRetryAfterMs({ responseHeaders: { 'retry-after': 'Thu, 01 Jan 2026 00:00:05 GMT' } }, now), 5000);
    assert.strictEqual(serverRetryAfterMs({ responseHeaders: { 'x-ratelimit-reset': String(now / 1000 + 9) } }, now), 9000);
    assert.strictEqual(serverRetryAfterMs({ responseHeaders: {} }, now), undefined);
    assert.deepStrictEqual(classifyRestError({ statusCode: 429, rateLimit: { retryAfter: 2 } }), { retry: true, afterMs: 2000 });
    assert.deepStrictEqual(classifyRestError({ statusCode: 503, responseHeaders: { 'retry-after': '1' } }), { retry: true, afterMs: 1000 });
    assert.deepStrictEqual(classifyRestError({ statusCode: 403 }), { retry: false });
  });

  it('retry tuning variables: in range they apply, out of range they warn and fall back', () => {
    assert.deepStrictEqual(readRetryPolicy(new FakeHost()), defaultRetryPolicy);
    const tuned = readRetryPolicy(new FakeHost({}, { 'RepoBackup.RetryAttempts': '3', 'RepoBackup.RetryDelayMs': '250' }));
    assert.deepStrictEqual(tuned, { ...defaultRetryPolicy, attempts: 3, baseDelayMs: 250 });
    const host = new FakeHost({}, { 'RepoBackup.RetryAttempts': '0', 'RepoBackup.RetryDelayMs': 'fast' });
    assert.deepStrictEqual(readRetryPolicy(host), defaultRetryPolicy);
    assert.strictEqual(host.warnings().length, 2);
    assert.match(host.warnings()[0], /RepoBackup\.RetryAttempts: '0' is not a whole number from 1 to 10; using 5/);
  });

  it('a full disk is never retried, even when git also reports a transient-looking failure', () => {
    const transient = new GitError('git clone --mirror', 128, 'error: RPC failed; curl 18 transfer closed\nfatal: early EOF\nfatal: index-pack failed');
    assert.deepStrictEqual(classifyMirrorError(transient), { retry: true });
    const full = new GitError('git clone --mirror', 128, 'fatal: write error: No space left on device\nfatal: index-pack failed');
    assert.deepStrictEqual(classifyMirrorError(full), { retry: false });
  });
});

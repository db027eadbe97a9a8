import assert from 'assert';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { AlreadyExistsError, CopySourceError, FolderDestination } from '../../tasks/common/src/destinations';
import { InputError } from '../../tasks/common/src/errors';
import { Git } from '../../tasks/common/src/git';
import { realFs } from '../../tasks/common/src/platform/publish';
import { FolderSource } from '../../tasks/common/src/sources';
import { ArchiveShape, findPreviousRun, Previous, refsDigest, runFolderOf } from '../../tasks/RepoBackup/RepoBackupV1/src/incremental';
import { readBackupSettings } from '../../tasks/RepoBackup/RepoBackupV1/src/settings';
import { cleanupAll, git, gitEnv, tmpDir } from '../harness/util';
import { FakeHost } from './fake-host';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

describe('incremental: refsDigest', () => {
  after(cleanupAll);

  it('is the sorted oid/ref lines plus the HEAD target: order-free, peeled lines ignored, any change counts', () => {
    const refs = [{ oid: A, name: 'refs/heads/main' }, { oid: B, name: 'refs/tags/v1' }];
    const d = refsDigest(refs, 'refs/heads/main');
    assert.strictEqual(d, sha(`${A} refs/heads/main\n${B} refs/tags/v1\nref: refs/heads/main HEAD\n`));
    assert.strictEqual(refsDigest([...refs].reverse(), 'refs/heads/main'), d);
    assert.strictEqual(refsDigest([...refs, { oid: A, name: 'refs/tags/v1^{}' }, { oid: A, name: 'HEAD' }], 'refs/heads/main'), d);
    assert.notStrictEqual(refsDigest(refs, 'refs/tags/v1'), d, 'a default-branch change');
    assert.notStrictEqual(refsDigest([refs[0], { oid: A, name: 'refs/tags/v1' }], 'refs/heads/main'), d, 'a moved ref');
    assert.notStrictEqual(refsDigest([...refs, { oid: A, name: 'refs/tags/v2' }], 'refs/heads/main'), d, 'a new ref');
    // An unborn HEAD (an empty repository) is left out on both sides.
    assert.strictEqual(refsDigest([], 'refs/heads/main'), refsDigest([]));
  });

  it('git ls-remote --symref of a remote equals the mirror clone of it (tags, annotated tags, notes, refs/pull, non-ASCII names; hidden refs in neither)', async function () {
    this.timeout(30_000);
    const work = tmpDir('inc-digest');
    const server = path.join(work, 'server.git');
    const src = path.join(work, 'src');
    const env = { GIT_AUTHOR_NAME: 'T', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 'T', GIT_COMMITTER_EMAIL: 't@example.com' };
    await git(['init', '--quiet', '-b', 'main', src]);
    fs.writeFileSync(path.join(src, 'a.txt'), 'a\n');
    await git(['add', '.'], { cwd: src });
    await git(['commit', '--quiet', '-m', 'one'], { cwd: src, env });
    await git(['branch', 'été/ñandú'], { cwd: src });
    await git(['tag', 'light'], { cwd: src });
    await git(['tag', '-a', 'v1', '-m', 'annotated'], { cwd: src, env });
    await git(['notes', 'add', '-m', 'note'], { cwd: src, env });
    fs.writeFileSync(path.join(src, 'b.txt'), 'b\n');
    await git(['add', '.'], { cwd: src });
    await git(['commit', '--quiet', '-m', 'two'], { cwd: src, env });
    await git(['clone', '--quiet', '--bare', src, server]);
    await git(['--git-dir', server, 'fetch', '--quiet', src, 'refs/notes/*:refs/notes/*']);
    await git(['--git-dir', server, 'update-ref', 'refs/pull/1/merge', 'refs/heads/main~1']);
    await git(['--git-dir', server, 'update-ref', 'refs/hidden/secret', 'refs/heads/main']);
    await git(['--git-dir', server, 'config', 'uploadpack.hideRefs', 'refs/hidden']);
    await git(['--git-dir', server, 'symbolic-ref', 'HEAD', 'refs/heads/été/ñandú']);

    const g = new Git(new FakeHost());
    const url = `file://${server}`;
    const remote = await g.lsRemoteSymref(url, gitEnv());
    assert.strictEqual(remote.head, 'refs/heads/été/ñandú');
    assert.ok(remote.refs.some((r) => r.name === 'refs/tags/v1') && !remote.refs.some((r) => r.name.endsWith('^{}')));
    assert.ok(remote.refs.some((r) => r.name === 'refs/notes/commits') && remote.refs.some((r) => r.name === 'refs/pull/1/merge'));
    assert.ok(!remote.refs.some((r) => r.name.startsWith('refs/hidden/')), 'hidden from ls-remote');
    const mirror = path.join(work, 'mirror.git');
    await g.cloneMirror(url, mirror, gitEnv());
    const local = await g.refs(mirror);
    assert.ok(!local.some((r) => r.name.startsWith('refs/hidden/')), 'hidden from the clone');
    assert.strictEqual(refsDigest(local, await g.symbolicRef(mirror)), refsDigest(remote.refs, remote.head));
    assert.strictEqual(local.length, remote.refs.length);
    // And it moves with the remote.
    await git(['--git-dir', server, 'symbolic-ref', 'HEAD', 'refs/heads/main']);
    const after = await g.lsRemoteSymref(url, gitEnv());
    assert.notStrictEqual(refsDigest(after.refs, after.head), refsDigest(local, await g.symbolicRef(mirror)));
  });
});

describe('incremental: the previous run', () => {
  const shape: ArchiveShape = { archiveFormat: 'zip', includeLfs: true };
  let root: string;
  let clock = Date.parse('2026-01-01T00:00:00Z');

  const entry = (id: string, extra: Record<string, unknown> = {}) => ({
    project: 'P', repository: id, id, status: 'ok', archive: `archives/contoso/x/${id}.zip`, sha256: 'c'.repeat(64), size: 10, refs: 1, lfsObjects: 0,
    refsDigest: `digest-${id}`, ...extra,
  });
  function write(name: string, json: Record<string, unknown>) {
    const file = path.join(root, ...name.split('/'));
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const text = JSON.stringify({ organization: { name: 'contoso' }, options: { archiveFormat: 'zip', includeLfs: true, encryption: null }, coverage: { complete: true }, ...json });
    fs.writeFileSync(file, text);
    fs.writeFileSync(`${file}.sha256`, `${sha(text)}  ${path.basename(file)}\n`);
    clock += 60_000;
    fs.utimesSync(file, new Date(clock), new Date(clock));
  }

  before(() => {
    root = tmpDir('inc-prev');
    write('manifests/contoso/2026-01-01/100.1/manifest.json', { repositories: [entry('r1'), entry('r2', { status: 'failed', archive: null })] });
    // Old layout, older run, other org beside it.
    write('contoso/2025-12-01/90.1/manifest.json', { repositories: [entry('r1')] });
    write('manifests/fabrikam/2026-01-03/300.1/manifest.json', { organization: { name: 'fabrikam' }, repositories: [entry('r1')] });
    // A newer sharded run that lacks job 2, and a newer one that was incomplete.
    write('manifests/contoso/2026-01-02/200.1/manifest.job-1-of-2.json', { run: { shard: { position: 1, total: 2 } }, repositories: [entry('r1')] });
    write('manifests/contoso/2026-01-02/201.1/manifest.json', { coverage: { complete: false }, repositories: [entry('r1')] });
  });
  after(cleanupAll);

  it('names run folders in both layouts', () => {
    assert.strictEqual(runFolderOf('manifests/contoso/2026-01-01/100.1/manifest.json'), 'contoso/2026-01-01/100.1');
    assert.strictEqual(runFolderOf('contoso/2026-01-01/100.1/manifest.job-1-of-2.json'), 'contoso/2026-01-01/100.1');
    assert.strictEqual(runFolderOf('manifests/contoso/manifest.json'), undefined);
  });

  it('takes the newest COMPLETE run of the organization (not this run, not a run missing a job, not an incomplete one)', async () => {
    const host = new FakeHost();
    const prev = await findPreviousRun(new FolderSource(root), 'contoso', 'contoso', 'contoso/2026-01-04/400.1', host);
    assert.ok(prev);
    assert.strictEqual(prev.folder, 'contoso/2026-01-01/100.1');
    assert.strictEqual(prev.run, '100.1');
    const passed = host.lines.map((l) => l.message).join('\n');
    assert.match(passed, /200\.1 is passed over: job\(s\) 2 of 2 left no manifest there/);
    assert.match(passed, /201\.1 is passed over: .*incomplete run/);
    // The current run's own folder is never its own previous run.
    const self = await findPreviousRun(new FolderSource(root), 'contoso', 'contoso', 'contoso/2026-01-01/100.1', new FakeHost());
    assert.strictEqual(self?.folder, 'contoso/2025-12-01/90.1');
    assert.strictEqual(await findPreviousRun(new FolderSource(root), 'northwind', 'northwind', 'northwind/x/1.1', new FakeHost()), undefined);
  });

  it('a complete sharded run counts once every job left its manifest', async () => {
    write('manifests/contoso/2026-01-02/200.1/manifest.job-2-of-2.json', { run: { shard: { position: 2, total: 2 } }, repositories: [entry('r3')] });
    const prev = await findPreviousRun(new FolderSource(root), 'contoso', 'contoso', 'contoso/2026-01-04/400.1', new FakeHost());
    assert.strictEqual(prev?.folder, 'contoso/2026-01-02/200.1');
    assert.strictEqual(prev.manifests.length, 2);
    assert.ok(prev.entry('r1') && prev.entry('r3'), 'entries of both jobs');
    fs.rmSync(path.join(root, 'manifests/contoso/2026-01-02/200.1/manifest.job-2-of-2.json'));
  });

  it('a manifest whose stored SHA-256 does not match passes its run over', async () => {
    const dir = 'manifests/contoso/2026-01-03/250.1';
    write(`${dir}/manifest.json`, { repositories: [entry('r1')] });
    fs.appendFileSync(path.join(root, dir, 'manifest.json'), ' ');
    const host = new FakeHost();
    const prev = await findPreviousRun(new FolderSource(root), 'contoso', 'contoso', 'contoso/2026-01-04/400.1', host);
    assert.strictEqual(prev?.folder, 'contoso/2026-01-01/100.1');
    assert.match(host.lines.map((l) => l.message).join('\n'), /250\.1 is passed over: .*SHA-256/);
    fs.rmSync(path.join(root, dir), { recursive: true });
  });

  it('decides: reuse only with the same digest, an ok archive and the same archive shape', async () => {
    const prev = (await findPreviousRun(new FolderSource(root), 'contoso', 'contoso', 'contoso/2026-01-04/400.1', new FakeHost()))!;
    const reuse = prev.decide({ id: 'R1' }, 'digest-r1', shape);
    assert.strictEqual(reuse.kind, 'reuse');
    assert.strictEqual(reuse.kind === 'reuse' && reuse.entry.archive, 'archives/contoso/x/r1.zip');
    const full = (d: ReturnType<Previous['decide']>) => (d.kind === 'full' ? `${d.reason}${d.warn ? ' (warn)' : ''}` : 'reuse');
    assert.match(full(prev.decide({ id: 'r1' }, 'other', shape)), /^refs changed since the previous run 100\.1$/);
    assert.match(full(prev.decide({ id: 'r1' }, 'digest-r1', { ...shape, archiveFormat: 'tar.gz' })), /archiveFormat changed \(zip → tar\.gz\)/);
    assert.match(full(prev.decide({ id: 'r1' }, 'digest-r1', { ...shape, includeLfs: false })), /includeLfs changed/);
    assert.match(full(prev.decide({ id: 'r1' }, 'digest-r1', { ...shape, encryption: 'age:age1x' })), /encryption/);
    assert.match(full(prev.decide({ id: 'r2' }, 'digest-r2', shape)), /no usable archive of it \(status failed\)/);
    // verify: a verifying run adopts only verified archives; a run without verify takes any.
    write('manifests/contoso/2026-01-05/500.1/manifest.json', { options: { archiveFormat: 'zip', includeLfs: true, verify: false, encryption: null }, repositories: [entry('r1')] });
    const unverified = (await findPreviousRun(new FolderSource(root), 'contoso', 'contoso', 'contoso/2026-01-06/600.1', new FakeHost()))!;
    assert.strictEqual(unverified.run, '500.1');
    assert.match(full(unverified.decide({ id: 'r1' }, 'digest-r1', { ...shape, verify: true })), /verify is on now but was off/);
    assert.strictEqual(unverified.decide({ id: 'r1' }, 'digest-r1', { ...shape, verify: false }).kind, 'reuse');
    assert.strictEqual(prev.decide({ id: 'r1' }, 'digest-r1', { ...shape, verify: true }).kind, 'reuse');
    fs.rmSync(path.join(root, 'manifests/contoso/2026-01-05'), { recursive: true });
    assert.match(full(prev.decide({ id: 'r1', isWiki: true }, 'digest-r1', shape)), /not in the previous run/);
    assert.match(full(prev.decide({ id: 'r9' }, 'x', shape)), /not in the previous run/);
  });
});

describe('incremental: input and SAS rights', () => {
  const sas = (sp: string) => `https://acct.blob.core.windows.net/backups?sv=2022-11-02&sr=c&${sp}&se=2099-01-01T00:00:00Z&sig=abc`;
  const settings = (inputs: Record<string, string>) => readBackupSettings(new FakeHost({ organizationUrl: 'https://dev.azure.com/contoso', ...inputs }, {}, { token: 't' }), '1.0.0');

  it('is off by default; on, a SAS without read and list is refused naming sasUrl, incremental and both fixes', async () => {
    assert.strictEqual((await settings({ sasUrl: sas('sp=cw') })).incremental, false);
    await assert.rejects(settings({ sasUrl: sas('sp=cw'), incremental: 'true' }), (err: Error) => {
      assert.ok(err instanceof InputError);
      assert.match(err.message, /^Input 'sasUrl': grants sp=cw; incremental: true .*r, l are missing\. Generate the SAS with --permissions rcwl\. Or set incremental: false/);
      return true;
    });
    await assert.rejects(settings({ sasUrl: sas('sp=rcw'), incremental: 'true' }), /l is missing/);
    await assert.rejects(settings({ sasUrl: sas('sp=cw'), incremental: 'maybe' }), /Input 'incremental'/);
  });

  it('accepts rcwl without a warning about extra rights, and a stored-access-policy SAS (checked by listing)', async () => {
    const host = new FakeHost({ organizationUrl: 'https://dev.azure.com/contoso', sasUrl: sas('sp=rcwl'), incremental: 'true' }, {}, { token: 't' });
    assert.strictEqual((await readBackupSettings(host, '1.0.0')).incremental, true);
    assert.deepStrictEqual(host.warnings(), []);
    assert.strictEqual((await settings({ sasUrl: sas('si=backup-policy'), incremental: 'true' })).incremental, true);
  });
});

describe('incremental: FolderDestination.copyFrom', () => {
  after(cleanupAll);

  async function setup() {
    const root = tmpDir('inc-folder');
    const dest = new FolderDestination(root);
    await dest.check();
    const body = Buffer.from('archive bytes');
    fs.mkdirSync(path.join(root, 'a'), { recursive: true });
    fs.writeFileSync(path.join(root, 'a', 'r.zip'), body);
    return { root, dest, expected: { size: body.length, sha256: sha(body) } };
  }

  it('hard-links the previous file with a .sha256 beside it; never overwrites', async () => {
    const { root, dest, expected } = await setup();
    await dest.copyFrom('a/r.zip', 'b/r.zip', expected);
    assert.strictEqual(fs.statSync(path.join(root, 'b', 'r.zip')).ino, fs.statSync(path.join(root, 'a', 'r.zip')).ino);
    assert.strictEqual(fs.readFileSync(path.join(root, 'b', 'r.zip.sha256'), 'utf8'), `${expected.sha256}  r.zip\n`);
    await assert.rejects(dest.copyFrom('a/r.zip', 'b/r.zip', expected), AlreadyExistsError);
  });

  it('copies where the file system refuses hard links', async () => {
    const { root, expected } = await setup();
    const noLinks = { ...realFs, link: async () => { throw Object.assign(new Error('no links'), { code: 'EPERM' }); } };
    const dest = new FolderDestination(root, noLinks);
    await dest.copyFrom('a/r.zip', 'c/r.zip', expected);
    assert.notStrictEqual(fs.statSync(path.join(root, 'c', 'r.zip')).ino, fs.statSync(path.join(root, 'a', 'r.zip')).ino);
    assert.strictEqual(sha(fs.readFileSync(path.join(root, 'c', 'r.zip'))), expected.sha256);
    assert.deepStrictEqual(fs.readdirSync(path.join(root, 'c')).sort(), ['r.zip', 'r.zip.sha256'], 'no partial file left');
  });

  it('refuses a missing, resized or altered previous file (CopySourceError) and leaves nothing behind', async () => {
    const { root, dest, expected } = await setup();
    await assert.rejects(dest.copyFrom('a/missing.zip', 'd/x.zip', expected), (e: Error) => e instanceof CopySourceError && /does not exist/.test(e.message));
    await assert.rejects(dest.copyFrom('a/r.zip', 'd/x.zip', { ...expected, size: 1 }), (e: Error) => e instanceof CopySourceError && /has 13 bytes, its manifest records 1/.test(e.message));
    await assert.rejects(dest.copyFrom('a/r.zip', 'd/x.zip', { ...expected, sha256: 'f'.repeat(64) }), (e: Error) => e instanceof CopySourceError && /hashes to/.test(e.message));
    assert.ok(!fs.existsSync(path.join(root, 'd')) || fs.readdirSync(path.join(root, 'd')).length === 0);
  });
});

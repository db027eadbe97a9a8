// Client-side encryption to age recipients, end to end: RepoBackup@1 with encryptionRecipients and RepoRestore@1 with
// decryptionIdentity run as the agent runs them, against the Azure DevOps stand-in, real git/git-lfs, Azurite and
// the reference age CLI (age / age-keygen, installed by scripts/ensure-tools.sh) as the independent judge.
import assert from 'assert';
import { execFileSync, spawnSync } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { AzuriteHandle, startAzurite } from './harness/azurite';
import {
  allFileBytes, assertArchiveMatches, assertNoSecretInBytes, assertNoSecretInOutput, readContainer, readFolder, secretForms, sha256, StoredFile,
} from './harness/checks';
import { buildStandardCorpus, CorpusRepo, StandardCorpus } from './harness/corpus';
import { DevOpsStandIn } from './harness/devops-standin';
import * as procs from './harness/procs';
import { runTask, TaskRun } from './harness/run-task';
import { cleanupAll, refMap, tmpDir } from './harness/util';

const ROOT = path.resolve(__dirname, '..', '..');
const BACKUP = path.join(ROOT, 'tasks/RepoBackup/RepoBackupV1/dist/index.js');
const RESTORE = path.join(ROOT, 'tasks/RepoRestore/RepoRestoreV1/dist/index.js');
const TOKEN = `canaryjob${randomBytes(16).toString('hex')}`;

interface KeyPair { file: string; secret: string; recipient: string; path: string }

/** A key pair from the reference age-keygen, its identity file written to a private folder. */
function keygen(dir: string, name: string): KeyPair {
  const file = execFileSync('age-keygen', { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  const p = path.join(dir, `${name}.txt`);
  fs.writeFileSync(p, file, { mode: 0o600 });
  return { file, secret: /^(AGE-SECRET-KEY-1\S+)$/m.exec(file)![1], recipient: /# public key: (age1\S+)/.exec(file)![1], path: p };
}

function cliDecrypt(bytes: Buffer, identity: string, work: string): { ok: boolean; out: Buffer; err: string } {
  const f = path.join(work, `c${randomBytes(4).toString('hex')}.age`);
  fs.writeFileSync(f, bytes);
  const r = spawnSync('age', ['-d', '-i', identity, f]);
  fs.rmSync(f);
  return { ok: r.status === 0, out: r.stdout, err: String(r.stderr) };
}

const PK = Buffer.from('504b0304', 'hex');
const GZ = Buffer.from('1f8b08', 'hex');

/** Polls a folder tree while a run goes on and records every file that starts like a zip or gzip archive. */
function watchForPlaintext(dir: string): { stop(): { polls: number; files: number; plaintext: string[] } } {
  const plaintext = new Set<string>();
  let polls = 0;
  let files = 0;
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try { entries = fs.readdirSync(d, { withFileTypes: true }); } catch { return; }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        files++;
        try {
          const fd = fs.openSync(p, 'r');
          const head = Buffer.alloc(4);
          const n = fs.readSync(fd, head, 0, 4, 0);
          fs.closeSync(fd);
          if (n >= 3 && (head.subarray(0, 4).equals(PK) || head.subarray(0, 3).equals(GZ))) plaintext.add(p);
        } catch { /* gone */ }
      }
    }
  };
  const timer = setInterval(() => { polls++; walk(dir); }, 15);
  return { stop: () => { clearInterval(timer); walk(dir); return { polls, files, plaintext: [...plaintext] }; } };
}

describe('age encryption end to end (encryptionRecipients / decryptionIdentity)', function () {
  this.timeout(180_000);
  let standin: DevOpsStandIn;
  let azurite: AzuriteHandle;
  let corpus: StandardCorpus;
  let keys: string;
  let alice: KeyPair;
  let bob: KeyPair;
  let stranger: KeyPair;
  /** An OpenSSH ed25519 key pair (ssh-keygen): the private key file, its .pub line and the recipient as recorded. */
  let ssh: { path: string; file: string; pub: string; recipient: string; lines: string[] };
  let folder: string;
  let blobFiles: Map<string, StoredFile>;
  let folderFiles: Map<string, StoredFile>;
  const sasUrls: string[] = [];
  const measured: string[] = [];

  const restorable = () => corpus.all.filter((r) => !r.disabled);
  const key = (r: CorpusRepo) => `${r.project}/${r.name}`;
  const explain = (run: TaskRun) => `result ${JSON.stringify(run.result)}, exit ${run.code}\n--- stdout\n${run.stdout.slice(-4000)}\n--- stderr\n${run.stderr.slice(-1500)}`;
  const sas = (p: string) => { const u = azurite.containerSasUrl('backups', p); sasUrls.push(u); return u; };
  const sigs = () => sasUrls.map((u) => new URL(u).searchParams.get('sig')!);
  const secrets = () => [TOKEN, alice.secret, bob.secret, stranger.secret, ...ssh.lines, ...sigs()];

  /** Every process's command line, sampled while a task runs: no key, token or signature in any argv. */
  const argvLeaks: string[] = [];
  let argvSamples = 0;
  async function task(entry: string, inputs: Record<string, string>, variables: Record<string, string> = {}, tempDir = tmpDir('run')): Promise<TaskRun> {
    const forms = secrets().flatMap(secretForms);
    const sampler = procs.every(25, () => {
      argvSamples++;
      for (const { pid, cmdline } of procs.allCmdlines()) for (const f of forms) if (cmdline.includes(f)) argvLeaks.push(`pid ${pid}`);
    });
    const run = await runTask(entry, {
      inputs: { organizationUrl: standin.orgUrl, ...inputs }, orgUrl: standin.orgUrl, token: TOKEN, tempDir, variables,
      env: { NODE_PATH: '', NODE_OPTIONS: '' }, timeoutMs: 90_000,
    }).finally(() => sampler.stop());
    assert.deepStrictEqual(argvLeaks, [], 'a secret was on a command line');
    assertNoSecretInOutput(run, secrets());
    // Nothing the run left in its temp folder carries a key or token.
    assertNoSecretInBytes(`files left in ${tempDir}`, fs.existsSync(tempDir) ? allFileBytes(tempDir) : [], secrets());
    return run;
  }

  before(async function () {
    this.timeout(180_000);
    keys = tmpDir('keys');
    alice = keygen(keys, 'alice');
    bob = keygen(keys, 'bob');
    stranger = keygen(keys, 'stranger');
    const sshPath = path.join(keys, 'id_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'restore@example', '-f', sshPath]);
    const sshFile = fs.readFileSync(sshPath, 'utf8');
    const pub = fs.readFileSync(`${sshPath}.pub`, 'utf8').trim();
    ssh = {
      path: sshPath, file: sshFile, pub, recipient: pub.split(' ').slice(0, 2).join(' '),
      lines: sshFile.split('\n').filter((l) => l && !l.startsWith('-----')),
    };
    [standin, azurite] = await Promise.all([
      DevOpsStandIn.start({ org: 'contoso', root: tmpDir('standin'), tokens: { bearer: [TOKEN] } }),
      startAzurite(),
    ]);
    corpus = await buildStandardCorpus(standin);
    await azurite.createContainer('backups');
    folder = tmpDir('enc-folder');
    const recipients = `# alice\n${alice.recipient}\n${bob.recipient}\n${ssh.pub}\n`;
    const blobTemp = tmpDir('run');
    const folderTemp = tmpDir('run');
    const watchBlob = watchForPlaintext(blobTemp);
    const watchFolder = watchForPlaintext(folderTemp);
    const watchDest = watchForPlaintext(folder);
    const [toBlob, toFolder] = await Promise.all([
      task(BACKUP, { destination: 'azureBlob', sasUrl: sas('cw'), archiveFormat: 'zip', encryptionRecipients: recipients }, { 'Build.BuildId': '2001' }, blobTemp),
      task(BACKUP, { destination: 'folder', folderPath: folder, archiveFormat: 'tar.gz', encryptionRecipients: recipients }, { 'Build.BuildId': '2002' }, folderTemp),
    ]);
    const seen = [watchBlob.stop(), watchFolder.stop(), watchDest.stop()];
    for (const run of [toBlob, toFolder]) assert.strictEqual(run.result?.result, 'Succeeded', explain(run));
    measured.push(`temp/destination folders polled ${seen.map((s) => s.polls).join('/')} times during the backups (${seen.map((s) => s.files).join('/')} file sightings): plaintext archives seen: ${seen.flatMap((s) => s.plaintext).length}`);
    for (const s of seen) assert.deepStrictEqual(s.plaintext, [], 'a plaintext zip/tar.gz was on disk during an encrypted backup');
    blobFiles = await readContainer(azurite.serviceClient().getContainerClient('backups'));
    folderFiles = readFolder(folder);
  });

  after(async () => {
    await standin?.stop();
    await azurite?.stop();
    await cleanupAll();
    measured.push(`command lines of every process sampled ${argvSamples} times during the task runs: ${argvLeaks.length} with a secret`);
    if (measured.length) console.log(`      measured:\n${measured.map((m) => `        ${m}`).join('\n')}`);
  });

  for (const where of ['blob (zip)', 'folder (tar.gz)'] as const) {
    it(`${where}: every archive is <repo>.<fmt>.age, the age CLI decrypts it with either recipient's identity, and git reads the result`, async () => {
      const files = where.startsWith('blob') ? blobFiles : folderFiles;
      const ext = where.startsWith('blob') ? '.zip.age' : '.tar.gz.age';
      const manifest = JSON.parse([...files.values()].find((f) => f.name.endsWith('/manifest.json'))!.bytes.toString('utf8'));
      assert.deepStrictEqual(manifest.options.encryption, { format: 'age', recipients: [alice.recipient, bob.recipient, ssh.recipient] });
      const work = tmpDir('cli');
      for (const src of restorable()) {
        const entry = manifest.repositories.find((e: { id: string }) => e.id === src.repo.id);
        assert.strictEqual(entry.status, 'ok', entry.error);
        assert.ok(entry.archive.endsWith(ext), entry.archive);
        const stored = files.get(entry.archive)!;
        assert.ok(stored.bytes.subarray(0, 22).equals(Buffer.from('age-encryption.org/v1\n')), 'stored bytes are an age file');
        assert.strictEqual(entry.sha256, sha256(stored.bytes), 'manifest sha256 = stored (encrypted) bytes');
        assert.strictEqual(entry.size, stored.bytes.length);
        assert.deepStrictEqual(entry.encryption, { format: 'age', recipients: [alice.recipient, bob.recipient, ssh.recipient] });
        if (where.startsWith('blob')) {
          assert.strictEqual(stored.metadata.sha256, entry.sha256);
          assert.strictEqual(stored.metadata.plaintextsha256, entry.plaintextSha256);
        } else {
          assert.strictEqual(files.get(`${entry.archive}.sha256`)!.bytes.toString().split(/\s/)[0], entry.sha256);
        }
        let plain: Buffer | undefined;
        for (const who of [alice, bob, ssh]) {
          const d = cliDecrypt(stored.bytes, who.path, work);
          assert.ok(d.ok, `age -d ${entry.archive}: ${d.err}`);
          plain = d.out;
        }
        assert.strictEqual(sha256(plain!), entry.plaintextSha256, 'plaintextSha256 = the decrypted archive');
        assert.strictEqual(plain!.length, entry.plaintextSize);
        const dir = await assertArchiveMatches(plain!, entry.archive.replace(/\.age$/, ''), src);
        assertNoSecretInBytes(`archive ${entry.archive}`, [stored.bytes, plain!, ...allFileBytes(dir)], secrets());
        assert.ok(!cliDecrypt(stored.bytes, stranger.path, work).ok, 'another identity cannot decrypt');
      }
      // Only public keys in the manifest; it stays plaintext JSON.
      assertNoSecretInBytes('manifest', [...files.values()].filter((f) => f.name.endsWith('.json')).map((f) => f.bytes), secrets());
    });
  }

  it('RepoRestore decrypts while downloading (blob, through the manifest): refs equal to the source; the identity is masked', async () => {
    const src = corpus.repos.api;
    const run = await task(RESTORE, {
      source: 'azureBlob', sasUrl: sas('rl'), repository: key(src), targetProject: src.project, targetRepository: 'api decrypted',
      decryptionIdentity: bob.file,
    });
    const bySsh = await task(RESTORE, {
      source: 'azureBlob', sasUrl: sas('rl'), repository: key(src), targetProject: src.project, targetRepository: 'api by ssh key',
      decryptionIdentity: ssh.file,
    });
    assert.strictEqual(bySsh.result?.result, 'Succeeded', explain(bySsh));
    assert.deepStrictEqual(await refMap(standin.findRepo(src.project, 'api by ssh key')!.gitDir), await refMap(standin.findRepo(src.project, 'api decrypted')!.gitDir));
    assert.strictEqual(run.result?.result, 'Succeeded', explain(run));
    assert.deepStrictEqual(await refMap(standin.findRepo(src.project, 'api decrypted')!.gitDir),
      Object.fromEntries(Object.entries(await refMap(src.repo.gitDir)).filter(([r]) => !r.startsWith('refs/pull/'))));
    assert.ok(run.lines.some((l) => /Decrypted with age/.test(l)));
    assert.ok(run.lines.some((l) => l.startsWith('##vso[task.setsecret]') && l.includes(bob.secret)), 'the identity is registered with the masker');
  });

  it('mode: verify (restore drill) decrypts every archive of the encrypted run and finds it identical to the live repository', async () => {
    const reportPath = path.join(tmpDir('drill'), 'drill.json');
    const run = await task(RESTORE, { mode: 'verify', source: 'azureBlob', sasUrl: sas('rl'), reportPath, decryptionIdentity: alice.file });
    // The disabled repository has no archive (skipped at backup, by design): listed as skipped, not an issue.
    assert.strictEqual(run.result?.result, 'Succeeded', explain(run));
    assert.match(run.result!.message, new RegExp(`^Verified ${restorable().length} archives: ${restorable().length} identical; 1 listed without an archive, skipped by the backup \\(Team Alpha/disabled\\)\\.$`));
    const text = fs.readFileSync(reportPath, 'utf8');
    for (const r of restorable()) assert.ok(text.includes(`${r.name}.zip.age`), `the drill checked ${key(r)}`);
    const none = await task(RESTORE, { mode: 'verify', source: 'azureBlob', sasUrl: sas('rl'), reportPath: path.join(path.dirname(reportPath), 'd.json') });
    // Without the identity nothing can be checked: every archive is reported failed, naming the input.
    assert.notStrictEqual(none.result?.result, 'Succeeded', explain(none));
    assert.match(none.result!.message, new RegExp(`Verified ${restorable().length} archives: ${restorable().length} failed; 1 listed without an archive`));
    assert.ok(fs.readFileSync(path.join(path.dirname(reportPath), 'd.json'), 'utf8').includes("Input 'decryptionIdentity': is empty"), 'the drill report names the input');
  });

  it('RepoRestore restores an archive the age CLI encrypted (folder, by path), LFS included', async () => {
    const src = corpus.repos.assets;
    const manifest = JSON.parse([...folderFiles.values()].find((f) => f.name.endsWith('/manifest.json'))!.bytes.toString('utf8'));
    const entry = manifest.repositories.find((e: { id: string }) => e.id === src.repo.id);
    const plain = cliDecrypt(folderFiles.get(entry.archive)!.bytes, alice.path, tmpDir('cli')).out;
    const cliFolder = tmpDir('cli-folder');
    fs.writeFileSync(path.join(cliFolder, 'plain.tar.gz'), plain);
    execFileSync('age', ['-r', alice.recipient, '-o', path.join(cliFolder, 'by-cli.tar.gz.age'), path.join(cliFolder, 'plain.tar.gz')]);
    fs.rmSync(path.join(cliFolder, 'plain.tar.gz'));
    fs.writeFileSync(path.join(cliFolder, 'by-cli.tar.gz.age.sha256'), `${sha256(fs.readFileSync(path.join(cliFolder, 'by-cli.tar.gz.age')))}  by-cli.tar.gz.age\n`);
    const run = await task(RESTORE, {
      source: 'folder', folderPath: cliFolder, archive: 'by-cli.tar.gz.age', targetProject: src.project, targetRepository: 'assets from cli',
      decryptionIdentity: alice.file,
    });
    assert.strictEqual(run.result?.result, 'Succeeded', explain(run));
    assert.match(run.result!.message, /3 LFS objects/);
    assert.deepStrictEqual(await refMap(standin.findRepo(src.project, 'assets from cli')!.gitDir), await refMap(src.repo.gitDir));
  });

  it('a wrong or missing identity, or a flipped byte: one clear line, the target is never created', async () => {
    const src = corpus.repos.api;
    const wrong = await task(RESTORE, {
      source: 'azureBlob', sasUrl: sas('rl'), repository: key(src), targetProject: src.project, targetRepository: 'api wrong key', decryptionIdentity: stranger.file,
    });
    assert.strictEqual(wrong.result?.result, 'Failed', explain(wrong));
    assert.match(wrong.result!.message, /decryptionIdentity.*none of the 1 identity given can open it.*not created/);
    assert.strictEqual(standin.findRepo(src.project, 'api wrong key'), undefined);

    const missing = await task(RESTORE, { source: 'azureBlob', sasUrl: sas('rl'), repository: key(src), targetProject: src.project, targetRepository: 'api no key' });
    assert.strictEqual(missing.result?.result, 'Failed', explain(missing));
    assert.match(missing.result!.message, /Input 'decryptionIdentity': is empty, but .*\.zip\.age' is encrypted with age/);
    assert.strictEqual(standin.findRepo(src.project, 'api no key'), undefined);

    const byPath = await task(RESTORE, { source: 'folder', folderPath: folder, archive: 'x/y.zip.age', targetProject: src.project, targetRepository: 'api no key 2' });
    assert.strictEqual(byPath.result?.result, 'Failed');
    assert.match(byPath.result!.message, /Input 'decryptionIdentity': is empty, but 'x\/y.zip.age' is encrypted/);

    const garbage = await task(RESTORE, { source: 'folder', folderPath: folder, archive: 'x/y.zip.age', targetProject: src.project, targetRepository: 'x', decryptionIdentity: `${alice.secret.slice(0, -4)}QQQQ` });
    assert.strictEqual(garbage.result?.result, 'Failed');
    assert.match(garbage.result!.message, /Input 'decryptionIdentity': line 1: is not an age identity/);

    // A flipped byte in the stored archive (and its .sha256 kept): refused before the target is created.
    const copy = tmpDir('flipped');
    fs.cpSync(folder, copy, { recursive: true });
    const manifestName = [...folderFiles.keys()].find((n) => n.endsWith('/manifest.json'))!;
    const entry = JSON.parse(folderFiles.get(manifestName)!.bytes.toString('utf8')).repositories.find((e: { id: string }) => e.id === src.repo.id);
    const target = path.join(copy, entry.archive);
    const bytes = fs.readFileSync(target);
    bytes[bytes.length - 100] ^= 0x40;
    fs.writeFileSync(target, bytes);
    const flipped = await task(RESTORE, { source: 'folder', folderPath: copy, repository: key(src), targetProject: src.project, targetRepository: 'api flipped', decryptionIdentity: alice.file });
    assert.strictEqual(flipped.result?.result, 'Failed', explain(flipped));
    assert.match(flipped.result!.message, /is corrupt or was changed: it cannot be decrypted: it was changed or truncated/);
    assert.strictEqual(standin.findRepo(src.project, 'api flipped'), undefined);
    // The manifest's plaintextSha256 disagrees with what the archive decrypts to (its own .sha256 rewritten to match):
    // refused after decryption, before the target is created.
    const edited = tmpDir('edited');
    fs.cpSync(folder, edited, { recursive: true });
    const m = JSON.parse(folderFiles.get(manifestName)!.bytes.toString('utf8'));
    const assetsEntry = m.repositories.find((e: { id: string }) => e.id === corpus.repos.assets.repo.id);
    assetsEntry.plaintextSha256 = '0'.repeat(64);
    const text = JSON.stringify(m, null, 2);
    fs.writeFileSync(path.join(edited, manifestName), text);
    if (fs.existsSync(path.join(edited, `${manifestName}.sha256`))) fs.writeFileSync(path.join(edited, `${manifestName}.sha256`), `${sha256(text)}  manifest.json\n`);
    const mismatch = await task(RESTORE, { source: 'folder', folderPath: edited, repository: key(corpus.repos.assets), manifest: manifestName, targetProject: corpus.repos.assets.project, targetRepository: 'assets mismatch', decryptionIdentity: alice.file });
    assert.strictEqual(mismatch.result?.result, 'Failed', explain(mismatch));
    assert.match(mismatch.result!.message, /decrypts to an archive whose SHA-256 is [0-9a-f]{64} but manifest .* \(plaintextSha256\) says 0{64}\. Nothing was restored/);
    assert.strictEqual(standin.findRepo(corpus.repos.assets.project, 'assets mismatch'), undefined);
    measured.push(`refusals: wrong identity "${wrong.result!.message.slice(0, 140)}…"; flipped byte "${flipped.result!.message.slice(0, 120)}…"`);
  });

  it('a malformed recipient fails before any clone, naming the input and the line', async () => {
    standin.clearLog();
    const run = await task(BACKUP, { destination: 'folder', folderPath: tmpDir('unused'), encryptionRecipients: `${alice.recipient}\nage1notakey` });
    assert.strictEqual(run.result?.result, 'Failed');
    assert.match(run.result!.message, /Input 'encryptionRecipients': line 2: 'age1notakey' is not an age recipient/);
    assert.ok(!standin.requests.some((r) => r.route === 'git' || r.route === 'lfs'), 'no clone was attempted');
    // A secret key pasted into the (public) recipients input: refused, and the task's own messages never repeat it.
    // The input is read without task-lib's debug echo (name=value under System.Debug), and the key line is masked.
    const secret = await runTask(BACKUP, {
      inputs: { organizationUrl: standin.orgUrl, destination: 'folder', folderPath: tmpDir('unused'), encryptionRecipients: alice.secret },
      orgUrl: standin.orgUrl, token: TOKEN, tempDir: tmpDir('run'), env: { NODE_PATH: '', NODE_OPTIONS: '' }, timeoutMs: 60_000,
    });
    assert.strictEqual(secret.result?.result, 'Failed');
    assert.match(secret.result!.message, /Input 'encryptionRecipients': line 1: is a secret key \(an identity\), not a recipient/);
    assert.deepStrictEqual(secret.lines.filter((l) => l.includes(alice.secret)), [`##vso[task.setsecret]${alice.secret}`]);
  });
});

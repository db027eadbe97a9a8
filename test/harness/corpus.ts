// Deterministic git content for stand-in repositories.
//  - `populate` builds commits in a temporary working clone and pushes them through the stand-in over HTTP
//    (real git + git-lfs, credentials only through GIT_CONFIG_* env), so pushing exercises the stand-in too.
//  - `buildStandardCorpus` makes the fixed organization the tests back up.
//  - `makeRandomRepo` writes big incompressible repositories straight into a bare repo with `git fast-import`
//    (no HTTP), for benches.
import { spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { DevOpsStandIn, Project, StandInRepo } from './devops-standin';
import { authEnv, git, gitEnv, refMap, tmpDir } from './util';

/** A file's content: text/bytes, or `{ lfs }` to commit it through the git-lfs clean filter. */
export type FileContent = string | Buffer | { lfs: string | Buffer };

export interface CommitSpec {
  /** Branch to commit on (default: the repo's default branch); created from `from` (default: the current branch). */
  branch?: string;
  from?: string;
  message: string;
  files?: Record<string, FileContent>;
  remove?: string[];
}

export interface RepoSpec {
  /** Default `main`. The first branch pushed becomes the repository's default branch. */
  defaultBranch?: string;
  commits: CommitSpec[];
  /** Annotated when `message` is set, lightweight otherwise. `target` is any revision. */
  tags?: Array<{ name: string; target: string; message?: string }>;
  /** Notes on `refs/notes/commits`. */
  notes?: Array<{ target: string; message: string }>;
  /** `refs/pull/<id>/merge` = merge of `source` into `target`, written straight into the bare repo (pushes of refs/pull are refused). */
  pulls?: Array<{ id: number; target: string; source: string }>;
  /** Unix seconds of the first commit; each later commit/tag/note is one minute later. Default 2024-01-01T00:00:00Z. */
  startTime?: number;
}

export interface LfsFile {
  oid: string;
  size: number;
  path: string;
  branch: string;
}

export interface PopulateResult {
  /** Every ref of the bare repository after population, refname → object id. */
  refs: Record<string, string>;
  lfs: LfsFile[];
}

const AUTHOR = { name: 'Ada Tester', email: 'ada@example.com' };
const DEFAULT_START = Date.UTC(2024, 0, 1) / 1000;

/** Builds `spec` into `repo` (which should be empty) by pushing through `standin` with a valid token. */
export async function populate(standin: DevOpsStandIn, repo: StandInRepo, spec: RepoSpec): Promise<PopulateResult> {
  const work = tmpDir(`work-${repo.name}`);
  const branch0 = spec.defaultBranch ?? 'main';
  let clock = spec.startTime ?? DEFAULT_START;
  const timed = (): NodeJS.ProcessEnv => {
    const date = `${clock} +0000`;
    clock += 60;
    return {
      GIT_AUTHOR_NAME: AUTHOR.name, GIT_AUTHOR_EMAIL: AUTHOR.email, GIT_AUTHOR_DATE: date,
      GIT_COMMITTER_NAME: AUTHOR.name, GIT_COMMITTER_EMAIL: AUTHOR.email, GIT_COMMITTER_DATE: date,
    };
  };
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) => git(args, { cwd: work, env });

  await run(['init', '--quiet', `--initial-branch=${branch0}`]);
  await run(['lfs', 'install', '--local']);
  await run(['config', 'core.autocrlf', 'false']);
  const lfs: LfsFile[] = [];
  let current = branch0;
  let born = false;

  for (const c of spec.commits) {
    const target = c.branch ?? branch0;
    if (target !== current) {
      const exists = born && (await run(['branch', '--list', target])).trim() !== '';
      if (exists) await run(['checkout', '--quiet', target]);
      else if (born) await run(['checkout', '--quiet', '-b', target, c.from ?? current]);
      else await run(['checkout', '--quiet', '--orphan', target]);
      current = target;
    }
    for (const [rel, content] of Object.entries(c.files ?? {})) {
      const file = path.join(work, rel);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      if (typeof content === 'object' && !Buffer.isBuffer(content)) {
        const bytes = Buffer.from(content.lfs);
        await trackLfs(work, rel);
        fs.writeFileSync(file, bytes);
        lfs.push({ oid: sha256(bytes), size: bytes.length, path: rel, branch: target });
      } else {
        fs.writeFileSync(file, content);
      }
    }
    for (const rel of c.remove ?? []) fs.rmSync(path.join(work, rel), { force: true });
    await run(['add', '--all']);
    await run(['commit', '--quiet', '--allow-empty', '--no-verify', '-m', c.message], timed());
    born = true;
  }
  for (const t of spec.tags ?? []) {
    if (t.message) await run(['tag', '-a', t.name, '-m', t.message, t.target], timed());
    else await run(['tag', t.name, t.target]);
  }
  for (const n of spec.notes ?? []) await run(['notes', 'add', '-m', n.message, n.target], timed());

  const pushEnv = { ...authEnv(standin.authHeader(), [['lfs.locksverify', 'false']]) };
  if (born) {
    await run(['remote', 'add', 'origin', repo.remoteUrl]);
    // The default branch first, so the service makes it the default.
    await run(['push', '--quiet', 'origin', `refs/heads/${branch0}:refs/heads/${branch0}`], pushEnv);
    await run(['push', '--quiet', 'origin', 'refs/heads/*:refs/heads/*', 'refs/tags/*:refs/tags/*', 'refs/notes/*:refs/notes/*'], pushEnv);
  }
  for (const p of spec.pulls ?? []) {
    const tree = (await run(['merge-tree', '--write-tree', p.target, p.source])).split('\n')[0].trim();
    const merge = (await run(['commit-tree', tree, '-p', p.target, '-p', p.source, '-m', `Merge pull request ${p.id} from ${p.source} into ${p.target}`], timed())).trim();
    await run(['update-ref', `refs/staging/pull-${p.id}`, merge]);
    await git(['--git-dir', repo.gitDir, 'fetch', '--quiet', work, `refs/staging/pull-${p.id}:refs/pull/${p.id}/merge`]);
  }
  return { refs: await refMap(repo.gitDir), lfs };
}

/** Adds `*.<ext>` (or the path itself when it has no extension) to .gitattributes as an LFS pattern. */
async function trackLfs(work: string, rel: string): Promise<void> {
  const ext = path.extname(rel);
  const pattern = ext ? `*${ext}` : `/${rel}`;
  const line = `${pattern} filter=lfs diff=lfs merge=lfs -text`;
  const attrs = path.join(work, '.gitattributes');
  const existing = fs.existsSync(attrs) ? fs.readFileSync(attrs, 'utf8') : '';
  if (!existing.split('\n').includes(line)) fs.writeFileSync(attrs, existing + line + '\n');
}

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

// ---------------------------------------------------------------- the standard corpus

export interface CorpusRepo {
  repo: StandInRepo;
  project: string;
  name: string;
  /** A project wiki (hidden repository). */
  hidden: boolean;
  disabled: boolean;
  /** No commits, so no default branch. */
  empty: boolean;
  defaultBranch?: string;
  /** refname → object id, as in the bare repository. */
  refs: Record<string, string>;
  lfs: LfsFile[];
}

export interface StandardCorpus {
  alpha: Project;
  beta: Project;
  repos: {
    api: CorpusRepo;
    assets: CorpusRepo;
    empty: CorpusRepo;
    disabled: CorpusRepo;
    wiki: CorpusRepo;
    naive: CorpusRepo;
  };
  /** All repositories, hidden and disabled included. */
  all: CorpusRepo[];
}

/** Deterministic pseudo-random bytes (AES-256-CTR keystream keyed by the seed). */
export function prngBytes(seed: string, length: number): Buffer {
  return seededStream(seed).update(Buffer.alloc(length));
}

function seededStream(seed: string): crypto.Cipher {
  const key = crypto.createHash('sha256').update(seed).digest();
  return crypto.createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
}

/**
 * Project "Team Alpha": api (main + 2 branches, annotated + lightweight tags, a note, refs/pull/1/merge),
 * assets (LFS on main and LFS only on branch art/v2), empty (no commits), disabled (one commit, isDisabled),
 * "Team Alpha.wiki" (hidden, default branch wikiMaster). Project "Équipe Bêta": "naïve repo" (two commits).
 */
export async function buildStandardCorpus(standin: DevOpsStandIn): Promise<StandardCorpus> {
  const alpha = standin.addProject('Team Alpha', 'The alpha team');
  const beta = standin.addProject('Équipe Bêta', 'L’équipe bêta');
  const make = async (project: Project, name: string, spec: RepoSpec | undefined, opts: { wiki?: boolean } = {}) => {
    const repo = standin.addRepo(project, name, { wiki: opts.wiki });
    const result = spec ? await populate(standin, repo, spec) : { refs: {}, lfs: [] };
    const corpusRepo: CorpusRepo = {
      repo, project: project.name, name, hidden: !!opts.wiki, disabled: false, empty: !spec,
      defaultBranch: spec ? `refs/heads/${spec.defaultBranch ?? 'main'}` : undefined, ...result,
    };
    return corpusRepo;
  };

  const [api, assets, empty, disabled, wiki, naive] = await Promise.all([
    make(alpha, 'api', {
      commits: [
        { message: 'Initial commit', files: { 'README.md': '# api\n', 'src/index.js': 'module.exports = 1;\n' } },
        { message: 'Add config', files: { 'config.json': '{ "port": 8080 }\n' } },
        { branch: 'feature/login', from: 'main', message: 'Add login', files: { 'src/login.js': 'exports.login = () => true;\n' } },
        { branch: 'release/1.0', from: 'main', message: 'Release 1.0', files: { 'VERSION': '1.0.0\n' } },
        { branch: 'main', message: 'Document the API', files: { 'docs/api.md': '## Endpoints\n' } },
      ],
      tags: [
        { name: 'v1.0', target: 'release/1.0', message: 'Version 1.0' },
        { name: 'v0.9-light', target: 'main~1' },
      ],
      notes: [{ target: 'main', message: 'Reviewed-by: Bob' }],
      pulls: [{ id: 1, target: 'main', source: 'feature/login' }],
    }),
    make(alpha, 'assets', {
      commits: [
        { message: 'Add logo', files: { 'README.md': '# assets\n', 'logo.bin': { lfs: prngBytes('assets/logo', 3000) } } },
        { branch: 'art/v2', from: 'main', message: 'New artwork', files: { 'art/hero.bin': { lfs: prngBytes('assets/hero', 5000) } } },
        { branch: 'art/v2', message: 'More artwork', files: { 'art/banner.bin': { lfs: prngBytes('assets/banner', 7000) } } },
      ],
    }),
    make(alpha, 'empty', undefined),
    make(alpha, 'disabled', { commits: [{ message: 'Before it was disabled', files: { 'old.txt': 'old\n' } }] }),
    make(alpha, 'Team Alpha.wiki', {
      defaultBranch: 'wikiMaster',
      commits: [
        { message: 'Added Home page', files: { 'Home.md': '# Welcome\n', '.order': 'Home\n' } },
        { message: 'Updated Home', files: { 'Home.md': '# Welcome to Team Alpha\n' } },
      ],
    }, { wiki: true }),
    make(beta, 'naïve repo', {
      commits: [
        { message: 'Première version', files: { 'lisez-moi.md': '# Naïve\n', 'données/été.txt': 'soleil\n' } },
        { message: 'Deuxième version', files: { 'lisez-moi.md': '# Naïve repo\n\nÇa marche.\n' } },
      ],
    }),
  ]);
  standin.setRepoDisabled(disabled.repo.id, true);
  disabled.disabled = true;
  return { alpha, beta, repos: { api, assets, empty, disabled, wiki, naive }, all: [api, assets, empty, disabled, wiki, naive] };
}

// ---------------------------------------------------------------- random repositories for benches

export interface RandomRepoOptions {
  /** Total bytes of (incompressible) git blob content. */
  sizeBytes: number;
  /** Number of files the content is split into. */
  files: number;
  /** Number of commits the files are spread over (default min(files, 10)). */
  commits?: number;
  /** Tags, alternately annotated and lightweight, on the commits. */
  tags?: number;
  /** Total bytes of LFS content, stored in the stand-in's LFS store (pointer files are committed). */
  lfsBytes?: number;
  /** Number of LFS objects (default 4 when lfsBytes > 0). */
  lfsFiles?: number;
  seed: string | number;
  branch?: string;
}

export interface RandomRepoResult {
  head: string;
  commits: number;
  bytes: number;
  lfsOids: string[];
  lfsBytes: number;
  refs: Record<string, string>;
}

/**
 * Fills an empty bare stand-in repository with deterministic incompressible content through `git fast-import`
 * (packs stored at compression level 0, so serving them costs no recompression). Bytes depend only on options.
 */
export async function makeRandomRepo(standin: DevOpsStandIn, repo: StandInRepo, opts: RandomRepoOptions): Promise<RandomRepoResult> {
  const seed = String(opts.seed);
  const branch = opts.branch ?? 'main';
  const files = Math.max(1, opts.files);
  const commits = Math.max(1, Math.min(opts.commits ?? Math.min(files, 10), files));
  const lfsCount = opts.lfsBytes ? Math.max(1, opts.lfsFiles ?? 4) : 0;

  const lfsOids: string[] = [];
  const pointers: Buffer[] = [];
  for (let i = 0; i < lfsCount; i++) {
    const size = share(opts.lfsBytes ?? 0, lfsCount, i);
    const oid = await writeLfsObject(standin, repo, `${seed}/lfs/${i}`, size);
    lfsOids.push(oid);
    pointers.push(Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${oid}\nsize ${size}\n`));
  }

  // Keep one pack (no unpacking into loose objects) stored at level 0: serving it then needs no recompression.
  const config = ['core.compression=0', 'pack.compression=0', 'fastimport.unpackLimit=0'].flatMap((c) => ['-c', c]);
  const child = spawn('git', [...config, '--git-dir', repo.gitDir, 'fast-import', '--quiet', '--depth=0'], {
    stdio: ['pipe', 'ignore', 'pipe'],
    env: gitEnv(),
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`git fast-import failed (${code}): ${stderr}`))));
  });
  const out = child.stdin;
  const write = async (data: string | Buffer) => {
    if (!out.write(data)) await new Promise<void>((r) => out.once('drain', r));
  };

  let mark = 0;
  const fileMarks: number[] = [];
  for (let i = 0; i < files; i++) {
    const size = share(opts.sizeBytes, files, i);
    fileMarks.push(++mark);
    await write(`blob\nmark :${mark}\ndata ${size}\n`);
    const stream = seededStream(`${seed}/file/${i}`);
    const chunk = Buffer.alloc(1 << 20);
    for (let left = size; left > 0; left -= chunk.length) {
      await write(stream.update(left >= chunk.length ? chunk : chunk.subarray(0, left)));
    }
    await write('\n');
  }
  const pointerMarks: number[] = [];
  for (const p of pointers) {
    pointerMarks.push(++mark);
    await write(`blob\nmark :${mark}\ndata ${p.length}\n`);
    await write(p);
    await write('\n');
  }
  const commitMarks: number[] = [];
  const t0 = DEFAULT_START;
  for (let c = 0; c < commits; c++) {
    const msg = `Commit ${c + 1} of ${commits}\n`;
    commitMarks.push(++mark);
    let text = `commit refs/heads/${branch}\nmark :${mark}\n`;
    text += `author ${AUTHOR.name} <${AUTHOR.email}> ${t0 + c * 60} +0000\n`;
    text += `committer ${AUTHOR.name} <${AUTHOR.email}> ${t0 + c * 60} +0000\n`;
    text += `data ${Buffer.byteLength(msg)}\n${msg}`;
    if (c > 0) text += `from :${commitMarks[c - 1]}\n`;
    for (let i = c; i < files; i += commits) text += `M 100644 :${fileMarks[i]} data/file-${String(i).padStart(6, '0')}.bin\n`;
    if (c === commits - 1 && pointers.length) {
      const attrs = 'lfs/** filter=lfs diff=lfs merge=lfs -text\n';
      text += `M 100644 inline .gitattributes\ndata ${attrs.length}\n${attrs}`;
      pointerMarks.forEach((m, i) => { text += `M 100644 :${m} lfs/object-${i}.bin\n`; });
    }
    await write(text + '\n');
  }
  for (let t = 0; t < (opts.tags ?? 0); t++) {
    const target = commitMarks[t % commits];
    if (t % 2 === 0) {
      const msg = `Tag ${t}\n`;
      await write(`tag v${t}\nfrom :${target}\ntagger ${AUTHOR.name} <${AUTHOR.email}> ${t0 + t} +0000\ndata ${msg.length}\n${msg}\n`);
    } else {
      await write(`reset refs/tags/light-${t}\nfrom :${target}\n\n`);
    }
  }
  out.end();
  await done;
  // Incompressible blobs make upload-pack's delta search the slowest part of a clone; the real service answers
  // from precomputed packs, so the stand-in skips it for these repositories.
  await git(['--git-dir', repo.gitDir, 'config', 'pack.window', '0']);
  await git(['--git-dir', repo.gitDir, 'symbolic-ref', 'HEAD', `refs/heads/${branch}`]);
  const refs = await refMap(repo.gitDir);
  return {
    head: refs[`refs/heads/${branch}`], commits, bytes: opts.sizeBytes, lfsOids,
    lfsBytes: opts.lfsBytes ?? 0, refs,
  };
}

/** Size of part `i` when `total` is split into `parts` nearly equal parts. */
function share(total: number, parts: number, i: number): number {
  const base = Math.floor(total / parts);
  return base + (i < total % parts ? 1 : 0);
}

async function writeLfsObject(standin: DevOpsStandIn, repo: StandInRepo, seed: string, size: number): Promise<string> {
  const dir = path.join(standin.root, 'lfs', repo.id);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `incoming-${crypto.randomBytes(6).toString('hex')}`);
  const hash = crypto.createHash('sha256');
  const stream = seededStream(seed);
  const fd = fs.openSync(tmp, 'w');
  try {
    const chunk = Buffer.alloc(1 << 20);
    for (let left = size; left > 0; left -= chunk.length) {
      const data = stream.update(left >= chunk.length ? chunk : chunk.subarray(0, left));
      hash.update(data);
      fs.writeSync(fd, data);
    }
  } finally {
    fs.closeSync(fd);
  }
  const oid = hash.digest('hex');
  const file = standin.lfsObjectPath(repo, oid);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.renameSync(tmp, file);
  return oid;
}

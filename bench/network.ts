// The bench's network sections' parts: a copy of the corpus behind the modelled link (bench/netmodel.ts), a request
// counter in front of Azurite, commits pushed into the stand-in's repositories between runs, and the
// 5,000-repository organization run twice with `incremental`.
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as path from 'path';
import { DevOpsStandIn, Project, RequestLogEntry, StandInRepo } from '../test/harness/devops-standin';
import { addManyRepos } from '../test/harness/bulk';
import { runTask } from '../test/harness/run-task';
import { git, tmpDir } from '../test/harness/util';
import { BenchRepo } from './corpus';
import { Link } from './netmodel';

const ROOT = path.resolve(__dirname, '../..');

/** True when this build's RepoBackup@1 has an input named `incremental` (it is being added separately). */
export function incrementalAvailable(): boolean {
  const task = JSON.parse(fs.readFileSync(path.join(ROOT, 'tasks/RepoBackup/RepoBackupV1/task.json'), 'utf8')) as { inputs: Array<{ name: string }> };
  return task.inputs.some((i) => i.name === 'incremental');
}
export const INCREMENTAL_MISSING = 'incremental not available in this build';

/** A stand-in whose URLs all point at `link.forward(<its port>)`: everything the task does with it crosses the link. */
export async function standInBehind(link: Link, opts: { org: string; root: string; token: string }): Promise<DevOpsStandIn> {
  const standin = await DevOpsStandIn.start({ org: opts.org, root: opts.root, tokens: { bearer: [opts.token] } });
  standin.publicPort = await link.forward(standin.listenPort);
  return standin;
}

/**
 * The same corpus in `target` (ids, names, projects, bare repositories copied as files, LFS objects copied), so that
 * the network variants serve exactly the bytes the local ones do.
 */
export function copyCorpus(source: DevOpsStandIn, corpus: BenchRepo[], target: DevOpsStandIn): BenchRepo[] {
  const projects = new Map<string, Project>();
  return corpus.map((r) => {
    let project = projects.get(r.project);
    if (!project) {
      project = target.addProject(r.project);
      projects.set(r.project, project);
    }
    const repo = target.addRepo(project, r.name, { id: r.repo.id, template: r.repo.gitDir });
    const lfs = path.join(source.root, 'lfs', r.repo.id);
    if (fs.existsSync(lfs)) fs.cpSync(lfs, path.join(target.root, 'lfs', r.repo.id), { recursive: true });
    if (r.disabled) target.setRepoDisabled(repo.id, true);
    return { ...r, repo };
  });
}

/**
 * One new commit on the default branch of each repository, written straight into the stand-in's bare repository
 * (as a push would leave it). Returns the undo (the branches moved back), for the variants that follow.
 */
export async function commitTo(repos: StandInRepo[], label: string): Promise<() => Promise<void>> {
  const moved: Array<{ gitDir: string; ref: string; old: string }> = [];
  const env = { GIT_AUTHOR_NAME: 'Bench', GIT_AUTHOR_EMAIL: 'bench@example.com', GIT_COMMITTER_NAME: 'Bench', GIT_COMMITTER_EMAIL: 'bench@example.com' };
  for (const r of repos) {
    const gitDir = r.gitDir;
    const ref = (await git(['--git-dir', gitDir, 'symbolic-ref', 'HEAD'])).trim();
    const old = (await git(['--git-dir', gitDir, 'rev-parse', '--verify', '-q', ref]).catch(() => '')).trim();
    if (!old) continue; // empty repository: nothing to build on
    const blob = (await git(['--git-dir', gitDir, 'hash-object', '-w', '--stdin'], { input: `${label} ${r.id} ${Date.now()}\n` })).trim();
    const index = path.join(tmpDir('bench-index'), 'index');
    const ienv = { ...env, GIT_INDEX_FILE: index };
    await git(['--git-dir', gitDir, 'read-tree', old], { env: ienv });
    await git(['--git-dir', gitDir, 'update-index', '--add', '--cacheinfo', `100644,${blob},bench-change-${label}.txt`], { env: ienv });
    const tree = (await git(['--git-dir', gitDir, 'write-tree'], { env: ienv })).trim();
    const commit = (await git(['--git-dir', gitDir, 'commit-tree', tree, '-p', old, '-m', `bench: ${label}`], { env })).trim();
    await git(['--git-dir', gitDir, 'update-ref', ref, commit, old]);
    moved.push({ gitDir, ref, old });
  }
  return async () => {
    for (const m of moved) await git(['--git-dir', m.gitDir, 'update-ref', m.ref, m.old]);
  };
}

// ---------------------------------------------------------------- request counts

export type Counts = Record<string, number>;

/** The stand-in's request log by kind: REST, info/refs (ref advertisement), git-upload-pack (POST), LFS, other git. */
export function standInCounts(log: readonly RequestLogEntry[]): Counts {
  const c: Counts = {};
  for (const r of log) {
    const kind = r.route === 'rest' ? 'REST' : r.route === 'lfs' ? 'LFS'
      : r.url.includes('/info/refs') ? 'info/refs' : /git-upload-pack/.test(r.url) && r.method === 'POST' ? 'upload-pack' : 'other git';
    c[kind] = (c[kind] ?? 0) + 1;
  }
  return c;
}

/** A Blob request's kind, from what the service sees (method, query, copy headers). */
export function blobKind(method: string, url: string, headers: http.IncomingHttpHeaders): string {
  const q = new URL(url, 'http://x').searchParams;
  const comp = q.get('comp');
  if (headers['x-ms-copy-source']) {
    if (comp === 'block') return 'copy: Put Block From URL';
    if (headers['x-ms-blob-type']) return 'copy: Put Blob From URL';
    if (String(headers['x-ms-requires-sync']).toLowerCase() === 'true') return 'copy: Copy Blob From URL';
    return 'copy: Copy Blob (async)';
  }
  if (comp === 'list') return 'list';
  if (method === 'GET') return comp ? `get (${comp})` : 'get: download';
  if (method === 'HEAD') return 'get: properties';
  if (method === 'PUT') {
    if (comp === 'block') return 'put: block';
    if (comp === 'blocklist') return 'put: block list';
    if (comp) return `put: ${comp}`;
    return q.get('restype') ? `put: ${q.get('restype')}` : 'put: blob';
  }
  return `${method.toLowerCase()}${comp ? ` (${comp})` : ''}`;
}

export interface BlobCounter {
  /** `http://127.0.0.1:<port>`: Azurite's origin through the counter. */
  origin: string;
  port: number;
  counts: Counts;
  reset(): void;
  stop(): Promise<void>;
}

/** An HTTP forwarder in front of Azurite that counts requests by kind (header values are never kept). */
export async function startBlobCounter(blobUrl: string): Promise<BlobCounter> {
  const target = new URL(blobUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  let counts: Counts = {};
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    const kind = blobKind(req.method ?? 'GET', req.url ?? '/', req.headers);
    counts[kind] = (counts[kind] ?? 0) + 1;
    const out = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host }, agent }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    get counts() { return counts; },
    reset() { counts = {}; },
    stop: async () => {
      for (const s of sockets) s.destroy();
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** `url` with its origin replaced (path and query kept). */
export function withOrigin(url: string, origin: string): string {
  const u = new URL(url);
  return origin + u.pathname + u.search;
}

/** `System.PipelineStartTime` as the agent writes it, for a run starting now (each incremental run is a later run). */
export function pipelineStart(at = new Date()): string {
  return at.toISOString().slice(0, 19).replace('T', ' ') + '+00:00';
}

export interface ManifestSummary { entries: number; reused: number; ok: number; failed: number }

/** Reads every manifest of the container under `manifests/<org>/` whose name contains `runId`. */
export async function manifestSummary(list: () => AsyncIterable<{ name: string }>, download: (name: string) => Promise<Buffer>, runId: string): Promise<ManifestSummary> {
  const s: ManifestSummary = { entries: 0, reused: 0, ok: 0, failed: 0 };
  for await (const b of list()) {
    if (!b.name.includes(`/${runId}.`) || !b.name.endsWith('.json')) continue;
    const m = JSON.parse((await download(b.name)).toString('utf8')) as { repositories?: Array<{ status: string; reusedFrom?: unknown }> };
    for (const r of m.repositories ?? []) {
      s.entries++;
      if (r.reusedFrom) s.reused++;
      if (r.status === 'ok') s.ok++;
      if (r.status === 'failed') s.failed++;
    }
  }
  return s;
}

// ---------------------------------------------------------------- a big organization, incremental

export interface OrgRun { label: string; wallMs: number; result: string; standin: Counts; blob: Counts; manifest?: ManifestSummary; note?: string }
export interface OrgScaleResult { repos: number; changed: number; firstConcurrency: number; runs: OrgRun[]; buildMs: number }

/**
 * `repos` tiny repositories (copies of one, test/harness/bulk.ts) behind the link: a first run with `incremental`
 * (at `firstConcurrency` and without verify, to save bench time), 1% of the repositories get a commit, then a second run with the
 * defaults + `incremental`, its requests counted by kind at the stand-in and at the Blob counter.
 */
export async function orgScale(opts: {
  entry: string; link: Link; blobCounter: BlobCounter; sasUrl: string; repos: number; firstConcurrency: number;
  containerList: (prefix: string) => AsyncIterable<{ name: string }>; download: (name: string) => Promise<Buffer>;
  log: (msg: string) => void;
}): Promise<OrgScaleResult> {
  const token = `bench-org-token-${process.pid}`;
  const standin = await standInBehind(opts.link, { org: 'bigorg', root: tmpDir('bench-bigorg'), token });
  try {
    const t = Date.now();
    const bulk = await addManyRepos(standin, 'Fleet', opts.repos);
    const buildMs = Date.now() - t;
    opts.log(`${opts.repos} repositories made in ${(buildMs / 1000).toFixed(1)} s`);
    const sasUrl = withOrigin(opts.sasUrl, `http://127.0.0.1:${await opts.link.forward(opts.blobCounter.port)}`);
    const runs: OrgRun[] = [];
    const run = async (label: string, buildId: string, inputs: Record<string, string>) => {
      standin.clearLog();
      opts.blobCounter.reset();
      const r = await runTask(opts.entry, {
        inputs: { sasUrl, incremental: 'true', ...inputs }, orgUrl: standin.orgUrl, token, tempDir: tmpDir(`bench-bigorg-${buildId}`),
        variables: { 'Build.BuildId': buildId, 'System.PipelineStartTime': pipelineStart() }, timeoutMs: 40 * 60_000,
      });
      const one: OrgRun = {
        label, wallMs: r.durationMs, result: r.result?.result ?? 'none', standin: standInCounts(standin.requests), blob: { ...opts.blobCounter.counts },
        manifest: await manifestSummary(() => opts.containerList(`manifests/${standin.org}/`), opts.download, buildId).catch(() => undefined),
      };
      if (one.result !== 'Succeeded') one.note = `${r.result?.message ?? ''}`.split('\n')[0].slice(0, 300);
      runs.push(one);
      opts.log(`${label}: ${(one.wallMs / 1000).toFixed(1)} s, ${one.result}; stand-in ${JSON.stringify(one.standin)}; Blob ${JSON.stringify(one.blob)}`);
      return one;
    };
    // verify off in both runs, to save bench time (one git fsck per repository); a run with verify on would not reuse these.
    await run(`first run (concurrency ${opts.firstConcurrency}, verify false)`, '810001', { concurrency: String(opts.firstConcurrency), verify: 'false' });
    const changed = bulk.repos.filter((_, i) => i % 100 === 50);
    await commitTo(changed, 'org-1pct');
    // The same archive settings as the first run (an archive made without verify is never reused by a run with verify).
    await run(`second run, ${changed.length} of ${opts.repos} changed (defaults, verify false)`, '810002', { verify: 'false' });
    return { repos: opts.repos, changed: changed.length, firstConcurrency: opts.firstConcurrency, runs, buildMs };
  } finally {
    await standin.stop();
  }
}

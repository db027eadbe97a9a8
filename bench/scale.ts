// Discovery and planning at organization scale: 5,000 repositories in 300 projects, listed by the stand-in
// (virtual repositories: listed with a size, nothing on disk), backed up by RepoBackup@1 in a dry run.
// Also: memory at 500 vs 5,000 repositories, 429 + Retry-After on the REST calls, and the 4-job shard plan.
import * as crypto from 'crypto';
import { DevOpsStandIn } from '../test/harness/devops-standin';
import { runTask } from '../test/harness/run-task';
import { tmpDir } from '../test/harness/util';
import { makePlan } from '../tasks/RepoBackup/RepoBackupV1/src/plan';
import { parseFilter } from '../tasks/RepoBackup/RepoBackupV1/src/filter';
import { RepoInfo } from '../tasks/common/src/devops';
import { watch } from './monitor';

export interface ScaleRow { label: string; wallMs: number; rss: number; rest: number }

export interface ScaleResults {
  repos: number;
  projects: number;
  smallRepos: number;
  /** Clean 5,000-repository dry run. */
  wallMs: number;
  rss: number;
  smallRss: number;
  restRequests: number;
  throttle: { ok: boolean; note: string };
  rows: ScaleRow[];
  shardCounts: number[];
  shardBytes: number[];
  shardMaxOverMean: number;
  planMs: number;
}

const REPOS = 5000;
const PROJECTS = 300;
const SMALL = 500;
const RETRY_AFTER = 2;

/** Deterministic, heavy-tailed sizes: most repositories small, a few up to ~2 GB. */
function sizeOf(i: number): number {
  const u = crypto.createHash('sha256').update(`size/${i}`).digest().readUInt32BE(0) / 2 ** 32;
  return Math.round(2 ** (12 + 19 * u ** 3)); // 4 KB … 2 GB
}

const idOf = (i: number) => `00000000-5ca1-4000-8000-${String(i).padStart(12, '0')}`;

async function org(repos: number): Promise<DevOpsStandIn> {
  const token = 'scale-job-token';
  const standin = await DevOpsStandIn.start({ org: 'scaleorg', root: tmpDir('scale-standin'), tokens: { bearer: [token] } });
  const projects = Array.from({ length: Math.min(PROJECTS, repos) }, (_, p) => standin.addProject(`Project ${String(p + 1).padStart(3, '0')}`));
  for (let i = 0; i < repos; i++) {
    const project = projects[i % projects.length];
    // One wiki per 10 projects, the rest ordinary repositories.
    const wiki = i < projects.length && i % 10 === 0;
    standin.addRepo(project, wiki ? `${project.name}.wiki` : `repo-${String(i).padStart(5, '0')}`, {
      id: idOf(i), virtual: true, listedSize: sizeOf(i), wiki,
    });
  }
  return standin;
}

async function dryRun(entry: string, standin: DevOpsStandIn, sasUrl: string, label: string) {
  standin.clearLog();
  const tempDir = tmpDir('scale-run');
  let mon: ReturnType<typeof watch> | undefined;
  const run = await runTask(entry, {
    inputs: { sasUrl, dryRun: 'true' }, orgUrl: standin.orgUrl, token: standin.tokens.bearer[0], tempDir,
    variables: { 'Build.BuildId': `scale-${label.replace(/\W+/g, '-')}` },
    onSpawn: (child) => { mon = watch(child.pid!, []); },
  });
  const m = await mon!.stop();
  if (run.result?.result !== 'Succeeded') throw new Error(`dry run ${label}: ${run.result?.result} ${run.result?.message}\n${run.lines.slice(-20).join('\n')}`);
  const rest = standin.requests.filter((r) => r.route === 'rest');
  return { run, row: { label, wallMs: run.durationMs, rss: m.rootPeakRss, rest: rest.length } as ScaleRow, rest };
}

export async function runScale(entry: string, sasUrl: string): Promise<ScaleResults> {
  const rows: ScaleRow[] = [];
  const small = await org(SMALL);
  let smallRss = 0;
  try {
    const { row } = await dryRun(entry, small, sasUrl, `${SMALL} repositories`);
    rows.push(row);
    smallRss = row.rss;
  } finally {
    await small.stop();
  }

  const big = await org(REPOS);
  try {
    const clean = [];
    for (let i = 0; i < 2; i++) {
      const { row } = await dryRun(entry, big, sasUrl, `${REPOS.toLocaleString('en')} repositories${i ? ' (again)' : ''}`);
      rows.push(row);
      clean.push(row);
    }
    const best = clean.reduce((a, b) => (b.wallMs < a.wallMs ? b : a));

    big.faults.throttleRest = { count: 2, retryAfterSeconds: RETRY_AFTER };
    const throttled = await dryRun(entry, big, sasUrl, `${REPOS.toLocaleString('en')} repositories, first 2 REST requests answered 429 + Retry-After: ${RETRY_AFTER}`);
    rows.push(throttled.row);
    const got429 = throttled.rest.filter((r) => r.status === 429).length;
    const waits = throttled.run.lines.filter((l) => new RegExp(`retrying in ${RETRY_AFTER}\\.0 s`).test(l)).length;
    const extra = throttled.row.wallMs - best.wallMs;
    const ok = got429 === 2 && waits === 2 && extra >= RETRY_AFTER * 2 * 1000 * 0.9;
    const note = `${got429} × 429 served, ${waits} waits of ${RETRY_AFTER}.0 s logged, run ${(extra / 1000).toFixed(1)} s longer than the clean run, result ${throttled.run.result?.result}`;

    // The shard plan every job computes from the same listing.
    const repos: RepoInfo[] = big.listRepos().map((r) => ({
      id: r.id, name: r.name, project: { id: r.project.id, name: r.project.name }, remoteUrl: r.cloneUrl,
      size: r.listedSize ?? 0, isDisabled: false, isInMaintenance: false, isWiki: r.isWiki,
    }));
    const filter = parseFilter(undefined);
    const shardCounts: number[] = [];
    const shardBytes: number[] = [];
    const seen = new Set<string>();
    const t = process.hrtime.bigint();
    for (let position = 1; position <= 4; position++) {
      const plan = makePlan({
        repos, filter, includeWikis: true, format: 'zip', shard: { position, total: 4 }, organization: 'scaleorg',
        runId: '1', attempt: 1, startedAt: new Date(),
      });
      shardCounts.push(plan.selected.length);
      shardBytes.push(plan.selected.reduce((s, p) => s + p.repo.size, 0));
      for (const p of plan.selected) {
        if (seen.has(p.repo.id)) throw new Error(`shard plan: ${p.repo.id} in two shards`);
        seen.add(p.repo.id);
      }
    }
    const planMs = Number(process.hrtime.bigint() - t) / 1e6 / 4;
    if (seen.size !== repos.length) throw new Error(`shard plan: ${repos.length - seen.size} repositories in no shard`);
    const mean = shardBytes.reduce((a, b) => a + b, 0) / 4;
    return {
      repos: REPOS, projects: PROJECTS, smallRepos: SMALL, wallMs: best.wallMs, rss: Math.max(...clean.map((r) => r.rss)), smallRss,
      restRequests: best.rest, throttle: { ok, note }, rows, shardCounts, shardBytes, shardMaxOverMean: Math.max(...shardBytes) / mean, planMs,
    };
  } finally {
    await big.stop();
  }
}

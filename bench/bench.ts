// `npm run bench` (`-- --quick` for a smaller corpus): RepoBackup@1 against the seed pipeline's way and against
// the floor (mirror + LFS fetch, nothing else), on one deterministic corpus served by the Azure DevOps stand-in,
// uploading to one Azurite; then memory vs repository size, the sharded run, discovery at 5,000 repositories and
// the task's cold start. Prints the results and writes bench/results.md. Targets are reported, never asserted.
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { startAzurite, AzuriteHandle } from '../test/harness/azurite';
import { DevOpsStandIn } from '../test/harness/devops-standin';
import { runTask, TaskRun } from '../test/harness/run-task';
import { cleanupAll, tmpDir } from '../test/harness/util';
import { BenchRepo, buildCorpus, corpusSpec } from './corpus';
import { MonitorResult, watch } from './monitor';
import { profileRun, stageBreakdown, StageRow } from './profile';
import { runScale, ScaleResults } from './scale';
import { streamBench, StreamBenchRow, streamBenchMarkdown } from './encryption';
import { generateIdentity } from '../tasks/common/src/encryption';
import { Link, linkFromEnv } from './netmodel';
import {
  BlobCounter, commitTo, copyCorpus, Counts, incrementalAvailable, INCREMENTAL_MISSING, ManifestSummary, manifestSummary, orgScale,
  OrgScaleResult, pipelineStart, standInBehind, standInCounts, startBlobCounter, withOrigin,
} from './network';

const ROOT = path.resolve(__dirname, '../..');
// --entry <file>: development aid, run another entry (e.g. a wrapper that samples memory) as the task.
const ENTRY = path.resolve(argValue('--entry') ?? path.join(ROOT, 'tasks/RepoBackup/RepoBackupV1/dist/index.js'));
const QUICK = process.argv.includes('--quick');
const ROUNDS = Number(argValue('--rounds') ?? (QUICK ? 2 : 3));
const CONCURRENCY = 4; // the task's default
const CONTAINER = 'bench';
const MB = 1 << 20;

// Sections (BENCH_ONLY=…): `local` is the comparison with no network plus memory, shards, scale and cold start; the
// others run over the modelled link (bench/netmodel.ts); BENCH_ONLY=network runs those four.
type Section = 'local' | 'net-compare' | 'sweep' | 'incremental' | 'org';
const ALL_SECTIONS: Section[] = ['local', 'net-compare', 'sweep', 'incremental', 'org'];
const NETWORK_SECTIONS: Section[] = ['net-compare', 'sweep', 'incremental', 'org'];
const NET_BEGIN = '<!-- network sections: begin (BENCH_ONLY=network npm run bench rewrites this block) -->';
const NET_END = '<!-- network sections: end -->';
/** Fixed lane counts, and 0 = the default `auto` (adaptive lanes). */
const SWEEP = [1, 2, 4, 8, 16, 0];
const laneLabel = (c: number) => (c === 0 ? 'auto' : String(c));
const SWEEP_ROUNDS = Number(process.env.BENCH_SWEEP_ROUNDS ?? 1);
const ORG_REPOS = Number(process.env.BENCH_ORG_REPOS ?? 5000);

type Variant = 'seed' | 'floor' | 'repobackup' | 'encrypted' | 'folder';
const LABEL: Record<Variant, string> = {
  seed: 'seed way', floor: 'floor', repobackup: 'RepoBackup@1', encrypted: 'RepoBackup@1 + encryptionRecipients (age)',
  folder: 'RepoBackup@1 → folder on tmpfs (diagnostic)',
};
/** The recipient of the encrypted variant (its identity is thrown away: the bench never decrypts). */
const BENCH_RECIPIENT = generateIdentity().recipient;

interface Measure extends MonitorResult {
  /** CPU seconds of the stand-in (this process and its git http-backend children) and of Azurite meanwhile. */
  serverCpu: number;
  azuriteCpu: number;
  /** 1-minute load average when the run started (other sessions on the machine show up here). */
  loadBefore: number;
  variant: Variant;
  round: number;
  wallMs: number;
  uploaded: number;
  blobs: number;
}

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const log = (msg: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const mb = (b: number) => `${(b / MB).toFixed(b < 10 * MB ? 1 : 0)} MB`;
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** git, git-lfs and zip (the seed way needs it): scripts/ensure-tools.sh installs what is missing (apt-get). */
function ensureTools() {
  execFileSync('bash', [path.join(ROOT, 'scripts/ensure-tools.sh'), 'zip'], { stdio: 'inherit' });
  if (!fs.existsSync(ENTRY)) throw new Error(`${ENTRY} is missing: npm run build`);
}

/** The seed's uploader, bundled into one file so each `node upload.js` starts fast (azcopy's role). */
async function bundleUploader(): Promise<string> {
  const out = path.join(ROOT, 'build/bench/upload.bundle.js');
  const esbuild = await import('esbuild');
  await esbuild.build({
    entryPoints: [path.join(ROOT, 'build/bench/upload.js')], bundle: true, platform: 'node', target: 'node20',
    outfile: out, minify: true, logLevel: 'warning',
  });
  return out;
}

interface Env {
  standin: DevOpsStandIn;
  azurite: AzuriteHandle;
  token: string;
  sasUrl: string;
  uploader: string;
  corpus: BenchRepo[];
  /** Clone URLs of the repositories the task backs up, largest first (the task's order), for the floor. */
  floorList: string;
}

/** What the task stored (archives/<org>/… and manifests/<org>/…), then removed for the next run. */
async function taskBlobTotals(env: Env): Promise<{ bytes: number; blobs: number }> {
  const up = { bytes: 0, blobs: 0 };
  for (const prefix of [`archives/${env.standin.org}/`, `manifests/${env.standin.org}/`]) {
    const t = await blobTotals(env, prefix);
    up.bytes += t.bytes;
    up.blobs += t.blobs;
  }
  return up;
}

async function blobTotals(env: Env, prefix: string, remove = true): Promise<{ bytes: number; blobs: number }> {
  const container = env.azurite.serviceClient().getContainerClient(CONTAINER);
  let bytes = 0;
  let blobs = 0;
  const names: string[] = [];
  for await (const b of container.listBlobsFlat({ prefix })) {
    bytes += b.properties.contentLength ?? 0;
    blobs++;
    names.push(b.name);
  }
  if (remove) for (const n of names) await container.deleteBlob(n).catch(() => undefined);
  return { bytes, blobs };
}

/** Runs a shell script with the monitor on its process tree; rejects with its output when it fails. */
async function runScript(script: string, env: NodeJS.ProcessEnv, dirs: string[]): Promise<{ wallMs: number; mon: MonitorResult }> {
  const started = Date.now();
  const child: ChildProcess = spawn('bash', [path.join(ROOT, 'bench', script)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const mon = watch(child.pid!, dirs);
  let output = '';
  const keep = (d: Buffer) => { output = (output + d.toString()).slice(-20_000); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const wallMs = Date.now() - started;
  const result = await mon.stop();
  if (code !== 0) throw new Error(`${script} failed (${code}):\n${output}`);
  return { wallMs, mon: result };
}

function scriptEnv(home: string, extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(GIT_|INPUT_|SYSTEM_|AGENT_|BUILD_)/.test(k)) env[k] = v;
  return { ...env, HOME: home, ...extra };
}

async function runSeed(env: Env, round: number): Promise<Measure> {
  const work = tmpDir(`seed-${round}`);
  const home = tmpDir(`seed-home-${round}`);
  const prefix = `seed-${round}/`;
  const { wallMs, mon } = await runScript('seed.sh', scriptEnv(home, {
    ORG_URL: env.standin.orgUrl, TOKEN: env.token, SAS_URL: env.sasUrl, WORK: work, UPLOADER: env.uploader, BLOB_PREFIX: prefix,
  }), [work]);
  const up = await blobTotals(env, prefix);
  fs.rmSync(work, { recursive: true, force: true });
  return { variant: 'seed', round, wallMs, ...mon, uploaded: up.bytes, blobs: up.blobs, serverCpu: 0, azuriteCpu: 0, loadBefore: 0 };
}

async function runFloor(env: Env, round: number): Promise<Measure> {
  const work = tmpDir(`floor-${round}`);
  const home = tmpDir(`floor-home-${round}`);
  const list = path.join(tmpDir('floor-list'), 'list.txt');
  fs.writeFileSync(list, env.floorList);
  const origin = new URL(env.standin.orgUrl).origin + '/';
  const { wallMs, mon } = await runScript('floor.sh', scriptEnv(home, {
    LIST: list, CONCURRENCY: String(CONCURRENCY), WORK: work, GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_COUNT: '2', GIT_CONFIG_KEY_0: 'credential.helper', GIT_CONFIG_VALUE_0: '',
    GIT_CONFIG_KEY_1: `http.${origin}.extraheader`, GIT_CONFIG_VALUE_1: `AUTHORIZATION: Bearer ${env.token}`,
  }), [work]);
  fs.rmSync(work, { recursive: true, force: true });
  return { variant: 'floor', round, wallMs, ...mon, uploaded: 0, blobs: 0, serverCpu: 0, azuriteCpu: 0, loadBefore: 0 };
}

interface TaskMeasure { run: TaskRun; wallMs: number; mon: MonitorResult }

/** Runs RepoBackup@1 as the agent does (runTask) with the monitor on its process tree. */
async function runBackupTask(env: Env, name: string, inputs: Record<string, string>, variables: Record<string, string> = {}, timeline = false, accept = ['Succeeded']): Promise<TaskMeasure> {
  const tempDir = tmpDir(name);
  let mon: ReturnType<typeof watch> | undefined;
  const run = await runTask(ENTRY, {
    inputs: { sasUrl: env.sasUrl, ...inputs }, orgUrl: env.standin.orgUrl, token: env.token, tempDir,
    variables: { 'Build.BuildId': name, ...variables },
    onSpawn: (child) => { mon = watch(child.pid!, [tempDir], 50, timeline); },
  });
  const result = await mon!.stop();
  if (process.env.BENCH_DUMP_TASK_OUTPUT) fs.writeFileSync(process.env.BENCH_DUMP_TASK_OUTPUT, run.stdout);
  if (!accept.includes(run.result?.result ?? '')) {
    throw new Error(`RepoBackup (${name}) ended ${run.result?.result}: ${run.result?.message}\n${run.lines.filter((l) => !l.startsWith('##vso[task.debug')).slice(-40).join('\n')}\n${run.stderr}`);
  }
  fs.rmSync(tempDir, { recursive: true, force: true });
  return { run, wallMs: run.durationMs, mon: result };
}

/**
 * Diagnostic: the same task writing to a folder in memory (tmpfs) instead of Azurite, so that the storage
 * emulator's CPU does not compete with it: the engine's own cost over the floor.
 */
async function runFolder(env: Env, round: number): Promise<Measure> {
  const shm = '/dev/shm';
  const base = fs.existsSync(shm) && fs.statfsSync(shm).bavail * fs.statfsSync(shm).bsize > 4 * env.corpus.reduce((s, c) => s + c.bytes + (c.lfsBytes ?? 0), 0)
    ? fs.mkdtempSync(path.join(shm, 'repobackup-bench-')) : tmpDir('folder-dest');
  try {
    const { wallMs, mon } = await runBackupTask(env, `bench-folder-${round}`, { destination: 'folder', folderPath: base });
    let bytes = 0;
    let blobs = 0;
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(path.join(d, e.name));
        else if (!e.name.endsWith('.sha256')) { bytes += fs.statSync(path.join(d, e.name)).size; blobs++; }
      }
    };
    walk(base);
    return { variant: 'folder', round, wallMs, ...mon, uploaded: bytes, blobs, serverCpu: 0, azuriteCpu: 0, loadBefore: 0 };
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
}

async function runRepoBackup(env: Env, round: number, encrypted = false): Promise<Measure> {
  const name = `bench-${encrypted ? 'enc' : 'rb'}-${round}`;
  // --inputs k=v,k=v: development aid, extra task inputs for the RepoBackup variant (e.g. concurrency=2).
  const extra = Object.fromEntries((argValue('--inputs') ?? '').split(',').filter(Boolean).map((kv) => kv.split('=') as [string, string]));
  const { wallMs, mon } = await runBackupTask(env, name, encrypted ? { ...extra, encryptionRecipients: BENCH_RECIPIENT } : extra, {}, !encrypted);
  const up = await taskBlobTotals(env);
  return { variant: encrypted ? 'encrypted' : 'repobackup', round, wallMs, ...mon, uploaded: up.bytes, blobs: up.blobs, serverCpu: 0, azuriteCpu: 0, loadBefore: 0 };
}

/** utime+stime+cutime+cstime of a process, seconds. */
function procCpu(pid: number | string): number {
  try {
    const t = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = t.slice(t.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
  } catch {
    return 0;
  }
}

/** This process (the stand-in serving REST, git and LFS) plus its reaped children (git http-backend…); minus nothing. */
const selfTreeCpu = () => procCpu('self');

let azuritePid: number | undefined;
function azuriteCpu(): number {
  if (azuritePid === undefined) {
    for (const name of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const cmd = fs.readFileSync(`/proc/${name}/cmdline`, 'latin1');
        const stat = fs.readFileSync(`/proc/${name}/stat`, 'latin1');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid === process.pid && cmd.includes('azurite')) azuritePid = Number(name);
      } catch { /* gone */ }
    }
  }
  return azuritePid ? procCpu(azuritePid) : 0;
}

// ---------------------------------------------------------------- extra measurements

interface SizePoint { repo: string; bytes: number; wallMs: number; taskRss: number; childRss: number; disk: number }

async function rssBySize(env: Env): Promise<SizePoint[]> {
  const medium = env.corpus.filter((r) => r.kind === 'medium').sort((a, b) => a.bytes - b.bytes);
  const picks = [medium[0], env.corpus.find((r) => r.name === 'monorepo')!];
  const out: SizePoint[] = [];
  for (const r of picks) {
    const { wallMs, mon } = await runBackupTask(env, `bench-size-${r.name}`, { repositories: `${r.project}/${r.name}` });
    await taskBlobTotals(env);
    out.push({ repo: `${r.project}/${r.name}`, bytes: r.bytes + (r.lfsBytes ?? 0), wallMs, taskRss: mon.rootPeakRss, childRss: mon.childrenPeakRss, disk: mon.diskPeak });
  }
  return out;
}

interface ShardJob { position: number; wallMs: number; repos: number; listedBytes: number; archiveBytes: number; taskRss: number }
interface ShardResult { jobs: ShardJob[]; everyRepoOnce: boolean; missing: string[]; duplicated: string[]; totalWallMs: number; idealBytes: number }

async function shardedRun(env: Env): Promise<ShardResult> {
  const total = 4;
  const jobs: ShardJob[] = [];
  const name = 'bench-shard';
  const listedSize = new Map(env.corpus.map((r) => [r.repo.id, Number(env.standin.repoJson(r.repo).size)]));
  for (let position = 1; position <= total; position++) {
    const { wallMs, mon, run } = await runBackupTask(env, `${name}-${position}`, {}, {
      'Build.BuildId': name, 'System.TotalJobsInPhase': String(total), 'System.JobPositionInPhase': String(position), 'System.ParallelExecutionType': 'MultiMachine',
    });
    void run;
    jobs.push({ position, wallMs, repos: 0, listedBytes: 0, archiveBytes: 0, taskRss: mon.rootPeakRss });
  }
  // Read the four manifests back (account key: the task's SAS cannot read).
  const container = env.azurite.serviceClient().getContainerClient(CONTAINER);
  const seen = new Map<string, number>();
  for await (const b of container.listBlobsFlat({ prefix: `manifests/${env.standin.org}/` })) {
    const m = /manifest\.job-(\d+)-of-4\.json$/.exec(b.name);
    if (!m) continue;
    const job = jobs[Number(m[1]) - 1];
    const manifest = JSON.parse((await container.getBlobClient(b.name).downloadToBuffer()).toString('utf8')) as {
      repositories: Array<{ id: string; status: string; size: number | null }>;
    };
    for (const r of manifest.repositories) {
      seen.set(r.id, (seen.get(r.id) ?? 0) + 1);
      job.repos++;
      job.listedBytes += listedSize.get(r.id) ?? 0;
      job.archiveBytes += r.size ?? 0;
    }
  }
  await taskBlobTotals(env);
  const ids = env.corpus.map((r) => r.repo.id);
  const missing = ids.filter((id) => !seen.has(id));
  const duplicated = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
  const sizes = [...listedSize.values()];
  return {
    jobs, everyRepoOnce: missing.length === 0 && duplicated.length === 0 && seen.size === ids.length, missing, duplicated,
    totalWallMs: jobs.reduce((s, j) => s + j.wallMs, 0), idealBytes: Math.max(sizes.reduce((a, b) => a + b, 0) / total, ...sizes),
  };
}

interface ColdStart { runs: number[]; nodeBaseline: number[] }

/** Spawn → input validation failure (no sasUrl): loading the 2.7 MB bundle, task-lib, reading inputs. */
async function coldStart(env: Env): Promise<ColdStart> {
  const runs: number[] = [];
  const nodeBaseline: number[] = [];
  for (let i = 0; i < 5; i++) {
    const run = await runTask(ENTRY, { inputs: {}, orgUrl: env.standin.orgUrl, token: env.token, tempDir: tmpDir('cold') });
    if (run.result?.result !== 'Failed' || !/sasUrl/.test(run.result.message)) throw new Error(`cold start run: ${run.result?.message}`);
    runs.push(run.durationMs);
    const t = Date.now();
    execFileSync(process.execPath, ['-e', '0']);
    nodeBaseline.push(Date.now() - t);
  }
  return { runs, nodeBaseline };
}

// ---------------------------------------------------------------- report

function machine(): string[] {
  const v = (cmd: string, args: string[]) => { try { return execFileSync(cmd, args, { encoding: 'utf8' }).trim().split('\n')[0]; } catch { return 'n/a'; } };
  return [
    `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GB RAM, ${os.platform()} ${os.release()}`,
    `Node ${process.version}, ${v('git', ['--version'])}, ${v('git', ['lfs', 'version'])}, ${v('zip', ['-v']).replace(/^Copyright.*|^This is /, '').trim() || 'zip'}`,
  ];
}

interface Results {
  quick: boolean;
  corpus: BenchRepo[];
  corpusBuildMs: number;
  measures: Measure[];
  sizes: SizePoint[];
  shard: ShardResult;
  scale: ScaleResults;
  cold: ColdStart;
  totalMs: number;
  stages?: { rows: StageRow[]; noGitMs: number; runMs: number };
  streams?: StreamBenchRow[];
}

function report(r: Results): string {
  const by = (v: Variant) => r.measures.filter((m) => m.variant === v);
  const med = (v: Variant, f: (m: Measure) => number) => median(by(v).map(f));
  const wall = (v: Variant) => med(v, (m) => m.wallMs);
  const seedRatio = wall('seed') / wall('repobackup');
  const floorRatio = wall('repobackup') / wall('floor');
  const gitBytes = r.corpus.reduce((s, c) => s + c.bytes, 0);
  const lfsBytes = r.corpus.reduce((s, c) => s + (c.lfsBytes ?? 0), 0);
  const largestMirror = Math.max(...r.corpus.map((c) => c.bytes + (c.lfsBytes ?? 0)));
  const rb = by('repobackup');
  const taskRss = Math.max(...rb.map((m) => m.rootPeakRss), ...r.sizes.map((s) => s.taskRss));
  const rbDisk = Math.max(...rb.map((m) => m.diskPeak));
  const diskBound = CONCURRENCY * largestMirror;
  const count = (k: string) => r.corpus.filter((c) => c.kind === k).length;
  const yes = (ok: boolean) => (ok ? '**met**' : '**MISSED**');
  const cpu = (x: number) => `${x.toFixed(1)} s`;
  const variants: Variant[] = ['seed', 'floor', 'repobackup', 'encrypted', 'folder'].filter((v) => by(v as Variant).length > 0) as Variant[];
  const folderRatio = by('folder').length ? wall('folder') / wall('floor') : undefined;
  const other = (m: Measure) => Math.max(0, m.machineCpuSeconds - m.cpuSeconds - m.serverCpu - m.azuriteCpu);

  const L: string[] = [];
  L.push(`# RepoBackup bench${r.quick ? ' (--quick)' : ''}`, '');
  L.push(`Written by \`npm run bench${r.quick ? ' -- --quick' : ''}\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; the whole bench took ${secs(r.totalMs)}.`, '');
  for (const m of machine()) L.push(`- ${m}`);
  L.push(`- Corpus (deterministic, incompressible, built in ${secs(r.corpusBuildMs)}): ${r.corpus.length} repositories, ${mb(gitBytes)} of git content + ${mb(lfsBytes)} of LFS objects: ` +
    `${count('small')} small (40 KB–1.6 MB), ${count('medium')} medium (${r.corpus.filter((c) => c.kind === 'medium').map((c) => mb(c.bytes)).join(', ')}), ` +
    `${count('big')} big (${r.corpus.filter((c) => c.kind === 'big').map((c) => `${mb(c.bytes)} + ${mb(c.lfsBytes ?? 0)} LFS`).join('; ')}), ` +
    `one with 5,000 tags, one empty, one disabled. Largest mirror ${mb(largestMirror)}.`);
  L.push(`- Served by the Azure DevOps stand-in (REST, \`git http-backend\`, LFS batch API) and uploaded to Azurite, both on this machine and its ${os.cpus().length} cores.`);
  L.push(`- ${ROUNDS} rounds, the variants alternating (rotated each round); medians below. RepoBackup@1 with default inputs (container SAS \`sp=cw\`, zip, LFS, wikis, verify, concurrency ${CONCURRENCY}).`);
  L.push(`- Machine load (1-min average) before the runs: ${r.measures.map((m) => m.loadBefore.toFixed(1)).join(', ')}; the "others" column below is CPU no bench process used (other sessions, kernel).`, '');

  L.push('## Side by side', '');
  L.push('| variant | wall time (median) | runs | CPU time (its process tree) | task process peak RSS | child processes peak RSS (sum / largest) | peak extra disk | uploaded |');
  L.push('|---|---|---|---|---|---|---|---|');
  for (const v of variants) {
    L.push(`| ${LABEL[v]} | **${secs(wall(v))}** | ${by(v).map((m) => secs(m.wallMs)).join(', ')} | ${cpu(med(v, (m) => m.cpuSeconds))} | ` +
      `${v === 'repobackup' || v === 'encrypted' || v === 'folder' ? `**${mb(med(v, (m) => m.rootPeakRss))}**` : `(bash ${mb(med(v, (m) => m.rootPeakRss))})`} | ` +
      `${mb(med(v, (m) => m.childrenPeakRss))} / ${mb(med(v, (m) => m.childMaxRss))} | ${mb(med(v, (m) => m.diskPeak))} | ` +
      `${v === 'floor' ? '—' : `${mb(med(v, (m) => m.uploaded))} (${by(v)[0].blobs} ${v === 'folder' ? 'files' : 'blobs'})`} |`);
  }
  L.push('');
  L.push(`**seed / RepoBackup = ${seedRatio.toFixed(2)}×** (RepoBackup is ${seedRatio.toFixed(1)} times faster than the seed's way) · **RepoBackup / floor = ${floorRatio.toFixed(2)}×**` +
    (folderRatio ? ` · diagnostic, the same task writing to tmpfs instead of Azurite: ${(wall('folder') / wall('floor')).toFixed(2)}× the floor, ${(wall('seed') / wall('folder')).toFixed(2)}× faster than the seed` : ''), '');
  if (by('encrypted').length) {
    L.push(`**Encrypted / unencrypted = ${(wall('encrypted') / wall('repobackup')).toFixed(3)}×** (the same inputs plus \`encryptionRecipients\`, one age recipient, in the same rounds): ` +
      `${((wall('encrypted') / wall('repobackup') - 1) * 100).toFixed(1)}% wall time, CPU ${cpu(med('encrypted', (m) => m.cpuSeconds))} vs ${cpu(med('repobackup', (m) => m.cpuSeconds))}, task RSS ${mb(med('encrypted', (m) => m.rootPeakRss))} vs ${mb(med('repobackup', (m) => m.rootPeakRss))}.`, '');
  }
  if (r.streams) L.push('### Encrypting one archive stream', '', ...streamBenchMarkdown(r.streams), '');

  L.push('### Where the machine\'s CPU went (medians, seconds)', '');
  L.push('| variant | wall | its tree: orchestrator (task node / bash) | its tree: children (git, git-lfs, zip, uploader) | stand-in server (REST, http-backend, upload-pack) | Azurite | others | machine total |');
  L.push('|---|---|---|---|---|---|---|---|');
  for (const v of variants) {
    L.push(`| ${LABEL[v]} | ${secs(wall(v))} | ${cpu(med(v, (m) => m.rootCpuSeconds))} | ${cpu(med(v, (m) => m.cpuSeconds - m.rootCpuSeconds))} | ` +
      `${cpu(med(v, (m) => m.serverCpu))} | ${cpu(med(v, (m) => m.azuriteCpu))} | ${cpu(med(v, other))} | ${cpu(med(v, (m) => m.machineCpuSeconds))} |`);
  }
  L.push('');
  L.push(`With ${os.cpus().length} cores, a run that keeps them busy lasts about machine total / ${os.cpus().length}. ` +
    `RepoBackup's extra over the floor is the task process itself (archive, SHA-256 of archives and LFS objects, upload, one more git command per repository: fsck), and Azurite receiving, storing and MD5-hashing every block, which the real Blob service does elsewhere.`, '');
  if (r.stages) {
    L.push('### Where RepoBackup\'s wall time went (median run, from its process tree)', '');
    L.push('| stage | commands seen (sampled every 50 ms: shorter ones are missed) | summed over repositories | wall time with ≥ 1 running |');
    L.push('|---|---|---|---|');
    for (const s of r.stages.rows) L.push(`| ${s.stage} | ${s.commands} | ${secs(s.summedMs)} | ${secs(s.wallMs)} (${((s.wallMs / r.stages.runMs) * 100).toFixed(0)}%) |`);
    L.push(`| no git command running (start-up, listing, the task archiving + uploading alone, manifest) | | | ${secs(r.stages.noGitMs)} (${((r.stages.noGitMs / r.stages.runMs) * 100).toFixed(0)}%) |`, '');
  }

  L.push('## Targets', '');
  L.push('| target | measured | |');
  L.push('|---|---|---|');
  L.push(`| RepoBackup ≥ 3× faster than the seed way | ${seedRatio.toFixed(2)}× | ${yes(seedRatio >= 3)} |`);
  L.push(`| RepoBackup ≤ 1.25× the floor | ${floorRatio.toFixed(2)}× | ${yes(floorRatio <= 1.25)} |`);
  L.push(`| task process peak RSS ≤ 200 MB | ${mb(taskRss)} (largest of all RepoBackup runs) | ${yes(taskRss <= 200 * MB)} |`);
  const [s1, s2] = r.sizes;
  const flat = s2.taskRss <= s1.taskRss * 1.25 + 10 * MB;
  L.push(`| task RSS flat as repositories grow | ${mb(s1.taskRss)} for a ${mb(s1.bytes)} repository → ${mb(s2.taskRss)} for ${mb(s2.bytes)} (${(s2.bytes / s1.bytes).toFixed(0)}× the data) | ${yes(flat)} |`);
  L.push(`| peak extra disk ≤ concurrency × largest mirror; no archive file | ${mb(rbDisk)} ≤ ${CONCURRENCY} × ${mb(largestMirror)} = ${mb(diskBound)} | ${yes(rbDisk <= diskBound)} |`);
  const sc = r.scale;
  L.push(`| discovery + planning, ${sc.repos.toLocaleString('en')} repositories in ${sc.projects} projects (dry run), < 10 s | ${secs(sc.wallMs)} (task process from spawn to exit), ${sc.restRequests} REST requests | ${yes(sc.wallMs < 10_000)} |`);
  L.push(`| … memory flat | task RSS ${mb(sc.smallRss)} at ${sc.smallRepos.toLocaleString('en')} repositories, ${mb(sc.rss)} at ${sc.repos.toLocaleString('en')} | ${yes(sc.rss <= sc.smallRss + 60 * MB)} |`);
  L.push(`| … 429 with Retry-After honoured | ${sc.throttle.note} | ${yes(sc.throttle.ok)} |`);
  const sh = r.shard;
  const shardBytes = sh.jobs.map((j) => j.listedBytes);
  const rbMedian = wall('repobackup');
  const maxJob = sh.jobs.reduce((a, b) => (b.wallMs > a.wallMs ? b : a));
  const balanced = Math.max(...shardBytes) <= sh.idealBytes * 4 / 3 && sc.shardMaxOverMean <= 1.1;
  L.push(`| 4 shards: every repository exactly once | ${sh.everyRepoOnce ? `the 4 manifests list ${sh.jobs.reduce((s, j) => s + j.repos, 0)} repositories, each once, of ${r.corpus.length}` : `missing ${sh.missing.length}, twice ${sh.duplicated.length}`} | ${yes(sh.everyRepoOnce)} |`);
  L.push(`| 4 shards balanced by bytes | largest shard ${mb(Math.max(...shardBytes))} (listed size) vs the best possible max(total / 4, largest repository) = ${mb(sh.idealBytes)}; at ${sc.repos.toLocaleString('en')} repositories largest / mean = ${sc.shardMaxOverMean.toFixed(3)} | ${yes(balanced)} |`);
  L.push('');

  L.push('## Task memory as repositories grow', '');
  L.push('| repository, backed up alone | data (git + LFS) | wall | task peak RSS | git children peak RSS (sum) | peak extra disk |');
  L.push('|---|---|---|---|---|---|');
  for (const s of r.sizes) L.push(`| ${s.repo} | ${mb(s.bytes)} | ${secs(s.wallMs)} | ${mb(s.taskRss)} | ${mb(s.childRss)} | ${mb(s.disk)} |`);
  L.push('');

  L.push('## Sharded run (System.TotalJobsInPhase = 4, the 4 jobs one after another)', '');
  L.push('| job | repositories (manifest) | listed size | archive bytes | wall | task peak RSS |');
  L.push('|---|---|---|---|---|---|');
  for (const j of sh.jobs) L.push(`| ${j.position} of 4 | ${j.repos} | ${mb(j.listedBytes)} | ${mb(j.archiveBytes)} | ${secs(j.wallMs)} | ${mb(j.taskRss)} |`);
  L.push('');
  L.push(`Largest shard **${secs(maxJob.wallMs)}** (job ${maxJob.position}) vs the unsharded run's ${secs(rbMedian)}: **${(maxJob.wallMs / rbMedian).toFixed(2)}×**; ` +
    `the 4 jobs one after another ${secs(sh.totalWallMs)}. On 4 agents at once the backup takes about the largest shard's time, and never less than the largest repository alone.`, '');

  L.push(`## Scale: ${sc.repos.toLocaleString('en')} repositories in ${sc.projects} projects (stand-in repositories listed, not on disk; dry run)`, '');
  L.push('| run | wall (spawn → exit) | task peak RSS | REST requests |');
  L.push('|---|---|---|---|');
  for (const row of sc.rows) L.push(`| ${row.label} | ${secs(row.wallMs)} | ${mb(row.rss)} | ${row.rest} |`);
  L.push('');
  L.push(`Shard plan at this scale, 4 jobs, computed by each job from the same listing: ${sc.shardCounts.join(' / ')} repositories, ${sc.shardBytes.map(mb).join(' / ')} (largest / mean ${sc.shardMaxOverMean.toFixed(3)}), ${sc.planMs.toFixed(0)} ms per job.`, '');

  L.push('## Cold start of the bundled task (spawn → input validation → exit)', '');
  L.push(`Median ${median(r.cold.runs)} ms over ${r.cold.runs.length} runs (${r.cold.runs.join(', ')} ms); \`node -e 0\` alone: ${median(r.cold.nodeBaseline)} ms.`, '');

  L.push('## How it is measured', '');
  L.push('- **seed way**: `bench/seed.sh`, the seed pipeline\'s step on Linux: one REST call, then one repository at a time: `git clone --bare` (token in `-c http.extraheader`, as the seed does), `git lfs fetch --all`, `zip -r` at the default level (Compress-Archive\'s Optimal) into a file in a staging folder, that file uploaded with storage-blob `uploadFile` by a small bundled node script (one process per archive, as one azcopy per archive), clone and archive deleted. Two changes so that it does the same work: disabled repositories are skipped (the seed stops at the first failing clone), and `git lfs fetch` gets the auth header too.');
  L.push(`- **floor**: \`bench/floor.sh\`: \`git clone --mirror\` + \`git lfs fetch --all\` of the same repositories, ${CONCURRENCY} at a time (the task's default concurrency), largest first; nothing else (the mirrors stay until the clock stops).`);
  L.push('- **RepoBackup@1**: `tasks/RepoBackup/RepoBackupV1/dist/index.js` run by the harness\' `runTask` as the agent runs it, default inputs.');
  L.push('- Wall: spawn → exit. CPU: user + system time of the variant\'s whole process tree from /proc every 50 ms (in a worker thread); stand-in = this process\'s CPU and its reaped children (git http-backend …) minus the variant; Azurite = its process. Task RSS: VmHWM of the task process. Children RSS: peak of the summed RSS of all live descendants. Disk: peak allocated bytes below the variant\'s temp folder minus the start. Uploaded: bytes of the blobs in Azurite after the run.');
  L.push('- `npm run bench -- --profile` runs RepoBackup once with the task under the V8 profiler and prints its stages and hottest functions (development aid).');
  return L.join('\n') + '\n';
}

// ---------------------------------------------------------------- main

// ---------------------------------------------------------------- over the modelled network

interface NetRow {
  label: string;
  group: 'compare' | 'sweep';
  /** For the sweep: concurrency and where. */
  concurrency?: number;
  where?: 'network' | 'local';
  round: number;
  wallMs: number;
  cpuSeconds: number;
  machineCpu: number;
  loadBefore: number;
  /** Bytes across the link each way, and connections opened through it. */
  up: number;
  down: number;
  connections: number;
  uploaded: number;
}

interface IncRun { label: string; result: string; wallMs: number; cpuSeconds: number; up: number; down: number; connections: number; standin: Counts; blob: Counts; manifest?: ManifestSummary }
interface IncResult { runs: IncRun[]; changed: string[]; changedBytes: number }

async function runSweepPoint(env: Env, concurrency: number, name: string): Promise<Measure> {
  const { wallMs, mon } = await runBackupTask(env, name, concurrency === 0 ? {} : { concurrency: String(concurrency) });
  const up = await taskBlobTotals(env);
  return { variant: 'repobackup', round: 0, wallMs, ...mon, uploaded: up.bytes, blobs: up.blobs, serverCpu: 0, azuriteCpu: 0, loadBefore: 0 };
}

/** The container's manifests and blobs, read with the account key (the bench's view, not the task's). */
function containerAccess(env: Env) {
  const container = env.azurite.serviceClient().getContainerClient(CONTAINER);
  return {
    list: (prefix: string) => container.listBlobsFlat({ prefix }),
    download: (name: string) => container.getBlobClient(name).downloadToBuffer(),
  };
}

/** First run, second run with nothing changed, second run with 10% of the repositories changed, all `incremental`. */
async function incrementalCorpus(env: Env, link: Link, counter: BlobCounter): Promise<IncResult> {
  // Incremental reads the previous run: the SAS needs read + list besides create + write.
  const sas = withOrigin(env.azurite.containerSasUrl(CONTAINER, 'rcwl', { expiresOn: new Date(Date.now() + 6 * 3600_000) }), `http://127.0.0.1:${await link.forward(counter.port)}`);
  const ienv: Env = { ...env, sasUrl: sas };
  const access = containerAccess(env);
  const runs: IncRun[] = [];
  const one = async (label: string, buildId: string) => {
    env.standin.clearLog();
    counter.reset();
    const [u0, d0, c0] = [link.up.bytes, link.down.bytes, link.connections];
    // A run that copies may warn (a previous archive missing…): SucceededWithIssues is a result to report, not a bench failure.
    const { wallMs, mon, run: task } = await runBackupTask(ienv, `bench-inc-${buildId}`, { incremental: 'true' }, { 'Build.BuildId': buildId, 'System.PipelineStartTime': pipelineStart() }, false, ['Succeeded', 'SucceededWithIssues']);
    const manifest = await manifestSummary(() => access.list(`manifests/${env.standin.org}/`), access.download, buildId).catch(() => undefined);
    const run: IncRun = {
      label, result: task.result?.result ?? 'none', wallMs, cpuSeconds: mon.cpuSeconds, up: link.up.bytes - u0, down: link.down.bytes - d0, connections: link.connections - c0,
      standin: standInCounts(env.standin.requests), blob: { ...counter.counts }, manifest,
    };
    runs.push(run);
    log(`incremental, ${label}: ${secs(wallMs)}, ${run.result}; ${manifest ? `${manifest.reused} of ${manifest.entries} entries copied` : 'no manifest read'}; stand-in ${JSON.stringify(run.standin)}; Blob ${JSON.stringify(run.blob)}`);
  };
  const candidates = env.corpus.filter((r) => !r.disabled && !r.empty);
  const changed = candidates.filter((_, i) => i % 10 === 5);
  try {
    await one('first run', '820001');
    await one('second run, nothing changed', '820002');
    const undo = await commitTo(changed.map((r) => r.repo), 'ten-percent');
    try {
      await one(`second run, ${changed.length} of ${env.corpus.length} repositories changed`, '820003');
    } finally {
      await undo();
    }
  } finally {
    await taskBlobTotals(env);
  }
  return { runs, changed: changed.map((r) => `${r.project}/${r.name}`), changedBytes: changed.reduce((s, r) => s + r.bytes + (r.lfsBytes ?? 0), 0) };
}

/** The sections over the modelled link; returns their markdown. */
async function networkBench(env: Env, link: Link, sections: Set<Section>): Promise<string> {
  const t0 = Date.now();
  const netStandin = await standInBehind(link, { org: env.standin.org, root: tmpDir('bench-standin-net'), token: env.token });
  let counter: BlobCounter | undefined;
  try {
    const netCorpus = copyCorpus(env.standin, env.corpus, netStandin);
    const netBlob = `http://127.0.0.1:${await link.forward(Number(new URL(env.azurite.blobUrl).port))}`;
    const netEnv: Env = { ...env, standin: netStandin, corpus: netCorpus, sasUrl: withOrigin(env.sasUrl, netBlob), floorList: floorListOf(netStandin, netCorpus) };
    log(`network: ${link.describe()}; the corpus copied behind it`);
    const rows: NetRow[] = [];
    const measure = async (row: Omit<NetRow, 'wallMs' | 'cpuSeconds' | 'machineCpu' | 'loadBefore' | 'up' | 'down' | 'connections' | 'uploaded'>, run: () => Promise<Measure>) => {
      const loadBefore = os.loadavg()[0];
      const [u0, d0, c0] = [link.up.bytes, link.down.bytes, link.connections];
      const m = await run();
      const r: NetRow = {
        ...row, wallMs: m.wallMs, cpuSeconds: m.cpuSeconds, machineCpu: m.machineCpuSeconds, loadBefore,
        up: link.up.bytes - u0, down: link.down.bytes - d0, connections: link.connections - c0, uploaded: m.uploaded,
      };
      rows.push(r);
      log(`${row.label} (round ${row.round}): ${secs(r.wallMs)}, CPU ${r.cpuSeconds.toFixed(1)} s, link ↑${mb(r.up)} ↓${mb(r.down)}, ${r.connections} connections, load ${loadBefore.toFixed(1)}`);
    };
    if (sections.has('net-compare')) {
      const order: Variant[] = ['seed', 'floor', 'repobackup'];
      for (let round = 1; round <= ROUNDS; round++) {
        for (const v of order.map((_, i) => order[(i + round - 1) % order.length])) {
          await measure({ label: `${LABEL[v]} over the network`, group: 'compare', round }, () =>
            v === 'seed' ? runSeed(netEnv, 100 + round) : v === 'floor' ? runFloor(netEnv, 100 + round) : runSweepPoint(netEnv, CONCURRENCY, `bench-net-rb-${round}`));
        }
      }
    }
    if (sections.has('sweep')) {
      const points = SWEEP.flatMap((c) => (['network', 'local'] as const).map((where) => ({ c, where })));
      for (let round = 1; round <= SWEEP_ROUNDS; round++) {
        const k = ((round - 1) * 3) % points.length;
        for (const p of [...points.slice(k), ...points.slice(0, k)]) {
          await measure({ label: `concurrency ${laneLabel(p.c)}, ${p.where}`, group: 'sweep', concurrency: p.c, where: p.where, round }, () =>
            runSweepPoint(p.where === 'network' ? netEnv : env, p.c, `bench-sweep-${p.where}-${p.c}-${round}`));
        }
      }
    }
    let inc: IncResult | string | undefined;
    let org: OrgScaleResult | string | undefined;
    if (sections.has('incremental') || sections.has('org')) {
      if (!incrementalAvailable()) {
        log(INCREMENTAL_MISSING);
        inc = org = INCREMENTAL_MISSING;
      } else {
        counter = await startBlobCounter(env.azurite.blobUrl);
        if (sections.has('incremental')) inc = await incrementalCorpus(netEnv, link, counter);
        if (sections.has('org')) {
          const access = containerAccess(env);
          try {
            org = await orgScale({
              entry: ENTRY, link, blobCounter: counter, repos: ORG_REPOS, firstConcurrency: 16,
              sasUrl: env.azurite.containerSasUrl(CONTAINER, 'rcwl', { expiresOn: new Date(Date.now() + 6 * 3600_000) }),
              containerList: access.list, download: access.download, log,
            });
          } finally {
            for (const prefix of ['archives/bigorg/', 'manifests/bigorg/']) await blobTotals(env, prefix);
          }
        }
      }
    }
    return netReport({ link, rows, inc, org, totalMs: Date.now() - t0, sections });
  } finally {
    await counter?.stop();
    await netStandin.stop();
  }
}

function netReport(r: { link: Link; rows: NetRow[]; inc?: IncResult | string; org?: OrgScaleResult | string; totalMs: number; sections: Set<Section> }): string {
  const L: string[] = [];
  const yes = (ok: boolean) => (ok ? '**met**' : '**MISSED**');
  const wallOf = (rows: NetRow[]) => median(rows.map((x) => x.wallMs));
  L.push('## Over a modelled network', '');
  L.push(`Written by \`${r.sections.size === NETWORK_SECTIONS.length ? 'BENCH_ONLY=network ' : ''}npm run bench\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; these sections took ${secs(r.totalMs)}.`, '');
  L.push(`- The link (\`bench/netmodel.ts\`): ${r.link.describe()} (BENCH_RTT_MS=${r.link.options.rttMs}, BENCH_MBIT=${r.link.options.mbit}). ` +
    'A TCP forwarding proxy on this machine with one listening port per service (the Azure DevOps stand-in, Azurite); every URL the task, the seed way and the floor use points at these ports (the stand-in hands out URLs with the proxy\'s port). ' +
    'Each chunk leaves at max(arrival + one-way delay, the previous departure in that direction + its bytes / bandwidth): pipelined, one serializer per direction for all connections together (like one uplink); a new connection waits one round trip before its first byte goes through (the TCP handshake); at most 4 MiB in flight per connection and direction.');
  L.push('- Not modelled: packet loss and retransmission, TCP slow start and congestion control, TLS handshakes (the real services are HTTPS: one or two more round trips per new connection), DNS, jitter, the services\' own rate limits. The services still run on this machine\'s 2 cores, as does the proxy.');
  L.push(`- Machine: ${machine().join('; ')}.`, '');

  const cmp = r.rows.filter((x) => x.group === 'compare');
  if (cmp.length) {
    const by = (prefix: string) => cmp.filter((x) => x.label.startsWith(prefix));
    const seed = by(LABEL.seed);
    const floor = by(LABEL.floor);
    const rb = by(LABEL.repobackup);
    L.push('### Seed way vs RepoBackup@1 vs the floor, over the network', '');
    L.push(`${ROUNDS} rounds, rotated; medians. Load (1-min average) before each run: ${cmp.map((x) => x.loadBefore.toFixed(1)).join(', ')}.`, '');
    L.push('| variant | wall (median) | runs | CPU (its tree) | across the link ↑ / ↓ | connections |');
    L.push('|---|---|---|---|---|---|');
    for (const [name, xs] of [[LABEL.seed, seed], [LABEL.floor, floor], [LABEL.repobackup, rb]] as const) {
      if (!xs.length) continue;
      L.push(`| ${name} | **${secs(wallOf(xs))}** | ${xs.map((x) => secs(x.wallMs)).join(', ')} | ${median(xs.map((x) => x.cpuSeconds)).toFixed(1)} s | ${mb(median(xs.map((x) => x.up)))} / ${mb(median(xs.map((x) => x.down)))} | ${median(xs.map((x) => x.connections))} |`);
    }
    if (seed.length && rb.length && floor.length) {
      const ratio = wallOf(seed) / wallOf(rb);
      L.push('', `**seed / RepoBackup = ${ratio.toFixed(2)}×** over the network (target ≥ 3×: ${yes(ratio >= 3)}) · RepoBackup / floor = ${(wallOf(rb) / wallOf(floor)).toFixed(2)}× · ` +
        `the link alone needs ≥ ${secs(Math.max(median(rb.map((x) => x.up)), median(rb.map((x) => x.down))) * 8 / (r.link.options.mbit * 1000))} for RepoBackup's bytes.`);
    }
    L.push('');
  }

  const sw = r.rows.filter((x) => x.group === 'sweep');
  if (sw.length) {
    L.push('### Concurrency sweep, network vs no network (the same run)', '');
    L.push(`RepoBackup@1, default inputs but \`concurrency\`; ${SWEEP_ROUNDS} round(s), the ${SWEEP.length * 2} points rotated; medians. Load before each run: ${sw.map((x) => x.loadBefore.toFixed(1)).join(', ')}.`, '');
    L.push('| concurrency | over the network | no network | network / no network |');
    L.push('|---|---|---|---|');
    const best = { network: Infinity, local: Infinity } as Record<'network' | 'local', number>;
    const bestC = { network: 0, local: 0 } as Record<'network' | 'local', number>;
    for (const c of SWEEP) {
      const n = wallOf(sw.filter((x) => x.concurrency === c && x.where === 'network'));
      const l = wallOf(sw.filter((x) => x.concurrency === c && x.where === 'local'));
      if (n < best.network) { best.network = n; bestC.network = c; }
      if (l < best.local) { best.local = l; bestC.local = c; }
      L.push(`| ${c === 0 ? 'auto (the default: adapts from 4 up to 16)' : c} | ${secs(n)} | ${secs(l)} | ${(n / l).toFixed(2)}× |`);
    }
    const at4 = (w: 'network' | 'local') => wallOf(sw.filter((x) => x.concurrency === 0 && x.where === w));
    L.push('', `Fastest: concurrency ${laneLabel(bestC.network)} over the network (${secs(best.network)}; the default auto is ${((at4('network') / best.network - 1) * 100).toFixed(0)}% slower), ` +
      `concurrency ${laneLabel(bestC.local)} with no network (${secs(best.local)}; the default auto ${((at4('local') / best.local - 1) * 100).toFixed(0)}% slower).`, '');
    // Within 10% of the fastest counts as as good (one round on a shared machine is noisier than that).
    const good = (w: 'network' | 'local') => SWEEP.filter((c) => wallOf(sw.filter((x) => x.concurrency === c && x.where === w)) <= best[w] * 1.1);
    const gn = good('network');
    const gl = good('local');
    const depends = !gn.some((c) => gl.includes(c));
    L.push(`Within 10% of the fastest: ${gn.map(laneLabel).join(', ')} over the network; ${gl.map(laneLabel).join(', ')} with no network. ` +
      (depends
        ? 'No value is good in both: **the best concurrency depends on the network**, so a fixed default guesses.'
        : `${gn.filter((c) => gl.includes(c)).map(laneLabel).join(', ')} ${gn.filter((c) => gl.includes(c)).length > 1 ? 'are' : 'is'} good in both here; the default auto is ${gn.includes(0) && gl.includes(0) ? 'among them' : 'not among them'}.`) +
      ' Latency makes each repository wait (connection setups, ref negotiation, upload round trips), which more lanes hide; with no network, more lanes only compete for the same 2 cores (git, the task, and here the services too). On a real agent the services\' CPU is elsewhere, so the network side of this table is the better guide.', '');
    L.push('**Adapted at run time** (`concurrency: auto`, the default; `tasks/RepoBackup/RepoBackupV1/src/pace.ts`, `test/unit/pace.test.ts`): start with 4 lanes; after each window (at least 8 finished repositories and 10 s) compare the throughput (archive bytes + repositories per second) with the window before; while it rises by ≥ 10% add a lane (up to 16, never beyond what the temporary disk holds), when it falls drop one and hold. A number in `concurrency` is fixed. A run as short as this corpus gets about one decision, so `auto` here shows little more than its start; the windows matter on organizations that take minutes to hours. Incremental runs copy unchanged repositories first in a wide pass (32 at once).', '');
  }

  if (r.sections.has('incremental')) L.push('### Incremental: first run, second run unchanged, second run with 10% changed (over the network)', '');
  if (!r.sections.has('incremental')) {
    // not selected
  } else if (typeof r.inc === 'string' || !r.inc) {
    L.push(`${r.inc ?? 'not run'} (this build's RepoBackup@1 has no input \`incremental\`).`, '');
  } else {
    const [first] = r.inc.runs;
    L.push(`\`incremental: true\`, container SAS \`sp=rcwl\`, default inputs otherwise. Changed: one commit pushed to ${r.inc.changed.join(', ')} (${mb(r.inc.changedBytes)} of data) between the second and the third run.`, '');
    L.push('| run | result | wall | vs first | CPU | entries copied / all | across the link ↑ / ↓ | stand-in requests | Blob requests |');
    L.push('|---|---|---|---|---|---|---|---|---|');
    const fmt = (c: Counts) => Object.entries(c).sort().map(([k, v]) => `${k} ${v}`).join(', ');
    for (const x of r.inc.runs) {
      L.push(`| ${x.label} | ${x.result} | **${secs(x.wallMs)}** | ${((x.wallMs / first.wallMs) * 100).toFixed(0)}% | ${x.cpuSeconds.toFixed(1)} s | ${x.manifest ? `${x.manifest.reused} / ${x.manifest.entries}` : '?'} | ${mb(x.up)} / ${mb(x.down)} | ${fmt(x.standin)} | ${fmt(x.blob)} |`);
    }
    const second = r.inc.runs[1];
    L.push('', `Target second unchanged run ≤ 10% of the first: ${((second.wallMs / first.wallMs) * 100).toFixed(1)}% ${yes(second.wallMs <= first.wallMs * 0.1)}.`, '');
  }

  if (r.sections.has('org')) L.push(`### ${ORG_REPOS.toLocaleString('en')}-repository organization, 1% changed, incremental (over the network)`, '');
  if (!r.sections.has('org')) {
    // not selected
  } else if (typeof r.org === 'string' || !r.org) {
    L.push(`${r.org ?? 'not run'}.`, '');
  } else {
    const o = r.org;
    L.push(`${o.repos.toLocaleString('en')} tiny repositories (copies of one two-commit repository with a tag, test/harness/bulk.ts; made in ${secs(o.buildMs)}). The first run at concurrency ${o.firstConcurrency} without verify (bench time), then one commit on ${o.changed} repositories, then the second run with default inputs (concurrency auto) but verify false as in the first; both \`incremental: true\`.`, '');
    L.push('| run | wall | result | entries copied / all | stand-in requests | Blob requests |');
    L.push('|---|---|---|---|---|---|');
    const fmt = (c: Counts) => Object.entries(c).sort().map(([k, v]) => `${k} ${v}`).join(', ');
    for (const x of o.runs) L.push(`| ${x.label} | **${secs(x.wallMs)}** | ${x.result}${x.note ? ` (${x.note})` : ''} | ${x.manifest ? `${x.manifest.reused} / ${x.manifest.entries}` : '?'} | ${fmt(x.standin)} | ${fmt(x.blob)} |`);
    const second = o.runs[1];
    if (second) {
      const unchanged = o.repos - o.changed;
      const per = (c: Counts, pred: (k: string) => boolean) => Object.entries(c).filter(([k]) => pred(k)).reduce((s, [, v]) => s + v, 0);
      L.push('', `Second run: ${secs(second.wallMs)} (${((second.wallMs / o.runs[0].wallMs) * 100).toFixed(1)}% of the first). Per repository (÷ ${o.repos.toLocaleString('en')}; the ${o.changed} changed ones are backed up in full): ` +
        `info/refs ${(per(second.standin, (k) => k === 'info/refs') / o.repos).toFixed(2)}, upload-pack ${(per(second.standin, (k) => k === 'upload-pack') / o.repos).toFixed(2)}, REST ${(per(second.standin, (k) => k === 'REST') / o.repos).toFixed(3)}, ` +
        `Blob copy ${(per(second.blob, (k) => k.startsWith('copy')) / unchanged).toFixed(2)} per unchanged repository, Blob put ${(per(second.blob, (k) => k.startsWith('put')) / o.repos).toFixed(2)}, list ${(per(second.blob, (k) => k === 'list') / o.repos).toFixed(3)}, get ${(per(second.blob, (k) => k.startsWith('get')) / o.repos).toFixed(2)}. ` +
        'Expected: one ref listing (with protocol v2, `git ls-remote` is one GET info/refs and one POST git-upload-pack `ls-refs`) and one copy per unchanged repository.', '');
    }
  }
  L.push(`Rerun just these sections: \`BENCH_ONLY=network npm run bench\` (or one of them: \`BENCH_ONLY=net-compare\`, \`sweep\`, \`incremental\`, \`org\`; those write to build/bench/). BENCH_RTT_MS, BENCH_MBIT change the link; BENCH_SWEEP_ROUNDS (default 1) the sweep's rounds; BENCH_ORG_REPOS (default 5000) the organization's size.`, '');
  return L.join('\n') + '\n';
}

/** BENCH_ONLY=a,b: the sections to run (default all); `network` stands for the four sections over the modelled link. */
function selectedSections(): Set<Section> {
  const raw = (process.env.BENCH_ONLY ?? '').split(',').map((x) => x.trim()).filter(Boolean);
  if (!raw.length) return new Set(ALL_SECTIONS);
  const out = new Set<Section>();
  for (const x of raw) {
    if (x === 'network') NETWORK_SECTIONS.forEach((n) => out.add(n));
    else if ((ALL_SECTIONS as string[]).includes(x)) out.add(x as Section);
    else throw new Error(`BENCH_ONLY: unknown section '${x}': use ${['network', ...ALL_SECTIONS].join(', ')} (comma-separated), or unset it for all`);
  }
  return out;
}

function floorListOf(standin: DevOpsStandIn, corpus: BenchRepo[]): string {
  return corpus
    .filter((r) => !r.disabled)
    .map((r, i) => ({ i, url: r.repo.cloneUrl, size: Number(standin.repoJson(r.repo).size) }))
    .sort((a, b) => b.size - a.size || a.i - b.i)
    .map((r) => `${r.i} ${r.url}`).join('\n') + '\n';
}

async function main() {
  const t0 = Date.now();
  const sections = selectedSections();
  const link = new Link(linkFromEnv());
  ensureTools();
  const uploader = await bundleUploader();
  const token = `bench-job-token-${process.pid}`;
  const standin = await DevOpsStandIn.start({ org: 'benchorg', root: tmpDir('bench-standin'), tokens: { bearer: [token] } });
  const azurite = await startAzurite();
  let stopped = false;
  try {
    await azurite.createContainer(CONTAINER);
    const sasUrl = azurite.containerSasUrl(CONTAINER, 'cw', { expiresOn: new Date(Date.now() + 6 * 3600_000) });
    log(`building the corpus${QUICK ? ' (quick)' : ''}…`);
    const tc = Date.now();
    const corpus = await buildCorpus(standin, corpusSpec(QUICK));
    const corpusBuildMs = Date.now() - tc;
    log(`corpus: ${corpus.length} repositories in ${secs(corpusBuildMs)}`);
    const env: Env = { standin, azurite, token, sasUrl, uploader, corpus, floorList: floorListOf(standin, corpus) };

    if (process.argv.includes('--profile')) {
      // Development aid: where RepoBackup's time goes (no comparison, no results file).
      console.log(await profileRun(ENTRY, { orgUrl: standin.orgUrl, token, sasUrl }));
      return;
    }

    // --only a,b: development aid, just those variants (no extras, no results file).
    const only = argValue('--only')?.split(',') as Variant[] | undefined;
    let localText: string | undefined;
    let localResults: Omit<Results, 'totalMs' | 'scale'> | undefined;
    if (sections.has('local') || only) {
      localResults = await localBench(env, corpusBuildMs, only);
      if (only) return;
    }
    let networkText: string | undefined;
    if (NETWORK_SECTIONS.some((n) => sections.has(n))) {
      networkText = await networkBench(env, link, sections);
    }
    await standin.stop();
    stopped = true;
    if (localResults) {
      const scale = await runScale(ENTRY, sasUrl);
      log(`scale: ${scale.rows.map((r) => `${r.label} ${secs(r.wallMs)} ${mb(r.rss)}`).join(' | ')}`);
      localText = report({ ...localResults, scale, totalMs: Date.now() - t0 });
    }
    const whole = sections.size === ALL_SECTIONS.length;
    const netBlock = networkText ? `${NET_BEGIN}\n${networkText}${NET_END}\n` : '';
    let file: string;
    let text: string;
    if (QUICK) {
      // The quick variant is for development: its results go to build/, only the full bench writes bench/results.md.
      file = path.join(ROOT, 'build/bench/results-quick.md');
      text = (localText ?? '') + (netBlock ? '\n' + netBlock : '');
    } else if (whole) {
      file = path.join(ROOT, 'bench/results.md');
      text = localText!.replace(/\n*$/, '\n\n') + netBlock;
    } else if (networkText && NETWORK_SECTIONS.every((n) => sections.has(n)) && !localText) {
      // BENCH_ONLY=network: the network block of bench/results.md is replaced, the rest kept.
      file = path.join(ROOT, 'bench/results.md');
      const old = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
      const a = old.indexOf(NET_BEGIN);
      const b = old.indexOf(NET_END);
      text = a >= 0 && b > a ? old.slice(0, a) + netBlock + old.slice(b + NET_END.length + 1) : old.replace(/\n*$/, '\n\n') + netBlock;
    } else {
      file = path.join(ROOT, `build/bench/results-${[...sections].join('-')}.md`);
      text = (localText ?? '') + netBlock;
    }
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
    console.log('\n' + (localText ?? '') + (networkText ?? ''));
    log(`written to ${path.relative(process.cwd(), file)} (the whole bench took ${secs(Date.now() - t0)})`);
  } finally {
    if (!stopped) await standin.stop().catch(() => undefined);
    await link.close();
    await azurite.stop();
    await cleanupAll();
  }
}

/** The comparison on this machine with no network (seed, floor, RepoBackup, encrypted, folder), then memory and shards. */
async function localBench(env: Env, corpusBuildMs: number, only: Variant[] | undefined): Promise<Omit<Results, 'totalMs' | 'scale'> | undefined> {
  const { corpus } = env;
  const cold = only ? { runs: [], nodeBaseline: [] } : await coldStart(env);
  if (!only) log(`cold start: ${cold.runs.join(', ')} ms`);

  const measures: Measure[] = [];
  const order: Variant[] = only ?? ['seed', 'floor', 'repobackup', 'encrypted', 'folder'];
  for (let round = 1; round <= ROUNDS; round++) {
    // Rotate so that no variant always runs right after the same other one.
    const rotated = order.map((_, i) => order[(i + round - 1) % order.length]);
    for (const v of rotated) {
      const loadBefore = os.loadavg()[0];
      const s0 = selfTreeCpu();
      const a0 = azuriteCpu();
      const m = v === 'seed' ? await runSeed(env, round) : v === 'floor' ? await runFloor(env, round)
        : v === 'folder' ? await runFolder(env, round) : await runRepoBackup(env, round, v === 'encrypted');
      // This process's tree includes the variant (its child) once reaped: take the variant's own CPU out.
      m.serverCpu = Math.max(0, selfTreeCpu() - s0 - m.cpuSeconds);
      m.azuriteCpu = azuriteCpu() - a0;
      m.loadBefore = loadBefore;
      measures.push(m);
      log(`round ${round} ${LABEL[v]}: ${secs(m.wallMs)}, CPU ${m.cpuSeconds.toFixed(1)} s (task/script ${m.rootCpuSeconds.toFixed(1)} s; machine ${m.machineCpuSeconds.toFixed(1)} s, stand-in ${m.serverCpu.toFixed(1)} s, Azurite ${m.azuriteCpu.toFixed(1)} s), task RSS ${mb(m.rootPeakRss)}, children ${mb(m.childrenPeakRss)}, disk ${mb(m.diskPeak)}, uploaded ${mb(m.uploaded)}`);
    }
  }
  if (only) {
    // --only repobackup,encrypted: the encryption cost alone, same rounds.
    const w = (v: Variant) => median(measures.filter((m) => m.variant === v).map((m) => m.wallMs));
    const c = (v: Variant) => median(measures.filter((m) => m.variant === v).map((m) => m.cpuSeconds));
    if (only.includes('encrypted') && only.includes('repobackup')) {
      log(`encrypted / unencrypted wall (medians of ${ROUNDS}): ${secs(w('encrypted'))} / ${secs(w('repobackup'))} = ${(w('encrypted') / w('repobackup')).toFixed(3)}×; CPU ${c('encrypted').toFixed(1)} s / ${c('repobackup').toFixed(1)} s`);
    }
    return;
  }
  const streams = await streamBench();
  log(`encryption stream bench: ${streams.map((x) => `${x.label} ${x.mbPerS.toFixed(0)} MB/s`).join(' | ')}`);
  const sizes = await rssBySize(env);
  log(`RSS by size: ${sizes.map((s) => `${s.repo} ${mb(s.taskRss)}`).join(', ')}`);
  const shard = await shardedRun(env);
  log(`sharded: ${shard.jobs.map((j) => `${j.repos} repos ${mb(j.listedBytes)} ${secs(j.wallMs)}`).join(' | ')}; exactly once: ${shard.everyRepoOnce}`);
  const rbs = measures.filter((m) => m.variant === 'repobackup').sort((a, b) => a.wallMs - b.wallMs);
  const mid = rbs[(rbs.length - 1) >> 1];
  const stages = mid?.timeline ? { ...stageBreakdown(mid.timeline, mid.wallMs, 50), runMs: mid.wallMs } : undefined;
  return { quick: QUICK, corpus, corpusBuildMs, measures, sizes, shard, cold, stages, streams };
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

// `npm run bench -- --profile [--quick]`: one RepoBackup@1 run on the bench corpus with the task under
// `node --cpu-prof` and its process tree sampled every 20 ms. Prints where the wall time goes: each git stage
// (summed over repositories, and the share of the run when at least one runs), the time no git child runs (the
// task alone: archive + upload + its own bookkeeping), and the task's hottest functions by self time.
import * as fs from 'fs';
import * as path from 'path';
import { runTask } from '../test/harness/run-task';
import { tmpDir } from '../test/harness/util';
import { MonitorResult, watch } from './monitor';

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

const GIT = String.raw`^(\S*/)?git`;
const STAGES: Array<[string, RegExp]> = [
  ['git clone --mirror', new RegExp(`${GIT} .*\\bclone\\b`)],
  ['git lfs fetch --all', new RegExp(`${GIT}(-lfs| lfs) .*fetch`)],
  ['git fsck', new RegExp(`${GIT} .*\\bfsck\\b`)],
  ['git for-each-ref', new RegExp(`${GIT} .*for-each-ref`)],
];

export interface StageRow {
  stage: string;
  commands: number;
  /** Summed over repositories (overlapping runs counted each). */
  summedMs: number;
  /** Wall time during which at least one such command ran. */
  wallMs: number;
}

/** Where a RepoBackup run's wall time went, from the monitor's process timeline (sampled every `stepMs`). */
export function stageBreakdown(timeline: NonNullable<MonitorResult['timeline']>, runMs: number, stepMs: number): { rows: StageRow[]; noGitMs: number } {
  const slot = 10;
  const busy = new Uint8Array(Math.ceil(runMs / slot) + 1);
  const rows: StageRow[] = [];
  for (const [stage, re] of STAGES) {
    // The task's own commands only (its direct children): git-lfs runs git rev-parse etc. itself.
    const procs = timeline.filter((p) => re.test(p.cmd) && !timeline.some((q) => q.pid === p.ppid));
    const mask = new Uint8Array(busy.length);
    let summedMs = 0;
    for (const p of procs) {
      summedMs += p.lastMs - p.firstMs + stepMs;
      const end = Math.min(busy.length - 1, Math.floor((p.lastMs + stepMs) / slot));
      for (let t = Math.floor(p.firstMs / slot); t <= end; t++) { mask[t] = 1; busy[t] = 1; }
    }
    rows.push({ stage, commands: procs.length, summedMs, wallMs: mask.reduce((a, b) => a + b, 0) * slot });
  }
  return { rows, noGitMs: (busy.length - busy.reduce((a, b) => a + b, 0)) * slot };
}

export async function profileRun(entry: string, opts: { orgUrl: string; token: string; sasUrl: string; inputs?: Record<string, string> }): Promise<string> {
  const tempDir = tmpDir('profile');
  const profDir = tmpDir('cpuprof');
  // --cpu-prof is not allowed in NODE_OPTIONS: a wrapper entry profiles the bundled task through the inspector.
  const wrapper = path.join(profDir, 'profile-entry.js');
  fs.writeFileSync(wrapper, `const inspector = require('inspector'); const fs = require('fs');
const s = new inspector.Session(); s.connect();
s.post('Profiler.enable'); s.post('Profiler.setSamplingInterval', { interval: 500 }); s.post('Profiler.start');
process.on('exit', () => s.post('Profiler.stop', (err, r) => { if (!err) fs.writeFileSync(${JSON.stringify(path.join(profDir, 'task.cpuprofile'))}, JSON.stringify(r.profile)); }));
require(${JSON.stringify(entry)});
`);
  let mon: ReturnType<typeof watch> | undefined;
  const run = await runTask(wrapper, {
    inputs: { sasUrl: opts.sasUrl, ...opts.inputs }, orgUrl: opts.orgUrl, token: opts.token, tempDir,
    variables: { 'Build.BuildId': `profile-${Date.now()}` },
    onSpawn: (child) => { mon = watch(child.pid!, [], 20, true); },
  });
  const m = await mon!.stop();
  const L: string[] = [];
  L.push(`profile run: ${run.result?.result} in ${(run.durationMs / 1000).toFixed(2)} s, tree CPU ${m.cpuSeconds.toFixed(1)} s, task RSS ${(m.rootPeakRss / 2 ** 20).toFixed(0)} MB`);

  const { rows, noGitMs } = stageBreakdown(m.timeline ?? [], run.durationMs, 20);
  L.push('', 'stage                 commands   summed     wall share (≥1 running)');
  for (const r of rows) {
    L.push(`${r.stage.padEnd(22)}${String(r.commands).padStart(8)}   ${(r.summedMs / 1000).toFixed(2).padStart(6)} s   ${(r.wallMs / 1000).toFixed(2).padStart(6)} s (${((r.wallMs / run.durationMs) * 100).toFixed(0)}%)`);
  }
  L.push(`no git child running   ${(noGitMs / 1000).toFixed(2).padStart(17)} s (${((noGitMs / run.durationMs) * 100).toFixed(0)}%): start-up, listing, archive + upload tails, manifest`);

  // The task's hottest functions (self time).
  const file = fs.readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (file) {
    const prof = JSON.parse(fs.readFileSync(path.join(profDir, file), 'utf8')) as CpuProfile;
    const self = new Map<number, number>();
    prof.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));
    const byFn = new Map<string, number>();
    for (const n of prof.nodes) {
      const us = self.get(n.id) ?? 0;
      if (!us) continue;
      const f = n.callFrame;
      const where = f.url ? `${path.basename(f.url)}:${f.lineNumber + 1}` : '';
      const key = `${f.functionName || '(anonymous)'} ${where}`.trim();
      byFn.set(key, (byFn.get(key) ?? 0) + us);
    }
    const total = [...byFn.values()].reduce((a, b) => a + b, 0);
    // With an unminified bundle (node scripts/bundle-tasks.js --no-minify), esbuild's `// <module path>` comments
    // attribute self time to the module each function comes from.
    const bundle = fs.readFileSync(entry, 'utf8').split('\n');
    const marks: Array<[number, string]> = [];
    bundle.forEach((line, i) => { const m = /^\/\/ ((node_modules\/(@[^/]+\/)?[^/]+)|tasks\/[^ ]+|build\/[^ ]+)/.exec(line); if (m) marks.push([i, m[2] ?? m[1]]); });
    if (marks.length > 10) {
      const byModule = new Map<string, number>();
      for (const n of prof.nodes) {
        const us = self.get(n.id) ?? 0;
        if (!us) continue;
        let mod = n.callFrame.url ? (n.callFrame.url.startsWith('node:') || !n.callFrame.url.includes('/') ? `node:${n.callFrame.url.replace(/^node:/, '')}` : path.basename(n.callFrame.url)) : n.callFrame.functionName;
        if (n.callFrame.url === `file://${entry}` || n.callFrame.url === entry) {
          let lo = 0;
          let hi = marks.length - 1;
          while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (marks[mid][0] <= n.callFrame.lineNumber) lo = mid; else hi = mid - 1; }
          mod = marks[lo][1];
        }
        byModule.set(mod, (byModule.get(mod) ?? 0) + us);
      }
      L.push('', 'task (node) self time by module:');
      for (const [k, us] of [...byModule].sort((a, b) => b[1] - a[1]).slice(0, 16)) L.push(`  ${(us / 1e3).toFixed(0).padStart(7)} ms  ${k}`);
    }
    L.push('', `task (node) self time by function, of ${(total / 1e6).toFixed(2)} s sampled:`);
    for (const [k, us] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, 18)) {
      L.push(`  ${(us / 1e3).toFixed(0).padStart(7)} ms  ${k}`);
    }
  }
  fs.rmSync(tempDir, { recursive: true, force: true });
  return L.join('\n');
}

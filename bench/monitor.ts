// Watches one process tree and some folders while a bench variant runs, from a worker thread (so the sampling
// never stalls the stand-in, which serves git from the bench's main thread).
//  - CPU: utime+stime+cutime+cstime of the root plus those of its live descendants (reaped children are already
//    in their parent's cutime/cstime): the whole tree's CPU, sampled every `intervalMs` (the last <interval is lost).
//  - Memory: the root's VmHWM (exact peak, from /proc/<pid>/status) and the peak of the summed RSS of its live
//    descendants (git, git-lfs, index-pack, zip, uploader…), plus the largest single descendant.
//  - Disk: the peak of the allocated bytes (st_blocks × 512) below `dirs`, minus what was there at the start.
import * as fs from 'fs';
import * as path from 'path';
import { isMainThread, parentPort, Worker, workerData } from 'worker_threads';

export interface MonitorResult {
  samples: number;
  /** CPU seconds of the whole tree (root + descendants). */
  cpuSeconds: number;
  /** CPU seconds of the root process alone (its own threads, not its children). */
  rootCpuSeconds: number;
  /** Peak RSS (VmHWM) of the root process, bytes. */
  rootPeakRss: number;
  /** Peak of the summed RSS of all descendants at one moment, bytes. */
  childrenPeakRss: number;
  /** The largest RSS any single descendant reached (sampled), bytes. */
  childMaxRss: number;
  /** Peak extra allocated bytes below the watched folders. */
  diskPeak: number;
  /** CPU seconds the whole machine spent meanwhile (all processes: the variant, the stand-in, Azurite, anyone else). */
  machineCpuSeconds: number;
  /** Command names of the descendants seen. */
  childNames: string[];
  /** With `timeline`: every descendant seen, its command line and when it was first and last seen (ms from start). */
  timeline?: Array<{ pid: number; ppid: number; cmd: string; firstMs: number; lastMs: number }>;
}

interface WorkerInput {
  pid: number;
  dirs: string[];
  intervalMs: number;
  stop: SharedArrayBuffer;
  timeline: boolean;
}

const TICK = 100; // USER_HZ on Linux
const PAGE = 4096;

/** Starts watching `pid` (and its descendants) and `dirs`; `stop()` resolves with the peaks. */
export function watch(pid: number, dirs: string[], intervalMs = 50, timeline = false): { stop(): Promise<MonitorResult> } {
  const stop = new SharedArrayBuffer(4);
  const worker = new Worker(__filename, { workerData: { pid, dirs, intervalMs, stop, timeline } satisfies WorkerInput });
  const result = new Promise<MonitorResult>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return {
    stop() {
      Atomics.store(new Int32Array(stop), 0, 1);
      Atomics.notify(new Int32Array(stop), 0);
      return result;
    },
  };
}

interface Stat {
  ppid: number;
  comm: string;
  /** Own utime + stime. */
  selfTicks: number;
  /** Own + reaped children's. */
  cpuTicks: number;
  rssBytes: number;
}

function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  const f = text.slice(close + 2).split(' ');
  // f[0] = state (field 3); utime = field 14 → f[11]; stime f[12]; cutime f[13]; cstime f[14]; rss = field 24 → f[21]
  return {
    ppid: Number(f[1]), comm,
    selfTicks: Number(f[11]) + Number(f[12]),
    cpuTicks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]),
    rssBytes: Number(f[21]) * PAGE,
  };
}

function vmHwm(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Busy ticks of all CPUs since boot (user, nice, system, irq, softirq, steal). */
function machineTicks(): number {
  const f = fs.readFileSync('/proc/stat', 'latin1').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
}

function allocated(dir: string): number {
  let total = 0;
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    try {
      if (e.isDirectory()) total += allocated(p);
      else total += fs.lstatSync(p).blocks * 512;
    } catch {
      // vanished between readdir and stat
    }
  }
  return total;
}

function runWorker(input: WorkerInput): MonitorResult {
  const flag = new Int32Array(input.stop);
  const unrelated = new Set<number>();
  const names = new Set<string>();
  const baseDisk = input.dirs.reduce((s, d) => s + allocated(d), 0);
  const r: MonitorResult = { samples: 0, cpuSeconds: 0, rootCpuSeconds: 0, rootPeakRss: 0, childrenPeakRss: 0, childMaxRss: 0, diskPeak: 0, machineCpuSeconds: 0, childNames: [] };
  const machine0 = machineTicks();
  let lastCpu = 0;
  const t0 = Date.now();
  const seen = new Map<number, { pid: number; ppid: number; cmd: string; firstMs: number; lastMs: number }>();
  for (;;) {
    const root = readStat(input.pid);
    if (root) {
      const stats = new Map<number, Stat>();
      for (const name of fs.readdirSync('/proc')) {
        const pid = Number(name);
        if (!Number.isInteger(pid) || pid === input.pid || unrelated.has(pid)) continue;
        const s = readStat(pid);
        if (s) stats.set(pid, s);
      }
      // Descendants: walk parent links up to the root.
      const inTree = new Map<number, boolean>();
      const isDesc = (pid: number): boolean => {
        if (pid === input.pid) return true;
        const known = inTree.get(pid);
        if (known !== undefined) return known;
        const s = stats.get(pid);
        const v = s ? isDesc(s.ppid) : false;
        inTree.set(pid, v);
        return v;
      };
      let cpu = root.cpuTicks;
      let rss = 0;
      for (const [pid, s] of stats) {
        if (!isDesc(pid)) {
          // Processes older than the root never join its tree (pids are not reused within a run).
          if (pid < input.pid) unrelated.add(pid);
          continue;
        }
        cpu += s.cpuTicks;
        rss += s.rssBytes;
        r.childMaxRss = Math.max(r.childMaxRss, s.rssBytes);
        names.add(s.comm);
        if (input.timeline) {
          const now = Date.now() - t0;
          let e = seen.get(pid);
          if (!e) {
            let cmd = s.comm;
            try { cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').filter(Boolean).join(' ') || s.comm; } catch { /* gone */ }
            e = { pid, ppid: s.ppid, cmd, firstMs: now, lastMs: now };
            seen.set(pid, e);
          }
          e.lastMs = now;
        }
      }
      lastCpu = Math.max(lastCpu, cpu);
      r.rootCpuSeconds = Math.max(r.rootCpuSeconds, root.selfTicks / TICK);
      r.childrenPeakRss = Math.max(r.childrenPeakRss, rss);
      r.rootPeakRss = Math.max(r.rootPeakRss, vmHwm(input.pid));
    }
    const disk = input.dirs.reduce((s, d) => s + allocated(d), 0) - baseDisk;
    r.diskPeak = Math.max(r.diskPeak, disk);
    r.samples++;
    if (Atomics.load(flag, 0) === 1) break;
    Atomics.wait(flag, 0, 0, input.intervalMs);
  }
  r.cpuSeconds = lastCpu / TICK;
  r.machineCpuSeconds = (machineTicks() - machine0) / TICK;
  r.childNames = [...names].sort();
  if (input.timeline) r.timeline = [...seen.values()];
  return r;
}

if (!isMainThread && workerData && (workerData as WorkerInput).stop) {
  parentPort!.postMessage(runWorker(workerData as WorkerInput));
}

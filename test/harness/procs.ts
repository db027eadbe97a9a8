// Looking at processes while a task runs (Linux /proc): descendants, every process's argv, a process's memory and
// open files. Used to prove that git children end on cancellation, that no secret is ever in any argv, and that
// a big run's memory and file descriptors stay bounded.
import * as fs from 'fs';

export const hasProc = fs.existsSync('/proc/self/stat');

interface ProcStat {
  pid: number;
  ppid: number;
  /** R, S, D, Z, … */
  state: string;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // `pid (comm) state ppid …`; comm may hold spaces and parentheses: split after the last ')'.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { pid, state: rest[0], ppid: Number(rest[1]) };
  } catch {
    return undefined;
  }
}

export function allPids(): number[] {
  return fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number);
}

/** Every living descendant of `root` (children, grandchildren, …), not `root` itself. */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const pid of allPids()) {
    const s = readStat(pid);
    if (!s) continue;
    const list = children.get(s.ppid) ?? [];
    list.push(pid);
    children.set(s.ppid, list);
  }
  const out: number[] = [];
  const stack = [...(children.get(root) ?? [])];
  while (stack.length) {
    const pid = stack.pop()!;
    out.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** A process's argv, or undefined when it is gone (or not readable). */
export function argv(pid: number): string[] | undefined {
  try {
    const raw = fs.readFileSync(`/proc/${pid}/cmdline`);
    if (raw.length === 0) return undefined;
    return raw.toString('utf8').replace(/\0$/, '').split('\0');
  } catch {
    return undefined;
  }
}

/** Every process's argv, as raw bytes (secrets are searched in bytes, any encoding). */
export function allCmdlines(): Array<{ pid: number; cmdline: Buffer }> {
  const out: Array<{ pid: number; cmdline: Buffer }> = [];
  for (const pid of allPids()) {
    try {
      out.push({ pid, cmdline: fs.readFileSync(`/proc/${pid}/cmdline`) });
    } catch {
      /* gone */
    }
  }
  return out;
}

/** True while `pid` exists and is not a zombie (a zombie has ended; only its exit status is left). */
export function isAlive(pid: number): boolean {
  const s = readStat(pid);
  return !!s && s.state !== 'Z' && s.state !== 'X';
}

/** Peak and current resident memory (bytes) from /proc/<pid>/status, or undefined when gone. */
export function memory(pid: number): { peakRss: number; rss: number } | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
    return { peakRss: kb('VmHWM'), rss: kb('VmRSS') };
  } catch {
    return undefined;
  }
}

/** Open file descriptors of `pid`, or undefined when gone. */
export function openFds(pid: number): number | undefined {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return undefined;
  }
}

/**
 * Calls `sample` every `intervalMs` until `stop()` is called; `stop` resolves after the last sample. Samples run
 * on timers, so the test's own event loop keeps serving (the stand-in lives in the test process).
 */
export function every(intervalMs: number, sample: () => void): { stop(): Promise<void> } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const tick = () => {
    if (stopped) return;
    try { sample(); } catch { /* a process vanished mid-read */ }
    // Never what keeps the test process alive: a test that fails before stop() must not hang the suite.
    timer = setTimeout(tick, intervalMs).unref();
  };
  tick();
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      try { sample(); } catch { /* ignore */ }
    },
  };
}

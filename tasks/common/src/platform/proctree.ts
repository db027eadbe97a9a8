/**
 * Ending a child process together with everything it started. Killing only the direct child is not enough:
 * `git clone` runs `git remote-http` → `git-remote-http` (and index-pack, git-lfs…), which keep running as
 * orphans, keep the task's stdio pipes open (the tool runner then waits 10 s for them) and keep writing into a
 * folder that is being removed. The tree is collected first, then signalled, so no process escapes by being
 * re-parented in between.
 *
 * Per platform:
 * - Linux: the process table is read from /proc; a zombie (state Z) or dying process (X) no longer counts.
 * - macOS and other Unix: `ps -A -o pid=,ppid=,stat=`, run asynchronously while waiting; a zombie (stat Z…)
 *   does not count as alive, so a tree whose processes have ended is not waited on for the whole grace period.
 * - Windows: `taskkill /PID <pid> /T /F` ends the tree; it runs as a child process that the event loop does not
 *   wait on synchronously (when it must be fire-and-forget, in an exit handler, it is started detached).
 */
import { execFile, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';

export interface ProcEntry {
  ppid: number;
  /** One-letter state (`R`, `S`, `Z`, …) as /proc or ps give it. */
  state: string;
}
export type ProcTable = Map<number, ProcEntry>;

/** What the functions below need from the system, injectable so that every platform's branch runs in tests here. */
export interface ProcSystem {
  platform: NodeJS.Platform;
  /** Runs a program, never rejecting: its exit code (null: killed by the timeout) and its stdout. */
  run(file: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string }>;
  runSync(file: string, args: string[], timeoutMs: number): string;
  /** Starts a program and does not wait for it (it outlives this process if it must). */
  startDetached(file: string, args: string[]): void;
  /** `process.kill`. */
  kill(pid: number, signal: NodeJS.Signals | 0): void;
  /** The /proc table, on Linux. */
  readProc?(): ProcTable;
  sleep(ms: number): Promise<void>;
}

function readLinuxProc(): ProcTable {
  const table: ProcTable = new Map();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      table.set(Number(name), { state: fields[0], ppid: Number(fields[1]) });
    } catch {
      /* ended meanwhile */
    }
  }
  return table;
}

export const realSystem: ProcSystem = {
  platform: process.platform,
  run: (file, args, timeoutMs) => new Promise((resolve) => {
    execFile(file, args, { encoding: 'utf8', timeout: timeoutMs, windowsHide: true }, (err, stdout) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0;
      resolve({ code, stdout: String(stdout ?? '') });
    });
  }),
  runSync: (file, args, timeoutMs) => execFileSync(file, args, { encoding: 'utf8', timeout: timeoutMs, windowsHide: true }),
  startDetached: (file, args) => {
    const child = spawn(file, args, { detached: true, stdio: 'ignore', windowsHide: true });
    child.on('error', () => undefined);
    child.unref();
  },
  kill: (pid, signal) => { process.kill(pid, signal); },
  readProc: process.platform === 'linux' && fs.existsSync('/proc/self/stat') ? readLinuxProc : undefined,
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

const PS_ARGS = ['-A', '-o', 'pid=', '-o', 'ppid=', '-o', 'stat='];

/** `ps -A -o pid= -o ppid= -o stat=` output → table (the first letter of `stat` is the state). */
export function parsePs(out: string): ProcTable {
  const table: ProcTable = new Map();
  for (const line of out.split('\n')) {
    const [pid, ppid, stat] = line.trim().split(/\s+/);
    if (!/^\d+$/.test(pid ?? '') || !/^\d+$/.test(ppid ?? '')) continue;
    table.set(Number(pid), { ppid: Number(ppid), state: (stat ?? '?').charAt(0) });
  }
  return table;
}

/** The process table now; `undefined` where it cannot be read (Windows, no `ps`). */
export async function processTable(sys: ProcSystem = realSystem): Promise<ProcTable | undefined> {
  if (sys.platform === 'win32') return undefined;
  if (sys.platform === 'linux' && sys.readProc) return sys.readProc();
  const { code, stdout } = await sys.run('ps', PS_ARGS, 5000);
  return code === 0 ? parsePs(stdout) : undefined;
}

function processTableSync(sys: ProcSystem): ProcTable | undefined {
  if (sys.platform === 'win32') return undefined;
  if (sys.platform === 'linux' && sys.readProc) return sys.readProc();
  try {
    return parsePs(sys.runSync('ps', PS_ARGS, 5000));
  } catch {
    return undefined;
  }
}

/** A process that still runs: in the table and neither a zombie nor dead. */
export function isRunning(table: ProcTable, pid: number): boolean {
  const entry = table.get(pid);
  return entry !== undefined && entry.state !== 'Z' && entry.state !== 'X';
}

/** Every descendant of `root` in `table` (not `root` itself), deepest last. */
export function descendantsIn(table: ProcTable, root: number): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, { ppid }] of table) {
    const list = children.get(ppid) ?? [];
    list.push(pid);
    children.set(ppid, list);
  }
  const out: number[] = [];
  const queue = [...(children.get(root) ?? [])];
  while (queue.length) {
    const pid = queue.shift()!;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** Every living descendant of `root` (not `root` itself), deepest last. Empty where it cannot be told. */
export function descendantPids(root: number, sys: ProcSystem = realSystem): number[] {
  const table = processTableSync(sys);
  return table ? descendantsIn(table, root).filter((pid) => isRunning(table, pid)) : [];
}

function signal(sys: ProcSystem, pids: number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      sys.kill(pid, sig);
    } catch {
      /* already gone */
    }
  }
}

function exists(sys: ProcSystem, pid: number): boolean {
  try {
    sys.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const taskkill = (root: number) => ['/PID', String(root), '/T', '/F'];

/**
 * The processes `endTree` has signalled, per root, while it waits: a hard exit meanwhile (killTreeSync) kills them
 * too, even when their parent has already ended and they are no longer found below the root.
 */
const signalled = new Map<number, Set<number>>();

/**
 * Kills `root` and its descendants at once, for exit handlers, which cannot wait: SIGKILL to the tree, or on
 * Windows a detached `taskkill /T /F` that finishes the job after this process has gone.
 */
export function killTreeSync(root: number, sys: ProcSystem = realSystem): void {
  if (sys.platform === 'win32') {
    try { sys.startDetached('taskkill', taskkill(root)); } catch { /* cannot start it: nothing more to do here */ }
    return;
  }
  const table = processTableSync(sys);
  const known = [...(signalled.get(root) ?? [])].filter((pid) => pid !== root);
  const pids = new Set([root, ...(table ? descendantsIn(table, root) : []), ...known, ...(table ? known.flatMap((pid) => descendantsIn(table, pid)) : [])]);
  signal(sys, [...pids], 'SIGKILL');
}

/**
 * Ends `root` and its descendants: SIGTERM to all (git removes its half-written folders on SIGTERM), then, for
 * any still running after `graceMs`, SIGKILL. Resolves when none of them is running any more. On Windows,
 * `taskkill /T /F` (asynchronously, at most 5 s), then until the root process is gone (at most `graceMs`).
 */
export async function endTree(root: number, graceMs = 1500, sys: ProcSystem = realSystem): Promise<void> {
  if (sys.platform === 'win32') {
    await sys.run('taskkill', taskkill(root), 5000);
    const deadline = Date.now() + graceMs;
    while (exists(sys, root) && Date.now() < deadline) await sys.sleep(25);
    return;
  }
  const known = new Set<number>([root]);
  signalled.set(root, known);
  try {
    const first = await processTable(sys);
    const pids = [root, ...(first ? descendantsIn(first, root) : [])];
    pids.forEach((pid) => known.add(pid));
    signal(sys, pids, 'SIGTERM');
    const running = async (list: number[]) => {
      const table = await processTable(sys);
      if (!table) {
        // Without a table (no ps), only "does the pid exist" can be asked: a zombie then counts as running.
        return { left: list.filter((pid) => exists(sys, pid)), table };
      }
      // A helper started just before the first signal, below a process still running, is signalled too.
      const late = list.flatMap((pid) => descendantsIn(table, pid)).filter((pid) => !known.has(pid) && isRunning(table, pid));
      late.forEach((pid) => known.add(pid));
      signal(sys, late, 'SIGTERM');
      return { left: [...list, ...late].filter((pid) => isRunning(table, pid)), table };
    };
    const deadline = Date.now() + graceMs;
    let { left, table } = await running(pids);
    while (left.length && Date.now() < deadline) {
      await sys.sleep(first && sys.platform !== 'linux' ? 50 : 25);
      ({ left, table } = await running(left));
    }
    if (left.length) {
      // Helpers started meanwhile are caught too.
      const rest = [...left, ...(table ? left.flatMap((pid) => descendantsIn(table!, pid)) : [])];
      rest.forEach((pid) => known.add(pid));
      signal(sys, rest, 'SIGKILL');
      const hard = Date.now() + 1000;
      while (left.length && Date.now() < hard) {
        await sys.sleep(10);
        ({ left } = await running(left));
      }
    }
  } finally {
    signalled.delete(root);
  }
}

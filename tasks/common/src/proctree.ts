/**
 * Ending a child process together with everything it started. Killing only the direct child is not enough:
 * `git clone` runs `git remote-http` → `git-remote-http` (and index-pack, git-lfs…), which keep running as
 * orphans, keep the task's stdio pipes open (the tool runner then waits 10 s for them) and keep writing into a
 * folder that is being removed. The tree is collected first, then signalled, so no process escapes by being
 * re-parented in between.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';

/** Every living descendant of `root` (not `root` itself), deepest last. Empty where it cannot be told. */
export function descendantPids(root: number): number[] {
  const children = new Map<number, number[]>();
  const add = (pid: number, ppid: number) => {
    const list = children.get(ppid) ?? [];
    list.push(pid);
    children.set(ppid, list);
  };
  if (process.platform === 'linux' && fs.existsSync('/proc/self/stat')) {
    for (const name of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
        add(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      } catch {
        /* ended meanwhile */
      }
    }
  } else if (process.platform !== 'win32') {
    try {
      const out = execFileSync('ps', ['-A', '-o', 'pid=', '-o', 'ppid='], { encoding: 'utf8', timeout: 5000 });
      for (const line of out.split('\n')) {
        const [pid, ppid] = line.trim().split(/\s+/).map(Number);
        if (pid && ppid !== undefined) add(pid, ppid);
      }
    } catch {
      return [];
    }
  } else {
    return [];
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

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  if (process.platform === 'linux') {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
      return state !== 'Z' && state !== 'X';
    } catch {
      return false;
    }
  }
  return true;
}

function signal(pids: number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  }
}

/** SIGKILLs `root` and its descendants at once (for exit handlers, which cannot wait). */
export function killTreeSync(root: number): void {
  if (process.platform === 'win32') {
    try { execFileSync('taskkill', ['/PID', String(root), '/T', '/F'], { stdio: 'ignore', timeout: 5000 }); } catch { /* gone */ }
    return;
  }
  signal([root, ...descendantPids(root)], 'SIGKILL');
}

/**
 * Ends `root` and its descendants: SIGTERM to all (git removes its half-written folders on SIGTERM), then, for
 * any still running after `graceMs`, SIGKILL. Resolves when none of them is running any more.
 */
export async function endTree(root: number, graceMs = 1500): Promise<void> {
  if (process.platform === 'win32') {
    killTreeSync(root);
    return;
  }
  const pids = [root, ...descendantPids(root)];
  signal(pids, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  let left = pids.filter(alive);
  while (left.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
    left = left.filter(alive);
  }
  if (left.length) {
    // Helpers started meanwhile are caught too.
    signal([...left, ...left.flatMap(descendantPids)], 'SIGKILL');
    const hard = Date.now() + 1000;
    while (left.some(alive) && Date.now() < hard) await new Promise((r) => setTimeout(r, 10));
  }
}

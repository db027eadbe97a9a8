/**
 * Which git (and git-lfs) the tasks run. git on PATH wins. Where there is none (a Windows agent without Git for
 * Windows installed), the agent's own copy is used, as Microsoft's tasks and the agent's checkout do:
 * `<Agent.HomeDirectory>\externals\git\cmd\git.exe`. That copy is Git for Windows, which brings git-lfs
 * (`mingw64\bin\git-lfs.exe`; its `cmd\git.exe` puts that folder on the PATH of what it starts).
 */
import * as fs from 'fs';
import * as path from 'path';

export interface LookupSystem {
  platform: NodeJS.Platform;
  /** The tool's full path when it is on PATH (task-lib `which`). */
  which(tool: string): string | undefined;
  isFile(file: string): boolean;
  /** The path module of `platform` (`path.win32` in tests of Windows on Linux). */
  paths: path.PlatformPath;
}

export interface FoundTool {
  path: string;
  /** Where it came from, for the log. */
  from: string;
}

export const realLookup = (which: (tool: string) => string | undefined): LookupSystem => ({
  platform: process.platform,
  which,
  isFile: (file) => { try { return fs.statSync(file).isFile(); } catch { return false; } },
  paths: path,
});

/** The agent's own git: `<agentHome>/externals/git/cmd/git.exe` (Windows agents only). */
export function agentGitPath(agentHome: string, paths: path.PlatformPath = path.win32): string {
  return paths.join(agentHome, 'externals', 'git', 'cmd', 'git.exe');
}

/** git on PATH, else (Windows) the agent's own; `undefined` when there is neither. */
export function findGit(agentHome: string | undefined, sys: LookupSystem): FoundTool | undefined {
  const onPath = sys.which('git');
  if (onPath) return { path: onPath, from: 'on PATH' };
  if (sys.platform === 'win32' && agentHome) {
    const own = agentGitPath(agentHome, sys.paths);
    if (sys.isFile(own)) return { path: own, from: "the agent's own Git for Windows (Agent.HomeDirectory\\externals\\git); git is not on PATH" };
  }
  return undefined;
}

/** The git-lfs that `git lfs` runs with `git`: next to the agent's own git, else on PATH. */
export function findGitLfs(git: FoundTool, sys: LookupSystem): FoundTool | undefined {
  if (sys.platform === 'win32') {
    const p = sys.paths;
    // <root>\cmd\git.exe → <root>\mingw64\bin\git-lfs.exe (Git for Windows' layout).
    const root = p.dirname(p.dirname(git.path));
    if (p.basename(p.dirname(git.path)).toLowerCase() === 'cmd') {
      const bundled = p.join(root, 'mingw64', 'bin', 'git-lfs.exe');
      if (sys.isFile(bundled)) return { path: bundled, from: 'bundled with that Git for Windows' };
    }
  }
  const onPath = sys.which('git-lfs');
  return onPath ? { path: onPath, from: 'on PATH' } : undefined;
}

/** What to say when there is no git at all. */
export function gitMissingMessage(agentHome: string | undefined, platform: NodeJS.Platform, paths: path.PlatformPath = path): string {
  const own = platform === 'win32' && agentHome ? ` nor at ${agentGitPath(agentHome, paths)} (the agent's own copy)` : '';
  return `git was not found on PATH${own}. Install Git 2.31 or later with Git LFS (on Windows: Git for Windows) on the agent, or put it on PATH.`;
}

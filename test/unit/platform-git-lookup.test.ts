import assert from 'assert';
import * as path from 'path';
import { agentGitPath, findGit, findGitLfs, gitMissingMessage, LookupSystem } from '../../tasks/common/src/platform/git-lookup';

/** A Windows agent as seen through `path.win32`: what is on PATH and which files exist. */
function windows(onPath: Record<string, string>, files: string[]): LookupSystem {
  const set = new Set(files.map((f) => f.toLowerCase()));
  return { platform: 'win32', paths: path.win32, which: (t) => onPath[t], isFile: (f) => set.has(f.toLowerCase()) };
}

describe('platform/git-lookup: which git and git-lfs the tasks run', () => {
  const home = 'C:\\agent';
  const ownGit = 'C:\\agent\\externals\\git\\cmd\\git.exe';
  const ownLfs = 'C:\\agent\\externals\\git\\mingw64\\bin\\git-lfs.exe';

  it('Windows without git on PATH: the agent\'s own Git for Windows, and the git-lfs it brings', () => {
    assert.strictEqual(agentGitPath(home), ownGit);
    const sys = windows({}, [ownGit, ownLfs]);
    const git = findGit(home, sys)!;
    assert.deepStrictEqual(git.path, ownGit);
    assert.match(git.from, /agent's own Git for Windows.*not on PATH/);
    assert.deepStrictEqual(findGitLfs(git, sys), { path: ownLfs, from: 'bundled with that Git for Windows' });
  });

  it('git on PATH wins over the agent\'s copy; its git-lfs is the one on PATH', () => {
    const sys = windows({ git: 'C:\\Program Files\\Git\\cmd\\git.exe', 'git-lfs': 'C:\\Program Files\\Git\\mingw64\\bin\\git-lfs.exe' }, [ownGit, ownLfs]);
    const git = findGit(home, sys)!;
    assert.deepStrictEqual(git, { path: 'C:\\Program Files\\Git\\cmd\\git.exe', from: 'on PATH' });
    assert.strictEqual(findGitLfs(git, sys)!.path, 'C:\\Program Files\\Git\\mingw64\\bin\\git-lfs.exe');
  });

  it('no git anywhere: a message naming PATH, the agent\'s path and what to install', () => {
    assert.strictEqual(findGit(home, windows({}, [])), undefined);
    assert.strictEqual(findGit(undefined, windows({}, [ownGit])), undefined, 'no Agent.HomeDirectory, no guess');
    const m = gitMissingMessage(home, 'win32', path.win32);
    assert.match(m, /not found on PATH nor at C:\\agent\\externals\\git\\cmd\\git\.exe/);
    assert.match(m, /Install Git 2\.31 or later with Git LFS/);
  });

  it('macOS and Linux: only PATH (an agent has no git of its own there)', () => {
    const sys: LookupSystem = { platform: 'darwin', paths: path.posix, which: () => undefined, isFile: () => true };
    assert.strictEqual(findGit('/Users/runner/agent', sys), undefined);
    const found: LookupSystem = { ...sys, which: (t) => (t === 'git' ? '/opt/homebrew/bin/git' : t === 'git-lfs' ? '/opt/homebrew/bin/git-lfs' : undefined) };
    assert.deepStrictEqual(findGitLfs(findGit(undefined, found)!, found), { path: '/opt/homebrew/bin/git-lfs', from: 'on PATH' });
    assert.doesNotMatch(gitMissingMessage('/x', 'darwin'), /externals/);
  });
});

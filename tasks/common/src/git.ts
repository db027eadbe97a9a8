/** A typed wrapper over the git and git-lfs command lines, run through the host's tool runner. */
import { ExecOptions, ExecResult, TaskHost } from './host';
import { errorMessage, RunError } from './errors';
import { RetryDecision } from './retry';

const MIN_GIT = [2, 31];

export class GitError extends Error {
  constructor(readonly command: string, readonly code: number, readonly stderr: string) {
    super(`${command} failed (exit code ${code}): ${lastLines(stderr, 6) || 'no output'}`);
    this.name = 'GitError';
  }
}

export interface Ref {
  oid: string;
  name: string;
}

const TRANSIENT = [
  /RPC failed/i, /early EOF/i, /unexpected disconnect/i, /connection (was )?reset/i, /reset by peer/i,
  /returned error: (429|5\d\d)/i, /\b(429|50[0-4])\b.*(too many|gateway|unavailable|server error)/i,
  /remote end hung up/i, /timed? ?out/i, /could not resolve host/i, /failed to connect/i, /gnutls|ssl_read|ssl_error/i,
  /index-pack failed/i, /curl \d+/i, /transfer closed/i, /LFS: .*(connection|EOF|timeout)/i,
];

/** Whether a failed git command is worth another try (network faults, throttling, server errors). */
export function classifyGitError(err: unknown): RetryDecision {
  if (!(err instanceof GitError)) return { retry: false };
  if (/TF401019|TF400813|not found|returned error: (401|403|404)|Authentication failed|could not read Username/i.test(err.stderr)) {
    return { retry: false };
  }
  return { retry: TRANSIENT.some((re) => re.test(err.stderr)) };
}

export class Git {
  constructor(private readonly host: TaskHost, private readonly gitPath = 'git') {}

  private async run(args: string[], options: ExecOptions & { allowFailure?: boolean } = {}): Promise<ExecResult> {
    const result = await this.host.exec(this.gitPath, args, { silent: true, ...options });
    if (result.code !== 0 && !options.allowFailure) {
      throw new GitError(`git ${args.filter((a) => !a.startsWith('-c')).slice(0, 3).join(' ')}`, result.code, result.stderr);
    }
    return result;
  }

  async version(): Promise<string> {
    return (await this.run(['--version'])).stdout.trim();
  }

  /**
   * The git version, or a RunError that says what to install: credentials reach git through GIT_CONFIG_COUNT,
   * which needs git 2.31 or later.
   */
  async requireVersion(): Promise<string> {
    let version: string;
    try {
      version = await this.version();
    } catch (err) {
      throw new RunError(`git is not available on this agent (${errorMessage(err)}). Install git 2.31 or later.`);
    }
    const m = /(\d+)\.(\d+)/.exec(version);
    if (m && (Number(m[1]) < MIN_GIT[0] || (Number(m[1]) === MIN_GIT[0] && Number(m[2]) < MIN_GIT[1]))) {
      throw new RunError(`${version} is too old: credentials are passed to git through GIT_CONFIG_COUNT, which needs git ${MIN_GIT.join('.')} or later.`);
    }
    this.host.info?.(`git: ${version}`);
    return version;
  }

  async lfsVersion(): Promise<string | undefined> {
    const result = await this.run(['lfs', 'version'], { allowFailure: true });
    const version = result.code === 0 ? result.stdout.trim() : undefined;
    if (version) this.host.info?.(`git-lfs: ${version}`);
    return version;
  }

  /** `git clone --mirror`: every ref (branches, tags, notes, pull request refs) into a bare repository. */
  async cloneMirror(remoteUrl: string, dir: string, env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<void> {
    await this.run(['clone', '--mirror', '--no-progress', remoteUrl, dir], { env, signal });
  }

  /**
   * `git lfs fetch --all` in a mirror. Returns the object ids the server could not give (missing on the
   * server); throws for any other failure.
   */
  async lfsFetchAll(dir: string, env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<{ missing: string[] }> {
    const result = await this.run(['lfs', 'fetch', '--all', 'origin'], { cwd: dir, env, signal, allowFailure: true });
    if (result.code === 0) return { missing: [] };
    const missing = missingLfsObjects(result.stderr);
    if (missing.length > 0 && !TRANSIENT.some((re) => re.test(result.stderr))) return { missing };
    throw new GitError('git lfs fetch --all', result.code, result.stderr);
  }

  /** `git fsck --connectivity-only`: every ref's history is complete and readable. */
  async fsck(dir: string, signal?: AbortSignal): Promise<void> {
    await this.run(['fsck', '--connectivity-only', '--no-dangling', '--no-progress'], { cwd: dir, signal });
  }

  async refs(dir: string): Promise<Ref[]> {
    const out = (await this.run(['for-each-ref', '--format=%(objectname) %(refname)'], { cwd: dir })).stdout;
    return out.split('\n').filter(Boolean).map((line) => {
      const space = line.indexOf(' ');
      return { oid: line.slice(0, space), name: line.slice(space + 1) };
    });
  }

  /** The commit a ref points at, or undefined when the ref does not exist (an empty repository). */
  async resolve(dir: string, ref: string): Promise<string | undefined> {
    const result = await this.run(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`], { cwd: dir, allowFailure: true });
    return result.code === 0 ? result.stdout.trim() : undefined;
  }

  /** The ref a symbolic ref (HEAD) points at, e.g. `refs/heads/main`, or undefined when it is detached or missing. */
  async symbolicRef(dir: string, name = 'HEAD'): Promise<string | undefined> {
    const result = await this.run(['symbolic-ref', '--quiet', name], { cwd: dir, allowFailure: true });
    return result.code === 0 && result.stdout.trim() ? result.stdout.trim() : undefined;
  }

  /** One value of a config file read as a plain file (no includes, nothing executed), or undefined. */
  async configFileGet(file: string, key: string): Promise<string | undefined> {
    const result = await this.run(['config', '--file', file, '--get', key], { allowFailure: true });
    return result.code === 0 ? result.stdout.trim() : undefined;
  }

  /**
   * `git ls-remote` of a remote: its refs (peeled `^{}` lines and HEAD left out). `env` carries the credentials.
   */
  async lsRemote(remote: string, env: NodeJS.ProcessEnv, signal?: AbortSignal, cwd?: string): Promise<Ref[]> {
    const out = (await this.run(['ls-remote', remote], { env, signal, cwd })).stdout;
    const refs: Ref[] = [];
    for (const line of out.split('\n')) {
      const tab = line.indexOf('\t');
      if (tab < 0) continue;
      const name = line.slice(tab + 1).trim();
      if (!name.startsWith('refs/') || name.endsWith('^{}')) continue;
      refs.push({ oid: line.slice(0, tab).trim(), name });
    }
    return refs;
  }

  /**
   * `git ls-remote --symref`: every ref under `refs/` a mirror clone takes (peeled `^{}` lines left out) and the
   * ref HEAD points at (from the `ref: <target>\tHEAD` line), without fetching any object. `env` carries the credentials.
   * Protocol version 0: over HTTP the ref advertisement is then one request (GET info/refs), where version 2 takes a
   * second (POST ls-refs); both list the same refs (hidden refs are hidden from both, and from clones).
   */
  async lsRemoteSymref(remote: string, env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<{ refs: Ref[]; head?: string }> {
    const out = (await this.run(['-c', 'protocol.version=0', 'ls-remote', '--symref', remote], { env, signal })).stdout;
    const refs: Ref[] = [];
    let head: string | undefined;
    for (const line of out.split('\n')) {
      const tab = line.indexOf('\t');
      if (tab < 0) continue;
      const left = line.slice(0, tab).trim();
      const name = line.slice(tab + 1).replace(/\r$/, '');
      if (left.startsWith('ref: ')) {
        if (name === 'HEAD') head = left.slice(5).trim();
        continue;
      }
      if (!name.startsWith('refs/') || name.endsWith('^{}')) continue;
      refs.push({ oid: left, name });
    }
    return { refs, head };
  }

  /**
   * `git push --porcelain` of explicit refspecs from the repository in `dir` (hooks are not run). Returns the
   * status git reports for each ref; rejected refs do not throw. Throws a GitError when git reports no ref at all
   * (the transport failed: network, authentication, server error).
   */
  async push(dir: string, remote: string, refspecs: string[], env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<PushResult> {
    const result = await this.run(['push', '--porcelain', '--no-verify', '--no-progress', remote, ...refspecs], {
      cwd: dir, env, signal, allowFailure: true,
    });
    const updates = parsePushPorcelain(result.stdout);
    if (result.code !== 0 && updates.length === 0) throw new GitError('git push', result.code, result.stderr);
    return { code: result.code, updates, stderr: result.stderr };
  }

  /**
   * `git update-ref --stdin` in a local scratch repository (a restore's push repository): one transaction of `create <ref> <oid>` / `delete <ref>` lines
   * (ref names have no spaces or newlines), any number of refs for one process.
   */
  async updateRefs(dir: string, commands: string[]): Promise<void> {
    if (commands.length === 0) return;
    // Only for scratch repositories (a restore's temporary copy): no fsync per ref (git ≥ 2.36; older git ignores it).
    await this.run(['-c', 'core.fsync=none', 'update-ref', '--stdin'], { cwd: dir, input: commands.join('\n') + '\n' });
  }

  /**
   * `git lfs push --all <remote>`: uploads every LFS object referenced from any local ref that the local LFS store
   * holds. Objects the store lacks are reported (with `lfs.allowincompletepush` in `env`) rather than fatal.
   */
  async lfsPushAll(dir: string, remote: string, env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<{ missing: string[]; output: string }> {
    const result = await this.run(['lfs', 'push', '--all', remote], { cwd: dir, env, signal, allowFailure: true });
    const output = `${result.stdout}\n${result.stderr}`;
    if (result.code === 0) return { missing: missingLfsObjects(output), output };
    throw new GitError('git lfs push --all', result.code, result.stderr || result.stdout);
  }
}

export interface PushUpdate {
  /** git's flag: ` ` fast-forward, `+` forced, `-` deleted, `*` new, `=` up to date, `!` rejected. */
  flag: string;
  /** The destination ref. */
  ref: string;
  /** e.g. `[new branch]`, `[remote rejected] (hook declined)`. */
  summary: string;
}

export interface PushResult {
  code: number;
  updates: PushUpdate[];
  stderr: string;
}

/** Parses `git push --porcelain` output: `<flag>\t<from>:<to>\t<summary>` lines. */
export function parsePushPorcelain(stdout: string): PushUpdate[] {
  const out: PushUpdate[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^([ +\-*=!])\t([^\t]*)\t(.*)$/.exec(line.replace(/\r$/, ''));
    if (!m) continue;
    const colon = m[2].lastIndexOf(':');
    out.push({ flag: m[1], ref: colon >= 0 ? m[2].slice(colon + 1) : m[2], summary: m[3].trim() });
  }
  return out;
}

/** Object ids git-lfs names in its "does not exist on the server" / 404 lines. */
export function missingLfsObjects(stderr: string): string[] {
  const oids = new Set<string>();
  for (const line of stderr.split('\n')) {
    if (!/404|not exist|not found|missing/i.test(line)) continue;
    for (const m of line.matchAll(/\b[0-9a-f]{64}\b/g)) oids.add(m[0]);
  }
  return [...oids].sort();
}

function lastLines(text: string, n: number): string {
  return text.trim().split('\n').map((l) => l.trim()).filter(Boolean).slice(-n).join(' | ');
}

/** A typed wrapper over the git and git-lfs command lines, run through the host's tool runner. */
import { ExecOptions, ExecResult, TaskHost } from './host';
import { RetryDecision } from './retry';

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

  async lfsVersion(): Promise<string | undefined> {
    const result = await this.run(['lfs', 'version'], { allowFailure: true });
    return result.code === 0 ? result.stdout.trim() : undefined;
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

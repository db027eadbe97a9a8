// Small helpers shared by the harness modules and the tests.
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';

/** A TCP port that was free a moment ago on 127.0.0.1 (prefer `listen(0)` when the server allows it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

let tmpBase: string | undefined;

/** The per-process folder every `tmpDir` lives in: `<os.tmpdir()>/repobackup-harness-<pid>`. */
export function tmpBaseDir(): string {
  if (!tmpBase) {
    tmpBase = path.join(os.tmpdir(), `repobackup-harness-${process.pid}`);
    fs.mkdirSync(tmpBase, { recursive: true });
  }
  return tmpBase;
}

/** A fresh empty folder, removed by `cleanupAll()`. */
export function tmpDir(prefix: string): string {
  const safe = prefix.replace(/[^A-Za-z0-9._-]/g, '_') || 'tmp';
  return fs.mkdtempSync(path.join(tmpBaseDir(), `${safe}-`));
}

/** Removes every folder made by `tmpDir` in this process. */
export async function cleanupAll(): Promise<void> {
  if (!tmpBase) return;
  const dir = tmpBase;
  tmpBase = undefined;
  await fs.promises.rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/**
 * An environment for running git that ignores the developer's and the machine's git configuration
 * (no global/system config, no credential helpers, no prompts) and inherits no GIT_* variables.
 * `extra` is applied last.
 */
export function gitEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^GIT_/i.test(k) && !/_ASKPASS$/i.test(k)) env[k] = v;
  }
  env.GIT_CONFIG_NOSYSTEM = '1';
  env.GIT_CONFIG_GLOBAL = os.devNull;
  env.GIT_TERMINAL_PROMPT = '0';
  return { ...env, ...extra };
}

/**
 * Git configuration passed through the environment (GIT_CONFIG_COUNT/KEY_n/VALUE_n), so that secrets such as
 * `http.extraheader` never appear in argv or in a config file.
 */
export function gitConfigEnv(pairs: Array<[string, string]>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { GIT_CONFIG_COUNT: String(pairs.length) };
  pairs.forEach(([key, value], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = key;
    env[`GIT_CONFIG_VALUE_${i}`] = value;
  });
  return env;
}

/** `gitConfigEnv` for one `Authorization` header, e.g. `authEnv('Bearer abc')`. */
export function authEnv(authorization: string, more: Array<[string, string]> = []): NodeJS.ProcessEnv {
  return gitConfigEnv([['http.extraheader', `Authorization: ${authorization}`], ...more]);
}

export interface GitOptions {
  cwd?: string;
  /** Added to `gitEnv()` (the isolated environment). */
  env?: NodeJS.ProcessEnv;
  /** Written to stdin. */
  input?: string | Buffer;
  timeoutMs?: number;
}

export class GitError extends Error {
  constructor(
    message: string,
    readonly args: string[],
    readonly code: number | string | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'GitError';
  }
}

/** Runs git with the isolated environment and returns stdout; rejects with a `GitError` carrying stderr. */
export function git(args: string[], opts: GitOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'git',
      args,
      {
        cwd: opts.cwd,
        env: gitEnv(opts.env),
        maxBuffer: 256 * 1024 * 1024,
        timeout: opts.timeoutMs ?? 120_000,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        const code = (err as NodeJS.ErrnoException & { code?: number | string }).code ?? null;
        reject(new GitError(`git ${args.join(' ')} failed (${code}): ${stderr.trim()}`, args, code, stdout, stderr));
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/** `objectname refname` for every ref of a repository, one per line, sorted by refname. */
export function forEachRef(gitDir: string): Promise<string> {
  return git(['--git-dir', gitDir, 'for-each-ref', '--format=%(objectname) %(refname)']);
}

/** `forEachRef` as a map refname → object id. */
export async function refMap(gitDir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const line of (await forEachRef(gitDir)).split('\n')) {
    const sp = line.indexOf(' ');
    if (sp > 0) out[line.slice(sp + 1)] = line.slice(0, sp);
  }
  return out;
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

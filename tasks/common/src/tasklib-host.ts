/** TaskHost over azure-pipelines-task-lib: the only file that imports task-lib. */
import * as tl from 'azure-pipelines-task-lib/task';
import * as tlInternal from 'azure-pipelines-task-lib/internal';
import type { ChildProcess } from 'child_process';
import { StringDecoder } from 'string_decoder';
import { earlySecret } from './early-secrets';
import { ExecOptions, ExecResult, TaskHost, TaskOutcome } from './host';
import { findGit, findGitLfs, gitMissingMessage, realLookup } from './platform/git-lookup';
import { endTree, killTreeSync } from './platform/proctree';


export class TaskLibHost implements TaskHost {
  private readonly toolPaths = new Map<string, string>();
  /** Process ids of the tools running now. */
  private readonly running = new Set<number>();

  constructor() {
    // A hard exit (a second cancel signal, or a run that does not wind down in time) skips every `finally`:
    // no tool and none of the helpers it started may outlive the task.
    process.on('exit', () => {
      for (const pid of this.running) killTreeSync(pid);
    });
  }

  input(name: string): string | undefined {
    const value = tl.getInput(name, false)?.trim();
    return value ? value : undefined;
  }

  secretInput(name: string): string | undefined {
    const value = this.quietInput(name);
    if (value) this.setSecret(value);
    return value;
  }

  quietInput(name: string): string | undefined {
    // tl.getInput would print `name=value` in a debug line first; read the vault it reads, without the echo.
    const vault = (tlInternal as unknown as { _vault?: { retrieveSecret(key: string): string | undefined } })._vault;
    const value = (vault ? vault.retrieveSecret(`INPUT_${tlInternal._getVariableKey(name)}`) : tl.getInput(name, false))?.trim();
    return value ? value : undefined;
  }

  variable(name: string): string | undefined {
    const value = tl.getVariable(name)?.trim();
    return value ? value : undefined;
  }

  secretVariable(name: string): string | undefined {
    // tl.getVariable prints `name=value` in a debug line: read the vault (or the public value) without the echo.
    const key = tlInternal._getVariableKey(name);
    const vault = (tlInternal as unknown as { _vault?: { retrieveSecret(key: string): string | undefined } })._vault;
    const value = (earlySecret(name) ?? vault?.retrieveSecret(`SECRET_${key}`) ?? process.env[key])?.trim();
    if (!value) return undefined;
    this.setSecret(value);
    return value;
  }

  endpointUrl(id: string): string | undefined {
    return tl.getEndpointUrl(id, true) || undefined;
  }

  /**
   * Read from the endpoint's authorization object: task-lib's getEndpointAuthorizationParameter (and getVariable)
   * print the value in a debug line before anyone could register it as a secret.
   */
  endpointAuthParameter(id: string, key: string): string | undefined {
    const params = (tl.getEndpointAuthorization(id, true)?.parameters ?? {}) as Record<string, string>;
    const found = Object.keys(params).find((k) => k.toLowerCase() === key.toLowerCase());
    return (found ? params[found] : undefined) || undefined;
  }

  endpointAuthScheme(id: string): string | undefined {
    return tl.getEndpointAuthorizationScheme(id, true) || undefined;
  }

  endpointData(id: string, key: string): string | undefined {
    return tl.getEndpointDataParameter(id, key, true) || undefined;
  }

  setSecret(value: string): void {
    // The agent masks single lines only (task-lib refuses a value with line breaks): a multi-line secret (a key
    // file) is registered line by line.
    for (const line of value.split(/\r?\n/)) if (line.trim()) tl.setSecret(line.trim());
  }

  info(message: string): void {
    console.log(message);
  }

  warn(message: string): void {
    tl.warning(message);
  }

  error(message: string): void {
    tl.error(message);
  }

  debug(message: string): void {
    tl.debug(message);
  }

  setProgress(percent: number, text: string): void {
    tl.setProgress(Math.max(0, Math.min(100, Math.round(percent))), text);
  }

  uploadSummary(markdownPath: string): void {
    tl.uploadSummary(markdownPath);
  }

  setResult(outcome: TaskOutcome, message: string): void {
    tl.setResult(tl.TaskResult[outcome], message);
  }

  /** git on PATH, else the agent's own (Windows); says once which git and git-lfs the run uses. */
  private locateGit(): string {
    const sys = realLookup((t) => tl.which(t, false) || undefined);
    const home = this.variable('Agent.HomeDirectory');
    const git = findGit(home, sys);
    if (!git) throw new Error(gitMissingMessage(home, sys.platform));
    const lfs = findGitLfs(git, sys);
    this.info(`Using git ${git.path} (${git.from}); git-lfs ${lfs ? `${lfs.path} (${lfs.from})` : 'not found next to it or on PATH'}.`);
    return git.path;
  }

  async exec(tool: string, args: string[], options: ExecOptions = {}): Promise<ExecResult> {
    let toolPath = this.toolPaths.get(tool);
    if (!toolPath) {
      toolPath = tool === 'git' ? this.locateGit() : tl.which(tool, true);
      this.toolPaths.set(tool, toolPath);
    }
    const runner = tl.tool(toolPath).arg(args);
    // Output is parsed (ref lists of thousands of refs, LFS object lists): keep all of it, as bytes, and decode
    // once at the end so that a character split across two chunks stays whole. The live stderr callback gets
    // text through a decoder that carries a split character over to the next chunk.
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const liveStderr = new StringDecoder('utf8');
    runner.on('stdout', (data: Buffer) => { stdout.push(data); });
    runner.on('stderr', (data: Buffer) => {
      stderr.push(data);
      if (options.onStderr) {
        const text = liveStderr.write(data);
        if (text) options.onStderr(text);
      }
    });
    if (options.signal?.aborted) throw options.signal.reason;
    const execution = runner.execAsync({
      cwd: options.cwd,
      env: options.env as { [key: string]: string } | undefined,
      silent: options.silent ?? true,
      ignoreReturnCode: true,
      failOnStdErr: false,
      windowsVerbatimArguments: false,
    });
    // The tool runner spawns synchronously; its child is not public, but its pid is what ends the whole tree, and
    // its stdin is where `input` goes (the runner leaves the pipe open otherwise).
    const child = (runner as unknown as { childProcess?: ChildProcess }).childProcess;
    const pid = child?.pid;
    if (options.input !== undefined) {
      if (!child?.stdin) throw new Error(`cannot write to the standard input of ${tool}`);
      child.stdin.on('error', () => undefined); // a tool that exits early closes the pipe: its exit code says what happened
      child.stdin.end(options.input);
    }
    if (pid) this.running.add(pid);
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_resolve, reject) => {
      onAbort = () => {
        // End git and every helper it started (remote-http, index-pack, git-lfs), not only the direct child;
        // once they are gone, do not wait for the tool runner's 10 s stdio grace.
        const ended = pid ? endTree(pid) : Promise.resolve(runner.killChildProcess('SIGTERM'));
        void ended.then(() => setTimeout(() => reject(options.signal?.reason ?? new Error('canceled')), 250));
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
    });
    aborted.catch(() => undefined);
    try {
      const code = await Promise.race([execution, aborted]);
      if (options.signal?.aborted) throw options.signal.reason;
      return { code, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') };
    } finally {
      if (onAbort) options.signal?.removeEventListener('abort', onAbort);
      if (pid) this.running.delete(pid);
    }
  }
}

// Runs a bundled task entry (`tasks/<Task>/<TaskVn>/dist/index.js`) the way the Azure Pipelines agent does:
// `node <entry>` with inputs, the System.VssConnection endpoint, the predefined variables and the variables in the
// environment, then parses the `##vso[…]` logging commands it printed.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

export interface RunTaskOptions {
  /** Input name → value; becomes `INPUT_<NAME>` (upper case, `.` and spaces → `_`). */
  inputs: Record<string, string>;
  /** Collection URL (System.CollectionUri), e.g. `standin.orgUrl`. */
  orgUrl?: string;
  /** The job access token handed over through the System.VssConnection endpoint (and System.AccessToken). */
  token?: string;
  /** A working folder for this run: Agent.TempDirectory, Agent.WorkFolder and HOME live under it. */
  tempDir: string;
  /** Public variables (name → value), e.g. `{ 'System.Debug': 'true' }`. */
  variables?: Record<string, string>;
  /** Secret variables: passed as `SECRET_<NAME>` like the agent does. */
  secrets?: Record<string, string>;
  /** Raw environment additions, applied last. */
  env?: Record<string, string>;
  /** Kills the task (SIGKILL) after this long; default 10 minutes. */
  timeoutMs?: number;
  onSpawn?(child: ChildProcess): void;
  /**
   * By default a run whose stdout or stderr says `Unhandled` (task-lib's words for an unhandled rejection or
   * exception that ended the task) rejects: no test may pass over a crash. Set only by a test that provokes one.
   */
  allowUnhandled?: boolean;
}

/** The agent's order of task results: the worst one a task reports is the one the step ends with. */
const RESULT_RANK: Record<string, number> = { Succeeded: 0, Skipped: 0, SucceededWithIssues: 1, Canceled: 2, Failed: 3 };

/** The worst `task.complete` of a run (the agent keeps the worst), or undefined when there was none. */
export function worstResult(commands: TaskCommand[]): { result: string; message: string } | undefined {
  let worst: TaskCommand | undefined;
  for (const c of commands) {
    if (c.command !== 'task.complete') continue;
    const rank = RESULT_RANK[c.props.result ?? ''] ?? 3;
    if (!worst || rank > (RESULT_RANK[worst.props.result ?? ''] ?? 3)) worst = c;
  }
  return worst ? { result: worst.props.result ?? '', message: worst.message } : undefined;
}

/** task-lib's and Node's words for a crash: an unhandled rejection or exception. */
export const CRASH = /\bUnhandled\b|uncaughtException|UnhandledPromiseRejection/i;

export interface TaskCommand {
  /** e.g. `task.complete`, `task.setvariable`, `task.issue`. */
  command: string;
  props: Record<string, string>;
  message: string;
}

export interface TaskRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  /** stdout lines. */
  lines: string[];
  /**
   * The task's result as the agent keeps it: the WORST of every `##vso[task.complete result=…]message` it printed
   * (Failed > SucceededWithIssues > Succeeded), with that command's message; not the last one.
   */
  result?: { result: string; message: string };
  commands: TaskCommand[];
  durationMs: number;
}

/**
 * System.PipelineStartTime of every simulated run unless a test sets its own: the run folder is dated by it, so
 * expected paths never depend on the clock (a suite that runs across midnight UTC expects the same folder).
 */
export const HARNESS_PIPELINE_START = '2026-03-14 09:26:53+00:00';
/** The date segment of the run folder that HARNESS_PIPELINE_START gives. */
export const HARNESS_RUN_DATE = '2026-03-14';

/** How the agent (and task-lib) turn an input or variable name into an environment variable name. */
export const envName = (name: string) => name.replace(/\./g, '_').replace(/ /g, '_').toUpperCase();

/** Environment variables a developer shell or a real agent may have that must not leak into a simulated run. */
const AGENT_ENV = /^(INPUT_|ENDPOINT_|SECRET_|SECUREFILE_|SYSTEM_|BUILD_|RELEASE_|AGENT_|PIPELINE_|VSTS_|TASK_|TF_BUILD$|GIT_)/i;

export function taskEnv(opts: RunTaskOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!AGENT_ENV.test(k)) env[k] = v;

  const agentTemp = path.join(opts.tempDir, 'agent-temp');
  const workFolder = path.join(opts.tempDir, 'work');
  const home = path.join(opts.tempDir, 'home');
  for (const dir of [agentTemp, workFolder, home]) fs.mkdirSync(dir, { recursive: true });
  // A fresh HOME keeps the developer's ~/.gitconfig (credential helpers, signing…) out of the run.
  env.HOME = home;

  const variables: Record<string, string> = {
    'System.CollectionUri': opts.orgUrl ?? '',
    'System.TeamFoundationCollectionUri': opts.orgUrl ?? '',
    'System.TeamProject': 'Team Alpha',
    'System.TeamProjectId': '00000000-0000-0000-0000-00000000a1fa',
    'System.DefinitionId': '7',
    'System.HostType': 'build',
    'System.JobAttempt': '1',
    'System.JobPositionInPhase': '1',
    'System.TotalJobsInPhase': '1',
    'System.Debug': 'false',
    'Build.BuildId': '1234',
    'Build.BuildNumber': '20240101.1',
    'System.PipelineStartTime': HARNESS_PIPELINE_START,
    'Agent.TempDirectory': agentTemp,
    'Agent.WorkFolder': workFolder,
    'Agent.Version': '4.258.1',
    'Agent.Name': 'standin-agent',
    'Agent.OS': process.platform === 'win32' ? 'Windows_NT' : process.platform === 'darwin' ? 'Darwin' : 'Linux',
    ...opts.variables,
  };
  for (const [name, value] of Object.entries(variables)) env[envName(name)] = value;
  env.VSTS_PUBLIC_VARIABLES = JSON.stringify(Object.keys(variables));

  const secrets: Record<string, string> = { ...opts.secrets };
  if (opts.token !== undefined) secrets['System.AccessToken'] = opts.token;
  for (const [name, value] of Object.entries(secrets)) env[`SECRET_${envName(name)}`] = value;
  env.VSTS_SECRET_VARIABLES = JSON.stringify(Object.keys(secrets));

  if (opts.orgUrl !== undefined) env.ENDPOINT_URL_SYSTEMVSSCONNECTION = opts.orgUrl;
  if (opts.token !== undefined) {
    env.ENDPOINT_AUTH_SYSTEMVSSCONNECTION = JSON.stringify({ parameters: { AccessToken: opts.token }, scheme: 'OAuth' });
    env.ENDPOINT_AUTH_SCHEME_SYSTEMVSSCONNECTION = 'OAuth';
    env.ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN = opts.token;
  }
  for (const [name, value] of Object.entries(opts.inputs)) env[`INPUT_${envName(name)}`] = value;
  return { ...env, ...opts.env };
}

/** Every task process group still running: ended when the test process exits, whatever state a failed test left. */
const liveGroups = new Set<number>();
process.on('exit', () => {
  for (const pgid of liveGroups) {
    try { process.kill(-pgid, 'SIGKILL'); } catch { /* gone */ }
  }
});

export function runTask(entry: string, opts: RunTaskOptions): Promise<TaskRun> {
  const started = Date.now();
  // Its own process group: a timeout ends the task AND every git process it started. Killing only the task would
  // leave its children holding the task's stdout/stderr pipes open, and those open pipes would keep this (mocha)
  // process alive after the test failed.
  const child = spawn(process.execPath, [path.resolve(entry)], {
    cwd: opts.tempDir,
    env: taskEnv(opts),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: process.platform !== 'win32',
  });
  const pgid = process.platform !== 'win32' ? child.pid : undefined;
  if (pgid) liveGroups.add(pgid);
  const killGroup = () => {
    if (pgid) {
      try { process.kill(-pgid, 'SIGKILL'); } catch { /* already gone */ }
    } else {
      child.kill('SIGKILL');
    }
  };
  opts.onSpawn?.(child);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => err.push(d));
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; killGroup(); }, opts.timeoutMs ?? 600_000);
  return new Promise((resolve, reject) => {
    let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let streamsTimer: NodeJS.Timeout | undefined;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      clearTimeout(streamsTimer);
      if (pgid) liveGroups.delete(pgid);
      const { code, signal } = exited!;
      const stdout = Buffer.concat(out).toString('utf8');
      const lines = stdout.split(/\r?\n/);
      if (lines[lines.length - 1] === '') lines.pop();
      const commands = lines.map(parseCommand).filter((c): c is TaskCommand => c !== undefined);
      const stderr = Buffer.concat(err).toString('utf8');
      const run: TaskRun = {
        code, signal, timedOut, stdout, stderr, lines, commands, result: worstResult(commands), durationMs: Date.now() - started,
      };
      if (!opts.allowUnhandled && (CRASH.test(stdout) || CRASH.test(stderr))) {
        const line = [...stdout.split('\n'), ...stderr.split('\n')].find((l) => CRASH.test(l));
        reject(new Error(`the task crashed (${line?.trim()}); result ${JSON.stringify(run.result)}\n--- stdout (end)\n${stdout.slice(-4000)}\n--- stderr (end)\n${stderr.slice(-2000)}`));
        return;
      }
      resolve(run);
    };
    child.once('error', (e) => { clearTimeout(timer); if (pgid) liveGroups.delete(pgid); reject(e); });
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      // Output still in the pipes arrives before 'close'; a process the task left behind that holds the pipes open
      // must not hold the test: after a grace, it is ended and the pipes are let go.
      streamsTimer = setTimeout(() => {
        killGroup();
        child.stdout.destroy();
        child.stderr.destroy();
        finish();
      }, 5000);
    });
    child.once('close', () => {
      if (!exited) exited = { code: child.exitCode, signal: child.signalCode };
      finish();
    });
  });
}

const unescapeData = (s: string) => s.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%AZP25/g, '%');
const unescapeProp = (s: string) => unescapeData(s.replace(/%5D/g, ']').replace(/%3B/g, ';'));

/** Parses one `##vso[area.action k=v;…]message` line (task-lib's escaping), or undefined. */
export function parseCommand(line: string): TaskCommand | undefined {
  const start = line.indexOf('##vso[');
  if (start < 0) return undefined;
  const body = line.slice(start + 6);
  const close = body.indexOf(']');
  if (close < 0) return undefined;
  const info = body.slice(0, close).trim();
  const space = info.indexOf(' ');
  const command = space < 0 ? info : info.slice(0, space);
  const props: Record<string, string> = {};
  if (space >= 0) {
    for (const part of info.slice(space + 1).split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0) props[part.slice(0, eq).trim()] = unescapeProp(part.slice(eq + 1));
    }
  }
  return { command, props, message: unescapeData(body.slice(close + 1)) };
}

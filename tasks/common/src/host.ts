/**
 * The engine's only view of the agent. `TaskLibHost` implements it over azure-pipelines-task-lib; tests and
 * tools can implement it without any task-lib globals. Nothing else in the engine imports task-lib.
 */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  debug(message: string): void;
}

export type TaskOutcome = 'Succeeded' | 'SucceededWithIssues' | 'Failed';

export interface ExecOptions {
  cwd?: string;
  /** The complete environment of the child (callers start from `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** Do not echo the child's output to the log (it is still captured). */
  silent?: boolean;
  /** Called with each chunk of stderr as it arrives (progress, live diagnostics). */
  onStderr?(chunk: string): void;
  /** Aborting ends the child (SIGTERM) and rejects the call. */
  signal?: AbortSignal;
  /** Written to the child's standard input, which is then closed (e.g. `git update-ref --stdin`). */
  input?: string;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface TaskHost extends Logger {
  /** A task input as the agent passes it (`INPUT_<NAME>`), trimmed; `undefined` when empty. */
  input(name: string): string | undefined;
  /**
   * An input that holds a secret (PAT, SAS URL): read without the debug echo task-lib gives every input, and
   * registered with the agent's masker before anything else can print it.
   */
  secretInput(name: string): string | undefined;
  /**
   * An input read without task-lib's debug echo and NOT masked: public values where a user may paste a secret by
   * mistake (an age identity in encryptionRecipients), so the caller can mask just that part.
   */
  quietInput(name: string): string | undefined;
  /** A pipeline variable (`System.CollectionUri`, `Agent.TempDirectory`, …), or `undefined`. */
  variable(name: string): string | undefined;
  /**
   * A secret variable (`Agent.ProxyPassword`): read without the debug echo task-lib's getVariable prints, and
   * registered with the agent's masker before anything else can print it.
   */
  secretVariable?(name: string): string | undefined;
  endpointUrl(id: string): string | undefined;
  endpointAuthParameter(id: string, key: string): string | undefined;
  endpointAuthScheme(id: string): string | undefined;
  /** A service connection's data value (`ENDPOINT_DATA_<id>_<KEY>`, e.g. environmentAuthorityUrl), or `undefined`. */
  endpointData?(id: string, key: string): string | undefined;
  /** Registers a value the agent must mask in every log line from now on. */
  setSecret(value: string): void;
  setProgress(percent: number, text: string): void;
  /** Attaches a markdown file to the run's summary tab. */
  uploadSummary(markdownPath: string): void;
  setResult(outcome: TaskOutcome, message: string): void;
  /** Runs a tool (git, git-lfs) through the agent's tool runner; never rejects on a non-zero exit code. */
  exec(tool: string, args: string[], options?: ExecOptions): Promise<ExecResult>;
}

/** TaskHost over azure-pipelines-task-lib: the only file that imports task-lib. */
import * as tl from 'azure-pipelines-task-lib/task';
import * as tlInternal from 'azure-pipelines-task-lib/internal';
import { ExecOptions, ExecResult, TaskHost, TaskOutcome } from './host';

const MAX_CAPTURE = 256 * 1024;

function appendCapped(buffer: string, chunk: string): string {
  const next = buffer + chunk;
  return next.length > MAX_CAPTURE ? next.slice(next.length - MAX_CAPTURE) : next;
}

export class TaskLibHost implements TaskHost {
  private readonly toolPaths = new Map<string, string>();

  input(name: string): string | undefined {
    const value = tl.getInput(name, false)?.trim();
    return value ? value : undefined;
  }

  secretInput(name: string): string | undefined {
    // tl.getInput would print `name=value` in a debug line first; read the vault it reads, without the echo.
    const vault = (tlInternal as unknown as { _vault?: { retrieveSecret(key: string): string | undefined } })._vault;
    const value = (vault ? vault.retrieveSecret(`INPUT_${tlInternal._getVariableKey(name)}`) : tl.getInput(name, false))?.trim();
    if (!value) return undefined;
    this.setSecret(value);
    return value;
  }

  variable(name: string): string | undefined {
    const value = tl.getVariable(name)?.trim();
    return value ? value : undefined;
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

  setSecret(value: string): void {
    if (value) tl.setSecret(value);
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

  async exec(tool: string, args: string[], options: ExecOptions = {}): Promise<ExecResult> {
    let toolPath = this.toolPaths.get(tool);
    if (!toolPath) {
      toolPath = tl.which(tool, true);
      this.toolPaths.set(tool, toolPath);
    }
    const runner = tl.tool(toolPath).arg(args);
    let stdout = '';
    let stderr = '';
    runner.on('stdout', (data: Buffer) => { stdout = appendCapped(stdout, data.toString()); });
    runner.on('stderr', (data: Buffer) => {
      const text = data.toString();
      stderr = appendCapped(stderr, text);
      options.onStderr?.(text);
    });
    const onAbort = () => runner.killChildProcess('SIGTERM');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (options.signal?.aborted) throw options.signal.reason;
      const code = await runner.execAsync({
        cwd: options.cwd,
        env: options.env as { [key: string]: string } | undefined,
        silent: options.silent ?? true,
        ignoreReturnCode: true,
        failOnStdErr: false,
        windowsVerbatimArguments: false,
      });
      if (options.signal?.aborted) throw options.signal.reason;
      return { code, stdout, stderr };
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  }
}

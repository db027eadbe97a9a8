/** A TaskHost for engine tests: inputs and variables from maps, log lines recorded, tools run for real. */
import { execFile } from 'child_process';
import { ExecOptions, ExecResult, TaskHost, TaskOutcome } from '../../tasks/common/src/host';

export class FakeHost implements TaskHost {
  readonly lines: Array<{ level: 'info' | 'warn' | 'error' | 'debug'; message: string }> = [];
  readonly secrets: string[] = [];
  result?: { outcome: TaskOutcome; message: string };

  constructor(
    private readonly inputs: Record<string, string> = {},
    private readonly variables: Record<string, string> = {},
    private readonly endpoint: { url?: string; token?: string } = {},
  ) {}

  input(name: string) { return this.inputs[name]?.trim() || undefined; }
  secretInput(name: string) {
    const value = this.input(name);
    if (value) this.setSecret(value);
    return value;
  }
  quietInput(name: string) { return this.input(name); }
  variable(name: string) { return this.variables[name] || undefined; }
  endpointUrl() { return this.endpoint.url; }
  endpointAuthParameter(_id: string, key: string) { return key === 'AccessToken' ? this.endpoint.token : undefined; }
  endpointAuthScheme(_id?: string): string | undefined { return this.endpoint.token ? 'OAuth' : undefined; }
  setSecret(value: string) { this.secrets.push(value); }
  info(message: string) { this.lines.push({ level: 'info', message }); }
  warn(message: string) { this.lines.push({ level: 'warn', message }); }
  error(message: string) { this.lines.push({ level: 'error', message }); }
  debug(message: string) { this.lines.push({ level: 'debug', message }); }
  setProgress() { /* not recorded */ }
  uploadSummary() { /* not recorded */ }
  setResult(outcome: TaskOutcome, message: string) { this.result = { outcome, message }; }
  warnings() { return this.lines.filter((l) => l.level === 'warn').map((l) => l.message); }

  exec(tool: string, args: string[], options: ExecOptions = {}): Promise<ExecResult> {
    return new Promise((resolve) => {
      const child = execFile(tool, args, { cwd: options.cwd, env: options.env, maxBuffer: 64 << 20, signal: options.signal }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === 'number' ? Number((err as { code?: unknown }).code) : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      });
      child.stdin?.on('error', () => undefined);
      if (options.input !== undefined) child.stdin?.end(options.input);
    });
  }
}

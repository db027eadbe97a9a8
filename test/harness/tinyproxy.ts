// A real forward proxy for the tests: tinyproxy, as a corporate proxy plays it (CONNECT tunnels, absolute-URI
// forwarding, Basic proxy authentication). scripts/ensure-tools.sh installs it.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { freePort } from './util';

export interface Tinyproxy {
  url: string;
  port: number;
  log(): string;
  stop(): Promise<void>;
}

/**
 * tinyproxy (Debian package) in the foreground with its own config: Basic authentication when `auth` is given, its
 * outgoing connections from `bind` (e.g. 127.0.0.2, so servers can tell a proxied connection from a direct one).
 * Its log (LogLevel Connect) names every host:port it connected or tunnelled to.
 */
export async function startTinyproxy(dir: string, opts: { auth?: { user: string; password: string }; bind?: string } = {}): Promise<Tinyproxy> {
  const auth = opts.auth;
  const port = await freePort();
  const logFile = path.join(dir, 'tinyproxy.log');
  const conf = path.join(dir, 'tinyproxy.conf');
  fs.writeFileSync(conf, [
    `Port ${port}`, 'Listen 127.0.0.1', ...(opts.bind ? [`Bind ${opts.bind}`] : []), 'Timeout 120', `LogFile "${logFile}"`, 'LogLevel Connect',
    'MaxClients 100', 'Allow 127.0.0.1', 'DisableViaHeader Yes', ...(auth ? [`BasicAuth ${auth.user} ${auth.password}`] : []), '',
  ].join('\n'));
  const child: ChildProcess = spawn('tinyproxy', ['-d', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => { output += d; });
  child.stderr!.on('data', (d) => { output += d; });
  for (const start = Date.now(); ; await new Promise((r) => setTimeout(r, 50))) {
    if (child.exitCode !== null) throw new Error(`tinyproxy exited: ${output}`);
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (up) break;
    if (Date.now() - start > 10_000) { child.kill('SIGKILL'); throw new Error(`tinyproxy did not listen: ${output}`); }
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    log: () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : ''),
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 3000).unref();
    }),
  };
}

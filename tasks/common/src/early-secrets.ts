/**
 * Imported first by each task's index.ts, before azure-pipelines-task-lib loads: task-lib's start-up reads the
 * agent's proxy settings and prints `Agent.ProxyPassword=<value>` in a debug line. The password (a secret variable,
 * `SECRET_AGENT_PROXYPASSWORD`) is taken out of the environment here, before that happens, and kept for network.ts,
 * which reads it through the host and registers it with the agent's masker. It never reaches a child process's
 * environment either.
 */
const taken = new Map<string, string>();

for (const name of ['Agent.ProxyPassword']) {
  const key = `SECRET_${name.replace(/\./g, '_').replace(/ /g, '_').toUpperCase()}`;
  const value = process.env[key];
  if (value !== undefined) {
    delete process.env[key];
    if (value) taken.set(name.toLowerCase(), value);
  }
}

/** A secret variable taken out of the environment before task-lib loaded, if any. */
export function earlySecret(name: string): string | undefined {
  return taken.get(name.toLowerCase());
}

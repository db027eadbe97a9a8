import { nodeVersionProblem } from './runtime';

/** The signals the agent cancels with. SIGBREAK is Windows' CTRL_BREAK; elsewhere it can be listened to but never arrives. */
export const CANCEL_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGBREAK'];

/**
 * Runs a task's main function. First, the Node.js version is checked (see runtime.ts).
 *
 * Cancellation as the agent does it: SIGINT, then SIGTERM a few seconds later; on Windows CTRL_C (SIGINT), then
 * CTRL_BREAK (SIGBREAK, which ends a process at once unless it is handled). The first signal aborts the run (git
 * children are ended, temp folders removed by the `finally` blocks); a second one, or a run that does not wind
 * down within `graceMs`, exits at once (the `exit` handlers still end every git process tree).
 */
export function runWithCancellation(
  main: (signal: AbortSignal) => Promise<unknown>, graceMs = 4000, exit: (code: number) => void = (code) => process.exit(code),
): void {
  // Before anything else: on an agent that fell back to Node 16 every later step would fail on its own, obscurely.
  const unsupported = nodeVersionProblem();
  if (unsupported) {
    console.log(`##vso[task.complete result=Failed;]${unsupported}`);
    process.exitCode = 1;
    return;
  }
  const controller = new AbortController();
  let signals = 0;
  let graceTimer: NodeJS.Timeout | undefined;
  // A hard exit skips every pending `finally`: the host and the orchestrator end their git processes and remove
  // their temporary folders in synchronous `process.on('exit')` handlers instead.
  const exitNow = (why: string) => {
    console.log(`${why}: exiting now (git processes are killed, temporary folders removed).`);
    console.log('##vso[task.complete result=Failed;]Canceled: the run was stopped before it finished; no manifest was written.');
    exit(1);
  };
  const onSignal = (name: NodeJS.Signals) => {
    signals++;
    if (signals > 1) return exitNow(`Received ${name} as well`);
    console.log(`Received ${name}: stopping (git processes are ended, temporary folders removed).`);
    controller.abort(new Error(`canceled (${name})`));
    graceTimer = setTimeout(() => exitNow(`Not stopped within ${graceMs / 1000} s`), graceMs);
    graceTimer.unref();
  };
  for (const name of CANCEL_SIGNALS) process.on(name, onSignal);
  main(controller.signal)
    .catch((err) => {
      console.log(`##vso[task.complete result=Failed;]${String(err?.message ?? err).split('\n')[0]}`);
    })
    .finally(() => {
      for (const name of CANCEL_SIGNALS) process.removeListener(name, onSignal);
      if (graceTimer) clearTimeout(graceTimer);
    });
}

// Mocha root hooks (loaded by .mocharc.json). After the whole suite, anything still holding the process open is named:
// a server, a child process's pipes or a timer a test forgot. The suite then exits (mocha's `exit`), so that one failed
// test that left something running can never hang a CI run; the line says what to look for.
const active = (): string[] => (process as NodeJS.Process & { getActiveResourcesInfo?: () => string[] }).getActiveResourcesInfo?.() ?? [];

/** What the process holds before any test ran (its own stdio), so that only what tests added is named. */
const baseline = active();

export const mochaHooks = {
  afterAll(): void {
    const left = [...active()];
    for (const r of baseline) {
      const i = left.indexOf(r);
      if (i >= 0) left.splice(i, 1);
    }
    if (left.length > 0) console.log(`\n  Still open after the suite (left by a test): ${left.join(', ')}`);
  },
};

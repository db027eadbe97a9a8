/** Formatting shared by the tasks' logs and summaries. */

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = -1;
  do { v /= 1024; i++; } while (v >= 1024 && i < units.length - 1);
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** Text fit for one markdown table cell. */
export const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');

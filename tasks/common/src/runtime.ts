/**
 * The Node.js the agent ran the task with. The tasks declare the Node20_1 and Node24 handlers, but an agent on a host
 * whose glibc is too old for Node 20 (e.g. CentOS 7, Ubuntu 16.04/18.04, RHEL 7) falls back to Node 16, where
 * `fs.statfs`, `zlib.crc32` and other calls the tasks make do not exist: each repository would fail on its own, with
 * errors that say nothing of the cause. One check at the start says it once.
 */
export const MIN_NODE_MAJOR = 20;

/** Why this Node.js cannot run the task, or undefined when it can. */
export function nodeVersionProblem(version: string = process.versions.node): string | undefined {
  const major = Number.parseInt(/^v?(\d+)/.exec(version)?.[1] ?? '', 10);
  if (Number.isInteger(major) && major >= MIN_NODE_MAJOR) return undefined;
  return `This task needs Node.js ${MIN_NODE_MAJOR} or later, but the agent ran it with Node.js ${version}. ` +
    'Agents fall back to Node 16 on hosts whose C library (glibc) is older than Node 20 needs (e.g. CentOS 7, RHEL 7, Ubuntu 18.04): ' +
    'run the job on an agent with a newer operating system (or a Microsoft-hosted agent).';
}

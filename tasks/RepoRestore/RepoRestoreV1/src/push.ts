/**
 * The end of restore mode: the target repository (checked read-only first, created once the archive is proven),
 * LFS objects, refs in chunks, and a final ls-remote that proves every ref landed. Also every push-side error text.
 */
import { promises as fsp } from 'fs';
import * as path from 'path';
import { DevOpsCredentials, withGitConfig } from '../../../common/src/credentials';
import { DevOpsClient, ProjectInfo, RepoInfo } from '../../../common/src/devops';
import { errorMessage, RunError } from '../../../common/src/errors';
import { classifyGitError, Git, GitError, PushUpdate, Ref } from '../../../common/src/git';
import { Logger } from '../../../common/src/host';
import { defaultRetryPolicy, RetryPolicy, withRetry } from '../../../common/src/retry';
import { RefKind, refKind, RestoreReport } from './report';

export const DEFAULT_PUSH_CHUNK = { maxRefs: 500, maxChars: 24_000 };
/** Pull request refs: Azure DevOps owns them and refuses pushes to them. */
export const PULL_REFS = /^refs\/pull\//;

export interface PushDeps {
  log: Logger;
  progress(percent: number, text: string): void;
  devops: Pick<DevOpsClient, 'getProject' | 'getRepository' | 'createRepository'>;
  git: Git;
  gitEnv(remoteUrl: string): NodeJS.ProcessEnv;
  credentials: DevOpsCredentials;
  retry?: RetryPolicy;
  signal?: AbortSignal;
  pushChunk?: { maxRefs: number; maxChars: number };
}

/** An existing target must be enabled and empty (unless allowNonEmpty). Read-only. */
export async function checkExistingTarget(target: RepoInfo, allowNonEmpty: boolean, deps: PushDeps, report: RestoreReport, cwd: string): Promise<void> {
  const label = `${target.project.name}/${target.name}`;
  if (target.isDisabled) throw new RunError(`Target repository ${label} is disabled. Enable it (Project settings → Repositories) or restore into another repository.`);
  const policy = deps.retry ?? defaultRetryPolicy;
  const refs = await withRetry(`git ls-remote ${label}`, () => deps.git.lsRemote(target.remoteUrl, deps.gitEnv(target.remoteUrl), deps.signal, cwd),
    classifyGitError, deps.log, policy, deps.signal).catch((err) => { throw pushError(err, deps.credentials, `reading ${label}`, label); });
  report.target!.id = target.id;
  report.target!.existingRefs = refs.length;
  if (refs.length === 0) {
    report.target!.state = 'empty';
    deps.log.info(`Target repository ${label} exists and is empty.`);
    return;
  }
  report.target!.state = 'non-empty';
  if (!allowNonEmpty) {
    throw new RunError(`Target repository ${label} already has ${refs.length} ref(s) (e.g. ${refs.slice(0, 3).map((r) => r.name).join(', ')}); refusing to restore into it. Choose a new targetRepository (it is created), or set allowNonEmpty: true to add the backup's refs to it (existing refs are only fast-forwarded, never overwritten).`);
  }
  deps.log.warn(`Target repository ${label} already has ${refs.length} ref(s); allowNonEmpty is true, so the backup's refs are added (existing refs are only fast-forwarded, never overwritten).`);
}

/** Creates the target; a name taken meanwhile is treated as an existing target. */
export async function createTarget(project: ProjectInfo, name: string, allowNonEmpty: boolean, deps: PushDeps, report: RestoreReport, cwd: string): Promise<RepoInfo> {
  try {
    const repo = await deps.devops.createRepository(project, name);
    report.target = { ...report.target!, id: repo.id, state: 'created' };
    report.targetTouched = true;
    deps.log.info(`Created repository ${project.name}/${name} (${repo.id})`);
    return repo;
  } catch (err) {
    const message = errorMessage(err);
    if (/\(HTTP 409\)|TF400948/.test(message)) {
      const repo = await deps.devops.getRepository(project.name, name);
      if (repo) {
        await checkExistingTarget(repo, allowNonEmpty, deps, report, cwd);
        return repo;
      }
    }
    throw err;
  }
}

/** LFS objects first (as a pre-push hook would), so no pushed commit points at content the server lacks. */
export async function pushLfs(repoDir: string, objects: number, remoteUrl: string, env: () => NodeJS.ProcessEnv, deps: PushDeps, report: RestoreReport, warn: (m: string) => void): Promise<void> {
  if (objects === 0) return;
  deps.progress(55, `uploading ${objects} LFS objects`);
  deps.log.info(`Uploading LFS objects: git lfs push --all to ${remoteUrl}`);
  report.targetTouched = true;
  const label = report.target ? `${report.target.project}/${report.target.repository}` : remoteUrl;
  const pushed = await withRetry('git lfs push', () => deps.git.lfsPushAll(repoDir, 'origin', env(), deps.signal), classifyGitError, deps.log, deps.retry ?? defaultRetryPolicy, deps.signal)
    .catch((err) => { throw pushError(err, deps.credentials, 'uploading LFS objects', label); });
  report.lfs.pushed = true;
  report.lfs.missing = pushed.missing;
  if (pushed.missing.length > 0) {
    warn(`${pushed.missing.length} LFS object(s) referenced by the history are not in the archive and were not restored (${pushed.missing.slice(0, 3).join(', ')}${pushed.missing.length > 3 ? ', …' : ''}); they were missing when the backup was made.`);
  }
}

/** Refs, the default branch alone first (Azure DevOps makes the first branch pushed the default branch), then verified with ls-remote. */
export async function pushRefs(repoDir: string, toPush: Ref[], head: string | undefined, env: () => NodeJS.ProcessEnv, deps: PushDeps, report: RestoreReport): Promise<void> {
  const { git, log, signal } = deps;
  const policy = deps.retry ?? defaultRetryPolicy;
  const label = report.target ? `${report.target.project}/${report.target.repository}` : 'the target';
  const chunks = planPush(toPush.map((r) => r.name), head, deps.pushChunk ?? DEFAULT_PUSH_CHUNK);
  const oids = new Map(toPush.map((r) => [r.name, r.oid]));
  const pusher = chunks.length ? await makePusher(repoDir) : repoDir;
  let done = 0;
  const updates = new Map<string, PushUpdate>();
  for (const chunk of chunks) {
    if (signal?.aborted) throw signal.reason;
    deps.progress(70 + (25 * done) / Math.max(1, toPush.length), `pushing refs ${done + 1}–${done + chunk.length} of ${toPush.length}`);
    report.targetTouched = true;
    const result = await pushChunk(git, pusher, chunk, oids, () =>
      withRetry(`git push (${chunk.length} refs)`, () => git.push(pusher, 'origin', [PUSH_REFSPEC], env(), signal),
        classifyGitError, log, policy, signal).catch((err) => { throw pushError(err, deps.credentials, 'pushing refs', label); }));
    for (const u of result.updates) updates.set(u.ref, u);
    for (const ref of chunk) {
      const u = updates.get(ref);
      if (!u) {
        report.refs.rejected.push({ ref, reason: `git reported no status for it${result.stderr ? ` (${lastLine(result.stderr)})` : ''}` });
      } else if (u.flag === '!') {
        const differs = /non-fast-forward|fetch first|already exists|stale info/.test(u.summary)
          ? ' — the target already has this ref at another commit; it is never overwritten' : '';
        report.refs.rejected.push({ ref, reason: `${u.summary}${differs}${rejectionDetail(result.stderr, ref)}` });
      } else {
        if (u.flag === '=') report.refs.upToDate++;
        else report.refs.pushed++;
        report.refs.byKind[refKind(ref)]++;
      }
    }
    done += chunk.length;
    log.info(`Pushed ${done} of ${toPush.length} refs${report.refs.rejected.length ? ` (${report.refs.rejected.length} rejected)` : ''}`);
  }
  for (const r of report.refs.rejected.slice(0, 20)) log.error(`Ref ${r.ref} was not restored: ${r.reason}`);

  deps.progress(96, 'verifying the target');
  if (toPush.length > 0 || report.target?.state !== 'created') {
    const remoteRefs = await withRetry('git ls-remote', () => git.lsRemote('origin', env(), signal, repoDir), classifyGitError, log, policy, signal)
      .catch((err) => { throw pushError(err, deps.credentials, 'reading the target after the push', label); });
    const there = new Map(remoteRefs.map((r) => [r.name, r.oid]));
    const rejected = new Set(report.refs.rejected.map((r) => r.ref));
    const wrong = toPush.filter((r) => !rejected.has(r.name) && there.get(r.name) !== r.oid);
    for (const r of wrong) report.refs.rejected.push({ ref: r.name, reason: `the target has ${there.get(r.name) ?? 'no such ref'} instead of ${r.oid} after the push` });
    report.refs.verified = wrong.length === 0;
  }
}

/**
 * Pushes go out of a scratch repository beside the restored one that borrows its objects (objects/info/alternates)
 * and holds only the refs of the chunk being pushed, pushed as `refs/*:refs/*`. git matches every ref it pushes
 * against every local ref (over HTTP the pattern is expanded into one explicit refspec per ref): from the restored
 * repository itself that costs ~6 ms per ref in a 9,000-ref repository, quadratic in its size; from the scratch
 * repository it costs nothing, and the command line has the same length however many refs or however long the names.
 */
export const PUSH_REFSPEC = 'refs/*:refs/*';

async function makePusher(repoDir: string): Promise<string> {
  const dir = `${repoDir}.push`;
  for (const sub of ['objects/info', 'objects/pack', 'refs/heads', 'refs/tags']) await fsp.mkdir(path.join(dir, sub), { recursive: true });
  await fsp.writeFile(path.join(dir, 'HEAD'), 'ref: refs/heads/main\n');
  // The same format and `origin` as the restored repository (its config was rewritten without credentials).
  await fsp.copyFile(path.join(repoDir, 'config'), path.join(dir, 'config'));
  await fsp.writeFile(path.join(dir, 'objects', 'info', 'alternates'), `${path.resolve(repoDir, 'objects')}\n`);
  return dir;
}

/** Pushes `chunk` out of the scratch repository: its refs created there, pushed, removed again. */
async function pushChunk<T>(git: Git, pusher: string, chunk: string[], oids: Map<string, string>, push: () => Promise<T>): Promise<T> {
  await git.updateRefs(pusher, chunk.map((ref) => `create ${ref} ${oids.get(ref)}`));
  try {
    return await push();
  } finally {
    await git.updateRefs(pusher, chunk.map((ref) => `delete ${ref}`));
  }
}

/** The environment of every command against the target: credentials, no hooks, explicit LFS endpoints. */
export function targetEnv(remoteUrl: string, noHooks: string, gitEnv: (u: string) => NodeJS.ProcessEnv): () => NodeJS.ProcessEnv {
  const lfsUrl = `${remoteUrl.replace(/\/+$/, '')}.git/info/lfs`;
  return () => withGitConfig(gitEnv(remoteUrl), [
    ['core.hooksPath', noHooks],
    // Explicit LFS endpoints win over any .lfsconfig in the restored history.
    ['lfs.url', lfsUrl],
    ['lfs.pushurl', lfsUrl],
    ['lfs.locksverify', 'false'],
    ['lfs.allowincompletepush', 'true'],
  ]);
}

/**
 * Orders refs for pushing and cuts them into chunks (refs per push, and bytes of names, bounded): the default branch
 * alone first, then branches, tags, notes and the rest, each sorted.
 */
export function planPush(refs: string[], head: string | undefined, limits: { maxRefs: number; maxChars: number }): string[][] {
  const order: Record<RefKind, number> = { branches: 0, tags: 1, notes: 2, other: 3 };
  const rest = refs.filter((r) => r !== head).sort((a, b) => order[refKind(a)] - order[refKind(b)] || (a < b ? -1 : a > b ? 1 : 0));
  const chunks: string[][] = [];
  if (head && refs.includes(head)) chunks.push([head]);
  let current: string[] = [];
  let chars = 0;
  for (const ref of rest) {
    const length = ref.length * 2 + 2;
    if (current.length > 0 && (current.length >= limits.maxRefs || chars + length > limits.maxChars)) {
      chunks.push(current);
      current = [];
      chars = 0;
    }
    current.push(ref);
    chars += length;
  }
  if (current.length) chunks.push(current);
  return chunks;
}

/** The job token's own limit: "Protect access to repositories in YAML pipelines". */
export const PROTECT_ACCESS_HINT = 'With the job token, "Protect access to repositories in YAML pipelines" (Project settings → Pipelines → Settings; on by default for new organizations and projects since 2020) also blocks pushing to a repository no YAML of the pipeline names: ' +
  'create the empty target first and name it in the pipeline (resources: repositories: - repository: target, type: git, name: <project>/<repository>; then uses: repositories: [ target ] on the job, or a checkout: target step), turn that setting off, or use authType: pat';

/** A git failure against the target, as one line that says which token, which permission and which setting. */
export function pushError(err: unknown, credentials: DevOpsCredentials, what: string, target: string, readOnly = false): Error {
  if (err instanceof RunError || (err as Error)?.name === 'AbortError') return err as Error;
  if (!(err instanceof GitError)) return new RunError(`${what} failed: ${errorMessage(err)}`);
  const line = lastLine(err.stderr);
  const pat = credentials.type === 'pat';
  if (/returned error: 401|\b401\b|TF400813|Authentication failed|could not read Username/i.test(err.stderr)) {
    return new RunError(`${what}: Azure DevOps refused ${credentials.description} (401: ${line}). ${pat
      ? 'The PAT is wrong, expired, revoked or for another organization: create one for this organization with scope Code (Read & write) — Code (Read, write & manage) when the task is to create the repository — and update the secret variable.'
      : 'The job token was not accepted for this organization: check that organizationUrl is this pipeline\'s organization; to restore into another organization use authType: pat.'}`);
  }
  if (!pat && /TF401019|returned error: 404|not found/i.test(err.stderr)) {
    return new RunError(`${what}: git cannot see ${target} with ${credentials.description} (${line}), although the REST API lists it. ${readOnly ? PROTECT_ACCESS_HINT.replace('blocks pushing to', 'keeps the job token from reading').replace('create the empty target first and name it', 'name the repositories').replace('repository: target', 'repository: r1').replace('[ target ]', '[ r1, … ]').replace(', or a checkout: target step', '') : PROTECT_ACCESS_HINT}.`);
  }
  if (/returned error: 403|\b403\b|TF401027|TF40027\d/i.test(err.stderr)) {
    if (readOnly) {
      return new RunError(`${what}: ${credentials.description} may not read ${target} (403: ${line}). ${pat ? 'Give the PAT scope Code (Read) and its user Read on the repository' : 'Give the project build service identity Read on the repository (Project settings → Repositories → Security); for other projects turn off "Limit job authorization scope to current project"'}.`);
    }
    return new RunError(`${what}: ${credentials.description} may not write to ${target} (403: ${line}). ${pat
      ? 'The PAT needs scope Code (Read & write), and its user needs Contribute, Create branch, Create tag and Manage notes on the repository (Project settings → Repositories → Security).'
      : `Give the project build service identity Contribute, Create branch, Create tag and Manage notes on the repository (Project settings → Repositories → Security); to restore into another project, turn off "Limit job authorization scope to current project". ${PROTECT_ACCESS_HINT}.`}`);
  }
  return new RunError(`${what} failed: ${errorMessage(err)}`);
}

function rejectionDetail(stderr: string, ref: string): string {
  const line = stderr.split('\n').map((l) => l.replace(/^remote:\s*/, '').trim()).find((l) => l.includes(ref) && /TF\d+|error|denied|refused/i.test(l));
  return line ? ` — ${line}` : '';
}

export function lastLine(text: string): string {
  return text.trim().split('\n').map((l) => l.trim()).filter(Boolean).pop() ?? '';
}

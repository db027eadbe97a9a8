/**
 * The end of verify mode: an archive's refs against the live repository's (`git ls-remote`, no clone).
 *
 * The rule, per ref of the archive (refs/pull/* aside: the server rewrites merge refs on its own, so they are
 * counted, never judged):
 *  - the live repository has it at the same object → equal;
 *  - the live repository lacks it → deleted since the backup → the repository is `diverged`;
 *  - a tag points elsewhere → rewritten → `diverged` (tags do not move forward);
 *  - a branch, note or other ref points elsewhere → `behind` only when it is *proven* that the archived tip is an
 *    ancestor of the live tip: when the live commit is not in the archive, only that ref's new history is fetched
 *    into the extracted copy (a fetch negotiates with what the archive has, so only objects newer than the backup
 *    travel; nothing is written anywhere but the temporary copy), then `git merge-base --is-ancestor` decides.
 *    Not an ancestor → rewritten → `diverged`.
 * Refs the live repository has and the archive does not are new since the backup (→ `behind`). Every ref equal in
 * both directions → `identical`.
 */
import { ExecOptions, ExecResult } from '../../../common/src/host';
import { GitError, Ref } from '../../../common/src/git';
import { refKind } from './report';

export type LiveStatus = 'identical' | 'behind' | 'diverged';

export interface RefComparison {
  inArchive: number;
  live: number;
  equal: number;
  /** Branches / notes whose live tip descends from the archived one (proven). */
  forward: string[];
  /** Live refs the archive does not have (created since the backup). */
  added: string[];
  /** Refs that point elsewhere and do not descend from the archived tip (force-pushed), or tags that moved. */
  rewritten: string[];
  /** Refs of the archive the live repository no longer has. */
  deleted: string[];
  /** Pull request refs, counted only. */
  pullRefs: { inArchive: number; live: number };
}

export interface Candidate {
  ref: string;
  archived: string;
  live: string;
}

/** Proves which candidates moved forward: returns the refs whose archived tip is an ancestor of the live tip. */
export type AncestryProof = (candidates: Candidate[]) => Promise<Set<string>>;

const PULL = /^refs\/pull\//;

export async function compareRefs(archived: Ref[], live: Ref[], prove: AncestryProof): Promise<{ status: LiveStatus; refs: RefComparison }> {
  const a = new Map(archived.filter((r) => !PULL.test(r.name)).map((r) => [r.name, r.oid]));
  const l = new Map(live.filter((r) => !PULL.test(r.name)).map((r) => [r.name, r.oid]));
  const refs: RefComparison = {
    inArchive: a.size, live: l.size, equal: 0, forward: [], added: [], rewritten: [], deleted: [],
    pullRefs: { inArchive: archived.length - a.size, live: live.length - l.size },
  };
  const candidates: Candidate[] = [];
  for (const [name, oid] of a) {
    const there = l.get(name);
    if (there === undefined) refs.deleted.push(name);
    else if (there === oid) refs.equal++;
    else if (refKind(name) === 'tags') refs.rewritten.push(name);
    else candidates.push({ ref: name, archived: oid, live: there });
  }
  for (const name of l.keys()) if (!a.has(name)) refs.added.push(name);
  if (candidates.length) {
    const forward = await prove(candidates);
    for (const c of candidates) (forward.has(c.ref) ? refs.forward : refs.rewritten).push(c.ref);
  }
  for (const list of [refs.forward, refs.added, refs.rewritten, refs.deleted]) list.sort();
  const status: LiveStatus = refs.rewritten.length || refs.deleted.length ? 'diverged'
    : refs.forward.length || refs.added.length ? 'behind' : 'identical';
  return { status, refs };
}

/** One line on what differs, for the summary and the report's `details`. */
export function describeComparison(status: LiveStatus, r: RefComparison): string {
  const list = (xs: string[]) => `${xs.slice(0, 5).join(', ')}${xs.length > 5 ? `, … (${xs.length})` : ''}`;
  if (status === 'identical') return `all ${r.equal} refs equal`;
  const parts: string[] = [];
  if (r.rewritten.length) parts.push(`rewritten since the backup: ${list(r.rewritten)}`);
  if (r.deleted.length) parts.push(`deleted since the backup: ${list(r.deleted)}`);
  if (r.forward.length) parts.push(`moved forward: ${list(r.forward)}`);
  if (r.added.length) parts.push(`new: ${list(r.added)}`);
  return `${r.equal} of ${r.inArchive} refs equal; ${parts.join('; ')}`;
}

type Exec = (tool: string, args: string[], options?: ExecOptions) => Promise<ExecResult>;

/**
 * The ancestry proof with git on the extracted copy: live commits the archive lacks are fetched (that ref's new
 * history only) into `refs/repobackup-live/*` of the copy, then `merge-base --is-ancestor` decides.
 */
export function gitAncestry(exec: Exec, repoDir: string, remoteUrl: string, env: () => NodeJS.ProcessEnv, signal?: AbortSignal): AncestryProof {
  const git = (args: string[], e?: NodeJS.ProcessEnv) => exec('git', args, { cwd: repoDir, silent: true, env: e, signal });
  const has = async (oid: string) => (await git(['cat-file', '-e', `${oid}^{commit}`])).code === 0;
  return async (candidates) => {
    const tip = new Map<string, string>();
    const missing: Array<{ c: Candidate; local: string }> = [];
    for (const [i, c] of candidates.entries()) {
      if (await has(c.live)) tip.set(c.ref, c.live);
      else missing.push({ c, local: `refs/repobackup-live/${i}` });
    }
    for (let i = 0; i < missing.length; i += 200) {
      const chunk = missing.slice(i, i + 200);
      const result = await git(['fetch', '--no-tags', '--no-write-fetch-head', '--no-progress', remoteUrl, ...chunk.map((m) => `+${m.c.ref}:${m.local}`)],
        { ...env(), GIT_LFS_SKIP_SMUDGE: '1' });
      if (result.code !== 0) throw new GitError('git fetch (live history of moved refs)', result.code, result.stderr);
      for (const m of chunk) {
        // The ref may have moved again since ls-remote: its current tip decides.
        tip.set(m.c.ref, (await has(m.c.live)) ? m.c.live : (await git(['rev-parse', '--verify', '--quiet', m.local])).stdout.trim());
      }
    }
    const forward = new Set<string>();
    for (const c of candidates) {
      const t = tip.get(c.ref);
      if (t && (await git(['merge-base', '--is-ancestor', c.archived, t])).code === 0) forward.add(c.ref);
    }
    return forward;
  };
}

/** The `repositories` input: globs over `project/repository`, `!` to exclude, case-insensitive. */
import { Minimatch } from 'minimatch';
import { InputError } from '../../../common/src/errors';

export interface RepoFilter {
  includes: Minimatch[];
  excludes: Minimatch[];
  /** Project names the filter spells out literally (no wildcards), to tell the user when one is not visible. */
  literalProjects: string[];
  /** Whether an include pattern's project part is a glob (`*`, `Team*`): it reaches projects nobody listed. */
  projectWildcard: boolean;
  describe(): string;
  matches(project: string, repo: string): boolean;
}

const OPTIONS = { nocase: true, dot: true, nonegate: true, nocomment: true, noglobstar: false } as const;

export function parseFilter(text: string | undefined): RepoFilter {
  const lines = (text ?? '*/*').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const includes: Minimatch[] = [];
  const excludes: Minimatch[] = [];
  const literalProjects = new Set<string>();
  let projectWildcard = false;
  for (const line of lines) {
    const exclude = line.startsWith('!');
    const pattern = exclude ? line.slice(1).trim() : line;
    if (!pattern.includes('/')) {
      throw new InputError('repositories', `'${line}' has no '/': each line is project/repository, e.g. '*/${pattern || 'api'}' for that repository in any project.`);
    }
    const [project, repo, ...rest] = pattern.split('/');
    const mm = new Minimatch(pattern, OPTIONS);
    if (!project || !repo || rest.length > 0 || mm.makeRe() === false) {
      throw new InputError('repositories', `'${line}' is not a valid pattern: it needs exactly one '/' between a project part and a repository part, each a glob (* ? [abc] {a,b}), e.g. 'Team Alpha/*'.`);
    }
    (exclude ? excludes : includes).push(mm);
    if (!exclude && project && !/[*?[\]{}]/.test(project)) literalProjects.add(project);
    else if (!exclude) projectWildcard = true;
  }
  if (includes.length === 0) {
    includes.push(new Minimatch('*/*', OPTIONS));
    projectWildcard = true;
  }
  return {
    includes,
    excludes,
    literalProjects: [...literalProjects],
    projectWildcard,
    describe: () => [...includes.map((m) => m.pattern), ...excludes.map((m) => `!${m.pattern}`)].join(', '),
    matches(project, repo) {
      const subject = `${project}/${repo}`;
      return includes.some((m) => m.match(subject)) && !excludes.some((m) => m.match(subject));
    },
  };
}


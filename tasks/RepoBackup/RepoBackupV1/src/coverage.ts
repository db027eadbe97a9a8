/**
 * Coverage: can this run see everything the `repositories` filter asks for? A backup that silently leaves out whole
 * projects is the worst kind (it is found on the day of the restore), so every way the credentials can fall short of
 * the filter is named here, with the setting that fixes it. Pure: the orchestrator gathers the facts.
 *
 * The job token (System.AccessToken) is limited to the pipeline's own project when "Limit job authorization scope to
 * current project" is on (the default for organizations created since 2020): it then lists that project alone, and a
 * backup of `*\/*` would quietly be a backup of one project. The project's pipeline settings say whether the limit is
 * on (`GET {project}/_apis/build/generalsettings`); when they cannot be read, a token that lists only its own project
 * is taken to be limited.
 */
import { JobScopeSettings } from '../../../common/src/devops';
import { RepoFilter } from './filter';

export interface CoverageInput {
  credentialType: 'systemToken' | 'pat' | 'serviceConnection';
  /** e.g. `the job token (System.AccessToken)`. */
  credentialDescription: string;
  /** System.TeamProject: the pipeline's own project. */
  ownProject?: string;
  /** System.HostType: `build` (YAML and classic build pipelines) or `release`. */
  hostType?: string;
  /** The own project's pipeline settings, or why they could not be read; absent when not asked (PAT). */
  scope?: { settings: JobScopeSettings } | { error: string };
  /** Every project the credentials can list. */
  visibleProjects: string[];
  filter: RepoFilter;
}

export interface Coverage {
  /** What the filter asks for that this run cannot back up, each with its fix. Any gap ends the run Failed. */
  gaps: string[];
  /** Facts worth a log line (the settings read, and what follows from them). */
  notes: string[];
  /** The one project the job token is limited to, when it is. */
  limitedTo?: string;
}

const lower = (s: string) => s.normalize('NFC').toLowerCase();

export function assessCoverage(input: CoverageInput): Coverage {
  const gaps: string[] = [];
  const notes: string[] = [];
  const visible = new Set(input.visibleProjects.map(lower));
  const release = input.hostType?.toLowerCase() === 'release';
  const scopeSetting = `"Limit job authorization scope to current project for ${release ? 'release' : 'non-release'} pipelines"`;
  let limitedTo: string | undefined;
  let why = '';

  if (input.credentialType === 'systemToken' && input.ownProject) {
    const own = input.ownProject;
    if (input.scope && 'settings' in input.scope) {
      const s = input.scope.settings;
      const limited = release ? s.enforceJobAuthScopeForReleases : s.enforceJobAuthScope;
      notes.push(`Pipeline settings of project '${own}': ${scopeSetting} is ${limited ? 'on' : limited === false ? 'off' : 'not reported'}` +
        (!release ? `; "Protect access to repositories in YAML pipelines" is ${s.enforceReferencedRepoScopedToken ? 'on' : s.enforceReferencedRepoScopedToken === false ? 'off' : 'not reported'}.` : '.'));
      if (limited) {
        limitedTo = own;
        why = `${scopeSetting} is on for project '${own}'`;
      }
      if (!release && s.enforceReferencedRepoScopedToken) {
        notes.push(`"Protect access to repositories in YAML pipelines" is on: in a YAML pipeline the job token can clone only the repositories the pipeline references (checkout steps or resources.repositories with uses:). Repositories it may not clone fail with an authorization error; turn the setting off in Project settings → Pipelines → Settings of '${own}', or use authType: pat.`);
      }
    } else if (visible.size === 1 && visible.has(lower(own))) {
      limitedTo = own;
      why = `the job token lists no project but '${own}', and the pipeline settings that say why could not be read${input.scope ? ` (${input.scope.error})` : ''}`;
      notes.push(`Taking the job token to be limited to project '${own}': ${why}.`);
    }
  }

  if (limitedTo) {
    const others = input.filter.literalProjects.filter((p) => lower(p) !== lower(limitedTo!));
    if (input.filter.projectWildcard || others.length > 0) {
      gaps.push(`Only project '${limitedTo}' could be backed up: ${input.credentialDescription} is limited to the pipeline's own project (${why}), ` +
        `but the repositories filter (${input.filter.describe()}) reaches ${others.length && !input.filter.projectWildcard ? `project(s) ${others.map((p) => `'${p}'`).join(', ')}` : 'other projects'}, which this run could not see and did NOT back up. ` +
        `Fix one of: turn off ${scopeSetting} in Organization settings → Pipelines → Settings and in Project settings → Pipelines → Settings of '${limitedTo}', ` +
        `and give the project's build service identity Read on the other projects' repositories; or, if this project is all you want, set repositories to '${limitedTo}/*'; ` +
        'or use authType: pat with a PAT (scope Code (Read)) of a user who can read every project, or authType: serviceConnection with an Azure Resource Manager connection whose principal can.');
    }
    return { gaps, notes, limitedTo };
  }

  const missing = input.filter.literalProjects.filter((p) => !visible.has(lower(p)));
  if (missing.length > 0) {
    gaps.push(`The repositories filter names project(s) ${missing.map((p) => `'${p}'`).join(', ')} that ${input.credentialDescription} cannot see: ` +
      'nothing of them was backed up. ' +
      (input.credentialType === 'systemToken'
        ? `Check the names, turn off ${scopeSetting} (Organization settings and Project settings → Pipelines → Settings) and give the build service identity Read on those repositories, or use authType: pat.`
        : input.credentialType === 'serviceConnection'
          ? 'Check the names, and that the service connection\'s principal is a member of the organization with Read on those projects\' repositories.'
          : 'Check the names, and that the PAT\'s user has Read on those projects\' repositories (the PAT needs scope Code (Read)).'));
  }
  return { gaps, notes };
}

// coverage.ts: when the credentials cannot see what the repositories filter asks for, the run has a gap.
import assert from 'assert';
import { assessCoverage, CoverageInput } from '../../tasks/RepoBackup/RepoBackupV1/src/coverage';
import { parseFilter } from '../../tasks/RepoBackup/RepoBackupV1/src/filter';

const base = (over: Partial<CoverageInput> = {}): CoverageInput => ({
  credentialType: 'systemToken',
  credentialDescription: 'the job access token (System.AccessToken)',
  ownProject: 'Team Alpha',
  hostType: 'build',
  scope: { settings: { enforceJobAuthScope: false, enforceJobAuthScopeForReleases: false, enforceReferencedRepoScopedToken: false } },
  visibleProjects: ['Team Alpha', 'Team Beta'],
  filter: parseFilter('*/*'),
  ...over,
});

describe('coverage', () => {
  it('limit off, every project visible: no gap', () => {
    const c = assessCoverage(base());
    assert.deepStrictEqual(c.gaps, []);
    assert.strictEqual(c.limitedTo, undefined);
  });

  it('limit on (build): */* is a gap that names the setting, where it is, and the alternatives', () => {
    const c = assessCoverage(base({ scope: { settings: { enforceJobAuthScope: true } }, visibleProjects: ['Team Alpha'] }));
    assert.strictEqual(c.limitedTo, 'Team Alpha');
    assert.strictEqual(c.gaps.length, 1);
    assert.match(c.gaps[0], /"Limit job authorization scope to current project for non-release pipelines"/);
    assert.match(c.gaps[0], /Organization settings → Pipelines → Settings/);
    assert.match(c.gaps[0], /'Team Alpha\/\*'/);
    assert.match(c.gaps[0], /authType: pat/);
  });

  it('limit on for releases only: a release job is limited, a build job is not', () => {
    const scope = { settings: { enforceJobAuthScope: false, enforceJobAuthScopeForReleases: true } };
    assert.strictEqual(assessCoverage(base({ scope, hostType: 'build' })).gaps.length, 0);
    const release = assessCoverage(base({ scope, hostType: 'release', visibleProjects: ['Team Alpha'] }));
    assert.match(release.gaps[0], /for release pipelines/);
  });

  it('limit on, a filter of the own project only (any case) is complete', () => {
    const scope = { settings: { enforceJobAuthScope: true } };
    assert.deepStrictEqual(assessCoverage(base({ scope, filter: parseFilter('team alpha/*\n!Team Alpha/old') })).gaps, []);
    assert.deepStrictEqual(assessCoverage(base({ scope, filter: parseFilter('Team Alpha/api') })).gaps, []);
  });

  it('limit on, a filter naming another project or a project glob is a gap', () => {
    const scope = { settings: { enforceJobAuthScope: true } };
    assert.match(assessCoverage(base({ scope, filter: parseFilter('Team Alpha/*\nTeam Beta/api') })).gaps[0], /'Team Beta'/);
    assert.strictEqual(assessCoverage(base({ scope, filter: parseFilter('Team*/api') })).gaps.length, 1);
  });

  it('settings unreadable: a token that lists only its own project is taken as limited; one that lists more is not', () => {
    const scope = { error: 'HTTP 403' };
    const limited = assessCoverage(base({ scope, visibleProjects: ['Team Alpha'] }));
    assert.strictEqual(limited.limitedTo, 'Team Alpha');
    assert.strictEqual(limited.gaps.length, 1);
    assert.ok(limited.notes.some((n) => /could not be read \(HTTP 403\)/.test(n)));
    assert.deepStrictEqual(assessCoverage(base({ scope })).gaps, []);
  });

  it('protected repositories in YAML: a note that says what it blocks and how to turn it off', () => {
    const c = assessCoverage(base({ scope: { settings: { enforceReferencedRepoScopedToken: true } } }));
    assert.deepStrictEqual(c.gaps, []);
    assert.ok(c.notes.some((n) => /Protect access to repositories in YAML pipelines" is on: .*Project settings → Pipelines → Settings/.test(n)));
  });

  it('a named project nobody can see is a gap for a PAT too; a visible one is not', () => {
    const pat = { credentialType: 'pat' as const, credentialDescription: 'the personal access token', scope: undefined };
    assert.match(assessCoverage(base({ ...pat, filter: parseFilter('Team Gamma/*') })).gaps[0], /'Team Gamma'.*Code \(Read\)/);
    assert.deepStrictEqual(assessCoverage(base({ ...pat, filter: parseFilter('team beta/*') })).gaps, []);
    // A PAT's reach is not limited by pipeline settings: a wildcard filter is no gap.
    assert.deepStrictEqual(assessCoverage(base({ ...pat, visibleProjects: ['Team Alpha'] })).gaps, []);
  });
});

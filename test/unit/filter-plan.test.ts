import assert from 'assert';
import { parseFilter } from '../../tasks/RepoBackup/RepoBackupV1/src/filter';
import { archiveNames, makePlan, safeSegment, shardOf } from '../../tasks/RepoBackup/RepoBackupV1/src/plan';
import { RepoInfo } from '../../tasks/common/src/devops';
import { InputError } from '../../tasks/common/src/errors';

function repo(project: string, name: string, extra: Partial<RepoInfo> = {}): RepoInfo {
  const id = extra.id ?? `${project}-${name}`.toLowerCase().replace(/[^a-z0-9]/g, '') + '0000';
  return {
    id, name, project: { id: `p-${project}`, name: project }, remoteUrl: `https://dev.azure.com/o/${encodeURIComponent(project)}/_git/${encodeURIComponent(name)}`,
    size: 100, isDisabled: false, isWiki: name.toLowerCase() === `${project.toLowerCase()}.wiki`, ...extra,
  };
}

describe('repositories filter', () => {
  it('matches project/repo case-insensitively, with excludes', () => {
    const f = parseFilter('Team Alpha/*\n!*/scratch-*\n*/shared');
    assert.ok(f.matches('team alpha', 'API'));
    assert.ok(!f.matches('Team Alpha', 'scratch-1'));
    assert.ok(f.matches('Other', 'Shared'));
    assert.ok(!f.matches('Other', 'api'));
    assert.deepStrictEqual(f.literalProjects, ['Team Alpha']);
  });

  it('defaults to everything, also when only excludes are given', () => {
    assert.ok(parseFilter(undefined).matches('A', 'b'));
    const f = parseFilter('!Legacy/*');
    assert.ok(f.matches('A', 'b'));
    assert.ok(!f.matches('legacy', 'x'));
  });

  it('matches names with spaces, dots and non-ASCII', () => {
    const f = parseFilter('Équipe Bêta/*\n*/*.wiki');
    assert.ok(f.matches('équipe bêta', 'naïve repo'));
    assert.ok(f.matches('Team Alpha', 'Team Alpha.wiki'));
  });

  it('refuses a line without project/ and an invalid glob, naming the input', () => {
    assert.throws(() => parseFilter('api'), (e: unknown) => e instanceof InputError && e.input === 'repositories' && /\*\/api/.test(e.message));
    for (const line of ['Team/sub/repo', '/api', 'Team/', '!*/']) {
      assert.throws(() => parseFilter(line), (e: unknown) => e instanceof InputError && /not a valid pattern/.test(e.message), line);
    }
  });
});

describe('plan', () => {
  const base = {
    filter: parseFilter('*/*\n!*/skip-me'), includeWikis: true, format: 'zip' as const, shard: { position: 1, total: 1 },
    organization: 'contoso', runId: '1234', attempt: 2, startedAt: new Date('2026-12-02T00:00:05Z'),
  };

  it('names a run folder per organization, date, build and attempt, and skips disabled repos', () => {
    const plan = makePlan({ ...base, repos: [repo('A', 'api'), repo('A', 'old', { isDisabled: true }), repo('A', 'skip-me'), repo('A', 'A.wiki')] });
    assert.strictEqual(plan.runFolder, 'contoso/2026-12-02/1234.2');
    assert.strictEqual(plan.manifestName, 'contoso/2026-12-02/1234.2/manifest.json');
    assert.deepStrictEqual(plan.selected.map((p) => p.archive).sort(), ['contoso/2026-12-02/1234.2/A/A.wiki.zip', 'contoso/2026-12-02/1234.2/A/api.zip']);
    assert.deepStrictEqual(plan.skipped.map((s) => s.repo.name), ['old']);
    assert.strictEqual(plan.listed, 4);
  });

  it('leaves wikis out when asked', () => {
    const plan = makePlan({ ...base, includeWikis: false, repos: [repo('A', 'api'), repo('A', 'A.wiki')] });
    assert.deepStrictEqual(plan.selected.map((p) => p.repo.name), ['api']);
  });

  it('starts the largest repositories first', () => {
    const plan = makePlan({ ...base, repos: [repo('A', 'small', { size: 1 }), repo('A', 'big', { size: 1e9 }), repo('A', 'mid', { size: 1e6 })] });
    assert.deepStrictEqual(plan.selected.map((p) => p.repo.name), ['big', 'mid', 'small']);
  });

  it('shards so that every repository lands in exactly one of N jobs', () => {
    const repos = Array.from({ length: 300 }, (_, i) => repo(`P${i % 7}`, `r${i}`, { id: `00000000-0000-0000-0000-${String(i).padStart(12, '0')}` }));
    for (const total of [2, 3, 4]) {
      const seen = new Map<string, number>();
      const sizes: number[] = [];
      for (let position = 1; position <= total; position++) {
        const plan = makePlan({ ...base, repos, shard: { position, total } });
        assert.strictEqual(plan.manifestName, `contoso/2026-12-02/1234.2/manifest.job-${position}-of-${total}.json`);
        sizes.push(plan.selected.length);
        for (const p of plan.selected) seen.set(p.repo.id, (seen.get(p.repo.id) ?? 0) + 1);
        assert.strictEqual(plan.otherShards, repos.length - plan.selected.length);
      }
      assert.strictEqual(seen.size, repos.length);
      assert.ok([...seen.values()].every((n) => n === 1));
      assert.ok(Math.min(...sizes) > repos.length / total / 2, `shards are roughly even: ${sizes}`);
    }
    assert.strictEqual(shardOf({ id: 'ABC' }, 4), shardOf({ id: 'abc' }, 4));
  });

  it('makes names safe for Blob and file shares, and unique', () => {
    assert.strictEqual(safeSegment('a:b*c?.'), 'a_b_c_');
    assert.strictEqual(safeSegment('naïve repo'), 'naïve repo');
    assert.strictEqual(safeSegment('..'), '_');
    const names = archiveNames([repo('A', 'x:y', { id: 'id1' }), repo('A', 'x*y', { id: 'id2' }), repo('A', 'z', { id: 'id3' })], 'tar.gz');
    assert.strictEqual(names.get('id1'), 'A/x_y_id1.tar.gz');
    assert.strictEqual(names.get('id2'), 'A/x_y_id2.tar.gz');
    assert.strictEqual(names.get('id3'), 'A/z.tar.gz');
  });
});

import assert from 'assert';
import { parseFilter } from '../../tasks/RepoBackup/RepoBackupV1/src/filter';
import * as os from 'os';
import { archiveNames, assignShards, makePlan, runStart, safeSegment, shardOf, unknownSizeNote } from '../../tasks/RepoBackup/RepoBackupV1/src/plan';
import { TokenScope } from '../../tasks/common/src/credentials';
import { readBackupSettings } from '../../tasks/RepoBackup/RepoBackupV1/src/settings';
import { FakeHost } from './fake-host';
import { RepoInfo } from '../../tasks/common/src/devops';
import { InputError } from '../../tasks/common/src/errors';

function repo(project: string, name: string, extra: Partial<RepoInfo> = {}): RepoInfo {
  const id = extra.id ?? `${project}-${name}`.toLowerCase().replace(/[^a-z0-9]/g, '') + '0000';
  return {
    id, name, project: { id: `p-${project}`, name: project }, remoteUrl: `https://dev.azure.com/o/${encodeURIComponent(project)}/_git/${encodeURIComponent(name)}`,
    size: 100, isDisabled: false, isInMaintenance: false, isWiki: name.toLowerCase() === `${project.toLowerCase()}.wiki`, ...extra,
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
    assert.strictEqual(plan.archiveFolder, 'archives/contoso/2026-12-02/1234.2');
    assert.strictEqual(plan.manifestName, 'manifests/contoso/2026-12-02/1234.2/manifest.json');
    assert.deepStrictEqual(plan.selected.map((p) => p.archive).sort(), ['archives/contoso/2026-12-02/1234.2/A/A.wiki.zip', 'archives/contoso/2026-12-02/1234.2/A/api.zip']);
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
        assert.strictEqual(plan.manifestName, `manifests/contoso/2026-12-02/1234.2/manifest.job-${position}-of-${total}.json`);
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

  describe('shards balanced by bytes', () => {
    const MB = 1 << 20;
    const id = (i: number) => `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`;
    // The bench's shape: two big repositories, five medium, many small, one with tags, an empty one.
    const org = () => [
      repo('P', 'big-1', { id: id(1), size: 100 * MB }), repo('G', 'big-2', { id: id(2), size: 100 * MB }),
      ...[10, 15, 20, 25, 30].map((m, i) => repo('W', `svc-${i}`, { id: id(10 + i), size: m * MB })),
      ...Array.from({ length: 30 }, (_, i) => repo('T', `lib-${i}`, { id: id(100 + i), size: 40 * 1024 * (1 + ((i * 7) % 40)) })),
      repo('P', 'tags', { id: id(3), size: 2 * MB }), repo('P', 'empty', { id: id(4), size: 0 }),
    ];
    const bytesPerShard = (repos: RepoInfo[], total: number) => {
      const { shards } = assignShards(repos, total);
      const bytes = new Array<number>(total).fill(0);
      for (const r of repos) bytes[shards.get(r.id)! - 1] += r.size;
      return { shards, bytes };
    };

    it('puts the big repositories on different jobs and keeps the largest shard near the best possible', () => {
      const repos = org();
      const total = repos.reduce((s, r) => s + r.size, 0);
      for (const n of [2, 3, 4]) {
        const { shards, bytes } = bytesPerShard(repos, n);
        assert.notStrictEqual(shards.get(id(1)), shards.get(id(2)), `${n} jobs: the two big repositories share a job`);
        const ideal = Math.max(total / n, 100 * MB);
        assert.ok(Math.max(...bytes) <= ideal * 4 / 3, `${n} jobs: ${bytes.map((b) => (b / MB).toFixed(0))} MB vs ideal ${(ideal / MB).toFixed(0)}`);
      }
    });

    it('balances a large heavy-tailed organization within a few percent', () => {
      const repos = Array.from({ length: 5000 }, (_, i) => repo(`P${i % 300}`, `r${i}`, {
        id: id(i), size: Math.round(2 ** (12 + 19 * (((i * 2654435761) % 1000) / 1000) ** 3)),
      }));
      const { bytes } = bytesPerShard(repos, 4);
      const mean = bytes.reduce((a, b) => a + b, 0) / 4;
      assert.ok(Math.max(...bytes) / mean < 1.1, `largest/mean ${(Math.max(...bytes) / mean).toFixed(3)}`);
    });

    it('gives every job the same answer whatever order the listing comes in', () => {
      const repos = org();
      const a = assignShards(repos, 4);
      const b = assignShards([...repos].reverse(), 4);
      const c = assignShards(repos.map((r) => ({ ...r, id: r.id.toUpperCase() })), 4);
      for (const r of repos) {
        assert.strictEqual(b.shards.get(r.id), a.shards.get(r.id));
        assert.strictEqual(c.shards.get(r.id.toUpperCase()), a.shards.get(r.id));
      }
      assert.strictEqual(a.fingerprint, b.fingerprint);
    });

    it('moves nothing when small repositories come and go or sizes change within their power of two', () => {
      const repos = org();
      const before = assignShards(repos, 4);
      assert.ok(repos.find((r) => r.id === id(100))!.size < MB);
      const changed = [
        ...repos.filter((r) => r.id !== id(100)).map((r) => (r.size >= 16 * MB && r.size < 31 * MB ? { ...r, size: r.size + MB } : r)),
        repo('T', 'new-small', { id: id(999), size: 200 * 1024 }),
      ];
      const after = assignShards(changed, 4);
      for (const r of changed) if (r.id !== id(999)) assert.strictEqual(after.shards.get(r.id), before.shards.get(r.id), r.name);
      assert.strictEqual(after.fingerprint, before.fingerprint);
      // A large repository crossing a power of two is visible in the fingerprint (it may move others).
      const grown = assignShards(repos.map((r) => (r.id === id(10) ? { ...r, size: 40 * MB } : r)), 4);
      assert.notStrictEqual(grown.fingerprint, before.fingerprint);
    });

    it('plans each job from the same assignment, with the fingerprint in the plan', () => {
      const repos = org();
      const plans = [1, 2, 3, 4].map((position) => makePlan({ ...base, filter: parseFilter(undefined), repos, shard: { position, total: 4 } }));
      assert.deepStrictEqual(plans.map((p) => p.selected.length).reduce((a, b) => a + b, 0), repos.length);
      assert.ok(plans.every((p) => p.shardFingerprint && p.shardFingerprint === plans[0].shardFingerprint));
      assert.strictEqual(makePlan({ ...base, repos }).shardFingerprint, undefined);
    });
  });

  it('keeps names unique across the jobs of a sharded run', () => {
    // Two repositories whose names collide once made safe, placed by the hash in different jobs.
    const ids = Array.from({ length: 20 }, (_, i) => `id-${i}`);
    const a = ids.find((id) => shardOf({ id }, 2) === 1)!;
    const b = ids.find((id) => shardOf({ id }, 2) === 2)!;
    const repos = [repo('A', 'x:y', { id: a, size: 10 }), repo('A', 'x*y', { id: b, size: 10 })];
    const archives = [1, 2].flatMap((position) => makePlan({ ...base, repos, shard: { position, total: 2 } }).selected.map((p) => p.archive));
    assert.deepStrictEqual(archives.sort(), [`archives/contoso/2026-12-02/1234.2/A/x_y_${a}.zip`, `archives/contoso/2026-12-02/1234.2/A/x_y_${b}.zip`].sort());
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

describe('run folder: one run, one folder', () => {
  const repos = [repo('A', 'api', { id: 'id-api' }), repo('B', 'web', { id: 'id-web' }), repo('C', 'lib', { id: 'id-lib' })];
  /** The settings path the task takes (readBackupSettings, which dates the run by pipelineStartOf, then backup's makePlan) for one job. */
  async function jobPlan(clock: string, position: number, variables: Record<string, string>) {
    const host = new FakeHost(
      { sasUrl: 'https://acct.blob.core.windows.net/backups?sv=2022-11-02&sr=c&sp=cw&se=2099-01-01T00%3A00%3A00Z&sig=c2lnbmF0dXJl' },
      {
        'System.CollectionUri': 'https://dev.azure.com/contoso/', 'Build.BuildId': '4711', 'System.JobAttempt': '1',
        'System.TotalJobsInPhase': '2', 'System.JobPositionInPhase': String(position), 'System.ParallelExecutionType': 'MultiMachine', 'Agent.TempDirectory': os.tmpdir(), ...variables,
      },
      { url: 'https://dev.azure.com/contoso/', token: 'job-token' },
    );
    const settings = await readBackupSettings(host, '1.0.0', new Date(clock));
    const plan = makePlan({
      repos, filter: settings.filter, includeWikis: settings.includeWikis, format: settings.archiveFormat, shard: settings.shard,
      organization: settings.organization.name, runId: settings.run.id, attempt: settings.run.attempt, startedAt: settings.run.startedAt,
    });
    return { plan, warnings: host.warnings() };
  }

  it('two shard jobs whose clocks are on either side of midnight UTC write into one folder (System.PipelineStartTime)', async () => {
    const vars = { 'System.PipelineStartTime': '2026-11-27 23:59:58+00:00' };
    const job1 = await jobPlan('2026-11-27T23:59:59Z', 1, vars);
    const job2 = await jobPlan('2026-11-28T03:10:00Z', 2, vars); // queued for hours behind job 1
    assert.strictEqual(job1.plan.runFolder, 'contoso/2026-11-27/4711.1');
    assert.strictEqual(job2.plan.runFolder, job1.plan.runFolder);
    assert.strictEqual(job1.plan.manifestName, 'manifests/contoso/2026-11-27/4711.1/manifest.job-1-of-2.json');
    assert.strictEqual(job2.plan.manifestName, 'manifests/contoso/2026-11-27/4711.1/manifest.job-2-of-2.json');
    for (const p of [...job1.plan.selected, ...job2.plan.selected]) assert.ok(p.archive.startsWith('archives/contoso/2026-11-27/4711.1/'), p.archive);
    assert.deepStrictEqual([...job1.warnings, ...job2.warnings], []);
  });

  it('without System.PipelineStartTime, each job has only its clock: the split is said, not silent', async () => {
    const job1 = await jobPlan('2026-11-27T23:59:59Z', 1, {});
    const job2 = await jobPlan('2026-11-28T00:00:01Z', 2, {});
    assert.notStrictEqual(job1.plan.runFolder, job2.plan.runFolder);
    for (const job of [job1, job2]) assert.ok(job.warnings.some((w) => /System\.PipelineStartTime is not set: the run folder's date is taken from this job's clock/.test(w)), job.warnings.join('\n'));
  });

  it('reads System.PipelineStartTime as Azure Pipelines writes it, and in ISO 8601; the date is the UTC date', () => {
    const clock = new Date('2030-01-01T12:00:00Z');
    const at = (raw: string) => runStart(raw, clock);
    assert.deepStrictEqual(at('2026-11-27 23:59:58+00:00'), { at: new Date('2026-11-27T23:59:58Z'), from: 'System.PipelineStartTime' });
    // A local time east of UTC, on the 28th locally but the 27th in UTC; and one west of UTC that is already the next day in UTC.
    assert.strictEqual(at('2026-11-28 00:30:00+01:00').at.toISOString(), '2026-11-27T23:30:00.000Z');
    assert.strictEqual(at('2026-11-27 20:00:00-05:00').at.toISOString(), '2026-11-28T01:00:00.000Z');
    assert.strictEqual(at('2026-11-27T23:59:58.1234567Z').at.toISOString(), '2026-11-27T23:59:58.123Z');
    assert.strictEqual(at('2026-11-27 10:00:00+0530').at.toISOString(), '2026-11-27T04:30:00.000Z');
    assert.strictEqual(at('2026-11-27 10:00:00').at.toISOString(), '2026-11-27T10:00:00.000Z');
    for (const bad of [undefined, '', 'yesterday', '11/27/2026 23:59:58', '2026-02-30 10:00:00+00:00', '2026-11-27 24:00:00+00:00', '$(System.PipelineStartTime)']) {
      assert.deepStrictEqual(at(bad as string), { at: clock, from: 'clock' }, String(bad));
    }
  });
});

describe('plan: Azure DevOps Server (no sizes, clone URLs on other hosts)', () => {
  const base = {
    filter: parseFilter('*/*'), includeWikis: true, format: 'zip' as const, shard: { position: 1, total: 1 },
    organization: 'DefaultCollection', runId: '1', attempt: 1, startedAt: new Date('2026-12-02T00:00:05Z'),
  };
  const on = (host: string, project: string, name: string, extra: Partial<RepoInfo> = {}) =>
    ({ ...repo(project, name, extra), remoteUrl: `https://${host}/tfs/DefaultCollection/${encodeURIComponent(project)}/_git/${encodeURIComponent(name)}` });

  it('says when sizes are unknown, and what that changes (with and without shards)', () => {
    assert.strictEqual(unknownSizeNote([repo('A', 'a')], 1), undefined);
    const all = unknownSizeNote([repo('A', 'a', { size: 0, sizeUnknown: true }), repo('A', 'b', { size: 0, sizeUnknown: true })], 1)!;
    assert.match(all, /no repository sizes for any repositories .*16 MiB.*name order/);
    assert.doesNotMatch(all, /jobs/);
    assert.match(unknownSizeNote([repo('A', 'a', { size: 0, sizeUnknown: true }), repo('A', 'b')], 3)!, /for 1 of the 2 repository .*the 3 jobs share them by a stable hash of their ids/);
  });

  it('shards repositories without sizes by id: every one in exactly one job, the same in every job', () => {
    const repos = Array.from({ length: 60 }, (_, i) => repo('P', `r${i}`, { id: `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`, size: 0, sizeUnknown: true }));
    const seen = new Map<string, number>();
    for (let position = 1; position <= 3; position++) {
      for (const p of makePlan({ ...base, repos, shard: { position, total: 3 } }).selected) seen.set(p.repo.id, (seen.get(p.repo.id) ?? 0) + 1);
    }
    assert.strictEqual(seen.size, 60);
    assert.ok([...seen.values()].every((n) => n === 1));
  });

  it('a repository whose clone URL is on a host the token may not go to is a gap naming it, the host and trustedHosts', () => {
    const scope = new TokenScope('https://tfs.contoso.com/tfs/DefaultCollection/');
    const plan = makePlan({
      ...base, tokenScope: scope,
      repos: [on('tfs.contoso.com', 'A', 'ok'), on('tfs01.corp.local', 'A', 'elsewhere'), on('tfs01.corp.local', 'A', 'A.wiki', { isWiki: true }), on('tfs01.corp.local', 'A', 'off', { isDisabled: true })],
    });
    assert.deepStrictEqual(plan.selected.map((p) => p.repo.name), ['ok']);
    const gaps = plan.skipped.filter((s) => s.gap);
    assert.deepStrictEqual(gaps.map((s) => s.repo.name), ['elsewhere', 'A.wiki']);
    assert.ok(gaps.every((s) => s.warn && /host tfs01\.corp\.local.*trustedHosts/.test(s.gap!)));
    assert.match(gaps[1].gap!, /^A\/A\.wiki \(wiki\): /);
    // Disabled stays an ordinary skip (nothing to clone anyway).
    assert.strictEqual(plan.skipped.find((s) => s.repo.name === 'off')?.gap, undefined);
    // Named in trustedHosts: backed up.
    const trusted = makePlan({ ...base, tokenScope: new TokenScope('https://tfs.contoso.com/tfs/DefaultCollection/', ['tfs01.corp.local']), repos: [on('tfs01.corp.local', 'A', 'elsewhere')] });
    assert.deepStrictEqual(trusted.selected.map((p) => p.repo.name), ['elsewhere']);
  });
});

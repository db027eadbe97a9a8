// runtime.ts and the shard rule of settings.ts: facts of the agent that decide whether a run can be complete.
import assert from 'assert';
import { nodeVersionProblem } from '../../tasks/common/src/runtime';
import { readShard } from '../../tasks/RepoBackup/RepoBackupV1/src/settings';

describe('runtime: Node.js version', () => {
  it('20, 22 and 24 run; 16 and 18 get one line naming the version, the cause and the fix', () => {
    for (const v of ['20.0.0', '20.20.2', 'v22.1.0', '24.3.0']) assert.strictEqual(nodeVersionProblem(v), undefined, v);
    for (const v of ['16.20.2', '18.19.0', 'v10.24.1']) {
      const p = nodeVersionProblem(v)!;
      assert.match(p, new RegExp(`Node\\.js 20 or later, but the agent ran it with Node\\.js ${v.replace(/\./g, '\\.')}`));
      assert.match(p, /glibc/);
      assert.ok(!p.includes('\n'), 'one line');
    }
  });

  it('an unreadable version is refused, not taken as new enough', () => {
    assert.ok(nodeVersionProblem('unknown'));
  });
});

describe('settings: which multi-job phases are slices', () => {
  const vars = (v: Record<string, string>) => ({ variable: (n: string) => v[n] });
  it('parallel: N (MultiMachine) slices', () => {
    assert.deepStrictEqual(readShard(vars({ 'System.TotalJobsInPhase': '4', 'System.JobPositionInPhase': '3', 'System.ParallelExecutionType': 'MultiMachine' })), { position: 3, total: 4 });
  });
  it('matrix legs (MultiConfiguration), an unknown or missing type: not sliced, with one note saying why', () => {
    const matrix = readShard(vars({ 'System.TotalJobsInPhase': '3', 'System.JobPositionInPhase': '2', 'System.ParallelExecutionType': 'MultiConfiguration' }));
    assert.strictEqual(matrix.total, 1);
    assert.match(matrix.note!, /matrix legs/);
    const none = readShard(vars({ 'System.TotalJobsInPhase': '3', 'System.JobPositionInPhase': '2' }));
    assert.strictEqual(none.total, 1);
    assert.match(none.note!, /not set/);
  });
  it('one job: no note; a position out of range: everything, with a note', () => {
    assert.deepStrictEqual(readShard(vars({ 'System.ParallelExecutionType': 'None' })), { position: 1, total: 1 });
    const bad = readShard(vars({ 'System.TotalJobsInPhase': '2', 'System.JobPositionInPhase': '5', 'System.ParallelExecutionType': 'MultiMachine' }));
    assert.strictEqual(bad.total, 1);
    assert.match(bad.note!, /not a position/);
  });
});

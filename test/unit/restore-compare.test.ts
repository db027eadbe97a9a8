// compare.ts: the drill's rule for identical / behind / diverged, with the ancestry proof injected.
import assert from 'assert';
import { Candidate, compareRefs, describeComparison } from '../../tasks/RepoRestore/RepoRestoreV1/src/compare';

const ref = (name: string, oid: string) => ({ name, oid });
const proveNone = async () => new Set<string>();
const proveAll = async (c: Candidate[]) => new Set(c.map((x) => x.ref));

describe('restore compare (verify mode)', () => {
  const archived = [ref('refs/heads/main', 'a1'), ref('refs/heads/dev', 'b1'), ref('refs/tags/v1', 't1'), ref('refs/notes/commits', 'n1'), ref('refs/pull/1/merge', 'p1')];

  it('every ref equal (pull refs aside) is identical', async () => {
    const { status, refs } = await compareRefs(archived, [...archived.slice(0, 4), ref('refs/pull/1/merge', 'p2'), ref('refs/pull/2/merge', 'p3')], proveNone);
    assert.strictEqual(status, 'identical');
    assert.strictEqual(refs.equal, 4);
    assert.deepStrictEqual(refs.pullRefs, { inArchive: 1, live: 2 });
    assert.strictEqual(describeComparison(status, refs), 'all 4 refs equal');
  });

  it('a branch or note moved forward (proven) and new refs are behind; the proof is asked only for moved branches/notes', async () => {
    const asked: string[] = [];
    const live = [ref('refs/heads/main', 'a2'), ref('refs/heads/dev', 'b1'), ref('refs/tags/v1', 't1'), ref('refs/notes/commits', 'n2'), ref('refs/heads/new', 'c1')];
    const { status, refs } = await compareRefs(archived, live, async (c) => { asked.push(...c.map((x) => x.ref)); return proveAll(c); });
    assert.strictEqual(status, 'behind');
    assert.deepStrictEqual(asked.sort(), ['refs/heads/main', 'refs/notes/commits']);
    assert.deepStrictEqual(refs.forward, ['refs/heads/main', 'refs/notes/commits']);
    assert.deepStrictEqual(refs.added, ['refs/heads/new']);
    assert.match(describeComparison(status, refs), /moved forward: refs\/heads\/main, refs\/notes\/commits; new: refs\/heads\/new/);
  });

  it('not provably forward, a moved tag or a deleted ref is diverged, and names the refs', async () => {
    const unproven = await compareRefs(archived, [ref('refs/heads/main', 'a2'), ...archived.slice(1, 4)], proveNone);
    assert.strictEqual(unproven.status, 'diverged');
    assert.deepStrictEqual(unproven.refs.rewritten, ['refs/heads/main']);
    const tag = await compareRefs(archived, [...archived.slice(0, 2), ref('refs/tags/v1', 't2'), archived[3]], proveAll);
    assert.deepStrictEqual([tag.status, tag.refs.rewritten], ['diverged', ['refs/tags/v1']]);
    const deleted = await compareRefs(archived, [archived[0], archived[2], archived[3]], proveAll);
    assert.deepStrictEqual([deleted.status, deleted.refs.deleted], ['diverged', ['refs/heads/dev']]);
    assert.match(describeComparison(deleted.status, deleted.refs), /^3 of 4 refs equal; deleted since the backup: refs\/heads\/dev/);
  });
});

// The bench organization: a fixed list of repositories built into the stand-in with `makeRandomRepo`
// (git fast-import, AES-CTR keystream content: incompressible, the same bytes on every run).
import { DevOpsStandIn, Project, StandInRepo } from '../test/harness/devops-standin';
import { makeRandomRepo } from '../test/harness/corpus';

const MB = 1 << 20;

export interface BenchRepoSpec {
  project: string;
  name: string;
  /** Git blob bytes (0 with `empty`). */
  bytes: number;
  files: number;
  commits?: number;
  tags?: number;
  lfsBytes?: number;
  lfsFiles?: number;
  empty?: boolean;
  disabled?: boolean;
  /** A role shown in the results (big, medium, tags…). */
  kind: 'small' | 'medium' | 'big' | 'tags' | 'empty' | 'disabled';
}

export interface BenchRepo extends BenchRepoSpec {
  repo: StandInRepo;
}

/**
 * About 40 repositories: most small, several 10–30 MB, two big ones with LFS, one with 5,000 tags, one empty and
 * one disabled. `quick` keeps the shape at about a fifth of the bytes.
 */
export function corpusSpec(quick: boolean): BenchRepoSpec[] {
  const scale = quick ? 0.2 : 1;
  const mb = (n: number) => Math.round(n * scale * MB);
  const specs: BenchRepoSpec[] = [
    { project: 'Platform', name: 'monorepo', bytes: mb(100), files: 400, commits: 40, lfsBytes: mb(50), lfsFiles: 10, kind: 'big' },
    { project: 'Games', name: 'game-assets', bytes: mb(100), files: 120, commits: 20, lfsBytes: mb(50), lfsFiles: 10, kind: 'big' },
    { project: 'Platform', name: 'release-tags', bytes: mb(2), files: 50, commits: 50, tags: 5000, kind: 'tags' },
    { project: 'Platform', name: 'empty', bytes: 0, files: 0, empty: true, kind: 'empty' },
    { project: 'Legacy', name: 'retired', bytes: mb(1), files: 10, disabled: true, kind: 'disabled' },
  ];
  const medium = quick ? [5, 10] : [10, 15, 20, 25, 30];
  medium.forEach((m, i) => specs.push({
    project: ['Web', 'Data', 'Mobile'][i % 3], name: `service-${i + 1}`, bytes: Math.round(m * MB), files: 40 + 10 * i, commits: 10, kind: 'medium',
  }));
  const smallCount = quick ? 24 : 30;
  for (let i = 0; i < smallCount; i++) {
    // 40 KB … 1.6 MB, spread deterministically.
    const kb = 40 * (1 + ((i * 7) % 40));
    specs.push({
      project: ['Web', 'Data', 'Mobile', 'Tools'][i % 4], name: `lib-${String(i + 1).padStart(2, '0')}`,
      bytes: kb * 1024, files: 3 + (i % 8), commits: 1 + (i % 5), kind: 'small',
    });
  }
  return specs;
}

/** Builds every repository of `specs` into `standin` (two at a time), ids deterministic. */
export async function buildCorpus(standin: DevOpsStandIn, specs: BenchRepoSpec[]): Promise<BenchRepo[]> {
  const projects = new Map<string, Project>();
  const out: BenchRepo[] = [];
  specs.forEach((spec, i) => {
    let project = projects.get(spec.project);
    if (!project) {
      project = standin.addProject(spec.project);
      projects.set(spec.project, project);
    }
    const id = `00000000-bbbb-4000-8000-${String(i + 1).padStart(12, '0')}`;
    out.push({ ...spec, repo: standin.addRepo(project, spec.name, { id }) });
  });
  let next = 0;
  const lane = async () => {
    while (next < out.length) {
      const r = out[next++];
      if (r.empty) continue;
      await makeRandomRepo(standin, r.repo, {
        sizeBytes: r.bytes, files: r.files, commits: r.commits, tags: r.tags, lfsBytes: r.lfsBytes, lfsFiles: r.lfsFiles,
        seed: `bench/${r.project}/${r.name}`,
      });
    }
  };
  await Promise.all([lane(), lane()]);
  for (const r of out) if (r.disabled) standin.setRepoDisabled(r.repo.id, true);
  return out;
}

// Many small repositories at once, for "big organization" runs: one repository is populated through the stand-in
// (real push), then its bare repository is copied (a file copy) for each new one, so 2,000 repositories take
// seconds to make instead of 2,000 pushes.
import * as fs from 'fs';
import * as path from 'path';
import { populate, PopulateResult } from './corpus';
import { DevOpsStandIn, Project, StandInRepo } from './devops-standin';
import { git } from './util';

export interface BulkResult {
  project: Project;
  repos: StandInRepo[];
  /** The refs and LFS files every repository has (they are copies of one). */
  content: PopulateResult;
}

/** Adds project `projectName` with `count` repositories `repo-0000`…, each a copy of one small two-commit repository. */
export async function addManyRepos(standin: DevOpsStandIn, projectName: string, count: number): Promise<BulkResult> {
  const project = standin.addProject(projectName);
  const template = standin.addRepo(project, 'repo-template');
  const content = await populate(standin, template, {
    commits: [
      { message: 'Initial commit', files: { 'README.md': '# small\n', 'src/main.c': 'int main(void) { return 0; }\n' } },
      { branch: 'dev', from: 'main', message: 'Work in progress', files: { 'TODO': 'everything\n' } },
    ],
    tags: [{ name: 'v1', target: 'main', message: 'Version 1' }],
  });
  // One pack instead of loose objects, no sample hooks: fewer files to copy per repository.
  await git(['--git-dir', template.gitDir, 'repack', '-a', '-d', '-q']);
  await git(['--git-dir', template.gitDir, 'pack-refs', '--all']);
  for (const f of fs.readdirSync(path.join(template.gitDir, 'hooks'))) {
    if (f.endsWith('.sample')) fs.rmSync(path.join(template.gitDir, 'hooks', f));
  }
  const repos: StandInRepo[] = [template];
  for (let i = 1; i < count; i++) {
    repos.push(standin.addRepo(project, `repo-${String(i).padStart(4, '0')}`, { template: template.gitDir }));
  }
  return { project, repos, content };
}

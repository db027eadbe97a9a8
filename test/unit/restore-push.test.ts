// push.ts: the error a git failure against the target becomes: which token, which permission, which setting.
import assert from 'assert';
import { DevOpsCredentials } from '../../tasks/common/src/credentials';
import { GitError } from '../../tasks/common/src/git';
import { pushError } from '../../tasks/RepoRestore/RepoRestoreV1/src/push';

const host = { setSecret: () => undefined };
const job = DevOpsCredentials.create('systemToken', 'tok', host);
const pat = DevOpsCredentials.create('pat', 'pat', host);
const gitError = (stderr: string) => new GitError('git push', 128, stderr);

describe('restore push errors', () => {
  it('403: permissions; the job token also gets "Protect access to repositories in YAML pipelines"', () => {
    const e403 = gitError("remote: TF401027: You need the Git 'GenericContribute' permission to perform this action.\nfatal: unable to access 'http://x/': The requested URL returned error: 403");
    const j = pushError(e403, job, 'pushing refs', 'P/r').message;
    assert.match(j, /may not write to P\/r \(403: .*Contribute, Create branch, Create tag and Manage notes.*"Protect access to repositories in YAML pipelines".*uses: repositories/);
    const p = pushError(e403, pat, 'pushing refs', 'P/r').message;
    assert.match(p, /PAT needs scope Code \(Read & write\)/);
    assert.doesNotMatch(p, /Protect access/);
  });

  it('401: which token, and the PAT scope that creates repositories', () => {
    const e401 = gitError("fatal: could not read Username for 'http://x': terminal prompts disabled");
    assert.match(pushError(e401, pat, 'pushing refs', 'P/r').message, /refused the personal access token \(401: .*Code \(Read, write & manage\)/);
    assert.match(pushError(e401, job, 'pushing refs', 'P/r').message, /refused the job access token .*\(401: /);
  });

  it('404 for a repository REST lists, with the job token: the YAML protection setting', () => {
    const e404 = gitError("remote: TF401019: The Git repository with name or identifier r does not exist or you do not have permissions for the operation you are attempting.\nfatal: repository 'http://x/' not found");
    assert.match(pushError(e404, job, 'pushing refs', 'P/r').message, /git cannot see P\/r .* although the REST API lists it\. With the job token, "Protect access to repositories in YAML pipelines"/);
    assert.match(pushError(gitError('fatal: early EOF'), job, 'pushing refs', 'P/r').message, /^pushing refs failed: /);
  });
});

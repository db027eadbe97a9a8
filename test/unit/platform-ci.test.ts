// The CI pipeline for this project runs the suite on every agent platform the tasks support.
import assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { parse } from 'yaml';

const root = path.resolve(__dirname, '../../..');

describe('platform CI: the suite runs on Linux, Windows and macOS', () => {
  it('.azure-pipelines/ci.yml: one job per hosted image, each running npm test', () => {
    const ci = parse(fs.readFileSync(path.join(root, '.azure-pipelines', 'ci.yml'), 'utf8'));
    const images = Object.values(ci.strategy.matrix as Record<string, { imageName: string }>).map((m) => m.imageName).sort();
    assert.deepStrictEqual(images, ['macos-latest', 'ubuntu-latest', 'windows-latest']);
    assert.strictEqual(ci.pool.vmImage, '$(imageName)');
    const scripts = (ci.steps as Array<{ script?: string }>).map((s) => s.script).filter(Boolean);
    assert.ok(scripts.includes('npm ci') && scripts.includes('npm test'), scripts.join(' | '));
    assert.ok(scripts.indexOf('npm ci') < scripts.indexOf('npm test'));
  });

  it('.gitattributes keeps LF in shell scripts on a Windows checkout', () => {
    const attrs = fs.readFileSync(path.join(root, '.gitattributes'), 'utf8');
    assert.match(attrs, /^\*\.sh\s+text\s+eol=lf$/m);
    for (const script of ['scripts/ensure-tools.sh', 'samples/setup-storage.sh', 'bench/seed.sh', 'bench/floor.sh']) {
      assert.ok(!fs.readFileSync(path.join(root, script), 'utf8').includes('\r'), `${script} has CR`);
    }
  });
});

// The files users copy: samples/*.yml, samples/lifecycle-policy.json, samples/setup-storage.sh, and the YAML and
// JSON blocks of overview.md (the marketplace page). Every RepoBackup@N / RepoRestore@N step may only use inputs
// its task.json has (RepoRestore is checked once its task.json exists), with values its pickLists accept.
import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { isMap, isScalar, isSeq, parseAllDocuments, parseDocument } from 'yaml';
import { RUN_LAYOUT } from '../tasks/RepoBackup/RepoBackupV1/src/plan';

const root = path.resolve(__dirname, '..', '..');
const samples = path.join(root, 'samples');
const overviewPath = path.join(root, 'overview.md');

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const readJson = (file: string): Json => JSON.parse(fs.readFileSync(file, 'utf8'));

/** tasks/<Name>/<Name>V<major>/task.json, or undefined when that task (version) does not exist (yet). */
function taskJson(name: string, major: number): Json | undefined {
  const file = path.join(root, 'tasks', name, `${name}V${major}`, 'task.json');
  return fs.existsSync(file) ? readJson(file) : undefined;
}

const OUR_TASKS = ['RepoBackup', 'RepoRestore'];

interface TaskStep {
  task: string;
  name: string;
  major: number;
  inputs: Record<string, unknown>;
  /** Raw source of block scalars (`|`), to catch comments typed inside them. */
  blockValues: Record<string, string>;
}

/** Every `- task: RepoBackup@N` / `RepoRestore@N` step anywhere in a parsed pipeline. */
function findTaskSteps(doc: unknown, source: string): TaskStep[] {
  const out: TaskStep[] = [];
  const visit = (node: unknown) => {
    if (isSeq(node)) node.items.forEach(visit);
    else if (isMap(node)) {
      const task = node.get('task');
      if (typeof task === 'string') {
        const m = /^([A-Za-z0-9-]+)@(\d+)$/.exec(task.trim());
        if (m && OUR_TASKS.includes(m[1])) {
          const inputsNode = node.get('inputs', true);
          const inputs: Record<string, unknown> = {};
          const blockValues: Record<string, string> = {};
          if (isMap(inputsNode)) {
            for (const pair of inputsNode.items) {
              const key = String(isScalar(pair.key) ? pair.key.value : pair.key);
              const value = pair.value;
              inputs[key] = isScalar(value) ? value.value : value;
              if (isScalar(value) && (value.type === 'BLOCK_LITERAL' || value.type === 'BLOCK_FOLDED') && value.range) {
                blockValues[key] = source.slice(value.range[0], value.range[1]);
              }
            }
          } else if (inputsNode !== undefined && inputsNode !== null) {
            throw new Error(`${task}: inputs is not a mapping`);
          }
          out.push({ task, name: m[1], major: Number(m[2]), inputs, blockValues });
        }
      }
      for (const pair of node.items) visit(pair.value);
    }
  };
  visit(doc);
  return out;
}

/** Problems of one step against its task.json; `undefined` task.json means "not written yet" (skipped). */
function checkStep(step: TaskStep, where: string): string[] {
  const t = taskJson(step.name, step.major);
  if (!t) return [];
  const p: string[] = [];
  const inputs: Json[] = t.inputs ?? [];
  const byName = new Map<string, Json>();
  for (const i of inputs) for (const n of [i.name, ...(i.aliases ?? [])]) byName.set(n, i);
  for (const [key, value] of Object.entries(step.inputs)) {
    const def = byName.get(key);
    if (!def) {
      p.push(`${where}: ${step.task} has no input '${key}' (inputs: ${inputs.map((i) => i.name).join(', ')})`);
      continue;
    }
    const text = value === null || value === undefined ? '' : String(value);
    const macro = /\$\(|\$\{\{|\$\[/.test(text);
    if (def.type === 'pickList' && !macro && !(def.properties?.EditableOptions === 'True')) {
      if (!Object.prototype.hasOwnProperty.call(def.options ?? {}, text)) {
        p.push(`${where}: ${step.task} ${key}: '${text}' is not one of ${Object.keys(def.options ?? {}).join(', ')}`);
      }
    }
    if (def.type === 'boolean' && !macro && !/^(true|false)$/i.test(text)) p.push(`${where}: ${step.task} ${key}: '${text}' is not a boolean`);
    if (typeof value === 'object' && value !== null) p.push(`${where}: ${step.task} ${key}: must be a scalar`);
  }
  for (const i of inputs) {
    if (i.required && (i.defaultValue === undefined || i.defaultValue === '') && !(i.name in step.inputs)) {
      p.push(`${where}: ${step.task} lacks required input '${i.name}'`);
    }
  }
  for (const [key, raw] of Object.entries(step.blockValues)) {
    if (/\s#/.test(raw.split('\n').slice(1).join('\n'))) p.push(`${where}: ${step.task} ${key}: a '#' inside a block scalar is part of the value, not a comment`);
  }
  return p;
}

function fencedBlocks(markdown: string, lang: string): string[] {
  const re = new RegExp('^```' + lang + '[ \\t]*\\r?\\n([\\s\\S]*?)^```[ \\t]*$', 'gm');
  return [...markdown.matchAll(re)].map((m) => m[1]);
}

describe('samples and overview.md', () => {
  const ymlFiles = fs.readdirSync(samples).filter((f) => /\.ya?ml$/.test(f)).sort();

  it('has the documented sample files', () => {
    for (const f of ['azure-pipelines.yml', 'azure-pipelines-sharded.yml', 'lifecycle-policy.json', 'setup-storage.sh']) {
      assert.ok(fs.existsSync(path.join(samples, f)), `samples/${f}`);
    }
  });

  describe('pipeline YAML', () => {
    for (const f of ymlFiles) {
      it(`samples/${f} parses and uses only inputs its tasks define`, () => {
        const source = fs.readFileSync(path.join(samples, f), 'utf8');
        const docs = parseAllDocuments(source);
        assert.ok(Array.isArray(docs) && docs.length === 1, 'one YAML document');
        const doc = docs[0];
        assert.deepStrictEqual(doc.errors.map((e) => e.message), []);
        assert.deepStrictEqual(doc.warnings.map((e) => e.message), []);
        const steps = findTaskSteps(doc.contents, source);
        assert.ok(steps.some((s) => (s.name === 'RepoBackup' || s.name === 'RepoRestore') && s.major === 1), 'has a RepoBackup@1 or RepoRestore@1 step');
        assert.deepStrictEqual(steps.flatMap((s) => checkStep(s, `samples/${f}`)), []);
        const js = doc.toJS();
        assert.ok(js.pool?.vmImage || js.jobs?.every((j: Json) => j.pool), 'names an agent pool');
      });
    }

    it('azure-pipelines.yml runs monthly on the 2nd at 00:00, always', () => {
      const js = parseDocument(fs.readFileSync(path.join(samples, 'azure-pipelines.yml'), 'utf8')).toJS();
      assert.strictEqual(js.schedules?.[0]?.cron, '0 0 2 * *');
      assert.strictEqual(js.schedules[0].always, true);
      assert.strictEqual(js.trigger, 'none');
      assert.strictEqual(js.pr, 'none');
    });

    it('restore-drill.yml runs RepoRestore@1 mode: verify monthly, a week after the backup, and keeps its report', () => {
      const source = fs.readFileSync(path.join(samples, 'restore-drill.yml'), 'utf8');
      const js = parseDocument(source).toJS();
      assert.strictEqual(js.schedules?.[0]?.cron, '0 6 9 * *');
      assert.strictEqual(js.schedules[0].always, true);
      const steps = findTaskSteps(parseDocument(source).contents, source);
      assert.deepStrictEqual(steps.map((s) => [s.task, s.inputs.mode]), [['RepoRestore@1', 'verify']]);
      const publish = (js.jobs[0].steps as Json[]).find((s) => s.publish);
      assert.strictEqual(publish?.publish, steps[0].inputs.reportPath);
      assert.strictEqual(publish?.condition, 'always()');
    });

    it('azure-pipelines-sharded.yml runs the backup as 4 parallel jobs', () => {
      const js = parseDocument(fs.readFileSync(path.join(samples, 'azure-pipelines-sharded.yml'), 'utf8')).toJS();
      const job = (js.jobs as Json[]).find((j) => j.strategy);
      assert.strictEqual(job?.strategy?.parallel, 4);
      assert.ok(JSON.stringify(job.steps).includes('RepoBackup@1'));
    });

    it('the YAML blocks of overview.md parse and use only inputs their tasks define', () => {
      const md = fs.readFileSync(overviewPath, 'utf8');
      const blocks = fencedBlocks(md, 'yaml');
      assert.ok(blocks.length >= 2, 'overview.md shows the YAML step');
      const problems: string[] = [];
      let backupSteps = 0;
      blocks.forEach((block, n) => {
        const doc = parseDocument(block);
        if (doc.errors.length) problems.push(`overview.md yaml block ${n + 1}: ${doc.errors.map((e) => e.message).join('; ')}`);
        const steps = findTaskSteps(doc.contents, block);
        backupSteps += steps.filter((s) => s.name === 'RepoBackup').length;
        problems.push(...steps.flatMap((s) => checkStep(s, `overview.md yaml block ${n + 1}`)));
      });
      assert.deepStrictEqual(problems, []);
      assert.ok(backupSteps >= 1, 'overview.md shows a RepoBackup@1 step');
    });
  });

  describe('overview.md', () => {
    const md = () => fs.readFileSync(overviewPath, 'utf8');

    for (const [name, major] of [['RepoBackup', 1], ['RepoRestore', 1]] as const) {
      it(`documents every input of ${name}@${major}`, function () {
        const t = taskJson(name, major);
        if (!t) {
          console.log(`      skipped: tasks/${name}/${name}V${major}/task.json does not exist yet`);
          this.skip();
        }
        const missing = (t!.inputs as Json[]).map((i) => i.name).filter((n) => !md().includes('`' + n + '`'));
        assert.deepStrictEqual(missing, [], `inputs of ${name}@${major} not mentioned in overview.md`);
      });
    }

    it('covers the setup the issue asks for', () => {
      const text = md();
      for (const needle of [
        '28 days', '--permissions cw', 'Limit job authorization scope to current project', 'Keep this value secret',
        'git clone --mirror', 'git push', 'refs/pull', 'git lfs push --all', 'lifecycle', 'If-None-Match',
        'Classic pipeline', 'RepoRestore@1', 'manifest.json', 'sha256',
      ]) {
        assert.ok(text.includes(needle), `overview.md should mention ${needle}`);
      }
    });

    it('shows the same lifecycle policy as samples/lifecycle-policy.json', () => {
      const blocks = fencedBlocks(md(), 'json').map((b) => JSON.parse(b));
      const policy = readJson(path.join(samples, 'lifecycle-policy.json'));
      assert.ok(blocks.some((b) => JSON.stringify(b) === JSON.stringify(policy)), 'the json block in overview.md differs from the sample');
    });
  });

  describe('lifecycle-policy.json', () => {
    const policy = () => readJson(path.join(samples, 'lifecycle-policy.json'));
    const CONDITIONS = ['daysAfterModificationGreaterThan', 'daysAfterCreationGreaterThan', 'daysAfterLastAccessTimeGreaterThan', 'daysAfterLastTierChangeGreaterThan'];
    const BASE_ACTIONS = ['tierToCool', 'tierToCold', 'tierToHot', 'tierToArchive', 'delete', 'enableAutoTierToHotFromCool'];

    it('has the Azure Storage management policy shape', () => {
      const p = policy();
      assert.deepStrictEqual(Object.keys(p), ['rules']);
      assert.ok(Array.isArray(p.rules) && p.rules.length >= 1);
      const names = new Set<string>();
      for (const rule of p.rules as Json[]) {
        assert.deepStrictEqual(Object.keys(rule).sort(), ['definition', 'enabled', 'name', 'type']);
        assert.strictEqual(typeof rule.enabled, 'boolean');
        assert.match(rule.name, /^[A-Za-z0-9]{1,256}$/, 'rule names are alphanumeric');
        assert.ok(!names.has(rule.name), `duplicate rule ${rule.name}`);
        names.add(rule.name);
        assert.strictEqual(rule.type, 'Lifecycle');
        const { filters, actions } = rule.definition;
        assert.deepStrictEqual(Object.keys(rule.definition).sort(), ['actions', 'filters']);
        assert.deepStrictEqual(filters.blobTypes, ['blockBlob']);
        assert.ok(Array.isArray(filters.prefixMatch) && filters.prefixMatch.length >= 1 && filters.prefixMatch.length <= 10, 'prefixMatch: 1-10 prefixes');
        for (const prefix of filters.prefixMatch) assert.match(prefix, /^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])?\//, `prefix ${prefix} must start with a container name`);
        for (const k of Object.keys(actions)) assert.ok(['baseBlob', 'snapshot', 'version'].includes(k), `unknown action group ${k}`);
        for (const [group, acts] of Object.entries(actions as Json)) {
          for (const [action, cond] of Object.entries(acts as Json)) {
            if (group === 'baseBlob') assert.ok(BASE_ACTIONS.includes(action), `unknown baseBlob action ${action}`);
            else assert.ok(['tierToCool', 'tierToCold', 'tierToHot', 'tierToArchive', 'delete'].includes(action), `unknown ${group} action ${action}`);
            if (action === 'enableAutoTierToHotFromCool') continue;
            const keys = Object.keys(cond as Json);
            // The service takes one age condition per action; tierToArchive may add daysAfterLastTierChangeGreaterThan to it.
            const guard = group === 'baseBlob' && action === 'tierToArchive' && keys.length === 2 && keys.includes('daysAfterLastTierChangeGreaterThan');
            assert.ok(keys.length === 1 || guard, `${group}.${action} has one condition (tierToArchive: plus daysAfterLastTierChangeGreaterThan)`);
            if (guard) assert.ok(keys.includes('daysAfterModificationGreaterThan'), 'daysAfterLastTierChangeGreaterThan goes with daysAfterModificationGreaterThan');
            if (keys.length === 1) assert.notStrictEqual(keys[0], 'daysAfterLastTierChangeGreaterThan', `${group}.${action}: daysAfterLastTierChangeGreaterThan alone`);
            for (const k of keys) assert.ok(CONDITIONS.includes(k), `${group}.${action}: unknown condition ${k}`);
            if (group !== 'baseBlob') assert.deepStrictEqual(keys, ['daysAfterCreationGreaterThan'], `${group}.${action} counts from creation`);
            for (const k of keys) {
              const days = (cond as Json)[k];
              assert.ok(Number.isInteger(days) && days >= 0, `${group}.${action}.${k} days`);
            }
          }
        }
      }
    });

    const ruleFor = (prefix: string) => (policy().rules as Json[]).find((r) => r.definition.filters.prefixMatch.includes(prefix));

    it('moves archives to Cool after 30 days, Archive after 90 and deletes them after 400; a rehydrated one stays online 14 days', () => {
      const rule = ruleFor(`repo-backups/${RUN_LAYOUT.archives}/`);
      assert.ok(rule, `a rule for repo-backups/${RUN_LAYOUT.archives}/`);
      const base = rule.definition.actions.baseBlob;
      const d = (a: string) => base[a]?.daysAfterModificationGreaterThan;
      assert.deepStrictEqual([d('tierToCool'), d('tierToArchive'), d('delete')], [30, 90, 400]);
      assert.strictEqual(base.tierToArchive.daysAfterLastTierChangeGreaterThan, 14, 're-tier guard');
      // Archive charges for deletion within 180 days of the move.
      assert.ok(d('delete') >= d('tierToArchive') + 180, 'delete at least 180 days after the move to Archive');
    });

    it('never tiers manifests, and deletes them before the archives they list', () => {
      const manifest = `repo-backups/${RUN_LAYOUT.manifests}/contoso/2026-11-27/1.1/manifest.json`;
      const covering = (policy().rules as Json[]).filter((r) => r.definition.filters.prefixMatch.some((p: string) => manifest.startsWith(p)));
      assert.deepStrictEqual(covering.map((r) => r.name), [ruleFor(`repo-backups/${RUN_LAYOUT.manifests}/`)?.name]);
      for (const r of covering) {
        assert.deepStrictEqual(Object.keys(r.definition.actions.baseBlob), ['delete'], `${r.name}: manifests are only deleted`);
      }
      const archivesDelete = ruleFor(`repo-backups/${RUN_LAYOUT.archives}/`)!.definition.actions.baseBlob.delete.daysAfterModificationGreaterThan;
      const manifestsDelete = covering[0].definition.actions.baseBlob.delete.daysAfterModificationGreaterThan;
      // A manifest is written after its job's archives: deleted 5 days earlier, it never outlives them (for jobs under 5 days).
      assert.strictEqual(archivesDelete - manifestsDelete, 5);
    });
  });

  describe('setup-storage.sh', () => {
    const script = path.join(samples, 'setup-storage.sh');
    const posixShell = process.platform !== 'win32';

    it('passes bash -n', function () {
      if (!posixShell) this.skip();
      const r = spawnSync('bash', ['-n', script], { encoding: 'utf8' });
      assert.strictEqual(r.status, 0, r.stderr);
    });

    it('passes shellcheck (when installed)', function () {
      if (!posixShell || spawnSync('shellcheck', ['--version']).status !== 0) this.skip();
      const r = spawnSync('shellcheck', [script], { encoding: 'utf8' });
      assert.strictEqual(r.status, 0, r.stdout + r.stderr);
    });

    /** Runs setup-storage.sh with a stand-in `az` on PATH that logs its calls (and the policy file it is given). */
    function withFakeAz(env: Record<string, string>): { status: number | null; stdout: string; stderr: string; calls: string } {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'repobackup-fake-az-'));
      try {
        const log = path.join(dir, 'az.log');
        fs.writeFileSync(path.join(dir, 'az'), [
          '#!/usr/bin/env bash',
          `echo "az $*" >> "${log}"`,
          `for a in "$@"; do case "$a" in @*) cat "\${a#@}" >> "${log}";; esac; done`,
          'case "$*" in *"keys list"*) echo FAKEKEY==;; *generate-sas*) echo "sv=2022-11-02&se=2030-01-01T00%3A00Z&sr=c&sp=cw&sig=abc";; esac',
          '',
        ].join('\n'), { mode: 0o755 });
        fs.writeFileSync(log, '');
        const r = spawnSync('bash', [script], {
          encoding: 'utf8',
          env: { ...process.env, PATH: `${dir}${path.delimiter}${process.env.PATH}`, ACCOUNT: 'contosobackup', CONTAINER: 'bk', ...env },
        });
        return { status: r.status, stdout: r.stdout, stderr: r.stderr, calls: fs.readFileSync(log, 'utf8') };
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }

    it('with a stand-in az: creates the storage, applies the policy for the container and makes a cw SAS', function () {
      if (!posixShell) this.skip();
      const r = withFakeAz({ PROTECTION: 'versioning', EXPIRY: '2030-01-01T00:00Z' });
      assert.strictEqual(r.status, 0, r.stdout + r.stderr);
      const calls = r.calls;
      assert.match(calls, /az storage account create .*--sku Standard_GRS/);
      assert.match(calls, /--allow-blob-public-access false/);
      assert.match(calls, /az storage container-rm create .*--name bk/);
      assert.match(calls, /--enable-versioning true/);
      assert.match(calls, /"prefixMatch": \["bk\/archives\/"\]/);
      assert.match(calls, /"prefixMatch": \["bk\/manifests\/"\]/);
      assert.doesNotMatch(calls, /repo-backups/, 'every prefix names the container');
      assert.match(calls, /az storage container generate-sas .*--name bk --permissions cw --expiry 2030-01-01T00:00Z --https-only/);
      assert.match(r.stdout, /https:\/\/contosobackup\.blob\.core\.windows\.net\/bk\?sv=.*sp=cw/);
      assert.doesNotMatch(r.stdout + r.stderr, /FAKEKEY/, 'the account key is not printed');
    });

    it('turns protection on by default, expires the SAS in a year by default, and says plainly what PROTECTION=none leaves open', function () {
      if (!posixShell) this.skip();
      const byDefault = withFakeAz({});
      assert.strictEqual(byDefault.status, 0, byDefault.stdout + byDefault.stderr);
      assert.match(byDefault.calls, /blob-service-properties update .*--enable-versioning true .*--enable-delete-retention true/);
      const expiry = /--permissions cw --expiry (\S+)/.exec(byDefault.calls)?.[1];
      const days = (Date.parse(expiry!.replace(/Z$/, ':00Z')) - Date.now()) / 86_400_000;
      assert.ok(days > 360 && days < 370, `default expiry ${expiry} is a year from now (${days.toFixed(1)} days)`);
      const worm = withFakeAz({ PROTECTION: 'immutability', IMMUTABLE_DAYS: '200' });
      assert.match(worm.calls, /container immutability-policy create .*--period 200/);
      const none = withFakeAz({ PROTECTION: 'none' });
      assert.strictEqual(none.status, 0);
      assert.doesNotMatch(none.calls, /enable-versioning|immutability-policy/);
      assert.match(none.stderr, /WARNING: no versioning or immutability .*anyone holding the SAS can overwrite\s+every backup/s);
      assert.strictEqual(withFakeAz({ PROTECTION: 'sometimes' }).status, 2);
      assert.strictEqual(withFakeAz({ PROTECTION: 'immutability', IMMUTABLE_DAYS: 'forever' }).status, 2);
    });

    it('PRINCIPAL: assigns Storage Blob Data Contributor on the container only, makes no SAS, keeps protection on', function () {
      if (!posixShell) this.skip();
      const r = withFakeAz({ PRINCIPAL: '11111111-2222-3333-4444-555555555555' });
      assert.strictEqual(r.status, 0, r.stdout + r.stderr);
      assert.match(r.calls, /az role assignment create --assignee 11111111-2222-3333-4444-555555555555 --role Storage Blob Data Contributor --scope \S*\/blobServices\/default\/containers\/bk /);
      assert.match(r.calls, /--enable-versioning true/);
      assert.doesNotMatch(r.calls, /generate-sas|keys list/, 'no SAS and no account key');
      assert.match(r.stdout, /blobAuth: serviceConnection/);
      assert.match(r.stdout, /delete and overwrite/);
    });

    it('INCREMENTAL=true makes an rcwl SAS (what incremental: true needs) and says what it can read; anything but true/false is refused', function () {
      if (!posixShell) this.skip();
      const r = withFakeAz({ INCREMENTAL: 'true', EXPIRY: '2030-01-01T00:00Z' });
      assert.strictEqual(r.status, 0, r.stdout + r.stderr);
      assert.match(r.calls, /az storage container generate-sas .*--name bk --permissions rcwl --expiry 2030-01-01T00:00Z --https-only/);
      assert.match(r.stdout, /can read, list, create and write blobs .*anyone holding it can read every backup, but not delete one/s);
      assert.match(withFakeAz({}).calls, /--permissions cw /, 'create + write by default');
      assert.strictEqual(withFakeAz({ INCREMENTAL: 'yes' }).status, 2);
    });
  });

  describe('dates that expire', () => {
    const YEAR_MS = 365 * 86_400_000;
    /** Lines that set an expiry (`--expiry`, `se=`, `EXPIRY`, "expires …") with a literal date before `limit`. */
    function expiringDates(text: string, where: string, limit: Date): string[] {
      const out: string[] = [];
      text.split('\n').forEach((line, i) => {
        if (!/expir|\bse=/i.test(line)) return;
        for (const m of line.matchAll(/\b(20\d\d)-(\d\d)-(\d\d)/g)) {
          if (Date.UTC(+m[1], +m[2] - 1, +m[3]) < limit.getTime()) out.push(`${where}:${i + 1}: ${m[0]} in: ${line.trim()}`);
        }
      });
      return out;
    }

    it('the check flags a literal expiry date that has passed or is within a year', () => {
      const now = new Date('2026-11-27T00:00:00Z');
      const limit = new Date(now.getTime() + YEAR_MS);
      assert.strictEqual(expiringDates('--permissions cw --expiry 2026-12-31T00:00Z', 'x', limit).length, 1);
      assert.strictEqual(expiringDates('...&se=2025-01-01T00%3A00Z&sig=…', 'x', limit).length, 1);
      assert.strictEqual(expiringDates('--expiry 2030-01-01', 'x', limit).length, 0);
      assert.strictEqual(expiringDates('archive: contoso/2026-12-02/1234.1/api.zip', 'x', limit).length, 0, 'a run folder is no expiry');
    });

    it('README.md, overview.md, the samples and the task.json files give no SAS expiry that has passed or is within a year', () => {
      const files = ['README.md', 'overview.md', ...fs.readdirSync(samples).map((f) => `samples/${f}`),
        'tasks/RepoBackup/RepoBackupV1/task.json', 'tasks/RepoRestore/RepoRestoreV1/task.json'];
      const limit = new Date(Date.now() + YEAR_MS);
      let expiryLines = 0;
      const found: string[] = [];
      for (const f of files) {
        const text = fs.readFileSync(path.join(root, f), 'utf8');
        expiryLines += text.split('\n').filter((l) => /expir|\bse=/i.test(l)).length;
        found.push(...expiringDates(text, f, limit));
      }
      assert.ok(expiryLines >= 5, `the docs talk about expiry (${expiryLines} lines scanned)`);
      assert.deepStrictEqual(found, [], 'use a computed date, e.g. --expiry "$(date -u -d \'+1 year\' +%Y-%m-%d)"');
    });
  });

  it('both task.json files point helpUrl at this extension\'s Marketplace page (vss-extension.json publisher and id)', () => {
    const ext = readJson(path.join(root, 'vss-extension.json'));
    const want = `https://marketplace.visualstudio.com/items?itemName=${ext.publisher}.${ext.id}`;
    for (const [name, major] of [['RepoBackup', 1], ['RepoRestore', 1]] as const) assert.strictEqual(taskJson(name, major)?.helpUrl, want, `${name}@${major}`);
  });
});

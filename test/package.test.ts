// The extension package: builds the .vsix with scripts/package.js (as `npm run package` does, after the build
// `npm test` already ran), unpacks it and checks what Azure DevOps will see: the manifests, every task.json
// against task-lib's tasks.schema.json and tfx's own rules, versions, size, contents, and that a task folder
// taken out of the package runs on its own (no node_modules anywhere above it): bare, it reaches input
// validation; with inputs, it backs up a repository served by the DevOps stand-in to a folder and to Azurite.
import * as assert from 'assert';
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as yauzl from 'yauzl';
import { AzuriteHandle, startAzurite } from './harness/azurite';
import { populate, PopulateResult, prngBytes } from './harness/corpus';
import { DevOpsStandIn } from './harness/devops-standin';
import { runTask, TaskRun } from './harness/run-task';
import { cleanupAll, gitEnv, tmpDir } from './harness/util';

const root = path.resolve(__dirname, '..', '..');
const MAX_VSIX_BYTES = 5 * 1024 * 1024;
const TASK_CONTRIBUTION = 'ms.vss-distributed-task.task';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const readJson = (file: string): Json => JSON.parse(fs.readFileSync(file, 'utf8').replace(/^\uFEFF/, ''));
const posix = (p: string) => p.split(path.sep).join('/');

/** tasks/<Task>/<TaskVn> folders of the repository that hold a task.json (what the package must contain). */
function repoTaskVersionDirs(): string[] {
  const tasksDir = path.join(root, 'tasks');
  const out: string[] = [];
  for (const task of fs.readdirSync(tasksDir)) {
    const taskDir = path.join(tasksDir, task);
    if (!fs.statSync(taskDir).isDirectory()) continue;
    for (const v of fs.readdirSync(taskDir)) {
      if (fs.existsSync(path.join(taskDir, v, 'task.json'))) out.push(posix(path.join('tasks', task, v)));
    }
  }
  return out.sort();
}

// ------------------------------------------------------------------------------------------- unzip

function unzip(zipPath: string, dest: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    yauzl.open(zipPath, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) return reject(err ?? new Error('no zip'));
      const names: string[] = [];
      zip.on('error', reject);
      zip.on('end', () => resolve(names));
      zip.on('entry', (entry: yauzl.Entry) => {
        const name = entry.fileName;
        const target = path.resolve(dest, name);
        if (!target.startsWith(path.resolve(dest) + path.sep)) return reject(new Error(`zip entry escapes: ${name}`));
        names.push(name);
        if (name.endsWith('/')) {
          fs.mkdirSync(target, { recursive: true });
          zip.readEntry();
          return;
        }
        fs.mkdirSync(path.dirname(target), { recursive: true });
        zip.openReadStream(entry, (e, stream) => {
          if (e || !stream) return reject(e ?? new Error('no stream'));
          const out = fs.createWriteStream(target);
          stream.on('error', reject);
          out.on('error', reject);
          out.on('finish', () => zip.readEntry());
          stream.pipe(out);
        });
      });
      zip.readEntry();
    });
  });
}

/** Names of the entries of a zip, without extracting. */
function zipEntryNames(zipPath: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    yauzl.open(zipPath, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) return reject(err ?? new Error('no zip'));
      const names: string[] = [];
      zip.on('error', reject);
      zip.on('entry', (e: yauzl.Entry) => { names.push(e.fileName); zip.readEntry(); });
      zip.on('end', () => resolve(names));
      zip.readEntry();
    });
  });
}

// ------------------------------------------------------------------------------- task.json rules

// From microsoft/azure-pipelines-task-lib tasks.schema.json (draft-04, additionalProperties: false at the top
// level and for inputs/groups/version), plus the execution handlers tfx-cli 0.23 knows (the schema's own list
// predates Node20_1/Node24).
const TOP_LEVEL_KEYS = new Set([
  '$schema', 'id', 'name', 'friendlyName', 'description', 'helpUrl', 'helpMarkDown', 'author', 'preview', 'deprecated',
  'removalDate', 'showEnvironmentVariables', 'runsOn', 'visibility', 'category', 'groups', 'demands', 'minimumAgentVersion',
  'version', 'instanceNameFormat', 'releaseNotes', 'inputs', 'dataSourceBindings', 'sourceDefinitions', 'prejobexecution',
  'execution', 'postjobexecution', 'messages', 'outputVariables', 'restrictions',
]);
const INPUT_KEYS = new Set(['name', 'aliases', 'label', 'type', 'defaultValue', 'required', 'helpMarkDown', 'groupName', 'visibleRule', 'properties', 'options']);
const INPUT_TYPES = new Set(['boolean', 'filePath', 'multiLine', 'pickList', 'radio', 'secureFile', 'string', 'int', 'identities', 'querycontrol']);
const GROUP_KEYS = new Set(['name', 'displayName', 'isExpanded', 'visibleRule']);
const CATEGORIES = new Set(['Build', 'Utility', 'Test', 'Package', 'Deploy', 'Azure Repos', 'Azure Boards', 'Azure Pipelines', 'Azure Test Plans', 'Azure Artifacts']);
const RUNS_ON = new Set(['Agent', 'MachineGroup', 'Server', 'ServerGate', 'DeploymentGroup']);
const VISIBILITY = new Set(['Build', 'Release']);
const HANDLERS = new Set(['Node', 'Node10', 'Node16', 'Node20_1', 'Node24', 'PowerShell', 'PowerShell3', 'Process', 'HttpRequest', 'HttpRequestChain']);
const DEPRECATED_HANDLERS = new Set(['Node', 'Node6', 'Node10', 'Node16']);
const TRUE_FALSE = new Set(['True', 'False']);
const GUID = /^[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12}$/;
const RULE_OPERATORS = ['NotContains', 'NotStartsWith', 'NotEndsWith', 'Contains', 'StartsWith', 'EndsWith', '!=', '<=', '>=', '=', '<', '>'];

/** Input names a visibleRule refers to: `a = x && b != y || c NotEndsWith z`. Unparseable clauses come back as errors. */
function ruleInputs(rule: string): { names: string[]; errors: string[] } {
  const names: string[] = [];
  const errors: string[] = [];
  for (const clause of rule.split(/&&|\|\|/)) {
    const c = clause.trim();
    const op = RULE_OPERATORS
      .map((o) => ({ o, i: /^[A-Za-z]/.test(o) ? c.search(new RegExp(`\\s${o}\\s`)) : c.indexOf(o) }))
      .filter((x) => x.i > 0)
      .sort((a, b) => a.i - b.i)[0];
    if (!op) {
      errors.push(`clause '${c}' has no operator`);
      continue;
    }
    const name = c.slice(0, op.i).trim();
    if (!/^[A-Za-z][A-Za-z0-9]*$/.test(name)) errors.push(`clause '${c}' does not start with an input name`);
    else names.push(name);
  }
  return { names, errors };
}

/**
 * Every rule violation of a task.json; `taskDir` is the folder it sits in (execution targets are resolved there).
 * Empty when valid.
 */
function validateTaskJson(t: Json, taskDir: string): string[] {
  const p: string[] = [];
  const isStr = (v: unknown) => typeof v === 'string';
  const nonEmpty = (v: unknown) => typeof v === 'string' && v.trim().length > 0;
  for (const k of Object.keys(t)) if (!TOP_LEVEL_KEYS.has(k)) p.push(`unknown top-level property '${k}'`);

  // tfx jsonvalidate.validateTask
  if (!isStr(t.id) || !GUID.test(t.id)) p.push('id is a required GUID');
  if (!isStr(t.name) || !/^[A-Za-z0-9-]+$/.test(t.name)) p.push('name is a required alphanumeric string (A-Z, a-z, 0-9, -)');
  if (!isStr(t.friendlyName) || t.friendlyName.length < 1 || t.friendlyName.length > 40) p.push(`friendlyName is required, 1-40 chars (got ${JSON.stringify(t.friendlyName)})`);
  if (!nonEmpty(t.instanceNameFormat)) p.push('instanceNameFormat is required');

  for (const k of ['description', 'helpUrl', 'helpMarkDown', 'author', 'releaseNotes']) {
    if (t[k] !== undefined && !isStr(t[k])) p.push(`${k} must be a string`);
  }
  if (!nonEmpty(t.description)) p.push('description should say what the task does');
  for (const k of ['preview', 'deprecated', 'showEnvironmentVariables']) {
    if (t[k] !== undefined && typeof t[k] !== 'boolean') p.push(`${k} must be a boolean`);
  }
  if (t.category !== undefined && !CATEGORIES.has(t.category)) p.push(`category '${t.category}' is not one of ${[...CATEGORIES].join(', ')}`);
  if (t.runsOn !== undefined && (!Array.isArray(t.runsOn) || t.runsOn.some((r: unknown) => !RUNS_ON.has(r as string)))) p.push(`runsOn ${JSON.stringify(t.runsOn)} has unknown values`);
  if (t.visibility !== undefined && (!Array.isArray(t.visibility) || t.visibility.some((r: unknown) => !VISIBILITY.has(r as string)))) p.push(`visibility ${JSON.stringify(t.visibility)} has unknown values`);
  if (t.demands !== undefined && (!Array.isArray(t.demands) || t.demands.some((d: unknown) => !isStr(d)))) p.push('demands must be an array of strings');
  if (t.minimumAgentVersion !== undefined && !/^\d+\.\d+(\.\d+)?$/.test(String(t.minimumAgentVersion))) p.push(`minimumAgentVersion '${t.minimumAgentVersion}' is not n.n[.n]`);
  if (t.removalDate !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(String(t.removalDate))) p.push('removalDate must be YYYY-MM-DD');

  const v = t.version;
  if (!v || typeof v !== 'object') p.push('version {Major, Minor, Patch} is required');
  else {
    for (const k of Object.keys(v)) if (!['Major', 'Minor', 'Patch'].includes(k)) p.push(`version has unknown property '${k}'`);
    for (const k of ['Major', 'Minor', 'Patch']) if (!Number.isInteger(v[k]) || v[k] < 0) p.push(`version.${k} must be a non-negative integer`);
  }

  const groups = new Set<string>();
  if (t.groups !== undefined) {
    if (!Array.isArray(t.groups)) p.push('groups must be an array');
    else for (const g of t.groups) {
      for (const k of Object.keys(g)) if (!GROUP_KEYS.has(k)) p.push(`group '${g.name}' has unknown property '${k}'`);
      if (!nonEmpty(g.name) || !nonEmpty(g.displayName)) p.push(`group ${JSON.stringify(g)} needs name and displayName`);
      if (g.isExpanded !== undefined && typeof g.isExpanded !== 'boolean') p.push(`group '${g.name}': isExpanded must be a boolean`);
      if (groups.has(g.name)) p.push(`group '${g.name}' is defined twice`);
      groups.add(g.name);
    }
  }

  const inputs: Json[] = Array.isArray(t.inputs) ? t.inputs : [];
  if (t.inputs !== undefined && !Array.isArray(t.inputs)) p.push('inputs must be an array');
  const inputNames = new Set(inputs.map((i) => i.name));
  const seen = new Set<string>(); // the agent passes inputs as INPUT_<NAME>: names must differ case-insensitively
  for (const i of inputs) {
    const n = i.name;
    for (const k of Object.keys(i)) if (!INPUT_KEYS.has(k)) p.push(`input '${n}' has unknown property '${k}'`);
    if (!isStr(n) || !/^[A-Za-z][A-Za-z0-9]*$/.test(n)) p.push(`input name ${JSON.stringify(n)} must match ^[A-Za-z][A-Za-z0-9]*$`);
    for (const name of [n, ...(Array.isArray(i.aliases) ? i.aliases : [])]) {
      const key = String(name).toUpperCase();
      if (seen.has(key)) p.push(`input name or alias '${name}' is used twice (names are case-insensitive)`);
      seen.add(key);
    }
    if (!nonEmpty(i.label)) p.push(`input '${n}' has no label`);
    if (!nonEmpty(i.helpMarkDown)) p.push(`input '${n}' has no helpMarkDown`);
    if (!isStr(i.type) || !(INPUT_TYPES.has(i.type) || /^connectedService:.+$/.test(i.type))) p.push(`input '${n}' has unknown type ${JSON.stringify(i.type)}`);
    if (i.defaultValue !== undefined && !isStr(i.defaultValue) && typeof i.defaultValue !== 'boolean') p.push(`input '${n}': defaultValue must be a string or boolean`);
    if (i.required !== undefined && typeof i.required !== 'boolean') p.push(`input '${n}': required must be a boolean`);
    if (i.groupName !== undefined && !groups.has(i.groupName)) p.push(`input '${n}': groupName '${i.groupName}' is not a group`);
    if (i.visibleRule !== undefined) {
      const { names, errors } = ruleInputs(String(i.visibleRule));
      for (const e of errors) p.push(`input '${n}': visibleRule ${e}`);
      for (const ref of names) {
        if (!inputNames.has(ref)) p.push(`input '${n}': visibleRule names '${ref}', which is not an input`);
        if (ref === n) p.push(`input '${n}': visibleRule refers to itself`);
      }
    }
    if (i.type === 'pickList' || i.type === 'radio') {
      const editable = i.properties && i.properties.EditableOptions === 'True';
      if (!i.options || typeof i.options !== 'object' || Object.keys(i.options).length === 0) {
        if (!editable) p.push(`input '${n}' (${i.type}) has no options`);
      } else if (i.defaultValue !== undefined && !editable && !Object.prototype.hasOwnProperty.call(i.options, String(i.defaultValue))) {
        p.push(`input '${n}': defaultValue '${i.defaultValue}' is not one of its options ${JSON.stringify(Object.keys(i.options))}`);
      }
    } else if (i.options !== undefined && i.type !== 'multiLine' && !String(i.type).startsWith('connectedService:')) {
      p.push(`input '${n}': options only apply to pickList/radio`);
    }
    if (i.type === 'boolean' && i.defaultValue !== undefined && !['true', 'false'].includes(String(i.defaultValue).toLowerCase())) {
      p.push(`input '${n}': boolean defaultValue must be true or false`);
    }
    if (i.properties !== undefined) {
      const props = i.properties;
      if (typeof props !== 'object' || Array.isArray(props)) p.push(`input '${n}': properties must be an object`);
      else {
        for (const k of ['EditableOptions', 'MultiSelect', 'MultiSelectFlatList', 'DisableManageLink', 'IsSearchable', 'PopulateDefaultValue']) {
          if (props[k] !== undefined && !TRUE_FALSE.has(props[k])) p.push(`input '${n}': properties.${k} must be "True" or "False"`);
        }
        // The schema says boolean; Microsoft's own tasks write "true"/"false", which the service accepts.
        if (props.resizable !== undefined && ![true, false, 'true', 'false'].includes(props.resizable)) p.push(`input '${n}': properties.resizable must be true/false`);
        for (const k of ['rows', 'maxLength']) {
          if (props[k] !== undefined && !/^\d+$/.test(String(props[k]))) p.push(`input '${n}': properties.${k} must be digits`);
        }
      }
    }
  }

  let runners = 0;
  for (const kind of ['prejobexecution', 'execution', 'postjobexecution']) {
    const ex = t[kind];
    if (ex === undefined) continue;
    if (typeof ex !== 'object') {
      p.push(`${kind} must be an object`);
      continue;
    }
    let valid = 0;
    for (const [runner, handler] of Object.entries(ex as Json)) {
      if (!HANDLERS.has(runner)) p.push(`${kind}.${runner} is not a known execution handler`);
      if (!DEPRECATED_HANDLERS.has(runner)) valid++;
      const target = handler && (handler as Json).target;
      if (!nonEmpty(target)) {
        p.push(`${kind}.${runner}.target is required`);
        continue;
      }
      const normalized = String(target).replace(/\$\(\s*currentdirectory\s*\)/i, '.');
      if (/\$\([^)]+\)/.test(normalized)) continue;
      if (!fs.existsSync(path.join(taskDir, normalized))) p.push(`${kind}.${runner}.target ${target} is not in the package`);
    }
    if (kind === 'execution') runners = valid;
  }
  if (!t.execution) p.push('execution is required');
  else if (runners === 0) p.push('execution has only end-of-life runners (tfx warns: Node, Node10, Node16)');

  if (t.messages !== undefined) {
    if (typeof t.messages !== 'object' || Array.isArray(t.messages)) p.push('messages must be an object');
    else for (const [k, m] of Object.entries(t.messages as Json)) if (!isStr(m)) p.push(`messages.${k} must be a string`);
  }
  if (t.outputVariables !== undefined) {
    if (!Array.isArray(t.outputVariables)) p.push('outputVariables must be an array');
    else for (const o of t.outputVariables) {
      if (!isStr(o.name) || !/^[A-Za-z][A-Za-z0-9]*$/.test(o.name)) p.push(`outputVariable ${JSON.stringify(o.name)} has an invalid name`);
      for (const k of Object.keys(o)) if (!['name', 'description'].includes(k)) p.push(`outputVariable '${o.name}' has unknown property '${k}'`);
    }
  }
  return p;
}

// ----------------------------------------------------------------------------- running the task

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  result?: string;
  message?: string;
}

function parseCompletion(r: Omit<RunResult, 'result' | 'message'>): RunResult {
  const m = /##vso\[task\.complete result=([A-Za-z]+);?\](.*)$/m.exec(r.stdout);
  return { ...r, result: m?.[1], message: m?.[2]?.trim() };
}

/** An environment with nothing from this process but what a bare machine has: no NODE_PATH, no INPUT_*, no agent. */
function bareEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const keep = ['PATH', 'Path', 'SystemRoot', 'SYSTEMROOT', 'windir', 'TEMP', 'TMP', 'TMPDIR', 'HOME', 'USERPROFILE', 'LANG'];
  const env: NodeJS.ProcessEnv = {};
  for (const k of keep) if (process.env[k] !== undefined) env[k] = process.env[k];
  return { ...env, ...extra };
}

/** Runs `node <target>` in `taskDir` as the agent would (async: the stand-in lives in this process). */
function runBare(taskDir: string, target: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child: ChildProcess = spawn(process.execPath, [path.join(taskDir, target)], { cwd: taskDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => { stdout += d; });
    child.stderr!.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(parseCompletion({ code, stdout, stderr, ms: Number(process.hrtime.bigint() - started) / 1e6 }));
    });
  });
}

/** Copies only `taskDir` into a fresh folder under the OS temp dir and checks no node_modules is reachable above it. */
function isolatedCopy(taskDir: string): string {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'repobackup-isolated-'));
  const dest = path.join(base, path.basename(taskDir));
  fs.cpSync(taskDir, dest, { recursive: true });
  for (let dir = dest; ; dir = path.dirname(dir)) {
    assert.ok(!fs.existsSync(path.join(dir, 'node_modules')), `${dir}/node_modules exists: the isolation test would not prove anything`);
    if (path.dirname(dir) === dir) break;
  }
  return dest;
}

function describeRun(r: RunResult): string {
  return `exit ${r.code}, ${r.ms.toFixed(0)} ms\n--- stdout\n${r.stdout.slice(-4000)}\n--- stderr\n${r.stderr.slice(-4000)}`;
}

// ------------------------------------------------------------------------------------------ tests

describe('extension package (.vsix)', function () {
  this.timeout(60_000);

  const repoVersionDirs = repoTaskVersionDirs();
  const pkg = readJson(path.join(root, 'package.json'));
  const manifest = readJson(path.join(root, 'vss-extension.json'));
  let work = '';
  let vsix = '';
  let unpacked = '';
  let entries: string[] = [];
  let packageOutput = '';

  function runPackage(args: string[], env: NodeJS.ProcessEnv = {}) {
    const e: NodeJS.ProcessEnv = { ...process.env, ...env };
    if (!('REPOBACKUP_PUBLISHER' in env)) delete e.REPOBACKUP_PUBLISHER;
    const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'package.js'), ...args], { cwd: root, env: e, encoding: 'utf8', timeout: 50_000 });
    return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}` };
  }

  before(async function () {
    const unbuilt = repoVersionDirs.filter((d) => {
      const t = readJson(path.join(root, d, 'task.json'));
      return Object.values((t.execution ?? {}) as Json).some((h: Json) => h.target && !fs.existsSync(path.join(root, d, h.target)));
    });
    if (unbuilt.length) {
      console.log(`      skipped: ${unbuilt.join(', ')} not built (run \`npm run build\`; \`npm test\` does it)`);
      this.skip();
    }
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'repobackup-vsix-'));
    const r = runPackage(['--out-dir', path.join(work, 'out'), '--stage', path.join(work, 'stage')]);
    packageOutput = r.output;
    assert.strictEqual(r.status, 0, `scripts/package.js failed:\n${r.output}`);
    vsix = path.join(work, 'out', `${manifest.publisher}.${manifest.id}-${manifest.version}.vsix`);
    assert.ok(fs.existsSync(vsix), `expected ${vsix}\n${r.output}`);
    unpacked = path.join(work, 'unpacked');
    entries = (await unzip(vsix, unpacked)).filter((e) => !e.endsWith('/'));
  });

  after(async () => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
    await cleanupAll();
  });

  it('is built by tfx without warnings, named <publisher>.<id>-<version>.vsix', () => {
    assert.match(packageOutput, /Completed operation: create extension/);
    assert.doesNotMatch(packageOutput, /^(tfx: )?warning/im);
    assert.strictEqual(path.basename(vsix), `${manifest.publisher}.${manifest.id}-${pkg.version}.vsix`);
  });

  it(`is at most ${MAX_VSIX_BYTES / 1024 / 1024} MB`, () => {
    const size = fs.statSync(vsix).size;
    console.log(`      vsix: ${(size / 1024).toFixed(1)} KiB`);
    assert.ok(size <= MAX_VSIX_BYTES, `vsix is ${size} bytes`);
  });

  it('holds only runtime files: no sources, tests, node_modules or source maps', () => {
    const bad = entries.filter((e) =>
      /(^|\/)node_modules\//.test(e) || /(^|\/)(test|src|build)\//.test(e) || /\.ts$/.test(e) || /\.map$/.test(e) ||
      /(^|\/)(package(-lock)?\.json|tsconfig\.json|\.mocharc\.json)$/.test(e) || /\.test\.js$/.test(e));
    assert.deepStrictEqual(bad, []);
    const top = new Set(['[Content_Types].xml', 'extension.vsixmanifest', 'extension.vsomanifest', manifest.content.details.path]);
    const allowedDirs = ['images/', ...repoVersionDirs.map((d) => `${d}/`)];
    const stray = entries.filter((e) => !top.has(e) && !allowedDirs.some((d) => e.startsWith(d)));
    assert.deepStrictEqual(stray, [], 'files outside the manifest, overview, images and task folders');
    for (const d of repoVersionDirs) {
      const own = entries.filter((e) => e.startsWith(`${d}/`)).map((e) => e.slice(d.length + 1)).sort();
      assert.ok(own.includes('task.json') && own.includes('icon.png') && own.includes('dist/index.js') && own.includes('dist/lib.json'), `${d}: ${own.join(', ')}`);
      assert.deepStrictEqual(own.filter((f) => !['task.json', 'icon.png'].includes(f) && !f.startsWith('dist/')), [], `${d} has extra files`);
    }
  });

  it('extension.vsomanifest contributes every task folder of the repository', () => {
    const vso = readJson(path.join(unpacked, 'extension.vsomanifest'));
    const tasks = (vso.contributions as Json[]).filter((c) => c.type === TASK_CONTRIBUTION);
    for (const c of tasks) {
      assert.deepStrictEqual(c.targets, ['ms.vss-distributed-task.tasks'], `${c.id} targets`);
      assert.ok(fs.existsSync(path.join(unpacked, c.properties.name)), `${c.id}: ${c.properties.name} is not in the vsix`);
    }
    const ids = tasks.map((c) => c.id);
    assert.strictEqual(new Set(ids).size, ids.length, `duplicate contribution ids ${ids}`);
    const contributed = tasks.map((c) => posix(path.normalize(c.properties.name))).sort();
    const expected = [...new Set(repoVersionDirs.map((d) => path.posix.dirname(d)))].sort();
    assert.deepStrictEqual(contributed, expected);
    assert.deepStrictEqual(vso.scopes ?? [], [], 'the extension asks for no scopes');
  });

  it('extension.vsixmanifest has the identity, icon, overview and the contribution manifest', () => {
    const xml = fs.readFileSync(path.join(unpacked, 'extension.vsixmanifest'), 'utf8');
    const identity = /<Identity\b([^>]*)\/?>/.exec(xml)?.[1] ?? '';
    const attr = (name: string) => new RegExp(`\\b${name}="([^"]*)"`).exec(identity)?.[1];
    assert.strictEqual(attr('Id'), manifest.id);
    assert.strictEqual(attr('Publisher'), manifest.publisher);
    assert.strictEqual(attr('Version'), pkg.version);
    assert.match(xml, /<DisplayName>Backup Git Repos<\/DisplayName>/);
    assert.match(xml, /<Categories>Azure Pipelines<\/Categories>/);
    assert.match(xml, /<InstallationTarget Id="Microsoft\.VisualStudio\.Services"\s*\/>/);
    assert.doesNotMatch(xml, /<GalleryFlags>[^<]*Public/, 'the extension is private');
    assert.match(xml, /Type="Microsoft\.VisualStudio\.Services\.Manifest"[^>]*Path="extension\.vsomanifest"/);
    assert.match(xml, /Type="Microsoft\.VisualStudio\.Services\.Content\.Details"[^>]*Path="overview\.md"/);
    assert.match(xml, /Type="Microsoft\.VisualStudio\.Services\.Icons\.Default"[^>]*Path="images\/icon\.png"/);
    assert.ok(entries.includes('overview.md') && entries.includes('images/icon.png'));
  });

  it('every packaged task.json passes the tasks.schema.json and tfx rules', () => {
    const found = entries.filter((e) => e.endsWith('/task.json')).map((e) => path.posix.dirname(e)).sort();
    assert.deepStrictEqual(found, repoVersionDirs, 'every task version of the repository is packaged');
    const problems: string[] = [];
    const ids = new Map<string, string>();
    for (const d of found) {
      const t = readJson(path.join(unpacked, d, 'task.json'));
      problems.push(...validateTaskJson(t, path.join(unpacked, d)).map((x) => `${d}: ${x}`));
      const m = /V(\d+)$/.exec(d);
      if (!m || Number(m[1]) !== t.version?.Major) problems.push(`${d}: version.Major ${t.version?.Major} does not match the folder`);
      if (path.posix.basename(d) !== `${t.name}V${t.version?.Major}`) problems.push(`${d}: folder should be named ${t.name}V${t.version?.Major}`);
      const other = ids.get(t.id);
      if (other && path.posix.dirname(other) !== path.posix.dirname(d)) problems.push(`${d}: id ${t.id} also used by ${other}`);
      ids.set(t.id, d);
      assert.deepStrictEqual(t, readJson(path.join(root, d, 'task.json')), `${d}/task.json differs from the repository's`);
    }
    assert.deepStrictEqual(problems, []);
  });

  it('keeps package.json, vss-extension.json and every task.json at the same version', () => {
    const [maj, min, pat] = String(pkg.version).split('.').map(Number);
    assert.ok([maj, min, pat].every(Number.isInteger), `package.json version ${pkg.version}`);
    assert.strictEqual(manifest.version, pkg.version, 'vss-extension.json');
    for (const d of repoVersionDirs) {
      const v = readJson(path.join(unpacked, d, 'task.json')).version;
      assert.deepStrictEqual({ Minor: v.Minor, Patch: v.Patch }, { Minor: min, Patch: pat }, `${d}/task.json ${v.Major}.${v.Minor}.${v.Patch} vs ${pkg.version}`);
    }
    const check = spawnSync(process.execPath, [path.join(root, 'scripts', 'version.js'), 'check'], { cwd: root, encoding: 'utf8' });
    assert.strictEqual(check.status, 0, `scripts/version.js check:\n${check.stdout}${check.stderr}`);
  });

  it('has 128x128 PNG icons for the extension and every task', () => {
    for (const icon of ['images/icon.png', ...repoVersionDirs.map((d) => `${d}/icon.png`)]) {
      const b = fs.readFileSync(path.join(unpacked, icon));
      assert.ok(b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), `${icon} is not a PNG`);
      assert.deepStrictEqual([b.readUInt32BE(16), b.readUInt32BE(20)], [128, 128], `${icon} size`);
    }
  });

  it('takes the publisher from --publisher or REPOBACKUP_PUBLISHER', function () {
    const out = path.join(work, 'out-publisher');
    const a = runPackage(['--publisher', 'my-private-pub', '--out-dir', out, '--stage', path.join(work, 'stage-a')]);
    assert.strictEqual(a.status, 0, a.output);
    assert.ok(fs.existsSync(path.join(out, `my-private-pub.${manifest.id}-${pkg.version}.vsix`)), a.output);
    // Each task's help link points at the item of the publisher it is packaged under.
    for (const d of repoVersionDirs) {
      const helpUrl = readJson(path.join(work, 'stage-a', d, 'task.json')).helpUrl as string;
      assert.strictEqual(helpUrl, `https://marketplace.visualstudio.com/items?itemName=my-private-pub.${manifest.id}`, d);
    }
    const b = runPackage(['--out-dir', out, '--stage', path.join(work, 'stage-b')], { REPOBACKUP_PUBLISHER: 'env-pub' });
    assert.strictEqual(b.status, 0, b.output);
    assert.ok(fs.existsSync(path.join(out, `env-pub.${manifest.id}-${pkg.version}.vsix`)), b.output);
  });

  it('fails when tfx prints a warning (a task on an end-of-life runner only)', function () {
    // A copy of the repository's packaging inputs, with one task.json that tfx warns about.
    const sandbox = path.join(work, 'sandbox');
    for (const f of ['package.json', 'vss-extension.json', 'overview.md']) fs.cpSync(path.join(root, f), path.join(sandbox, f));
    for (const dir of ['scripts', 'images']) fs.cpSync(path.join(root, dir), path.join(sandbox, dir), { recursive: true });
    for (const d of repoVersionDirs) { // from the unpacked vsix: a stable copy, even if a build runs meanwhile
      fs.cpSync(path.join(unpacked, d, 'task.json'), path.join(sandbox, d, 'task.json'));
      fs.cpSync(path.join(unpacked, d, 'dist'), path.join(sandbox, d, 'dist'), { recursive: true });
    }
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(sandbox, 'node_modules'), 'junction');
    const victim = path.join(sandbox, repoVersionDirs[0], 'task.json');
    const t = readJson(victim);
    t.execution = { Node16: { target: 'dist/index.js', argumentFormat: '' } };
    fs.writeFileSync(victim, JSON.stringify(t, null, 2));
    const r = spawnSync(process.execPath, [path.join(sandbox, 'scripts', 'package.js'), '--out-dir', path.join(sandbox, 'out')], { cwd: sandbox, encoding: 'utf8' });
    const output = `${r.stdout}${r.stderr}`;
    assert.notStrictEqual(r.status, 0, `package.js succeeded despite a tfx warning:\n${output}`);
    assert.match(output, /warning\(s\); treated as failure/);
    assert.deepStrictEqual(fs.existsSync(path.join(sandbox, 'out')) ? fs.readdirSync(path.join(sandbox, 'out')) : [], [], 'no vsix is left behind');
  });

  describe('a task folder copied out of the package, alone', () => {
    for (const d of repoVersionDirs) {
      it(`${d} starts and fails input validation cleanly with no inputs`, async () => {
        const dir = isolatedCopy(path.join(unpacked, d));
        try {
          const execution = readJson(path.join(dir, 'task.json')).execution as Json;
          const target = (execution.Node20_1 ?? Object.values(execution)[0]).target;
          const r = await runBare(dir, target, bareEnv(), 20_000);
          console.log(`      ${path.posix.basename(d)} cold start to validation: ${r.ms.toFixed(0)} ms`);
          assert.doesNotMatch(r.stdout + r.stderr, /Cannot find module|MODULE_NOT_FOUND|ERR_MODULE/, describeRun(r));
          assert.strictEqual(r.result, 'Failed', describeRun(r));
          assert.ok(r.message && r.message.length > 10, `no validation message:\n${describeRun(r)}`);
          assert.doesNotMatch(r.stdout + r.stderr, /^\s+at .+:\d+:\d+\)?$/m, `stack trace instead of a message:\n${describeRun(r)}`);
          // Quiet figure ~300 ms (bench: cold start); the bound is 50× that so a loaded machine does not fail it.
          assert.ok(r.ms < 15_000, `took ${r.ms} ms`);
        } finally {
          fs.rmSync(path.dirname(dir), { recursive: true, force: true });
        }
      });
    }

    // The full runs: the same isolated folder backs up a real repository (refs + LFS) served by the DevOps
    // stand-in, once to a folder and once to Azure Blob Storage (Azurite) through a create+write-only SAS.
    describe('RepoBackup from the package, against the DevOps stand-in', () => {
      const d = repoVersionDirs.find((x) => x.startsWith('tasks/RepoBackup/'));
      let standin: DevOpsStandIn | undefined;
      let azurite: AzuriteHandle | undefined;
      let populated: PopulateResult;
      let taskDir = '';
      let entry = '';

      before(async function () {
        if (!d || !unpacked) this.skip();
        taskDir = isolatedCopy(path.join(unpacked, d!));
        entry = path.join(taskDir, readJson(path.join(taskDir, 'task.json')).execution.Node20_1.target);
        standin = await DevOpsStandIn.start({ org: 'contoso', root: tmpDir('pkg-standin') });
        const repo = standin.addRepo(standin.addProject('Team Alpha'), 'api');
        populated = await populate(standin, repo, {
          commits: [
            { message: 'Initial commit', files: { 'README.md': '# api\n', 'logo.bin': { lfs: prngBytes('pkg/logo', 2048) } } },
            { branch: 'feature/x', from: 'main', message: 'Feature', files: { 'x.txt': 'x\n' } },
          ],
          tags: [{ name: 'v1.0', target: 'main', message: 'Version 1.0' }],
        });
      });

      after(async () => {
        await standin?.stop();
        await azurite?.stop();
        if (taskDir) fs.rmSync(path.dirname(taskDir), { recursive: true, force: true });
      });

      async function backUp(inputs: Record<string, string>, buildId: string): Promise<TaskRun> {
        const token = standin!.tokens.bearer[0];
        const run = await runTask(entry, {
          inputs: { repositories: '*/*', ...inputs },
          orgUrl: standin!.orgUrl,
          token,
          tempDir: tmpDir('pkg-run'),
          variables: { 'Build.BuildId': buildId },
          env: { NODE_PATH: '', NODE_OPTIONS: '' },
          timeoutMs: 50_000,
        });
        const log = `exit ${run.code}, ${run.durationMs} ms\n--- stdout\n${run.stdout.slice(-4000)}\n--- stderr\n${run.stderr.slice(-4000)}`;
        assert.strictEqual(run.result?.result, 'Succeeded', log);
        // The agent masks System.AccessToken in every line; task-lib itself debug-logs endpoint auth parameters
        // (masked, shown only with System.Debug). Anything else that carries the token is a leak.
        const leaked = [...run.lines, ...run.stderr.split(/\r?\n/)]
          .filter((l) => l.includes(token) && !/^##vso\[task\.setsecret\]/.test(l))
          .map((l) => l.split(token).join('<TOKEN>'));
        assert.deepStrictEqual(leaked, [], 'the job token appears in the log');
        return run;
      }

      /** Checks a zip archive of Team Alpha/api: a bare repository at the root, every ref, the LFS object, no token. */
      async function checkZip(file: string): Promise<void> {
        const names = await zipEntryNames(file);
        assert.ok(names.includes('HEAD') && names.includes('config'), `not a bare repository at the archive root: ${names.slice(0, 20).join(', ')}`);
        for (const { oid } of populated.lfs) {
          assert.ok(names.some((n) => n.startsWith('lfs/objects/') && n.endsWith(oid)), `LFS object ${oid} missing`);
        }
        const extracted = tmpDir('pkg-extracted');
        await unzip(file, extracted);
        const config = fs.readFileSync(path.join(extracted, 'config'), 'utf8');
        assert.ok(!config.includes(standin!.tokens.bearer[0]) && !/extraheader/i.test(config), 'credentials in the archived git config');
        // What a user does by hand (overview.md, "Restore by hand"): the extracted folder must be a repository git accepts.
        const isRepo = spawnSync('git', ['--git-dir', extracted, 'rev-parse', '--is-bare-repository'], { env: gitEnv(), encoding: 'utf8' });
        assert.strictEqual(isRepo.stdout.trim(), 'true',
          `the extracted archive is not a git repository (${isRepo.stderr.trim()}); archive entries: ${names.filter((n) => !n.startsWith('hooks/')).join(', ')}`);
        const refs = spawnSync('git', ['--git-dir', extracted, 'for-each-ref', '--format=%(refname) %(objectname)'], { env: gitEnv(), encoding: 'utf8' }).stdout;
        for (const [ref, oid] of Object.entries(populated.refs)) assert.ok(refs.includes(`${ref} ${oid}`), `${ref} missing from the archive:\n${refs}`);
      }

      it('backs up a repository with its LFS objects to a folder', async () => {
        const out = tmpDir('pkg-backup-out');
        await backUp({ destination: 'folder', folderPath: out }, '4711');
        const files = listFiles(out).map(posix);
        const run = /^(archives|manifests)\/contoso\/\d{4}-\d{2}-\d{2}\/4711\.1\//;
        const archive = files.find((f) => run.test(f) && /^archives\/.*\/Team Alpha\/api\.zip$/.test(f));
        assert.ok(archive, `no Team Alpha/api.zip in ${files.join(', ')}`);
        assert.ok(files.some((f) => run.test(f) && f.startsWith('manifests/') && f.endsWith('/manifest.json')), `no manifest.json in ${files.join(', ')}`);
        await checkZip(path.join(out, archive!));
      });

      it('backs up to Azure Blob Storage (Azurite) through a cw SAS, with the SHA-256 in the metadata', async () => {
        azurite = await startAzurite();
        const container = await azurite.createContainer('backups');
        await backUp({ destination: 'azureBlob', sasUrl: azurite.containerSasUrl('backups', 'cw') }, '4712');
        const blobs: Array<{ name: string; metadata?: Record<string, string> }> = [];
        for await (const b of container.listBlobsFlat({ includeMetadata: true })) blobs.push({ name: b.name, metadata: b.metadata });
        const names = blobs.map((b) => b.name);
        const archive = blobs.find((b) => /^archives\/contoso\/\d{4}-\d{2}-\d{2}\/4712\.1\/Team Alpha\/api\.zip$/.test(b.name));
        assert.ok(archive, `no Team Alpha/api.zip among ${names.join(', ')}`);
        assert.ok(names.some((n) => /^manifests\/contoso\/\d{4}-\d{2}-\d{2}\/4712\.1\/manifest\.json$/.test(n)), `no manifest.json among ${names.join(', ')}`);
        const file = path.join(tmpDir('pkg-download'), 'api.zip');
        await container.getBlobClient(archive!.name).downloadToFile(file);
        const sha = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
        assert.strictEqual(archive!.metadata?.sha256, sha, 'blob metadata sha256');
        await checkZip(file);
      });
    });
  });
});

describe('task.json validator (self-check)', () => {
  const good = (): Json => ({
    id: 'ed24a846-58c4-45fa-a0a7-859921ddc910', name: 'T', friendlyName: 'T', description: 'd', instanceNameFormat: 'x',
    version: { Major: 1, Minor: 0, Patch: 0 }, groups: [{ name: 'g', displayName: 'G' }],
    inputs: [
      { name: 'mode', type: 'pickList', label: 'Mode', defaultValue: 'a', options: { a: 'A', b: 'B' }, helpMarkDown: 'h', groupName: 'g' },
      { name: 'url', type: 'string', label: 'Url', helpMarkDown: 'h', visibleRule: 'mode = a || mode != b' },
    ],
    execution: { Node20_1: { target: 'task.json' } },
  });
  const dir = path.join(root, 'tasks', 'RepoBackup', 'RepoBackupV1');

  it('accepts a valid task.json', () => {
    assert.deepStrictEqual(validateTaskJson(good(), dir), []);
  });

  const broken: Array<[string, (t: Json) => void, RegExp]> = [
    ['a bad id', (t) => { t.id = 'not-a-guid'; }, /GUID/],
    ['a long friendlyName', (t) => { t.friendlyName = 'x'.repeat(41); }, /friendlyName/],
    ['a name with spaces', (t) => { t.name = 'My Task'; }, /name is a required/],
    ['no instanceNameFormat', (t) => { delete t.instanceNameFormat; }, /instanceNameFormat/],
    ['a missing target file', (t) => { t.execution.Node20_1.target = 'dist/nope.js'; }, /not in the package/],
    ['only Node16', (t) => { t.execution = { Node16: { target: 'task.json' } }; }, /end-of-life/],
    ['an input without helpMarkDown', (t) => { delete t.inputs[1].helpMarkDown; }, /helpMarkDown/],
    ['an input without label', (t) => { delete t.inputs[0].label; }, /label/],
    ['a visibleRule on a missing input', (t) => { t.inputs[1].visibleRule = 'modus = a'; }, /visibleRule names 'modus'/],
    ['an unknown groupName', (t) => { t.inputs[0].groupName = 'nope'; }, /groupName/],
    ['a pickList default outside its options', (t) => { t.inputs[0].defaultValue = 'c'; }, /defaultValue 'c'/],
    ['an unknown input property', (t) => { t.inputs[0].lable = 'x'; }, /unknown property 'lable'/],
    ['an unknown top-level property', (t) => { t.exeuction = {}; }, /unknown top-level/],
    ['inputs differing only in case', (t) => { t.inputs[1].name = 'Mode'; delete t.inputs[1].visibleRule; }, /used twice/],
  ];
  for (const [what, mutate, expected] of broken) {
    it(`rejects ${what}`, () => {
      const t = good();
      mutate(t);
      const problems = validateTaskJson(t, dir);
      assert.ok(problems.some((x) => expected.test(x)), `expected ${expected} in ${JSON.stringify(problems)}`);
    });
  }
});

function listFiles(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(full, base));
    else out.push(path.relative(base, full));
  }
  return out;
}

// Where the extension installs and which agents run its tasks (README "Azure DevOps Server"): Services and Azure
// DevOps Server 2022.1 (build 19.225.34309.2) and later, the first Server that runs 3.x agents, and the first
// agent that has a handler both tasks declare. The agent runs the highest handler it knows: Node24 from 4.265.1,
// otherwise Node20_1, which it has from 3.232.1; below that it has neither and cannot run the task at all.
describe('targets and minimum agent', () => {
  const FIRST_HANDLER_AGENT: Record<string, string> = { Node20_1: '3.232.1', Node24: '4.265.1' };
  const older = (a: string, b: string) => {
    const [x, y] = [a, b].map((v) => v.split('.').map(Number));
    for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) < (y[i] ?? 0);
    return false;
  };

  it('vss-extension.json targets Services and Azure DevOps Server 2022.1 and later, nothing else', () => {
    const manifest = readJson(path.join(root, 'vss-extension.json'));
    assert.deepStrictEqual(manifest.targets, [
      { id: 'Microsoft.VisualStudio.Services' },
      { id: 'Microsoft.TeamFoundation.Server', version: '[19.225,)' },
    ]);
  });

  for (const dir of repoTaskVersionDirs()) {
    it(`${dir}: minimumAgentVersion is the first agent with one of its handlers (${Object.entries(FIRST_HANDLER_AGENT).map(([h, v]) => `${h} ${v}`).join(', ')})`, () => {
      const task = readJson(path.join(root, dir, 'task.json'));
      const handlers = Object.keys(task.execution);
      assert.ok(handlers.every((h) => h in FIRST_HANDLER_AGENT), `handlers ${handlers}`);
      const first = handlers.map((h) => FIRST_HANDLER_AGENT[h]).reduce((a, b) => (older(a, b) ? a : b));
      assert.strictEqual(first, '3.232.1');
      assert.strictEqual(task.minimumAgentVersion, first);
    });
  }
});

#!/usr/bin/env node
// Packages the extension into dist/<publisher>.<id>-<version>.vsix. Run through `npm run package`,
// which builds (tsc + bundle) first.
//
//   npm run package                              publisher from vss-extension.json
//   npm run package -- --publisher my-pub        private publisher (or env REPOBACKUP_PUBLISHER)
//   node scripts/package.js --out-dir some/dir   somewhere other than dist/
//
// Only runtime files go into the vsix. A staging folder (.tmp/vsix-stage) receives vss-extension.json,
// overview.md, images/ and, for every tasks/<Task>/<TaskVn> holding a task.json, just task.json, dist/
// (the esbuild bundle index.js + task-lib's lib.json) and icon.png. tfx-cli then packs that folder;
// any warning it prints fails the script.
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { checkVersions, taskVersionFolders } = require('./version');

const root = path.resolve(__dirname, '..');
const TASK_CONTRIBUTION = 'ms.vss-distributed-task.task';

function fail(message) {
  console.error(`package: ${message}`);
  process.exit(1);
}

function parseArgs(argv) {
  const opts = { publisher: process.env.REPOBACKUP_PUBLISHER || undefined, outDir: path.join(root, 'dist'), stage: path.join(root, '.tmp', 'vsix-stage') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const eq = a.indexOf('=');
      if (eq > 0) return a.slice(eq + 1);
      if (i + 1 >= argv.length) fail(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--publisher' || a.startsWith('--publisher=')) opts.publisher = value();
    else if (a === '--out-dir' || a.startsWith('--out-dir=')) opts.outDir = path.resolve(value());
    else if (a === '--stage' || a.startsWith('--stage=')) opts.stage = path.resolve(value());
    else if (a === '--help' || a === '-h') {
      console.log('usage: node scripts/package.js [--publisher <id>] [--out-dir <dir>] [--stage <dir>]\n' +
        '  publisher defaults to $REPOBACKUP_PUBLISHER, then to vss-extension.json');
      process.exit(0);
    } else fail(`unknown argument ${a}`);
  }
  return opts;
}

function copyFile(from, to) {
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.copyFileSync(from, to);
}

/** Copies a task's dist/ folder, leaving out source maps and TypeScript. */
function copyRuntimeDir(from, to) {
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, entry.name);
    const dst = path.join(to, entry.name);
    if (entry.isDirectory()) {
      if (entry.name === 'node_modules' || entry.name === 'test') continue;
      copyRuntimeDir(src, dst);
    } else if (!/\.(map|ts)$/.test(entry.name)) {
      copyFile(src, dst);
    }
  }
}

function toPosix(p) {
  return p.split(path.sep).join('/');
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'vss-extension.json'), 'utf8'));
  const publisher = opts.publisher || manifest.publisher;
  if (!/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(publisher || '')) fail(`invalid publisher id "${publisher}"`);

  const problems = checkVersions(root);
  if (problems.length) fail(`versions out of sync (fix with node scripts/version.js):\n  ${problems.join('\n  ')}`);

  // Tasks on disk, grouped by task folder (tasks/RepoBackup holds RepoBackupV1, RepoBackupV2, ...).
  const versions = taskVersionFolders(root);
  const taskDirs = new Map();
  for (const v of versions) {
    const rel = toPosix(path.relative(root, v.taskDir));
    if (!taskDirs.has(rel)) taskDirs.set(rel, []);
    taskDirs.get(rel).push(v);
  }
  if (taskDirs.size === 0) fail('no tasks/<Task>/<TaskVn>/task.json found');

  // One contribution per task folder. The manifest lists them statically; a task folder on disk without a
  // contribution is an error, a contribution whose task does not exist (yet) is left out with a notice.
  const contributions = [];
  const skipped = new Set();
  for (const c of manifest.contributions || []) {
    if (c.type !== TASK_CONTRIBUTION) {
      contributions.push(c);
      continue;
    }
    const name = toPosix(path.normalize(c.properties && c.properties.name || ''));
    if (!taskDirs.has(name)) {
      console.log(`package: note: ${name} has no task.json yet; contribution '${c.id}' left out of this package`);
      skipped.add(name);
      continue;
    }
    contributions.push(c);
  }
  const contributed = new Set(contributions.filter((c) => c.type === TASK_CONTRIBUTION).map((c) => toPosix(path.normalize(c.properties.name))));
  for (const dir of taskDirs.keys()) {
    if (!contributed.has(dir)) fail(`${dir} has a task.json but vss-extension.json has no '${TASK_CONTRIBUTION}' contribution for it`);
  }
  const files = (manifest.files || []).filter((f) => !skipped.has(toPosix(path.normalize(f.path))));
  for (const dir of taskDirs.keys()) {
    if (!files.some((f) => toPosix(path.normalize(f.path)) === dir)) files.push({ path: dir });
  }

  // Stage.
  const stage = opts.stage;
  fs.rmSync(stage, { recursive: true, force: true });
  fs.mkdirSync(stage, { recursive: true });
  fs.writeFileSync(path.join(stage, 'vss-extension.json'), JSON.stringify({ ...manifest, files, contributions }, null, 2) + '\n');
  const details = manifest.content && manifest.content.details && manifest.content.details.path;
  if (details) copyFile(path.join(root, details), path.join(stage, details));
  for (const f of files) {
    if (taskDirs.has(toPosix(path.normalize(f.path)))) continue;
    const src = path.join(root, f.path);
    if (!fs.existsSync(src)) fail(`vss-extension.json files: ${f.path} does not exist`);
    if (fs.statSync(src).isDirectory()) copyRuntimeDir(src, path.join(stage, f.path));
    else copyFile(src, path.join(stage, f.path));
  }
  for (const icon of Object.values(manifest.icons || {})) {
    if (!fs.existsSync(path.join(stage, icon))) copyFile(path.join(root, icon), path.join(stage, icon));
  }
  const taskIcon = path.join(root, 'images', 'icon.png');
  for (const v of versions) {
    const rel = path.relative(root, v.versionDir);
    const task = JSON.parse(fs.readFileSync(v.taskJsonPath, 'utf8'));
    const out = path.join(stage, rel);
    // The task's help link names the Marketplace item; with another publisher it must name that publisher's item.
    const staged = fs.readFileSync(v.taskJsonPath, 'utf8');
    const itemName = `itemName=${manifest.publisher}.${manifest.id}`;
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, 'task.json'), publisher === manifest.publisher ? staged : staged.split(itemName).join(`itemName=${publisher}.${manifest.id}`));
    const dist = path.join(v.versionDir, 'dist');
    if (!fs.existsSync(dist)) fail(`${toPosix(rel)}/dist is missing: run \`npm run build\` first (or use \`npm run package\`)`);
    copyRuntimeDir(dist, path.join(out, 'dist'));
    // A task may ship its own icon; otherwise it shows the extension's.
    const ownIcon = path.join(v.versionDir, 'icon.png');
    copyFile(fs.existsSync(ownIcon) ? ownIcon : taskIcon, path.join(out, 'icon.png'));
    // Every execution target must be in the package (tfx checks this too, but say it plainly).
    for (const kind of ['prejobexecution', 'execution', 'postjobexecution']) {
      for (const [runner, handler] of Object.entries(task[kind] || {})) {
        const target = handler && handler.target;
        if (target && !/\$\(/.test(target) && !fs.existsSync(path.join(out, target))) {
          fail(`${toPosix(rel)}/task.json ${kind}.${runner}.target ${target} was not built: run \`npm run build\` first`);
        }
      }
    }
  }

  // Pack.
  fs.mkdirSync(opts.outDir, { recursive: true });
  const vsixPath = path.join(opts.outDir, `${publisher}.${manifest.id}-${manifest.version}.vsix`);
  fs.rmSync(vsixPath, { force: true });
  const tfx = require.resolve('tfx-cli/_build/tfx-cli.js', { paths: [root] });
  const args = [tfx, 'extension', 'create', '--root', stage, '--manifest-globs', 'vss-extension.json',
    '--output-path', vsixPath, '--no-prompt', '--no-color'];
  if (opts.publisher) args.push('--publisher', publisher);
  const res = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', env: { ...process.env, TFX_TRACE: '' } });
  // eslint-disable-next-line no-control-regex
  const output = `${res.stdout || ''}${res.stderr || ''}`.replace(/\u001b\[[0-9;]*m/g, '');
  process.stdout.write(output.split(/\r?\n/).filter(Boolean).map((l) => `tfx: ${l}`).join('\n') + '\n');
  if (res.error) fail(`could not run tfx: ${res.error.message}`);
  if (res.status !== 0) fail(`tfx exited with ${res.status}`);
  const warnings = output.split(/\r?\n/).filter((l) => /^\s*warning\b/i.test(l));
  if (warnings.length) {
    fs.rmSync(vsixPath, { force: true });
    fail(`tfx printed ${warnings.length} warning(s); treated as failure:\n  ${warnings.join('\n  ')}`);
  }
  if (!fs.existsSync(vsixPath)) fail(`tfx did not write ${vsixPath}`);
  const size = fs.statSync(vsixPath).size;
  const shown = path.relative(process.cwd(), vsixPath);
  console.log(`package: ${shown && !shown.startsWith('..') ? shown : vsixPath} (${(size / 1024).toFixed(1)} KiB, ${size} bytes)`);
  console.log(`package: tasks: ${versions.map((v) => toPosix(path.relative(root, v.versionDir))).join(', ')}`);
}

main();

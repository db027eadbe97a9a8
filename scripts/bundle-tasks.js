#!/usr/bin/env node
// Bundles each task's compiled entry (build/tasks/<Task>/<TaskVn>/src/index.js, from `tsc`) into one
// self-contained file at tasks/<Task>/<TaskVn>/dist/index.js, the target its task.json names, and puts
// task-lib's own message file beside it (task-lib loads lib.json from its __dirname).
'use strict';
const fs = require('fs');
const path = require('path');
const esbuild = require('esbuild');

const root = path.resolve(__dirname, '..');
const tasksDir = path.join(root, 'tasks');

function taskFolders() {
  const out = [];
  for (const task of fs.readdirSync(tasksDir)) {
    const taskDir = path.join(tasksDir, task);
    if (!fs.statSync(taskDir).isDirectory()) continue;
    for (const version of fs.readdirSync(taskDir)) {
      const dir = path.join(taskDir, version);
      if (fs.existsSync(path.join(dir, 'task.json'))) out.push(dir);
    }
  }
  return out;
}

async function main() {
  const minify = !process.argv.includes('--no-minify');
  for (const dir of taskFolders()) {
    const rel = path.relative(root, dir);
    const entry = path.join(root, 'build', rel, 'src', 'index.js');
    if (!fs.existsSync(entry)) throw new Error(`missing compiled entry ${entry}: run tsc first`);
    const outDir = path.join(dir, 'dist');
    fs.rmSync(outDir, { recursive: true, force: true });
    await esbuild.build({
      entryPoints: [entry],
      bundle: true,
      platform: 'node',
      target: 'node20',
      outfile: path.join(outDir, 'index.js'),
      minify,
      keepNames: true,
      legalComments: 'none',
      logLevel: 'warning',
    });
    fs.copyFileSync(require.resolve('azure-pipelines-task-lib/lib.json'), path.join(outDir, 'lib.json'));
    console.log(`bundled ${rel}/dist/index.js (${(fs.statSync(path.join(outDir, 'index.js')).size / 1e6).toFixed(2)} MB)`);
  }
}

main().catch((err) => { console.error(err); process.exit(1); });

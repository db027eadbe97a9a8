#!/usr/bin/env node
// Keeps the extension's versions in sync: package.json (+ package-lock.json), vss-extension.json and every task.json.
//
//   node scripts/version.js            print the versions and check they agree
//   node scripts/version.js check      same, exit 1 if they drift
//   node scripts/version.js patch      1.2.3 -> 1.2.4 everywhere
//   node scripts/version.js minor      1.2.3 -> 1.3.0 everywhere
//   node scripts/version.js 1.4.0      set an explicit (higher) version
//
// Rule: package.json.version == vss-extension.json.version == "X.Y.Z", and every
// tasks/<Task>/<Task>V<n>/task.json has version { Major: n, Minor: Y, Patch: Z }. A task's Major comes
// from its folder (a breaking change is a new folder, RepoBackupV2, next to RepoBackupV1), so a release
// only ever raises Minor/Patch; agents cache tasks by version and keep running the old code otherwise.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');

function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

/** Every tasks/<Task>/<TaskVn> folder that holds a task.json, as { taskDir, versionDir, taskJsonPath, folderMajor }. */
function taskVersionFolders(base = root) {
  const tasksDir = path.join(base, 'tasks');
  const out = [];
  if (!fs.existsSync(tasksDir)) return out;
  for (const task of fs.readdirSync(tasksDir).sort()) {
    const taskDir = path.join(tasksDir, task);
    if (!fs.statSync(taskDir).isDirectory()) continue;
    for (const version of fs.readdirSync(taskDir).sort()) {
      const versionDir = path.join(taskDir, version);
      const taskJsonPath = path.join(versionDir, 'task.json');
      if (!fs.existsSync(taskJsonPath)) continue;
      const m = /V(\d+)$/.exec(version);
      out.push({ task, taskDir, versionDir, taskJsonPath, folderMajor: m ? Number(m[1]) : undefined });
    }
  }
  return out;
}

function parseVersion(v) {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(String(v));
  if (!m) throw new Error(`not a major.minor.patch version: ${v}`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

function compare(a, b) {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

/** Returns a list of human-readable problems; empty when everything is in sync. */
function checkVersions(base = root) {
  const problems = [];
  const pkg = readJson(path.join(base, 'package.json'));
  const ext = readJson(path.join(base, 'vss-extension.json'));
  if (pkg.version !== ext.version) {
    problems.push(`package.json version ${pkg.version} != vss-extension.json version ${ext.version}`);
  }
  let extV;
  try {
    extV = parseVersion(ext.version);
  } catch (err) {
    problems.push(`vss-extension.json: ${err.message}`);
    return problems;
  }
  for (const t of taskVersionFolders(base)) {
    const rel = path.relative(base, t.taskJsonPath);
    const v = readJson(t.taskJsonPath).version || {};
    const want = { Major: t.folderMajor, Minor: extV[1], Patch: extV[2] };
    if (t.folderMajor === undefined) problems.push(`${rel}: folder name must end in V<major>`);
    for (const k of ['Major', 'Minor', 'Patch']) {
      if (want[k] !== undefined && v[k] !== want[k]) {
        problems.push(`${rel}: version.${k} is ${v[k]}, expected ${want[k]} (extension ${ext.version})`);
      }
    }
  }
  return problems;
}

function writeJsonPreservingStyle(file, mutate) {
  // Edit only the version text so the file's own formatting (one-line inputs etc.) is untouched.
  const text = fs.readFileSync(file, 'utf8');
  const next = mutate(text);
  if (next === text) throw new Error(`${file}: version not found or unchanged`);
  JSON.parse(next); // still valid JSON
  fs.writeFileSync(file, next);
}

function setVersion(newVersion, base = root) {
  const [, minor, patch] = parseVersion(newVersion);
  for (const name of ['package.json', 'vss-extension.json']) {
    writeJsonPreservingStyle(path.join(base, name), (text) =>
      text.replace(/("version"\s*:\s*")\d+\.\d+\.\d+(")/, `$1${newVersion}$2`));
  }
  // npm keeps the root package's version in package-lock.json too (npm writes it as 2-space JSON).
  const lockPath = path.join(base, 'package-lock.json');
  if (fs.existsSync(lockPath)) {
    const lock = readJson(lockPath);
    lock.version = newVersion;
    if (lock.packages && lock.packages['']) lock.packages[''].version = newVersion;
    fs.writeFileSync(lockPath, JSON.stringify(lock, null, 2) + '\n');
  }
  for (const t of taskVersionFolders(base)) {
    writeJsonPreservingStyle(t.taskJsonPath, (text) =>
      text.replace(/("version"\s*:\s*\{[^}]*\})/, (block) =>
        block
          .replace(/("Major"\s*:\s*)\d+/, `$1${t.folderMajor}`)
          .replace(/("Minor"\s*:\s*)\d+/, `$1${minor}`)
          .replace(/("Patch"\s*:\s*)\d+/, `$1${patch}`)));
  }
}

function main(argv) {
  const arg = argv[0] || 'check';
  const ext = readJson(path.join(root, 'vss-extension.json'));
  const current = parseVersion(ext.version);
  if (arg === 'check') {
    const problems = checkVersions();
    for (const t of taskVersionFolders()) {
      const v = readJson(t.taskJsonPath).version || {};
      console.log(`${path.relative(root, t.taskJsonPath)}: ${v.Major}.${v.Minor}.${v.Patch}`);
    }
    console.log(`vss-extension.json: ${ext.version}`);
    console.log(`package.json: ${readJson(path.join(root, 'package.json')).version}`);
    if (problems.length) {
      console.error(`versions out of sync:\n  ${problems.join('\n  ')}`);
      return 1;
    }
    console.log('versions in sync');
    return 0;
  }
  let next;
  if (arg === 'patch') next = [current[0], current[1], current[2] + 1];
  else if (arg === 'minor') next = [current[0], current[1] + 1, 0];
  else if (arg === 'major') {
    console.error('A major bump would reset every task\'s Minor/Patch and agents would keep the old task code. ' +
      'A breaking task change is a new task folder (e.g. tasks/RepoBackup/RepoBackupV2 with Major 2); ' +
      'release it with `minor`, or pass an explicit version (node scripts/version.js 2.0.0) only if every task.json still rises.');
    return 1;
  } else {
    try {
      next = parseVersion(arg);
    } catch {
      console.error('usage: node scripts/version.js [check|patch|minor|<major.minor.patch>]');
      return 1;
    }
  }
  if (compare(next, current) <= 0) {
    console.error(`new version ${next.join('.')} must be higher than ${ext.version}`);
    return 1;
  }
  // Every task.json must rise too, or agents keep running the cached copy.
  for (const t of taskVersionFolders()) {
    const v = readJson(t.taskJsonPath).version || {};
    const was = [v.Major, v.Minor, v.Patch];
    const will = [t.folderMajor, next[1], next[2]];
    if (compare(will, was) <= 0) {
      console.error(`${path.relative(root, t.taskJsonPath)} would go from ${was.join('.')} to ${will.join('.')}: task versions must rise`);
      return 1;
    }
  }
  setVersion(next.join('.'));
  const problems = checkVersions();
  if (problems.length) {
    console.error(`after the bump the versions still disagree:\n  ${problems.join('\n  ')}`);
    return 1;
  }
  console.log(`version ${ext.version} -> ${next.join('.')} (package.json, vss-extension.json, ${taskVersionFolders().length} task.json)`);
  return 0;
}

module.exports = { checkVersions, taskVersionFolders, parseVersion };

if (require.main === module) process.exitCode = main(process.argv.slice(2));

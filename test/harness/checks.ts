// Checks shared by the end-to-end tests: read what a run stored, prove archive content, scan for secrets.
import assert from 'assert';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { ContainerClient } from '@azure/storage-blob';
import { extractArchiveFile, formatOfName } from '../../tasks/common/src/extract';
import { CorpusRepo } from './corpus';
import { TaskRun } from './run-task';
import { git, refMap, tmpDir } from './util';

export interface StoredFile {
  name: string;
  bytes: Buffer;
  metadata: Record<string, string>;
}

/** Every blob of a container (read with the account key), with content and metadata. */
export async function readContainer(container: ContainerClient): Promise<Map<string, StoredFile>> {
  const out = new Map<string, StoredFile>();
  for await (const item of container.listBlobsFlat({ includeMetadata: true })) {
    const bytes = await container.getBlobClient(item.name).downloadToBuffer();
    out.set(item.name, { name: item.name, bytes, metadata: item.metadata ?? {} });
  }
  return out;
}

/** Every file below a folder destination, keyed by its `/`-separated relative path. */
export function readFolder(root: string): Map<string, StoredFile> {
  const out = new Map<string, StoredFile>();
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(child);
      else out.set(child, { name: child, bytes: fs.readFileSync(path.join(root, child)), metadata: {} });
    }
  };
  walk('');
  return out;
}

export const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

export interface ManifestEntry {
  project: string; repository: string; id: string; status: 'ok' | 'skipped' | 'failed'; archive: string | null;
  sha256: string | null; size: number | null; refs: number | null; lfsObjects: number | null; error: string | null;
  durationMs: number; missingLfsObjects?: string[];
}
export interface Manifest {
  run: { shard: { position: number; total: number }; folder: string; archives?: string; manifests?: string };
  totals: Record<string, number>;
  repositories: ManifestEntry[];
}

export function manifests(files: Map<string, StoredFile>): Manifest[] {
  return [...files.values()].filter((f) => /\/manifest(\.job-\d+-of-\d+)?(~\d+)?\.json$/.test(f.name)).map((f) => JSON.parse(f.bytes.toString('utf8')));
}

/**
 * Extracts an archive and proves it is the source repository: `git for-each-ref` identical, `git fsck` clean,
 * and exactly the expected LFS objects, each hashing to its id. Returns the extracted folder.
 */
export async function assertArchiveMatches(bytes: Buffer, name: string, source: CorpusRepo): Promise<string> {
  const format = formatOfName(name);
  assert.ok(format, `archive name ${name} has a known extension`);
  const work = tmpDir('archive');
  const file = path.join(work, `a.${format}`);
  fs.writeFileSync(file, bytes);
  const dir = path.join(work, 'x');
  await extractArchiveFile(file, format!, dir);
  assert.deepStrictEqual(await refMap(dir), await refMap(source.repo.gitDir), `${name}: refs equal to the source`);
  assert.strictEqual(fs.readFileSync(path.join(dir, 'HEAD'), 'utf8').length > 0, true);
  await git(['fsck', '--full', '--no-dangling'], { cwd: dir });
  const lfsRoot = path.join(dir, 'lfs', 'objects');
  const found = new Set<string>();
  if (fs.existsSync(lfsRoot)) {
    for (const a of fs.readdirSync(lfsRoot)) for (const b of fs.readdirSync(path.join(lfsRoot, a))) for (const oid of fs.readdirSync(path.join(lfsRoot, a, b))) {
      assert.strictEqual(sha256(fs.readFileSync(path.join(lfsRoot, a, b, oid))), oid, `${name}: LFS object ${oid} hashes to its id`);
      found.add(oid);
    }
  }
  assert.deepStrictEqual([...found].sort(), [...new Set(source.lfs.map((l) => l.oid))].sort(), `${name}: every LFS object of every branch`);
  return dir;
}

/** Every file below `dir`, as bytes, for canary scans. */
export function allFileBytes(dir: string): Buffer[] {
  const out: Buffer[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(fs.readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

/** The forms a secret may leak in: as is, URL-encoded, base64 (as in a Basic header). */
export function secretForms(secret: string): string[] {
  return [...new Set([secret, encodeURIComponent(secret), Buffer.from(secret).toString('base64'), Buffer.from(`:${secret}`).toString('base64')])];
}

/** No stdout/stderr line carries a secret, except the `##vso[task.setsecret]` lines that register it with the agent's masker. */
export function assertNoSecretInOutput(run: TaskRun, secrets: string[]): void {
  const lines = `${run.stdout}\n${run.stderr}`.split('\n').filter((l) => !l.startsWith('##vso[task.setsecret]'));
  for (const secret of secrets) for (const form of secretForms(secret)) {
    const hit = lines.find((l) => l.includes(form));
    assert.strictEqual(hit, undefined, `a log line carries a secret: ${hit?.replace(form, '<SECRET>')}`);
  }
}

export function assertNoSecretInBytes(what: string, buffers: Buffer[], secrets: string[]): void {
  for (const secret of secrets) for (const form of secretForms(secret)) {
    for (const b of buffers) assert.strictEqual(b.includes(form), false, `${what} carries a secret`);
  }
}

export function assertNoSecretInUrls(what: string, urls: string[], secrets: string[]): void {
  for (const secret of secrets) for (const form of secretForms(secret)) {
    const hit = urls.find((u) => u.includes(form));
    assert.strictEqual(hit, undefined, `${what} saw a secret in a URL`);
  }
}

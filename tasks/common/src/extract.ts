/** Archive stream → directory, for restore and for checking backups. Refuses entries that escape the target. */
import { createWriteStream, promises as fsp } from 'fs';
import * as path from 'path';
import { pipeline } from 'stream/promises';
import { Readable } from 'stream';
import { createGunzip } from 'zlib';
import * as tar from 'tar-stream';
import * as yauzl from 'yauzl';
import { ArchiveFormat } from './archive';
import { isInside } from './platform/paths';

function safeTarget(root: string, name: string): string {
  const target = path.resolve(root, name);
  if (!isInside(root, target, { orSelf: true })) throw new Error(`archive entry '${name}' points outside the target folder`);
  return target;
}

/** Extracts a tar.gz stream into `dir` (created when missing). Returns the number of files written. */
export async function extractTarGz(source: Readable, dir: string): Promise<number> {
  const root = path.resolve(dir);
  await fsp.mkdir(root, { recursive: true });
  const extract = tar.extract();
  let files = 0;
  const done = (async () => {
    for await (const entry of extract) {
      const target = safeTarget(root, entry.header.name);
      if (entry.header.type === 'directory') {
        await fsp.mkdir(target, { recursive: true });
        entry.resume();
      } else if (entry.header.type === 'file') {
        await fsp.mkdir(path.dirname(target), { recursive: true });
        await pipeline(entry, createWriteStream(target));
        files++;
      } else {
        entry.resume();
      }
    }
  })();
  await Promise.all([pipeline(source, createGunzip(), extract), done]);
  return files;
}

/**
 * Extracts a zip file into `dir`. Zip keeps its directory at the end, so it is read from a file (random access);
 * the caller spools a stream to disk first.
 */
export async function extractZipFile(zipPath: string, dir: string): Promise<number> {
  const root = path.resolve(dir);
  await fsp.mkdir(root, { recursive: true });
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(zipPath, { lazyEntries: true, strictFileNames: false }, (err, z) => (err ? reject(err) : resolve(z!))),
  );
  let files = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      zip.on('error', reject);
      zip.on('end', resolve);
      zip.on('entry', (entry: yauzl.Entry) => {
        const handle = async () => {
          const target = safeTarget(root, entry.fileName);
          if (entry.fileName.endsWith('/')) {
            await fsp.mkdir(target, { recursive: true });
            return;
          }
          await fsp.mkdir(path.dirname(target), { recursive: true });
          const stream = await new Promise<Readable>((res, rej) => zip.openReadStream(entry, (e, s) => (e ? rej(e) : res(s!))));
          await pipeline(stream, createWriteStream(target));
          files++;
        };
        handle().then(() => zip.readEntry(), reject);
      });
      zip.readEntry();
    });
  } finally {
    zip.close();
  }
  return files;
}

/** Extracts an archive file of either format into `dir`. */
export async function extractArchiveFile(file: string, format: ArchiveFormat, dir: string): Promise<number> {
  if (format === 'zip') return extractZipFile(file, dir);
  const { createReadStream } = await import('fs');
  return extractTarGz(createReadStream(file), dir);
}

/** The archive format a name says: `.zip`, `.tar.gz` / `.tgz`, each also with `.age` after it (age-encrypted). */
export function formatOfName(name: string): ArchiveFormat | undefined {
  const plain = name.replace(/\.age$/i, '');
  if (/\.zip$/i.test(plain)) return 'zip';
  if (/\.(tar\.gz|tgz)$/i.test(plain)) return 'tar.gz';
  return undefined;
}

/** An age-encrypted archive (`repo.zip.age`, `repo.tar.gz.age`), as RepoBackup stores them with encryptionRecipients. */
export function isEncryptedName(name: string): boolean {
  return /\.(zip|tar\.gz|tgz)\.age$/i.test(name);
}

/**
 * Stage 3 of both modes: extract an archive and make the bare repository in it safe to use. The repository may be
 * at the archive's root (RepoBackup, `git clone --mirror` + tar) or in its one top folder (the PowerShell backup
 * script's `git clone --bare <repo>` + Compress-Archive, or `zip -r repo.zip repo.git`). Its config is replaced by
 * a fresh one: the credentials a bare clone stores there (`http.extraheader` from `git clone -c …`, `credential.*`,
 * URLs with user info) never reach a command, and the caller is told which ones the archive carries.
 */
import { promises as fsp } from 'fs';
import * as path from 'path';
import { removeWithRetries } from '../../../common/src/platform/remove';
import { ArchiveFormat } from '../../../common/src/archive';
import { errorMessage } from '../../../common/src/errors';
import { extractArchiveFile } from '../../../common/src/extract';
import { Git } from '../../../common/src/git';
import { CorruptArchiveError } from './fetch';

export interface Unpacked {
  /** The bare repository. */
  repoDir: string;
  /** Where it was found: the archive's root, or its one top folder (named). */
  layout: { kind: 'root' } | { kind: 'folder'; name: string };
  /** `sha1` or `sha256`. */
  objectFormat: string;
  /** Config keys of the archived repository that hold credentials (names only, never values). */
  credentialKeys: string[];
}

const isFile = (p: string) => fsp.stat(p).then((s) => s.isFile(), () => false);
const isDir = (p: string) => fsp.stat(p).then((s) => s.isDirectory(), () => false);

/** A bare repository's marks: a HEAD file and an objects folder (or a HEAD and refs, for an empty one). */
async function looksBare(dir: string): Promise<boolean> {
  return (await isFile(path.join(dir, 'HEAD'))) && ((await isDir(path.join(dir, 'objects'))) || (await isDir(path.join(dir, 'refs'))));
}

/** Finds the bare repository in an extracted archive: at its root, or in its one top folder. */
export async function findRepository(root: string): Promise<Unpacked['layout'] | undefined> {
  if (await isFile(path.join(root, 'HEAD'))) return { kind: 'root' };
  const entries = (await fsp.readdir(root, { withFileTypes: true })).filter((e) => e.name !== '__MACOSX');
  if (entries.length === 1 && entries[0].isDirectory() && (await looksBare(path.join(root, entries[0].name)))) {
    return { kind: 'folder', name: entries[0].name };
  }
  return undefined;
}

/**
 * Which keys of a repository config file hold credentials: `http[.<url>].extraheader`, `credential.*`, and any
 * value that is a URL with user info (`remote.origin.url = https://org@dev.azure.com/…`, `https://user:token@…`).
 * Read as text (nothing is executed, no includes followed); names only are returned, never values.
 */
export function credentialKeys(configText: string): string[] {
  const keys = new Set<string>();
  let section = '';
  for (const raw of configText.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[\s*([^\s\]"]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\](.*)$/.exec(line);
    let rest = line;
    if (header) {
      section = header[2] !== undefined ? `${header[1]}.${header[2]}` : header[1];
      rest = header[3].trim();
      if (!rest) continue;
    }
    const eq = rest.indexOf('=');
    const name = (eq < 0 ? rest : rest.slice(0, eq)).trim();
    const value = eq < 0 ? '' : rest.slice(eq + 1).trim();
    const key = `${section}.${name}`;
    const lower = key.toLowerCase();
    const sectionName = section.split('.')[0].toLowerCase();
    if ((sectionName === 'http' && /\.extraheader$/.test(lower)) || sectionName === 'credential' || /:\/\/[^/@\s"]+@/.test(value)) keys.add(key);
  }
  return [...keys].sort();
}

export async function unpackArchive(file: string, format: ArchiveFormat, into: string, git: Git, label: string): Promise<Unpacked> {
  try {
    await extractArchiveFile(file, format, into);
  } catch (err) {
    throw new CorruptArchiveError(`Cannot extract '${label}': ${errorMessage(err)}. The archive is damaged or not a zip / tar.gz archive.`);
  }
  const layout = await findRepository(into);
  if (!layout) {
    const top = (await fsp.readdir(into).catch(() => [] as string[])).slice(0, 5);
    throw new CorruptArchiveError(`'${label}' holds no bare git repository: there is no HEAD at its root nor in its one top folder (it has ${top.length ? top.map((t) => `'${t}'`).join(', ') : 'nothing'}${top.length === 5 ? ', …' : ''}). Give an archive of a bare or mirror clone (git clone --bare / --mirror), at the root or in one folder.`);
  }
  const repoDir = layout.kind === 'root' ? into : path.join(into, layout.name);
  const config = path.join(repoDir, 'config');
  let keys: string[] = [];
  if (await isFile(config)) {
    keys = credentialKeys(await fsp.readFile(config, 'utf8'));
  }
  const objectFormat = await prepareRepository(repoDir, git);
  return { repoDir, layout, objectFormat, credentialKeys: keys };
}

/**
 * Makes the extracted mirror a safe, plain bare repository: the folders git needs (archives carry no empty
 * folders), no hooks, no alternates, no FETCH_HEAD, and a fresh config (only the repository format is kept), so
 * nothing in the archive can run code, redirect requests or carry a credential. Returns the object format.
 */
export async function prepareRepository(dir: string, git: Git): Promise<string> {
  let format = 'sha1';
  let version = '0';
  const config = path.join(dir, 'config');
  if (await isFile(config)) {
    version = (await git.configFileGet(config, 'core.repositoryformatversion')) ?? '0';
    format = ((await git.configFileGet(config, 'extensions.objectformat')) ?? 'sha1').toLowerCase();
  }
  if (!/^[01]$/.test(version)) throw new CorruptArchiveError(`The archive's repository has format version ${version}, which this git cannot read.`);
  if (format !== 'sha1' && format !== 'sha256') throw new CorruptArchiveError(`The archive's repository uses object format '${format}', which this git cannot read.`);
  for (const sub of ['objects/info', 'objects/pack', 'refs/heads', 'refs/tags']) await fsp.mkdir(path.join(dir, sub), { recursive: true });
  for (const p of ['hooks', 'objects/info/alternates', 'objects/info/http-alternates', 'info/grafts', 'shallow', 'commondir', 'FETCH_HEAD']) {
    await removeWithRetries(path.join(dir, p));
  }
  await writeConfig(dir, format);
  return format;
}

/** Writes the repository's config: format, bare, and (once known) the target as `origin`, without credentials. */
export async function writeConfig(dir: string, objectFormat: string, remoteUrl?: string): Promise<void> {
  const quote = (v: string) => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  const lines = ['[core]', `\trepositoryformatversion = ${objectFormat === 'sha1' ? 0 : 1}`, '\tbare = true', '\tlogallrefupdates = false'];
  if (objectFormat !== 'sha1') lines.push('[extensions]', `\tobjectformat = ${objectFormat}`);
  if (remoteUrl) lines.push('[remote "origin"]', `\turl = ${quote(remoteUrl)}`);
  await fsp.writeFile(path.join(dir, 'config'), lines.join('\n') + '\n');
}

/** The one log line about credentials an archive carries (key names only). */
export function credentialWarning(label: string, keys: string[]): string {
  return `The archive '${label}' contains credentials in its repository config (${keys.join(', ')}), as a bare clone made with git clone -c http.extraheader=… stores them. ` +
    'They were removed from the restored copy before anything ran or was pushed, but the archive itself still contains them: re-create the backup with RepoBackup@1 (which never stores a credential) or protect the archive like a secret, and revoke the token if it can still be valid.';
}

/** The on-disk frame shared by the dir and tar targets: <root>/<instance>/<backup-id>/{manifest.json,meta/,spaces/}. */
import { mkdir, open, readdir, readFile, rename, rm, statfs } from 'node:fs/promises';
import path from 'node:path';
import { EbrError } from '../errors.js';
import type { BackupRef, FreeSpace, ListedArchive } from './archive-target.js';
import { TargetWriteError } from './file-sink.js';
import { parseManifest, sha256Of, type Manifest, type ReadManifestFile } from './manifest.js';

export function backupDirOf(root: string, ref: BackupRef): string {
  return path.join(root, ref.instance, ref.backupId);
}

/**
 * Creates the backup's directory; an existing one is never reused. When it fails half-way, what it
 * made is removed again, so a failed create leaves nothing behind (and never touches an existing one).
 */
export async function createBackupDir(root: string, ref: BackupRef): Promise<string> {
  const dir = backupDirOf(root, ref);
  try {
    await mkdir(path.dirname(dir), { recursive: true });
    await mkdir(dir, { mode: 0o750 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new EbrError('archive', `an archive already exists at ${dir}; ebr never overwrites a backup`, {
        hint: 'remove that directory by hand if it is garbage, or point target.path elsewhere',
        context: { path: dir, backupId: ref.backupId },
      });
    }
    throw TargetWriteError.of(dir, err);
  }
  try {
    await mkdir(path.join(dir, 'meta'));
    await mkdir(path.join(dir, 'spaces'));
  } catch (err) {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    throw TargetWriteError.of(dir, err);
  }
  return dir;
}

/**
 * Writes beside the final name, fsyncs, renames in, fsyncs the directory: the file is whole or absent.
 * A failed write removes its temporary file (on a full disk it would hold the space the retry needs).
 */
export async function writeFileAtomic(file: string, data: string | Buffer): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    const fh = await open(tmp, 'wx', 0o640);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
    await syncDir(path.dirname(file));
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw TargetWriteError.of(file, err);
  }
}

/**
 * Free space for this process on the filesystem that holds `dir`, or that would hold it: the nearest
 * existing parent is asked when `dir` does not exist yet. Root may use the blocks ext4 reserves for it
 * (bfree); anyone else gets bavail. Undefined when no parent can be asked (the target is gone).
 */
export async function freeSpaceAt(dir: string): Promise<FreeSpace | undefined> {
  const blocks = process.getuid?.() === 0 ? 'bfree' : 'bavail';
  for (let p = path.resolve(dir); ; p = path.dirname(p)) {
    try {
      const s = await statfs(p);
      return { path: p, freeBytes: Number(s[blocks]) * Number(s.bsize) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || p === path.dirname(p)) return undefined;
    }
  }
}

export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function readManifestAt(dir: string): Promise<Manifest> {
  return (await readManifestFileAt(dir)).manifest;
}

export async function readManifestFileAt(dir: string): Promise<ReadManifestFile> {
  const file = path.join(dir, 'manifest.json');
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new EbrError('archive', `no manifest at ${file}: the archive is missing or incomplete`, {
      hint: 'a backup without manifest.json never completed; use another backup (`ebr list`)',
      context: { path: file },
      cause: err,
    });
  }
  try {
    return { manifest: parseManifest(bytes.toString('utf8'), file), sha256: sha256Of(bytes) };
  } catch (err) {
    throw new EbrError('archive', `${file} is damaged: ${(err as Error).message}`, { context: { path: file }, cause: err });
  }
}

export async function readMetaAt(dir: string, name: string): Promise<Buffer> {
  return readFile(path.join(dir, 'meta', safeName(name)));
}

export async function writeMetaAt(dir: string, name: string, data: string | Buffer): Promise<void> {
  await writeFileAtomic(path.join(dir, 'meta', safeName(name)), data);
}

export async function removeBackupDir(root: string, ref: BackupRef): Promise<void> {
  await rm(backupDirOf(root, ref), { recursive: true, force: true });
}

/** Space and meta names become file names: no separators, no dot-dot. */
export function safeName(name: string): string {
  if (!/^[A-Za-z0-9_.@+-]+$/.test(name) || name === '.' || name === '..') {
    throw new EbrError('archive', `"${name}" cannot be used as a file name in the archive`, { hint: 'space and meta names may hold letters, digits and _ . @ + -' });
  }
  return name;
}

/**
 * The archives under <root>/<instance>/: every directory that holds manifest.json, meta/ or spaces/
 * (what createBackupDir makes), sorted by id. Other directories there, such as the wal/ and binlog/
 * log stores, are not backups and are left out.
 */
export async function listBackupDirs(root: string, instance: string): Promise<ListedArchive[]> {
  const base = path.join(root, instance);
  let entries;
  try {
    entries = await readdir(base, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new EbrError('archive', `cannot list the archives in ${base}: ${(err as Error).message}`, { hint: 'check that target.path exists and is readable', context: { path: base }, cause: err });
  }
  const out: ListedArchive[] = [];
  for (const e of entries.filter((x) => x.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
    const dir = path.join(base, e.name);
    const inside = new Set(await readdir(dir).catch(() => [] as string[]));
    if (!inside.has('manifest.json') && !inside.has('meta') && !inside.has('spaces')) continue;
    out.push({
      backupId: e.name,
      location: dir,
      async manifestBytes() {
        try {
          return await readFile(path.join(dir, 'manifest.json'));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
          throw err;
        }
      },
    });
  }
  return out;
}

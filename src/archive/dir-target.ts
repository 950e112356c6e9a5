/** `dir`: every chunk as a plain file under spaces/<space>/, for targets that are a mounted filesystem or a dedup store. */
import { mkdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { EbrError, throwIfAborted } from '../errors.js';
import { manifestText } from './manifest.js';
import type { ArchiveReader, ArchiveTarget, ArchiveWriter, SpaceWriter } from './archive-target.js';
import { backupDirOf, createBackupDir, listBackupDirs, readManifestAt, readManifestFileAt, readMetaAt, removeBackupDir, freeSpaceAt, safeName, syncDir, writeFileAtomic, writeMetaAt } from './backup-dir.js';
import { copyWithDigest, readFileChunks } from './digest-copy.js';
import { logStoreAt } from '../logs/log-store.js';
import { FileSink, TargetWriteError } from './file-sink.js';
import { identityCodec, type Codec } from './codec.js';
import { emptySha256 } from './tar-stream.js';

/** The keys of `target:` with `type: dir`. */
export const dirSettings = z.object({ type: z.string(), path: z.string() }).strict();

export function dirTarget(settings: { path: string }): ArchiveTarget {
  const root = settings.path;
  return {
    kind: 'dir',
    async create(ref) {
      const dir = await createBackupDir(root, ref);
      return dirWriter(dir, () => removeBackupDir(root, ref));
    },
    async open(ref) {
      return dirReader(backupDirOf(root, ref));
    },
    remove: (ref) => removeBackupDir(root, ref),
    list: (instance) => listBackupDirs(root, instance),
    locationOf: (ref) => backupDirOf(root, ref),
    freeSpace: (ref) => freeSpaceAt(backupDirOf(root, ref)),
    logStore: (instance, kind) => logStoreAt(path.join(root, instance, kind), instance),
  };
}

function dirWriter(dir: string, abort: () => Promise<void>): ArchiveWriter {
  const landed: Landed = { closed: 0, open: new Set() };
  return {
    location: dir,
    async openSpace(space, codec) {
      const stream = `spaces/${safeName(space)}`;
      const base = path.join(dir, stream);
      await onTarget(base, () => mkdir(base));
      return spaceWriter(base, stream, landed, codec ?? identityCodec);
    },
    writeMeta: (name, data) => writeMetaAt(dir, name, data),
    writeManifest: (manifest) => writeFileAtomic(path.join(dir, 'manifest.json'), manifestText(manifest)),
    // Asked of the instance's directory, not this archive's: the archive is removed after a failure, the advice is about where the next one goes.
    freeSpace: () => freeSpaceAt(path.dirname(dir)),
    bytesWritten: () => [...landed.open].reduce((n, s) => n + s.written, landed.closed),
    abort,
  };
}

/** Runs one write to the target; its failure says which file it was for (a full or vanished target, not a bad source). */
async function onTarget<T>(file: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    throw TargetWriteError.of(file, err);
  }
}

function memberPath(base: string, name: string): string {
  const p = path.join(base, name);
  if (!p.startsWith(base + path.sep)) throw new EbrError('archive', `member name ${name} leaves its space directory`, { context: { member: name } });
  return p;
}

/** Bytes of member files that reached the target: those closed, and the ones being written. */
interface Landed {
  closed: number;
  open: Set<FileSink>;
}

/** Each member file is stored through the codec on its own: compressed or encrypted files are no longer plain copies. */
function spaceWriter(base: string, stream: string, landed: Landed, codec: Codec): SpaceWriter {
  let bytes = 0;
  const dirs = new Set<string>([base]);
  return {
    takesTransient: codec === identityCodec,
    async addFile(header, source, signal) {
      const file = memberPath(base, header.name);
      await mkdirBelow(base, path.dirname(file), dirs);
      const sink = new FileSink(file);
      const coded = codec.wrapSink(sink);
      landed.open.add(sink);
      try {
        const d = await copyWithDigest(source, (b) => coded.write(b), header.size, signal, header.name);
        await coded.close();
        bytes += d.size;
        return { name: header.name, size: d.size, sha256: d.sha256, offset: 0 };
      } catch (err) {
        coded.destroy();
        throw err;
      } finally {
        landed.open.delete(sink);
        landed.closed += sink.written;
      }
    },
    async addEntry(header) {
      const p = memberPath(base, header.name);
      if (header.type === 'directory') await mkdirBelow(base, p, dirs);
      else {
        await mkdirBelow(base, path.dirname(p), dirs);
        await onTarget(p, () => symlink(header.linkTarget ?? '', p));
      }
      return { name: header.name, size: 0, sha256: emptySha256, offset: 0 };
    },
    async close() {
      for (const d of dirs) await onTarget(d, () => syncDir(d));
      return { file: stream, bytes };
    },
  };
}

/**
 * Makes `dir` and its parents up to the space directory, one level at a time and never the space
 * directory itself: when the target vanished (unmounted, removed) this fails instead of quietly making
 * the archive anew on whatever filesystem is left under the path.
 */
async function mkdirBelow(base: string, dir: string, made: Set<string>): Promise<void> {
  if (made.has(dir)) return;
  if (dir !== base) await mkdirBelow(base, path.dirname(dir), made);
  if (dir === base) return;
  await onTarget(dir, async () => {
    try {
      await mkdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  });
  made.add(dir);
}

function dirReader(dir: string): ArchiveReader {
  return {
    location: dir,
    readManifest: () => readManifestAt(dir),
    readManifestFile: () => readManifestFileAt(dir),
    readMeta: (name) => readMetaAt(dir, name),
    async *readSpace(space, signal, options) {
      const codec = options?.codec ?? identityCodec;
      const manifest = await readManifestAt(dir);
      const base = path.join(dir, 'spaces', safeName(space));
      for (const m of manifest.members.filter((x) => x.space === space)) {
        throwIfAborted(signal);
        const { sha256: _sha, space: _space, path: _path, stream: _stream, offset: _offset, details: _details, ...header } = m;
        const file = memberPath(base, m.name);
        yield { header, body: m.type === 'file' ? codec.decode(readFileChunks(file, signal), file, signal) : empty() };
      }
    },
  };
}

async function* empty(): AsyncGenerator<Buffer> {}

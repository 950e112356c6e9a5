/** `tar`: one tar file per space under spaces/, readable by GNU tar; each member's data offset is recorded. */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { EbrError } from '../errors.js';
import { manifestText } from './manifest.js';
import type { ArchiveReader, ArchiveTarget, ArchiveWriter, MemberHeader } from './archive-target.js';
import { backupDirOf, createBackupDir, listBackupDirs, readManifestAt, readManifestFileAt, readMetaAt, removeBackupDir, freeSpaceAt, safeName, writeFileAtomic, writeMetaAt } from './backup-dir.js';
import { codedSpaceMembers, codedSpaceWriter } from './coded-space.js';
import { identityCodec } from './codec.js';
import { readFileChunks, readFileReusing } from './digest-copy.js';
import { logStoreAt } from '../logs/log-store.js';
import { FileSink } from './file-sink.js';
import { emptySha256 } from './tar-stream.js';

/** The keys of `target:` with `type: tar`. */
export const tarSettings = z.object({ type: z.string(), path: z.string() }).strict();

export function tarTarget(settings: { path: string }): ArchiveTarget {
  const root = settings.path;
  return {
    kind: 'tar',
    async create(ref) {
      const dir = await createBackupDir(root, ref);
      return tarWriter(dir, () => removeBackupDir(root, ref));
    },
    async open(ref) {
      return tarReader(backupDirOf(root, ref));
    },
    remove: (ref) => removeBackupDir(root, ref),
    list: (instance) => listBackupDirs(root, instance),
    locationOf: (ref) => backupDirOf(root, ref),
    freeSpace: (ref) => freeSpaceAt(backupDirOf(root, ref)),
    logStore: (instance, kind) => logStoreAt(path.join(root, instance, kind), instance),
  };
}

function tarWriter(dir: string, abort: () => Promise<void>): ArchiveWriter {
  const sinks: FileSink[] = [];
  return {
    location: dir,
    async openSpace(space, codec) {
      const stream = `spaces/${safeName(space)}.tar`;
      const sink = new FileSink(path.join(dir, stream));
      sinks.push(sink);
      return codedSpaceWriter(sink, stream, codec);
    },
    writeMeta: (name, data) => writeMetaAt(dir, name, data),
    writeManifest: (manifest) => writeFileAtomic(path.join(dir, 'manifest.json'), manifestText(manifest)),
    // Asked of the instance's directory, not this archive's: the archive is removed after a failure, the advice is about where the next one goes.
    freeSpace: () => freeSpaceAt(path.dirname(dir)),
    bytesWritten: () => sinks.reduce((n, s) => n + s.written, 0),
    async abort() {
      for (const s of sinks) s.destroy();
      await abort();
    },
  };
}

function tarReader(dir: string): ArchiveReader {
  return {
    location: dir,
    readManifest: () => readManifestAt(dir),
    readManifestFile: () => readManifestFileAt(dir),
    readMeta: (name) => readMetaAt(dir, name),
    readSpace(space, signal, options) {
      const file = path.join(dir, 'spaces', `${safeName(space)}.tar`);
      // Reused buffers only where the bytes go straight to the caller: a decoder may keep its input longer.
      const reuse = options?.transient === true && (options.codec ?? identityCodec) === identityCodec;
      return codedSpaceMembers(openedChunks(file, signal, reuse), file, signal, options?.codec, options?.stored);
    },
  };
}

/** The file's bytes; a file that cannot be opened is named as the archive's problem. */
async function* openedChunks(file: string, signal: AbortSignal, reuse = false): AsyncGenerator<Buffer> {
  try {
    await access(file, constants.R_OK);
  } catch (err) {
    throw new EbrError('archive', `cannot open ${file}: ${(err as Error).message}`, { context: { path: file }, cause: err });
  }
  yield* reuse ? readFileReusing(file, signal) : readFileChunks(file, signal);
}

export { emptySha256 };
export type { MemberHeader };

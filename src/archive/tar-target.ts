/** `tar`: one tar file per space under spaces/, readable by GNU tar; each member's data offset is recorded. */
import { open } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { EbrError, throwIfAborted } from '../errors.js';
import { manifestText } from './manifest.js';
import type { ArchiveReader, ArchiveTarget, ArchiveWriter, MemberHeader, ReadMember, SpaceWriter } from './archive-target.js';
import { backupDirOf, createBackupDir, listBackupDirs, readManifestAt, readManifestFileAt, readMetaAt, removeBackupDir, freeSpaceAt, safeName, writeFileAtomic, writeMetaAt } from './backup-dir.js';
import { copyWithDigest, readChunkBytes } from './digest-copy.js';
import { FileSink } from './file-sink.js';
import { block, decodeHeader, encodeHeader, padding } from './tar-format.js';

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
  };
}

function tarWriter(dir: string, abort: () => Promise<void>): ArchiveWriter {
  const sinks: FileSink[] = [];
  return {
    location: dir,
    async openSpace(space) {
      const stream = `spaces/${safeName(space)}.tar`;
      const sink = new FileSink(path.join(dir, stream));
      sinks.push(sink);
      return spaceWriter(sink, stream);
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

function spaceWriter(sink: FileSink, stream: string): SpaceWriter {
  return {
    async addFile(header, source, signal) {
      await sink.write(encodeHeader(header));
      const offset = sink.position;
      const d = await copyWithDigest(source, (b) => sink.write(b), header.size, signal, header.name);
      const pad = padding(d.size);
      if (pad) await sink.write(Buffer.alloc(pad));
      return { name: header.name, size: d.size, sha256: d.sha256, offset };
    },
    async addEntry(header) {
      await sink.write(encodeHeader({ ...header, size: 0 }));
      return { name: header.name, size: 0, sha256: emptySha256, offset: sink.position };
    },
    async close() {
      // Two zero blocks end a tar archive.
      await sink.write(Buffer.alloc(2 * block));
      const bytes = sink.position;
      await sink.close();
      return { file: stream, bytes };
    },
  };
}

export const emptySha256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

function tarReader(dir: string): ArchiveReader {
  return {
    location: dir,
    readManifest: () => readManifestAt(dir),
    readManifestFile: () => readManifestFileAt(dir),
    readMeta: (name) => readMetaAt(dir, name),
    readSpace: (space, signal) => readTar(path.join(dir, 'spaces', `${safeName(space)}.tar`), signal),
  };
}

/** Walks a tar file by positioned reads: headers are parsed, bodies are read in 1 MiB chunks on demand. */
async function* readTar(file: string, signal: AbortSignal): AsyncGenerator<ReadMember> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    throw new EbrError('archive', `cannot open ${file}: ${(err as Error).message}`, { context: { path: file }, cause: err });
  }
  try {
    let pos = 0;
    let want = block;
    for (;;) {
      throwIfAborted(signal, { path: file });
      const head = Buffer.alloc(want);
      const { bytesRead } = await fh.read(head, 0, want, pos);
      if (bytesRead < block) throw new EbrError('archive', `${file} ends in the middle of a member header at byte ${pos}`, { context: { path: file } });
      let decoded;
      try {
        decoded = decodeHeader(head.subarray(0, bytesRead));
      } catch (err) {
        throw new EbrError('archive', `${file}: damaged tar header at byte ${pos}: ${(err as Error).message}`, { context: { path: file }, cause: err });
      }
      if (decoded === null) return;
      if ('needPax' in decoded) {
        want = decoded.needPax;
        continue;
      }
      want = block;
      const { header, headerBytes } = decoded;
      const start = pos + headerBytes;
      const size = header.type === 'file' ? header.size : 0;
      yield { header, body: readRange(fh, start, size, file) };
      pos = start + size + padding(size);
    }
  } finally {
    await fh.close();
  }
}

async function* readRange(fh: import('node:fs/promises').FileHandle, start: number, size: number, file: string): AsyncGenerator<Buffer> {
  let pos = start;
  const end = start + size;
  while (pos < end) {
    const n = Math.min(readChunkBytes, end - pos);
    const buf = Buffer.allocUnsafe(n);
    const { bytesRead } = await fh.read(buf, 0, n, pos);
    if (bytesRead === 0) throw new EbrError('archive', `${file} is truncated: a member ends at byte ${pos}, ${end - pos} bytes short`, { context: { path: file } });
    pos += bytesRead;
    yield bytesRead === n ? buf : buf.subarray(0, bytesRead);
  }
}

export type { MemberHeader };

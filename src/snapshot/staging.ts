/**
 * Shared by the copy and reflink providers: each chunk file is duplicated into a staging directory
 * inside the window, and the staging directory is removed afterwards (or by the next run after a crash).
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { EbrError, throwIfAborted } from '../errors.js';
import type { Chunk } from '../model.js';
import type { Snapshot, SnapshotRequest, SnapshotResource } from './snapshot-provider.js';

/**
 * Duplicates one chunk file. With `range` (a chunk that is a byte range of its file or device) only those
 * bytes need to be frozen, but the duplicate must hold them at the same offset: every provider's pathOf
 * names a file in which the chunk lies at Chunk.offset, so the stream reads it the same way from each.
 */
export type DuplicateFile = (from: string, to: string, signal: AbortSignal, range?: { offset: number; size: number }) => Promise<void>;

/** Copies every file chunk under its staging dir; directories and symlinks are read live (they carry no data). */
export async function takeStaged(
  provider: string,
  request: SnapshotRequest,
  stagingDirOf: (chunk: Chunk) => string,
  duplicate: DuplicateFile,
  signal: AbortSignal,
): Promise<Snapshot> {
  const staged = new Map<string, string>();
  const resources = new Map<string, SnapshotResource>();
  const snapshot: Snapshot = {
    pathOf: (chunk) => staged.get(chunk.name) ?? chunk.path,
    release: async () => {
      for (const r of resources.values()) {
        await rm(r.path, { recursive: true, force: true });
        request.journal.removed(r);
      }
      resources.clear();
    },
  };
  try {
    for (const chunk of request.chunks) {
      if (chunk.type !== 'file') continue;
      throwIfAborted(signal, { phase: 'acquire', path: chunk.path });
      const dir = stagingDirOf(chunk);
      if (!resources.has(dir)) {
        const r: SnapshotResource = { provider, kind: 'staging-dir', path: dir };
        request.journal.created(r);
        resources.set(dir, r);
        await mkdir(dir, { recursive: true, mode: 0o700 });
      }
      const to = path.join(dir, chunk.name);
      await mkdir(path.dirname(to), { recursive: true });
      try {
        await duplicate(chunk.path, to, signal, chunk.offset !== undefined ? { offset: chunk.offset, size: chunk.size } : undefined);
      } catch (err) {
        if (!(request.mayVanish && (err as NodeJS.ErrnoException).code === 'ENOENT' && (err as NodeJS.ErrnoException).path === chunk.path)) throw err;
      }
      // A vanished chunk maps to its missing staged path, never back to the live file.
      staged.set(chunk.name, to);
    }
    return snapshot;
  } catch (err) {
    await snapshot.release().catch(() => undefined);
    if (err instanceof EbrError) throw err;
    throw new EbrError('snapshot', `${provider} snapshot failed: ${(err as Error).message}`, {
      context: { phase: 'acquire', path: (err as NodeJS.ErrnoException).path },
      cause: err,
    });
  }
}

export async function removeStagingDir(resource: SnapshotResource): Promise<void> {
  await rm(resource.path, { recursive: true, force: true });
}

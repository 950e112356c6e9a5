/**
 * `reflink`: copy-on-write clones of each chunk file (btrfs, XFS with reflink=1). A clone shares the
 * file's blocks, so it takes milliseconds whatever the size. Clones must live on the chunk's own
 * filesystem: the staging directory sits beside the chunks, or under `snapshot.staging` on the same volume.
 */
import { constants, realpathSync, statSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { EbrError } from '../errors.js';
import type { Chunk } from '../model.js';
import type { SnapshotProvider } from './snapshot-provider.js';
import { removeStagingDir, takeStaged } from './staging.js';
import { volumeOf } from './volumes.js';

/** The keys of `snapshot:` with `provider: reflink`. */
export const reflinkSettings = z
  .object({
    provider: z.string(),
    /** Where the clones go instead of beside each data directory; must be on the chunks' filesystem. */
    staging: z.string().optional(),
  })
  .strict();

export function reflinkProvider(settings: { staging?: string }): SnapshotProvider {
  const stagingDirOf = (backupId: string) => {
    const placed = new Map<string, string>();
    return (chunk: Chunk) => {
      if (settings.staging) return path.join(settings.staging, backupId);
      // One staging dir per data directory — unless the chunk lies on another filesystem than that
      // directory (a PostgreSQL tablespace reached through pg_tblspc): then beside the file itself,
      // since a clone cannot cross filesystems.
      const dir = path.dirname(chunk.path);
      let top = placed.get(dir);
      if (top === undefined) {
        const candidate = topDirOf(chunk);
        top = deviceOf(candidate) === deviceOf(dir) ? candidate : realpathSync(dir);
        placed.set(dir, top);
      }
      return path.join(top, `.ebr-staging-${backupId}`);
    };
  };
  return {
    kind: 'reflink',
    async check(request) {
      // One probe clone of a real chunk per (staging directory, filesystem of the chunk), so a filesystem
      // without reflink — or clones that would have to cross filesystems — fail here, outside the window.
      const probed = new Set<string>();
      const dirOf = stagingDirOf(request.backupId);
      for (const chunk of request.chunks) {
        if (chunk.type !== 'file') continue;
        const dir = path.dirname(dirOf(chunk));
        const key = `${dir}\0${deviceOf(path.dirname(chunk.path))}`;
        if (probed.has(key)) continue;
        probed.add(key);
        await probeClone(chunk, dir);
      }
    },
    take: (request, signal) =>
      takeStaged('reflink', request, stagingDirOf(request.backupId), (from, to) => copyFile(from, to, constants.COPYFILE_FICLONE_FORCE | constants.COPYFILE_EXCL), signal),
    removeLeftover: removeStagingDir,
  };
}

/**
 * The directory clones of a chunk go under: the chunk's directory with the chunk's own subdirectories
 * stripped (for `base/1/2` at /pg/base/1/2 that is /pg), so one staging dir serves a whole data directory.
 */
function topDirOf(chunk: Chunk): string {
  const depth = chunk.name.split('/').length - 1;
  let dir = path.dirname(chunk.path);
  for (let i = 0; i < depth; i++) dir = path.dirname(dir);
  return dir;
}

async function probeClone(chunk: Chunk, dir: string): Promise<void> {
  let probeDir: string | undefined;
  try {
    await mkdir(dir, { recursive: true });
    probeDir = await mkdtemp(path.join(dir, '.ebr-reflink-probe-'));
    // Clone the chunk itself: that proves both reflink support and that source and clone share a filesystem.
    await copyFile(chunk.path, path.join(probeDir, 'probe'), constants.COPYFILE_FICLONE_FORCE);
  } catch (err) {
    const vol = safeVolume(chunk.path);
    const code = (err as NodeJS.ErrnoException).code;
    const crossing = code === 'EXDEV';
    throw new EbrError(
      'snapshot',
      crossing
        ? `the reflink provider cannot clone ${chunk.path} into ${dir}: a clone cannot cross filesystems`
        : `the reflink provider cannot clone ${chunk.path}: ${vol ? `${vol.fsType} at ${vol.mountPoint}` : 'its filesystem'} does not support reflinks (${code ?? (err as Error).message})`,
      {
        hint: crossing
          ? 'leave snapshot.staging unset (clones then go beside each chunk), or point it at a directory on the same filesystem'
          : 'put the data on btrfs or XFS made with reflink=1, or set snapshot.provider: copy for this instance',
        context: { path: chunk.path, space: chunk.space },
        cause: err,
      },
    );
  } finally {
    if (probeDir) await rm(probeDir, { recursive: true, force: true });
  }
}

function safeVolume(p: string) {
  try {
    return volumeOf(p);
  } catch {
    return undefined;
  }
}

function deviceOf(p: string): number {
  return statSync(p).dev;
}

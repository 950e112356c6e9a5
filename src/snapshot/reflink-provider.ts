/**
 * `reflink`: copy-on-write clones of each chunk file (btrfs, XFS with reflink=1). A clone shares the
 * file's blocks, so it takes milliseconds whatever the size. Clones must live on the chunk's own
 * filesystem: the staging directory sits beside the chunks, or under `snapshot.staging` on the same volume.
 */
import { constants } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { EbrError } from '../errors.js';
import type { Chunk } from '../model.js';
import type { SnapshotProvider } from './snapshot-provider.js';
import { removeStagingDir, takeStaged } from './staging.js';
import { volumeOf } from './volumes.js';

export function reflinkProvider(settings: { staging?: string }): SnapshotProvider {
  const stagingDirOf = (backupId: string) => (chunk: Chunk) =>
    settings.staging ? path.join(settings.staging, backupId) : path.join(topDirOf(chunk), `.ebr-staging-${backupId}`);
  return {
    kind: 'reflink',
    async check(request) {
      // One probe clone per directory the clones will go to, so a filesystem without reflink fails here, outside the window.
      const probed = new Set<string>();
      for (const chunk of request.chunks) {
        if (chunk.type !== 'file') continue;
        const dir = path.dirname(stagingDirOf(request.backupId)(chunk));
        if (probed.has(dir)) continue;
        probed.add(dir);
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
    const a = path.join(probeDir, 'a');
    await writeFile(a, 'ebr');
    await copyFile(a, path.join(probeDir, 'b'), constants.COPYFILE_FICLONE_FORCE);
  } catch (err) {
    const vol = safeVolume(chunk.path);
    throw new EbrError('snapshot', `the reflink provider cannot clone ${chunk.path}: ${vol ? `${vol.fsType} at ${vol.mountPoint}` : 'its filesystem'} does not support reflinks (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {
      hint: 'put the data on btrfs or XFS made with reflink=1, or set snapshot.provider: copy for this instance',
      context: { path: chunk.path, space: chunk.space },
      cause: err,
    });
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

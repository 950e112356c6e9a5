/**
 * Which btrfs subvolume holds a path, found from the filesystem itself: every subvolume has its own
 * device number, and its root directory is inode 256 (BTRFS_FIRST_FREE_OBJECTID), the only directory
 * of a subvolume with that number. Walking up from the path to the first such directory gives the
 * subvolume root; meeting another device first means a bind mount of a subdirectory, whose subvolume
 * root is not reachable here.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { EbrError } from '../errors.js';
import type { Chunk } from '../model.js';
import { realPathOf } from './volumes.js';

export const subvolumeRootInode = 256;

export interface SubvolumePlace {
  /** Root directory of the subvolume, as reachable here. */
  root: string;
  /** The chunk's path relative to that root. */
  relative: string;
}

/** Finds the subvolume of each chunk; `rootsByDir` caches directory → subvolume root across calls. */
export function subvolumeOf(chunk: Chunk, rootsByDir: Map<string, string>): SubvolumePlace {
  const real = realPathOf(chunk.path);
  const start = chunk.type === 'directory' ? real : path.dirname(real);
  const root = subvolumeRootOfDir(start, rootsByDir, chunk);
  return { root, relative: path.relative(root, real) };
}

function subvolumeRootOfDir(dir: string, rootsByDir: Map<string, string>, chunk: Chunk): string {
  const seen: string[] = [];
  let d = dir;
  let dev: number | undefined;
  for (;;) {
    const cached = rootsByDir.get(d);
    if (cached !== undefined) {
      for (const s of seen) rootsByDir.set(s, cached);
      return cached;
    }
    const st = statSync(d);
    if (dev !== undefined && st.dev !== dev) {
      throw new EbrError('snapshot', `chunk ${chunk.name} of space ${chunk.space} (${chunk.path}) is on a btrfs mount of a subdirectory (${seen[seen.length - 1]}), and the root of its subvolume is not reachable from this machine's mounts`, {
        hint: 'mount the subvolume itself (mount -o subvol=…) instead of a bind mount of a directory inside it, so ebr can snapshot it',
        context: { space: chunk.space, path: chunk.path },
      });
    }
    dev = st.dev;
    seen.push(d);
    if (st.ino === subvolumeRootInode) {
      for (const s of seen) rootsByDir.set(s, d);
      return d;
    }
    const parent = path.dirname(d);
    if (parent === d) {
      throw new EbrError('snapshot', `no btrfs subvolume root above ${chunk.path}`, {
        hint: 'the btrfs provider needs the chunk on a btrfs filesystem; check the mount table',
        context: { space: chunk.space, path: chunk.path },
      });
    }
    d = parent;
  }
}

/** Which filesystem holds each chunk, read from the mount table: the volumes a snapshot must freeze together. */
import { readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import type { Chunk, Volume } from '../model.js';

/** Parses /proc/self/mountinfo (fields: id parent major:minor root mountpoint opts … - fstype source superopts). */
export function readMounts(text = readFileSync('/proc/self/mountinfo', 'utf8')): Volume[] {
  const mounts: Volume[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const f = left.split(' ');
    const r = right.split(' ');
    mounts.push({ deviceId: f[2]!, root: unescape(f[3]!), mountPoint: unescape(f[4]!), fsType: r[0]!, device: unescape(r[1]!) });
  }
  return mounts;
}

function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The mount whose mount point is the longest prefix of the path (symlinks in the directory resolved). */
export function volumeOf(p: string, mounts: Volume[] = readMounts()): Volume {
  const real = realParent(p);
  let best: Volume | undefined;
  for (const m of mounts) {
    if (real === m.mountPoint || real.startsWith(m.mountPoint.endsWith('/') ? m.mountPoint : `${m.mountPoint}/`)) {
      // Later lines in mountinfo are mounted over earlier ones at the same point.
      if (!best || m.mountPoint.length >= best.mountPoint.length) best = m;
    }
  }
  if (!best) throw new Error(`no mount holds ${p}`);
  return best;
}

/** The distinct volumes that hold the chunks, each once. */
export function volumesOf(chunks: Chunk[], mounts: Volume[] = readMounts()): Volume[] {
  const seen = new Map<string, Volume>();
  for (const c of chunks) {
    const v = volumeOf(c.path, mounts);
    seen.set(`${v.deviceId}:${v.mountPoint}`, v);
  }
  return [...seen.values()];
}

/** realpath of the file's directory (the file itself may be a symlink chunk, recorded not followed). */
export function realPathOf(p: string): string {
  return realParent(p);
}

function realParent(p: string): string {
  try {
    return path.join(realpathSync(path.dirname(p)), path.basename(p));
  } catch {
    return path.resolve(p);
  }
}

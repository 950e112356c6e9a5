/** File attributes set without following links: through a descriptor, opened O_NOFOLLOW (and O_NONBLOCK, so a planted FIFO cannot hang ebr). */
import { constants } from 'node:fs';
import { lstat, open, type FileHandle } from 'node:fs/promises';
import type { FileAttributes } from '../adapter-api.js';

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = constants;
export const isRoot = () => process.getuid?.() === 0;

export async function setOnHandle(fh: FileHandle, a: FileAttributes): Promise<void> {
  if (isRoot() && a.uid !== undefined && a.gid !== undefined) await fh.chown(a.uid, a.gid);
  // After chown: chown clears set-id bits, so the mode goes last.
  if (a.mode !== undefined) await fh.chmod(a.mode);
}

/** chmod/chown through a descriptor opened without following links. */
export async function setNoFollow(p: string, a: FileAttributes): Promise<void> {
  const fh = await open(p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  try {
    await setOnHandle(fh, a);
  } finally {
    await fh.close();
  }
}

export async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

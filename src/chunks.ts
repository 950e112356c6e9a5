/** Builds chunks from live files: the attributes restore puts back come from lstat, never from guesses. */
import { lstat, readlink } from 'node:fs/promises';
import type { Chunk } from './model.js';

/** A chunk for the file, directory or symlink at `path`, or undefined if it vanished meanwhile. */
export async function chunkOf(space: string, name: string, path: string, details?: Record<string, unknown>): Promise<Chunk | undefined> {
  let st;
  try {
    st = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const type = st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'directory' : st.isFile() ? 'file' : undefined;
  if (!type) throw new Error(`${path} is neither a file, a directory nor a symlink`);
  return {
    space,
    name,
    path,
    type,
    size: type === 'file' ? st.size : 0,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    mtimeMs: st.mtimeMs,
    ...(type === 'symlink' ? { linkTarget: await readlink(path) } : {}),
    ...(details ? { details } : {}),
  };
}

/**
 * Who a log stored by root belongs to. The database archives its own logs (PostgreSQL's
 * archive_command runs as postgres) into a store directory that user owns, and reads them back at
 * recovery (restore_command). A log that ebr stores there while running as root — the segments a
 * backup needs, stored at once instead of waiting for the archiver — must belong to that user like
 * the others, or the next archive_command of the same name (which reads the sidecar to compare) and
 * recovery would fail with EACCES. So, for root, every file of a store takes the store directory's
 * owner; a store that root made itself stays root's.
 */
import { chown, stat } from 'node:fs/promises';

export interface Owner {
  uid: number;
  gid: number;
}

/** The owner new files in the store directory `root` must get; undefined when nothing needs changing (not root, or a root-owned store). */
export async function storeOwner(root: string): Promise<Owner | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const st = await stat(root).catch(() => undefined);
  return st && st.uid !== 0 ? { uid: st.uid, gid: st.gid } : undefined;
}

/** Gives `file` (not yet linked into the store) to `owner`, so it is that user's from the moment it is visible. */
export async function giveTo(owner: Owner | undefined, file: string): Promise<void> {
  if (owner) await chown(file, owner.uid, owner.gid);
}

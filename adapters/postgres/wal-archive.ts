/**
 * PostgreSQL's archive_command and restore_command on top of the log store. push stores a finished
 * WAL segment (or a .history, .backup or .partial file) under its own name; pushing the same bytes again
 * succeeds, different bytes under that name are refused (two clusters writing into one archive). get
 * fetches one by name into the path the server gives, verified; a missing one is an answer, not an error:
 * the server asks for files past the end of the archive to learn that recovery is done.
 */
import { chown, stat } from 'node:fs/promises';
import path from 'node:path';
import { EbrError } from '../../src/errors.js';
import type { LogStore } from '../../src/logs/log-store.js';

/** Segment, timeline history, backup history and partial segment names, as PostgreSQL archives them. */
const walName = /^(?:[0-9A-F]{24}|[0-9A-F]{8}\.history|[0-9A-F]{24}\.[0-9A-F]{8}\.backup|[0-9A-F]{24}\.partial)$/;

export function isWalName(name: string): boolean {
  return walName.test(name);
}

function checkWalName(name: string, context: Record<string, unknown>): void {
  if (!isWalName(name)) {
    throw new EbrError('usage', `${JSON.stringify(name)} is not the name of a WAL file`, {
      hint: "ebr wal push takes the server's %p (a file under pg_wal/) and ebr wal get takes %f and %p; check archive_command and restore_command",
      context,
    });
  }
}

/** archive_command: `ebr wal push %p`, run by the server in its data directory. */
export async function pushWal(store: LogStore, file: string, signal?: AbortSignal, context: Record<string, unknown> = {}): Promise<'stored' | 'identical'> {
  const source = path.resolve(file);
  const name = path.basename(source);
  checkWalName(name, { ...context, path: source });
  try {
    const st = await stat(source);
    if (!st.isFile()) throw new Error('not a regular file');
  } catch (err) {
    throw new EbrError('logArchive', `cannot archive ${source}: ${(err as Error).message}`, {
      hint: 'archive_command must pass %p, the path of the WAL file relative to the data directory',
      context: { ...context, path: source },
      cause: err,
    });
  }
  return store.put(name, source, signal);
}

/**
 * restore_command: `ebr wal get %f %p`. False when the archive has no such file. When ebr runs as root
 * the fetched file is given to the owner of its directory, so the server can read it.
 */
export async function getWal(store: LogStore, name: string, dest: string, signal?: AbortSignal, context: Record<string, unknown> = {}): Promise<boolean> {
  checkWalName(name, { ...context, member: name });
  const target = path.resolve(dest);
  const found = await store.get(name, target, signal);
  if (found && process.getuid?.() === 0) {
    const dir = await stat(path.dirname(target));
    if (dir.uid !== 0) await chown(target, dir.uid, dir.gid);
  }
  return found;
}

/** Small file steps of a PostgreSQL restore: is a postmaster running, owned writes, sparse placeholders, pg_wal set aside. */
import { readFileSync } from 'node:fs';
import { chmod, chown, lchown, lstat, mkdir, open, readFile, readdir, realpath, rename, rm } from 'node:fs/promises';
import path from 'node:path';

export interface Owner {
  uid?: number;
  gid?: number;
  mode?: number;
}

/** The pid in postmaster.pid when that process still lives and is a postgres; a stale file says nothing. */
export async function runningPostmaster(dataDir: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text.split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return undefined;
  }
  try {
    const comm = readFileSync(`/proc/${pid}/comm`, 'utf8');
    if (!/postgres|postmaster/.test(comm)) return undefined; // the pid was reused by something else
  } catch {
    // no /proc: trust the pid
  }
  return pid;
}

/** Owner and mode as the backup recorded them; ownership only when ebr runs as root (only root may give files away). */
export async function applyOwner(p: string, o: Owner, isLink: boolean): Promise<void> {
  if (process.getuid?.() === 0 && o.uid !== undefined && o.gid !== undefined) await (isLink ? lchown : chown)(p, o.uid, o.gid);
  if (!isLink && o.mode !== undefined) await chmod(p, o.mode);
}

/** Writes a small file whole or not at all, owned like the data directory, mode 0600. */
export async function writeOwned(file: string, data: string | Buffer, owner: Owner | undefined): Promise<void> {
  const tmp = `${file}.ebr-restore-${process.pid}`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await applyOwner(tmp, { ...(owner ?? {}), mode: 0o600 }, false);
  await rename(tmp, file);
}

/** A zero-filled file of the chunk's size that takes no blocks (as pgBackRest restores databases left out). */
export async function writeSparse(dest: string, c: { size: number; mode?: number; uid?: number; gid?: number }): Promise<void> {
  await mkdir(path.dirname(dest), { recursive: true, mode: 0o700 });
  const tmp = `${dest}.ebr-sparse-${process.pid}`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.truncate(c.size);
  } finally {
    await fh.close();
  }
  await applyOwner(tmp, { ...(c.uid !== undefined ? { uid: c.uid } : {}), ...(c.gid !== undefined ? { gid: c.gid } : {}), mode: c.mode ?? 0o600 }, false);
  await rename(tmp, dest);
}

/**
 * Moves everything in pg_wal aside (it may hold WAL that was never archived) and returns where, or
 * undefined when there was nothing. The aside directory is on pg_wal's own filesystem and its name is one
 * ebr's discovery leaves out.
 */
export async function setAside(wal: string, tag: string): Promise<string | undefined> {
  const entries = await readdir(wal);
  const status = path.join(wal, 'archive_status');
  const meaningful = [];
  for (const e of entries) {
    if (e === 'archive_status' && (await readdir(status).catch(() => [])).length === 0) continue;
    meaningful.push(e);
  }
  if (meaningful.length === 0) return undefined;
  const real = await realpath(wal);
  const isLink = (await lstat(wal)).isSymbolicLink();
  const aside = isLink ? `${real}.ebr-old-${tag}` : path.join(path.dirname(wal), `pg_wal.ebr-old-${tag}`);
  await mkdir(aside, { recursive: true, mode: 0o700 });
  for (const e of meaningful) await rename(path.join(wal, e), path.join(aside, e));
  await rm(status, { recursive: true, force: true });
  return aside;
}

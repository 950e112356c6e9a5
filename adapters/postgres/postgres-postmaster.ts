/** Is a postmaster running on a data directory (a restore must not write under a live server). */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

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

/**
 * Puts verified files into place. Every old file (and its side files) is first renamed aside, then each
 * new file is renamed in; if any step fails, everything is put back as it was. Only when all are in
 * place are the old files removed. Renames within one directory are atomic, so at no moment is a
 * half-written file under a live name.
 */
import { lstat, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { syncDir } from '../archive/backup-dir.js';

export interface StagedFile {
  /** Verified copy beside its destination. */
  temp: string;
  dest: string;
  /** Files that belong to the old dest and must not survive next to the new one. */
  sideFiles: string[];
}

export async function swapIn(files: StagedFile[], tag: string): Promise<void> {
  const movedAside: Array<{ from: string; to: string }> = [];
  const placed: string[] = [];
  try {
    for (const f of files) {
      for (const p of [f.dest, ...f.sideFiles]) {
        if (await exists(p)) {
          const to = `${p}.ebr-old-${tag}`;
          await rename(p, to);
          movedAside.push({ from: p, to });
        }
      }
    }
    for (const f of files) {
      await rename(f.temp, f.dest);
      placed.push(f.dest);
    }
  } catch (err) {
    for (const p of placed.reverse()) await rm(p, { force: true }).catch(() => undefined);
    for (const m of movedAside.reverse()) await rename(m.to, m.from).catch(() => undefined);
    throw err;
  }
  for (const d of new Set(files.map((f) => path.dirname(f.dest)))) await syncDir(d).catch(() => undefined);
  for (const m of movedAside) await rm(m.to, { recursive: true, force: true });
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

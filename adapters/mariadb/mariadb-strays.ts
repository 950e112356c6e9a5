/**
 * A full restore into the server's own directories leaves behind whatever was created after the
 * backup: schema directories, tables (.frm/.ibd) in restored schemas, newer binlogs. The server would
 * meet them as orphans (a .ibd InnoDB does not know, a binlog the restored index does not list), so
 * they are moved into `<datadir>.ebr-displaced-<backup>` beside the data directory, never deleted.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { RestoreFiles } from '../../src/adapter-api.js';
import { EbrError } from '../../src/errors.js';
import type { ServerLayout } from './mariadb-layout.js';

/** Where a restore in place moves what the backup does not hold; the restore declares it as one of its roots. */
export function displacedDir(l: ServerLayout, backupId: string): string {
  return `${l.datadir.replace(/\/+$/, '')}.ebr-displaced-${backupId}`;
}

/** Moves go through the restore's journal: undone if the restore fails, kept for the user if it succeeds. */
export async function displaceStrays(files: RestoreFiles, l: ServerLayout, restored: Set<string>, backupId: string, instance: string): Promise<{ dir: string; moved: string[] }> {
  const dir = displacedDir(l, backupId);
  const moved: string[] = [];
  const move = async (p: string) => {
    const rel = path.relative(l.datadir, p).startsWith('..') ? path.join('#outside', path.basename(p)) : path.relative(l.datadir, p);
    const to = path.join(dir, rel);
    try {
      await files.setAside(p, { keep: true, as: to });
    } catch (err) {
      throw new EbrError('restore', `cannot move ${p}, which the backup does not hold, aside to ${to}: ${(err as Error).message}`, {
        hint: `move it out of the data directory by hand (it was created after the backup), then run the restore again`,
        context: { instance, path: p, phase: 'restore' },
        cause: err,
      });
    }
    moved.push(p);
  };
  const binlogFile = (p: string) => l.binlogBasename !== undefined && p.startsWith(`${l.binlogBasename}.`) && /\.\d+$/.test(p);
  for (const e of await entries(l.datadir)) {
    const p = path.join(l.datadir, e.name);
    if (restored.has(p) || e.name.startsWith('.') || e.name === 'lost+found' || e.name === '#innodb_temp') continue;
    if (e.isDirectory()) await move(p);
    // An Aria log newer than the restored control file would be read as if it followed it.
    else if (binlogFile(p) || e.name.startsWith('#sql') || /^aria_log\.\d+$/.test(e.name)) await move(p);
  }
  // Inside each restored schema directory, anything the backup does not hold is a table made later.
  for (const d of restored) {
    if (path.dirname(d) !== l.datadir) continue;
    for (const e of await entries(d)) {
      const p = path.join(d, e.name);
      if (!restored.has(p)) await move(p);
    }
  }
  if (l.binlogBasename && path.dirname(l.binlogBasename) !== l.datadir) {
    const bdir = path.dirname(l.binlogBasename);
    for (const e of await entries(bdir)) {
      const p = path.join(bdir, e.name);
      if (binlogFile(p) && !restored.has(p)) await move(p);
    }
  }
  return { dir, moved };
}

async function entries(dir: string) {
  return readdir(dir, { withFileTypes: true }).catch(() => []);
}

/**
 * The SQLite drill: every restored database opened (which replays its restored -wal, as the first
 * program after a real restore would) and checked with `PRAGMA integrity_check`, which reads every
 * page, b-tree and index; `PRAGMA foreign_key_check` too, because it finds rows the integrity check
 * accepts but an application would not.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import type { DrillCheck, DrillReport, RestoredCopy } from '../../src/adapter-api.js';

export async function drillSqlite(copy: RestoredCopy): Promise<DrillReport> {
  const checks: DrillCheck[] = [];
  let databases = 0;
  for (const s of copy.plan.spaces.filter((sp) => copy.plan.requested.includes(sp.name))) {
    const file = s.chunks.find((c) => c.type === 'file' && (c.details?.role === 'database' || !/-(wal|shm|journal)$/.test(c.name)));
    if (!file) continue;
    const dest = path.join(copy.dir, path.basename(file.path));
    let db: Database.Database | undefined;
    try {
      db = new Database(dest, { fileMustExist: true });
      databases++;
      const integrity = (db.pragma('integrity_check') as Array<{ integrity_check: string }>).map((r) => r.integrity_check);
      checks.push({ name: `PRAGMA integrity_check on ${s.name}`, ok: integrity.length === 1 && integrity[0] === 'ok', detail: integrity.slice(0, 10).join('\n') });
      const fk = db.pragma('foreign_key_check') as Array<{ table: string; rowid: number; parent: string }>;
      checks.push({ name: `PRAGMA foreign_key_check on ${s.name}`, ok: fk.length === 0, detail: fk.length === 0 ? 'ok' : fk.slice(0, 5).map((r) => `${r.table} row ${r.rowid} has no parent in ${r.parent}`).join('\n') });
    } catch (err) {
      checks.push({ name: `open ${s.name}`, ok: false, detail: `${dest}: ${(err as Error).message}` });
    } finally {
      db?.close();
    }
  }
  // No recoverMs: SQLite has no recovery apart from the -wal it replays when first read, inside the checks.
  return { checks, notes: [`${databases} database(s) of the copy opened and checked`] };
}

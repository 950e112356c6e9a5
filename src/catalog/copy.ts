/**
 * `ebr catalog copy --to`: every row of one catalog into another, empty one (SQLite → PostgreSQL when
 * a shop goes from one host to many, and back), in one transaction on the destination; then both are
 * compared: the same rows in every table, and the same backups, members and digests.
 */
import { createHash } from 'node:crypto';
import { EbrError } from '../errors.js';
import type { Catalog } from './catalog.js';

/** In the order their references need. */
export const catalogTables = ['instances', 'backups', 'phases', 'discovery', 'members', 'streams', 'resources', 'restores', 'restore_steps', 'drills', 'pins', 'locks'] as const;

/** What the check compares: the backups and what vouches for them, in one order on both databases. */
const checks: Record<string, string> = {
  backups: 'SELECT id, instance, status, started_at, finished_at, location, bytes, members, manifest_sha256, meta_sha256, stored_bytes, removed_at, type, parent_id FROM backups ORDER BY id',
  members: 'SELECT backup_id, space, name, size, sha256, stream, offset FROM members ORDER BY backup_id, name',
  streams: 'SELECT backup_id, space, stream, stored_bytes, stored_sha256 FROM streams ORDER BY backup_id, space',
};

export interface CopyReport {
  from: string;
  to: string;
  rows: Record<string, number>;
  /** sha256 over the backups, members and stream digests, equal on both sides. */
  digest: string;
}

function count(cat: Catalog, table: string): number {
  return (cat.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
}

/** A sha256 over what `checks` selects, each value in a canonical text form. */
export function catalogDigest(cat: Catalog): string {
  const h = createHash('sha256');
  for (const [name, sql] of Object.entries(checks)) {
    h.update(`${name}\n`);
    for (const row of cat.db.prepare(sql).all() as Array<Record<string, unknown>>) {
      h.update(`${Object.values(row).map((v) => (v === null || v === undefined ? '\\N' : String(v))).join('\t')}\n`);
    }
  }
  return h.digest('hex');
}

export function copyCatalog(from: Catalog, to: Catalog): CopyReport {
  const present = catalogTables.filter((t) => count(to, t) > 0);
  if (present.some((t) => t !== 'instances')) {
    throw new EbrError('usage', `the catalog ${to.name} is not empty (it holds ${present.map((t) => `${count(to, t)} ${t}`).join(', ')})`, {
      hint: 'copy into a new, empty catalog: a new SQLite file, or a new PostgreSQL database',
    });
  }
  const rows: Record<string, number> = {};
  to.tx(() => {
    to.db.prepare('DELETE FROM instances').run();
    for (const table of catalogTables) {
      const all = from.db.prepare(`SELECT * FROM ${table}`).all() as Array<Record<string, unknown>>;
      rows[table] = all.length;
      if (all.length === 0) continue;
      const cols = Object.keys(all[0]!);
      const per = Math.max(1, Math.floor(900 / cols.length));
      for (let i = 0; i < all.length; i += per) {
        const batch = all.slice(i, i + per);
        const sql = `INSERT INTO ${table} (${cols.join(', ')}) VALUES ${batch.map(() => `(${cols.map(() => '?').join(', ')})`).join(', ')}`;
        to.db.prepare(sql).run(...batch.flatMap((r) => cols.map((c) => r[c] ?? null)));
      }
    }
    if (to.db.kind === 'postgres') {
      // Rows came with their ids: the identity columns go on after the highest.
      for (const t of ['resources', 'restores', 'drills']) {
        to.db.prepare(`SELECT setval(pg_get_serial_sequence('${t}', 'id'), COALESCE((SELECT MAX(id) FROM ${t}), 0) + 1, false)`).get();
      }
    }
  });
  for (const table of catalogTables) {
    const a = count(from, table);
    const b = count(to, table);
    if (a !== b) throw new EbrError('internal', `the copy of table ${table} holds ${b} rows, the source ${a}`, { hint: 'the destination catalog is not to be used; report this defect' });
  }
  const digest = catalogDigest(from);
  const other = catalogDigest(to);
  if (digest !== other) {
    throw new EbrError('internal', `the copy in ${to.name} does not hold the same backups, members and digests as ${from.name}`, { hint: 'the destination catalog is not to be used; report this defect' });
  }
  return { from: from.name, to: to.name, rows, digest };
}

/** Pins (schema 6): backups retention keeps whatever its rules say, with the logs they need. */
import { now, type Catalog } from './catalog.js';

export interface PinRow {
  backup_id: string;
  pinned_at: string;
  note: string | null;
}

export function pinBackup(cat: Catalog, backupId: string, note?: string): void {
  cat.durableTx(() =>
    cat.db.prepare('INSERT INTO pins (backup_id, pinned_at, note) VALUES (?, ?, ?) ON CONFLICT(backup_id) DO UPDATE SET note = COALESCE(excluded.note, pins.note)').run(backupId, now(), note ?? null),
  );
}

/** True when the backup was pinned. */
export function unpinBackup(cat: Catalog, backupId: string): boolean {
  return cat.durableTx(() => cat.db.prepare('DELETE FROM pins WHERE backup_id = ?').run(backupId).changes > 0);
}

export function pinsOf(cat: Catalog, instance?: string): PinRow[] {
  return (
    instance
      ? cat.db.prepare('SELECT p.* FROM pins p JOIN backups b ON b.id = p.backup_id WHERE b.instance = ? ORDER BY p.backup_id').all(instance)
      : cat.db.prepare('SELECT * FROM pins ORDER BY backup_id').all()
  ) as PinRow[];
}

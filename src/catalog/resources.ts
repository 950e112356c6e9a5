/** Snapshot resources journaled before they are created, so a crashed run's leftovers are found and only those. */
import type { SnapshotResource } from '../snapshot/snapshot-provider.js';
import { thisRunner } from '../util/runner.js';
import { now, type Catalog } from './catalog.js';

export interface ResourceRow extends SnapshotResource {
  id: number;
  backupId: string;
}

export function journalResource(cat: Catalog, backupId: string, r: SnapshotResource): void {
  cat.db
    .prepare('INSERT INTO resources (backup_id, provider, kind, path, details, created_at) VALUES (?, ?, ?, ?, ?, ?)')
    .run(backupId, r.provider, r.kind, r.path, r.details ? JSON.stringify(r.details) : null, now());
}

export function journalResourceRemoved(cat: Catalog, backupId: string, r: SnapshotResource): void {
  cat.db.prepare('UPDATE resources SET removed_at = ? WHERE backup_id = ? AND provider = ? AND path = ? AND removed_at IS NULL').run(now(), backupId, r.provider, r.path);
}

/**
 * Resources still present whose backup is no longer running (it failed, died or forgot to clean up),
 * of backups run on this host: a snapshot or a staging copy is where its files are, and a dead host's
 * leftovers are removed by the next command on that host.
 */
export function leftoverResources(cat: Catalog): ResourceRow[] {
  const rows = cat.db
    .prepare(
      `SELECT r.id, r.backup_id, r.provider, r.kind, r.path, r.details FROM resources r
       JOIN backups b ON b.id = r.backup_id
       WHERE r.removed_at IS NULL AND b.status != 'running' AND b.runner_host = ? ORDER BY r.id DESC`,
    )
    .all(thisRunner().host) as Array<{ id: number; backup_id: string; provider: string; kind: string; path: string; details: string | null }>;
  return rows.map((r) => ({
    id: r.id,
    backupId: r.backup_id,
    provider: r.provider,
    kind: r.kind,
    path: r.path,
    ...(r.details ? { details: JSON.parse(r.details) as Record<string, unknown> } : {}),
  }));
}

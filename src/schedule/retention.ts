/**
 * Retention: keep the newest `retention.full` complete backups of an instance and remove the archives
 * of older ones. Only after a new backup completed, so the number kept never drops below the setting.
 */
import { keptBackups, markRemoved } from '../catalog/backups.js';
import type { Catalog } from '../catalog/catalog.js';
import type { InstanceConfig } from '../config/load.js';
import { targetOf } from '../workflow/context.js';

export interface RetentionResult {
  kept: string[];
  removed: string[];
}

export async function applyRetention(cat: Catalog, instance: InstanceConfig): Promise<RetentionResult> {
  const keep = instance.retention?.full;
  const backups = keptBackups(cat, instance.name);
  if (!keep || backups.length <= keep) return { kept: backups.map((b) => b.id), removed: [] };
  const target = targetOf(instance);
  const removed: string[] = [];
  for (const b of backups.slice(keep)) {
    await target.remove({ instance: instance.name, backupId: b.id });
    markRemoved(cat, b.id);
    removed.push(b.id);
  }
  return { kept: backups.slice(0, keep).map((b) => b.id), removed };
}

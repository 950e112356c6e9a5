/**
 * Retention: keep the newest `retention.full` complete backups of an instance and remove the archives
 * of older ones. Only after a new backup completed, so the number kept never drops below the setting.
 * It holds the instance's lock meanwhile, so it never removes the archive a restore is reading; when a
 * restore or backup holds the lock, retention waits for the next run.
 */
import { keptBackups, markRemoved } from '../catalog/backups.js';
import type { Catalog } from '../catalog/catalog.js';
import { releaseLock, takeLockInTx } from '../catalog/locks.js';
import type { InstanceConfig } from '../config/load.js';
import { EbrError } from '../errors.js';
import { thisRunner } from '../util/runner.js';
import { targetOf } from '../workflow/context.js';

export interface RetentionResult {
  kept: string[];
  removed: string[];
  /** Set when retention did not run this time, and why (the instance was busy). */
  skipped?: string;
}

export async function applyRetention(cat: Catalog, instance: InstanceConfig): Promise<RetentionResult> {
  const keep = instance.retention?.full;
  const backups = keptBackups(cat, instance.name);
  if (!keep || backups.length <= keep) return { kept: backups.map((b) => b.id), removed: [] };
  const holder = { kind: 'retention' } as const;
  try {
    cat.tx(() => takeLockInTx(cat, instance.name, holder, thisRunner(), () => undefined));
  } catch (err) {
    if (err instanceof EbrError && err.code === 'locked') return { kept: backups.map((b) => b.id), removed: [], skipped: err.message };
    throw err;
  }
  try {
    const target = targetOf(instance);
    const removed: string[] = [];
    for (const b of keptBackups(cat, instance.name).slice(keep)) {
      // Marked first: a crash in between leaves an archive nobody points at, never a row pointing at half an archive.
      markRemoved(cat, b.id);
      await target.remove({ instance: instance.name, backupId: b.id });
      removed.push(b.id);
    }
    return { kept: backups.slice(0, keep).map((b) => b.id), removed };
  } finally {
    releaseLock(cat, instance.name, holder);
  }
}

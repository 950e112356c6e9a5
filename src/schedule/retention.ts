/**
 * Retention: keep the newest `retention.full` complete backups of an instance and remove the archives
 * of older ones. Only after a new backup completed, so the number kept never drops below the setting.
 * It holds the instance's lock meanwhile, so it never removes the archive a restore is reading; when a
 * restore or backup holds the lock, retention waits for the next run.
 */
import { keptBackups, markRemoved, unmarkRemoved } from '../catalog/backups.js';
import type { Catalog } from '../catalog/catalog.js';
import { releaseLock, takeLockInTx } from '../catalog/locks.js';
import type { InstanceConfig } from '../config/load.js';
import { EbrError } from '../errors.js';
import { thisRunner } from '../util/runner.js';
import { targetOf } from '../workflow/context.js';
import { runVerify } from '../workflow/verify.js';

export interface RetentionResult {
  kept: string[];
  removed: string[];
  /**
   * Backups whose archive the target would not (wholly) remove — S3 Object Lock, an immutable file,
   * permissions — with what it said. One whose archive is still whole stays kept and is tried again
   * the next time; one that lost part of its archive stays marked removed (it no longer restores).
   */
  refused?: Array<{ backupId: string; archiveWhole: boolean; error: string }>;
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
    const refused: NonNullable<RetentionResult['refused']> = [];
    for (const b of keptBackups(cat, instance.name).slice(keep)) {
      const ref = { instance: instance.name, backupId: b.id };
      // Marked first: a crash in between leaves an archive nobody points at, never a row pointing at half an archive.
      markRemoved(cat, b.id);
      try {
        await target.remove(ref);
        removed.push(b.id);
      } catch (err) {
        // Refused: an archive that still verifies whole is a backup that restores, so it goes back to being kept.
        // (Read in full: a refusal half-way can leave the manifest and lose a stream.)
        const whole = await runVerify({ catalog: cat, instance, backupId: b.id, signal: new AbortController().signal }).then((v) => v.damaged.length === 0, () => false);
        if (whole) unmarkRemoved(cat, b.id);
        refused.push({ backupId: b.id, archiveWhole: whole, error: err instanceof Error ? err.message : String(err) });
      }
    }
    const kept = keptBackups(cat, instance.name).map((b) => b.id);
    return { kept, removed, ...(refused.length ? { refused } : {}) };
  } finally {
    releaseLock(cat, instance.name, holder);
  }
}

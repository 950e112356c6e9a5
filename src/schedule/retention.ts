/**
 * Retention: the rules of `retention:` (retention-policy.ts) decide which complete backups stay; the
 * archives of the others are removed, then every archived log no retained backup needs (log-purge.ts).
 * Run after every complete backup (by `ebr backup` and by the daemon), so the number kept never drops
 * below the setting, and by `ebr retention`. It holds the instance's lock meanwhile, so it never
 * removes the archive or the logs a restore is reading; when a restore or backup holds the lock,
 * retention waits for the next run. With dryRun it changes nothing and says what it would do and why.
 */
import { keptBackups, markRemoved, unmarkRemoved } from '../catalog/backups.js';
import type { Catalog } from '../catalog/catalog.js';
import { releaseLock, takeLockInTx } from '../catalog/locks.js';
import { pinsOf } from '../catalog/pins.js';
import type { InstanceConfig } from '../config/load.js';
import { EbrError } from '../errors.js';
import { thisRunner } from '../util/runner.js';
import { adapterOf, targetOf } from '../workflow/context.js';
import { purgeLogs, type LogPurgeResult } from '../workflow/log-purge.js';
import { runVerify } from '../workflow/verify.js';
import { selectRetained, type Decision } from './retention-policy.js';

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
  /** Nothing was changed: what would be kept and removed. */
  dryRun?: boolean;
  /** Every complete backup, newest first, with the rules that keep it or why none does. */
  decisions?: Decision[];
  /** The log archive's purge after the backups' removal (or what it would remove). */
  logs?: LogPurgeResult;
  /** Why the log archive was not purged (the adapter cannot tell what is needed, the store cannot remove). */
  logsSkipped?: string;
  /** The purge failed; the backups' retention above stands. */
  logsError?: string;
}

export async function applyRetention(cat: Catalog, instance: InstanceConfig, o: { dryRun?: boolean; now?: Date; signal?: AbortSignal } = {}): Promise<RetentionResult> {
  const rules = instance.retention;
  const backups = keptBackups(cat, instance.name);
  if (!rules) return { kept: backups.map((b) => b.id), removed: [], ...(o.dryRun ? { dryRun: true } : {}) };
  const now = o.now ?? new Date();
  const signal = o.signal ?? new AbortController().signal;
  const pinned = new Set(pinsOf(cat, instance.name).map((p) => p.backup_id));
  const decisions = selectRetained(backups.map((b) => ({ id: b.id, startedAt: b.started_at, ...(b.parent_id ? { parent: b.parent_id } : {}), ...(b.type ? { type: b.type } : {}) })), rules, pinned, now);
  const goes = new Set(decisions.filter((d) => !d.keep).map((d) => d.id));

  if (o.dryRun) {
    const retained = backups.filter((b) => !goes.has(b.id));
    const logs = await purgeOf(() => purgeLogs({ catalog: cat, instance, dryRun: true, now, retained, signal }));
    return { kept: retained.map((b) => b.id), removed: [...goes], dryRun: true, decisions, ...logs };
  }

  const holder = { kind: 'retention' } as const;
  try {
    cat.tx(() => takeLockInTx(cat, instance.name, holder, thisRunner(), () => undefined));
  } catch (err) {
    if (err instanceof EbrError && err.code === 'locked') return { kept: backups.map((b) => b.id), removed: [], skipped: err.message, decisions };
    throw err;
  }
  try {
    const target = targetOf(instance);
    const removed: string[] = [];
    const refused: NonNullable<RetentionResult['refused']> = [];
    for (const b of keptBackups(cat, instance.name).filter((x) => goes.has(x.id))) {
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
    // The logs against the backups that are really left (a refused whole one among them), under the same lock.
    const logs = await purgeOf(() => purgeLogs({ catalog: cat, instance, now, signal }));
    const kept = keptBackups(cat, instance.name).map((b) => b.id);
    return { kept, removed, ...(refused.length ? { refused } : {}), decisions, ...logs };
  } finally {
    releaseLock(cat, instance.name, holder);
  }

  async function purgeOf(run: () => Promise<LogPurgeResult>): Promise<Pick<RetentionResult, 'logs' | 'logsSkipped' | 'logsError'>> {
    const adapter = adapterOf(instance);
    if (!adapter.capabilities.logArchive) return {};
    try {
      return { logs: await run() };
    } catch (err) {
      // Refusals (no lifecycle, a store that cannot remove, no backup yet) are a state, not a failure.
      if (err instanceof EbrError && err.code === 'usage') return { logsSkipped: err.message };
      if (err instanceof EbrError && err.code === 'cancelled') throw err;
      return { logsError: err instanceof Error ? err.message : String(err) };
    }
  }
}

/**
 * `ebr log purge`: the purge alone, against the backups retention keeps now, under the instance's lock
 * (refused, not waited for, while a backup or restore holds it).
 */
export async function purgeLogArchive(cat: Catalog, instance: InstanceConfig, o: { dryRun?: boolean; now?: Date; signal: AbortSignal }): Promise<LogPurgeResult> {
  if (o.dryRun) return purgeLogs({ catalog: cat, instance, dryRun: true, ...(o.now ? { now: o.now } : {}), signal: o.signal });
  const holder = { kind: 'retention' } as const;
  cat.tx(() => takeLockInTx(cat, instance.name, holder, thisRunner(), () => undefined));
  try {
    return await purgeLogs({ catalog: cat, instance, ...(o.now ? { now: o.now } : {}), signal: o.signal });
  } finally {
    releaseLock(cat, instance.name, holder);
  }
}

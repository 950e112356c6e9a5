/**
 * `ebr daemon`: runs each instance's backup on its cron schedule, applies retention after each
 * complete backup, and never starts a backup of an instance while the previous one still runs (in this
 * process: the cron task's noOverlap; across processes: the catalog lock). Stops on the signal.
 */
import cron from 'node-cron';
import type { Catalog } from '../catalog/catalog.js';
import type { Config } from '../config/load.js';
import { EbrError, asEbrError } from '../errors.js';
import { runBackup } from '../workflow/backup.js';
import { adapterOf, instanceContext } from '../workflow/context.js';
import { recoverAfterCrash } from '../workflow/recover.js';
import { applyRetention } from './retention.js';

export interface DaemonEvent {
  at: string;
  instance: string;
  event: 'scheduled' | 'recovered' | 'backup-complete' | 'backup-failed' | 'retention' | 'logs-synced' | 'logs-failed' | 'stopped';
  [key: string]: unknown;
}

export async function runDaemon(o: { config: Config; catalog: Catalog; signal: AbortSignal; log: (e: DaemonEvent) => void }): Promise<void> {
  const scheduled = Object.values(o.config.instances).filter((i) => i.schedule);
  const logScheduled = Object.values(o.config.instances).filter((i) => i.logSchedule);
  if (scheduled.length === 0 && logScheduled.length === 0) {
    throw new EbrError('config', `no instance in ${o.config.file} has a schedule`, { hint: 'add schedule: "0 2 * * *" (cron: minute hour day month weekday) to an instance' });
  }
  const emit = (instance: string, event: DaemonEvent['event'], extra: Record<string, unknown> = {}) => o.log({ at: new Date().toISOString(), instance, event, ...extra });
  const tasks = scheduled.map((instance) => {
    const task = cron.schedule(
      instance.schedule!,
      async () => {
        // Every failure ends in an event and the daemon goes on: the next run is the retry (a full
        // target, a vanished mount, a server down). Nothing of a failed run is left open or running.
        try {
          const recovered = await recoverAfterCrash(o.catalog);
          if (recovered.failedBackups.length || recovered.removedResources.length || recovered.problems.length) {
            emit(instance.name, 'recovered', { failedBackups: recovered.failedBackups, removed: recovered.removedResources, problems: recovered.problems });
          }
          const r = await runBackup({ config: o.config, instance, catalog: o.catalog, signal: o.signal });
          emit(instance.name, 'backup-complete', { backupId: r.backupId, bytes: r.bytes, blockWindowMs: Math.round(r.blockWindowMs * 10) / 10, ...(r.warnings ? { warnings: r.warnings } : {}) });
          const kept = await applyRetention(o.catalog, instance);
          if (kept.removed.length || kept.skipped || kept.refused) emit(instance.name, 'retention', kept as unknown as Record<string, unknown>);
        } catch (err) {
          const e = asEbrError(err, 'internal', { instance: instance.name });
          emit(instance.name, 'backup-failed', { error: e.message, hint: e.hint, backupId: e.context.backupId, phase: e.context.phase });
        }
      },
      { name: `ebr:${instance.name}`, noOverlap: true },
    );
    emit(instance.name, 'scheduled', { schedule: instance.schedule, next: task.getNextRun()?.toISOString() });
    return task;
  });
  for (const instance of logScheduled) {
    const task = cron.schedule(
      instance.logSchedule!,
      async () => {
        try {
          const r = await adapterOf(instance).logs!.sync!(instanceContext(o.config, instance), o.signal);
          emit(instance.name, 'logs-synced', { stored: r.stored, gaps: r.gaps });
        } catch (err) {
          const e = asEbrError(err, 'logArchive', { instance: instance.name });
          emit(instance.name, 'logs-failed', { error: e.message, hint: e.hint });
        }
      },
      { name: `ebr-logs:${instance.name}`, noOverlap: true },
    );
    emit(instance.name, 'scheduled', { logSchedule: instance.logSchedule, next: task.getNextRun()?.toISOString() });
    tasks.push(task);
  }
  await new Promise<void>((resolve) => {
    if (o.signal.aborted) resolve();
    o.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  for (const t of tasks) await t.stop();
  // A backup under way sees the same signal, releases the database and fails; wait for it to finish.
  while (tasks.some((t) => t.isBusy())) await new Promise((r) => setTimeout(r, 50));
  for (const name of new Set([...scheduled, ...logScheduled].map((i) => i.name))) emit(name, 'stopped');
}

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
import { runGroupBackup } from '../workflow/group.js';
import { adapterOf, instanceContext } from '../workflow/context.js';
import { recoverAfterCrash } from '../workflow/recover.js';
import { runDrill } from '../workflow/drill.js';
import { serveStatus } from '../status/http-server.js';
import { metricsText, writeTextfile } from '../status/metrics.js';
import { collectStatus } from '../status/status.js';
import { applyRetention } from './retention.js';

export interface DaemonEvent {
  at: string;
  instance: string;
  event: 'scheduled' | 'recovered' | 'backup-complete' | 'backup-failed' | 'retention' | 'logs-synced' | 'logs-failed' | 'drill-passed' | 'drill-failed' | 'listening' | 'status-failed' | 'stopped';
  [key: string]: unknown;
}

export async function runDaemon(o: { config: Config; catalog: Catalog; signal: AbortSignal; log: (e: DaemonEvent) => void; listen?: string }): Promise<void> {
  const scheduled = Object.values(o.config.instances).filter((i) => i.schedule || i.incrSchedule || i.diffSchedule);
  // Full, incremental and differential schedules of one instance: one backup at a time, the later one waits.
  const backupRuns = scheduled.flatMap((instance) =>
    (
      [
        ['full', instance.schedule, 'schedule'],
        ['incr', instance.incrSchedule, 'incrSchedule'],
        ['diff', instance.diffSchedule, 'diffSchedule'],
      ] as const
    ).flatMap(([type, expr, key]) => (expr ? [{ instance, type, expr, key }] : [])),
  );
  // A group's backup waits for each member's own backup, and theirs for it.
  const queues = new Map<string, Promise<unknown>>();
  const oneAtATime = (names: string[], run: () => Promise<void>) => {
    const next = Promise.all(names.map((n) => queues.get(n))).then(run);
    for (const n of names) queues.set(n, next.catch(() => undefined));
    return next;
  };
  const logScheduled = Object.values(o.config.instances).filter((i) => i.logSchedule);
  const drillScheduled = Object.values(o.config.instances).filter((i) => i.drillSchedule);
  const groupScheduled = Object.values(o.config.groups).filter((g) => g.schedule);
  if (scheduled.length === 0 && logScheduled.length === 0 && drillScheduled.length === 0 && groupScheduled.length === 0 && !o.listen) {
    throw new EbrError('config', `no instance in ${o.config.file} has a schedule`, { hint: 'add schedule: "0 2 * * *" (cron: minute hour day month weekday) to an instance' });
  }
  const textfile = o.config.status?.textfile;
  // The textfile follows every outcome, so node_exporter sees a failure or a drill as soon as the daemon does.
  const refreshTextfile = async () => {
    if (!textfile) return;
    try {
      await writeTextfile(textfile, await metricsText(await collectStatus(o.config, o.catalog, { recent: 1 })));
    } catch (err) {
      o.log({ at: new Date().toISOString(), instance: '-', event: 'status-failed', error: (err as Error).message, path: textfile });
    }
  };
  const outcomes = new Set<DaemonEvent['event']>(['backup-complete', 'backup-failed', 'retention', 'drill-passed', 'drill-failed', 'logs-synced', 'logs-failed']);
  const emit = (instance: string, event: DaemonEvent['event'], extra: Record<string, unknown> = {}) => {
    o.log({ at: new Date().toISOString(), instance, event, ...extra });
    if (outcomes.has(event)) void refreshTextfile();
  };
  const http = o.listen ? await serveStatus({ config: o.config, catalog: o.catalog, listen: o.listen }) : undefined;
  if (http) emit('-', 'listening', { url: http.url, metrics: `${http.url}metrics` });
  await refreshTextfile();
  const tasks = backupRuns.map(({ instance, type, expr, key }) => {
    const task = cron.schedule(
      expr,
      () => oneAtATime([instance.name], async () => {
        // Every failure ends in an event and the daemon goes on: the next run is the retry (a full
        // target, a vanished mount, a server down). Nothing of a failed run is left open or running.
        try {
          const recovered = await recoverAfterCrash(o.catalog);
          if (recovered.failedBackups.length || recovered.removedResources.length || recovered.problems.length) {
            emit(instance.name, 'recovered', { failedBackups: recovered.failedBackups, removed: recovered.removedResources, problems: recovered.problems });
          }
          const r = await runBackup({ config: o.config, instance, catalog: o.catalog, signal: o.signal, type });
          emit(instance.name, 'backup-complete', { backupId: r.backupId, type: r.type, ...(r.parent ? { parent: r.parent } : {}), bytes: r.bytes, blockWindowMs: Math.round(r.blockWindowMs * 10) / 10, ...(r.warnings ? { warnings: r.warnings } : {}) });
          const kept = await applyRetention(o.catalog, instance);
          if (kept.removed.length || kept.skipped || kept.refused || kept.logs?.removed.length || kept.logsError) emit(instance.name, 'retention', kept as unknown as Record<string, unknown>);
        } catch (err) {
          const e = asEbrError(err, 'internal', { instance: instance.name });
          emit(instance.name, 'backup-failed', { error: e.message, hint: e.hint, backupId: e.context.backupId, phase: e.context.phase, type });
        }
      }),
      { name: `ebr:${instance.name}:${type}`, noOverlap: true },
    );
    emit(instance.name, 'scheduled', { [key]: expr, next: task.getNextRun()?.toISOString() });
    return task;
  });
  // A group's backup is its members' backups, inside one window; an event per member, named by the group too.
  for (const group of groupScheduled) {
    const task = cron.schedule(
      group.schedule!,
      () => oneAtATime(group.instances, async () => {
        try {
          await recoverAfterCrash(o.catalog);
          const r = await runGroupBackup({ config: o.config, group, catalog: o.catalog, signal: o.signal });
          for (const m of r.members) emit(m.instance, 'backup-complete', { group: group.name, groupId: r.groupId, backupId: m.backupId, bytes: m.bytes, groupWindowMs: r.windowMs });
        } catch (err) {
          const e = asEbrError(err, 'internal', {});
          emit(String(e.context.instance ?? group.name), 'backup-failed', { group: group.name, groupId: e.context.groupId, error: e.message, hint: e.hint });
        }
      }),
      { name: `ebr:group:${group.name}`, noOverlap: true },
    );
    tasks.push(task);
    emit(group.name, 'scheduled', { group: group.name, schedule: group.schedule, next: task.getNextRun()?.toISOString() });
  }
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
  for (const instance of drillScheduled) {
    const task = cron.schedule(
      instance.drillSchedule!,
      async () => {
        try {
          const r = await runDrill({ config: o.config, instance, catalog: o.catalog, signal: o.signal });
          emit(instance.name, r.status === 'passed' ? 'drill-passed' : 'drill-failed', {
            backupId: r.backupId,
            drillId: r.drillId,
            restoreMs: r.restoreMs === undefined ? undefined : Math.round(r.restoreMs),
            recoverMs: r.recoverMs === undefined ? undefined : Math.round(r.recoverMs),
            failed: r.checks.filter((c) => !c.ok).map((c) => c.name),
            ...(r.error ? { error: r.error.message } : {}),
          });
        } catch (err) {
          const e = asEbrError(err, 'restore', { instance: instance.name });
          emit(instance.name, 'drill-failed', { error: e.message, hint: e.hint, backupId: e.context.backupId });
        }
      },
      { name: `ebr-drill:${instance.name}`, noOverlap: true },
    );
    emit(instance.name, 'scheduled', { drillSchedule: instance.drillSchedule, next: task.getNextRun()?.toISOString() });
    tasks.push(task);
  }
  await new Promise<void>((resolve) => {
    if (o.signal.aborted) resolve();
    o.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  for (const t of tasks) await t.stop();
  // A backup under way sees the same signal, releases the database and fails; wait for it to finish.
  while (tasks.some((t) => t.isBusy())) await new Promise((r) => setTimeout(r, 50));
  await http?.close();
  for (const name of new Set([...scheduled, ...logScheduled, ...drillScheduled].map((i) => i.name))) emit(name, 'stopped');
}

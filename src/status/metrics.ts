/**
 * The status as Prometheus gauges (prom-client), for `/metrics` and for node_exporter's textfile
 * collector. One registry per rendering: the values are the catalog's, not counters this process kept.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Gauge, Registry } from 'prom-client';
import type { StatusDocument } from './status.js';

export const metricsContentType = Registry.PROMETHEUS_CONTENT_TYPE;

export async function metricsText(doc: StatusDocument): Promise<string> {
  const registry = new Registry();
  const gauge = (name: string, help: string) => new Gauge({ name, help, labelNames: ['instance'], registers: [registry] });
  const lastTime = gauge('ebr_last_backup_timestamp_seconds', 'End of the newest complete backup whose archive is kept (unix time)');
  const age = gauge('ebr_last_backup_age_seconds', 'Seconds since the newest complete backup ended');
  const window = gauge('ebr_last_backup_block_window_seconds', 'Block window of the newest complete backup');
  const duration = gauge('ebr_last_backup_duration_seconds', 'Duration of the newest complete backup');
  const size = gauge('ebr_last_backup_bytes', 'Bytes read by the newest complete backup');
  const overdue = gauge('ebr_backup_overdue', '1 when no complete backup ended within two schedule intervals');
  const every = gauge('ebr_backup_schedule_interval_seconds', 'Seconds between two scheduled backups');
  const failures = gauge('ebr_backup_failures_since_success', 'Failed backups since the newest complete one');
  const drillTime = gauge('ebr_last_drill_timestamp_seconds', 'End of the newest drill (unix time)');
  const drillOk = gauge('ebr_last_drill_success', '1 when the newest drill passed, 0 when it failed');
  const drillPassed = gauge('ebr_last_successful_drill_timestamp_seconds', 'End of the newest drill that passed (unix time)');
  const logs = gauge('ebr_log_archive_files', 'Logs in the log archive');
  const lag = gauge('ebr_log_archive_lag_files', 'Logs the server finished that the log archive does not hold yet');
  const failing = gauge('ebr_log_archive_failing', '1 when the server\'s last attempt to archive a log failed, or the server could not be asked');
  for (const s of doc.instances) {
    const l = { instance: s.instance };
    failures.set(l, s.failures.length);
    overdue.set(l, s.overdue ? 1 : 0);
    if (s.scheduleEveryS !== null) every.set(l, s.scheduleEveryS);
    if (s.lastBackup) {
      lastTime.set(l, Date.parse(s.lastBackup.finishedAt ?? s.lastBackup.startedAt) / 1000);
      age.set(l, s.lastBackup.ageS);
      if (s.lastBackup.blockWindowMs !== null) window.set(l, s.lastBackup.blockWindowMs / 1000);
      if (s.lastBackup.durationMs !== null) duration.set(l, s.lastBackup.durationMs / 1000);
      if (s.lastBackup.bytes !== null) size.set(l, s.lastBackup.bytes);
    }
    if (s.lastDrill && s.lastDrill.status !== 'running') {
      if (s.lastDrill.finishedAt) drillTime.set(l, Date.parse(s.lastDrill.finishedAt) / 1000);
      drillOk.set(l, s.lastDrill.status === 'passed' ? 1 : 0);
    }
    if (s.lastPassedDrillAt) drillPassed.set(l, Date.parse(s.lastPassedDrillAt) / 1000);
    if (s.log) {
      logs.set(l, s.log.archived);
      if (s.log.lag?.behind !== undefined) lag.set(l, s.log.lag.behind);
      if (s.log.lag || s.log.error) failing.set(l, s.log.error || s.log.lag?.failing ? 1 : 0);
    }
  }
  return registry.metrics();
}

/** Written beside itself and renamed: the textfile collector never reads half a file. */
export async function writeTextfile(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}`);
  await writeFile(tmp, text, { mode: 0o644 });
  await rename(tmp, file);
}

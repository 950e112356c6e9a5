/**
 * What a monitoring system alerts on, per instance, from the catalog alone: the last complete backup
 * and its age against the schedule, failures since it, the last drill and the last one that passed,
 * and the log archive's newest log. `ebr status`, the Prometheus metrics and the status page all show
 * this one document.
 */
import cron from 'node-cron';
import type { Catalog } from '../catalog/catalog.js';
import { drillsOf, type DrillRow } from '../catalog/drills.js';
import type { Config, InstanceConfig } from '../config/load.js';
import type { LogLag } from '../adapter-api.js';
import { adapterOf, instanceContext, logStoreOf } from '../workflow/context.js';

export interface BackupPoint {
  id: string;
  status: string;
  startedAt: string;
  finishedAt: string | null;
  blockWindowMs: number | null;
  durationMs: number | null;
  bytes: number | null;
  error: string | null;
}

export interface InstanceStatus {
  instance: string;
  adapter: string;
  schedule: string | null;
  /** Seconds between two scheduled backups (from the cron expression); null without a schedule. */
  scheduleEveryS: number | null;
  lastBackup: (BackupPoint & { ageS: number }) | null;
  /** No complete backup within two schedule intervals (one run missed), or none at all while scheduled. */
  overdue: boolean;
  /** Failed backups since the last complete one, newest first. */
  failures: BackupPoint[];
  lastDrill: { id: number; backupId: string; status: string; finishedAt: string | null; ageS: number | null; error: string | null } | null;
  lastPassedDrillAt: string | null;
  /** The log archive; lag asks the server (the adapter's logLag), so it is absent for adapters without one. */
  log: { kind: string; archived: number; newest: string | null; lag?: LogLag; error?: string } | null;
  /** The newest backups (complete and failed), newest first, for the status page's plots. */
  recent: BackupPoint[];
}

export interface StatusDocument {
  at: string;
  instances: InstanceStatus[];
}

export async function collectStatus(config: Config, cat: Catalog, o: { instance?: string; recent?: number; now?: Date } = {}): Promise<StatusDocument> {
  const at = o.now ?? new Date();
  const instances = Object.values(config.instances).filter((i) => !o.instance || i.name === o.instance);
  return { at: at.toISOString(), instances: await Promise.all(instances.map((i) => instanceStatus(config, cat, i, at, o.recent ?? 30))) };
}

async function instanceStatus(config: Config, cat: Catalog, instance: InstanceConfig, at: Date, recentCount: number): Promise<InstanceStatus> {
  const rows = cat.db
    .prepare("SELECT * FROM backups WHERE instance = ? AND status != 'running' ORDER BY started_at DESC, id DESC LIMIT ?")
    .all(instance.name, Math.max(recentCount, 1)) as Array<Record<string, unknown>>;
  const recent = rows.map(pointOf);
  const lastRow = cat.db
    .prepare("SELECT * FROM backups WHERE instance = ? AND status = 'complete' AND removed_at IS NULL ORDER BY started_at DESC, id DESC LIMIT 1")
    .get(instance.name) as Record<string, unknown> | undefined;
  const last = lastRow ? pointOf(lastRow) : undefined;
  const failures = (
    cat.db
      .prepare("SELECT * FROM backups WHERE instance = ? AND status = 'failed' AND started_at > ? ORDER BY started_at DESC, id DESC LIMIT 20")
      .all(instance.name, last?.startedAt ?? '') as Array<Record<string, unknown>>
  ).map(pointOf);
  // Any backup counts, full or not: with daily incrementals and a weekly full, one is due every day.
  const [schedule, every] = [instance.schedule, instance.incrSchedule, instance.diffSchedule]
    .flatMap((e) => (e ? [[e, scheduleEvery(e)] as const] : []))
    .reduce<readonly [string | null, number | null]>((best, [e, n]) => (n !== null && (best[1] === null || n < best[1]) ? [e, n] : best[0] === null ? [e, n] : best), [null, null]);
  const ageS = last ? ageOf(last.finishedAt ?? last.startedAt, at) : null;
  const [drill] = drillsOf(cat, { instance: instance.name, limit: 1 });
  const passed = cat.db.prepare("SELECT MAX(finished_at) AS at FROM drills WHERE instance = ? AND status = 'passed'").get(instance.name) as { at: string | null };
  return {
    instance: instance.name,
    adapter: instance.adapter,
    schedule,
    scheduleEveryS: every,
    lastBackup: last ? { ...last, ageS: ageS! } : null,
    overdue: every !== null && (ageS === null || ageS > 2 * every),
    failures,
    lastDrill: drill ? drillOf(drill, at) : null,
    lastPassedDrillAt: passed.at,
    log: await logOf(config, instance),
    recent,
  };
}

function pointOf(r: Record<string, unknown>): BackupPoint {
  const started = String(r.started_at);
  const finished = (r.finished_at as string | null) ?? null;
  return {
    id: String(r.id),
    status: r.removed_at ? 'removed' : String(r.status),
    startedAt: started,
    finishedAt: finished,
    blockWindowMs: (r.block_window_ms as number | null) ?? null,
    durationMs: finished ? Date.parse(finished) - Date.parse(started) : null,
    bytes: (r.bytes as number | null) ?? null,
    error: r.error ? String((JSON.parse(String(r.error)) as { message?: string }).message ?? r.error) : null,
  };
}

function drillOf(d: DrillRow, at: Date): NonNullable<InstanceStatus['lastDrill']> {
  return {
    id: d.id,
    backupId: d.backup_id,
    status: d.status,
    finishedAt: d.finished_at,
    ageS: d.finished_at ? ageOf(d.finished_at, at) : null,
    error: d.error ? String((JSON.parse(d.error) as { message?: string }).message ?? d.error) : null,
  };
}

/**
 * The archive's newest log by name (WAL segment and binlog names sort in the order they were written),
 * and the lag against the server where the adapter can ask it. A server that does not answer within
 * 10 s is reported as the error, which is itself something to alert on.
 */
async function logOf(config: Config, instance: InstanceConfig): Promise<InstanceStatus['log']> {
  const adapter = adapterOf(instance);
  const kind = adapter.capabilities.logArchive;
  if (!kind) return null;
  let out: NonNullable<InstanceStatus['log']> = { kind, archived: 0, newest: null };
  try {
    const names = (await logStoreOf(instance, kind).list()).map((e) => e.name).filter((n) => !/\.(history|partial|backup)$/.test(n)).sort();
    out = { kind, archived: names.length, newest: names.at(-1) ?? null };
    if (adapter.logLag) out.lag = await adapter.logLag(instanceContext(config, instance), AbortSignal.timeout(10_000));
  } catch (err) {
    out.error = (err as Error).message;
  }
  return out;
}

/** Seconds between the next two runs of a cron expression. */
export function scheduleEvery(expr: string): number | null {
  const task = cron.createTask(expr, () => undefined);
  try {
    const [a, b] = task.getNextRuns(2);
    return a && b ? Math.round((b.getTime() - a.getTime()) / 1000) : null;
  } finally {
    void task.destroy();
  }
}

function ageOf(iso: string, at: Date): number {
  return Math.max(0, Math.round((at.getTime() - Date.parse(iso)) / 1000));
}

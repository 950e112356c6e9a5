/** Restore drills in the catalog (schema 5): running → passed | failed, with timings and check results. */
import type { DrillCheck, DrillReport } from '../adapter-api.js';
import { runnerIsDead, type Runner } from '../util/runner.js';
import { now, type Catalog } from './catalog.js';

export type DrillStatus = 'running' | 'passed' | 'failed';

export interface DrillRow {
  id: number;
  backup_id: string;
  instance: string;
  /** JSON array of the spaces of a --partial drill; null: every space. */
  spaces: string | null;
  status: DrillStatus;
  started_at: string;
  finished_at: string | null;
  restore_ms: number | null;
  recover_ms: number | null;
  check_ms: number | null;
  /** JSON DrillCheck[]. */
  checks: string | null;
  /** JSON DrillReport['logApplied']. */
  log_applied: string | null;
  restore_id: number | null;
  scratch: string;
  server_pid: number | null;
  runner_host: string;
  runner_pid: number;
  runner_start: string;
  /** JSON EbrError. */
  error: string | null;
}

/** Journals a drill before its scratch directory is made, so a dead drill's scratch is found. */
export function beginDrill(cat: Catalog, d: { backupId: string; instance: string; spaces?: string[]; scratch: string; runner: Runner }): number {
  const r = cat.db
    .prepare(
      `INSERT INTO drills (backup_id, instance, spaces, status, started_at, scratch, runner_host, runner_pid, runner_start)
       VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?)`,
    )
    .run(d.backupId, d.instance, d.spaces?.length ? JSON.stringify(d.spaces) : null, now(), d.scratch, d.runner.host, d.runner.pid, d.runner.start);
  return Number(r.lastInsertRowid);
}

export function setDrillServer(cat: Catalog, id: number, pid: number): void {
  cat.db.prepare('UPDATE drills SET server_pid = ? WHERE id = ?').run(pid, id);
}

export interface DrillOutcome {
  status: 'passed' | 'failed';
  restoreMs?: number;
  recoverMs?: number;
  checkMs?: number;
  checks: DrillCheck[];
  logApplied?: DrillReport['logApplied'];
  restoreId?: number;
  error?: unknown;
}

/** Durably: a drill reported passed stays passed after a power loss (`ebr list` relies on it). */
export function finishDrill(cat: Catalog, id: number, o: DrillOutcome): void {
  cat.durableTx(() =>
    cat.db
      .prepare(
        `UPDATE drills SET status = ?, finished_at = ?, restore_ms = ?, recover_ms = ?, check_ms = ?, checks = ?, log_applied = ?, restore_id = ?, error = ?
         WHERE id = ?`,
      )
      .run(o.status, now(), o.restoreMs ?? null, o.recoverMs ?? null, o.checkMs ?? null, JSON.stringify(o.checks), o.logApplied ? JSON.stringify(o.logApplied) : null, o.restoreId ?? null, o.error === undefined ? null : JSON.stringify(o.error), id),
  );
}

/** Drills left `running` by a process on this host that is gone; the caller ends their servers and removes their scratch. */
export function abandonedDrills(cat: Catalog): DrillRow[] {
  const rows = cat.db.prepare("SELECT * FROM drills WHERE status = 'running'").all() as DrillRow[];
  return rows.filter((d) => runnerIsDead({ host: d.runner_host, pid: d.runner_pid, start: d.runner_start }));
}

export function markDrillDead(cat: Catalog, id: number, note: string): void {
  cat.durableTx(() =>
    cat.db
      .prepare("UPDATE drills SET status = 'failed', finished_at = ?, error = ? WHERE id = ? AND status = 'running'")
      .run(now(), JSON.stringify({ code: 'runnerDied', message: note }), id),
  );
}

export function drillsOf(cat: Catalog, o: { instance?: string; backupId?: string; limit?: number } = {}): DrillRow[] {
  const where: string[] = [];
  const args: unknown[] = [];
  if (o.instance) where.push('instance = ?'), args.push(o.instance);
  if (o.backupId) where.push('backup_id = ?'), args.push(o.backupId);
  const sql = `SELECT * FROM drills ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY started_at DESC, id DESC ${o.limit ? `LIMIT ${Math.floor(o.limit)}` : ''}`;
  return cat.db.prepare(sql).all(...args) as DrillRow[];
}

/** The newest passed drill of each backup (for `ebr list`'s column): backup id → finished_at. */
export function lastPassedDrills(cat: Catalog, instance?: string): Map<string, string> {
  const rows = cat.db
    .prepare(`SELECT backup_id, MAX(finished_at) AS at FROM drills WHERE status = 'passed' ${instance ? 'AND instance = ?' : ''} GROUP BY backup_id`)
    .all(...(instance ? [instance] : [])) as Array<{ backup_id: string; at: string }>;
  return new Map(rows.map((r) => [r.backup_id, r.at]));
}

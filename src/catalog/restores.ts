/**
 * Restores in the catalog: one row each (running → complete | failed | rolled-back), the step it is in,
 * and its journal of file steps (restore_steps), written before each step is taken so that the next
 * command can finish or undo a restore whose process died.
 */
import { runnerIsDead, type Runner } from '../util/runner.js';
import { now, type Catalog } from './catalog.js';
import { releaseLock, takeLockInTx } from './locks.js';

export type RestoreStatus = 'running' | 'complete' | 'failed' | 'rolled-back';

/** Where a restore is: writing verified copies, swapping them in, the adapter's finish, removing the old files. */
export type RestoreStep = 'check' | 'stage' | 'swap' | 'finish' | 'cleanup' | 'done';

export interface RestoreRow {
  id: number;
  backup_id: string;
  instance: string | null;
  mode: string;
  spaces: string;
  target_dir: string | null;
  until: string | null;
  started_at: string;
  finished_at: string | null;
  status: RestoreStatus;
  step: string | null;
  outcome: string | null;
  error: string | null;
  runner_host: string | null;
  runner_pid: number | null;
  runner_start: string | null;
}

export interface JournalRow {
  seq: number;
  op: string;
  path: string;
  details: Record<string, unknown>;
}

/** Registers a running restore and takes the instance lock, in one transaction. */
export function beginRestore(
  cat: Catalog,
  r: { backupId: string; instance: string; mode: string; spaces: string[]; targetDir?: string; until?: string; runner: Runner },
): number {
  return cat.tx(() => {
    const id = Number(
      cat.db
        .prepare(
          `INSERT INTO restores (backup_id, instance, mode, spaces, target_dir, until, started_at, status, step, runner_host, runner_pid, runner_start)
           VALUES (?, ?, ?, ?, ?, ?, ?, 'running', 'check', ?, ?, ?)`,
        )
        .run(r.backupId, r.instance, r.mode, JSON.stringify(r.spaces), r.targetDir ?? null, r.until ?? null, now(), r.runner.host, r.runner.pid, r.runner.start).lastInsertRowid,
    );
    takeLockInTx(cat, r.instance, { kind: 'restore', restoreId: id }, r.runner, () => undefined);
    return id;
  });
}

export function setRestoreStep(cat: Catalog, id: number, step: RestoreStep): void {
  cat.durableTx(() => cat.db.prepare('UPDATE restores SET step = ? WHERE id = ?').run(step, id));
}

/** Ends a restore and frees the instance lock; durable, like every state change of a restore. */
export function finishRestore(cat: Catalog, id: number, status: Exclude<RestoreStatus, 'running'>, fields: { outcome?: string; error?: string } = {}): void {
  cat.durableTx(() => {
    cat.db
      .prepare("UPDATE restores SET status = ?, finished_at = ?, step = CASE WHEN CAST(? AS TEXT) = 'complete' THEN 'done' ELSE step END, outcome = ?, error = COALESCE(?, error) WHERE id = ?")
      .run(status, now(), status, fields.outcome ?? null, fields.error ?? null, id);
    const row = cat.db.prepare('SELECT instance FROM restores WHERE id = ?').get(id) as { instance: string | null } | undefined;
    if (row?.instance) releaseLock(cat, row.instance, { kind: 'restore', restoreId: id });
  });
}

/** Appends journal rows in one durable transaction, before the steps they describe are taken. */
export function journalSteps(cat: Catalog, id: number, steps: Array<{ op: string; path: string; details?: Record<string, unknown> }>): number[] {
  if (steps.length === 0) return [];
  // Durable: the journal must be on disk before the file step it describes, or a power loss could
  // leave moved files that no journal row explains.
  return cat.durableTx(() => {
    const { seq } = cat.db.prepare('SELECT COALESCE(MAX(seq), 0) AS seq FROM restore_steps WHERE restore_id = ?').get(id) as { seq: number };
    const insert = cat.db.prepare('INSERT INTO restore_steps (restore_id, seq, op, path, details) VALUES (?, ?, ?, ?, ?)');
    return steps.map((s, i) => {
      insert.run(id, seq + i + 1, s.op, s.path, s.details ? JSON.stringify(s.details) : null);
      return seq + i + 1;
    });
  });
}

export function journalOf(cat: Catalog, id: number): JournalRow[] {
  const rows = cat.db.prepare('SELECT seq, op, path, details FROM restore_steps WHERE restore_id = ? ORDER BY seq').all(id) as Array<{ seq: number; op: string; path: string; details: string | null }>;
  return rows.map((r) => ({ seq: r.seq, op: r.op, path: r.path, details: r.details ? (JSON.parse(r.details) as Record<string, unknown>) : {} }));
}

/** Restores left `running` by a process that is gone: the next command finishes or undoes them. */
export function abandonedRestores(cat: Catalog): RestoreRow[] {
  const rows = cat.db.prepare("SELECT * FROM restores WHERE status = 'running'").all() as RestoreRow[];
  return rows.filter((r) => r.runner_pid === null || runnerIsDead({ host: r.runner_host ?? '', pid: r.runner_pid, start: r.runner_start ?? '' }));
}

export function listRestores(cat: Catalog, o: { instance?: string; backupId?: string } = {}): RestoreRow[] {
  const where: string[] = [];
  const args: string[] = [];
  if (o.instance) {
    where.push('(r.instance = ? OR (r.instance IS NULL AND b.instance = ?))');
    args.push(o.instance, o.instance);
  }
  if (o.backupId) {
    where.push('r.backup_id = ?');
    args.push(o.backupId);
  }
  return cat.db
    .prepare(`SELECT r.*, COALESCE(r.instance, b.instance) AS instance FROM restores r LEFT JOIN backups b ON b.id = r.backup_id ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY r.id DESC`)
    .all(...args) as RestoreRow[];
}

/**
 * One lock per instance, held by whatever works on its files or its archives: a backup, a restore, or
 * retention. They exclude each other, so retention never removes the archive a restore is reading and
 * a backup never freezes files a restore is replacing. A lock whose runner died is taken over.
 *
 * Every lock is a lease: taken with an expiry (EBR_LEASE_MS, default 60 s, by the catalog database's
 * clock) that a heartbeat renews every third of it while the lock is held. A holder on this host is
 * judged by its pid (it is dead or it is not); a holder on another host by its lease: once expired,
 * the next command anywhere takes it over and marks the holder's backup failed.
 */
import { EbrError } from '../errors.js';
import { runnerIsDead, thisRunner, type Runner } from '../util/runner.js';
import { now, type Catalog } from './catalog.js';
import { PgDb } from './pg-db.js';

/** What holds the lock: `backup <id>`, `restore <n>`, `retention`. Stored in locks.backup_id. */
export type LockHolder = { kind: 'backup'; backupId: string } | { kind: 'restore'; restoreId: number } | { kind: 'retention' };

interface LockRow {
  backup_id: string;
  runner_host: string;
  runner_pid: number;
  runner_start: string;
  acquired_at: string;
  heartbeat_at: string | null;
  expires_at: string | null;
}

export function leaseMs(): number {
  const v = Number(process.env.EBR_LEASE_MS);
  return Number.isFinite(v) && v > 0 ? v : 60_000;
}

/**
 * Whether a lock's (or a running backup's) holder is gone: on this host its pid says; on another,
 * its lease, once past (a row of an older ebr without a lease is never judged from afar).
 */
export function holderIsGone(h: { runner_host: string; runner_pid: number; runner_start: string; expires_at: string | null }, clock: () => string): boolean {
  if (h.runner_host === thisRunner().host) return runnerIsDead({ host: h.runner_host, pid: h.runner_pid, start: h.runner_start });
  return h.expires_at !== null && h.expires_at < clock();
}

/** The catalog's clock plus ms, as ISO text (expiries compare as text). */
function later(clock: string, ms: number): string {
  return new Date(Date.parse(clock) + ms).toISOString();
}

export function holderKey(h: LockHolder): string {
  return h.kind === 'backup' ? h.backupId : h.kind === 'restore' ? `restore:${h.restoreId}` : `retention:${process.pid}`;
}

export function describeHolder(key: string): string {
  if (key.startsWith('restore:')) return `restore ${key.slice('restore:'.length)}`;
  if (key.startsWith('retention:')) return 'retention';
  return `backup ${key}`;
}

/**
 * Takes the instance's lock inside the caller's transaction (cat.tx). A live holder is refused with
 * what it is; a dead one is handed to `onDead` (which marks its work failed) and replaced.
 */
export function takeLockInTx(cat: Catalog, instance: string, holder: LockHolder, runner: Runner, onDead: (key: string) => void): void {
  const held = cat.db.prepare('SELECT * FROM locks WHERE instance = ?').get(instance) as LockRow | undefined;
  if (held) {
    if (!holderIsGone(held, () => cat.db.clock())) {
      const lease = held.expires_at ? `, its lease renewed at ${held.heartbeat_at} runs to ${held.expires_at}` : '';
      throw new EbrError('locked', `${describeHolder(held.backup_id)} of instance ${instance} is still running (pid ${held.runner_pid} on ${held.runner_host}, since ${held.acquired_at}${lease})`, {
        hint: 'backups, restores and retention of one instance never overlap; wait for it to finish, or stop that process (a holder on another host that died is taken over once its lease expires)',
        context: { instance, holder: describeHolder(held.backup_id) },
      });
    }
    if (held.backup_id.startsWith('restore:')) {
      const r = cat.db.prepare('SELECT status FROM restores WHERE id = ?').get(Number(held.backup_id.slice('restore:'.length))) as { status: string } | undefined;
      if (r?.status === 'running') {
        throw new EbrError('locked', `${describeHolder(held.backup_id)} of instance ${instance} was interrupted and its files are not repaired yet`, {
          hint: 'run `ebr restores` (every ebr command first finishes or undoes an interrupted restore), then try again',
          context: { instance, holder: describeHolder(held.backup_id) },
        });
      }
    }
    onDead(held.backup_id);
    cat.db.prepare('DELETE FROM locks WHERE instance = ? AND backup_id = ?').run(instance, held.backup_id);
  }
  const clock = cat.db.clock();
  const ms = leaseMs();
  cat.db
    .prepare('INSERT INTO locks (instance, backup_id, runner_host, runner_pid, runner_start, acquired_at, heartbeat_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
    .run(instance, holderKey(holder), runner.host, runner.pid, runner.start, now(), clock, later(clock, ms));
  keepLeases(cat, runner, Date.parse(clock) - Date.now(), ms);
}

/**
 * The heartbeat: renews every lease this runner holds, by the catalog's clock (its offset from this
 * host's clock taken when the lock was taken, so a heartbeat is one statement). On PostgreSQL it runs
 * as a background statement: it never swallows the report of a lost connection, which the work's
 * next statement must see.
 */
function keepLeases(cat: Catalog, runner: Runner, skewMs: number, ms: number): void {
  const sql = 'UPDATE locks SET heartbeat_at = ?, expires_at = ? WHERE runner_host = ? AND runner_pid = ? AND runner_start = ?';
  cat.keepLeases(() => {
    const t = new Date(Date.now() + skewMs).toISOString();
    const params = [t, later(t, ms), runner.host, runner.pid, runner.start];
    return (cat.db instanceof PgDb ? cat.db.background(sql, params) : cat.db.prepare(sql).run(...params)).changes;
  }, Math.max(50, Math.floor(ms / 3)));
}

export function releaseLock(cat: Catalog, instance: string, holder: LockHolder): void {
  cat.db.prepare('DELETE FROM locks WHERE instance = ? AND backup_id = ?').run(instance, holderKey(holder));
}

/**
 * One lock per instance, held by whatever works on its files or its archives: a backup, a restore, or
 * retention. They exclude each other, so retention never removes the archive a restore is reading and
 * a backup never freezes files a restore is replacing. A lock whose runner died is taken over.
 */
import { EbrError } from '../errors.js';
import { runnerIsDead, type Runner } from '../util/runner.js';
import { now, type Catalog } from './catalog.js';

/** What holds the lock: `backup <id>`, `restore <n>`, `retention`. Stored in locks.backup_id. */
export type LockHolder = { kind: 'backup'; backupId: string } | { kind: 'restore'; restoreId: number } | { kind: 'retention' };

interface LockRow {
  backup_id: string;
  runner_host: string;
  runner_pid: number;
  runner_start: string;
  acquired_at: string;
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
    const owner = { host: held.runner_host, pid: held.runner_pid, start: held.runner_start };
    if (!runnerIsDead(owner)) {
      throw new EbrError('locked', `${describeHolder(held.backup_id)} of instance ${instance} is still running (pid ${held.runner_pid} on ${held.runner_host}, since ${held.acquired_at})`, {
        hint: 'backups, restores and retention of one instance never overlap; wait for it to finish, or stop that process',
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
  cat.db
    .prepare('INSERT INTO locks (instance, backup_id, runner_host, runner_pid, runner_start, acquired_at) VALUES (?, ?, ?, ?, ?, ?)')
    .run(instance, holderKey(holder), runner.host, runner.pid, runner.start, now());
}

export function releaseLock(cat: Catalog, instance: string, holder: LockHolder): void {
  cat.db.prepare('DELETE FROM locks WHERE instance = ? AND backup_id = ?').run(instance, holderKey(holder));
}

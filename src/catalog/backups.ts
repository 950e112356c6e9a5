/** Backups in the catalog: their lifecycle (running → complete | failed), phases and the instance lock. */
import { randomBytes } from 'node:crypto';
import { EbrError } from '../errors.js';
import { thisRunner, type Runner } from '../util/runner.js';
import { now, type Catalog } from './catalog.js';
import { holderIsGone, takeLockInTx } from './locks.js';

export type BackupStatus = 'running' | 'complete' | 'failed';

export interface BackupRow {
  id: string;
  instance: string;
  vendor: string;
  status: BackupStatus;
  phase: string;
  started_at: string;
  finished_at: string | null;
  block_window_ms: number | null;
  window_steps: string | null;
  log_start: string | null;
  log_end: string | null;
  timeline: number | null;
  server: string | null;
  meta: string | null;
  snapshot_provider: string;
  target_type: string;
  location: string | null;
  bytes: number | null;
  members: number | null;
  runner_host: string;
  runner_pid: number;
  runner_start: string;
  error: string | null;
  /** Set when retention removed the archive; the row stays as history. */
  removed_at: string | null;
  /** sha256 of manifest.json as sealed (schema 3; null for older backups). */
  manifest_sha256: string | null;
  /** JSON object: meta/ file name -> sha256, as sealed. */
  meta_sha256: string | null;
  /** Set when `ebr catalog rebuild` made this row from the archive's own manifest. */
  rebuilt_at: string | null;
  /** JSON StoredCodec (schema 4): compression, and encryption with the wrapped data key; null: stored as is. */
  codec: string | null;
  /** Bytes of every space stream as stored (after the codec); null when a target could not tell. */
  stored_bytes: number | null;
  /** full, incr or diff (schema 8; null: a full backup of an older ebr). */
  type: string | null;
  /** The backup an incr or diff was compared with, which a restore of it reads blocks from. */
  parent_id: string | null;
}

export interface PhaseRow {
  seq: number;
  phase: string;
  started_at: string;
  ended_at: string | null;
  outcome: string | null;
  duration_ms: number | null;
}

/** Sortable, readable ids: 20261122T031534Z-1f3a. */
export function newBackupId(at = new Date()): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${randomBytes(2).toString('hex')}`;
}

/** Registers a new running backup and takes the instance lock, in one transaction. */
export function beginBackup(
  cat: Catalog,
  b: { id: string; instance: string; vendor: string; provider: string; targetType: string; runner: Runner },
): void {
  cat.tx(() => {
    const t = now();
    cat.db
      .prepare('INSERT INTO instances (name, vendor, first_seen, last_seen) VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET last_seen = excluded.last_seen, vendor = excluded.vendor')
      .run(b.instance, b.vendor, t, t);
    cat.db
      .prepare(
        `INSERT INTO backups (id, instance, vendor, status, phase, started_at, snapshot_provider, target_type, runner_host, runner_pid, runner_start)
         VALUES (?, ?, ?, 'running', 'init', ?, ?, ?, ?, ?, ?)`,
      )
      .run(b.id, b.instance, b.vendor, t, b.provider, b.targetType, b.runner.host, b.runner.pid, b.runner.start);
    // The lock last: the backup row it names must exist (a failed insert above leaves no lock).
    takeLockInTx(cat, b.instance, { kind: 'backup', backupId: b.id }, b.runner, (key) => markDead(cat, key));
  });
}

/** Journals the start of a phase before it runs; the returned function journals its end. */
export function startPhase(cat: Catalog, backupId: string, phase: string): (outcome: 'ok' | 'failed') => number {
  const started = performance.now();
  const seq = cat.tx(() => {
    const row = cat.db.prepare('SELECT COALESCE(MAX(seq), 0) + 1 AS seq FROM phases WHERE backup_id = ?').get(backupId) as { seq: number };
    cat.db.prepare('INSERT INTO phases (backup_id, seq, phase, started_at) VALUES (?, ?, ?, ?)').run(backupId, row.seq, phase, now());
    cat.db.prepare('UPDATE backups SET phase = ? WHERE id = ?').run(phase, backupId);
    return row.seq;
  });
  return (outcome) => {
    const ms = performance.now() - started;
    cat.db.prepare('UPDATE phases SET ended_at = ?, outcome = ?, duration_ms = ? WHERE backup_id = ? AND seq = ?').run(now(), outcome, ms, backupId, seq);
    return ms;
  };
}

export function updateBackup(cat: Catalog, id: string, fields: Partial<Omit<BackupRow, 'id'>>): void {
  const keys = Object.keys(fields);
  if (keys.length === 0) return;
  cat.db.prepare(`UPDATE backups SET ${keys.map((k) => `${k} = @${k}`).join(', ')} WHERE id = @id`).run({ ...fields, id });
}

/**
 * A backup's archive in the resources journal: recorded before its first byte is written, so the next
 * command removes what a crashed backup left (workflow/archive-journal.ts). Completing the backup
 * settles it, in the same transaction: a complete backup's archive is never a leftover.
 */
export const archiveResource = { provider: 'target', kind: 'archive' } as const;

/**
 * Ends a backup as complete or failed and frees the instance lock, durably (a backup reported complete
 * stays complete after a power loss). Complete also settles the journal entry of its archive.
 */
export function finishBackup(cat: Catalog, id: string, status: 'complete' | 'failed', fields: Partial<Omit<BackupRow, 'id'>> = {}): void {
  cat.durableTx(() => {
    const row = cat.db.prepare('SELECT status, instance FROM backups WHERE id = ?').get(id) as { status: string; instance: string } | undefined;
    if (status === 'complete' && row && row.status !== 'running') {
      // Its lease ran out and another command marked it failed (and may hold the lock now): never complete it after that.
      throw new EbrError('locked', `backup ${id} of instance ${row.instance} was marked ${row.status} by another command while it ran (its lease on the instance lock expired)`, {
        hint: 'the catalog was out of reach or this process stalled longer than the lease (EBR_LEASE_MS); run the backup again',
        context: { instance: row.instance, backupId: id },
      });
    }
    updateBackup(cat, id, { ...fields, status, finished_at: now() });
    cat.db.prepare('DELETE FROM locks WHERE backup_id = ?').run(id);
    if (status === 'complete') {
      cat.db
        .prepare('UPDATE resources SET removed_at = ? WHERE backup_id = ? AND provider = ? AND kind = ? AND removed_at IS NULL')
        .run(now(), id, archiveResource.provider, archiveResource.kind);
    }
  });
}

/**
 * Finds backups whose runner is gone and marks them failed with the phase they died in: on this host
 * by its pid, on another by its lease on the instance lock, once expired. Every command calls this
 * first, so no backup stays `running` after its process (or its host) is gone.
 */
export function failAbandonedBackups(cat: Catalog): Array<{ id: string; instance: string; phase: string }> {
  const running = cat.db
    .prepare("SELECT b.id, b.instance, b.phase, b.runner_host, b.runner_pid, b.runner_start, l.expires_at FROM backups b LEFT JOIN locks l ON l.backup_id = b.id WHERE b.status = 'running' ORDER BY b.id")
    .all() as Array<Pick<BackupRow, 'id' | 'instance' | 'phase' | 'runner_host' | 'runner_pid' | 'runner_start'> & { expires_at: string | null }>;
  let clock: string | undefined;
  const dead = running.filter((b) => holderIsGone(b, () => (clock ??= cat.db.clock())));
  // Judged again inside the transaction: a heartbeat may have come in meanwhile, or another host marked it.
  const marked = dead.filter((b) =>
    cat.durableTx(() => {
      const again = cat.db
        .prepare("SELECT b.runner_host, b.runner_pid, b.runner_start, l.expires_at FROM backups b LEFT JOIN locks l ON l.backup_id = b.id WHERE b.id = ? AND b.status = 'running'")
        .get(b.id) as (Pick<BackupRow, 'runner_host' | 'runner_pid' | 'runner_start'> & { expires_at: string | null }) | undefined;
      if (!again || !holderIsGone(again, () => cat.db.clock())) return false;
      markDead(cat, b.id);
      return true;
    }),
  );
  return marked.map(({ id, instance, phase }) => ({ id, instance, phase }));
}

function markDead(cat: Catalog, id: string): void {
  const b = cat.db.prepare('SELECT phase, runner_pid, runner_host FROM backups WHERE id = ?').get(id) as { phase: string; runner_pid: number; runner_host: string } | undefined;
  if (!b) return;
  const lease = cat.db.prepare('SELECT heartbeat_at FROM locks WHERE backup_id = ?').get(id) as { heartbeat_at: string | null } | undefined;
  const away = b.runner_host !== thisRunner().host;
  const error = {
    code: 'runnerDied',
    message: away
      ? `the ebr process running this backup (pid ${b.runner_pid} on ${b.runner_host}) stopped renewing its lease${lease?.heartbeat_at ? ` (last at ${lease.heartbeat_at})` : ''} in phase ${b.phase}: it or its host died`
      : `the ebr process running this backup (pid ${b.runner_pid} on ${b.runner_host}) died in phase ${b.phase}`,
    phase: b.phase,
  };
  cat.db.prepare("UPDATE phases SET ended_at = ?, outcome = 'died' WHERE backup_id = ? AND ended_at IS NULL").run(now(), id);
  cat.db.prepare("UPDATE backups SET status = 'failed', finished_at = ?, error = ? WHERE id = ? AND status = 'running'").run(now(), JSON.stringify(error), id);
  cat.db.prepare('DELETE FROM locks WHERE backup_id = ?').run(id);
}

export function listBackups(cat: Catalog, instance?: string): BackupRow[] {
  return (
    instance
      ? cat.db.prepare('SELECT * FROM backups WHERE instance = ? ORDER BY started_at DESC, id DESC').all(instance)
      : cat.db.prepare('SELECT * FROM backups ORDER BY started_at DESC, id DESC').all()
  ) as BackupRow[];
}

export function phasesOf(cat: Catalog, id: string): PhaseRow[] {
  return cat.db.prepare('SELECT seq, phase, started_at, ended_at, outcome, duration_ms FROM phases WHERE backup_id = ? ORDER BY seq').all(id) as PhaseRow[];
}

/** A backup by id, or `latest` complete one of an instance; unknown ids list what exists. */
export function findBackup(cat: Catalog, idOrLatest: string, instance?: string): BackupRow {
  if (idOrLatest === 'latest') {
    const sql = `SELECT * FROM backups WHERE status = 'complete' AND removed_at IS NULL ${instance ? 'AND instance = ?' : ''} ORDER BY started_at DESC, id DESC LIMIT 1`;
    const row = (instance ? cat.db.prepare(sql).get(instance) : cat.db.prepare(sql).get()) as BackupRow | undefined;
    if (!row) {
      throw new EbrError('unknownBackup', `no complete backup${instance ? ` of instance ${instance}` : ''} in the catalog`, {
        hint: 'run `ebr backup` first; `ebr list` shows what the catalog holds',
        context: instance ? { instance } : {},
      });
    }
    return row;
  }
  const row = cat.db.prepare('SELECT * FROM backups WHERE id = ?').get(idOrLatest) as BackupRow | undefined;
  if (!row || (instance && row.instance !== instance)) {
    const recent = listBackups(cat, instance).slice(0, 5).map((b) => b.id);
    throw new EbrError('unknownBackup', `no backup ${idOrLatest}${instance ? ` of instance ${instance}` : ''} in the catalog`, {
      hint: recent.length ? `recent backups: ${recent.join(', ')} (or say latest)` : 'the catalog holds no backups yet; run `ebr backup` first',
    });
  }
  return row;
}

/** Complete backups of an instance whose archives still exist, newest first. */
export function keptBackups(cat: Catalog, instance: string): BackupRow[] {
  return cat.db.prepare("SELECT * FROM backups WHERE instance = ? AND status = 'complete' AND removed_at IS NULL ORDER BY started_at DESC, id DESC").all(instance) as BackupRow[];
}

/** Retention removed the archive: recorded durably, so a removed backup never comes back as restorable. */
export function markRemoved(cat: Catalog, id: string): void {
  cat.durableTx(() => cat.db.prepare('UPDATE backups SET removed_at = ? WHERE id = ?').run(now(), id));
}

/** Retention could not remove the archive and it is still whole: the backup is kept after all. */
export function unmarkRemoved(cat: Catalog, id: string): void {
  cat.durableTx(() => cat.db.prepare('UPDATE backups SET removed_at = NULL WHERE id = ?').run(id));
}

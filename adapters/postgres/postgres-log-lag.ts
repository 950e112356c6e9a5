/**
 * How far the WAL archive is behind the server, for `ebr status`: the segment the server writes now
 * against the newest one in the archive, counted in segments, and pg_stat_archiver's last failure when
 * it is newer than its last success (archive_command failing is what a monitor must see first).
 */
import type { InstanceContext, LogLag } from '../../src/adapter-api.js';
import type { LogStore } from '../../src/logs/log-store.js';
import type { PostgresSettings } from './postgres-config.js';

const segmentName = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;

export async function postgresLogLag(instance: InstanceContext<PostgresSettings>, store: LogStore, signal: AbortSignal): Promise<LogLag> {
  const { default: pg } = await import('pg');
  const s = instance.settings;
  const client = new pg.Client({ host: s.host, port: s.port, user: s.user, database: s.database, ...(s.password !== undefined ? { password: s.password } : {}), connectionTimeoutMillis: Math.min(s.connectTimeoutMs, 5000) });
  client.on('error', () => undefined);
  const abort = () => void client.end().catch(() => undefined);
  signal.addEventListener('abort', abort, { once: true });
  let row: { current: string; size: string; last_archived_wal: string | null; last_archived_time: Date | null; last_failed_wal: string | null; last_failed_time: Date | null } | undefined;
  try {
    await client.connect();
    row = (
      await client.query(
        "SELECT pg_walfile_name(pg_current_wal_lsn()) AS current, (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size') AS size, last_archived_wal, last_archived_time, last_failed_wal, last_failed_time FROM pg_stat_archiver",
      )
    ).rows[0];
  } finally {
    signal.removeEventListener('abort', abort);
    await client.end().catch(() => undefined);
  }
  const current = String(row!.current);
  const names = (await store.list()).map((e) => e.name).filter((n) => segmentName.test(n)).sort();
  const newest = names.at(-1);
  const perId = 2 ** 32 / Number(row!.size);
  const failing = row!.last_failed_time && (!row!.last_archived_time || row!.last_failed_time > row!.last_archived_time) ? { log: String(row!.last_failed_wal), at: row!.last_failed_time.toISOString() } : undefined;
  return {
    current,
    ...(newest ? { newestArchived: newest, behind: Math.max(0, segmentNumber(current, perId) - segmentNumber(newest, perId) - 1) } : {}),
    ...(failing ? { failing } : {}),
  };
}

function segmentNumber(name: string, perId: number): number {
  const m = segmentName.exec(name)!;
  return parseInt(m[2]!, 16) * perId + parseInt(m[3]!, 16);
}

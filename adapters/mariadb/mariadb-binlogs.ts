/**
 * The server side of the binlog archive: which binlogs exist and which one is being written, read on
 * a connection; the copying itself is the generic binlog sync in src/logs.
 */
import path from 'node:path';
import type { InstanceContext } from '../../src/adapter-api.js';
import { EbrError } from '../../src/errors.js';
import { syncBinlogs, type BinlogSource, type SyncResult } from './binlog-sync.js';
import type { LogStore } from '../../src/logs/log-store.js';
import type { BackupMeta } from '../../src/model.js';
import { connectOptionsOf, openSql, type Sql } from './mariadb-connection.js';
import type { MariadbSettings } from './mariadb-config.js';
import { sqlError } from './mariadb-errors.js';
import { layoutOf } from './mariadb-layout.js';
import { dialectFor, parseVersion, settingsQuery, type Dialect } from './mariadb-queries.js';

export function binlogSource(sql: Sql, dialect: Dialect, instance: string): BinlogSource {
  const ctx = { instance, phase: 'binlog-sync' };
  const q = async (s: string) => {
    try {
      return await sql.query(s);
    } catch (err) {
      throw sqlError(err, 'logArchive', `${s} failed`, ctx);
    }
  };
  return {
    async rotate() {
      await q(dialect.rotateBinlog);
    },
    async list() {
      const vars = Object.fromEntries((await q(settingsQuery(['datadir', 'log_bin', 'log_bin_basename']))).map((r) => [String(r.Variable_name), String(r.Value ?? '')]));
      const layout = layoutOf(vars);
      if (!layout.binlogBasename) {
        throw new EbrError('logArchive', `the binary log is off on instance ${instance}; there is nothing to archive`, {
          hint: 'set log_bin and server_id in the server\'s configuration and restart it',
          context: ctx,
        });
      }
      const dir = path.dirname(layout.binlogBasename);
      const [status] = await q(dialect.currentBinlog);
      const current = status ? String(status.File) : undefined;
      return (await q('SHOW BINARY LOGS')).map((r) => {
        const name = String(r.Log_name);
        return { name, path: path.join(dir, name), current: name === current };
      });
    },
  };
}

/**
 * Run after every backup (the session's afterRelease): closes the binlog that holds the backup's
 * position and archives it with everything before it, so the backup can be rolled forward at once.
 */
export async function syncBinlogsAfterBackup(sql: Sql, dialect: Dialect, store: LogStore, meta: BackupMeta, instance: string, signal: AbortSignal): Promise<SyncResult | undefined> {
  if (!meta.logStart) return undefined; // binary log off: nothing to archive
  return syncBinlogs(binlogSource(sql, dialect, instance), store, { signal, instance });
}

/** `ebr binlog sync`: a connection of its own, the sync, and the connection closed again. */
export async function syncInstanceBinlogs(instance: InstanceContext<MariadbSettings>, store: LogStore, signal: AbortSignal): Promise<SyncResult> {
  const sql = await openSql(connectOptionsOf(instance.settings, instance.resolvePath), { instance: instance.name, phase: 'connect' }, signal);
  try {
    const [row] = await sql.query('SELECT VERSION() AS version, @@version_comment AS comment');
    const dialect = dialectFor(parseVersion(String(row?.version ?? ''), String(row?.comment ?? '')));
    return await syncBinlogs(binlogSource(sql, dialect, instance.name), store, { signal, instance: instance.name });
  } finally {
    await sql.end();
  }
}

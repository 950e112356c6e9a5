/** Opening the MariaDB/MySQL backup session (loaded only when an instance is backed up: it loads mysql2). */
import type { DbmsSession, InstanceContext } from '../../src/adapter-api.js';
import { connectOptionsOf, openSql } from './mariadb-connection.js';
import type { MariadbSettings } from './mariadb-config.js';
import { dialectFor, parseVersion } from './mariadb-queries.js';
import { mariadbSession } from './mariadb-session.js';
import { syncBinlogsAfterBackup } from './mariadb-binlogs.js';

export async function connectMariadb(instance: InstanceContext<MariadbSettings>, signal: AbortSignal): Promise<DbmsSession> {
    const s = instance.settings;
    const context = { instance: instance.name, phase: 'connect' };
    const sql = await openSql(connectOptionsOf(s, instance.resolvePath), context, signal);
    try {
      const [row] = await sql.query('SELECT VERSION() AS version, @@version_comment AS comment');
      const version = parseVersion(String(row?.version ?? ''), String(row?.comment ?? ''));
      const dialect = dialectFor(version);
      const logStore = instance.logStore?.('binlog');
      return mariadbSession(sql, {
        instance: instance.name,
        version,
        dialect,
        lockWaitTimeoutS: s.lockWaitTimeoutS,
        blockTimeoutMs: s.blockTimeoutMs,
        requireBinlog: s.requireBinlog,
        ...(logStore ? { afterRelease: async (conn, meta, sig) => void (await syncBinlogsAfterBackup(conn, dialect, logStore, meta, instance.name, sig)) } : {}),
      });
    } catch (err) {
      await sql.end();
      throw err;
    }
}

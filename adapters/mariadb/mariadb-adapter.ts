/** The MariaDB/MySQL adapter: spaces are the schemas plus the critical `server` space. */
import type { DbmsAdapter } from '../../src/adapter-api.js';
import { connectOptionsOf, openSql } from './mariadb-connection.js';
import { mariadbConfigSchema, type MariadbSettings } from './mariadb-config.js';
import { dialectFor, parseVersion } from './mariadb-queries.js';
import { mariadbRestorer } from './mariadb-restorer.js';
import { mariadbSession } from './mariadb-session.js';
import { syncBinlogsAfterBackup, syncInstanceBinlogs } from './mariadb-binlogs.js';
import { EbrError } from '../../src/errors.js';

export const mariadbAdapter: DbmsAdapter<MariadbSettings> = {
  vendor: 'mariadb',
  capabilities: { blockSurvivesSession: false, onlinePartialRestore: true, logArchive: 'binlog', pointInTimeRestore: true },
  configSchema: mariadbConfigSchema as unknown as DbmsAdapter<MariadbSettings>['configSchema'],

  async connect(instance, signal) {
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
  },

  async syncLogs(instance, signal) {
    const store = instance.logStore?.('binlog');
    if (!store) throw new EbrError('logArchive', `instance ${instance.name} has no log store for binlogs`, { context: { instance: instance.name } });
    return syncInstanceBinlogs(instance, store, signal);
  },

  async restorer(instance, plan) {
    return mariadbRestorer(instance, plan);
  },
};

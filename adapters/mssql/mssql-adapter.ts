/**
 * The SQL Server 2022 adapter: T-SQL snapshot backups (SUSPEND_FOR_SNAPSHOT_BACKUP) on one session,
 * log backups into ebr's log archive, full, partial (by filegroup) and point-in-time restore. The
 * driver and everything that talks to the server load only when used.
 */
import type { DbmsAdapter } from '../../src/adapter-api.js';
import { EbrError, throwIfAborted } from '../../src/errors.js';
import { mssqlConfigSchema, type MssqlSettings } from './mssql-config.js';
import { backupPlan } from './mssql-plan.js';
import * as q from './mssql-queries.js';

export const mssqlAdapter: DbmsAdapter<MssqlSettings> = {
  vendor: 'mssql',
  capabilities: { blockSurvivesSession: false, onlinePartialRestore: false, logArchive: 'logbackup', pointInTimeRestore: true },
  configSchema: mssqlConfigSchema as unknown as DbmsAdapter<MssqlSettings>['configSchema'],

  async connect(instance, signal) {
    const s = instance.settings;
    const ctx = { instance: instance.name, phase: 'connect' };
    throwIfAborted(signal, ctx);
    const { openConnection } = await import('./mssql-connection.js');
    const { mssqlSession } = await import('./mssql-session.js');
    const conn = await openConnection(s, { instance: instance.name, requestTimeout: s.requestTimeout, signal });
    try {
      const { rows } = await conn.run(q.describeServer, 'connect', { phase: 'connect' });
      const r = rows[0] ?? {};
      const server = { spid: Number(r.spid), serverName: String(r.serverName ?? ''), productVersion: String(r.productVersion ?? ''), major: Number(r.major), edition: String(r.edition ?? '') };
      if (!(server.major >= 16)) {
        throw new EbrError('connect', `SQL Server ${server.productVersion} at ${s.server}:${s.port} has no T-SQL snapshot backup: ebr needs SQL Server 2022 (16.x) or later`, {
          hint: 'upgrade the server, or back it up with its own BACKUP DATABASE',
          context: ctx,
        });
      }
      return mssqlSession(instance, conn, server);
    } catch (err) {
      await conn.close();
      throw err;
    }
  },

  logs: {
    summary: 'SQL Server log backups (BACKUP LOG per database), taken by ebr on logSchedule or `ebr log sync`',
    async sync(instance, signal) {
      const { syncLogBackups } = await import('./mssql-logs.js');
      return syncLogBackups(instance, signal);
    },
    async list(instance) {
      const { listLogBackups } = await import('./mssql-logs.js');
      return listLogBackups(instance);
    },
  },

  async restorer(instance, plan) {
    const { mssqlRestorer } = await import('./mssql-restorer.js');
    return mssqlRestorer(instance, plan);
  },

  planBackup(instance) {
    return backupPlan(instance);
  },
};

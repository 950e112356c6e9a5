/**
 * The Oracle adapter (19c+): tablespaces as spaces, datafiles as chunks, backup mode as the window,
 * archived redo copied into ebr's log store, and user-managed recovery through SQL*Plus. This file
 * stays light: loading the config must not load the driver, so the session, logs and restorer modules
 * are imported when first used.
 */
import type { DbmsAdapter, InstanceContext } from '../../src/adapter-api.js';
import { EbrError } from '../../src/errors.js';
import { oracleConfigSchema, type OracleSettings } from './oracle-config.js';
import { backupPlan, controlFileBackupPath } from './oracle-queries.js';

const storeOf = (instance: InstanceContext<OracleSettings>) => {
  const store = instance.logStore?.('redo');
  if (!store) throw new EbrError('logArchive', `instance ${instance.name} has no log store for redo`, { hint: 'give the instance a target that keeps logs (tar or dir)', context: { instance: instance.name } });
  return store;
};

export const oracleAdapter: DbmsAdapter<OracleSettings> = {
  vendor: 'oracle',
  capabilities: { blockSurvivesSession: true, onlinePartialRestore: true, logArchive: 'redo', pointInTimeRestore: true },
  configSchema: oracleConfigSchema as unknown as DbmsAdapter<OracleSettings>['configSchema'],

  async connect(instance, signal) {
    const { openSql } = await import('./oracle-connection.js');
    const { oracleSession, readServerInfo } = await import('./oracle-session.js');
    const sql = await openSql(instance, { instance: instance.name, phase: 'connect' }, signal);
    try {
      return oracleSession(sql, instance, await readServerInfo(sql));
    } catch (err) {
      await sql.close();
      throw err;
    }
  },

  planBackup(instance, _spaces) {
    return backupPlan({
      controlFile: controlFileBackupPath(instance.name, instance.settings, instance.resolvePath),
      crashConsistent: instance.settings.crashConsistentSnapshot,
      syncLogs: instance.logStore !== undefined,
    });
  },

  async endBlock(instance, signal) {
    const { openSql } = await import('./oracle-connection.js');
    const q = await import('./oracle-queries.js');
    const sql = await openSql(instance, { instance: instance.name, phase: 'release' }, signal);
    try {
      const active = await sql.query(q.activeBackups, 'cannot read V$BACKUP', 'block', 'release', signal);
      if (active.length === 0) return 'none';
      await sql.query(q.endBackup, 'cannot end backup mode', 'block', 'release');
      return 'ended';
    } finally {
      await sql.close();
    }
  },

  logs: {
    summary: "Oracle's archived redo logs (V$ARCHIVED_LOG), copied into ebr's log store after every backup and by `ebr log sync`",
    async sync(instance, signal) {
      const { openSql } = await import('./oracle-connection.js');
      const { syncArchivedLogs } = await import('./oracle-logs.js');
      const store = storeOf(instance);
      const sql = await openSql(instance, { instance: instance.name, phase: 'log-sync' }, signal);
      try {
        return await syncArchivedLogs(sql, store, { instance: instance.name, phase: 'log-sync', host: instance.settings.connectString }, signal);
      } finally {
        await sql.close();
      }
    },
    async list(instance) {
      const { listLogs } = await import('./oracle-logs.js');
      return listLogs(storeOf(instance));
    },
  },

  async restorer(instance, plan) {
    const { oracleRestorer } = await import('./oracle-restorer.js');
    return oracleRestorer(instance, plan);
  },
};

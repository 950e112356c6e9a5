/**
 * The Db2 adapter (LUW, single partition): tablespaces, the database directory and the log path as
 * spaces, their containers and files as chunks, `SET WRITE SUSPEND` … `SET WRITE RESUME` on one CLP
 * session as the window, and split-mirror restore with db2inidb and ROLLFORWARD. Everything goes
 * through Db2's own tools (db2, db2inidb); nothing is loaded until a command needs it.
 */
import type { DbmsAdapter } from '../../src/adapter-api.js';
import { db2ConfigSchema, type Db2Settings } from './db2-config.js';
import { backupPlan } from './db2-queries.js';

export const db2Adapter: DbmsAdapter<Db2Settings> = {
  vendor: 'db2',
  // Db2 archives its own logs (LOGARCHMETH1); ROLLFORWARD reads them from there, so ebr keeps no log archive.
  capabilities: { blockSurvivesSession: true, onlinePartialRestore: false, pointInTimeRestore: true },
  configSchema: db2ConfigSchema as unknown as DbmsAdapter<Db2Settings>['configSchema'],

  async connect(instance, signal) {
    const { openSession } = await import('./db2-session.js');
    return openSession(instance, signal);
  },

  planBackup(instance) {
    return backupPlan(instance.settings);
  },

  async endBlock(instance, signal) {
    const { endSuspend } = await import('./db2-release.js');
    return endSuspend(instance, signal);
  },

  async restorer(instance, plan) {
    const { db2Restorer } = await import('./db2-restorer.js');
    return db2Restorer(instance, plan);
  },
};

/**
 * The SQLite adapter: spaces are `main` (critical) and each attached database. This module is what the
 * registry loads for every command; the session and restorer (and better-sqlite3) load when used.
 */
import type { DbmsAdapter } from '../../src/adapter-api.js';
import { noteStep, sqlStep } from '../../src/plan.js';
import { sqliteConfigSchema, type SqliteSettings } from './sqlite-config.js';

export const sqliteAdapter: DbmsAdapter<SqliteSettings> = {
  vendor: 'sqlite',
  capabilities: { blockSurvivesSession: false, onlinePartialRestore: false, pointInTimeRestore: false, restoreToBackupEnd: true },
  configSchema: sqliteConfigSchema as unknown as DbmsAdapter<SqliteSettings>['configSchema'],

  async connect(instance) {
    return (await import('./sqlite-adapter.js')).connectSqlite(instance);
  },

  drill: async (_instance, copy) => (await import('./sqlite-drill.js')).drillSqlite(copy),

  async restorer(_instance, plan) {
    return (await import('./sqlite-restorer.js')).sqliteRestorer(plan);
  },

  planBackup(instance, spaces) {
    const s = instance.settings;
    const schemas = ['main', ...Object.keys(s.attach)];
    return [
      noteStep('connect', `open ${instance.resolvePath(s.main)}`),
      sqlStep('connect', `PRAGMA busy_timeout = ${s.busyTimeoutMs}`),
      ...Object.entries(s.attach).map(([name, file]) => sqlStep('connect', `ATTACH DATABASE '${instance.resolvePath(file)}' AS "${name}"`)),
      ...schemas.map((x) => sqlStep('discover', `PRAGMA "${x}".journal_mode`)),
      ...schemas.map((x) => sqlStep('checkpoint', `PRAGMA "${x}".wal_checkpoint(PASSIVE) -- if journal_mode is wal`)),
      sqlStep('acquire', 'BEGIN IMMEDIATE'),
      noteStep('acquire', `files of ${spaces.length} space(s) frozen by the snapshot provider`),
      sqlStep('release', 'ROLLBACK'),
    ];
  },
};

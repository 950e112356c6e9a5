/**
 * The PostgreSQL adapter: non-exclusive base backups on one session, WAL through `ebr wal push|get`
 * (archive_command and restore_command), full, partial and point-in-time restore. This module is what
 * the registry loads for every command; the session, restorer and pg load when used.
 */
import type { DbmsAdapter } from '../../src/adapter-api.js';
import { postgresConfigSchema, type PostgresSettings } from './postgres-config.js';
import { mirrorBackupPlan, postgresBackupPlan } from './postgres-plan.js';

const walStore = (instance: { name: string; logStore?: (kind: string) => import('../../src/logs/log-store.js').LogStore }) => instance.logStore!('wal');

export const postgresAdapter: DbmsAdapter<PostgresSettings> = {
  vendor: 'postgres',
  capabilities: { blockSurvivesSession: false, onlinePartialRestore: false, logArchive: 'wal', pointInTimeRestore: true, restoreToBackupEnd: true, consistentAtUnblock: true, chunksMayVanish: true },
  configSchema: postgresConfigSchema as unknown as DbmsAdapter<PostgresSettings>['configSchema'],

  async connect(instance, signal) {
    return (await import('./postgres-adapter.js')).connectPostgres(instance, signal);
  },

  logs: {
    aliases: ['wal'],
    summary: "PostgreSQL's WAL archive: archive_command and restore_command call push and get",
    async push(instance, file, signal) {
      return (await import('./wal-archive.js')).pushWal(walStore(instance), file, signal, { instance: instance.name, phase: 'wal push' });
    },
    async get(instance, name, dest, signal) {
      return (await import('./wal-archive.js')).getWal(walStore(instance), name, dest, signal, { instance: instance.name, phase: 'wal get' });
    },
    lifecycle: {
      async purgeable(instance, needs, signal) {
        return (await import('./wal-lifecycle.js')).walLifecycle.purgeable(instance, needs, signal);
      },
      async check(instance, needs, signal) {
        return (await import('./wal-lifecycle.js')).walLifecycle.check(instance, needs, signal);
      },
    },
  },

  drill: async (instance, copy, signal) => (await import('./postgres-drill.js')).drillPostgres(instance, copy, signal),
  logLag: async (instance, signal) => (await import('./postgres-log-lag.js')).postgresLogLag(instance, walStore(instance), signal),

  async restorer(instance, plan) {
    return (await import('./postgres-restorer.js')).postgresRestorer(instance, plan);
  },

  planBackup: postgresBackupPlan,

  // A streaming standby as the mirror to split: the primary is never blocked.
  mirror: {
    async connect(instance, replica, signal) {
      return (await import('./postgres-mirror.js')).connectMirror(instance, replica, signal);
    },
    async endSplit(instance, replica, signal) {
      return (await import('./postgres-mirror.js')).endMirrorSplit(instance, replica, signal);
    },
    planBackup: mirrorBackupPlan,
  },
};

/**
 * The MariaDB/MySQL adapter: spaces are the schemas plus the critical `server` space; binlogs are
 * archived by `ebr binlog sync` (and after every backup). This module is what the registry loads for
 * every command; the session, restorer and mysql2 load when used.
 */
import type { DbmsAdapter } from '../../src/adapter-api.js';
import { EbrError } from '../../src/errors.js';
import { mariadbConfigSchema, type MariadbSettings } from './mariadb-config.js';
import { mariadbBackupPlan, mirrorBackupPlan } from './mariadb-plan.js';

const binlogStore = (instance: { name: string; logStore?: (kind: string) => import('../../src/logs/log-store.js').LogStore }) => {
  const store = instance.logStore?.('binlog');
  if (!store) throw new EbrError('logArchive', `instance ${instance.name} has no log store for binlogs`, { context: { instance: instance.name } });
  return store;
};
const time = (s?: number) => (s ? new Date(s * 1000).toISOString().replace('.000Z', 'Z') : '');

export const mariadbAdapter: DbmsAdapter<MariadbSettings> = {
  vendor: 'mariadb',
  capabilities: { blockSurvivesSession: false, onlinePartialRestore: true, logArchive: 'binlog', pointInTimeRestore: true, restoreToBackupEnd: true },
  configSchema: mariadbConfigSchema as unknown as DbmsAdapter<MariadbSettings>['configSchema'],

  async connect(instance, signal) {
    return (await import('./mariadb-adapter.js')).connectMariadb(instance, signal);
  },

  logs: {
    aliases: ['binlog'],
    summary: 'the MariaDB/MySQL binlog archive that point-in-time restores replay: sync closes the current binlog (FLUSH BINARY LOGS) and archives every closed one',
    async sync(instance, signal) {
      return (await import('./mariadb-binlogs.js')).syncInstanceBinlogs(instance, binlogStore(instance), signal);
    },
    async list(instance, signal) {
      const ranges = await (await import('./binlog-sync.js')).archivedRanges(binlogStore(instance), signal);
      return {
        columns: ['BINLOG', 'BYTES', 'CREATED', 'LAST EVENT', 'TRANSACTIONS', 'GTID AT START', 'GTID AT END'],
        rows: ranges.map((r) => [r.name, r.size, time(r.createdEpoch), time(r.lastEventEpoch), r.transactions, r.gtidStateAtStart ?? '', r.gtidStateAtEnd ?? '']),
        json: ranges,
      };
    },
    lifecycle: {
      async purgeable(instance, needs, signal) {
        return (await import('./binlog-lifecycle.js')).binlogLifecycle.purgeable(instance, needs, signal);
      },
      async check(instance, needs, signal) {
        return (await import('./binlog-lifecycle.js')).binlogLifecycle.check(instance, needs, signal);
      },
    },
  },

  drill: async (instance, copy, signal) => (await import('./mariadb-drill.js')).drillMariadb(instance, copy, signal),
  logLag: async (instance, signal) => (await import('./mariadb-log-lag.js')).mariadbLogLag(instance, binlogStore(instance), signal),

  async restorer(instance, plan) {
    return (await import('./mariadb-restorer.js')).mariadbRestorer(instance, plan);
  },

  planBackup: mariadbBackupPlan,

  // A replica as the mirror to split: its SQL thread stops while its files are frozen; the primary is never blocked.
  mirror: {
    async connect(instance, replica, signal) {
      return (await import('./mariadb-mirror.js')).connectMirror(instance, replica, signal);
    },
    async endSplit(instance, replica, signal) {
      return (await import('./mariadb-mirror.js')).endMirrorSplit(instance, replica, signal);
    },
    planBackup: mirrorBackupPlan,
  },
};

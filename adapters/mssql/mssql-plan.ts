/**
 * What a backup sends, phase by phase, for `--dry-run` and for the tests that compare it with what a
 * server received. The session builds its statements from the same functions, in the same order.
 */
import path from 'node:path';
import type { InstanceContext, PlanStep } from '../../src/adapter-api.js';
import type { MssqlSettings } from './mssql-config.js';
import * as q from './mssql-queries.js';

export const bkmPathOf = (instance: InstanceContext<MssqlSettings>) => q.bkmFile(instance.resolvePath(instance.settings.backupDir), instance.name, instance.settings.databases);

export function backupPlan(instance: InstanceContext<MssqlSettings>): PlanStep[] {
  const dbs = instance.settings.databases;
  const bkm = bkmPathOf(instance);
  const sql = (phase: string, text: string): PlanStep => ({ phase, kind: 'sql', text });
  return [
    sql('connect', q.describeServer),
    sql('connect', q.preflight(dbs)),
    ...dbs.map((db) => sql('discover', q.databaseFiles(db))),
    ...dbs.map((db) => sql('checkpoint', q.checkpoint(db))),
    sql('acquire', q.suspendOn(dbs)),
    sql('acquire', q.suspendStatus(dbs)),
    { phase: 'acquire', kind: 'note', text: `write I/O of ${dbs.join(', ')} is frozen until the BACKUP below; the snapshot is taken now` },
    sql('release', q.backupMetadata(dbs, bkm, instance.name)),
    { phase: 'release', kind: 'note', text: `if the snapshot failed or the backup was cancelled, this is sent instead and nothing is recorded: ${q.suspendOff(dbs)}` },
    sql('release', q.lastFullBackups(dbs)),
    { phase: 'release', kind: 'read', text: bkm },
    { phase: 'release', kind: 'write', text: `remove ${bkm} (kept in the archive's meta/${path.basename(metaBkmName)})` },
  ];
}

/** The name of the .bkm in the archive's meta/ directory. */
export const metaBkmName = 'metadata.bkm';

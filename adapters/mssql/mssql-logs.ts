/**
 * Log backups: `BACKUP LOG` per database into mssql.backupDir, then into ebr's log archive with a JSON
 * sidecar (`<name>.json`) holding the LSN range msdb recorded, so a restore can order them and find
 * gaps without a server. Run by `ebr log sync` and on logSchedule.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { InstanceContext, LogListing, LogSyncResult } from '../../src/adapter-api.js';
import { EbrError } from '../../src/errors.js';
import type { LogStore } from '../../src/logs/log-store.js';
import type { MssqlSettings } from './mssql-config.js';
import { openConnection } from './mssql-connection.js';
import * as q from './mssql-queries.js';
import { toIso } from './mssql-session.js';

export const logKind = 'logbackup';

export interface LogBackupEntry {
  database: string;
  name: string;
  firstLsn: string;
  lastLsn: string;
  databaseBackupLsn: string;
  startedAt: string;
  finishedAt: string;
}

export function storeOf(instance: InstanceContext<MssqlSettings>): LogStore {
  const store = instance.logStore?.(logKind);
  if (!store) throw new EbrError('logArchive', `instance ${instance.name} has no log archive for log backups`, { hint: 'use a target that keeps logs (dir, tar, s3, vtape)', context: { instance: instance.name } });
  return store;
}

export async function syncLogBackups(instance: InstanceContext<MssqlSettings>, signal: AbortSignal): Promise<LogSyncResult> {
  const s = instance.settings;
  const store = storeOf(instance);
  const conn = await openConnection(s, { instance: instance.name, requestTimeout: s.requestTimeout, signal });
  const stored: string[] = [];
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'ebr-mssql-log-'));
  try {
    for (const db of s.databases) {
      if (signal.aborted) break;
      const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('.', '');
      const name = `${q.safeName(db)}.${stamp}.trn`;
      const file = path.join(instance.resolvePath(s.backupDir), `ebr-${q.safeName(instance.name)}-${name}`);
      await conn.run(q.backupLog(db, file, instance.name), 'logArchive', { phase: 'log sync', database: db });
      try {
        const { rows } = await conn.run(q.lastLogBackup(db), 'logArchive', { phase: 'log sync', database: db });
        const r = rows[0];
        if (!r) throw new EbrError('logArchive', `BACKUP LOG ${db} returned but msdb.dbo.backupset lists no log backup of it`, { hint: 'read the server error log for the BACKUP LOG messages', context: { instance: instance.name, database: db } });
        const entry: LogBackupEntry = {
          database: db,
          name,
          firstLsn: String(r.first_lsn),
          lastLsn: String(r.last_lsn),
          databaseBackupLsn: String(r.database_backup_lsn),
          startedAt: toIso(r.backup_start_date),
          finishedAt: toIso(r.backup_finish_date),
        };
        await store.put(name, file, signal);
        const side = path.join(tmp, `${name}.json`);
        await writeFile(side, `${JSON.stringify(entry, null, 2)}\n`);
        // The sidecar goes last: a log backup without one is found by the next sync's gap check, never half-used.
        await store.put(`${name}.json`, side, signal);
        stored.push(name);
      } finally {
        await rm(file, { force: true });
      }
    }
  } finally {
    await conn.close();
    await rm(tmp, { recursive: true, force: true });
  }
  const entries = await readLogIndex(store);
  return { stored, present: [], gaps: gapsOf(entries) };
}

/** Every log backup the archive holds, per database in LSN order. */
export async function readLogIndex(store: LogStore): Promise<LogBackupEntry[]> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'ebr-mssql-idx-'));
  try {
    const out: LogBackupEntry[] = [];
    for (const f of await store.list()) {
      if (!f.name.endsWith('.trn.json')) continue;
      const dest = path.join(tmp, f.name);
      if (!(await store.get(f.name, dest))) continue;
      out.push(JSON.parse(await readFile(dest, 'utf8')) as LogBackupEntry);
    }
    return out.sort((a, b) => a.database.localeCompare(b.database) || cmpLsn(a.firstLsn, b.firstLsn));
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

export const cmpLsn = (a: string, b: string) => {
  const x = BigInt(a || '0');
  const y = BigInt(b || '0');
  return x < y ? -1 : x > y ? 1 : 0;
};

/** A log chain is unbroken when each backup starts where the one before ended. */
export function gapsOf(entries: LogBackupEntry[]): string[] {
  const gaps: string[] = [];
  for (let i = 1; i < entries.length; i++) {
    const a = entries[i - 1]!;
    const b = entries[i]!;
    if (a.database === b.database && cmpLsn(a.lastLsn, b.firstLsn) !== 0) gaps.push(`${b.database}: LSN ${a.lastLsn} to ${b.firstLsn} (between ${a.name} and ${b.name})`);
  }
  return gaps;
}

export async function listLogBackups(instance: InstanceContext<MssqlSettings>): Promise<LogListing> {
  const entries = await readLogIndex(storeOf(instance));
  return {
    columns: ['database', 'log backup', 'first LSN', 'last LSN', 'finished'],
    rows: entries.map((e) => [e.database, e.name, e.firstLsn, e.lastLsn, e.finishedAt]),
    json: entries,
  };
}

/**
 * The SQL Server session: one connection from discovery to release. The window is a T-SQL snapshot
 * backup — SUSPEND_FOR_SNAPSHOT_BACKUP = ON freezes write I/O of the databases, the gate takes the
 * snapshot, and BACKUP … WITH METADATA_ONLY on the same session records the backup in msdb, writes the
 * .bkm file and ends the freeze. The freeze also ends when the session does, so a session lost inside
 * the window fails the backup (lost()) instead of keeping a snapshot taken while writes went on.
 */
import { readFile, rm } from 'node:fs/promises';
import type { BlockToken, DbmsSession, InstanceContext, UnblockOutcome } from '../../src/adapter-api.js';
import { EbrError, throwIfAborted } from '../../src/errors.js';
import type { BackupMeta, Space } from '../../src/model.js';
import type { MssqlSettings } from './mssql-config.js';
import type { MssqlConnection } from './mssql-connection.js';
import { spacesOf, type FileRow } from './mssql-discovery.js';
import { grantFor, whereOf } from './mssql-errors.js';
import { bkmPathOf, metaBkmName } from './mssql-plan.js';
import * as q from './mssql-queries.js';

export interface ServerInfo {
  spid: number;
  serverName: string;
  productVersion: string;
  major: number;
  edition: string;
}

export function mssqlSession(instance: InstanceContext<MssqlSettings>, conn: MssqlConnection, server: ServerInfo): DbmsSession {
  const s = instance.settings;
  const dbs = s.databases;
  const ctx = { instance: instance.name };
  const where = whereOf(s);
  let blockSignal: AbortSignal | undefined;

  const endFreeze = async () => {
    if (!conn.lost()) await conn.run(q.suspendOff(dbs), 'block', { phase: 'release' });
  };

  return {
    async describe() {
      return { ...server, host: where, databases: dbs };
    },

    async preflight() {
      const { rows } = await conn.run(q.preflight(dbs), 'connect', { phase: 'preflight' });
      const fail = (message: string, hint: string, extra: Record<string, unknown> = {}) => new EbrError('connect', message, { hint, context: { ...ctx, phase: 'preflight', host: where, ...extra } });
      for (const db of dbs) {
        const r = rows.find((x) => String(x.name).toLowerCase() === db.toLowerCase());
        if (!r) throw fail(`database ${db} does not exist on ${where} (or login ${s.user} may not see it)`, `fix mssql.databases, or grant ${s.user} access to ${db}`, { database: db });
        if (r.state_desc !== 'ONLINE') throw fail(`database ${db} on ${where} is ${String(r.state_desc)}, not ONLINE`, `bring it online (ALTER DATABASE [${db}] SET ONLINE) or leave it out of mssql.databases`, { database: db });
        if (!truthy(r.sysadmin) && !(truthy(r.canBackup) && truthy(r.alterAnyDatabase))) {
          const statement = q.suspendOn(dbs);
          throw fail(`login ${s.user} may not run \`${statement}\` on ${where} (database ${db}: BACKUP DATABASE ${truthy(r.canBackup) ? 'granted' : 'missing'}, ALTER ANY DATABASE ${truthy(r.alterAnyDatabase) ? 'granted' : 'missing'})`, `give ${s.user} ${grantFor(statement)}: ALTER SERVER ROLE sysadmin ADD MEMBER [${s.user}], or in ${db}: ALTER ROLE db_backupoperator ADD MEMBER <its user>, and GRANT ALTER ANY DATABASE TO [${s.user}]`, { database: db, statement });
        }
        if (s.requireFullRecovery && r.recovery_model_desc !== 'FULL') {
          throw fail(`database ${db} on ${where} uses the ${String(r.recovery_model_desc)} recovery model: without log backups it cannot be rolled forward`, `ALTER DATABASE [${db}] SET RECOVERY FULL (then take a backup), or set mssql.requireFullRecovery: false`, { database: db });
        }
      }
    },

    async discover(signal) {
      const spaces: Space[] = [];
      for (const db of dbs) {
        throwIfAborted(signal, { ...ctx, phase: 'discover' });
        const { rows } = await conn.run(q.databaseFiles(db), 'discover', { phase: 'discover', database: db });
        spaces.push(...(await spacesOf(db, rows as unknown as FileRow[], ctx)));
      }
      return spaces;
    },

    async checkpoint(signal) {
      // Fewer dirty pages to flush when the freeze starts: the window stays short.
      for (const db of dbs) {
        throwIfAborted(signal, { ...ctx, phase: 'checkpoint' });
        await conn.run(q.checkpoint(db), 'block', { phase: 'checkpoint', database: db });
      }
    },

    async block(signal): Promise<BlockToken> {
      throwIfAborted(signal, { ...ctx, phase: 'acquire' });
      blockSignal = signal;
      await conn.run(q.suspendOn(dbs), 'block', { phase: 'acquire' });
      const blockedAt = Date.now();
      try {
        const { rows } = await conn.run(q.suspendStatus(dbs), 'block', { phase: 'acquire' });
        const notSuspended = dbs.filter((_, i) => Number(rows[0]?.[`s${i}`]) !== 1);
        if (notSuspended.length) {
          throw new EbrError('block', `SQL Server at ${where} accepted \`${q.suspendOn(dbs)}\` but ${notSuspended.join(', ')} ${notSuspended.length > 1 ? 'are' : 'is'} not suspended`, {
            hint: 'another session may have ended the freeze; check sys.dm_server_suspend_status and the server error log, then run the backup again',
            context: { ...ctx, phase: 'acquire', host: where },
          });
        }
      } catch (err) {
        // The gate unblocks only after block returned: end the freeze here rather than leave writes frozen.
        await endFreeze().catch(() => undefined);
        throw err;
      }
      return { blockedAt, details: { databases: dbs, spid: server.spid, form: dbs.length > 1 ? 'group' : 'database' } };
    },

    async unblock(token: BlockToken, outcome?: UnblockOutcome): Promise<BackupMeta> {
      const died = conn.lost();
      if (died) {
        throw new EbrError('block', `the SQL Server session at ${where} ended inside the window: ${died.message}; the freeze ended with it, so the snapshot may hold writes made after it`, {
          hint: 'nothing was recorded in msdb and the snapshot is discarded; check the server error log for why the connection ended and run the backup again',
          context: { ...ctx, phase: 'release', host: where },
          cause: died,
        });
      }
      if (outcome?.failed !== undefined || blockSignal?.aborted) {
        // No snapshot to record: end the freeze without a backup, so msdb never lists one that does not exist.
        await endFreeze();
        return { details: { released: 'without backup' } };
      }
      const bkm = bkmPathOf(instance);
      try {
        await conn.run(q.backupMetadata(dbs, bkm, instance.name), 'block', { phase: 'release' });
      } catch (err) {
        // BACKUP failed, so the freeze may still be on: end it before reporting.
        await endFreeze().catch((e: unknown) => {
          if (err instanceof EbrError) err.releaseError = e;
        });
        throw err;
      }
      const { rows } = await conn.run(q.lastFullBackups(dbs), 'block', { phase: 'release' });
      let file: Buffer;
      try {
        file = await readFile(bkm);
      } catch (err) {
        throw new EbrError('block', `SQL Server wrote the backup metadata to ${bkm} but ebr cannot read it: ${(err as Error).message}`, {
          hint: 'mssql.backupDir must be a directory on this host that the SQL Server service account writes and the user running ebr reads',
          context: { ...ctx, phase: 'release', path: bkm },
          cause: err,
        });
      }
      await rm(bkm, { force: true });
      const sets = rows.map((r) => ({
        database: String(r.database_name),
        firstLsn: String(r.first_lsn),
        lastLsn: String(r.last_lsn),
        checkpointLsn: String(r.checkpoint_lsn),
        databaseBackupLsn: String(r.database_backup_lsn),
        finishedAt: toIso(r.backup_finish_date),
      }));
      for (const db of dbs) {
        if (!sets.some((x) => x.database.toLowerCase() === db.toLowerCase())) {
          throw new EbrError('block', `BACKUP … WITH METADATA_ONLY returned, but msdb.dbo.backupset has no backup of ${db}`, {
            hint: 'read the server error log for the BACKUP messages; the snapshot is not usable without its msdb record and .bkm',
            context: { ...ctx, phase: 'release', host: where, database: db },
          });
        }
      }
      const first = sets[0];
      return {
        files: { [metaBkmName]: file },
        ...(dbs.length === 1 && first ? { logStart: first.firstLsn, logEnd: first.lastLsn } : {}),
        details: { databases: dbs, group: dbs.length > 1, backupSets: sets, server: server.serverName, productVersion: server.productVersion, blockedAt: token.blockedAt },
      };
    },

    lost: () => conn.lost(),

    async [Symbol.asyncDispose]() {
      await conn.close();
    },
  };
}

const truthy = (v: unknown) => v === true || v === 1 || v === '1';

export function toIso(v: unknown): string {
  const d = v instanceof Date ? v : new Date(String(v));
  return Number.isNaN(d.getTime()) ? String(v) : d.toISOString();
}

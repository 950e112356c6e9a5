/**
 * The PostgreSQL session: one dedicated `pg.Client` from discovery to release. The window is a
 * non-exclusive base backup — `pg_backup_start` on this session, the snapshot, `pg_backup_stop` on the
 * same session. Writers are never held. If the session dies, the server aborts the backup by itself,
 * which is why ebr never needs a watchdog for PostgreSQL.
 */
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import type { BlockToken, DbmsSession, InstanceContext } from '../../src/adapter-api.js';
import { EbrError, throwIfAborted } from '../../src/errors.js';
import type { BackupMeta } from '../../src/model.js';
import { walCommand } from './ebr-command.js';
import type { PostgresSettings } from './postgres-config.js';
import { queryError } from './postgres-errors.js';
import { discoverLayout, type ClusterLayout } from './postgres-layout.js';
import * as q from './postgres-queries.js';
import { parseLabel, segmentOf, segmentsBetween, storeOwnSegments, waitForArchived } from './postgres-wal.js';

export interface ServerInfo {
  version: string;
  version_num: number;
  data_directory: string;
  wal_segment_size: string;
  system_identifier: string;
  catalog_version: number;
  timeline: number;
  in_recovery: boolean;
}

export function postgresSession(client: pg.Client, instance: InstanceContext<PostgresSettings>, server: ServerInfo, lost: () => Error | undefined): DbmsSession {
  const ctx = { instance: instance.name };
  const walSegmentSize = Number(server.wal_segment_size);
  const query = async <R extends pg.QueryResultRow>(sql: string, params: unknown[], what: string, code: 'discover' | 'block' | 'connect' = 'discover', phase?: string) => {
    const died = lost();
    if (died) throw sessionLost(died, phase);
    try {
      return (await client.query<R>(sql, params)).rows;
    } catch (err) {
      const gone = lost();
      if (gone) throw sessionLost(gone, phase);
      throw queryError(err, code, what, { ...ctx, ...(phase ? { phase } : {}) });
    }
  };
  const sessionLost = (err: Error, phase?: string) =>
    new EbrError('block', `the PostgreSQL session of the backup was lost: ${err.message}`, {
      hint: 'the server aborts a base backup when its session dies, so nothing is left behind; check the server log for why the connection ended and run the backup again',
      context: { ...ctx, ...(phase ? { phase } : {}) },
      cause: err,
    });

  /** Databases, tablespaces and where the data directory is, from the server. */
  const readLayout = async (phase: string): Promise<ClusterLayout> => {
    const dbs = await query<{ oid: string; datname: string; template: boolean }>(q.databases, [], 'cannot list the databases', 'discover', phase);
    const tss = await query<{ oid: string; spcname: string; location: string }>(q.tablespaces, [], 'cannot list the tablespaces', 'discover', phase);
    const [files] = await query<{ log_directory: string | null }>(q.configFiles, [], 'cannot read the file settings', 'discover', phase);
    const logDir = files?.log_directory;
    return {
      dataDirectory: server.data_directory,
      tablespaceDir: `PG_${Math.floor(server.version_num / 10000)}_${server.catalog_version}`,
      databases: dbs.map((d) => ({ oid: Number(d.oid), name: d.datname, template: d.template })),
      tablespaces: tss.map((t) => ({ oid: Number(t.oid), name: t.spcname, location: t.location ?? '' })),
      ...(logDir && !path.isAbsolute(logDir) ? { logDirectory: logDir } : {}),
    };
  };
  const walkCluster = async (layout: ClusterLayout, signal: AbortSignal, phase: string) => {
    try {
      return await discoverLayout(layout, instance.name, signal);
    } catch (err) {
      if (err instanceof EbrError) throw err;
      throw new EbrError('discover', `cannot read the data directory ${server.data_directory}: ${(err as Error).message}`, {
        hint: 'run ebr on the database host as root or as the postgres OS user',
        context: { ...ctx, phase, path: (err as NodeJS.ErrnoException).path },
        cause: err,
      });
    }
  };

  return {
    async describe() {
      return {
        version: server.version,
        versionNum: server.version_num,
        systemIdentifier: server.system_identifier,
        catalogVersion: server.catalog_version,
        dataDirectory: server.data_directory,
        walSegmentSize,
        timeline: server.timeline,
        inRecovery: server.in_recovery,
      };
    },

    async preflight() {
      const [s] = await query<{
        archive_mode: string;
        archive_command: string;
        archive_library: string;
        wal_level: string;
        superuser: boolean;
        can_start: boolean;
        can_stop: boolean;
      }>(q.archiveSettings, [], 'cannot read the archive settings', 'connect', 'preflight');
      const want = `archive_command = '${walCommand('push', instance.name, instance.configFile, ['%p']).replace(/'/g, "''")}'`;
      const fail = (message: string, hint: string) => new EbrError('logArchive', message, { hint, context: { ...ctx, phase: 'preflight' } });
      if (!s!.superuser && !(s!.can_start && s!.can_stop)) {
        throw new EbrError('connect', `user ${instance.settings.user} may not run pg_backup_start/pg_backup_stop`, {
          hint: `connect as a superuser, or GRANT EXECUTE ON FUNCTION pg_backup_start, pg_backup_stop TO ${instance.settings.user} and GRANT pg_read_all_settings, pg_checkpoint TO ${instance.settings.user}`,
          context: { ...ctx, phase: 'preflight' },
        });
      }
      if (s!.wal_level === 'minimal') throw fail('wal_level is minimal: the WAL holds too little to restore a base backup', "set wal_level = replica in postgresql.conf and restart PostgreSQL");
      if (s!.archive_mode === 'off') {
        throw fail(`archive_mode is off on ${instance.name}: without archived WAL a backup cannot be restored`, `set in postgresql.conf, then restart PostgreSQL: archive_mode = on and ${want}`);
      }
      if (s!.archive_library) {
        throw fail(`archive_library is set to ${s!.archive_library}, so the server ignores archive_command and WAL does not reach ebr`, `set archive_library = '' and ${want}, then reload PostgreSQL`);
      }
      const cmd = s!.archive_command;
      if (!/\bwal\s+push\b/.test(cmd) || !cmd.includes('%p')) {
        throw fail(`archive_command does not call \`ebr wal push\` (it is ${JSON.stringify(cmd)}), so WAL does not reach ebr's log archive`, `set in postgresql.conf, then reload PostgreSQL (SELECT pg_reload_conf()): ${want}`);
      }
      const named = /--instance[=\s]+'?([^'\s]+)'?/.exec(cmd)?.[1];
      if (named !== undefined && named !== instance.name) {
        throw fail(`archive_command pushes WAL for instance ${named}, not ${instance.name}`, `set in postgresql.conf, then reload PostgreSQL: ${want}`);
      }
      if (!server.data_directory) {
        throw new EbrError('connect', `user ${instance.settings.user} may not read data_directory`, {
          hint: `GRANT pg_read_all_settings TO ${instance.settings.user}, or connect as a superuser`,
          context: { ...ctx, phase: 'preflight' },
        });
      }
      try {
        await access(path.join(server.data_directory, 'global', 'pg_control'), constants.R_OK);
      } catch (err) {
        throw new EbrError('connect', `cannot read the data directory ${server.data_directory}: ${(err as Error).message}`, {
          hint: 'run ebr on the database host as root or as the postgres OS user',
          context: { ...ctx, phase: 'preflight', path: server.data_directory },
          cause: err,
        });
      }
    },

    async discover(signal) {
      return walkCluster(await readLayout('discover'), signal, 'discover');
    },

    async checkpoint(signal) {
      throwIfAborted(signal, ctx);
      try {
        await client.query(q.checkpoint);
      } catch (err) {
        // Without pg_checkpoint the fast pg_backup_start still checkpoints, only inside the window.
        if ((err as { code?: string }).code !== '42501') throw queryError(err, 'block', 'CHECKPOINT failed', { ...ctx, phase: 'checkpoint' });
      }
    },

    async block(signal): Promise<BlockToken> {
      throwIfAborted(signal, { ...ctx, phase: 'acquire' });
      const label = `ebr ${instance.name} ${new Date().toISOString()}`.replace(/[^\x20-\x7e]/g, '?');
      const [row] = await query<{ lsn: string }>(q.backupStart, [label], 'pg_backup_start failed', 'block', 'acquire');
      const blockedAt = Date.now();
      // The files that belong to the backup are those present now, after the start checkpoint (as pg_basebackup lists them):
      // one created after discovery but before the start would be missed, and WAL replay begins after its creation.
      try {
        const spaces = await walkCluster(await readLayout('acquire'), signal, 'acquire');
        return { blockedAt, details: { startLsn: row!.lsn, label }, spaces };
      } catch (err) {
        // The gate unblocks only after block returned: end the backup here rather than leave it to the session's end.
        await client.query(q.backupStop).catch(() => undefined);
        throw err;
      }
    },

    async unblock(token): Promise<BackupMeta> {
      const [row] = await query<{ lsn: string; labelfile: string; spcmapfile: string | null }>(q.backupStop, [], 'pg_backup_stop failed', 'block', 'release');
      const label = parseLabel(row!.labelfile);
      const timeline = label.timeline ?? server.timeline;
      const files: Record<string, string> = { backup_label: row!.labelfile };
      if (row!.spcmapfile) files.tablespace_map = row!.spcmapfile;
      return {
        files,
        logStart: label.startLsn ?? String(token.details?.startLsn ?? ''),
        logEnd: row!.lsn,
        timeline,
        details: {
          label: label.label,
          startWalFile: label.startWalFile ?? segmentOf(label.startLsn ?? row!.lsn, timeline, walSegmentSize),
          stopWalFile: segmentOf(row!.lsn, timeline, walSegmentSize),
          checkpointLsn: label.checkpointLsn,
          stoppedAt: new Date().toISOString(),
          walSegmentSize,
          dataDirectory: server.data_directory,
          systemIdentifier: server.system_identifier,
        },
      };
    },

    async afterRelease(meta, signal) {
      const stop = String(meta.details?.stopWalFile ?? '');
      const start = String(meta.details?.startWalFile ?? stop);
      const store = instance.logStore?.('wal');
      const context = { ...ctx, phase: 'after-release' };
      // On a primary pg_backup_stop has switched to a new segment, so every segment of the backup is
      // finished in pg_wal: ebr stores start…stop itself rather than wait for the archiver's process per
      // segment (a standby's stop segment may still be written to, so there only the archiver's copy counts).
      const segments = store && !server.in_recovery ? segmentsBetween(start, stop, walSegmentSize) : undefined;
      if (store && segments) await storeOwnSegments({ segments, store, dataDirectory: server.data_directory, walSegmentSize, signal, context });
      // The backup is complete once every segment it needs is in the log archive, whoever stored it.
      for (const segment of segments ?? [stop]) {
        await waitForArchived({
          segment,
          store,
          dataDirectory: server.data_directory,
          timeoutMs: instance.settings.archiveWaitMs,
          archiver: async () => (await query<Record<string, unknown>>(q.archiverStatus, [], 'cannot read pg_stat_archiver', 'discover', 'after-release'))[0] ?? {},
          signal,
          context,
          hint: `check the server log for archive_command failures; archive_command must be: ${walCommand('push', instance.name, instance.configFile, ['%p'])}`,
        });
      }
    },

    async [Symbol.asyncDispose]() {
      await client.end().catch(() => undefined);
    },
  };
}

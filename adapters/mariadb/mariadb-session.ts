/**
 * The MariaDB/MySQL session: one held connection that discovers, quiesces DDL before the window,
 * holds commits inside it, reads the binlog position there, and releases on the same connection.
 *
 * MariaDB: START, FLUSH, BLOCK_DDL before the window; BLOCK_COMMIT opens it; END closes it.
 * MySQL 8: LOCK INSTANCE FOR BACKUP before; log_status read inside; UNLOCK INSTANCE after.
 * If the connection drops, the server releases the stage or lock by itself, so a dead ebr never
 * leaves writers blocked; a window whose connection died is reported as failed, never as a backup.
 */
import { open } from 'node:fs/promises';
import path from 'node:path';
import type { BlockToken, DbmsSession } from '../../src/adapter-api.js';
import { EbrError, throwIfAborted } from '../../src/errors.js';
import type { BackupMeta, Space } from '../../src/model.js';
import type { Row, Sql } from './mariadb-connection.js';
import { binlogChunks, catalogOf, discoverSpaces, serverSpace } from './mariadb-discovery.js';
import { isConnectionLost, sqlError } from './mariadb-errors.js';
import { layoutOf, type ServerSettings } from './mariadb-layout.js';
import { settingsQuery, type BinlogPosition, type Dialect, type ServerVersion } from './mariadb-queries.js';

export interface SessionOptions {
  instance: string;
  version: ServerVersion;
  dialect: Dialect;
  lockWaitTimeoutS: number;
  blockTimeoutMs: number;
  requireBinlog: boolean;
  /** Work after release (archiving the binlogs the backup needs), when the workflow gave a log archive. */
  afterRelease?: (sql: Sql, meta: BackupMeta, signal: AbortSignal) => Promise<void>;
}

/** What the server handed back at the close of the window, as stored in meta/ and the manifest. */
export interface BackupPoint extends BinlogPosition {
  flavor: string;
  version: string;
  /** Server variables restore needs to start a server on the restored files. */
  settings: ServerSettings;
  /**
   * A split mirror's backup (mariadb-mirror.ts): the files are a replica's, and file/position/gtid are
   * its primary's binlog coordinates the replica had executed when it was split.
   */
  mirrorOf?: { primary: string; primaryServerId: string; replicaServerId: string };
  /**
   * The binlog the frozen server itself was writing, when that is not the position's binlog (a replica
   * with its own binlog): crash recovery of the restored files reads it as the transaction log.
   */
  recoveryBinlog?: { file: string; position?: number };
}

export function mariadbSession(sql: Sql, o: SessionOptions): DbmsSession {
  const ctx = { instance: o.instance };
  let settings: ServerSettings | undefined;
  /** Statements of checkpoint/block ran and their release has not: the server holds something for us. */
  let held = false;
  /** What the last discovery listed: the spaces, and the binlogs they hold (the backup freezes those). */
  let discovered: { spaces: Space[]; binlogs: Set<string> } | undefined;

  const run = async (statement: string, phase: string, signal?: AbortSignal): Promise<Row[]> => {
    throwIfAborted(signal, { ...ctx, phase });
    // A cancelled wait must not stay queued on the server: dropping the connection ends it there too.
    const onAbort = () => sql.destroy();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await sql.query(statement);
    } catch (err) {
      throwIfAborted(signal, { ...ctx, phase });
      throw sqlError(err, phase === 'acquire' || phase === 'checkpoint' ? 'block' : phase === 'discover' ? 'discover' : 'block', `${statement} failed`, { ...ctx, phase });
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  };

  const loadSettings = async (signal?: AbortSignal): Promise<ServerSettings> => {
    if (!settings) {
      const rows = await run(settingsQuery(o.dialect.settings), 'discover', signal);
      settings = Object.fromEntries(rows.map((r) => [String(r.Variable_name), String(r.Value ?? '')]));
    }
    return settings;
  };

  const release = async (): Promise<void> => {
    if (!held) return;
    held = false;
    for (const s of o.dialect.unblock) await sql.query(s);
    for (const s of o.dialect.afterWindow) await sql.query(s);
  };

  /**
   * A binlog started since discovery (rotation by size, or FLUSH BINARY LOGS from another session, which
   * even BLOCK_COMMIT lets through) joins the server space, so the snapshot freezes it and the stream
   * takes it. Read inside the window; one SHOW MASTER STATUS when nothing rotated.
   */
  const binlogsSinceDiscovery = async (signal: AbortSignal): Promise<Space[] | undefined> => {
    if (!discovered) return undefined;
    const [status] = await run(o.dialect.currentBinlog, 'acquire', signal);
    if (!status?.File || discovered.binlogs.has(String(status.File))) return undefined;
    const names = (await run('SHOW BINARY LOGS', 'acquire', signal)).map((r) => String(r.Log_name)).filter((n) => !discovered!.binlogs.has(n));
    const added = await binlogChunks(layoutOf(settings ?? {}), names);
    for (const c of added) discovered.binlogs.add(path.basename(c.path));
    discovered.spaces = discovered.spaces.map((sp) => (sp.name === serverSpace ? { ...sp, chunks: [...sp.chunks, ...added] } : sp));
    return discovered.spaces;
  };

  /**
   * After the snapshot: the binlog of the recorded position, and the one the server writes now, are
   * among the frozen ones. If not, the binlog rotated inside the window after the list was taken, and
   * the frozen files would lack the binlog their crash recovery needs (MySQL goes on committing in the
   * window, so it asks again; MariaDB reads its position here).
   */
  const assertBinlogFrozen = async (position: BinlogPosition): Promise<void> => {
    if (!discovered || !position.file) return;
    const current = o.dialect.readPositionAt === 'unblock' ? position.file : String((await sql.query(o.dialect.currentBinlog))[0]?.File ?? position.file);
    const missing = [...new Set([position.file, current])].filter((f) => !discovered!.binlogs.has(f));
    if (missing.length > 0) {
      throw new EbrError('block', `the binlog rotated to ${missing.join(', ')} while storage was frozen, after ebr had listed the binlogs; the backup would lack the binlog that crash recovery of its files needs`, {
        hint: 'something ran FLUSH BINARY LOGS (or the binlog reached max_binlog_size) during the window; run the backup again, and keep log rotation (mysqladmin flush-logs, ebr binlog sync) away from the backup time',
        context: { ...ctx, phase: 'release', member: missing[0] },
      });
    }
  };

  return {
    async describe() {
      const s = await loadSettings();
      return { flavor: o.version.flavor, version: o.version.version, connectionId: sql.threadId, settings: s };
    },

    async preflight(signal) {
      const s = await loadSettings(signal);
      if (o.requireBinlog && !/^(on|1)$/i.test(s.log_bin ?? '')) {
        throw new EbrError('config', `the binary log is off on instance ${o.instance}: no point-in-time restore would be possible`, {
          hint: 'set log_bin (and server_id) in the server\'s configuration and restart it, or set mariadb.requireBinlog: false to back up without it',
          context: { ...ctx, phase: 'preflight' },
        });
      }
      // MySQL's backup lock lets commits go on: the position log_status gives is a little before the
      // snapshot, and a replay from it must skip by GTID what the frozen files already hold.
      if (o.requireBinlog && o.version.flavor === 'mysql' && !/^on$/i.test(s.gtid_mode ?? '')) {
        throw new EbrError('config', `gtid_mode is ${s.gtid_mode || 'OFF'} on instance ${o.instance}: a point-in-time restore of a MySQL backup replays from a position taken a little before the snapshot and must skip by GTID the transactions the snapshot already holds`, {
          hint: 'set gtid_mode = ON and enforce_gtid_consistency = ON (online, in steps: OFF_PERMISSIVE, ON_PERMISSIVE, then ON), or set mariadb.requireBinlog: false to back up without point-in-time restore',
          context: { ...ctx, phase: 'preflight' },
        });
      }
    },

    async discover(signal): Promise<Space[]> {
      const s = await loadSettings(signal);
      const layout = layoutOf(s);
      const binlogOn = layout.binlogBasename !== undefined;
      const catalog = catalogOf(
        await run('SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA', 'discover', signal),
        await run(o.dialect.tablespaces, 'discover', signal),
        await run(
          "SELECT TABLE_SCHEMA AS `schema`, TABLE_NAME AS `table`, ENGINE AS engine FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND ENGINE IS NOT NULL AND TABLE_SCHEMA NOT IN ('information_schema', 'performance_schema')",
          'discover',
          signal,
        ),
        binlogOn ? await run('SHOW BINARY LOGS', 'discover', signal) : [],
      );
      const spaces = await discoverSpaces(layout, catalog, o.instance);
      discovered = binlogOn ? { spaces, binlogs: new Set(catalog.binlogs) } : undefined;
      return spaces;
    },

    async checkpoint(signal) {
      const s = await loadSettings(signal);
      for (const st of o.dialect.sessionSetup(o.lockWaitTimeoutS)) await run(st, 'checkpoint', signal);
      held = true;
      for (const st of o.dialect.checkpoint) await run(st, 'checkpoint', signal);
      // BLOCK_COMMIT fsyncs the binlog while it holds every commit; with sync_binlog=0 that can be
      // hundreds of MB of page cache. Flushing it here first leaves only the last moment's bytes inside.
      const basename = layoutOf(s).binlogBasename;
      const [status] = basename ? await run(o.dialect.currentBinlog, 'checkpoint', signal) : [];
      if (basename && status?.File) await fsyncFile(path.join(path.dirname(basename), String(status.File)));
      for (const st of o.dialect.blockTimeout(o.blockTimeoutMs)) await run(st, 'checkpoint', signal);
    },

    async block(signal): Promise<BlockToken> {
      const blockedAt = Date.now();
      held = true;
      for (const s of o.dialect.block) await run(s, 'acquire', signal);
      const position = o.dialect.readPositionAt === 'block' ? await o.dialect.readPosition((s) => run(s, 'acquire', signal)) : undefined;
      // The binlog the server writes now is the transaction log crash recovery of the frozen files needs.
      const spaces = await binlogsSinceDiscovery(signal);
      return { blockedAt, ...(position ? { details: { ...position } } : {}), ...(spaces ? { spaces } : {}) };
    },

    async unblock(token): Promise<BackupMeta> {
      if (sql.busy || sql.closed) {
        // A statement is still waiting (the gate gave up on it) or the connection is gone: dropping the
        // connection is the one release that cannot wait behind the stuck statement.
        sql.destroy();
        held = false;
        throw new EbrError('block', `the connection holding the backup lock was ${sql.busy ? 'still busy' : 'lost'} when the window closed; it was dropped, which released the lock`, {
          hint: 'the snapshot cannot be trusted and the backup is failed; look for a killed connection or a server restart, then run the backup again',
          context: { ...ctx, phase: 'release' },
        });
      }
      let position = token.details as BinlogPosition | undefined;
      try {
        // Same session as the block, or the snapshot was taken without the lock held.
        const [row] = await sql.query('SELECT CONNECTION_ID() AS id');
        if (String(row?.id) !== String(sql.threadId)) {
          throw new EbrError('block', `the session changed inside the window (connection ${sql.threadId} became ${String(row?.id)})`, {
            hint: 'the snapshot cannot be trusted; run the backup again',
            context: { ...ctx, phase: 'release' },
          });
        }
        // Commits are still held here, so the position is the snapshot's exactly.
        position ??= await o.dialect.readPosition((s) => sql.query(s));
        await assertBinlogFrozen(position);
        await release();
      } catch (err) {
        held = false;
        sql.destroy();
        if (err instanceof EbrError) throw err;
        throw sqlError(err, 'block', isConnectionLost(err) ? 'the connection holding the backup lock was lost inside the window' : 'releasing the backup lock failed', { ...ctx, phase: 'release' });
      }
      return backupMeta(position, o, settings ?? {});
    },

    async afterRelease(meta, signal) {
      if (o.afterRelease && !sql.closed) await o.afterRelease(sql, meta, signal);
    },

    async [Symbol.asyncDispose]() {
      if (held && !sql.closed && !sql.busy) await release().catch(() => undefined);
      held = false;
      if (sql.busy) sql.destroy();
      await sql.end();
    },
  };
}

/** The meta/ files and details of a backup at position p (a split mirror adds where its files came from). */
export function backupMeta(p: BinlogPosition, o: Pick<SessionOptions, 'version'>, settings: ServerSettings, extra: Pick<BackupPoint, 'mirrorOf' | 'recoveryBinlog'> = {}): BackupMeta {
  const point: BackupPoint = { ...p, flavor: o.version.flavor, version: o.version.version, settings, ...extra };
  const line = p.file ? `${p.file}\t${p.position}\t${p.gtid ?? ''}\n` : '';
  return {
    files: {
      // The same shape as mariabackup's xtrabackup_binlog_info: file, position, GTID.
      ...(line ? { binlog_position: line } : {}),
      'server.json': `${JSON.stringify(point, null, 2)}\n`,
    },
    ...(p.file ? { logStart: `${p.file}:${p.position}` } : {}),
    details: { ...point },
  };
}

/** fsync(2) flushes a file's dirty pages whichever descriptor asks; a missing or unreadable file is no error. */
async function fsyncFile(file: string): Promise<void> {
  const fh = await open(file, 'r').catch(() => undefined);
  if (!fh) return;
  try {
    await fh.sync();
  } catch {
    // best effort: BLOCK_COMMIT syncs it anyway
  } finally {
    await fh.close();
  }
}

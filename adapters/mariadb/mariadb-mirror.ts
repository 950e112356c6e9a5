/**
 * A split mirror on MariaDB: the backup runs on a replica of the instance, so the primary is never
 * blocked. Split = STOP SLAVE SQL_THREAD on the replica (its IO thread goes on fetching the primary's
 * binlog into the relay log), then BACKUP STAGE on the replica alone while its files are frozen; resync
 * = BACKUP STAGE END, then START SLAVE SQL_THREAD. The backup's position is the replica's executed
 * position in the primary's binlog (Relay_Master_Log_File / Exec_Master_Log_Pos, gtid_slave_pos): a
 * restore replays the primary's archived binlogs from there. After the split the primary closes its
 * binlog and the instance's log archive takes it (as after any backup), and with resync: wait the
 * backup ends once the replica has applied what the primary wrote meanwhile.
 *
 * What makes the frozen files a replica (relay logs, master.info, relay-log.info) is left out of the
 * backup, so a restored copy starts as a standalone server; mysql.gtid_slave_pos stays (it is a table).
 *
 * A stopped SQL thread outlives the session (it is server state), so the session says so: the gate
 * journals the split and arms the watchdog, whose release command (`ebr release`) starts it again.
 */
import path from 'node:path';
import type { BackupMeta, BlockToken, DbmsSession, InstanceContext, MirrorContext, Space } from '../../src/adapter-api.js';
import { EbrError, throwIfAborted } from '../../src/errors.js';
import { syncBinlogsAfterBackup } from './mariadb-binlogs.js';
import type { MariadbSettings } from './mariadb-config.js';
import { connectOptionsOf, openSql, type Row, type Sql } from './mariadb-connection.js';
import { serverSpace } from './mariadb-discovery.js';
import { sqlError } from './mariadb-errors.js';
import { numberOf } from './binlog-sync.js';
import { dialectFor, mirrorQueries as mq, parseVersion, type Dialect, type ServerVersion } from './mariadb-queries.js';
import { backupMeta, mariadbSession, type BackupPoint } from './mariadb-session.js';

export const whereOf = (s: MariadbSettings) => (s.socket ? s.socket : `${s.host ?? 'localhost'}:${s.port ?? 3306}`);

interface Opened {
  sql: Sql;
  version: ServerVersion;
  dialect: Dialect;
}

async function open(instance: InstanceContext<MariadbSettings>, settings: MariadbSettings, signal: AbortSignal): Promise<Opened> {
  const sql = await openSql(connectOptionsOf(settings, instance.resolvePath), { instance: instance.name, phase: 'connect' }, signal);
  try {
    const [row] = await sql.query('SELECT VERSION() AS version, @@version_comment AS comment');
    const version = parseVersion(String(row?.version ?? ''), String(row?.comment ?? ''));
    return { sql, version, dialect: dialectFor(version) };
  } catch (err) {
    await sql.end();
    throw err;
  }
}

/** A primary binlog coordinate. */
interface Coord {
  file: string;
  position: number;
}

export async function connectMirror(instance: InstanceContext<MariadbSettings>, replica: MirrorContext<MariadbSettings>, signal: AbortSignal): Promise<DbmsSession> {
  const ctx = { instance: instance.name };
  const rs = replica.settings;
  const r = await open(instance, rs, signal);
  let p: Opened;
  try {
    p = await open(instance, instance.settings, signal);
  } catch (err) {
    await r.sql.end();
    throw err;
  }
  const common = { instance: instance.name, lockWaitTimeoutS: rs.lockWaitTimeoutS, blockTimeoutMs: rs.blockTimeoutMs };
  // The replica's own binlog is optional: the primary's is the one a restore replays.
  const inner = mariadbSession(r.sql, { ...common, version: r.version, dialect: r.dialect, requireBinlog: false });
  const primaryInner = mariadbSession(p.sql, { ...common, version: p.version, dialect: p.dialect, requireBinlog: instance.settings.requireBinlog });
  const on = async (c: Sql, sql: string, params: unknown[], what: string, phase: string, sig?: AbortSignal): Promise<Row[]> => {
    throwIfAborted(sig, { ...ctx, phase });
    // A cancelled wait must not stay queued on the server: dropping the connection ends it there too.
    const onAbort = () => c.destroy();
    sig?.addEventListener('abort', onAbort, { once: true });
    try {
      return await c.query(sql, params);
    } catch (err) {
      throwIfAborted(sig, { ...ctx, phase });
      throw sqlError(err, 'block', what, { ...ctx, phase });
    } finally {
      sig?.removeEventListener('abort', onAbort);
    }
  };
  const refuse = (message: string, hint: string) => new EbrError('snapshot', message, { hint, context: { ...ctx, phase: 'preflight', replica: whereOf(rs) } });
  let replicationFiles: (file: string) => boolean = () => false;
  let identity: { primaryServerId: string; replicaServerId: string } | undefined;
  let split: (Coord & { at: number; gtid: string; serverTime: string; serverEpoch: number }) | undefined;
  let resumed: (Coord & { at: number }) | undefined;
  /** ebr's STOP SLAVE SQL_THREAD was sent and no START since: only then does this session start it. */
  let stopped = false;

  const resume = async (): Promise<void> => {
    if (!stopped) return;
    if (!r.sql.closed && !r.sql.busy) await r.sql.query(mq.start);
    // The session was dropped (a failed release drops it on purpose): start the thread on a new one.
    else await endMirrorSplit(instance, replica, AbortSignal.timeout(30_000));
    stopped = false;
  };
  const withoutReplicationFiles = (spaces: Space[]): Space[] =>
    spaces.map((sp) => (sp.name === serverSpace ? { ...sp, chunks: sp.chunks.filter((c) => !replicationFiles(c.path)) } : sp));

  return {
    blockSurvivesSession: true,

    async describe() {
      return { ...(await inner.describe()), mirrorOf: { primary: whereOf(instance.settings), ...(identity ?? {}) }, replica: whereOf(rs) };
    },

    async preflight(sig) {
      // The primary writes the binlog a restore replays: its settings are the ones that matter.
      await primaryInner.preflight!(sig);
      if (r.version.flavor !== 'mariadb') {
        throw refuse(`the replica ${whereOf(rs)} runs ${r.version.version}: a split mirror is supported on MariaDB replicas only`, 'back up the MySQL primary itself (snapshot.provider: copy, lvm, …)');
      }
      const [st] = await on(r.sql, mq.replicaStatus, [], "cannot read the replica's status (SHOW SLAVE STATUS needs REPLICATION CLIENT or SUPER)", 'preflight', sig);
      const [ri] = await on(r.sql, mq.replicaIdentity, [], "cannot read the replica's identity", 'preflight', sig);
      const [pi] = await on(p.sql, mq.primaryIdentity, [], "cannot read the primary's identity", 'preflight', sig);
      if (!st) throw refuse(`${whereOf(rs)} is not a replica: SHOW SLAVE STATUS is empty, so it mirrors nothing`, 'set snapshot.replica to a replica of the instance (CHANGE MASTER TO … on it, then START SLAVE)');
      if (String(ri!.serverId) === String(pi!.serverId)) {
        throw refuse(`the replica ${whereOf(rs)} has server_id ${String(ri!.serverId)}, the same as the primary ${whereOf(instance.settings)}`, 'snapshot.replica must name another server than the instance, each with its own server_id');
      }
      if (String(st.Slave_SQL_Running) !== 'Yes') {
        const error = Number(st.Last_SQL_Errno ?? 0) !== 0 ? `; its last error: ${String(st.Last_SQL_Error ?? st.Last_SQL_Errno)}` : '';
        throw refuse(`the SQL thread of the replica ${whereOf(rs)} is stopped already: someone else has split it${error}`, 'find who stopped it and why; start it with START SLAVE SQL_THREAD (or `ebr release` if an ebr backup left it) and run the backup again');
      }
      if (String(st.Slave_IO_Running) !== 'Yes') {
        throw refuse(`the replica ${whereOf(rs)} is not connected to its primary (IO thread: ${String(st.Slave_IO_Running)}${st.Last_IO_Error ? `, ${String(st.Last_IO_Error)}` : ''})`, "check MASTER_HOST, the replication user and the primary's network, then run the backup again");
      }
      // server_id is what MariaDB replication itself tells servers apart by: the replica's IO thread
      // reports the server_id of the server it is connected to, which must be this instance's.
      if (String(st.Master_Server_Id) !== String(pi!.serverId)) {
        throw refuse(`the replica ${whereOf(rs)} replicates from the server with server_id ${String(st.Master_Server_Id)} (${String(st.Master_Host)}:${String(st.Master_Port)}), not from the instance's primary (server_id ${String(pi!.serverId)})`, 'set snapshot.replica to a replica of this instance');
      }
      // Its executed position must name a binlog the primary has: the coordinates restore replays from.
      const binlogs = (await on(p.sql, mq.primaryBinlogs, [], "cannot list the primary's binlogs", 'preflight', sig)).map((b) => String(b.Log_name));
      if (!binlogs.includes(String(st.Relay_Master_Log_File))) {
        throw refuse(`the replica ${whereOf(rs)} has executed up to ${String(st.Relay_Master_Log_File)}:${String(st.Exec_Master_Log_Pos)}, a binlog the primary does not have (it has ${binlogs[0] ?? 'none'} … ${binlogs[binlogs.length - 1] ?? ''})`, 'the replica is far behind or mirrors another history; let it catch up or rebuild it from the primary');
      }
      const behind = st.Seconds_Behind_Master === null || st.Seconds_Behind_Master === undefined ? undefined : Number(st.Seconds_Behind_Master);
      if (behind !== undefined && behind * 1000 > replica.maxLagMs) {
        throw refuse(`the replica ${whereOf(rs)} is ${behind} s behind the primary, past snapshot.maxLagMs (${replica.maxLagMs} ms)`, 'let it catch up (or raise maxLagMs), then run the backup again');
      }
      identity = { primaryServerId: String(pi!.serverId), replicaServerId: String(ri!.serverId) };
      const vars = Object.fromEntries((await on(r.sql, mq.replicationFiles, [], "cannot read the replica's relay log settings", 'preflight', sig)).map((v) => [String(v.Variable_name), String(v.Value ?? '')]));
      replicationFiles = replicationFilesOf(vars);
    },

    async discover(sig) {
      return withoutReplicationFiles(await inner.discover(sig));
    },

    // Nothing before the split: BACKUP STAGE on the replica waits for nothing once its SQL thread stopped.
    async checkpoint() {},

    async block(sig): Promise<BlockToken> {
      const blockedAt = Date.now();
      try {
        stopped = true;
        await on(r.sql, mq.stop, [], 'STOP SLAVE SQL_THREAD on the replica failed', 'acquire', sig);
        const [st] = await on(r.sql, mq.replicaStatus, [], "cannot read the replica's position", 'acquire', sig);
        const [pt] = await on(r.sql, mq.splitPoint, [], "cannot read the replica's position", 'acquire', sig);
        split = { at: Date.now(), file: String(st!.Relay_Master_Log_File), position: Number(st!.Exec_Master_Log_Pos), gtid: String(pt!.gtid ?? ''), serverTime: String(pt!.serverTime), serverEpoch: Number(pt!.serverEpoch) };
        // The replica's data now holds exactly the primary's transactions up to split; BACKUP STAGE keeps
        // its own background work (non-transactional tables, DDL of other sessions) out of the freeze.
        await inner.checkpoint(sig);
        const token = await inner.block(sig);
        return { ...token, blockedAt, details: { ...(token.details ?? {}), splitAt: `${split.file}:${split.position}` }, ...(token.spaces ? { spaces: withoutReplicationFiles(token.spaces) } : {}) };
      } catch (err) {
        // The gate unblocks only after block returned: end the stages and resume here.
        if (!r.sql.closed && !r.sql.busy) await r.sql.query('BACKUP STAGE END').catch(() => undefined);
        await resume().catch(() => undefined);
        throw err;
      }
    },

    async unblock(token, outcome): Promise<BackupMeta> {
      let own: BackupMeta;
      try {
        own = await inner.unblock(token, outcome);
      } finally {
        // Whatever BACKUP STAGE END said, the replica goes on applying.
        try {
          const [row] = await p.sql.query(mq.primaryPosition);
          resumed = { at: Date.now(), file: String(row?.File ?? split?.file), position: Number(row?.Position ?? split?.position) };
        } catch {
          resumed = { at: Date.now(), file: split?.file ?? '', position: split?.position ?? 0 };
        }
        await resume();
      }
      const point = own.details as unknown as BackupPoint;
      const { file: ownFile, position: ownPosition } = point;
      return backupMeta(
        { file: split!.file, position: split!.position, ...(split!.gtid ? { gtid: split!.gtid } : {}), serverTime: split!.serverTime, serverEpoch: split!.serverEpoch },
        { version: r.version },
        point.settings,
        { mirrorOf: { primary: whereOf(instance.settings), ...identity! }, ...(ownFile ? { recoveryBinlog: { file: ownFile, ...(ownPosition !== undefined ? { position: ownPosition } : {}) } } : {}) },
      );
    },

    releaseCommand: () => instance.ebrArgv!(['release', '--instance', instance.name]),

    async afterRelease(meta, sig) {
      // The primary closes the binlog the backup's position is in, and the log archive takes it.
      const store = instance.logStore?.('binlog');
      if (store) await syncBinlogsAfterBackup(p.sql, p.dialect, store, meta, instance.name, sig);
      const splitMs = split && resumed ? resumed.at - split.at : undefined;
      const figures: Record<string, unknown> = { replica: whereOf(rs), resync: replica.resync, splitMs };
      if (split && resumed) {
        const sizes = new Map((await on(p.sql, mq.primaryBinlogs, [], "cannot list the primary's binlogs", 'after-release', sig)).map((b) => [String(b.Log_name), Number(b.File_size)]));
        figures.backlogBytes = binlogBytesBetween(split, resumed, sizes);
      }
      if (replica.resync === 'wait' && resumed && splitMs !== undefined) {
        const t0 = Date.now();
        const limitMs = 60_000 + 10 * splitMs;
        for (;;) {
          // One second at a time, so that a cancel is noticed.
          const [row] = await on(r.sql, mq.waitFor, [resumed.file, resumed.position, 1], 'MASTER_POS_WAIT on the replica failed', 'after-release', sig);
          const events = row?.events === null || row?.events === undefined ? null : Number(row.events);
          if (events === null) {
            throw new EbrError('snapshot', `the SQL thread of the replica ${whereOf(rs)} stopped while it caught up with the primary`, {
              hint: "the backup itself is complete but is failed so that a broken mirror is noticed; look at SHOW SLAVE STATUS (Last_SQL_Error) on the replica",
              context: { ...ctx, phase: 'after-release' },
            });
          }
          if (events >= 0) {
            if (figures.backlogEvents === undefined) figures.backlogEvents = events;
            break;
          }
          if (Date.now() - t0 > limitMs) {
            throw new EbrError('snapshot', `the replica ${whereOf(rs)} did not catch up with the primary within ${Math.round(limitMs / 1000)} s after the split`, {
              hint: "the backup itself is complete but is failed so that a lagging mirror is noticed; look at the replica's SHOW SLAVE STATUS, or set snapshot.resync: background",
              context: { ...ctx, phase: 'after-release' },
            });
          }
        }
        figures.resyncMs = Date.now() - t0;
      }
      return { mirror: figures };
    },

    async [Symbol.asyncDispose]() {
      await resume().catch(() => undefined);
      await Promise.resolve(inner[Symbol.asyncDispose]()).catch(() => undefined);
      await p.sql.end().catch(() => undefined);
    },
  };
}

/**
 * Starts the replica's SQL thread again if it is stopped: what a killed ebr leaves behind. A thread
 * that stopped on an error is not ebr's doing and is left alone (starting it would only retry the
 * failing event). Otherwise a stopped thread is taken for ebr's: the watchdog runs this only for a
 * split it journaled, and a DBA runs `ebr release` on purpose.
 */
export async function endMirrorSplit(instance: InstanceContext<MariadbSettings>, replica: MirrorContext<MariadbSettings>, signal: AbortSignal): Promise<'ended' | 'none'> {
  const context = { instance: instance.name, phase: 'release' };
  const sql = await openSql(connectOptionsOf(replica.settings, instance.resolvePath), context, signal);
  try {
    const [st] = await sql.query(mq.replicaStatus);
    if (!st || String(st.Slave_SQL_Running) === 'Yes') return 'none';
    if (Number(st.Last_SQL_Errno ?? 0) !== 0) {
      throw new EbrError('block', `the SQL thread of the replica ${whereOf(replica.settings)} stopped on an error, not by a backup: ${String(st.Last_SQL_Error ?? st.Last_SQL_Errno)}`, {
        hint: 'fix the replication error on the replica, then START SLAVE SQL_THREAD there',
        context,
      });
    }
    await sql.query(mq.start);
    return 'ended';
  } catch (err) {
    if (err instanceof EbrError) throw err;
    throw sqlError(err, 'block', `cannot start the SQL thread of the replica ${whereOf(replica.settings)}`, context);
  } finally {
    await sql.end();
  }
}

/**
 * Which paths make a data directory a replica: relay logs and their index, master.info, relay-log.info,
 * multi-master.info (also per named connection). relay_log_basename is empty unless relay_log is set,
 * and the server then names them `<host or pid file>-relay-bin`: the default names are matched too.
 */
export function replicationFilesOf(vars: Record<string, string>): (file: string) => boolean {
  const datadir = vars.datadir ?? '';
  const inData = (f: string | undefined) => (f ? path.resolve(datadir, f) : undefined);
  const relayBase = inData(vars.relay_log_basename);
  const exact = new Set([inData(vars.relay_log_index), inData(vars.relay_log_info_file)].filter((x): x is string => x !== undefined));
  return (file) => {
    const name = path.basename(file);
    return (
      exact.has(file) ||
      (relayBase !== undefined && file.startsWith(`${relayBase}.`)) ||
      /-relay-bin(-.+)?\.(\d+|index)$/.test(name) ||
      /^(multi-)?master(-.+)?\.info$/.test(name) ||
      /^relay-log(-.+)?\.info$/.test(name)
    );
  };
}

/** Bytes the primary wrote to its binlog from a to b (across rotations, by the file sizes it lists). */
export function binlogBytesBetween(a: Coord, b: Coord, sizes: Map<string, number>): number {
  if (a.file === b.file) return Math.max(0, b.position - a.position);
  const na = numberOf(a.file) ?? 0;
  const nb = numberOf(b.file) ?? 0;
  let total = Math.max(0, (sizes.get(a.file) ?? a.position) - a.position) + b.position;
  for (const [name, size] of sizes) {
    const n = numberOf(name) ?? -1;
    if (n > na && n < nb) total += size;
  }
  return total;
}

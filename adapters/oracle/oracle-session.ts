/**
 * The Oracle session: one connection from discovery to release. The window is backup mode —
 * `ALTER DATABASE BEGIN BACKUP` before the snapshot, `END BACKUP` after it — which blocks no writer
 * but is server state that outlives this process; the workflow journals it and arms a watchdog that
 * runs `ebr release`. After END BACKUP the current redo log is archived and a control-file backup is
 * read back into the backup's meta/, so a restore needs nothing but the archive and the archived logs.
 */
import { lstat, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { BlockToken, DbmsSession, InstanceContext } from '../../src/adapter-api.js';
import { EbrError, throwIfAborted } from '../../src/errors.js';
import type { BackupMeta, Chunk, Space } from '../../src/model.js';
import type { OracleSettings } from './oracle-config.js';
import type { Sql } from './oracle-connection.js';
import { archivelogFix } from './oracle-errors.js';
import { syncArchivedLogs } from './oracle-logs.js';
import * as q from './oracle-queries.js';

export interface ServerInfo {
  version: string;
  instanceName: string;
  hostName: string;
  status: string;
  dbid: number;
  dbName: string;
  logMode: string;
  openMode: string;
  role: string;
  resetlogsChange: string;
  resetlogsId: string;
}

/** What discovery found beside the datafiles: recorded with the backup, never copied from the live system. */
export interface DatabaseFiles {
  controlFiles: string[];
  logFiles: Array<{ group: number; member: string }>;
  tempFiles: string[];
  spfile: string | undefined;
  logArchiveFormat: string;
  undoTablespace: string | undefined;
}

export const alwaysCritical = ['SYSTEM', 'SYSAUX'];

/** A chunk's name in the archive: the tablespace, the file number (names may repeat across directories), the file name. */
export function chunkNameOf(tablespace: string, fileNumber: number, file: string): string {
  return `${tablespace}/${fileNumber}_${path.basename(file)}`;
}

export async function readServerInfo(sql: Sql, phase = 'connect'): Promise<ServerInfo> {
  const [i] = await sql.query<Record<string, unknown>>(q.instanceInfo, 'cannot read V$INSTANCE', 'connect', phase);
  const [d] = await sql.query<Record<string, unknown>>(q.databaseInfo, 'cannot read V$DATABASE', 'connect', phase);
  const [inc] = await sql.query<Record<string, unknown>>(q.incarnation, 'cannot read V$DATABASE_INCARNATION', 'connect', phase);
  return {
    version: String(i?.VERSION_FULL ?? ''),
    instanceName: String(i?.INSTANCE_NAME ?? ''),
    hostName: String(i?.HOST_NAME ?? ''),
    status: String(i?.STATUS ?? ''),
    dbid: Number(d?.DBID),
    dbName: String(d?.NAME ?? ''),
    logMode: String(d?.LOG_MODE ?? ''),
    openMode: String(d?.OPEN_MODE ?? ''),
    role: String(d?.DATABASE_ROLE ?? ''),
    resetlogsChange: String(d?.['RESETLOGS_CHANGE#'] ?? ''),
    resetlogsId: String(inc?.RESETLOGS_ID ?? ''),
  };
}

interface LogPosition {
  thread: number;
  sequence: number;
}

export function oracleSession(sql: Sql, instance: InstanceContext<OracleSettings>, server: ServerInfo): DbmsSession {
  const s = instance.settings;
  const ctx = { instance: instance.name, host: s.connectString };
  const controlFile = q.controlFileBackupPath(instance.name, s, instance.resolvePath);
  let files: DatabaseFiles | undefined;
  let spaces: Space[] = [];
  let startLogs: LogPosition[] = [];

  const currentLogs = async (phase: string, code: 'block' | 'discover' = 'block'): Promise<LogPosition[]> =>
    (await sql.query<Record<string, unknown>>(q.currentLog, 'cannot read the current redo log from V$LOG', code, phase)).map((r) => ({ thread: Number(r['THREAD#']), sequence: Number(r['SEQUENCE#']) }));

  return {
    async describe() {
      return { ...server, connectString: s.connectString, crashConsistentSnapshot: s.crashConsistentSnapshot };
    },

    async preflight() {
      if (server.logMode !== 'ARCHIVELOG') {
        throw new EbrError('logArchive', `database ${server.dbName} on ${s.connectString} is in ${server.logMode || 'an unknown log'} mode: without ARCHIVELOG mode a backup taken while it runs can never be recovered`, {
          hint: `as SYSDBA, in a maintenance window: ${archivelogFix}`,
          context: { ...ctx, phase: 'preflight', statement: q.databaseInfo },
        });
      }
      if (server.role !== 'PRIMARY') {
        throw new EbrError('connect', `database ${server.dbName} on ${s.connectString} is a ${server.role}; ebr backs up a primary database`, {
          hint: 'point connectString at the primary',
          context: { ...ctx, phase: 'preflight' },
        });
      }
    },

    async discover(signal) {
      const params = new Map((await sql.query<{ NAME: string; VALUE: string | null }>(q.parameters, 'cannot read V$PARAMETER', 'discover', 'discover', signal)).map((r) => [r.NAME.toLowerCase(), r.VALUE ?? '']));
      const tss = await sql.query<{ TABLESPACE_NAME: string; CONTENTS: string; STATUS: string }>(q.tablespaces, 'cannot list the tablespaces', 'discover', 'discover', signal);
      const dfs = await sql.query<{ 'FILE#': number; NAME: string; BYTES: number; STATUS: string; TABLESPACE_NAME: string }>(q.datafiles, 'cannot list the datafiles', 'discover', 'discover', signal);
      const temps = await sql.query<{ NAME: string }>(q.tempfiles, 'cannot list the temp files', 'discover', 'discover', signal);
      const ctls = await sql.query<{ NAME: string }>(q.controlfiles, 'cannot list the control files', 'discover', 'discover', signal);
      const logs = await sql.query<{ 'GROUP#': number; MEMBER: string }>(q.logfiles, 'cannot list the online redo logs', 'discover', 'discover', signal);
      const undo = params.get('undo_tablespace')?.toUpperCase() || undefined;
      files = {
        controlFiles: ctls.map((r) => r.NAME),
        logFiles: logs.map((r) => ({ group: Number(r['GROUP#']), member: r.MEMBER })),
        tempFiles: temps.map((r) => r.NAME),
        spfile: params.get('spfile') || undefined,
        logArchiveFormat: params.get('log_archive_format') || '%t_%s_%r.dbf',
        undoTablespace: undo,
      };
      const contentsOf = new Map(tss.map((t) => [t.TABLESPACE_NAME, t]));
      const byTs = new Map<string, Chunk[]>();
      for (const df of dfs) {
        throwIfAborted(signal, { ...ctx, phase: 'discover' });
        if (!path.isAbsolute(df.NAME)) {
          throw new EbrError('discover', `datafile ${df['FILE#']} of ${df.TABLESPACE_NAME} is ${df.NAME}, not a file on a filesystem (ASM?); ebr snapshots files`, {
            hint: 'keep the datafiles on a filesystem a snapshot provider covers (btrfs, lvm, zfs), or back up ASM with RMAN',
            context: { ...ctx, phase: 'discover', space: df.TABLESPACE_NAME, path: df.NAME },
          });
        }
        let st;
        try {
          st = await lstat(df.NAME);
        } catch (err) {
          throw new EbrError('discover', `cannot read datafile ${df.NAME} (${df.TABLESPACE_NAME}): ${(err as Error).message}`, {
            hint: 'run ebr on the database host as the oracle OS user (or a member of its group), so it sees the datafiles V$DATAFILE names',
            context: { ...ctx, phase: 'discover', space: df.TABLESPACE_NAME, path: df.NAME },
            cause: err,
          });
        }
        const list = byTs.get(df.TABLESPACE_NAME) ?? [];
        list.push({
          space: df.TABLESPACE_NAME,
          name: chunkNameOf(df.TABLESPACE_NAME, Number(df['FILE#']), df.NAME),
          path: df.NAME,
          type: 'file',
          size: st.size,
          mode: st.mode & 0o7777,
          uid: st.uid,
          gid: st.gid,
          mtimeMs: st.mtimeMs,
          details: { fileNumber: Number(df['FILE#']), status: df.STATUS },
        });
        byTs.set(df.TABLESPACE_NAME, list);
      }
      spaces = [...byTs.entries()].map(([name, chunks]) => {
        const critical = alwaysCritical.includes(name) || name === undo;
        const notes: string[] = [];
        if (name === 'SYSTEM') {
          notes.push(`control files (restored from the backup's control-file copy): ${files!.controlFiles.join(', ')}`);
          notes.push(`online redo logs (never backed up; OPEN RESETLOGS recreates them): ${files!.logFiles.map((l) => l.member).join(', ')}`);
          if (files!.spfile) notes.push(`spfile (recorded, not copied): ${files!.spfile}`);
          if (files!.tempFiles.length) notes.push(`temp files left out (Oracle recreates them): ${files!.tempFiles.join(', ')}`);
        }
        if (name === undo) notes.push('the undo tablespace in use (UNDO_TABLESPACE): restored only with the whole database');
        const offline = chunks.filter((c) => c.details?.status === 'OFFLINE');
        if (offline.length) notes.push(`offline datafiles (not in backup mode; copied as they are): ${offline.map((c) => c.path).join(', ')}`);
        return {
          name,
          critical,
          kind: 'tablespace',
          chunks,
          notes,
          details: { contents: contentsOf.get(name)?.CONTENTS ?? 'PERMANENT', status: contentsOf.get(name)?.STATUS ?? '', ...(name === 'SYSTEM' ? { ...files } : {}) },
        };
      });
      if (!spaces.some((sp) => sp.name === 'SYSTEM')) {
        throw new EbrError('discover', `V$DATAFILE on ${s.connectString} lists no SYSTEM datafile; connected to a pluggable database?`, {
          hint: 'backup mode and recovery are database-wide: connect to the CDB root (or a non-CDB), e.g. host:1521/ORCLCDB',
          context: { ...ctx, phase: 'discover', statement: q.datafiles },
        });
      }
      return spaces;
    },

    async checkpoint(signal) {
      throwIfAborted(signal, { ...ctx, phase: 'checkpoint' });
      await sql.query(q.checkpoint, 'ALTER SYSTEM CHECKPOINT failed', 'block', 'checkpoint', signal);
    },

    async block(signal): Promise<BlockToken> {
      throwIfAborted(signal, { ...ctx, phase: 'acquire' });
      // Roll-forward needs every log from the one being written when backup mode began.
      startLogs = await currentLogs('acquire');
      if (s.crashConsistentSnapshot) return { blockedAt: Date.now(), details: { crashConsistent: true, startLogs } };
      await sql.query(q.beginBackup, 'cannot put the database in backup mode', 'block', 'acquire');
      const blockedAt = Date.now();
      try {
        const rows = await sql.query<{ 'FILE#': number; STATUS: string; 'CHANGE#': number | string }>(q.backupStatus, 'cannot read V$BACKUP', 'block', 'acquire');
        const online = new Set(spaces.flatMap((sp) => sp.chunks).filter((c) => c.details?.status !== 'OFFLINE').map((c) => Number(c.details?.fileNumber)));
        const notActive = rows.filter((r) => online.has(Number(r['FILE#'])) && r.STATUS !== 'ACTIVE');
        if (notActive.length) {
          throw new EbrError('block', `after BEGIN BACKUP, datafile(s) ${notActive.map((r) => r['FILE#']).join(', ')} are not in backup mode on ${s.connectString}`, {
            hint: 'a datafile went offline or was added during the backup; run the backup again',
            context: { ...ctx, phase: 'acquire', statement: q.backupStatus },
          });
        }
        const scns = rows.filter((r) => r.STATUS === 'ACTIVE').map((r) => BigInt(String(r['CHANGE#'])));
        const startScn = scns.length ? scns.reduce((a, b) => (b < a ? b : a)).toString() : undefined;
        return { blockedAt, details: { startScn, startLogs } };
      } catch (err) {
        // The gate unblocks only after block returned: end backup mode here rather than leave it to the watchdog.
        await sql.query(q.endBackup, 'cannot end backup mode', 'block', 'acquire').catch(() => undefined);
        throw err;
      }
    },

    async unblock(token): Promise<BackupMeta> {
      if (!s.crashConsistentSnapshot) await sql.query(q.endBackup, 'cannot end backup mode', 'block', 'release');
      const endedAt = new Date();
      // Archives the redo that holds the end of backup mode: recovery needs it to make the files consistent.
      await sql.query(q.archiveLogCurrent, 'cannot archive the current redo log', 'block', 'release');
      await sql.query(q.backupControlFile(controlFile), 'cannot back up the control file', 'block', 'release');
      let control: Buffer;
      try {
        control = await readFile(controlFile);
      } catch (err) {
        throw new EbrError('block', `the server wrote the control-file backup to ${controlFile}, and ebr cannot read it: ${(err as Error).message}`, {
          hint: 'the server writes it as the oracle OS user on the database host: set oracle.controlFileDir to a directory both it and ebr can read, on the host ebr runs on',
          context: { ...ctx, phase: 'release', path: controlFile },
          cause: err,
        });
      }
      await rm(controlFile, { force: true });
      const endLogs = await currentLogs('release');
      const [scn] = await sql.query<{ CURRENT_SCN: number | string }>(q.currentScn, 'cannot read V$DATABASE', 'block', 'release');
      // The log current at the start through the one just archived (the current one is now one further).
      const threads = endLogs.map((e) => ({ thread: e.thread, first: startLogs.find((st) => st.thread === e.thread)?.sequence ?? e.sequence - 1, last: e.sequence - 1 }));
      const pos = (pick: 'first' | 'last') => threads.map((t) => `${t.thread}:${t[pick]}`).join(',');
      return {
        files: { 'control.bkp': control },
        logStart: pos('first'),
        logEnd: pos('last'),
        details: {
          dbid: server.dbid,
          dbName: server.dbName,
          version: server.version,
          resetlogsId: server.resetlogsId,
          resetlogsChange: server.resetlogsChange,
          threads,
          ...(token.details?.startScn ? { startScn: token.details.startScn } : {}),
          endScn: String(scn?.CURRENT_SCN ?? ''),
          beganAt: new Date(token.blockedAt).toISOString(),
          endedAt: endedAt.toISOString(),
          crashConsistent: s.crashConsistentSnapshot,
          // The snapshot completed before unblock was called: a safe SNAPSHOT TIME for recovery.
          ...(s.crashConsistentSnapshot ? { snapshotTime: endedAt.toISOString() } : {}),
          ...(files ?? {}),
        },
      };
    },

    releaseCommand() {
      if (!instance.ebrArgv) throw new EbrError('internal', 'the Oracle adapter needs instance.ebrArgv for its release command', { context: ctx });
      return instance.ebrArgv(['release', '--instance', instance.name]);
    },

    async afterRelease(meta, signal) {
      const store = instance.logStore?.('redo');
      if (!store) return;
      const r = await syncArchivedLogs(sql, store, { instance: instance.name, phase: 'after-release', host: s.connectString }, signal);
      const needed = ((meta.details?.threads as Array<{ thread: number; first: number; last: number }> | undefined) ?? []).flatMap((t) =>
        Array.from({ length: Math.max(0, t.last - t.first + 1) }, (_, i) => ({ thread: t.thread, sequence: t.first + i })),
      );
      const have = new Set([...r.stored, ...r.present]);
      const missing = needed.map((n) => `${n.thread}_${n.sequence}_${server.resetlogsId}.arc`).filter((n) => !have.has(n));
      if (missing.length) {
        throw new EbrError('logArchive', `the archived logs this backup needs are not all in the log archive: ${missing.join(', ')} missing`, {
          hint: 'V$ARCHIVED_LOG no longer lists them (deleted from disk, or RMAN removed them): restore them from wherever they went, run `ebr log sync`, and back up again',
          context: { ...ctx, phase: 'after-release' },
        });
      }
    },

    async [Symbol.asyncDispose]() {
      await sql.close();
    },
  };
}

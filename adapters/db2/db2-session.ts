/**
 * The Db2 session: one interactive CLP from discovery to release. The window is
 * `SET WRITE SUSPEND FOR DATABASE INCLUDE LOGS` … `SET WRITE RESUME FOR DATABASE` on that one connection
 * (SET WRITE command). The suspend is database state that outlives the CLP and ebr: the workflow
 * journals it and arms a watchdog that runs `ebr release`, which resumes with
 * `RESTART DATABASE <db> WRITE RESUME` (RESTART DATABASE command: "forces a database restart on databases
 * that experienced catastrophic failure while in write suspend state … resumes I/O write operations").
 */
import type { BlockToken, DbmsSession, InstanceContext } from '../../src/adapter-api.js';
import { EbrError, throwIfAborted } from '../../src/errors.js';
import type { BackupMeta, Space } from '../../src/model.js';
import { openClp, parseConfig, parseTable, type ClpSession } from './db2-clp.js';
import type { Db2Settings } from './db2-config.js';
import { spacesOf, type Container, type DbPath, type Tablespace } from './db2-discovery.js';
import * as q from './db2-queries.js';

export interface ServerInfo {
  server: string;
  authorizationId: string;
  alias: string;
  logArchMeth1: string;
  suspendIo: string;
}

export async function openSession(instance: InstanceContext<Db2Settings>, signal: AbortSignal): Promise<DbmsSession> {
  const s = instance.settings;
  const ctx = { instance: instance.name, host: `${s.instance}/${s.database}` };
  throwIfAborted(signal, { ...ctx, phase: 'connect' });
  const clp = await openClp(s, { ...ctx, phase: 'connect' });
  try {
    // The configuration first: it needs no connection, and a CONNECT to a database whose writes are suspended may hang (SET WRITE command).
    const cfg = parseConfig(await clp.run(q.dbConfig(s.database), { code: 'connect', what: `cannot read the configuration of ${s.database}`, phase: 'connect', signal }));
    const suspendIo = cfg.get('SUSPEND_IO') ?? '';
    if (suspendIo && suspendIo !== 'NO') {
      throw new EbrError('block', `database ${s.database} is already write suspended (SUSPEND_IO = ${suspendIo})`, {
        hint: `a backup that died left it so: run \`ebr release --instance ${instance.name}\` (RESTART DATABASE ${s.database} WRITE RESUME), then back up again`,
        context: { ...ctx, phase: 'connect', statement: q.dbConfig(s.database) },
      });
    }
    const conn = await clp.run(q.connect(s.database), { code: 'connect', what: `cannot connect to database ${s.database} of instance ${s.instance}`, phase: 'connect', signal });
    const field = (label: string) => new RegExp(`^\\s*${label}\\s*=\\s*(.*)$`, 'm').exec(conn)?.[1]?.trim() ?? '';
    const server: ServerInfo = {
      server: field('Database server'),
      authorizationId: field('SQL authorization ID'),
      alias: field('Local database alias') || s.database,
      logArchMeth1: cfg.get('LOGARCHMETH1') ?? '',
      suspendIo,
    };
    return db2Session(clp, instance, server);
  } catch (err) {
    await clp.close();
    throw err;
  }
}

export function db2Session(clp: ClpSession, instance: InstanceContext<Db2Settings>, server: ServerInfo): DbmsSession {
  const s = instance.settings;
  const ctx = { instance: instance.name, host: `${s.instance}/${s.database}` };
  let paths: DbPath[] = [];

  return {
    async describe() {
      return { ...server, database: s.database, instance: s.instance, restoreAs: s.restoreAs };
    },

    async preflight() {
      if (s.restoreAs !== 'snapshot' && (server.logArchMeth1 === '' || server.logArchMeth1 === 'OFF')) {
        throw new EbrError('logArchive', `database ${s.database} has no log archiving (LOGARCHMETH1 = ${server.logArchMeth1 || 'unknown'}): a restore AS ${s.restoreAs.toUpperCase()} rolls forward through archived logs`, {
          hint: `as the instance owner: db2 UPDATE DB CFG FOR ${s.database} USING LOGARCHMETH1 DISK:/path/to/archive, then an offline backup (BACKUP DATABASE ${s.database}); or set db2.restoreAs: snapshot`,
          context: { ...ctx, phase: 'preflight', statement: q.dbConfig(s.database) },
        });
      }
    },

    async discover(signal): Promise<Space[]> {
      const run = (cmd: string, what: string) => clp.run(cmd, { code: 'discover', what, phase: 'discover', signal });
      paths = parseTable(await run(q.dbPaths, 'cannot list the database paths (ADMIN_LIST_DB_PATHS)')).map((r) => ({ partition: Number(r.DBPARTITIONNUM ?? 0), type: r.TYPE ?? '', path: r.PATH ?? '' }));
      const tbsps: Tablespace[] = parseTable(await run(q.tablespaces, 'cannot list the tablespaces (MON_GET_TABLESPACE)')).map((r) => ({ name: r.TBSP_NAME!, id: Number(r.TBSP_ID), type: r.TBSP_TYPE ?? '', content: r.TBSP_CONTENT_TYPE ?? '' }));
      const conts: Container[] = parseTable(await run(q.containers, 'cannot list the tablespace containers (MON_GET_CONTAINER)')).map((r) => ({ tablespace: r.TBSP_NAME!, id: Number(r.CONTAINER_ID), name: r.CONTAINER_NAME!, type: r.CONTAINER_TYPE ?? '' }));
      if (!paths.some((p) => p.type === 'DBPATH')) {
        throw new EbrError('discover', `ADMIN_LIST_DB_PATHS returned no DBPATH for ${s.database}`, { hint: 'run ebr as the instance owner, or grant it SYSMON (or SYSCTRL/SYSMAINT/SYSADM)', context: { ...ctx, phase: 'discover', statement: q.dbPaths } });
      }
      return spacesOf(paths, tbsps, conts, { ...ctx, phase: 'discover' }, signal);
    },

    async checkpoint(signal) {
      await clp.run(q.flush, { code: 'block', what: 'FLUSH BUFFERPOOLS failed', phase: 'checkpoint', signal });
    },

    async block(): Promise<BlockToken> {
      // No signal: a suspend sent half-way must be answered, or ebr would not know whether to resume.
      await clp.run(q.suspend, { code: 'block', what: `cannot suspend writes to ${s.database}`, phase: 'acquire' });
      return { blockedAt: Date.now(), details: { suspendedAt: new Date().toISOString() } };
    },

    async unblock(token): Promise<BackupMeta> {
      await clp.run(q.resume, { code: 'block', what: `cannot resume writes to ${s.database}`, phase: 'release' });
      const resumedAt = new Date();
      return {
        logStart: String(token.details?.suspendedAt ?? ''),
        logEnd: resumedAt.toISOString(),
        details: {
          database: s.database,
          instance: s.instance,
          server: server.server,
          logArchMeth1: server.logArchMeth1,
          suspendedAt: token.details?.suspendedAt,
          resumedAt: resumedAt.toISOString(),
          includeLogs: true,
          paths: paths.map((p) => ({ type: p.type, path: p.path })),
        },
      };
    },

    releaseCommand() {
      if (!instance.ebrArgv) throw new EbrError('internal', 'the Db2 adapter needs instance.ebrArgv for its release command', { context: ctx });
      return instance.ebrArgv(['release', '--instance', instance.name]);
    },

    async [Symbol.asyncDispose]() {
      await clp.close();
    },
  };
}

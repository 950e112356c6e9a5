/**
 * Restoring an Oracle database from a backup-mode (or crash-consistent) snapshot, as the Backup and
 * Recovery User's Guide does it by hand ("user-managed" recovery):
 *
 * - whole database, in place: the instance shut down (checked through SQL*Plus), the datafiles back
 *   in their paths, the backup's control file copied over every control file, the archived logs
 *   fetched from ebr's log store; then `STARTUP MOUNT`, `RECOVER DATABASE USING BACKUP CONTROLFILE
 *   UNTIL TIME|CANCEL` and `ALTER DATABASE OPEN RESETLOGS`.
 * - whole database, `--to DIR`: the files, control file copies and logs under DIR, and
 *   DIR/ebr-recover.sql, the script to run there (another instance's control_files, RENAME FILE);
 *   nothing is started.
 * - some tablespaces, online: `ALTER TABLESPACE … OFFLINE IMMEDIATE`, the files back,
 *   `RECOVER TABLESPACE …`, `ALTER TABLESPACE … ONLINE` (to the current time only).
 */
import { mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ArchivedChunk, FileAttributes, InstanceContext, PlanStep, RestoreFiles, RestorePlan, Restorer } from '../../src/adapter-api.js';
import { EbrError, throwIfAborted } from '../../src/errors.js';
import type { LogStore } from '../../src/logs/log-store.js';
import type { OracleSettings } from './oracle-config.js';
import { openSql } from './oracle-connection.js';
import { formatLogName, storedLogs, syncArchivedLogs } from './oracle-logs.js';
import { archivedLogs, quoteIdent, quoteLiteral } from './oracle-queries.js';
import { renderScript, runSqlplus, sqlplusArgv, sqlplusError, type SqlplusScript } from './oracle-sqlplus.js';

interface BackupDetails {
  dbid?: number;
  resetlogsId?: string;
  threads?: Array<{ thread: number; first: number; last: number }>;
  controlFiles?: string[];
  logArchiveFormat?: string;
  endedAt?: string;
  crashConsistent?: boolean;
  snapshotTime?: string;
}

/** `RECOVER … UNTIL TIME` takes `YYYY-MM-DD:HH24:MI:SS` in the server's time zone: ebr runs on the database host, so its local time. */
export function oracleTime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}:${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** V$ARCHIVED_LOG's `YYYY-MM-DD HH24:MI:SS` (server time) as a Date. */
function serverTime(s: string): Date | undefined {
  const m = /^(\d{4})-(\d\d)-(\d\d)[ :T](\d\d):(\d\d):(\d\d)$/.exec(s);
  return m ? new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])) : undefined;
}

/** How the plan and the restore show one SQL*Plus run: the argv and its stdin. */
export function commandText(argv: string[], script: SqlplusScript): string {
  return `${argv.join(' ')} <<'EOF'\n${renderScript(script)}EOF`;
}

export const statusScript: SqlplusScript = { statements: ['SELECT STATUS FROM V$INSTANCE;'] };

export function oracleRestorer(instance: InstanceContext<OracleSettings>, plan: RestorePlan): Restorer {
  const s = instance.settings;
  const ctx = { instance: plan.instance, backupId: plan.backupId, phase: 'restore', host: s.connectString };
  const d = (plan.meta.details ?? {}) as BackupDetails;
  const control = plan.meta.files?.['control.bkp'];
  const store: LogStore | undefined = instance.logStore?.('redo');
  const partial = plan.mode === 'partial';
  const toDir = plan.targetDir;
  const chosen = plan.spaces.filter((sp) => plan.requested.includes(sp.name));

  if (!control || !d.threads?.length || !d.controlFiles?.length) {
    throw new EbrError('restore', `backup ${plan.backupId} has no control-file backup or log range in its meta/: it was not taken by the oracle adapter, or is incomplete`, {
      hint: 'restore another backup (`ebr list`)',
      context: ctx,
    });
  }
  if (partial) {
    const critical = chosen.filter((sp) => sp.critical);
    if (critical.length) {
      throw new EbrError('criticalSpace', `${critical.map((sp) => sp.name).join(', ')} cannot be restored while the database runs (SYSTEM, SYSAUX and the undo tablespace in use cannot go offline)`, {
        hint: 'restore the whole database (shut it down first)',
        context: { ...ctx, space: critical[0]!.name },
      });
    }
    if (plan.until) {
      throw new EbrError('usage', '--until cannot be combined with --partial: RECOVER TABLESPACE rolls a tablespace forward to the current time only', {
        hint: 'leave out --until; a tablespace at an earlier time needs RMAN tablespace point-in-time recovery, or restore the whole database --to DIR --until TIME',
        context: ctx,
      });
    }
    if (toDir) {
      throw new EbrError('usage', '--partial goes into the running database, in its own paths; --to DIR is for the whole database', {
        hint: 'leave out --to, or restore everything with --to DIR',
        context: ctx,
      });
    }
  }

  const destinationOf = (c: Pick<ArchivedChunk, 'name' | 'path'>): string => {
    if (!toDir) return c.path;
    const parts = c.name.split('/');
    if (path.isAbsolute(c.name) || parts.some((p) => p === '..' || p === '.' || p === '')) {
      throw new EbrError('digestMismatch', `the archive holds a member named ${JSON.stringify(c.name)}, which would land outside ${toDir}`, { context: { ...ctx, member: c.name } });
    }
    return path.join(toDir, c.name);
  };
  const scratch = s.scratchDir ? instance.resolvePath(s.scratchDir) : os.tmpdir();
  const logDir = toDir ? path.join(toDir, 'archivelog') : path.join(scratch, `ebr-oracle-${plan.backupId}-redo`);
  const controlDests = toDir ? d.controlFiles.map((f, i) => path.join(toDir, 'controlfile', `${i + 1}_${path.basename(f)}`)) : d.controlFiles;
  const system = plan.spaces.find((sp) => sp.name === 'SYSTEM')?.chunks[0];
  const owner: FileAttributes = { mode: 0o640, ...(system?.uid !== undefined ? { uid: system.uid } : {}), ...(system?.gid !== undefined ? { gid: system.gid } : {}) };
  const format = d.logArchiveFormat ?? '%t_%s_%r.dbf';
  const fileOf = (l: { thread: number; sequence: number }) => path.join(logDir, formatLogName(format, { ...l, resetlogsId: d.resetlogsId ?? '0', ...(d.dbid !== undefined ? { dbid: d.dbid } : {}) }));

  /** The archived logs recovery applies: from the one current at BEGIN BACKUP, contiguous, of the backup's incarnation. */
  const neededLogs = async (): Promise<Array<{ name: string; thread: number; sequence: number; nextTime?: Date }>> => {
    if (!store) throw new EbrError('logArchive', `instance ${plan.instance} has no log store for redo`, { context: ctx });
    const all = (await storedLogs(store)).filter((l) => l.name.endsWith(`_${d.resetlogsId}.arc`));
    const out: Array<{ name: string; thread: number; sequence: number; nextTime?: Date }> = [];
    for (const t of d.threads!) {
      const bySeq = new Map(all.filter((l) => l.name.startsWith(`${t.thread}_`)).map((l) => [Number(l.name.split('_')[1]), l]));
      for (let seq = t.first; bySeq.has(seq); seq++) {
        const l = bySeq.get(seq)!;
        const next = l.info ? serverTime(l.info.nextTime) : undefined;
        out.push({ name: l.name, thread: t.thread, sequence: seq, ...(next ? { nextTime: next } : {}) });
        if (plan.until && next && next.getTime() > plan.until.getTime()) break;
      }
      const last = out.filter((l) => l.thread === t.thread).at(-1)?.sequence ?? t.first - 1;
      if (last < t.last) {
        throw new EbrError('logArchive', `the log archive lacks archived log thread ${t.thread} sequence ${last + 1}, which recovery of backup ${plan.backupId} needs (it needs ${t.first} to ${t.last} at least)`, {
          hint: 'run `ebr log sync` while the database still has its archived logs, or restore another backup',
          context: ctx,
        });
      }
    }
    return out;
  };

  const recoverScript = (logs: Array<{ thread: number; sequence: number }>): SqlplusScript => {
    const snapshot = d.crashConsistent && d.snapshotTime ? ` SNAPSHOT TIME ${quoteLiteral(oracleTime(new Date(d.snapshotTime)))}` : '';
    if (partial) {
      const names = chosen.map((sp) => quoteIdent(sp.name));
      return { statements: [`SET LOGSOURCE ${quoteLiteral(logDir)}`, `RECOVER AUTOMATIC TABLESPACE ${names.join(', ')}`, ...names.map((n) => `ALTER TABLESPACE ${n} ONLINE;`)] };
    }
    const open = 'ALTER DATABASE OPEN RESETLOGS;';
    if (plan.until) {
      return { statements: ['STARTUP MOUNT', `SET LOGSOURCE ${quoteLiteral(logDir)}`, `RECOVER AUTOMATIC DATABASE USING BACKUP CONTROLFILE UNTIL TIME ${quoteLiteral(oracleTime(plan.until))}${snapshot}`, open] };
    }
    // Everything ebr holds: each log named at RECOVER's prompt, then CANCEL, so recovery never waits for a log that does not exist.
    return {
      statements: ['STARTUP MOUNT', `SET LOGSOURCE ${quoteLiteral(logDir)}`, `RECOVER DATABASE USING BACKUP CONTROLFILE UNTIL CANCEL${snapshot}`, open],
      answers: { after: 2, lines: [...logs.map(fileOf), 'CANCEL'] },
    };
  };
  const offlineScript: SqlplusScript = { statements: chosen.map((sp) => `ALTER TABLESPACE ${quoteIdent(sp.name)} OFFLINE IMMEDIATE;`) };
  // After a failed partial restore the old files are back: recovering them from the server's own redo brings the tablespaces online again.
  const backOnlineScript: SqlplusScript = { statements: [`RECOVER AUTOMATIC TABLESPACE ${chosen.map((sp) => quoteIdent(sp.name)).join(', ')}`, ...chosen.map((sp) => `ALTER TABLESPACE ${quoteIdent(sp.name)} ONLINE;`)] };
  /** Offline and not yet recovered: what undo must bring back. */
  let leftOffline = false;

  /** The script for --to DIR: the DBA runs it on the instance that is to use DIR. */
  const toDirScript = (logs: Array<{ thread: number; sequence: number }>): string => {
    const rec = recoverScript(logs);
    const renames = plan.spaces.flatMap((sp) => sp.chunks).map((c) => `ALTER DATABASE RENAME FILE ${quoteLiteral(c.path)} TO ${quoteLiteral(destinationOf(c))};`);
    const [startup, ...rest] = rec.statements;
    return [
      `-- Written by ebr restore of backup ${plan.backupId}. Start an instance whose control_files are:`,
      `--   ${controlDests.map((f) => quoteLiteral(f)).join(', ')}`,
      '-- (a pfile copied from the original, control_files changed), then run: sqlplus / as sysdba @ebr-recover.sql',
      'WHENEVER SQLERROR EXIT FAILURE',
      startup!,
      ...renames,
      ...rest.flatMap((st, i) => (rec.answers && rec.answers.after === i + 1 ? [st, ...rec.answers.lines] : [st])),
      'EXIT SUCCESS',
      '',
    ].join('\n');
  };

  const argv = sqlplusArgv(s);
  const step = (phase: string, kind: PlanStep['kind'], text: string): PlanStep => ({ phase, kind, text });

  return {
    spacesToWrite: () => (partial ? chosen.map((sp) => sp.name) : plan.spaces.map((sp) => sp.name)),

    // The control files may live apart from the datafiles (a second copy in the fast recovery area).
    extraRoots: () => (toDir ? [] : [...new Set(controlDests.map((f) => path.dirname(f)))]),

    async plan() {
      const logs = partial ? [] : await neededLogs();
      const steps: PlanStep[] = [];
      if (!toDir) steps.push(step('check', 'command', commandText(argv, statusScript)));
      if (partial) steps.push(step('check', 'command', commandText(argv, offlineScript)));
      if (!partial) for (const f of controlDests) steps.push(step('finish', 'write', f));
      if (partial) steps.push(step('finish', 'sql', archivedLogs));
      if (partial) steps.push(step('finish', 'read', `every archived log from ${d.threads!.map((t) => `thread ${t.thread} sequence ${t.first}`).join(', ')} on, into ${logDir}`));
      for (const l of logs) steps.push(step('finish', 'read', `${l.name} → ${fileOf(l)}`));
      if (toDir) steps.push(step('finish', 'write', path.join(toDir, 'ebr-recover.sql')));
      else steps.push(step('finish', 'command', commandText(argv, recoverScript(logs))));
      return steps;
    },

    async check(signal) {
      for (const c of plan.spaces.flatMap((sp) => sp.chunks)) destinationOf(c);
      if (plan.until && d.endedAt && plan.until.getTime() < new Date(d.endedAt).getTime()) {
        throw new EbrError('usage', `--until ${plan.until.toISOString()} is before backup ${plan.backupId} ended backup mode (${d.endedAt}); recovery cannot stop before the datafiles are consistent`, {
          hint: 'pick an older backup with --backup ID (see `ebr list`), or a later --until',
          context: ctx,
        });
      }
      if (!partial) {
        const logs = await neededLogs();
        if (plan.until) {
          const reach = Math.min(...d.threads!.map((t) => Math.max(0, ...logs.filter((l) => l.thread === t.thread).map((l) => l.nextTime?.getTime() ?? Infinity))));
          if (reach < plan.until.getTime()) {
            throw new EbrError('logArchive', `the log archive reaches ${new Date(reach).toISOString()}, not --until ${plan.until.toISOString()}`, {
              hint: 'run `ebr log sync` (and ALTER SYSTEM ARCHIVE LOG CURRENT) while the database still has its logs, or pick an earlier --until',
              context: ctx,
            });
          }
        }
      }
      if (toDir) return;
      const status = await runSqlplus(s, statusScript, signal, { ...ctx, phase: 'check' });
      const running = status.exitCode === 0 ? status.output.trim().split(/\s+/).pop() : undefined;
      if (!partial) {
        if (status.error?.code === 'ORA-01034') return; // idle instance: what a full restore needs
        if (running) {
          throw new EbrError('inUse', `the instance on this host is ${running}: a whole-database restore replaces its datafiles and control files`, {
            hint: 'shut it down first (sqlplus / as sysdba: SHUTDOWN IMMEDIATE), or restore with --to DIR, or --partial TABLESPACE while it runs',
            context: { ...ctx, phase: 'check' },
          });
        }
        throw sqlplusError(status, 'cannot tell whether the instance is shut down', s, { ...ctx, phase: 'check' });
      }
      if (running !== 'OPEN') {
        if (status.error && status.error.code !== 'ORA-01034') throw sqlplusError(status, 'cannot read the instance status', s, { ...ctx, phase: 'check' });
        throw new EbrError('restore', `a tablespace is restored into the open database, and the instance is ${running ?? 'not started'}`, {
          hint: 'open the database first (STARTUP), or restore the whole database',
          context: { ...ctx, phase: 'check' },
        });
      }
      // Last step of the check, since the files cannot be replaced while Oracle has them open: from here on the tablespace stays offline until finish brings it back.
      leftOffline = true;
      const off = await runSqlplus(s, offlineScript, signal, { ...ctx, phase: 'check' });
      if (off.exitCode !== 0 || off.error) throw sqlplusError(off, `cannot take ${chosen.map((sp) => sp.name).join(', ')} offline`, s, { ...ctx, phase: 'check' });
    },

    destinationOf,

    async undo(signal) {
      if (!leftOffline) return [];
      const r = await runSqlplus(s, backOnlineScript, signal, { ...ctx, phase: 'undo' });
      if (r.exitCode !== 0 || r.error) {
        return [`${chosen.map((sp) => sp.name).join(', ')} stayed offline (${sqlplusError(r, 'recover', s, ctx).message}): run ${backOnlineScript.statements.join(' ')} in SQL*Plus`];
      }
      leftOffline = false;
      return [];
    },

    async finish(signal, files: RestoreFiles) {
      const notes: string[] = [];
      if (!partial) {
        const data = Buffer.isBuffer(control) ? control : Buffer.from(control);
        for (const f of controlDests) await files.writeFile(f, data, owner);
        notes.push(`control files from the backup's control-file copy: ${controlDests.join(', ')}`);
      }
      if (partial) {
        // RECOVER reads the logs from one directory: first everything the server archived since the last sync.
        const sql = await openSql(instance, { ...ctx, phase: 'finish' }, signal);
        try {
          await syncArchivedLogs(sql, store!, { ...ctx, phase: 'finish' }, signal);
        } finally {
          await sql.close();
        }
      }
      const logs = partial ? await partialLogs() : await neededLogs();
      if (toDir) {
        await files.mkdir(logDir, { mode: 0o750, ...(owner.uid !== undefined ? { uid: owner.uid, gid: owner.gid } : {}) });
        await files.track(logDir);
      } else {
        await rm(logDir, { recursive: true, force: true });
        await mkdir(logDir, { recursive: true, mode: 0o750 });
      }
      try {
        for (const l of logs) {
          throwIfAborted(signal, ctx);
          if (!(await store!.get(l.name, fileOf(l), signal))) throw new EbrError('logArchive', `${l.name} vanished from the log archive during the restore`, { context: ctx });
        }
        notes.push(`${logs.length} archived log(s) fetched from the log archive into ${logDir}`);
        if (toDir) {
          await files.writeFile(path.join(toDir, 'ebr-recover.sql'), toDirScript(logs), owner);
          notes.push(`nothing was started: run ${path.join(toDir, 'ebr-recover.sql')} on the instance that is to use ${toDir} (its header says how)`);
          return { notes, details: { recoverScript: path.join(toDir, 'ebr-recover.sql') } };
        }
        const script = recoverScript(logs);
        const r = await runSqlplus(s, script, signal, { ...ctx, phase: 'finish' });
        if (r.exitCode !== 0 || r.error) throw sqlplusError(r, partial ? `cannot recover ${chosen.map((sp) => sp.name).join(', ')}` : 'cannot recover the database', s, { ...ctx, phase: 'finish' });
        leftOffline = false;
        notes.push(partial ? `recovered and online again: ${chosen.map((sp) => sp.name).join(', ')}` : `recovered${plan.until ? ` until ${oracleTime(plan.until)}` : ' through the last archived log'} and opened with RESETLOGS: take a new backup, the old ones belong to the previous incarnation`);
        return { notes, details: { sqlplus: commandText(argv, script) } };
      } finally {
        if (!toDir) await rm(logDir, { recursive: true, force: true });
      }

      async function partialLogs() {
        const all = (await storedLogs(store!)).filter((l) => l.name.endsWith(`_${d.resetlogsId}.arc`));
        return d.threads!.flatMap((t) => all.filter((l) => l.name.startsWith(`${t.thread}_`) && Number(l.name.split('_')[1]) >= t.first).map((l) => ({ name: l.name, thread: t.thread, sequence: Number(l.name.split('_')[1]) })));
      }
    },
  };
}

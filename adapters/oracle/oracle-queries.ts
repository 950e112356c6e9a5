/**
 * Every statement the Oracle adapter sends, in one place, and the plan that lists them: the
 * statement-level tests compare what the server (or its stand-in) received with `backupPlan`, so the
 * session and the plan read their text from here and nowhere else.
 */
import os from 'node:os';
import path from 'node:path';
import type { PlanStep } from '../../src/adapter-api.js';
import type { OracleSettings } from './oracle-config.js';

export const instanceInfo = 'SELECT VERSION_FULL, INSTANCE_NAME, HOST_NAME, STATUS FROM V$INSTANCE';
export const databaseInfo = 'SELECT DBID, NAME, LOG_MODE, OPEN_MODE, DATABASE_ROLE, RESETLOGS_CHANGE# FROM V$DATABASE';

export const incarnation = "SELECT RESETLOGS_ID FROM V$DATABASE_INCARNATION WHERE STATUS = 'CURRENT'";

export const parameters = "SELECT NAME, VALUE FROM V$PARAMETER WHERE NAME IN ('undo_tablespace', 'spfile', 'log_archive_format', 'db_unique_name') ORDER BY NAME";
export const tablespaces = 'SELECT TABLESPACE_NAME, CONTENTS, STATUS FROM DBA_TABLESPACES ORDER BY TABLESPACE_NAME';
export const datafiles = 'SELECT d.FILE#, d.NAME, d.BYTES, d.STATUS, t.NAME AS TABLESPACE_NAME FROM V$DATAFILE d JOIN V$TABLESPACE t ON t.TS# = d.TS# ORDER BY d.FILE#';
export const tempfiles = 'SELECT NAME FROM V$TEMPFILE ORDER BY NAME';
export const controlfiles = 'SELECT NAME FROM V$CONTROLFILE ORDER BY NAME';
export const logfiles = 'SELECT GROUP#, MEMBER FROM V$LOGFILE ORDER BY GROUP#, MEMBER';

export const checkpoint = 'ALTER SYSTEM CHECKPOINT';
export const currentLog = "SELECT THREAD#, SEQUENCE# FROM V$LOG WHERE STATUS = 'CURRENT' ORDER BY THREAD#";
export const beginBackup = 'ALTER DATABASE BEGIN BACKUP';
export const backupStatus = 'SELECT FILE#, STATUS, CHANGE#, TIME FROM V$BACKUP ORDER BY FILE#';
export const endBackup = 'ALTER DATABASE END BACKUP';
export const archiveLogCurrent = 'ALTER SYSTEM ARCHIVE LOG CURRENT';
export const currentScn = 'SELECT CURRENT_SCN FROM V$DATABASE';
export const activeBackups = "SELECT FILE#, CHANGE# FROM V$BACKUP WHERE STATUS = 'ACTIVE' ORDER BY FILE#";

/** Archived logs of the current incarnation still on disk; one row per log and destination. */
export const archivedLogs =
  "SELECT NAME, THREAD#, SEQUENCE#, RESETLOGS_ID, FIRST_CHANGE#, NEXT_CHANGE#, TO_CHAR(FIRST_TIME, 'YYYY-MM-DD HH24:MI:SS') AS FIRST_TIME, TO_CHAR(NEXT_TIME, 'YYYY-MM-DD HH24:MI:SS') AS NEXT_TIME FROM V$ARCHIVED_LOG WHERE DELETED = 'NO' AND NAME IS NOT NULL AND RESETLOGS_CHANGE# = (SELECT RESETLOGS_CHANGE# FROM V$DATABASE) ORDER BY THREAD#, SEQUENCE#";

/** A string literal for SQL: quotes doubled. */
export function quoteLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** A tablespace name as an identifier: names discovery returned are plain upper-case; anything else is quoted. */
export function quoteIdent(name: string): string {
  return /^[A-Z][A-Z0-9_$#]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

/** The file the server writes the control-file backup into; fixed per instance (REUSE), so the plan can name it. */
export function controlFileBackupPath(instanceName: string, settings: Pick<OracleSettings, 'controlFileDir'>, resolvePath: (p: string) => string = path.resolve): string {
  const dir = settings.controlFileDir ? resolvePath(settings.controlFileDir) : os.tmpdir();
  return path.join(dir, `ebr-${instanceName.replace(/[^A-Za-z0-9_.-]/g, '_')}-control.bkp`);
}

export function backupControlFile(file: string): string {
  return `ALTER DATABASE BACKUP CONTROLFILE TO ${quoteLiteral(file)} REUSE`;
}

/** What the session sends, per phase, in the order the workflow calls it. */
export function backupPlan(o: { controlFile: string; crashConsistent: boolean; syncLogs: boolean }): PlanStep[] {
  const sql = (phase: string, text: string): PlanStep => ({ phase, kind: 'sql', text });
  const steps: PlanStep[] = [
    sql('connect', instanceInfo),
    sql('connect', databaseInfo),
    sql('connect', incarnation),
    sql('discover', parameters),
    sql('discover', tablespaces),
    sql('discover', datafiles),
    sql('discover', tempfiles),
    sql('discover', controlfiles),
    sql('discover', logfiles),
    sql('checkpoint', checkpoint),
    sql('acquire', currentLog),
  ];
  if (o.crashConsistent) {
    steps.push({ phase: 'acquire', kind: 'note', text: 'no backup mode: the snapshot is declared crash-consistent (crashConsistentSnapshot); its time is recorded for RECOVER … SNAPSHOT TIME' });
  } else {
    steps.push(sql('acquire', beginBackup), sql('acquire', backupStatus));
    steps.push(sql('release', endBackup));
  }
  steps.push(
    sql('release', archiveLogCurrent),
    sql('release', backupControlFile(o.controlFile)),
    { phase: 'release', kind: 'read', text: o.controlFile },
    sql('release', currentLog),
    sql('release', currentScn),
  );
  if (o.syncLogs) {
    steps.push(sql('after-release', archivedLogs), { phase: 'after-release', kind: 'note', text: 'copy every archived log the log store lacks (redo/), with its sha256' });
  }
  return steps;
}

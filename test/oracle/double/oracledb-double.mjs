// A stand-in for the part of node-oracledb (thin mode) the Oracle adapter uses: getConnection,
// connection.execute(sql, binds, { outFormat }) → { rows } with upper-case column names, close().
// It answers only the statements Oracle's documentation gives for user-managed backups; any other
// text is ORA-00900, so a change in what the adapter sends is caught. Every statement is appended to
// a JSON-lines log ($EBR_ORACLE_DOUBLE_LOG, default: the state file + .statements.jsonl).
import { statSync, writeFileSync } from 'node:fs';
import { archiveCurrent, load, oraError, record, save, serverTime, statePath } from './state.mjs';

export const OUT_FORMAT_ARRAY = 4001;
export const OUT_FORMAT_OBJECT = 4002;
export const SYSDBA = 2;
export const SYSOPER = 4;
export const SYSBACKUP = 131072;
export const thin = true;
export const versionString = '6.10.0-double';

const logFile = () => process.env.EBR_ORACLE_DOUBLE_LOG ?? `${statePath()}.statements.jsonl`;
const norm = (sql) => sql.replace(/\s+/g, ' ').trim();

function njs(code, message) {
  const err = new Error(`${code}: ${message}`);
  err.code = code;
  return err;
}

/** Statement text → what the server does. Exact texts; the regexes only where a value is part of the text. */
const handlers = [
  ['SELECT VERSION_FULL, INSTANCE_NAME, HOST_NAME, STATUS FROM V$INSTANCE', (s) => [{ VERSION_FULL: '19.22.0.0.0', INSTANCE_NAME: s.instanceName, HOST_NAME: 'dbhost', STATUS: s.status === 'MOUNTED' ? 'MOUNTED' : 'OPEN' }]],
  ['SELECT DBID, NAME, LOG_MODE, OPEN_MODE, DATABASE_ROLE, RESETLOGS_CHANGE# FROM V$DATABASE', (s) => [{ DBID: s.dbid, NAME: s.dbName, LOG_MODE: s.logMode, OPEN_MODE: s.status === 'OPEN' ? 'READ WRITE' : 'MOUNTED', DATABASE_ROLE: 'PRIMARY', 'RESETLOGS_CHANGE#': s.resetlogsChange }]],
  ["SELECT RESETLOGS_ID FROM V$DATABASE_INCARNATION WHERE STATUS = 'CURRENT'", (s) => [{ RESETLOGS_ID: s.resetlogsId }]],
  ["SELECT NAME, VALUE FROM V$PARAMETER WHERE NAME IN ('undo_tablespace', 'spfile', 'log_archive_format', 'db_unique_name') ORDER BY NAME", (s) => [
    { NAME: 'db_unique_name', VALUE: s.dbName.toLowerCase() },
    { NAME: 'log_archive_format', VALUE: s.logArchiveFormat },
    { NAME: 'spfile', VALUE: s.spfile },
    { NAME: 'undo_tablespace', VALUE: s.undoTablespace },
  ]],
  ['SELECT TABLESPACE_NAME, CONTENTS, STATUS FROM DBA_TABLESPACES ORDER BY TABLESPACE_NAME', (s) => [...s.tablespaces].sort((a, b) => a.name.localeCompare(b.name)).map((t) => ({ TABLESPACE_NAME: t.name, CONTENTS: t.contents, STATUS: t.status }))],
  ['SELECT d.FILE#, d.NAME, d.BYTES, d.STATUS, t.NAME AS TABLESPACE_NAME FROM V$DATAFILE d JOIN V$TABLESPACE t ON t.TS# = d.TS# ORDER BY d.FILE#', (s) =>
    s.datafiles.map((f) => ({ 'FILE#': f.file, NAME: f.name, BYTES: statSync(f.name).size, STATUS: f.ts === 'SYSTEM' ? 'SYSTEM' : (s.tablespaces.find((t) => t.name === f.ts)?.status === 'OFFLINE' ? 'OFFLINE' : 'ONLINE'), TABLESPACE_NAME: f.ts }))],
  ['SELECT NAME FROM V$TEMPFILE ORDER BY NAME', (s) => s.tempfiles.map((n) => ({ NAME: n }))],
  ['SELECT NAME FROM V$CONTROLFILE ORDER BY NAME', (s) => [...s.controlfiles].sort().map((n) => ({ NAME: n }))],
  ['SELECT GROUP#, MEMBER FROM V$LOGFILE ORDER BY GROUP#, MEMBER', (s) => s.logfiles.map((l) => ({ 'GROUP#': l.group, MEMBER: l.member }))],
  ['ALTER SYSTEM CHECKPOINT', (s) => { s.scn += 10; s.checkpoints = (s.checkpoints ?? 0) + 1; return undefined; }],
  ["SELECT THREAD#, SEQUENCE# FROM V$LOG WHERE STATUS = 'CURRENT' ORDER BY THREAD#", (s) => [{ 'THREAD#': s.thread, 'SEQUENCE#': s.sequence }]],
  ['ALTER DATABASE BEGIN BACKUP', (s) => {
    if (s.logMode !== 'ARCHIVELOG') throw oraError(1123, 'cannot start online backup; media recovery not enabled');
    const active = s.datafiles.find((f) => s.backup[f.file]?.status === 'ACTIVE');
    if (active) throw oraError(1146, `cannot start online backup - file ${active.file} is already in backup\nORA-01110: data file ${active.file}: '${active.name}'`);
    s.scn += 5;
    for (const f of s.datafiles) s.backup[f.file] = { status: 'ACTIVE', change: s.scn, time: serverTime() };
    s.lastBeganSequence = s.sequence;
    return undefined;
  }],
  ['SELECT FILE#, STATUS, CHANGE#, TIME FROM V$BACKUP ORDER BY FILE#', (s) => s.datafiles.map((f) => ({ 'FILE#': f.file, STATUS: s.backup[f.file]?.status ?? 'NOT ACTIVE', 'CHANGE#': s.backup[f.file]?.change ?? 0, TIME: s.backup[f.file]?.time ?? null }))],
  ["SELECT FILE#, CHANGE# FROM V$BACKUP WHERE STATUS = 'ACTIVE' ORDER BY FILE#", (s) => s.datafiles.filter((f) => s.backup[f.file]?.status === 'ACTIVE').map((f) => ({ 'FILE#': f.file, 'CHANGE#': s.backup[f.file].change }))],
  ['ALTER DATABASE END BACKUP', (s) => {
    const active = s.datafiles.filter((f) => s.backup[f.file]?.status === 'ACTIVE');
    if (!active.length) throw oraError(1142, 'cannot end online backup - none of the files are in backup');
    for (const f of active) s.backup[f.file] = { ...s.backup[f.file], status: 'NOT ACTIVE' };
    s.scn += 1;
    s.lastEndedSequence = s.sequence;
    return undefined;
  }],
  ['ALTER SYSTEM ARCHIVE LOG CURRENT', (s) => { archiveCurrent(s); return undefined; }],
  [/^ALTER DATABASE BACKUP CONTROLFILE TO '((?:[^']|'')+)' REUSE$/, (s, m) => {
    const file = m[1].replace(/''/g, "'");
    // A backup control file: what recovery needs to know (the datafiles, the logs through the last archived one).
    writeFileSync(file, JSON.stringify({ kind: 'oracle-double backup controlfile', dbid: s.dbid, resetlogsId: s.resetlogsId, datafiles: s.datafiles, archivedThrough: s.sequence - 1, beganSequence: s.lastBeganSequence ?? null, endedSequence: s.lastEndedSequence ?? null, at: serverTime() }));
    return undefined;
  }],
  ['SELECT CURRENT_SCN FROM V$DATABASE', (s) => [{ CURRENT_SCN: s.scn }]],
  ["SELECT NAME, THREAD#, SEQUENCE#, RESETLOGS_ID, FIRST_CHANGE#, NEXT_CHANGE#, TO_CHAR(FIRST_TIME, 'YYYY-MM-DD HH24:MI:SS') AS FIRST_TIME, TO_CHAR(NEXT_TIME, 'YYYY-MM-DD HH24:MI:SS') AS NEXT_TIME FROM V$ARCHIVED_LOG WHERE DELETED = 'NO' AND NAME IS NOT NULL AND RESETLOGS_CHANGE# = (SELECT RESETLOGS_CHANGE# FROM V$DATABASE) ORDER BY THREAD#, SEQUENCE#", (s) =>
    s.archived.filter((a) => a.deleted === 'NO' && a.resetlogsChange === s.resetlogsChange).map((a) => ({ NAME: a.name, 'THREAD#': a.thread, 'SEQUENCE#': a.sequence, RESETLOGS_ID: a.resetlogsId, 'FIRST_CHANGE#': a.firstChange, 'NEXT_CHANGE#': a.nextChange, FIRST_TIME: a.firstTime, NEXT_TIME: a.nextTime }))],
];

function execute(user, privilege, sql) {
  const text = norm(sql);
  record(logFile(), { user, privilege, sql: text });
  const s = load();
  if (s.status === 'SHUTDOWN') throw oraError(3113, 'end-of-file on communication channel');
  // Missing grants, as the server reports them: a view not granted does not exist for the user.
  for (const d of s.denied ?? []) {
    if (!text.includes(d)) continue;
    if (/^(ALTER|CREATE|DROP)\b/.test(text)) throw oraError(1031, 'insufficient privileges');
    throw oraError(942, 'table or view does not exist');
  }
  for (const [pattern, handle] of handlers) {
    const m = typeof pattern === 'string' ? (pattern === text ? [text] : null) : pattern.exec(text);
    if (!m) continue;
    const rows = handle(s, m);
    save(s);
    return rows;
  }
  throw oraError(900, `invalid SQL statement (the stand-in knows no statement ${JSON.stringify(text)})`);
}

export async function getConnection(o = {}) {
  const s = load();
  if (o.connectString !== s.connectString) {
    const [host, port = '1521'] = String(o.connectString).split('/')[0].split(':');
    throw njs('NJS-503', `connection to host ${host} port ${port} could not be established. The error was: connect ECONNREFUSED ${host}:${port}`);
  }
  if (o.user?.toUpperCase() !== s.user.toUpperCase() || o.password !== s.password) throw oraError(1017, 'invalid credential or not authorized; logon denied');
  if (o.privilege !== undefined && !(s.privileges ?? []).includes(o.privilege === SYSDBA ? 'SYSDBA' : o.privilege === SYSBACKUP ? 'SYSBACKUP' : String(o.privilege))) throw oraError(1017, 'invalid credential or not authorized; logon denied');
  if (s.status === 'SHUTDOWN') throw oraError(1034, 'ORACLE not available');
  let open = true;
  return {
    async execute(sql, binds = [], options = {}) {
      if (!open) throw njs('NJS-003', 'invalid or closed connection');
      if (options.outFormat !== OUT_FORMAT_OBJECT) throw new Error('the stand-in answers only outFormat: OUT_FORMAT_OBJECT');
      const rows = execute(o.user, o.privilege ?? null, sql);
      return rows === undefined ? { rowsAffected: undefined } : { rows, metaData: rows[0] ? Object.keys(rows[0]).map((name) => ({ name })) : [] };
    },
    async break() {},
    async close() {
      open = false;
    },
  };
}

export default { OUT_FORMAT_ARRAY, OUT_FORMAT_OBJECT, SYSDBA, SYSOPER, SYSBACKUP, thin, versionString, getConnection };

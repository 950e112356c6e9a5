// The stand-in server's state, shared by the driver stand-in and the SQL*Plus stand-in: one JSON file
// (path in $EBR_ORACLE_DOUBLE_STATE), rewritten atomically after every statement, since the CLI, its
// watchdog and SQL*Plus are separate processes.
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export function statePath() {
  const p = process.env.EBR_ORACLE_DOUBLE_STATE;
  if (!p) throw new Error('EBR_ORACLE_DOUBLE_STATE is not set');
  return p;
}

export function load() {
  return JSON.parse(readFileSync(statePath(), 'utf8'));
}

export function save(state) {
  const p = statePath();
  const tmp = `${p}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 1));
  renameSync(tmp, p);
}

export function record(file, entry) {
  appendFileSync(file, JSON.stringify({ at: new Date().toISOString(), pid: process.pid, ...entry }) + '\n');
}

/** An Oracle error as oracledb shapes it. */
export function oraError(num, text) {
  const code = `ORA-${String(num).padStart(5, '0')}`;
  const err = new Error(`${code}: ${text}`);
  err.errorNum = num;
  err.code = code;
  err.offset = 0;
  return err;
}

export function serverTime(d = new Date()) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function logFileName(format, thread, sequence, resetlogsId) {
  return format.replace(/%t/g, String(thread)).replace(/%s/g, String(sequence)).replace(/%r/g, String(resetlogsId));
}

export function sha256(buf) {
  return createHash('sha256').update(buf).digest('hex');
}

/** ALTER SYSTEM ARCHIVE LOG CURRENT: the current log becomes a real archived file, the next one current. */
export function archiveCurrent(state) {
  const now = new Date();
  const file = path.join(state.archiveDest, logFileName(state.logArchiveFormat, state.thread, state.sequence, state.resetlogsId));
  const body = Buffer.concat([Buffer.from(`redo thread ${state.thread} sequence ${state.sequence} resetlogs ${state.resetlogsId}\n`), randomBytes(2048 + state.sequence)]);
  writeFileSync(file, body);
  const first = state.archived.at(-1);
  state.archived.push({
    name: file,
    thread: state.thread,
    sequence: state.sequence,
    resetlogsId: state.resetlogsId,
    resetlogsChange: state.resetlogsChange,
    firstChange: state.logFirstChange,
    nextChange: state.scn,
    firstTime: state.logFirstTime ?? (first ? first.nextTime : serverTime(now)),
    nextTime: serverTime(now),
    deleted: 'NO',
    sha256: sha256(body),
  });
  state.sequence += 1;
  state.logFirstChange = state.scn;
  state.logFirstTime = serverTime(now);
  state.scn += 1;
}

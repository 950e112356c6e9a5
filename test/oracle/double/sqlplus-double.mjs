#!/usr/bin/env node
// A stand-in for `sqlplus -S -L / as sysdba` reading a script on stdin: it records the argv and the
// script ($EBR_ORACLE_DOUBLE_SQLPLUS_LOG, default: the state file + .sqlplus.jsonl), and answers the
// commands user-managed recovery uses the way SQL*Plus and the server do, changing the stand-in's
// state: STARTUP MOUNT, RECOVER (checking that every archived log it needs is there, with the bytes
// the server archived), ALTER DATABASE OPEN RESETLOGS, tablespaces offline and online.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { load, logFileName, record, save, sha256, statePath } from './state.mjs';

const input = readFileSync(0, 'utf8');
const logFile = process.env.EBR_ORACLE_DOUBLE_SQLPLUS_LOG ?? `${statePath()}.sqlplus.jsonl`;
record(logFile, { argv: process.argv.slice(2), oracleSid: process.env.ORACLE_SID ?? null, stdin: input });

const lines = input.split('\n');
let exitOnSqlError = false;
let logsource;
const s = load();
const out = (t) => process.stdout.write(t + '\n');

function fail(code, text) {
  out(`ERROR at line 1:\n${code}: ${text}`);
  if (exitOnSqlError) {
    save(s);
    process.exit(1);
  }
}

function controlFile() {
  const f = s.controlfiles[0];
  if (!existsSync(f)) return undefined;
  try {
    return JSON.parse(readFileSync(f, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The archived log of this sequence, if the file given holds the bytes the server archived. */
function check(file, sequence, resetlogsId) {
  const a = s.archived.find((x) => x.sequence === sequence && x.resetlogsId === resetlogsId);
  if (!a || !existsSync(file) || sha256(readFileSync(file)) !== a.sha256) return undefined;
  return a;
}

function parseTime(t) {
  const m = /^(\d{4})-(\d\d)-(\d\d):(\d\d):(\d\d):(\d\d)$/.exec(t);
  if (!m) return undefined;
  return new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
}
const archivedTime = (t) => new Date(t.replace(' ', 'T'));

for (let i = 0; i < lines.length; i++) {
  const line = lines[i].trim();
  if (!line) continue;
  let m;
  if (/^WHENEVER SQLERROR EXIT FAILURE$/i.test(line)) exitOnSqlError = true;
  else if (/^WHENEVER OSERROR EXIT FAILURE$/i.test(line)) {}
  else if ((m = /^SET LOGSOURCE '(.*)'$/i.exec(line))) logsource = m[1].replace(/''/g, "'");
  else if (/^SET /i.test(line)) {}
  else if ((m = /^PROMPT (.*)$/i.exec(line))) out(m[1]);
  else if (/^EXIT( SUCCESS)?$/i.test(line)) {
    save(s);
    process.exit(0);
  } else if (line === 'SELECT STATUS FROM V$INSTANCE;') {
    if (s.status === 'SHUTDOWN') fail('ORA-01034', 'ORACLE not available\nProcess ID: 0\nSession ID: 0 Serial number: 0');
    else out(s.status === 'MOUNTED' ? 'MOUNTED' : 'OPEN');
  } else if (line === 'STARTUP MOUNT') {
    if (s.status !== 'SHUTDOWN') fail('ORA-01081', 'cannot start already-running ORACLE - shut it down first');
    else if (!s.controlfiles.every((f) => existsSync(f)) || !controlFile()) fail('ORA-00205', 'error in identifying control file, check alert log for more info');
    else {
      s.status = 'MOUNTED';
      out('ORACLE instance started.\n\nDatabase mounted.');
    }
  } else if ((m = /^RECOVER (AUTOMATIC )?DATABASE USING BACKUP CONTROLFILE UNTIL (CANCEL|TIME '([^']+)')( SNAPSHOT TIME '([^']+)')?$/.exec(line))) {
    const cf = controlFile();
    if (s.status !== 'MOUNTED') { fail('ORA-01112', 'media recovery not started'); continue; }
    if (!cf || cf.kind !== 'oracle-double backup controlfile') { fail('ORA-01666', 'control file is for a standby database'); continue; }
    const missing = cf.datafiles.find((f) => !existsSync(f.name));
    if (missing) { fail('ORA-01157', `cannot identify/lock data file ${missing.file} - see DBWR trace file\nORA-01110: data file ${missing.file}: '${missing.name}'`); continue; }
    const until = m[3] ? parseTime(m[3]) : undefined;
    if (m[3] && !until) { fail('ORA-01841', '(full) year must be between -4713 and +9999, and not be 0'); continue; }
    if (m[5] && !parseTime(m[5])) { fail('ORA-01841', 'bad SNAPSHOT TIME'); continue; }
    // Backup mode: from the log current at BEGIN BACKUP. Crash-consistent (SNAPSHOT TIME): the log archived right after the snapshot at least.
    let applied = (m[4] ? cf.archivedThrough : (cf.beganSequence ?? cf.archivedThrough)) - 1;
    let failed = false;
    if (!m[1]) {
      // UNTIL CANCEL without AUTOMATIC: one answer per prompt, a file name or CANCEL.
      for (;;) {
        const seq = applied + 1;
        out(`ORA-00279: change ${seq * 1000} generated at needed for thread 1\nORA-00289: suggestion : ${path.join(logsource ?? s.archiveDest, logFileName(s.logArchiveFormat, 1, seq, cf.resetlogsId))}\nSpecify log: {<RET>=suggested | filename | AUTO | CANCEL}`);
        const answer = (lines[++i] ?? '').trim();
        if (answer === 'CANCEL') { out('Media recovery cancelled.'); break; }
        if (!check(answer, seq, cf.resetlogsId)) { fail('ORA-00308', `cannot open archived log '${answer}'\nORA-27037: unable to obtain file status`); failed = true; break; }
        applied = seq;
      }
    } else {
      for (;;) {
        const seq = applied + 1;
        const a = s.archived.find((x) => x.sequence === seq && x.resetlogsId === cf.resetlogsId);
        if (until && a && archivedTime(a.firstTime) > until) break;
        const file = path.join(logsource ?? s.archiveDest, logFileName(s.logArchiveFormat, 1, seq, cf.resetlogsId));
        if (!check(file, seq, cf.resetlogsId)) { fail('ORA-00308', `cannot open archived log '${file}'\nORA-27037: unable to obtain file status`); failed = true; break; }
        applied = seq;
        if (until && archivedTime(a.nextTime) > until) break;
      }
      if (!failed) out('Media recovery complete.');
    }
    if (failed) continue;
    s.recovery = { appliedThrough: applied, consistent: applied >= cf.archivedThrough, until: m[3] ?? null, snapshotTime: m[5] ?? null, backupControlFile: true };
  } else if (line === 'ALTER DATABASE OPEN RESETLOGS;') {
    if (s.status !== 'MOUNTED') { fail('ORA-01507', 'database not mounted'); continue; }
    if (!s.recovery?.consistent) { fail('ORA-01194', `file 1 needs more recovery to be consistent\nORA-01110: data file 1: '${s.datafiles[0].name}'`); continue; }
    s.status = 'OPEN';
    s.resetlogsId += 1;
    s.resetlogsChange = s.scn;
    s.sequence = 1;
    s.backup = {};
    s.opened = { resetlogs: true, recovery: s.recovery };
    delete s.recovery;
    out('Database altered.');
  } else if ((m = /^ALTER TABLESPACE (\w+) OFFLINE IMMEDIATE;$/.exec(line))) {
    const ts = s.tablespaces.find((t) => t.name === m[1]);
    if (s.status !== 'OPEN') fail('ORA-01109', 'database not open');
    else if (!ts) fail('ORA-00959', `tablespace '${m[1]}' does not exist`);
    else if (ts.name === 'SYSTEM') fail('ORA-01541', 'system tablespace cannot be brought offline; shut down if necessary');
    else if (ts.name === s.undoTablespace) fail('ORA-30042', 'Cannot offline the undo tablespace');
    else {
      ts.status = 'OFFLINE';
      ts.needsRecovery = true;
      out('Tablespace altered.');
    }
  } else if ((m = /^RECOVER AUTOMATIC TABLESPACE ([\w, ]+)$/.exec(line))) {
    const names = m[1].split(',').map((x) => x.trim());
    const bad = names.find((n) => s.tablespaces.find((t) => t.name === n)?.status !== 'OFFLINE');
    if (bad) { fail('ORA-01124', `cannot recover data file - file is in use or recovery\n(tablespace ${bad} is not offline)`); continue; }
    // Every log from the newest BEGIN BACKUP on must be in LOGSOURCE, with the server's bytes.
    let failed = false;
    for (let seq = s.lastBeganSequence; seq < s.sequence; seq++) {
      const file = path.join(logsource ?? s.archiveDest, logFileName(s.logArchiveFormat, 1, seq, s.resetlogsId));
      if (!check(file, seq, s.resetlogsId)) { fail('ORA-00308', `cannot open archived log '${file}'\nORA-27037: unable to obtain file status`); failed = true; break; }
    }
    if (failed) continue;
    for (const n of names) s.tablespaces.find((t) => t.name === n).needsRecovery = false;
    out('Media recovery complete.');
  } else if ((m = /^ALTER TABLESPACE (\w+) ONLINE;$/.exec(line))) {
    const ts = s.tablespaces.find((t) => t.name === m[1]);
    if (!ts) fail('ORA-00959', `tablespace '${m[1]}' does not exist`);
    else if (ts.needsRecovery) {
      const f = s.datafiles.find((d) => d.ts === ts.name);
      fail('ORA-01113', `file ${f.file} needs media recovery\nORA-01110: data file ${f.file}: '${f.name}'`);
    } else {
      ts.status = 'ONLINE';
      out('Tablespace altered.');
    }
  } else {
    out(`SP2-0734: unknown command beginning "${line.slice(0, 10)}..." - rest of line ignored.`);
    save(s);
    process.exit(1);
  }
}
save(s);
process.exit(0);

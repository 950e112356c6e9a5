// The stand-in Db2 instance's state, shared by the CLP stand-in (db2-double.mjs) and db2inidb-double.mjs:
// one JSON file (path in $EBR_DB2_DOUBLE_STATE), rewritten atomically, since the CLI, its watchdog, the
// interactive CLP and one-shot runs are separate processes. Every call is appended to <state>.calls.jsonl.
import { appendFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

export function statePath() {
  const p = process.env.EBR_DB2_DOUBLE_STATE;
  if (!p) throw new Error('EBR_DB2_DOUBLE_STATE is not set');
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

export function record(entry) {
  appendFileSync(`${statePath()}.calls.jsonl`, JSON.stringify({ at: new Date().toISOString(), pid: process.pid, instance: process.env.DB2INSTANCE ?? null, ...entry }) + '\n');
}

/** yyyy-mm-dd-hh.mm.ss.nnnnnn, Db2's timestamp format, in local time. */
export function db2Timestamp(d = new Date()) {
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}-${p(d.getHours())}.${p(d.getMinutes())}.${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}000`;
}

/** The CLP's table format: a header, a line of dashes per column width, the rows, `N record(s) selected.` */
export function table(columns, rows) {
  const width = columns.map((c, i) => Math.max(c.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((v, i) => String(v).padEnd(width[i])).join(' ').trimEnd();
  return ['', line(columns), width.map((w) => '-'.repeat(w)).join(' '), ...rows.map(line), '', `  ${rows.length} record(s) selected.`, ''].join('\n');
}

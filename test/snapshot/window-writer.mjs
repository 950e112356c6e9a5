// A writer that commits one small transaction every millisecond to a SQLite database, and reports its
// worst stall (the longest gap between two commits) and every stall over 10 ms (start and end, epoch ms)
// to STATUSFILE every 20 ms. SIGUSR1 starts a new measurement; SIGTERM writes the last status and exits.
// Usage: node window-writer.mjs DB STATUSFILE
import { renameSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';

const [file, statusFile] = process.argv.slice(2);
const db = new Database(file);
db.pragma('busy_timeout = 60000');
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec('CREATE TABLE IF NOT EXISTS ticks (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL)');
const insert = db.prepare('INSERT INTO ticks (seq, at) VALUES (?, ?)');
let seq = db.prepare('SELECT coalesce(max(seq), 0) AS m FROM ticks').get().m;
let worstStallMs = 0;
let stalls = [];
let since = Date.now();
let last = performance.now();
let lastReport = 0;
// Written aside and renamed, so a reader never sees half a status.
const report = () => {
  writeFileSync(`${statusFile}.tmp`, JSON.stringify({ seq, worstStallMs, stalls, since, lastCommitAt: Date.now(), pid: process.pid }));
  renameSync(`${statusFile}.tmp`, statusFile);
};
process.on('SIGUSR1', () => {
  worstStallMs = 0;
  stalls = [];
  since = Date.now();
  last = performance.now();
  report();
});
process.on('SIGTERM', () => {
  report();
  setTimeout(() => process.exit(0), 20);
});
function tick() {
  insert.run(++seq, Date.now());
  const t = performance.now();
  worstStallMs = Math.max(worstStallMs, t - last);
  if (t - last > 10 && stalls.length < 1000) {
    const end = Date.now();
    stalls.push([end - (t - last), end]);
  }
  last = t;
  if (t - lastReport > 20) {
    lastReport = t;
    report();
  }
  setTimeout(tick, 1);
}
report();
tick();

#!/usr/bin/env node
// A stand-in for onbar: logical log backup (`-b -l`, `-b -l -c` closing the current log first, `-b -l -s`
// salvage with the server off-line) and external restore (`-r -e [-t time] [-p [dbspaces]]`, `-r -l`),
// refusing what the ON-Bar guide refuses: a warm restore of a critical dbspace, a cold restore on-line,
// a point-in-time restore of some dbspaces (Backup and Restore Guide: "External restore commands",
// "Performing a cold external restore", "Performing a warm external restore"; "onbar -b syntax: Backing
// up" for -b -l, -c and -s). Each external restore records the sha256 of every chunk's byte range as it
// found them, proving the chunks were put back before ON-Bar ran, as the guide requires.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { load, record, save } from './state.mjs';

const base = 2048;
function chunkDigests(s) {
  const out = {};
  for (const c of s.chunks) {
    const d = s.dbspaces.find((x) => x.number === c.dbs);
    const buf = Buffer.alloc(c.size * d.pgsize);
    const fd = openSync(c.path, 'r');
    try { readSync(fd, buf, 0, buf.length, c.offset * base); } finally { closeSync(fd); }
    out[c.chunk] = createHash('sha256').update(buf).digest('hex');
  }
  return out;
}

record('onbar');
const s = load();
const args = process.argv.slice(2);
const fail = (m) => { process.stdout.write(`${m}\n`); save(s); process.exit(1); };
const j = args.join(' ');
if (j === '-b -l' || j === '-b -l -c') {
  if (s.mode === 'offline') fail('BAR0010: The database server is not on-line');
  if (s.blocked) fail('BAR0012: The server is blocked; the logical log cannot be backed up');
  if (j === '-b -l -c') {
    s.logs.push({ uniqid: s.currentLog + 1, backedUp: false });
    s.currentLog += 1;
  }
  for (const l of s.logs) if (l.uniqid !== s.currentLog) l.backedUp = true;
} else if (j === '-b -l -s') {
  if (s.mode !== 'offline') fail('BAR0015: log salvage needs the server off-line');
  s.salvaged = true;
} else if (args[0] === '-r' && args[1] === '-e') {
  let rest = args.slice(2);
  let until = null;
  if (rest[0] === '-t') { until = rest[1]; rest = rest.slice(2); if (!/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(until ?? '')) fail(`BAR0100: invalid time ${until}`); }
  const physical = rest[0] === '-p';
  const names = physical ? rest.slice(1) : rest;
  if (names.length) {
    if (s.mode === 'offline') fail('BAR0020: a warm restore needs the server on-line');
    const critical = names.filter((n) => { const d = s.dbspaces.find((x) => x.name === n); return !d || d.critical; });
    if (critical.length) fail(`BAR0214: ${critical.join(', ')} is critical or unknown and cannot be restored warm`);
    if (until) fail('BAR0216: a point-in-time restore of some dbspaces is not supported');
    s.restores.push({ kind: 'warm-physical', dbspaces: names, chunks: chunkDigests(s) });
    s.pendingLogical = true;
  } else {
    if (s.mode !== 'offline') fail('BAR0019: a cold restore needs the server off-line');
    s.restores.push({ kind: physical ? 'cold-physical' : 'cold', until, salvaged: !!s.salvaged, chunks: chunkDigests(s) });
    s.salvaged = false;
    if (physical) s.pendingLogical = true;
    else s.mode = 'quiescent';
  }
} else if (j === '-r -l') {
  if (!s.pendingLogical) fail('BAR0300: no physical restore waits for a logical restore');
  s.pendingLogical = false;
  s.restores.push({ kind: 'logical' });
  if (s.mode === 'offline') s.mode = 'quiescent';
} else fail(`onbar: invalid arguments ${j}`);
save(s);

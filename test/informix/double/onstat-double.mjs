#!/usr/bin/env node
// A stand-in for onstat: `onstat -` (header only), `onstat -d` (dbspaces and chunks) and `onstat -l`
// (physical and logical log), in the layout the Administrator's Reference documents ("onstat -d
// command: Print chunk information": the Dbspaces section — address, number, flags, fchunk, nchunks,
// pgsize, flags, owner, name; the Chunks section — address, chunk/dbs, offset and size (offset in base
// pages, size in pages of the dbspace, per the NOTE below it), free, bpages, flags, pathname; "onstat -l
// command: Print physical and logical log information": phybegin as chunk:page, and each log file's
// address, number, flags (U used, B backed up, C current, L last checkpoint), uniqid, begin chunk:page,
// size, used, %used). The second flags column of a dbspace: position 1 M/N (mirrored or not), position
// 3 T for a temporary dbspace (B blobspace, S sbspace, U temporary sbspace), position 4 B (large chunks).
// With the server down every onstat prints "shared memory not initialized" and exits 255.
import { header, load, offline, record } from './state.mjs';

record('onstat');
const s = load();
const opt = process.argv[2] ?? '-';
offline(s);
const out = [header(s), ''];
const hex = (n) => (0x44800000 + n * 0x1000).toString(16);
if (opt === '-d') {
  out.push('Dbspaces', 'address          number   flags      fchunk   nchunks  pgsize   flags    owner    name');
  for (const d of s.dbspaces) out.push(`${hex(d.number)}         ${d.number}        ${d.temp ? '0x42001' : '0x60001'}    ${d.fchunk}        ${s.chunks.filter((c) => c.dbs === d.number).length}        ${d.pgsize}     N ${d.temp ? 'T' : ' '}B    informix ${d.name}`);
  out.push(` ${s.dbspaces.length} active, 2047 maximum`, '', 'Chunks', 'address          chunk/dbs     offset     size       free       bpages     flags pathname');
  for (const c of s.chunks) out.push(`${hex(100 + c.chunk)}         ${c.chunk}      ${c.dbs}      ${c.offset}          ${c.size}        ${Math.floor(c.size / 3)}                 PO-B-- ${c.path}`);
  out.push(` ${s.chunks.length} active, 32766 maximum`, '', 'NOTE: The values in the "size" and "free" columns for DBspace chunks are', '      displayed in terms of "pgsize" of the DBspace to which they belong.');
} else if (opt === '-l') {
  out.push('Physical Logging', 'Buffer bufused  bufsize  numpages   numwrits   pages/io', '  P-2  0        16       0          0          0.00', '      phybegin         physize    phypos     phyused    %used', `      ${s.physChunk}:263            8750       344        0          0.00`, '');
  out.push('Logical Logging', 'Buffer bufused  bufsize  numrecs    numpages   numwrits   recs/pages pages/io', '  L-1  0        16       10         2          2          5.0        1.0', '');
  out.push('address          number   flags    uniqid   begin                size     used    %used');
  s.logs.forEach((l, i) => out.push(`${hex(200 + i)}         ${i + 1}        ${l.uniqid === s.currentLog ? "U---C-L" : l.backedUp ? "U-B----" : "U------"}  ${l.uniqid}        ${s.logChunk}:${9013 + i * 5000}              5000     1000    20.00`));
}
process.stdout.write(out.join('\n') + '\n');

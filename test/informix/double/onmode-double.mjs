#!/usr/bin/env node
// A stand-in for onmode: `-c` (checkpoint), `-c block` (checkpoint, then the server blocked until
// `-c unblock`), `-ky` (off-line) — what the Administrator's Reference ("onmode -c: Force a checkpoint")
// and the Backup and Restore Guide ("Block and unblock the database server", onmode -c block|unblock)
// document for them. A blocked server stays blocked whoever ran the block: it is server state.
// With `blockRename` in the state, onmode -c block also renames that file away (to <file>.gone), so the
// snapshot inside the window fails.
import { renameSync } from 'node:fs';
import { load, offline, record, save } from './state.mjs';

record('onmode');
const s = load();
offline(s);
const a = process.argv.slice(2).join(' ');
if (a === '-c') s.checkpoints += 1;
else if (a === '-c block') {
  if (s.blocked) { process.stdout.write('The server is already blocked.\n'); process.exit(1); }
  s.checkpoints += 1;
  s.blocked = true;
  s.blockedLog = s.currentLog;
  s.blocks = (s.blocks ?? 0) + 1;
  if (s.blockRename) renameSync(s.blockRename, `${s.blockRename}.gone`);
} else if (a === '-c unblock') {
  if (!s.blocked) { process.stdout.write('The server is not blocked.\n'); process.exit(1); }
  s.blocked = false;
  s.unblocks += 1;
} else if (a === '-ky') s.mode = 'offline';
else { process.stdout.write(`onmode: invalid option ${a}\n`); process.exit(1); }
save(s);

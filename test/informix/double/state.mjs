// The Informix stand-in's state, shared by the onstat, onmode and onbar stand-ins: one JSON file
// ($EBR_INFORMIX_DOUBLE_STATE), rewritten atomically, since ebr, its watchdog and each tool are
// separate processes. Every run is recorded (argv, INFORMIXSERVER) in <state>.runs.jsonl.
import { appendFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export function statePath() {
  const p = process.env.EBR_INFORMIX_DOUBLE_STATE;
  if (!p) throw new Error('EBR_INFORMIX_DOUBLE_STATE is not set');
  return p;
}
export const load = () => JSON.parse(readFileSync(statePath(), 'utf8'));
export function save(s) {
  const tmp = `${statePath()}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(s, null, 1));
  renameSync(tmp, statePath());
}
/**
 * Records this run; then, if the test asked this exact command to fail (state.fail['onbar -b -l -c'] =
 * { message, exit }), prints the message and exits with that status, changing nothing.
 */
export function record(tool) {
  const argv = process.argv.slice(2);
  appendFileSync(`${statePath()}.runs.jsonl`, JSON.stringify({ at: new Date().toISOString(), tool, argv, server: process.env.INFORMIXSERVER ?? null, informixdir: process.env.INFORMIXDIR ?? null }) + '\n');
  const f = load().fail?.[[tool, ...argv].join(' ')];
  if (f) {
    process.stdout.write(`${f.message}\n`);
    process.exit(f.exit ?? 1);
  }
}
export const toolName = (file) => path.basename(file).replace(/-double\.mjs$/, '');

/**
 * The header every onstat run prints first (Administrator's Reference, "onstat -" / "Monitor the
 * database server status": version -- mode -- up time -- shared memory), with the `Blocked:` line
 * below it while the server is blocked; onmode -c block shows as `Blocked:ARCHIVE_EBR`. The test may set
 * `otherBlock` (CKPT, LONGTX…) for a block of the server's own.
 */
export function header(s) {
  const mode = s.mode === 'online' ? 'On-Line' : s.mode === 'quiescent' ? 'Quiescent' : 'Off-Line';
  const reasons = [...(s.blocked ? ['ARCHIVE_EBR'] : []), ...(s.otherBlock ? [s.otherBlock] : [])];
  return `IBM Informix Dynamic Server Version 14.10.FC9 -- ${mode} -- Up 01:02:03 -- 156096 Kbytes${reasons.length ? `\nBlocked:${reasons.join(' ')}` : ''}`;
}
export function offline(s) {
  if (s.mode !== 'offline') return false;
  process.stdout.write(`shared memory not initialized for INFORMIXSERVER '${s.server}'\n`);
  process.exit(255);
}

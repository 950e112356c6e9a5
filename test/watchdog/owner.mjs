// An ebr-like owner process for the watchdog tests: arms a watchdog over the fake block, prints the
// handle as one JSON line, then acts as told: `hold` (stays blocked until killed), `claim-hold` (claims
// the release, then stays), `disarm:MS` (after MS releases the block itself the normal way and disarms).
// Usage: node owner.mjs WATCHDOG_JS DIR BACKUP_ID DEADLINE_MS MODE -- RELEASE_COMMAND...
const [watchdogJs, dir, backupId, deadlineMs, mode, sep, ...releaseCommand] = process.argv.slice(2);
if (sep !== '--') throw new Error('usage: owner.mjs WATCHDOG_JS DIR BACKUP_ID DEADLINE_MS MODE -- COMMAND...');
const { armWatchdog } = await import(watchdogJs);
const wd = await armWatchdog({ dir, backupId, deadlineMs: Number(deadlineMs), releaseCommand, pollMs: 50 });
process.stdout.write(`${JSON.stringify({ pid: wd.pid, entryFile: wd.entryFile })}\n`);
if (mode === 'claim-hold') wd.claim();
if (mode.startsWith('disarm:')) {
  await new Promise((r) => setTimeout(r, Number(mode.slice('disarm:'.length))));
  const owned = wd.claim();
  if (owned) {
    const { execFileSync } = await import('node:child_process');
    execFileSync(releaseCommand[0], releaseCommand.slice(1));
  }
  const r = await wd.disarm();
  process.stdout.write(`${JSON.stringify({ owned, ...r })}\n`);
  process.exit(0);
}
setInterval(() => undefined, 1 << 30);

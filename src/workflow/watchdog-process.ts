/**
 * The detached watchdog: `node watchdog-process.js <entry.json>`. It outlives the ebr process that armed
 * it, watches the clock and the owner, and ends the block with the journaled release command at the
 * deadline — or at once when the owner dies, since nobody else could end it then. It exits as soon as
 * the entry says the block was released by anyone.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { thisRunner } from '../util/runner.js';
import { claimRelease, readEntry, runnerIsGone, watchingFileOf, writeDurably } from './watchdog-journal.js';
import { runRelease } from './watchdog-release.js';

async function watch(entryFile: string): Promise<number> {
  const dir = path.dirname(entryFile);
  const first = readEntry(entryFile);
  if (!first) {
    process.stderr.write(`watchdog: no readable entry at ${entryFile}\n`);
    return 2;
  }
  const me = thisRunner();
  // Tells armWatchdog this process is up and watching; it waits for this before the block starts.
  writeDurably(watchingFileOf(dir, first.backupId), JSON.stringify(me));
  log(`watching block of backup ${first.backupId}: owner pid ${first.owner.pid}, deadline ${new Date(first.deadlineAt).toISOString()}`);
  for (;;) {
    const entry = readEntry(entryFile);
    if (!entry || !existsSync(entryFile)) return 0;
    if (entry.state === 'released') {
      log(`released by ${entry.releasedBy ?? '?'} (${entry.reason ?? ''}); exiting`);
      return 0;
    }
    const ownerDead = runnerIsGone(entry.owner);
    const late = Date.now() >= entry.deadlineAt;
    if (ownerDead || late || entry.state === 'release-failed') {
      if (claimRelease(dir, entry.backupId, 'watchdog', me)) {
        const reason = ownerDead ? `owner pid ${entry.owner.pid} died` : late ? 'deadline reached' : 'retrying a failed release';
        log(`ending the block: ${reason}; running ${entry.releaseCommand.join(' ')}`);
        const done = await runRelease(dir, entry, 'watchdog', reason);
        log(`release command exited ${done.result?.exitCode}: ${done.result?.output ?? ''}`);
        // A failed release is left for the next ebr command to retry (repairUnfinishedBlocks).
        return done.state === 'released' ? 0 : 1;
      }
      // Someone alive holds the claim (the owner unblocking late, or a repair): keep watching in case it dies.
    }
    await sleep(Math.max(10, Math.min(entry.pollMs, entry.deadlineAt - Date.now() > 0 ? entry.deadlineAt - Date.now() : entry.pollMs)));
  }
}

function log(line: string): void {
  process.stdout.write(`${new Date().toISOString()} ${line}\n`);
}

const entryFile = process.argv[2];
if (!entryFile) {
  process.stderr.write('usage: watchdog-process.js ENTRY.json\n');
  process.exit(2);
}
// Signals from the terminal that started ebr must not stop the watchdog; only its own owner's disarm does (SIGTERM).
process.on('SIGINT', () => undefined);
process.on('SIGHUP', () => undefined);
watch(entryFile).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`watchdog: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);

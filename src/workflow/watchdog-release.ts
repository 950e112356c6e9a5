/** Ends a block from outside its session: runs the entry's release command and journals the outcome. */
import { loadExeca } from '../util/execa.js';
import { writeEntry, type ReleaseRole, type WatchdogEntry } from './watchdog-journal.js';

const releaseTimeoutMs = 120_000;

export async function runRelease(dir: string, entry: WatchdogEntry, role: ReleaseRole, reason: string): Promise<WatchdogEntry> {
  const [file, ...args] = entry.releaseCommand;
  let result: { exitCode: number | null; output: string };
  if (!file) {
    result = { exitCode: null, output: 'no release command in the journal' };
  } else {
    const execa = await loadExeca();
    const r = await execa(file, args, { reject: false, all: true, stdin: 'ignore', timeout: releaseTimeoutMs, forceKillAfterDelay: 5000 });
    const output = String(r.all ?? r.message ?? '').slice(-2000);
    result = { exitCode: r.exitCode ?? null, output: r.exitCode === undefined ? `${output}\n${r.shortMessage}`.trim() : output };
  }
  const done: WatchdogEntry = {
    ...entry,
    state: result.exitCode === 0 ? 'released' : 'release-failed',
    releasedBy: role,
    releasedAt: new Date().toISOString(),
    reason,
    result,
  };
  writeEntry(dir, done);
  return done;
}

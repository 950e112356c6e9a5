/** What the watchdog tests share: processes they started are killed at the end, and the watchdog's journal is read. */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { waitFor } from './env.js';

/** Pids to kill once the file's tests are over (pass to afterAll). */
export function killLater(): { pids: number[]; killAll(): void } {
  const pids: number[] = [];
  return {
    pids,
    killAll() {
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    },
  };
}

/** The pid of the watchdog watching a backup of the config in configDir, once its journal names it. */
export function watchdogPid(configDir: string): Promise<number> {
  const wdDir = path.join(configDir, 'watchdog');
  return waitFor('the watchdog journal', () => {
    try {
      const f = readdirSync(wdDir).find((n) => n.endsWith('.watching'));
      return f ? (JSON.parse(readFileSync(path.join(wdDir, f), 'utf8')) as { pid: number }).pid : undefined;
    } catch {
      return undefined;
    }
  }, 10_000, 50);
}

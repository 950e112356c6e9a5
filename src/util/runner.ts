/** Who runs a backup, and whether that process still lives — so a dead runner's backup is never left `running`. */
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface Runner {
  host: string;
  pid: number;
  /** Process start time in clock ticks since boot (Linux), to tell a reused pid from the original. */
  start: string;
}

export function processStart(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses; fields after the last ')' are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? '';
  } catch {
    return '';
  }
}

/** This host's name; EBR_HOST overrides it (agents that share a machine but stand for different hosts). */
export function hostName(): string {
  return process.env.EBR_HOST || os.hostname();
}

export function thisRunner(): Runner {
  return { host: hostName(), pid: process.pid, start: processStart(process.pid) };
}

/** True when the runner is on this host and gone; a runner on another host is never judged dead. */
export function runnerIsDead(r: Runner): boolean {
  if (r.host !== hostName()) return false;
  try {
    process.kill(r.pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
  const start = processStart(r.pid);
  return r.start !== '' && start !== '' && start !== r.start;
}

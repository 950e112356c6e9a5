/** Which processes hold a file open, read from /proc (Linux): restore refuses to replace a file in use. */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface Holder {
  pid: number;
  command: string;
  path: string;
}

export function processesHolding(paths: string[]): Holder[] {
  const wanted = new Set(paths);
  const holders: Holder[] = [];
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return holders;
  }
  for (const pid of pids) {
    if (Number(pid) === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to see
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (wanted.has(target)) {
        holders.push({ pid: Number(pid), command: commandOf(pid), path: target });
      }
    }
  }
  return holders;
}

function commandOf(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ').slice(0, 120);
  } catch {
    return '?';
  }
}

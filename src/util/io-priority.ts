/**
 * The I/O scheduling class of this process while it reads a backup (ioPriority), set with util-linux's
 * `ionice`. Linux keeps the I/O priority per thread, not per process: `ionice -p PID` changes only the
 * main thread, while the reads of the frozen files run on libuv's threadpool (and zstd or S3 threads
 * may be there too). So every task in /proc/self/task is set, and threads started later inherit the
 * class of the thread that starts them. The classes only matter to a scheduler that honours them —
 * BFQ, and mq-deadline since Linux 5.14 (IDLE requests after the others); `none` and kyber ignore them.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export type IoPriority = 'idle' | 'best-effort' | 'normal';
export const ioPriorities: readonly IoPriority[] = ['idle', 'best-effort', 'normal'];

/** ionice's arguments for each setting: idle class; best-effort at its lowest level (7). */
const ioniceArgs: Record<Exclude<IoPriority, 'normal'>, string[]> = {
  idle: ['-c', '3'],
  'best-effort': ['-c', '2', '-n', '7'],
};

/**
 * The CPU niceness that goes with each class. On a small machine the backup's cost to the database is
 * as much CPU (sha256, compression) as disk, and the I/O class does nothing for that. Like the I/O
 * class, niceness is per thread on Linux (setpriority on a thread id).
 */
const cpuNice: Record<Exclude<IoPriority, 'normal'>, number> = { idle: 19, 'best-effort': 10 };

export interface ThreadPriority {
  tid: string;
  /** The thread's name (comm). */
  name: string;
  /** What `ionice -p TID` prints: "idle", "best-effort: prio 7", "none: prio 0". */
  ioprio: string;
}

export interface AppliedIoPriority {
  priority: IoPriority;
  /** Threads set (0 for normal, which changes nothing). */
  threads: number;
  /** The CPU niceness the threads got; absent when it was left alone (see niceThreads). */
  nice?: number;
  /** Why it could not be set (the backup goes on at the priority it had). */
  error?: string;
  /** Puts every thread back to what it had (threads started since: to what the main thread had). */
  restore(): Promise<void>;
}

export function threadIds(pid: number | 'self' = 'self'): string[] {
  return readdirSync(`/proc/${pid}/task`);
}

/** Each thread's current class, as ionice reports it (threads that ended meanwhile are left out). */
export async function threadPriorities(pid: number | 'self' = 'self'): Promise<ThreadPriority[]> {
  const tids = threadIds(pid);
  const name = (tid: string) => readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
  try {
    // One line per thread, in order; it fails as a whole when a thread ended meanwhile.
    const lines = (await exec('ionice', ['-p', ...tids])).stdout.trim().split('\n');
    if (lines.length === tids.length) return tids.map((tid, i) => ({ tid, name: name(tid), ioprio: lines[i]!.trim() }));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw err;
  }
  const out: ThreadPriority[] = [];
  for (const tid of tids) {
    try {
      const { stdout } = await exec('ionice', ['-p', tid]);
      out.push({ tid, name: name(tid), ioprio: stdout.trim() });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw err;
      /* the thread ended */
    }
  }
  return out;
}

/** `ionice -p` output back into arguments that set it again. */
function argsOf(printed: string): string[] {
  const [cls, level] = printed.split(/:\s*prio\s*/);
  const c = { none: '0', realtime: '1', 'best-effort': '2', idle: '3' }[cls!.trim()] ?? '0';
  return c === '1' || c === '2' ? ['-c', c, '-n', level ?? '4'] : ['-c', c];
}

/** Sets the class of the given threads; a thread that ended between listing and setting is no failure. */
async function setThreads(args: string[], tids: string[]): Promise<number> {
  if (tids.length === 0) return 0;
  try {
    await exec('ionice', [...args, '-p', ...tids]);
    return tids.length;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw err;
    // One by one: ionice stops at the first thread that is gone.
    let n = 0;
    for (const tid of tids) {
      try {
        await exec('ionice', [...args, '-p', tid]);
        n++;
      } catch (e) {
        if (existsTask(tid)) throw e;
      }
    }
    return n;
  }
}

function existsTask(tid: string): boolean {
  try {
    readFileSync(`/proc/self/task/${tid}/comm`);
    return true;
  } catch {
    return false;
  }
}

/** Sets every thread of this process to `priority` (normal: leaves them as they are). */
export async function applyIoPriority(priority: IoPriority): Promise<AppliedIoPriority> {
  const nothing = async () => undefined;
  if (priority === 'normal') return { priority, threads: 0, restore: nothing };
  let before: ThreadPriority[];
  try {
    before = await threadPriorities();
  } catch (err) {
    return { priority, threads: 0, error: reason(err), restore: nothing };
  }
  try {
    const threads = await setThreads(ioniceArgs[priority], threadIds());
    const niced = niceThreads(cpuNice[priority]);
    const restore = async () => {
      niced?.restore();
      await restoreThreads(before);
    };
    return { priority, threads, ...(niced ? { nice: niced.nice } : {}), restore };
  } catch (err) {
    await restoreThreads(before).catch(() => undefined);
    return { priority, threads: 0, error: reason(err), restore: nothing };
  }
}

/**
 * Sets every thread's niceness, and undoes it afterwards. Raising it back needs CAP_SYS_NICE, so it is
 * done only by root: an ebr daemon left at nice 19 would run its next backup's block window slowly.
 */
function niceThreads(nice: number): { nice: number; restore(): void } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const was = new Map<number, number>();
  for (const tid of threadIds().map(Number)) {
    try {
      was.set(tid, os.getPriority(tid));
      os.setPriority(tid, Math.max(nice, was.get(tid)!));
    } catch {
      /* the thread ended */
    }
  }
  const main = was.get(process.pid) ?? 0;
  return {
    nice,
    restore() {
      // Threads started since inherited the niceness of the one that started them.
      for (const tid of threadIds().map(Number)) {
        try {
          os.setPriority(tid, was.get(tid) ?? main);
        } catch {
          /* the thread ended */
        }
      }
    },
  };
}

async function restoreThreads(before: ThreadPriority[]): Promise<void> {
  const was = new Map(before.map((t) => [t.tid, t.ioprio]));
  const main = was.get(String(process.pid)) ?? 'none: prio 0';
  const groups = new Map<string, string[]>();
  for (const tid of threadIds()) {
    const p = was.get(tid) ?? main;
    groups.set(p, [...(groups.get(p) ?? []), tid]);
  }
  for (const [printed, tids] of groups) await setThreads(argsOf(printed), tids);
}

function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { stderr?: string };
  if (e.code === 'ENOENT') return 'ionice is not installed (util-linux); the backup read at normal priority';
  return `ionice failed: ${(e.stderr || e.message || String(err)).trim()}; the backup read at normal priority`;
}

/** The block device's scheduler for a path's filesystem, as /sys shows it ("none [mq-deadline] kyber bfq"). */
export function schedulerOf(device: string): string | undefined {
  try {
    return readFileSync(`/sys/block/${device}/queue/scheduler`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

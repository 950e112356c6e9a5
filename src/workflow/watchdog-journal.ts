/**
 * The watchdog's journal: one JSON file per block that outlives the ebr process, written atomically and
 * fsynced before the block starts, and release claims that make sure exactly one process ends a block.
 *
 * A claim is a file `<backup>.claim.<n>` made with link(2), which fails if it exists: the holder of the
 * highest n is the one releasing. When that holder dies before marking the entry released, the next
 * process takes over with n+1 — so a block is released by the owner, the watchdog or a repair, once.
 */
import { closeSync, fsyncSync, linkSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { runnerIsDead, type Runner } from '../util/runner.js';

export type ReleaseRole = 'owner' | 'watchdog' | 'repair';

export interface WatchdogEntry {
  version: 1;
  backupId: string;
  instance?: string;
  /** The ebr process that holds the block. */
  owner: Runner;
  armedAt: string;
  /** Epoch ms at which the watchdog ends the block if nobody else has. */
  deadlineAt: number;
  /** argv that ends the block from outside the session; runs without a shell. */
  releaseCommand: string[];
  /** How often the watchdog looks at the owner and the clock, in ms. */
  pollMs: number;
  state: 'armed' | 'released' | 'release-failed';
  releasedBy?: ReleaseRole;
  releasedAt?: string;
  /** Why it was released: disarmed by the owner, the deadline, the owner's death. */
  reason?: string;
  /** The release command's outcome (not set when the owner released through its session). */
  result?: { exitCode: number | null; output: string };
}

export const entryFileOf = (dir: string, backupId: string) => path.join(dir, `${backupId}.json`);
export const watchingFileOf = (dir: string, backupId: string) => path.join(dir, `${backupId}.watching`);
export const logFileOf = (dir: string, backupId: string) => path.join(dir, `${backupId}.log`);

/** Writes a file so that a crash leaves either the old or the new content, never a torn one. */
export function writeDurably(file: string, content: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function writeEntry(dir: string, entry: WatchdogEntry): void {
  writeDurably(entryFileOf(dir, entry.backupId), `${JSON.stringify(entry, null, 2)}\n`);
}

export function readEntry(file: string): WatchdogEntry | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as WatchdogEntry;
  } catch {
    return undefined;
  }
}

interface Claim {
  n: number;
  file: string;
  holder?: { role: ReleaseRole; runner: Runner };
}

function claimsOf(dir: string, backupId: string): Claim[] {
  const prefix = `${backupId}.claim.`;
  return readdirSync(dir)
    .filter((f) => f.startsWith(prefix) && /^\d+$/.test(f.slice(prefix.length)))
    .map((f) => {
      const file = path.join(dir, f);
      let holder: Claim['holder'];
      try {
        holder = JSON.parse(readFileSync(file, 'utf8')) as Claim['holder'];
      } catch {
        holder = undefined;
      }
      return { n: Number(f.slice(prefix.length)), file, ...(holder ? { holder } : {}) };
    })
    .sort((a, b) => a.n - b.n);
}

/**
 * Gone for good: dead, or a zombie waiting for its parent to reap it (it can no longer end or hold a
 * block, and it would otherwise look alive until then).
 */
export function runnerIsGone(r: Runner): boolean {
  if (runnerIsDead(r)) return true;
  if (r.host !== hostname()) return false;
  try {
    const stat = readFileSync(`/proc/${r.pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

const sameRunner = (a: Runner, b: Runner) => a.host === b.host && a.pid === b.pid && a.start === b.start;

/** The live holder of the release, if any. */
export function currentClaim(dir: string, backupId: string): Claim | undefined {
  return claimsOf(dir, backupId).at(-1);
}

/**
 * Takes the right to end the block. True when this process now holds it (or already did); false when
 * the block is already released, or another live process holds the claim.
 */
export function claimRelease(dir: string, backupId: string, role: ReleaseRole, me: Runner): boolean {
  const entry = readEntry(entryFileOf(dir, backupId));
  if (!entry || entry.state === 'released') return false;
  const top = claimsOf(dir, backupId).at(-1);
  if (top) {
    if (top.holder && sameRunner(top.holder.runner, me)) return true;
    // A claim without a readable holder cannot happen (claims are linked in whole); treat it as live.
    if (!top.holder || !runnerIsGone(top.holder.runner)) return false;
  }
  const n = (top?.n ?? 0) + 1;
  const file = path.join(dir, `${backupId}.claim.${n}`);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ role, runner: me }), { mode: 0o600 });
  try {
    linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkSync(tmp);
  }
  fsyncDir(dir);
  return true;
}

/** Every file that belongs to one entry (entry, claims, log, watching marker). */
export function filesOf(dir: string, backupId: string): string[] {
  return readdirSync(dir)
    .filter((f) => f === `${backupId}.json` || f.startsWith(`${backupId}.claim.`) || f === `${backupId}.log` || f === `${backupId}.watching`)
    .map((f) => path.join(dir, f));
}

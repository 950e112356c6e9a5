/**
 * A watchdog for blocks that outlive the ebr process (Oracle BEGIN BACKUP, Informix `onmode -c block`,
 * SQL Server suspend): the block-window gate arms it before block when the adapter's
 * `capabilities.blockSurvivesSession` is set. Arming journals the block (fsynced) and starts a detached
 * process that ends the block with `releaseCommand` at the deadline, or as soon as the owner dies. The
 * owner's normal path is claim → unblock on its session → disarm. The next ebr command calls
 * repairUnfinishedBlocks, which ends any block whose owner and watchdog are both gone.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { EbrError } from '../errors.js';
import { processStart, thisRunner, type Runner } from '../util/runner.js';
import {
  claimRelease,
  currentClaim,
  entryFileOf,
  filesOf,
  logFileOf,
  readEntry,
  runnerIsGone,
  watchingFileOf,
  writeEntry,
  type ReleaseRole,
  type WatchdogEntry,
} from './watchdog-journal.js';
import { runRelease } from './watchdog-release.js';

export type { WatchdogEntry } from './watchdog-journal.js';

export interface ArmOptions {
  /** Directory for the journal; defaults to `watchdog/` beside the catalog file. */
  dir?: string;
  catalogFile?: string;
  backupId: string;
  instance?: string;
  /** From now until the watchdog ends the block, in ms (maxBlockMs plus a margin for the gate's own timer). */
  deadlineMs: number;
  /** argv that ends the block from outside the session (no shell); must be safe to run when not blocked. */
  releaseCommand: string[];
  /** How often the watchdog checks the owner and the clock (default 100 ms). */
  pollMs?: number;
  /** How long to wait for the watchdog to report that it is watching (default 10 s). */
  startTimeoutMs?: number;
}

export interface Watchdog {
  readonly dir: string;
  readonly backupId: string;
  readonly entryFile: string;
  /** pid of the detached watchdog process. */
  readonly pid: number;
  /**
   * Takes the right to end the block, before unblocking on the session. False means the watchdog (or a
   * repair) got there first: the block is already ended, typically because the deadline passed.
   */
  claim(): boolean;
  /** After the block was ended on the session: journals it released and stops the watchdog. Safe to call twice. */
  disarm(): Promise<{ releasedBy: ReleaseRole }>;
  /**
   * After claim, when unblocking on the session failed: ends the block with the release command from
   * here, journals the outcome, and stops the watchdog. True when the command succeeded; when it did
   * not, the entry stays `release-failed` and the next ebr command retries it.
   */
  releaseNow(reason: string): Promise<boolean>;
}

export function watchdogDirFor(catalogFile: string): string {
  return path.join(path.dirname(catalogFile), 'watchdog');
}

export async function armWatchdog(o: ArmOptions): Promise<Watchdog> {
  const dir = o.dir ?? (o.catalogFile ? watchdogDirFor(o.catalogFile) : undefined);
  if (!dir) throw new EbrError('internal', 'armWatchdog needs dir or catalogFile');
  if (o.releaseCommand.length === 0) throw new EbrError('internal', 'armWatchdog needs a release command');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const owner = thisRunner();
  const entry: WatchdogEntry = {
    version: 1,
    backupId: o.backupId,
    ...(o.instance ? { instance: o.instance } : {}),
    owner,
    armedAt: new Date().toISOString(),
    deadlineAt: Date.now() + o.deadlineMs,
    releaseCommand: o.releaseCommand,
    pollMs: o.pollMs ?? 100,
    state: 'armed',
  };
  const entryFile = entryFileOf(dir, o.backupId);
  if (existsSync(entryFile)) throw new EbrError('internal', `a watchdog entry for backup ${o.backupId} exists already`, { context: { path: entryFile } });
  writeEntry(dir, entry);

  const log = openSync(logFileOf(dir, o.backupId), 'a', 0o600);
  let pid: number;
  try {
    const child = spawn(process.execPath, [watchdogScript(), entryFile], { detached: true, stdio: ['ignore', log, log] });
    if (child.pid === undefined) throw new Error('spawn returned no pid');
    pid = child.pid;
    child.unref();
  } catch (err) {
    rmSync(entryFile, { force: true });
    throw new EbrError('block', `could not start the watchdog: ${(err as Error).message}`, { context: { backupId: o.backupId, path: entryFile }, cause: err });
  } finally {
    closeSync(log);
  }
  const watching = watchingFileOf(dir, o.backupId);
  const until = Date.now() + (o.startTimeoutMs ?? 10_000);
  while (!existsSync(watching)) {
    const gone = (() => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    })();
    if (gone || Date.now() > until) {
      if (!gone) process.kill(pid, 'SIGKILL');
      for (const f of filesOf(dir, o.backupId)) if (!f.endsWith('.log')) rmSync(f, { force: true });
      throw new EbrError('block', `the watchdog did not start (${gone ? 'it exited' : 'no sign of life'}); the database was not blocked`, {
        hint: `see ${logFileOf(dir, o.backupId)}`,
        context: { backupId: o.backupId, path: entryFile },
      });
    }
    await sleep(5);
  }
  const watchdogRunner: Runner = JSON.parse(readFileSync(watching, 'utf8')) as Runner;

  let released: ReleaseRole | undefined;
  return {
    dir,
    backupId: o.backupId,
    entryFile,
    pid,
    claim: () => claimRelease(dir, o.backupId, 'owner', owner),
    async disarm() {
      if (released) return { releasedBy: released };
      if (!claimRelease(dir, o.backupId, 'owner', owner)) {
        // The watchdog or a repair holds the release; wait for it to say how it went.
        const done = await waitForRelease(entryFile, 5_000);
        released = done?.releasedBy ?? 'watchdog';
        return { releasedBy: released };
      }
      const current = readEntry(entryFile) ?? entry;
      writeEntry(dir, { ...current, state: 'released', releasedBy: 'owner', releasedAt: new Date().toISOString(), reason: 'disarmed after unblock' });
      stopWatchdog(watchdogRunner);
      released = 'owner';
      return { releasedBy: released };
    },
    async releaseNow(reason) {
      const done = await runRelease(dir, readEntry(entryFile) ?? entry, 'owner', reason);
      stopWatchdog(watchdogRunner);
      if (done.state === 'released') released = 'owner';
      return done.state === 'released';
    },
  };
}

export interface RepairReport {
  /** Blocks this call ended with their release command. */
  released: Array<{ backupId: string; instance?: string; exitCode: number | null }>;
  /** Blocks whose release command failed; retried by the next command. */
  failed: Array<{ backupId: string; instance?: string; exitCode: number | null; output: string }>;
  /** Blocks still owned by a live process or being released by one. */
  active: string[];
  /** Entries of released blocks removed as old. */
  pruned: string[];
}

/**
 * Run by every ebr command before anything else: ends each journaled block whose owner process is gone
 * and that nobody released, stops watchdogs left with nothing to watch, and prunes old released entries.
 */
export async function repairUnfinishedBlocks(dir: string, options: { keepReleasedMs?: number } = {}): Promise<RepairReport> {
  const report: RepairReport = { released: [], failed: [], active: [], pruned: [] };
  if (!existsSync(dir)) return report;
  const me = thisRunner();
  const keep = options.keepReleasedMs ?? 7 * 24 * 3600_000;
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.json'))) {
    const entryFile = path.join(dir, f);
    const entry = readEntry(entryFile);
    if (!entry) continue;
    if (entry.state === 'released') {
      stopWatchdogOf(dir, entry.backupId);
      if (Date.now() - statSync(entryFile).mtimeMs >= keep) {
        for (const file of filesOf(dir, entry.backupId)) rmSync(file, { force: true });
        report.pruned.push(entry.backupId);
      }
      continue;
    }
    if (!runnerIsGone(entry.owner) || !claimRelease(dir, entry.backupId, 'repair', me)) {
      report.active.push(entry.backupId);
      continue;
    }
    const done = await runRelease(dir, entry, 'repair', `owner pid ${entry.owner.pid} is gone and the block was never released`);
    const instance = entry.instance ? { instance: entry.instance } : {};
    if (done.state === 'released') {
      stopWatchdogOf(dir, entry.backupId);
      report.released.push({ backupId: entry.backupId, ...instance, exitCode: done.result?.exitCode ?? null });
    } else {
      report.failed.push({ backupId: entry.backupId, ...instance, exitCode: done.result?.exitCode ?? null, output: done.result?.output ?? '' });
    }
  }
  return report;
}

/** Who holds the release of a journaled block right now, for `ebr show` and tests. */
export function releaseHolder(dir: string, backupId: string): ReleaseRole | undefined {
  return currentClaim(dir, backupId)?.holder?.role;
}

async function waitForRelease(entryFile: string, ms: number): Promise<WatchdogEntry | undefined> {
  const until = Date.now() + ms;
  for (;;) {
    const e = readEntry(entryFile);
    if (e && e.state !== 'armed') return e;
    if (Date.now() > until) return e;
    await sleep(20);
  }
}

function stopWatchdogOf(dir: string, backupId: string): void {
  try {
    stopWatchdog(JSON.parse(readFileSync(watchingFileOf(dir, backupId), 'utf8')) as Runner);
  } catch {
    // no marker: it never started, or it is long gone
  }
}

/** SIGTERM to the watchdog, only if that pid is still the process that was started (never a reused pid). */
function stopWatchdog(r: Runner): void {
  if (runnerIsGone(r) || processStart(r.pid) !== r.start) return;
  try {
    process.kill(r.pid, 'SIGTERM');
  } catch {
    // gone meanwhile
  }
}

/** The compiled watchdog entry beside this file; from TypeScript sources (tests), its twin under dist/. */
function watchdogScript(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const sibling = path.join(here, 'watchdog-process.js');
  if (existsSync(sibling)) return sibling;
  const built = path.resolve(here, '../../dist/src/workflow/watchdog-process.js');
  if (existsSync(built)) return built;
  throw new EbrError('internal', `the watchdog program is missing (looked for ${sibling} and ${built})`, { hint: 'build ebr first: npm run build' });
}

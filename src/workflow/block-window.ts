/**
 * The one gate around the window. It is the only caller of block and unblock: it measures the window,
 * enforces maxBlockMs with its own timer, and unblocks in `finally` — on success, error, cancellation
 * and timeout — on the same session, bounded by a timeout of its own. When unblock fails after another
 * failure, the first failure stays the one reported and the release error rides along.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { BackupMeta, DbmsSession } from '../adapter-api.js';
import { EbrError, asEbrError } from '../errors.js';
import type { Space } from '../model.js';
import type { Snapshot, SnapshotProvider, SnapshotRequest } from '../snapshot/snapshot-provider.js';
import { armWatchdog, type Watchdog } from './watchdog.js';

export interface WindowResult {
  snapshot: Snapshot;
  meta: BackupMeta;
  /** block returned → unblock returned, in ms. */
  windowMs: number;
  /** Time per step: block, snapshot (and the provider's own steps), unblock. */
  steps: Record<string, number>;
  /** The spaces as the DBMS listed them once the window was open, when it does (see BlockToken.spaces). */
  spaces?: Space[];
}

export interface WindowOptions {
  session: DbmsSession;
  provider: SnapshotProvider;
  /** What to freeze; built from the block token, because a DBMS may list its files anew once blocked. */
  requestFor: (spaces: Space[] | undefined) => SnapshotRequest;
  maxBlockMs: number;
  /** Set when the adapter's block outlives the session: a watchdog ends it at the deadline if ebr cannot. */
  watchdog?: { catalogFile: string };
  /** How long unblock may take before ebr gives up waiting on it (the DBMS drops session blocks when ebr exits). */
  unblockTimeoutMs?: number;
  signal: AbortSignal;
  /** Journals the phase boundaries inside the gate (acquire → release). */
  onRelease?: () => void;
  context: { instance: string; backupId: string };
}

export async function holdWindow(o: WindowOptions): Promise<WindowResult> {
  const steps: Record<string, number> = {};
  const unblockTimeoutMs = o.unblockTimeoutMs ?? Math.max(30_000, o.maxBlockMs);
  const wd = o.watchdog ? await armFor(o, unblockTimeoutMs) : undefined;
  const t0 = performance.now();
  // If block itself fails, an armed watchdog stays armed: it ends whatever half of a block the server took, at the deadline.
  const token = await o.session.block(o.signal);
  const blockedAt = performance.now();
  steps.block = blockedAt - t0;

  const inside = new AbortController();
  const onParentAbort = () => inside.abort(o.signal.reason);
  o.signal.addEventListener('abort', onParentAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  let snapshot: Snapshot | undefined;
  let pending: Promise<Snapshot> | undefined;
  let failure: EbrError | undefined;
  let meta: BackupMeta = {};
  try {
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = windowExceeded(o, performance.now() - blockedAt);
        inside.abort(err);
        reject(err);
      }, Math.max(0, o.maxBlockMs - (performance.now() - blockedAt)));
    });
    const cancelled = new Promise<never>((_, reject) => {
      if (inside.signal.aborted) reject(inside.signal.reason);
      inside.signal.addEventListener('abort', () => reject(inside.signal.reason), { once: true });
    });
    const s0 = performance.now();
    pending = o.provider.take(o.requestFor(token.spaces), inside.signal).then(async (snap) => {
      await faultHold(inside.signal).catch(async (err) => {
        await snap.release();
        throw err;
      });
      return snap;
    });
    snapshot = await Promise.race([pending, deadline, cancelled]);
    steps.snapshot = performance.now() - s0;
    // A freeze that ends with its session (SQL Server's suspend) may have ended before the snapshot did.
    const lost = o.session.lost?.();
    if (lost) {
      throw new EbrError('block', `the database session ended inside the window (${lost.message}); the freeze ended with it, so the snapshot may hold writes made after the freeze`, {
        hint: 'the backup is failed and its snapshot discarded; look for a killed session or a server restart, then run the backup again',
        context: { ...o.context, phase: 'acquire' },
      });
    }
    for (const [k, v] of Object.entries(snapshot.steps ?? {})) steps[`snapshot.${k}`] = v;
  } catch (err) {
    failure = asEbrError(err, 'snapshot', { ...o.context, phase: 'acquire' });
  } finally {
    clearTimeout(timer);
    o.signal.removeEventListener('abort', onParentAbort);
    o.onRelease?.();
    const u0 = performance.now();
    let claimed = false;
    try {
      if (wd && !(claimed = wd.claim())) {
        // The watchdog ended the block first: the deadline passed while ebr could not.
        throw windowExceeded(o, performance.now() - blockedAt);
      }
      meta = await withTimeout(o.session.unblock(token, failure ? { failed: failure } : {}), unblockTimeoutMs, 'unblock');
      await wd?.disarm();
    } catch (err) {
      // ebr holds the right to end the block but its session could not: end it from outside, now.
      if (wd && claimed && !(await wd.releaseNow(`unblock on the session failed: ${(err as Error).message}`).catch(() => false))) {
        (err as { message: string }).message += '; the release command failed too: the next ebr command retries it';
      }
      const releaseError = asEbrError(err, 'block', { ...o.context, phase: 'release' });
      if (failure) failure.releaseError = releaseError;
      else failure = releaseError;
    }
    steps.unblock = performance.now() - u0;
  }
  const windowMs = performance.now() - blockedAt;
  if (!failure && windowMs > o.maxBlockMs) failure = windowExceeded(o, windowMs);
  if (failure) {
    // A snapshot still being taken when the deadline hit is released as soon as it settles.
    if (snapshot) await snapshot.release().catch(() => undefined);
    else if (pending) await pending.then((s) => s.release()).catch(() => undefined);
    failure.context.windowMs = Math.round(windowMs);
    throw failure;
  }
  return { snapshot: snapshot!, meta, windowMs, steps, ...(token.spaces ? { spaces: token.spaces } : {}) };
}

async function armFor(o: WindowOptions, unblockTimeoutMs: number): Promise<Watchdog> {
  const releaseCommand = o.session.releaseCommand?.();
  if (!releaseCommand?.length) {
    throw new EbrError('internal', 'the adapter says its block outlives the session but gives no command to end it from outside', {
      hint: 'an adapter with capabilities.blockSurvivesSession must implement DbmsSession.releaseCommand',
      context: { ...o.context, phase: 'acquire' },
    });
  }
  return armWatchdog({
    catalogFile: o.watchdog!.catalogFile,
    backupId: o.context.backupId,
    instance: o.context.instance,
    deadlineMs: o.maxBlockMs + unblockTimeoutMs,
    releaseCommand,
  });
}

/**
 * Fault injection for the tests that kill or signal ebr inside the window: EBR_FAULT_HOLD_WINDOW_MS
 * keeps the window open that long after the snapshot (abortable, so maxBlockMs still ends it).
 */
async function faultHold(signal: AbortSignal): Promise<void> {
  const holdMs = Number(process.env.EBR_FAULT_HOLD_WINDOW_MS ?? 0);
  if (holdMs > 0) await sleep(holdMs, undefined, { signal });
}

function windowExceeded(o: WindowOptions, ms: number): EbrError {
  return new EbrError('windowExceeded', `the block window reached ${Math.round(ms)} ms, past maxBlockMs (${o.maxBlockMs} ms); the database was unblocked and left running`, {
    hint: `use a snapshot provider that freezes storage in milliseconds (btrfs, reflink, lvm, zfs), or raise instances.${o.context.instance}.maxBlockMs`,
    context: { ...o.context, phase: 'acquire', maxBlockMs: o.maxBlockMs },
  });
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not return within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

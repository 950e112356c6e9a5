/**
 * `ebr log agent`: the resident half of asynchronous log archiving (docs/log-agent.md). archive_command
 * (agent-push.ts) leaves each finished log durably in the spool's queue; the agent stores the queue
 * into the instance's log archive, `parallel` logs at once, reads every one back through the store
 * (which checks its own digest) and compares it with the spooled bytes, records it in done/, and only
 * then removes it from the queue. A crash anywhere loses nothing: what is still queued is stored by the
 * next agent, and a second store of the same bytes is 'identical'. Nothing here names a vendor: the
 * store is the adapter's push (or the log store's put) and get, handed in by the CLI.
 */
import { createHash } from 'node:crypto';
import { createReadStream, watch, type FSWatcher } from 'node:fs';
import { link, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { EbrError } from '../errors.js';
import { fsyncPath, makeSpool, queuedNames, runningAgent, spoolErrors, spoolPaths, writeDurably, type SpoolPaths } from './agent-spool.js';

export interface AgentStore {
  /** Stores one log from `file` under `name`; 'identical' when the archive holds these bytes already. */
  put(name: string, file: string, signal: AbortSignal): Promise<'stored' | 'identical'>;
  /** Fetches it back into dest, digest checked by the store; false when the archive lacks it. */
  get(name: string, dest: string, signal: AbortSignal): Promise<boolean>;
}

export interface AgentOptions {
  spool: string;
  store: AgentStore;
  parallel: number;
  pollMs: number;
  /** Exit after this long with an empty queue (0: run until signalled). */
  idleExitMs: number;
  /** Store what is queued now and return. */
  once?: boolean;
  /** For logs the adapter copies itself (sync): run it this often while resident. */
  sync?: { everyMs: number; run(signal: AbortSignal): Promise<string> };
  signal: AbortSignal;
  log(line: string): void;
}

export interface AgentResult {
  /** Set when another agent holds the spool: this one did nothing. */
  alreadyRunning?: number;
  stored: string[];
  identical: string[];
  conflicts: string[];
}

/** How long done/ records are kept: long enough for any retry of archive_command to find them. */
const doneKeepMs = 24 * 3600_000;

export async function runLogAgent(o: AgentOptions): Promise<AgentResult> {
  const p = spoolPaths(o.spool);
  makeSpool(p);
  const result: AgentResult = { stored: [], identical: [], conflicts: [] };
  const other = await lock(p);
  if (other !== undefined) return { ...result, alreadyRunning: other };
  let watcher: FSWatcher | undefined;
  let wake: (() => void) | undefined;
  const nudge = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  try {
    try {
      watcher = watch(p.queue, nudge);
      watcher.on('error', () => undefined);
    } catch {
      // Polling alone then.
    }
    o.signal.addEventListener('abort', nudge, { once: true });
    let idleSince = Date.now();
    let lastSync = 0;
    let lastPrune = 0;
    const retryAt = new Map<string, number>();
    while (!o.signal.aborted) {
      if (o.sync && o.sync.everyMs > 0 && Date.now() - lastSync >= o.sync.everyMs) {
        lastSync = Date.now();
        try {
          o.log(await o.sync.run(o.signal));
        } catch (err) {
          o.log(`sync failed: ${(err as Error).message}`);
        }
      }
      if (Date.now() - lastPrune > 3600_000) {
        lastPrune = Date.now();
        await pruneDone(p);
      }
      const names = queuedNames(p).filter((n) => (retryAt.get(n) ?? 0) <= Date.now());
      if (names.length) {
        await storeBatch(p, names, o, result, retryAt);
        idleSince = Date.now();
        continue;
      }
      if (o.once) break;
      if (o.idleExitMs > 0 && Date.now() - idleSince >= o.idleExitMs && queuedNames(p).length === 0) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(nudge, o.pollMs).unref?.();
      });
    }
  } finally {
    watcher?.close();
    await unlock(p);
  }
  return result;
}

/** Stores the names, `parallel` at once; the queue directory is fsync'd once after the batch's removals. */
async function storeBatch(p: SpoolPaths, names: string[], o: AgentOptions, result: AgentResult, retryAt: Map<string, number>): Promise<void> {
  let next = 0;
  let removed = 0;
  await Promise.all(
    Array.from({ length: Math.min(o.parallel, names.length) }, async () => {
      for (let i = next++; i < names.length && !o.signal.aborted; i = next++) {
        const name = names[i]!;
        try {
          const outcome = await storeOne(p, name, o);
          if (outcome === 'conflict') result.conflicts.push(name);
          else (outcome === 'stored' ? result.stored : result.identical).push(name);
          retryAt.delete(name);
          removed++;
        } catch (err) {
          // Left in the queue: a store that is down now (a network, a full disk) is tried again later.
          retryAt.set(name, Date.now() + Math.max(o.pollMs, 1_000));
          o.log(`cannot store ${name} yet (it stays spooled): ${(err as Error).message}`);
        }
      }
    }),
  );
  if (removed) {
    fsyncPath(p.queue);
    fsyncPath(p.done);
  }
}

async function storeOne(p: SpoolPaths, name: string, o: AgentOptions): Promise<'stored' | 'identical' | 'conflict'> {
  const file = path.join(p.queue, name);
  const want = await sha256(file);
  let outcome: 'stored' | 'identical';
  try {
    outcome = await o.store.put(name, file, o.signal);
  } catch (err) {
    // Different bytes under the name, or a name the adapter refuses: no retry can store it. Keep the bytes, say so loudly.
    const there = await readBack(p, name, o).catch(() => undefined);
    if ((there !== undefined && there !== want) || (err instanceof EbrError && (err.code === 'usage' || /already holds a different/.test(err.message)))) {
      await conflict(p, name, err as Error);
      o.log(`cannot store ${name}: ${(err as Error).message}`);
      return 'conflict';
    }
    if (there !== want) throw err;
    outcome = 'identical';
  }
  const back = await readBack(p, name, o);
  if (back === undefined) throw new Error(`the archive does not return ${name} right after it was stored`);
  if (back !== want) {
    await conflict(p, name, new Error(`the archive returns ${name} with sha256 ${back.slice(0, 12)}…, not the spooled ${want.slice(0, 12)}…`));
    return 'conflict';
  }
  writeDurably(path.join(p.done, name), `${want}\n`);
  await unlink(file);
  return outcome;
}

/** The sha256 of the log as the store gives it back (its own digest checked on the way), or undefined when absent. */
async function readBack(p: SpoolPaths, name: string, o: AgentOptions): Promise<string | undefined> {
  const tmp = path.join(p.root, `.verify-${name}-${process.pid}`);
  try {
    if (!(await o.store.get(name, tmp, o.signal))) return undefined;
    return await sha256(tmp);
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Moves the spooled bytes aside (never removed) and records why; every push fails until a DBA removes the record. */
async function conflict(p: SpoolPaths, name: string, err: Error): Promise<void> {
  const hint = err instanceof EbrError && err.hint ? ` (${err.hint})` : '';
  writeDurably(path.join(p.errors, `${name}.error`), `${err.message}${hint}; the spooled bytes are in ${path.join(p.conflicts, name)}\n`);
  await rename(path.join(p.queue, name), path.join(p.conflicts, name));
  fsyncPath(p.conflicts);
  fsyncPath(p.queue);
}

function sha256(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file, { highWaterMark: 1 << 20 })
      .on('data', (b) => h.update(b))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

async function pruneDone(p: SpoolPaths): Promise<void> {
  const now = Date.now();
  for (const e of await readdir(p.done).catch(() => [] as string[])) {
    const f = path.join(p.done, e);
    const st = await stat(f).catch(() => undefined);
    if (st && now - st.mtimeMs > doneKeepMs) await rm(f, { force: true });
  }
}

/** Takes the spool: undefined when this process holds it now, else the pid of the agent that does. */
async function lock(p: SpoolPaths): Promise<number | undefined> {
  // Written whole under a temp name, then linked: the pid file never exists empty, so no one takes it for stale.
  const mine = `${p.pidFile}.${process.pid}`;
  writeDurably(mine, `${process.pid}\n`);
  try {
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        await link(mine, p.pidFile);
        return undefined;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const pid = runningAgent(p);
      if (pid !== undefined && pid !== process.pid) return pid;
      // A dead agent's pid file (kill -9, a reboot): take it over; a rename makes two takers race safely.
      const stale = `${p.pidFile}.stale-${process.pid}`;
      await rename(p.pidFile, stale).then(() => rm(stale, { force: true }), () => undefined);
    }
  } finally {
    await rm(mine, { force: true });
  }
  throw new Error(`cannot take the spool lock ${p.pidFile}`);
}

async function unlock(p: SpoolPaths): Promise<void> {
  if (runningAgent(p) === process.pid) await rm(p.pidFile, { force: true });
}

/** What `ebr log agent --status` prints. */
export function agentStatus(spool: string): { spool: string; agent: number | null; queued: string[]; errors: Array<{ name: string; message: string }> } {
  const p = spoolPaths(spool);
  return { spool, agent: runningAgent(p) ?? null, queued: queuedNames(p), errors: spoolErrors(p) };
}

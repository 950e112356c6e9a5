/** WAL positions and names, backup_label parsing, and waiting for a segment to reach the log archive. */
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { EbrError, throwIfAborted, type ErrorContext } from '../../src/errors.js';
import type { LogStore } from '../../src/logs/log-store.js';

export interface BackupLabel {
  startLsn?: string;
  startWalFile?: string;
  checkpointLsn?: string;
  timeline?: number;
  label?: string;
  startTime?: string;
}

/** The fields of a backup_label (xlogbackup.c writes them one per line, `KEY: value`). */
export function parseLabel(text: string): BackupLabel {
  const field = (key: string) => new RegExp(`^${key}: (.*)$`, 'm').exec(text)?.[1]?.trim();
  const start = /^([0-9A-F]+\/[0-9A-F]+) \(file ([0-9A-F]{24})\)$/i.exec(field('START WAL LOCATION') ?? '');
  const tli = field('START TIMELINE');
  return {
    ...(start ? { startLsn: start[1], startWalFile: start[2] } : {}),
    ...(field('CHECKPOINT LOCATION') ? { checkpointLsn: field('CHECKPOINT LOCATION') } : {}),
    ...(tli ? { timeline: Number(tli) } : {}),
    ...(field('LABEL') ? { label: field('LABEL') } : {}),
    ...(field('START TIME') ? { startTime: field('START TIME') } : {}),
  };
}

export function lsnToBigInt(lsn: string): bigint {
  const m = /^([0-9A-F]+)\/([0-9A-F]+)$/i.exec(lsn.trim());
  if (!m) throw new Error(`"${lsn}" is not a WAL location`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/**
 * The segment that holds the last byte before `lsn` (PostgreSQL's XLByteToPrevSeg): the last segment
 * a backup that stopped at `lsn` needs, the one pg_backup_stop waits for.
 */
export function segmentOf(lsn: string, timeline: number, segmentSize: number): string {
  const size = BigInt(segmentSize);
  const v = lsnToBigInt(lsn);
  const segno = (v === 0n ? 0n : v - 1n) / size;
  const perId = 0x100000000n / size;
  const hex = (n: bigint | number) => n.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(timeline)}${hex(segno / perId)}${hex(segno % perId)}`;
}

/** The segments from `first` to `last` (names of one timeline), in order; undefined past `max` of them. */
export function segmentsBetween(first: string, last: string, segmentSize: number, max = 64): string[] | undefined {
  const perId = 0x100000000n / BigInt(segmentSize);
  const parse = (name: string) => ({ tli: name.slice(0, 8), segno: BigInt(`0x${name.slice(8, 16)}`) * perId + BigInt(`0x${name.slice(16, 24)}`) });
  const a = parse(first);
  const b = parse(last);
  if (a.tli !== b.tli || b.segno < a.segno || b.segno - a.segno >= BigInt(max)) return undefined;
  const hex = (n: bigint) => n.toString(16).toUpperCase().padStart(8, '0');
  const out: string[] = [];
  for (let n = a.segno; n <= b.segno; n++) out.push(`${a.tli}${hex(n / perId)}${hex(n % perId)}`);
  return out;
}

export interface OwnSegments {
  segments: string[];
  store: LogStore;
  dataDirectory: string;
  walSegmentSize: number;
  signal: AbortSignal;
  context: ErrorContext;
  /** How long to wait for the server to mark a segment finished (.ready) before leaving it to the archiver. */
  readyWaitMs?: number;
}

/**
 * Stores the segments a backup needs straight from pg_wal, instead of waiting for archive_command to
 * work through its queue one process per segment (most of a backup's fixed cost). A segment is read
 * only while the server marks it finished and not yet archived (archive_status/<name>.ready, written
 * after the segment was written to its end and fsynced; the file is not touched again before it is
 * archived), so the bytes are exactly those archive_command will push, and the store takes that
 * second push as identical. The store's put is the one `ebr wal push` runs: digest sidecar, fsync,
 * atomic link. A segment already archived (.done), in the store and no longer .ready, or not
 * finished in time is left to the archiver: the caller still waits for the store to hold every
 * segment. When the store refuses the bytes because it holds different ones under that name, that is
 * an error, unless the server archived and recycled the file while it was read (then the bytes read
 * were not the segment's and the archiver's copy stands). Returns the names stored here.
 */
export async function storeOwnSegments(o: OwnSegments): Promise<string[]> {
  const wal = path.join(o.dataDirectory, 'pg_wal');
  const status = path.join(wal, 'archive_status');
  const stored: string[] = [];
  for (const seg of o.segments) {
    throwIfAborted(o.signal, o.context);
    const deadline = Date.now() + (o.readyWaitMs ?? 2_000);
    let ready = false;
    for (;;) {
      // Still .ready although stored: put compares the bytes, so a different log under this name is found.
      ready = await exists(path.join(status, `${seg}.ready`));
      if (ready || (await exists(path.join(status, `${seg}.done`))) || (await o.store.has(seg)) || Date.now() > deadline) break;
      await sleep(10, undefined, { signal: o.signal }).catch(() => undefined);
      throwIfAborted(o.signal, o.context);
    }
    if (!ready) continue;
    const file = path.join(wal, seg);
    const before = await stat(file).catch(() => undefined);
    if (!before?.isFile() || before.size !== o.walSegmentSize) continue;
    const sameFile = async () => {
      const now = await stat(file).catch(() => undefined);
      return now !== undefined && now.ino === before.ino && now.dev === before.dev;
    };
    let outcome: 'stored' | 'identical';
    try {
      outcome = await o.store.put(seg, file, o.signal);
    } catch (err) {
      if (o.signal.aborted || !(err instanceof EbrError) || (await sameFile())) throw err;
      continue; // archived and recycled while it was read: the store holds the archiver's copy
    }
    if (outcome === 'identical') continue;
    if (!(await sameFile())) {
      // Recycled while it was read, and nothing in the store to compare with: the bytes may be another segment's.
      await o.store.remove?.(seg);
      throw new EbrError('logArchive', `WAL segment ${seg} was archived and recycled by the server while ebr read it, and this instance's log archive did not hold it`, {
        hint: 'archive_command archives to another config file or instance; it must be: ebr wal push for this instance',
        context: { ...o.context, member: seg },
      });
    }
    stored.push(seg);
  }
  return stored;
}

export interface ArchiveWait {
  segment: string;
  /** ebr's own log store for this instance, when the workflow hands it over; the strongest proof. */
  store: LogStore | undefined;
  dataDirectory: string;
  timeoutMs: number;
  archiver: () => Promise<Record<string, unknown>>;
  signal: AbortSignal;
  context: ErrorContext;
  hint: string;
}

/**
 * Waits until the segment is archived. With the log store: until it is in the store. Without: until the
 * server marks it `.done` in pg_wal/archive_status (or has recycled it). Fails early when the server
 * says it archived the segment but it never shows up in the store: archive_command writes elsewhere.
 */
export async function waitForArchived(w: ArchiveWait): Promise<void> {
  const deadline = Date.now() + w.timeoutMs;
  const status = path.join(w.dataDirectory, 'pg_wal', 'archive_status');
  let archivedElsewhereSince: number | undefined;
  for (;;) {
    throwIfAborted(w.signal, w.context);
    if (w.store) {
      if (await w.store.has(w.segment)) return;
      const a = await w.archiver().catch(() => ({}) as Record<string, unknown>);
      const last = typeof a.last_archived_wal === 'string' ? a.last_archived_wal.slice(0, 24) : '';
      if (/^[0-9A-F]{24}$/.test(last) && last >= w.segment) {
        archivedElsewhereSince ??= Date.now();
        if (Date.now() - archivedElsewhereSince > 5_000) {
          throw new EbrError('logArchive', `PostgreSQL archived WAL segment ${w.segment}, but it is not in this instance's log archive`, {
            hint: `archive_command sends WAL to another config file or instance; ${w.hint}`,
            context: { ...w.context, member: w.segment },
          });
        }
      }
    } else if ((await exists(path.join(status, `${w.segment}.done`))) || (!(await exists(path.join(status, `${w.segment}.ready`))) && !(await exists(path.join(w.dataDirectory, 'pg_wal', w.segment))))) {
      return;
    }
    if (Date.now() > deadline) {
      const a = await w.archiver().catch(() => ({}) as Record<string, unknown>);
      const failed = a.last_failed_wal ? `; the archiver last failed on ${String(a.last_failed_wal)} at ${String(a.last_failed_time)} (${String(a.failed_count)} failures)` : '';
      throw new EbrError('logArchive', `WAL segment ${w.segment}, the last one this backup needs, did not reach the log archive within ${Math.round(w.timeoutMs / 1000)} s${failed}`, {
        hint: `${w.hint}; or raise postgres.archiveWaitMs when archiving lags`,
        context: { ...w.context, member: w.segment },
      });
    }
    await sleep(200);
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Archives closed binlogs into the log store: the current one is closed first (FLUSH BINARY LOGS),
 * then every binlog the server lists and the store lacks is copied with its digest, followed by a
 * `<name>.range.json` beside it that records its GTID states and event times. The range file is
 * written after the binlog, so a binlog without one is archived again by the next sync. A binlog the
 * archive lacks below the newest one it holds was removed from it (`ebr log purge`, or by hand) and
 * is not copied back while the server still has it: sync copies in order, so an interrupted sync
 * leaves only binlogs above the newest archived one to do.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EbrError, throwIfAborted } from '../../src/errors.js';
import { summarizeBinlog, type BinlogSummary } from './binlog-parse.js';
import type { LogStore } from '../../src/logs/log-store.js';

export const rangeSuffix = '.range.json';

/** Where binlogs come from: the server (through its connection) tells which files exist and which is current. */
export interface BinlogSource {
  /** Closes the binlog being written, so that everything up to now can be archived. */
  rotate(signal?: AbortSignal): Promise<void>;
  /** The binlogs the server still has, oldest first; `current` is the one being written. */
  list(signal?: AbortSignal): Promise<Array<{ name: string; path: string; current: boolean }>>;
}

export interface BinlogRange extends BinlogSummary {
  name: string;
  size: number;
  archivedAt: string;
}

export interface SyncResult {
  stored: string[];
  /** Already archived with the same bytes. */
  present: string[];
  /** The binlog left open on the server (archived by a later sync). */
  current?: string;
  /** Numbers missing between the oldest archived binlog and the current one: the server purged them first. */
  gaps: string[];
}

export async function syncBinlogs(source: BinlogSource, store: LogStore, o: { signal?: AbortSignal; instance?: string; rotate?: boolean } = {}): Promise<SyncResult> {
  const { signal } = o;
  if (o.rotate !== false) await source.rotate(signal);
  const files = await source.list(signal);
  const result: SyncResult = { stored: [], present: [], gaps: [] };
  const newest = await newestArchived(store, files);
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'ebr-binlog-'));
  try {
    for (const f of files) {
      throwIfAborted(signal, { instance: o.instance, phase: 'binlog-sync' });
      if (f.current) {
        result.current = f.name;
        continue;
      }
      if ((await store.has(f.name)) && (await store.has(f.name + rangeSuffix))) {
        result.present.push(f.name);
        continue;
      }
      if (newest !== undefined && (numberOf(f.name) ?? Infinity) < newest && !(await store.has(f.name))) continue; // purged from the archive
      let summary: BinlogSummary;
      try {
        summary = await summarizeBinlog(f.path, signal);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // purged by the server meanwhile
        throw new EbrError('logArchive', `cannot read binlog ${f.path}: ${(err as Error).message}`, {
          hint: 'ebr reads binlogs directly: run it on the database host, as root or as the server\'s OS user',
          context: { instance: o.instance, path: f.path },
          cause: err,
        });
      }
      const outcome = await store.put(f.name, f.path, signal);
      const range: BinlogRange = { name: f.name, size: summary.endPosition, archivedAt: new Date().toISOString(), ...summary };
      const rangeFile = path.join(tmp, f.name + rangeSuffix);
      await writeFile(rangeFile, `${JSON.stringify(range, null, 2)}\n`);
      // The range is derived from the bytes only, so a retry after a crash writes the same file — except
      // archivedAt; keep the first one.
      if (!(await store.has(f.name + rangeSuffix))) await store.put(f.name + rangeSuffix, rangeFile, signal);
      (outcome === 'stored' ? result.stored : result.present).push(f.name);
    }
    result.gaps = await gapsIn(store, files);
    return result;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Every archived binlog range, oldest first (by the number in the name). */
export async function archivedRanges(store: LogStore, signal?: AbortSignal): Promise<BinlogRange[]> {
  const names = (await store.list()).map((e) => e.name).filter((n) => n.endsWith(rangeSuffix));
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'ebr-binlog-'));
  try {
    const out: BinlogRange[] = [];
    for (const n of names) {
      const dest = path.join(tmp, n);
      if (!(await store.get(n, dest, signal))) continue;
      out.push(JSON.parse(await readFile(dest, 'utf8')) as BinlogRange);
    }
    return out.sort((a, b) => (numberOf(a.name) ?? 0) - (numberOf(b.name) ?? 0));
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

export function numberOf(name: string): number | undefined {
  const m = /\.(\d+)$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** The highest number of a binlog archived with its range under the server's basename, if any. */
async function newestArchived(store: LogStore, files: Array<{ name: string }>): Promise<number | undefined> {
  const base = files[0]?.name.replace(/\.\d+$/, '');
  if (base === undefined) return undefined;
  const names = new Set((await store.list(`${base}.`)).map((e) => e.name));
  const nums = [...names].filter((n) => /\.\d+$/.test(n) && names.has(n + rangeSuffix)).map((n) => numberOf(n)!);
  return nums.length ? Math.max(...nums) : undefined;
}

async function gapsIn(store: LogStore, files: Array<{ name: string; current: boolean }>): Promise<string[]> {
  const current = files.find((f) => f.current);
  if (!current) return [];
  const base = current.name.replace(/\.\d+$/, '');
  const width = current.name.length - base.length - 1;
  const archived = (await store.list(`${base}.`)).map((e) => e.name).filter((n) => /\.\d+$/.test(n));
  const nums = archived.map((n) => numberOf(n)!).sort((a, b) => a - b);
  if (nums.length === 0) return [];
  const have = new Set(nums);
  const gaps: string[] = [];
  for (let n = nums[0]!; n < numberOf(current.name)!; n++) if (!have.has(n)) gaps.push(`${base}.${String(n).padStart(width, '0')}`);
  return gaps;
}

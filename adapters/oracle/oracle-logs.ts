/**
 * The redo archive: ebr copies the logs Oracle archived (V$ARCHIVED_LOG) into its log store, so a
 * restore never depends on the server's archive destination or on RMAN's retention. Each log is
 * stored as `<thread>_<sequence>_<resetlogs id>.arc` with its sha256, and beside it
 * `<name>.info`, the times and SCNs V$ARCHIVED_LOG gave for it (what `--until` is checked against).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { LogListing, LogSyncResult } from '../../src/adapter-api.js';
import { EbrError, throwIfAborted, type ErrorContext } from '../../src/errors.js';
import type { LogStore } from '../../src/logs/log-store.js';
import type { Sql } from './oracle-connection.js';
import * as q from './oracle-queries.js';

export interface ArchivedLogInfo {
  thread: number;
  sequence: number;
  resetlogsId: string;
  firstChange: string;
  nextChange: string;
  /** As V$ARCHIVED_LOG prints them, in the server's time: `YYYY-MM-DD HH24:MI:SS`. */
  firstTime: string;
  nextTime: string;
  /** Where the server had it. */
  source: string;
}

const infoSuffix = '.info';

export function logNameOf(l: Pick<ArchivedLogInfo, 'thread' | 'sequence' | 'resetlogsId'>): string {
  return `${l.thread}_${l.sequence}_${l.resetlogsId}.arc`;
}

export function parseLogName(name: string): { thread: number; sequence: number; resetlogsId: string } | undefined {
  const m = /^(\d+)_(\d+)_(\d+)\.arc$/.exec(name);
  return m ? { thread: Number(m[1]), sequence: Number(m[2]), resetlogsId: m[3]! } : undefined;
}

export async function syncArchivedLogs(sql: Sql, store: LogStore, context: ErrorContext, signal: AbortSignal): Promise<LogSyncResult> {
  const rows = await sql.query<Record<string, unknown>>(q.archivedLogs, 'cannot list the archived logs in V$ARCHIVED_LOG', 'logArchive', String(context.phase ?? 'log-sync'), signal);
  const seen = new Set<string>();
  const result: LogSyncResult = { stored: [], present: [], gaps: [] };
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'ebr-oracle-info-'));
  try {
    for (const r of rows) {
      throwIfAborted(signal, context);
      const info: ArchivedLogInfo = {
        thread: Number(r['THREAD#']),
        sequence: Number(r['SEQUENCE#']),
        resetlogsId: String(r.RESETLOGS_ID),
        firstChange: String(r['FIRST_CHANGE#']),
        nextChange: String(r['NEXT_CHANGE#']),
        firstTime: String(r.FIRST_TIME),
        nextTime: String(r.NEXT_TIME),
        source: String(r.NAME),
      };
      const name = logNameOf(info);
      // One row per archive destination: the first copy that is there is enough.
      if (seen.has(name)) continue;
      if (await store.has(name)) {
        seen.add(name);
        result.present.push(name);
        if (!(await store.has(name + infoSuffix))) await putInfo(store, scratch, name, info, signal);
        continue;
      }
      try {
        await store.put(name, info.source, signal);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || /ENOENT/.test(String((err as Error).message))) continue; // another destination's copy may follow
        throw err;
      }
      await putInfo(store, scratch, name, info, signal);
      seen.add(name);
      result.stored.push(name);
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  const missingOnDisk = [...new Set(rows.map((r) => logNameOf({ thread: Number(r['THREAD#']), sequence: Number(r['SEQUENCE#']), resetlogsId: String(r.RESETLOGS_ID) })))].filter((n) => !seen.has(n));
  if (missingOnDisk.length) {
    throw new EbrError('logArchive', `V$ARCHIVED_LOG lists ${missingOnDisk.join(', ')} as not deleted, and no copy of ${missingOnDisk.length > 1 ? 'them' : 'it'} can be read`, {
      hint: 'the files were removed outside RMAN: in RMAN run CROSSCHECK ARCHIVELOG ALL, and check that ebr runs as a user that can read the archive destination',
      context,
    });
  }
  result.gaps = gapsOf((await store.list()).map((l) => l.name));
  return result;
}

async function putInfo(store: LogStore, scratch: string, name: string, info: ArchivedLogInfo, signal: AbortSignal): Promise<void> {
  const file = path.join(scratch, name + infoSuffix);
  await writeFile(file, JSON.stringify(info) + '\n');
  await store.put(name + infoSuffix, file, signal);
}

/** Sequences missing between the oldest and newest log of each thread and incarnation. */
export function gapsOf(names: string[]): string[] {
  const groups = new Map<string, number[]>();
  for (const n of names) {
    const p = parseLogName(n);
    if (!p) continue;
    const key = `${p.thread}_${p.resetlogsId}`;
    groups.set(key, [...(groups.get(key) ?? []), p.sequence]);
  }
  const gaps: string[] = [];
  for (const [key, seqs] of groups) {
    const [thread, resetlogsId] = key.split('_');
    const have = new Set(seqs);
    for (let s = Math.min(...seqs); s <= Math.max(...seqs); s++) if (!have.has(s)) gaps.push(logNameOf({ thread: Number(thread), sequence: s, resetlogsId: resetlogsId! }));
  }
  return gaps;
}

/** Every archived log in the store, with what V$ARCHIVED_LOG said of it. */
export async function storedLogs(store: LogStore): Promise<Array<{ name: string; size: number; sha256: string; info?: ArchivedLogInfo }>> {
  const all = await store.list();
  const names = new Set(all.map((l) => l.name));
  const out = [];
  for (const l of all) {
    if (!parseLogName(l.name)) continue;
    let info: ArchivedLogInfo | undefined;
    if (names.has(l.name + infoSuffix)) info = await readInfo(store, l.name);
    out.push({ ...l, ...(info ? { info } : {}) });
  }
  return out.sort((a, b) => (a.info?.thread ?? 0) - (b.info?.thread ?? 0) || (parseLogName(a.name)!.sequence - parseLogName(b.name)!.sequence));
}

async function readInfo(store: LogStore, name: string): Promise<ArchivedLogInfo | undefined> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ebr-oracle-info-'));
  try {
    const file = path.join(dir, 'info');
    if (!(await store.get(name + infoSuffix, file))) return undefined;
    return JSON.parse(await readFile(file, 'utf8')) as ArchivedLogInfo;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function listLogs(store: LogStore): Promise<LogListing> {
  const logs = await storedLogs(store);
  const json = logs.map((l) => ({ name: l.name, size: l.size, sha256: l.sha256, ...(l.info ? { thread: l.info.thread, sequence: l.info.sequence, resetlogsId: l.info.resetlogsId, firstTime: l.info.firstTime, nextTime: l.info.nextTime, firstChange: l.info.firstChange, nextChange: l.info.nextChange } : {}) }));
  return {
    columns: ['log', 'thread', 'sequence', 'first time', 'next time', 'bytes', 'sha256'],
    rows: logs.map((l) => [l.name, l.info?.thread ?? '', l.info?.sequence ?? parseLogName(l.name)!.sequence, l.info?.firstTime ?? '', l.info?.nextTime ?? '', l.size, l.sha256.slice(0, 16)]),
    json,
  };
}

/** A log's file name as LOG_ARCHIVE_FORMAT makes it, so that SET LOGSOURCE + RECOVER AUTOMATIC finds it. */
export function formatLogName(format: string, l: { thread: number; sequence: number; resetlogsId: string; dbid?: number }): string {
  return format.replace(/%([a-zA-Z])/g, (whole, c: string) => {
    switch (c) {
      case 't':
        return String(l.thread);
      case 'T':
        return String(l.thread).padStart(4, '0');
      case 's':
        return String(l.sequence);
      case 'S':
        return String(l.sequence).padStart(10, '0');
      case 'r':
        return l.resetlogsId;
      case 'd':
        if (l.dbid !== undefined) return l.dbid.toString(16);
        break;
    }
    throw new EbrError('restore', `LOG_ARCHIVE_FORMAT ${format} uses ${whole}, which ebr cannot fill in`, {
      hint: 'use a LOG_ARCHIVE_FORMAT made of %t %T %s %S %r %d (the default %t_%s_%r.dbf works)',
    });
  });
}

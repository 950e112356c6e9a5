/**
 * The binlog is the server's transaction coordinator log, and a restore must hand it over intact.
 *
 * With the binary log on, a commit is two-phase: InnoDB prepares (durably), the binlog gets the
 * transaction with its XID, then InnoDB commits, without flushing its redo log, because the binlog
 * already makes the commit durable. When BACKUP STAGE BLOCK_COMMIT returns, the last transactions
 * that committed before it are in the binlog, but the redo log the snapshot froze may show them only
 * as prepared (ebr flushes InnoDB's log inside the window so that this does not happen to commits the
 * recorded position covers; XA transactions and engines cut by the freeze remain). The server's own
 * crash recovery resolves them from the binlog: it opens the last
 * binlog the index lists, and only if that file carries the in-use flag (LOG_EVENT_BINLOG_IN_USE_F,
 * set while the server writes it) does it read the binlogs from the last binlog checkpoint on,
 * commit every prepared transaction whose XID it finds and roll back the others. Without that
 * information the server refuses to start ("Found N prepared transactions! … --tc-heuristic-recover"),
 * and a heuristic commit or rollback would be a guess. So before a temporary server starts on
 * restored files, its binlog index must list exactly the frozen binlogs of the backup, whose last one
 * is the binlog written at the backup's moment, still flagged in use.
 */
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ArchivedChunk } from '../../src/adapter-api.js';
import { EbrError } from '../../src/errors.js';
import { binlogNumber, type ServerLayout } from './mariadb-layout.js';
import type { BackupPoint } from './mariadb-session.js';

const binlogMagic = Buffer.from([0xfe, 0x62, 0x69, 0x6e]);
const formatDescriptionEvent = 15;
const binlogInUse = 0x1;

/**
 * The restored binlog files (names without directory), oldest first: the chunks whose destination is
 * `<binlog basename>.<digits>` in the restored layout, wherever the server kept them. (Found by
 * destination rather than by role: backups taken before binlogs outside the data directory got the
 * role `binlog` name them by the variable that points at them.)
 */
export function restoredBinlogs(chunks: ArchivedChunk[], destinationOf: (c: ArchivedChunk) => string, layout: ServerLayout): string[] {
  const base = layout.binlogBasename;
  if (!base) return [];
  const names = chunks
    .filter((c) => c.type === 'file')
    .map(destinationOf)
    .filter((d) => path.dirname(d) === path.dirname(base) && path.basename(d).startsWith(`${path.basename(base)}.`) && /\.\d+$/.test(d))
    .map((d) => path.basename(d));
  return [...new Set(names)].sort((a, b) => (binlogNumber(a) ?? 0) - (binlogNumber(b) ?? 0));
}

/** In-use flag of a binlog's format description event; undefined when the file is not a plain binlog (MySQL's encrypted binlogs). */
export async function binlogInUseFlag(file: string): Promise<boolean | undefined> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(4 + 19);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    if (bytesRead < head.length || !head.subarray(0, 4).equals(binlogMagic)) return undefined;
    if (head.readUInt8(4 + 4) !== formatDescriptionEvent) return undefined;
    return (head.readUInt16LE(4 + 17) & binlogInUse) !== 0;
  } finally {
    await fh.close();
  }
}

/**
 * Before anything is written: the backup holds the binlogs crash recovery needs (at least the one of
 * the recorded position). Returns their names, oldest first, for the index.
 */
export function expectRecoveryBinlogs(point: BackupPoint, layout: ServerLayout, names: string[], ctx: Record<string, unknown>): string[] {
  // A split mirror's position is in its primary's binlog; the replica's own binlog (if any) is the recovery log.
  const own = point.mirrorOf ? point.recoveryBinlog?.file : point.file;
  if (!layout.binlogBasename || !own) return names;
  if (names.length === 0 || !names.includes(own)) {
    throw new EbrError('restore', `the backup does not hold ${own}, the binlog ${point.mirrorOf ? 'the replica was writing' : 'of its recorded position'}${names.length === 0 ? ` (it holds none of ${layout.binlogBasename}.*)` : ''}, so crash recovery could not tell which prepared transactions committed`, {
      hint,
      context: { ...ctx, member: own },
    });
  }
  return names;
}

/**
 * Once the files are in place, before the temporary server starts: the newest restored binlog is the
 * one the server was writing when storage was frozen (still flagged in use), so recovery reads them.
 */
export async function checkLastBinlogInUse(layout: ServerLayout, names: string[], ctx: Record<string, unknown>): Promise<void> {
  if (!layout.binlogBasename || names.length === 0) return;
  const last = names[names.length - 1]!;
  const inUse = await binlogInUseFlag(path.join(path.dirname(layout.binlogBasename), last));
  if (inUse === false) {
    throw new EbrError('restore', `${last}, the newest binlog in the backup, was already closed when it was frozen: the binlog the server was writing at the backup's moment is missing, and crash recovery would not read the binlogs at all`, {
      hint,
      context: { ...ctx, member: last },
    });
  }
}

const hint = 'take a new backup: the binlogs must be frozen with the data files in the same window (ebr lists every binlog the server has, wherever log_bin_basename points); never start the restored files with --tc-heuristic-recover, which guesses';

export interface RecoveryReport {
  /** The server ran its binlog crash recovery (the last binlog was in use). */
  fromBinlog: boolean;
  /** Prepared transactions the storage engines reported to it. */
  prepared: number;
}

/** What the temporary server's error log says about its crash recovery. */
export async function recoveryReport(errorLog: string): Promise<RecoveryReport> {
  const text = await readFile(errorLog, 'utf8').catch(() => '');
  let prepared = 0;
  for (const m of text.matchAll(/Found (\d+) prepared transaction\(s\) in \w+/g)) prepared += Number(m[1]);
  return { fromBinlog: /Recovering after a crash using /.test(text), prepared };
}

export function recoveryNote(r: RecoveryReport, datadir: string): string {
  if (!r.fromBinlog) return `crash recovery ran on ${datadir}`;
  return `crash recovery ran on ${datadir} with the backup's binlogs as its transaction log: ${r.prepared} prepared transaction(s) resolved (committed when the binlog holds their XID, rolled back otherwise)`;
}

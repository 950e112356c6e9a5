/**
 * Which archived binlogs the retained backups need, and whether the archive holds them without a gap.
 *
 * Binlogs follow each other by the number in their name; a restored server starts a new binlog history
 * past the highest number the archive holds (mariadb-binlog-history.ts), so every history a backup's
 * replay may follow has higher numbers than its start. A backup that rolls forward ('end') therefore
 * needs every binlog from the one of its position on, and a binlog is kept while its number is not below
 * the oldest such start — the minimum over all histories. A backup outside the point-in-time window keeps
 * the binlog of its position (a restore replays from it when it is archived). A binlog goes with its
 * `.range.json`; names ebr did not write are kept.
 */
import type { InstanceContext } from '../../src/adapter-api.js';
import { missingRuns, type LogChainReport, type LogGap, type LogLifecycle, type LogNeed, type LogPurgePlan } from '../../src/logs/log-lifecycle.js';
import { archivedRanges, numberOf, rangeSuffix, type BinlogRange } from './binlog-sync.js';

const binlogName = /^(.+)\.(\d+)$/;

interface BinlogNeed {
  backupId: string;
  reach: LogNeed['reach'];
  file: string;
  base: string;
  number: number;
}

function binlogNeedOf(n: LogNeed): BinlogNeed | undefined {
  const d = n.meta.details ?? {};
  const file = typeof d.file === 'string' ? d.file : n.meta.logStart?.split(':')[0];
  const m = file ? binlogName.exec(file) : null;
  if (!file || !m) return undefined;
  return { backupId: n.backupId, reach: n.reach, file, base: m[1]!, number: Number(m[2]) };
}

/** The pure decision, on names: for `ebr log purge` and its tests. */
export function planBinlogPurge(names: string[], needs: LogNeed[]): LogPurgePlan {
  const placed = needs.map(binlogNeedOf).filter((b): b is BinlogNeed => b !== undefined);
  if (placed.length === 0) return { remove: [], kept: names.length, oldestKept: [], notes: ['no retained backup records a binlog position (binary log off): nothing is purged'] };
  const ends = placed.filter((b) => b.reach === 'end').sort((a, b) => a.number - b.number);
  const first = ends[0];
  if (!first) return { remove: [], kept: names.length, oldestKept: [], notes: ['no retained backup rolls forward: nothing is purged'] };
  const ownFiles = new Set(placed.map((b) => b.file));
  const notes: string[] = [];
  const otherBases = new Set<string>();
  const remove: LogPurgePlan['remove'] = [];
  let oldest: { name: string; number: number } | undefined;
  for (const name of names) {
    const m = binlogName.exec(name);
    if (!m) continue;
    if (m[1] !== first.base) {
      otherBases.add(m[1]!);
      continue;
    }
    const number = Number(m[2]);
    if (number >= first.number || ownFiles.has(name)) {
      if (!oldest || number < oldest.number) oldest = { name, number };
      continue;
    }
    const why = `before ${first.file}, where backup ${first.backupId} (the oldest that rolls forward) starts, and no retained backup was taken in it`;
    // The range first: a binlog without its range is one that sync archives again, never a range without its log.
    if (names.includes(name + rangeSuffix)) remove.push({ name: name + rangeSuffix, why });
    remove.push({ name, why });
  }
  for (const b of otherBases) notes.push(`binlogs named ${b}.* (another log_bin basename) are kept: no retained backup places them`);
  remove.sort((a, b) => (numberOf(a.name.replace(rangeSuffix, '')) ?? 0) - (numberOf(b.name.replace(rangeSuffix, '')) ?? 0));
  return { remove, kept: names.length - remove.length, oldestKept: oldest ? [oldest.name] : [], notes };
}

/** The histories: runs of binlogs each continuing the one before (next number, same GTID state). */
export function binlogHistories(ranges: BinlogRange[]): BinlogRange[][] {
  const sorted = [...ranges].sort((a, b) => (numberOf(a.name) ?? 0) - (numberOf(b.name) ?? 0));
  const out: BinlogRange[][] = [];
  for (const r of sorted) {
    const cur = out.at(-1);
    const prev = cur?.at(-1);
    const continues = prev && numberOf(r.name) === (numberOf(prev.name) ?? -2) + 1 && (prev.gtidStateAtEnd === undefined || r.gtidStateAtStart === undefined || prev.gtidStateAtEnd === r.gtidStateAtStart);
    if (continues) cur!.push(r);
    else out.push([r]);
  }
  return out;
}

/** The pure check, on the archived ranges: for `ebr verify` and its tests. */
export function checkBinlogChain(ranges: BinlogRange[], needs: LogNeed[]): LogChainReport {
  const placed = needs.map(binlogNeedOf).filter((b): b is BinlogNeed => b !== undefined);
  const notes: string[] = [];
  const histories = binlogHistories(ranges);
  const streams = histories.map((h) => ({ stream: `binlog history from ${h[0]!.name}`, first: h[0]!.name, last: h.at(-1)!.name, count: h.length }));
  for (let i = 1; i < histories.length; i++) {
    const prev = histories[i - 1]!.at(-1)!;
    const next = histories[i]![0]!;
    if (numberOf(next.name) === (numberOf(prev.name) ?? -2) + 1) notes.push(`${next.name} starts a new binlog history (GTID state ${next.gtidStateAtStart ?? '?'} at its start, ${prev.gtidStateAtEnd ?? '?'} at the end of ${prev.name}): a restore started it`);
  }
  const byNumber = new Map(ranges.map((r) => [numberOf(r.name) ?? -1, r]));
  const historyOf = (n: number) => histories.find((h) => h.some((r) => numberOf(r.name) === n)) ?? histories.filter((h) => (numberOf(h[0]!.name) ?? 0) < n).at(-1);
  const missing = new Map<number, Set<string>>();
  const need = (from: number, to: number, backupId: string) => {
    for (let n = from; n <= to; n++) {
      if (byNumber.has(n)) continue;
      if (!missing.has(n)) missing.set(n, new Set());
      missing.get(n)!.add(backupId);
    }
  };
  const last = Math.max(-1, ...byNumber.keys());
  for (const b of placed) need(b.number, b.reach === 'end' ? Math.max(last, b.number) : b.number, b.backupId);
  const width = (placed[0]?.file.length ?? 0) - (placed[0]?.base.length ?? 0) - 1;
  const base = placed[0]?.base ?? 'binlog';
  const nameOf = (n: number) => `${base}.${String(n).padStart(Math.max(6, width), '0')}`;
  const gaps: LogGap[] = missingRuns(missing, [...byNumber.keys()]).map((r) => {
    const h = historyOf(r.from);
    return {
      stream: h ? `binlog history from ${h[0]!.name}` : `binlogs of ${base}`,
      missing: nameOf(r.from),
      count: r.to - r.from + 1,
      ...(r.after !== undefined ? { after: byNumber.get(r.after)!.name } : {}),
      ...(r.before !== undefined ? { before: byNumber.get(r.before)!.name } : {}),
      backups: r.backups,
    };
  });
  return { streams, gaps, notes };
}

export const binlogLifecycle: LogLifecycle = {
  async purgeable(instance: InstanceContext, needs, _signal) {
    const names = (await instance.logStore!('binlog').list()).map((e) => e.name);
    return planBinlogPurge(names, needs);
  },
  async check(instance: InstanceContext, needs, signal) {
    return checkBinlogChain(await archivedRanges(instance.logStore!('binlog'), signal), needs);
  },
};

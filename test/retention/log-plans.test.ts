/**
 * The adapters' lifecycle decisions on names alone: which WAL segments and binlogs retained backups
 * need (timelines and histories, the minimum over every stream, consistency-only backups, history files
 * never), and the gaps the chain check names.
 */
import { describe, expect, it } from 'vitest';
import { checkBinlogChain, planBinlogPurge } from '../../adapters/mariadb/binlog-lifecycle.js';
import type { BinlogRange } from '../../adapters/mariadb/binlog-sync.js';
import { checkWalChain, parseHistory, planWalPurge } from '../../adapters/postgres/wal-lifecycle.js';
import type { LogNeed } from '../../src/logs/log-lifecycle.js';

const seg = (tli: number, n: number) => `${tli.toString(16).toUpperCase().padStart(8, '0')}00000000${n.toString(16).toUpperCase().padStart(8, '0')}`;
const pgNeed = (backupId: string, tli: number, start: number, stop: number, reach: LogNeed['reach'] = 'end'): LogNeed => ({
  backupId,
  reach,
  meta: { timeline: tli, details: { startWalFile: seg(tli, start), stopWalFile: seg(tli, stop), walSegmentSize: 16 << 20 } },
});

describe('PostgreSQL WAL lifecycle', () => {
  // Timeline 1 segments 1..20; a restore promoted timeline 2 at segment 12 (0/C000100), which has 12..16.
  const names = [
    ...Array.from({ length: 20 }, (_, i) => seg(1, i + 1)),
    `${seg(1, 12)}.partial`,
    '00000002.history',
    ...Array.from({ length: 5 }, (_, i) => seg(2, i + 12)),
    `${seg(1, 3)}.00000028.backup`,
    `${seg(1, 9)}.00000060.backup`,
    'README',
  ];

  it('keeps every segment from the oldest rolling-forward start on, on every timeline, and the older backups own segments', () => {
    const plan = planWalPurge(names, [pgNeed('old', 1, 3, 4, 'consistent'), pgNeed('mid', 1, 9, 10), pgNeed('new', 2, 14, 14)]);
    const removed = plan.remove.map((r) => r.name);
    expect(removed).toEqual([seg(1, 1), seg(1, 2), seg(1, 5), seg(1, 6), seg(1, 7), seg(1, 8)]);
    // History, unknown names, the .backup of a kept segment and the .partial past the start stay.
    for (const kept of ['00000002.history', 'README', `${seg(1, 3)}.00000028.backup`, `${seg(1, 9)}.00000060.backup`, `${seg(1, 12)}.partial`]) expect(removed).not.toContain(kept);
    expect(plan.kept).toBe(names.length - 6);
    expect(plan.oldestKept).toEqual([`timeline 1: ${seg(1, 3)}`, `timeline 2: ${seg(2, 12)}`]);
    expect(plan.remove[0]!.why).toMatch(/backup mid/);
  });

  it('a .backup file goes with its segment; without a rolling-forward need or a placed backup nothing goes', () => {
    const plan = planWalPurge(names, [pgNeed('new', 2, 14, 15)]);
    expect(plan.remove.map((r) => r.name)).toContain(`${seg(1, 3)}.00000028.backup`);
    expect(plan.remove.map((r) => r.name)).toContain(`${seg(1, 12)}.partial`);
    expect(plan.remove.map((r) => r.name)).toContain(seg(2, 13));
    expect(plan.remove.map((r) => r.name)).not.toContain(seg(1, 14)); // the minimum over every timeline
    expect(planWalPurge(names, [{ backupId: 'rebuilt', reach: 'end', meta: {} }, pgNeed('new', 2, 14, 15)]).remove).toEqual([]);
    expect(planWalPurge(names, [pgNeed('old', 1, 3, 4, 'consistent')]).remove).toEqual([]);
  });

  it('the chain check names a missing segment, the backups that cross it, and ignores what no backup needs', () => {
    const histories = new Map([[2, parseHistory('1\t0/C000100\tno recovery target specified\n')]]);
    const needs = [pgNeed('mid', 1, 9, 10), pgNeed('new', 2, 14, 14)];
    expect(checkWalChain(names, needs, histories).gaps).toEqual([]);
    const holed = names.filter((n) => n !== seg(1, 11) && n !== seg(1, 2) && n !== seg(2, 15));
    const r = checkWalChain(holed, needs, histories);
    expect(r.gaps).toEqual([
      { stream: 'timeline 1', missing: seg(1, 11), count: 1, after: seg(1, 10), before: seg(1, 12), backups: ['mid'] },
      { stream: 'timeline 2', missing: seg(2, 15), count: 1, after: seg(2, 14), before: seg(2, 16), backups: ['mid', 'new'] },
    ]);
    expect(r.streams).toEqual([
      { stream: 'timeline 1', first: seg(1, 1), last: seg(1, 20), count: 18 },
      { stream: 'timeline 2', first: seg(2, 12), last: seg(2, 16), count: 4 },
    ]);
    // A backup whose own start segment is gone.
    const noStart = checkWalChain(names.filter((n) => n !== seg(1, 9)), [pgNeed('mid', 1, 9, 10, 'consistent')], histories);
    expect(noStart.gaps.map((g) => [g.missing, g.backups])).toEqual([[seg(1, 9), ['mid']]]);
  });
});

const range = (n: number, start: string, end: string): BinlogRange =>
  ({ name: `binlog.${String(n).padStart(6, '0')}`, size: 100, archivedAt: '', gtidStateAtStart: start, gtidStateAtEnd: end }) as unknown as BinlogRange;
const myNeed = (backupId: string, n: number, reach: LogNeed['reach'] = 'end'): LogNeed => ({ backupId, reach, meta: { logStart: `binlog.${String(n).padStart(6, '0')}:328`, details: { file: `binlog.${String(n).padStart(6, '0')}`, position: 328 } } });

describe('MariaDB binlog lifecycle', () => {
  const files = (ns: number[]) => ns.flatMap((n) => [`binlog.${String(n).padStart(6, '0')}`, `binlog.${String(n).padStart(6, '0')}.range.json`]);

  it('removes binlogs (with their ranges) before the oldest rolling-forward start, keeping a consistency-only backup binlog', () => {
    const plan = planBinlogPurge([...files([1, 2, 3, 4, 5, 6, 7]), 'notes.txt'], [myNeed('old', 2, 'consistent'), myNeed('new', 5)]);
    expect(plan.remove.map((r) => r.name)).toEqual(['binlog.000001.range.json', 'binlog.000001', 'binlog.000003.range.json', 'binlog.000003', 'binlog.000004.range.json', 'binlog.000004']);
    expect(plan.oldestKept).toEqual(['binlog.000002']);
    expect(planBinlogPurge(files([1, 2]), [{ backupId: 'off', reach: 'end', meta: {} }]).remove).toEqual([]);
  });

  it('a new binlog history after a restore is a stream, not a gap; a missing number is a gap', () => {
    const ranges = [range(1, '', '0-1-5'), range(2, '0-1-5', '0-1-9'), range(3, '0-1-9', '0-1-12'), range(4, '0-1-7', '0-1-8'), range(5, '0-1-8', '0-1-20')];
    const ok = checkBinlogChain(ranges, [myNeed('b1', 1), myNeed('b2', 4)]);
    expect(ok.gaps).toEqual([]);
    expect(ok.streams.map((s) => s.stream)).toEqual(['binlog history from binlog.000001', 'binlog history from binlog.000004']);
    expect(ok.notes.join('\n')).toMatch(/binlog.000004 starts a new binlog history/);
    const holed = checkBinlogChain(ranges.filter((r) => r.name !== 'binlog.000002'), [myNeed('b1', 1), myNeed('b2', 4)]);
    expect(holed.gaps).toEqual([{ stream: 'binlog history from binlog.000001', missing: 'binlog.000002', count: 1, after: 'binlog.000001', before: 'binlog.000003', backups: ['b1'] }]);
  });
});

/**
 * The retention rules on fixed dates: full, days, grandfather-father-son, pins, the newest always kept,
 * and the point-in-time window's anchor; the config refuses unknown and empty retention keys.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { EbrError } from '../../src/errors.js';
import { selectRetained, windowAnchor, type Candidate } from '../../src/schedule/retention-policy.js';

/** One backup a day at 02:00 UTC from 2025-12-01 to 2026-02-14 (76 days), plus a second one on 2026-02-14. */
function daily(): Candidate[] {
  const out: Candidate[] = [];
  for (let t = Date.UTC(2025, 11, 1, 2); t <= Date.UTC(2026, 1, 14, 2); t += 86_400_000) {
    const at = new Date(t).toISOString();
    out.push({ id: `b-${at.slice(0, 10)}`, startedAt: at });
  }
  out.push({ id: 'b-2026-02-14-late', startedAt: '2026-02-14T20:00:00.000Z' });
  return out;
}
const now = new Date('2026-02-15T00:00:00Z');
const kept = (c: Candidate[], rules: Parameters<typeof selectRetained>[1], pins: string[] = []) =>
  selectRetained(c, rules, new Set(pins), now).filter((d) => d.keep).map((d) => d.id);

describe('retention rules', () => {
  it('full keeps the newest N, newest first', () => {
    expect(kept(daily(), { full: 3 })).toEqual(['b-2026-02-14-late', 'b-2026-02-14', 'b-2026-02-13']);
  });

  it('days keeps what started less than D days ago', () => {
    // 2026-02-12T02:00 is 2 days 22 h old: inside 3 days; 2026-02-11T02:00 is 3 days 22 h old.
    expect(kept(daily(), { days: 3 })).toEqual(['b-2026-02-14-late', 'b-2026-02-14', 'b-2026-02-13', 'b-2026-02-12']);
  });

  it('daily/weekly/monthly keep the newest backup of each day, ISO week and month', () => {
    const d = selectRetained(daily(), { daily: 3, weekly: 3, monthly: 3 }, new Set(), now);
    const keep = d.filter((x) => x.keep).map((x) => x.id);
    // days: the 14th's later backup (newest of its day), the 13th, the 12th.
    // weeks: 2026-W07 (Mon 9th – Sun 15th) → the 14th late; W06 → Sun 8th; W05 → Sun 1st.
    // months: 2026-02 → the 14th late; 2026-01 → the 31st; 2025-12 → the 31st.
    expect(keep).toEqual(['b-2026-02-14-late', 'b-2026-02-13', 'b-2026-02-12', 'b-2026-02-08', 'b-2026-02-01', 'b-2026-01-31', 'b-2025-12-31']);
    expect(d.find((x) => x.id === 'b-2026-02-14')!.keep).toBe(false);
    expect(d.find((x) => x.id === 'b-2026-02-08')!.why).toEqual(['the newest of week 2026-W06 (weekly 3)']);
    expect(d.find((x) => x.id === 'b-2026-02-14-late')!.why).toEqual([
      'the newest backup',
      'the newest of day 2026-02-14 (daily 3)',
      'the newest of week 2026-W07 (weekly 3)',
      'the newest of month 2026-02 (monthly 3)',
    ]);
    expect(d.find((x) => x.id === 'b-2026-01-15')!.why[0]).toMatch(/^no rule keeps it \(daily 3, weekly 3, monthly 3\)$/);
  });

  it('the ISO week of early January belongs to the year of its Thursday', () => {
    const c = [
      { id: 'sun-2025-12-28', startedAt: '2025-12-28T10:00:00Z' }, // 2025-W52
      { id: 'mon-2025-12-29', startedAt: '2025-12-29T10:00:00Z' }, // 2026-W01 (Thursday 2026-01-01)
      { id: 'sat-2026-01-03', startedAt: '2026-01-03T10:00:00Z' }, // 2026-W01
    ];
    const d = selectRetained(c, { weekly: 2 }, new Set(), now);
    expect(d.filter((x) => x.keep).map((x) => x.id)).toEqual(['sat-2026-01-03', 'sun-2025-12-28']);
    expect(d[0]!.why).toContain('the newest of week 2026-W01 (weekly 2)');
    expect(d[2]!.why).toContain('the newest of week 2025-W52 (weekly 2)');
  });

  it('a pinned backup is kept whatever the rules; the newest is kept even when every rule lets it go', () => {
    expect(kept(daily(), { full: 1 }, ['b-2025-12-01'])).toEqual(['b-2026-02-14-late', 'b-2025-12-01']);
    const old = [{ id: 'a', startedAt: '2025-01-01T00:00:00Z' }, { id: 'b', startedAt: '2025-01-02T00:00:00Z' }];
    const d = selectRetained(old, { days: 7 }, new Set(), now);
    expect(d.map((x) => [x.id, x.keep])).toEqual([['b', true], ['a', false]]);
    expect(d[0]!.why).toEqual(['the newest backup']);
  });

  it('logDays alone removes no backup', () => {
    expect(kept(daily(), { logDays: 2 })).toHaveLength(77);
  });

  it('the window anchor is the newest backup that ended before now - logDays, else the oldest', () => {
    const b = [
      { id: 'x1', endedAt: '2026-02-01T03:00:00Z' },
      { id: 'x2', endedAt: '2026-02-08T03:00:00Z' },
      { id: 'x3', endedAt: '2026-02-14T03:00:00Z' },
    ];
    expect(windowAnchor(b, undefined, now)).toBe('x1');
    // Cutoff 2026-02-08T00:00: x2 ended after it, so a restore to the cutoff starts from x1.
    expect(windowAnchor(b, 7, now)).toBe('x1');
    expect(windowAnchor(b, 6, now)).toBe('x2');
    expect(windowAnchor(b, 1, now)).toBe('x2');
    expect(windowAnchor(b, 1, new Date('2026-02-16T00:00:00Z'))).toBe('x3');
    expect(windowAnchor([], 1, now)).toBeUndefined();
  });

  describe('with incremental and differential backups', () => {
    // A week: a full on Sunday, incrementals Monday–Wednesday, a diff on Thursday, a full on Friday, an incr Saturday.
    const week: Candidate[] = [
      { id: 'full-sun', startedAt: '2026-02-08T02:00:00Z', type: 'full' },
      { id: 'incr-mon', startedAt: '2026-02-09T02:00:00Z', type: 'incr', parent: 'full-sun' },
      { id: 'incr-tue', startedAt: '2026-02-10T02:00:00Z', type: 'incr', parent: 'incr-mon' },
      { id: 'incr-wed', startedAt: '2026-02-11T02:00:00Z', type: 'incr', parent: 'incr-tue' },
      { id: 'diff-thu', startedAt: '2026-02-12T02:00:00Z', type: 'diff', parent: 'full-sun' },
      { id: 'full-fri', startedAt: '2026-02-13T02:00:00Z', type: 'full' },
      { id: 'incr-sat', startedAt: '2026-02-14T02:00:00Z', type: 'incr', parent: 'full-fri' },
    ];

    it('full: N counts full backups and keeps what was taken since the oldest of them', () => {
      expect(kept(week, { full: 1 })).toEqual(['incr-sat', 'full-fri']);
      expect(kept(week, { full: 2 })).toEqual(['incr-sat', 'full-fri', 'diff-thu', 'incr-wed', 'incr-tue', 'incr-mon', 'full-sun']);
    });

    it('a kept incremental keeps its whole chain, whatever rule keeps it', () => {
      // days: 4 keeps Wednesday onwards; Wednesday's incr needs Tuesday's, Monday's and Sunday's full.
      const d = selectRetained(week, { days: 4 }, new Set(), now);
      expect(d.filter((x) => x.keep).map((x) => x.id)).toEqual(['incr-sat', 'full-fri', 'diff-thu', 'incr-wed', 'incr-tue', 'incr-mon', 'full-sun']);
      expect(d.find((x) => x.id === 'incr-tue')!.why).toEqual(['the parent of kept backup incr-wed, which reads blocks from it']);
      // A pin too: the pinned diff keeps the full it was compared with, not the incrementals beside it.
      expect(kept(week, { full: 1 }, ['diff-thu'])).toEqual(['incr-sat', 'full-fri', 'diff-thu', 'full-sun']);
    });

    it('daily keeps the newest of each day and the chains those need', () => {
      expect(kept(week, { daily: 2 })).toEqual(['incr-sat', 'full-fri']);
      expect(kept(week, { daily: 4 })).toEqual(['incr-sat', 'full-fri', 'diff-thu', 'incr-wed', 'incr-tue', 'incr-mon', 'full-sun']);
    });
  });
});

describe('retention config', () => {
  const doc = (retention: unknown) => ({ instances: { t: { adapter: 'sqlite', sqlite: { main: './shop.db' }, target: { type: 'tar', path: './backups' }, retention } } });
  it('takes every rule', () => {
    const c = parseConfig(doc({ full: 2, days: 30, daily: 7, weekly: 4, monthly: 12, logDays: 7 }), '/tmp/ebr.yaml', {});
    expect(c.instances.t!.retention).toEqual({ full: 2, days: 30, daily: 7, weekly: 4, monthly: 12, logDays: 7 });
  });
  it.each([[{ hourly: 3 }, /unknown key .*hourly/], [{}, /retention is \{\}/], [{ full: 0 }, /retention/]])('refuses %j with exit 2', (retention, message) => {
    let err: unknown;
    try {
      parseConfig(doc(retention), '/tmp/ebr.yaml', {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EbrError);
    expect((err as EbrError).exitCode).toBe(2);
    expect((err as EbrError).message).toMatch(message);
    if (Object.keys(retention).length === 0) expect((err as EbrError).hint).toMatch(/at least one of full, days, daily, weekly, monthly, logDays/);
  });
});

/**
 * Which archived WAL the retained backups need, and whether the archive holds it without a gap.
 *
 * A segment is named by its timeline and its position (`TTTTTTTT` + `LLLLLLLLSSSSSSSS`); positions
 * compare as strings. A backup that rolls forward ('end') needs every segment from its start segment on,
 * on its timeline and on every timeline that forks from it later (a restore's promotion), so a segment
 * is kept while its position is not below the oldest such start over all of them — the minimum over every
 * stream, whichever timeline it is on. A backup that only needs to be consistent keeps its own segments,
 * start to stop. Timeline history files are never purged (every later recovery reads them); `.backup`
 * and `.partial` files go with the segment they belong to.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { InstanceContext } from '../../src/adapter-api.js';
import { missingRuns, type LogChainReport, type LogGap, type LogLifecycle, type LogNeed, type LogPurgePlan } from '../../src/logs/log-lifecycle.js';
import type { LogStore } from '../../src/logs/log-store.js';
import { lsnToBigInt } from './postgres-wal.js';

const defaultSegmentSize = 16 << 20;
const hex8 = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');

export type WalFile =
  | { kind: 'segment' | 'partial' | 'backup'; name: string; tli: number; pos: string }
  | { kind: 'history'; name: string; tli: number }
  | { kind: 'other'; name: string };

export function classify(name: string): WalFile {
  let m = /^([0-9A-F]{8})([0-9A-F]{16})(\.partial)?$/.exec(name);
  if (m) return { kind: m[3] ? 'partial' : 'segment', name, tli: parseInt(m[1]!, 16), pos: m[2]! };
  m = /^([0-9A-F]{8})([0-9A-F]{16})\.[0-9A-F]{8}\.backup$/.exec(name);
  if (m) return { kind: 'backup', name, tli: parseInt(m[1]!, 16), pos: m[2]! };
  m = /^([0-9A-F]{8})\.history$/.exec(name);
  if (m) return { kind: 'history', name, tli: parseInt(m[1]!, 16) };
  return { kind: 'other', name };
}

/** Where a backup's WAL starts and stops, from what unblock recorded (startWalFile, stopWalFile, timeline). */
export interface WalNeed {
  backupId: string;
  reach: LogNeed['reach'];
  tli: number;
  start: string;
  stop: string;
  segmentSize: number;
}

export function walNeedOf(n: LogNeed): WalNeed | undefined {
  const d = n.meta.details ?? {};
  const start = typeof d.startWalFile === 'string' ? classify(d.startWalFile) : undefined;
  const stop = typeof d.stopWalFile === 'string' ? classify(d.stopWalFile) : undefined;
  if (start?.kind !== 'segment') return undefined;
  return {
    backupId: n.backupId,
    reach: n.reach,
    tli: start.tli,
    start: start.pos,
    stop: stop?.kind === 'segment' ? stop.pos : start.pos,
    segmentSize: typeof d.walSegmentSize === 'number' ? d.walSegmentSize : defaultSegmentSize,
  };
}

/** The pure decision, on names: for `ebr log purge` and its tests. */
export function planWalPurge(names: string[], needs: LogNeed[]): LogPurgePlan {
  const placed = needs.map((n) => ({ n, w: walNeedOf(n) }));
  const unplaced = placed.filter((p) => !p.w).map((p) => p.n.backupId);
  if (unplaced.length) {
    return { remove: [], kept: names.length, oldestKept: [], notes: [`backup(s) ${unplaced.join(', ')} record no start WAL segment (a catalog rebuilt from an old manifest?): nothing is purged`] };
  }
  const wal = placed.map((p) => p.w!);
  const ends = wal.filter((w) => w.reach === 'end').sort((a, b) => a.start.localeCompare(b.start));
  const first = ends[0];
  if (!first) return { remove: [], kept: names.length, oldestKept: [], notes: ['no retained backup rolls forward: nothing is purged'] };
  const consistent = wal.filter((w) => w.reach === 'consistent');
  const ownedBy = (tli: number, pos: string) => consistent.find((w) => w.tli === tli && w.start <= pos && pos <= w.stop);
  const files = names.map(classify);
  const remove: LogPurgePlan['remove'] = [];
  const oldest = new Map<number, string>();
  for (const f of files) {
    if (f.kind === 'history' || f.kind === 'other') continue;
    if (f.pos >= first.start || ownedBy(f.tli, f.pos)) {
      if (f.kind === 'segment' && (!oldest.has(f.tli) || f.name < oldest.get(f.tli)!)) oldest.set(f.tli, f.name);
      continue;
    }
    remove.push({ name: f.name, why: `before ${hex8(first.tli)}${first.start}, where backup ${first.backupId} (the oldest that rolls forward) starts, and no retained backup needs it to become consistent` });
  }
  remove.sort((a, b) => a.name.slice(8).localeCompare(b.name.slice(8)) || a.name.localeCompare(b.name));
  return {
    remove,
    kept: names.length - remove.length,
    oldestKept: [...oldest.entries()].sort((a, b) => a[0] - b[0]).map(([tli, name]) => `timeline ${tli}: ${name}`),
    notes: consistent.length ? [`${consistent.length} older backup(s) keep only the segments from their start to their stop (outside the point-in-time window)`] : [],
  };
}

/** A timeline's history file: its ancestors, and the position where it forked from its parent. */
export interface TimelineHistory {
  parents: number[];
  switchLsn?: string;
}

export function parseHistory(text: string): TimelineHistory {
  const rows = text
    .split('\n')
    .map((l) => /^\s*(\d+)\s+([0-9A-F]+\/[0-9A-F]+)/i.exec(l))
    .filter((m): m is RegExpExecArray => m !== null);
  return { parents: rows.map((m) => Number(m[1])), ...(rows.length ? { switchLsn: rows.at(-1)![2]! } : {}) };
}

/** The pure check, on names and the timelines' histories: for `ebr verify` and its tests. */
export function checkWalChain(names: string[], needs: LogNeed[], histories: Map<number, TimelineHistory>): LogChainReport {
  const notes: string[] = [];
  const wal = needs.map(walNeedOf).filter((w): w is WalNeed => w !== undefined);
  if (wal.length < needs.length) notes.push(`${needs.length - wal.length} backup(s) record no start WAL segment and were not checked`);
  const segmentSize = wal[0]?.segmentSize ?? defaultSegmentSize;
  const perId = 0x100000000 / segmentSize;
  const segno = (pos: string) => parseInt(pos.slice(0, 8), 16) * perId + parseInt(pos.slice(8), 16);
  const nameOf = (tli: number, n: number) => `${hex8(tli)}${hex8(Math.floor(n / perId))}${hex8(n % perId)}`;

  const present = new Map<number, Set<number>>();
  for (const f of names.map(classify)) {
    if (f.kind !== 'segment') continue;
    if (!present.has(f.tli)) present.set(f.tli, new Set());
    present.get(f.tli)!.add(segno(f.pos));
  }
  const maxTli = Math.max(0, ...present.keys(), ...wal.map((w) => w.tli));
  // Without its history a timeline might descend from any earlier one: it is checked against all of them.
  const ancestry = (t: number): Set<number> => {
    const h = histories.get(t);
    if (h) return new Set([t, ...h.parents]);
    return new Set(Array.from({ length: t }, (_, i) => i + 1));
  };
  for (let t = 2; t <= maxTli; t++) if (present.has(t) && !histories.has(t)) notes.push(`timeline ${t} has segments but no ${hex8(t)}.history in the archive`);

  // Which backups need each missing segment: their own segments start to stop on their timeline, and for
  // roll-forward, on every timeline that may continue them, from their start (or the fork) to its last one.
  const missing = new Map<number, Map<number, Set<string>>>();
  const need = (tli: number, from: number, to: number, backupId: string) => {
    const set = present.get(tli) ?? new Set<number>();
    for (let n = from; n <= to; n++) {
      if (set.has(n)) continue;
      if (!missing.has(tli)) missing.set(tli, new Map());
      const m = missing.get(tli)!;
      if (!m.has(n)) m.set(n, new Set());
      m.get(n)!.add(backupId);
    }
  };
  for (const w of wal) need(w.tli, segno(w.start), segno(w.stop), w.backupId);
  for (const [tli, set] of present) {
    const forkLsn = histories.get(tli)?.switchLsn;
    const fork = forkLsn ? Number(lsnToBigInt(forkLsn) / BigInt(segmentSize)) : 0;
    const last = Math.max(...set);
    for (const w of wal) if (w.reach === 'end' && ancestry(tli).has(w.tli)) need(tli, Math.max(fork, segno(w.start)), last, w.backupId);
  }
  const gaps: LogGap[] = [];
  for (const [tli, m] of missing) {
    for (const r of missingRuns(m, [...(present.get(tli) ?? [])])) {
      gaps.push({
        stream: `timeline ${tli}`,
        missing: nameOf(tli, r.from),
        count: r.to - r.from + 1,
        ...(r.after !== undefined ? { after: nameOf(tli, r.after) } : {}),
        ...(r.before !== undefined ? { before: nameOf(tli, r.before) } : {}),
        backups: r.backups,
      });
    }
  }
  const streams = [...present.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([tli, set]) => {
      const sorted = [...set].sort((a, b) => a - b);
      return { stream: `timeline ${tli}`, first: nameOf(tli, sorted[0]!), last: nameOf(tli, sorted.at(-1)!), count: sorted.length };
    });
  return { streams, gaps: gaps.sort((a, b) => a.missing.slice(8).localeCompare(b.missing.slice(8)) || a.missing.localeCompare(b.missing)), notes };
}

async function historiesIn(store: LogStore, names: string[], signal: AbortSignal): Promise<Map<number, TimelineHistory>> {
  const out = new Map<number, TimelineHistory>();
  const files = names.map(classify).filter((f) => f.kind === 'history');
  if (files.length === 0) return out;
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'ebr-wal-history-'));
  try {
    for (const f of files) {
      const dest = path.join(tmp, f.name);
      if (await store.get(f.name, dest, signal)) out.set((f as { tli: number }).tli, parseHistory(await readFile(dest, 'utf8')));
    }
    return out;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

export const walLifecycle: LogLifecycle = {
  async purgeable(instance: InstanceContext, needs, _signal) {
    const names = (await instance.logStore!('wal').list()).map((e) => e.name);
    return planWalPurge(names, needs);
  },
  async check(instance: InstanceContext, needs, signal) {
    const store = instance.logStore!('wal');
    const names = (await store.list()).map((e) => e.name);
    return checkWalChain(names, needs, await historiesIn(store, names, signal));
  },
};

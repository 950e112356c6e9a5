/**
 * Which backups retention keeps, and why: a pure function of the backups, the pins, the rules and the
 * clock, so it can be tested with fixed dates and printed by `ebr retention --dry-run` as it decides.
 *
 * A backup is kept when any rule keeps it (the rules add up, as restic's --keep-* do):
 * - full: N — the newest N;
 * - days: D — every backup started less than D days ago;
 * - daily / weekly / monthly: N — grandfather-father-son: the newest backup of each of the last N UTC
 *   days (ISO weeks, months) that have a backup;
 * - pinned (`ebr pin`) — always.
 * The newest backup is always kept, whatever the rules: retention never leaves an instance with none.
 * A kept incremental or differential keeps its parent, and so up its chain: retention never leaves a
 * kept backup that cannot be restored.
 */
export interface RetentionRules {
  full?: number;
  days?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  /** The point-in-time window: logs are kept so that `--until` reaches any time of the last logDays days. */
  logDays?: number;
}

export interface Candidate {
  id: string;
  /** ISO time the backup started (its place in time for the rules). */
  startedAt: string;
  /** The backup an incr or diff reads blocks from; absent for a full one. */
  parent?: string;
  /** full when absent. */
  type?: string;
}

export interface Decision {
  id: string;
  startedAt: string;
  keep: boolean;
  /** Every rule that keeps it, or why none does. */
  why: string[];
}

const dayMs = 86_400_000;

/** Decisions newest first, for backups given in any order. */
export function selectRetained(backups: Candidate[], rules: RetentionRules, pinned: ReadonlySet<string>, now: Date): Decision[] {
  const sorted = [...backups].sort((a, b) => (a.startedAt === b.startedAt ? b.id.localeCompare(a.id) : b.startedAt.localeCompare(a.startedAt)));
  const why = new Map<string, string[]>(sorted.map((b) => [b.id, []]));
  const add = (id: string, reason: string) => why.get(id)!.push(reason);
  // full: N counts full backups, as pgBackRest's retention-full does; the incrementals and differentials
  // taken since the oldest of them stay with them.
  const isFull = (b: Candidate) => (b.type ?? 'full') === 'full';
  const fulls = sorted.filter(isFull);
  const oldestKept = rules.full !== undefined ? fulls[Math.min(rules.full, fulls.length) - 1] : undefined;
  const oldestKeptFull = oldestKept ? sorted.indexOf(oldestKept) : sorted.length;
  const hasBackupRule = rules.full !== undefined || rules.days !== undefined || rules.daily !== undefined || rules.weekly !== undefined || rules.monthly !== undefined;

  sorted.forEach((b, i) => {
    if (i === 0) add(b.id, 'the newest backup');
    if (pinned.has(b.id)) add(b.id, 'pinned');
    if (!hasBackupRule) add(b.id, 'no rule removes backups (only logDays is set)');
    if (rules.full !== undefined && isFull(b) && fulls.indexOf(b) < rules.full) add(b.id, `one of the newest ${rules.full} full backups (full)`);
    if (rules.full !== undefined && !isFull(b) && i < oldestKeptFull) add(b.id, `newer than the oldest of the newest ${rules.full} full backups (full)`);
    if (rules.days !== undefined && now.getTime() - Date.parse(b.startedAt) < rules.days * dayMs) add(b.id, `younger than ${rules.days} days (days)`);
  });
  const buckets: Array<[keyof RetentionRules, string, (d: Date) => string]> = [
    ['daily', 'day', (d) => d.toISOString().slice(0, 10)],
    ['weekly', 'week', isoWeek],
    ['monthly', 'month', (d) => d.toISOString().slice(0, 7)],
  ];
  for (const [rule, unit, keyOf] of buckets) {
    const n = rules[rule];
    if (n === undefined) continue;
    const seen = new Set<string>();
    for (const b of sorted) {
      const key = keyOf(new Date(b.startedAt));
      if (seen.has(key)) continue;
      if (seen.size >= n) break;
      seen.add(key);
      add(b.id, `the newest of ${unit} ${key} (${rule} ${n})`);
    }
  }
  // Newest first, so a parent (always older) has its reasons by the time it passes them up the chain.
  for (const b of sorted) {
    if (b.parent && why.get(b.id)!.length && why.has(b.parent)) add(b.parent, `the parent of kept backup ${b.id}, which reads blocks from it`);
  }
  return sorted.map((b) => {
    const reasons = why.get(b.id)!;
    return reasons.length
      ? { id: b.id, startedAt: b.startedAt, keep: true, why: reasons }
      : { id: b.id, startedAt: b.startedAt, keep: false, why: [`no rule keeps it (${describeRules(rules)})`] };
  });
}

export function describeRules(rules: RetentionRules): string {
  return (['full', 'days', 'daily', 'weekly', 'monthly', 'logDays'] as const)
    .filter((k) => rules[k] !== undefined)
    .map((k) => `${k} ${rules[k]}`)
    .join(', ');
}

/**
 * The backup the point-in-time window starts from: the newest retained backup that ended at or before
 * `now - logDays` (a restore to the window's first moment starts there), else the oldest retained one.
 * Every retained backup from it on rolls forward to the end of the archive; older ones keep only the
 * logs of their own consistency. Without logDays the oldest retained backup is the anchor.
 */
export function windowAnchor(retained: Array<{ id: string; endedAt: string }>, logDays: number | undefined, now: Date): string | undefined {
  const oldestFirst = [...retained].sort((a, b) => a.endedAt.localeCompare(b.endedAt));
  if (logDays === undefined) return oldestFirst[0]?.id;
  const cutoff = new Date(now.getTime() - logDays * dayMs).toISOString();
  const before = oldestFirst.filter((b) => b.endedAt <= cutoff);
  return (before.at(-1) ?? oldestFirst[0])?.id;
}

/** ISO 8601 week (`2026-W03`), in UTC: weeks start on Monday, week 1 holds the year's first Thursday. */
function isoWeek(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const weekday = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - weekday);
  const yearStart = Date.UTC(t.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((t.getTime() - yearStart) / dayMs + 1) / 7);
  return `${t.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

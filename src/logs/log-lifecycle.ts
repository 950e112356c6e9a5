/**
 * What the log archive's lifecycle asks of an adapter (LogCommands.lifecycle). The split: ebr decides
 * which backups are retained and how far each must roll forward; the adapter, which alone knows how its
 * logs are named, ordered and continued (timelines, binlog histories), answers which archived logs those
 * backups need and whether the archive holds them without a gap.
 */
import type { InstanceContext } from '../adapter-api.js';
import type { BackupMeta } from '../model.js';

/** One retained backup and how far the archive must carry it. */
export interface LogNeed {
  backupId: string;
  /** The backup's log positions and details, as its adapter returned them at unblock. */
  meta: BackupMeta;
  /**
   * 'consistent': the logs that restore this backup to its own end (a backup older than the
   * point-in-time window, or pinned). 'end': those and every later log on every stream that may
   * continue from it, so `--until` reaches any time after it.
   */
  reach: 'consistent' | 'end';
}

export interface LogPurgePlan {
  /** Archived names no need covers, oldest first, each with why it may go. */
  remove: Array<{ name: string; why: string }>;
  /** Archived names that stay. */
  kept: number;
  /** The oldest log kept on each stream, for the user (`timeline 1: 000000010000000000000007`). */
  oldestKept: string[];
  notes: string[];
}

/** A log missing from the archive where some retained backup needs it. */
export interface LogGap {
  /** The stream it is missing from (`timeline 1`, `binlog history from binlog.000004`). */
  stream: string;
  /** The first missing log. */
  missing: string;
  /** How many are missing in a row from there. */
  count: number;
  /** The archived log before the gap, and the one after it. */
  after?: string;
  before?: string;
  /** Backups whose restore or point-in-time restore would have to cross it. */
  backups: string[];
}

export interface LogChainReport {
  /** Each stream the archive holds (a timeline, a binlog history), with its first and last log. */
  streams: Array<{ stream: string; first: string; last: string; count: number }>;
  gaps: LogGap[];
  notes: string[];
}

export interface LogLifecycle<S = unknown> {
  /**
   * Which archived logs none of `needs` needs. Reads the archive, removes nothing: ebr removes them
   * (and prints them under --dry-run). A log is kept while any stream that may continue from any
   * 'end' need has not passed it — the minimum over all of them — and every log a need needs for its
   * consistency is kept. Files the adapter cannot place (unknown names, timeline histories) are kept.
   */
  purgeable(instance: InstanceContext<S>, needs: LogNeed[], signal: AbortSignal): Promise<LogPurgePlan>;
  /** The continuity of the archive from each need on: every log it needs is there, in sequence. */
  check(instance: InstanceContext<S>, needs: LogNeed[], signal: AbortSignal): Promise<LogChainReport>;
}

/**
 * Missing log numbers grouped into runs of consecutive ones, each with the backups that need any of
 * them and the nearest present numbers around it: the gaps `ebr verify` names.
 */
export function missingRuns(missing: Map<number, Set<string>>, present: number[]): Array<{ from: number; to: number; backups: string[]; after?: number; before?: number }> {
  const ns = [...missing.keys()].sort((a, b) => a - b);
  const have = [...present].sort((a, b) => a - b);
  const runs: Array<{ from: number; to: number; backups: string[]; after?: number; before?: number }> = [];
  for (let i = 0; i < ns.length; ) {
    let j = i;
    while (j + 1 < ns.length && ns[j + 1] === ns[j]! + 1) j++;
    const from = ns[i]!;
    const to = ns[j]!;
    const backups = new Set<string>();
    for (let k = i; k <= j; k++) for (const b of missing.get(ns[k]!)!) backups.add(b);
    const after = have.filter((x) => x < from).at(-1);
    const before = have.find((x) => x > to);
    runs.push({ from, to, backups: [...backups].sort(), ...(after !== undefined ? { after } : {}), ...(before !== undefined ? { before } : {}) });
    i = j + 1;
  }
  return runs;
}

/**
 * Which archived binlogs a point-in-time restore replays: from the file and position recorded at the
 * backup, each next file in number order, as long as its GTID state at start is the state the previous
 * one ended with (a restored server that started a new binlog history breaks the chain there), up to
 * the first file created after the target time.
 */
import { EbrError } from '../../src/errors.js';
import { numberOf, type BinlogRange } from './binlog-sync.js';

export interface ReplayPlan {
  files: BinlogRange[];
  /** Where replay starts in the first file. */
  startPosition: number;
  /** The archive holds events up to the target time (or, without a target, everything archived). */
  reachesTarget: boolean;
  /** Time of the last archived event in the chain, seconds since the epoch. */
  lastEventEpoch?: number;
  notes: string[];
}

export function replayChain(ranges: BinlogRange[], start: { file: string; position: number }, until: Date | undefined, instance: string): ReplayPlan {
  const i = ranges.findIndex((r) => r.name === start.file);
  if (i < 0) {
    throw new EbrError('logArchive', `the binlog ${start.file}, where this backup's position is, is not in the log archive`, {
      hint: `run \`ebr binlog sync --instance ${instance}\` while the server still has that binlog (it runs after every backup when the log archive is set up); a binlog purged before it was archived is lost, so restore without --until`,
      context: { instance, member: start.file },
    });
  }
  const notes: string[] = [];
  const chain = [ranges[i]!];
  for (let j = i + 1; j < ranges.length; j++) {
    const prev = chain[chain.length - 1]!;
    const next = ranges[j]!;
    if (numberOf(next.name) !== (numberOf(prev.name) ?? -2) + 1) {
      notes.push(`the archive has no binlog after ${prev.name} (next archived is ${next.name}); replay stops there`);
      break;
    }
    if (prev.gtidStateAtEnd !== undefined && next.gtidStateAtStart !== undefined && prev.gtidStateAtEnd !== next.gtidStateAtStart) {
      notes.push(`${next.name} does not continue ${prev.name} (GTID state ${next.gtidStateAtStart} at its start, ${prev.gtidStateAtEnd} at the end of ${prev.name}): it belongs to another binlog history, replay stops before it`);
      break;
    }
    chain.push(next);
  }
  const untilEpoch = until ? until.getTime() / 1000 : undefined;
  // A file created after the target holds only later events.
  const files = untilEpoch === undefined ? chain : chain.filter((r, k) => k === 0 || (r.createdEpoch ?? 0) <= untilEpoch);
  const last = files[files.length - 1]!;
  const lastEventEpoch = Math.max(...files.map((f) => f.lastEventEpoch ?? 0)) || undefined;
  const continues = files.length < chain.length; // a later archived file exists: every event up to the target is archived
  const reachesTarget = untilEpoch === undefined || continues || (lastEventEpoch !== undefined && lastEventEpoch >= untilEpoch);
  if (!reachesTarget) {
    notes.push(
      `the archived binlogs end at ${new Date((lastEventEpoch ?? 0) * 1000).toISOString()} (in ${last.name}), before the target time: transactions after that are not in this restore; run \`ebr binlog sync\` while the old server still runs to archive the rest`,
    );
  }
  if (files.some((f) => f.encrypted)) notes.push('some binlogs are encrypted: mariadb-binlog needs the same key management plugin options to read them');
  return { files, startPosition: start.position, reachesTarget, ...(lastEventEpoch !== undefined ? { lastEventEpoch } : {}), notes };
}

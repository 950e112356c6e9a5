/**
 * A split mirror on PostgreSQL: the backup runs on a streaming standby of the instance, so the primary
 * is never blocked. Split = pg_backup_start on the standby, then pg_wal_replay_pause() until replay has
 * really paused; the standby's files are frozen; resync = pg_backup_stop (the label), then
 * pg_wal_replay_resume(). The WAL a restore needs is the primary's, in the instance's log archive: after
 * the split the primary switches to a new segment so the backup's last one is archived, and with
 * resync: wait the backup ends once the standby has replayed what the primary wrote meanwhile.
 *
 * A paused replay outlives the session (it is server state), so the session says so: the gate journals
 * the split and arms the watchdog, whose release command (`ebr release`) resumes replay.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import type { BackupMeta, BlockToken, DbmsSession, InstanceContext, MirrorContext } from '../../src/adapter-api.js';
import { EbrError, throwIfAborted } from '../../src/errors.js';
import { walCommand } from './ebr-command.js';
import { openPostgres, type OpenPostgres } from './postgres-adapter.js';
import type { PostgresSettings } from './postgres-config.js';
import { queryError } from './postgres-errors.js';
import * as q from './postgres-queries.js';
import { mirrorQueries } from './postgres-queries.js';
import { postgresSession } from './postgres-session.js';
import { waitForArchived } from './postgres-wal.js';


const where = (s: PostgresSettings) => `${s.host}:${s.port}`;

export async function connectMirror(instance: InstanceContext<PostgresSettings>, replica: MirrorContext<PostgresSettings>, signal: AbortSignal): Promise<DbmsSession> {
  const ctx = { instance: instance.name };
  const replicaInstance: InstanceContext<PostgresSettings> = { ...instance, settings: replica.settings };
  const r = await openPostgres(replicaInstance, signal);
  let p: OpenPostgres;
  try {
    p = await openPostgres(instance, signal);
  } catch (err) {
    await r.client.end().catch(() => undefined);
    throw err;
  }
  const inner = postgresSession(r.client, replicaInstance, r.server, r.lost);
  const primaryInner = postgresSession(p.client, instance, p.server, p.lost);
  const on = async <R extends pg.QueryResultRow>(c: pg.Client, sql: string, params: unknown[], what: string, phase: string): Promise<R[]> => {
    try {
      return (await c.query<R>(sql, params)).rows;
    } catch (err) {
      throw queryError(err, 'block', what, { ...ctx, phase });
    }
  };
  let split: { at: number; lsn: string } | undefined;
  let resumed: { at: number; primaryLsn: string } | undefined;
  let paused = false;

  const resume = async (): Promise<void> => {
    if (!paused) return;
    await r.client.query(mirrorQueries.resume);
    paused = false;
  };

  return {
    blockSurvivesSession: true,

    async describe() {
      return { ...(await inner.describe()), mirrorOf: { primary: where(instance.settings), systemIdentifier: p.server.system_identifier }, replica: where(replica.settings) };
    },

    async preflight(sig) {
      // The primary archives the WAL a restore replays: its archive settings are the ones that matter.
      await primaryInner.preflight!(sig);
      const [st] = await on<{ in_recovery: boolean; system_identifier: string; pause_state: string; receiver: string | null; replay_lsn: string | null; replay_age_ms: number }>(r.client, mirrorQueries.replicaState, [], 'cannot read the replica\'s state', 'preflight');
      const [pr] = await on<{ system_identifier: string; lsn: string; in_recovery: boolean }>(p.client, mirrorQueries.primaryState, [], 'cannot read the primary\'s state', 'preflight');
      const refuse = (message: string, hint: string) => new EbrError('snapshot', message, { hint, context: { ...ctx, phase: 'preflight', replica: where(replica.settings) } });
      if (pr!.in_recovery) throw refuse(`${instance.name} (${where(instance.settings)}) is itself a standby`, 'point the instance at the primary and snapshot.replica at its standby');
      if (!st!.in_recovery) throw refuse(`the replica ${where(replica.settings)} is not a standby: it accepts writes, so it mirrors nothing`, 'set snapshot.replica to a streaming standby of the instance (pg_basebackup -R, standby.signal)');
      if (st!.system_identifier !== pr!.system_identifier) {
        throw refuse(`the replica ${where(replica.settings)} is a copy of another cluster (system ${st!.system_identifier}, the primary is ${pr!.system_identifier})`, 'set snapshot.replica to a standby of this instance');
      }
      if (st!.pause_state !== 'not paused') {
        throw refuse(`replay on the replica ${where(replica.settings)} is ${st!.pause_state} already: someone else has split it`, 'find who paused it; resume it with SELECT pg_wal_replay_resume() (or `ebr release` if an ebr backup left it) and run the backup again');
      }
      if (st!.receiver !== 'streaming') {
        throw refuse(`the replica ${where(replica.settings)} is not streaming from its primary (WAL receiver: ${st!.receiver ?? 'none'})`, 'check primary_conninfo on the replica and the primary\'s pg_hba.conf, then run the backup again');
      }
      const [lag] = await on<{ bytes: number }>(p.client, mirrorQueries.lsnDiff, [pr!.lsn, st!.replay_lsn ?? '0/0'], 'cannot compare positions', 'preflight');
      // Behind in bytes and in time: an idle primary writes nothing, so a replica that replayed all it has is not lagging, however old its last transaction.
      if (lag!.bytes > 0 && st!.replay_age_ms > replica.maxLagMs) {
        throw refuse(`the replica ${where(replica.settings)} is ${Math.round(st!.replay_age_ms)} ms (${lag!.bytes} bytes of WAL) behind the primary, past snapshot.maxLagMs (${replica.maxLagMs} ms)`, 'let it catch up (or raise maxLagMs), then run the backup again');
      }
    },

    discover: (sig) => inner.discover(sig),
    checkpoint: (sig) => inner.checkpoint(sig),

    async block(sig): Promise<BlockToken> {
      const token = await inner.block(sig);
      try {
        paused = true;
        await on(r.client, mirrorQueries.pause, [], 'pg_wal_replay_pause() failed', 'acquire');
        // pg_wal_replay_pause() only requests the pause; the record being replayed finishes first.
        for (;;) {
          throwIfAborted(sig, { ...ctx, phase: 'acquire' });
          const [row] = await on<{ state: string; lsn: string }>(r.client, mirrorQueries.pauseState, [], 'cannot read the replay state', 'acquire');
          if (row!.state === 'paused') {
            split = { at: Date.now(), lsn: row!.lsn };
            break;
          }
          await sleep(5);
        }
      } catch (err) {
        // The gate unblocks only after block returned: resume and end the backup here.
        await resume().catch(() => undefined);
        await inner.unblock(token).catch(() => undefined);
        throw err;
      }
      return { ...token, details: { ...(token.details ?? {}), pausedAt: split.lsn } };
    },

    async unblock(token, outcome): Promise<BackupMeta> {
      try {
        return await inner.unblock(token, outcome);
      } finally {
        // Whatever pg_backup_stop said, the replica goes on replaying.
        try {
          const [row] = await p.client.query<{ lsn: string }>(mirrorQueries.primaryLsn).then((x) => x.rows);
          resumed = { at: Date.now(), primaryLsn: row?.lsn ?? split?.lsn ?? '0/0' };
        } catch {
          resumed = { at: Date.now(), primaryLsn: split?.lsn ?? '0/0' };
        }
        await resume();
      }
    },

    releaseCommand: () => instance.ebrArgv!(['release', '--instance', instance.name]),
    lost: () => r.lost() ?? inner.lost?.(),

    async afterRelease(meta, sig, progress) {
      // The primary closes the segment the backup ends in, so its archive_command archives it now.
      await p.client.query(mirrorQueries.mark).catch(() => undefined);
      await on(p.client, mirrorQueries.switchWal, [], 'pg_switch_wal() on the primary failed', 'after-release');
      const stop = String(meta.details?.stopWalFile ?? '');
      await waitForArchived({
        segment: stop,
        store: instance.logStore?.('wal'),
        dataDirectory: p.server.data_directory,
        timeoutMs: instance.settings.archiveWaitMs,
        archiver: async () => (await on<Record<string, unknown>>(p.client, q.archiverStatus, [], 'cannot read pg_stat_archiver', 'after-release'))[0] ?? {},
        signal: sig,
        context: { ...ctx, phase: 'after-release' },
        hint: `check the primary's log for archive_command failures; archive_command must be: ${walCommand('push', instance.name, instance.configFile, ['%p'])}`,
      });
      const splitMs = split && resumed ? resumed.at - split.at : undefined;
      const [backlog] = split && resumed ? await on<{ bytes: number }>(p.client, mirrorQueries.lsnDiff, [resumed.primaryLsn, split.lsn], 'cannot compare positions', 'after-release') : [];
      const figures: Record<string, unknown> = { replica: where(replica.settings), resync: replica.resync, splitMs, backlogBytes: Math.max(0, backlog?.bytes ?? 0) };
      if (replica.resync === 'wait' && resumed) {
        const t0 = Date.now();
        const deadline = t0 + instance.settings.archiveWaitMs;
        for (;;) {
          throwIfAborted(sig, { ...ctx, phase: 'after-release' });
          const [row] = await on<{ lsn: string | null }>(r.client, mirrorQueries.replayLsn, [], 'cannot read the replica\'s replay position', 'after-release');
          const [d] = await on<{ bytes: number }>(p.client, mirrorQueries.lsnDiff, [row!.lsn ?? '0/0', resumed.primaryLsn], 'cannot compare positions', 'after-release');
          const total = Number(figures.backlogBytes);
          progress?.(Math.max(0, total + Math.min(0, d!.bytes)), total);
          if (d!.bytes >= 0) break;
          if (Date.now() > deadline) {
            throw new EbrError('snapshot', `the replica ${where(replica.settings)} did not catch up with the primary within ${Math.round(instance.settings.archiveWaitMs / 1000)} s after the split`, {
              hint: 'the backup itself is complete on the replica\'s side but is failed so that a lagging mirror is noticed; look at the replica\'s log, or set snapshot.resync: background',
              context: { ...ctx, phase: 'after-release' },
            });
          }
          await sleep(20);
        }
        figures.resyncMs = Date.now() - t0;
      }
      return { mirror: figures };
    },

    async [Symbol.asyncDispose]() {
      await resume().catch(() => undefined);
      await r.client.end().catch(() => undefined);
      await p.client.end().catch(() => undefined);
    },
  };
}

/** Resumes replay on the replica if it is paused: what a killed ebr leaves behind. */
export async function endMirrorSplit(instance: InstanceContext<PostgresSettings>, replica: MirrorContext<PostgresSettings>, signal: AbortSignal): Promise<'ended' | 'none'> {
  const r = await openPostgres({ ...instance, settings: replica.settings }, signal);
  try {
    const [row] = (await r.client.query<{ state: string }>(mirrorQueries.pauseState)).rows;
    if (row?.state === 'not paused') return 'none';
    await r.client.query(mirrorQueries.resume);
    return 'ended';
  } catch (err) {
    throw queryError(err, 'block', `cannot resume replay on the replica ${where(replica.settings)}`, { instance: instance.name, phase: 'release' });
  } finally {
    await r.client.end().catch(() => undefined);
  }
}

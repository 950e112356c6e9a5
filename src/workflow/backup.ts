/**
 * One full backup, as the design tells it: discover → acquire (checkpoint outside the window, block,
 * snapshot) → release (unblock) → stream → seal. Each phase is journaled in the catalog before it runs;
 * the backup is `complete` only after every member is written, fsynced and its digest recorded.
 */
import type { ArchiveWriter } from '../archive/archive-target.js';
import { codecForBackup } from '../archive/codec/index.js';
import { TargetWriteError } from '../archive/file-sink.js';
import { defaultBlockDigest } from '../archive/block-digests.js';
import { manifestFormat, manifestText, sha256Of, type BackupType, type Manifest } from '../archive/manifest.js';
import { beginBackup, finishBackup, newBackupId, startPhase, updateBackup } from '../catalog/backups.js';
import type { Catalog } from '../catalog/catalog.js';
import { recordDiscovery, recordMembers, replaceDiscovery } from '../catalog/discovery.js';
import { recordStreams } from '../catalog/streams.js';
import { journalResource, journalResourceRemoved } from '../catalog/resources.js';
import type { Config, InstanceConfig } from '../config/load.js';
import { EbrError, asEbrError, throwIfAborted, type ErrorCode } from '../errors.js';
import type { BackupMeta, Space } from '../model.js';
import type { ResourceJournal, Snapshot } from '../snapshot/snapshot-provider.js';
import { volumesOf } from '../snapshot/volumes.js';
import { thisRunner } from '../util/runner.js';
import { holdWindow } from './block-window.js';
import type { GroupBarrier } from './group-barrier.js';
import type { BlockToken, DbmsSession, UnblockOutcome } from '../adapter-api.js';
import { adapterOf, backupSession, providerOf, targetOf } from './context.js';
import type { ProgressListener } from './progress.js';
import { streamSpaces, type StreamIo } from './stream.js';
import { checkTargetSpace, targetWriteFailure } from './target-space.js';
import { journalArchive, type JournaledArchive } from './archive-journal.js';
import { chainOf, chooseBase } from './backup-base.js';

const phaseErrorCode: Record<string, ErrorCode> = {
  connect: 'connect',
  preflight: 'connect',
  discover: 'discover',
  'check-snapshot': 'snapshot',
  'check-target': 'archive',
  checkpoint: 'block',
  'after-release': 'logArchive',
  stream: 'stream',
  seal: 'archive',
};

export interface BackupOptions {
  config: Config;
  instance: InstanceConfig;
  catalog: Catalog;
  signal: AbortSignal;
  onProgress?: ProgressListener;
  /** Called with the id as soon as the backup is registered (tests and the daemon use it). */
  onStart?: (backupId: string) => void;
  /** This backup is one member of a consistency group's backup (group-backup.ts). */
  group?: { id: string; name: string; members: string[]; barrier: GroupBarrier; maxBlockMs: number };
  /** full (the default), incr (only blocks changed since the newest kept backup) or diff (since the newest full). */
  type?: BackupType;
}

export interface BackupResult {
  backupId: string;
  instance: string;
  location: string;
  spaces: number;
  chunks: number;
  bytes: number;
  blockWindowMs: number;
  windowSteps: Record<string, number>;
  phases: Record<string, number>;
  meta: BackupMeta;
  /** What went wrong after the backup was complete (a snapshot not released: the next command removes it). */
  warnings?: string[];
  /** What the stream's I/O policy did (rate-limit waits, threads given the I/O class). */
  io?: StreamIo;
  /** full, incr or diff, as taken (an incr with nothing to compare with is taken full; warnings say why). */
  type: BackupType;
  parent?: string;
  /** An incr's or diff's blocks: stored by this backup, of all the blocks compared. */
  blocks?: { changed: number; total: number };
}

export async function runBackup(o: BackupOptions): Promise<BackupResult> {
  const { catalog: cat, instance, signal } = o;
  const adapter = adapterOf(instance);
  const provider = providerOf(o.config, instance);
  const target = targetOf(instance);
  const backupId = newBackupId();
  const ctx = { instance: instance.name, backupId };
  const mayVanish = adapter.capabilities.chunksMayVanish ?? false;
  beginBackup(cat, { id: backupId, instance: instance.name, vendor: adapter.vendor, provider: provider.kind, targetType: target.kind, runner: thisRunner() });
  o.onStart?.(backupId);
  const phases: Record<string, number> = {};
  const phase = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    throwIfAborted(signal, { ...ctx, phase: name });
    const end = startPhase(cat, backupId, name);
    try {
      const v = await fn();
      phases[name] = end('ok');
      return v;
    } catch (err) {
      end('failed');
      throw asEbrError(err, phaseErrorCode[name] ?? 'internal', { ...ctx, phase: name });
    }
  };
  const journal: ResourceJournal = {
    created: (r) => journalResource(cat, backupId, r),
    removed: (r) => journalResourceRemoved(cat, backupId, r),
  };

  const ref = { instance: instance.name, backupId };
  let writer: ArchiveWriter | undefined;
  let archive: JournaledArchive | undefined;
  let snapshot: Snapshot | undefined;
  let result: BackupResult;
  try {
    await using session = await phase('connect', () => backupSession(o.config, instance, signal));
    const server = await session.describe();
    updateBackup(cat, backupId, { server: JSON.stringify(server) });
    if (session.preflight) await phase('preflight', () => session.preflight!(signal));

    let spaces: Space[] = await phase('discover', () => session.discover(signal));
    recordDiscovery(cat, backupId, spaces);
    const chunks = spaces.flatMap((s) => s.chunks);
    const volumes = volumesOf(chunks);
    await phase('check-snapshot', () => provider.check({ backupId, chunks, volumes }, signal));
    // The codec is made before anything is blocked: a missing or malformed key fails the backup here.
    const { codec, chosen } = await phase('check-target', async () => {
      await checkTargetSpace(target, ref, spaces, ctx);
      // The parent's manifest is read before the window too: an incr that cannot read it is taken full.
      return { codec: await codecForBackup(instance), chosen: await chooseBase(cat, instance.name, o.type ?? 'full', target, ctx) };
    });
    const parentId = chosen.base?.backupId;
    updateBackup(cat, backupId, { type: chosen.type, ...(parentId ? { parent_id: parentId } : {}) });

    await phase('checkpoint', () => session.checkpoint(signal));
    // acquire (block + snapshot) and release (unblock) are journaled by the gate, which alone owns the window.
    const endAcquire = startPhase(cat, backupId, 'acquire');
    let endRelease: ((o: 'ok' | 'failed') => number) | undefined;
    let window;
    try {
      const group = o.group;
      const early = adapter.capabilities.consistentAtUnblock ?? false;
      window = await holdWindow({
        // In a group, members consistent at unblock are released first; the others wait for them, holding their writers.
        session: group
          ? Object.assign(Object.create(session) as DbmsSession, {
              async unblock(token: BlockToken, outcome?: UnblockOutcome) {
                if (!early) await group.barrier.awaitEarly();
                try {
                  return await session.unblock(token, outcome);
                } finally {
                  if (early) group.barrier.earlyReleased(instance.name);
                }
              },
            })
          : session,
        // In a group, every member is blocked before any is frozen, and every one frozen before any is released.
        provider: group
          ? {
              ...provider,
              kind: provider.kind,
              check: (r, s) => provider.check(r, s),
              removeLeftover: (r) => provider.removeLeftover(r),
              async take(req, s) {
                await group.barrier.arrive(instance.name, 'blocked', s);
                const snap = await provider.take(req, s);
                try {
                  await group.barrier.arrive(instance.name, 'frozen', s);
                } catch (err) {
                  await snap.release().catch(() => undefined);
                  throw err;
                }
                return snap;
              },
            }
          : provider,
        // A DBMS that lists its files anew once blocked (PostgreSQL, after pg_backup_start) hands them back in the token.
        requestFor: (listed) =>
          listed
            ? { backupId, chunks: listed.flatMap((s) => s.chunks), volumes: volumesOf(listed.flatMap((s) => s.chunks)), journal, mayVanish }
            : { backupId, chunks, volumes, journal, mayVanish },
        ...(adapter.capabilities.blockSurvivesSession || session.blockSurvivesSession ? { watchdog: { catalogFile: cat.file } } : {}),
        maxBlockMs: group ? group.maxBlockMs : instance.maxBlockMs,
        signal,
        context: ctx,
        onRelease: () => {
          phases.acquire = endAcquire('ok');
          endRelease = startPhase(cat, backupId, 'release');
        },
      });
      phases.release = endRelease!('ok');
      group?.barrier.released();
    } catch (err) {
      o.group?.barrier.released();
      endRelease?.('failed');
      if (err instanceof EbrError && err.context.windowMs !== undefined) updateBackup(cat, backupId, { block_window_ms: Number(err.context.windowMs) });
      throw err;
    }
    snapshot = window.snapshot;
    if (o.group) {
      // The tie between the members: one group id, and the instant at which all of them were blocked.
      window.meta = { ...window.meta, details: { ...(window.meta.details ?? {}), group: { id: o.group.id, name: o.group.name, members: o.group.members, instant: o.group.barrier.instant } } };
    }
    if (window.spaces) {
      spaces = window.spaces;
      replaceDiscovery(cat, backupId, spaces);
    }
    updateBackup(cat, backupId, {
      block_window_ms: window.windowMs,
      window_steps: JSON.stringify(window.steps),
      log_start: window.meta.logStart ?? null,
      log_end: window.meta.logEnd ?? null,
      timeline: window.meta.timeline ?? null,
      meta: JSON.stringify({ ...(window.meta.details ?? {}), files: Object.keys(window.meta.files ?? {}) }),
    });
    if (session.afterRelease) {
      const onProgress = o.onProgress;
      const resync = onProgress ? (done: number, total: number) => onProgress({ phase: 'resync', bytesDone: done, bytesTotal: total }) : undefined;
      const more = await phase('after-release', () => session.afterRelease!(window.meta, signal, resync));
      // What happened after the window (a mirror's resync) belongs to the backup's record too.
      if (more) {
        window.meta = { ...window.meta, details: { ...(window.meta.details ?? {}), ...more } };
        updateBackup(cat, backupId, { meta: JSON.stringify({ ...(window.meta.details ?? {}), files: Object.keys(window.meta.files ?? {}) }) });
      }
    }

    // Journaled before its first byte: if ebr dies while streaming, the next command removes the partial archive.
    archive = journalArchive(cat, instance.target, target, ref);
    try {
      writer = await target.create(ref);
    } catch (err) {
      // A failed create leaves nothing of ours (and an archive that was there already is not ours to remove).
      archive.removed();
      archive = undefined;
      throw asEbrError(err, 'archive', { ...ctx, phase: 'stream' });
    }
    updateBackup(cat, backupId, { location: writer.location });
    const w = writer;
    const frozen = snapshot;
    const streamed = await phase('stream', async () => {
      await frozen.open?.(signal);
      // A sequential medium (tape) takes one space after another.
      const parallel = target.sequential ? 1 : instance.parallelStreams;
      return streamSpaces({ spaces, snapshot: frozen, writer: w, codec, signal, context: ctx, parallel, mayVanish, blockSize: instance.blockSize, ...(chosen.base ? { base: chosen.base } : {}), io: { ...(instance.ioLimitMBps !== undefined ? { limitMBps: instance.ioLimitMBps } : {}), priority: instance.ioPriority }, ...(o.onProgress ? { onProgress: o.onProgress } : {}) });
    });

    await phase('seal', async () => {
      // Meta files are stored through the codec too; the catalog's digests are of the bytes as stored.
      const metaFiles: Array<[string, Buffer]> = [];
      for (const [name, data] of Object.entries(window.meta.files ?? {})) metaFiles.push([name, await codec.encodeBuffer(Buffer.from(data))]);
      const startedAt = (cat.db.prepare('SELECT started_at FROM backups WHERE id = ?').get(backupId) as { started_at: string }).started_at;
      const manifest: Manifest = {
        format: manifestFormat,
        backupId,
        instance: instance.name,
        vendor: adapter.vendor,
        server,
        startedAt,
        finishedAt: new Date().toISOString(),
        blockWindowMs: window.windowMs,
        windowSteps: window.steps,
        snapshotProvider: provider.kind,
        log: { logStart: window.meta.logStart, logEnd: window.meta.logEnd, timeline: window.meta.timeline },
        metaFiles: metaFiles.map(([n]) => n),
        ...(codec.stored ? { codec: codec.stored } : {}),
        ...(chosen.base ? { blockSize: chosen.base.blockSize, blockDigest: chosen.base.blockDigest } : instance.blockSize ? { blockSize: instance.blockSize, blockDigest: defaultBlockDigest } : {}),
        ...(chosen.type !== 'full' ? { type: chosen.type, parent: parentId!, chain: chainOf(streamed.members) } : {}),
        ...(window.meta.details || streamed.vanished.length ? { details: { ...(window.meta.details ?? {}), ...(streamed.vanished.length ? { vanishedChunks: streamed.vanished } : {}) } } : {}),
        spaces: streamed.spaces,
        members: streamed.members,
      };
      recordMembers(cat, backupId, streamed.members);
      recordStreams(cat, backupId, streamed.spaces, codec.stored);
      // The catalog vouches for the archive: restore and verify refuse a manifest or meta file edited since.
      updateBackup(cat, backupId, {
        manifest_sha256: sha256Of(manifestText(manifest)),
        meta_sha256: JSON.stringify(Object.fromEntries(metaFiles.map(([n, data]) => [n, sha256Of(data)]))),
      });
      try {
        for (const [name, data] of metaFiles) await w.writeMeta(name, data);
        await w.writeManifest(manifest);
      } catch (err) {
        if (!(err instanceof TargetWriteError)) throw err;
        const left = Buffer.byteLength(manifestText(manifest)) + metaFiles.reduce((a, [, d]) => a + d.length, 0);
        throw await targetWriteFailure(err, w, left, { ...ctx, phase: 'seal' });
      }
    });
    // Complete once the manifest is in, before the snapshot is released: a release that fails must not
    // cost the good archive. The same durable transaction settles the archive's journal entry.
    // The location again: a tape archive knows the cartridges it used only once it is written.
    updateBackup(cat, backupId, { location: w.location });
    finishBackup(cat, backupId, 'complete', { bytes: streamed.bytes, members: streamed.members.length, phase: 'complete' });
    writer = undefined;
    archive = undefined;
    result = {
      backupId,
      instance: instance.name,
      location: w.location,
      spaces: spaces.length,
      chunks: chunks.length,
      bytes: streamed.bytes,
      blockWindowMs: window.windowMs,
      windowSteps: window.steps,
      phases,
      meta: window.meta,
      io: streamed.io,
      type: chosen.type,
      ...(parentId ? { parent: parentId } : {}),
      ...(streamed.blocks ? { blocks: streamed.blocks } : {}),
      ...(streamed.io.warning || chosen.warning ? { warnings: [streamed.io.warning, chosen.warning].filter((w): w is string => !!w) } : {}),
    };
  } catch (err) {
    const e = asEbrError(err, 'internal', ctx);
    // The other members of a group must not keep a window this one cannot share.
    o.group?.barrier.fail(instance.name, e);
    o.group?.barrier.earlyReleased(instance.name);
    await snapshot?.release().catch(() => undefined);
    // Removed now, or (if that fails too) by the next command, which finds the archive's journal entry open.
    if (writer) await writer.abort().then(() => archive?.removed(), () => undefined);
    // The phase that failed, not the release that ran after it, is what the user needs to see.
    finishBackup(cat, backupId, 'failed', { error: JSON.stringify(e.toJSON()), ...(typeof e.context.phase === 'string' ? { phase: e.context.phase } : {}) });
    throw e;
  }
  // The backup is complete. Its snapshot is released now; if that fails, the resources journal still
  // names what is left, and the next ebr command removes it (recoverAfterCrash).
  try {
    await snapshot?.release();
  } catch (err) {
    result.warnings = [...(result.warnings ?? []), `the snapshot of backup ${backupId} was not released: ${(err as Error).message}; the next ebr command removes what is left`];
  }
  return result;
}

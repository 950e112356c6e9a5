/**
 * Restore, full or partial: the manifest is checked against the catalog, every destination is checked
 * to stay inside the restore's directories, every byte read back is checked against its digest into a
 * file beside its final name; only when all of them check out are they renamed into place, the old
 * ones set aside (restore-journal.ts); then the adapter finishes (labels, recovery settings,
 * roll-forward, integrity checks) and only then are the old files removed. Each step is journaled
 * first: a failure, or a kill at any moment, ends with either the whole restore or the old files.
 * Spaces are read, verified and staged parallelStreams at a time (one at a time on a sequential target
 * such as tape); the first space that fails stops the others, and nothing is renamed into place
 * until every space of the restore has staged and checked out. A space's members are staged by
 * restore-extract.ts; an incremental's other backups are opened by restore-chain.ts before any write.
 */
import path from 'node:path';
import type { ArchivedChunk, PlanStep, RestoreOutcome, RestorePlan, Restorer } from '../adapter-api.js';
import { noteStep } from '../plan.js';
import type { ArchiveReader } from '../archive/archive-target.js';
import { blockDigestOf } from '../archive/block-digests.js';
import type { Codec } from '../archive/codec.js';
import { codecForReading } from '../archive/codec/index.js';
import { spaceReadOptions } from '../archive/coded-space.js';
import type { Manifest, ManifestMember } from '../archive/manifest.js';
import { findBackup, type BackupRow } from '../catalog/backups.js';
import type { Catalog } from '../catalog/catalog.js';
import { discoveryOf } from '../catalog/discovery.js';
import { beginRestore, finishRestore, setRestoreStep } from '../catalog/restores.js';
import type { Config, InstanceConfig } from '../config/load.js';
import { EbrError, asEbrError, throwIfAborted } from '../errors.js';
import type { BackupMeta } from '../model.js';
import { faultPoint } from '../util/fault.js';
import { thisRunner } from '../util/runner.js';
import { parseUntil } from '../util/time.js';
import { trustedManifest, trustedMetaFiles } from './archive-trust.js';
import { chooseSpaces } from './choose-spaces.js';
import { adapterOf, instanceContext, targetOf } from './context.js';
import { progressMeter, type ProgressListener } from './progress.js';
import { RestoreJournal, type StagedFile } from './restore-journal.js';
import { DestinationGuard } from './restore-paths.js';
import { chainOf } from './restore-chain.js';
import { attributesOf, extractSpace } from './restore-extract.js';


export interface RestoreOptions {
  config: Config;
  instance: InstanceConfig;
  catalog: Catalog;
  backupId?: string;
  partial?: string[];
  to?: string;
  until?: string;
  /** Stop at the backup's own consistency point (a group restore without --until). */
  toBackupEnd?: boolean;
  /** Compare what is on disk with the backup by block digests and write only what differs. */
  delta?: boolean;
  signal: AbortSignal;
  onProgress?: ProgressListener;
}

export interface RestoreResult extends RestoreOutcome {
  backupId: string;
  mode: 'full' | 'partial';
  spaces: string[];
  files: number;
  bytes: number;
  targetDir?: string;
  /** The restore's row in the catalog (`ebr restores`). */
  restoreId: number;
  /** Backups besides this one whose archives were read for blocks (an incremental's chain). */
  chain?: string[];
  /** --delta: files found identical on disk and left alone, and blocks written into files that differed. */
  delta?: { unchangedFiles: number; changedBlocks: number; totalBlocks: number };
}

/** Everything a restore decides before it writes: the backup, its verified manifest, where each member goes. */
async function prepareRestore(o: RestoreOptions) {
  const { catalog: cat, instance } = o;
  const adapter = adapterOf(instance);
  const backup = findBackup(cat, o.backupId ?? 'latest', instance.name);
  if (backup.status !== 'complete') {
    throw new EbrError('unknownBackup', `backup ${backup.id} is ${backup.status}, not complete; it cannot be restored`, {
      hint: 'pick a complete backup from `ebr list`, or say --backup latest',
      context: { instance: instance.name, backupId: backup.id },
    });
  }
  if (backup.removed_at) {
    throw new EbrError('unknownBackup', `backup ${backup.id} was removed by retention on ${backup.removed_at}; its archive is gone`, {
      hint: 'pick a backup that is still kept from `ebr list`, or say --backup latest',
      context: { instance: instance.name, backupId: backup.id },
    });
  }
  const ctx = { instance: instance.name, backupId: backup.id };
  if (o.until && !adapter.capabilities.pointInTimeRestore) {
    throw new EbrError('usage', `the ${adapter.vendor} adapter cannot roll forward to a point in time; --until is not available`, { hint: 'leave out --until to restore the backup as taken', context: ctx });
  }
  const until = o.until ? parseUntil(o.until) : undefined;
  const target = targetOf(instance);
  const reader = await target.open({ instance: instance.name, backupId: backup.id });
  // What the archive says is trusted only where the catalog vouches for it.
  const manifest = trustedManifest(cat, backup, await reader.readManifestFile(), ctx);
  const requested = chooseSpaces(manifest, o.partial, ctx, { refuseCritical: true });
  const mode: 'full' | 'partial' = o.partial?.length ? 'partial' : 'full';
  // The key is checked here, before anything is written: a wrong or missing one fails the restore now.
  const codec = await codecForReading(manifest.codec, instance);
  const meta = await readMeta(reader, manifest, backup, codec, ctx);
  const chain = await chainOf(cat, instance, manifest, target, ctx);
  const targetDir = o.to ? path.resolve(o.to) : undefined;
  const plan: RestorePlan = {
    backupId: backup.id,
    instance: instance.name,
    mode,
    requested,
    spaces: manifest.spaces.map((s) => ({ ...s, chunks: manifest.members.filter((m) => m.space === s.name).map(toChunk) })),
    ...(targetDir ? { targetDir } : {}),
    ...(until ? { until } : {}),
    ...(o.toBackupEnd && !until ? { toBackupEnd: true } : {}),
    ...(o.delta ? { delta: true } : {}),
    meta,
  };
  const restorer = await adapter.restorer(instanceContext(o.config, instance), plan);
  const toWrite = restorer.spacesToWrite?.(requested) ?? requested;
  const members = manifest.members.filter((m) => toWrite.includes(m.space));
  const guard = new DestinationGuard(restoreRoots(cat, backup.id, manifest, targetDir, restorer), { ...ctx, phase: 'restore' });
  // Every destination is computed and checked before anything is written.
  const destinations = new Map<string, string>();
  const taken = new Map<string, string>();
  for (const m of members) {
    const dest = restorer.destinationOf(toChunk(m));
    guard.rootOf(dest);
    // Byte ranges of one file or device share it, but no byte may be written twice or by a whole-file member too.
    const other = taken.get(dest) ?? (m.fileOffset === undefined ? [...taken].find(([k]) => k.startsWith(`${dest}\0`))?.[1] : undefined) ?? overlapping(taken, dest, m);
    if (other) throw guard.refuse(dest, `would receive two members, ${other} and ${m.name}`);
    taken.set(m.fileOffset === undefined ? dest : `${dest}\0${m.fileOffset}\0${m.size}`, m.name);
    destinations.set(m.name, dest);
  }
  // Spaces are read and staged parallelStreams at a time; a sequential medium (tape) gives one after another.
  const parallel = target.sequential ? 1 : instance.parallelStreams;
  return { backup, ctx, reader, manifest, requested, mode, codec, targetDir, until, plan, restorer, toWrite, members, guard, destinations, parallel, chain };
}

/**
 * `ebr restore --dry-run`: the members it would read and verify, where each would be written, and
 * what the adapter would run afterwards. Writes nothing and journals nothing.
 */
export async function planRestore(o: RestoreOptions): Promise<{ backupId: string; mode: 'full' | 'partial'; spaces: string[]; targetDir?: string; roots: string[]; steps: PlanStep[] }> {
  const { backup, reader, manifest, requested, mode, targetDir, restorer, toWrite, members, destinations, guard, chain } = await prepareRestore(o);
  const steps: PlanStep[] = [
    noteStep('check', `backup ${backup.id}: the manifest and meta/ files match the digests the catalog recorded`),
    ...[...chain.keys()].map((id) => noteStep('check', `backup ${id} of the chain (${manifest.type} backup ${backup.id} reads blocks from it): complete, kept, its manifest matches the catalog`)),
    ...(o.delta ? [noteStep('check', 'every file on disk is compared with the backup block by block: identical files are left alone, others get only the blocks that differ (or the whole file when its size differs)')] : []),
    noteStep('check', `every write stays inside ${[...guard.rootDirs].join(', ')} and follows no symbolic link`),
    ...toWrite.flatMap((space) =>
      members
        .filter((m) => m.space === space)
        .flatMap((m): PlanStep[] => [
          { phase: 'stage', kind: 'read', text: `${reader.location}: ${m.name} (${m.size} bytes, sha256 ${m.sha256.slice(0, 16)}…)` },
          m.fileOffset === undefined
            ? { phase: 'stage', kind: 'write', text: `${destinations.get(m.name)} (staged beside it, verified, then renamed into place; the old file set aside until the restore succeeds)` }
            : { phase: 'stage', kind: 'write', text: `${destinations.get(m.name)} bytes ${m.fileOffset}–${m.fileOffset + m.size - 1} (staged beside it, verified, then written at that offset; the old bytes of the range kept beside it until the restore succeeds; the rest of the file is not touched)` },
        ]),
    ),
    ...(await restorer.plan(o.signal)),
  ];
  return { backupId: backup.id, mode, spaces: requested, ...(targetDir ? { targetDir } : {}), roots: [...guard.rootDirs], steps };
}

export async function runRestore(o: RestoreOptions): Promise<RestoreResult> {
  const { catalog: cat, instance, signal } = o;
  const { backup, ctx, reader, manifest, requested, mode, codec, targetDir, until, restorer, toWrite, members, guard, destinations, parallel, chain } = await prepareRestore(o);
  const restoreId = beginRestore(cat, { backupId: backup.id, instance: instance.name, mode, spaces: requested, ...(targetDir ? { targetDir } : {}), ...(until ? { until: until.toISOString() } : {}), runner: thisRunner() });
  const journal = new RestoreJournal(cat, restoreId, guard);
  const rctx = { ...ctx, restoreId };
  try {
    await restorer.check(signal);
    setRestoreStep(cat, restoreId, 'stage');
    const meter = progressMeter('restore', members.reduce((a, m) => a + m.size, 0), o.onProgress);
    const staged: StagedFile[] = [];
    const directories: Array<{ dest: string; m: ManifestMember }> = [];
    const delta = { unchangedFiles: 0, changedBlocks: 0, totalBlocks: 0 };
    const chainRead = new Set<string>();
    await inParallel(
      largestFirst(toWrite, members),
      parallel,
      signal,
      async (space, stop) => {
        const expected = members.filter((m) => m.space === space);
        // transient: staging hashes each piece and writes it with one write in flight, keeping none (restore-journal.ts).
        const read = { ...spaceReadOptions(manifest.spaces.find((s) => s.name === space), codec), transient: true };
        await extractSpace({ reader, read, space, expected, destinations, sideFilesOf: restorer.sideFilesOf, journal, staged, directories, meter, signal: stop, ctx: rctx, blockSize: manifest.blockSize, blockDigest: blockDigestOf(manifest), delta: o.delta ? delta : undefined, chain, chainRead });
      },
      { ...rctx, phase: 'restore' },
    );
    meter.done();
    // Staged files were written without an fsync each: one flush of their filesystems now, before any is renamed into place.
    await journal.flushStaged(staged);
    setRestoreStep(cat, restoreId, 'swap');
    await journal.swap(staged);
    // Modes and owners of directories change only now that every byte is verified and in place.
    for (const { dest, m } of directories) await journal.setAttributes(dest, attributesOf(m));
    setRestoreStep(cat, restoreId, 'finish');
    faultPoint('finish');
    const outcome = await restorer.finish(signal, journal);
    faultPoint('finished');
    setRestoreStep(cat, restoreId, 'cleanup');
    const kept = await journal.commit();
    finishRestore(cat, restoreId, 'complete', { outcome: `every file of ${members.length} verified and in place; the old files were removed${kept.length ? ` (kept for you: ${kept.join(', ')})` : ''}` });
    return { backupId: backup.id, mode, spaces: requested, files: staged.length, bytes: meter.bytesDone, ...(targetDir ? { targetDir } : {}), ...outcome, restoreId, ...(chainRead.size ? { chain: [...chainRead].sort() } : {}), ...(o.delta ? { delta } : {}) };
  } catch (err) {
    const e = asEbrError(err, 'restore', rctx);
    const problems = await journal.rollback();
    // The files are back; now what the adapter changed on the server (an object taken offline).
    if (restorer.undo) problems.push(...(await restorer.undo(signal).catch((u: unknown) => [`undoing the server's side failed: ${(u as Error).message}`])));
    const outcome = problems.length
      ? `the restore failed and undoing it left ${problems.length} problem(s): ${problems.slice(0, 3).join('; ')}`
      : 'the restore failed; every old file was put back as it was';
    finishRestore(cat, restoreId, 'failed', { outcome, error: JSON.stringify(e.toJSON()) });
    if (problems.length) e.context.undoProblems = problems;
    throw e;
  }
}

/**
 * Runs `work` for every item, at most `parallel` at a time. The first failure stops the others (their
 * signal aborts) and is the one thrown, once every one of them has stopped: nothing is still staging
 * when the caller rolls the journal back.
 */
async function inParallel<T>(items: T[], parallel: number, signal: AbortSignal, work: (item: T, stop: AbortSignal) => Promise<void>, ctx: Record<string, unknown>): Promise<void> {
  const stop = new AbortController();
  const onCallerAbort = () => stop.abort(signal.reason);
  if (signal.aborted) onCallerAbort();
  else signal.addEventListener('abort', onCallerAbort, { once: true });
  const queue = [...items];
  let failure: { err: unknown } | undefined;
  const worker = async () => {
    for (let item = queue.shift(); item !== undefined && !stop.signal.aborted; item = queue.shift()) {
      try {
        await work(item, stop.signal);
      } catch (err) {
        // A sibling stopped by the first failure fails too; the first is the one that says why.
        failure ??= { err };
        stop.abort(err);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, items.length)) }, worker));
  } finally {
    signal.removeEventListener('abort', onCallerAbort);
  }
  if (failure) throw failure.err;
  throwIfAborted(signal, ctx);
}

/** Spaces by bytes to restore, largest first: the big one starts at once and the small ones fill in beside it. */
function largestFirst(spaces: string[], members: ManifestMember[]): string[] {
  const bytes = new Map<string, number>();
  for (const m of members) bytes.set(m.space, (bytes.get(m.space) ?? 0) + m.size);
  return [...spaces].sort((a, b) => (bytes.get(b) ?? 0) - (bytes.get(a) ?? 0));
}

/**
 * The directories a restore may write in: --to DIR, or in place the directories that held the chunks
 * at discovery (the catalog's record; the verified manifest's paths only where the catalog has none),
 * and any the adapter names beside them for what it keeps (set-aside directories of its own).
 */
function restoreRoots(cat: Catalog, backupId: string, manifest: Manifest, targetDir: string | undefined, restorer: Restorer): string[] {
  const extra = restorer.extraRoots?.() ?? [];
  if (targetDir) return [targetDir, ...extra];
  const recorded = discoveryOf(cat, backupId).map((d) => d.path);
  const paths = recorded.length ? recorded : manifest.members.map((m) => m.path);
  // A link the backup recorded (a tablespace's pg_tblspc entry) leads to a directory of the instance too.
  const linked = manifest.members.filter((m) => m.type === 'symlink' && m.linkTarget).map((m) => path.resolve(path.dirname(m.path), m.linkTarget!));
  return [...paths.map((p) => path.dirname(p)), ...linked, ...extra];
}


async function readMeta(reader: ArchiveReader, manifest: Manifest, backup: BackupRow, codec: Codec, ctx: Record<string, unknown>): Promise<BackupMeta> {
  const files = await trustedMetaFiles(reader, manifest, backup, codec, ctx, 'nothing was written; the archive was edited or damaged after the backup — restore another backup (`ebr list`)');
  return { files, ...manifest.log, ...(manifest.details ? { details: manifest.details } : {}) };
}

function toChunk(m: ManifestMember): ArchivedChunk {
  const { stream: _s, offset: _o, fileOffset, blocks: _b, parts: _p, body: _y, ...chunk } = m;
  return fileOffset !== undefined ? { ...chunk, offset: fileOffset } : chunk;
}

/** The member already taking some byte of m's range of dest (keys of ranges are dest NUL offset NUL size). */
function overlapping(taken: Map<string, string>, dest: string, m: ManifestMember): string | undefined {
  if (m.fileOffset === undefined) return undefined;
  const start = m.fileOffset;
  const end = start + m.size;
  for (const [key, name] of taken) {
    const [d, o, n] = key.split('\0');
    if (d !== dest || o === undefined || n === undefined) continue;
    if (Number(o) < end && start < Number(o) + Number(n)) return name;
  }
  return undefined;
}

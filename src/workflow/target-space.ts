/**
 * The target's room, in the words a DBA needs: before the window, whether the backup can fit at all;
 * after a failed write, what went wrong there, how much is free and how much was still to write.
 */
import type { ArchiveTarget, ArchiveWriter, BackupRef } from '../archive/archive-target.js';
import type { TargetWriteError } from '../archive/file-sink.js';
import { EbrError, type ErrorContext } from '../errors.js';
import type { Space } from '../model.js';

const targetTrouble: Record<string, { what: string; hint: (x: { freePath: string; short: number; instance: string }) => string }> = {
  ENOSPC: { what: 'is full', hint: (x) => `free at least ${mib(x.short)} on ${x.freePath}, or point instances.${x.instance}.target.path at a bigger filesystem` },
  EDQUOT: { what: 'is over its disk quota', hint: (x) => `raise the quota on ${x.freePath} by at least ${mib(x.short)}, or point instances.${x.instance}.target.path elsewhere` },
  EIO: { what: 'failed with an I/O error', hint: (x) => `check the device behind ${x.freePath} (dmesg, SMART) before the next backup` },
  EROFS: { what: 'became read-only', hint: (x) => `the filesystem at ${x.freePath} was remounted read-only, usually after I/O errors; check it (dmesg) and remount it` },
  ENOENT: { what: 'vanished', hint: (x) => `make sure ${x.freePath} is mounted and that nothing removes archives while a backup runs` },
  ESTALE: { what: 'vanished (stale file handle)', hint: (x) => `make sure the network filesystem at ${x.freePath} stays mounted during backups` },
  ENOTCONN: { what: 'vanished (not connected)', hint: (x) => `make sure the filesystem at ${x.freePath} stays mounted during backups` },
  ENODEV: { what: 'vanished (no such device)', hint: (x) => `make sure the device behind ${x.freePath} stays attached during backups` },
  ENXIO: { what: 'vanished (no such device)', hint: (x) => `make sure the device behind ${x.freePath} stays attached during backups` },
};

/**
 * The error for a write to the target that failed: it names the target, the space left there and the
 * bytes this backup still had to write. The backup's archive is removed by the caller (runBackup).
 */
export async function targetWriteFailure(err: TargetWriteError, writer: ArchiveWriter, bytesToWrite: number, context: ErrorContext, archiveBytes = bytesToWrite): Promise<EbrError> {
  const free = await writer.freeSpace?.().catch(() => undefined);
  const trouble = (err.code && targetTrouble[err.code]) || { what: 'cannot be written', hint: () => 'check that the target is writable by the user running ebr' };
  const space = typeof context.space === 'string' ? ` while space ${context.space} was written` : '';
  const freeText = free ? `${mib(free.freeBytes)} free` : 'free space unknown';
  // The next backup writes the whole archive again into what is free once this partial one is gone;
  // what a full filesystem still calls free is not all usable (metadata, reserves), so the whole size is asked for.
  const landed = writer.bytesWritten?.() ?? 0;
  const short = Math.max(archiveBytes - landed - (free?.freeBytes ?? 0), 0) || archiveBytes;
  const hint = trouble.hint({ freePath: free?.path ?? writer.location, short, instance: String(context.instance ?? '<instance>') });
  const file = err.path.startsWith(`${writer.location}/`) ? err.path.slice(writer.location.length + 1) : err.path;
  const how = err.code && targetTrouble[err.code] ? `${err.code} writing ${file}` : `writing ${file}: ${err.message}`;
  return new EbrError('archive', `the target ${writer.location} ${trouble.what}${space} (${how}): ${freeText}, ${mib(bytesToWrite)} still to write`, {
    hint: `${hint}; the partial archive is removed`,
    context: { ...context, path: err.path, target: writer.location, errno: err.code, bytesToWrite, ...(free ? { freeBytes: free.freeBytes } : {}) },
    cause: err,
  });
}

/** Bytes a tar or dir archive takes beyond the data, at the least: one header block per member, two end blocks per space. */
const memberOverhead = 512;
const spaceOverhead = 1024;

/**
 * Before the window: refuses when the target clearly cannot take the backup — less space left than
 * the chunks discovery listed (their sizes then, plus the least the archive adds). Not a promise that a
 * backup passing it fits (files grow, others write there too): a full target mid-stream still stops
 * the backup cleanly. Nothing is blocked when it refuses.
 */
export async function checkTargetSpace(target: ArchiveTarget, ref: BackupRef, spaces: Space[], context: ErrorContext): Promise<void> {
  const free = await target.freeSpace?.(ref);
  if (!free) return;
  const chunks = spaces.flatMap((s) => s.chunks);
  const data = chunks.reduce((a, c) => a + (c.type === 'file' ? c.size : 0), 0);
  const needed = data + chunks.length * memberOverhead + spaces.length * spaceOverhead;
  if (free.freeBytes >= needed) return;
  throw new EbrError('archive', `the target ${target.locationOf?.(ref) ?? free.path} has ${mib(free.freeBytes)} free, but this backup needs at least ${mib(needed)} (${chunks.length} chunks in ${spaces.length} spaces at discovery): it cannot fit`, {
    hint: `free at least ${mib(needed - free.freeBytes)} on ${free.path}, or point instances.${ref.instance}.target.path at a bigger filesystem; nothing was blocked`,
    context: { ...context, phase: 'check-target', path: free.path, freeBytes: free.freeBytes, bytesToWrite: needed },
  });
}

/** Sizes for messages about space: MiB with one decimal, exact bytes below 1 MiB. */
export function mib(n: number): string {
  return n < 1 << 20 ? `${n} bytes` : `${(n / (1 << 20)).toFixed(1)} MiB`;
}

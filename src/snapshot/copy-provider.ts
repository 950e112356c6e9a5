/**
 * `copy`: reads every chunk file and writes a copy into a staging area, inside the window. Correct on
 * any filesystem, but the window grows with the size of the database: for small instances and tests.
 */
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { throwIfAborted } from '../errors.js';
import type { SnapshotProvider } from './snapshot-provider.js';
import { removeStagingDir, takeStaged } from './staging.js';

const bufferSize = 1 << 20;

/** The keys of `snapshot:` with `provider: copy`. */
export const copySettings = z
  .object({
    provider: z.string(),
    /** Where the copies go (default: beside the catalog). */
    staging: z.string().optional(),
  })
  .strict();

export function copyProvider(settings: { staging?: string }): SnapshotProvider {
  const root = settings.staging ?? path.join(os.tmpdir(), 'ebr-staging');
  return {
    kind: 'copy',
    async check() {},
    take: (request, signal) => takeStaged('copy', request, () => path.join(root, request.backupId), copyBytes, signal),
    removeLeftover: removeStagingDir,
  };
}

/**
 * A byte copy through user space on purpose: fs.copyFile may use copy_file_range, which btrfs and XFS
 * turn into a clone, and then `copy` would not be the plain copy it claims to be. A range (a chunk at an
 * offset of a device) is copied alone, to the same offset of a sparse copy: the window never pays for
 * the rest of the device, and the frozen copy is read exactly as the live file would be.
 */
export async function copyBytes(from: string, to: string, signal: AbortSignal, range?: { offset: number; size: number }): Promise<void> {
  const src = await open(from, 'r');
  try {
    const dst = await open(to, 'wx', 0o600);
    try {
      const buf = Buffer.allocUnsafe(bufferSize);
      let at = range?.offset ?? 0;
      const end = range ? range.offset + range.size : Infinity;
      while (at < end) {
        throwIfAborted(signal, { phase: 'acquire', path: from });
        const { bytesRead } = await src.read(buf, 0, Math.min(bufferSize, end - at), at);
        if (bytesRead === 0) break;
        await dst.write(buf, 0, bytesRead, at);
        at += bytesRead;
      }
      // A short range is caught by the stream, which reads exactly the range and finds it missing.
    } finally {
      await dst.close();
    }
  } finally {
    await src.close();
  }
}

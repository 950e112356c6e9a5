/**
 * Restoring a chunk that is a byte range of a file or device (Chunk.offset): the verified bytes are
 * written into the destination at their offset, and the old bytes of that range are kept aside first,
 * so undo — by the restore itself or by the next command after a crash — can write them back. The file
 * or device is never renamed, truncated or replaced: its other ranges may belong to other spaces.
 */
import { constants } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { syncDir } from '../archive/backup-dir.js';
import { faultPoint } from '../util/fault.js';
import { exists } from './no-follow.js';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;

/** A journaled `place-range` step: the staged bytes, where they go, and where the old ones are kept. */
export interface RangeStep {
  temp: string;
  offset: number;
  size: number;
  saved: string | null;
  oldSize: number | null;
}

/**
 * Writes a staged range into dest at its offset. The old bytes of the range go first into `saved`
 * (written as saved.part, fsynced, then renamed): while `saved` does not exist dest is untouched, so
 * undo knows from the file system alone whether it has bytes to write back.
 */
export async function placeRange(dest: string, r: RangeStep): Promise<void> {
  if (r.saved) {
    await copyRange(dest, `${r.saved}.part`, r.offset, r.size, 0, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW);
    await rename(`${r.saved}.part`, r.saved);
    await syncDir(path.dirname(r.saved)).catch(() => undefined);
  }
  faultPoint('swap-aside');
  await copyRange(r.temp, dest, 0, r.size, r.offset, O_WRONLY | O_NOFOLLOW | (r.saved ? 0 : O_CREAT));
  await rm(r.temp, { force: true });
  faultPoint('swap');
}

/** Undoes placeRange, however far it got: the saved bytes back at the offset, a grown file cut back, a new one removed. */
export async function undoPlaceRange(dest: string, r: RangeStep): Promise<void> {
  if (!r.saved) {
    await rm(dest, { force: true });
  } else {
    await rm(`${r.saved}.part`, { force: true });
    if (await exists(r.saved)) {
      await copyRange(r.saved, dest, 0, r.size, r.offset, O_WRONLY | O_NOFOLLOW);
      if (r.oldSize !== null) {
        const fh = await open(dest, O_WRONLY | O_NOFOLLOW);
        try {
          const st = await fh.stat();
          if (st.isFile() && st.size > r.oldSize) await fh.truncate(r.oldSize);
          await fh.sync();
        } finally {
          await fh.close();
        }
      }
      await rm(r.saved, { force: true });
    }
  }
  await rm(r.temp, { force: true });
}

/**
 * Copies up to `size` bytes from `from` at `fromAt` into `to` at `toAt`, fsynced; `to` is opened with
 * `flags` and never truncated. Stops early at the end of `from` (the old bytes of a range past the end
 * of a file that was shorter: undo cuts the file back to its old size instead).
 */
async function copyRange(from: string, to: string, fromAt: number, size: number, toAt: number, flags: number): Promise<void> {
  const src = await open(from, constants.O_RDONLY | O_NOFOLLOW);
  try {
    const dst = await open(to, flags, 0o600);
    try {
      const buf = Buffer.allocUnsafe(Math.min(size, 4 << 20) || 1);
      for (let done = 0; done < size; ) {
        const { bytesRead } = await src.read(buf, 0, Math.min(buf.length, size - done), fromAt + done);
        if (bytesRead === 0) break;
        for (let off = 0; off < bytesRead; ) {
          const { bytesWritten } = await dst.write(buf, off, bytesRead - off, toAt + done + off);
          off += bytesWritten;
        }
        done += bytesRead;
      }
      await dst.sync();
    } finally {
      await dst.close();
    }
  } finally {
    await src.close();
  }
}

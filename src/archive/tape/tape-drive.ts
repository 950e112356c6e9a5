/**
 * A tape drive as the tape logic sees it: fixed-size blocks, file marks, positioning by tape file, and
 * a way to get another cartridge. Two implementations: a directory per cartridge (vtape-drive.ts) and
 * the Linux st driver with mt-st (st-drive.ts). Labels, spanning and placement live above this, once.
 */
import type { BackupRef } from '../archive-target.js';

export interface TapeDrive {
  /** Bytes of every block: writeBlock takes exactly this many, readBlock gives exactly this many. */
  readonly blockSize: number;
  /** What is in the drive, for messages and placement (`cart-0003`, `/dev/nst0`); undefined when nothing is. */
  readonly loaded: string | undefined;
  /**
   * Writes one block at the current position (which ends the tape there, as on any tape). Throws
   * EndOfMedium when the medium has no room for it; then nothing of the block was written.
   */
  writeBlock(block: Buffer): Promise<void>;
  /** Ends the tape file being written with a file mark; the next block starts the next tape file. */
  writeFileMark(): Promise<void>;
  /** Positions at the first block of tape file `n` (0 is the label); throws when the medium has no such file. */
  seekFile(n: number, signal?: AbortSignal): Promise<void>;
  /** The next block of the current tape file, or undefined at its file mark (and the drive is then at the next file). */
  readBlock(signal?: AbortSignal): Promise<Buffer | undefined>;
  /** Tape files on the medium (what `mt eod` then `mt status` tells); the drive is left at the end of data. */
  fileCount(signal?: AbortSignal): Promise<number>;
  rewind(signal?: AbortSignal): Promise<void>;
  /**
   * Makes another cartridge current: for writing, a fresh one for `volume`; for reading, the one that
   * holds `volume` of the backup. The caller checks the label afterwards and asks again if it is wrong.
   */
  change(request: VolumeRequest, signal?: AbortSignal): Promise<void>;
  /** Done: flushes and closes what is open. The drive may be used again afterwards (it reopens). */
  release(): Promise<void>;
}

export interface VolumeRequest {
  ref: BackupRef;
  volume: number;
  purpose: 'write' | 'read';
  /** Why the cartridge in the drive will not do (for the operator's prompt). */
  reason?: string;
}

/**
 * The medium is full: what a drive's ENOSPC means, and what a vtape says at its capacity. The block
 * that got it was not written; the tape logic ends the file there and goes on on the next cartridge.
 */
export class EndOfMedium extends Error {
  constructor(where: string) {
    super(`end of medium on ${where}`);
    this.name = 'EndOfMedium';
  }
}

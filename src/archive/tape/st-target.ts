/**
 * `tape`: a real drive through the Linux st driver (`device: /dev/nst0`). Each backup starts at the
 * beginning of the cartridge in the drive and labels every cartridge it uses; volumes after the first
 * are loaded by `changeCommand` (or by the operator, asked on the terminal). A tape cannot be erased
 * or listed from here: remove leaves it to be overwritten, and there is no list.
 */
import { z } from 'zod';
import type { ArchiveTarget } from '../archive-target.js';
import { tapeArchiveReader, tapeArchiveWriter, type TapeMedium } from './tape-archive.js';
import type { TapeDrive } from './tape-drive.js';
import { StDrive } from './st-drive.js';
import { blockSizeSetting } from './tape-sizes.js';

/** The keys of `target:` with `type: tape`. */
export const tapeSettings = z
  .object({
    type: z.string(),
    /** The non-rewinding st device: a tape file is one open of it, and it must stay where ebr left it. */
    device: z.string().regex(/^\//, 'an absolute device path such as /dev/nst0'),
    /** Bytes of every block written (`256KiB`); the drive in variable block mode, or set to this size. */
    blockSize: blockSizeSetting(),
    /** A shell command line that loads the cartridge for the volume in $EBR_VOLUME (with $EBR_BACKUP_ID, $EBR_DEVICE, $EBR_PURPOSE). */
    changeCommand: z.string().min(1).optional(),
  })
  .strict();

export type TapeSettings = z.input<typeof tapeSettings>;

export interface TapeOptions {
  /** The mt program, when not `mt` from PATH. */
  mt?: string;
  /** Wraps each drive the target makes (tests). */
  wrapDrive?: (drive: TapeDrive) => TapeDrive;
}

export function tapeTarget(input: TapeSettings, options: TapeOptions = {}): ArchiveTarget {
  const settings = tapeSettings.parse(input);
  const location = `tape:${settings.device}`;
  const medium: TapeMedium = {
    kind: 'tape',
    drive: () => {
      const d = new StDrive({ device: settings.device, blockSize: settings.blockSize, ...(settings.changeCommand ? { changeCommand: settings.changeCommand } : {}), ...(options.mt ? { mt: options.mt } : {}) });
      return options.wrapDrive ? options.wrapDrive(d) : d;
    },
    location: () => location,
    // What a failed backup wrote stays on the tape (it has a label but no manifest, so it is never taken for a backup); rewound for the next one.
    discard: async (_ref, drive) => {
      await drive.rewind();
      await drive.release();
    },
  };
  return {
    kind: 'tape',
    sequential: true,
    offline: true,
    create: (ref) => tapeArchiveWriter(medium, ref),
    open: async (ref) => tapeArchiveReader(medium, ref),
    // A cartridge is reused by writing over it from the start; nothing can be removed from a tape in place.
    remove: async () => undefined,
    locationOf: () => location,
  };
}

/**
 * `vtape`: a tape library in a directory, for disk-to-disk-to-tape and for testing the tape logic on
 * real files. `path` holds the cartridges; each backup takes scratch cartridges in order and labels
 * them, so the cartridges of a backup are found again by their labels alone.
 */
import path from 'node:path';
import { z } from 'zod';
import { EbrError } from '../../errors.js';
import { logStoreAt, type LogStore } from '../../logs/log-store.js';
import type { ArchiveTarget, BackupRef, ListedArchive } from '../archive-target.js';
import { freeSpaceAt } from '../backup-dir.js';
import { tapeArchiveReader, tapeArchiveWriter, tapeManifestBytes, type TapeMedium } from './tape-archive.js';
import type { TapeDrive } from './tape-drive.js';
import { blockSizeSetting, sizeSetting } from './tape-sizes.js';
import { VtapeDrive } from './vtape-drive.js';
import { VtapeLibrary, type LabelledCartridge } from './vtape-library.js';

/** The keys of `target:` with `type: vtape`. */
export const vtapeSettings = z
  .object({
    type: z.string(),
    path: z.string(),
    /** Bytes one cartridge holds (`64MiB`); a stream that does not fit continues on the next cartridge. */
    capacity: sizeSetting(),
    /** Bytes of every block written (`256KiB`); the last block of each tape file is zero-padded. */
    blockSize: blockSizeSetting(),
  })
  .strict();

export type VtapeSettings = z.input<typeof vtapeSettings>;

/** Blocks a cartridge must hold at the least: its label, a header and a data block, with room to spare. */
const minBlocksPerCartridge = 8;

export interface VtapeOptions {
  /** Wraps each drive the target makes (tests count the blocks a restore reads). */
  wrapDrive?: (drive: TapeDrive) => TapeDrive;
}

export function vtapeTarget(input: VtapeSettings, options: VtapeOptions = {}): ArchiveTarget {
  const settings = vtapeSettings.parse(input);
  const { capacity, blockSize } = settings;
  if (capacity < minBlocksPerCartridge * blockSize) {
    throw new EbrError('config', `target.capacity ${capacity} holds fewer than ${minBlocksPerCartridge} blocks of ${blockSize} bytes`, {
      hint: `make target.capacity at least ${minBlocksPerCartridge * blockSize} bytes, or target.blockSize smaller`,
      context: { key: 'target.capacity' },
    });
  }
  const root = settings.path;
  const library = new VtapeLibrary(root);
  const medium: TapeMedium = {
    kind: 'vtape',
    drive: () => {
      const d = new VtapeDrive(library, blockSize, capacity);
      return options.wrapDrive ? options.wrapDrive(d) : d;
    },
    location: (ref, used) => locationOf(root, used ? used.map((u) => u.cartridge!) : library.cartridgesOfSync(ref).map((c) => c.cartridge)),
    volumes: async (ref) => (await library.cartridgesOf(ref)).map((c) => c.label.volume),
    discard: async (ref) => {
      await library.freeBackup(ref);
    },
    freeSpace: () => freeSpaceAt(root),
  };
  return {
    kind: 'vtape',
    sequential: true,
    async create(ref) {
      const there = await library.cartridgesOf(ref);
      if (there.length) {
        throw new EbrError('archive', `backup ${ref.backupId} already has cartridges in ${root} (${there.map((c) => c.cartridge).join(', ')}); ebr never overwrites a backup`, {
          hint: 'remove that backup first (retention, or by hand), or point target.path elsewhere',
          context: { path: root, backupId: ref.backupId },
        });
      }
      return tapeArchiveWriter(medium, ref);
    },
    async open(ref) {
      return tapeArchiveReader(medium, ref);
    },
    // One backup per cartridge (each starts with its label): nothing else is on them, so all of them are freed.
    remove: async (ref) => {
      await library.freeBackup(ref);
    },
    list: (instance) => listBackups(library, medium, instance),
    locationOf: (ref) => medium.location(ref),
    freeSpace: () => freeSpaceAt(root),
    logStore: (instance, kind) => vtapeLogStore(settings, instance, kind),
  };
}

/**
 * The log archive of a vtape target: a staging directory beside the cartridges, on disk, from which
 * logs can go to tape later (disk-to-disk-to-tape); logs are too small and too many for tape files.
 */
export function vtapeLogStore(settings: Pick<VtapeSettings, 'path'>, instance: string, kind: string): LogStore {
  return logStoreAt(path.join(settings.path, 'staging', instance, kind), instance);
}

/** `vtape:/backup/vtapes (cart-0003…cart-0004)`: the library and the cartridges the backup used. */
function locationOf(root: string, cartridges: string[]): string {
  if (cartridges.length === 0) return `vtape:${root}`;
  const numbers = cartridges.map((c) => Number(c.slice('cart-'.length)));
  const contiguous = numbers.every((n, i) => i === 0 || n === numbers[i - 1]! + 1);
  const named = cartridges.length === 1 ? cartridges[0] : contiguous ? `${cartridges[0]}…${cartridges.at(-1)}` : cartridges.join(', ');
  return `vtape:${root} (${named})`;
}

async function listBackups(library: VtapeLibrary, medium: TapeMedium, instance: string): Promise<ListedArchive[]> {
  const byBackup = new Map<string, LabelledCartridge[]>();
  for (const c of await library.labels()) {
    if (c.label.instance !== instance) continue;
    byBackup.set(c.label.backupId, [...(byBackup.get(c.label.backupId) ?? []), c]);
  }
  return [...byBackup.keys()].sort().map((backupId) => {
    const ref: BackupRef = { instance, backupId };
    const carts = byBackup.get(backupId)!.sort((a, b) => a.label.volume - b.label.volume);
    return {
      backupId,
      location: locationOf(library.root, carts.map((c) => c.cartridge)),
      manifestBytes: () => tapeManifestBytes(medium, ref),
    };
  });
}

/**
 * The archive writer and reader of both tape targets, over a TapeMedium: one tape file per space (tar
 * and codec through coded-space.ts), then the meta files, then the manifest, whose header lists where
 * the meta files lie. Each space's placement (volumes, file numbers, byte ranges) goes to the manifest.
 */
import { EbrError } from '../../errors.js';
import type { ArchiveReader, ArchiveWriter, BackupRef, FreeSpace, ReadMember, ReadSpaceOptions, SpaceWriter } from '../archive-target.js';
import { safeName } from '../backup-dir.js';
import { codedSpaceMembers, codedSpaceWriter } from '../coded-space.js';
import { manifestText, parseManifest, sha256Of, type ReadManifestFile } from '../manifest.js';
import type { TapeDrive } from './tape-drive.js';
import { parsePlacement, type Segment, type TapePlacement } from './tape-format.js';
import { TapeSetReader } from './tape-reader.js';
import { TapeSetWriter, type TapeFileSink, type UsedVolume } from './tape-writer.js';

/** What differs between a vtape library and a real drive, below the shared tape logic. */
export interface TapeMedium {
  kind: TapePlacement['medium'];
  /** A drive for one session: one backup written, or one backup read. */
  drive(): TapeDrive;
  /** Where a backup lies, for humans: with the cartridges it used when they are known. */
  location(ref: BackupRef, used?: UsedVolume[]): string;
  /** The backup's volume numbers from the labels, when the medium can list them without the drive (vtape). */
  volumes?(ref: BackupRef): Promise<number[]>;
  /** After a failed backup, all writes done: what it wrote is removed where that is possible (a vtape), or the tape is rewound. */
  discard(ref: BackupRef, drive: TapeDrive): Promise<void>;
  freeSpace?(): Promise<FreeSpace | undefined>;
}

export async function tapeArchiveWriter(medium: TapeMedium, ref: BackupRef): Promise<ArchiveWriter> {
  const drive = medium.drive();
  const tape = new TapeSetWriter(drive, ref);
  try {
    await tape.start();
  } catch (err) {
    await drive.release().catch(() => undefined);
    await medium.discard(ref, drive).catch(() => undefined);
    throw err;
  }
  const spaces: Record<string, Segment[]> = {};
  const meta: Record<string, Segment[]> = {};
  let open: TapeFileSink | undefined;
  let sealed = false;

  /** One whole tape file from a buffer (meta files, the manifest), its size and digest in its header. */
  async function writeWhole(kind: 'meta' | 'manifest', name: string, data: Buffer, extra?: () => { meta: Record<string, Segment[]>; spaces: Record<string, Segment[]> }): Promise<Segment[]> {
    if (open) throw new EbrError('internal', `${kind} ${name} written while space stream is still open`);
    const sink = tape.openFile({ kind, name, bytes: data.length, sha256: sha256Of(data), ...(extra ? { extra } : {}) });
    open = sink;
    await sink.write(data);
    await sink.close();
    open = undefined;
    return sink.placed();
  }

  return {
    get location() {
      return medium.location(ref, tape.volumes);
    },
    bytesWritten: () => tape.bytesWritten,
    ...(medium.freeSpace ? { freeSpace: () => medium.freeSpace!() } : {}),
    async openSpace(space, codec): Promise<SpaceWriter> {
      // The workflow streams one space at a time on a sequential target; two at once would interleave blocks.
      if (open || sealed) throw new EbrError('internal', `space ${space} opened while another tape file is being written`);
      const stream = `spaces/${safeName(space)}.tar`;
      const sink = tape.openFile({ kind: 'space', name: space });
      open = sink;
      const inner = codedSpaceWriter(sink, stream, codec);
      return {
        addFile: (h, source, signal) => inner.addFile(h, source, signal),
        addEntry: (h) => inner.addEntry(h),
        async close() {
          const closed = await inner.close();
          open = undefined;
          const segments = sink.placed();
          spaces[space] = segments;
          const placement: TapePlacement = { medium: medium.kind, blockSize: tape.blockSize, segments };
          return { ...closed, placement: placement as unknown as Record<string, unknown> };
        },
      };
    },
    async writeMeta(name, data) {
      meta[name] = await writeWhole('meta', safeName(name), Buffer.from(data));
    },
    async writeManifest(manifest) {
      await writeWhole('manifest', 'manifest.json', Buffer.from(manifestText(manifest)), () => ({ meta, spaces }));
      sealed = true;
      await tape.finish();
    },
    async abort() {
      // The blocks already queued are let through (or fail) first: nothing may reach a cartridge after it is freed.
      await open?.abandon();
      open = undefined;
      await drive.release().catch(() => undefined);
      await medium.discard(ref, drive);
    },
  };
}

/** manifest.json's bytes as stored, or undefined when the backup has none (it never completed). */
export async function tapeManifestBytes(medium: TapeMedium, ref: BackupRef): Promise<Buffer | undefined> {
  const reader = new TapeSetReader({ drive: medium.drive(), ref, location: medium.location(ref), ...(medium.volumes ? { volumes: () => medium.volumes!(ref) } : {}) });
  try {
    return (await reader.readManifest()).bytes;
  } catch (err) {
    if (err instanceof EbrError && err.context.manifest === 'missing') return undefined;
    throw err;
  } finally {
    await reader.release().catch(() => undefined);
  }
}

export function tapeArchiveReader(medium: TapeMedium, ref: BackupRef): ArchiveReader {
  const drive = medium.drive();
  const location = medium.location(ref);
  const reader = new TapeSetReader({ drive, ref, location, ...(medium.volumes ? { volumes: () => medium.volumes!(ref) } : {}) });
  let manifestFile: Promise<ReadManifestFile> | undefined;

  async function readManifestFile(): Promise<ReadManifestFile> {
    const { bytes } = await reader.readManifest();
    try {
      return { manifest: parseManifest(bytes.toString('utf8'), `${location} manifest.json`), sha256: sha256Of(bytes) };
    } catch (err) {
      throw new EbrError('archive', `the manifest of backup ${ref.backupId} on ${location} is damaged: ${(err as Error).message}`, { context: { ...ref, path: location }, cause: err });
    }
  }

  /** The segments of a space: from the manifest's placement, else from the manifest's tape header. */
  async function segmentsOf(space: string, placement: Record<string, unknown> | undefined, signal: AbortSignal): Promise<Segment[]> {
    const segments = parsePlacement(placement)?.segments ?? (await reader.findManifest(signal)).header.spaces?.[space];
    if (!segments) {
      throw new EbrError('archive', `backup ${ref.backupId} on ${location} records no tape file for space ${space}`, { hint: 'the manifest lists no placement for it; restore another backup', context: { ...ref, space } });
    }
    return segments;
  }

  async function* spaceMembers(space: string, signal: AbortSignal, options: ReadSpaceOptions | undefined): AsyncGenerator<ReadMember> {
    const segments = await segmentsOf(space, options?.placement, signal);
    await reader.ensureVolume(segments[0]!.volume, signal);
    // A space in one tape file is named by it: a damaged stream's message then says where to look.
    const label = segments.length === 1 ? `${reader.where(segments[0]!.volume, segments[0]!.file)} (space ${space})` : `${location} space ${space}`;
    let done = false;
    try {
      yield* codedSpaceMembers(reader.streamBytes(segments, 'space', space, signal, options?.stored), label, signal, options?.codec, options?.stored);
      done = true;
    } finally {
      // A read given up half-way leaves the drive mid-file: let go of it, the next seek starts afresh.
      if (!done) await reader.release().catch(() => undefined);
    }
  }

  return {
    location,
    async readManifest() {
      return (await (manifestFile ??= readManifestFile())).manifest;
    },
    readManifestFile: () => (manifestFile ??= readManifestFile()),
    async readMeta(name) {
      const { header } = await reader.findManifest();
      const segments = header.meta?.[name];
      if (!segments) throw new EbrError('archive', `backup ${ref.backupId} on ${location} has no meta file ${name}`, { context: { ...ref, member: `meta/${name}` } });
      return reader.readWhole(segments, 'meta', name);
    },
    readSpace: (space, signal, options) => spaceMembers(space, signal, options),
  };
}

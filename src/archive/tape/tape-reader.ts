/**
 * Reading one backup back from tape: the right cartridge for each volume (by its label), straight to
 * a tape file by its number, and only the blocks a segment holds, each segment checked against the
 * digest written with it. The manifest is found from the labels and the last volume's last tape file.
 */
import { createHash } from 'node:crypto';
import { EbrError } from '../../errors.js';
import type { BackupRef } from '../archive-target.js';
import type { TapeDrive } from './tape-drive.js';
import { parseHeader, parseLabel, type HeaderExpectation, type Segment, type TapeFileHeader, type TapeFileKind, type TapeLabel } from './tape-format.js';

export interface TapeReaderOptions {
  drive: TapeDrive;
  ref: BackupRef;
  /** `vtape:/backup/vtapes` or `tape:/dev/nst0`, for messages. */
  location: string;
  /** The backup's volume numbers when the library can tell from its labels (vtape); a drive alone cannot. */
  volumes?: () => Promise<number[]>;
}

/** Where the manifest lies, and the header of its first part (the meta files' places are in it). */
export interface FoundManifest {
  volume: number;
  file: number;
  header: TapeFileHeader;
}

/** Label reads before giving up on an operator or changer that keeps loading the wrong cartridge. */
const changeAttempts = 3;

export class TapeSetReader {
  private label: TapeLabel | undefined;
  private looked = false;
  private manifest: FoundManifest | undefined;
  /** `volume:file` when the drive was left right after that tape file's header (a seek back to it saved, which costs a rewind on a drive). */
  private afterHeader: string | undefined;

  constructor(private readonly o: TapeReaderOptions) {}

  /** Makes `volume` of the backup the cartridge in the drive, asking for a change when it is not. */
  async ensureVolume(volume: number, signal?: AbortSignal): Promise<void> {
    if (this.isVolume(this.label, volume)) return;
    if (!this.looked) {
      this.looked = true;
      this.label = await this.loadedLabel(signal);
      if (this.isVolume(this.label, volume)) return;
    }
    for (let attempt = 1; ; attempt++) {
      const reason = this.label ? `the cartridge in the drive is volume ${this.label.volume} of backup ${this.label.backupId}` : 'the cartridge in the drive has no ebr label';
      await this.o.drive.change({ ref: this.o.ref, volume, purpose: 'read', reason }, signal);
      this.label = await this.loadedLabel(signal);
      if (this.isVolume(this.label, volume)) return;
      if (attempt >= changeAttempts) {
        throw new EbrError('archive', `volume ${volume} of backup ${this.o.ref.backupId} was asked for ${attempt} times, but ${reason.replace('the cartridge in the drive', 'the cartridge loaded')}`, {
          hint: 'load the cartridge whose label names this backup and volume (see `ebr show`); check target.changeCommand',
          context: { ...this.o.ref, path: this.o.location },
        });
      }
    }
  }

  /**
   * The bytes of a stream from its segments, in order, each checked at its end against its digest.
   * `checkedAfter` is the whole stream's record when the caller checks it at the end anyway: a stream
   * in one segment is then not hashed twice (that digest is the segment's).
   */
  async *streamBytes(segments: Segment[], kind: TapeFileKind, name: string, signal?: AbortSignal, checkedAfter?: { bytes: number; sha256?: string }): AsyncGenerator<Buffer> {
    const once = segments.length === 1 && checkedAfter?.bytes === segments[0]!.bytes && checkedAfter.sha256 !== undefined && checkedAfter.sha256 === segments[0]!.sha256;
    for (const [i, seg] of segments.entries()) yield* this.segmentBytes(seg, { backupId: this.o.ref.backupId, kind, name, part: i + 1, offset: seg.offset }, signal, !once);
  }

  /** `… volume 2 (cart-0002) tape file 3`, for messages about a segment. */
  where(volume: number, file: number): string {
    const cart = this.isVolume(this.label, volume) && this.o.drive.loaded ? ` (${this.o.drive.loaded})` : '';
    return `${this.o.location} volume ${volume}${cart} tape file ${file}`;
  }

  async readWhole(segments: Segment[], kind: TapeFileKind, name: string, signal?: AbortSignal): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const b of this.streamBytes(segments, kind, name, signal)) parts.push(b);
    return Buffer.concat(parts);
  }

  /** The manifest's bytes and the header of its first part. */
  async readManifest(signal?: AbortSignal): Promise<{ bytes: Buffer; header: TapeFileHeader }> {
    const found = await this.findManifest(signal);
    const { header } = found;
    const bytes = await this.readCounted(found.volume, found.file, header, signal);
    return { bytes, header };
  }

  /** Where the manifest starts: the last tape file of the last volume, or (when it spans) the last of an earlier one. */
  async findManifest(signal?: AbortSignal): Promise<FoundManifest> {
    if (this.manifest) return this.manifest;
    const known = await this.o.volumes?.();
    if (known && known.length === 0) throw this.noManifest('no cartridge has a label of it');
    // A drive cannot list: start from the cartridge in it when it is this backup's, else from volume 1.
    const loaded = known ? undefined : await this.peek(signal);
    let volume = known ? Math.max(...known) : loaded?.backupId === this.o.ref.backupId && loaded.instance === this.o.ref.instance ? loaded.volume : 1;
    for (;;) {
      const last = await this.lastHeader(volume, signal);
      if (!last) throw this.noManifest(`volume ${volume} holds nothing after its label`);
      if (last.header.kind === 'manifest') {
        if (last.header.part === 1) return (this.manifest = { volume, file: last.file, header: last.header });
        const first = await this.lastHeader(volume - (last.header.part - 1), signal);
        if (first?.header.kind === 'manifest' && first.header.part === 1) return (this.manifest = { volume: volume - (last.header.part - 1), file: first.file, header: first.header });
        throw this.noManifest(`the manifest continues on volume ${volume}, but its first part is not where it should be`);
      }
      // Not the manifest: the backup goes on on the next volume, or it never completed.
      if (known && !known.includes(volume + 1)) throw this.noManifest(`its last tape file is ${last.header.kind} ${last.header.name} on volume ${volume}`);
      volume++;
    }
  }

  async release(): Promise<void> {
    await this.o.drive.release();
  }

  private async lastHeader(volume: number, signal?: AbortSignal): Promise<{ file: number; header: TapeFileHeader } | undefined> {
    await this.ensureVolume(volume, signal);
    const count = await this.o.drive.fileCount(signal);
    if (count < 2) return undefined;
    await this.o.drive.seekFile(count - 1, signal);
    const header = parseHeader(await this.o.drive.readBlock(signal), this.where(volume, count - 1), { backupId: this.o.ref.backupId });
    this.afterHeader = `${volume}:${count - 1}`;
    return { file: count - 1, header };
  }

  /** A tape file whose header gives its size (meta files, the manifest): its parts follow in file 1 of the next volumes. */
  private async readCounted(volume: number, file: number, first: TapeFileHeader, signal?: AbortSignal): Promise<Buffer> {
    const total = first.bytes ?? 0;
    const parts: Buffer[] = [];
    let got = 0;
    for (let part = 1, v = volume, f = file; ; part++, v++, f = 1) {
      const where = this.where(v, f);
      if (this.afterHeader !== `${v}:${f}`) {
        await this.ensureVolume(v, signal);
        await this.o.drive.seekFile(f, signal);
        parseHeader(await this.o.drive.readBlock(signal), where, { backupId: this.o.ref.backupId, kind: first.kind, name: first.name, part, offset: got });
      }
      this.afterHeader = undefined;
      for (let b = await this.o.drive.readBlock(signal); b; b = await this.o.drive.readBlock(signal)) {
        const take = Math.min(b.length, total - got);
        if (take < b.length && !isZero(b.subarray(take))) throw this.damaged(where, 'has data past the size its header records');
        parts.push(b.subarray(0, take));
        got += take;
      }
      if (got >= total) break;
    }
    const bytes = Buffer.concat(parts, got);
    if (first.sha256 && createHash('sha256').update(bytes).digest('hex') !== first.sha256) throw this.damaged(this.where(volume, file), `does not match the sha256 its header records for ${first.name}`);
    return bytes;
  }

  private async *segmentBytes(seg: Segment, expect: HeaderExpectation, signal?: AbortSignal, hashed = true): AsyncGenerator<Buffer> {
    this.afterHeader = undefined;
    await this.ensureVolume(seg.volume, signal);
    const { drive } = this.o;
    const where = this.where(seg.volume, seg.file);
    await drive.seekFile(seg.file, signal);
    parseHeader(await drive.readBlock(signal), where, expect);
    const hash = createHash('sha256');
    let left = seg.bytes;
    while (left > 0) {
      const b = await drive.readBlock(signal);
      if (!b) throw this.damaged(where, `ends ${left} bytes before the ${seg.bytes} its placement records`);
      const take = Math.min(left, b.length);
      const out = take === b.length ? b : b.subarray(0, take);
      if (take < b.length && !isZero(b.subarray(take))) throw this.damaged(where, 'has data in the padding of its last block');
      if (hashed) hash.update(out);
      left -= take;
      yield out;
    }
    if ((await drive.readBlock(signal)) !== undefined) throw this.damaged(where, `holds more blocks than the ${seg.bytes} bytes its placement records`);
    const sha256 = hashed ? hash.digest('hex') : seg.sha256;
    if (sha256 !== seg.sha256) throw this.damaged(where, `does not match the sha256 written with it (read ${sha256.slice(0, 12)}…, written ${seg.sha256.slice(0, 12)}…): a block is damaged`);
  }

  private isVolume(label: TapeLabel | undefined, volume: number): boolean {
    if (!label || label.backupId !== this.o.ref.backupId || label.instance !== this.o.ref.instance || label.volume !== volume) return false;
    if (label.blockSize !== this.o.drive.blockSize) {
      throw new EbrError('archive', `volume ${volume} of backup ${label.backupId} was written with blocks of ${label.blockSize} bytes, but target.blockSize is ${this.o.drive.blockSize}`, {
        hint: `set target.blockSize to ${label.blockSize} to read it`,
        context: { ...this.o.ref, path: this.o.location },
      });
    }
    return true;
  }

  /** The label of the cartridge in the drive, read once; undefined when it has none. */
  private async peek(signal?: AbortSignal): Promise<TapeLabel | undefined> {
    if (!this.looked) {
      this.looked = true;
      this.label = await this.loadedLabel(signal);
    }
    return this.label;
  }

  private async loadedLabel(signal?: AbortSignal): Promise<TapeLabel | undefined> {
    this.afterHeader = undefined;
    try {
      await this.o.drive.seekFile(0, signal);
      return parseLabel(await this.o.drive.readBlock(signal));
    } catch (err) {
      if (err instanceof EbrError && err.code === 'cancelled') throw err;
      // Nothing loaded, a blank tape (a read there fails), or a damaged label: none of them is the volume asked for.
      return undefined;
    }
  }

  private damaged(where: string, what: string): EbrError {
    return new EbrError('archive', `${where} ${what}`, {
      hint: 'the tape is damaged or was changed after the backup; restore another backup (`ebr list`) or its copy',
      context: { ...this.o.ref, path: where },
    });
  }

  private noManifest(why: string): EbrError {
    return new EbrError('archive', `backup ${this.o.ref.backupId} has no manifest on ${this.o.location} (${why}): the backup is missing or never completed`, {
      hint: 'a backup without its manifest never completed; use another backup (`ebr list`)',
      // Told apart from a damaged one: listing treats a backup without a manifest as never completed.
      context: { ...this.o.ref, path: this.o.location, manifest: 'missing' },
    });
  }
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

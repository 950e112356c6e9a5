/**
 * Writing one backup onto tape: a label at the start of each cartridge, one tape file per stream,
 * each spanning onto the next cartridge when the medium ends, and every stretch recorded as a Segment.
 * The drive takes one block at a time; a stream's sink queues a few blocks ahead so the drive keeps
 * streaming while the next ones are read and hashed.
 */
import { createHash, type Hash } from 'node:crypto';
import { EbrError } from '../../errors.js';
import type { BackupRef } from '../archive-target.js';
import type { ByteSink } from '../byte-sink.js';
import { EndOfMedium, type TapeDrive } from './tape-drive.js';
import { encodeBlock, parseLabel, tapeFormat, type Segment, type TapeFileHeader, type TapeFileKind, type TapeLabel } from './tape-format.js';

/** What a tape file is, as its header says; the writer adds where it lies. */
export interface TapeFileSpec {
  kind: TapeFileKind;
  name: string;
  bytes?: number;
  sha256?: string;
  /** Called for each part's header: the manifest adds the meta files' places when they fit. */
  extra?: () => Pick<TapeFileHeader, 'meta' | 'spaces'>;
}

/** Cartridges a backup has used, in volume order. */
export interface UsedVolume {
  volume: number;
  cartridge: string | undefined;
}

export class TapeSetWriter {
  /** Volume in the drive (0 before start). */
  private volume = 0;
  /** Next tape file number on that volume. */
  private file = 0;
  /** Blocks written to the current volume since its label (to tell a medium that took nothing). */
  private blocksOnVolume = 0;
  readonly volumes: UsedVolume[] = [];
  /** Data bytes (not headers or padding) that reached the drive. */
  bytesWritten = 0;

  constructor(
    private readonly drive: TapeDrive,
    private readonly ref: BackupRef,
  ) {}

  get blockSize(): number {
    return this.drive.blockSize;
  }

  /** Loads the first cartridge and labels it. */
  async start(): Promise<void> {
    await this.loadFresh();
  }

  /** A new tape file; its bytes go through the returned sink, and close() ends it with a file mark. */
  openFile(spec: TapeFileSpec): TapeFileSink {
    return new TapeFileSink(new TapeFile(this, spec), this.drive.blockSize);
  }

  /** Ends the session: the drive is rewound and let go. */
  async finish(): Promise<void> {
    await this.drive.rewind();
    await this.drive.release();
  }

  /** Writes one block at the drive's position; false at the end of the medium (the block was not written). */
  async block(block: Buffer): Promise<boolean> {
    try {
      await this.drive.writeBlock(block);
      this.blocksOnVolume++;
      return true;
    } catch (err) {
      if (err instanceof EndOfMedium) return false;
      throw err;
    }
  }

  /** Ends the tape file being written. */
  async fileMark(): Promise<void> {
    await this.drive.writeFileMark();
    this.file++;
  }

  /** The medium is full: the next cartridge, labelled, and the file number a continued tape file gets there. */
  async nextVolume(): Promise<void> {
    if (this.blocksOnVolume === 0) {
      throw new EbrError('archive', `volume ${this.volume} (${this.drive.loaded ?? 'the cartridge in the drive'}) took no data after its label: the cartridge is bad or too small for a block of ${this.drive.blockSize} bytes`, {
        hint: 'check the cartridge; on a vtape, make capacity many times blockSize',
        context: { backupId: this.ref.backupId },
      });
    }
    await this.loadFresh();
  }

  header(spec: TapeFileSpec, part: number, offset: number): Buffer {
    const h: TapeFileHeader = {
      format: tapeFormat,
      kind: spec.kind,
      backupId: this.ref.backupId,
      volume: this.volume,
      file: this.file,
      name: spec.name,
      part,
      offset,
      ...(spec.bytes !== undefined ? { bytes: spec.bytes } : {}),
      ...(spec.sha256 ? { sha256: spec.sha256 } : {}),
    };
    const extra = spec.extra?.() ?? {};
    const block = encodeBlock({ ...h, ...extra }, this.drive.blockSize) ?? (extra.meta ? encodeBlock({ ...h, meta: extra.meta }, this.drive.blockSize) : undefined);
    if (!block) {
      throw new EbrError('archive', `the tape header of ${spec.kind} ${spec.name} does not fit in a block of ${this.drive.blockSize} bytes`, {
        hint: 'raise target.blockSize',
        context: { backupId: this.ref.backupId },
      });
    }
    return block;
  }

  where(): { volume: number; file: number; cartridge: string | undefined } {
    return { volume: this.volume, file: this.file, cartridge: this.drive.loaded };
  }

  private async loadFresh(): Promise<void> {
    const volume = this.volume + 1;
    await this.drive.change({ ref: this.ref, volume, purpose: 'write' });
    // A changer that did not change (or loaded the wrong slot) must not cost this backup its own earlier volume.
    const before = await this.peekLabel();
    if (before && before.backupId === this.ref.backupId) {
      throw new EbrError('archive', `the cartridge loaded for volume ${volume} (${this.drive.loaded ?? 'in the drive'}) is volume ${before.volume} of this same backup; it is not overwritten`, {
        hint: 'the changer did not change the cartridge: check target.changeCommand, or load a scratch cartridge',
        context: { backupId: this.ref.backupId },
      });
    }
    await this.drive.rewind();
    this.volume = volume;
    this.file = 0;
    this.blocksOnVolume = 0;
    const label: TapeLabel = { format: tapeFormat, kind: 'label', backupId: this.ref.backupId, instance: this.ref.instance, volume, blockSize: this.drive.blockSize, writtenAt: new Date().toISOString() };
    if (!(await this.block(encodeBlock(label, this.drive.blockSize)!))) {
      throw new EbrError('archive', `the cartridge for volume ${volume} (${this.drive.loaded ?? 'in the drive'}) has no room even for its label`, { context: { backupId: this.ref.backupId } });
    }
    this.blocksOnVolume = 0;
    await this.fileMark();
    this.volumes.push({ volume, cartridge: this.drive.loaded });
  }

  /** The label of the cartridge just loaded, if it has one (a blank or foreign tape has none, and a read error means blank). */
  private async peekLabel(): Promise<TapeLabel | undefined> {
    try {
      await this.drive.rewind();
      return parseLabel(await this.drive.readBlock());
    } catch {
      return undefined;
    }
  }
}

/** One tape file as it is written: the current part's header, block count and digest, and the segments done. */
class TapeFile {
  readonly segments: Segment[] = [];
  private part = 0;
  private current: { volume: number; file: number; cartridge: string | undefined; offset: number; bytes: number; hash: Hash } | undefined;
  private offset = 0;

  constructor(
    readonly tape: TapeSetWriter,
    readonly spec: TapeFileSpec,
  ) {}

  /** Writes one block holding `used` bytes of the stream (the rest is padding), spanning onto the next cartridge when this one ends. */
  async write(block: Buffer, used: number): Promise<void> {
    for (;;) {
      if (!this.current) await this.begin();
      if (await this.tape.block(block)) break;
      // The medium ended under this block: the part ends before it, the block goes first on the next cartridge.
      await this.endPart();
      await this.tape.nextVolume();
    }
    const c = this.current!;
    c.bytes += used;
    c.hash.update(used === block.length ? block : block.subarray(0, used));
    this.offset += used;
    this.tape.bytesWritten += used;
  }

  async close(): Promise<Segment[]> {
    if (!this.current) await this.begin();
    await this.endPart();
    return this.segments;
  }

  private async begin(): Promise<void> {
    for (;;) {
      const part = this.part + 1;
      const header = this.tape.header(this.spec, part, this.offset);
      const where = this.tape.where();
      if (await this.tape.block(header)) {
        this.part = part;
        this.current = { ...where, offset: this.offset, bytes: 0, hash: createHash('sha256') };
        return;
      }
      // Not even the header fit: nothing of this file is on this cartridge (no file mark is owed).
      await this.tape.nextVolume();
    }
  }

  private async endPart(): Promise<void> {
    const c = this.current!;
    this.current = undefined;
    await this.tape.fileMark();
    this.segments.push({ volume: c.volume, file: c.file, offset: c.offset, bytes: c.bytes, sha256: c.hash.digest('hex'), ...(c.cartridge ? { cartridge: c.cartridge } : {}) });
  }
}

/**
 * A tape file as a ByteSink: bytes are cut into blocks (the last one zero-padded on close) and written
 * in order by one background chain, at most `depth` blocks ahead of the drive.
 */
export class TapeFileSink implements ByteSink {
  position = 0;
  private block: Buffer;
  private fill = 0;
  private chain: Promise<void> = Promise.resolve();
  private inFlight: Array<Promise<void>> = [];
  private failure: unknown;
  private done = false;
  private segments: Segment[] | undefined;
  private landed = 0;
  private readonly depth: number;

  constructor(
    private readonly file: TapeFile,
    private readonly blockSize: number,
  ) {
    this.block = Buffer.allocUnsafe(blockSize);
    this.depth = Math.max(2, Math.floor((8 << 20) / blockSize));
  }

  get written(): number {
    return this.landed;
  }

  async write(buf: Buffer): Promise<void> {
    this.check();
    this.position += buf.length;
    let at = 0;
    while (at < buf.length) {
      const n = Math.min(buf.length - at, this.blockSize - this.fill);
      buf.copy(this.block, this.fill, at, at + n);
      this.fill += n;
      at += n;
      if (this.fill === this.blockSize) await this.push();
    }
  }

  async close(): Promise<void> {
    this.check();
    if (this.fill > 0) {
      this.block.fill(0, this.fill);
      await this.push();
    }
    await this.chain;
    this.check();
    this.done = true;
    this.segments = await this.file.close();
  }

  destroy(): void {
    this.failure ??= new Error('the tape file was abandoned');
  }

  /** Gives up, and waits for the block the drive is writing: once this resolves, nothing more of this file reaches the tape. */
  async abandon(): Promise<void> {
    this.destroy();
    await this.chain;
  }

  /** Where the file lies, once closed. */
  placed(): Segment[] {
    if (!this.segments) throw new Error('placed() before close()');
    return this.segments;
  }

  private async push(): Promise<void> {
    const block = this.block;
    const used = this.fill;
    this.block = Buffer.allocUnsafe(this.blockSize);
    this.fill = 0;
    const p = this.chain.then(async () => {
      if (this.failure !== undefined) return;
      await this.file.write(block, used);
      this.landed += used;
    });
    this.chain = p.catch((err: unknown) => {
      this.failure ??= err;
    });
    this.inFlight.push(this.chain);
    if (this.inFlight.length >= this.depth) await this.inFlight.shift();
    this.check();
  }

  private check(): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.done) throw new Error('the tape file was written after it was closed');
  }
}

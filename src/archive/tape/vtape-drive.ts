/**
 * The drive of a vtape library: a tape file is a file of whole blocks in the cartridge's directory, a
 * file mark is the end of that file (fsynced), and the medium ends at `capacity` bytes of blocks, with
 * the same EndOfMedium a real drive's ENOSPC gives: the block that does not fit is not written.
 */
import { readdir, open, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { EbrError } from '../../errors.js';
import { syncDir } from '../backup-dir.js';
import { TargetWriteError } from '../file-sink.js';
import { EndOfMedium, type TapeDrive, type VolumeRequest } from './tape-drive.js';
import { tapeFileName, type VtapeLibrary } from './vtape-library.js';

/** Bytes read from a tape file at once (whole blocks are handed out of it): fewer, larger reads. */
const readAheadBytes = 4 << 20;

export class VtapeDrive implements TapeDrive {
  loaded: string | undefined;
  /** Tape file at the head. */
  private file = 0;
  /** Bytes on the loaded cartridge, the file being written included. */
  private used = 0;
  private writing: { fh: FileHandle; path: string } | undefined;
  private reading: { fh: FileHandle; path: string; chunk: Buffer; at: number; eof: boolean } | undefined;

  constructor(
    private readonly library: VtapeLibrary,
    readonly blockSize: number,
    readonly capacity: number,
  ) {}

  async writeBlock(block: Buffer): Promise<void> {
    if (block.length !== this.blockSize) throw new Error(`a tape block is ${this.blockSize} bytes, not ${block.length}`);
    await this.closeReading();
    if (!this.writing) await this.endTapeHere();
    // Checked before the file exists: a tape file that got no block is not left behind as an empty one.
    if (this.used + block.length > this.capacity) throw new EndOfMedium(this.loaded!);
    const w = this.writing ?? (await this.openWriting());
    try {
      for (let at = 0; at < block.length; ) at += (await w.fh.write(block, at, block.length - at, null)).bytesWritten;
    } catch (err) {
      throw TargetWriteError.of(w.path, err);
    }
    this.used += block.length;
  }

  async writeFileMark(): Promise<void> {
    await this.closeReading();
    // A file mark with no block before it is an empty tape file, as on a real tape.
    if (!this.writing) await this.endTapeHere();
    const w = this.writing ?? (await this.openWriting());
    this.writing = undefined;
    try {
      await w.fh.sync();
      await w.fh.close();
      await syncDir(path.dirname(w.path));
    } catch (err) {
      throw TargetWriteError.of(w.path, err);
    }
    this.file++;
  }

  async seekFile(n: number): Promise<void> {
    await this.closeAll();
    const file = this.pathOf(n);
    try {
      await stat(file);
    } catch {
      throw new EbrError('archive', `${this.loaded} has no tape file ${n} (${file} is missing)`, {
        hint: 'the cartridge was emptied or changed after the backup; restore another backup (`ebr list`)',
        context: { path: file },
      });
    }
    this.file = n;
  }

  async readBlock(): Promise<Buffer | undefined> {
    if (this.writing) throw new Error('readBlock while a tape file is being written');
    const r = this.reading ?? (await this.openReading());
    if (r.at + this.blockSize > r.chunk.length && !r.eof) await this.refill(r);
    if (r.at === r.chunk.length && r.eof) {
      // The file mark: the head moves on to the next tape file.
      await this.closeReading();
      this.file++;
      return undefined;
    }
    if (r.at + this.blockSize > r.chunk.length) {
      throw new EbrError('archive', `${r.path} ends in a partial block (${r.chunk.length - r.at} of ${this.blockSize} bytes)`, {
        hint: 'the tape file was cut short or written with another blockSize; restore another backup (`ebr list`)',
        context: { path: r.path },
      });
    }
    const block = r.chunk.subarray(r.at, r.at + this.blockSize);
    r.at += this.blockSize;
    return block;
  }

  async fileCount(): Promise<number> {
    await this.closeAll();
    const names = new Set(await readdir(this.dirOf()).catch(() => [] as string[]));
    let n = 0;
    while (names.has(tapeFileName(n))) n++;
    this.file = n;
    return n;
  }

  async rewind(): Promise<void> {
    await this.closeAll();
    this.file = 0;
  }

  async change(request: VolumeRequest): Promise<void> {
    await this.closeAll();
    this.file = 0;
    this.used = 0;
    if (request.purpose === 'write') {
      this.loaded = await this.library.claim();
      return;
    }
    const found = (await this.library.cartridgesOf(request.ref)).find((c) => c.label.volume === request.volume);
    if (!found) {
      throw new EbrError('archive', `no cartridge in ${this.library.root} holds volume ${request.volume} of backup ${request.ref.backupId}`, {
        hint: 'its cartridges were freed (the backup was removed) or moved out of target.path; restore another backup (`ebr list`)',
        context: { ...request.ref, path: this.library.root },
      });
    }
    this.loaded = found.cartridge;
  }

  async release(): Promise<void> {
    await this.closeAll();
  }

  private dirOf(): string {
    if (!this.loaded) throw new EbrError('archive', `no cartridge is loaded in the vtape drive of ${this.library.root}`);
    return this.library.dirOf(this.loaded);
  }

  private pathOf(n: number): string {
    return path.join(this.dirOf(), tapeFileName(n));
  }

  /** Writing at a tape file ends the tape there: later files go, and the room they took is free again. */
  private async endTapeHere(): Promise<void> {
    const dir = this.dirOf();
    try {
      let used = 0;
      for (const name of await readdir(dir)) {
        const n = /^file-(\d+)$/.exec(name);
        if (!n) continue;
        if (Number(n[1]) > this.file) await rm(path.join(dir, name));
        else if (Number(n[1]) < this.file) used += (await stat(path.join(dir, name))).size;
      }
      this.used = used;
    } catch (err) {
      throw TargetWriteError.of(dir, err);
    }
  }

  private async openWriting(): Promise<{ fh: FileHandle; path: string }> {
    const file = this.pathOf(this.file);
    try {
      this.writing = { fh: await open(file, 'w', 0o640), path: file };
    } catch (err) {
      throw TargetWriteError.of(file, err);
    }
    return this.writing;
  }

  private async openReading() {
    const file = this.pathOf(this.file);
    let fh;
    try {
      fh = await open(file, 'r');
    } catch (err) {
      throw new EbrError('archive', `end of data on ${this.loaded}: there is no tape file ${this.file}`, { context: { path: file }, cause: err });
    }
    this.reading = { fh, path: file, chunk: Buffer.alloc(0), at: 0, eof: false };
    return this.reading;
  }

  /** Reads the next whole blocks into a fresh buffer (the blocks handed out before stay valid). */
  private async refill(r: NonNullable<VtapeDrive['reading']>): Promise<void> {
    const want = Math.max(this.blockSize, Math.floor(readAheadBytes / this.blockSize) * this.blockSize);
    const rest = r.chunk.subarray(r.at);
    const chunk = Buffer.allocUnsafe(rest.length + want);
    rest.copy(chunk);
    let len = rest.length;
    while (len < chunk.length) {
      const { bytesRead } = await r.fh.read(chunk, len, chunk.length - len, null);
      if (bytesRead === 0) {
        r.eof = true;
        break;
      }
      len += bytesRead;
    }
    r.chunk = chunk.subarray(0, len);
    r.at = 0;
  }

  private async closeReading(): Promise<void> {
    const r = this.reading;
    this.reading = undefined;
    await r?.fh.close().catch(() => undefined);
  }

  private async closeAll(): Promise<void> {
    await this.closeReading();
    const w = this.writing;
    this.writing = undefined;
    if (w) {
      try {
        await w.fh.sync();
      } finally {
        await w.fh.close();
      }
    }
  }
}

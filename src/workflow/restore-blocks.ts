/**
 * Staging a file block by block, for the two restores that do not copy a member's body straight into
 * its temp: an incremental's file, whose blocks lie in the bodies of several backups of its chain, and
 * `restore --delta`, which writes only the blocks that differ from what is on disk. Every block is
 * checked against the digest the restored backup's manifest recorded for it before it is written; a
 * block missing at the end fails the restore. Writes go only to journaled temps: whole-file temps are
 * renamed into place at the swap like any other, a delta's runs of changed blocks are written into the
 * file at the swap with the old bytes kept aside (restore-range.ts), so undo works as for every restore.
 */
import { constants } from 'node:fs';
import { lstat, open, type FileHandle } from 'node:fs/promises';
import type { FileAttributes } from '../adapter-api.js';
import { BlockHasher, BlockList, blockCount, blockLength, inBlocks, type BlockDigestKind } from '../archive/block-digests.js';
import { readFileChunks } from '../archive/digest-copy.js';
import type { ManifestMember } from '../archive/manifest.js';
import type { StagedFile } from './restore-journal.js';
import { setOnHandle } from './no-follow.js';
import { faultPoint } from '../util/fault.js';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;

/** Where a block goes: a temp, at a byte of it. */
interface Sink {
  temp: string;
  /** File index of the sink's first block. */
  first: number;
  count: number;
  /** A run of a delta restore: written into dest at its offset; absent: the whole file. */
  range?: { offset: number; size: number };
}

export class BlockAssembly {
  readonly total: number;
  /** Blocks still to be written; 0 when the file is whole. */
  remaining = 0;
  private readonly needed: boolean[];
  private readonly sinks: Sink[] = [];
  private readonly handles = new Map<string, FileHandle>();

  private constructor(
    readonly m: ManifestMember,
    readonly dest: string,
    readonly blockSize: number,
    readonly blocks: BlockList,
    needed: boolean[] | undefined,
  ) {
    this.total = blocks.length;
    this.needed = needed ?? Array.from({ length: this.total }, () => true);
    this.remaining = this.needed.filter(Boolean).length;
  }

  /** `needed`: which blocks to write (a delta restore's differing ones); absent: all of them. */
  static async create(m: ManifestMember, dest: string, blockSize: number, kind: BlockDigestKind, needed: boolean[] | undefined): Promise<BlockAssembly> {
    return new BlockAssembly(m, dest, blockSize, await BlockList.parse(m.blocks!, blockCount(m.size, blockSize), m.name, kind), needed);
  }

  /** The whole file goes into one temp (made now, at its full size, holes filled block by block). */
  async wholeInto(temp: string): Promise<void> {
    const fh = await open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    this.handles.set(temp, fh);
    await fh.truncate(this.m.size);
    this.sinks.push({ temp, first: 0, count: this.total });
  }

  /** Runs of consecutive needed blocks, each to be staged in a temp of its own (`tempFor` journals its name). */
  runs(): Array<{ first: number; count: number }> {
    const runs: Array<{ first: number; count: number }> = [];
    this.needed.forEach((n, i) => {
      if (!n) return;
      const last = runs.at(-1);
      if (last && last.first + last.count === i) last.count++;
      else runs.push({ first: i, count: 1 });
    });
    return runs;
  }

  async rangesInto(temps: string[]): Promise<void> {
    const runs = this.runs();
    for (const [k, run] of runs.entries()) {
      const temp = temps[k]!;
      this.handles.set(temp, await open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600));
      const size = Array.from({ length: run.count }, (_, j) => blockLength(run.first + j, this.m.size, this.blockSize)).reduce((a, b) => a + b, 0);
      this.sinks.push({ temp, ...run, range: { offset: (this.m.fileOffset ?? 0) + run.first * this.blockSize, size } });
    }
  }

  /** File indices of the blocks of this member's own body, in body order. */
  ownIndices(): number[] {
    if (!this.m.parts) return Array.from({ length: this.total }, (_, i) => i);
    const out: number[] = [];
    let first = 0;
    for (const run of this.m.parts) {
      if (!run.backup) for (let k = 0; k < run.count; k++) out.push(first + k);
      first += run.count;
    }
    return out;
  }

  /** For each other backup of the chain: which of its body's blocks (by index there) land on which file block. */
  remoteNeeds(): Map<string, Map<number, number>> {
    const out = new Map<string, Map<number, number>>();
    let first = 0;
    for (const run of this.m.parts ?? []) {
      if (run.backup) {
        for (let k = 0; k < run.count; k++) {
          if (!this.needed[first + k]) continue;
          let map = out.get(run.backup);
          if (!map) out.set(run.backup, (map = new Map()));
          map.set(run.at + k, first + k);
        }
      }
      first += run.count;
    }
    return out;
  }

  isNeeded(i: number): boolean {
    return this.needed[i] === true;
  }

  /** Writes block i after checking it against its recorded digest; false when it does not match. */
  async write(i: number, data: Buffer): Promise<boolean> {
    if (!this.needed[i]) return true;
    if (data.length !== blockLength(i, this.m.size, this.blockSize) || !this.blocks.matches(i, data)) return false;
    faultPoint('stage-block');
    const sink = this.sinks.find((s) => i >= s.first && i < s.first + s.count)!;
    const fh = await this.handleOf(sink.temp);
    for (let off = 0; off < data.length; ) {
      const { bytesWritten } = await fh.write(data, off, data.length - off, (i - sink.first) * this.blockSize + off);
      off += bytesWritten;
    }
    this.needed[i] = false;
    this.remaining--;
    return true;
  }

  /** Temps are closed between passes over the chain's streams; reopened, never created again. */
  async closeHandles(): Promise<void> {
    for (const fh of this.handles.values()) await fh.close();
    this.handles.clear();
  }

  /** Once whole: attributes on the whole-file temp, handles closed; what the swap must place. */
  async finish(attrs: FileAttributes & { mtimeMs?: number }, sideFiles: string[]): Promise<StagedFile[]> {
    const wholeSink = this.sinks.find((s) => !s.range);
    if (wholeSink) {
      const fh = await this.handleOf(wholeSink.temp);
      await setOnHandle(fh, attrs);
      if (attrs.mtimeMs !== undefined) await fh.utimes(new Date(), new Date(attrs.mtimeMs));
    }
    await this.closeHandles();
    // A chunk that is a byte range of its file or device is written back at its offset, whole or in runs.
    const whole = (s: Sink): StagedFile => (this.m.fileOffset !== undefined ? { temp: s.temp, dest: this.dest, sideFiles: [], range: { offset: this.m.fileOffset, size: this.m.size } } : { temp: s.temp, dest: this.dest, sideFiles });
    return this.sinks.map((s) => (s.range ? { temp: s.temp, dest: this.dest, sideFiles: [], range: s.range } : whole(s)));
  }

  private async handleOf(temp: string): Promise<FileHandle> {
    let fh = this.handles.get(temp);
    if (!fh) this.handles.set(temp, (fh = await open(temp, O_WRONLY | O_NOFOLLOW)));
    return fh;
  }
}

/**
 * Which blocks of `dest` differ from the member's recorded ones, read from disk: undefined when dest
 * is not a regular file of the member's size (the whole file is then restored), every entry false
 * when it is identical. A chunk that is a byte range is compared over its range only.
 */
export async function differingBlocks(dest: string, m: ManifestMember, blockSize: number, kind: BlockDigestKind, signal: AbortSignal): Promise<boolean[] | undefined> {
  const st = await lstat(dest).catch(() => undefined);
  if (!st || !(st.isFile() || st.isBlockDevice())) return undefined;
  if (m.fileOffset === undefined && st.size !== m.size) return undefined;
  if (m.fileOffset !== undefined && st.isFile() && st.size < m.fileOffset + m.size) return undefined;
  const list = await BlockList.parse(m.blocks!, blockCount(m.size, blockSize), m.name, kind);
  const hasher = await BlockHasher.create(blockSize, kind);
  let read = 0;
  for await (const b of readFileChunks(dest, signal, m.fileOffset ?? 0, m.size)) {
    hasher.update(b);
    read += b.length;
  }
  if (read !== m.size) return undefined;
  return hasher.finish().map((d, i) => !d.equals(list.digest(i)));
}

/** The blocks of a body as they come, numbered (the last one may be short). */
export async function* numberedBlocks(body: AsyncIterable<Buffer>, blockSize: number): AsyncGenerator<[number, Buffer]> {
  let j = 0;
  for await (const b of inBlocks(body, blockSize)) yield [j++, b];
}

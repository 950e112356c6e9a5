/**
 * Block digests: the sha256 of every fixed-size block of a member, recorded in the manifest beside the
 * member's own digest. An incremental backup compares them with its parent's to store only the blocks
 * that changed, a restore of one checks every block it assembles against them, and `restore --delta`
 * compares them with the blocks on disk to write only what differs.
 */
import { createHash, type Hash } from 'node:crypto';

/** The default block size: 1 MiB (what pgBackRest's block incremental and most snapshot tools use for data files). */
export const defaultBlockSize = 1 << 20;
const digestBytes = 32;

/** How many blocks a member of `size` bytes has (an empty file has none). */
export function blockCount(size: number, blockSize: number): number {
  return Math.ceil(size / blockSize);
}

/** The bytes of block `i` of a member of `size` bytes: blockSize, or what is left for the last one. */
export function blockLength(i: number, size: number, blockSize: number): number {
  return Math.min(blockSize, size - i * blockSize);
}

/** Digests as stored in the manifest: one base64 string of the 32-byte digests one after another. */
export function encodeBlocks(digests: Buffer[]): string {
  return Buffer.concat(digests).toString('base64');
}

export class BlockList {
  private constructor(private readonly raw: Buffer) {}

  static parse(encoded: string, expected: number, what: string): BlockList {
    const raw = Buffer.from(encoded, 'base64');
    if (raw.length !== expected * digestBytes) throw new Error(`${what}: the manifest lists ${raw.length / digestBytes} block digests, but its size makes ${expected} blocks`);
    return new BlockList(raw);
  }

  get length(): number {
    return this.raw.length / digestBytes;
  }

  digest(i: number): Buffer {
    return this.raw.subarray(i * digestBytes, (i + 1) * digestBytes);
  }

  matches(i: number, data: Buffer): boolean {
    return createHash('sha256').update(data).digest().equals(this.digest(i));
  }
}

/**
 * Hashes bytes that pass through, block by block, however the source cuts its pieces: a tap for the
 * stream, which reads every byte once for the member's digest and the blocks' together.
 */
export class BlockHasher {
  readonly digests: Buffer[] = [];
  private hash: Hash | undefined;
  private inBlock = 0;

  constructor(readonly blockSize: number) {}

  update(b: Buffer): void {
    for (let at = 0; at < b.length; ) {
      this.hash ??= createHash('sha256');
      const n = Math.min(b.length - at, this.blockSize - this.inBlock);
      this.hash.update(at === 0 && n === b.length ? b : b.subarray(at, at + n));
      at += n;
      this.inBlock += n;
      if (this.inBlock === this.blockSize) this.endBlock();
    }
  }

  /** The digests of every block, the last (short) one included. */
  finish(): Buffer[] {
    if (this.inBlock > 0) this.endBlock();
    return this.digests;
  }

  private endBlock(): void {
    this.digests.push(this.hash!.digest());
    this.hash = undefined;
    this.inBlock = 0;
  }
}

/** Passes a source through unchanged, feeding every byte to `hasher`. */
export async function* hashingBlocks(source: AsyncIterable<Buffer>, hasher: BlockHasher): AsyncGenerator<Buffer> {
  for await (const b of source) {
    hasher.update(b);
    yield b;
  }
}

/**
 * Cuts a source into whole blocks (the last one may be short), copying only where a block spans two
 * pieces. A block handed out is the caller's until it asks for the next one.
 */
export async function* inBlocks(source: AsyncIterable<Buffer>, blockSize: number): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const piece of source) {
    let b = piece;
    while (b.length > 0) {
      if (pendingBytes === 0 && b.length >= blockSize) {
        yield b.subarray(0, blockSize);
        b = b.subarray(blockSize);
        continue;
      }
      const n = Math.min(b.length, blockSize - pendingBytes);
      pending.push(Buffer.from(b.subarray(0, n)));
      pendingBytes += n;
      b = b.subarray(n);
      if (pendingBytes === blockSize) {
        yield Buffer.concat(pending, pendingBytes);
        pending = [];
        pendingBytes = 0;
      }
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending, pendingBytes);
}

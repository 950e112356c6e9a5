/** Moves one member's bytes from a source to a sink, hashing them on the way: every byte read once. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { throwIfAborted } from '../errors.js';
import { FileSink } from './file-sink.js';

export const readChunkBytes = 4 << 20;

export interface Digested {
  size: number;
  sha256: string;
}

/**
 * Reads a file in 4 MiB chunks (Node's 64 KiB default costs a third of the throughput here; 4 MiB beat
 * 1 MiB by ~10 % in bench/backup-vs-pgbackrest). The file is opened on the first read and closed when
 * the reader stops: a source that is never read holds no descriptor and no listener on the signal
 * (one per unread member used to pile up until node warned of a listener leak).
 */
export async function* readFileChunks(file: string, signal?: AbortSignal, start?: number, length?: number): AsyncGenerator<Buffer> {
  const stream = createReadStream(file, {
    highWaterMark: readChunkBytes,
    ...(signal ? { signal } : {}),
    ...(start !== undefined ? { start } : {}),
    ...(start !== undefined && length !== undefined ? { end: start + length - 1 } : {}),
  });
  try {
    for await (const b of stream) yield b as Buffer;
  } finally {
    stream.destroy();
  }
}

/** How readFileReusing reads: chunk size, and how many reads it keeps in flight ahead of the caller. */
export interface RingOptions {
  start?: number;
  /** Bytes to read from start; to the end of the file when absent. */
  length?: number;
  chunkBytes?: number;
  ahead?: number;
}

/**
 * Reads a file into a ring of buffers used again and again, `ahead` reads in flight before the caller
 * (default: 4 MiB chunks, two ahead — the size restore's fault points count). Fresh memory for every
 * chunk (what readFileChunks and fs streams allocate) costs a page fault per 4 KiB on first touch: on
 * this kind of virtual machine that made reading a stream ~5 × slower than `cat`
 * (bench/backup-vs-pgbackrest's restore round). The price is a contract: a chunk yielded here is
 * overwritten when the caller asks for the second chunk after it, so the caller must be done with it
 * by then — hash it, and write it with at most one write in flight (restore's staging and FileSink
 * do) — and never keep a piece of it. Opened on the first read, closed when the reader stops; no
 * listener is added to the signal.
 */
export async function* readFileReusing(file: string, signal?: AbortSignal, o: RingOptions = {}): AsyncGenerator<Buffer> {
  const chunkBytes = o.chunkBytes ?? readChunkBytes;
  const ahead = o.ahead ?? 2;
  // The chunks in flight, the one the caller holds, and the one its write may still be using.
  const ringBuffers = ahead + 2;
  const fh = await open(file, 'r');
  const ring = Array.from({ length: ringBuffers }, () => Buffer.allocUnsafeSlow(chunkBytes));
  const reads: Array<Promise<{ b: Buffer; short: boolean }>> = [];
  const end = o.length !== undefined ? (o.start ?? 0) + o.length : Infinity;
  let next = 0;
  let at = o.start ?? 0;
  const issue = () => {
    if (at >= end) return;
    const buf = ring[next++ % ringBuffers]!;
    const pos = at;
    const want = Math.min(chunkBytes, end - at);
    at += want;
    const read = fh.read(buf, 0, want, pos).then((r) => ({ b: buf.subarray(0, r.bytesRead), short: r.bytesRead < want }));
    read.catch(() => undefined); // surfaces when its turn comes
    reads.push(read);
  };
  try {
    for (let i = 0; i < ahead; i++) issue();
    while (reads.length > 0) {
      const { b, short } = await reads.shift()!;
      if (signal?.aborted) throwIfAborted(signal, { path: file });
      if (b.length === 0) return;
      // Into the buffer of the chunk before b: the caller has asked for b, so it is done with that one.
      issue();
      yield b;
      // A short read is the end of the file (or of what it holds of the range): the caller judges the size.
      if (short) return;
    }
  } finally {
    // Reads still in flight must end before their descriptor is closed.
    await Promise.allSettled(reads);
    await fh.close();
  }
}

/**
 * Copies exactly `expectedSize` bytes. More or fewer means the source changed under us (the snapshot
 * was not frozen), which is an error, never a silently different archive. With `expectedSize`
 * undefined any size is taken and the caller judges it (restore compares size and digest together).
 */
export async function copyWithDigest(
  source: AsyncIterable<Buffer>,
  write: (buf: Buffer) => Promise<void> | void,
  expectedSize: number | undefined,
  signal: AbortSignal,
  what: string,
): Promise<Digested> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const buf of source) {
    throwIfAborted(signal, { path: what });
    size += buf.length;
    if (expectedSize !== undefined && size > expectedSize) throw new Error(`${what} grew while it was read (expected ${expectedSize} bytes): the copy was not frozen`);
    hash.update(buf);
    await write(buf);
  }
  if (expectedSize !== undefined && size !== expectedSize) throw new Error(`${what} has ${size} bytes, expected ${expectedSize}: it changed while it was read`);
  return { size, sha256: hash.digest('hex') };
}

/** Hashes a stream without writing it anywhere (verify). */
export async function digestOf(source: AsyncIterable<Buffer>, signal?: AbortSignal): Promise<Digested> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const buf of source) {
    throwIfAborted(signal);
    size += buf.length;
    hash.update(buf);
  }
  return { size, sha256: hash.digest('hex') };
}

/** sha256 and size of a file. */
export function digestFile(file: string, signal?: AbortSignal): Promise<Digested> {
  return digestOf(readFileChunks(file, signal), signal);
}

/** Copies a file into a new one (never over an existing one), hashing on the way, and fsyncs the copy. */
export async function copyFileWithDigest(from: string, to: string, signal?: AbortSignal): Promise<Digested> {
  const sink = new FileSink(to);
  try {
    const d = await copyWithDigest(readFileChunks(from, signal), (b) => sink.write(b), undefined, signal ?? new AbortController().signal, from);
    await sink.close();
    return d;
  } catch (err) {
    sink.destroy();
    throw err;
  }
}

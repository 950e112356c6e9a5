/**
 * Data that looks like what ebr backs up, made deterministically and fast, in chunks (never whole):
 * three of every four 8 KiB pages are like PostgreSQL heap pages (a header, line pointers, tuples of
 * integers and short repeated words packed at the end, zeros between), the fourth is random bytes (what
 * TOAST-compressed or already-compressed columns look like). It compresses about 2.7× with zstd.
 */
import { createCipheriv } from 'node:crypto';

const pageBytes = 8192;
const words = ['customer', 'order', 'shipped', 'pending', 'invoice', 'Berlin', 'Lisbon', 'widget', 'gadget', 'paid', 'refund', 'express', 'standard', 'note:', 'ok'].map((w) => Buffer.from(w));

/** xorshift32: the same numbers for the same seed, on every machine. */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

function heapPage(r: () => number, b: Buffer, off: number, row: number): number {
  b.fill(0, off, off + pageBytes);
  b.writeUInt32LE(r(), off);
  b.writeUInt32LE(1, off + 4);
  let upper = pageBytes;
  let i = 0;
  for (; ; i++) {
    const w1 = words[r() % words.length]!;
    const w2 = words[r() % words.length]!;
    const len = 36 + w1.length + 1 + w2.length;
    const at = (upper - len) & ~7;
    if (at < 24 + 4 * (i + 1) + 512) break;
    upper = at;
    const t = off + upper;
    b.writeUInt32LE(1000 + (r() % 50), t);
    b.writeUInt16LE(i + 1, t + 18);
    b[t + 22] = 24;
    b.writeUInt32LE(row + i, t + 24);
    b.writeUInt32LE(r() % 100_000, t + 28);
    b.writeUInt32LE(1_700_000_000 + (r() % 1_000_000), t + 32);
    w1.copy(b, t + 36);
    b[t + 36 + w1.length] = 0x20;
    w2.copy(b, t + 37 + w1.length);
    b.writeUInt32LE((upper & 0x7fff) | (1 << 15) | (len << 17), off + 24 + 4 * i);
  }
  b.writeUInt16LE(24 + 4 * i, off + 12);
  b.writeUInt16LE(upper, off + 14);
  return i;
}

/** `total` bytes of sample data in chunks of `chunkBytes` (a multiple of 8 KiB); the same bytes for the same seed. */
export function* sampleData(total: number, chunkBytes = 1 << 20, seed = 42): Generator<Buffer> {
  const r = prng(seed);
  // The random pages: an AES-CTR keystream, fast and the same on every run.
  const stream = createCipheriv('aes-256-ctr', Buffer.alloc(32, seed & 0xff), Buffer.alloc(16));
  const zeros = Buffer.alloc(pageBytes);
  let row = 0;
  let page = 0;
  for (let done = 0; done < total; done += chunkBytes) {
    const b = Buffer.allocUnsafe(Math.min(chunkBytes, total - done));
    let off = 0;
    for (; off + pageBytes <= b.length; off += pageBytes, page++) {
      if (page % 4 === 3) stream.update(zeros).copy(b, off);
      else row += heapPage(r, b, off, row);
    }
    if (off < b.length) stream.update(zeros.subarray(0, b.length - off)).copy(b, off);
    yield b;
  }
}

/** Incompressible bytes, deterministic: for tests where the stored size must follow the original. */
export function* randomData(total: number, chunkBytes = 1 << 20, seed = 7): Generator<Buffer> {
  const stream = createCipheriv('aes-256-ctr', Buffer.alloc(32, seed & 0xff), Buffer.alloc(16));
  const zeros = Buffer.alloc(chunkBytes);
  for (let done = 0; done < total; done += chunkBytes) yield stream.update(zeros.subarray(0, Math.min(chunkBytes, total - done)));
}

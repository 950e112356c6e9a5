/**
 * Bytes that arrive in chunks of any size (one byte, or megabytes) and leave in the pieces a format
 * needs: an encrypted frame, an lz4 frame. One contiguous buffer, compacted or grown as needed, so a
 * peek is O(1) however the bytes arrived; it holds at most one piece plus one chunk.
 */
export class ByteQueue {
  private buf = Buffer.alloc(0);
  private start = 0;
  private end = 0;

  get length(): number {
    return this.end - this.start;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.end + chunk.length > this.buf.length) {
      const live = this.length;
      // Compact only when the consumed space at the front is at least what moves, so each byte is
      // moved a bounded number of times; grow otherwise.
      if (live + chunk.length <= this.buf.length && this.start >= live) {
        this.buf.copy(this.buf, 0, this.start, this.end);
      } else {
        const bigger = Buffer.allocUnsafe(Math.max(live + chunk.length, 2 * this.buf.length));
        this.buf.copy(bigger, 0, this.start, this.end);
        this.buf = bigger;
      }
      this.start = 0;
      this.end = live;
    }
    chunk.copy(this.buf, this.end);
    this.end += chunk.length;
  }

  /** The byte `at` bytes from the front. */
  byte(at: number): number {
    return this.buf[this.start + at]!;
  }

  uint32LE(at: number): number {
    return this.buf.readUInt32LE(this.start + at);
  }

  /** The first `n` bytes, as a buffer of their own (the queue reuses its memory). */
  shift(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    this.buf.copy(out, 0, this.start, this.start + n);
    this.start += n;
    if (this.start === this.end) this.start = this.end = 0;
    return out;
  }
}

/**
 * Reads the next few small chunk files of a space while the current one is written, so the latency of
 * opening and reading each file overlaps with the archive's writes. A data directory holds thousands of
 * small files (catalogs, visibility maps); read one after another they cost more than their bytes.
 * Memory stays bounded: at most `depth` files of at most `maxBytes` each are held.
 */
import { readFile } from 'node:fs/promises';

export interface PrefetchItem {
  key: string;
  path: string;
  size: number;
}

export class SmallFilePrefetch {
  private readonly pending = new Map<string, Promise<Buffer>>();
  private next = 0;

  /**
   * `signal` stops reads in flight when the stream is stopped (fs.readFile checks it between reads and
   * adds no listener to it, so hundreds of reads on one signal leave nothing behind).
   */
  constructor(
    private readonly items: PrefetchItem[],
    private readonly depth = 8,
    private readonly maxBytes = 4 << 20,
    private readonly signal?: AbortSignal,
  ) {}

  /** The whole file if it is small (read ahead), else undefined: the caller streams it. */
  take(key: string): Promise<Buffer> | undefined {
    const p = this.pending.get(key);
    this.pending.delete(key);
    this.fill();
    return p;
  }

  /** Starts reads until `depth` small files are in flight or waiting. */
  fill(): void {
    while (this.pending.size < this.depth && this.next < this.items.length) {
      const item = this.items[this.next++]!;
      if (item.size > this.maxBytes) continue;
      const read = readFile(item.path, this.signal ? { signal: this.signal } : {});
      // Failures surface when the caller takes the file; until then they must not count as unhandled.
      read.catch(() => undefined);
      this.pending.set(item.key, read);
    }
  }
}

/** What long work reports as it goes; the CLI turns it into a progress bar on a terminal. */
export interface Progress {
  /** resync: a split mirror catching up after the backup (bytes of log replayed of those written meanwhile). */
  phase: 'stream' | 'verify' | 'restore' | 'resync';
  bytesDone: number;
  bytesTotal: number;
  space?: string;
}

export type ProgressListener = (p: Progress) => void;

/** Adds bytes to a running total and reports at most every 100 ms, plus once at the end. */
export function progressMeter(phase: Progress['phase'], bytesTotal: number, listener: ProgressListener | undefined) {
  let bytesDone = 0;
  let last = 0;
  return {
    add(n: number, space?: string) {
      bytesDone += n;
      const t = Date.now();
      if (listener && t - last >= 100) {
        last = t;
        listener({ phase, bytesDone, bytesTotal, ...(space ? { space } : {}) });
      }
    },
    done() {
      listener?.({ phase, bytesDone, bytesTotal });
    },
    get bytesDone() {
      return bytesDone;
    },
  };
}

/** Passes a byte stream through, telling `add` how many bytes went by. */
export async function* countedBytes(source: AsyncIterable<Buffer>, add: (n: number) => void): AsyncGenerator<Buffer> {
  for await (const b of source) {
    add(b.length);
    yield b;
  }
}

/** An append-only file written through a large-buffered stream, fsynced on close; refuses to overwrite. */
import { createWriteStream, type WriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';

export class FileSink {
  readonly path: string;
  private readonly out: WriteStream;
  private failure: Error | undefined;
  /** Bytes handed to write so far: the offset of the next byte in the file. */
  position = 0;

  constructor(file: string) {
    this.path = file;
    // 'wx': an existing file is never overwritten. A deep buffer lets the disk write while the next chunk is read and hashed.
    this.out = createWriteStream(file, { flags: 'wx', mode: 0o640, highWaterMark: 8 << 20 });
    this.out.on('error', (err) => {
      this.failure = err;
    });
  }

  /** Resolves at once unless the buffer is full; then waits for it to drain. */
  async write(buf: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    this.position += buf.length;
    if (!this.out.write(buf)) {
      // events.once rejects if the stream emits 'error' meanwhile, and leaves no listener behind.
      await once(this.out, 'drain');
    }
  }

  async close(): Promise<void> {
    this.out.end();
    await finished(this.out);
    if (this.failure) throw this.failure;
    const fh = await open(this.path, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /** Closes without caring about errors; for abort paths. */
  destroy(): void {
    this.out.destroy();
  }
}

/** An append-only file written through a large-buffered stream, fsynced on close; refuses to overwrite. */
import { createWriteStream, type WriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { finished } from 'node:stream/promises';

/**
 * A write to an archive file failed (no space, an I/O error, the directory gone). It keeps the errno
 * fields of the original, so callers that look at `code` still can, and names the file it was for, so
 * the workflow can tell a full target from an unreadable source.
 */
export class TargetWriteError extends Error {
  readonly code: string | undefined;
  readonly path: string;
  readonly syscall: string | undefined;

  constructor(file: string, cause: unknown) {
    const e = cause as NodeJS.ErrnoException;
    super(e?.message ?? String(cause), { cause });
    this.name = 'TargetWriteError';
    this.code = e?.code;
    this.path = file;
    this.syscall = e?.syscall;
  }

  /** Wraps an error of a write to `file`; one already wrapped is returned as it is. */
  static of(file: string, err: unknown): TargetWriteError {
    return err instanceof TargetWriteError ? err : new TargetWriteError(file, err);
  }
}

export class FileSink {
  readonly path: string;
  private readonly out: WriteStream;
  private failure: TargetWriteError | undefined;
  /** Bytes handed to write so far: the offset of the next byte in the file. */
  position = 0;

  /** Bytes that reached the file so far (position minus what is still buffered). */
  get written(): number {
    return this.out.bytesWritten;
  }

  constructor(file: string) {
    this.path = file;
    // 'wx': an existing file is never overwritten. A deep buffer lets the disk write while the next chunk is read and hashed.
    this.out = createWriteStream(file, { flags: 'wx', mode: 0o640, highWaterMark: 8 << 20 });
    this.out.on('error', (err) => {
      this.failure ??= TargetWriteError.of(file, err);
    });
  }

  /** Resolves at once unless the buffer is full; then waits for it to drain. Rejects once the sink failed or was destroyed. */
  async write(buf: Buffer): Promise<void> {
    this.throwIfBroken();
    this.position += buf.length;
    if (!this.out.write(buf)) await this.drained();
  }

  async close(): Promise<void> {
    this.throwIfBroken();
    this.out.end();
    try {
      await finished(this.out);
    } catch (err) {
      throw this.failure ?? TargetWriteError.of(this.path, err);
    }
    if (this.failure) throw this.failure;
    try {
      const fh = await open(this.path, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (err) {
      throw TargetWriteError.of(this.path, err);
    }
  }

  /** Closes without caring about errors; for abort paths. A write waiting for the buffer to drain rejects. */
  destroy(): void {
    this.out.destroy();
  }

  private throwIfBroken(): void {
    const broken = this.broken();
    if (broken) throw broken;
  }

  /**
   * Why the sink can take no more, if it cannot. A failed write destroys the stream at once but emits
   * 'error' a tick later: in between, `errored` already holds the cause (ENOSPC, EIO), and that is what
   * must be told, not the closed stream it left.
   */
  private broken(): TargetWriteError | undefined {
    if (this.failure) return this.failure;
    if (this.out.errored) return (this.failure = TargetWriteError.of(this.path, this.out.errored));
    if (this.out.destroyed) return new TargetWriteError(this.path, Object.assign(new Error(`${this.path} was closed while it was written`), { code: 'ERR_STREAM_DESTROYED' }));
    return undefined;
  }

  /**
   * Waits for 'drain', or for the end of the stream: a stream that fails or is destroyed never drains,
   * and a write waiting on it would hang for good (with the reader's file still open). Every listener
   * is removed again whichever comes first.
   */
  private drained(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = (err?: unknown) => {
        this.out.off('drain', onDrain);
        this.out.off('error', onError);
        this.out.off('close', onClose);
        if (err === undefined) resolve();
        else reject(err);
      };
      const onDrain = () => done();
      const onError = (err: Error) => done(this.failure ?? TargetWriteError.of(this.path, err));
      const onClose = () => done(this.broken());
      this.out.on('drain', onDrain);
      this.out.on('error', onError);
      this.out.on('close', onClose);
    });
  }
}

/** An append-only archive file, written while the next bytes are read, fsynced on close; refuses to overwrite. */
import { open, type FileHandle } from 'node:fs/promises';
import type { ByteSink } from './byte-sink.js';

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

/** Bytes written between two background flushes (see FileSink). */
export const flushEveryBytes = 32 << 20;

/**
 * An archive file written by positioned writes, one in flight, and fsynced on close. Dirty pages are
 * handed to the disk every 32 MiB by an fdatasync in the background, one at a time: left to the end,
 * the whole file's writeback came after the last read (GNU tar + sync pays the same), while started
 * early it overlaps the reading and hashing of what comes next — bench/backup-vs-pgbackrest's stream
 * phase fell by about a third with it on this kind of disk.
 *
 * A buffer handed to write() is the sink's until the next write() resolves (or close()): the caller
 * may then fill it again. That lets readers reuse a ring of buffers instead of fresh memory per chunk.
 */
export class FileSink implements ByteSink {
  readonly path: string;
  readonly releasesOnNextWrite = true;
  private readonly opened: Promise<FileHandle>;
  private inFlight: Promise<void> | undefined;
  private flushing: Promise<void> | undefined;
  private flushedAt = 0;
  private failure: TargetWriteError | undefined;
  private destroyed = false;
  /** Bytes handed to write so far: the offset of the next byte in the file. */
  position = 0;
  /** Bytes that reached the file so far (position minus the write in flight). */
  written = 0;

  constructor(file: string) {
    this.path = file;
    // 'wx': an existing file is never overwritten.
    this.opened = open(file, 'wx', 0o640);
    this.opened.catch((err: unknown) => this.fail(err));
  }

  /** Resolves once the previous write has landed and this one is under way. Rejects once the sink failed or was destroyed. */
  async write(buf: Buffer): Promise<void> {
    await this.settle();
    const fh = await this.handle();
    const at = this.position;
    this.position += buf.length;
    this.inFlight = writeAll(fh, buf, at).then(
      () => {
        this.written += buf.length;
      },
      (err: unknown) => this.fail(err),
    );
    if (!this.flushing && this.position - this.flushedAt >= flushEveryBytes) {
      this.flushedAt = this.position;
      const landed = this.inFlight;
      this.flushing = landed
        .then(() => (this.failure || this.destroyed ? undefined : fh.datasync()))
        .catch((err: unknown) => this.fail(err))
        .finally(() => {
          this.flushing = undefined;
        });
    }
  }

  async close(): Promise<void> {
    await this.settle();
    await this.flushing;
    const fh = await this.handle();
    try {
      await fh.sync();
    } catch (err) {
      this.fail(err);
    }
    await fh.close().catch((err: unknown) => this.fail(err));
    this.destroyed = true;
    if (this.failure) throw this.failure;
  }

  /** Closes without caring about errors; for abort paths. A later write rejects. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    const pending = [this.inFlight, this.flushing];
    void this.opened.then(
      async (fh) => {
        await Promise.allSettled(pending);
        await fh.close().catch(() => undefined);
      },
      () => undefined,
    );
  }

  /** Waits for the write in flight; throws what broke the sink, if anything did. */
  private async settle(): Promise<void> {
    this.throwIfBroken();
    await this.inFlight;
    this.inFlight = undefined;
    this.throwIfBroken();
  }

  private async handle(): Promise<FileHandle> {
    try {
      return await this.opened;
    } catch {
      throw this.failure!;
    }
  }

  private fail(err: unknown): void {
    this.failure ??= TargetWriteError.of(this.path, err);
  }

  private throwIfBroken(): void {
    if (this.failure) throw this.failure;
    if (this.destroyed) throw new TargetWriteError(this.path, Object.assign(new Error(`${this.path} was closed while it was written`), { code: 'ERR_STREAM_DESTROYED' }));
  }
}

/** pwrite until every byte of buf is at `at` (a short write is rare on a file, but legal). */
async function writeAll(fh: FileHandle, buf: Buffer, at: number): Promise<void> {
  for (let off = 0; off < buf.length; ) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off, at + off);
    off += bytesWritten;
  }
}

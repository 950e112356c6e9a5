/**
 * Where a stream of archive bytes goes: a file on disk, an object being uploaded, a tape file. The tar
 * writer and the codecs (compression, encryption) write through this and know nothing of the medium.
 */
import { createHash } from 'node:crypto';

export interface ByteSink {
  /** Resolves once the sink can take more (back-pressure); rejects once it failed or was destroyed. */
  write(buf: Buffer): Promise<void>;
  /** Bytes handed to write so far: the offset of the next byte in this stream. */
  readonly position: number;
  /** Bytes that reached the medium so far (not those still buffered). */
  readonly written: number;
  /** Flushes and makes the stream durable (fsync, upload completed, file mark written). */
  close(): Promise<void>;
  /** Gives up without caring about errors; for abort paths. A write waiting on the sink rejects. */
  destroy(): void;
  /** True when the sink is done with a buffer once the next write() resolves: the caller may then fill it again. */
  readonly releasesOnNextWrite?: boolean;
}

/** A sink that passes bytes on to `out` and keeps the sha256 and count of what it passed: the stored bytes' digest. */
export function digestingSink(out: ByteSink): ByteSink & { sha256(): string } {
  const hash = createHash('sha256');
  let position = 0;
  return {
    async write(buf) {
      hash.update(buf);
      position += buf.length;
      await out.write(buf);
    },
    get position() {
      return position;
    },
    get written() {
      return out.written;
    },
    close: () => out.close(),
    destroy: () => out.destroy(),
    ...(out.releasesOnNextWrite ? { releasesOnNextWrite: true } : {}),
    sha256: () => hash.copy().digest('hex'),
  };
}

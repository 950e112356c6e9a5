/**
 * One step of an encoding pipeline (compress, encrypt), each handing its output to the next; the last
 * hands it to the medium's ByteSink. Every write resolves only once the next step took the output, so
 * the medium's back-pressure reaches the writer and no step holds more than one block or frame.
 *
 * Buffers: a step may not keep a buffer it was given once its write resolved (the writer may reuse
 * it), and never reuses a buffer it handed on (the medium may still be holding it).
 */
import type { ByteSink } from '../byte-sink.js';

export interface Stage {
  /** Takes `buf`; resolves once its output (if any) was taken by the next step. */
  write(buf: Buffer): Promise<void>;
  /** Flushes what it holds and ends its format (a final frame, an end mark); the sink is not closed. */
  end(): Promise<void>;
}

/** The last step: writes to the medium. */
export function sinkStage(out: ByteSink): Stage {
  return {
    write: (buf) => out.write(buf),
    end: async () => {},
  };
}

/**
 * A step that cuts its input into blocks of `blockBytes` and hands each, compressed on its own by
 * `compress`, to `next`: for formats whose concatenated members are one valid stream (gzip members,
 * lz4 frames) and whose window is small enough (32 KiB, 64 KiB) that independent blocks lose nothing.
 * An empty stream still gets one (empty) block, so a stored stream is never zero bytes.
 */
export function blockStage(next: Stage, blockBytes: number, compress: (block: Buffer) => Promise<Buffer>): Stage {
  const block = Buffer.allocUnsafe(blockBytes);
  let fill = 0;
  let blocks = 0;
  const emit = async (data: Buffer) => {
    blocks++;
    await next.write(await compress(data));
  };
  return {
    async write(buf) {
      let at = 0;
      while (at < buf.length) {
        if (fill === 0 && buf.length - at >= blockBytes) {
          // A whole block in the caller's buffer: compressed from there, no copy (done before write resolves).
          await emit(buf.subarray(at, at + blockBytes));
          at += blockBytes;
          continue;
        }
        const n = buf.copy(block, fill, at, Math.min(buf.length, at + blockBytes - fill));
        fill += n;
        at += n;
        if (fill === blockBytes) {
          await emit(block);
          fill = 0;
        }
      }
    },
    async end() {
      if (fill > 0 || blocks === 0) await emit(block.subarray(0, fill));
      fill = 0;
      await next.end();
    },
  };
}

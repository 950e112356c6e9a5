/** Sinks and sources for the codec tests: real bytes in, real bytes out, no library mocked. */
import type { ByteSink } from '../../src/archive/byte-sink.js';
import type { Codec } from '../../src/archive/codec.js';
import type { CodecInstance } from '../../src/archive/codec/index.js';

export const compressionTypes = ['zstd', 'lz4', 'gzip', 'none'] as const;
export type CompressionType = (typeof compressionTypes)[number];

/** A fixed user key for the tests, as the config would give it (hex). */
export const testKeyHex = '5f'.repeat(8) + '0123456789abcdef'.repeat(3);

export function instanceWith(type: CompressionType, encrypt: boolean, key = testKeyHex): CodecInstance {
  return { name: 'shop', compression: { type }, ...(encrypt ? { encryption: { key } } : {}) };
}

/** A sink that keeps every buffer it is given; `stored()` is the whole stream. */
export function collectingSink(): ByteSink & { stored(): Buffer; closed: boolean; destroyed: boolean } {
  const parts: Buffer[] = [];
  let position = 0;
  return {
    closed: false,
    destroyed: false,
    async write(buf) {
      parts.push(buf);
      position += buf.length;
    },
    get position() {
      return position;
    },
    get written() {
      return position;
    },
    async close() {
      this.closed = true;
    },
    destroy() {
      this.destroyed = true;
    },
    stored: () => Buffer.concat(parts),
  };
}

/** `data` in chunks of `size` bytes (the last shorter), as a medium would hand them out. */
export async function* chunked(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, Math.min(data.length, at + size));
}

export async function collect(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of source) parts.push(b);
  return Buffer.concat(parts);
}

/** Writes `data` through `codec.wrapSink` in pieces of `writeBytes`; the stored bytes. */
export async function encode(codec: Codec, data: Buffer, writeBytes = 64 << 10): Promise<Buffer> {
  const out = collectingSink();
  const w = codec.wrapSink(out);
  for (let at = 0; at < data.length; at += writeBytes) await w.write(data.subarray(at, Math.min(data.length, at + writeBytes)));
  await w.close();
  return out.stored();
}

/** The error `p` rejects with (failing the test when it resolves). */
export async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; hint?: string; context?: Record<string, unknown> }> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection, got none');
}

/**
 * A sink that hands what it is given to a reader, one buffer at a time: write resolves once the reader
 * took the buffer. Encoding into it while decoding from `source` streams without holding the stream.
 */
export function pipeSink(): { sink: ByteSink; source: AsyncGenerator<Buffer> } {
  let position = 0;
  let waiting: { buf: Buffer | undefined; taken: () => void } | undefined;
  let ready: ((v: { buf: Buffer | undefined; taken: () => void }) => void) | undefined;
  const offer = (buf: Buffer | undefined) =>
    new Promise<void>((taken) => {
      const item = { buf, taken };
      if (ready) {
        const r = ready;
        ready = undefined;
        r(item);
      } else waiting = item;
    });
  const next = () =>
    new Promise<{ buf: Buffer | undefined; taken: () => void }>((resolve) => {
      if (waiting) {
        const w = waiting;
        waiting = undefined;
        resolve(w);
      } else ready = resolve;
    });
  async function* source(): AsyncGenerator<Buffer> {
    for (;;) {
      const { buf, taken } = await next();
      taken();
      if (!buf) return;
      yield buf;
    }
  }
  return {
    sink: {
      async write(buf) {
        position += buf.length;
        await offer(buf);
      },
      get position() {
        return position;
      },
      get written() {
        return position;
      },
      close: () => offer(undefined),
      destroy: () => {},
    },
    source: source(),
  };
}

/**
 * A Codec from its parts: a compression (or none), then encryption (or none). Encoding compresses,
 * then encrypts; decoding decrypts, then decompresses. Every stream (each wrapSink, each encodeBuffer)
 * is whole by itself: its own frame(s), its own stream key, readable with `stored` and the user's key.
 */
import type { ByteSink } from '../byte-sink.js';
import type { Codec, StoredCodec } from '../codec.js';
import type { Compression } from './compression.js';
import { gcmDecryptFrames, gcmEncryptStage } from './gcm-frames.js';
import { sinkStage, type Stage } from './stage.js';

export interface CodecParts {
  stored: StoredCodec;
  compression: Compression | undefined;
  level: number | undefined;
  /** The data key (never in `stored`) and the frame size. */
  encryption: { dataKey: Buffer; frameBytes: number } | undefined;
}

export function streamCodec(parts: CodecParts): Codec {
  const { compression, level, encryption } = parts;

  function wrapSink(out: ByteSink): ByteSink {
    let head: Stage = sinkStage(out);
    if (encryption) head = gcmEncryptStage(head, encryption.dataKey, encryption.frameBytes);
    if (compression) head = compression.encoder(head, level);
    return codedSink(out, head);
  }

  function decode(source: AsyncIterable<Buffer>, label: string, signal?: AbortSignal): AsyncIterable<Buffer> {
    let s = source;
    if (encryption) s = gcmDecryptFrames(s, encryption.dataKey, encryption.frameBytes, label, signal);
    if (compression) s = compression.decode(s, label, signal);
    return s;
  }

  return {
    stored: parts.stored,
    wrapSink,
    decode,
    async encodeBuffer(data) {
      const parts: Buffer[] = [];
      const sink = wrapSink(collectingSink(parts));
      await sink.write(data);
      await sink.close();
      return Buffer.concat(parts);
    },
    async decodeBuffer(data, label) {
      const parts: Buffer[] = [];
      for await (const b of decode(oneChunk(data), label)) parts.push(b);
      return Buffer.concat(parts);
    },
  };
}

/**
 * The ByteSink the caller writes to: original bytes in, `position` counting them; each write resolves
 * once every step took its output, the medium's write included. Writes run one after another even if
 * a caller does not wait; after a failure or destroy every write rejects.
 */
function codedSink(out: ByteSink, head: Stage): ByteSink {
  let position = 0;
  let failure: { err: unknown } | undefined;
  let last: Promise<void> = Promise.resolve();
  const run = (step: () => Promise<void>): Promise<void> => {
    const p = last.then(async () => {
      if (failure) throw failure.err;
      try {
        await step();
      } catch (err) {
        failure ??= { err };
        throw err;
      }
    });
    last = p.catch(() => {});
    return p;
  };
  return {
    write(buf) {
      position += buf.length;
      return run(() => head.write(buf));
    },
    get position() {
      return position;
    },
    get written() {
      return out.written;
    },
    close: () =>
      run(async () => {
        await head.end();
        await out.close();
      }),
    destroy() {
      failure ??= { err: new Error('the coded sink was destroyed') };
      out.destroy();
    },
  };
}

async function* oneChunk(data: Buffer): AsyncGenerator<Buffer> {
  yield data;
}

function collectingSink(parts: Buffer[]): ByteSink {
  let position = 0;
  return {
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
    close: async () => {},
    destroy: () => {},
  };
}

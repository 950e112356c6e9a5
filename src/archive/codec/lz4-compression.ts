/**
 * lz4 through lz4-napi (lz4_flex, on libuv's thread pool): each 256 KiB block of the stream becomes one
 * standard LZ4 frame (with its content checksum), and the frames are simply concatenated, which the
 * `lz4` tool reads as one stream (`lz4 -dc`). lz4's window is 64 KiB, so independent blocks cost no
 * ratio. lz4-napi has no streaming API and one level.
 *
 * Why 256 KiB and not 1 MiB: the buffers lz4-napi returns are freed only when V8 collects them, and
 * V8 does not count them as memory it holds; with 1 MiB frames a 512 MiB stream left over 100 MiB of
 * them resident, with 256 KiB frames about a third of that (test/codec/memory.test.ts).
 *
 * Reading splits the stored bytes at frame boundaries (walking the frame's block sizes) and decodes
 * one frame at a time: lz4-napi's decompressFrame reads only the first frame of what it is given.
 */
import { createRequire } from 'node:module';
import type * as lz4 from 'lz4-napi';

// The native module loads the first time an lz4 stream is made.
let loaded: typeof lz4 | undefined;
const nativeLz4 = (): typeof lz4 => (loaded ??= createRequire(import.meta.url)('lz4-napi') as typeof lz4);
import { throwIfAborted } from '../../errors.js';
import { ByteQueue } from './byte-queue.js';
import type { Compression } from './compression.js';
import { damagedStream, reason } from './codec-errors.js';
import { blockStage, type Stage } from './stage.js';

const blockBytes = 256 << 10;
const frameMagic = 0x184d2204;
/** No frame ebr writes comes near this; a larger one is damage, and is refused before it is buffered. */
const maxFrameBytes = 16 << 20;

function encoder(next: Stage): Stage {
  return blockStage(next, blockBytes, (block) => nativeLz4().compressFrame(block, { contentChecksum: true }));
}

/**
 * The length of the LZ4 frame at the front of `q` once all of it is there; undefined while it is not.
 * Throws a message (no label) when the bytes cannot be an LZ4 frame.
 */
function frameLength(q: ByteQueue): number | undefined {
  if (q.length < 7) return undefined;
  if (q.uint32LE(0) !== frameMagic) throw new Error('no LZ4 frame starts here');
  const flg = q.byte(4);
  if (flg >> 6 !== 1) throw new Error(`LZ4 frame version ${flg >> 6} is not 1`);
  const blockChecksum = (flg & 0x10) !== 0;
  let at = 6 + (flg & 0x08 ? 8 : 0) + (flg & 0x01 ? 4 : 0) + 1;
  for (;;) {
    if (at > maxFrameBytes) throw new Error(`an LZ4 frame of more than ${maxFrameBytes} bytes`);
    if (q.length < at + 4) return undefined;
    const size = q.uint32LE(at) & 0x7fffffff;
    at += 4;
    if (size === 0) break;
    if (size > 4 << 20) throw new Error(`an LZ4 block of ${size} bytes`);
    at += size + (blockChecksum ? 4 : 0);
  }
  at += flg & 0x04 ? 4 : 0;
  return q.length >= at ? at : undefined;
}

async function* decode(source: AsyncIterable<Buffer>, label: string, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const q = new ByteQueue();
  /** Bytes of the lz4 stream decoded so far: where the frame at the front of `q` starts. */
  let stored = 0;
  let frames = 0;
  const bad = (message: string, cause?: unknown) => damagedStream(label, `the lz4 stream is damaged at its byte ${stored}: ${message}`, { compressedOffset: stored }, cause);
  async function* ready(): AsyncGenerator<Buffer> {
    for (;;) {
      let n: number | undefined;
      try {
        n = frameLength(q);
      } catch (err) {
        throw bad(reason(err), err);
      }
      if (n === undefined) return;
      const frame = q.shift(n);
      let plain: Buffer;
      try {
        plain = await nativeLz4().decompressFrame(frame);
      } catch (err) {
        throw bad(`frame ${frames}: ${reason(err)}`, err);
      }
      stored += n;
      frames++;
      if (plain.length > 0) yield plain;
    }
  }
  for await (const chunk of source) {
    throwIfAborted(signal, { path: label });
    q.push(chunk);
    yield* ready();
  }
  if (q.length > 0) throw damagedStream(label, `the lz4 stream ends inside a frame, ${q.length} bytes after its byte ${stored}: it was cut short`, { compressedOffset: stored });
  if (frames === 0) throw damagedStream(label, 'the lz4 stream is empty');
}

export const lz4Compression: Compression = {
  type: 'lz4',
  defaultLevel: undefined,
  levels: undefined,
  encoder,
  decode,
};

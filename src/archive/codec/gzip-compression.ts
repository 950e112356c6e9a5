/**
 * gzip through node:zlib (on libuv's thread pool): each 1 MiB block of the stream becomes one gzip
 * member, and members are concatenated, which is one valid gzip file (RFC 1952; `gzip -d`, `zcat` and
 * `tar xz` read all members). deflate's window is 32 KiB, so independent blocks cost no ratio, and
 * every write is compressed before it resolves. Reading goes through zlib's streaming gunzip.
 */
import { once } from 'node:events';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { EbrError, throwIfAborted } from '../../errors.js';
import type { Compression } from './compression.js';
import { damagedStream, reason } from './codec-errors.js';
import { blockStage, type Stage } from './stage.js';

const blockBytes = 1 << 20;
const gatherBytes = 64 << 10;
const gzip = promisify(zlib.gzip);

function encoder(next: Stage, level: number | undefined): Stage {
  const options = { level: level ?? 6 };
  return blockStage(next, blockBytes, (block) => gzip(block, options));
}

async function* decode(source: AsyncIterable<Buffer>, label: string, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const gunzip = zlib.createGunzip();
  const stop = new AbortController();
  let sourceFailed: { err: unknown } | undefined;
  let stored = 0;
  // The source is fed from its own loop, the output read here: zlib's buffers (highWaterMark) bound
  // what is held between them, and a failing source is told apart from damaged bytes. Tiny chunks
  // are gathered first: each write to zlib is a trip to the thread pool.
  let small: Buffer[] = [];
  let smallBytes = 0;
  const put = async (buf: Buffer) => {
    stored += buf.length;
    if (!gunzip.write(buf)) await once(gunzip, 'drain', { signal: stop.signal });
  };
  const putSmall = async () => {
    if (smallBytes > 0) await put(small.length === 1 ? small[0]! : Buffer.concat(small));
    small = [];
    smallBytes = 0;
  };
  const feeding = (async () => {
    const it = source[Symbol.asyncIterator]();
    try {
      for (;;) {
        let r: IteratorResult<Buffer>;
        try {
          r = await it.next();
        } catch (err) {
          sourceFailed = { err };
          gunzip.destroy(err as Error);
          return;
        }
        if (r.done) break;
        if (stop.signal.aborted) return;
        if (r.value.length >= gatherBytes && smallBytes === 0) {
          await put(r.value);
          continue;
        }
        small.push(r.value);
        smallBytes += r.value.length;
        if (smallBytes >= gatherBytes) await putSmall();
      }
      await putSmall();
      gunzip.end();
    } catch {
      // gunzip failed or the reader stopped: what the reader sees says which.
    } finally {
      if (stop.signal.aborted || sourceFailed === undefined) await it.return?.().catch(() => {});
    }
  })();
  try {
    for await (const piece of gunzip as AsyncIterable<Buffer>) {
      throwIfAborted(signal, { path: label });
      yield piece;
    }
  } catch (err) {
    if (sourceFailed) throw sourceFailed.err;
    if (err instanceof EbrError) throw err;
    const cut = (err as { code?: string }).code === 'Z_BUF_ERROR' || /unexpected end/.test(reason(err));
    throw damagedStream(label, cut ? `the gzip stream ends early, after ${stored} bytes: it was cut short` : `the gzip stream is damaged within its first ${stored} bytes: ${reason(err)}`, { compressedOffset: stored }, err);
  } finally {
    stop.abort();
    gunzip.destroy();
    await feeding;
  }
}

export const gzipCompression: Compression = {
  type: 'gzip',
  defaultLevel: 6,
  levels: { min: 1, max: 9 },
  encoder,
  decode,
};

/**
 * zstd through zstd-napi's streaming binding (ZSTD_compressStream2 / ZSTD_decompressStream): one
 * standard zstd frame per stream, with its content checksum, so `zstd -d` reads a stored stream as it
 * is. Streaming keeps zstd's window across the whole stream (better ratio than independent blocks).
 *
 * Compression runs on one zstd worker thread (nbWorkers 1) in jobs of 1 MiB: the JavaScript thread
 * only hands input over and picks output up, so it can read and hash the next chunk while the worker
 * compresses (bench/codec.ts, hashing every byte twice as a backup does: 202 against 109 MB/s at
 * level 3, 290 against 211 at level 1; two workers would go faster still, but take both cores of a
 * small machine from the other streams of the backup). Small jobs keep what zstd holds small: up to
 * three jobs of input, so a slow medium holds the writer back within a few MiB. Decompression is
 * single-threaded (zstd has no other) and synchronous, one output piece of dStreamOutSize() at a time.
 */
import { createRequire } from 'node:module';
import type zstdBinding from 'zstd-napi/binding.js';
import { throwIfAborted } from '../../errors.js';
import type { Compression } from './compression.js';
import { damagedStream, reason } from './codec-errors.js';
import type { Stage } from './stage.js';

// The native binding loads the first time a zstd stream is made, not whenever codecs are imported.
let loaded: typeof zstdBinding | undefined;
const nativeZstd = (): typeof zstdBinding => (loaded ??= createRequire(import.meta.url)('zstd-napi/binding.js') as typeof zstdBinding);
const empty = Buffer.alloc(0);
const jobBytes = 1 << 20;

/** A piece of `buf` handed on: small ones copied (so the big buffer is reused), big ones given away. */
function handOff(buf: Buffer, n: number): { piece: Buffer; keep: boolean } {
  if (n < buf.length / 2) return { piece: Buffer.from(buf.subarray(0, n)), keep: true };
  return { piece: buf.subarray(0, n), keep: false };
}

function encoder(next: Stage, level: number | undefined): Stage {
  const binding = nativeZstd();
  const { CCtx, CParameter, EndDirective } = binding;
  const outSize = binding.cStreamOutSize();
  const cctx = new CCtx();
  cctx.setParameter(CParameter.compressionLevel, level ?? 3);
  cctx.setParameter(CParameter.checksumFlag, 1);
  cctx.setParameter(CParameter.nbWorkers, 1);
  cctx.setParameter(CParameter.jobSize, jobBytes);
  let out = Buffer.allocUnsafe(outSize);

  /** Feeds `src` (all of it) with `directive`; for `end`, until the frame is complete. */
  async function feed(src: Buffer, directive: typeof EndDirective.continue | typeof EndDirective.end): Promise<void> {
    for (;;) {
      const [remaining, produced, consumed] = cctx.compressStream2(out, src, directive);
      src = src.subarray(consumed);
      if (produced > 0) {
        const { piece, keep } = handOff(out, produced);
        if (!keep) out = Buffer.allocUnsafe(outSize);
        await next.write(piece);
      }
      if (directive === EndDirective.end ? remaining === 0 : src.length === 0) return;
    }
  }

  return {
    write: (buf) => feed(buf, EndDirective.continue),
    async end() {
      await feed(empty, EndDirective.end);
      await next.end();
    },
  };
}

async function* decode(source: AsyncIterable<Buffer>, label: string, signal?: AbortSignal): AsyncGenerator<Buffer> {
  const binding = nativeZstd();
  const outSize = binding.dStreamOutSize();
  const dctx = new binding.DCtx();
  let out = Buffer.allocUnsafe(outSize);
  /** Bytes of the zstd stream taken so far (the stored bytes, or the decrypted ones). */
  let stored = 0;
  // ZSTD_decompressStream's hint: 0 once a frame is complete and flushed; -1 before any byte.
  let hint = -1;
  for await (const chunk of source) {
    throwIfAborted(signal, { path: label });
    let src = chunk;
    let full = false;
    while (src.length > 0 || full) {
      let r: [number, number, number];
      try {
        r = dctx.decompressStream(out, src);
      } catch (err) {
        throw damagedStream(label, `the zstd stream is damaged near its byte ${stored + chunk.length - src.length}: ${reason(err)}`, { compressedOffset: stored + chunk.length - src.length }, err);
      }
      const [h, produced, consumed] = r;
      // A call that moved nothing (the drain after a full buffer) says what the next frame would need.
      if (produced > 0 || consumed > 0) hint = h;
      src = src.subarray(consumed);
      full = produced === out.length;
      if (produced > 0) {
        const { piece, keep } = handOff(out, produced);
        if (!keep) out = Buffer.allocUnsafe(outSize);
        yield piece;
      }
    }
    stored += chunk.length;
  }
  if (hint !== 0) throw damagedStream(label, hint < 0 ? 'the zstd stream is empty' : `the zstd stream ends inside its frame, after ${stored} bytes: it was cut short`, { compressedOffset: stored });
}

export const zstdCompression: Compression = {
  type: 'zstd',
  defaultLevel: 3,
  // Above 19 zstd wants --ultra windows (up to 128 MiB per stream, compressing and decompressing).
  levels: { min: -7, max: 19 },
  encoder,
  decode,
};

/**
 * Benchmark (not a test): how fast each compression (and encryption) goes, and how well it packs.
 *
 *   npm run build && node dist/bench/codec.js [--mib 256] [--runs 2] [--drives-only | --codec-only]
 *
 * The data is test/codec/sample-data.ts: 8 KiB pages, three of four like PostgreSQL heap pages, the
 * fourth random, made once in memory before anything is timed. Each figure is the best of --runs.
 *
 * Part 1, drives: the ways the libraries can be driven, on the bare libraries (no encryption): zstd's
 * streaming API (one frame, on the JavaScript thread or on 1 or 2 zstd worker threads) against 1 MiB
 * blocks through its buffer API; lz4 frames per 1 MiB or 256 KiB block, async (thread pool) and sync;
 * gzip as one zlib stream against one member per 1 MiB block. Every drive also digests each chunk
 * twice with sha256 on the JavaScript thread, as a backup does (the member digest, the stored
 * stream's digest), so a drive that leaves that thread free shows it. `main` is the share of the time
 * the JavaScript thread was busy (event loop utilization).
 *
 * Part 2, codec: the codec as ebr uses it (codecForBackup → wrapSink over a digesting sink that drops
 * the bytes, the original digested too; codecForReading → decode, both sides digested), encode and
 * decode MB/s of original bytes and the ratio, per type and level, and with encryption for each
 * type's default level.
 *
 * Compare within one run, not across machines; a busy machine shows in every figure.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { compressFrame, compressFrameSync } from 'lz4-napi';
import binding from 'zstd-napi/binding.js';
import { Compressor } from 'zstd-napi';
import { digestingSink, type ByteSink } from '../src/archive/byte-sink.js';
import { codecForBackup, codecForReading, type CodecInstance } from '../src/archive/codec/index.js';
import { sampleData } from '../test/codec/sample-data.js';

const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : def;
};
const mib = Number(opt('mib', '256'));
const runs = Number(opt('runs', '2'));
const total = mib << 20;

process.stderr.write(`making ${mib} MiB of sample data\n`);
const chunks = [...sampleData(total)];

interface Figure {
  seconds: number;
  out: number;
  main: number;
}

/** Best of `runs` of `f` (which returns the bytes it produced), with the main thread's busy share. */
async function measure(f: () => Promise<number>): Promise<Figure> {
  let best: Figure | undefined;
  for (let i = 0; i < runs; i++) {
    const elu = performance.eventLoopUtilization();
    const t = process.hrtime.bigint();
    const out = await f();
    const seconds = Number(process.hrtime.bigint() - t) / 1e9;
    const main = performance.eventLoopUtilization(elu).utilization;
    if (!best || seconds < best.seconds) best = { seconds, out, main };
  }
  return best!;
}

const rate = (bytes: number, s: number) => `${(bytes / 1e6 / s).toFixed(0).padStart(5)} MB/s`;
const pct = (x: number) => `${(100 * x).toFixed(0).padStart(3)}%`;

// ---- Part 1: drives ----

/** A writer's await per piece, as the medium's sink imposes it. */
const handOn = async (_b: Buffer) => {};

/**
 * What a backup's JavaScript thread does besides compressing: the tar writer digests every original
 * byte, the stored stream's digest every stored one. Done for every chunk in every drive, so a drive
 * that leaves the JavaScript thread free shows it.
 */
const digests = { original: createHash('sha256'), stored: createHash('sha256') };
const beside = (chunk: Buffer) => {
  digests.original.update(chunk);
  digests.stored.update(chunk);
};

async function zstdStreaming(level: number, workers: number, jobBytes?: number): Promise<number> {
  const c = new binding.CCtx();
  c.setParameter(binding.CParameter.compressionLevel, level);
  if (workers) c.setParameter(binding.CParameter.nbWorkers, workers);
  if (jobBytes) c.setParameter(binding.CParameter.jobSize, jobBytes);
  const size = binding.cStreamOutSize();
  let out = Buffer.allocUnsafe(size);
  let n = 0;
  const feed = async (src: Buffer, end: boolean) => {
    for (;;) {
      const [remaining, produced, consumed] = c.compressStream2(out, src, end ? binding.EndDirective.end : binding.EndDirective.continue);
      src = src.subarray(consumed);
      if (produced) {
        n += produced;
        await handOn(out.subarray(0, produced));
        out = Buffer.allocUnsafe(size);
      }
      if (end ? remaining === 0 : src.length === 0) return;
    }
  };
  for (const ch of chunks) {
    beside(ch);
    await feed(ch, false);
  }
  await feed(Buffer.alloc(0), true);
  return n;
}

async function zstdBlocks(level: number): Promise<number> {
  const c = new Compressor();
  c.setParameters({ compressionLevel: level, checksumFlag: true });
  let n = 0;
  for (const ch of chunks) {
    beside(ch);
    const b = c.compress(ch);
    n += b.length;
    await handOn(b);
  }
  return n;
}

/** Each block of `blockBytes` compressed on its own, one after another, as the codec's block step does. */
async function perBlock(compress: (b: Buffer) => Promise<Buffer> | Buffer, blockBytes = 1 << 20): Promise<number> {
  let n = 0;
  for (const ch of chunks) {
    beside(ch);
    for (let at = 0; at < ch.length; at += blockBytes) {
      const b = await compress(ch.subarray(at, at + blockBytes));
      n += b.length;
      await handOn(b);
    }
  }
  return n;
}

function gzipStreaming(level: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const g = zlib.createGzip({ level });
    let n = 0;
    g.on('data', (d: Buffer) => (n += d.length));
    g.on('end', () => resolve(n));
    g.on('error', reject);
    void (async () => {
      for (const ch of chunks) {
        beside(ch);
        if (!g.write(ch)) await new Promise((r) => g.once('drain', r));
      }
      g.end();
    })();
  });
}

const gzip = promisify(zlib.gzip);

async function drives(): Promise<void> {
  console.log(`\nPart 1: driving the libraries, ${mib} MiB, best of ${runs} (main: share of the time the JS thread was busy)\n`);
  const rows: Array<[string, () => Promise<number>]> = [
    ['zstd 1  streaming, 0 workers', () => zstdStreaming(1, 0)],
    ['zstd 1  streaming, 1 worker', () => zstdStreaming(1, 1)],
    ['zstd 1  streaming, 1 worker, 1 MiB jobs', () => zstdStreaming(1, 1, 1 << 20)],
    ['zstd 1  1 MiB blocks (buffer API)', () => zstdBlocks(1)],
    ['zstd 3  streaming, 0 workers', () => zstdStreaming(3, 0)],
    ['zstd 3  streaming, 1 worker', () => zstdStreaming(3, 1)],
    ['zstd 3  streaming, 1 worker, 1 MiB jobs', () => zstdStreaming(3, 1, 1 << 20)],
    ['zstd 3  streaming, 2 workers', () => zstdStreaming(3, 2)],
    ['zstd 3  1 MiB blocks (buffer API)', () => zstdBlocks(3)],
    ['lz4     1 MiB frames, async', () => perBlock((b) => compressFrame(b, { contentChecksum: true }))],
    ['lz4     256 KiB frames, async', () => perBlock((b) => compressFrame(b, { contentChecksum: true }), 256 << 10)],
    ['lz4     1 MiB frames, sync', () => perBlock((b) => compressFrameSync(b, { contentChecksum: true }))],
    ['gzip 1  one stream', () => gzipStreaming(1)],
    ['gzip 1  1 MiB members', () => perBlock((b) => gzip(b, { level: 1 }))],
    ['gzip 6  one stream', () => gzipStreaming(6)],
    ['gzip 6  1 MiB members', () => perBlock((b) => gzip(b, { level: 6 }))],
  ];
  for (const [name, f] of rows) {
    const m = await measure(f);
    console.log(`${name.padEnd(42)} ${rate(total, m.seconds)}  ratio ${(total / m.out).toFixed(3)}  main ${pct(m.main)}`);
  }
}

// ---- Part 2: the codec ----

function discardSink(): ByteSink & { bytes(): number } {
  let n = 0;
  return {
    async write(b) {
      n += b.length;
    },
    get position() {
      return n;
    },
    get written() {
      return n;
    },
    close: async () => {},
    destroy: () => {},
    bytes: () => n,
  };
}

/** Keeps what the codec stored, to decode it after; as whole buffers, so decoding is timed alone. */
function keepingSink(kept: Buffer[]): ByteSink {
  let n = 0;
  return {
    async write(b) {
      kept.push(b);
      n += b.length;
    },
    get position() {
      return n;
    },
    get written() {
      return n;
    },
    close: async () => {},
    destroy: () => {},
  };
}

/** The stored bytes as a medium hands them out, digested as restore and verify do. */
async function* fromChunks(bs: Buffer[], hash: ReturnType<typeof createHash>): AsyncGenerator<Buffer> {
  for (const b of bs) {
    hash.update(b);
    yield b;
  }
}

async function codecs(): Promise<void> {
  console.log(`\nPart 2: the codec (wrapSink, decode), ${mib} MiB, best of ${runs}, MB/s of original bytes\n`);
  const key = { key: 'ab'.repeat(32) };
  const plans: Array<{ type: 'zstd' | 'lz4' | 'gzip' | 'none'; level?: number; encrypt?: boolean }> = [
    { type: 'zstd', level: 1 },
    { type: 'zstd', level: 3 },
    { type: 'zstd', level: 6 },
    { type: 'zstd', level: 9 },
    { type: 'zstd', level: 3, encrypt: true },
    { type: 'lz4' },
    { type: 'lz4', encrypt: true },
    { type: 'gzip', level: 1 },
    { type: 'gzip', level: 6 },
    { type: 'gzip', level: 9 },
    { type: 'gzip', level: 6, encrypt: true },
    { type: 'none', encrypt: true },
  ];
  for (const p of plans) {
    const instance: CodecInstance = { name: 'bench', compression: { type: p.type, ...(p.level !== undefined ? { level: p.level } : {}) }, ...(p.encrypt ? { encryption: key } : {}) };
    const name = `${p.type}${p.level !== undefined ? ` ${p.level}` : ''}${p.encrypt ? ' + aes-256-gcm' : ''}`;
    let stored: Buffer[] = [];
    let storedCodec = (await codecForBackup(instance)).stored;
    const enc = await measure(async () => {
      const codec = await codecForBackup(instance);
      storedCodec = codec.stored;
      const out = discardSink();
      const w = codec.wrapSink(digestingSink(out));
      for (const ch of chunks) {
        digests.original.update(ch);
        await w.write(ch);
      }
      await w.close();
      return out.bytes();
    });
    // Once more, keeping the stored bytes, for decoding.
    {
      const codec = await codecForBackup(instance);
      storedCodec = codec.stored;
      stored = [];
      const w = codec.wrapSink(keepingSink(stored));
      for (const ch of chunks) await w.write(ch);
      await w.close();
    }
    const reader = await codecForReading(storedCodec, instance);
    const dec = await measure(async () => {
      let n = 0;
      for await (const b of reader.decode(fromChunks(stored, digests.stored), 'bench')) {
        digests.original.update(b);
        n += b.length;
      }
      if (n !== total) throw new Error(`${name}: decoded ${n} bytes of ${total}`);
      return n;
    });
    stored = [];
    console.log(`${name.padEnd(22)} encode ${rate(total, enc.seconds)} (main ${pct(enc.main)})  decode ${rate(total, dec.seconds)}  ratio ${(total / enc.out).toFixed(3)}`);
  }
}

if (!args.includes('--codec-only')) await drives();
if (!args.includes('--drives-only')) await codecs();

/**
 * The wrapped sink as a ByteSink: back-pressure from a slow medium reaches the writer (it is never more
 * than a few frames ahead), a failing medium fails the writer, destroy gives up; decode passes a failing
 * source's own error through and stops on an aborted signal.
 */
import { describe, expect, it } from 'vitest';
import type { ByteSink } from '../../src/archive/byte-sink.js';
import { codecForBackup, codecForReading } from '../../src/archive/codec/index.js';
import { chunked, collect, collectingSink, compressionTypes, encode, instanceWith, rejection } from './codec-helpers.js';
import { randomData } from './sample-data.js';

/** A medium that takes `delayMs` per write, counting what it was handed and how many writes wait at once. */
function slowSink(delayMs: number): ByteSink & { received: number; maxPending: number; pending: number } {
  return {
    received: 0,
    maxPending: 0,
    pending: 0,
    async write(buf) {
      this.pending++;
      this.maxPending = Math.max(this.maxPending, this.pending);
      await new Promise((r) => setTimeout(r, delayMs));
      this.received += buf.length;
      this.pending--;
    },
    get position() {
      return this.received;
    },
    get written() {
      return this.received;
    },
    close: async () => {},
    destroy: () => {},
  };
}

describe('the wrapped sink', () => {
  for (const type of compressionTypes) {
    it(`${type} + aes-256-gcm: a slow medium holds the writer back; never more than a few frames are ahead of it`, async () => {
      const codec = await codecForBackup(instanceWith(type, true));
      const out = slowSink(2);
      const w = codec.wrapSink(out);
      const frame = 1 << 20;
      let handed = 0;
      let maxAhead = 0;
      // Incompressible: what the medium received follows what was written, so the gap is what the codec holds.
      for (const chunk of randomData(24 << 20, 1 << 20)) {
        handed += chunk.length;
        await w.write(chunk);
        expect(out.pending).toBe(0);
        maxAhead = Math.max(maxAhead, handed - out.received);
      }
      await w.close();
      expect(out.maxPending).toBe(1);
      // The write being taken, one frame being filled, and what the compression holds: one block
      // (lz4, gzip), or zstd's worker with up to three 1 MiB jobs (the one it compresses, the one
      // being filled, one waiting). A constant, whatever the stream's size.
      const holds = type === 'zstd' ? 3 * (1 << 20) : type === 'none' ? 0 : 1 << 20;
      expect(maxAhead).toBeLessThanOrEqual(frame + frame + holds);
      expect(out.received).toBeGreaterThan(24 << 20);
    });
  }

  it('a failing medium fails the write with its error, and every write after it', async () => {
    const codec = await codecForBackup(instanceWith('zstd', true));
    const boom = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    let writes = 0;
    const failing: ByteSink = { ...collectingSink(), write: async () => { if (++writes > 1) throw boom; } };
    const w = codec.wrapSink(failing);
    let err: unknown;
    for (const chunk of randomData(8 << 20)) {
      try {
        await w.write(chunk);
      } catch (e) {
        err = e;
        break;
      }
    }
    expect(err).toBe(boom);
    expect(await rejection(w.write(Buffer.alloc(10)))).toBe(boom);
    expect(await rejection(w.close())).toBe(boom);
  });

  it('destroy destroys the medium and refuses later writes', async () => {
    const codec = await codecForBackup(instanceWith('gzip', false));
    const out = collectingSink();
    const w = codec.wrapSink(out);
    await w.write(Buffer.alloc(1000, 1));
    w.destroy();
    expect(out.destroyed).toBe(true);
    expect((await rejection(w.write(Buffer.alloc(10)))).message).toMatch(/destroyed/);
  });
});

describe('decode', () => {
  for (const type of compressionTypes) {
    it(`${type}${type === 'none' ? ' + aes-256-gcm' : ''}: a failing source's own error comes through, not as damage`, async () => {
      const instance = instanceWith(type, type === 'none');
      const codec = await codecForBackup(instance);
      const stored = await encode(codec, Buffer.concat([...randomData(3 << 20)]));
      const reader = await codecForReading(codec.stored, instance);
      const eio = Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
      async function* failing(): AsyncGenerator<Buffer> {
        yield stored.subarray(0, 1 << 20);
        throw eio;
      }
      expect(await rejection(collect(reader.decode(failing(), 'spaces/main.tar')))).toBe(eio);
    });
  }

  it('an aborted signal stops decoding as cancelled', async () => {
    const instance = instanceWith('zstd', true);
    const codec = await codecForBackup(instance);
    const stored = await encode(codec, Buffer.concat([...randomData(2 << 20)]));
    const reader = await codecForReading(codec.stored, instance);
    const ac = new AbortController();
    ac.abort();
    expect((await rejection(collect(reader.decode(chunked(stored, 65536), 'spaces/main.tar', ac.signal)))).code).toBe('cancelled');
  });

  it('gzip and lz4 streams cut short or with bytes after them fail as damage naming the stream', async () => {
    for (const type of ['zstd', 'gzip', 'lz4'] as const) {
      const instance = instanceWith(type, false);
      const codec = await codecForBackup(instance);
      const stored = await encode(codec, Buffer.concat([...randomData((2 << 20) + 100)]));
      const reader = await codecForReading(codec.stored, instance);
      for (const bad of [stored.subarray(0, stored.length - 5), Buffer.concat([stored, Buffer.from('trailing garbage')]), Buffer.alloc(0)]) {
        const err = await rejection(collect(reader.decode(chunked(bad, 10000), 'spaces/main.tar')));
        expect(err.code, `${type}, ${bad.length} bytes`).toBe('archive');
        expect(err.message).toContain('spaces/main.tar');
      }
    }
  });
});

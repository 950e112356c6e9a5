/**
 * Constant memory: 512 MiB through each compression and encryption, encoded into a pipe and decoded
 * from it at the same time (the stream is never whole anywhere), with the original's sha256 checked at
 * the end. The process's resident size, sampled all along, must not grow by more than 64 MiB.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { codecForBackup, codecForReading, type CodecInstance } from '../../src/archive/codec/index.js';
import { collect, instanceWith, pipeSink } from './codec-helpers.js';
import { sampleData } from './sample-data.js';

const total = 512 << 20;
const limit = 64 << 20;

async function throughPipe(instance: CodecInstance, bytes: number, onChunk: () => void): Promise<void> {
  const codec = await codecForBackup(instance);
  const reader = await codecForReading(codec.stored, instance);
  const { sink, source } = pipeSink();
  const inHash = createHash('sha256');
  const outHash = createHash('sha256');
  let out = 0;
  const reading = (async () => {
    for await (const b of reader.decode(source, 'spaces/big.tar')) {
      outHash.update(b);
      out += b.length;
    }
  })();
  const w = codec.wrapSink(sink);
  for (const chunk of sampleData(bytes)) {
    inHash.update(chunk);
    await w.write(chunk);
    onChunk();
  }
  await w.close();
  await reading;
  expect(out).toBe(bytes);
  expect(outHash.digest('hex')).toBe(inHash.digest('hex'));
}

describe('constant memory', () => {
  for (const instance of [instanceWith('zstd', true), { ...instanceWith('gzip', true), compression: { type: 'gzip' as const, level: 1 } }, instanceWith('lz4', true)]) {
    it(`${instance.compression!.type} + aes-256-gcm: 512 MiB encoded and decoded at once, resident size grows by less than 64 MiB`, async () => {
      // A small run first, so what is made once (native contexts, thread pool, JIT) is in the baseline.
      await throughPipe(instance, 8 << 20, () => {});
      (globalThis as { gc?: () => void }).gc?.();
      const before = process.memoryUsage().rss;
      let peak = before;
      let n = 0;
      await throughPipe(instance, total, () => {
        if (++n % 8 === 0) peak = Math.max(peak, process.memoryUsage().rss);
      });
      peak = Math.max(peak, process.memoryUsage().rss);
      console.log(`${instance.compression!.type} + aes-256-gcm, 512 MiB: resident size grew by ${((peak - before) / 1048576).toFixed(1)} MiB`);
      expect(peak - before, `resident size grew by ${((peak - before) / 1048576).toFixed(1)} MiB`).toBeLessThan(limit);
    }, 300_000);
  }

  it('the pipe used above holds one buffer at a time', async () => {
    const { sink, source } = pipeSink();
    const writes = (async () => {
      for (let i = 0; i < 3; i++) await sink.write(Buffer.from([i]));
      await sink.close();
    })();
    expect([...(await collect(source))]).toEqual([0, 1, 2]);
    await writes;
  });
});

/**
 * A 512 MiB space stream goes up in constant memory: write() waits while the upload is behind, so RSS
 * grows by about (queueSize + 2) parts, never by the stream. The bound is generous (a shared machine);
 * a sink that buffered the stream would grow by 512 MiB.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3Settings, s3Target } from '../../src/archive/s3/index.js';
import { s3Credentials, startS3Server, type S3Server } from './s3-server.js';

const mib = 1 << 20;
let server: S3Server;
beforeAll(async () => {
  Object.assign(process.env, s3Credentials);
  server = await startS3Server();
});
afterAll(async () => {
  await server?.stop();
});

describe('a 512 MiB space stream', { timeout: 300_000 }, () => {
  it('is uploaded with bounded memory, and written counts what the upload sent', async () => {
    const target = s3Target(s3Settings.parse(server.settings({ prefix: 'ebr/', partSize: '8MiB', queueSize: 4 })));
    const ref = { instance: 'shop', backupId: '20250101T000000Z-dd01' };
    const writer = await target.create(ref);
    const space = await writer.openSpace('main');
    global.gc?.();
    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    let behind = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 25);
    const size = 512 * mib;
    let produced = 0;
    async function* source(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 512; i++) {
        produced += mib;
        // What the sink has not sent yet: bounded by the parts in flight, not by the stream.
        behind = Math.max(behind, produced - writer.bytesWritten!());
        yield Buffer.alloc(mib, i);
      }
    }
    const t0 = performance.now();
    await space.addFile({ name: 'main.db', type: 'file', size }, source(), new AbortController().signal);
    const closed = await space.close();
    const seconds = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    console.log(`512 MiB through s3rver: ${((size / 1e6) / seconds).toFixed(0)} MB/s, RSS grew by ${((peak - rss0) / mib).toFixed(0)} MiB, at most ${(behind / mib).toFixed(0)} MiB not yet sent`);
    expect(closed.bytes).toBe(size + 1536);
    expect(writer.bytesWritten!()).toBe(closed.stored!.bytes);
    expect(peak - rss0).toBeLessThan(256 * mib);
    expect(behind).toBeLessThan(96 * mib);
    await target.remove(ref);
  });
});

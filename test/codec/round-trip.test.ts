/**
 * Every compression, with and without encryption: what goes in through wrapSink comes out of decode
 * byte for byte, whatever the chunk sizes of the medium, empty streams included.
 */
import { describe, expect, it } from 'vitest';
import { identityCodec } from '../../src/archive/codec.js';
import { codecForBackup, codecForReading } from '../../src/archive/codec/index.js';
import { chunked, collect, collectingSink, compressionTypes, encode, instanceWith } from './codec-helpers.js';
import { randomData, sampleData } from './sample-data.js';

const sample = (bytes: number) => Buffer.concat([...sampleData(bytes, 64 << 10)]);

describe('round trip through wrapSink and decode', () => {
  for (const type of compressionTypes) {
    for (const encrypt of [false, true]) {
      const name = `${type}${encrypt ? ' + aes-256-gcm' : ''}`;
      if (type === 'none' && !encrypt) {
        it('none without encryption is the identity codec', async () => {
          expect(await codecForBackup(instanceWith('none', false))).toBe(identityCodec);
          expect(await codecForReading(undefined, instanceWith('none', false))).toBe(identityCodec);
          expect(await codecForReading({ compression: 'none' }, instanceWith('none', false))).toBe(identityCodec);
        });
        continue;
      }
      describe(name, () => {
        it('decodes from 1-byte and 7-byte chunks', async () => {
          const instance = instanceWith(type, encrypt);
          // Small frames, so a few hundred KiB cross several of them (and lz4/gzip blocks of 1 MiB are covered below).
          const codec = await codecForBackup(instance, { frameBytes: 64 << 10 });
          const data = sample(300 << 10);
          const stored = await encode(codec, data, 5000);
          const reader = await codecForReading(codec.stored, instance);
          expect((await collect(reader.decode(chunked(stored, 1), 'spaces/main.tar'))).equals(data)).toBe(true);
          expect((await collect(reader.decode(chunked(stored, 7), 'spaces/main.tar'))).equals(data)).toBe(true);
        });

        it('decodes 9 MiB from 3 MiB chunks, written in pieces of odd sizes', async () => {
          const instance = instanceWith(type, encrypt);
          const codec = await codecForBackup(instance);
          // Compressible pages and incompressible bytes, across many 1 MiB blocks and frames.
          const data = Buffer.concat([sample(6 << 20), ...randomData((3 << 20) + 12345)]);
          const out = collectingSink();
          const w = codec.wrapSink(out);
          const sizes = [1, 511, 512, 7, 1 << 20, (1 << 20) + 1, 3 << 20, 65536];
          let at = 0;
          for (let i = 0; at < data.length; i++) {
            const n = Math.min(sizes[i % sizes.length]!, data.length - at);
            await w.write(data.subarray(at, at + n));
            at += n;
            expect(w.position).toBe(at);
          }
          await w.close();
          expect(out.closed).toBe(true);
          const stored = out.stored();
          // written is the medium's; position counts the original bytes.
          expect(w.written).toBe(stored.length);
          expect(w.position).toBe(data.length);
          if (type !== 'none') expect(stored.length).toBeLessThan(0.8 * data.length);
          const reader = await codecForReading(codec.stored, instance);
          expect((await collect(reader.decode(chunked(stored, 3 << 20), 'spaces/main.tar'))).equals(data)).toBe(true);
        });

        it('an empty stream is stored as a valid stream and decodes to nothing', async () => {
          const instance = instanceWith(type, encrypt);
          const codec = await codecForBackup(instance);
          const stored = await encode(codec, Buffer.alloc(0));
          expect(stored.length).toBeGreaterThan(0);
          const reader = await codecForReading(codec.stored, instance);
          expect((await collect(reader.decode(chunked(stored, 1), 'meta/empty'))).length).toBe(0);
          // An empty write changes nothing either.
          const w = codec.wrapSink(collectingSink());
          await w.write(Buffer.alloc(0));
          await w.close();
        });

        it('encodeBuffer and decodeBuffer round-trip, each buffer readable alone', async () => {
          const instance = instanceWith(type, encrypt);
          const codec = await codecForBackup(instance);
          const a = Buffer.from('START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n'.repeat(50));
          const b = Buffer.from('tablespace map\n');
          const ea = await codec.encodeBuffer(a);
          const eb = await codec.encodeBuffer(b);
          if (type !== 'none') expect(ea.length).toBeLessThan(a.length);
          if (encrypt) expect(ea.includes(Buffer.from('START WAL'))).toBe(false);
          const reader = await codecForReading(JSON.parse(JSON.stringify(codec.stored)), instance);
          expect((await reader.decodeBuffer(eb, 'meta/tablespace_map')).equals(b)).toBe(true);
          expect((await reader.decodeBuffer(ea, 'meta/backup_label')).equals(a)).toBe(true);
          expect((await reader.decodeBuffer(await codec.encodeBuffer(Buffer.alloc(0)), 'meta/x')).length).toBe(0);
        });
      });
    }
  }

  it('the stored record names the compression and its level, the default when none is given', async () => {
    expect((await codecForBackup({ name: 's', compression: { type: 'zstd' } })).stored).toEqual({ compression: 'zstd', level: 3 });
    expect((await codecForBackup({ name: 's', compression: { type: 'zstd', level: 9 } })).stored).toEqual({ compression: 'zstd', level: 9 });
    expect((await codecForBackup({ name: 's', compression: { type: 'gzip' } })).stored).toEqual({ compression: 'gzip', level: 6 });
    expect((await codecForBackup({ name: 's', compression: { type: 'lz4' } })).stored).toEqual({ compression: 'lz4' });
    expect((await codecForBackup(instanceWith('none', true))).stored).toMatchObject({ compression: 'none', encryption: { alg: 'aes-256-gcm', frameBytes: 1 << 20 } });
  });

  it('a stream decoded with another codec than it was written with fails as damage, not silently', async () => {
    const zstd = await codecForBackup(instanceWith('zstd', false));
    const stored = await encode(zstd, sample(100 << 10));
    for (const other of ['lz4', 'gzip'] as const) {
      const reader = await codecForReading({ compression: other }, instanceWith(other, false));
      await expect(collect(reader.decode(chunked(stored, 4096), 'spaces/main.tar'))).rejects.toMatchObject({ code: 'archive', message: expect.stringContaining('spaces/main.tar') });
    }
  });
});

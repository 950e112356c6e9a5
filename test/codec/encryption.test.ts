/**
 * The encrypted frames: a flipped byte fails at its frame, naming the stream and where; a stream cut
 * short, frames dropped, swapped or taken from another stream fail; each backup has its own data key;
 * the key is never in the stored record nor in any message; a wrong or missing key fails before any
 * byte is decoded.
 */
import { describe, expect, it } from 'vitest';
import type { StoredCodec } from '../../src/archive/codec.js';
import { codecForBackup, codecForReading } from '../../src/archive/codec/index.js';
import { chunked, collect, encode, instanceWith, rejection, testKeyHex } from './codec-helpers.js';
import { sampleData } from './sample-data.js';

const frameBytes = 4096;
const header = 28;
const stride = frameBytes + 16;
const label = 'spaces/db_shop.tar';
/** 10 full frames and a short final one, stored as they are (no compression): frame i is at header + i * stride. */
const data = Buffer.concat([...sampleData(10 * frameBytes + 1000, 8192)]);

async function encrypted(type: 'none' | 'zstd' = 'none') {
  const instance = instanceWith(type, true);
  const codec = await codecForBackup(instance, { frameBytes });
  const stored = await encode(codec, data, 3000);
  const reader = await codecForReading(codec.stored, instance);
  return { codec, stored, reader, instance };
}

/** What decode yields before it fails, and how it fails. */
async function decodeUntilFailure(reader: Awaited<ReturnType<typeof encrypted>>['reader'], stored: Buffer, chunk = 1000) {
  const got: Buffer[] = [];
  try {
    for await (const b of reader.decode(chunked(stored, chunk), label)) got.push(b);
  } catch (err) {
    return { got: Buffer.concat(got), err: err as Error & { code?: string; context?: Record<string, unknown> } };
  }
  throw new Error('decode did not fail');
}

const frame = (stored: Buffer, i: number) => stored.subarray(header + i * stride, header + (i + 1) * stride);

describe('encrypted frames', () => {
  it('the stored stream holds no plaintext and decodes back', async () => {
    const { stored, reader } = await encrypted();
    expect(stored.length).toBe(header + 10 * stride + 1000 + 16);
    expect(stored.includes(data.subarray(200, 232))).toBe(false);
    expect((await collect(reader.decode(chunked(stored, 1000), label))).equals(data)).toBe(true);
  });

  it('a flipped byte fails at its frame, naming the stream, the frame and its offsets; the frames before it come out', async () => {
    const { stored, reader } = await encrypted();
    const bad = Buffer.from(stored);
    bad[header + 3 * stride + 100]! ^= 0x01;
    const { got, err } = await decodeUntilFailure(reader, bad);
    expect(err.code).toBe('archive');
    expect(err.message).toContain(label);
    expect(err.message).toContain(`frame 3 (stored bytes from ${header + 3 * stride}, original bytes from ${3 * frameBytes})`);
    expect(err.context).toMatchObject({ path: label, frame: 3, storedOffset: header + 3 * stride, originalOffset: 3 * frameBytes });
    expect(got.equals(data.subarray(0, 3 * frameBytes))).toBe(true);
  });

  it('a flipped byte in a tag, in the final frame, or in the header fails too', async () => {
    const { stored, reader } = await encrypted();
    for (const [at, frameNo] of [
      [header + 5 * stride - 1, 4], // the last byte of frame 4's tag
      [stored.length - 1, 10], // the final frame's tag
      [header - 1, 0], // the nonce: every frame's key changes, frame 0 fails first
      [9, 0], // frameBytes in the header: it no longer says what the manifest says
    ] as const) {
      const bad = Buffer.from(stored);
      bad[at]! ^= 0x80;
      const { err } = await decodeUntilFailure(reader, bad);
      expect(err.code, `byte ${at}`).toBe('archive');
      expect(err.message).toContain(label);
      if (at > 12) expect(err.message).toContain(`frame ${frameNo} `);
    }
    const noMagic = Buffer.from(stored);
    noMagic[0] = 0x41;
    expect((await decodeUntilFailure(reader, noMagic)).err.message).toMatch(/does not start with the header/);
  });

  it('compressed, then encrypted: a flipped byte fails at its frame before zstd sees it', async () => {
    const { stored, reader } = await encrypted('zstd');
    const bad = Buffer.from(stored);
    bad[header + stride + 7]! ^= 0x10;
    const { err } = await decodeUntilFailure(reader, bad);
    expect(err.code).toBe('archive');
    expect(err.message).toContain('frame 1 ');
    expect(err.message).toContain('does not authenticate');
  });

  it('a stream cut short fails: inside the final frame, at a frame boundary, inside the header, or empty', async () => {
    const { stored, reader } = await encrypted();
    const cuts = [
      stored.length - 1, // the last byte of the final frame's tag
      stored.length - 1016, // the final frame is gone: the stream ends at a frame boundary
      header + 4 * stride, // whole frames dropped from the end
      header + 4 * stride + 10, // inside a full frame
      header + 5, // inside the header
      0,
    ];
    for (const n of cuts) {
      const { err } = await decodeUntilFailure(reader, stored.subarray(0, n));
      expect(err.code, `cut at ${n}`).toBe('archive');
      expect(err.message, `cut at ${n}`).toContain(label);
    }
    expect((await decodeUntilFailure(reader, stored.subarray(0, header + 4 * stride))).err.message).toMatch(/cut short.*frame 4.*final frame is missing/);
  });

  it('frames dropped from the middle, swapped, repeated, appended, or spliced from another stream fail', async () => {
    const { codec, stored, reader } = await encrypted();
    const head = stored.subarray(0, header);
    const frames = Array.from({ length: 10 }, (_, i) => frame(stored, i));
    const last = stored.subarray(header + 10 * stride);
    const other = await encode(codec, Buffer.from(data).reverse(), 5000); // same data key, another stream
    const cases: Record<string, Buffer> = {
      'frame 5 dropped': Buffer.concat([head, ...frames.slice(0, 5), ...frames.slice(6), last]),
      'frames 2 and 3 swapped': Buffer.concat([head, frames[0]!, frames[1]!, frames[3]!, frames[2]!, ...frames.slice(4), last]),
      'frame 7 repeated': Buffer.concat([head, ...frames.slice(0, 8), frames[7]!, ...frames.slice(8), last]),
      'a frame appended after the final one': Buffer.concat([stored, frames[0]!]),
      'frame 6 taken from another stream': Buffer.concat([head, ...frames.slice(0, 6), frame(other, 6), ...frames.slice(7), last]),
      'the final frame of another stream': Buffer.concat([head, ...frames, other.subarray(header + 10 * stride)]),
    };
    for (const [what, bad] of Object.entries(cases)) {
      const { err } = await decodeUntilFailure(reader, bad);
      expect(err.code, what).toBe('archive');
      expect(err.message, what).toContain(label);
    }
    expect((await decodeUntilFailure(reader, cases['frames 2 and 3 swapped']!)).err.message).toContain('frame 2 ');
  });

  it('two backups have two data keys: the wrapped keys differ and one backup\'s reader cannot read the other\'s streams', async () => {
    const instance = instanceWith('zstd', true);
    const a = await codecForBackup(instance);
    const b = await codecForBackup(instance);
    expect(a.stored!.encryption!.wrappedKey).not.toBe(b.stored!.encryption!.wrappedKey);
    expect(a.stored!.encryption!.keyId).toBe(b.stored!.encryption!.keyId);
    const storedA = await encode(a, data);
    const readerB = await codecForReading(b.stored, instance);
    await expect(collect(readerB.decode(chunked(storedA, 4096), label))).rejects.toMatchObject({ code: 'archive' });
    const readerA = await codecForReading(a.stored, instance);
    expect((await collect(readerA.decode(chunked(storedA, 4096), label))).equals(data)).toBe(true);
  });

  it('the same bytes encrypted twice by one codec differ (each stream its own nonce)', async () => {
    const codec = await codecForBackup(instanceWith('none', true));
    const x = await codec.encodeBuffer(data);
    const y = await codec.encodeBuffer(data);
    expect(x.length).toBe(y.length);
    expect(x.subarray(header).equals(y.subarray(header))).toBe(false);
  });
});

describe('keys', () => {
  const keyB64 = Buffer.from(testKeyHex, 'hex').toString('base64');
  const otherKey = 'ee'.repeat(32);

  it('the key is nowhere in the stored record', async () => {
    const codec = await codecForBackup(instanceWith('zstd', true));
    const json = JSON.stringify(codec.stored);
    expect(json).not.toContain(testKeyHex);
    expect(json).not.toContain(keyB64);
    expect(json).not.toContain(testKeyHex.toUpperCase());
    expect(JSON.stringify(codec)).not.toContain(testKeyHex);
    expect(Object.keys(codec.stored!.encryption!).sort()).toEqual(['alg', 'frameBytes', 'keyId', 'wrappedKey']);
    expect(codec.stored!.encryption!.keyId).toMatch(/^[0-9a-f]{16}$/);
  });

  it('a wrong key fails in codecForReading, before any byte is decoded, naming both key ids', async () => {
    const codec = await codecForBackup(instanceWith('zstd', true));
    const needs = codec.stored!.encryption!.keyId;
    const err = await rejection(codecForReading(codec.stored, instanceWith('zstd', true, otherKey)));
    expect(err.code).toBe('config');
    expect(err.message).toMatch(/^the key in instances\.shop\.encryption\.key does not open this backup \(key id [0-9a-f]{16}, the backup needs [0-9a-f]{16}\)$/);
    expect(err.message).toContain(`the backup needs ${needs}`);
    expect(err.hint).toContain(needs);
    for (const text of [err.message, err.hint ?? '', JSON.stringify(err)]) {
      expect(text).not.toContain(otherKey);
      expect(text).not.toContain(testKeyHex);
    }
  });

  it('an encrypted backup read by an instance without encryption: says it is encrypted and which key id it needs', async () => {
    const codec = await codecForBackup(instanceWith('lz4', true));
    const needs = codec.stored!.encryption!.keyId;
    const err = await rejection(codecForReading(codec.stored, instanceWith('lz4', false)));
    expect(err.code).toBe('config');
    expect(err.message).toContain('encrypted');
    expect(err.message).toContain(needs);
    expect(err.message).toContain('instances.shop.encryption');
  });

  it('the right key id with a damaged wrapped key is an archive error, found before any byte is decoded', async () => {
    const codec = await codecForBackup(instanceWith('none', true));
    const wrapped = Buffer.from(codec.stored!.encryption!.wrappedKey, 'base64');
    wrapped[20]! ^= 1;
    const stored: StoredCodec = { ...codec.stored!, encryption: { ...codec.stored!.encryption!, wrappedKey: wrapped.toString('base64') } };
    const err = await rejection(codecForReading(stored, instanceWith('none', true)));
    expect(err.code).toBe('archive');
    expect(err.message).toMatch(/wrapped key is damaged/);
    expect(err.message).not.toContain(testKeyHex);
  });

  it('a manifest naming an unknown compression or cipher fails clearly', async () => {
    const unknown = await rejection(codecForReading({ compression: 'brotli' } as unknown as StoredCodec, instanceWith('none', false)));
    expect(unknown.code).toBe('archive');
    expect(unknown.message).toContain('"brotli"');
    expect(unknown.message).toContain('zstd, lz4, gzip');
    const codec = await codecForBackup(instanceWith('none', true));
    const alg = await rejection(codecForReading({ ...codec.stored!, encryption: { ...codec.stored!.encryption!, alg: 'chacha20' as 'aes-256-gcm' } }, instanceWith('none', true)));
    expect(alg.code).toBe('archive');
    expect(alg.message).toContain('"chacha20"');
  });
});

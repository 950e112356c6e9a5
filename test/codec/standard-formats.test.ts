/**
 * What ebr stores is what the standard tools read: a zstd stream `zstd -d` unpacks, a gzip stream
 * `gzip -d` unpacks, lz4 frames `lz4 -d` unpacks. Where a tool is not on the machine the stream is
 * checked with the library's own decoder instead, and the test's name says so.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { decompressFrame } from 'lz4-napi';
import { DecompressStream } from 'zstd-napi';
import binding from 'zstd-napi/binding.js';
import { afterAll, describe, expect, it } from 'vitest';
import { codecForBackup } from '../../src/archive/codec/index.js';
import { tempDir } from '../helpers/env.js';
import { encode, instanceWith } from './codec-helpers.js';
import { sampleData } from './sample-data.js';

const t = tempDir('ebr-codec-formats-');
afterAll(() => t.cleanup());

function has(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

/** 5 MiB across several 1 MiB blocks, and a tail that is not a whole block. */
const data = Buffer.concat([...sampleData((5 << 20) + 4096, 64 << 10)]);

async function storedWith(type: 'zstd' | 'gzip' | 'lz4', level?: number): Promise<Buffer> {
  const codec = await codecForBackup({ name: 'shop', compression: { type, ...(level !== undefined ? { level } : {}) } });
  return encode(codec, data, 100_000);
}

function cli(tool: string, stored: Buffer, name: string): Buffer {
  const file = path.join(t.dir, name);
  writeFileSync(file, stored);
  return execFileSync(tool, ['-dc', file], { maxBuffer: 1 << 30 });
}

describe('stored streams are standard', () => {
  const zstd = has('zstd');
  it(zstd ? 'zstd: `zstd -dc` unpacks the stored stream, one frame with its checksum' : 'zstd: the zstd tool is not installed, so the stored stream is checked with zstd-napi\'s own stream decoder instead, one frame with its checksum', async () => {
    const stored = await storedWith('zstd', 5);
    // One frame over the whole stream, ending where the stream ends.
    expect(binding.findFrameCompressedSize(stored)).toBe(stored.length);
    // The frame header's checksum flag (bit 2 of the descriptor after the 4-byte magic).
    expect(stored.readUInt32LE(0)).toBe(0xfd2fb528);
    expect(stored[4]! & 0x04).toBe(0x04);
    if (zstd) {
      expect(cli('zstd', stored, 'main.tar.zst').equals(data)).toBe(true);
    } else {
      const d = new DecompressStream();
      const parts: Buffer[] = [];
      d.on('data', (b: Buffer) => parts.push(b));
      await new Promise<void>((resolve, reject) => {
        d.on('end', resolve);
        d.on('error', reject);
        d.end(stored);
      });
      expect(Buffer.concat(parts).equals(data)).toBe(true);
    }
  });

  const gzip = has('gzip');
  it(gzip ? 'gzip: `gzip -dc` unpacks the stored stream (a member per 1 MiB)' : 'gzip: the gzip tool is not installed, so the stored stream is checked with node:zlib\'s gunzip instead', async () => {
    const stored = await storedWith('gzip');
    expect(stored.subarray(0, 2).toString('hex')).toBe('1f8b');
    expect((gzip ? cli('gzip', stored, 'main.tar.gz') : zlib.gunzipSync(stored)).equals(data)).toBe(true);
  });

  const lz4 = has('lz4');
  it(lz4 ? 'lz4: `lz4 -dc` unpacks the stored stream (an LZ4 frame per 256 KiB, concatenated)' : 'lz4: the lz4 tool is not installed, so the stored frames are checked one by one with lz4-napi\'s decompressFrame instead', async () => {
    const stored = await storedWith('lz4');
    expect(stored.readUInt32LE(0)).toBe(0x184d2204);
    if (lz4) {
      expect(cli('lz4', stored, 'main.tar.lz4').equals(data)).toBe(true);
    } else {
      // Split at the frame magic: each 256 KiB block is a frame of its own.
      const parts: Buffer[] = [];
      let at = 0;
      while (at < stored.length) {
        let next = stored.indexOf(Buffer.from([0x04, 0x22, 0x4d, 0x18]), at + 4);
        if (next < 0) next = stored.length;
        parts.push(await decompressFrame(stored.subarray(at, next)));
        at = next;
      }
      expect(Buffer.concat(parts).equals(data)).toBe(true);
    }
  });
});

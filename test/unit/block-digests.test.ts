/**
 * Block digests and the incremental stream of one file, on real files: the digests do not depend on
 * how the reads cut the bytes, only changed blocks are stored with runs that point at the backup
 * holding the others, and a copy that changes between the two reads fails instead of storing a mix.
 */
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { MemberHeader, SpaceWriter, WrittenMember } from '../../src/archive/archive-target.js';
import { BlockHasher, BlockList, blockDigestOf, encodeBlocks, inBlocks } from '../../src/archive/block-digests.js';
import { manifestFormat, parseManifest, type ManifestMember } from '../../src/archive/manifest.js';
import { streamChangedBlocks } from '../../src/workflow/stream-blocks.js';
import { tempDir } from '../helpers/env.js';

const t = tempDir('ebr-blocks-');
afterAll(() => t.cleanup());
const bs = 4096;
const digest = (b: Buffer) => createHash('sha256').update(b).digest();

async function* pieces(data: Buffer, sizes: number[]): AsyncGenerator<Buffer> {
  let at = 0;
  for (let k = 0; at < data.length; k++) {
    const n = sizes[k % sizes.length]!;
    yield data.subarray(at, at + n);
    at += n;
  }
}

/** A space writer that keeps the bodies it is given. */
function collector(): SpaceWriter & { bodies: Buffer[] } {
  const bodies: Buffer[] = [];
  return {
    bodies,
    async addFile(header: MemberHeader, source: AsyncIterable<Buffer>): Promise<WrittenMember> {
      const parts: Buffer[] = [];
      for await (const b of source) parts.push(Buffer.from(b));
      const body = Buffer.concat(parts);
      expect(body.length).toBe(header.size);
      bodies.push(body);
      return { name: header.name, size: body.length, sha256: createHash('sha256').update(body).digest('hex'), offset: 0 };
    },
    async addEntry(header: MemberHeader) {
      return { name: header.name, size: 0, sha256: '', offset: 0 };
    },
    async close() {
      return { file: 'x', bytes: 0 };
    },
  };
}

describe('block digests', () => {
  const data = randomBytes(bs * 5 + 123);
  const expected = [0, 1, 2, 3, 4, 5].map((i) => digest(data.subarray(i * bs, (i + 1) * bs)));

  it('are the same however the source cuts its pieces (sha256 ones are the sha256 of each block)', async () => {
    for (const sizes of [[1], [bs], [bs - 1, 2], [3 * bs + 7], [data.length]]) {
      const h = await BlockHasher.create(bs, 'sha256');
      for await (const p of pieces(data, sizes)) h.update(p);
      expect(h.finish()).toEqual(expected);
    }
  });

  it('xxh128 ones: 16 bytes a block, one per block content, the same however the pieces are cut, and checked by BlockList', async () => {
    const whole = await BlockHasher.create(bs, 'xxh128');
    whole.update(data);
    const ref = whole.finish();
    expect(ref.map((d) => d.length)).toEqual([16, 16, 16, 16, 16, 16]);
    expect(new Set(ref.map((d) => d.toString('hex'))).size).toBe(6);
    for (const sizes of [[1], [bs - 1, 2], [3 * bs + 7]]) {
      const h = await BlockHasher.create(bs, 'xxh128');
      for await (const p of pieces(data, sizes)) h.update(p);
      expect(h.finish()).toEqual(ref);
    }
    const list = await BlockList.parse(encodeBlocks(ref), 6, 'f', 'xxh128');
    expect(list.matches(2, data.subarray(2 * bs, 3 * bs))).toBe(true);
    const edited = Buffer.from(data.subarray(2 * bs, 3 * bs));
    edited[100] ^= 1;
    expect(list.matches(2, edited)).toBe(false);
    // A list of the other kind does not fit: 32-byte digests read as 16-byte ones are twice as many.
    await expect(BlockList.parse(encodeBlocks(expected), 6, 'f', 'xxh128')).rejects.toThrow(/lists 12 xxh128 block digests, but its size makes 6 blocks/);
  });

  it('inBlocks hands out whole blocks and a short last one', async () => {
    const got: Buffer[] = [];
    for await (const b of inBlocks(pieces(data, [1000, 5000]), bs)) got.push(Buffer.from(b));
    expect(got.map((b) => b.length)).toEqual([bs, bs, bs, bs, bs, 123]);
    expect(Buffer.concat(got).equals(data)).toBe(true);
  });

  it('BlockList refuses a list that does not fit the size', async () => {
    await expect(BlockList.parse(encodeBlocks(expected), 5, 'f', 'sha256')).rejects.toThrow(/lists 6 sha256 block digests, but its size makes 5 blocks/);
  });
});

describe('streamChangedBlocks', () => {
  const file = path.join(t.dir, 'data');
  const base = randomBytes(bs * 8);
  const parent: ManifestMember = {
    space: 's', name: 'data', path: file, type: 'file', size: base.length, stream: 'x', offset: 0,
    sha256: createHash('sha256').update(base).digest('hex'),
    blocks: encodeBlocks(Array.from({ length: 8 }, (_, i) => digest(base.subarray(i * bs, (i + 1) * bs)))),
  };
  const header: MemberHeader = { name: 'data', type: 'file', size: base.length };
  const pass = (s: AsyncIterable<Buffer>) => s;

  it('stores only the changed blocks, the others as runs of the parent', async () => {
    const now = Buffer.from(base);
    randomBytes(10).copy(now, 2 * bs + 5);
    randomBytes(10).copy(now, 6 * bs);
    writeFileSync(file, now);
    const out = collector();
    const r = await streamChangedBlocks({ file, size: now.length, header, parent, base: { backupId: 'P', blockSize: bs, blockDigest: 'sha256', members: new Map() }, out, throttle: pass, limit: pass, signal: new AbortController().signal });
    expect(r.changed).toBe(2);
    expect(out.bodies[0]!.equals(Buffer.concat([now.subarray(2 * bs, 3 * bs), now.subarray(6 * bs, 7 * bs)]))).toBe(true);
    expect(r.member.parts).toEqual([
      { backup: 'P', at: 0, count: 2 },
      { at: 0, count: 1 },
      { backup: 'P', at: 3, count: 3 },
      { at: 1, count: 1 },
      { backup: 'P', at: 7, count: 1 },
    ]);
    expect(r.member.sha256).toBe(createHash('sha256').update(now).digest('hex'));
    expect(r.member.body!.size).toBe(2 * bs);
  });

  it('fails when the copy changes between its two reads', async () => {
    const now = Buffer.from(base);
    randomBytes(10).copy(now, 4 * bs);
    writeFileSync(file, now);
    // Once the first read has ended, the changed block is changed again, as an unfrozen copy would be.
    async function* thenChange(s: AsyncIterable<Buffer>) {
      yield* s;
      const fd = openSync(file, 'r+');
      writeSync(fd, randomBytes(4), 0, 4, 4 * bs + 100);
      closeSync(fd);
    }
    const out = collector();
    await expect(streamChangedBlocks({ file, size: now.length, header, parent, base: { backupId: 'P', blockSize: bs, blockDigest: 'sha256', members: new Map() }, out, throttle: thenChange, limit: pass, signal: new AbortController().signal })).rejects.toThrow(/block 4 of .* changed between its two reads: the copy was not frozen/);
  });
});

describe('the manifest names the kind of its block digests', () => {
  const base = { format: manifestFormat, spaces: [], members: [] };
  it('absent means sha256 (backups made before the kind was recorded); a known kind is kept', () => {
    expect(blockDigestOf(parseManifest(JSON.stringify(base), 'm.json'))).toBe('sha256');
    expect(blockDigestOf(parseManifest(JSON.stringify({ ...base, blockDigest: 'xxh128' }), 'm.json'))).toBe('xxh128');
  });
  it('an unknown kind is refused, naming it and the known ones', () => {
    expect(() => parseManifest(JSON.stringify({ ...base, blockDigest: 'blake3' }), 'm.json')).toThrow(/block digests of kind "blake3", which this ebr does not know \(it knows sha256, xxh128\): the backup was made by a newer ebr/);
  });
});

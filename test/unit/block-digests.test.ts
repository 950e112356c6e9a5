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
import { BlockHasher, BlockList, encodeBlocks, inBlocks } from '../../src/archive/block-digests.js';
import type { ManifestMember } from '../../src/archive/manifest.js';
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

  it('are the same however the source cuts its pieces', async () => {
    for (const sizes of [[1], [bs], [bs - 1, 2], [3 * bs + 7], [data.length]]) {
      const h = new BlockHasher(bs);
      for await (const p of pieces(data, sizes)) h.update(p);
      expect(h.finish()).toEqual(expected);
    }
  });

  it('inBlocks hands out whole blocks and a short last one', async () => {
    const got: Buffer[] = [];
    for await (const b of inBlocks(pieces(data, [1000, 5000]), bs)) got.push(Buffer.from(b));
    expect(got.map((b) => b.length)).toEqual([bs, bs, bs, bs, bs, 123]);
    expect(Buffer.concat(got).equals(data)).toBe(true);
  });

  it('BlockList refuses a list that does not fit the size', () => {
    expect(() => BlockList.parse(encodeBlocks(expected), 5, 'f')).toThrow(/lists 6 block digests, but its size makes 5 blocks/);
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
    const r = await streamChangedBlocks({ file, size: now.length, header, parent, base: { backupId: 'P', blockSize: bs, members: new Map() }, out, throttle: pass, limit: pass, signal: new AbortController().signal });
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
    await expect(streamChangedBlocks({ file, size: now.length, header, parent, base: { backupId: 'P', blockSize: bs, members: new Map() }, out, throttle: thenChange, limit: pass, signal: new AbortController().signal })).rejects.toThrow(/block 4 of .* changed between its two reads: the copy was not frozen/);
  });
});

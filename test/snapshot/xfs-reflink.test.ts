/** The reflink provider on a real XFS made with reflink=1: clones share blocks (no copy), hold frozen bytes, and are cleaned up. */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statfsSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkOf } from '../../src/chunks.js';
import { EbrError } from '../../src/errors.js';
import type { Chunk } from '../../src/model.js';
import { reflinkProvider } from '../../src/snapshot/reflink-provider.js';
import { volumesOf } from '../../src/snapshot/volumes.js';
import { recordJournal } from './journal-recorder.js';
import { makeLoopFs, type LoopFs } from './loopfs.js';

const never = new AbortController().signal;
const usedBytes = (p: string) => {
  const s = statfsSync(p);
  return (s.blocks - s.bfree) * s.bsize;
};

describe('reflink provider on a loop-device XFS (reflink=1)', () => {
  let xfs: LoopFs | undefined;
  let ext4: LoopFs | undefined;
  beforeAll(() => {
    xfs = makeLoopFs('xfs', 600);
  });
  afterAll(() => {
    ext4?.teardown();
    xfs?.teardown();
  });

  it('clones 64 MiB without copying it, and the clone keeps the bytes while the live file changes', async () => {
    const dir = path.join(xfs!.mountPoint, 'db');
    mkdirSync(dir);
    const data = randomBytes(64 << 20);
    writeFileSync(path.join(dir, 'big.db'), data);
    const chunk = (await chunkOf('main', 'big.db', path.join(dir, 'big.db'))) as Chunk;
    const provider = reflinkProvider({});
    const request = { backupId: '20260101T000000Z-xfs1', chunks: [chunk], volumes: volumesOf([chunk]) };
    await provider.check(request, never);
    const before = usedBytes(xfs!.mountPoint);
    const rec = recordJournal();
    const snap = await provider.take({ ...request, journal: rec.journal }, never);
    try {
      // A clone shares the file's extents: the filesystem barely grows (a real copy would add 64 MiB).
      expect(usedBytes(xfs!.mountPoint) - before).toBeLessThan(4 << 20);
      writeFileSync(path.join(dir, 'big.db'), randomBytes(1 << 20), { flag: 'r+' });
      expect(readFileSync(snap.pathOf(chunk)).equals(data)).toBe(true);
    } finally {
      await snap.release();
    }
    expect(rec.open()).toEqual([]);
    expect(readdirSync(dir)).toEqual(['big.db']);
  });

  it('refuses, outside the window, a filesystem without reflinks (ext4), naming it', async () => {
    ext4 = makeLoopFs('ext4', 64);
    writeFileSync(path.join(ext4.mountPoint, 'x.db'), 'x');
    const chunk = (await chunkOf('main', 'x.db', path.join(ext4.mountPoint, 'x.db'))) as Chunk;
    const err = (await reflinkProvider({}).check({ backupId: 'b', chunks: [chunk], volumes: [] }, never).catch((e: unknown) => e)) as EbrError;
    expect(err).toBeInstanceOf(EbrError);
    expect(err.message).toContain(`ext4 at ${ext4.mountPoint} does not support reflinks`);
    expect(existsSync(path.join(ext4.mountPoint, 'x.db'))).toBe(true);
    expect(readdirSync(ext4.mountPoint).filter((f) => f.startsWith('.ebr'))).toEqual([]);
  });
});

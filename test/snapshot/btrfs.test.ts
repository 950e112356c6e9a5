/** The btrfs provider on a real btrfs made on a loop device: frozen bytes, every subvolume in one take, cleanup. */
import { appendFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkOf } from '../../src/chunks.js';
import { EbrError } from '../../src/errors.js';
import type { Chunk } from '../../src/model.js';
import { btrfsProvider } from '../../src/snapshot/btrfs-provider.js';
import { snapshotProviders } from '../../src/snapshot/index.js';
import { volumesOf } from '../../src/snapshot/volumes.js';
import { recordJournal } from './journal-recorder.js';
import { makeLoopFs, requireTools, sh, subvolumes, type LoopFs } from './loopfs.js';

const never = new AbortController().signal;

async function chunk(space: string, name: string, p: string): Promise<Chunk> {
  const c = await chunkOf(space, name, p);
  if (!c) throw new Error(`no file at ${p}`);
  return c;
}

describe('btrfs provider on a loop-device btrfs', () => {
  let fs: LoopFs | undefined;
  let other: LoopFs | undefined;
  let root: string;
  const bytes = { a: randomBytes(300_000), nested: randomBytes(70_000), top: randomBytes(5_000), viaSubvolMount: randomBytes(1000) };

  beforeAll(() => {
    requireTools('btrfs', 'mkfs.btrfs');
    fs = makeLoopFs('btrfs', 512);
    root = fs.mountPoint;
    // Three subvolumes hold chunks: the top level, `data`, and `data/nested` inside it.
    sh('btrfs', ['subvolume', 'create', path.join(root, 'data')]);
    sh('btrfs', ['subvolume', 'create', path.join(root, 'data/nested')]);
    mkdirSync(path.join(root, 'data/base/1'), { recursive: true });
    writeFileSync(path.join(root, 'data/base/1/a'), bytes.a);
    writeFileSync(path.join(root, 'data/nested/n'), bytes.nested);
    mkdirSync(path.join(root, 'plain'));
    writeFileSync(path.join(root, 'plain/top'), bytes.top);
    symlinkSync('../plain/top', path.join(root, 'data/link'));
  });
  afterAll(() => {
    other?.teardown();
    fs?.teardown();
  });

  it('snapshots every subvolume involved in one take, and pathOf reads frozen bytes while the live files change', async () => {
    const chunks = [
      await chunk('main', 'base/1/a', path.join(root, 'data/base/1/a')),
      await chunk('main', 'base', path.join(root, 'data/base')),
      await chunk('main', 'link', path.join(root, 'data/link')),
      await chunk('side', 'n', path.join(root, 'data/nested/n')),
      await chunk('top', 'top', path.join(root, 'plain/top')),
    ];
    const provider = btrfsProvider({ provider: 'btrfs' });
    const request = { backupId: '20260101T000000Z-aaaa', chunks, volumes: volumesOf(chunks) };
    await provider.check(request, never);
    const rec = recordJournal();
    const snap = await provider.take({ ...request, journal: rec.journal }, never);
    try {
      // One snapshot per subvolume, each journaled before it existed.
      const created = rec.events.filter((e) => e.what === 'created');
      expect(created.map((e) => e.resource.details?.subvolume).sort()).toEqual([root, path.join(root, 'data'), path.join(root, 'data/nested')].sort());
      expect(created.every((e) => !e.existed)).toBe(true);
      expect(created.every((e) => existsSync(e.resource.path))).toBe(true);
      expect(Object.keys(snap.steps ?? {})).toEqual(expect.arrayContaining(['resolve', 'snapshots', `subvolume ${path.join(root, 'data')}`]));

      // The live files change after the snapshot…
      writeFileSync(path.join(root, 'data/base/1/a'), randomBytes(10));
      appendFileSync(path.join(root, 'data/nested/n'), 'more');
      writeFileSync(path.join(root, 'plain/top'), 'changed');
      writeFileSync(path.join(root, 'data/base/new'), 'new');

      // …and the snapshot still holds the bytes of the moment it was taken.
      expect(readFileSync(snap.pathOf(chunks[0]!)).equals(bytes.a)).toBe(true);
      expect(readFileSync(snap.pathOf(chunks[3]!)).equals(bytes.nested)).toBe(true);
      expect(readFileSync(snap.pathOf(chunks[4]!)).equals(bytes.top)).toBe(true);
      expect(readdirSync(snap.pathOf(chunks[1]!)).sort()).toEqual(['1']);
      expect(lstatSync(snap.pathOf(chunks[2]!)).isSymbolicLink()).toBe(true);
      expect(readlinkSync(snap.pathOf(chunks[2]!))).toBe('../plain/top');
      // Read-only: nothing can write into the frozen copy.
      expect(() => writeFileSync(snap.pathOf(chunks[0]!), 'x')).toThrow(/EROFS|read-only/);
    } finally {
      await snap.release();
    }
    expect(rec.open()).toEqual([]);
    expect(subvolumes(root).filter((p) => p.includes('.ebr-snapshot-'))).toEqual([]);
    await snap.release(); // twice is harmless
  });

  it('reads a subvolume mounted with subvol= and refuses a bind mount of a directory inside one', async () => {
    const at = path.join(path.dirname(root), 'subvol-mount');
    const bind = path.join(path.dirname(root), 'bind-mount');
    mkdirSync(at, { recursive: true });
    mkdirSync(bind, { recursive: true });
    sh('mount', ['-o', 'subvol=data', fs!.device, at]);
    try {
      writeFileSync(path.join(at, 'via'), bytes.viaSubvolMount);
      const c = await chunk('main', 'via', path.join(at, 'via'));
      const provider = btrfsProvider({ provider: 'btrfs' });
      const request = { backupId: '20260101T000000Z-bbbb', chunks: [c], volumes: volumesOf([c]) };
      await provider.check(request, never);
      const rec = recordJournal();
      const snap = await provider.take({ ...request, journal: rec.journal }, never);
      writeFileSync(path.join(at, 'via'), 'changed');
      expect(readFileSync(snap.pathOf(c)).equals(bytes.viaSubvolMount)).toBe(true);
      expect(snap.pathOf(c).startsWith(path.join(at, '.ebr-snapshot-'))).toBe(true);
      await snap.release();

      sh('mount', ['--bind', path.join(root, 'data/base'), bind]);
      try {
        const b = await chunk('main', 'x', path.join(bind, '1/a'));
        const err = await btrfsProvider({ provider: 'btrfs' })
          .check({ backupId: '20260101T000000Z-cccc', chunks: [b], volumes: volumesOf([b]) }, never)
          .catch((e: unknown) => e);
        expect(err).toBeInstanceOf(EbrError);
        expect((err as EbrError).message).toMatch(/bind mount|subdirectory/);
        expect((err as EbrError).hint).toMatch(/subvol=/);
      } finally {
        sh('umount', [bind]);
      }
    } finally {
      sh('umount', [at]);
    }
  });

  it('removeLeftover deletes what a crashed run journaled, tolerates what it never made, and refuses anything else', async () => {
    const c = await chunk('main', 'base/1/a', path.join(root, 'data/base/1/a'));
    const rec = recordJournal();
    // A run that took its snapshot and died before release.
    const crashed = await btrfsProvider({ provider: 'btrfs' }).take({ backupId: '20260101T000000Z-dddd', chunks: [c], volumes: volumesOf([c]), journal: rec.journal }, never);
    const left = rec.open();
    expect(left).toHaveLength(1);
    expect(existsSync(left[0]!.path)).toBe(true);
    expect(crashed.pathOf(c)).toContain(left[0]!.path);
    // The next command builds the provider from nothing but its name, as crash recovery does.
    const fresh = snapshotProviders.btrfs!({ provider: 'btrfs' });
    await fresh.removeLeftover(left[0]!);
    expect(existsSync(left[0]!.path)).toBe(false);
    await fresh.removeLeftover(left[0]!); // gone already: fine
    await fresh.removeLeftover({ ...left[0]!, path: path.join(root, 'data/.ebr-snapshot-never-made-0') });
    // The journal names one path; a path not named like ebr's snapshots is never deleted, even if it is a subvolume.
    await expect(fresh.removeLeftover({ provider: 'btrfs', kind: 'btrfs-snapshot', path: path.join(root, 'data/nested') })).rejects.toThrow(/refusing/);
    // Named like one but a plain directory: refused too (only subvolumes are deleted).
    mkdirSync(path.join(root, 'data/.ebr-snapshot-plain-dir'));
    await expect(fresh.removeLeftover({ provider: 'btrfs', kind: 'btrfs-snapshot', path: path.join(root, 'data/.ebr-snapshot-plain-dir') })).rejects.toThrow(/not a btrfs subvolume/);
    expect(existsSync(path.join(root, 'data/nested/n'))).toBe(true);
    expect(existsSync(path.join(root, 'data/.ebr-snapshot-plain-dir'))).toBe(true);
  });

  it('fails check naming the chunk and the volume for a file on a non-btrfs volume, unless copyFallback allows a copy inside the window', async () => {
    other = makeLoopFs('xfs', 300);
    const extFile = path.join(other.mountPoint, 'ts/rel1');
    mkdirSync(path.dirname(extFile));
    const extBytes = randomBytes(123_456);
    writeFileSync(extFile, extBytes);
    const chunks = [await chunk('main', 'base/1/a', path.join(root, 'data/base/1/a')), await chunk('tblspc', 'pg_tblspc/rel1', extFile)];
    const frozenA = readFileSync(chunks[0]!.path);
    const request = { backupId: '20260101T000000Z-eeee', chunks, volumes: volumesOf(chunks) };

    const err = (await btrfsProvider({ provider: 'btrfs' }).check(request, never).catch((e: unknown) => e)) as EbrError;
    expect(err).toBeInstanceOf(EbrError);
    expect(err.code).toBe('snapshot');
    expect(err.message).toContain('chunk pg_tblspc/rel1 of space tblspc');
    expect(err.message).toContain(`xfs volume ${other.device} mounted at ${other.mountPoint}`);
    expect(err.hint).toMatch(/copyFallback/);

    for (const copyFallback of [[`${other.mountPoint}/**`], [other.mountPoint], ['space:tblspc'], ['pg_tblspc/*']]) {
      const staging = path.join(root, 'staging');
      const provider = btrfsProvider({ provider: 'btrfs', staging, copyFallback });
      await provider.check(request, never);
      const rec = recordJournal();
      const snap = await provider.take({ ...request, journal: rec.journal }, never);
      try {
        writeFileSync(extFile, 'changed after the window');
        expect(readFileSync(snap.pathOf(chunks[1]!)).equals(extBytes)).toBe(true);
        expect(readFileSync(snap.pathOf(chunks[0]!)).equals(frozenA)).toBe(true);
        expect(snap.steps?.['copy-fallback']).toBeGreaterThan(0);
        expect(rec.open().map((r) => `${r.provider}:${r.kind}`).sort()).toEqual(['btrfs:btrfs-snapshot', 'btrfs:staging-dir']);
      } finally {
        await snap.release();
        writeFileSync(extFile, extBytes);
      }
      expect(rec.open()).toEqual([]);
      expect(existsSync(staging) ? readdirSync(staging) : []).toEqual([]);
    }
  });
});

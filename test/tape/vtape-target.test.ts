/**
 * The vtape target through the archive target API, on real files: three spaces spanning 4 MiB
 * cartridges with 64 KiB blocks, read back whole and one at a time (counting the blocks the drive
 * reads), labels, placement and capacity checked on disk, abort, remove, a second backup, a flipped byte.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, readFileSync, readdirSync, statSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArchiveTarget } from '../../src/archive/archive-target.js';
import { identityCodec } from '../../src/archive/codec.js';
import type { Manifest } from '../../src/archive/manifest.js';
import type { TapePlacement } from '../../src/archive/tape/tape-format.js';
import { vtapeLogStore, vtapeTarget } from '../../src/archive/tape/vtape-target.js';
import { tree } from '../helpers/tree.js';
import { tempDir } from '../helpers/env.js';
import { CountingDrive, expectedOf, manifestSha, readSpace, sha, threeSpaces, writeBackup, type FixtureSpace } from './tape-fixture.js';

const KiB = 1024;
const MiB = 1 << 20;
const blockSize = 64 * KiB;
const capacity = 4 * MiB;
const t = tempDir('ebr-vtape-');
afterAll(() => t.cleanup());

const lib = path.join(t.dir, 'vtapes');
const drives: CountingDrive[] = [];
const target = (): ArchiveTarget =>
  vtapeTarget(
    { type: 'vtape', path: lib, capacity: '4MiB', blockSize: '64 KiB' },
    {
      wrapDrive: (d) => {
        const c = new CountingDrive(d);
        drives.push(c);
        return c;
      },
    },
  );
const ref1 = { instance: 'shop', backupId: '20260102T030405Z-0001' };
const ref2 = { instance: 'shop', backupId: '20260102T040405Z-0002' };

const cartridges = () => readdirSync(lib).filter((n) => n.startsWith('cart-')).sort();
const filesOf = (cart: string) => readdirSync(path.join(lib, cart)).sort();
const labelOf = (cart: string) => JSON.parse(readFileSync(path.join(lib, cart, 'file-0000')).subarray(0, 4096).toString('utf8').split('\n')[0]!) as Record<string, unknown>;
const headerOf = (cart: string, file: number) => JSON.parse(readFileSync(path.join(lib, cart, `file-${String(file).padStart(4, '0')}`)).subarray(0, 4096).toString('utf8').split('\n')[0]!) as Record<string, unknown>;
const placementOf = (m: Manifest, space: string) => m.spaces.find((s) => s.name === space)!.placement as unknown as TapePlacement;

describe('vtape: a backup of three spaces on 4 MiB cartridges', () => {
  let spaces: FixtureSpace[];
  let manifest: Manifest;
  const bigMeta = randomBytes(4 * MiB + 5);
  const meta = { backup_label: Buffer.from('START WAL LOCATION: 0/2000028\n'), 'big.meta': bigMeta };

  beforeAll(async () => {
    spaces = threeSpaces();
    manifest = await writeBackup(target(), ref1, spaces, meta);
  });

  it('spans the cartridges it needs, never past capacity, each one labelled with the backup and its volume', () => {
    const carts = cartridges();
    // ~15.4 MiB of spaces and a 4 MiB meta file, labels and headers: six cartridges of 4 MiB.
    expect(carts.length).toBeGreaterThanOrEqual(5);
    carts.forEach((cart, i) => {
      const sizes = filesOf(cart).map((f) => statSync(path.join(lib, cart, f)).size);
      expect(sizes.reduce((a, b) => a + b, 0), cart).toBeLessThanOrEqual(capacity);
      for (const s of sizes) expect(s % blockSize, cart).toBe(0);
      expect(filesOf(cart)[0]).toBe('file-0000');
      expect(labelOf(cart)).toMatchObject({ format: 'ebr-tape/1', kind: 'label', backupId: ref1.backupId, instance: 'shop', volume: i + 1, blockSize });
    });
    // Full cartridges are filled to the last block that fits: the end of medium comes at capacity.
    const first = filesOf(carts[0]!).map((f) => statSync(path.join(lib, carts[0]!, f)).size);
    expect(first.reduce((a, b) => a + b, 0)).toBe(capacity);
  });

  it('records in each placement the volumes, tape files and byte ranges the space lies on', () => {
    const carts = cartridges();
    const vols = (space: string) => placementOf(manifest, space).segments.map((s) => s.volume);
    expect(new Set(vols('big')).size).toBe(3);
    expect(new Set(vols('mid')).size).toBe(2);
    expect(vols('small')).toHaveLength(1);
    for (const s of manifest.spaces) {
      const p = placementOf(manifest, s.name);
      expect(p).toMatchObject({ medium: 'vtape', blockSize });
      let offset = 0;
      p.segments.forEach((seg, i) => {
        expect(seg.offset).toBe(offset);
        offset += seg.bytes;
        // The cartridge the placement names is the one labelled with that volume, and its tape file is this part.
        expect(seg.cartridge).toBe(carts[seg.volume - 1]);
        expect(headerOf(seg.cartridge!, seg.file)).toMatchObject({ kind: 'space', name: s.name, part: i + 1, offset: seg.offset, volume: seg.volume, file: seg.file });
        // Continued parts are file 1 of their cartridge, right after the label.
        if (i > 0) expect(seg.file).toBe(1);
        const size = statSync(path.join(lib, seg.cartridge!, `file-${String(seg.file).padStart(4, '0')}`)).size;
        expect(size).toBe(blockSize * (1 + Math.ceil(seg.bytes / blockSize)));
      });
      expect(offset).toBe(s.stored!.bytes);
    }
  });

  it('puts the meta files and then the manifest in their own tape files at the end', () => {
    const carts = cartridges();
    const last = carts.at(-1)!;
    const files = filesOf(last);
    const h = headerOf(last, files.length - 1);
    expect(h).toMatchObject({ kind: 'manifest', name: 'manifest.json', part: 1 });
    expect(Object.keys(h.meta as object).sort()).toEqual(['backup_label', 'big.meta']);
    expect(headerOf(last, files.length - 2)).toMatchObject({ kind: 'meta', name: 'big.meta' });
  });

  it('reads every member back with its digest, the manifest with the sha256 of its bytes, and the meta files', async () => {
    const r = await target().open(ref1);
    const file = await r.readManifestFile();
    expect(file.sha256).toBe(manifestSha(manifest));
    expect(file.manifest).toEqual(manifest);
    for (const s of spaces) expect(await readSpace(r, manifest, s.name)).toEqual(expectedOf(s));
    expect((await r.readMeta('backup_label')).equals(meta.backup_label)).toBe(true);
    expect(sha(await r.readMeta('big.meta'))).toBe(sha(bigMeta));
  });

  it('a partial read of one space reads none of the blocks of the other spaces', async () => {
    drives.length = 0;
    const r = await target().open(ref1);
    const m = (await r.readManifestFile()).manifest;
    for (const d of drives) d.reads.clear(); // count only what the space read needs
    expect(await readSpace(r, m, 'mid')).toEqual(expectedOf(spaces[1]!));
    const read = drives.flatMap((d) => [...d.reads.entries()]);
    const others = ['big', 'small'].flatMap((s) => placementOf(m, s).segments.map((seg) => `${seg.cartridge}:${seg.file}`));
    for (const [k] of read) expect(others, `read ${k}`).not.toContain(k);
    // Exactly the header and data blocks of mid's segments, and at most a label per cartridge besides.
    for (const seg of placementOf(m, 'mid').segments) {
      const blocks = read.find(([k]) => k === `${seg.cartridge}:${seg.file}`)?.[1];
      expect(blocks).toBe(1 + Math.ceil(seg.bytes / blockSize));
    }
    const rest = read.filter(([k]) => !placementOf(m, 'mid').segments.some((seg) => k === `${seg.cartridge}:${seg.file}`));
    for (const [k, n] of rest) {
      expect(k.endsWith(':0'), k).toBe(true);
      expect(n).toBe(1);
    }
  });

  it('lists the backup by its labels, with its cartridges and the manifest as stored', async () => {
    const listed = await target().list!('shop');
    expect(listed.map((l) => l.backupId)).toEqual([ref1.backupId]);
    const carts = cartridges();
    expect(listed[0]!.location).toBe(`vtape:${lib} (${carts[0]}…${carts.at(-1)})`);
    expect(target().locationOf!(ref1)).toBe(listed[0]!.location);
    expect(sha((await listed[0]!.manifestBytes())!)).toBe(manifestSha(manifest));
    expect(await target().list!('other')).toEqual([]);
  });

  it('a second backup takes new cartridges and leaves the first backup\'s alone', async () => {
    const before = tree(lib);
    const firstCarts = cartridges();
    const small: FixtureSpace[] = [{ name: 'one', members: [{ name: 'one/x', type: 'file', data: randomBytes(1 * MiB + 3) }] }];
    const m2 = await writeBackup(target(), ref2, small);
    const after = tree(lib);
    for (const [p, v] of Object.entries(before)) expect(after[p], p).toBe(v);
    const newCarts = cartridges().filter((c) => !firstCarts.includes(c));
    expect(newCarts).toHaveLength(1);
    expect(labelOf(newCarts[0]!)).toMatchObject({ backupId: ref2.backupId, volume: 1 });
    expect(placementOf(m2, 'one').segments[0]!.cartridge).toBe(newCarts[0]);
    const r = await target().open(ref2);
    expect(await readSpace(r, (await r.readManifestFile()).manifest, 'one')).toEqual(expectedOf(small[0]!));
    expect((await target().list!('shop')).map((l) => l.backupId)).toEqual([ref1.backupId, ref2.backupId]);
  });

  it('a damaged block fails the read, naming the cartridge and tape file', async () => {
    const seg = placementOf(manifest, 'big').segments[1]!;
    const file = path.join(lib, seg.cartridge!, `file-${String(seg.file).padStart(4, '0')}`);
    const at = blockSize * 3 + 1000;
    const original = readFileSync(file).subarray(at, at + 1)[0]!;
    const flip = (v: number) => {
      const fd = openSync(file, 'r+');
      writeSync(fd, Buffer.from([v]), 0, 1, at);
      closeSync(fd);
    };
    flip(original ^ 0x20);
    try {
      const r = await target().open(ref1);
      const m = (await r.readManifestFile()).manifest;
      await expect(readSpace(r, m, 'big')).rejects.toThrow(new RegExp(`volume ${seg.volume} \\(${seg.cartridge}\\) tape file ${seg.file} does not match the sha256 written with it.*a block is damaged`));
      // The space's other members and the other spaces are still read whole.
      expect(await readSpace(r, m, 'small')).toEqual(expectedOf(spaces[2]!));
    } finally {
      flip(original);
    }
    // A space in one tape file, stored as it is: the tape file's own digest (the stream's records only its
    // frame, the bodies having their members' digests) tells, naming that tape file.
    const one = placementOf(manifest, 'small').segments[0]!;
    const oneFile = path.join(lib, one.cartridge!, `file-${String(one.file).padStart(4, '0')}`);
    const b = readFileSync(oneFile).subarray(blockSize + 2000, blockSize + 2001)[0]!;
    const poke = (v: number) => {
      const fd = openSync(oneFile, 'r+');
      writeSync(fd, Buffer.from([v]), 0, 1, blockSize + 2000);
      closeSync(fd);
    };
    poke(b ^ 1);
    try {
      const r = await target().open(ref1);
      await expect(readSpace(r, manifest, 'small')).rejects.toThrow(new RegExp(`volume ${one.volume} \\(${one.cartridge}\\) tape file ${one.file} does not match the sha256 written with it .*: a block is damaged`));
    } finally {
      poke(b);
    }
    // A damaged header is named as such.
    const hdr = path.join(lib, seg.cartridge!, `file-${String(seg.file).padStart(4, '0')}`);
    const fd = openSync(hdr, 'r+');
    writeSync(fd, Buffer.from('X'), 0, 1, 0);
    closeSync(fd);
    try {
      const r = await target().open(ref1);
      await expect(readSpace(r, manifest, 'big')).rejects.toThrow(/does not start with an ebr tape header/);
    } finally {
      const fd2 = openSync(hdr, 'r+');
      writeSync(fd2, Buffer.from('{'), 0, 1, 0);
      closeSync(fd2);
    }
    const r = await target().open(ref1);
    expect(await readSpace(r, manifest, 'big')).toEqual(expectedOf(spaces[0]!));
  });

  it('remove frees the backup\'s cartridges, which the next backup takes first', async () => {
    const mine = cartridges().filter((c) => labelOf(c).backupId === ref1.backupId);
    const other = tree(...cartridges().filter((c) => !mine.includes(c)).map((c) => path.join(lib, c)));
    await target().remove(ref1);
    for (const c of mine) expect(filesOf(c), c).toEqual([]);
    expect(tree(...cartridges().filter((c) => !mine.includes(c)).map((c) => path.join(lib, c)))).toEqual(other);
    expect((await target().list!('shop')).map((l) => l.backupId)).toEqual([ref2.backupId]);
    await expect((await target().open(ref1)).readManifestFile()).rejects.toThrow(/has no manifest/);
    // The freed cartridges are scratch again: the next backup starts on the first of them.
    const ref3 = { instance: 'shop', backupId: '20260102T050405Z-0003' };
    await writeBackup(target(), ref3, [{ name: 's', members: [{ name: 's/f', type: 'file', data: randomBytes(1000) }] }]);
    expect(labelOf(mine[0]!)).toMatchObject({ backupId: ref3.backupId, volume: 1 });
    await target().remove(ref3);
    await target().remove(ref1); // a backup that is gone already is no error
  });
});

describe('vtape: abort', () => {
  it('frees every cartridge the failed backup took and touches no other', async () => {
    const before = tree(lib);
    const carts = cartridges();
    const ref = { instance: 'shop', backupId: '20260102T060405Z-0004' };
    const w = await target().create(ref);
    expect(w.location).toMatch(/^vtape:.* \(cart-\d{4}\)$/);
    const out = await w.openSpace('s', identityCodec);
    const data = randomBytes(14 * MiB);
    await out.addFile({ name: 's/f', type: 'file', size: data.length }, (async function* () {
      yield data;
    })(), new AbortController().signal);
    // At most 8 MiB wait in the sink's queue: more than one cartridge is in use by now, and the space is never closed.
    expect(w.location).toMatch(/\(cart-\d{4}…cart-\d{4}\)$/);
    await w.abort();
    expect(tree(lib)).toEqual({ ...before, ...Object.fromEntries(cartridges().filter((c) => !carts.includes(c)).map((c) => [path.join(lib, c), expect.stringMatching(/ dir$/)])) });
    for (const c of cartridges()) if (!existsSync(path.join(lib, c, 'file-0000'))) expect(filesOf(c)).toEqual([]);
    expect((await target().list!('shop')).map((l) => l.backupId)).not.toContain(ref.backupId);
  });
});

describe('vtape: settings and logs', () => {
  it('refuses a capacity below a few blocks and bad sizes', () => {
    expect(() => vtapeTarget({ type: 'vtape', path: lib, capacity: '64KiB', blockSize: '64KiB' })).toThrow(/fewer than 8 blocks/);
    expect(() => vtapeTarget({ type: 'vtape', path: lib, capacity: '4 furlongs' })).toThrow(/KiB, MiB, GiB/);
    expect(() => vtapeTarget({ type: 'vtape', path: lib, capacity: '64MiB', blockSize: 1000 })).toThrow(/multiple of 512/);
    expect(vtapeTarget({ type: 'vtape', path: lib, capacity: 64 * MiB }).sequential).toBe(true);
  });

  it('keeps logs in a staging directory beside the cartridges', async () => {
    const store = vtapeLogStore({ path: lib }, 'shop', 'wal');
    const src = path.join(t.dir, '000000010000000000000001');
    const fd = openSync(src, 'w');
    writeSync(fd, randomBytes(1000));
    closeSync(fd);
    expect(await store.put('000000010000000000000001', src)).toBe('stored');
    expect(existsSync(path.join(lib, 'staging/shop/wal/000000010000000000000001'))).toBe(true);
    // The staging directory is no cartridge: listing and claiming pass it by.
    expect(await target().list!('shop')).toBeDefined();
  });
});

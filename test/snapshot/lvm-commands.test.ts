/**
 * The lvm provider, tested against the commands it issues: this machine has no device-mapper, so the
 * storage is a recorded command runner and a written mount table. What is asserted is the exact argv.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EbrError } from '../../src/errors.js';
import type { Chunk } from '../../src/model.js';
import { lvmProvider, lvNameOf } from '../../src/snapshot/lvm-provider.js';
import { tempDir } from '../helpers/env.js';
import { fakeMounts, fakeRunner } from './fake-storage.js';
import { recordJournal } from './journal-recorder.js';

const never = new AbortController().signal;
const id = '20260101T000000Z-abcd';
const file = (space: string, name: string, p: string): Chunk => ({ space, name, path: p, type: 'file', size: 8192 });
const lvsJson = (vg: string, lv: string, attr: string, pool = '') => JSON.stringify({ report: [{ lv: [{ vg_name: vg, lv_name: lv, lv_attr: attr, pool_lv: pool }] }] });

const mounts = fakeMounts([
  ['/', 'ext4', '/dev/vda'],
  ['/srv/pg', 'xfs', '/dev/mapper/vg0-pg--data'],
  // A thin volume, mounted from a subdirectory of its filesystem (bind mount): reads must go under that root.
  ['/srv/wal', 'ext4', '/dev/mapper/vg0-thin', '/walroot'],
  ['/srv/btr', 'btrfs', '/dev/mapper/vg0-btr'],
  ['/srv/disk', 'ext4', '/dev/sdb1'],
]);
const answers = (cmd: string) => {
  if (cmd.endsWith(' vg0/pg-data') && cmd.startsWith('lvs')) return { stdout: lvsJson('vg0', 'pg-data', '-wi-ao----') };
  if (cmd.endsWith(' vg0/thin') && cmd.startsWith('lvs')) return { stdout: lvsJson('vg0', 'thin', 'Vwi-aotz--', 'pool0') };
  return undefined;
};
const chunks = [file('main', 'base/1/1259', '/srv/pg/base/1/1259'), file('main', 'pg_wal/0001', '/srv/wal/0001')];

describe('lvm provider (commands only: no device-mapper here)', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());

  it('creates a classic and a thin snapshot in the window, mounts them read-only after it, and removes them at release', async () => {
    const fake = fakeRunner(answers);
    const mountDir = path.join(t.dir, 'mnt');
    const provider = lvmProvider({ provider: 'lvm', mountDir }, { run: fake.run, mounts });
    const request = { backupId: id, chunks, volumes: [] };
    await provider.check(request, never);
    expect(fake.calls).toEqual([
      'lvs --reportformat json --units b --nosuffix -o vg_name,lv_name,lv_attr,pool_lv vg0/pg-data',
      'lvs --reportformat json --units b --nosuffix -o vg_name,lv_name,lv_attr,pool_lv vg0/thin',
    ]);
    const rec = recordJournal((r) => fake.calls.some((c) => c.startsWith('lvcreate') && c.includes(`--name ${r.path.split('/')[1]} `)));
    const snap = await provider.take({ ...request, journal: rec.journal }, never);
    // Inside the window: only lvcreate, one per volume, each journaled first; check's lvs answers are reused.
    expect(fake.calls.slice(2)).toEqual([
      `lvcreate --snapshot --extents 10%ORIGIN --name ebr-${id}-0 vg0/pg-data`,
      `lvcreate --snapshot --setactivationskip n --name ebr-${id}-1 vg0/thin`,
    ]);
    expect(rec.events.map((e) => [e.what, e.resource.path, e.existed])).toEqual([
      ['created', `vg0/ebr-${id}-0`, false],
      ['created', `vg0/ebr-${id}-1`, false],
    ]);
    expect(() => snap.pathOf(chunks[0]!)).toThrow(/before Snapshot.open/);

    await snap.open!(never);
    expect(fake.calls.slice(4)).toEqual([
      `mount -t xfs -o ro,nouuid /dev/vg0/ebr-${id}-0 ${mountDir}/ebr-${id}-0`,
      `mount -t ext4 -o ro /dev/vg0/ebr-${id}-1 ${mountDir}/ebr-${id}-1`,
    ]);
    expect(snap.pathOf(chunks[0]!)).toBe(`${mountDir}/ebr-${id}-0/base/1/1259`);
    expect(snap.pathOf(chunks[1]!)).toBe(`${mountDir}/ebr-${id}-1/walroot/0001`);

    await snap.release();
    expect(fake.calls.slice(6)).toEqual([`umount ${mountDir}/ebr-${id}-1`, `lvremove --yes vg0/ebr-${id}-1`, `umount ${mountDir}/ebr-${id}-0`, `lvremove --yes vg0/ebr-${id}-0`]);
    expect(rec.open()).toEqual([]);
    expect(existsSync(`${mountDir}/ebr-${id}-0`)).toBe(false);
  });

  it('sizes classic snapshots from snapshot.size', async () => {
    const fake = fakeRunner(answers);
    const provider = lvmProvider({ provider: 'lvm', size: '4G', mountDir: path.join(t.dir, 'm2') }, { run: fake.run, mounts });
    const snap = await provider.take({ backupId: id, chunks: [chunks[0]!], volumes: [], journal: recordJournal(() => false).journal }, never);
    expect(fake.calls).toContain(`lvcreate --snapshot --size 4G --name ebr-${id}-0 vg0/pg-data`);
    await snap.release();
    expect(() => lvmProvider({ provider: 'lvm', size: 'lots' })).toThrow(/snapshot.size/);
  });

  it('a failed lvcreate fails take and removes the snapshots already made', async () => {
    const fake = fakeRunner((cmd) =>
      cmd.startsWith('lvcreate') && cmd.endsWith('vg0/thin')
        ? { exitCode: 5, stderr: '  Insufficient free space for thin snapshot' }
        : cmd === `lvremove --yes vg0/ebr-${id}-1`
          ? { exitCode: 5, stderr: `  Failed to find logical volume "vg0/ebr-${id}-1"` }
          : answers(cmd),
    );
    const rec = recordJournal(() => false);
    const err = (await lvmProvider({ provider: 'lvm', mountDir: path.join(t.dir, 'm3') }, { run: fake.run, mounts })
      .take({ backupId: id, chunks, volumes: [], journal: rec.journal }, never)
      .catch((e: unknown) => e)) as EbrError;
    expect(err.message).toContain(`lvcreate --snapshot --setactivationskip n --name ebr-${id}-1 vg0/thin failed (exit 5): Insufficient free space`);
    expect(fake.calls.filter((c) => c.startsWith('lvremove'))).toEqual([`lvremove --yes vg0/ebr-${id}-1`, `lvremove --yes vg0/ebr-${id}-0`]);
    expect(rec.open()).toEqual([]);
  });

  it('fails check naming the chunk and the volume for a plain partition and for btrfs', async () => {
    const fake = fakeRunner(answers);
    const provider = lvmProvider({ provider: 'lvm' }, { run: fake.run, mounts });
    const err = (await provider.check({ backupId: id, chunks: [chunks[0]!, file('t', 'x', '/srv/disk/x'), file('b', 'y', '/srv/btr/y')], volumes: [] }, never).catch((e: unknown) => e)) as EbrError;
    expect(err.message).toContain('chunk x of space t (/srv/disk/x) lies on the ext4 volume /dev/sdb1 mounted at /srv/disk, which the lvm provider cannot snapshot: it is not a device-mapper logical volume');
    expect(err.message).toContain('chunk y of space b (/srv/btr/y) lies on the btrfs volume /dev/mapper/vg0-btr');
    expect(err.hint).toMatch(/copyFallback/);
  });

  it('removeLeftover unmounts when mounted, removes only ebr-named snapshots, and tolerates one already gone', async () => {
    const dir = path.join(t.dir, 'left');
    const fake = fakeRunner((cmd) => (cmd.includes('gone') ? { exitCode: 5, stderr: '  Failed to find logical volume "vg0/ebr-gone"' } : undefined));
    const withMount = fakeMounts([['/', 'ext4', '/dev/vda'], [dir, 'xfs', `/dev/mapper/vg0-ebr--${id}--0`]]);
    const provider = lvmProvider({ provider: 'lvm' }, { run: fake.run, mounts: withMount });
    await provider.removeLeftover({ provider: 'lvm', kind: 'lvm-snapshot', path: `vg0/ebr-${id}-0`, details: { mountDir: dir } });
    await provider.removeLeftover({ provider: 'lvm', kind: 'lvm-snapshot', path: 'vg0/ebr-gone', details: { mountDir: path.join(t.dir, 'not-mounted') } });
    await expect(provider.removeLeftover({ provider: 'lvm', kind: 'lvm-snapshot', path: 'vg0/pg-data' })).rejects.toThrow(/refusing/);
    expect(fake.calls).toEqual([`umount ${dir}`, `lvremove --yes vg0/ebr-${id}-0`, 'lvremove --yes vg0/ebr-gone']);
  });

  it('maps device-mapper names to VG and LV', () => {
    expect(lvNameOf('/dev/mapper/vg--a-lv--b', () => undefined)).toEqual({ vg: 'vg-a', lv: 'lv-b' });
    expect(lvNameOf('/dev/dm-3', (d) => (d === '/dev/dm-3' ? 'data-pg' : undefined))).toEqual({ vg: 'data', lv: 'pg' });
    expect(lvNameOf('/dev/data/pg', () => undefined)).toEqual({ vg: 'data', lv: 'pg' });
    expect(lvNameOf('/dev/sda1', () => undefined)).toBeUndefined();
    expect(lvNameOf('/dev/disk/by-id/x', () => undefined)).toBeUndefined();
  });

  it('names the package when lvm2 is missing', async () => {
    const fake = fakeRunner(() => ({ exitCode: 127 }));
    const err = (await lvmProvider({ provider: 'lvm' }, { run: fake.run, mounts }).check({ backupId: id, chunks, volumes: [] }, never).catch((e: unknown) => e)) as EbrError;
    expect(err.hint).toBe('install it: apt-get install -y lvm2');
  });
});

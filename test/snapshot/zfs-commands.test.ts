/**
 * The zfs provider, tested against the commands it issues: this machine has no ZFS module, so the
 * storage is a recorded command runner and a written mount table. What is asserted is the exact argv.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EbrError } from '../../src/errors.js';
import type { Chunk } from '../../src/model.js';
import { zfsProvider } from '../../src/snapshot/zfs-provider.js';
import { tempDir } from '../helpers/env.js';
import { fakeMounts, fakeRunner } from './fake-storage.js';
import { recordJournal } from './journal-recorder.js';

const never = new AbortController().signal;
const id = '20260101T000000Z-abcd';
const file = (space: string, name: string, p: string, size = 8192): Chunk => ({ space, name, path: p, type: 'file', size });
const mounts = fakeMounts([
  ['/', 'ext4', '/dev/vda'],
  ['/tank/pg', 'zfs', 'tank/pg'],
  ['/tank/pg/wal', 'zfs', 'tank/pg/wal'],
  ['/fast/ts', 'zfs', 'fast/ts'],
]);
const chunks = [
  file('main', 'base/1/1259', '/tank/pg/base/1/1259'),
  file('main', 'pg_wal/000000010000000000000001', '/tank/pg/wal/000000010000000000000001'),
  file('fast', 'pg_tblspc/16384/PG_16/5/16385', '/fast/ts/PG_16/5/16385'),
];
const zfsList = 'tank/pg\t/tank/pg\ntank/pg/wal\t/tank/pg/wal\nfast/ts\t/fast/ts\n';

describe('zfs provider (commands only: no ZFS module here)', () => {
  it('snapshots all datasets of a pool in one command, reads through .zfs/snapshot, destroys at release', async () => {
    const fake = fakeRunner((cmd) => (cmd.startsWith('zfs list') ? { stdout: zfsList } : undefined));
    const provider = zfsProvider({ provider: 'zfs' }, { run: fake.run, mounts });
    const request = { backupId: id, chunks, volumes: [] };
    await provider.check(request, never);
    expect(fake.calls).toEqual(['zfs list -H -o name,mountpoint -t filesystem fast/ts tank/pg tank/pg/wal']);

    const rec = recordJournal((r) => fake.calls.some((c) => c.startsWith('zfs snapshot') && c.split(' ').includes(r.path)));
    const snap = await provider.take({ ...request, journal: rec.journal }, never);
    expect(fake.calls.slice(1)).toEqual([`zfs snapshot fast/ts@ebr-${id}`, `zfs snapshot tank/pg@ebr-${id} tank/pg/wal@ebr-${id}`]);
    // Every snapshot was journaled before its command ran.
    expect(rec.events.map((e) => [e.what, e.resource.path])).toEqual([
      ['created', `fast/ts@ebr-${id}`],
      ['created', `tank/pg@ebr-${id}`],
      ['created', `tank/pg/wal@ebr-${id}`],
    ]);
    expect(rec.events.every((e) => !e.existed)).toBe(true);
    expect(snap.pathOf(chunks[0]!)).toBe(`/tank/pg/.zfs/snapshot/ebr-${id}/base/1/1259`);
    expect(snap.pathOf(chunks[1]!)).toBe(`/tank/pg/wal/.zfs/snapshot/ebr-${id}/000000010000000000000001`);
    expect(snap.pathOf(chunks[2]!)).toBe(`/fast/ts/.zfs/snapshot/ebr-${id}/PG_16/5/16385`);
    expect(Object.keys(snap.steps!)).toEqual(expect.arrayContaining(['resolve', 'pool tank', 'pool fast']));

    await snap.release();
    expect(fake.calls.slice(3)).toEqual([`zfs destroy tank/pg/wal@ebr-${id}`, `zfs destroy tank/pg@ebr-${id}`, `zfs destroy fast/ts@ebr-${id}`]);
    expect(rec.open()).toEqual([]);
  });

  it('a failed snapshot command fails take with the command and its stderr, and destroys whatever was journaled', async () => {
    const fake = fakeRunner((cmd) =>
      cmd.startsWith('zfs snapshot tank') ? { exitCode: 1, stderr: "cannot create snapshot 'tank/pg@x': out of space" } : cmd.startsWith('zfs destroy tank') ? { exitCode: 1, stderr: 'could not find any snapshots to destroy; check snapshot names.' } : undefined,
    );
    const provider = zfsProvider({ provider: 'zfs' }, { run: fake.run, mounts });
    const rec = recordJournal(() => false);
    const err = (await provider.take({ backupId: id, chunks, volumes: [], journal: rec.journal }, never).catch((e: unknown) => e)) as EbrError;
    expect(err).toBeInstanceOf(EbrError);
    expect(err.message).toContain(`zfs snapshot tank/pg@ebr-${id} tank/pg/wal@ebr-${id} failed (exit 1): cannot create snapshot`);
    expect(fake.calls.filter((c) => c.startsWith('zfs destroy')).sort()).toEqual([`zfs destroy fast/ts@ebr-${id}`, `zfs destroy tank/pg/wal@ebr-${id}`, `zfs destroy tank/pg@ebr-${id}`].sort());
    expect(rec.open()).toEqual([]);
  });

  it('removeLeftover destroys the one snapshot the journal names, tolerates one already gone, and never destroys a dataset', async () => {
    const fake = fakeRunner((cmd) => (cmd.includes('@ebr-gone') ? { exitCode: 1, stderr: "could not find any snapshots to destroy; check snapshot names." } : undefined));
    const provider = zfsProvider({ provider: 'zfs' }, { run: fake.run, mounts });
    await provider.removeLeftover({ provider: 'zfs', kind: 'zfs-snapshot', path: `tank/pg@ebr-${id}` });
    await provider.removeLeftover({ provider: 'zfs', kind: 'zfs-snapshot', path: 'tank/pg@ebr-gone' });
    await expect(provider.removeLeftover({ provider: 'zfs', kind: 'zfs-snapshot', path: 'tank/pg' })).rejects.toThrow(/refusing to destroy tank\/pg/);
    await expect(provider.removeLeftover({ provider: 'zfs', kind: 'zfs-snapshot', path: 'tank/pg@daily' })).rejects.toThrow(/refusing/);
    expect(fake.calls).toEqual([`zfs destroy tank/pg@ebr-${id}`, 'zfs destroy tank/pg@ebr-gone']);
  });

  describe('consistency group with a chunk off ZFS', () => {
    const t = tempDir();
    afterAll(() => t.cleanup());
    it('fails check naming the chunk and the volume, or copies it inside the window when copyFallback allows', async () => {
      const real = path.join(t.dir, 'audit.db');
      writeFileSync(real, 'audit bytes');
      const mixed = [chunks[0]!, file('audit', 'audit.db', real, 11)];
      const fake = fakeRunner((cmd) => (cmd.startsWith('zfs list') ? { stdout: 'tank/pg\t/tank/pg\n' } : undefined));
      const err = (await zfsProvider({ provider: 'zfs' }, { run: fake.run, mounts }).check({ backupId: id, chunks: mixed, volumes: [] }, never).catch((e: unknown) => e)) as EbrError;
      expect(err.message).toContain(`chunk audit.db of space audit (${real}) lies on the ext4 volume /dev/vda mounted at /, which the zfs provider cannot snapshot`);
      expect(fake.calls).toEqual([]); // refused before any command

      const provider = zfsProvider({ provider: 'zfs', staging: path.join(t.dir, 'staging'), copyFallback: ['space:audit'] }, { run: fake.run, mounts });
      await provider.check({ backupId: id, chunks: mixed, volumes: [] }, never);
      const rec = recordJournal(() => false);
      const snap = await provider.take({ backupId: id, chunks: mixed, volumes: [], journal: rec.journal }, never);
      writeFileSync(real, 'changed');
      expect(readFileSync(snap.pathOf(mixed[1]!), 'utf8')).toBe('audit bytes');
      expect(fake.calls).toContain(`zfs snapshot tank/pg@ebr-${id}`);
      await snap.release();
      expect(rec.open()).toEqual([]);
    });
  });

  it('names the package when the zfs command is missing', async () => {
    const fake = fakeRunner(() => ({ exitCode: 127, stderr: 'zfs: command not found' }));
    const err = (await zfsProvider({ provider: 'zfs' }, { run: fake.run, mounts }).check({ backupId: id, chunks, volumes: [] }, never).catch((e: unknown) => e)) as EbrError;
    expect(err.hint).toBe('install it: apt-get install -y zfsutils-linux');
  });
});

/**
 * reflink with chunks on two filesystems, as a PostgreSQL tablespace reached through pg_tblspc: each
 * clone goes to a staging dir on its own chunk's filesystem; a staging dir that would make a clone cross
 * filesystems is refused by check, outside the window.
 */
import { mkdirSync, readFileSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkOf } from '../../src/chunks.js';
import type { Chunk } from '../../src/model.js';
import { reflinkProvider } from '../../src/snapshot/reflink-provider.js';
import { volumesOf } from '../../src/snapshot/volumes.js';
import { recordJournal } from './journal-recorder.js';
import { makeLoopFs, type LoopFs } from './loopfs.js';

const never = new AbortController().signal;

describe('reflink across two filesystems (a tablespace elsewhere)', () => {
  let a: LoopFs | undefined;
  let b: LoopFs | undefined;
  let chunks: Chunk[];
  beforeAll(async () => {
    a = makeLoopFs('btrfs', 300);
    b = makeLoopFs('xfs', 300);
    const data = path.join(a.mountPoint, 'data');
    const ts = path.join(b.mountPoint, 'ts');
    mkdirSync(path.join(data, 'base/1'), { recursive: true });
    mkdirSync(path.join(data, 'pg_tblspc'), { recursive: true });
    mkdirSync(path.join(ts, 'PG_15/1'), { recursive: true });
    symlinkSync(ts, path.join(data, 'pg_tblspc/16385'));
    writeFileSync(path.join(data, 'base/1/100'), 'in the data directory');
    writeFileSync(path.join(ts, 'PG_15/1/200'), 'in the tablespace');
    chunks = [
      (await chunkOf('db', 'base/1/100', path.join(data, 'base/1/100')))!,
      (await chunkOf('db', 'pg_tblspc/16385/PG_15/1/200', path.join(data, 'pg_tblspc/16385/PG_15/1/200')))!,
    ];
  });
  afterAll(() => {
    b?.teardown();
    a?.teardown();
  });

  it('clones each chunk on its own filesystem and reads frozen bytes', async () => {
    const provider = reflinkProvider({});
    const request = { backupId: '20260101T000000Z-tbs1', chunks, volumes: volumesOf(chunks) };
    await provider.check(request, never);
    const rec = recordJournal();
    const journal = rec.journal;
    const snap = await provider.take({ ...request, journal }, never);
    writeFileSync(chunks[1]!.path, 'changed later');
    expect(readFileSync(snap.pathOf(chunks[0]!), 'utf8')).toBe('in the data directory');
    expect(readFileSync(snap.pathOf(chunks[1]!), 'utf8')).toBe('in the tablespace');
    expect(snap.pathOf(chunks[1]!).startsWith(path.join(b!.mountPoint, 'ts'))).toBe(true);
    const created = rec.events.filter((e) => e.what === 'created').map((e) => e.resource);
    expect(created.length).toBe(2); // one staging dir per filesystem
    await snap.release();
    for (const r of created) expect(existsSync(r.path)).toBe(false);
    expect(rec.open()).toEqual([]);
  });

  it('refuses a staging dir that would make clones cross filesystems, naming the chunk', async () => {
    const provider = reflinkProvider({ staging: path.join(a!.mountPoint, 'staging') });
    const request = { backupId: '20260101T000000Z-tbs2', chunks, volumes: volumesOf(chunks) };
    await expect(provider.check(request, never)).rejects.toThrow(/cannot clone .*PG_15\/1\/200 into .*: a clone cannot cross filesystems/);
  });
});

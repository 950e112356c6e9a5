/**
 * The segments a backup needs are stored by ebr itself from pg_wal once the server has finished them,
 * instead of waiting for archive_command to work through its queue. First the rules on a pg_wal made
 * by hand (finished = .ready; different bytes under the name are an error; .done and unfinished
 * segments are the archiver's), then on a real cluster: with the archiver held back the backup
 * completes, its stop segment is in the log archive, owned by the server's OS user like the ones
 * archive_command stores; when the archiver pushes the same segments later the store takes them as
 * identical (the archiver never fails), and a restore recovers through them.
 */
import { createHash } from 'node:crypto';
import { chownSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { needRoot } from '../helpers/root.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeOwnSegments } from '../../adapters/postgres/postgres-wal.js';
import { EbrError } from '../../src/errors.js';
import { logStoreAt } from '../../src/logs/log-store.js';
import { runEbr, tempDir, waitFor } from '../helpers/env.js';
import { archivingCluster, postgresIds, postgresTempDir, restoredCluster, type Cluster, type EbrSetup } from './cluster.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('storeOwnSegments on a pg_wal made by hand', () => {
  const t = tempDir('ebr-ownseg-');
  afterAll(() => t.cleanup());
  const size = 64 * 1024;
  let n = 0;
  /** A data directory whose pg_wal holds `seg` with the given archive status, and an empty store. */
  const fixture = (seg: string, state: 'ready' | 'done' | 'none', bytes = Buffer.alloc(size, 7)) => {
    const dir = path.join(t.dir, `case-${++n}`);
    mkdirSync(path.join(dir, 'data', 'pg_wal', 'archive_status'), { recursive: true });
    writeFileSync(path.join(dir, 'data', 'pg_wal', seg), bytes);
    if (state !== 'none') writeFileSync(path.join(dir, 'data', 'pg_wal', 'archive_status', `${seg}.${state}`), '');
    const root = path.join(dir, 'store');
    return { data: path.join(dir, 'data'), root, store: logStoreAt(root, 'pg'), bytes };
  };
  const run = (f: ReturnType<typeof fixture>, segments: string[], readyWaitMs = 2_000) =>
    storeOwnSegments({ segments, store: f.store, dataDirectory: f.data, walSegmentSize: size, signal: new AbortController().signal, context: { instance: 'pg' }, readyWaitMs });
  const seg = '000000010000000000000003';

  it('stores a finished (.ready) segment with its digest, and a second run finds it identical', async () => {
    const f = fixture(seg, 'ready');
    expect(await run(f, [seg])).toEqual([seg]);
    expect(readFileSync(path.join(f.root, `${seg}.sha256`), 'utf8')).toBe(`${sha(f.bytes)}  ${seg}\n`);
    expect(sha(readFileSync(path.join(f.root, seg)))).toBe(sha(f.bytes));
    // What archive_command does next with the same file: identical, not an error.
    expect(await f.store.put(seg, path.join(f.data, 'pg_wal', seg))).toBe('identical');
    expect(await run(f, [seg])).toEqual([]);
  });

  it('refuses when the store holds different bytes under the name', async () => {
    const f = fixture(seg, 'ready');
    const other = path.join(t.dir, 'other-bytes');
    writeFileSync(other, Buffer.alloc(size, 9));
    await f.store.put(seg, other);
    const err = await run(f, [seg]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EbrError);
    expect((err as EbrError).code).toBe('logArchive');
    expect((err as EbrError).message).toMatch(/different/);
    // The stored copy stays what it was.
    expect(sha(readFileSync(path.join(f.root, seg)))).toBe(sha(Buffer.alloc(size, 9)));
  });

  it('leaves archived (.done), unfinished and short segments to the archiver', async () => {
    const done = fixture(seg, 'done');
    expect(await run(done, [seg])).toEqual([]);
    expect(await done.store.has(seg)).toBe(false);
    const unfinished = fixture(seg, 'none');
    expect(await run(unfinished, [seg], 50)).toEqual([]);
    expect(await unfinished.store.has(seg)).toBe(false);
    const short = fixture(seg, 'ready', Buffer.alloc(size / 2, 7));
    expect(await run(short, [seg])).toEqual([]);
    expect(await short.store.has(seg)).toBe(false);
  });

  it('run as root, gives the log and its sidecar to the owner of the store directory', async () => {
    needRoot('chown of the stored log to another user');
    const f = fixture(seg, 'ready');
    mkdirSync(f.root);
    chownSync(f.root, 4242, 4243);
    expect(await run(f, [seg])).toEqual([seg]);
    for (const file of [seg, `${seg}.sha256`]) {
      const st = statSync(path.join(f.root, file));
      expect([st.uid, st.gid], file).toEqual([4242, 4243]);
    }
    // A store root made itself stays root's.
    const mine = fixture(seg, 'ready');
    expect(await run(mine, [seg])).toEqual([seg]);
    expect(statSync(path.join(mine.root, seg)).uid).toBe(0);
  });
});

describe('the stop segment on a running cluster', () => {
  const tmp = postgresTempDir('ebr-pg-stopseg-');
  let cluster: Cluster;
  let setup: EbrSetup;
  const restored: Cluster[] = [];
  const hold = path.join(tmp.dir, 'hold-archiver');

  beforeAll(async () => {
    ({ cluster, setup } = await archivingCluster(tmp.dir));
    await cluster.query('CREATE TABLE t (id int primary key)');
    await cluster.query('INSERT INTO t SELECT generate_series(1, 1000)');
  }, 120_000);

  afterAll(async () => {
    rmSync(hold, { force: true });
    for (const c of restored) await c.stop('immediate').catch(() => undefined);
    await cluster?.stop('immediate').catch(() => undefined);
    tmp.cleanup();
  });

  const archiver = async () => (await cluster.query<{ last: string | null; failed: number }>('SELECT last_archived_wal AS last, failed_count::int AS failed FROM pg_stat_archiver'))[0]!;

  it('is stored by ebr while the archiver is held back, byte-identical to what archive_command pushes, and a restore recovers through it', async () => {
    // Every segment so far archived, then the archiver held back while a file exists (still `ebr wal push %p`, so preflight accepts it).
    const [{ f }] = (await cluster.query<{ f: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS f')) as [{ f: string }];
    await waitFor(`${f} archived`, async () => ((await archiver()).last ?? '') >= f || undefined, 60_000, 200);
    writeFileSync(hold, '');
    const held = `while [ -e ${hold} ]; do sleep 0.1; done; ${setup.archiveCommand}`;
    await cluster.query(`ALTER SYSTEM SET archive_command = '${held.replace(/'/g, "''")}'`);
    await cluster.query('SELECT pg_reload_conf()');

    const b = await runEbr(['--config', setup.config, '--json', 'backup'], { timeoutMs: 120_000 });
    expect(b.code, b.stderr).toBe(0);
    const out = JSON.parse(b.stdout) as { backupId: string; meta: { details: { stopWalFile: string; startWalFile: string } } };
    const { startWalFile: start, stopWalFile: stop } = out.meta.details;
    expect(start > f, 'the backup starts after the last archived segment').toBe(true);
    // The archiver has pushed none of the backup's segments: ebr stored them, start to stop.
    expect(((await archiver()).last ?? '') < start).toBe(true);
    for (const seg of new Set([start, stop])) {
      const stored = path.join(setup.backups, 'pg', 'wal', seg);
      const sidecar = readFileSync(`${stored}.sha256`, 'utf8').split(' ')[0];
      expect(sidecar, seg).toBe(sha(readFileSync(path.join(cluster.data, 'pg_wal', seg))));
      expect(sha(readFileSync(stored)), seg).toBe(sidecar);
      // Owned by the server's user, as archive_command's own files are: it can compare it and read it back at recovery.
      const { uid } = postgresIds();
      expect(statSync(stored).uid, seg).toBe(uid);
      expect(statSync(`${stored}.sha256`).uid, seg).toBe(uid);
    }

    // The archiver let go: it pushes the same segments, which the store takes as identical, and carries on.
    rmSync(hold);
    await cluster.query('ALTER SYSTEM RESET archive_command');
    await cluster.query('SELECT pg_reload_conf()');
    await cluster.query('INSERT INTO t SELECT generate_series(1001, 2000)');
    const [{ g }] = (await cluster.query<{ g: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS g')) as [{ g: string }];
    await waitFor(`${g} archived`, async () => ((await archiver()).last ?? '') >= g || undefined, 120_000, 200);
    expect((await archiver()).failed).toBe(0);

    // Recovery reads the backup's segments from the log archive and reaches the rows committed after it.
    const dir = path.join(tmp.dir, 'restore');
    const r = await runEbr(['--config', setup.config, 'restore', '--backup', out.backupId, '--to', dir], { timeoutMs: 240_000 });
    expect(r.code, r.stderr).toBe(0);
    const copy = await restoredCluster(dir, tmp.dir);
    restored.push(copy);
    await copy.mustStart();
    await copy.waitPromoted();
    const [{ n }] = (await copy.query<{ n: number }>('SELECT count(*)::int AS n FROM t')) as [{ n: number }];
    expect(n).toBe(2000);
    await copy.stop();
  }, 300_000);
});

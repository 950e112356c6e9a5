/**
 * The binlog archive: closed binlogs copied with digests and GTID/time ranges read from their events,
 * idempotent syncs, and the replay chain that follows one binlog history and stops at a fork or gap.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mariadbConfigSchema } from '../../adapters/mariadb/mariadb-config.js';
import { syncInstanceBinlogs } from '../../adapters/mariadb/mariadb-binlogs.js';
import { replayChain } from '../../adapters/mariadb/binlog-chain.js';
import { summarizeBinlog } from '../../adapters/mariadb/binlog-parse.js';
import { archivedRanges, type BinlogRange } from '../../adapters/mariadb/binlog-sync.js';
import { logStoreAt } from '../../src/logs/log-store.js';
import { tempDir } from '../helpers/env.js';
import { createServer, type TestServer } from './server.js';

describe('binlog archive against a real server', () => {
  const t = tempDir('ebr-mdb-binlog-');
  let server: TestServer;
  beforeAll(async () => {
    server = await createServer();
    await server.query('CREATE DATABASE a');
    await server.query('CREATE TABLE a.t (id INT PRIMARY KEY)');
  });
  afterAll(async () => {
    await server?.cleanup();
    t.cleanup();
  });

  it('archives closed binlogs once, with GTID states that chain from file to file', async () => {
    const store = logStoreAt(path.join(t.dir, 'binlog'));
    const ctx = { name: 'mdb', settings: mariadbConfigSchema.parse({ socket: server.socket, user: 'root' }), resolvePath: (p: string) => p };
    const signal = new AbortController().signal;
    await server.query('INSERT INTO a.t VALUES (1), (2)');
    const first = await syncInstanceBinlogs(ctx, store, signal);
    expect(first.stored).toEqual(['binlog.000001']);
    expect(first.current).toBe('binlog.000002');
    await server.query('INSERT INTO a.t VALUES (3)');
    await server.query('INSERT INTO a.t VALUES (4)');
    const second = await syncInstanceBinlogs(ctx, store, signal);
    expect(second).toMatchObject({ stored: ['binlog.000002'], present: ['binlog.000001'], current: 'binlog.000003', gaps: [] });

    const ranges = await archivedRanges(store);
    expect(ranges.map((r) => r.name)).toEqual(['binlog.000001', 'binlog.000002']);
    const [r1, r2] = ranges as [BinlogRange, BinlogRange];
    expect(r1.closed).toBe(true);
    expect(r2.gtidStateAtStart).toBe(r1.gtidStateAtEnd);
    expect(r2.transactions).toBe(2);
    expect(r2.firstGtid).toBe(`0-1-${Number(r1.lastGtid!.split('-')[2]) + 1}`);
    const [pos] = await server.query<{ gtid: string }>('SELECT @@gtid_binlog_pos AS gtid');
    expect(r2.gtidStateAtEnd).toBe(pos!.gtid);
    // the summary of the file being written says it is open
    const open = await summarizeBinlog(path.join(server.datadir, 'binlog.000003'));
    expect(open.closed).toBe(false);
    expect(open.gtidStateAtStart).toBe(r2.gtidStateAtEnd);
  });
});

describe('replay chain', () => {
  const range = (n: number, start: string, end: string, created: number, last: number): BinlogRange => ({
    name: `binlog.${String(n).padStart(6, '0')}`,
    size: 1000,
    archivedAt: '',
    endPosition: 1000,
    events: 10,
    transactions: 3,
    closed: true,
    encrypted: false,
    createdEpoch: created,
    lastEventEpoch: last,
    gtidStateAtStart: start,
    gtidStateAtEnd: end,
  });
  const history = [range(3, '0-1-10', '0-1-20', 100, 150), range(4, '0-1-20', '0-1-30', 150, 200), range(5, '0-1-30', '0-1-40', 200, 250)];

  it('follows one history from the backup position and drops files made after the target', () => {
    const all = replayChain(history, { file: 'binlog.000003', position: 400 }, undefined, 'x');
    expect(all.files.map((f) => f.name)).toEqual(['binlog.000003', 'binlog.000004', 'binlog.000005']);
    expect(all).toMatchObject({ startPosition: 400, reachesTarget: true });
    const until = replayChain(history, { file: 'binlog.000003', position: 400 }, new Date(170_000), 'x');
    expect(until.files.map((f) => f.name)).toEqual(['binlog.000003', 'binlog.000004']);
    expect(until.reachesTarget).toBe(true);
  });

  it('stops before a binlog of another history, and says when the archive ends before the target', () => {
    const forked = [history[0]!, history[1]!, range(5, '0-1-25', '0-1-26', 300, 310)];
    const r = replayChain(forked, { file: 'binlog.000003', position: 4 }, new Date(400_000), 'x');
    expect(r.files.map((f) => f.name)).toEqual(['binlog.000003', 'binlog.000004']);
    expect(r.reachesTarget).toBe(false);
    expect(r.notes.join('\n')).toMatch(/another binlog history/);
    expect(r.notes.join('\n')).toMatch(/archived binlogs end at/);
    const gap = replayChain([history[0]!, history[2]!], { file: 'binlog.000003', position: 4 }, undefined, 'x');
    expect(gap.files).toHaveLength(1);
    expect(gap.notes.join('\n')).toMatch(/no binlog after binlog.000003/);
  });

  it('refuses when the binlog of the backup position was never archived', () => {
    expect(() => replayChain(history, { file: 'binlog.000002', position: 4 }, new Date(1), 'shop')).toThrow(/binlog.000002.*not in the log archive/);
  });
});

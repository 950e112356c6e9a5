/**
 * The MariaDB adapter at its own seam, against a real server: discovery, the block window on one held
 * connection, the exact binlog position, and a session that dies inside a stage releasing everything.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DbmsSession, InstanceContext } from '../../src/adapter-api.js';
import { mariadbAdapter } from '../../adapters/mariadb/index.js';
import { mariadbConfigSchema, type MariadbSettings } from '../../adapters/mariadb/mariadb-config.js';
import { createServer, type TestServer } from './server.js';
import { startWriter } from './workload.js';

let server: TestServer;
let ctx: InstanceContext<MariadbSettings>;

beforeAll(async () => {
  server = await createServer();
  await server.query('CREATE DATABASE shop');
  await server.query('CREATE TABLE shop.accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB');
  await server.query('CREATE TABLE shop.notes (id INT PRIMARY KEY, body TEXT) ENGINE=Aria');
  await server.query('CREATE TABLE shop.legacy (id INT PRIMARY KEY) ENGINE=MyISAM');
  await server.query('CREATE DATABASE crm');
  await server.query('CREATE TABLE crm.ticks (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6) NOT NULL) ENGINE=InnoDB');
  await server.query('CREATE DATABASE `odd-name`');
  await server.query('CREATE TABLE `odd-name`.t (id INT PRIMARY KEY) ENGINE=InnoDB');
  ctx = { name: 'mdb', settings: mariadbConfigSchema.parse({ socket: server.socket, user: 'root' }), resolvePath: (p) => p };
});

afterAll(async () => {
  await server?.cleanup();
});

async function connect(): Promise<DbmsSession> {
  return mariadbAdapter.connect(ctx, new AbortController().signal);
}

describe('mariadb adapter', () => {
  it('discovers the critical server space and one space per schema, naming non-InnoDB tables', async () => {
    await using session = await connect();
    const spaces = await session.discover(new AbortController().signal);
    expect(spaces.map((s) => s.name).sort()).toEqual(['crm', 'odd@002dname', 'server', 'shop']);
    const srv = spaces.find((s) => s.name === 'server')!;
    expect(srv.critical).toBe(true);
    const names = srv.chunks.map((c) => c.name);
    expect(srv.chunks[0]!.name).toBe('ib_logfile0'); // redo first
    for (const n of ['ibdata1', 'ib_logfile0', 'aria_log_control', 'binlog.index', 'binlog.000001', 'mysql', 'mysql/user.frm', 'mysql/global_priv.MAD', 'mysql/innodb_index_stats.ibd', 'performance_schema/db.opt', 'sys']) {
      expect(names, n).toContain(n);
    }
    expect(names).not.toContain('ibtmp1');
    expect(names.some((n) => n.endsWith('.pid') || n.endsWith('.sock'))).toBe(false);
    expect(srv.chunks.find((c) => c.name === 'binlog.000001')!.details?.role).toBe('binlog');

    const shop = spaces.find((s) => s.name === 'shop')!;
    expect(shop.critical).toBe(false);
    expect(shop.chunks.map((c) => c.name).sort()).toEqual(
      ['shop', 'shop/accounts.frm', 'shop/accounts.ibd', 'shop/db.opt', 'shop/legacy.MYD', 'shop/legacy.MYI', 'shop/legacy.frm', 'shop/notes.MAD', 'shop/notes.MAI', 'shop/notes.frm'].sort(),
    );
    expect(shop.notes!.join(' ')).toMatch(/notes \(Aria\).*legacy \(MyISAM\)|legacy \(MyISAM\).*notes \(Aria\)/);
    expect(shop.details).toMatchObject({ schema: 'shop', innodbTables: ['accounts'] });
    const odd = spaces.find((s) => s.name === 'odd@002dname')!;
    expect(odd.details).toMatchObject({ schema: 'odd-name', dir: 'odd@002dname' });
    // every chunk carries what restore puts back
    for (const c of spaces.flatMap((s) => s.chunks)) expect(c.uid, c.name).toBeTypeOf('number');
  });

  it('holds commits between block and unblock on one connection, and reads the exact binlog position', async () => {
    const writer = await startWriter(server, 'crm.ticks');
    try {
      await using session = await connect();
      const signal = new AbortController().signal;
      await session.preflight!(signal);
      await session.checkpoint(signal);
      await writer.waitForCommits(5); // DDL is blocked, commits are not
      const token = await session.block(signal);
      const atBlock = writer.commits();
      await new Promise((r) => setTimeout(r, 400));
      const duringBlock = writer.commits() - atBlock;
      const [status] = await server.query<{ File: string; Position: number }>('SHOW MASTER STATUS');
      const meta = await session.unblock(token);
      await writer.waitForCommits(writer.commits() + 5, 5000);
      expect(duringBlock).toBeLessThanOrEqual(1); // at most the commit already past the lock
      expect(meta.logStart).toBe(`${status!.File}:${status!.Position}`);
      expect(String(meta.files!.binlog_position)).toMatch(new RegExp(`^${status!.File}\\t${status!.Position}\\t0-1-\\d+\\n$`));
      expect(meta.details).toMatchObject({ flavor: 'mariadb', file: status!.File, position: Number(status!.Position) });
      console.log(`writer committed ${duringBlock} times in a 400 ms window; position ${meta.logStart}`);
    } finally {
      await writer.stop();
    }
  });

  it('a session killed inside BLOCK_COMMIT releases writers, DDL and the backup stage at once', async () => {
    const writer = await startWriter(server, 'crm.ticks');
    try {
      const session = await connect();
      const signal = new AbortController().signal;
      const { connectionId } = (await session.describe()) as { connectionId: number };
      await session.checkpoint(signal);
      const token = await session.block(signal);
      const stalledAt = writer.commits();
      await new Promise((r) => setTimeout(r, 200));
      expect(writer.commits() - stalledAt).toBeLessThanOrEqual(1);
      const t0 = Date.now();
      await server.query(`KILL CONNECTION ${connectionId}`);
      await writer.waitForCommits(writer.commits() + 3, 5000);
      const freedMs = Date.now() - t0;
      // DDL and another backup are possible again: the stage died with the connection.
      await server.query('CREATE TABLE crm.after_kill (id INT PRIMARY KEY)');
      const other = await connect();
      await other.checkpoint(signal);
      await other[Symbol.asyncDispose]();
      // The dead window is reported, never taken for a backup.
      await expect(session.unblock(token)).rejects.toThrow(/lost|closed|busy/);
      await session[Symbol.asyncDispose]();
      console.log(`writers resumed ${freedMs} ms after the blocking connection was killed`);
      expect(freedMs).toBeLessThan(3000);
    } finally {
      await writer.stop();
    }
  });

  it('disposing a session that holds BLOCK_DDL ends the stage', async () => {
    const session = await connect();
    await session.checkpoint(new AbortController().signal);
    await session[Symbol.asyncDispose]();
    const c = await server.connect();
    try {
      await c.query('SET SESSION lock_wait_timeout = 2');
      await c.query('CREATE TABLE crm.after_dispose (id INT PRIMARY KEY)');
    } finally {
      await c.end();
    }
  });

  it('an aborted signal inside block drops the connection, and the server releases the stage', async () => {
    const session = await connect();
    const ac = new AbortController();
    await session.checkpoint(ac.signal);
    const token = await session.block(ac.signal);
    ac.abort(new Error('test abort'));
    // the connection is not dropped by an abort after block returned; unblock still works
    const meta = await session.unblock(token);
    expect(meta.logStart).toMatch(/^binlog\.\d+:\d+$/);
    await session[Symbol.asyncDispose]();
    // an abort before block: the statement is not run and nothing is held
    const s2 = await connect();
    const ac2 = new AbortController();
    ac2.abort(new Error('early'));
    await expect(s2.checkpoint(ac2.signal)).rejects.toThrow(/cancelled/);
    await s2[Symbol.asyncDispose]();
    await server.query('CREATE TABLE crm.after_abort (id INT PRIMARY KEY)');
  });
});

/**
 * A consistency group across three real databases: PostgreSQL (archiving into ebr), MariaDB and SQLite.
 * An application writes pairs in a loop — row N into PostgreSQL, then into MariaDB, then into SQLite —
 * during `ebr backup --group`. After `ebr restore --group --to DIR` the three restored databases differ
 * by at most the one write in flight: every member is at the instant they were all blocked.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEbr } from '../helpers/env.js';
import { createServer, type TestServer } from '../mariadb/server.js';
import { archivingCluster, mkdirForPostgres, postgresTempDir, restoredCluster, type Cluster, type EbrSetup } from '../postgres/cluster.js';

const tmp = postgresTempDir('ebr-group-');
let pg: Cluster;
let setup: EbrSetup;
let mdb: TestServer;
const audit = path.join(tmp.dir, 'audit.db');
const started: Array<{ stop: () => Promise<void> }> = [];

const ebr = (args: string[]) => runEbr(['--config', setup.config, ...args], { timeoutMs: 300_000 });
const json = <T>(r: { code: number; stdout: string; stderr: string }): T => {
  if (r.code !== 0) throw new Error(`ebr failed (${r.code}): ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as T;
};

beforeAll(async () => {
  ({ cluster: pg, setup } = await archivingCluster(tmp.dir));
  await pg.query('CREATE TABLE pairs (n int PRIMARY KEY)');
  mdb = await createServer();
  await mdb.query('CREATE DATABASE shop');
  await mdb.query('CREATE TABLE shop.pairs (n INT PRIMARY KEY) ENGINE=InnoDB');
  const db = new Database(audit);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE pairs (n INTEGER PRIMARY KEY)');
  db.close();
  // The PostgreSQL instance's config (its archive_command names this file), with two more instances and the group.
  writeFileSync(
    setup.config,
    readFileSync(setup.config, 'utf8') +
      [
        '  shop:',
        '    adapter: mariadb',
        `    mariadb: { socket: ${mdb.socket}, user: root, scratchDir: ${path.join(tmp.dir, 'scratch')}, tempServerBufferPool: 64M }`,
        `    snapshot: { provider: copy, staging: ${path.join(tmp.dir, 'staging')} }`,
        `    target: { type: dir, path: ${path.join(tmp.dir, 'backups')} }`,
        '  audit:',
        '    adapter: sqlite',
        `    sqlite: { main: ${audit} }`,
        `    snapshot: { provider: copy, staging: ${path.join(tmp.dir, 'staging')} }`,
        `    target: { type: dir, path: ${path.join(tmp.dir, 'backups')} }`,
        'groups:',
        '  erp: { instances: [pg, shop, audit], maxBlockMs: 60000 }',
        '',
      ].join('\n'),
  );
}, 300_000);

afterAll(async () => {
  for (const s of started.reverse()) await s.stop().catch(() => undefined);
  await mdb?.cleanup();
  await pg?.stop('immediate').catch(() => undefined);
  tmp.cleanup();
});

describe('consistency group: PostgreSQL + MariaDB + SQLite', () => {
  it('backs up all three in one window while pairs are written, and restores them to one instant', async () => {
    const pgc = await pg.client();
    const my = await mdb.connect();
    const lite = new Database(audit);
    lite.pragma('busy_timeout = 60000');
    const insertLite = lite.prepare('INSERT INTO pairs (n) VALUES (?)');
    let stop = false;
    let n = 0;
    const writing = (async () => {
      while (!stop) {
        n++;
        await pgc.query('INSERT INTO pairs VALUES ($1)', [n]);
        await my.query('INSERT INTO shop.pairs VALUES (?)', [n]);
        insertLite.run(n);
        // Let the event loop breathe between pairs (SQLite's insert is synchronous).
        await new Promise((r) => setImmediate(r));
      }
    })();
    let out: { groupId: string; windowMs: number; instant: string; members: Array<{ instance: string; backupId: string }> };
    try {
      await new Promise((r) => setTimeout(r, 300));
      out = json(await ebr(['--json', 'backup', '--group', 'erp']));
    } finally {
      stop = true;
      await writing;
      await pgc.end();
      await my.end();
      lite.close();
    }
    expect(out.members.map((m) => m.instance)).toEqual(['pg', 'shop', 'audit']);
    expect(out.windowMs).toBeGreaterThan(0);
    expect(n).toBeGreaterThan(5);
    const show = json<{ group: { id: string; instant: string } }>(await ebr(['--json', 'show', out.members[1]!.backupId]));
    expect(show.group.id).toBe(out.groupId);

    // Owned by postgres: the restored cluster's log file goes beside its data directory.
    const dir = mkdirForPostgres(path.join(tmp.dir, 'restored'));
    const r = json<{ members: Array<{ targetDir: string }> }>(await ebr(['--json', 'restore', '--group', 'erp', '--to', dir]));
    expect(r.members.map((m) => m.targetDir)).toEqual(['pg', 'shop', 'audit'].map((i) => path.join(dir, i)));

    const copy = await restoredCluster(path.join(dir, 'pg'), tmp.dir);
    await copy.mustStart();
    started.push({ stop: () => copy.stop() });
    await copy.waitPromoted();
    const pgRows = (await copy.query<{ n: number }>('SELECT n FROM pairs ORDER BY n')).map((x) => x.n);
    const restoredMdb = await createServer({ datadir: path.join(dir, 'shop') });
    await restoredMdb.start();
    started.push({ stop: () => restoredMdb.stop() });
    const mdbRows = (await restoredMdb.query<{ n: number }>('SELECT n FROM shop.pairs ORDER BY n')).map((x) => Number(x.n));
    const ldb = new Database(path.join(dir, 'audit', 'audit.db'), { readonly: true });
    const liteRows = (ldb.prepare('SELECT n FROM pairs ORDER BY n').all() as Array<{ n: number }>).map((x) => x.n);
    ldb.close();

    const dense = (rows: number[]) => rows.every((v, i) => v === i + 1);
    expect(dense(pgRows) && dense(mdbRows) && dense(liteRows), `${pgRows.length} ${mdbRows.length} ${liteRows.length}`).toBe(true);
    // Written in the order PostgreSQL, MariaDB, SQLite: each at most the write in flight ahead of the next.
    expect(pgRows.length).toBeGreaterThanOrEqual(mdbRows.length);
    expect(mdbRows.length).toBeGreaterThanOrEqual(liteRows.length);
    expect(pgRows.length - liteRows.length, `pg ${pgRows.length}, mariadb ${mdbRows.length}, sqlite ${liteRows.length}`).toBeLessThanOrEqual(1);
    expect(liteRows.length).toBeGreaterThan(0);
  });

  it('a member that fails releases every member and fails the group; restore refuses an incomplete group', async () => {
    // The MariaDB server goes away: that member cannot even connect.
    await mdb.stop();
    try {
      const r = await ebr(['backup', '--group', 'erp']);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/group erp failed: shop/);
      // The others were released: SQLite takes a write at once, PostgreSQL has no ebr session left.
      const db = new Database(audit, { timeout: 0 });
      db.exec('BEGIN IMMEDIATE; COMMIT;');
      db.close();
      const left = await pg.query<{ n: string }>("SELECT count(*)::text AS n FROM pg_stat_activity WHERE application_name LIKE 'ebr %'");
      expect(left[0]!.n).toBe('0');
    } finally {
      await mdb.start();
    }
    const list = json<Array<{ id: string; instance: string; status: string }>>(await ebr(['--json', 'list']));
    const failedGroup = list.filter((b) => b.status === 'failed');
    expect(failedGroup.length).toBeGreaterThan(0);
    const unknown = await ebr(['restore', '--group', 'nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/known groups: erp/);
  });
});

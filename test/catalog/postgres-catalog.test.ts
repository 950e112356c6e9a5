/**
 * The catalog on PostgreSQL through the CLI: backup, list, show, verify, restore with the SQLite
 * adapter; the schema version (migrate, a newer catalog refused on both databases); the password from
 * ${ENV}; copy to SQLite and back; and the catalog server restarted mid-backup.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { migrations } from '../../src/catalog/migrations.js';
import { runEbr, spawnEbr, tempDir, waitFor } from '../helpers/env.js';
import { pgQuery, sqliteAgent, startCatalogServer, type CatalogServer } from './catalog-server.js';

let server: CatalogServer;
/** The schema version this ebr migrates to: one per migration. */
const schema = migrations.length;
const tmp = tempDir('ebr-catalog-');

beforeAll(async () => {
  server = await startCatalogServer();
});

afterAll(async () => {
  await server?.stop();
  tmp.cleanup();
});

function rows(main: string): number {
  const db = new Database(main, { readonly: true });
  try {
    return (db.prepare('SELECT COUNT(*) AS n FROM ledger').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe('catalog on PostgreSQL', () => {
  test('backup, list, show, verify and restore work as on SQLite', async () => {
    const url = await server.newCatalog();
    const dir = path.join(tmp.dir, 'ops');
    const a = sqliteAgent(dir, { name: 'shop', catalog: url, repo: path.join(dir, 'repo') });
    const m = await runEbr(['-c', a.config, 'catalog', 'migrate']);
    expect(m.stderr).toBe('');
    expect(m.stdout).toMatch(new RegExp(`migrated from schema version 0 to ${schema}`));
    const b = await runEbr(['-c', a.config, 'backup', '--json']);
    expect(b.code, b.stderr).toBe(0);
    const id = (JSON.parse(b.stdout) as { backupId: string }).backupId;
    const list = JSON.parse((await runEbr(['-c', a.config, 'list', '--json'])).stdout) as Array<{ id: string; status: string; members: number }>;
    // The members are main.db and, when the adapter's own connection left one, its -wal file.
    const names = (await pgQuery<{ name: string }>(url, 'SELECT name FROM members WHERE backup_id = $1', [id])).map((r) => r.name);
    expect(names.some((n) => n.endsWith('main.db')), names.join(', ')).toBe(true);
    expect(list.map((r) => [r.id, r.status, r.members])).toEqual([[id, 'complete', names.length]]);
    const show = JSON.parse((await runEbr(['-c', a.config, 'show', 'latest', '--json'])).stdout) as { id: string; phases: Array<{ phase: string; outcome: string }> };
    expect(show.id).toBe(id);
    expect(show.phases.map((p) => p.phase)).toEqual(expect.arrayContaining(['connect', 'discover', 'acquire', 'release', 'stream', 'seal']));
    expect(show.phases.every((p) => p.outcome === 'ok')).toBe(true);
    // The rows are PostgreSQL's: the test reads them with its own client.
    const [row] = await pgQuery<{ status: string; n: string }>(url, 'SELECT b.status, (SELECT COUNT(*) FROM members m WHERE m.backup_id = b.id) AS n FROM backups b WHERE b.id = $1', [id]);
    expect(row).toEqual({ status: 'complete', n: String(names.length) });
    const v = await runEbr(['-c', a.config, 'verify', 'latest']);
    expect(v.code, v.stderr).toBe(0);
    // Damage the database, restore it, the rows are back.
    const before = rows(a.main);
    const db = new Database(a.main);
    db.exec('DELETE FROM ledger');
    db.close();
    const r = await runEbr(['-c', a.config, 'restore']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(rows(a.main)).toBe(before);
    const restores = await runEbr(['-c', a.config, 'restores', '--json']);
    expect((JSON.parse(restores.stdout) as Array<{ status: string }>).map((x) => x.status)).toEqual(['complete']);
    expect(await pgQuery(url, 'SELECT * FROM locks')).toEqual([]);
  });

  test('a catalog newer than this ebr is refused, on PostgreSQL and on SQLite', async () => {
    const url = await server.newCatalog();
    const dir = path.join(tmp.dir, 'newer');
    const a = sqliteAgent(dir, { name: 'shop', catalog: url, repo: path.join(dir, 'repo') });
    expect((await runEbr(['-c', a.config, 'list'])).code).toBe(0);
    const again = await runEbr(['-c', a.config, 'catalog', 'migrate', '--json']);
    expect(JSON.parse(again.stdout)).toMatchObject({ kind: 'postgres', from: schema, to: schema, known: schema });
    await pgQuery(url, 'UPDATE ebr_schema SET version = 99');
    for (const args of [['list'], ['catalog', 'migrate']]) {
      const r = await runEbr(['-c', a.config, ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`schema version 99, newer than this ebr understands \\(${schema}\\)`));
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    const file = path.join(dir, 'catalog.db');
    writeFileSync(a.config, readFileSync(a.config, 'utf8').replace(/^catalog: .*$/m, `catalog: ${file}`));
    expect((await runEbr(['-c', a.config, 'catalog', 'migrate'])).stdout).toMatch(new RegExp(`\\(sqlite\\): migrated from schema version 0 to ${schema}`));
    const db = new Database(file);
    db.pragma('user_version = 12');
    db.close();
    const r = await runEbr(['-c', a.config, 'backup']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`schema version 12, newer than this ebr understands \\(${schema}\\)`));
  });

  test('the password comes from ${ENV} in the URL, and a wrong one is a clear error without it', async () => {
    const db = `ebr_pw_${process.pid}`;
    await pgQuery(server.urlOf('postgres'), `CREATE ROLE ebr_pw LOGIN PASSWORD 'sekrit-42'`);
    await pgQuery(server.urlOf('postgres'), `CREATE DATABASE ${db} OWNER ebr_pw`);
    // Password authentication for this role on the socket (initdb trusted everyone).
    const hba = path.join(server.cluster.data, 'pg_hba.conf');
    writeFileSync(hba, `local all ebr_pw scram-sha-256\n${readFileSync(hba, 'utf8')}`);
    await pgQuery(server.urlOf('postgres'), 'SELECT pg_reload_conf()');
    const dir = path.join(tmp.dir, 'pw');
    const url = server.urlOf(db).replace('postgres@', 'ebr_pw:${EBR_TEST_CATALOG_PW}@');
    const a = sqliteAgent(dir, { name: 'shop', catalog: url, repo: path.join(dir, 'repo') });
    const ok = await runEbr(['-c', a.config, 'backup'], { env: { EBR_TEST_CATALOG_PW: 'sekrit-42' } });
    expect(ok.code, ok.stderr).toBe(0);
    const bad = await runEbr(['-c', a.config, 'list'], { env: { EBR_TEST_CATALOG_PW: 'wrong-pass' } });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/cannot open the catalog postgres:\/\/ebr_pw:\*\*\*@localhost.*password authentication failed/);
    expect(bad.stderr).not.toContain('wrong-pass');
    const unset = await runEbr(['-c', a.config, 'list']);
    expect(unset.code).toBe(2);
    expect(unset.stderr).toMatch(/EBR_TEST_CATALOG_PW/);
  });

  test('catalog copy: PostgreSQL to a SQLite file and back, the same backups, members and digests', async () => {
    const url = await server.newCatalog();
    const dir = path.join(tmp.dir, 'copy');
    const a = sqliteAgent(dir, { name: 'shop', catalog: url, repo: path.join(dir, 'repo') });
    // The second one incremental: its parent goes with it, and the copies restore it from its chain.
    for (const type of ['full', 'incr']) expect((await runEbr(['-c', a.config, 'backup', '--type', type])).code).toBe(0);
    expect((await runEbr(['-c', a.config, 'pin', 'latest'])).code).toBe(0);
    expect((await runEbr(['-c', a.config, 'restore', '--to', path.join(dir, 'restored')])).code).toBe(0);
    const file = path.join(dir, 'copied.db');
    const c1 = await runEbr(['-c', a.config, 'catalog', 'copy', '--to', file, '--json']);
    expect(c1.code, c1.stderr).toBe(0);
    const r1 = JSON.parse(c1.stdout) as { rows: Record<string, number>; digest: string };
    expect(r1.rows).toMatchObject({ backups: 2, pins: 1, restores: 1 });
    expect(r1.rows.members).toBeGreaterThanOrEqual(2);
    // Into an occupied catalog: refused.
    const again = await runEbr(['-c', a.config, 'catalog', 'copy', '--to', file]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/is not empty/);
    // The SQLite copy is a catalog ebr uses as it is; and back into a new PostgreSQL database.
    const list = async (config: string) => (JSON.parse((await runEbr(['-c', config, 'list', '--json'])).stdout) as Array<Record<string, unknown>>);
    const onPg = await list(a.config);
    expect(onPg.map((b) => b.type)).toEqual(['incr', 'full']);
    expect(onPg[0]!.parent).toBe(onPg[1]!.id);
    const sqliteConfig = path.join(dir, 'sqlite.yaml');
    writeFileSync(sqliteConfig, readFileSync(a.config, 'utf8').replace(/^catalog: .*$/m, `catalog: ${file}`));
    expect(await list(sqliteConfig)).toEqual(onPg);
    const back = await server.newCatalog();
    const c2 = await runEbr(['-c', sqliteConfig, 'catalog', 'copy', '--to', back, '--json']);
    expect(c2.code, c2.stderr).toBe(0);
    expect((JSON.parse(c2.stdout) as { digest: string }).digest).toBe(r1.digest);
    const backConfig = path.join(dir, 'back.yaml');
    writeFileSync(backConfig, readFileSync(a.config, 'utf8').replace(/^catalog: .*$/m, `catalog: ${back}`));
    expect(await list(backConfig)).toEqual(onPg);
    // The identity columns go on after the copied ids.
    expect((await runEbr(['-c', backConfig, 'restore', '--to', path.join(dir, 'restored2')])).code).toBe(0);
    const ids = (JSON.parse((await runEbr(['-c', backConfig, 'restores', '--json'])).stdout) as Array<{ id: number }>).map((r) => r.id);
    expect(ids).toEqual([2, 1]);
  });

  test('the catalog server restarted mid-backup: the backup fails clearly, the database is released, the next run goes on', async () => {
    const url = await server.newCatalog();
    const dir = path.join(tmp.dir, 'restart');
    const a = sqliteAgent(dir, { name: 'shop', catalog: url, repo: path.join(dir, 'repo'), rows: 2000 });
    const gate = path.join(dir, 'gate');
    const child = spawnEbr(['-c', a.config, 'backup'], { env: { EBR_FAULT_STREAM_GATE: gate } });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
    await waitFor('the backup to stream', async () => (await pgQuery<{ phase: string }>(url, "SELECT phase FROM backups WHERE status = 'running'").catch(() => []))[0]?.phase === 'stream' || undefined, 60_000);
    await server.cluster.stop('fast');
    await server.cluster.mustStart();
    writeFileSync(gate, '');
    const code = await exited;
    expect(code).toBe(1);
    expect(stderr).toMatch(/catalog .* is unavailable: the connection to the catalog was lost/);
    expect(stderr).not.toMatch(/\n\s+at /);
    // Nothing is marked complete; the failure was recorded once the catalog was back, and the lock is free.
    const [b] = await pgQuery<{ status: string; error: string }>(url, 'SELECT status, error FROM backups');
    expect(b!.status).toBe('failed');
    expect(await pgQuery(url, 'SELECT * FROM locks')).toEqual([]);
    // The database was released: a writer commits at once.
    const db = new Database(a.main, { timeout: 2000 });
    db.prepare('INSERT INTO ledger (body) VALUES (?)').run('after');
    db.close();
    const next = await runEbr(['-c', a.config, 'backup']);
    expect(next.code, next.stderr).toBe(0);
    const list = JSON.parse((await runEbr(['-c', a.config, 'list', '--json'])).stdout) as Array<{ status: string }>;
    expect(list.map((r) => r.status)).toEqual(['complete', 'failed']);
    expect(existsSync(gate)).toBe(true);
  });
});

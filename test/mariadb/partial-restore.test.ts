/**
 * Online partial restore through the CLI: one schema comes back into the running server (its deleted
 * rows and dropped table return) while another schema's newer rows stay and a writer on it keeps
 * committing; a changed table definition refuses the restore, naming the table; the server space and
 * system schemas are refused.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/env.js';
import { sumOfBalances, writeConfig, type EbrSetup } from './mariadb-instance.js';
import { createServer, type TestServer } from './server.js';
import { startWriter } from './workload.js';

describe('mariadb: online partial restore', () => {
  const t = tempDir('ebr-mdb-partial-');
  let server: TestServer;
  let e: EbrSetup;
  let backupId: string;

  beforeAll(async () => {
    server = await createServer();
    await server.query('CREATE DATABASE shop');
    await server.query('CREATE TABLE shop.accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL, KEY (balance)) ENGINE=InnoDB');
    await server.query(`INSERT INTO shop.accounts VALUES ${Array.from({ length: 100 }, (_, i) => `(${i + 1}, 1000)`).join(',')}`);
    await server.query('CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, account INT NOT NULL, FOREIGN KEY (account) REFERENCES shop.accounts (id)) ENGINE=InnoDB');
    await server.query('INSERT INTO shop.orders (account) VALUES (1), (2), (3)');
    await server.query('CREATE TABLE shop.gone (id INT PRIMARY KEY) ENGINE=InnoDB');
    await server.query('INSERT INTO shop.gone VALUES (1), (2)');
    await server.query('CREATE TABLE shop.notes (id INT PRIMARY KEY) ENGINE=Aria');
    await server.query('CREATE DATABASE crm');
    await server.query('CREATE TABLE crm.ticks (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6) NOT NULL) ENGINE=InnoDB');
    e = writeConfig(t.dir, server);
    backupId = (await e.ebrJson<{ backupId: string }>(['backup'])).backupId;
  });

  afterAll(async () => {
    await server?.cleanup();
    t.cleanup();
  });

  it('brings back one schema\'s deleted rows while another schema\'s newer rows stay', async () => {
    await server.query('DELETE FROM shop.orders');
    await server.query('DELETE FROM shop.accounts WHERE id <= 30');
    await server.query('UPDATE shop.accounts SET balance = 0 WHERE id = 50');
    await server.query('DROP TABLE shop.gone');
    await server.query('CREATE TABLE shop.made_later (id INT PRIMARY KEY)');
    await server.query('INSERT INTO crm.ticks (at) VALUES (NOW(6)), (NOW(6)), (NOW(6))');
    const writer = await startWriter(server, 'crm.ticks');
    let r: { notes: string[]; details: { imported: Record<string, string[]> } };
    let ticksBefore: number;
    try {
      await writer.waitForCommits(20);
      ticksBefore = Number((await server.query<{ n: number }>('SELECT COUNT(*) AS n FROM crm.ticks'))[0]!.n);
      r = await e.ebrJson(['restore', '--backup', backupId, '--partial', 'shop']);
      const during = writer.commits();
      await writer.waitForCommits(during + 20);
      expect(writer.errors).toEqual([]);
    } finally {
      await writer.stop();
    }
    console.log(r.notes.join('\n'));
    expect(r.details.imported.shop!.sort()).toEqual(['accounts', 'gone', 'orders']);
    expect(r.notes.join('\n')).toMatch(/notes \(Aria\)/);
    expect(r.notes.join('\n')).toMatch(/made_later/);
    expect(await sumOfBalances(server)).toEqual({ n: 100, total: 100_000 });
    expect((await server.query<{ n: number }>('SELECT COUNT(*) AS n FROM shop.orders'))[0]!.n).toBe(3);
    expect((await server.query<{ n: number }>('SELECT COUNT(*) AS n FROM shop.gone'))[0]!.n).toBe(2);
    for (const table of ['accounts', 'orders', 'gone']) {
      const [check] = await server.query<{ Msg_text: string }>(`CHECK TABLE shop.${table}`);
      expect(check!.Msg_text, table).toBe('OK');
    }
    // The other schema is untouched: its rows made after the backup are all there, and more came in.
    const ticksAfter = Number((await server.query<{ n: number }>('SELECT COUNT(*) AS n FROM crm.ticks'))[0]!.n);
    expect(ticksAfter).toBeGreaterThan(ticksBefore!);
    // The table made after the backup was left alone, and no import leftovers stay in the directory.
    expect(await server.query("SHOW TABLES IN shop LIKE 'made_later'")).toHaveLength(1);
    expect(readdirSync(path.join(server.datadir, 'shop')).filter((f) => f.includes('.ebr-') || f.endsWith('.cfg'))).toEqual([]);
    expect(readdirSync(path.join(t.dir, 'scratch')).filter((f) => f.startsWith('ebr-mariadb-'))).toEqual([]);
  });

  it('refuses a schema whose table definition changed, naming the table, and changes nothing', async () => {
    await server.query('ALTER TABLE shop.accounts ADD COLUMN note VARCHAR(10) NULL');
    await server.query('DELETE FROM shop.orders');
    const r = await e.ebr(['restore', '--backup', backupId, '--partial', 'shop']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/shop\.accounts/);
    expect(r.stderr).toMatch(/definition/);
    expect((await server.query<{ n: number }>('SELECT COUNT(*) AS n FROM shop.orders'))[0]!.n).toBe(0);
    expect(await server.query("SHOW COLUMNS FROM shop.accounts LIKE 'note'")).toHaveLength(1);
    await server.query('ALTER TABLE shop.accounts DROP COLUMN note');
  });

  it('refuses a table rebuilt with another row format, which SHOW CREATE TABLE does not show', async () => {
    await server.query("SET GLOBAL innodb_default_row_format = 'compact'");
    try {
      await server.query('ALTER TABLE shop.gone FORCE');
    } finally {
      await server.query("SET GLOBAL innodb_default_row_format = 'dynamic'");
    }
    const r = await e.ebr(['restore', '--backup', backupId, '--partial', 'shop']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/shop\.gone \(row format Compact, Dynamic in the backup\)/);
    await server.query('ALTER TABLE shop.gone FORCE');
  });

  it('refuses the server space and the system schemas', async () => {
    const critical = await e.ebr(['restore', '--backup', backupId, '--partial', 'server']);
    expect(critical.code).toBe(2);
    expect(critical.stderr).toMatch(/critical/);
    const mysql = await e.ebr(['restore', '--backup', backupId, '--partial', 'mysql']);
    expect(mysql.code).toBe(2);
    expect(mysql.stderr).toMatch(/no space named mysql/);
  });

  it('--partial with --to DIR makes a data directory of its own with that schema', async () => {
    const to = path.join(t.dir, 'partial-to');
    const r = await e.ebrJson<{ notes: string[] }>(['restore', '--backup', backupId, '--partial', 'shop', '--to', to]);
    console.log(r.notes.join('\n'));
    expect(readdirSync(to)).toContain('shop');
    expect(readdirSync(to)).not.toContain('crm');
  });
});

/**
 * ebr end to end on a real MariaDB, through the CLI: a backup under a transfer workload restores with
 * the sum of balances unchanged; point-in-time restore between two known commits; a full restore into
 * the stopped server's own data directory; the window that writers feel, measured.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/env.js';
import { sumOfBalances, withRestoredServer, writeConfig, type EbrSetup } from './mariadb-instance.js';
import { createServer, serverNow, type TestServer } from './server.js';
import { startTransfers, startWriter } from './workload.js';

const accounts = 200;
const opening = 1000;

describe('mariadb: backup and restore through the CLI', () => {
  const t = tempDir('ebr-mdb-e2e-');
  let server: TestServer;
  let e: EbrSetup;

  beforeAll(async () => {
    server = await createServer();
    await server.query('CREATE DATABASE shop');
    await server.query('CREATE TABLE shop.accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB');
    const values = Array.from({ length: accounts }, (_, i) => `(${i + 1}, ${opening})`).join(',');
    await server.query(`INSERT INTO shop.accounts VALUES ${values}`);
    await server.query('CREATE DATABASE crm');
    await server.query('CREATE TABLE crm.ticks (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6) NOT NULL) ENGINE=InnoDB');
    await server.query('CREATE TABLE crm.events (id INT AUTO_INCREMENT PRIMARY KEY, label VARCHAR(20) NOT NULL) ENGINE=InnoDB');
    e = writeConfig(t.dir, server);
  });

  afterAll(async () => {
    await server?.cleanup();
    t.cleanup();
  });

  it('lists the spaces', async () => {
    const doc = await e.ebrJson<{ spaces: Array<{ name: string; critical: boolean }> }>(['spaces']);
    expect(doc.spaces.map((s) => [s.name, s.critical])).toEqual([
      ['server', true],
      ['crm', false],
      ['shop', false],
    ]);
  });

  it('a backup under random transfers restores with the sum of balances unchanged', async () => {
    const transfers = await startTransfers(server, 'shop.accounts', accounts);
    const ticker = await startWriter(server, 'crm.ticks');
    let backup: { backupId: string; blockWindowMs: number };
    try {
      await transfers.waitForCommits(200);
      ticker.resetGap();
      backup = await e.ebrJson(['backup']);
      const worst = ticker.worstGapMs();
      const during = transfers.commits();
      await transfers.waitForCommits(during + 100);
      console.log(`backup ${backup.backupId}: block window ${backup.blockWindowMs.toFixed(1)} ms (copy provider); the ticker's worst stall ${worst.toFixed(1)} ms; ${during} transfers before the backup returned`);
      expect(transfers.errors).toEqual([]);
    } finally {
      await transfers.stop();
      await ticker.stop();
    }
    expect(await sumOfBalances(server)).toEqual({ n: accounts, total: accounts * opening });

    const to = path.join(t.dir, 'restored-sum');
    const r = await e.ebrJson<{ notes: string[] }>(['restore', '--backup', backup.backupId, '--to', to]);
    console.log(r.notes.join('\n'));
    await withRestoredServer(to, async (s) => {
      expect(await sumOfBalances(s)).toEqual({ n: accounts, total: accounts * opening });
      const [check] = await s.query<{ Msg_text: string }>('CHECK TABLE shop.accounts');
      expect(check!.Msg_text).toBe('OK');
      // the restored server writes binlogs after every number the archive holds
      const archived = readdirSync(path.join(t.dir, 'backups/mdb/binlog')).filter((f) => /^binlog\.\d+$/.test(f));
      const [status] = await s.query<{ File: string }>('SHOW MASTER STATUS');
      expect(Number(status!.File.split('.')[1])).toBeGreaterThan(Math.max(...archived.map((f) => Number(f.split('.')[1]))));
    });
  });

  it('restores to a time between two known commits', async () => {
    const base = await e.ebrJson<{ backupId: string }>(['backup']);
    await server.query("INSERT INTO crm.events (label) VALUES ('before')");
    await new Promise((r) => setTimeout(r, 1600));
    const target = await serverNow(server);
    await new Promise((r) => setTimeout(r, 1600));
    await server.query("INSERT INTO crm.events (label) VALUES ('after')");
    const sync = await e.ebrJson<{ stored: string[] }>(['binlog', 'sync']);
    expect(sync.stored.length).toBeGreaterThan(0);

    const to = path.join(t.dir, 'restored-pitr');
    const r = await e.ebrJson<{ notes: string[]; details: { replayed: string[]; reachesTarget: boolean } }>(['restore', '--backup', base.backupId, '--to', to, '--until', target]);
    console.log(`until ${target}:\n${r.notes.join('\n')}`);
    expect(r.details.reachesTarget).toBe(true);
    await withRestoredServer(to, async (s) => {
      const rows = await s.query<{ label: string }>('SELECT label FROM crm.events ORDER BY id');
      expect(rows.map((x) => x.label)).toEqual(['before']);
      expect(await sumOfBalances(s)).toEqual({ n: accounts, total: accounts * opening });
    });

    // Without --until, the restore rolls forward to the end of the archive: both rows.
    const all = path.join(t.dir, 'restored-latest');
    await e.ebrJson(['restore', '--backup', base.backupId, '--to', all]);
    await withRestoredServer(all, async (s) => {
      const rows = await s.query<{ label: string }>('SELECT label FROM crm.events ORDER BY id');
      expect(rows.map((x) => x.label)).toEqual(['before', 'after']);
    });
  });

  it('refuses a full restore into the running server\'s own directory, and restores it once stopped', async () => {
    const b = await e.ebrJson<{ backupId: string }>(['backup']);
    await server.query("INSERT INTO crm.events (label) VALUES ('later')");
    await server.query('CREATE DATABASE made_later');
    await server.query('CREATE TABLE made_later.t (id INT PRIMARY KEY)');
    await server.query('CREATE TABLE shop.made_later (id INT PRIMARY KEY)');
    const refused = await e.ebr(['restore', '--backup', b.backupId]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/running|in use/);
    await server.stop();
    const r = await e.ebrJson<{ notes: string[] }>(['restore', '--backup', b.backupId, '--until', new Date(Date.now() - 0).toISOString()]);
    console.log(r.notes.join('\n'));
    await server.start();
    const rows = await server.query<{ label: string }>('SELECT label FROM crm.events ORDER BY id');
    // 'later' was never archived (no sync after it), so the restore ends at the backup's binlog
    expect(rows.map((x) => x.label)).toEqual(['before', 'after']);
    expect(await server.query("SHOW DATABASES LIKE 'made_later'")).toEqual([]);
    expect(await server.query("SHOW TABLES IN shop LIKE 'made_later'")).toEqual([]);
    expect(existsSync(`${server.datadir}.ebr-displaced-${b.backupId}/made_later/t.ibd`)).toBe(true);
    expect(await sumOfBalances(server)).toEqual({ n: accounts, total: accounts * opening });
    // and the restored server backs up again
    await e.ebrJson(['backup']);
  });
});

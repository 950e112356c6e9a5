/**
 * A full MariaDB restore into the stopped server's own data directory, killed with SIGKILL at many
 * moments — staging, the swap, moving aside the files made after the backup, while the temporary
 * server runs crash recovery, after finish: the next ebr command ends the orphaned temporary server
 * and puts every file back exactly (data, binlogs, index, modes, owners), and the server then starts
 * on its own files. Run to the end, the restore gives the backup.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEbr, tempDir } from '../helpers/env.js';
import { tree } from '../helpers/tree.js';
import { sumOfBalances, writeConfig, type EbrSetup } from './mariadb-instance.js';
import { createServer, type TestServer } from './server.js';

const accounts = 50;
const t = tempDir('ebr-mdb-restore-kill-');
let server: TestServer;
let e: EbrSetup;
let backupId: string;

/** Processes whose command line names this data directory: a temporary server left behind. */
function serversOn(datadir: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(`--datadir=${datadir}`);
      } catch {
        return false;
      }
    })
    .map(Number);
}

beforeAll(async () => {
  server = await createServer();
  await server.query('CREATE DATABASE shop');
  await server.query('CREATE TABLE shop.accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB');
  await server.query(`INSERT INTO shop.accounts VALUES ${Array.from({ length: accounts }, (_, i) => `(${i + 1}, 1000)`).join(',')}`);
  e = writeConfig(t.dir, server);
  backupId = (await e.ebrJson<{ backupId: string }>(['backup'])).backupId;
  // After the backup: a changed balance, a schema and a table the restore must move aside.
  await server.query('UPDATE shop.accounts SET balance = balance + 5 WHERE id = 1');
  await server.query('CREATE DATABASE made_later');
  await server.query('CREATE TABLE made_later.t (id INT PRIMARY KEY) ENGINE=InnoDB');
  await server.stop();
}, 180_000);

afterAll(async () => {
  for (const pid of serversOn(server.datadir)) process.kill(pid, 'SIGKILL');
  await server?.cleanup();
  t.cleanup();
});

describe('mariadb: a full restore in place killed at any moment', () => {
  for (const at of ['stage-chunk:1', 'stage:3', 'swap:4', 'files:2', 'temp-server:1', 'finished:1']) {
    it(`killed at ${at}: the next command ends what it started and puts the data directory back exactly`, async () => {
      const before = tree(server.datadir);
      const r = await runEbr(['--config', e.config, 'restore', '--backup', backupId], { env: { EBR_FAULT_KILL_AT: at }, timeoutMs: 180_000 });
      expect(r.code, r.stderr).not.toBe(0);
      const next = await runEbr(['--config', e.config, '--json', 'restores']);
      expect(next.code, next.stderr).toBe(0);
      expect(next.stderr).toMatch(/every old file was put back as it was/);
      expect((JSON.parse(next.stdout) as Array<{ status: string }>)[0]!.status).toBe('rolled-back');
      expect(serversOn(server.datadir)).toEqual([]);
      expect(tree(server.datadir)).toEqual(before);
    });
  }

  it('the server starts on its own files after all that, then the restore run to the end gives the backup', async () => {
    await server.start();
    const [{ b }] = (await server.query<{ b: number }>('SELECT balance AS b FROM shop.accounts WHERE id = 1')) as [{ b: number }];
    expect(Number(b)).toBe(1005);
    await server.stop();
    const r = await runEbr(['--config', e.config, 'restore', '--backup', backupId], { timeoutMs: 180_000 });
    expect(r.code, r.stderr).toBe(0);
    await server.start();
    expect(await sumOfBalances(server)).toEqual({ n: accounts, total: accounts * 1000 });
    expect(await server.query("SHOW DATABASES LIKE 'made_later'")).toEqual([]);
    await server.stop();
  });
});

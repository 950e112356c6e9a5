/**
 * A PostgreSQL restore killed with SIGKILL at many moments, into a new directory (--to) and in place
 * over the stopped cluster: after the next ebr command the directories are either exactly what they
 * were (every file, mode, owner and link) or the whole restore, which starts and holds the backup's
 * rows. Also: a link planted inside the destination is refused before anything is written through it,
 * and an edited backup_label in the archive is refused.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEbr, waitFor } from '../helpers/env.js';
import { tree } from '../helpers/tree.js';
import { archivingCluster, mkdirForPostgres, postgresTempDir, restoredCluster, type Cluster, type EbrSetup } from './cluster.js';

const tmp = postgresTempDir('ebr-pg-restore-kill-');
let cluster: Cluster;
let setup: EbrSetup;
let backupId: string;
let tablespace: string;
const started: Cluster[] = [];

const ebr = (args: string[], env: NodeJS.ProcessEnv = {}) => runEbr(['--config', setup.config, ...args], { env, timeoutMs: 240_000 });

async function rows(c: Cluster): Promise<number> {
  const [r] = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM orders', [], 'shop');
  return r!.n;
}

beforeAll(async () => {
  ({ cluster, setup } = await archivingCluster(tmp.dir));
  tablespace = mkdirForPostgres(path.join(tmp.dir, 'ts1'));
  await cluster.query(`CREATE TABLESPACE ts1 LOCATION '${tablespace}'`);
  await cluster.query('CREATE DATABASE shop TABLESPACE ts1');
  await cluster.query('CREATE TABLE orders (id int primary key, note text)', [], 'shop');
  await cluster.query("INSERT INTO orders SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g", [], 'shop');
  const b = await ebr(['--json', 'backup']);
  expect(b.code, b.stderr).toBe(0);
  backupId = (JSON.parse(b.stdout) as { backupId: string }).backupId;
  // After the backup: more rows, and a new table whose file the restore must set aside.
  await cluster.query("INSERT INTO orders SELECT g, 'later' FROM generate_series(20001, 20500) g", [], 'shop');
  await cluster.query('CREATE TABLE late AS SELECT generate_series(1, 1000) AS x', [], 'shop');
  const [{ f }] = (await cluster.query<{ f: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS f')) as [{ f: string }];
  await waitFor(`WAL ${f} archived`, () => existsSync(path.join(setup.backups, 'pg', 'wal', `${f}.sha256`)) || undefined, 60_000, 200);
  await cluster.stop();
}, 300_000);

afterAll(async () => {
  for (const c of started) await c.stop('immediate').catch(() => undefined);
  await cluster?.stop('immediate').catch(() => undefined);
  tmp.cleanup();
});

async function afterKill(at: string, args: string[]): Promise<{ stderr: string; status: string }> {
  const r = await ebr(['restore', '--backup', backupId, ...args], { EBR_FAULT_KILL_AT: at });
  expect(r.code, r.stderr).not.toBe(0);
  const next = await ebr(['--json', 'restores']);
  expect(next.code, next.stderr).toBe(0);
  const [latest] = JSON.parse(next.stdout) as Array<{ status: string }>;
  return { stderr: next.stderr, status: latest!.status };
}

describe('PostgreSQL: a restore killed at any moment', () => {
  const intoDir = ['stage-chunk:2', 'stage:40', 'swap:30', 'files:1', 'files:4', 'finished:1'];
  for (const at of intoDir) {
    it(`--to DIR killed at ${at}: the next command removes every trace of it`, async () => {
      const dir = path.join(tmp.dir, `to-${at.replace(':', '-')}`);
      const { stderr, status } = await afterKill(at, ['--to', dir]);
      expect(stderr).toMatch(/every old file was put back as it was/);
      expect(status).toBe('rolled-back');
      expect(existsSync(dir)).toBe(false);
    });
  }

  it('--to DIR killed while the old files are removed: the next command completes it, and it starts', async () => {
    const dir = path.join(tmp.dir, 'to-cleanup');
    const { stderr, status } = await afterKill('cleanup:1', ['--to', dir]);
    expect(stderr).toMatch(/the restore is complete/);
    expect(status).toBe('complete');
    expect(readdirSync(dir).filter((n) => n.includes('.ebr-'))).toEqual([]);
    const copy = await restoredCluster(dir, tmp.dir);
    started.push(copy);
    await copy.mustStart();
    await copy.waitPromoted();
    expect(await rows(copy)).toBe(20500);
    await copy.stop();
  });

  const inPlace = ['stage-chunk:3', 'swap:1', 'swap:200', 'files:1', 'files:3', 'files:5', 'finished:1'];
  for (const at of inPlace) {
    it(`in place killed at ${at}: the next command puts the stopped cluster back exactly`, async () => {
      const before = tree(cluster.data, tablespace);
      const { stderr, status } = await afterKill(at, []);
      expect(stderr).toMatch(/every old file was put back as it was/);
      expect(status).toBe('rolled-back');
      expect(tree(cluster.data, tablespace)).toEqual(before);
    });
  }

  it('in place, run to the end after all that: the cluster starts with the rows replayed to the end of the archive', async () => {
    const r = await ebr(['restore', '--backup', backupId]);
    expect(r.code, r.stderr).toBe(0);
    const names = Object.keys(tree(cluster.data, tablespace)).map((p) => path.basename(p));
    // Only the old pg_wal stays, as documented: it may hold WAL that was never archived.
    expect(names.filter((n) => /\.ebr-(restore|old)-/.test(n) && n !== `pg_wal.ebr-old-${backupId}`)).toEqual([]);
    await cluster.mustStart();
    await cluster.waitPromoted();
    expect(await rows(cluster)).toBe(20500);
    await cluster.stop();
  });
});

describe('PostgreSQL: what a restore refuses to write', () => {
  it('a link planted inside the --to directory: refused before anything is written through it', async () => {
    const dir = path.join(tmp.dir, 'planted');
    const outside = path.join(tmp.dir, 'outside');
    mkdirSync(dir);
    mkdirSync(outside);
    // Looks like a data directory (so the adapter's own check lets it through), with base/ leading elsewhere.
    writeFileSync(path.join(dir, 'PG_VERSION'), '15\n');
    symlinkSync(outside, path.join(dir, 'base'));
    const r = await ebr(['restore', '--backup', backupId, '--to', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/restore refuses to write .*\/planted\/base.*symbolic link/);
    expect(readdirSync(outside)).toEqual([]);
    expect(readdirSync(dir).sort()).toEqual(['PG_VERSION', 'base']);
  });

  it('an edited backup_label in the archive is refused, naming the meta file', async () => {
    const label = path.join(setup.backups, 'pg', backupId, 'meta', 'backup_label');
    const good = readFileSync(label);
    writeFileSync(label, good.toString().replace(/START WAL LOCATION: \S+/, 'START WAL LOCATION: 0/1000028'));
    try {
      const dir = path.join(tmp.dir, 'label');
      const r = await ebr(['restore', '--backup', backupId, '--to', dir]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/meta\/backup_label has sha256 \w+, but the catalog recorded \w+/);
      expect(existsSync(dir)).toBe(false);
      const v = await ebr(['verify', backupId]);
      expect(v.code).toBe(1);
      expect(v.stderr + v.stdout).toMatch(/backup_label/);
    } finally {
      writeFileSync(label, good);
    }
  });
});

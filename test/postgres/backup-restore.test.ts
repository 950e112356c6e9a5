/**
 * PostgreSQL end to end through the CLI, against a real cluster with archive_command = `ebr wal push`:
 * a backup under pgbench load restores to a cluster whose pgbench invariant holds and that pg_amcheck
 * finds clean; point-in-time restore between two commits; selective restore of one database; kill -9
 * inside the window; a wrong archive_command.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEbr, spawnEbr, waitFor } from '../helpers/env.js';
import { archivingCluster, mkdirForPostgres, postgresTempDir, type Cluster, type EbrSetup, startRestored as startRestoredIn } from './cluster.js';

const tmp = postgresTempDir('ebr-pg-e2e-');
let cluster: Cluster;
let setup: EbrSetup;
const restored: Cluster[] = [];

const ebr = (args: string[], timeoutMs = 240_000) => runEbr(['--config', setup.config, ...args], { timeoutMs });
const json = <T>(r: { code: number; stdout: string; stderr: string }): T => {
  if (r.code !== 0) throw new Error(`ebr failed (${r.code}): ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as T;
};

interface BackupOut {
  backupId: string;
  blockWindowMs: number;
  bytes: number;
  meta: { logStart: string; logEnd: string; details: { stopWalFile: string; stoppedAt: string } };
}

async function invariant(c: Cluster): Promise<{ accounts: string; history: string }> {
  const [r] = await c.query<{ accounts: string; history: string }>('SELECT (SELECT sum(abalance) FROM pgbench_accounts)::text AS accounts, (SELECT coalesce(sum(delta), 0) FROM pgbench_history)::text AS history');
  return r!;
}

/** Forces the current WAL segment out and waits until it is in the log archive, so recovery can reach past this moment. */
async function archiveCurrentWal(): Promise<void> {
  const [r] = await cluster.query<{ f: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS f');
  await waitFor(`WAL segment ${r!.f} in the log archive`, () => existsSync(path.join(setup.backups, 'pg', 'wal', `${r!.f}.sha256`)) || undefined, 60_000, 200);
}

const startRestored = (dir: string) => startRestoredIn(dir, tmp.dir, restored);

beforeAll(async () => {
  ({ cluster, setup } = await archivingCluster(tmp.dir));
  const ts = mkdirForPostgres(path.join(tmp.dir, 'ts1'));
  await cluster.query(`CREATE TABLESPACE ts1 LOCATION '${ts}'`);
  await cluster.query('CREATE DATABASE shop TABLESPACE ts1');
  await cluster.query('CREATE DATABASE other');
  await cluster.query('CREATE TABLE orders (id int primary key, note text)', [], 'shop');
  await cluster.query("INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1, 5000) g", [], 'shop');
  await cluster.query('CREATE TABLE stuff (id int primary key)', [], 'other');
  await cluster.query('INSERT INTO stuff SELECT generate_series(1, 1000)', [], 'other');
  const init = await cluster.pgbench(['-i', '-s', '4', '-q', 'postgres']);
  if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
  // No CHECKPOINT here on purpose: pgbench -i leaves the files of dropped tables until the next checkpoint,
  // and the backup must cope with them vanishing (chunksMayVanish) while its own checkpoint runs.
});

afterAll(async () => {
  for (const c of restored) await c.stop('immediate').catch(() => undefined);
  await cluster?.stop('immediate').catch(() => undefined);
  tmp.cleanup();
});

describe('PostgreSQL backup and restore', () => {
  let first: BackupOut;

  it('takes a backup while pgbench -c 4 writes, and the restored cluster keeps the pgbench invariant and passes pg_amcheck', async () => {
    const load = cluster.pgbench(['-c', '4', '-j', '2', '-T', '10', '-n', 'postgres']);
    await new Promise((r) => setTimeout(r, 1500));
    first = json<BackupOut>(await ebr(['--json', 'backup']));
    const bench = await load;
    expect(bench.code, bench.stderr).toBe(0);
    expect(first.meta.logStart).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(existsSync(path.join(setup.backups, 'pg', first.backupId, 'meta', 'backup_label'))).toBe(true);
    expect(readFileSync(path.join(setup.backups, 'pg', first.backupId, 'meta', 'tablespace_map'), 'utf8')).toMatch(/^\d+ .*\/ts1$/m);
    // The session is gone and no base backup is left running on the server.
    expect(await cluster.query("SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'ebr %'")).toEqual([]);
    const before = await invariant(cluster);
    expect(before.accounts).toBe(before.history);

    await archiveCurrentWal();
    const dir = path.join(tmp.dir, 'restore-full');
    const r = json<{ notes: string[]; files: number }>(await ebr(['--json', 'restore', '--to', dir]));
    expect(r.notes.join('\n')).toMatch(/pg_tblspc_targets/);
    expect(readFileSync(path.join(dir, 'postgresql.auto.conf'), 'utf8')).toMatch(/restore_command = '.* wal get --instance pg %f %p'/);
    expect(existsSync(path.join(dir, 'recovery.signal'))).toBe(true);
    expect(statSync(dir).mode & 0o777).toBe(0o700);

    const copy = await startRestored(dir);
    const after = await invariant(copy);
    expect(after.accounts).toBe(after.history);
    // Everything pgbench committed was archived and replayed: the copy equals the original at the end of the load.
    expect(after).toEqual(before);
    const [{ n }] = (await copy.query<{ n: number }>('SELECT count(*)::int AS n FROM orders', [], 'shop')) as [{ n: number }];
    expect(n).toBe(5000);
    const check = await copy.amcheck();
    expect(check.code, `${check.stdout}${check.stderr}`).toBe(0);
    expect(check.stdout).toBe('');
    const [{ loc }] = (await copy.query<{ loc: string }>("SELECT pg_tablespace_location(oid) AS loc FROM pg_tablespace WHERE spcname = 'ts1'")) as [{ loc: string }];
    expect(loc.startsWith(path.join(dir, 'pg_tblspc_targets'))).toBe(true);
    await copy.stop();
  });

  it('restores to a time between two commits: exactly the rows committed before it', async () => {
    await cluster.query('CREATE TABLE marks (label text, at timestamptz DEFAULT clock_timestamp())', [], 'shop');
    await cluster.query("INSERT INTO marks (label) VALUES ('before')", [], 'shop');
    await new Promise((r) => setTimeout(r, 1100));
    const [{ t }] = (await cluster.query<{ t: string }>("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' AS t")) as [{ t: string }];
    await new Promise((r) => setTimeout(r, 1100));
    await cluster.query("INSERT INTO marks (label) VALUES ('after')", [], 'shop');
    await archiveCurrentWal();

    const dir = path.join(tmp.dir, 'restore-pitr');
    const r = json<{ notes: string[] }>(await ebr(['--json', 'restore', '--to', dir, '--until', t]));
    expect(readFileSync(path.join(dir, 'postgresql.auto.conf'), 'utf8')).toMatch(/recovery_target_action = 'promote'/);
    expect(r.notes.join('\n')).toMatch(/up to/);
    const copy = await startRestored(dir);
    const rows = await copy.query<{ label: string }>('SELECT label FROM marks ORDER BY at', [], 'shop');
    expect(rows.map((x) => x.label)).toEqual(['before']);
    const inv = await invariant(copy);
    expect(inv.accounts).toBe(inv.history);
    await copy.stop();
  });

  it('restores one database selectively: its rows come back, the others are placeholders that can be dropped', async () => {
    const dir = path.join(tmp.dir, 'restore-partial');
    const r = json<{ notes: string[]; mode: string }>(await ebr(['--json', 'restore', '--to', dir, '--partial', 'shop']));
    expect(r.mode).toBe('partial');
    expect(r.notes.join('\n')).toMatch(/placeholder files .*other/);
    const copy = await startRestored(dir);
    const [{ n }] = (await copy.query<{ n: number }>('SELECT count(*)::int AS n FROM orders', [], 'shop')) as [{ n: number }];
    expect(n).toBe(5000);
    // pgbench lives in the postgres database, which every partial restore brings back whole.
    const inv = await invariant(copy);
    expect(inv.accounts).toBe(inv.history);
    // The database left out cannot be read, and can be dropped.
    await expect(copy.query('SELECT count(*) FROM stuff', [], 'other')).rejects.toThrow();
    await copy.query('DROP DATABASE other');
    const check = await copy.amcheck();
    expect(check.code, `${check.stdout}${check.stderr}`).toBe(0);
    await copy.stop();
  });

  it('refuses a partial restore of the cluster space or a template database', async () => {
    const dir = path.join(tmp.dir, 'restore-refused');
    for (const space of ['template1', 'cluster']) {
      const r = await ebr(['restore', '--to', dir, '--partial', space]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`space ${space} is critical`));
      expect(r.stderr).toMatch(/hint: .*shop/);
    }
    expect(existsSync(path.join(dir, 'PG_VERSION'))).toBe(false);
  });

  it('refuses to restore over the running cluster', async () => {
    const r = await ebr(['restore']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/PostgreSQL is running on .* \(postmaster pid \d+\)/);
    expect(r.stderr).toMatch(/hint: stop it first/);
  });

  it('after kill -9 inside the window, the server has no backup running and the next backup succeeds', async () => {
    const child = spawnEbr(['--config', setup.config, 'backup'], { env: { EBR_FAULT_HOLD_WINDOW_MS: '30000' } });
    try {
      // Inside the window: pg_backup_start has run and the copy provider is staging files (the window is then held open).
      await waitFor(
        'the snapshot being staged inside the window',
        async () => {
          const staging = path.join(tmp.dir, 'staging');
          if (!existsSync(staging)) return undefined;
          const ids = readdirSync(staging);
          return ids.some((id) => existsSync(path.join(staging, id, 'global', 'pg_control'))) || undefined;
        },
        60_000,
        50,
      );
      await new Promise((r) => setTimeout(r, 1500));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    await waitFor('the killed session to end', async () => (await cluster.query("SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'ebr %'")).length === 0 || undefined, 30_000, 100);
    const next = json<BackupOut>(await ebr(['--json', 'backup']));
    expect(next.backupId).toBeTruthy();
    const list = json<Array<{ id: string; status: string }>>(await ebr(['--json', 'list']));
    expect(list.filter((b) => b.status === 'complete').map((b) => b.id)).toContain(next.backupId);
    // The killed run is marked failed by the next command, in the phase it died in: inside the window.
    expect(list.filter((b) => b.status === 'failed').map((b) => (b as { phase?: string }).phase)).toContain('acquire');
  });

  it('fails a backup clearly when archive_command does not push to ebr', async () => {
    await cluster.query("ALTER SYSTEM SET archive_command = ''");
    await cluster.query('SELECT pg_reload_conf()');
    await new Promise((r) => setTimeout(r, 300));
    try {
      const r = await ebr(['backup']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/archive_command does not call `ebr wal push`/);
      expect(r.stderr).toMatch(/hint: set in postgresql\.conf, then reload PostgreSQL .*archive_command = '.*wal push --instance pg %p'/);
    } finally {
      await cluster.query('ALTER SYSTEM RESET archive_command');
      await cluster.query('SELECT pg_reload_conf()');
    }
  });

  it('restores in place into the stopped cluster, back to a time before a table existed, and the server carries on archiving', async () => {
    const base = json<BackupOut>(await ebr(['--json', 'backup']));
    await new Promise((r) => setTimeout(r, 1100));
    const [{ t }] = (await cluster.query<{ t: string }>("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' AS t")) as [{ t: string }];
    await new Promise((r) => setTimeout(r, 1100));
    await cluster.query('CREATE TABLE late (x int)', [], 'shop');
    await cluster.query('INSERT INTO late SELECT generate_series(1, 100000)', [], 'shop');
    await cluster.query("DELETE FROM orders WHERE id > 100", [], 'shop');
    const [{ file }] = (await cluster.query<{ file: string }>("SELECT pg_relation_filepath('late') AS file", [], 'shop')) as [{ file: string }];
    await archiveCurrentWal();
    await cluster.stop();
    // The table created after the target lives in the tablespace; a restore must not leave its file behind.
    const lateFile = path.join(cluster.data, file);
    expect(existsSync(lateFile)).toBe(true);

    const r = json<{ notes: string[]; details: { removedFiles: number } }>(await ebr(['--json', 'restore', '--backup', base.backupId, '--until', t]));
    expect(r.details.removedFiles).toBeGreaterThan(0);
    expect(existsSync(lateFile)).toBe(false);
    expect(existsSync(path.join(cluster.data, 'backup_label'))).toBe(true);
    // The old WAL is set aside, not deleted: it may hold segments that were never archived.
    expect(readdirSync(path.join(cluster.data, `pg_wal.ebr-old-${base.backupId}`)).some((f) => /^[0-9A-F]{24}$/.test(f))).toBe(true);
    expect(readdirSync(path.join(cluster.data, 'pg_wal'))).toEqual(['archive_status']);
    expect(r.notes.join('\n')).toContain(`pg_wal.ebr-old-${base.backupId}`);
    expect(readFileSync(path.join(cluster.data, 'postgresql.auto.conf'), 'utf8')).not.toMatch(/archive_mode = 'off'/);

    await cluster.mustStart();
    await cluster.waitPromoted();
    const [{ n }] = (await cluster.query<{ n: number }>('SELECT count(*)::int AS n FROM orders', [], 'shop')) as [{ n: number }];
    expect(n).toBe(5000);
    const [{ exists }] = (await cluster.query<{ exists: boolean }>("SELECT to_regclass('late') IS NOT NULL AS exists", [], 'shop')) as [{ exists: boolean }];
    expect(exists).toBe(false);
    const inv = await invariant(cluster);
    expect(inv.accounts).toBe(inv.history);
    // The restored server is on a new timeline and archives into the same log archive; a new backup works.
    const [{ tli }] = (await cluster.query<{ tli: number }>('SELECT timeline_id AS tli FROM pg_control_checkpoint()')) as [{ tli: number }];
    expect(tli).toBeGreaterThan(1);
    await waitFor('the new timeline history file in the log archive', () => existsSync(path.join(setup.backups, 'pg', 'wal', `${tli.toString(16).toUpperCase().padStart(8, '0')}.history.sha256`)) || undefined, 30_000, 200);
    const next = json<BackupOut>(await ebr(['--json', 'backup']));
    expect(next.backupId).toBeTruthy();
    const check = await cluster.amcheck();
    expect(check.code, `${check.stdout}${check.stderr}`).toBe(0);
  });
});

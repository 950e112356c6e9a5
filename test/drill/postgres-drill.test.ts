/**
 * `ebr drill` on PostgreSQL: the backup restored into scratch, a temporary postmaster on it replays the
 * WAL archived after the backup to the end of the archive, pg_amcheck checks every heap and index, the
 * server is stopped, the result recorded and the scratch removed; the live cluster is not touched.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEbr, waitFor } from '../helpers/env.js';
import { archivingCluster, postgresTempDir, type Cluster, type EbrSetup } from '../postgres/cluster.js';

const tmp = postgresTempDir('ebr-pg-drill-');
let cluster: Cluster;
let setup: EbrSetup;

beforeAll(async () => {
  ({ cluster, setup } = await archivingCluster(tmp.dir));
  await cluster.query('CREATE TABLE orders (id int primary key, note text)');
  await cluster.query("INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1, 2000) g");
});

afterAll(async () => {
  await cluster?.stop('immediate').catch(() => undefined);
  tmp.cleanup();
});

interface Drill {
  status: string;
  backupId: string;
  recoverMs: number;
  checks: Array<{ name: string; ok: boolean; detail: string }>;
  logApplied: { count: number; first?: string; last?: string; endedAt?: string };
  scratch: string;
  scratchRemoved: boolean;
}

describe('ebr drill on PostgreSQL', () => {
  it('starts the copy, replays the archive to its end, passes pg_amcheck, records it and removes the scratch', async () => {
    const b = await runEbr(['--config', setup.config, '--json', 'backup'], { timeoutMs: 240_000 });
    expect(b.code, b.stderr).toBe(0);
    const backupId = (JSON.parse(b.stdout) as { backupId: string }).backupId;
    // Work after the backup, archived: the drill must replay it.
    await cluster.query("INSERT INTO orders SELECT g, 'late ' || g FROM generate_series(2001, 4000) g");
    const [w] = await cluster.query<{ f: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS f');
    await waitFor(`${w!.f} archived`, () => existsSync(path.join(setup.backups, 'pg', 'wal', `${w!.f}.sha256`)) || undefined, 60_000, 200);

    const r = await runEbr(['--config', setup.config, '--json', 'drill'], { timeoutMs: 300_000 });
    expect(r.code, `${r.stderr}\n${r.stdout}`).toBe(0);
    const d = JSON.parse(r.stdout) as Drill;
    expect(d.status).toBe('passed');
    expect(d.backupId).toBe(backupId);
    const amcheck = d.checks.find((c) => c.name.startsWith('pg_amcheck'));
    expect(amcheck?.ok, amcheck?.detail).toBe(true);
    expect(d.checks.find((c) => c.name === 'recovery')?.ok).toBe(true);
    expect(d.checks.find((c) => c.name === 'shutdown')?.ok).toBe(true);
    // The segment archived after the backup was replayed.
    expect(d.logApplied.count).toBeGreaterThanOrEqual(1);
    expect(d.logApplied.last! >= w!.f).toBe(true);
    expect(d.recoverMs).toBeGreaterThan(0);
    expect(d.scratchRemoved).toBe(true);
    expect(existsSync(d.scratch)).toBe(false);
    const db = new Database(path.join(tmp.dir, 'var', 'catalog.db'), { readonly: true });
    const rows = db.prepare('SELECT status, log_applied, server_pid FROM drills').all() as Array<{ status: string; log_applied: string; server_pid: number }>;
    db.close();
    expect(rows.map((x) => x.status)).toEqual(['passed']);
    expect(JSON.parse(rows[0]!.log_applied).count).toBe(d.logApplied.count);
    // The temporary server is gone; the live cluster still serves.
    expect(rows[0]!.server_pid).toBeGreaterThan(0);
    const cmdline = existsSync(`/proc/${rows[0]!.server_pid}/cmdline`) ? readFileSync(`/proc/${rows[0]!.server_pid}/cmdline`, 'utf8') : '';
    expect(cmdline.includes(d.scratch)).toBe(false);
    const [n] = await cluster.query<{ n: string }>('SELECT count(*)::text AS n FROM orders');
    expect(n!.n).toBe('4000');
    // ebr status: the drill, and the WAL archive against the server's current segment.
    const st = await runEbr(['--config', setup.config, '--json', 'status']);
    expect(st.code, st.stderr).toBe(0);
    const s = (JSON.parse(st.stdout) as { instances: Array<{ lastDrill: { status: string }; log: { newest: string; lag: { current: string; newestArchived: string; behind: number }; error?: string } }> }).instances[0]!;
    expect(s.lastDrill.status).toBe('passed');
    expect(s.log.error).toBeUndefined();
    expect(s.log.lag.newestArchived).toBe(w!.f);
    expect(s.log.lag.current > w!.f).toBe(true);
    expect(s.log.lag.behind).toBe(0);
  });
});

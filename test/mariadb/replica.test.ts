/**
 * A split mirror on real MariaDB: a primary with its binlog archived by ebr and a replica fed by
 * CHANGE MASTER TO … MASTER_USE_GTID. The backup runs on the replica (SQL thread stopped, BACKUP STAGE
 * there, resumed after) while a writer commits on the primary; the backup restores as a standalone
 * server, to a point in time through the primary's archived binlogs; kill -9 during the split leaves
 * the SQL thread stopped until the watchdog starts it; a stopped or wrong replica is refused.
 */
import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnEbr, tempDir, waitFor } from '../helpers/env.js';
import { withRestoredServer, writeConfig, type EbrSetup } from './mariadb-instance.js';
import { replicaPair } from './replication.js';
import { serverNow, type TestServer } from './server.js';
import { startWriter } from './workload.js';

const t = tempDir('ebr-mdb-replica-');
let primary: TestServer;
let replica: TestServer;
let e: EbrSetup;

const sqlThread = async () => String((await replica.query<{ Slave_SQL_Running: string }>('SHOW SLAVE STATUS'))[0]?.Slave_SQL_Running);
const count = async (s: TestServer) => Number((await s.query<{ n: number }>('SELECT COUNT(*) AS n FROM shop.ticks'))[0]!.n);

beforeAll(async () => {
  ({ primary, replica } = await replicaPair(
    async (p) => {
      await p.query('CREATE DATABASE shop');
      await p.query('CREATE TABLE shop.ticks (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6) NOT NULL) ENGINE=InnoDB');
      await p.query('CREATE TABLE shop.events (id INT AUTO_INCREMENT PRIMARY KEY, label VARCHAR(20) NOT NULL) ENGINE=InnoDB');
      await p.query('INSERT INTO shop.ticks (at) SELECT NOW(6) FROM information_schema.COLUMNS LIMIT 500');
    },
    async (r) => (await count(r)) === 500,
  ));
  e = writeConfig(t.dir, primary, { provider: 'replica', replica: { socket: replica.socket }, freeze: 'copy', maxLagMs: 60000 });
}, 120_000);

afterAll(async () => {
  await replica?.cleanup();
  await primary?.cleanup();
  t.cleanup();
});

describe('mariadb: backup from a split replica', () => {
  let backupId: string;

  it('backs up on the replica while the primary commits on, and reports the split and the resync', async () => {
    const plan = await e.ebrJson<{ steps: Array<{ text: string }> }>(['backup', '--dry-run']);
    expect(plan.steps.map((s) => s.text).join('\n')).toMatch(/replica: STOP SLAVE SQL_THREAD[\s\S]*replica: BACKUP STAGE BLOCK_COMMIT[\s\S]*replica: START SLAVE SQL_THREAD/);
    const writer = await startWriter(primary, 'shop.ticks');
    let out: { backupId: string; blockWindowMs: number; meta: { details: { file: string; mirror: { replica: string; splitMs: number; resyncMs: number; backlogBytes: number } } } };
    let worst: number;
    try {
      await writer.waitForCommits(50);
      writer.resetGap();
      out = await e.ebrJson(['backup']);
      worst = writer.worstGapMs();
      expect(writer.errors).toEqual([]);
    } finally {
      await writer.stop();
    }
    backupId = out.backupId;
    const m = out.meta.details.mirror;
    console.log(`split ${m.splitMs} ms, ${m.backlogBytes} bytes of the primary's binlog meanwhile, caught up ${m.resyncMs} ms after the resume; the primary's writer's worst gap ${worst.toFixed(1)} ms`);
    expect(m.replica).toBe(replica.socket);
    expect(m.splitMs).toBeGreaterThanOrEqual(0);
    expect(m.resyncMs).toBeGreaterThanOrEqual(0);
    expect(m.backlogBytes).toBeGreaterThan(0);
    // The primary is never blocked; the bound is generous because the machine is shared.
    expect(worst).toBeLessThan(3_000);
    expect(await sqlThread()).toBe('Yes');
    const show = await e.ebrJson<Record<string, unknown>>(['show', backupId]);
    expect(JSON.stringify(show)).toContain('"splitMs"');
  });

  it("restores the replica's backup as a standalone server, to a point in time through the primary's binlogs", async () => {
    const ticks = await count(primary);
    await primary.query("INSERT INTO shop.events (label) VALUES ('before')");
    await new Promise((r) => setTimeout(r, 1600));
    const target = await serverNow(primary);
    await new Promise((r) => setTimeout(r, 1600));
    await primary.query("INSERT INTO shop.events (label) VALUES ('after')");
    await e.ebrJson(['binlog', 'sync']);
    const to = path.join(t.dir, 'restored');
    const r = await e.ebrJson<{ notes: string[]; details: { reachesTarget: boolean } }>(['restore', '--backup', backupId, '--to', to, '--until', target]);
    console.log(r.notes.join('\n'));
    expect(r.details.reachesTarget).toBe(true);
    // Nothing of the replica's replication state came along.
    expect(readdirSync(to).filter((f) => /relay|^master.*\.info$/.test(f))).toEqual([]);
    await withRestoredServer(to, async (s) => {
      expect(await s.query('SHOW SLAVE STATUS')).toEqual([]);
      // Every row the primary had: those in the replica's files up to the split, the rest replayed from there (a wrong position would lose rows or fail on duplicates).
      expect(await count(s)).toBe(ticks);
      expect((await s.query<{ label: string }>('SELECT label FROM shop.events ORDER BY id')).map((x) => x.label)).toEqual(['before']);
    });
  });

  it('kill -9 during the split: the SQL thread stays stopped until the watchdog starts it, and the backup is failed', async () => {
    const child = spawnEbr(['--config', e.config, 'backup'], { env: { EBR_FAULT_HOLD_WINDOW_MS: '120000' } });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    await waitFor(`the SQL thread stopped by the backup (ebr said: ${stderr})`, async () => ((await sqlThread()) === 'No' ? true : undefined), 90_000, 50);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    await waitFor('the watchdog to start the SQL thread', async () => ((await sqlThread()) === 'Yes' ? true : undefined), 60_000, 100);
    const list = await e.ebrJson<Array<{ id: string; status: string }>>(['list']);
    expect(list.find((b) => b.id !== backupId)?.status).toBe('failed');
  });

  it('refuses a replica whose SQL thread someone else stopped, and a server that is not a replica', async () => {
    await replica.query('STOP SLAVE SQL_THREAD');
    try {
      const r = await e.ebr(['backup']);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/someone else has split it/);
    } finally {
      await replica.query('START SLAVE SQL_THREAD');
    }
    const dir = path.join(t.dir, 'wrong');
    mkdirSync(dir);
    const wrong = writeConfig(dir, primary, { provider: 'replica', replica: { socket: primary.socket } });
    const r = await wrong.ebr(['backup']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/is not a replica/);
  });
});

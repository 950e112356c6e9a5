/**
 * `ebr drill` on MariaDB: the backup restored into scratch (crash recovery and the archived binlogs
 * replayed to the end of the archive), the copy started once more and CHECK TABLE run on every table,
 * the result recorded and the scratch removed.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/env.js';
import { writeConfig, type EbrSetup } from '../mariadb/mariadb-instance.js';
import { createServer, type TestServer } from '../mariadb/server.js';

describe('ebr drill on MariaDB', () => {
  const t = tempDir('ebr-mdb-drill-');
  let server: TestServer;
  let e: EbrSetup;

  beforeAll(async () => {
    server = await createServer();
    await server.query('CREATE DATABASE shop');
    await server.query('CREATE TABLE shop.orders (id INT PRIMARY KEY, note VARCHAR(40), KEY (note)) ENGINE=InnoDB');
    await server.query("INSERT INTO shop.orders SELECT seq, CONCAT('order ', seq) FROM shop.seq_1_to_2000");
    e = writeConfig(t.dir, server);
  });

  afterAll(async () => {
    await server?.cleanup();
    t.cleanup();
  });

  it('passes a good backup with the binlogs after it replayed, records it and removes the scratch', async () => {
    const b = await e.ebrJson<{ backupId: string }>(['backup']);
    await server.query("INSERT INTO shop.orders SELECT seq, 'late' FROM shop.seq_2001_to_2500");
    await e.ebrJson(['binlog', 'sync']);
    const r = await e.ebr(['--json', 'drill'], 300_000);
    expect(r.code, `${r.stderr}\n${r.stdout}`).toBe(0);
    const d = JSON.parse(r.stdout) as { status: string; backupId: string; checks: Array<{ name: string; ok: boolean; detail: string }>; logApplied: { count: number }; scratch: string; scratchRemoved: boolean };
    expect(d.status).toBe('passed');
    expect(d.backupId).toBe(b.backupId);
    const shop = d.checks.find((c) => /CHECK TABLE .* of shop$/.test(c.name));
    expect(shop?.ok, JSON.stringify(d.checks)).toBe(true);
    expect(d.checks.some((c) => / of mysql$/.test(c.name))).toBe(true);
    expect(d.logApplied.count).toBeGreaterThanOrEqual(1);
    expect(d.scratchRemoved).toBe(true);
    expect(existsSync(d.scratch)).toBe(false);
    expect(readdirSync(path.join(t.dir, 'var', 'drills'))).toEqual([]);
    const list = await e.ebrJson<Array<{ id: string; lastDrillAt: string | null }>>(['list']);
    expect(list.find((x) => x.id === b.backupId)?.lastDrillAt).toBeTruthy();
    // ebr status: the binlog archive holds every closed binlog; the server writes the next one.
    const st = await e.ebrJson<{ instances: Array<{ log: { lag: { current: string; behind: number; newestArchived: string }; error?: string } }> }>(['status']);
    const log = st.instances[0]!.log;
    expect(log.error).toBeUndefined();
    expect(log.lag.behind).toBe(0);
    expect(log.lag.current).not.toBe(log.lag.newestArchived);
    await server.query('FLUSH BINARY LOGS');
    await server.query('FLUSH BINARY LOGS');
    const later = await e.ebrJson<{ instances: Array<{ log: { lag: { behind: number } } }> }>(['status']);
    expect(later.instances[0]!.log.lag.behind).toBe(2);
  });
});

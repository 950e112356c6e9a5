/**
 * Many hosts, one catalog on a real PostgreSQL server: eight agents (processes with their own host
 * names, their own instances, one repository) back up at once while a ninth lists and shows; and a host
 * that dies inside a backup holds its instance only until its lease expires, then the next command on
 * another host marks that backup failed and takes the instance over.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runEbr, spawnEbr, tempDir, waitFor } from '../helpers/env.js';
import { pgQuery, sqliteAgent, startCatalogServer, type CatalogServer } from './catalog-server.js';

let server: CatalogServer;
const tmp = tempDir('ebr-agents-');

beforeAll(async () => {
  server = await startCatalogServer();
});

afterAll(async () => {
  await server?.stop();
  tmp.cleanup();
});

interface Listed {
  id: string;
  instance: string;
  status: string;
}

describe('many hosts, one PostgreSQL catalog', () => {
  test('eight agents back up at once and a ninth reads: no torn or duplicated row', { timeout: 300_000 }, async () => {
    const url = await server.newCatalog();
    const repo = path.join(tmp.dir, 'repo');
    const agents = Array.from({ length: 8 }, (_, i) => sqliteAgent(path.join(tmp.dir, `host${i}`), { name: `shop${i}`, catalog: url, repo }));
    const reader = sqliteAgent(path.join(tmp.dir, 'reader'), { name: 'reader', catalog: url, repo });
    expect((await runEbr(['-c', reader.config, 'catalog', 'migrate'])).code).toBe(0);

    const backups = agents.map((a, i) => runEbr(['-c', a.config, 'backup', '--json'], { env: { EBR_HOST: `host${i}` }, timeoutMs: 240_000 }));
    let done = false;
    const all = Promise.all(backups).finally(() => (done = true));
    // The ninth host reads while they run: every answer is whole JSON, no id twice, no unknown status.
    const seen: Listed[][] = [];
    while (!done) {
      const r = await runEbr(['-c', reader.config, 'list', '--json'], { env: { EBR_HOST: 'reader' } });
      expect(r.code, r.stderr).toBe(0);
      const rows = JSON.parse(r.stdout) as Listed[];
      expect(new Set(rows.map((x) => x.id)).size).toBe(rows.length);
      for (const x of rows) expect(['running', 'complete']).toContain(x.status);
      for (const x of rows.filter((x) => x.status === 'running')) {
        const s = await runEbr(['-c', reader.config, 'show', x.id, '--json'], { env: { EBR_HOST: 'reader' } });
        expect(s.code, s.stderr).toBe(0);
        expect((JSON.parse(s.stdout) as { id: string }).id).toBe(x.id);
      }
      seen.push(rows);
    }
    const results = await all;
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    expect(seen.length).toBeGreaterThan(0);

    const ids = results.map((r) => (JSON.parse(r.stdout) as { backupId: string }).backupId);
    const final = JSON.parse((await runEbr(['-c', reader.config, 'list', '--json'])).stdout) as Listed[];
    expect(final.map((x) => [x.instance, x.status]).sort()).toEqual(agents.map((_, i) => [`shop${i}`, 'complete']).sort());
    expect(final.map((x) => x.id).sort()).toEqual([...ids].sort());
    // PostgreSQL's own rows: one backup per instance, each recorded by its own host, no lock left.
    const rows = await pgQuery<{ instance: string; runner_host: string; n: string }>(url, 'SELECT instance, runner_host, COUNT(*) OVER (PARTITION BY instance) AS n FROM backups ORDER BY instance');
    expect(rows.map((r) => [r.instance, r.runner_host, r.n])).toEqual(agents.map((_, i) => [`shop${i}`, `host${i}`, '1']));
    expect(await pgQuery(url, 'SELECT * FROM locks')).toEqual([]);
    // Every backup is whole in the shared repository, and each host restores its own.
    for (const [i, a] of agents.entries()) {
      const v = await runEbr(['-c', a.config, 'verify', 'latest'], { env: { EBR_HOST: `host${i}` } });
      expect(v.code, v.stderr).toBe(0);
    }
    const r0 = await runEbr(['-c', agents[0]!.config, 'restore', '--to', path.join(tmp.dir, 'restored0')], { env: { EBR_HOST: 'host0' } });
    expect(r0.code, r0.stderr).toBe(0);
  });

  test('a host dies inside a backup: its lease holds the instance, then expires and another host takes over', { timeout: 180_000 }, async () => {
    const url = await server.newCatalog();
    const dir = path.join(tmp.dir, 'lease');
    const a = sqliteAgent(dir, { name: 'shop', catalog: url, repo: path.join(dir, 'repo') });
    const leaseMs = 8000;
    const gate = path.join(dir, 'gate');
    const alpha = spawnEbr(['-c', a.config, 'backup'], { env: { EBR_HOST: 'alpha', EBR_LEASE_MS: String(leaseMs), EBR_FAULT_STREAM_GATE: gate } });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => alpha.on('exit', (_code, signal) => resolve(signal)));
    await waitFor('alpha to stream', async () => (await pgQuery<{ phase: string }>(url, "SELECT phase FROM backups WHERE status = 'running'").catch(() => []))[0]?.phase === 'stream' || undefined, 60_000);
    // The heartbeat runs: the lease is renewed while alpha lives.
    const [first] = await pgQuery<{ expires_at: string }>(url, 'SELECT expires_at FROM locks');
    await waitFor('a renewed lease', async () => ((await pgQuery<{ expires_at: string }>(url, 'SELECT expires_at FROM locks'))[0]!.expires_at > first!.expires_at) || undefined, 30_000);
    alpha.kill('SIGKILL'); // the host dies: no release, no last word to the catalog
    expect(await exited).toBe('SIGKILL');

    const beta = { EBR_HOST: 'beta', EBR_LEASE_MS: String(leaseMs) };
    // Before the lease runs out, beta cannot judge alpha dead (it cannot see alpha's pids): refused, naming alpha.
    const [lock] = await pgQuery<{ expires_at: string; now: string }>(url, "SELECT expires_at, to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS now FROM locks");
    let tookOverEarly = false;
    if (lock!.now < lock!.expires_at) {
      const early = await runEbr(['-c', a.config, 'backup'], { env: beta });
      tookOverEarly = early.code === 0;
      // The lease may have run out while this command started; only a refusal before expiry is checked.
      if (early.code !== 0) {
        expect(early.code).toBe(1);
        expect(early.stderr).toMatch(/is still running \(pid \d+ on alpha, since .*its lease renewed at .* runs to /);
        const [b] = await pgQuery<{ status: string }>(url, 'SELECT status FROM backups');
        expect(b!.status).toBe('running');
      }
    }
    // After expiry (by the catalog's clock) the next command on any host marks alpha's backup failed.
    await waitFor('the lease to expire', async () => ((await pgQuery<{ gone: boolean }>(url, "SELECT expires_at < to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS gone FROM locks"))[0]?.gone ?? true) || undefined, 60_000);
    const list = await runEbr(['-c', a.config, 'list', '--json'], { env: beta });
    expect(list.code, list.stderr).toBe(0);
    const rows = JSON.parse(list.stdout) as Array<Listed & { error: { code: string; message: string } | null }>;
    const died = rows.find((r) => r.status === 'failed');
    expect(died?.error?.code).toBe('runnerDied');
    expect(died?.error?.message).toMatch(/on alpha\) stopped renewing its lease .* in phase stream: it or its host died/);
    const next = await runEbr(['-c', a.config, 'backup', '--json'], { env: beta });
    expect(next.code, next.stderr).toBe(0);
    const after = JSON.parse((await runEbr(['-c', a.config, 'list', '--json'], { env: beta })).stdout) as Listed[];
    expect(after.map((r) => r.status).sort()).toEqual(tookOverEarly ? ['complete', 'complete', 'failed'] : ['complete', 'failed']);
    expect(await pgQuery(url, 'SELECT * FROM locks')).toEqual([]);
  });
});

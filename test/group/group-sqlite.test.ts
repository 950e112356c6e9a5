/**
 * Consistency groups on two SQLite instances (fast, no servers): the daemon runs a group's schedule,
 * a group restore puts both back, a group with a member that cannot roll forward refuses --until, and
 * the config refuses a group naming an unknown instance.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { runEbr, spawnEbr, tempDir, waitFor } from '../helpers/env.js';

const t = tempDir('ebr-group-lite-');
afterAll(() => t.cleanup());

function instances(groups: string): string {
  const config = path.join(t.dir, 'ebr.yaml');
  const lines = [`catalog: ${path.join(t.dir, 'catalog.db')}`, 'instances:'];
  for (const name of ['orders', 'stock']) {
    const file = path.join(t.dir, `${name}.db`);
    const db = new Database(file);
    db.exec('CREATE TABLE IF NOT EXISTS t (v TEXT)');
    db.prepare('INSERT INTO t VALUES (?)').run(`${name} 1`);
    db.close();
    lines.push(`  ${name}:`, '    adapter: sqlite', `    sqlite: { main: ${file} }`, `    target: { type: dir, path: ${path.join(t.dir, 'backups')} }`);
  }
  writeFileSync(config, [...lines, groups, ''].join('\n'));
  return config;
}

describe('consistency groups (SQLite)', () => {
  it('the daemon runs the group schedule: both members backed up, tied by one group id', async () => {
    const config = instances('groups:\n  shop: { instances: [orders, stock], schedule: "* * * * * *" }');
    const d = spawnEbr(['--config', config, 'daemon']);
    let out = '';
    d.stdout!.on('data', (b) => (out += b));
    const exited = new Promise((r) => d.on('exit', r));
    try {
      const events = () => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event: string; instance: string; groupId?: string });
      await waitFor(`a group backup (daemon said: ${out})`, () => (events().filter((e) => e.event === 'backup-complete').length >= 2 ? true : undefined), 30_000, 100);
      const done = events().filter((e) => e.event === 'backup-complete');
      expect(done[0]!.groupId).toBeDefined();
      expect(done.filter((e) => e.groupId === done[0]!.groupId).map((e) => e.instance).sort()).toEqual(['orders', 'stock']);
    } finally {
      d.kill('SIGTERM');
    }
    await exited;
  });

  it('restores a group to one instant, and refuses --until when a member cannot roll forward', async () => {
    const config = instances('groups:\n  shop: { instances: [orders, stock] }');
    const b = await runEbr(['--config', config, '--json', 'backup', '--group', 'shop']);
    expect(b.code, b.stderr).toBe(0);
    const to = path.join(t.dir, 'restored');
    const r = await runEbr(['--config', config, '--json', 'restore', '--group', 'shop', '--to', to]);
    expect(r.code, r.stderr).toBe(0);
    for (const name of ['orders', 'stock']) {
      const db = new Database(path.join(to, name, `${name}.db`), { readonly: true });
      expect((db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n).toBeGreaterThan(0);
      db.close();
    }
    const until = await runEbr(['--config', config, 'restore', '--group', 'shop', '--until', new Date().toISOString(), '--to', path.join(t.dir, 'u')]);
    expect(until.code).toBe(2);
    expect(until.stderr).toMatch(/member orders \(sqlite\) cannot roll forward/);
  });

  it('refuses a group that names an unknown instance', async () => {
    const config = instances('groups:\n  shop: { instances: [orders, nope] }');
    const r = await runEbr(['--config', config, 'list']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/groups\.shop\.instances is "nope".*orders, stock/s);
  });
});

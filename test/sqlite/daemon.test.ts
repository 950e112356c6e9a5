/** The daemon runs backups on their schedule, applies retention, and stops cleanly on SIGTERM. */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runEbr, spawnEbr, tempDir, waitFor } from '../helpers/env.js';
import { makeInstance } from './sqlite-instance.js';

describe('daemon', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());

  it('backs up every second, keeps the newest two archives, and stops on SIGTERM', async () => {
    const inst = makeInstance(t.dir);
    writeFileSync(inst.config, `${readFileSync(inst.config, 'utf8')}    schedule: "* * * * * *"\n    retention: { full: 2 }\n`);
    const d = spawnEbr(['--config', inst.config, 'daemon']);
    let out = '';
    d.stdout!.on('data', (b) => (out += b));
    const exited = new Promise<number | null>((r) => d.on('exit', (c) => r(c)));
    try {
      const events = () => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event: string; removed?: string[] });
      await waitFor('four scheduled backups', () => (events().filter((e) => e.event === 'backup-complete').length >= 4 ? true : undefined), 30_000, 100);
      await waitFor('retention to remove old archives', () => (events().some((e) => e.event === 'retention') ? true : undefined), 5_000, 100);
    } finally {
      d.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(out).toMatch(/"event":"stopped"/);
    const list = JSON.parse((await runEbr(['--config', inst.config, '--json', 'list'])).stdout) as Array<{ id: string; status: string }>;
    const kept = list.filter((b) => b.status === 'complete').map((b) => b.id);
    const removed = list.filter((b) => b.status === 'removed').map((b) => b.id);
    expect(kept.length).toBeGreaterThanOrEqual(2);
    expect(kept.length).toBeLessThanOrEqual(3); // a backup may have completed after the last retention pass
    expect(removed.length).toBeGreaterThanOrEqual(2);
    const archives = readdirSync(path.join(inst.dir, 'var/backups/t'));
    for (const id of removed) expect(archives).not.toContain(id);
    for (const id of kept) expect(existsSync(path.join(inst.dir, 'var/backups/t', id, 'manifest.json'))).toBe(true);
    // A removed backup cannot be restored, and says why.
    const r = await runEbr(['--config', inst.config, 'restore', '--backup', removed[0]!, '--to', path.join(t.dir, 'x')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/was removed by retention/);
  });

  it('full and incremental schedules firing together take turns instead of failing on the lock', async () => {
    const inst = makeInstance(path.join(t.dir, 'both'));
    writeFileSync(inst.config, `${readFileSync(inst.config, 'utf8')}    schedule: "* * * * * *"\n    incrSchedule: "* * * * * *"\n`);
    const d = spawnEbr(['--config', inst.config, 'daemon']);
    let out = '';
    d.stdout!.on('data', (b) => (out += b));
    const exited = new Promise<number | null>((r) => d.on('exit', (c) => r(c)));
    const events = () => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event: string; type?: string; parent?: string; error?: string });
    try {
      await waitFor('an incremental and a full backup from the daemon', () => {
        const done = events().filter((e) => e.event === 'backup-complete');
        return done.some((e) => e.type === 'incr' && e.parent) && done.some((e) => e.type === 'full') && done.length >= 4 ? true : undefined;
      }, 60_000, 100);
    } finally {
      d.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    // Every second both fire at once; queued per instance, neither finds the other's lock.
    expect(events().filter((e) => e.event === 'backup-failed').map((e) => e.error)).toEqual([]);
  });

  it('refuses a bad cron expression naming the key', async () => {
    const inst = makeInstance(path.join(t.dir, 'bad'));
    writeFileSync(inst.config, `${readFileSync(inst.config, 'utf8')}    schedule: "every night"\n`);
    const r = await runEbr(['--config', inst.config, 'daemon']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/instances\.t\.schedule is "every night", which is not a cron expression/);
  });
});

describe('daemon config', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());
  it('refuses logSchedule for an adapter that has no log archive to copy', async () => {
    const inst = makeInstance(t.dir);
    writeFileSync(inst.config, `${readFileSync(inst.config, 'utf8')}    logSchedule: "*/5 * * * *"\n`);
    const r = await runEbr(['--config', inst.config, 'list']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/instances\.t\.logSchedule is set, but the sqlite adapter has no log archive/);
  });
});

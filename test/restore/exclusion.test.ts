/**
 * Backups, restores and retention of one instance exclude each other: a restore is refused while a
 * backup holds the instance, a backup while a restore runs, and retention waits rather than remove the
 * archive a restore is reading. The holder here is a real ebr process, stopped with SIGSTOP in the middle.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { loadConfig } from '../../src/config/load.js';
import { applyRetention } from '../../src/schedule/retention.js';
import { runEbr, spawnEbr, tempDir, waitFor } from '../helpers/env.js';
import { makeInstance, type TestInstance } from '../sqlite/sqlite-instance.js';

const t = tempDir('ebr-exclusion-');
let inst: TestInstance;
afterAll(() => t.cleanup());
beforeAll(async () => {
  inst = makeInstance(path.join(t.dir, 'db'), { padMiB: 64 });
  for (let i = 0; i < 2; i++) {
    const b = await runEbr(['--config', inst.config, 'backup', '--quiet']);
    expect(b.code, b.stderr).toBe(0);
  }
}, 120_000);

const exited = (p: ReturnType<typeof spawnEbr>) => new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code)));

describe('one instance, one thing at a time', () => {
  it('a restore is refused while a backup holds the instance', async () => {
    const backup = spawnEbr(['--config', inst.config, 'backup', '--quiet'], { env: { EBR_FAULT_HOLD_WINDOW_MS: '4000' } });
    const done = exited(backup);
    await waitFor('the backup to hold the lock', () => (existsSync(path.join(inst.dir, 'var/staging')) && readdirSync(path.join(inst.dir, 'var/staging')).length > 0) || undefined, 60_000);
    const r = await runEbr(['--config', inst.config, 'restore', '--to', path.join(t.dir, 'out1')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/backup \S+ of instance t is still running/);
    expect(await done).toBe(0);
  });

  it('a backup is refused and retention waits while a restore runs; the restore then finishes', async () => {
    const out = path.join(t.dir, 'out2');
    // The restore stops itself in the middle of staging its first file: a live runner holding the instance.
    const restore = spawnEbr(['--config', inst.config, 'restore', '--to', out], { env: { EBR_FAULT_STOP_AT: 'stage-chunk:2' } });
    const done = exited(restore);
    await waitFor('the restore to stop itself while staging', () => (/^\d+ \(.*\) T/.test(readFileSync(`/proc/${restore.pid}/stat`, 'utf8')) ? true : undefined), 60_000);
    expect(readdirSync(out).some((n) => n.includes('.ebr-restore-'))).toBe(true);
    try {
      const b = await runEbr(['--config', inst.config, 'backup']);
      expect(b.code).toBe(1);
      expect(b.stderr).toMatch(/restore \d+ of instance t is still running/);
      const config = loadConfig(inst.config);
      const cat = Catalog.open(config.catalog);
      try {
        const r = await applyRetention(cat, { ...config.instances.t!, retention: { full: 1 } });
        expect(r.removed).toEqual([]);
        expect(r.skipped).toMatch(/restore \d+ of instance t is still running/);
      } finally {
        cat.close();
      }
    } finally {
      restore.kill('SIGCONT');
    }
    expect(await done).toBe(0);
    const after = await runEbr(['--config', inst.config, 'backup', '--quiet']);
    expect(after.code, after.stderr).toBe(0);
  });
});

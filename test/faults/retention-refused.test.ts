/**
 * Retention against a target that refuses to delete (what S3 Object Lock does to an old backup), on
 * a real ext4 loop filesystem with `chattr +i`: an archive the target could not touch stays a kept
 * backup and goes on the next run once it may; one that lost part of itself stays removed; either way
 * retention says which and why, and goes on with the others.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { keptBackups } from '../../src/catalog/backups.js';
import { loadConfig } from '../../src/config/load.js';
import { applyRetention } from '../../src/schedule/retention.js';
import { runEbr, tempDir } from '../helpers/env.js';
import { makeLoopFs, requireTools, type LoopFs } from '../snapshot/loopfs.js';
import { makeInstance, writeSqliteConfig } from '../sqlite/sqlite-instance.js';

describe('retention when the target refuses to delete', { timeout: 120_000 }, () => {
  const t = tempDir('ebr-retention-refused-');
  let fs: LoopFs;
  const immutable: string[] = [];
  beforeAll(() => {
    requireTools('chattr');
    fs = makeLoopFs('ext4', 64);
  });
  afterAll(() => {
    for (const p of immutable) execFileSync('chattr', ['-i', p]);
    fs?.teardown();
    t.cleanup();
  });

  it('keeps a whole archive it could not remove, removes it once it may, and reports a half-removed one', async () => {
    const target = path.join(fs.mountPoint, 'backups');
    const inst = makeInstance(path.join(t.dir, 'inst'));
    writeSqliteConfig(inst.dir, { targetPath: target });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const b = await runEbr(['--config', inst.config, '--json', 'backup']);
      expect(b.code, b.stderr).toBe(0);
      ids.push((JSON.parse(b.stdout) as { backupId: string }).backupId);
    }
    // The rule only now: `ebr backup` applies retention after every backup, and three must be there to remove.
    writeSqliteConfig(inst.dir, { targetPath: target, extra: ['retention: { full: 1 }'] });
    const config = loadConfig(inst.config);
    const instance = config.instances.t!;
    const cat = Catalog.open(config.catalog);
    try {
      const archive = (id: string) => path.join(target, 't', id);
      // The oldest: its directories immutable, nothing in them can go. The middle one: only its main stream.
      const locked = [archive(ids[0]!), path.join(archive(ids[0]!), 'spaces'), path.join(archive(ids[0]!), 'meta')];
      for (const d of locked) execFileSync('chattr', ['+i', d]);
      immutable.push(...locked);
      const mainTar = path.join(archive(ids[1]!), 'spaces', 'main.tar');
      execFileSync('chattr', ['+i', mainTar]);
      immutable.push(mainTar);

      const first = await applyRetention(cat, instance);
      expect(first.removed).toEqual([]);
      const refused = new Map((first.refused ?? []).map((r) => [r.backupId, r]));
      expect([...refused.keys()].sort()).toEqual([ids[0], ids[1]].sort());
      expect(refused.get(ids[0]!)!.archiveWhole).toBe(true);
      expect(refused.get(ids[0]!)!.error).toContain(ids[0]);
      expect(refused.get(ids[1]!)!.archiveWhole).toBe(false);
      // The whole one is still a backup (listed, restorable); the half one is not.
      expect(keptBackups(cat, 't').map((b) => b.id).sort()).toEqual([ids[0], ids[2]].sort());
      expect(first.kept.sort()).toEqual([ids[0], ids[2]].sort());
      const v = await runEbr(['--config', inst.config, 'verify', ids[0]!]);
      expect(v.code, v.stderr + v.stdout).toBe(0);

      // Allowed now (the lock expired): the next run removes it.
      for (const d of locked) {
        execFileSync('chattr', ['-i', d]);
        immutable.splice(immutable.indexOf(d), 1);
      }
      const second = await applyRetention(cat, instance);
      expect(second.removed).toEqual([ids[0]]);
      expect(second.refused).toBeUndefined();
      expect(existsSync(archive(ids[0]!))).toBe(false);
      expect(keptBackups(cat, 't').map((b) => b.id)).toEqual([ids[2]]);
    } finally {
      cat.close();
    }
  });
});

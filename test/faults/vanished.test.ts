/**
 * The target's filesystem goes away mid-stream (a lazy unmount of a real ext4 loop filesystem, as
 * when a USB disk or a network mount drops): the backup fails naming the target as vanished, and
 * writes nothing onto whatever filesystem is left under the mount point.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnEbr, tempDir, waitFor } from '../helpers/env.js';
import { isMounted, makeLoopFs, sh, type LoopFs } from '../snapshot/loopfs.js';
import { catalogGet, makeFaultInstance } from './fault-instance.js';

describe('a target that vanishes mid-stream', { timeout: 120_000 }, () => {
  const t = tempDir();
  const made: LoopFs[] = [];
  afterAll(() => {
    for (const fs of made) fs.teardown();
    t.cleanup();
  });

  for (const target of ['tar', 'dir'] as const) {
    it(`fails naming it, and recreates nothing under the empty mount point (${target} target)`, async () => {
      const fs = makeLoopFs('ext4', 64);
      made.push(fs);
      const inst = makeFaultInstance(path.join(t.dir, target), { mainMiB: 4, sideMiB: 2, target, targetPath: path.join(fs.mountPoint, 'backups'), parallelStreams: 1 });
      const gate = path.join(t.dir, `${target}.gate`);
      const p = spawnEbr(['--config', inst.config, '--json', 'backup'], { env: { EBR_FAULT_STREAM_GATE: gate } });
      let stdout = '';
      let stderr = '';
      p.stdout!.on('data', (b) => (stdout += b));
      p.stderr!.on('data', (b) => (stderr += b));
      const exited = new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
      try {
        await waitFor('the backup to stream', () => catalogGet(inst, "SELECT id FROM backups WHERE status = 'running' AND phase = 'stream'"), 60_000, 20);
        sh('umount', ['-l', fs.mountPoint]);
        expect(isMounted(fs.mountPoint)).toBe(false);
      } finally {
        // Never leave it waiting at the gate, whatever failed above.
        writeFileSync(gate, '');
      }
      expect(await exited, stderr).toBe(1);
      expect(stderr).toMatch(/error: the target \S+ vanished (while space \S+ was written )?\(ENOENT writing \S+\): .* free, .* still to write/);
      expect(stderr).toMatch(/hint: make sure \S+ is mounted and that nothing removes archives while a backup runs/);
      expect((JSON.parse(stdout) as { error: { code: string } }).error.code).toBe('archive');
      expect(catalogGet(inst, 'SELECT status FROM backups')).toEqual({ status: 'failed' });
      // The mount point is a plain empty directory again: nothing of the archive was made there.
      expect(readdirSync(fs.mountPoint)).toEqual([]);
    });
  }
});

/**
 * `ebr daemon` against a target that fills up, on a real 64 MiB ext4 loop filesystem: the backup that
 * runs out of space mid-stream fails cleanly, the runs after it are refused before the window while
 * there is no room, the daemon keeps running with nothing of the failed runs left open, and the first
 * run after space is freed succeeds.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync, statfsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEbr, spawnEbr, tempDir, waitFor } from '../helpers/env.js';
import { makeLoopFs, type LoopFs } from '../snapshot/loopfs.js';
import { catalogAll, catalogGet, eventsOf, makeFaultInstance, openFiles } from './fault-instance.js';

/**
 * Leaves room for a few MiB more, not for the ~20 MiB main.db still has to write. What statfs calls
 * free is not all allocatable (ext4 keeps some back, and ebr's buffers land meanwhile), so it steps down.
 */
function fillUp(mountPoint: string, ballast: string, leaveMiB: number): void {
  for (let leave = leaveMiB; leave < 32; leave++) {
    const s = statfsSync(mountPoint);
    try {
      execFileSync('fallocate', ['-l', String(s.bfree * s.bsize - (leave << 20)), ballast], { stdio: 'pipe' });
      return;
    } catch {
      rmSync(ballast, { force: true });
    }
  }
  throw new Error(`cannot fill ${mountPoint} with fallocate`);
}

describe('daemon and a full target', { timeout: 180_000 }, () => {
  const t = tempDir();
  let fs: LoopFs;
  beforeAll(() => {
    fs = makeLoopFs('ext4', 64);
  });
  afterAll(() => {
    fs?.teardown();
    t.cleanup();
  });

  it('fails the run that hit ENOSPC, refuses while full, keeps running, and succeeds once space is back', async () => {
    const target = path.join(fs.mountPoint, 'backups');
    const inst = makeFaultInstance(path.join(t.dir, 'inst'), { mainMiB: 24, targetPath: target, schedule: '*/2 * * * * *' });
    const gate = path.join(t.dir, 'gate');
    const ballast = path.join(fs.mountPoint, 'ballast');
    const d = spawnEbr(['--config', inst.config, 'daemon'], { env: { EBR_FAULT_STREAM_GATE: gate } });
    let out = '';
    let err = '';
    d.stdout!.on('data', (b) => (out += b));
    d.stderr!.on('data', (b) => (err += b));
    const exited = new Promise<number | null>((r) => d.on('exit', (c) => r(c)));
    try {
      // The first run streams its first buffer and waits at the gate; then the target fills up under it.
      const running = await waitFor(
        'a backup to have started writing its archive',
        () => {
          const b = catalogGet<{ id: string }>(inst, "SELECT id FROM backups WHERE status = 'running' AND phase = 'stream'");
          const tar = b && path.join(target, 't', b.id, 'spaces', 'main.tar');
          return tar && existsSync(tar) && statSync(tar).size > 0 ? b.id : undefined;
        },
        60_000,
        50,
      );
      fillUp(fs.mountPoint, ballast, 6);
      const opened = Date.now();
      writeFileSync(gate, '');
      const failed = await waitFor('the backup to fail', () => eventsOf(out).find((e) => e.event === 'backup-failed' && e.backupId === running), 60_000, 20);
      const detectMs = Date.now() - opened;
      expect(failed.error, JSON.stringify(failed)).toMatch(/is full while space (main|side|notes) was written \(ENOSPC writing spaces\/(main|side|notes)\.tar\): [\d.]+ (MiB|bytes) free, [\d.]+ MiB still to write/);
      expect(failed.hint).toMatch(/the partial archive is removed/);
      expect(existsSync(path.join(target, 't', running))).toBe(false);

      // While the target is full, every run is refused before it blocks anything.
      const refused = await waitFor('a run refused before the window', () => eventsOf(out).find((e) => e.event === 'backup-failed' && e.phase === 'check-target'), 30_000, 50);
      expect(refused.error).toMatch(/cannot fit/);
      const refusedPhases = catalogAll<{ phase: string }>(inst, 'SELECT phase FROM phases WHERE backup_id = ?', refused.backupId).map((p) => p.phase);
      expect(refusedPhases).not.toContain('acquire');
      // Nothing of the failed runs stays open in the daemon: no archive file, no staged copy, nothing deleted.
      const open = openFiles(d.pid!);
      expect(open.filter((f) => f.startsWith(fs.mountPoint) || f.startsWith(path.join(inst.dir, 'var/staging')) || f.endsWith('(deleted)'))).toEqual([]);
      expect(d.exitCode).toBe(null);

      // Space is back: the next scheduled run succeeds.
      rmSync(ballast);
      const freedAt = Date.now();
      const complete = await waitFor('a backup to complete', () => eventsOf(out).find((e) => e.event === 'backup-complete'), 60_000, 50);
      expect(existsSync(path.join(target, 't', complete.backupId!, 'manifest.json'))).toBe(true);
      const v = await runEbr(['--config', inst.config, 'verify', complete.backupId!]);
      expect(v.code, v.stderr).toBe(0);
      const failures = eventsOf(out).filter((e) => e.event === 'backup-failed').length;
      console.log(`ENOSPC detected ${detectMs} ms after the gate opened; ${failures} runs failed while full; the first run after freeing space completed ${Date.now() - freedAt} ms later`);
    } finally {
      d.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(eventsOf(out).some((e) => e.event === 'stopped')).toBe(true);
    expect(err).not.toMatch(/\n\s+at /);
    // Stopped: every archive left on the target is a whole backup (a run cut short by SIGTERM removed its own).
    const dirs = readdirSync(path.join(target, 't'));
    expect(dirs.length).toBeGreaterThan(0);
    for (const id of dirs) expect(existsSync(path.join(target, 't', id, 'manifest.json')), id).toBe(true);
  });
});

/**
 * What a backup leaves when it dies mid-stream or fails after its manifest: a real SIGKILL of
 * `ebr backup` while it writes its archive, then another ebr command; a snapshot release that really
 * fails (an immutable staged file) after the manifest is in. EBR_FAULT_STREAM_GATE holds every stream
 * after its first buffer went to the archive, so the moment is exact, not a race with a fast disk.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runEbr, spawnEbr, tempDir, waitFor } from '../helpers/env.js';
import { catalogAll, catalogGet, filesBelow, makeFaultInstance, type FaultInstance } from './fault-instance.js';

/** Starts `ebr backup` held at the gate; resolves once its archive has bytes on disk. */
async function backupHeldMidStream(inst: FaultInstance, gate: string, args: string[] = []) {
  const p = spawnEbr(['--config', inst.config, ...args, 'backup'], { env: { EBR_FAULT_STREAM_GATE: gate } });
  let stdout = '';
  let stderr = '';
  p.stdout!.on('data', (b) => (stdout += b));
  p.stderr!.on('data', (b) => (stderr += b));
  const exited = new Promise<number | null>((r) => p.on('exit', (c, s) => r(c ?? (s ? -1 : null))));
  const id = await waitFor(
    'the backup to write its archive',
    () => {
      const b = catalogGet<{ id: string; location: string | null }>(inst, "SELECT id, location FROM backups WHERE status = 'running' AND phase = 'stream'");
      if (!b?.location) return undefined;
      const written = filesBelow(b.location).some((f) => f.startsWith('spaces/') && statSync(path.join(b.location!, f)).size > 0);
      return written ? b.id : undefined;
    },
    60_000,
    20,
  ).catch((err: unknown) => {
    p.kill('SIGKILL');
    throw err;
  });
  // A test that fails half-way must not leave a backup waiting at the gate for good.
  spawned.add(p);
  return { p, id, exited, out: () => ({ stdout, stderr }) };
}

const spawned = new Set<ChildProcess>();
afterEach(() => {
  for (const p of spawned) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  spawned.clear();
});

describe('a backup killed mid-stream', { timeout: 120_000 }, () => {
  const t = tempDir();
  afterAll(() => t.cleanup());

  for (const target of ['tar', 'dir'] as const) {
    it(`leaves a partial archive that the next command removes (${target} target)`, async () => {
      const inst = makeFaultInstance(path.join(t.dir, target), { mainMiB: 8, target });
      const held = await backupHeldMidStream(inst, path.join(t.dir, `${target}.gate`));
      const location = catalogGet<{ location: string }>(inst, 'SELECT location FROM backups WHERE id = ?', held.id)!.location;
      // The archive is journaled before its first byte.
      expect(catalogGet(inst, "SELECT * FROM resources WHERE backup_id = ? AND kind = 'archive' AND removed_at IS NULL", held.id)).toBeTruthy();
      held.p.kill('SIGKILL');
      await held.exited;
      expect(existsSync(location)).toBe(true);
      expect(existsSync(path.join(location, 'manifest.json'))).toBe(false);

      // Any command repairs: the backup is failed with the phase it died in, its partial archive is gone.
      const first = await runEbr(['--config', inst.config, 'list']);
      expect(first.code, first.stderr).toBe(0);
      expect(first.stderr).toContain(`removed leftover partial archive ${location} (backup ${held.id})`);
      const list = await runEbr(['--config', inst.config, '--json', 'list']);
      const [b] = JSON.parse(list.stdout) as Array<{ id: string; status: string; phase: string; error: { message: string } }>;
      expect(b).toMatchObject({ id: held.id, status: 'failed', phase: 'stream' });
      expect(b!.error.message).toMatch(/died in phase stream/);
      expect(existsSync(location)).toBe(false);
      expect(readdirSync(path.join(inst.dir, 'var/backups/t'))).toEqual([]);
      expect(filesBelow(path.join(inst.dir, 'var/staging'))).toEqual([]);
      expect(catalogAll(inst, 'SELECT * FROM resources WHERE removed_at IS NULL')).toEqual([]);
      // Nothing is left to repair the second time, and a new backup goes through.
      const again = await runEbr(['--config', inst.config, 'backup']);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).not.toMatch(/removed leftover/);
    });
  }
});

describe('a failure after the manifest is written', { timeout: 120_000 }, () => {
  const t = tempDir();
  afterAll(() => t.cleanup());

  it('never costs the archive: the backup is complete, and the snapshot left behind is removed by the next command', async () => {
    const inst = makeFaultInstance(path.join(t.dir, 'inst'), { mainMiB: 4 });
    const gate = path.join(t.dir, 'gate');
    const held = await backupHeldMidStream(inst, gate, ['--json']);
    // The copy snapshot's staged files exist now; an immutable one makes its release fail (EPERM, even for root).
    const staging = path.join(inst.dir, 'var/staging', held.id);
    const staged = path.join(staging, filesBelow(staging).find((f) => f.endsWith('main.db'))!);
    execFileSync('chattr', ['+i', staged]);
    try {
      writeFileSync(gate, '');
      const code = await held.exited;
      const { stdout, stderr } = held.out();
      expect(code, stderr).toBe(0);
      const r = JSON.parse(stdout) as { backupId: string; location: string; warnings?: string[] };
      expect(r.warnings?.join('\n')).toMatch(/the snapshot of backup \S+ was not released: .*the next ebr command removes what is left/);
      expect(existsSync(path.join(r.location, 'manifest.json'))).toBe(true);
      expect(catalogGet(inst, 'SELECT status, phase FROM backups WHERE id = ?', r.backupId)).toEqual({ status: 'complete', phase: 'complete' });
      // The staged copy is still journaled, for repair.
      expect(catalogGet(inst, "SELECT kind FROM resources WHERE backup_id = ? AND removed_at IS NULL", r.backupId)).toEqual({ kind: 'staging-dir' });
    } finally {
      execFileSync('chattr', ['-i', staged]);
    }
    const v = await runEbr(['--config', inst.config, 'verify', 'latest']);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stderr).toMatch(/removed leftover staging-dir/);
    expect(existsSync(staging)).toBe(false);
    expect(catalogAll(inst, 'SELECT * FROM resources WHERE removed_at IS NULL')).toEqual([]);
  });
});

/**
 * A full target, on a real 64 MiB ext4 loop filesystem: refused before the window when discovery
 * already shows the backup cannot fit; stopped cleanly when it fills up mid-stream (every stream, the
 * partial archive removed, the message naming the target, the space left and the bytes still to write).
 */
import { statfsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEbr, tempDir } from '../helpers/env.js';
import { makeLoopFs, type LoopFs } from '../snapshot/loopfs.js';
import { catalogAll, catalogGet, filesBelow, makeFaultInstance } from './fault-instance.js';

const freeOf = (dir: string) => {
  const s = statfsSync(dir);
  return s.bfree * s.bsize;
};

describe('a full target', { timeout: 120_000 }, () => {
  const t = tempDir();
  let fs: LoopFs;
  beforeAll(() => {
    fs = makeLoopFs('ext4', 64);
  });
  afterAll(() => {
    fs?.teardown();
    t.cleanup();
  });

  it('is refused before the window when the chunks from discovery cannot fit: nothing blocked, nothing written', async () => {
    const target = path.join(fs.mountPoint, 'refused');
    const inst = makeFaultInstance(path.join(t.dir, 'refused'), { mainMiB: 60, targetPath: target });
    const started = Date.now();
    const r = await runEbr(['--config', inst.config, '--json', 'backup']);
    const tookMs = Date.now() - started;
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`the target ${target}/t/\\S+ has [\\d.]+ MiB free, but this backup needs at least 6\\d\\.\\d MiB \\(\\d+ chunks in 3 spaces at discovery\\): it cannot fit`));
    expect(r.stderr).toMatch(/hint: free at least [\d.]+ MiB on .*, or point instances\.t\.target\.path at a bigger filesystem; nothing was blocked/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    const doc = JSON.parse(r.stdout) as { error: { code: string; context: { phase: string; freeBytes: number; bytesToWrite: number } } };
    expect(doc.error.code).toBe('archive');
    expect(doc.error.context.phase).toBe('check-target');
    expect(doc.error.context.bytesToWrite).toBeGreaterThan(doc.error.context.freeBytes);
    const b = catalogGet<{ id: string; status: string; phase: string }>(inst, 'SELECT id, status, phase FROM backups')!;
    expect(b).toMatchObject({ status: 'failed', phase: 'check-target' });
    // The database was never asked for a checkpoint or blocked, and nothing went to the target or staging.
    const phases = catalogAll<{ phase: string }>(inst, 'SELECT phase FROM phases WHERE backup_id = ? ORDER BY seq', b.id).map((p) => p.phase);
    expect(phases).toEqual(['connect', 'discover', 'check-snapshot', 'check-target']);
    expect(filesBelow(target)).toEqual([]);
    expect(filesBelow(path.join(inst.dir, 'var/staging'))).toEqual([]);
    console.log(`refused before the window in ${tookMs} ms (the whole command)`);
  });

  it('filling up mid-stream stops every stream, removes the partial archive and says how much was missing', async () => {
    const target = path.join(fs.mountPoint, 'midstream');
    // Staged copies on the target's filesystem: discovery's 32 MiB fit the 54 MiB there, but the frozen
    // copy takes 32 MiB of them inside the window, so the stream runs out of space half-way.
    const staging = path.join(fs.mountPoint, 'staging');
    const inst = makeFaultInstance(path.join(t.dir, 'midstream'), { mainMiB: 16, sideMiB: 16, targetPath: target, staging, parallelStreams: 2 });
    const freeBefore = freeOf(fs.mountPoint);
    const r = await runEbr(['--config', inst.config, '--json', 'backup']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`error: the target ${target}/t/\\S+ is full while space (main|side) was written \\(ENOSPC writing spaces/(main|side)\\.tar\\): [\\d.]+ (MiB|bytes) free, [\\d.]+ MiB still to write`));
    expect(r.stderr).toMatch(/hint: free at least [\d.]+ MiB on \S+, or point instances\.t\.target\.path at a bigger filesystem; the partial archive is removed/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const doc = JSON.parse(r.stdout) as { error: { code: string; context: { phase: string; errno: string; bytesToWrite: number; freeBytes: number } } };
    expect(doc.error).toMatchObject({ code: 'archive', context: { phase: 'stream', errno: 'ENOSPC' } });
    expect(doc.error.context.bytesToWrite).toBeGreaterThan(0);
    const b = catalogGet<{ id: string; status: string; phase: string }>(inst, 'SELECT id, status, phase FROM backups')!;
    expect(b).toMatchObject({ status: 'failed', phase: 'stream' });
    // Both spaces were streaming at once; the archive, its journal entry and the staged copies are gone.
    expect(filesBelow(target)).toEqual([]);
    expect(filesBelow(staging)).toEqual([]);
    expect(catalogAll(inst, "SELECT * FROM resources WHERE removed_at IS NULL")).toEqual([]);
    expect(freeOf(fs.mountPoint)).toBeGreaterThan(freeBefore - (1 << 20));
    const stream = catalogGet<{ duration_ms: number }>(inst, "SELECT duration_ms FROM phases WHERE backup_id = ? AND phase = 'stream'", b.id)!;
    console.log(r.stderr);
    console.log(`ENOSPC mid-stream: the stream phase failed after ${Math.round(stream.duration_ms)} ms; ${Math.round(doc.error.context.bytesToWrite / 1024)} KiB were still to write, ${Math.round(doc.error.context.freeBytes / 1024)} KiB free`);
  });
});

/**
 * Incremental backups and delta restores of chunks that are byte ranges of shared disks (Informix,
 * against the stand-ins of its tools in test/informix/double; no Informix server runs here): blocks
 * are counted from each range's start, an incremental's chunk goes back at its offset, and no byte of
 * the disks outside the restored chunks is touched — not by the assembly, not by --delta.
 */
import { openSync, readFileSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeInstanceConfig } from '../helpers/config-file.js';
import { runEbr, tempDir, type RunResult } from '../helpers/env.js';
import { startInformixDouble, type InformixDouble } from '../informix/double/index.js';

const tmp = tempDir('ebr-informix-incr-');
let db: InformixDouble;
let config: string;
const ebr = (args: string[]) => runEbr(['--config', config, ...args], { env: db.env, timeoutMs: 120_000 });
const json = <T>(r: RunResult): T => {
  if (r.code !== 0) throw new Error(`ebr failed (${r.code}): ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as T;
};

/** Writes `bytes` at `at` bytes into chunk c (inside its range of its disk). */
function poke(c: number, at: number, bytes: Buffer) {
  const r = db.range(c);
  expect(r.start + at + bytes.length).toBeLessThanOrEqual(r.end);
  const fd = openSync(r.file, 'r+');
  writeSync(fd, bytes, 0, bytes.length, r.start + at);
  closeSync(fd);
}

interface Manifest {
  members: Array<{ name: string; fileOffset: number; size: number; parts?: Array<{ backup?: string; at: number; count: number }>; body?: { size: number } }>;
}

beforeAll(() => {
  db = startInformixDouble(path.join(tmp.dir, 'db'), { informixDir: true });
  // 4 KiB blocks: the stand-in's chunks are a few tens of KiB.
  config = writeInstanceConfig(tmp.dir, 'ids', [...[db.instanceYaml].flat(), '    blockSize: 4KiB'], { maxBlockMs: 20000 });
});
afterAll(() => tmp.cleanup());

describe('Informix byte-range chunks, incrementally', () => {
  let full: string;
  let incr: string;
  let atIncr: Record<number, Buffer>;

  it('stores only the changed blocks of a range, counted from the range\'s start', async () => {
    full = json<{ backupId: string }>(await ebr(['--json', 'backup'])).backupId;
    poke(2, 4096 + 100, Buffer.from('changed after the full backup'));
    const r = json<{ backupId: string; type: string; blocks: { changed: number; total: number } }>(await ebr(['--json', 'backup', '--type', 'incr']));
    incr = r.backupId;
    atIncr = Object.fromEntries([2, 3].map((c) => [c, db.bytes(c)]));
    expect(r.type).toBe('incr');
    const m = JSON.parse(readFileSync(path.join(tmp.dir, 'backups', 'ids', incr, 'manifest.json'), 'utf8')) as Manifest;
    const chunk2 = m.members.find((x) => x.name === 'datadbs/chunk2')!;
    // Block 1 of the range changed, blocks 0 and 2… are the full backup's.
    expect(chunk2.parts).toEqual([
      { backup: full, at: 0, count: 1 },
      { at: 0, count: 1 },
      { backup: full, at: 2, count: chunk2.size / 4096 - 2 },
    ]);
    expect(chunk2.body!.size).toBe(4096);
    expect(m.members.find((x) => x.name === 'datadbs/chunk3')!.body!.size).toBe(0);
  });

  it('restores the incremental\'s chunks at their offsets, and no other byte', async () => {
    for (const c of [2, 3]) poke(c, 0, Buffer.alloc(db.range(c).end - db.range(c).start, 0x5a));
    const before = db.outside([2, 3]);
    json(await ebr(['--json', 'restore', '--backup', incr, '--partial', 'datadbs']));
    expect(db.bytes(2)).toEqual(atIncr[2]);
    expect(db.bytes(3)).toEqual(atIncr[3]);
    expect(db.outside([2, 3])).toEqual(before);
  });

  it('--delta writes only the differing block of a range, and no other byte', async () => {
    poke(3, 4096 * 2 + 7, Buffer.from('scribbled'));
    const before = db.outside([3]);
    const r = json<{ delta: { unchangedFiles: number; changedBlocks: number } }>(await ebr(['--json', 'restore', '--backup', incr, '--partial', 'datadbs', '--delta']));
    expect(r.delta).toMatchObject({ unchangedFiles: 1, changedBlocks: 1 });
    expect(db.bytes(2)).toEqual(atIncr[2]);
    expect(db.bytes(3)).toEqual(atIncr[3]);
    expect(db.outside([3])).toEqual(before);
  });
});

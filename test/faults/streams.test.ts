/**
 * The stream phase stops as one: a failing stream stops its siblings, the phase returns only once
 * every stream has stopped, and nothing is left waiting on a sink or holding a file. Real files and
 * the real tar target; the "snapshot" is the files themselves (nothing changes them here).
 */
import { closeSync, existsSync, mkdirSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileSink, TargetWriteError } from '../../src/archive/file-sink.js';
import { tarTarget } from '../../src/archive/tar-target.js';
import { EbrError } from '../../src/errors.js';
import type { Chunk, Space } from '../../src/model.js';
import type { Snapshot } from '../../src/snapshot/snapshot-provider.js';
import { streamSpaces } from '../../src/workflow/stream.js';
import { tempDir, waitFor } from '../helpers/env.js';
import { openFiles } from './fault-instance.js';

const live: Snapshot = { pathOf: (c) => c.path, release: async () => undefined };

function fileChunk(space: string, file: string, size: number): Chunk {
  return { space, name: path.basename(file), path: file, type: 'file', size };
}

/** A file of `mib` MiB of non-zero bytes, written in 1 MiB pieces. */
function bigFile(file: string, mib: number): string {
  const fd = openSync(file, 'w');
  const piece = Buffer.alloc(1 << 20, 0x5a);
  for (let i = 0; i < mib; i++) writeSync(fd, piece);
  closeSync(fd);
  return file;
}

describe('FileSink', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());

  it('a write under way when the sink is destroyed ends instead of waiting for good, and later writes reject', async () => {
    const sink = new FileSink(path.join(t.dir, 'out'));
    await sink.write(Buffer.alloc(9 << 20, 1));
    const pending = sink.write(Buffer.alloc(9 << 20, 2));
    sink.destroy();
    const outcome = await Promise.race([
      pending.then(
        () => 'ended',
        (err: unknown) => (err instanceof TargetWriteError ? 'ended' : err),
      ),
      new Promise((r) => setTimeout(() => r('still waiting after 10 s'), 10_000)),
    ]);
    expect(outcome).toBe('ended');
    await expect(sink.write(Buffer.alloc(1))).rejects.toThrow(/closed while it was written/);
    await expect(sink.close()).rejects.toBeInstanceOf(TargetWriteError);
  });

  it('a failed write is told by its cause (ENOSPC) at the next write and at close', async () => {
    const sink = new FileSink(path.join(t.dir, 'full'));
    await sink.write(Buffer.alloc(16, 1));
    // The disk fills: every positioned write of the handle fails from now on, as the kernel's would.
    const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' });
    const fh = await (sink as unknown as { opened: Promise<import('node:fs/promises').FileHandle> }).opened;
    fh.write = (() => Promise.reject(enospc)) as typeof fh.write;
    await sink.write(Buffer.alloc(1)); // under way; its failure lands with the next call
    const err = await sink.write(Buffer.alloc(1)).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(TargetWriteError);
    expect((err as TargetWriteError).code).toBe('ENOSPC');
    expect(sink.written).toBe(16);
    await expect(sink.close()).rejects.toMatchObject({ code: 'ENOSPC' });
  });

  it('hands dirty pages to the disk while it is written, and a reused buffer may be filled again once the next write resolved', async () => {
    const file = path.join(t.dir, 'ring');
    const sink = new FileSink(file);
    const datasyncs: number[] = [];
    const fh = await (sink as unknown as { opened: Promise<import('node:fs/promises').FileHandle> }).opened;
    const datasync = fh.datasync.bind(fh);
    fh.datasync = async () => {
      datasyncs.push(sink.written);
      await datasync();
    };
    // Two buffers, filled again and again as a ring reader would: each refilled once the write after it resolved.
    const ring = [Buffer.alloc(1 << 20), Buffer.alloc(1 << 20)];
    for (let i = 0; i < 80; i++) {
      const b = ring[i % 2]!;
      b.fill(i);
      await sink.write(b);
    }
    await sink.close();
    const { readFileSync } = await import('node:fs');
    const back = readFileSync(file);
    expect(back.length).toBe(80 << 20);
    for (let i = 0; i < 80; i++) expect(back[(i << 20) + 12345]).toBe(i);
    // The first flush starts as soon as the first 32 MiB have landed, long before the end (later ones wait for it).
    expect(datasyncs[0]).toBe(32 << 20);
  });
});

describe('stream phase: one failing stream stops the others', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());

  it('returns only after the sibling stopped; no stream goes on reading or writing, no file stays open', async () => {
    const data = path.join(t.dir, 'data');
    mkdirSync(data);
    const big = bigFile(path.join(data, 'big.bin'), 96);
    // A directory where a file is expected: its first read fails at once (EISDIR), deterministically.
    const broken = path.join(data, 'broken.bin');
    mkdirSync(broken);
    const spaces: Space[] = [
      { name: 'large', critical: true, kind: 'test', chunks: [fileChunk('large', big, 96 << 20)] },
      { name: 'bad', critical: false, kind: 'test', chunks: [fileChunk('bad', broken, 4096)] },
    ];
    const target = tarTarget({ path: path.join(t.dir, 'archive') });
    const ref = { instance: 'i', backupId: '20260101T000000Z-0001' };
    const writer = await target.create(ref);
    const controller = new AbortController();
    const err = await streamSpaces({
      spaces,
      snapshot: live,
      writer,
      signal: controller.signal,
      parallel: 2,
      context: { instance: 'i', backupId: ref.backupId },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EbrError);
    expect((err as EbrError).context.space).toBe('bad');
    expect((err as EbrError).message).toMatch(/EISDIR/);
    // As runBackup does right after the phase failed: the archive is removed. A stream still running
    // would now wait for good on its destroyed sink, with its chunk file open.
    await writer.abort();
    expect(existsSync(writer.location)).toBe(false);
    // Closing is asynchronous: allow it a moment, then nothing of the backup may be open.
    await waitFor('the big chunk file and the archive to be closed', () => (openFiles().some((f) => f === big || f.includes(path.join(t.dir, 'archive'))) ? undefined : true), 10_000, 20);
  });

  it('a signal from outside (SIGINT/SIGTERM) stops every stream, and says why', async () => {
    const data = path.join(t.dir, 'data2');
    mkdirSync(data);
    const a = bigFile(path.join(data, 'a.bin'), 64);
    const b = bigFile(path.join(data, 'b.bin'), 64);
    const spaces: Space[] = [
      { name: 'a', critical: true, kind: 'test', chunks: [fileChunk('a', a, 64 << 20)] },
      { name: 'b', critical: false, kind: 'test', chunks: [fileChunk('b', b, 64 << 20)] },
    ];
    const writer = await tarTarget({ path: path.join(t.dir, 'archive2') }).create({ instance: 'i', backupId: '20260101T000000Z-0002' });
    const controller = new AbortController();
    const err = await streamSpaces({
      spaces,
      snapshot: live,
      writer,
      signal: controller.signal,
      parallel: 2,
      context: { instance: 'i', backupId: 'x' },
      onProgress: (p) => {
        if (p.bytesDone > 8 << 20) controller.abort(new Error('interrupted by SIGTERM'));
      },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as EbrError).code).toBe('cancelled');
    expect((err as EbrError).message).toMatch(/interrupted by SIGTERM/);
    await waitFor('both sources to be closed', () => (openFiles().some((f) => f === a || f === b) ? undefined : true), 10_000, 20);
    await writer.abort();
  });
});

/**
 * One AbortSignal serves a whole backup; every unit of work that listens on it must stop listening when
 * it ends. A data directory has hundreds of directories and files: a listener (and a descriptor) left
 * per member made node print `MaxListenersExceededWarning: Possible EventTarget memory leak detected.
 * 11 abort listeners added to [AbortSignal]` on a quiet PostgreSQL backup. Checked on real files through
 * both targets, and on a real PostgreSQL cluster through the CLI.
 */
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { getEventListeners } from 'node:events';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dirTarget } from '../../src/archive/dir-target.js';
import { tarTarget } from '../../src/archive/tar-target.js';
import type { Chunk, Space } from '../../src/model.js';
import type { Snapshot } from '../../src/snapshot/snapshot-provider.js';
import { streamSpaces } from '../../src/workflow/stream.js';
import { runEbr, tempDir, waitFor } from '../helpers/env.js';
import { initCluster, postgresTempDir, writeEbrConfig } from '../postgres/cluster.js';
import { openFiles } from './fault-instance.js';

const live: Snapshot = { pathOf: (c) => c.path, release: async () => undefined };

/** Three spaces like a PostgreSQL data directory: nested directories, hundreds of small files, a few of more than 4 MiB. */
function dataDirectory(root: string): Space[] {
  const spaces: Space[] = [];
  for (const name of ['cluster', 'db1', 'db2']) {
    const chunks: Chunk[] = [];
    const base = path.join(root, name);
    for (let d = 0; d < 100; d++) {
      const dir = path.join(base, `dir${d}`);
      mkdirSync(dir, { recursive: true });
      chunks.push({ space: name, name: `${name}/dir${d}`, path: dir, type: 'directory', size: 0 });
      for (let f = 0; f < 2; f++) {
        const file = path.join(dir, `f${f}`);
        writeFileSync(file, Buffer.alloc(8192 + d, d));
        chunks.push({ space: name, name: `${name}/dir${d}/f${f}`, path: file, type: 'file', size: 8192 + d });
      }
    }
    for (let b = 0; b < 3; b++) {
      const file = path.join(base, `big${b}`);
      const fd = openSync(file, 'w');
      writeSync(fd, Buffer.alloc(5 << 20, b + 1));
      closeSync(fd);
      chunks.push({ space: name, name: `${name}/big${b}`, path: file, type: 'file', size: 5 << 20 });
    }
    spaces.push({ name, critical: name === 'cluster', kind: 'test', chunks });
  }
  return spaces;
}

describe('one signal for a whole backup', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());
  const spaces = dataDirectory(path.join(t.dir, 'data'));

  for (const [kind, make] of [
    ['tar', tarTarget],
    ['dir', dirTarget],
  ] as const) {
    it(`streams ${spaces.flatMap((s) => s.chunks).length} chunks through the ${kind} target without piling listeners on it or leaving files open`, async () => {
      const warnings: Error[] = [];
      const onWarning = (w: Error) => warnings.push(w);
      process.on('warning', onWarning);
      try {
        const controller = new AbortController();
        const writer = await make({ path: path.join(t.dir, `archive-${kind}`) }).create({ instance: 'i', backupId: `20260101T000000Z-000${kind === 'tar' ? 1 : 2}` });
        const r = await streamSpaces({ spaces, snapshot: live, writer, signal: controller.signal, parallel: 2, context: { instance: 'i', backupId: 'x' } });
        expect(r.members.length).toBe(spaces.flatMap((s) => s.chunks).length);
        // Warnings are emitted on the next tick.
        await new Promise((resolve) => setImmediate(resolve));
        expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message)).toEqual([]);
        expect(getEventListeners(controller.signal, 'abort').length).toBe(0);
        const data = path.join(t.dir, 'data');
        await waitFor('every chunk file and directory to be closed', () => (openFiles().some((f) => f.startsWith(data)) ? undefined : true), 10_000, 20);
      } finally {
        process.off('warning', onWarning);
      }
    });
  }
});

describe('a quiet PostgreSQL backup', () => {
  const tmp = postgresTempDir();
  let stop: (() => Promise<unknown>) | undefined;
  afterAll(async () => {
    await stop?.();
    tmp.cleanup();
  });

  it('prints nothing on stderr: no listener warning', async () => {
    const cluster = await initCluster(tmp.dir);
    stop = () => cluster.stop('immediate').catch(() => undefined);
    const setup = writeEbrConfig(tmp.dir, cluster);
    cluster.conf({ archive_mode: 'on', archive_command: `'${setup.archiveCommand}'` });
    await cluster.mustStart();
    await cluster.query('CREATE DATABASE shop');
    const r = await runEbr(['--config', setup.config, '--quiet', 'backup'], { env: { NODE_OPTIONS: '--trace-warnings' } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/MaxListenersExceededWarning/);
    expect(r.stderr).toBe('');
  });
});

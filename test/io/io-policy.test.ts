/**
 * The I/O policy end to end: a backup read under ioLimitMBps is complete, verifies and restores to the
 * same data, and every byte it streamed went through the limit, which held the reads back (its waits
 * are counted, not timed); under ioPriority: idle every thread of the running ebr has the idle class.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import Database from 'better-sqlite3';
import { needRoot } from '../helpers/root.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEbr, spawnEbr, tempDir, waitFor } from '../helpers/env.js';
import { makeInstance, writeSqliteConfig, type TestInstance } from '../sqlite/sqlite-instance.js';
import { applyIoPriority } from '../../src/util/io-priority.js';

interface BackupJson {
  backupId: string;
  bytes: number;
  io: { limitMBps?: number; waits: number; waitedMs: number; limitedBytes: number; priority: string; threads: number; warning?: string };
  warnings?: string[];
}

describe('io policy', () => {
  const t = tempDir('ebr-io-');
  let inst: TestInstance;
  beforeAll(() => {
    inst = makeInstance(t.dir, { padMiB: 3 });
  });
  afterAll(() => t.cleanup());

  it('a backup read at 2 MB/s is complete and correct, and the limit held its reads back', async () => {
    writeSqliteConfig(t.dir, { extra: ['ioLimitMBps: 2', 'ioPriority: best-effort'] });
    const b = await runEbr(['--config', inst.config, '--json', 'backup']);
    expect(b.code, b.stderr).toBe(0);
    const r = JSON.parse(b.stdout) as BackupJson;
    // 3 MiB and more through a bucket of half a megabyte: reads from the page cache outrun 2 MB/s, so
    // some had to wait; every byte streamed was counted by the limit.
    expect(r.bytes).toBeGreaterThan(3 << 20);
    expect(r.io.limitMBps).toBe(2);
    expect(r.io.limitedBytes).toBe(r.bytes);
    expect(r.io.waits).toBeGreaterThan(0);
    expect(r.io.waitedMs).toBeGreaterThan(0);
    expect(r.io).toMatchObject({ priority: 'best-effort' });
    expect(r.io.threads).toBeGreaterThan(1);
    expect(r.warnings ?? []).toEqual([]);

    const v = await runEbr(['--config', inst.config, 'verify', r.backupId]);
    expect(v.code, v.stderr + v.stdout).toBe(0);

    const to = path.join(t.dir, 'restored');
    const rs = await runEbr(['--config', inst.config, 'restore', '--backup', r.backupId, '--to', to]);
    expect(rs.code, rs.stderr).toBe(0);
    const restored = new Database(path.join(to, 'main.db'), { readonly: true });
    const original = new Database(inst.main, { readonly: true });
    try {
      const digest = (db: Database.Database) => db.prepare("SELECT count(*) AS n, sum(length(blob)) AS bytes, hex(max(blob)) AS top FROM pad").get();
      expect(digest(restored)).toEqual(digest(original));
      expect((digest(original) as { n: number }).n).toBe(48);
    } finally {
      restored.close();
      original.close();
    }
  });

  it('without ioLimitMBps nothing waits, and the result says so', async () => {
    writeSqliteConfig(t.dir, { extra: ['ioPriority: normal'] });
    const b = await runEbr(['--config', inst.config, '--json', 'backup']);
    expect(b.code, b.stderr).toBe(0);
    const r = JSON.parse(b.stdout) as BackupJson;
    expect(r.io).toEqual({ waits: 0, waitedMs: 0, limitedBytes: 0, priority: 'normal', threads: 0 });
  });

  it('under ioPriority: idle every thread of ebr has the idle class while it streams', async () => {
    writeSqliteConfig(t.dir, { extra: ['ioPriority: idle'] });
    const gate = path.join(t.dir, 'gate');
    const child = spawnEbr(['--config', inst.config, '--json', 'backup'], { env: { EBR_FAULT_STREAM_GATE: gate } });
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    try {
      const pid = child.pid!;
      const classes = () => {
        const out: Record<string, string> = {};
        for (const tid of readdirTasks(pid)) {
          try {
            out[`${tid} ${readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim()}`] = execFileSync('ionice', ['-p', tid]).toString().trim();
          } catch {
            /* the thread ended */
          }
        }
        return out;
      };
      // Held at the gate after the first buffer of the first file: the stream phase is running.
      const seen = await waitFor('every thread of the backup in the idle class', () => {
        const c = classes();
        const values = Object.values(c);
        return values.length > 1 && values.every((v) => v === 'idle') ? c : undefined;
      }, 60_000, 100);
      // The main thread and libuv's pool (which does the reads) at least.
      expect(Object.keys(seen).length).toBeGreaterThanOrEqual(5);
      // And the CPU niceness with it (root only: only root can undo it afterwards).
      const nices = readdirTasks(pid).map((tid) => niceOf(pid, tid)).filter((n) => n !== undefined);
      expect(new Set(nices)).toEqual(new Set([isRoot ? 19 : 0]));
      writeFileSync(gate, '');
      expect(await exited).toBe(0);
      const r = JSON.parse(stdout) as BackupJson;
      expect(r.io.priority).toBe('idle');
      expect(r.io.threads).toBeGreaterThanOrEqual(5);
      expect(r.io.nice).toBe(isRoot ? 19 : undefined);
    } finally {
      if (!existsSync(gate)) writeFileSync(gate, '');
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

const isRoot = process.getuid?.() === 0;

/** Field 19 of /proc/PID/task/TID/stat: the thread's niceness (after the command name, which may hold spaces). */
function niceOf(pid: number, tid: string): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  } catch {
    return undefined; // ended
  }
}

describe('io priority in this process', () => {
  it('idle sets every thread to nice 19 with the idle class, and restore() puts both back', async () => {
    needRoot('raising a thread\'s niceness back');
    const nicesNow = () => new Set(readdirTasks(process.pid).map((tid) => niceOf(process.pid, tid)).filter((n) => n !== undefined));
    const before = nicesNow();
    expect(before.has(19)).toBe(false);
    const applied = await applyIoPriority('idle');
    try {
      expect(applied.nice).toBe(19);
      expect(nicesNow()).toEqual(new Set([19]));
      expect(execFileSync('ionice', ['-p', String(process.pid)]).toString().trim()).toBe('idle');
    } finally {
      await applied.restore();
    }
    expect(nicesNow()).toEqual(before);
    expect(execFileSync('ionice', ['-p', String(process.pid)]).toString().trim()).not.toBe('idle');
  });
});

function readdirTasks(pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/task`);
  } catch {
    return []; // ended
  }
}

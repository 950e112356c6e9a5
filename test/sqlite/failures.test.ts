/** What must never lose data: damaged archives, ebr killed or signalled inside the window, maxBlockMs, a database in use. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, writeSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, runEbr, spawnEbr, tempDir, waitFor } from '../helpers/env.js';
import { readStatusFile } from '../helpers/status-file.js';
import { makeInstance, type TestInstance } from './sqlite-instance.js';

const writerScript = path.join(repoRoot, 'test/fixtures/sqlite-writer.mjs');
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

function startWriter(inst: TestInstance) {
  const statusFile = path.join(inst.dir, 'writer.json');
  const proc: ChildProcess = spawn(process.execPath, [writerScript, inst.main, inst.side, statusFile], { stdio: 'inherit' });
  const status = () => readStatusFile<{ seq: number; lastCommitAt: number }>(statusFile);
  return { proc, status };
}

function catalogRow(inst: TestInstance, sql: string): Record<string, unknown> | undefined {
  const file = path.join(inst.dir, 'var/catalog.db');
  if (!existsSync(file)) return undefined;
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(sql).get() as Record<string, unknown> | undefined;
  } catch (err) {
    // ebr may have created the file but not yet its tables.
    if (/no such table/.test((err as Error).message)) return undefined;
    throw err;
  } finally {
    db.close();
  }
}

/** Flips one byte inside the data of a member, found through the manifest. */
function flipByteOf(inst: TestInstance, space: string): { member: string } {
  const base = path.join(inst.dir, 'var/backups/t');
  const dir = path.join(base, readdirSync(base)[0]!);
  const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  const m = manifest.members.find((x: { space: string; type: string; size: number }) => x.space === space && x.type === 'file' && x.size > 1000);
  const file = path.join(dir, m.stream.endsWith('.tar') ? m.stream : path.join(m.stream, m.name));
  const at = (m.stream.endsWith('.tar') ? m.offset : 0) + Math.floor(m.size / 2);
  const fd = openSync(file, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, at);
  b[0] = b[0]! ^ 0xff;
  writeSync(fd, b, 0, 1, at);
  closeSync(fd);
  return { member: m.name };
}

describe('sqlite: a flipped byte in the archive', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());
  for (const target of ['tar', 'dir'] as const) {
    it(`is caught by verify and by restore, and the live files stay untouched (${target} target)`, async () => {
      const inst = makeInstance(path.join(t.dir, target), { sqliteCatalog: true, target });
      const b = await runEbr(['--config', inst.config, 'backup']);
      expect(b.code, b.stderr).toBe(0);
      expect((await runEbr(['--config', inst.config, 'verify'])).code).toBe(0);
      const { member } = flipByteOf(inst, 'notes');
      const v = await runEbr(['--config', inst.config, 'verify', 'latest']);
      expect(v.code).toBe(1);
      expect(v.stderr).toContain('space notes');
      expect(v.stderr).toContain(`member ${member}`);
      const before = [sha(inst.main), sha(inst.side), sha(inst.notes)];
      for (const args of [['restore'], ['restore', '--partial', 'notes']]) {
        const r = await runEbr(['--config', inst.config, ...args]);
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(/does not match its digest/);
        expect(r.stderr).toMatch(/nothing was replaced/);
        expect([sha(inst.main), sha(inst.side), sha(inst.notes)]).toEqual(before);
        expect(readdirSync(inst.dir).filter((f) => f.includes('.ebr-'))).toEqual([]);
      }
    });
  }
}, { timeout: 60_000 });

describe('sqlite: ebr dies or is stopped inside the window', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());

  for (const how of ['SIGKILL', 'SIGTERM'] as const) {
    it(`${how} frees the writer, and the backup ends up failed with its phase`, async () => {
      const inst = makeInstance(path.join(t.dir, how), { sqliteCatalog: true });
      const writer = startWriter(inst);
      try {
        await waitFor('the writer to start', () => ((writer.status()?.seq ?? 0) > 50 ? true : undefined));
        const ebr = spawnEbr(['--config', inst.config, 'backup'], { env: { EBR_FAULT_HOLD_WINDOW_MS: '60000' } });
        let stderr = '';
        ebr.stderr!.on('data', (d) => (stderr += d));
        const exited = new Promise<number | null>((resolve) => ebr.on('exit', (code) => resolve(code)));
        await waitFor('ebr to hold the window', () => (catalogRow(inst, "SELECT phase FROM backups WHERE status = 'running' AND phase = 'acquire'") ? true : undefined), 30_000, 10);
        // Inside the window the writer stalls.
        await waitFor('the writer to stall', () => (Date.now() - (writer.status()?.lastCommitAt ?? Date.now()) > 300 ? true : undefined), 10_000, 20);
        const stalledAt = writer.status()!.seq;
        const killedAt = Date.now();
        ebr.kill(how);
        const code = await exited;
        await waitFor('the writer to commit again', () => ((writer.status()?.seq ?? 0) > stalledAt + 10 ? true : undefined), 5_000, 10);
        const freedAfterMs = Date.now() - killedAt;
        expect(freedAfterMs).toBeLessThan(5_000);
        if (how === 'SIGTERM') {
          expect(code).toBe(1);
          expect(stderr).toMatch(/releasing the database/);
          expect(stderr).toMatch(/interrupted by SIGTERM/);
        }
        // The next command finds the dead runner (SIGKILL) and removes the staging copies it left.
        const list = await runEbr(['--config', inst.config, '--json', 'list']);
        expect(list.code, list.stderr).toBe(0);
        const [b] = JSON.parse(list.stdout);
        expect(b.status).toBe('failed');
        expect(b.phase).toBe('acquire');
        if (how === 'SIGKILL') expect(b.error.message).toMatch(/died in phase acquire/);
        const staging = path.join(inst.dir, 'var/staging');
        expect(existsSync(staging) ? readdirSync(staging) : []).toEqual([]);
        // And a new backup of the instance is not blocked by a stale lock.
        const again = await runEbr(['--config', inst.config, 'backup']);
        expect(again.code, again.stderr).toBe(0);
      } finally {
        writer.proc.kill('SIGTERM');
      }
    });
  }

  it('maxBlockMs ends a long window: the backup fails naming it and the database is left running', async () => {
    const inst = makeInstance(path.join(t.dir, 'maxblock'), { sqliteCatalog: true, maxBlockMs: 300 });
    const writer = startWriter(inst);
    try {
      await waitFor('the writer to start', () => ((writer.status()?.seq ?? 0) > 50 ? true : undefined));
      const started = Date.now();
      const r = await runEbr(['--config', inst.config, '--json', 'backup'], { env: { EBR_FAULT_HOLD_WINDOW_MS: '30000' } });
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/maxBlockMs \(300 ms\)/);
      expect(r.stderr).toMatch(/unblocked and left running/);
      const doc = JSON.parse(r.stdout);
      expect(doc.error.code).toBe('windowExceeded');
      const seq = writer.status()!.seq;
      await waitFor('the writer to commit again', () => ((writer.status()?.seq ?? 0) > seq + 10 ? true : undefined), 5_000);
      const row = catalogRow(inst, 'SELECT status, block_window_ms FROM backups');
      expect(row?.status).toBe('failed');
      expect(Number(row?.block_window_ms)).toBeGreaterThanOrEqual(300);
      expect(Number(row?.block_window_ms)).toBeLessThan(5_000);
    } finally {
      writer.proc.kill('SIGTERM');
    }
  });
}, { timeout: 120_000 });

describe('sqlite: restore over a database in use', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());
  it('is refused, naming the process, and --to DIR still works', async () => {
    const inst = makeInstance(t.dir, { sqliteCatalog: true });
    expect((await runEbr(['--config', inst.config, 'backup'])).code).toBe(0);
    const holder = spawn(process.execPath, ['-e', `const D=require(${JSON.stringify(path.join(repoRoot, 'node_modules/better-sqlite3'))});const d=new D(${JSON.stringify(inst.side)});d.prepare('select 1').get();setInterval(()=>{},1000)`], { stdio: 'ignore' });
    try {
      await waitFor('the holder to open the file', () => (readdirSync(`/proc/${holder.pid}/fd`).length > 4 ? true : undefined));
      await new Promise((r) => setTimeout(r, 300));
      const before = sha(inst.side);
      const r = await runEbr(['--config', inst.config, 'restore']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`the database is in use: pid ${holder.pid}`));
      expect(r.stderr).toMatch(/hint: stop the programs/);
      expect(sha(inst.side)).toBe(before);
      const to = await runEbr(['--config', inst.config, 'restore', '--to', path.join(t.dir, 'copy')]);
      expect(to.code, to.stderr).toBe(0);
    } finally {
      holder.kill('SIGKILL');
    }
  });
});

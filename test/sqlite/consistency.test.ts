/** A backup taken while a writer commits continuously restores to a consistent cut; partial restore touches one space only. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, runEbr, tempDir, waitFor } from '../helpers/env.js';
import { statusNow } from '../helpers/status-file.js';
import { integrity, makeInstance, query, type TestInstance } from './sqlite-instance.js';

const writerScript = path.join(repoRoot, 'test/fixtures/sqlite-writer.mjs');

function startWriter(inst: TestInstance): { proc: ChildProcess; statusFile: string; status: () => { seq: number; worstStallMs: number; lastCommitAt: number } } {
  const statusFile = path.join(inst.dir, 'writer.json');
  const proc = spawn(process.execPath, [writerScript, inst.main, inst.side, statusFile], { stdio: 'inherit' });
  return { proc, statusFile, status: () => statusNow(statusFile) };
}

function sha(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

describe('sqlite: backup under continuous writes', () => {
  const t = tempDir();
  let inst: TestInstance;
  let writer: ReturnType<typeof startWriter>;
  beforeAll(() => {
    inst = makeInstance(t.dir, { padMiB: 8 });
    writer = startWriter(inst);
  });
  afterAll(() => {
    writer.proc.kill('SIGTERM');
    t.cleanup();
  });

  it('restores to a consistent prefix of the writer\'s commits, on both databases', async () => {
    await waitFor('the writer to commit', () => (existsSync(writer.statusFile) && writer.status().seq > 200) || undefined);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await runEbr(['--config', inst.config, '--json', 'backup']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc.blockWindowMs).toBeGreaterThan(0);
      ids.push(doc.backupId);
    }
    const seqAfterBackups = writer.status().seq;
    for (const id of ids) {
      const to = path.join(t.dir, `restored-${id}`);
      const r = await runEbr(['--config', inst.config, '--json', 'restore', '--backup', id, '--to', to]);
      expect(r.code, r.stderr).toBe(0);
      const main = path.join(to, 'main.db');
      const side = path.join(to, 'side.db');
      expect(integrity(main)).toBe('ok');
      expect(integrity(side)).toBe('ok');
      const m = query<{ n: number; lo: number; hi: number }>(main, 'SELECT count(*) AS n, min(seq) AS lo, max(seq) AS hi FROM ledger');
      const s = query<{ n: number; hi: number }>(side, 'SELECT count(*) AS n, max(seq) AS hi FROM mirror');
      // A consistent cut: no gaps, and every transaction present in both databases or in neither.
      expect(m.n).toBeGreaterThan(200);
      expect(m.lo).toBe(1);
      expect(m.hi).toBe(m.n);
      expect(s.n).toBe(m.n);
      expect(s.hi).toBe(m.hi);
      expect(m.hi).toBeLessThanOrEqual(seqAfterBackups);
    }
    // The writer went on through all of it.
    const before = writer.status().seq;
    await waitFor('the writer to keep committing', () => (writer.status().seq > before + 50 ? true : undefined), 10_000);
  });
});

describe('sqlite: partial restore', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());

  it('changes only the named space', async () => {
    const inst = makeInstance(t.dir);
    query(inst.main, "INSERT INTO notes.note (body) VALUES ('before backup') RETURNING id", { notes: inst.notes });
    const b = await runEbr(['--config', inst.config, 'backup']);
    expect(b.code, b.stderr).toBe(0);
    // After the backup: every database changes.
    query(inst.main, 'INSERT INTO ledger (seq, at) VALUES (1, 1) RETURNING seq');
    query(inst.side, 'INSERT INTO mirror (seq) VALUES (1) RETURNING seq');
    query(inst.notes, "DELETE FROM note WHERE id <= 100 RETURNING id");
    const mainSha = sha(inst.main);
    const sideSha = sha(inst.side);

    const r = await runEbr(['--config', inst.config, 'restore', '--partial', 'notes']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/restored space notes/);
    expect(query<{ n: number }>(inst.notes, 'SELECT count(*) AS n FROM note').n).toBe(501);
    expect(integrity(inst.notes)).toBe('ok');
    expect(sha(inst.main)).toBe(mainSha);
    expect(sha(inst.side)).toBe(sideSha);
    expect(query<{ n: number }>(inst.main, 'SELECT count(*) AS n FROM ledger').n).toBe(1);
  });
});

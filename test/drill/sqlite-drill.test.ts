/**
 * `ebr drill` on SQLite: a good backup passes (integrity_check on every restored database) and is
 * recorded, `ebr list` shows when it was proven restorable; a backup whose archive was edited, and a
 * backup of a database whose pages were already damaged, fail with exit 1 and are recorded as failed.
 * The scratch copy is gone in every case.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { runEbr, tempDir } from '../helpers/env.js';
import { makeInstance, type TestInstance } from '../sqlite/sqlite-instance.js';

const t = tempDir('ebr-drill-');
afterAll(() => t.cleanup());
const ebr = (inst: TestInstance, ...args: string[]) => runEbr(['--config', inst.config, ...args]);

interface Drill {
  drillId: number;
  backupId: string;
  status: string;
  restoreMs: number;
  checks: Array<{ name: string; ok: boolean; detail: string }>;
  scratch: string;
  scratchRemoved: boolean;
  error?: { message: string };
}

function drillRows(inst: TestInstance): Array<{ backup_id: string; status: string; checks: string; error: string | null; scratch: string }> {
  const db = new Database(path.join(inst.dir, 'var/catalog.db'), { readonly: true });
  try {
    return db.prepare('SELECT * FROM drills ORDER BY id').all() as never;
  } finally {
    db.close();
  }
}

/** The scratch root holds no leftover copy. */
function scratchLeft(inst: TestInstance): string[] {
  const root = path.join(inst.dir, 'var/drills');
  return existsSync(root) ? readdirSync(root) : [];
}

async function backedUp(name: string, o: { target?: 'tar' | 'dir' } = {}): Promise<{ inst: TestInstance; id: string }> {
  const inst = makeInstance(path.join(t.dir, name), o);
  const b = await ebr(inst, '--json', 'backup');
  expect(b.code, b.stderr).toBe(0);
  return { inst, id: (JSON.parse(b.stdout) as { backupId: string }).backupId };
}

describe('ebr drill on SQLite', () => {
  it('passes a good backup, records it, shows it in ebr list, and removes the scratch', async () => {
    const { inst, id } = await backedUp('good');
    const r = await ebr(inst, '--json', 'drill');
    expect(r.code, r.stderr).toBe(0);
    const d = JSON.parse(r.stdout) as Drill;
    expect(d.status).toBe('passed');
    expect(d.backupId).toBe(id);
    const names = d.checks.map((c) => c.name);
    for (const space of ['main', 'side', 'notes']) expect(names).toContain(`PRAGMA integrity_check on ${space}`);
    expect(d.checks.every((c) => c.ok)).toBe(true);
    expect(d.scratchRemoved).toBe(true);
    expect(existsSync(d.scratch)).toBe(false);
    expect(scratchLeft(inst)).toEqual([]);
    const rows = drillRows(inst);
    expect(rows.map((x) => [x.backup_id, x.status])).toEqual([[id, 'passed']]);
    const list = JSON.parse((await ebr(inst, '--json', 'list')).stdout) as Array<{ id: string; lastDrillAt: string | null }>;
    expect(list.find((b) => b.id === id)?.lastDrillAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    const text = await ebr(inst, 'list');
    expect(text.stdout).toMatch(/DRILLED/);
    // The live database was not touched: it still takes writes.
    const db = new Database(inst.main);
    db.prepare('INSERT INTO ledger (at) VALUES (1)').run();
    db.close();
  });

  it('fails loudly on an archive member edited after the backup, records the failure, removes the scratch', async () => {
    const { inst, id } = await backedUp('edited', { target: 'dir' });
    const member = path.join(inst.dir, 'var/backups/t', id, 'spaces/notes/notes.db');
    const bytes = readFileSync(member);
    bytes[bytes.length - 100] ^= 0xff;
    writeFileSync(member, bytes);
    const r = await ebr(inst, 'drill');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAILED/);
    expect(r.stderr).toMatch(/notes\.db/);
    expect(r.stderr).toMatch(/does not match its digest/);
    expect(r.stderr).toMatch(/hint:/);
    const rows = drillRows(inst);
    expect(rows.map((x) => [x.backup_id, x.status])).toEqual([[id, 'failed']]);
    expect(rows[0]!.error).toMatch(/digest/);
    expect(existsSync(rows[0]!.scratch)).toBe(false);
    expect(scratchLeft(inst)).toEqual([]);
    const list = JSON.parse((await ebr(inst, '--json', 'list')).stdout) as Array<{ id: string; lastDrillAt: string | null }>;
    expect(list.find((b) => b.id === id)?.lastDrillAt).toBeNull();
  });

  it('fails when the database itself was damaged before the backup (integrity_check finds it)', async () => {
    const inst = makeInstance(path.join(t.dir, 'pages'), { sqliteCatalog: true });
    // A damaged b-tree page inside notes.db: the archive's digests are right, the data is not.
    const db = new Database(inst.notes);
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.pragma('journal_mode = DELETE');
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    db.close();
    const file = readFileSync(inst.notes);
    file.fill(0x5a, pageSize * 2 + 8, pageSize * 2 + 200); // page 3: inside the note table's b-tree
    writeFileSync(inst.notes, file);
    const b = await ebr(inst, '--json', 'backup');
    expect(b.code, b.stderr).toBe(0);
    const r = await ebr(inst, '--json', 'drill');
    expect(r.code).toBe(1);
    const d = JSON.parse(r.stdout) as Drill;
    expect(d.status).toBe('failed');
    expect(d.checks.some((c) => !c.ok && /integrity_check/.test(c.detail + c.name))).toBe(true);
    expect(d.scratchRemoved).toBe(true);
    expect(drillRows(inst).map((x) => x.status)).toEqual(['failed']);
    expect(scratchLeft(inst)).toEqual([]);
  });

  it('a drill killed mid-way leaves nothing: the next drill marks it failed and removes its scratch', async () => {
    const { inst } = await backedUp('killed');
    const k = await runEbr(['--config', inst.config, 'drill'], { env: { EBR_FAULT_KILL_AT: 'finish' } });
    expect(k.code).not.toBe(0);
    expect(scratchLeft(inst)).toHaveLength(1);
    expect(drillRows(inst).map((x) => x.status)).toEqual(['running']);
    const r = await ebr(inst, '--json', 'drill');
    expect(r.code, r.stderr).toBe(0);
    const d = JSON.parse(r.stdout) as Drill & { notes: string[] };
    expect(d.notes.join('\n')).toMatch(/removed what a dead drill left/);
    const rows = drillRows(inst);
    expect(rows.map((x) => x.status)).toEqual(['failed', 'passed']);
    expect(rows[0]!.error).toMatch(/died/);
    expect(scratchLeft(inst)).toEqual([]);
  });

  it('refuses an unknown space with exit 2 and records nothing', async () => {
    const { inst } = await backedUp('usage');
    const r = await ebr(inst, 'drill', '--partial', 'nosuch');
    expect(r.code).toBe(2);
    expect(drillRows(inst)).toEqual([]);
    expect(scratchLeft(inst)).toEqual([]);
  });
});


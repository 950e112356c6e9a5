/**
 * Retention over incremental chains, through `ebr backup` (which applies retention after each backup)
 * on a real SQLite instance: `full: 1` keeps the newest full backup and what was taken since, removes
 * older chains whole, and never a backup a kept one reads blocks from; a pinned incremental keeps its
 * chain. After every step each kept backup restores byte for byte.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEbr, tempDir } from '../helpers/env.js';
import { sha256File } from '../helpers/files.js';
import { makeInstance, writeSqliteConfig, type TestInstance } from '../sqlite/sqlite-instance.js';

const t = tempDir('ebr-incr-retention-');
let inst: TestInstance;
const sha = sha256File;
const ebr = (...args: string[]) => runEbr(['--config', inst.config, ...args], { timeoutMs: 300_000 });
const states = new Map<string, string>();
let n = 0;

async function backup(type: 'full' | 'incr') {
  const db = new Database(inst.main);
  db.prepare('UPDATE pad SET blob = randomblob(65536) WHERE id = ?').run(1 + ((n++ * 37) % 100));
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  const r = await ebr('backup', '--type', type, '--json');
  expect(r.code, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout) as { backupId: string; type: string; retention?: { kept: string[]; removed: string[] } };
  expect(out.type).toBe(type);
  states.set(out.backupId, sha(inst.main));
  return out;
}

const archive = (id: string) => path.join(inst.dir, 'var/backups/t', id);

async function restoresExactly(id: string) {
  const into = path.join(t.dir, `r-${id}`);
  const r = await ebr('restore', '--backup', id, '--to', into, '--quiet');
  expect(r.code, r.stderr).toBe(0);
  expect(sha(path.join(into, 'main.db'))).toBe(states.get(id));
}

beforeAll(() => {
  inst = makeInstance(path.join(t.dir, 'db'), { padMiB: 8 });
  inst.config = writeSqliteConfig(inst.dir, { extra: ['retention: { full: 1 }'] });
});
afterAll(() => t.cleanup());

describe('retention with incremental backups', () => {
  it('full: 1 keeps the newest full and its incrementals, and removes older chains whole', async () => {
    const f1 = await backup('full');
    const i1 = await backup('incr');
    const i2 = await backup('incr');
    expect(i2.retention!.removed).toEqual([]);
    expect(i2.retention!.kept.sort()).toEqual([f1.backupId, i1.backupId, i2.backupId].sort());
    await restoresExactly(i2.backupId);

    const f2 = await backup('full');
    expect(f2.retention!.removed.sort()).toEqual([f1.backupId, i1.backupId, i2.backupId].sort());
    for (const id of [f1.backupId, i1.backupId, i2.backupId]) expect(existsSync(archive(id))).toBe(false);
    const i3 = await backup('incr');
    expect(i3.retention!.kept.sort()).toEqual([f2.backupId, i3.backupId].sort());
    await restoresExactly(i3.backupId);

    // Pinned, i3 outlives the next full, and so does f2, whose blocks it reads.
    const pin = await ebr('pin', i3.backupId);
    expect(pin.code, pin.stderr).toBe(0);
    const f3 = await backup('full');
    expect(f3.retention!.kept.sort()).toEqual([f2.backupId, i3.backupId, f3.backupId].sort());
    const dry = await ebr('retention', '--dry-run', '--json');
    const decisions = (JSON.parse(dry.stdout) as { decisions: Array<{ id: string; why: string[] }> }).decisions;
    expect(decisions.find((d) => d.id === f2.backupId)!.why).toEqual([`the parent of kept backup ${i3.backupId}, which reads blocks from it`]);
    await restoresExactly(i3.backupId);
    await restoresExactly(f3.backupId);

    // Unpinned, the next backup's retention lets the old chain go together.
    expect((await ebr('unpin', i3.backupId)).code).toBe(0);
    const i4 = await backup('incr');
    expect(i4.retention!.removed.sort()).toEqual([f2.backupId, i3.backupId].sort());
    await restoresExactly(i4.backupId);
  });
});

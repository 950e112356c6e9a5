/**
 * An in-place restore of a few hundred MB of SQLite, killed with SIGKILL at many moments — while
 * copies are staged, between the renames of the swap, in and after the adapter's finish, while the old
 * files are removed. After the next ebr command the live files are either exactly the backup or
 * exactly what they were before, integrity_check says ok, no `.ebr-*` entry is left beside them, and
 * the restore's row says which outcome it was.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEbr, tempDir } from '../helpers/env.js';
import { ebrLeftovers, sha256File } from '../helpers/files.js';
import { makeInstance, type TestInstance } from '../sqlite/sqlite-instance.js';
import { restoreKilledAt, type KillMoment } from '../sqlite/restore-kill-cases.js';

const t = tempDir('ebr-restore-kill-');
let inst: TestInstance;
let files: string[];
let backupState: string[];
let beforeState: string[];
const pristine = path.join(t.dir, 'pristine');

const state = () => files.map(sha256File);
const leftovers = () => ebrLeftovers(inst.dir);

beforeAll(async () => {
  inst = makeInstance(path.join(t.dir, 'db'), { padMiB: 240 });
  files = [inst.main, inst.side, inst.notes];
  const b = await runEbr(['--config', inst.config, 'backup', '--quiet'], { timeoutMs: 300_000 });
  expect(b.code, b.stderr).toBe(0);
  backupState = state();
  // The state before the restore differs from the backup in every file.
  const db = new Database(inst.main);
  db.prepare('ATTACH DATABASE ? AS side').run(inst.side);
  db.prepare('ATTACH DATABASE ? AS notes').run(inst.notes);
  db.exec("INSERT INTO ledger (at) VALUES (1); INSERT INTO side.mirror (seq) VALUES (1); INSERT INTO notes.note (body) VALUES ('after the backup'); DELETE FROM pad WHERE id % 7 = 0;");
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  beforeState = state();
  expect(beforeState).not.toEqual(backupState);
  mkdirSync(pristine);
  for (const f of files) copyFileSync(f, path.join(pristine, path.basename(f)));
}, 300_000);
afterAll(() => t.cleanup());

/** Where the restore kills itself (EBR_FAULT_KILL_AT), and which state the next command must leave. */
const moments: KillMoment[] = [
  { at: 'stage-chunk:1', expect: 'before' },
  { at: 'stage-chunk:25', expect: 'before' },
  { at: 'stage-chunk:59', expect: 'before' },
  { at: 'stage:1', expect: 'before' },
  { at: 'stage:3', expect: 'before' },
  { at: 'swap-aside:1', expect: 'before' },
  { at: 'swap:1', expect: 'before' },
  { at: 'swap-aside:4', expect: 'before' },
  { at: 'swap:2', expect: 'before' },
  { at: 'finish:1', expect: 'before' },
  { at: 'finished:1', expect: 'before' },
  { at: 'cleanup:1', expect: 'backup' },
  { at: 'cleanup:3', expect: 'backup' },
];

describe('sqlite: an in-place restore killed at any moment', () => {
  restoreKilledAt(moments, {
    args: [],
    config: () => inst.config,
    dir: () => inst.dir,
    files: () => files,
    putBack: () => {
      for (const f of files) copyFileSync(path.join(pristine, path.basename(f)), f);
    },
    before: () => beforeState,
    backup: () => backupState,
  });

  it('a restore that runs to the end after all that gives the backup, and the lock is free again', async () => {
    const r = await runEbr(['--config', inst.config, 'restore', '--quiet'], { timeoutMs: 300_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(state()).toEqual(backupState);
    expect(leftovers()).toEqual([]);
    const b = await runEbr(['--config', inst.config, 'backup', '--quiet'], { timeoutMs: 300_000 });
    expect(b.code, b.stderr).toBe(0);
  });
});

/**
 * `ebr restore --delta` in place over a real SQLite instance: files identical to the backup are left
 * alone, changed ones get only their differing blocks, the result is the backup byte for byte, and a
 * delta restore killed with SIGKILL at any moment ends, after the next ebr command, with the files
 * exactly as they were before it or exactly the backup.
 */
import { copyFileSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEbr, tempDir } from '../helpers/env.js';
import { ebrLeftovers, sha256File } from '../helpers/files.js';
import { integrity, makeInstance, type TestInstance } from '../sqlite/sqlite-instance.js';
import { restoreKilledAt, type KillMoment } from '../sqlite/restore-kill-cases.js';

const t = tempDir('ebr-delta-');
let inst: TestInstance;
let files: string[];
let backupState: string[];
let beforeState: string[];
const pristine = path.join(t.dir, 'pristine');

const state = () => files.map(sha256File);
const leftovers = () => ebrLeftovers(inst.dir);
const ebr = (args: string[], env: NodeJS.ProcessEnv = {}) => runEbr(['--config', inst.config, ...args], { env, timeoutMs: 300_000 });

/** Rewrites a few rows of main.db in place (same file size), checkpointed into the file. */
function changeMain(ids: number[]) {
  const db = new Database(inst.main);
  for (const id of ids) db.prepare('UPDATE pad SET blob = randomblob(65536) WHERE id = ?').run(id);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}

interface Restored {
  files: number;
  delta: { unchangedFiles: number; changedBlocks: number; totalBlocks: number };
}

beforeAll(async () => {
  inst = makeInstance(path.join(t.dir, 'db'), { padMiB: 48 });
  files = [inst.main, inst.side, inst.notes];
  const b = await ebr(['backup', '--quiet']);
  expect(b.code, b.stderr).toBe(0);
  backupState = state();
  changeMain([10, 400, 700]);
  beforeState = state();
  expect(beforeState[0]).not.toBe(backupState[0]);
  mkdirSync(pristine);
  for (const f of files) copyFileSync(f, path.join(pristine, path.basename(f)));
}, 300_000);
afterAll(() => t.cleanup());

function putBack() {
  for (const f of files) copyFileSync(path.join(pristine, path.basename(f)), f);
  expect(state()).toEqual(beforeState);
}

describe('restore --delta', () => {
  it('writes only the blocks that differ and leaves identical files alone', async () => {
    putBack();
    const mainIno = statSync(inst.main).ino;
    const r = await ebr(['restore', '--delta', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Restored;
    // side.db and notes.db are as backed up; main.db had three rows rewritten: a few of its ~50 blocks.
    expect(out.delta.unchangedFiles).toBeGreaterThanOrEqual(2);
    expect(out.delta.changedBlocks).toBeGreaterThan(0);
    expect(out.delta.changedBlocks).toBeLessThanOrEqual(8);
    expect(out.delta.totalBlocks).toBeGreaterThan(40);
    expect(state()).toEqual(backupState);
    // Written in place, not replaced by a new file.
    expect(statSync(inst.main).ino).toBe(mainIno);
    expect(integrity(inst.main)).toBe('ok');
    expect(leftovers()).toEqual([]);
    // Again: nothing differs any more.
    const again = JSON.parse((await ebr(['restore', '--delta', '--json'])).stdout) as Restored;
    expect(again.delta.changedBlocks).toBe(0);
    expect(state()).toEqual(backupState);
  });

  it('without --delta the same restore rewrites every file', async () => {
    putBack();
    const mainIno = statSync(inst.main).ino;
    const r = await ebr(['restore', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(state()).toEqual(backupState);
    expect(statSync(inst.main).ino).not.toBe(mainIno);
  });

  /** Where the delta restore kills itself, and which state the next command must leave. */
  const moments: KillMoment[] = [
    { at: 'stage-block:1', expect: 'before' },
    { at: 'stage-block:3', expect: 'before' },
    { at: 'swap-aside:1', expect: 'before' },
    { at: 'swap:1', expect: 'before' },
    { at: 'swap:2', expect: 'before' },
    { at: 'finish:1', expect: 'before' },
    { at: 'cleanup:1', expect: 'backup' },
  ];
  restoreKilledAt(moments, { args: ['--delta'], config: () => inst.config, dir: () => inst.dir, files: () => files, putBack, before: () => beforeState, backup: () => backupState });
});

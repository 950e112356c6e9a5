/**
 * Incremental and differential backups of a real SQLite database through the CLI: only changed blocks
 * are stored, every restore of a chain is byte-identical to the database as it was (and to a full
 * backup of the same state), a damaged block of an older backup fails the restore before anything is
 * replaced, a chain that lost a backup is refused, and retention keeps every backup a kept one needs.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEbr, tempDir } from '../helpers/env.js';
import { ebrLeftovers, sha256File } from '../helpers/files.js';
import { integrity, makeInstance } from '../sqlite/sqlite-instance.js';

const t = tempDir('ebr-incr-');
const dir = path.join(t.dir, 'db');
const main = path.join(dir, 'main.db');
const mib = 1 << 20;
let config: string;

const sha = sha256File;
const ebr = (...args: string[]) => runEbr(['--config', config, ...args], { timeoutMs: 300_000 });

async function ok(...args: string[]) {
  const r = await ebr(...args);
  expect(r.code, `ebr ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r;
}

async function backup(type: string) {
  const r = await ok('backup', '--type', type, '--json');
  return JSON.parse(r.stdout) as { backupId: string; type: string; parent?: string; blocks?: { changed: number; total: number }; warnings?: string[] };
}

/** Rewrites rows in place (same size), checkpointed into main.db so the file itself changes. */
function change(ids: number[], grow = 0) {
  const db = new Database(main);
  db.transaction(() => {
    for (const id of ids) db.prepare('UPDATE pad SET blob = randomblob(65536) WHERE id = ?').run(id);
    const add = db.prepare('INSERT INTO pad (blob) VALUES (randomblob(65536))');
    for (let i = 0; i < grow; i++) add.run();
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}

/** Flips every bit of the byte at `at` of `file`; the function returned puts it back. */
function flipByte(file: string, at: number): () => void {
  const old = Buffer.alloc(1);
  const fd = openSync(file, 'r+');
  try {
    readSync(fd, old, 0, 1, at);
    writeSync(fd, Buffer.from([old[0]! ^ 0xff]), 0, 1, at);
  } finally {
    closeSync(fd);
  }
  return () => {
    const fd2 = openSync(file, 'r+');
    try {
      writeSync(fd2, old, 0, 1, at);
    } finally {
      closeSync(fd2);
    }
  };
}

function storedBytes(id: string): number {
  const at = path.join(dir, 'var/backups/t', id, 'spaces');
  return readdirSync(at).reduce((n, f) => n + readFileSync(path.join(at, f)).length, 0);
}

function manifestOf(id: string) {
  return JSON.parse(readFileSync(path.join(dir, 'var/backups/t', id, 'manifest.json'), 'utf8')) as {
    type?: string;
    parent?: string;
    chain?: string[];
    blockSize: number;
    spaces: Array<{ name: string; stream: string }>;
    members: Array<{ name: string; offset: number; size: number; stream: string; parts?: Array<{ backup?: string; at: number; count: number }> }>;
  };
}

async function restoredSha(id: string, into: string): Promise<string> {
  await ok('restore', '--backup', id, '--to', into, '--quiet');
  expect(integrity(path.join(into, 'main.db'))).toBe('ok');
  return sha(path.join(into, 'main.db'));
}

const ids: Record<string, string> = {};
const states: Record<string, string> = {};

beforeAll(async () => {
  config = makeInstance(dir, { padMiB: 40, sqliteCatalog: true }).config;
  ids.full = (await backup('full')).backupId;
  states.full = sha(main);
  change([3, 300]);
  const i1 = await backup('incr');
  ids.incr1 = i1.backupId;
  states.incr1 = sha(main);
  expect(i1).toMatchObject({ type: 'incr', parent: ids.full });
  change([500], 32);
  const i2 = await backup('incr');
  ids.incr2 = i2.backupId;
  states.incr2 = sha(main);
  expect(i2).toMatchObject({ type: 'incr', parent: ids.incr1 });
  change([100]);
  const d = await backup('diff');
  ids.diff = d.backupId;
  states.diff = sha(main);
  expect(d).toMatchObject({ type: 'diff', parent: ids.full });
  // A full backup of exactly the diff's state: nothing changed in between.
  ids.sameAsDiff = (await backup('full')).backupId;
}, 600_000);
afterAll(() => t.cleanup());

describe('incremental and differential backups', () => {
  it('store only the changed blocks, and say so', async () => {
    const full = storedBytes(ids.full!);
    expect(full).toBeGreaterThan(40 * mib);
    // Two rows rewritten touch a few 1 MiB blocks (and the header block), far below the database.
    expect(storedBytes(ids.incr1!)).toBeLessThan(full / 5);
    expect(storedBytes(ids.incr2!)).toBeLessThan(full / 5);
    // The diff holds everything changed since the full: at least what both incrementals held.
    expect(storedBytes(ids.diff!)).toBeGreaterThan(storedBytes(ids.incr1!));
    const m = manifestOf(ids.incr2!);
    expect(m).toMatchObject({ type: 'incr', parent: ids.incr1, blockSize: mib });
    expect(m.chain).toEqual(expect.arrayContaining([ids.full]));
    const list = await ok('list', '--json');
    const rows = JSON.parse(list.stdout) as Array<{ id: string; type: string; parent: string | null }>;
    expect(rows.find((r) => r.id === ids.diff)).toMatchObject({ type: 'diff', parent: ids.full });
    expect(rows.find((r) => r.id === ids.full)).toMatchObject({ type: 'full', parent: null });
  });

  it('restore every backup of the chain byte for byte as the database was', async () => {
    for (const k of ['full', 'incr1', 'incr2', 'diff'] as const) {
      expect(await restoredSha(ids[k]!, path.join(t.dir, `r-${k}`)), k).toBe(states[k]);
    }
    // And the incremental's restore is identical to a full backup's of the same state.
    expect(await restoredSha(ids.sameAsDiff!, path.join(t.dir, 'r-same'))).toBe(states.diff);
  });

  it('verify checks an incremental\'s own blocks, and a drill restores and checks it from its chain', async () => {
    const r = await ok('verify', ids.incr2!);
    expect(r.stdout).toMatch(/every digest matches/);
    const d = await ok('drill', '--backup', ids.incr2!, '--json');
    expect(JSON.parse(d.stdout)).toMatchObject({ backupId: ids.incr2, status: 'passed' });
  });

  it('a damaged block of an older backup of the chain fails the restore before anything is written', async () => {
    const m = manifestOf(ids.incr2!);
    const member = m.members.find((x) => x.name === 'main.db')!;
    // The first run of blocks the incremental reads from the full backup.
    const run = member.parts!.find((p) => p.backup === ids.full)!;
    const full = manifestOf(ids.full!);
    const fm = full.members.find((x) => x.name === 'main.db')!;
    const stream = path.join(dir, 'var/backups/t', ids.full!, fm.stream);
    const at = fm.offset + run.at * mib + 4096;
    const unflip = flipByte(stream, at);
    try {
      const into = path.join(t.dir, 'r-damaged');
      const r = await ebr('restore', '--backup', ids.incr2!, '--to', into);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`block \\d+ of member main\\.db of space main, read from backup ${ids.full}, does not match its digest`));
      expect(r.stderr).toMatch(/nothing was replaced/);
      // Even the directory the restore made is gone again.
      expect(existsSync(into)).toBe(false);
    } finally {
      unflip();
    }
  });

  it('a damaged byte in a block of an older backup that the restore does not need still fails it: that body is checked against its sha256', async () => {
    // Block digests (xxh128) guard against accident only; every body read is checked as a whole too.
    const m = manifestOf(ids.incr2!);
    const member = m.members.find((x) => x.name === 'main.db')!;
    const readFromFull = new Set(member.parts!.filter((p) => p.backup === ids.full).flatMap((p) => Array.from({ length: p.count }, (_, k) => p.at + k)));
    const full = manifestOf(ids.full!);
    const fm = full.members.find((x) => x.name === 'main.db')!;
    const unread = Array.from({ length: Math.ceil(fm.size / mib) }, (_, i) => i).find((i) => !readFromFull.has(i));
    expect(unread, 'the incremental supersedes at least one block of the full backup').toBeDefined();
    const stream = path.join(dir, 'var/backups/t', ids.full!, fm.stream);
    const at = fm.offset + unread! * mib + 100;
    const unflip = flipByte(stream, at);
    try {
      const into = path.join(t.dir, 'r-damaged-unread');
      const r = await ebr('restore', '--backup', ids.incr2!, '--to', into);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`member main\\.db of space main, read from backup ${ids.full} of the chain, does not match its digest`));
      expect(r.stderr).toMatch(/nothing was replaced/);
      expect(existsSync(into)).toBe(false);
    } finally {
      unflip();
    }
  });

  it('a chain that lost a backup is refused, named by verify, and never made longer', async () => {
    const db = new Database(path.join(dir, 'var/catalog.db'));
    try {
      db.prepare("UPDATE backups SET removed_at = '2026-01-01T00:00:00Z' WHERE id = ?").run(ids.full);
      const r = await ebr('restore', '--backup', ids.incr2!, '--to', path.join(t.dir, 'r-lost'));
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`backup ${ids.incr2} is incremental and reads blocks from backup ${ids.full}, which was removed on 2026-01-01`));
      expect(existsSync(path.join(t.dir, 'r-lost'))).toBe(false);
      const v = await ebr('verify', ids.incr2!);
      expect(v.code).toBe(1);
      expect(v.stdout + v.stderr).toMatch(new RegExp(`reads blocks from backup ${ids.full}, which was removed`));
      // The newest kept backup is the full one of the diff's state, whose chain is whole: compared with it.
      const i = await backup('incr');
      expect(i).toMatchObject({ type: 'incr', parent: ids.sameAsDiff });
      // Now the newest kept backup is that incr; with its parent gone, the next one is taken full, saying why.
      db.prepare("UPDATE backups SET removed_at = '2026-01-01T00:00:00Z' WHERE id = ?").run(ids.sameAsDiff);
      const f = await backup('incr');
      expect(f.type).toBe('full');
      expect(f.parent).toBeUndefined();
      expect(f.warnings?.join(' ')).toMatch(new RegExp(`taken as a full backup instead of an incremental one: backup ${i.backupId} needs backup ${ids.sameAsDiff}, which is no longer kept`));
      db.prepare('UPDATE backups SET removed_at = NULL WHERE id IN (?, ?)').run(ids.full, ids.sameAsDiff);
    } finally {
      db.close();
    }
  });

  it('an in-place restore of an incremental killed while it assembles blocks leaves the files as they were', async () => {
    const before = sha(main);
    for (const at of ['stage-block:2', 'stage:1', 'swap:1']) {
      const r = await runEbr(['--config', config, 'restore', '--backup', ids.incr1!, '--quiet'], { env: { EBR_FAULT_KILL_AT: at }, timeoutMs: 300_000 });
      expect(r.code, at).not.toBe(0);
      const next = await ok('restores', '--json');
      expect((JSON.parse(next.stdout) as Array<{ status: string }>)[0]!.status, at).toBe('rolled-back');
      expect(sha(main), at).toBe(before);
      expect(ebrLeftovers(dir), at).toEqual([]);
    }
    // Not killed, it puts the incremental's state in place.
    await ok('restore', '--backup', ids.incr1!, '--quiet');
    expect(sha(main)).toBe(states.incr1);
    expect(integrity(main)).toBe('ok');
  });

  it('a parent whose manifest was edited is not compared with: the backup is taken full, saying why', async () => {
    const newest = (JSON.parse((await ok('list', '--json')).stdout) as Array<{ id: string; status: string }>).find((b) => b.status === 'complete')!.id;
    const file = path.join(dir, 'var/backups/t', newest, 'manifest.json');
    const text = readFileSync(file, 'utf8');
    const plan = await ok('backup', '--type', 'incr', '--dry-run');
    expect(plan.stdout).toContain(`compared with backup ${newest}`);
    writeFileSync(file, text.replace('"blockSize": 1048576', '"blockSize": 1048577'));
    try {
      const f = await backup('incr');
      expect(f.type).toBe('full');
      expect(f.warnings?.join(' ')).toMatch(new RegExp(`the manifest of backup ${newest} could not be trusted .*run \`ebr verify ${newest}\``));
    } finally {
      writeFileSync(file, text);
    }
  });

  it('--type takes full, incr or diff only', async () => {
    const r = await ebr('backup', '--type', 'weekly');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown backup type "weekly"/);
    expect(r.stderr).toMatch(/--type incr/);
  });
});

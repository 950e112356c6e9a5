/**
 * Incremental backups of a real MariaDB server through the CLI: a full backup of a server with a table
 * of a few tens of MB, rows changed, an incr that stores only the changed 1 MiB blocks; its restore
 * --to a new directory starts a server that holds exactly the rows as at the incr. A second incr
 * (full ← incr ← incr) restores the same way, and the first incr restores to a time after it (--until)
 * though newer backups and binlogs exist. A differential restores in place with --delta into the stopped
 * server, writing only the blocks that differ.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/env.js';
import { writeConfig, type EbrSetup } from '../mariadb/mariadb-instance.js';
import { createServer, serverNow, type TestServer } from '../mariadb/server.js';

const t = tempDir('ebr-mdb-incr-');
let server: TestServer;
let e: EbrSetup;
const mib = 1 << 20;

interface BackupOut {
  backupId: string;
  type: string;
  parent?: string;
  blocks?: { changed: number; total: number };
}
interface RestoreOut {
  backupId: string;
  chain?: string[];
  notes: string[];
}

/** Row counts and a digest over every row of both tables. */
interface State {
  big: number;
  bigMd5: string;
  still: number;
  stillMd5: string;
}

async function state(s: TestServer): Promise<State> {
  const c = await s.connect();
  try {
    await c.query('SET SESSION group_concat_max_len = 1073741824');
    const [rows] = await c.query(
      `SELECT (SELECT COUNT(*) FROM shop.big) AS big,
              (SELECT MD5(GROUP_CONCAT(CONCAT(id, ':', pad) ORDER BY id SEPARATOR ',')) FROM shop.big) AS bigMd5,
              (SELECT COUNT(*) FROM shop.still) AS still,
              (SELECT MD5(GROUP_CONCAT(CONCAT(id, ':', v) ORDER BY id SEPARATOR ',')) FROM shop.still) AS stillMd5`,
    );
    const r = (rows as Array<Record<string, unknown>>)[0]!;
    return { big: Number(r.big), bigMd5: String(r.bigMd5), still: Number(r.still), stillMd5: String(r.stillMd5) };
  } finally {
    await c.end();
  }
}

/** Bytes the target stores for a backup: every file under its directory. */
function storedBytes(id: string): number {
  const walk = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce((n, x) => {
      const p = path.join(dir, x.name);
      return n + (x.isDirectory() ? walk(p) : x.isFile() ? statSync(p).size : 0);
    }, 0);
  return walk(path.join(t.dir, 'backups', 'mdb', id));
}

/** Starts a server on a restored data directory (as the DBA would), runs fn, stops it and removes its socket directory. */
async function onRestored(datadir: string, fn: (s: TestServer) => Promise<void>): Promise<void> {
  const s = await createServer({ datadir });
  try {
    await fn(s);
  } finally {
    await s.cleanup();
  }
}

/** Rewrites rows in place (same length) and appends new ones. */
async function change(update: [number, number], insert: [number, number], del?: [number, number]): Promise<void> {
  await server.query('UPDATE shop.big SET pad = REPEAT(MD5(RAND()), 30) WHERE id BETWEEN ? AND ?', update);
  await server.query(`INSERT INTO shop.big SELECT seq, REPEAT(MD5(seq * 7), 30) FROM shop.seq_${insert[0]}_to_${insert[1]}`);
  if (del) await server.query('DELETE FROM shop.big WHERE id BETWEEN ? AND ?', del);
}

/** A moment between what was committed before and after (server clock; binlogs keep whole seconds). */
async function moment(): Promise<string> {
  await new Promise((r) => setTimeout(r, 1600));
  const at = await serverNow(server);
  await new Promise((r) => setTimeout(r, 1600));
  return at;
}

const ids: Record<string, string> = {};
const states: Record<string, State> = {};
const moments: Record<string, string> = {};

beforeAll(async () => {
  server = await createServer();
  await server.query('CREATE DATABASE shop');
  // 30 000 rows of ~1 KB: a table file of a few tens of MiB.
  await server.query('CREATE TABLE shop.big (id INT PRIMARY KEY, pad VARCHAR(1000) NOT NULL) ENGINE=InnoDB');
  for (let from = 1; from <= 30000; from += 10000) {
    await server.query(`INSERT INTO shop.big SELECT seq, REPEAT(MD5(seq), 30) FROM shop.seq_${from}_to_${from + 9999}`);
  }
  await server.query('CREATE TABLE shop.still (id INT PRIMARY KEY, v VARCHAR(64) NOT NULL) ENGINE=InnoDB');
  await server.query("INSERT INTO shop.still SELECT seq, CONCAT('untouched ', MD5(seq)) FROM shop.seq_1_to_5000");
  // The table's pages on disk before the full backup, so what changes later is only what the writes change.
  const c = await server.connect();
  try {
    await c.query('FLUSH TABLES shop.big, shop.still FOR EXPORT');
    await c.query('UNLOCK TABLES');
  } finally {
    await c.end();
  }
  e = writeConfig(t.dir, server);
}, 300_000);

afterAll(async () => {
  await server?.cleanup();
  t.cleanup();
});

describe('MariaDB incremental backups', () => {
  it('an incremental after a full stores only the changed blocks, and restores into a server with exactly its rows', async () => {
    const full = await e.ebrJson<BackupOut>(['backup', '--type', 'full']);
    expect(full.type).toBe('full');
    ids.full = full.backupId;

    await change([2000, 2400], [30001, 32000]);
    states.incr1 = await state(server);
    expect(states.incr1.big).toBe(32000);
    const incr1 = await e.ebrJson<BackupOut>(['backup', '--type', 'incr']);
    expect(incr1).toMatchObject({ type: 'incr', parent: ids.full });
    ids.incr1 = incr1.backupId;
    expect(incr1.blocks!.changed).toBeGreaterThan(0);
    expect(incr1.blocks!.changed).toBeLessThan(incr1.blocks!.total / 4);
    moments.incr1 = await moment();

    const sizes = { full: storedBytes(ids.full), incr1: storedBytes(ids.incr1) };
    console.log(`stored bytes: ${JSON.stringify(sizes)}; blocks: ${JSON.stringify(incr1.blocks)}`);
    expect(sizes.full).toBeGreaterThan(30 * mib);
    expect(sizes.incr1).toBeLessThan(sizes.full / 4);

    // Nothing was written since the incr: the binlog archive ends at its moment.
    const to = path.join(t.dir, 'r-incr1');
    const r = await e.ebrJson<RestoreOut>(['restore', '--backup', ids.incr1, '--to', to]);
    expect(r.backupId).toBe(ids.incr1);
    expect(r.chain).toEqual([ids.full]);
    await onRestored(to, async (s) => {
      expect(await state(s)).toEqual(states.incr1);
      const check = await s.query<{ Msg_text: string }>('CHECK TABLE shop.big, shop.still');
      expect(check.map((x) => x.Msg_text)).toEqual(['OK', 'OK']);
    });
  }, 600_000);

  it('a second incremental (full ← incr ← incr) stores little and restores into a server with exactly its rows', async () => {
    await change([15000, 15300], [32001, 33000], [25000, 25500]);
    states.incr2 = await state(server);
    expect(states.incr2.big).toBe(33000 - 501);
    const incr2 = await e.ebrJson<BackupOut>(['backup', '--type', 'incr']);
    expect(incr2).toMatchObject({ type: 'incr', parent: ids.incr1 });
    ids.incr2 = incr2.backupId;
    const sizes = { full: storedBytes(ids.full!), incr2: storedBytes(ids.incr2) };
    console.log(`stored bytes: ${JSON.stringify(sizes)}; blocks: ${JSON.stringify(incr2.blocks)}`);
    expect(sizes.incr2).toBeLessThan(sizes.full / 4);

    const to = path.join(t.dir, 'r-incr2');
    const r = await e.ebrJson<RestoreOut>(['restore', '--backup', ids.incr2, '--to', to]);
    expect(r.chain).toEqual([ids.full, ids.incr1].sort());
    await onRestored(to, async (s) => {
      expect(await state(s)).toEqual(states.incr2);
    });

    // The copy of the first incremental, which a server has run on since, brought to the second's
    // state with --delta: only what differs is written, and what that server made goes aside.
    const refreshed = path.join(t.dir, 'r-incr1');
    const d = await e.ebrJson<RestoreOut & { delta?: { unchangedFiles: number; changedBlocks: number; totalBlocks: number } }>(['restore', '--backup', ids.incr2, '--to', refreshed, '--delta']);
    expect(d.delta!.unchangedFiles).toBeGreaterThan(10);
    expect(d.delta!.changedBlocks).toBeLessThan(incr2.blocks!.total / 4);
    await onRestored(refreshed, async (s) => {
      expect(await state(s)).toEqual(states.incr2);
    });
  }, 600_000);

  it('restores the first incremental to a time after it, though newer backups and binlogs exist', async () => {
    const to = path.join(t.dir, 'r-incr1-pitr');
    const r = await e.ebrJson<RestoreOut & { details: { reachesTarget: boolean } }>(['restore', '--backup', ids.incr1!, '--to', to, '--until', moments.incr1!]);
    expect(r.details.reachesTarget).toBe(true);
    await onRestored(to, async (s) => {
      expect(await state(s)).toEqual(states.incr1);
    });
  }, 600_000);

  it('a differential stores what changed since the full, and an in-place delta restore into the stopped server writes few blocks and brings its rows back', async () => {
    await change([8000, 8200], [33001, 34000]);
    states.diff = await state(server);
    const diff = await e.ebrJson<BackupOut>(['backup', '--type', 'diff']);
    expect(diff).toMatchObject({ type: 'diff', parent: ids.full });
    const sizes = { full: storedBytes(ids.full!), incr2: storedBytes(ids.incr2!), diff: storedBytes(diff.backupId) };
    console.log(`stored bytes: ${JSON.stringify(sizes)}; blocks: ${JSON.stringify(diff.blocks)}`);
    expect(sizes.diff).toBeLessThan(sizes.full / 3);
    expect(sizes.diff).toBeGreaterThan(sizes.incr2);

    // Rows written after the differential, never archived (no binlog sync), then the server stopped:
    // an in-place delta restore brings the differential's rows back, writing only the blocks that differ.
    await server.query("UPDATE shop.big SET pad = 'after the diff' WHERE id IN (7, 16000, 33500)");
    await server.query('DELETE FROM shop.still WHERE id <= 10');
    expect(await state(server)).not.toEqual(states.diff);
    await server.stop();
    const d = await e.ebrJson<RestoreOut & { delta?: { unchangedFiles: number; changedBlocks: number; totalBlocks: number } }>(['restore', '--backup', diff.backupId, '--delta']);
    console.log(`delta: ${JSON.stringify(d.delta)}`);
    expect(d.delta!.unchangedFiles).toBeGreaterThan(10);
    expect(d.delta!.changedBlocks).toBeGreaterThan(0);
    expect(d.delta!.changedBlocks).toBeLessThan(diff.blocks!.total / 4);
    await server.start();
    expect(await state(server)).toEqual(states.diff);
    const check = await server.query<{ Msg_text: string }>('CHECK TABLE shop.big, shop.still');
    expect(check.map((x) => x.Msg_text)).toEqual(['OK', 'OK']);
  }, 600_000);
});

/**
 * Incremental and differential backups of a real PostgreSQL cluster (WAL archived through `ebr wal
 * push`), through the CLI: a full backup, rows written, an incr, more rows, another incr, a diff. The
 * incr and diff archives hold only the changed 1 MiB blocks; each restores into a cluster that starts
 * and holds exactly the rows of its moment (right after the backup, or with --until from a chain of
 * three backups); a delta restore, over a restored copy whose rows were changed and in place into the
 * stopped original, writes only the blocks that differ and brings the backup's rows back.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEbr, waitFor } from '../helpers/env.js';
import { archivingCluster, postgresTempDir, type Cluster, type EbrSetup, startRestored as startRestoredIn } from '../postgres/cluster.js';

const tmp = postgresTempDir('ebr-pg-incr-');
let cluster: Cluster;
let setup: EbrSetup;
const restored: Cluster[] = [];
const mib = 1 << 20;

const ebr = (args: string[], timeoutMs = 300_000) => runEbr(['--config', setup.config, ...args], { timeoutMs });
async function json<T>(args: string[]): Promise<T> {
  const r = await ebr(['--json', ...args]);
  if (r.code !== 0) throw new Error(`ebr ${args.join(' ')} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as T;
}

interface BackupOut {
  backupId: string;
  type: string;
  parent?: string;
  blocks?: { changed: number; total: number };
  warnings?: string[];
}
interface RestoreOut {
  backupId: string;
  chain?: string[];
  notes: string[];
  delta?: { unchangedFiles: number; changedBlocks: number; totalBlocks: number };
}

/** What the cluster holds: row counts and a digest over every row of both tables. */
interface State {
  big: number;
  bigMd5: string;
  still: number;
  stillMd5: string;
}

async function state(c: Cluster): Promise<State> {
  const [r] = await c.query<State>(
    `SELECT (SELECT count(*)::int FROM big) AS big,
            (SELECT md5(string_agg(id::text || ':' || pad, ',' ORDER BY id)) FROM big) AS "bigMd5",
            (SELECT count(*)::int FROM still) AS still,
            (SELECT md5(string_agg(id::text || ':' || v, ',' ORDER BY id)) FROM still) AS "stillMd5"`,
  );
  return r!;
}

/** Bytes the target stores for a backup: every file under its directory. */
function storedBytes(id: string): number {
  const walk = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce((n, e) => {
      const p = path.join(dir, e.name);
      return n + (e.isDirectory() ? walk(p) : e.isFile() ? statSync(p).size : 0);
    }, 0);
  return walk(path.join(setup.backups, setup.instance, id));
}

/** Forces the current WAL segment out and waits until it is in the log archive. */
async function archiveCurrentWal(): Promise<void> {
  const [r] = await cluster.query<{ f: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS f');
  await waitFor(`WAL segment ${r!.f} in the log archive`, () => existsSync(path.join(setup.backups, setup.instance, 'wal', `${r!.f}.sha256`)) || undefined, 60_000, 200);
}

/** A moment strictly between what was committed before and what is committed after (server clock, UTC). */
async function moment(): Promise<string> {
  await new Promise((r) => setTimeout(r, 1100));
  const [{ t }] = (await cluster.query<{ t: string }>("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' AS t")) as [{ t: string }];
  await new Promise((r) => setTimeout(r, 1100));
  return t;
}

const startRestored = (dir: string) => startRestoredIn(dir, tmp.dir, restored);

/** Rewrites rows in place (new versions at the end of the table, old pages marked) and appends new ones. */
async function change(update: [number, number], insert: [number, number], del?: [number, number]): Promise<void> {
  await cluster.query(`UPDATE big SET pad = repeat(md5(random()::text), 30) WHERE id BETWEEN $1 AND $2`, update);
  await cluster.query(`INSERT INTO big SELECT g, repeat(md5((g * 7)::text), 30) FROM generate_series($1::int, $2::int) g`, insert);
  if (del) await cluster.query('DELETE FROM big WHERE id BETWEEN $1 AND $2', del);
}

const ids: Record<string, string> = {};
const states: Record<string, State> = {};
const moments: Record<string, string> = {};
/** Blocks of every file of the differential: what a delta restore compares. */
let diffBlocks = 0;

beforeAll(async () => {
  ({ cluster, setup } = await archivingCluster(tmp.dir));
  // 30 000 rows of ~1 KB (stored inline, uncompressed): a table file of about 30 MiB. Autovacuum stays off
  // on it and it is frozen before the full backup, so only the writes below change its pages.
  await cluster.query('CREATE TABLE big (id int PRIMARY KEY, pad text NOT NULL) WITH (autovacuum_enabled = off)');
  await cluster.query('INSERT INTO big SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, 30000) g');
  await cluster.query('CREATE TABLE still (id int PRIMARY KEY, v text NOT NULL) WITH (autovacuum_enabled = off)');
  await cluster.query("INSERT INTO still SELECT g, 'untouched ' || md5(g::text) FROM generate_series(1, 5000) g");
  await cluster.query('VACUUM (FREEZE, ANALYZE) big');
  await cluster.query('VACUUM (FREEZE, ANALYZE) still');
  await cluster.query('CHECKPOINT');
}, 180_000);

afterAll(async () => {
  for (const c of restored) await c.stop('immediate').catch(() => undefined);
  await cluster?.stop('immediate').catch(() => undefined);
  tmp.cleanup();
});

describe('PostgreSQL incremental and differential backups', () => {
  it('an incremental after a full stores only the changed blocks, and restores into a cluster with exactly its rows', async () => {
    const full = await json<BackupOut>(['backup', '--type', 'full']);
    expect(full.type).toBe('full');
    ids.full = full.backupId;

    await change([1000, 1400], [30001, 32000]);
    states.incr1 = await state(cluster);
    expect(states.incr1.big).toBe(32000);
    const incr1 = await json<BackupOut>(['backup', '--type', 'incr']);
    expect(incr1).toMatchObject({ type: 'incr', parent: ids.full });
    ids.incr1 = incr1.backupId;
    expect(incr1.blocks!.total).toBeGreaterThan(30);
    expect(incr1.blocks!.changed).toBeGreaterThan(0);
    expect(incr1.blocks!.changed).toBeLessThan(incr1.blocks!.total / 5);

    const fullBytes = storedBytes(ids.full);
    expect(fullBytes).toBeGreaterThan(30 * mib);
    expect(storedBytes(ids.incr1)).toBeLessThan(fullBytes / 5);

    // Nothing was written since the incr: the log archive ends at its moment.
    await archiveCurrentWal();
    const dir = path.join(tmp.dir, 'r-incr1');
    const r = await json<RestoreOut>(['restore', '--backup', ids.incr1, '--to', dir]);
    expect(r.backupId).toBe(ids.incr1);
    expect(r.chain).toEqual([ids.full]);
    const copy = await startRestored(dir);
    expect(await state(copy)).toEqual(states.incr1);
    const check = await copy.amcheck();
    expect(check.code, `${check.stdout}${check.stderr}`).toBe(0);
    await copy.stop();
  }, 600_000);

  it('a second incremental and a differential store little, the differential at least what the incrementals changed', async () => {
    await change([20000, 20300], [32001, 33000], [25000, 25500]);
    states.incr2 = await state(cluster);
    expect(states.incr2.big).toBe(33000 - 501);
    const incr2 = await json<BackupOut>(['backup', '--type', 'incr']);
    expect(incr2).toMatchObject({ type: 'incr', parent: ids.incr1 });
    ids.incr2 = incr2.backupId;
    moments.incr2 = await moment();

    await change([5000, 5200], [33001, 34000]);
    states.diff = await state(cluster);
    const diff = await json<BackupOut>(['backup', '--type', 'diff']);
    expect(diff).toMatchObject({ type: 'diff', parent: ids.full });
    ids.diff = diff.backupId;
    diffBlocks = diff.blocks!.total;
    moments.diff = await moment();
    await archiveCurrentWal();

    const sizes = { full: storedBytes(ids.full!), incr1: storedBytes(ids.incr1!), incr2: storedBytes(ids.incr2), diff: storedBytes(ids.diff) };
    console.log(`stored bytes: ${JSON.stringify(sizes)}; blocks: incr2 ${JSON.stringify(incr2.blocks)}, diff ${JSON.stringify(diff.blocks)}`);
    expect(sizes.incr2).toBeLessThan(sizes.full / 5);
    expect(sizes.diff).toBeLessThan(sizes.full / 3);
    expect(sizes.diff).toBeGreaterThan(Math.max(sizes.incr1, sizes.incr2));
    expect(diff.blocks!.changed).toBeGreaterThan(incr2.blocks!.changed);

    const list = await json<Array<{ id: string; type: string; parent: string | null }>>(['list']);
    expect(list.find((b) => b.id === ids.incr2)).toMatchObject({ type: 'incr', parent: ids.incr1 });
    expect(list.find((b) => b.id === ids.diff)).toMatchObject({ type: 'diff', parent: ids.full });
  }, 600_000);

  it('restores the second incremental (full ← incr ← incr) to a time after it: exactly the rows of that moment', async () => {
    const dir = path.join(tmp.dir, 'r-incr2-pitr');
    const r = await json<RestoreOut>(['restore', '--backup', ids.incr2!, '--to', dir, '--until', moments.incr2!]);
    expect(r.chain).toEqual([ids.full, ids.incr1].sort());
    expect(r.notes.join('\n')).toMatch(/up to/);
    const copy = await startRestored(dir);
    expect(await state(copy)).toEqual(states.incr2);
    await copy.stop();
  }, 600_000);

  it('restores the differential with every row, and a delta restore over that copy writes only the blocks its changes touched', async () => {
    const dir = path.join(tmp.dir, 'r-diff');
    const r = await json<RestoreOut>(['restore', '--backup', ids.diff!, '--to', dir]);
    expect(r.chain).toEqual([ids.full]);
    const copy = await startRestored(dir);
    expect(await state(copy)).toEqual(states.diff);
    // A few rows changed in the copy, then it is stopped: the data files differ from the backup in a few blocks.
    await copy.query("UPDATE big SET pad = 'changed in the copy' WHERE id IN (7, 15000, 33500)");
    await copy.query('DELETE FROM still WHERE id <= 10');
    await copy.query('CHECKPOINT');
    expect(await state(copy)).not.toEqual(states.diff);
    await copy.stop();

    const d = await json<RestoreOut>(['restore', '--backup', ids.diff!, '--to', dir, '--delta']);
    console.log(`delta: ${JSON.stringify(d.delta)}`);
    expect(d.delta).toBeDefined();
    expect(d.delta!.unchangedFiles).toBeGreaterThan(100);
    expect(d.delta!.changedBlocks).toBeGreaterThan(0);
    // Files that differ are compared block by block: the table file among them gets a few blocks, not all of them.
    expect(d.delta!.totalBlocks).toBeGreaterThan(30);
    expect(d.delta!.changedBlocks).toBeLessThan(diffBlocks / 20);
    const again = await startRestored(dir);
    expect(await state(again)).toEqual(states.diff);
    await again.stop();
  }, 600_000);

  it('restores in place into the stopped cluster with --delta and --until: only the blocks written since are replaced, the rows are the differential\'s', async () => {
    // Written after the moment the restore goes back to: these pages differ from the backup on disk.
    await cluster.query("UPDATE big SET pad = 'after the diff' WHERE id IN (100, 21000, 34000)");
    await cluster.query('INSERT INTO still VALUES (5001, \'after the diff\')');
    await archiveCurrentWal();
    expect(await state(cluster)).not.toEqual(states.diff);
    await cluster.stop();

    const d = await json<RestoreOut>(['restore', '--backup', ids.diff!, '--delta', '--until', moments.diff!]);
    console.log(`delta in place: ${JSON.stringify(d.delta)}`);
    expect(d.delta!.unchangedFiles).toBeGreaterThan(100);
    expect(d.delta!.changedBlocks).toBeGreaterThan(0);
    expect(d.delta!.changedBlocks).toBeLessThan(diffBlocks / 20);
    await cluster.mustStart();
    await cluster.waitPromoted();
    expect(await state(cluster)).toEqual(states.diff);
    const check = await cluster.amcheck();
    expect(check.code, `${check.stdout}${check.stderr}`).toBe(0);
  }, 600_000);
});

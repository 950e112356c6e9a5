/**
 * The PostgreSQL adapter at its own seam, against a real cluster: discovery, preflight, the window
 * (pg_backup_start/stop on one session), the wait for the stop segment, and a session that dies inside
 * the window.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAdapter } from '../../adapters/postgres/index.js';
import type { PostgresSettings } from '../../adapters/postgres/postgres-config.js';
import type { DbmsSession, InstanceContext } from '../../src/adapter-api.js';
import type { InstanceConfig } from '../../src/config/load.js';
import { EbrError } from '../../src/errors.js';
import { logStoreOf } from '../../src/workflow/context.js';
import type { Space } from '../../src/model.js';
import { waitFor } from '../helpers/env.js';
import { archivingCluster, mkdirForPostgres, postgresTempDir, type Cluster, type EbrSetup } from './cluster.js';

const tmp = postgresTempDir('ebr-pg-adapter-');
let cluster: Cluster;
let setup: EbrSetup;
let ctx: InstanceContext<PostgresSettings>;
let tsOid: number;
let oddOid: number;
const never = new AbortController().signal;

beforeAll(async () => {
  ({ cluster, setup } = await archivingCluster(tmp.dir));
  const ts = mkdirForPostgres(path.join(tmp.dir, 'ts1'));
  await cluster.query(`CREATE TABLESPACE ts1 LOCATION '${ts}'`);
  await cluster.query('CREATE DATABASE shop');
  await cluster.query('CREATE DATABASE "odd name" TABLESPACE ts1');
  await cluster.query('CREATE TABLE items (id int primary key, name text)', [], 'shop');
  await cluster.query("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 1000) g", [], 'shop');
  await cluster.query('CREATE TABLE t (x int)', [], 'odd name');
  tsOid = Number((await cluster.query<{ oid: string }>("SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'"))[0]!.oid);
  oddOid = Number((await cluster.query<{ oid: string }>("SELECT oid FROM pg_database WHERE datname = 'odd name'"))[0]!.oid);
  ctx = {
    name: 'pg',
    settings: postgresAdapter.configSchema.parse({ host: cluster.socketDir, port: cluster.port, archiveWaitMs: 30_000 }),
    resolvePath: (p) => path.resolve(tmp.dir, p),
    configFile: setup.config,
  };
});

afterAll(async () => {
  await cluster?.stop('immediate').catch(() => undefined);
  tmp.cleanup();
});

async function withSession<T>(fn: (s: DbmsSession) => Promise<T>, context = ctx): Promise<T> {
  const s = await postgresAdapter.connect(context, never);
  try {
    return await fn(s);
  } finally {
    await s[Symbol.asyncDispose]();
  }
}

describe('discovery', () => {
  let spaces: Space[];
  beforeAll(async () => {
    // Things a backup must leave out: ebr's own staging, temp files, a stale label.
    mkdirSync(path.join(cluster.data, '.ebr-staging-20260101T000000Z-abcd'));
    writeFileSync(path.join(cluster.data, '.ebr-staging-20260101T000000Z-abcd', 'x'), 'x');
    mkdirSync(path.join(cluster.data, 'base', 'pgsql_tmp'), { recursive: true });
    writeFileSync(path.join(cluster.data, 'base', 'pgsql_tmp', 'pgsql_tmp123.0'), 'tmp');
    writeFileSync(path.join(cluster.data, 'backup_label.old'), 'old');
    spaces = await withSession((s) => s.discover(never));
  });

  it('finds the cluster space, one space per database, and maps unsafe names', () => {
    const names = spaces.map((s) => s.name);
    expect(names[0]).toBe('cluster');
    expect(names).toEqual(expect.arrayContaining(['template0', 'template1', 'postgres', 'shop', `odd_name@${oddOid}`]));
    const byName = new Map(spaces.map((s) => [s.name, s]));
    expect(byName.get('cluster')!.critical).toBe(true);
    expect(byName.get('template1')!.critical).toBe(true);
    expect(byName.get('shop')!.critical).toBe(false);
    expect(byName.get(`odd_name@${oddOid}`)!.details).toMatchObject({ datname: 'odd name', oid: oddOid });
  });

  it('puts control file, config and commit logs in the cluster space, and no WAL', () => {
    const cl = spaces.find((s) => s.name === 'cluster')!;
    const names = new Set(cl.chunks.map((c) => c.name));
    for (const n of ['global/pg_control', 'PG_VERSION', 'postgresql.conf', 'pg_hba.conf', 'pg_xact/0000', 'pg_wal', 'pg_wal/archive_status', 'pg_replslot', 'base']) {
      expect(names.has(n), n).toBe(true);
    }
    expect([...names].filter((n) => n.startsWith('pg_wal/') && n !== 'pg_wal/archive_status')).toEqual([]);
    expect([...names].filter((n) => /postmaster|pgsql_tmp|\.ebr-staging-|backup_label/.test(n))).toEqual([]);
    expect(cl.chunks.find((c) => c.name === 'pg_wal')!.type).toBe('directory');
  });

  it('records pg_tblspc links as links and the tablespace files under the link name', () => {
    const cl = spaces.find((s) => s.name === 'cluster')!;
    const link = cl.chunks.find((c) => c.name === `pg_tblspc/${tsOid}`)!;
    expect(link.type).toBe('symlink');
    expect(link.linkTarget).toBe(path.join(tmp.dir, 'ts1'));
    const odd = spaces.find((s) => s.name === `odd_name@${oddOid}`)!;
    expect(odd.chunks.length).toBeGreaterThan(100);
    expect(odd.chunks.every((c) => new RegExp(`^pg_tblspc/${tsOid}/PG_\\d+_\\d+/${oddOid}(/|$)`).test(c.name))).toBe(true);
    const shop = spaces.find((s) => s.name === 'shop')!;
    expect(shop.chunks.every((c) => /^base\/\d+(\/|$)/.test(c.name))).toBe(true);
  });

  it('covers every file of the data directory exactly once, apart from what is left out by rule', () => {
    const seen = new Map<string, number>();
    for (const c of spaces.flatMap((s) => s.chunks)) seen.set(c.name, (seen.get(c.name) ?? 0) + 1);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    const missing: string[] = [];
    const walk = (dir: string, rel: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const name = rel ? `${rel}/${e.name}` : e.name;
        if (/^(postmaster\.(pid|opts)|backup_label\.old|pg_wal\/0|base\/pgsql_tmp|\.ebr-staging-|pg_stat_tmp\/|pg_subtrans\/|pg_notify\/)|\/pg_internal\.init$/.test(name)) continue;
        if (!seen.has(name)) missing.push(name);
        if (e.isDirectory()) walk(path.join(dir, e.name), name);
      }
    };
    walk(cluster.data, '');
    expect(missing).toEqual([]);
  });
});

describe('preflight', () => {
  it('passes when archive_command pushes into this instance', async () => {
    await withSession((s) => s.preflight!(never));
  });

  it('names the exact setting when archive_command does not call ebr wal push', async () => {
    await cluster.query("ALTER SYSTEM SET archive_command = 'cp %p /nowhere/%f'");
    await cluster.query('SELECT pg_reload_conf()');
    await new Promise((r) => setTimeout(r, 300));
    try {
      const err = (await withSession((s) => s.preflight!(never)).catch((e: unknown) => e)) as EbrError;
      expect(err).toBeInstanceOf(EbrError);
      expect(err.code).toBe('logArchive');
      expect(err.message).toMatch(/archive_command does not call `ebr wal push`/);
      expect(err.hint).toContain(`archive_command = '${process.execPath}`);
      expect(err.hint).toContain(`wal push --instance pg %p'`);
      expect(err.hint).toContain(setup.config);
    } finally {
      await cluster.query('ALTER SYSTEM RESET archive_command');
      await cluster.query('SELECT pg_reload_conf()');
    }
  });

  it('refuses an archive_command that pushes for another instance', async () => {
    await withSession(async (s) => {
      const other = { ...ctx, name: 'other' };
      const s2 = await postgresAdapter.connect(other, never);
      try {
        await expect(s2.preflight!(never)).rejects.toThrow(/pushes WAL for instance pg, not other/);
      } finally {
        await s2[Symbol.asyncDispose]();
      }
      await s.preflight!(never);
    });
  });
});

describe('the window', () => {
  it('returns backup_label, tablespace_map and the WAL range, and waits for the stop segment in the log store', async () => {
    const store = logStoreOf({ name: 'pg', target: { type: 'tar', path: setup.backups } } as unknown as InstanceConfig, 'wal');
    const meta = await withSession(
      async (s) => {
        await s.checkpoint(never);
        const token = await s.block(never);
        await cluster.query('INSERT INTO items VALUES (5000, $1)', ['during the window'], 'shop');
        const m = await s.unblock(token);
        await s.afterRelease!(m, never);
        return m;
      },
      { ...ctx, logStore: () => store },
    );
    const label = String(meta.files!.backup_label);
    expect(label).toMatch(/^START WAL LOCATION: [0-9A-F]+\/[0-9A-F]+ \(file [0-9A-F]{24}\)$/m);
    expect(label).toMatch(/^LABEL: ebr pg /m);
    expect(String(meta.files!.tablespace_map)).toBe(`${tsOid} ${path.join(tmp.dir, 'ts1')}\n`);
    expect(meta.timeline).toBe(1);
    expect(meta.logStart).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(meta.logEnd).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    const stop = String(meta.details!.stopWalFile);
    expect(await store.has(stop)).toBe(true);
    expect(await store.has(String(meta.details!.startWalFile))).toBe(true);
    // The backup history file is archived after the stop segment (the archiver takes names in order); it arrives shortly.
    await waitFor('the .backup history file in the log store', async () => (await store.list()).some((l) => l.name.endsWith('.backup')) || undefined, 20_000);
  });

  it('without the log store, waits until the server has archived the stop segment', async () => {
    const meta = await withSession(async (s) => {
      const token = await s.block(never);
      const m = await s.unblock(token);
      await s.afterRelease!(m, never);
      return m;
    });
    const stop = String(meta.details!.stopWalFile);
    expect(existsSync(path.join(setup.backups, 'pg', 'wal', stop))).toBe(true);
  });

  it('lists the files again once the backup has started, so a table made after discovery is in the backup', async () => {
    await withSession(async (s) => {
      const before = await s.discover(never);
      await cluster.query('CREATE TABLE made_late AS SELECT generate_series(1, 1000) AS x', [], 'shop');
      const [{ file }] = (await cluster.query<{ file: string }>("SELECT pg_relation_filepath('made_late') AS file", [], 'shop')) as [{ file: string }];
      const token = await s.block(never);
      try {
        expect(before.flatMap((sp) => sp.chunks).some((c) => c.name === file)).toBe(false);
        const shop = token.spaces!.find((sp) => sp.name === 'shop')!;
        expect(shop.chunks.some((c) => c.name === file)).toBe(true);
        expect(token.spaces!.map((sp) => sp.name)).toEqual(before.map((sp) => sp.name));
      } finally {
        await s.unblock(token);
      }
    });
  });

  it('reports a session that died inside the window, and the server is left with no backup running', async () => {
    const s = await postgresAdapter.connect(ctx, never);
    try {
      const token = await s.block(never);
      const [victim] = await cluster.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE application_name = 'ebr pg'");
      await cluster.query('SELECT pg_terminate_backend($1)', [victim!.pid]);
      const err = (await s.unblock(token).catch((e: unknown) => e)) as EbrError;
      expect(err).toBeInstanceOf(EbrError);
      expect(err.message).toMatch(/session of the backup was lost|terminat/);
    } finally {
      await s[Symbol.asyncDispose]();
    }
    expect(await cluster.query("SELECT pid FROM pg_stat_activity WHERE application_name = 'ebr pg'")).toEqual([]);
    // A new backup starts and stops cleanly.
    await withSession(async (s2) => {
      const t = await s2.block(never);
      await s2.unblock(t);
    });
  });

  it('fails preflight clearly when archive_mode is off', async () => {
    await cluster.query('ALTER SYSTEM SET archive_mode = off');
    await cluster.stop();
    await cluster.mustStart();
    try {
      const err = (await withSession((s) => s.preflight!(never)).catch((e: unknown) => e)) as EbrError;
      expect(err.code).toBe('logArchive');
      expect(err.message).toMatch(/archive_mode is off/);
      expect(err.hint).toMatch(/archive_mode = on and archive_command = '.*wal push --instance pg %p'/);
    } finally {
      await cluster.query('ALTER SYSTEM RESET archive_mode');
      await cluster.stop();
      await cluster.mustStart();
    }
  });

  it('fails to connect with a hint naming the socket and port', async () => {
    const bad = { ...ctx, settings: { ...ctx.settings, port: 1 } };
    const err = (await postgresAdapter.connect(bad, never).catch((e: unknown) => e)) as EbrError;
    expect(err.code).toBe('connect');
    expect(err.hint).toMatch(/listens on the socket in .* port 1/);
  });
});

/**
 * The Oracle adapter in-process against the stand-in (no Oracle server runs here): discovery, the
 * ARCHIVELOG refusal, the window exactly as planBackup lists it, unblock on failure and abort,
 * endBlock, and the errors for a missing driver, an unreachable host and a missing grant.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import type { Space } from '../../src/adapter-api.js';
import { EbrError } from '../../src/errors.js';
import { holdWindow } from '../../src/workflow/block-window.js';
import type { SnapshotProvider } from '../../src/snapshot/snapshot-provider.js';
import { oracleAdapter } from '../../adapters/oracle/index.js';
import { oracleConfigSchema } from '../../adapters/oracle/oracle-config.js';
import { tempDir } from '../helpers/env.js';
import { startOracleDouble, type OracleDouble } from './double/index.js';
import { instanceOf, never, useDouble } from './helpers.js';

const tmp = tempDir('ebr-oracle-adapter-');
let db: OracleDouble;
let n = 0;

beforeEach(() => {
  db = startOracleDouble(`${tmp.dir}/${++n}`.replace(/\/(\d+)$/, (_, x) => `/db${x}`), {});
  useDouble(db);
});
afterAll(() => tmp.cleanup());

async function rejection(p: Promise<unknown>): Promise<EbrError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(EbrError);
  return err as EbrError;
}

/** A snapshot provider that does nothing, fails, or waits until aborted. */
function provider(mode: 'ok' | 'fail' | 'hang'): SnapshotProvider {
  return {
    kind: 'test',
    async check() {},
    async take(_req, signal) {
      if (mode === 'fail') throw new EbrError('snapshot', 'the volume refused the snapshot');
      if (mode === 'hang') await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
      return { resources: [], pathOf: (c: { path: string }) => c.path, release: async () => undefined } as never;
    },
    async removeLeftover() {},
  };
}

describe('config', () => {
  it('refuses an unknown key and needs connectString, user and password', () => {
    expect(oracleConfigSchema.safeParse({ connectString: 'h/s', user: 'u', password: 'p', sqlpus: 'x' }).success).toBe(false);
    expect(oracleConfigSchema.safeParse({ connectString: 'h/s', user: 'u' }).success).toBe(false);
    expect(oracleConfigSchema.safeParse({ connectString: 'h/s', user: 'u', password: 'p' }).success).toBe(true);
  });
});

describe('discovery', () => {
  it('lists tablespaces with their datafiles, flags SYSTEM, SYSAUX and the undo tablespace in use, leaves temp files out and records control files, redo and spfile', async () => {
    await using session = await oracleAdapter.connect(instanceOf(db), never);
    const spaces = await session.discover(never);
    const byName = new Map(spaces.map((s) => [s.name, s]));
    expect([...byName.keys()].sort()).toEqual(['APP', 'SYSAUX', 'SYSTEM', 'UNDOTBS1', 'USERS']);
    expect(spaces.filter((s) => s.critical).map((s) => s.name).sort()).toEqual(['SYSAUX', 'SYSTEM', 'UNDOTBS1']);
    expect(byName.get('USERS')!.chunks.map((c) => c.path)).toEqual([db.datafile('USERS', 0), db.datafile('USERS', 1)]);
    expect(byName.get('USERS')!.chunks.map((c) => c.name)).toEqual(['USERS/4_users01.dbf', 'USERS/5_users02.dbf']);
    expect(byName.get('USERS')!.chunks[0]!.size).toBe(readFileSync(db.datafile('USERS')).length);
    expect(spaces.flatMap((s) => s.chunks).some((c) => c.path.includes('temp01'))).toBe(false);
    const system = byName.get('SYSTEM')!;
    expect(system.details?.controlFiles).toEqual([...db.state().controlfiles].sort());
    expect(system.details?.spfile).toBe(db.state().spfile);
    expect(system.notes!.join('\n')).toMatch(/redo01\.log/);
    expect(system.notes!.join('\n')).toMatch(/temp files left out.*temp01\.dbf/);
  });

  it('changes the critical flag with UNDO_TABLESPACE', async () => {
    db.update((s) => {
      s.undoTablespace = 'APP';
    });
    await using session = await oracleAdapter.connect(instanceOf(db), never);
    const spaces = await session.discover(never);
    expect(spaces.filter((s) => s.critical).map((s) => s.name).sort()).toEqual(['APP', 'SYSAUX', 'SYSTEM']);
  });
});

describe('preflight', () => {
  it('refuses NOARCHIVELOG with the exact fix', async () => {
    db.update((s) => {
      s.logMode = 'NOARCHIVELOG';
    });
    await using session = await oracleAdapter.connect(instanceOf(db), never);
    const err = await rejection(session.preflight!(never));
    expect(err.message).toMatch(/NOARCHIVELOG/);
    expect(err.hint).toContain('SHUTDOWN IMMEDIATE; STARTUP MOUNT; ALTER DATABASE ARCHIVELOG; ALTER DATABASE OPEN;');
    expect(err.context.host).toBe('dbhost:1521/ORCLCDB');
  });

  it('passes in ARCHIVELOG mode', async () => {
    await using session = await oracleAdapter.connect(instanceOf(db), never);
    await session.preflight!(never);
  });
});

describe('the window', () => {
  async function run(mode: 'ok' | 'fail' | 'hang', settings = {}) {
    const instance = instanceOf(db, settings);
    db.clearLogs();
    const session = await oracleAdapter.connect(instance, never);
    let spaces: Space[] = [];
    const ac = new AbortController();
    try {
      spaces = await session.discover(never);
      await session.checkpoint(never);
      if (mode === 'hang') setTimeout(() => ac.abort(new Error('SIGTERM')), 300);
      const w = await holdWindow({ session, provider: provider(mode), requestFor: () => ({ backupId: 'b1', chunks: spaces.flatMap((s) => s.chunks), volumes: [], journal: undefined as never }), maxBlockMs: 10_000, signal: ac.signal, context: { instance: 'orcl', backupId: 'b1' } });
      await session.afterRelease!(w.meta, never);
      return { meta: w.meta, plan: oracleAdapter.planBackup(instance, spaces) };
    } finally {
      await session[Symbol.asyncDispose]();
    }
  }

  it('sends exactly what planBackup lists: BEGIN BACKUP … END BACKUP, ARCHIVE LOG CURRENT, the control-file backup, then the log sync', async () => {
    const { meta, plan } = await run('ok');
    const sent = db.statements();
    expect(sent).toEqual(plan.filter((p) => p.kind === 'sql').map((p) => p.text));
    const i = (s: string) => sent.findIndex((x) => x.startsWith(s));
    expect(i('ALTER SYSTEM CHECKPOINT')).toBeLessThan(i('ALTER DATABASE BEGIN BACKUP'));
    expect(i('ALTER DATABASE BEGIN BACKUP')).toBeLessThan(i('ALTER DATABASE END BACKUP'));
    expect(i('ALTER DATABASE END BACKUP')).toBeLessThan(i('ALTER SYSTEM ARCHIVE LOG CURRENT'));
    expect(i('ALTER SYSTEM ARCHIVE LOG CURRENT')).toBeLessThan(i('ALTER DATABASE BACKUP CONTROLFILE'));
    expect(plan.map((p) => p.phase)).toEqual(expect.arrayContaining(['connect', 'discover', 'checkpoint', 'acquire', 'release', 'after-release']));
    // Backup mode is over, the log range covers the log current at BEGIN BACKUP through the one archived after END BACKUP.
    expect(Object.values(db.state().backup).every((b) => b.status === 'NOT ACTIVE')).toBe(true);
    expect(meta.logStart).toBe('1:7');
    expect(meta.logEnd).toBe('1:7');
    expect(JSON.parse(String(meta.files!['control.bkp'])).kind).toBe('oracle-double backup controlfile');
    expect(meta.details?.startScn).toBeDefined();
  });

  it('with crashConsistentSnapshot sends no backup mode and records the snapshot time, still as planned', async () => {
    const { meta, plan } = await run('ok', { crashConsistentSnapshot: true });
    const sent = db.statements();
    expect(sent).toEqual(plan.filter((p) => p.kind === 'sql').map((p) => p.text));
    expect(sent.some((s) => s.includes('BEGIN BACKUP') || s.includes('END BACKUP'))).toBe(false);
    expect(typeof meta.details?.snapshotTime).toBe('string');
  });

  it('ends backup mode when the snapshot fails', async () => {
    const err = await rejection(run('fail'));
    expect(err.message).toMatch(/refused the snapshot/);
    const sent = db.statements();
    expect(sent.indexOf('ALTER DATABASE END BACKUP')).toBeGreaterThan(sent.indexOf('ALTER DATABASE BEGIN BACKUP'));
    expect(Object.values(db.state().backup).every((b) => b.status === 'NOT ACTIVE')).toBe(true);
  });

  it('ends backup mode when the backup is cancelled inside the window', async () => {
    await rejection(run('hang'));
    expect(db.statements()).toContain('ALTER DATABASE END BACKUP');
    expect(Object.values(db.state().backup).every((b) => b.status === 'NOT ACTIVE')).toBe(true);
  });

  it('gives the watchdog `ebr release --instance` as its release command', async () => {
    await using session = await oracleAdapter.connect(instanceOf(db), never);
    expect(session.releaseCommand!()).toEqual(['/usr/bin/node', '/opt/ebr/main.js', '--config', '/etc/ebr.yaml', 'release', '--instance', 'orcl']);
  });
});

describe('endBlock', () => {
  it('ends backup mode a dead ebr left ACTIVE, and is a no-op otherwise', async () => {
    const instance = instanceOf(db);
    const session = await oracleAdapter.connect(instance, never);
    await session.discover(never);
    await session.block(never);
    // ebr "dies": the session goes, backup mode stays (it is server state).
    await session[Symbol.asyncDispose]();
    expect(Object.values(db.state().backup).some((b) => b.status === 'ACTIVE')).toBe(true);
    db.clearLogs();
    expect(await oracleAdapter.endBlock!(instance, never)).toBe('ended');
    expect(db.statements()).toEqual(["SELECT FILE#, CHANGE# FROM V$BACKUP WHERE STATUS = 'ACTIVE' ORDER BY FILE#", 'ALTER DATABASE END BACKUP']);
    expect(Object.values(db.state().backup).every((b) => b.status === 'NOT ACTIVE')).toBe(true);
    db.clearLogs();
    expect(await oracleAdapter.endBlock!(instance, never)).toBe('none');
    expect(db.statements()).toEqual(["SELECT FILE#, CHANGE# FROM V$BACKUP WHERE STATUS = 'ACTIVE' ORDER BY FILE#"]);
  });
});

describe('errors', () => {
  it('a missing driver names the driver and how to install it', async () => {
    process.env.EBR_DRIVER_ORACLEDB = `${tmp.dir}/no-such-driver.mjs`;
    const err = await rejection(oracleAdapter.connect(instanceOf(db), never));
    expect(err.code).toBe('connect');
    expect(err.message).toContain('no-such-driver.mjs');
    expect(err.hint).toMatch(/EBR_DRIVER_ORACLEDB/);
    expect(err.context.host).toBe('dbhost:1521/ORCLCDB');
  });

  it('the adapter module imports neither the driver nor its session, logs or restorer modules statically', () => {
    const src = readFileSync(new URL('../../adapters/oracle/oracle-adapter.ts', import.meta.url), 'utf8');
    expect(src).not.toMatch(/from ['"]oracledb['"]|from '\.\/oracle-(session|connection|restorer|logs)\.js'/);
  });

  it('an unreachable host names the host and says to check the listener', async () => {
    const err = await rejection(oracleAdapter.connect(instanceOf(db, { connectString: 'nowhere:1521/ORCL' }), never));
    expect(err.code).toBe('connect');
    expect(err.message).toContain('nowhere:1521/ORCL');
    expect(err.hint).toMatch(/listener/);
    expect(err.context.oracleError).toBe('NJS-503');
  });

  it('a wrong password names the user and the host', async () => {
    const err = await rejection(oracleAdapter.connect(instanceOf(db, { password: 'wrong' }), never));
    expect(err.message).toMatch(/refused user ebr as SYSBACKUP/);
    expect(err.context.host).toBe('dbhost:1521/ORCLCDB');
  });

  it('a missing SELECT grant names the statement and the view to grant', async () => {
    db.update((s) => {
      s.denied = ['V$DATABASE'];
    });
    const err = await rejection(oracleAdapter.connect(instanceOf(db), never));
    expect(err.context.statement).toBe('SELECT DBID, NAME, LOG_MODE, OPEN_MODE, DATABASE_ROLE, RESETLOGS_CHANGE# FROM V$DATABASE');
    expect(err.context.host).toBe('dbhost:1521/ORCLCDB');
    expect(err.message).toContain('ORA-00942');
    expect(err.hint).toContain('GRANT SELECT ON V_$DATABASE TO ebr');
  });

  it('a missing ALTER DATABASE privilege names BEGIN BACKUP and SYSBACKUP', async () => {
    db.update((s) => {
      s.denied = ['ALTER DATABASE BEGIN BACKUP'];
    });
    await using session = await oracleAdapter.connect(instanceOf(db), never);
    await session.discover(never);
    const err = await rejection(session.block(never));
    expect(err.context.statement).toBe('ALTER DATABASE BEGIN BACKUP');
    expect(err.message).toContain('ORA-01031');
    expect(err.hint).toMatch(/SYSBACKUP.*GRANT ALTER DATABASE TO ebr/);
  });

  it('BEGIN BACKUP while a file is still in backup mode points at ebr release', async () => {
    await using session = await oracleAdapter.connect(instanceOf(db), never);
    await session.discover(never);
    await session.block(never);
    const err = await rejection(session.block(never));
    expect(err.message).toContain('ORA-01146');
    expect(err.hint).toMatch(/ebr release/);
  });
});

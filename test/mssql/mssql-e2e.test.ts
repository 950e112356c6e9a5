/**
 * The mssql adapter through the built CLI against the SQL Server stand-in (test/mssql/double): the
 * statements of a backup in order and as planBackup lists them, the group form, a session lost
 * inside the window, an error hidden in an info message, log sync, and full, point-in-time and
 * partial restores compared with Restorer.plan. No SQL Server ran here.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mssqlAdapter } from '../../adapters/mssql/index.js';
import { mssqlConfigSchema } from '../../adapters/mssql/mssql-config.js';
import { runEbr, tempDir } from '../helpers/env.js';
import { startMssqlDouble, type MssqlDouble } from './double/index.js';

const tmp = tempDir('ebr-mssql-');
afterAll(() => tmp.cleanup());

function setup(name: string, o: Parameters<typeof startMssqlDouble>[1] = {}) {
  const dir = path.join(tmp.dir, name);
  const double = startMssqlDouble(dir, o);
  const config = path.join(dir, 'ebr.yaml');
  writeFileSync(
    config,
    [`catalog: ${path.join(dir, 'catalog.db')}`, 'instances:', '  sql:', ...double.instanceYaml, `    snapshot: { provider: copy, staging: ${path.join(dir, 'staging')} }`, `    target: { type: tar, path: ${path.join(dir, 'backups')} }`, ''].join('\n'),
  );
  const ebr = (args: string[]) => runEbr(['--config', config, '--json', ...args], { env: double.env });
  const settings = mssqlConfigSchema.parse({ server: '127.0.0.1', port: 14330, user: 'ebr', password: 'double-secret', databases: o.backup ?? Object.keys(o.databases ?? { shop: {} }), backupDir: double.backupDir, options: { encrypt: false } });
  const instance = { name: 'sql', settings, resolvePath: (p: string) => path.resolve(dir, p) };
  return { dir, double, config, ebr, instance };
}
const sqlOf = (steps: Array<{ kind: string; text: string }>) => steps.filter((s) => s.kind === 'sql').map((s) => s.text);
const ok = (r: { code: number; stdout: string; stderr: string }) => {
  if (r.code !== 0) throw new Error(`ebr failed (${r.code}): ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout);
};

describe('one database', () => {
  let t: ReturnType<typeof setup>;
  let d: MssqlDouble;
  beforeAll(() => {
    t = setup('single');
    d = t.double;
    for (let i = 1; i <= 5; i++) d.write('shop', `order ${i}`);
    d.write('shop', 'archived 1', 'ARCHIVE');
  });

  it('discovers filegroups and the log, PRIMARY and the log critical', async () => {
    const out = ok(await t.ebr(['spaces']));
    const spaces = (out.spaces ?? out) as Array<{ name: string; critical: boolean; kind: string }>;
    const byName = Object.fromEntries(spaces.map((s) => [s.name, s]));
    expect(Object.keys(byName).sort()).toEqual(['shop.ARCHIVE', 'shop.PRIMARY', 'shop.log']);
    expect(byName['shop.PRIMARY']!.critical).toBe(true);
    expect(byName['shop.log']!.critical).toBe(true);
    expect(byName['shop.ARCHIVE']!.critical).toBe(false);
  });

  let backupId: string;
  let afterBackup: number;
  it('backs up with SUSPEND ON, the snapshot, BACKUP … METADATA_ONLY — exactly what planBackup lists', async () => {
    d.clearStatements();
    const out = ok(await t.ebr(['backup']));
    backupId = out.backupId;
    const sent = d.sent();
    const sql = sent.map((x) => x.sql);
    expect(sql).toEqual(sqlOf(mssqlAdapter.planBackup(t.instance as never, [])));
    expect(sql.indexOf('ALTER DATABASE [shop] SET SUSPEND_FOR_SNAPSHOT_BACKUP = ON')).toBeLessThan(sql.findIndex((s) => s.startsWith('BACKUP DATABASE [shop]') && s.includes('METADATA_ONLY')));
    // One session from start to end: the freeze belongs to it.
    expect(new Set(sent.map((x) => x.spid)).size).toBe(1);
    expect(Object.values(d.state().databases).every((db: any) => db.suspendedBy === null)).toBe(true);
    expect(d.state().backupset.filter((b) => b.type === 'D')).toHaveLength(1);
    afterBackup = Date.now();
  });

  let midpoint: string;
  it('log sync backs up the log into the archive with its LSN range, and list shows it', async () => {
    d.write('shop', 'order 6');
    await new Promise((r) => setTimeout(r, 30));
    midpoint = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 30));
    d.write('shop', 'order 7');
    const sync = ok(await t.ebr(['log', 'sync', '--instance', 'sql']));
    expect(JSON.stringify(sync)).toMatch(/shop\.\d+.*\.trn/);
    expect(d.statements().some((s) => /^BACKUP LOG \[shop\] TO DISK = N'.*\.trn' WITH FORMAT/.test(s))).toBe(true);
    const list = JSON.stringify(ok(await t.ebr(['log', 'list', '--instance', 'sql'])));
    const row = d.state().backupset.find((b) => b.type === 'L')!;
    expect(list).toContain(String(row.first_lsn));
    expect(list).toContain(String(row.last_lsn));
    expect(afterBackup).toBeGreaterThan(0);
  });

  it('restores to a point in time: offline, files back, RESTORE … METADATA_ONLY, RESTORE LOG … STOPAT, as Restorer.plan said', async () => {
    d.write('shop', 'order 8 after the log backup');
    const dry = await t.ebr(['restore', '--instance', 'sql', '--until', midpoint, '--dry-run']);
    const planned = sqlOf(ok(dry).steps);
    d.clearStatements();
    ok(await t.ebr(['restore', '--instance', 'sql', '--until', midpoint]));
    const sql = d.statements();
    expect(sql[0]).toBe("IF DB_ID(N'shop') IS NOT NULL ALTER DATABASE [shop] SET OFFLINE WITH ROLLBACK IMMEDIATE");
    expect(sql[1]).toMatch(/^RESTORE DATABASE \[shop\] FROM DISK = N'.*\.bkm' WITH METADATA_ONLY, REPLACE, NORECOVERY$/);
    expect(sql[2]).toMatch(/^RESTORE LOG \[shop\] FROM DISK = N'.*\.trn' WITH STOPAT = N'.*', RECOVERY$/);
    expect(sql).toHaveLength(3);
    expect(sql).toEqual(planned);
    expect(d.rows('shop')).toEqual(['order 1', 'order 2', 'order 3', 'order 4', 'order 5', 'order 6']);
    expect(d.state().databases.shop.state).toBe('ONLINE');
  });

  it('refuses a partial restore of a critical filegroup, and restores one filegroup with PRIMARY and the log', async () => {
    const refused = await t.ebr(['restore', '--instance', 'sql', '--partial', 'shop.PRIMARY']);
    expect(refused.code).toBe(2);
    d.clearStatements();
    ok(await t.ebr(['restore', '--instance', 'sql', '--partial', 'shop.ARCHIVE']));
    const sql = d.statements();
    expect(sql[1]).toMatch(/^RESTORE DATABASE \[shop\] FILEGROUP = N'PRIMARY', FILEGROUP = N'ARCHIVE' FROM DISK = N'.*' WITH METADATA_ONLY, PARTIAL, REPLACE, NORECOVERY$/);
    expect(sql.at(-1)).toMatch(/^RESTORE LOG \[shop\] .* WITH RECOVERY$/);
    expect(d.rows('shop', 'ARCHIVE')).toEqual(['archived 1']);
    expect(backupId).toBeTruthy();
  });
});

describe('a restore that fails', () => {
  it('before any RESTORE ran: the old files are back and the database is online again', async () => {
    const t = setup('undo');
    const d = t.double;
    d.write('shop', 'order 1');
    ok(await t.ebr(['backup', '--instance', 'sql']));
    d.write('shop', 'order 2 after the backup');
    const before = d.rows('shop');
    // One byte of the archived primary data file changed: its digest no longer matches the catalog's.
    const archived = filesUnder(path.join(t.dir, 'backups')).filter((f) => readFileSync(f).includes('order 1'));
    expect(archived.length).toBeGreaterThan(0);
    for (const f of archived) writeFileSync(f, readFileSync(f, 'latin1').replace('order 1', 'order X'), 'latin1');
    d.clearStatements();
    const r = await t.ebr(['restore', '--instance', 'sql']);
    expect(r.code, r.stdout).toBe(1);
    expect(d.statements()).toEqual(["IF DB_ID(N'shop') IS NOT NULL ALTER DATABASE [shop] SET OFFLINE WITH ROLLBACK IMMEDIATE", "IF DB_ID(N'shop') IS NOT NULL ALTER DATABASE [shop] SET ONLINE"]);
    expect(d.state().databases.shop.state).toBe('ONLINE');
    expect(d.rows('shop')).toEqual(before);
  });
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

describe('several databases', () => {
  it('suspends them together with the group form and BACKUP GROUP', async () => {
    const t = setup('group', { databases: { shop: {}, sales: {} } });
    t.double.write('sales', 'sale 1');
    ok(await t.ebr(['backup']));
    const sql = t.double.statements();
    expect(sql).toContain('ALTER SERVER CONFIGURATION SET SUSPEND_FOR_SNAPSHOT_BACKUP = ON (GROUP = ([shop], [sales]))');
    expect(sql.some((s) => /^BACKUP GROUP \[shop\], \[sales\] TO DISK = N'.*-group\.bkm' WITH METADATA_ONLY/.test(s))).toBe(true);
    expect(sql).toEqual(sqlOf(mssqlAdapter.planBackup(t.instance as never, [])));
    // A full restore of a group backup names each database in the .bkm.
    t.double.write('sales', 'sale 2 after');
    t.double.clearStatements();
    ok(await t.ebr(['restore', '--instance', 'sql']));
    expect(t.double.statements().filter((s) => s.includes('METADATA_ONLY')).every((s) => s.includes('DBNAME = N'))).toBe(true);
    expect(t.double.rows('sales')).toEqual(['sale 1']);
  });
});

describe('failures inside the window', () => {
  it('a session dropped inside the window fails the backup, and nothing is recorded', async () => {
    const t = setup('dropped');
    t.double.update((s) => void (s.faults.dropSessionAfter = 'IsDatabaseSuspendedForSnapshotBackup'));
    const r = await t.ebr(['backup']);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/session .*(lost|ended)/i);
    expect(t.double.statements().some((s) => s.startsWith('BACKUP DATABASE'))).toBe(false);
    expect(t.double.state().backupset).toHaveLength(0);
  });

  it('an error reported only as an info message fails the step, and the freeze is ended with SUSPEND … OFF', async () => {
    const t = setup('info');
    t.double.update((s) => void (s.faults.infoErrorOn = 'WITH METADATA_ONLY'));
    const r = await t.ebr(['backup']);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain('There is not enough space on the disk');
    expect(t.double.statements().at(-1)).toBe('ALTER DATABASE [shop] SET SUSPEND_FOR_SNAPSHOT_BACKUP = OFF');
    expect(t.double.state().databases.shop.suspendedBy).toBeNull();
  });

  it('a failed suspend check ends the freeze before block gives up', async () => {
    const t = setup('check');
    t.double.update((s) => void (s.faults.failOn = { match: 'SuspendedDatabaseCount', number: 208, message: "Invalid object name 'x'." }));
    const r = await t.ebr(['backup']);
    expect(r.code).toBe(1);
    expect(t.double.statements().at(-1)).toBe('ALTER DATABASE [shop] SET SUSPEND_FOR_SNAPSHOT_BACKUP = OFF');
  });

  it('unblock with a failed outcome or after cancellation sends SUSPEND … OFF, not BACKUP', async () => {
    const t = setup('abort');
    process.env.EBR_DRIVER_MSSQL = t.double.env.EBR_DRIVER_MSSQL;
    process.env.EBR_MSSQL_DOUBLE_STATE = t.double.env.EBR_MSSQL_DOUBLE_STATE;
    const ac = new AbortController();
    const session = await mssqlAdapter.connect(t.instance as never, ac.signal);
    try {
      const token = await session.block(ac.signal);
      ac.abort();
      await session.unblock(token);
    } finally {
      await session[Symbol.asyncDispose]();
    }
    expect(t.double.statements().at(-1)).toBe('ALTER DATABASE [shop] SET SUSPEND_FOR_SNAPSHOT_BACKUP = OFF');
    expect(t.double.state().backupset).toHaveLength(0);
  });
});

describe('errors that say what to fix', () => {
  it('a missing driver names the driver and the variable', async () => {
    const t = setup('nodriver');
    const r = await runEbr(['--config', t.config, 'backup'], { env: { ...t.double.env, EBR_DRIVER_MSSQL: path.join(t.dir, 'missing.mjs') } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot load the driver .*missing\.mjs/);
    expect(r.stderr).toContain('EBR_DRIVER_MSSQL');
  });

  it('an unreachable host names host and port', async () => {
    const t = setup('unreachable');
    t.double.update((s) => void (s.port = 14999));
    const r = await runEbr(['--config', t.config, 'backup'], { env: t.double.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('127.0.0.1:14330');
    expect(r.stderr).toMatch(/hint:.*server\/port/);
  });

  it('a missing permission names the host, the statement and the grant', async () => {
    const t = setup('noperm', { login: { sysadmin: false, alterAnyDatabase: false, backup: true } });
    const r = await runEbr(['--config', t.config, 'backup'], { env: t.double.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('127.0.0.1:14330');
    expect(r.stderr).toContain('ALTER DATABASE [shop] SET SUSPEND_FOR_SNAPSHOT_BACKUP = ON');
    expect(r.stderr).toMatch(/ALTER ANY DATABASE/);
    expect(r.stderr).toMatch(/db_backupoperator/);
  });

  it('the config refuses unknown keys and system databases', () => {
    const base = { server: 'h', user: 'u', databases: ['shop'] };
    expect(mssqlConfigSchema.safeParse({ ...base, servr: 'x' }).success).toBe(false);
    expect(mssqlConfigSchema.safeParse({ ...base, databases: ['msdb'] }).success).toBe(false);
    expect(mssqlConfigSchema.safeParse(base).success).toBe(true);
  });
});

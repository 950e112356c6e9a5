/**
 * Oracle end to end through the built CLI (`npm run build` first) against the stand-in: backup with
 * the statements compared to `backup --dry-run`, `ebr log sync|list`, `ebr release`, and restores —
 * whole database, --until, one tablespace online — with the scripts the SQL*Plus stand-in received
 * compared to `restore --dry-run`. No Oracle server is involved.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEbr, tempDir, type RunResult } from '../helpers/env.js';
import { startOracleDouble, type OracleDouble } from './double/index.js';
import { writeInstanceConfig } from '../helpers/config-file.js';

const tmp = tempDir('ebr-oracle-e2e-');
let db: OracleDouble;
let config: string;

const ebr = (args: string[]) => runEbr(['--config', config, ...args], { env: db.env, timeoutMs: 120_000 });
const json = <T>(r: RunResult): T => {
  if (r.code !== 0) throw new Error(`ebr failed (${r.code}): ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as T;
};
interface Step {
  phase: string;
  kind: string;
  text: string;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(() => {
  db = startOracleDouble(path.join(tmp.dir, 'db'));
  config = writeInstanceConfig(tmp.dir, 'orcl', db.instanceYaml, { maxBlockMs: 20000 });
});
afterAll(() => tmp.cleanup());

describe('Oracle through the CLI (stand-in)', () => {
  let first: { backupId: string };
  let usersAtBackup: string;

  it('backs up, sending exactly what `backup --dry-run` lists, and archives the redo logs', async () => {
    const plan = json<{ steps: Step[] }>(await ebr(['--json', 'backup', '--dry-run']));
    expect(db.statements()).toEqual([]); // a dry run connects to nothing
    usersAtBackup = readFileSync(db.datafile('USERS'), 'utf8');
    first = json<{ backupId: string }>(await ebr(['--json', 'backup']));
    const sent = db.statements();
    expect(sent).toEqual(plan.steps.filter((s) => s.kind === 'sql').map((s) => s.text));
    expect(sent.filter((s) => /BACKUP$|ARCHIVE LOG CURRENT|BACKUP CONTROLFILE/.test(s))).toEqual([
      'ALTER DATABASE BEGIN BACKUP',
      'ALTER DATABASE END BACKUP',
      'ALTER SYSTEM ARCHIVE LOG CURRENT',
      expect.stringMatching(/^ALTER DATABASE BACKUP CONTROLFILE TO '.*ebr-orcl-control\.bkp' REUSE$/),
    ]);
    expect(Object.values(db.state().backup).every((b) => b.status === 'NOT ACTIVE')).toBe(true);
    const logs = json<{ rows?: unknown[] } | unknown[]>(await ebr(['--json', 'log', 'list']));
    expect(JSON.stringify(logs)).toContain('1_7_1163456789.arc');
  });

  it('`ebr log sync` copies each archived log once, with its sha256', async () => {
    await sleep(1100);
    await db.switchLog();
    const r1 = json<{ stored: string[]; present: string[] }>(await ebr(['--json', 'log', 'sync']));
    expect(r1.stored).toEqual(['1_8_1163456789.arc']);
    expect(r1.present).toEqual(['1_7_1163456789.arc']);
    const r2 = json<{ stored: string[]; present: string[] }>(await ebr(['--json', 'log', 'sync']));
    expect(r2.stored).toEqual([]);
    const stored = path.join(tmp.dir, 'backups', 'orcl', 'redo');
    const archived = db.state().archived.find((a) => a.sequence === 8)!;
    expect(readFileSync(path.join(stored, '1_8_1163456789.arc.sha256'), 'utf8')).toContain(archived.sha256);
  });

  it('`ebr release` ends backup mode left ACTIVE, and says so when there was none', async () => {
    db.update((s) => {
      for (const f of s.datafiles) s.backup[f.file] = { status: 'ACTIVE', change: s.scn, time: '2026-01-01 00:00:00' };
    });
    const r = json<{ released: boolean }>(await ebr(['--json', 'release', '--instance', 'orcl']));
    expect(r.released).toBe(true);
    expect(Object.values(db.state().backup).every((b) => b.status === 'NOT ACTIVE')).toBe(true);
    expect(json<{ released: boolean }>(await ebr(['--json', 'release', '--instance', 'orcl'])).released).toBe(false);
  });

  it('refuses a whole-database restore while the instance runs, naming SHUTDOWN IMMEDIATE', async () => {
    const r = await ebr(['restore', '--backup', first.backupId]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/instance on this host is OPEN/);
    expect(r.stderr).toMatch(/SHUTDOWN IMMEDIATE/);
  });

  it('restores one tablespace into the running database: offline, files back, RECOVER TABLESPACE, online — as planned', async () => {
    writeFileSync(db.datafile('USERS'), 'damaged');
    const plan = json<{ steps: Step[] }>(await ebr(['--json', 'restore', '--backup', first.backupId, '--partial', 'USERS', '--dry-run']));
    const before = db.sqlplusRuns().length;
    json(await ebr(['--json', 'restore', '--backup', first.backupId, '--partial', 'USERS']));
    const runs = db.sqlplusRuns().slice(before);
    const planned = plan.steps.filter((s) => s.kind === 'command').map((s) => s.text);
    expect(runs.map((r) => `${runsArgv(r.argv)} <<'EOF'\n${r.stdin}EOF`)).toEqual(planned);
    expect(runs.map((r) => r.stdin.split('\n').filter((l) => /^(ALTER|RECOVER|SET LOGSOURCE)/.test(l)))).toEqual([
      [],
      ['ALTER TABLESPACE USERS OFFLINE IMMEDIATE;'],
      [expect.stringMatching(/^SET LOGSOURCE '/), 'RECOVER AUTOMATIC TABLESPACE USERS', 'ALTER TABLESPACE USERS ONLINE;'],
    ]);
    expect(runs.every((r) => r.stdin.startsWith('WHENEVER OSERROR EXIT FAILURE\nWHENEVER SQLERROR EXIT FAILURE\n'))).toBe(true);
    expect(readFileSync(db.datafile('USERS'), 'utf8')).toBe(usersAtBackup);
    expect(db.state().tablespaces.find((t) => t.name === 'USERS')!.status).toBe('ONLINE');
  });

  it('a partial restore that fails after the tablespace went offline puts the old files back and brings it online again', async () => {
    const live = readFileSync(db.datafile('USERS'), 'utf8');
    const member = findFile(path.join(tmp.dir, 'backups'), (p) => p.endsWith('users01.dbf'));
    const good = readFileSync(member);
    writeFileSync(member, Buffer.concat([good.subarray(0, good.length - 1), Buffer.from('!')]));
    try {
      const before = db.sqlplusRuns().length;
      const r = await ebr(['restore', '--backup', first.backupId, '--partial', 'USERS']);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/digest/);
      const runs = db.sqlplusRuns().slice(before).map((x) => x.stdin.split('\n').filter((l) => /^(ALTER|RECOVER)/.test(l)));
      expect(runs.slice(-2)).toEqual([['ALTER TABLESPACE USERS OFFLINE IMMEDIATE;'], ['RECOVER AUTOMATIC TABLESPACE USERS', 'ALTER TABLESPACE USERS ONLINE;']]);
      expect(readFileSync(db.datafile('USERS'), 'utf8')).toBe(live);
      expect(db.state().tablespaces.find((t) => t.name === 'USERS')!.status).toBe('ONLINE');
    } finally {
      writeFileSync(member, good);
    }
  });

  it('refuses SYSTEM for a partial restore (critical)', async () => {
    const r = await ebr(['restore', '--backup', first.backupId, '--partial', 'SYSTEM']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/SYSTEM/);
  });

  it('restores the whole database once it is shut down: control files, STARTUP MOUNT, RECOVER … UNTIL CANCEL with every log, OPEN RESETLOGS — as planned', async () => {
    db.update((s) => {
      s.status = 'SHUTDOWN';
    });
    writeFileSync(db.datafile('SYSTEM'), 'damaged');
    const plan = json<{ steps: Step[] }>(await ebr(['--json', 'restore', '--backup', first.backupId, '--dry-run']));
    const before = db.sqlplusRuns().length;
    const out = json<{ notes: string[] }>(await ebr(['--json', 'restore', '--backup', first.backupId]));
    const runs = db.sqlplusRuns().slice(before);
    expect(runs.map((r) => `${runsArgv(r.argv)} <<'EOF'\n${r.stdin}EOF`)).toEqual(plan.steps.filter((s) => s.kind === 'command').map((s) => s.text));
    const finish = runs[1]!.stdin.trimEnd().split('\n');
    expect(finish.filter((l) => !/^(PROMPT|WHENEVER|SET HEADING|EXIT)/.test(l))).toEqual([
      'STARTUP MOUNT',
      expect.stringMatching(/^SET LOGSOURCE '.*-redo'$/),
      'RECOVER DATABASE USING BACKUP CONTROLFILE UNTIL CANCEL',
      expect.stringMatching(/1_7_1163456789\.dbf$/),
      expect.stringMatching(/1_8_1163456789\.dbf$/),
      'CANCEL',
      'ALTER DATABASE OPEN RESETLOGS;',
    ]);
    const s = db.state();
    expect(s.status).toBe('OPEN');
    expect(s.opened?.recovery.appliedThrough).toBe(8);
    expect(s.resetlogsId).toBe(1163456790);
    expect(readFileSync(db.datafile('SYSTEM'), 'utf8')).not.toBe('damaged');
    expect(out.notes.join('\n')).toMatch(/RESETLOGS/);
  });

  it('restores to a point in time with RECOVER AUTOMATIC … UNTIL TIME, and refuses a time the logs do not reach', async () => {
    // A fresh incarnation: back up, switch logs twice a second apart, restore to between them.
    const b = json<{ backupId: string }>(await ebr(['--json', 'backup']));
    await sleep(1100);
    await db.switchLog();
    const mid = new Date(Date.now() + 500);
    await sleep(1600);
    await db.switchLog();
    await sleep(1100);
    await db.switchLog();
    json(await ebr(['--json', 'log', 'sync']));
    const far = await ebr(['restore', '--backup', b.backupId, '--until', new Date(Date.now() + 3_600_000).toISOString()]);
    expect(far.code).toBe(1);
    expect(far.stderr).toMatch(/log archive reaches/);
    db.update((s) => {
      s.status = 'SHUTDOWN';
    });
    const until = mid.toISOString();
    const plan = json<{ steps: Step[] }>(await ebr(['--json', 'restore', '--backup', b.backupId, '--until', until, '--dry-run']));
    const before = db.sqlplusRuns().length;
    json(await ebr(['--json', 'restore', '--backup', b.backupId, '--until', until]));
    const runs = db.sqlplusRuns().slice(before);
    expect(runs.map((r) => `${runsArgv(r.argv)} <<'EOF'\n${r.stdin}EOF`)).toEqual(plan.steps.filter((s) => s.kind === 'command').map((s) => s.text));
    expect(runs[1]!.stdin).toMatch(/^RECOVER AUTOMATIC DATABASE USING BACKUP CONTROLFILE UNTIL TIME '\d{4}-\d\d-\d\d:\d\d:\d\d:\d\d'$/m);
    const s = db.state();
    expect(s.status).toBe('OPEN');
    // The target time lies in log 3: logs 1 (the backup's), 2 and 3 are applied, not 4, which begins after it.
    expect(s.opened?.recovery.appliedThrough).toBe(3);
  });
});

/** The argv as the plan prints it: the SQL*Plus binary and its arguments. */
function runsArgv(argv: string[]): string {
  return [path.join(path.dirname(new URL(import.meta.url).pathname), 'double', 'sqlplus-double.mjs'), ...argv].join(' ');
}

function findFile(dir: string, match: (p: string) => boolean): string {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      const found = findFile(p, match);
      if (found) return found;
    } else if (match(p)) return p;
  }
  return '';
}

/**
 * Db2 end to end through the built CLI (`npm run build` first) against the stand-ins of `db2` and
 * `db2inidb` (test/db2/double): the commands of a backup compared with `backup --dry-run`, all of them
 * on one interactive CLP; the window measured; the refusals before anything is suspended; release on
 * an error and on SIGTERM inside the window; `ebr release`; restores in place (AS MIRROR, --until, AS
 * SNAPSHOT) and --to DIR compared with `restore --dry-run`; partial restore refused with the reason; a
 * missing and a failing tool named with the path and the fix. No Db2 server is involved.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEbr, spawnEbr, tempDir, waitFor, type RunResult } from '../helpers/env.js';
import { writeInstanceConfig } from '../helpers/config-file.js';
import { startDb2Double, type Db2Double } from './double/index.js';

const tmp = tempDir('ebr-db2-e2e-');
let db: Db2Double;
let config: string;
const ebr = (args: string[], env: Record<string, string> = {}, cfg = config) => runEbr(['--config', cfg, ...args], { env: { ...db.env, ...env }, timeoutMs: 120_000 });
const json = <T>(r: RunResult): T => {
  if (r.code !== 0) throw new Error(`ebr failed (${r.code}): ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as T;
};
interface Step {
  phase: string;
  kind: string;
  text: string;
}
const sent = () => db.calls().filter((c) => c.command !== '');

beforeAll(() => {
  db = startDb2Double(path.join(tmp.dir, 'db'));
  config = writeInstanceConfig(tmp.dir, 'sample', db.instanceYaml, { maxBlockMs: 20000 });
});
afterAll(() => tmp.cleanup());

describe('Db2 backup through the CLI (stand-in)', () => {
  let backupId: string;
  let atBackup: Record<string, string>;

  it('backs up on one CLP session, sending exactly what `backup --dry-run` lists, suspend then resume', async () => {
    const plan = json<{ steps: Step[] }>(await ebr(['--json', 'backup', '--dry-run']));
    expect(db.calls()).toEqual([]); // a dry run runs no tool
    atBackup = {};
    atBackup.users = readFileSync(db.files.users, 'utf8');
    atBackup.conf = readFileSync(path.join(db.files.dbpath, 'SQLDBCONF'), 'utf8');
    atBackup.log = readFileSync(path.join(db.files.logpath, 'S0000001.LOG'), 'utf8');
    const r = json<{ backupId: string; blockWindowMs: number; windowSteps: Record<string, number>; meta: { details: Record<string, unknown> } }>(await ebr(['--json', 'backup']));
    backupId = r.backupId;
    const calls = db.calls();
    // One interactive CLP started once; every command on it, none one-shot.
    expect(calls.filter((c) => c.command === '')).toHaveLength(1);
    expect(new Set(calls.map((c) => c.pid)).size).toBe(1);
    expect(calls.every((c) => c.mode === 'interactive' && c.instance === 'db2inst1')).toBe(true);
    const planned = plan.steps.filter((s) => s.kind === 'sql').map((s) => s.text);
    expect(sent().map((c) => c.command)).toEqual([...planned, 'CONNECT RESET', 'TERMINATE']);
    const order = sent().map((c) => c.command).filter((c) => /^(FLUSH|SET WRITE)/.test(c));
    expect(order).toEqual(['FLUSH BUFFERPOOLS ALL', 'SET WRITE SUSPEND FOR DATABASE INCLUDE LOGS', 'SET WRITE RESUME FOR DATABASE']);
    const st = db.state();
    expect(st.suspendIo).toBe('NO');
    expect(st.resumedBy).toMatchObject({ how: 'SET WRITE RESUME', pid: calls[0]!.pid });
    // The window: measured from suspend to resume, and recorded in the backup.
    expect(r.blockWindowMs).toBeGreaterThan(0);
    expect(r.blockWindowMs).toBeGreaterThanOrEqual(r.windowSteps.snapshot!);
    expect(new Date(String(r.meta.details.resumedAt)).getTime()).toBeGreaterThanOrEqual(new Date(String(r.meta.details.suspendedAt)).getTime());
    expect(r.meta.details).toMatchObject({ database: 'SAMPLE', instance: 'db2inst1', includeLogs: true, server: 'DB2/LINUXX8664 11.5.9.0' });
  });

  it('discovers tablespaces (containers as chunks), the database directory and the log path', async () => {
    const r = json<{ spaces: Array<{ name: string; critical: boolean; chunks: Array<{ path: string }> | number }> } | Array<{ name: string; critical: boolean }>>(await ebr(['--json', 'spaces']));
    const spaces = (Array.isArray(r) ? r : r.spaces) as Array<{ name: string; critical: boolean }>;
    expect(spaces.map((s) => s.name)).toEqual(['SYSCATSPACE', 'TEMPSPACE1', 'USERSPACE1', 'APPSMS', 'DATABASE', 'LOGS']);
    expect(spaces.filter((s) => s.critical).map((s) => s.name)).toEqual(['SYSCATSPACE', 'DATABASE', 'LOGS']);
    const text = JSON.stringify(r);
    expect(text).toContain(db.files.users);
    expect(text).toContain(path.join(db.files.sms, 'SQLT0000.0', 'SQL00002.DAT')); // an SMS directory container, walked
    expect(text).toContain(path.join(db.files.logpath, 'S0000000.LOG'));
    expect(text).not.toContain('SQLTMP.000'); // temporary tablespace contents left out
  });

  it('refuses to start when LOGARCHMETH1 is OFF, or when the database is already suspended, suspending nothing', async () => {
    db.clearCalls();
    db.update((s) => (s.logArchMeth1 = 'OFF'));
    const off = await ebr(['backup']);
    expect(off.code, off.stderr).toBe(1);
    expect(off.stderr).toMatch(/LOGARCHMETH1 = OFF/);
    expect(off.stderr).toMatch(/UPDATE DB CFG FOR SAMPLE USING LOGARCHMETH1/);
    db.update((s) => {
      s.logArchMeth1 = 'DISK:/archive/';
      s.suspendIo = 'YES';
      s.suspendedBy = 1;
    });
    const again = await ebr(['backup']);
    expect(again.code, again.stderr).toBe(1);
    expect(again.stderr).toMatch(/already write suspended/);
    expect(again.stderr).toMatch(/ebr release --instance sample/);
    expect(sent().some((c) => c.command.startsWith('SET WRITE'))).toBe(false);
  });

  it('`ebr release` resumes a suspend left behind with RESTART DATABASE … WRITE RESUME, never connecting first, and says when there was none', async () => {
    db.clearCalls();
    const r = json<{ released: boolean }>(await ebr(['--json', 'release', '--instance', 'sample']));
    expect(r.released).toBe(true);
    expect(db.state()).toMatchObject({ suspendIo: 'NO', resumedBy: { how: 'RESTART WRITE RESUME' } });
    expect(sent().map((c) => `${c.mode} ${c.command}`)).toEqual([
      'oneshot GET DATABASE CONFIGURATION FOR SAMPLE',
      'oneshot RESTART DATABASE SAMPLE WRITE RESUME',
      'oneshot GET DATABASE CONFIGURATION FOR SAMPLE',
    ]);
    expect(json<{ released: boolean }>(await ebr(['--json', 'release', '--instance', 'sample'])).released).toBe(false);
  });

  it('resumes on its session when the window fails (maxBlockMs exceeded), and the backup fails', async () => {
    const cfg = configIn('short', db.instanceYaml, { maxBlockMs: 1500 });
    db.clearCalls();
    const r = await ebr(['backup'], { EBR_FAULT_HOLD_WINDOW_MS: '60000' }, cfg);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/maxBlockMs/);
    const calls = sent();
    const suspend = calls.find((c) => c.command.startsWith('SET WRITE SUSPEND'))!;
    const resume = calls.find((c) => c.command === 'SET WRITE RESUME FOR DATABASE')!;
    expect(resume.pid).toBe(suspend.pid);
    expect(db.state().suspendIo).toBe('NO');
  });

  it('resumes on its session when ebr gets SIGTERM inside the window', async () => {
    db.clearCalls();
    const child = spawnEbr(['--config', config, 'backup'], { env: { ...db.env, EBR_FAULT_HOLD_WINDOW_MS: '60000' } });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    await waitFor(`the suspend (ebr said: ${stderr})`, () => (db.state().suspendIo === 'YES' ? true : undefined), 60_000, 50);
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(code).toBe(1);
    expect(stderr, stderr).toMatch(/interrupted by SIGTERM/);
    const calls = sent();
    expect(calls.find((c) => c.command === 'SET WRITE RESUME FOR DATABASE')?.pid).toBe(calls.find((c) => c.command.startsWith('SET WRITE SUSPEND'))!.pid);
    expect(calls.some((c) => c.command.startsWith('RESTART'))).toBe(false);
    expect(db.state().suspendIo).toBe('NO');
  }, 90_000);

  describe('restore', () => {
    const stale = 'changed after the backup\n';
    const spoil = () => {
      writeFileSync(db.files.users, stale);
      writeFileSync(path.join(db.files.dbpath, 'SQLDBCONF'), stale);
      writeFileSync(path.join(db.files.logpath, 'S0000001.LOG'), stale);
    };

    it('refuses a partial restore, saying that the whole database is the unit', async () => {
      const r = await ebr(['restore', '--backup', backupId, '--partial', 'USERSPACE1']);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/only as a whole database: db2inidb initializes/);
      const crit = await ebr(['restore', '--backup', backupId, '--partial', 'SYSCATSPACE']);
      expect(crit.code).toBe(2);
      expect(crit.stderr).toMatch(/critical/);
    });

    it('refuses an in-place restore while the database is active', async () => {
      db.update((s) => (s.active = true));
      const r = await ebr(['restore', '--backup', backupId]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/database SAMPLE is active/);
      expect(r.stderr).toMatch(/db2 deactivate database SAMPLE/);
    });

    it('in place AS MIRROR: the files back but the log path, db2inidb, ROLLFORWARD TO END OF LOGS, as `restore --dry-run` lists', async () => {
      db.update((s) => (s.active = false));
      spoil();
      db.clearCalls();
      const plan = json<{ steps: Step[] }>(await ebr(['--json', 'restore', '--backup', backupId, '--dry-run']));
      expect(db.calls()).toEqual([]);
      const r = json<{ notes?: string[] }>(await ebr(['--json', 'restore', '--backup', backupId]));
      const cmds = plan.steps.filter((s) => s.kind === 'command').map((s) => s.text);
      const runs = db.calls().map((c) => (c.tool === 'db2inidb' ? `${path.basename(db2inidbPath())} ${c.command}` : `${path.basename(db2Path())} ${c.command}`));
      expect(runs).toEqual(cmds.map((c) => c.split(' ').map((w, i) => (i === 0 ? path.basename(w) : w)).join(' ').replace(/'/g, '')));
      expect(db.calls().map((c) => `${c.tool} ${c.command}`)).toEqual(['db2 LIST ACTIVE DATABASES', 'db2inidb SAMPLE AS MIRROR', 'db2 ROLLFORWARD DATABASE SAMPLE TO END OF LOGS AND STOP']);
      expect(readFileSync(db.files.users, 'utf8')).toBe(atBackup.users);
      expect(readFileSync(path.join(db.files.dbpath, 'SQLDBCONF'), 'utf8')).toBe(atBackup.conf);
      expect(readFileSync(path.join(db.files.logpath, 'S0000001.LOG'), 'utf8')).toBe(stale); // the primary's own logs are kept
      expect(db.state()).toMatchObject({ initializedAs: 'MIRROR', rollforwardPending: false, rolledForward: { to: null } });
      expect(JSON.stringify(r)).toMatch(/rolled forward to the end of the logs/);
    });

    it('--until: ROLLFORWARD … TO <local time> USING LOCAL TIME AND STOP; a time before the backup is refused', async () => {
      const early = await ebr(['restore', '--backup', backupId, '--until', '2001-01-01T00:00:00Z']);
      expect(early.code, early.stderr).toBe(2);
      expect(early.stderr).toMatch(/before backup .* resumed writes/);
      db.clearCalls();
      const until = new Date(Date.now() + 1000);
      json(await ebr(['--json', 'restore', '--backup', backupId, '--until', until.toISOString()]));
      const p = (n: number) => String(n).padStart(2, '0');
      const local = `${until.getFullYear()}-${p(until.getMonth() + 1)}-${p(until.getDate())}-${p(until.getHours())}.${p(until.getMinutes())}.${p(until.getSeconds())}`;
      expect(db.calls().map((c) => c.command)).toContain(`ROLLFORWARD DATABASE SAMPLE TO ${local} USING LOCAL TIME AND STOP`);
      expect(db.state().rolledForward?.to).toBe(local);
    });

    it('a failing ROLLFORWARD fails the restore naming the command, the Db2 message and the fix, and the old files come back', async () => {
      spoil();
      const r = await ebr(['restore', '--backup', backupId], { EBR_DB2_DOUBLE_FAIL: 'ROLLFORWARD=SQL4970N  Roll-forward recovery on database "SAMPLE" cannot reach the specified stop point (end-of-log or point-in-time) because of missing or corrupted log file(s) on member(s) "0".' });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/ROLLFORWARD DATABASE SAMPLE TO END OF LOGS AND STOP/);
      expect(r.stderr).toMatch(/SQL4970N/);
      expect(r.stderr).toMatch(/archived logs/);
      expect(readFileSync(db.files.users, 'utf8')).toBe(stale);
    });

    it('AS SNAPSHOT writes the log path back too and runs no roll-forward; --until is refused', async () => {
      const cfg = configIn('snap', startDb2DoubleYaml('snapshot'), { maxBlockMs: 20000 });
      // Same catalog? No: a second config has its own catalog, so back up there first.
      spoil();
      db.update((s) => (s.active = true));
      const b = json<{ backupId: string }>(await ebr(['--json', 'backup'], {}, cfg));
      db.update((s) => (s.active = false));
      const log = readFileSync(path.join(db.files.logpath, 'S0000001.LOG'), 'utf8');
      writeFileSync(path.join(db.files.logpath, 'S0000001.LOG'), 'newer log\n');
      const refused = await ebr(['restore', '--backup', b.backupId, '--until', new Date().toISOString()], {}, cfg);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/restoreAs: snapshot/);
      db.clearCalls();
      json(await ebr(['--json', 'restore', '--backup', b.backupId], {}, cfg));
      expect(db.calls().map((c) => `${c.tool} ${c.command}`)).toEqual(['db2 LIST ACTIVE DATABASES', 'db2inidb SAMPLE AS SNAPSHOT']);
      expect(readFileSync(path.join(db.files.logpath, 'S0000001.LOG'), 'utf8')).toBe(log);
      expect(db.state()).toMatchObject({ initializedAs: 'SNAPSHOT', rollforwardPending: false });
    });

    it('--to DIR: every file under DIR at its own path and a db2relocatedb configuration; nothing is run', async () => {
      const to = path.join(tmp.dir, 'copy');
      db.clearCalls();
      const r = json<{ notes?: string[] }>(await ebr(['--json', 'restore', '--backup', backupId, '--to', to]));
      expect(db.calls()).toEqual([]);
      expect(readFileSync(path.join(to, db.files.users), 'utf8')).toBe(atBackup.users);
      expect(readFileSync(path.join(to, db.files.logpath, 'S0000001.LOG'), 'utf8')).toBe(atBackup.log);
      const cfg = readFileSync(path.join(to, 'ebr-relocate.cfg'), 'utf8');
      expect(cfg).toContain('DB_NAME=SAMPLE,SAMPLE');
      expect(cfg).toContain(`LOG_DIR=${db.files.logpath},${path.join(to, db.files.logpath)}`);
      expect(cfg).toContain(`CONT_PATH=${db.files.users},${path.join(to, db.files.users)}`);
      expect(cfg).toContain(`DB_PATH=${path.join(db.dir, 'db2data')},${path.join(to, db.dir, 'db2data')}`);
      expect(JSON.stringify(r)).toContain(`SAMPLE AS MIRROR RELOCATE USING ${path.join(to, 'ebr-relocate.cfg')}`);
    });
  });

  it('a missing db2 is named with the path tried and the fix (exit 1)', async () => {
    const missing = path.join(tmp.dir, 'nowhere', 'sqllib', 'bin', 'db2');
    const cfg = configIn('missing', db.instanceYaml.map((l) => (l.startsWith('      db2: ') ? `      db2: ${missing}` : l)));
    const r = await ebr(['backup'], {}, cfg);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`cannot run db2: ${missing}`);
    expect(r.stderr).toMatch(/set db2\.db2 to the binary \(~db2inst1\/sqllib\/bin\/db2\)/);
    const rel = await ebr(['release', '--instance', 'sample'], {}, cfg);
    expect(rel.code).toBe(1);
    expect(rel.stderr).toContain(missing);
  });

  it('refuses an unknown key in the db2 section (exit 2)', async () => {
    const cfg = configIn('unknown', [...db.instanceYaml, '      password: nope']);
    const r = await ebr(['backup'], {}, cfg);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/password/);
  });
});

/** An ebr.yaml of its own (own catalog and archive) in a subdirectory of the test's temp dir. */
function configIn(sub: string, lines: string[], o: { maxBlockMs?: number } = {}): string {
  const dir = path.join(tmp.dir, sub);
  mkdirSync(dir, { recursive: true });
  return writeInstanceConfig(dir, 'sample', lines, o);
}
function db2Path() {
  return db.instanceYaml.find((l) => l.startsWith('      db2: '))!.slice('      db2: '.length);
}
function db2inidbPath() {
  return db.instanceYaml.find((l) => l.startsWith('      db2inidb: '))!.slice('      db2inidb: '.length);
}
function startDb2DoubleYaml(restoreAs: string): string[] {
  return [...db.instanceYaml, `      restoreAs: ${restoreAs}`];
}

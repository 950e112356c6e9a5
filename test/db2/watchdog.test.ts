/**
 * `SET WRITE SUSPEND` is database state: a kill -9 of ebr inside the window leaves the database
 * suspended after its CLP session is gone. The watchdog armed before the suspend runs `ebr release`
 * (RESTART DATABASE … WRITE RESUME, never a plain connect, which would hang on a suspended database) as
 * soon as its owner is gone, within maxBlockMs; with the watchdog killed too, the next ebr command finds
 * the journaled suspend and ends it. Against the Db2 stand-in; the watchdog, the release command and
 * the catalog are the real ones.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeInstanceConfig } from '../helpers/config-file.js';
import { killLater, watchdogPid } from '../helpers/watchdog.js';
import { runEbr, spawnEbr, tempDir, waitFor } from '../helpers/env.js';
import { startDb2Double, type Db2Double } from './double/index.js';

const tmp = tempDir('ebr-db2-wd-');
const { pids, killAll } = killLater();
afterAll(() => {
  killAll();
  tmp.cleanup();
});

const maxBlockMs = 60_000;

/** ebr backup held inside the window, until the stand-in says the database is suspended. */
async function suspendedBackup(name: string): Promise<{ db: Db2Double; config: string; ebr: ReturnType<typeof spawnEbr>; exited: Promise<unknown> }> {
  const dir = path.join(tmp.dir, name);
  const db = startDb2Double(path.join(dir, 'db'));
  const config = writeInstanceConfig(dir, 'sample', db.instanceYaml, { maxBlockMs });
  const ebr = spawnEbr(['--config', config, 'backup'], { env: { ...db.env, EBR_FAULT_HOLD_WINDOW_MS: '300000' } });
  pids.push(ebr.pid!);
  let stderr = '';
  ebr.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise((r) => ebr.once('exit', r));
  await waitFor(`the suspend (ebr said: ${stderr})`, () => (db.state().suspendIo === 'YES' ? true : undefined), 60_000, 50);
  return { db, config, ebr, exited };
}

const statuses = async (config: string, db: Db2Double) => {
  const r = await runEbr(['--config', config, '--json', 'list'], { env: { ...process.env, ...db.env } });
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as Array<{ status: string }>).map((b) => b.status);
};

const resumes = (db: Db2Double) => db.calls().filter((c) => /WRITE RESUME/.test(c.command));

describe('Db2 SET WRITE SUSPEND and the watchdog', () => {
  it('kill -9 of ebr inside the window: the suspend outlives its session, the watchdog resumes it within maxBlockMs', async () => {
    const { db, config, ebr, exited } = await suspendedBackup('killed');
    const suspendedAt = Date.parse(db.state().suspendedAt!);
    ebr.kill('SIGKILL');
    await exited;
    await waitFor('the watchdog to resume', () => (db.state().suspendIo === 'NO' ? true : undefined), maxBlockMs, 100);
    const state = db.state();
    expect(state.resumedBy?.how).toBe('RESTART WRITE RESUME');
    expect(Date.parse(state.resumedBy!.at) - suspendedAt).toBeLessThan(maxBlockMs);
    // Exactly one resume, by the release command (one-shot), not by the dead backup's CLP.
    expect(resumes(db).map((c) => `${c.mode} ${c.command}`)).toEqual(['oneshot RESTART DATABASE SAMPLE WRITE RESUME']);
    expect(await statuses(config, db)).toEqual(['failed']);
    expect(db.state().suspendIo).toBe('NO');
  }, 180_000);

  it('kill -9 of ebr and its watchdog: the database stays suspended until the next ebr command repairs it', async () => {
    const { db, config, ebr, exited } = await suspendedBackup('both');
    const watchdog = await watchdogPid(path.dirname(config));
    pids.push(watchdog);
    process.kill(watchdog, 'SIGKILL');
    ebr.kill('SIGKILL');
    await exited;
    // Nobody is left to resume: the stand-in changes only when a tool runs, so it is still suspended.
    expect(db.state().suspendIo).toBe('YES');
    expect(resumes(db)).toEqual([]);
    // The next command (any: here `ebr list`) repairs it first, then marks the backup failed.
    expect(await statuses(config, db)).toEqual(['failed']);
    expect(db.state()).toMatchObject({ suspendIo: 'NO', resumedBy: { how: 'RESTART WRITE RESUME' } });
    expect(resumes(db).map((c) => c.command)).toEqual(['RESTART DATABASE SAMPLE WRITE RESUME']);
  }, 180_000);
});

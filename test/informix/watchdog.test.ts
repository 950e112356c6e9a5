/**
 * `onmode -c block` is server state: a kill -9 of ebr inside the window leaves the server blocked,
 * every update transaction held. The watchdog armed before the block runs `ebr release` (onstat -, then
 * onmode -c unblock) as soon as its owner is gone, well within maxBlockMs; when the watchdog is gone
 * too, the next ebr command finds the journaled block and ends it. Both mark the backup failed. Against
 * the Informix stand-ins; the watchdog, the release command and the catalog are the real ones.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeInstanceConfig } from '../helpers/config-file.js';
import { killLater, watchdogPid } from '../helpers/watchdog.js';
import { runEbr, spawnEbr, tempDir, waitFor } from '../helpers/env.js';
import { startInformixDouble, type InformixDouble } from './double/index.js';

const tmp = tempDir('ebr-ifx-wd-');
const { pids, killAll } = killLater();
afterAll(() => {
  killAll();
  tmp.cleanup();
});

const maxBlockMs = 60_000;

/** ebr backup held inside the window (after the snapshot), until the stand-in says Blocked. */
async function blockedBackup(name: string): Promise<{ db: InformixDouble; config: string; ebr: ReturnType<typeof spawnEbr>; exited: Promise<unknown> }> {
  const dir = path.join(tmp.dir, name);
  const db = startInformixDouble(path.join(dir, 'db'));
  const config = writeInstanceConfig(dir, 'ids', db.instanceYaml, { maxBlockMs });
  const ebr = spawnEbr(['--config', config, 'backup'], { env: { ...db.env, EBR_FAULT_HOLD_WINDOW_MS: '300000' } });
  pids.push(ebr.pid!);
  let stderr = '';
  ebr.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise((r) => ebr.once('exit', r));
  await waitFor(`the server blocked (ebr said: ${stderr})`, () => (db.state().blocked ? true : undefined), 60_000, 50);
  // The onstat -l inside the window has run: block() returned and the snapshot is under way or held.
  await waitFor('the onstat -l inside the window', () => (db.commands().filter((c) => c === 'onstat -l').length === 2 ? true : undefined), 30_000, 50);
  return { db, config, ebr, exited };
}

const statuses = async (config: string, db: InformixDouble) => {
  const r = await runEbr(['--config', config, '--json', 'list'], { env: { ...process.env, ...db.env } });
  expect(r.code, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout) as Array<{ status: string }> | { backups: Array<{ status: string }> };
  return (Array.isArray(out) ? out : out.backups).map((b) => b.status);
};

describe('Informix onmode -c block and the watchdog', () => {
  it('kill -9 of ebr inside the window: the watchdog unblocks within maxBlockMs, the next command fails the backup', async () => {
    const { db, config, ebr, exited } = await blockedBackup('killed');
    ebr.kill('SIGKILL');
    await exited;
    const killedAt = Date.now();
    const blockRun = db.runs().find((r) => r.tool === 'onmode' && r.argv.join(' ') === '-c block')!;
    // The watchdog acts as soon as its owner is gone; the deadline is only the bound.
    await waitFor('the watchdog to unblock', () => (!db.state().blocked ? true : undefined), maxBlockMs, 100);
    const unblockRun = db.runs().find((r) => r.tool === 'onmode' && r.argv.join(' ') === '-c unblock')!;
    expect(Date.parse(unblockRun.at) - Date.parse(blockRun.at)).toBeLessThan(maxBlockMs);
    expect(Date.parse(unblockRun.at)).toBeGreaterThanOrEqual(killedAt - 1000);
    expect(db.state()).toMatchObject({ blocked: false, blocks: 1, unblocks: 1 });
    // What ran after the kill: ebr release's own onstat -, then the unblock; no log backup for a dead backup.
    expect(db.commands().slice(db.commands().indexOf('onmode -c block') + 2)).toEqual(['onstat -', 'onmode -c unblock']);
    expect(await statuses(config, db)).toEqual(['failed']);
    expect(db.state().blocked).toBe(false);
  }, 180_000);

  it('kill -9 of ebr and its watchdog: the server stays blocked until the next ebr command repairs it', async () => {
    const { db, config, ebr, exited } = await blockedBackup('both');
    const watchdog = await watchdogPid(path.dirname(config));
    pids.push(watchdog);
    process.kill(watchdog, 'SIGKILL');
    ebr.kill('SIGKILL');
    await exited;
    // Nobody is left to unblock: the server stays blocked (the stand-in is only changed by a tool run).
    await new Promise((r) => setTimeout(r, 1500));
    expect(db.state().blocked).toBe(true);
    expect(db.commands()).not.toContain('onmode -c unblock');
    expect(await statuses(config, db)).toEqual(['failed']);
    expect(db.state()).toMatchObject({ blocked: false, unblocks: 1 });
    expect(db.commands().slice(-2)).toEqual(['onstat -', 'onmode -c unblock']);
  }, 180_000);
});

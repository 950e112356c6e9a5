/**
 * Backup mode outlives the session, so a kill -9 of ebr inside the window would leave every datafile
 * in backup mode. The watchdog armed before BEGIN BACKUP runs `ebr release` (END BACKUP on a session
 * of its own) as soon as its owner is gone, and the next command marks the backup failed. Against the
 * Oracle stand-in; the watchdog, the release command and the catalog are the real ones.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runEbr, spawnEbr, tempDir, waitFor } from '../helpers/env.js';
import { startOracleDouble } from './double/index.js';
import { writeInstanceConfig } from '../helpers/config-file.js';

const tmp = tempDir('ebr-ora-wd-');
afterAll(() => tmp.cleanup());

describe('Oracle backup mode and the watchdog', () => {
  it('kill -9 of ebr inside the window: the watchdog ends backup mode, the next command fails the backup', async () => {
    const db = startOracleDouble(path.join(tmp.dir, 'db'));
    const config = writeInstanceConfig(tmp.dir, 'orcl', db.instanceYaml, { maxBlockMs: 60000 });
    const active = () => Object.values(db.state().backup).filter((b) => b.status === 'ACTIVE').length;
    // The window is held open after the snapshot, so the kill lands inside it.
    const ebr = spawnEbr(['--config', config, 'backup'], { env: { ...db.env, EBR_FAULT_HOLD_WINDOW_MS: '120000' } });
    let stderr = '';
    ebr.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    await waitFor(`backup mode on (ebr said: ${stderr})`, () => (active() > 0 ? true : undefined), 60_000, 50);
    await waitFor('the snapshot taken', () => (db.statements().includes('ALTER DATABASE BEGIN BACKUP') ? true : undefined), 10_000, 50);
    ebr.kill('SIGKILL');
    await new Promise((r) => ebr.once('exit', r));
    expect(active()).toBeGreaterThan(0); // what ebr left behind
    // Well before maxBlockMs: the watchdog acts as soon as its owner is gone.
    await waitFor('the watchdog to end backup mode', () => (active() === 0 ? true : undefined), 45_000, 100);
    expect(db.statements().filter((s) => s === 'ALTER DATABASE END BACKUP')).toHaveLength(1);
    const list = await runEbr(['--config', config, '--json', 'list'], { env: { ...process.env, ...db.env } });
    expect(list.code, list.stderr).toBe(0);
    const backups = JSON.parse(list.stdout) as Array<{ status: string }> | { backups: Array<{ status: string }> };
    const rows = Array.isArray(backups) ? backups : backups.backups;
    expect(rows.map((b) => b.status)).toEqual(['failed']);
  }, 150_000);
});

/**
 * No crash leaves the database blocked or a snapshot behind: `ebr backup` with the btrfs provider is
 * killed with SIGKILL inside the window and while streaming, and held past maxBlockMs, while a writer
 * commits every millisecond. The next command removes what the journal says was made, and nothing else.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, runEbr, spawnEbr, waitFor } from '../helpers/env.js';
import { ensureBuilt, sourcesUnder } from '../watchdog/built.js';
import { requireTools, subvolumes } from './loopfs.js';
import { makeDatabase, makeLab, startWriter, writeConfig, type Lab, type LabPaths, type Writer } from './window-lab.js';

interface ResourceRow {
  backup_id: string;
  kind: string;
  path: string;
  removed_at: string | null;
}

describe('btrfs: ebr killed or held too long never leaves the database blocked or a snapshot behind', () => {
  let lab: Lab | undefined;
  let paths: LabPaths;
  let db: string;
  let writer: Writer | undefined;

  const catalog = <T>(sql: string): T[] => {
    const file = path.join(lab!.varDir, 'catalog.db');
    if (!existsSync(file)) return [];
    const c = new Database(file, { readonly: true });
    try {
      return c.prepare(sql).all() as T[];
    } catch {
      return []; // tables not made yet
    } finally {
      c.close();
    }
  };
  const leftSnapshots = () => subvolumes(lab!.fs.mountPoint).filter((p) => p.includes('.ebr-snapshot-'));
  const committedAfter = async (what: string, since: number) => {
    const seq = writer!.status()!.seq;
    await waitFor(what, () => ((writer!.status()?.seq ?? 0) > seq + 10 ? true : undefined), 5_000, 10);
    return Date.now() - since;
  };

  beforeAll(async () => {
    requireTools('btrfs', 'mkfs.btrfs');
    paths = { ebrBin: ensureBuilt(sourcesUnder('src', 'adapters'), 'dist/src/cli/main.js'), writerScript: path.join(repoRoot, 'test/snapshot/window-writer.mjs') };
    lab = makeLab(1024);
    db = makeDatabase(lab, 'shop.db', 300);
    writer = await startWriter(paths, db);
  }, 300_000);
  afterAll(async () => {
    await writer?.stop();
    lab?.teardown();
  });

  it('SIGKILL inside the window: the writer goes on at once, and the next command deletes the snapshot', async () => {
    writeConfig(lab!, { shop: { db, provider: 'btrfs' } });
    const ebr = spawnEbr(['--config', lab!.config, 'backup'], { env: { EBR_FAULT_HOLD_WINDOW_MS: '60000' } });
    const exited = new Promise((r) => ebr.once('exit', r));
    try {
      // The fault hold keeps the window open after the snapshot is made: the snapshot exists and the writer waits.
      const [snap] = await waitFor('the snapshot inside the window', () => {
        const rows = catalog<ResourceRow>("SELECT r.* FROM resources r JOIN backups b ON b.id = r.backup_id WHERE b.phase = 'acquire' AND r.kind = 'btrfs-snapshot'");
        return rows.length > 0 && existsSync(rows[0]!.path) ? rows : undefined;
      }, 30_000, 10);
      await waitFor('the writer to stall', () => (Date.now() - (writer!.status()?.lastCommitAt ?? Date.now()) > 300 ? true : undefined), 10_000, 10);
      const killedAt = Date.now();
      ebr.kill('SIGKILL');
      await exited;
      expect(await committedAfter('the writer to commit again', killedAt)).toBeLessThan(2_000);
      expect(existsSync(snap!.path)).toBe(true); // nobody was left to delete it…

      const spaces = await runEbr(['--config', lab!.config, 'spaces']);
      expect(spaces.code, spaces.stderr).toBe(0);
      expect(spaces.stderr).toContain(`removed leftover btrfs-snapshot ${snap!.path}`);
      const list = await runEbr(['--config', lab!.config, '--json', 'list']);
      expect(existsSync(snap!.path)).toBe(false); // …until the next command
      expect(leftSnapshots()).toEqual([]);
      const [b] = JSON.parse(list.stdout) as Array<{ status: string; phase: string }>;
      expect(b).toMatchObject({ status: 'failed', phase: 'acquire' });
      expect(catalog<ResourceRow>('SELECT * FROM resources WHERE removed_at IS NULL')).toEqual([]);
    } finally {
      if (ebr.exitCode === null && ebr.signalCode === null) ebr.kill('SIGKILL');
    }
  });

  it('SIGKILL while streaming: the next command deletes the snapshot, and a new backup then works', async () => {
    writeConfig(lab!, { shop: { db, provider: 'btrfs' } });
    const ebr = spawnEbr(['--config', lab!.config, 'backup']);
    const exited = new Promise((r) => ebr.once('exit', r));
    try {
      const [snap] = await waitFor('ebr to stream from the snapshot', () => {
        const rows = catalog<ResourceRow>("SELECT r.* FROM resources r JOIN backups b ON b.id = r.backup_id WHERE b.status = 'running' AND b.phase = 'stream' AND r.removed_at IS NULL");
        return rows.length > 0 ? rows : undefined;
      }, 30_000, 5);
      ebr.kill('SIGKILL');
      await exited;
      expect(existsSync(snap!.path)).toBe(true);
      const again = await runEbr(['--config', lab!.config, 'backup']);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toContain(`removed leftover btrfs-snapshot ${snap!.path}`);
      expect(leftSnapshots()).toEqual([]);
    } finally {
      if (ebr.exitCode === null && ebr.signalCode === null) ebr.kill('SIGKILL');
    }
  });

  it('maxBlockMs ends a window held too long: the backup fails, the writer goes on, and the snapshot is gone at once', async () => {
    writeConfig(lab!, { shop: { db, provider: 'btrfs', maxBlockMs: 500 } });
    const started = Date.now();
    const r = await runEbr(['--config', lab!.config, '--json', 'backup'], { env: { EBR_FAULT_HOLD_WINDOW_MS: '30000' } });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).error.code).toBe('windowExceeded');
    expect(await committedAfter('the writer to commit', Date.now())).toBeLessThan(2_000);
    // Released by the failing backup itself, not left for the next command.
    expect(leftSnapshots()).toEqual([]);
    expect(catalog<ResourceRow>('SELECT * FROM resources WHERE removed_at IS NULL')).toEqual([]);
  });
});

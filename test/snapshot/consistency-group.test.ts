/**
 * Consistency groups end to end: an instance whose databases sit on a btrfs volume and on an XFS one.
 * `ebr spaces` and `ebr backup` refuse, naming the chunk and the volume, until the config allows a copy
 * for the XFS part; then both parts are frozen in the same window and the backup restores.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEbr, tempDir } from '../helpers/env.js';
import { ensureBuilt, sourcesUnder } from '../watchdog/built.js';
import { makeLoopFs, requireTools, sh, type LoopFs } from './loopfs.js';

describe('consistency group across a btrfs and an XFS volume', () => {
  let btrfs: LoopFs | undefined;
  let xfs: LoopFs | undefined;
  const t = tempDir();
  let config: string;
  let main: string;
  let audit: string;

  const configWith = (snapshot: string) =>
    writeFileSync(
      config,
      [
        'catalog: ./catalog.db',
        'instances:',
        '  shop:',
        '    adapter: sqlite',
        `    sqlite: { main: ${JSON.stringify(main)}, attach: { audit: ${JSON.stringify(audit)} } }`,
        `    snapshot: ${snapshot}`,
        '    target: { type: tar, path: ./backups }',
        '',
      ].join('\n'),
    );

  beforeAll(() => {
    requireTools('btrfs', 'mkfs.btrfs', 'mkfs.xfs');
    ensureBuilt(sourcesUnder('src', 'adapters'), 'dist/src/cli/main.js');
    btrfs = makeLoopFs('btrfs', 256);
    xfs = makeLoopFs('xfs', 300);
    sh('btrfs', ['subvolume', 'create', path.join(btrfs.mountPoint, 'data')]);
    mkdirSync(path.join(xfs.mountPoint, 'audit'));
    main = path.join(btrfs.mountPoint, 'data/shop.db');
    audit = path.join(xfs.mountPoint, 'audit/audit.db');
    for (const [file, rows] of [[main, 300], [audit, 200]] as const) {
      const db = new Database(file);
      db.pragma('journal_mode = WAL');
      db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
      const ins = db.prepare('INSERT INTO t (v) VALUES (?)');
      for (let i = 0; i < rows; i++) ins.run(`row ${i}`);
      db.close();
    }
    config = path.join(t.dir, 'ebr.yaml');
  });
  afterAll(() => {
    xfs?.teardown();
    btrfs?.teardown();
    t.cleanup();
  });

  it('spaces and backup fail naming the chunk and the volume when no copy is allowed', async () => {
    configWith('{ provider: btrfs }');
    for (const cmd of ['spaces', 'backup']) {
      const r = await runEbr(['--config', config, cmd]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`chunk audit.db of space audit (${audit}) lies on the xfs volume ${xfs!.device} mounted at ${xfs!.mountPoint}, which the btrfs provider cannot snapshot`);
      expect(r.stderr).toMatch(/copyFallback/);
    }
  });

  it('with copyFallback the XFS part is copied in the same window, and the backup verifies and restores', async () => {
    configWith(`{ provider: btrfs, staging: ${JSON.stringify(path.join(t.dir, 'staging'))}, copyFallback: ['${xfs!.mountPoint}/**'] }`);
    expect((await runEbr(['--config', config, 'spaces'])).code).toBe(0);
    const b = await runEbr(['--config', config, '--json', 'backup']);
    expect(b.code, b.stderr).toBe(0);
    const doc = JSON.parse(b.stdout) as { windowSteps: Record<string, number>; spaces: number };
    expect(doc.spaces).toBe(2);
    expect(Object.keys(doc.windowSteps)).toEqual(expect.arrayContaining(['snapshot.snapshots', 'snapshot.copy-fallback']));
    expect((await runEbr(['--config', config, 'verify', 'latest'])).code).toBe(0);
    const to = path.join(t.dir, 'restored');
    const r = await runEbr(['--config', config, 'restore', '--to', to]);
    expect(r.code, r.stderr).toBe(0);
    expect(sh('sqlite3', [path.join(to, 'audit.db'), 'SELECT count(*) FROM t']).trim()).toBe('200');
  });
});

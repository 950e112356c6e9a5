/** rebuildCatalog as a library: meta digests, PostgreSQL-like log positions, and the archives it must not record. */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { manifestFormat, type Manifest } from '../../src/archive/manifest.js';
import { tarTarget } from '../../src/archive/tar-target.js';
import { Catalog } from '../../src/catalog/catalog.js';
import { rebuildCatalog } from '../../src/catalog/rebuild.js';
import { parseConfig } from '../../src/config/load.js';
import { tempDir } from '../helpers/env.js';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

function manifestOf(backupId: string, instance: string, over: Partial<Manifest> = {}): Manifest {
  return {
    format: manifestFormat,
    backupId,
    instance,
    vendor: 'postgres',
    server: { version: '16.4' },
    startedAt: '2026-01-02T03:04:05.000Z',
    finishedAt: '2026-01-02T03:04:09.000Z',
    blockWindowMs: 12.5,
    windowSteps: { block: 1, snapshot: 10, unblock: 1.5 },
    snapshotProvider: 'btrfs',
    log: { logStart: '0/2000028', logEnd: '0/2000100', timeline: 1 },
    metaFiles: ['backup_label', 'tablespace_map'],
    spaces: [
      { name: 'global', critical: true, kind: 'cluster', stream: 'spaces/global.tar' },
      { name: 'db_shop', critical: false, kind: 'database', stream: 'spaces/db_shop.tar' },
    ],
    members: [
      { space: 'global', name: 'global/pg_control', path: '/srv/pg/global/pg_control', type: 'file', size: 8192, sha256: 'a'.repeat(64), stream: 'spaces/global.tar', offset: 512 },
      { space: 'db_shop', name: 'base/16384', path: '/srv/pg/base/16384', type: 'directory', size: 0, sha256: 'b'.repeat(64), stream: 'spaces/db_shop.tar', offset: 512 },
      { space: 'db_shop', name: 'base/16384/1259', path: '/srv/pg/base/16384/1259', type: 'file', size: 100, sha256: 'c'.repeat(64), stream: 'spaces/db_shop.tar', offset: 1536, details: { relfilenode: 1259 } },
    ],
    ...over,
  };
}

describe('rebuildCatalog', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());
  const root = path.join(t.dir, 'backups');
  const config = parseConfig(
    { catalog: './catalog.db', instances: { pg: { adapter: 'sqlite', sqlite: { main: './x.db' }, target: { type: 'tar', path: './backups' } } } },
    path.join(t.dir, 'ebr.yaml'),
    {},
  );

  it('records the log range, window, digests of the manifest bytes and of every meta file, and refuses what does not belong', async () => {
    const target = tarTarget({ path: root });
    const good = await target.create({ instance: 'pg', backupId: '20260102T030405Z-0001' });
    await good.writeMeta('backup_label', 'START WAL LOCATION: 0/2000028\n');
    await good.writeMeta('tablespace_map', '16385 /srv/ts1\n');
    await good.writeManifest(manifestOf('20260102T030405Z-0001', 'pg'));
    // A manifest copied in from another instance, and one whose meta file is gone.
    const stray = await target.create({ instance: 'pg', backupId: '20260102T030405Z-0002' });
    await stray.writeManifest(manifestOf('20260102T030405Z-0009', 'other', { metaFiles: [] }));
    const noMeta = await target.create({ instance: 'pg', backupId: '20260102T030405Z-0003' });
    await noMeta.writeMeta('backup_label', 'x');
    await noMeta.writeManifest(manifestOf('20260102T030405Z-0003', 'pg'));

    using cat = Catalog.open(path.join(t.dir, 'catalog.db'));
    const r = await rebuildCatalog({ config, catalog: cat, signal: new AbortController().signal });
    expect(r.added.map((a) => a.backupId)).toEqual(['20260102T030405Z-0001']);
    expect(r.skipped.map((s) => [s.backupId, s.reason])).toEqual([
      ['20260102T030405Z-0002', expect.stringMatching(/is of backup 20260102T030405Z-0009 of instance other, not of 20260102T030405Z-0002 of pg/)],
      ['20260102T030405Z-0003', expect.stringMatching(/meta file tablespace_map, named by the manifest, cannot be read/)],
    ]);

    const row = cat.db.prepare('SELECT * FROM backups WHERE id = ?').get('20260102T030405Z-0001') as Record<string, unknown>;
    const text = `${JSON.stringify(manifestOf('20260102T030405Z-0001', 'pg'), null, 2)}\n`;
    expect(row).toMatchObject({
      instance: 'pg',
      vendor: 'postgres',
      status: 'complete',
      phase: 'complete',
      started_at: '2026-01-02T03:04:05.000Z',
      finished_at: '2026-01-02T03:04:09.000Z',
      block_window_ms: 12.5,
      log_start: '0/2000028',
      log_end: '0/2000100',
      timeline: 1,
      snapshot_provider: 'btrfs',
      target_type: 'tar',
      location: path.join(root, 'pg', '20260102T030405Z-0001'),
      bytes: 8292,
      members: 3,
      manifest_sha256: sha256(text),
      removed_at: null,
    });
    expect(JSON.parse(row.window_steps as string)).toEqual({ block: 1, snapshot: 10, unblock: 1.5 });
    expect(JSON.parse(row.meta_sha256 as string)).toEqual({ backup_label: sha256('START WAL LOCATION: 0/2000028\n'), tablespace_map: sha256('16385 /srv/ts1\n') });
    expect(JSON.parse(row.server as string)).toEqual({ version: '16.4' });
    expect(row.rebuilt_at).toEqual(expect.stringMatching(/^\d{4}-/));
    expect(cat.db.prepare('SELECT space, critical, chunk, type, details FROM discovery WHERE backup_id = ? ORDER BY chunk').all('20260102T030405Z-0001')).toEqual([
      { space: 'db_shop', critical: 0, chunk: 'base/16384', type: 'directory', details: null },
      { space: 'db_shop', critical: 0, chunk: 'base/16384/1259', type: 'file', details: '{"relfilenode":1259}' },
      { space: 'global', critical: 1, chunk: 'global/pg_control', type: 'file', details: null },
    ]);
    expect(cat.db.prepare('SELECT first_seen, vendor FROM instances WHERE name = ?').get('pg')).toEqual({ first_seen: '2026-01-02T03:04:05.000Z', vendor: 'postgres' });
  });

  it('an instance whose target directory does not exist yet has nothing to rebuild', async () => {
    const other = parseConfig(
      { instances: { none: { adapter: 'sqlite', sqlite: { main: './x.db' }, target: { type: 'dir', path: './nowhere' } } } },
      path.join(t.dir, 'ebr.yaml'),
      {},
    );
    using cat = Catalog.open(path.join(t.dir, 'other.db'));
    expect(await rebuildCatalog({ config: other, catalog: cat, signal: new AbortController().signal })).toMatchObject({ added: [], present: [], skipped: [] });
  });
});

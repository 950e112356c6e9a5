/**
 * `ebr catalog rebuild`: with the catalog file gone, the backups come back from their archives'
 * manifests, and list, show, verify and restore work from the rebuilt catalog. A damaged manifest and
 * an archive without one are reported and skipped; a damaged catalog file is never overwritten.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEbr, tempDir } from '../helpers/env.js';
import { integrity, makeInstance, query, type TestInstance } from './sqlite-instance.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Listed {
  id: string;
  status: string;
  vendor: string;
  startedAt: string;
  finishedAt: string;
  blockWindowMs: number;
  bytes: number;
  members: number;
  rebuiltAt: string | null;
}

function removeCatalog(inst: TestInstance): void {
  for (const suffix of ['', '-wal', '-shm']) rmSync(path.join(inst.dir, `var/catalog.db${suffix}`), { force: true });
}

function catalogRows<T>(inst: TestInstance, sql: string, ...args: unknown[]): T[] {
  const db = new Database(path.join(inst.dir, 'var/catalog.db'), { readonly: true });
  try {
    return db.prepare(sql).all(...args) as T[];
  } finally {
    db.close();
  }
}

async function backup(inst: TestInstance): Promise<string> {
  const r = await runEbr(['--config', inst.config, '--json', 'backup']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout).backupId as string;
}

describe('ebr catalog rebuild (tar target)', () => {
  const t = tempDir();
  let inst: TestInstance;
  let ids: string[];
  let damagedId: string;
  let before: Listed[];
  let sealedDigests: Record<string, string>;
  const archives = () => path.join(inst.dir, 'var/backups/t');
  const partialId = '20990101T000000Z-dead';

  beforeAll(async () => {
    inst = makeInstance(t.dir, { sqliteCatalog: true });
    ids = [await backup(inst)];
    query(inst.notes, "INSERT INTO note (body) VALUES ('after the first backup') RETURNING id");
    ids.push(await backup(inst));
    damagedId = await backup(inst);
    const l = await runEbr(['--config', inst.config, '--json', 'list']);
    before = (JSON.parse(l.stdout) as Listed[]).filter((b) => ids.includes(b.id));
    sealedDigests = Object.fromEntries(catalogRows<{ id: string; manifest_sha256: string }>(inst, 'SELECT id, manifest_sha256 FROM backups').map((r) => [r.id, r.manifest_sha256]));
    // The third backup's manifest is cut short; a fourth archive never got one (its backup died
    // mid-stream); and the log stores' directories beside the archives are not backups at all.
    truncateSync(path.join(archives(), damagedId, 'manifest.json'), 100);
    mkdirSync(path.join(archives(), partialId, 'spaces'), { recursive: true });
    mkdirSync(path.join(archives(), partialId, 'meta'));
    writeFileSync(path.join(archives(), partialId, 'spaces', 'main.tar'), Buffer.alloc(1024));
    mkdirSync(path.join(archives(), 'wal'));
    writeFileSync(path.join(archives(), 'wal', '000000010000000000000001'), 'x');
    removeCatalog(inst);
  });
  afterAll(() => t.cleanup());

  it('without the catalog, list shows nothing', async () => {
    const r = await runEbr(['--config', inst.config, '--json', 'list']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([]);
  });

  it('adds the backups from their manifests, and reports the damaged manifest and the partial archive by path', async () => {
    const r = await runEbr(['--config', inst.config, '--json', 'catalog', 'rebuild']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as { added: Array<{ backupId: string }>; present: unknown[]; skipped: Array<{ backupId: string; path: string; reason: string }> };
    expect(rep.added.map((a) => a.backupId)).toEqual(ids);
    expect(rep.present).toEqual([]);
    expect(rep.skipped).toHaveLength(2);
    const damaged = rep.skipped.find((s) => s.backupId === damagedId)!;
    expect(damaged.path).toBe(path.join(archives(), damagedId, 'manifest.json'));
    expect(damaged.reason).toMatch(/does not parse/);
    const partial = rep.skipped.find((s) => s.backupId === partialId)!;
    expect(partial.path).toBe(path.join(archives(), partialId));
    expect(partial.reason).toMatch(/no manifest\.json.*partial archive/);
    expect(r.stdout).not.toMatch(/"wal"/);
  });

  it('the rebuilt rows carry what the manifests say, the digests of manifest and meta files, members and discovery', async () => {
    const l = await runEbr(['--config', inst.config, '--json', 'list']);
    expect(l.code, l.stderr).toBe(0);
    const after = JSON.parse(l.stdout) as Listed[];
    expect(after.map((b) => b.id)).toEqual([...ids].reverse());
    for (const b of after) {
      const was = before.find((x) => x.id === b.id)!;
      expect(b.rebuiltAt).toMatch(/^\d{4}-\d\d-\d\dT/);
      // The same backup, but for finishedAt: the manifest's (written just before the catalog marked it complete).
      expect({ ...b, rebuiltAt: null, finishedAt: null }).toMatchObject({ ...was, rebuiltAt: null, finishedAt: null });
      const dir = path.join(archives(), b.id);
      const manifestBytes = readFileSync(path.join(dir, 'manifest.json'));
      const manifest = JSON.parse(manifestBytes.toString()) as { finishedAt: string; metaFiles: string[]; members: Array<{ space: string; name: string; size: number; sha256: string; stream: string; offset: number }> };
      expect(b.finishedAt).toBe(manifest.finishedAt);
      expect(Date.parse(was.finishedAt) - Date.parse(b.finishedAt)).toBeLessThan(5000);
      const [row] = catalogRows<{ status: string; manifest_sha256: string; meta_sha256: string; target_type: string; location: string }>(inst, 'SELECT * FROM backups WHERE id = ?', b.id);
      expect(row).toMatchObject({ status: 'complete', target_type: 'tar', location: dir, manifest_sha256: sha256(manifestBytes) });
      // The very digest the original catalog recorded at seal.
      expect(row!.manifest_sha256).toBe(sealedDigests[b.id]);
      expect(JSON.parse(row!.meta_sha256)).toEqual(Object.fromEntries(manifest.metaFiles.map((n) => [n, sha256(readFileSync(path.join(dir, 'meta', n)))])));
      const members = catalogRows<{ space: string; name: string; size: number; sha256: string; stream: string; offset: number }>(inst, 'SELECT space, name, size, sha256, stream, offset FROM members WHERE backup_id = ? ORDER BY space, name', b.id);
      const want = manifest.members.map(({ space, name, size, sha256: s, stream, offset }) => ({ space, name, size, sha256: s, stream, offset }));
      expect(members).toEqual(want.sort((x, y) => (x.space + x.name < y.space + y.name ? -1 : 1)));
      const discovery = catalogRows<{ space: string; critical: number }>(inst, 'SELECT space, critical FROM discovery WHERE backup_id = ?', b.id);
      expect(discovery).toHaveLength(manifest.members.length);
      expect([...new Set(discovery.filter((d) => d.critical === 1).map((d) => d.space))]).toEqual(['main']);
    }
  });

  it('list and show mark them as rebuilt from the archive', async () => {
    const l = await runEbr(['--config', inst.config, 'list']);
    expect(l.code, l.stderr).toBe(0);
    for (const id of ids) expect(l.stdout).toMatch(new RegExp(`^${id} .*\\(rebuilt from archive\\)$`, 'm'));
    const s = await runEbr(['--config', inst.config, 'show', 'latest']);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout).toMatch(new RegExp(`^backup ${ids[1]}  complete \\(rebuilt from archive\\)`, 'm'));
    expect(s.stdout).toMatch(/recorded from its archive's manifest by `ebr catalog rebuild`/);
    expect(s.stdout).toMatch(/^main +main database +yes +2 /m);
  });

  it('verify latest and restore --to work from the rebuilt catalog', async () => {
    const v = await runEbr(['--config', inst.config, 'verify', 'latest']);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toMatch(new RegExp(`backup ${ids[1]}: all \\d+ members verified`));
    const to = path.join(t.dir, 'restored');
    const r = await runEbr(['--config', inst.config, 'restore', '--to', to]);
    expect(r.code, r.stderr).toBe(0);
    for (const f of ['main.db', 'side.db', 'notes.db']) expect(integrity(path.join(to, f))).toBe('ok');
    expect(query<{ n: number }>(path.join(to, 'notes.db'), 'SELECT count(*) AS n FROM note').n).toBe(501);
    const first = path.join(t.dir, 'restored-first');
    const r1 = await runEbr(['--config', inst.config, 'restore', '--backup', ids[0]!, '--to', first]);
    expect(r1.code, r1.stderr).toBe(0);
    expect(query<{ n: number }>(path.join(first, 'notes.db'), 'SELECT count(*) AS n FROM note').n).toBe(500);
  });

  it('run again, it leaves what the catalog has alone', async () => {
    const r = await runEbr(['--config', inst.config, 'catalog', 'rebuild']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/0 added .*2 already present, 2 skipped/);
    for (const id of ids) expect(r.stdout).toMatch(new RegExp(`^present +t +${id} `, 'm'));
    expect(r.stdout).toMatch(new RegExp(`^skipped +t +${damagedId} +\\S+manifest\\.json: the manifest does not parse`, 'm'));
    // A backup taken now is the catalog's own, not a rebuilt one.
    const id = await backup(inst);
    const l = JSON.parse((await runEbr(['--config', inst.config, '--json', 'list'])).stdout) as Listed[];
    expect(l.find((b) => b.id === id)?.rebuiltAt).toBeNull();
  });

  it('a damaged catalog file is refused with the way out, and rebuilt once it is moved aside', async () => {
    const file = path.join(inst.dir, 'var/catalog.db');
    removeCatalog(inst);
    writeFileSync(file, Buffer.alloc(8192, 0x5a));
    const r = await runEbr(['--config', inst.config, 'catalog', 'rebuild']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot open the catalog/);
    expect(r.stderr).toMatch(/hint: move the damaged file .*aside .*ebr catalog rebuild/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(readFileSync(file).equals(Buffer.alloc(8192, 0x5a))).toBe(true);
    renameSync(file, `${file}.damaged`);
    const again = await runEbr(['--config', inst.config, '--json', 'catalog', 'rebuild']);
    expect(again.code, again.stderr).toBe(0);
    expect((JSON.parse(again.stdout) as { added: unknown[] }).added).toHaveLength(3);
  });
});

describe('ebr catalog rebuild (dir target)', () => {
  const t = tempDir();
  afterAll(() => t.cleanup());

  it('rebuilds, verifies and restores a dir archive', async () => {
    const inst = makeInstance(t.dir, { target: 'dir', sqliteCatalog: true });
    const id = await backup(inst);
    removeCatalog(inst);
    const r = await runEbr(['--config', inst.config, '--json', 'catalog', 'rebuild']);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { added: Array<{ backupId: string }> }).added.map((a) => a.backupId)).toEqual([id]);
    const v = await runEbr(['--config', inst.config, 'verify', id]);
    expect(v.code, v.stderr).toBe(0);
    const to = path.join(t.dir, 'restored');
    const x = await runEbr(['--config', inst.config, 'restore', '--to', to]);
    expect(x.code, x.stderr).toBe(0);
    expect(integrity(path.join(to, 'main.db'))).toBe('ok');
  });
});

import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { EbrError } from '../../src/errors.js';
import { logStoreAt } from '../../src/logs/log-store.js';
import { logStoreOf } from '../../src/workflow/context.js';
import type { InstanceConfig } from '../../src/config/load.js';
import { tempDir } from '../helpers/env.js';

const tmp = tempDir('ebr-logstore-');
afterAll(() => tmp.cleanup());

function source(name: string, bytes: Buffer | string): string {
  const f = path.join(tmp.dir, 'src', name);
  execFileSync('mkdir', ['-p', path.dirname(f)]);
  writeFileSync(f, bytes);
  return f;
}
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('log store', () => {
  const root = path.join(tmp.dir, 'store');
  const store = logStoreAt(root, 'pg1');
  const seg = Buffer.alloc(3 << 20, 7);
  seg.write('segment one', 1000);

  it('stores a log with its digest, and the sidecar checks with sha256sum', async () => {
    expect(await store.has('000000010000000000000001')).toBe(false);
    expect(await store.put('000000010000000000000001', source('a', seg))).toBe('stored');
    expect(await store.has('000000010000000000000001')).toBe(true);
    expect(readFileSync(path.join(root, '000000010000000000000001')).equals(seg)).toBe(true);
    expect(readFileSync(path.join(root, '000000010000000000000001.sha256'), 'utf8')).toBe(`${sha(seg)}  000000010000000000000001\n`);
    execFileSync('sha256sum', ['-c', '--quiet', '000000010000000000000001.sha256'], { cwd: root });
    expect(readdirSync(root).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('accepts the same bytes again and refuses different bytes under the same name', async () => {
    expect(await store.put('000000010000000000000001', source('a-again', seg))).toBe('identical');
    const other = Buffer.from(seg);
    other[5] = 1;
    const err = await store.put('000000010000000000000001', source('b', other)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EbrError);
    expect((err as EbrError).code).toBe('logArchive');
    expect((err as EbrError).message).toMatch(/different 000000010000000000000001/);
    expect((err as EbrError).hint).toMatch(/same log archive/);
    // the first bytes are kept
    expect(readFileSync(path.join(root, '000000010000000000000001')).equals(seg)).toBe(true);
  });

  it('gets a log into place, verified, and says false for a missing one', async () => {
    const dest = path.join(tmp.dir, 'out', 'RECOVERYXLOG');
    execFileSync('mkdir', ['-p', path.dirname(dest)]);
    expect(await store.get('000000010000000000000001', dest)).toBe(true);
    expect(readFileSync(dest).equals(seg)).toBe(true);
    expect(await store.get('000000010000000000000009', path.join(tmp.dir, 'out', 'x'))).toBe(false);
    expect(existsSync(path.join(tmp.dir, 'out', 'x'))).toBe(false);
  });

  it('refuses to hand out a damaged log and leaves the destination untouched', async () => {
    await store.put('00000002.history', source('h', '1\t0/3000000\tno recovery target specified\n'));
    writeFileSync(path.join(root, '00000002.history'), '1\t0/4000000\tdamaged\n');
    const dest = path.join(tmp.dir, 'out', 'hist');
    const err = await store.get('00000002.history', dest).catch((e: unknown) => e);
    expect((err as EbrError).code).toBe('digestMismatch');
    expect(existsSync(dest)).toBe(false);
    expect(readdirSync(path.join(tmp.dir, 'out')).filter((f) => f.includes('ebr-tmp'))).toEqual([]);
  });

  it('replaces a log left without its digest by a crash', async () => {
    writeFileSync(path.join(root, '000000010000000000000002'), 'half written');
    expect(await store.has('000000010000000000000002')).toBe(false);
    expect(await store.put('000000010000000000000002', source('c', 'whole segment'))).toBe('stored');
    expect(readFileSync(path.join(root, '000000010000000000000002'), 'utf8')).toBe('whole segment');
  });

  it('lists logs by prefix with sizes and digests, skipping half-written ones', async () => {
    writeFileSync(path.join(root, '000000010000000000000003'), 'no sidecar');
    const all = await store.list();
    expect(all.map((l) => l.name)).toEqual(['000000010000000000000001', '000000010000000000000002', '00000002.history']);
    expect(all[0]).toEqual({ name: '000000010000000000000001', size: seg.length, sha256: sha(seg) });
    expect((await store.list('00000001')).map((l) => l.name)).toEqual(['000000010000000000000001', '000000010000000000000002']);
  });

  it('refuses names that are not plain file names', async () => {
    for (const bad of ['../x', 'a/b', '.hidden', 'x.sha256', '']) {
      await expect(store.put(bad, source('d', 'x'))).rejects.toMatchObject({ code: 'logArchive' });
    }
  });

  it('puts the store of a local target under <target.path>/<instance>/<kind>/', async () => {
    for (const type of ['dir', 'tar']) {
      const inst = { name: 'shop', target: { type, path: path.join(tmp.dir, `backups-${type}`) } } as unknown as InstanceConfig;
      await logStoreOf(inst, 'binlog').put('mariadb-bin.000001', source('e', 'binlog'));
      expect(existsSync(path.join(tmp.dir, `backups-${type}`, 'shop', 'binlog', 'mariadb-bin.000001.sha256'))).toBe(true);
    }
  });

  it('keeps one copy when many puts of the same log race', async () => {
    const f = source('race', seg);
    const results = await Promise.all(Array.from({ length: 6 }, () => store.put('000000010000000000000010', f)));
    expect(results.filter((r) => r === 'stored').length).toBe(1);
    expect(results.filter((r) => r === 'identical').length).toBe(5);
    expect(readdirSync(root).filter((f) => f.startsWith('.'))).toEqual([]);
  });
});

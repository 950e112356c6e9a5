/**
 * The log store beside the backups in the bucket, against s3rver: one PutObject per log with its
 * sha256 as metadata, the 'identical' re-put, different bytes refused, a damaged object refused on get,
 * listing by prefix — and a backup's removal leaves the logs alone.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3LogStore, s3Settings, s3Target } from '../../src/archive/s3/index.js';
import { EbrError } from '../../src/errors.js';
import { tempDir } from '../helpers/env.js';
import { fixtureSpaces, writeBackup } from './backup-fixture.js';
import { recordRequests, s3Credentials, startS3Server, type S3Server } from './s3-server.js';

const tmp = tempDir('ebr-s3-logs-');
let server: S3Server;
beforeAll(async () => {
  Object.assign(process.env, s3Credentials);
  server = await startS3Server();
  mkdirSync(path.join(tmp.dir, 'src'));
  mkdirSync(path.join(tmp.dir, 'out'));
});
afterAll(async () => {
  await server?.stop();
  tmp.cleanup();
});

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
function source(name: string, bytes: Buffer | string): string {
  const f = path.join(tmp.dir, 'src', name);
  writeFileSync(f, bytes);
  return f;
}

describe('s3 log store', { timeout: 120_000 }, () => {
  const segment = Buffer.alloc(16 << 20, 3);
  segment.write('segment one', 4096);
  const name = '000000010000000000000001';

  it('stores a 16 MiB segment with one PutObject, its sha256 as metadata, and gets it back verified', async () => {
    const { requests, options } = recordRequests();
    const store = s3LogStore(server.settings({ prefix: 'ebr' }), 'pg1', 'wal', options);
    expect(await store.has(name)).toBe(false);
    expect(await store.put(name, source('a', segment))).toBe('stored');
    const puts = requests.filter((r) => r.command === 'PutObjectCommand');
    expect(puts.map((r) => r.input.Key)).toEqual([`ebr/pg1/wal/${name}`]);
    expect(puts[0]!.input.Metadata).toEqual({ sha256: sha(segment) });
    expect(puts[0]!.input.ChecksumSHA256).toBe(Buffer.from(sha(segment), 'hex').toString('base64'));
    expect(requests.some((r) => r.command === 'CreateMultipartUploadCommand')).toBe(false);
    expect(await server.keys('ebr/pg1/wal/')).toEqual([`ebr/pg1/wal/${name}`]);
    expect(await store.has(name)).toBe(true);

    const dest = path.join(tmp.dir, 'out', 'RECOVERYXLOG');
    expect(await store.get(name, dest)).toBe(true);
    expect(readFileSync(dest).equals(segment)).toBe(true);
    expect(await store.get('000000010000000000000009', path.join(tmp.dir, 'out', 'x'))).toBe(false);
    expect(existsSync(path.join(tmp.dir, 'out', 'x'))).toBe(false);
  });

  it("accepts the same bytes again as 'identical' and refuses different bytes under the same name", async () => {
    const store = s3LogStore(server.settings({ prefix: 'ebr' }), 'pg1', 'wal');
    expect(await store.put(name, source('a-again', segment))).toBe('identical');
    const other = Buffer.from(segment);
    other[5] = 1;
    const err = await store.put(name, source('b', other)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EbrError);
    expect((err as EbrError).code).toBe('logArchive');
    expect((err as EbrError).message).toMatch(/already holds a different 000000010000000000000001/);
    expect((err as EbrError).hint).toMatch(/same log archive/);
    const dest = path.join(tmp.dir, 'out', 'kept');
    await store.get(name, dest);
    expect(readFileSync(dest).equals(segment)).toBe(true);
  });

  it('refuses to hand out a damaged log and leaves the destination untouched', async () => {
    const store = s3LogStore(server.settings({ prefix: 'ebr' }), 'pg1', 'wal');
    await store.put('00000002.history', source('h', '1\t0/3000000\tno recovery target specified\n'));
    // Bit rot in the bucket: the bytes change, the recorded digest does not.
    writeFileSync(server.objectFile('ebr/pg1/wal/00000002.history'), '1\t0/4000000\tdamaged!!!!!!!!!!!!!!!!!!!!!!\n');
    const dest = path.join(tmp.dir, 'out', 'hist');
    const err = await store.get('00000002.history', dest).catch((e: unknown) => e);
    expect((err as EbrError).code).toBe('digestMismatch');
    expect(existsSync(dest)).toBe(false);
    expect(readdirSync(path.join(tmp.dir, 'out')).filter((f) => f.includes('ebr-tmp'))).toEqual([]);
  });

  it('lists logs by prefix with sizes and digests; an object it did not write is not a log', async () => {
    const store = s3LogStore(server.settings({ prefix: 'ebr' }), 'pg2', 'binlog');
    for (const n of ['mysql-bin.000001', 'mysql-bin.000002', 'other.000001']) await store.put(n, source(n, `bytes of ${n}`));
    // Put there by hand, without the digest ebr records: not in the store, and never overwritten.
    writeFileSync(path.join(tmp.dir, 'src', 'stray'), 'stray');
    const raw = s3LogStore(server.settings({ prefix: 'ebr' }), 'pg2', 'binlog', {
      onClient: (c) =>
        c.middlewareStack.add(
          (next) => async (args) => {
            delete (args.input as { Metadata?: unknown }).Metadata;
            return next(args);
          },
          { step: 'initialize', name: 'dropMetadata' },
        ),
    });
    await raw.put('mysql-bin.000003', path.join(tmp.dir, 'src', 'stray'));
    expect(await store.has('mysql-bin.000003')).toBe(false);
    expect(await store.list('mysql-bin.')).toEqual([
      { name: 'mysql-bin.000001', size: Buffer.byteLength('bytes of mysql-bin.000001'), sha256: sha('bytes of mysql-bin.000001') },
      { name: 'mysql-bin.000002', size: Buffer.byteLength('bytes of mysql-bin.000002'), sha256: sha('bytes of mysql-bin.000002') },
    ]);
    expect((await store.list()).map((e) => e.name)).toEqual(['mysql-bin.000001', 'mysql-bin.000002', 'other.000001']);
    const err = await store.put('mysql-bin.000003', source('m3', 'real bytes')).catch((e: unknown) => e);
    expect((err as EbrError).message).toMatch(/an object mysql-bin\.000003 that ebr did not write/);
  });

  it('streams logs bigger than what it reads into memory, and checks names', async () => {
    const store = s3LogStore(server.settings({ prefix: 'ebr' }), 'pg2', 'binlog');
    const big = Buffer.alloc((64 << 20) + 5, 9);
    expect(await store.put('mysql-bin.000100', source('big', big))).toBe('stored');
    const dest = path.join(tmp.dir, 'out', 'big');
    expect(await store.get('mysql-bin.000100', dest)).toBe(true);
    expect(sha(readFileSync(dest))).toBe(sha(big));
    for (const bad of ['../x', 'a/b', '.hidden', '']) await expect(store.put(bad, dest)).rejects.toThrow(/cannot be a log name/);
  });

  it('lives beside the backups: list() does not take it for a backup, remove() of a backup leaves it', async () => {
    const store = s3LogStore(server.settings({ prefix: 'ebr' }), 'shop', 'wal');
    await store.put(name, source('seg', 'a segment'));
    const target = s3Target(s3Settings.parse(server.settings({ prefix: 'ebr' })));
    const ref = { instance: 'shop', backupId: '20250101T000000Z-bb01' };
    await writeBackup(target, ref, { tiny: fixtureSpaces().tiny! });
    expect((await target.list!('shop')).map((a) => a.backupId)).toEqual([ref.backupId]);
    await target.remove(ref);
    expect(await target.list!('shop')).toEqual([]);
    expect(await store.has(name)).toBe(true);
  });
  it('removes one log with one DeleteObject (for ebr log purge); an absent log is no error', async () => {
    const { requests, options } = recordRequests();
    const store = s3LogStore(server.settings({ prefix: 'purge' }), 'pg1', 'wal', options);
    await store.put('000000010000000000000001', source('p1', 'one'));
    await store.put('000000010000000000000002', source('p2', 'two'));
    await store.remove!('000000010000000000000001');
    expect(requests.filter((r) => r.command === 'DeleteObjectCommand').map((r) => r.input.Key)).toEqual(['purge/pg1/wal/000000010000000000000001']);
    expect(await server.keys('purge/pg1/wal/')).toEqual(['purge/pg1/wal/000000010000000000000002']);
    expect((await store.list()).map((l) => l.name)).toEqual(['000000010000000000000002']);
    expect(await store.has('000000010000000000000001')).toBe(false);
    await expect(store.remove!('000000010000000000000001')).resolves.toBeUndefined();
    expect(await store.get('000000010000000000000002', path.join(tmp.dir, 'out', 'kept'))).toBe(true);
  });
});

/**
 * The coded log store on a real directory store: logs written through a codec come back byte for
 * byte, a re-put of the same log is 'identical' though its encoding differs, a different log under the
 * same name is refused, logs stored as they are (before the instance encoded) still read, and a
 * damaged envelope is named. The codec here is the real one of an instance with zstd and a key.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { codecForBackup, codecForReading, type CodecInstance } from '../../src/archive/codec/index.js';
import { codedLogStore } from '../../src/logs/coded-log-store.js';
import { logStoreAt } from '../../src/logs/log-store.js';
import { tempDir } from '../helpers/env.js';

const t = tempDir('ebr-coded-logs-');
afterAll(() => t.cleanup());

const keyFile = path.join(t.dir, 'key');
writeFileSync(keyFile, randomBytes(32).toString('hex'));
const instance: CodecInstance = { name: 'pg', compression: { type: 'zstd' }, encryption: { keyFile } };
const codecs = (encodes: boolean) => ({ encodes, forWriting: () => codecForBackup(instance), forReading: (s: Parameters<typeof codecForReading>[0]) => codecForReading(s, instance) });

/** A WAL-like segment: mostly alike pages with some noise, so it compresses like a real one. */
function segment(name: string, seed: number): string {
  const f = path.join(t.dir, name);
  const page = Buffer.alloc(8192, seed % 251);
  const parts: Buffer[] = [];
  for (let i = 0; i < 256; i++) parts.push(i % 16 === 0 ? randomBytes(8192) : page);
  writeFileSync(f, Buffer.concat(parts));
  return f;
}

describe('coded log store', () => {
  const root = path.join(t.dir, 'store');
  const inner = logStoreAt(root, 'pg');
  const store = codedLogStore(inner, codecs(true), { instance: 'pg', kind: 'wal' });

  it('stores an envelope (smaller, no plain page) and gets the original back', async () => {
    const src = segment('000000010000000000000001', 7);
    expect(await store.put('000000010000000000000001', src)).toBe('stored');
    const stored = readFileSync(path.join(root, '000000010000000000000001'));
    expect(stored.subarray(0, 8).toString()).toBe('EBRLOG1\n');
    expect(stored.length).toBeLessThan(readFileSync(src).length / 2);
    expect(stored.includes(Buffer.alloc(64, 7))).toBe(false);
    const dest = path.join(t.dir, 'got-1');
    expect(await store.get('000000010000000000000001', dest)).toBe(true);
    expect(readFileSync(dest).equals(readFileSync(src))).toBe(true);
    expect(readdirSync(t.dir).filter((f) => f.includes('.ebr-'))).toEqual([]);
  });

  it('a retried put of the same log is identical; different bytes under the name are refused', async () => {
    const src = path.join(t.dir, '000000010000000000000001');
    expect(await store.put('000000010000000000000001', src)).toBe('identical');
    const other = segment('other', 9);
    await expect(store.put('000000010000000000000001', other)).rejects.toMatchObject({ code: 'logArchive' });
  });

  it('a log stored as it is (before the instance encoded its logs) still reads', async () => {
    const src = segment('000000010000000000000002', 3);
    const plain = codedLogStore(inner, codecs(false), { instance: 'pg', kind: 'wal' });
    expect(await plain.put('000000010000000000000002', src)).toBe('stored');
    expect(readFileSync(path.join(root, '000000010000000000000002')).equals(readFileSync(src))).toBe(true);
    const dest = path.join(t.dir, 'got-2');
    expect(await store.get('000000010000000000000002', dest)).toBe(true);
    expect(readFileSync(dest).equals(readFileSync(src))).toBe(true);
    // And the other way: an instance that stopped encoding still replays its encoded logs.
    const dest1 = path.join(t.dir, 'got-1b');
    expect(await plain.get('000000010000000000000001', dest1)).toBe(true);
    expect(readFileSync(dest1).equals(readFileSync(path.join(t.dir, '000000010000000000000001')))).toBe(true);
  });

  it('an absent log is false, and a log damaged in the store is refused with nothing left at the destination', async () => {
    expect(await store.get('000000010000000000000009', path.join(t.dir, 'nope'))).toBe(false);
    // Damage the envelope body and its sidecar alike (as an attacker or a bad copy would): the codec catches it.
    const src = segment('000000010000000000000003', 5);
    await store.put('000000010000000000000003', src);
    const file = path.join(root, '000000010000000000000003');
    const bytes = readFileSync(file);
    bytes[bytes.length - 100] ^= 0xff;
    writeFileSync(file, bytes);
    writeFileSync(`${file}.sha256`, `${createHash('sha256').update(bytes).digest('hex')}  000000010000000000000003\n`);
    const dest = path.join(t.dir, 'got-3');
    await expect(store.get('000000010000000000000003', dest)).rejects.toThrow();
    expect(existsSync(dest)).toBe(false);
    expect(readdirSync(t.dir).filter((f) => f.startsWith('got-3'))).toEqual([]);
  });
});

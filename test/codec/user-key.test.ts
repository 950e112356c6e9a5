/**
 * The user's key and the compression settings, checked by codecForBackup before any window: a key file
 * in hex, base64 or raw bytes, a key in hex or base64; anything else is a config error that names the
 * config key, says what was wrong and how to make a key, and never shows the key.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { codecForBackup, type CodecInstance } from '../../src/archive/codec/index.js';
import { keyIdOf } from '../../src/archive/codec/user-key.js';
import { tempDir } from '../helpers/env.js';
import { rejection, testKeyHex } from './codec-helpers.js';

const t = tempDir('ebr-codec-keys-');
afterAll(() => t.cleanup());
const key = Buffer.from(testKeyHex, 'hex');
const expectedId = keyIdOf(key);

function keyFile(name: string, content: string | Buffer): string {
  const f = path.join(t.dir, name);
  writeFileSync(f, content, { mode: 0o600 });
  return f;
}

const withFile = (file: string): CodecInstance => ({ name: 'shop', encryption: { keyFile: file } });
const withKey = (k: string): CodecInstance => ({ name: 'shop', encryption: { key: k } });
const keyIdOfCodec = async (i: CodecInstance) => (await codecForBackup(i)).stored!.encryption!.keyId;

/** No form of the key may appear in `text`. */
function expectNoKey(text: string, secret: Buffer | string): void {
  const b = typeof secret === 'string' ? Buffer.from(secret) : secret;
  for (const form of [b.toString('hex'), b.toString('hex').toUpperCase(), b.toString('base64'), b.toString('latin1')]) if (form.length >= 8) expect(text).not.toContain(form);
  if (typeof secret === 'string' && secret.length >= 8) expect(text).not.toContain(secret);
}

describe('the user key', () => {
  it('a key file of 64 hex digits (with a newline), base64 of 32 bytes, or 32 raw bytes: the same key, the same id', async () => {
    expect(await keyIdOfCodec(withFile(keyFile('hex.key', `${testKeyHex}\n`)))).toBe(expectedId);
    expect(await keyIdOfCodec(withFile(keyFile('HEX.key', `  ${testKeyHex.toUpperCase()}\r\n`)))).toBe(expectedId);
    expect(await keyIdOfCodec(withFile(keyFile('b64.key', `${key.toString('base64')}\n`)))).toBe(expectedId);
    expect(await keyIdOfCodec(withFile(keyFile('raw.key', key)))).toBe(expectedId);
    expect(await keyIdOfCodec(withKey(testKeyHex))).toBe(expectedId);
    expect(await keyIdOfCodec(withKey(key.toString('base64')))).toBe(expectedId);
    expect(await keyIdOfCodec(withKey(key.toString('base64url')))).toBe(expectedId);
    expect(await keyIdOfCodec(withKey('01'.repeat(32)))).not.toBe(expectedId);
  });

  it('a missing key file: a config error naming the config key and the path, with how to make one', async () => {
    const missing = path.join(t.dir, 'nope.key');
    const err = await rejection(codecForBackup(withFile(missing)));
    expect(err.code).toBe('config');
    expect(err.message).toBe(`instances.shop.encryption.keyFile: ${missing} does not exist`);
    expect(err.hint).toContain(`openssl rand -hex 32 > ${missing}`);
  });

  it('a key file that cannot be read (a directory): a config error saying so', async () => {
    const err = await rejection(codecForBackup(withFile(t.dir)));
    expect(err.code).toBe('config');
    expect(err.message).toBe(`instances.shop.encryption.keyFile: ${t.dir} cannot be read (EISDIR)`);
  });

  it('a key file of the wrong length: says how long it is, never what it holds, and how to make a key', async () => {
    const short = '0123456789abcdef'.repeat(2); // a 128-bit key in hex
    for (const [name, content, bytes] of [
      ['short.key', `${short}\n`, 33],
      ['short-bare.key', short, 32], // 32 bytes, but hex digits: not taken for raw bytes
      ['long.key', Buffer.concat([key, key]), 64],
      ['b64-short.key', `${key.subarray(0, 24).toString('base64')}\n`, 33],
      ['empty.key', '', 0],
    ] as const) {
      const f = keyFile(name, content);
      const err = await rejection(codecForBackup(withFile(f)));
      expect(err.code, name).toBe('config');
      expect(err.message, name).toContain(`instances.shop.encryption.keyFile: ${f} holds ${bytes} bytes`);
      expect(err.message, name).toContain('64 hex digits, base64 of 32 bytes, or 32 raw bytes');
      expect(err.hint, name).toContain('openssl rand -hex 32');
      expectNoKey(`${err.message} ${err.hint} ${JSON.stringify(err)}`, Buffer.isBuffer(content) ? content : content.trim());
    }
  });

  it('a key of the wrong length, or empty: a config error naming instances.<name>.encryption.key and the length only', async () => {
    const bad = 'ab'.repeat(20);
    const err = await rejection(codecForBackup(withKey(bad)));
    expect(err.code).toBe('config');
    expect(err.message).toBe('instances.shop.encryption.key is 40 characters, which is not a 256-bit key (64 hex digits, or 44 characters of base64 of 32 bytes)');
    expect(err.hint).toContain('openssl rand -hex 32');
    expectNoKey(`${err.message} ${err.hint}`, bad);
    const notHex = 'zz'.repeat(32);
    expectNoKey((await rejection(codecForBackup(withKey(notHex)))).message, notHex);
    const empty = await rejection(codecForBackup(withKey('  ')));
    expect(empty.code).toBe('config');
    expect(empty.message).toBe('instances.shop.encryption.key is empty');
    expect(empty.hint).toMatch(/environment variable/);
  });
});

describe('compression settings', () => {
  const c = (compression: CodecInstance['compression']) => codecForBackup({ name: 'shop', compression });

  it('levels outside what a compression takes, or a level where there is none, are config errors naming the key', async () => {
    for (const [settings, expected] of [
      [{ type: 'zstd', level: 22 }, 'instances.shop.compression.level is 22; zstd takes -7 to 19'],
      [{ type: 'gzip', level: 0 }, 'instances.shop.compression.level is 0; gzip takes 1 to 9'],
      [{ type: 'lz4', level: 9 }, 'instances.shop.compression.level is set, but lz4 has no levels in ebr'],
      [{ type: 'none', level: 1 }, 'instances.shop.compression.level is set, but type is none'],
    ] as const) {
      const err = await rejection(c(settings));
      expect(err.code).toBe('config');
      expect(err.message).toBe(expected);
      expect(err.context).toMatchObject({ key: 'instances.shop.compression.level' });
    }
  });

  it('every level of the range works', async () => {
    for (const level of [-7, 1, 19]) expect((await c({ type: 'zstd', level })).stored).toEqual({ compression: 'zstd', level });
    for (const level of [1, 9]) expect((await c({ type: 'gzip', level })).stored).toEqual({ compression: 'gzip', level });
  });
});

/**
 * The user's 256-bit key, from `encryption: { keyFile }` or `encryption: { key }`. Messages say where
 * the key was looked for and what was wrong with it (a length, a missing file), never the key itself.
 */
import { createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { EncryptionSettings } from '../codec.js';
import { EbrError } from '../../errors.js';

export interface UserKey {
  readonly key: Buffer;
  /** What identifies the key in the manifest: see keyIdOf. */
  readonly keyId: string;
  /** The config key it came from, for messages: `instances.shop.encryption.keyFile (/etc/ebr/shop.key)`. */
  readonly where: string;
}

const keyBytes = 32;
const makeOne = (file: string) => `make a new one with \`openssl rand -hex 32 > ${file}\`, and keep a copy away from the backups: without it they cannot be read`;

/**
 * A digest that names the key without revealing it: HMAC-SHA256 keyed by the key over a fixed text,
 * 16 hex digits. Equal keys give equal ids; the id says nothing about the key.
 */
export function keyIdOf(key: Buffer): string {
  return createHmac('sha256', key).update('ebr key id v1').digest('hex').slice(0, 16);
}

/** The key as 64 hex digits or base64 (standard or url-safe) of 32 bytes; undefined otherwise. */
function fromText(text: string): Buffer | undefined {
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) {
    const b = Buffer.from(text, 'base64');
    if (b.length === keyBytes) return b;
  }
  return undefined;
}

export async function loadUserKey(instance: string, settings: EncryptionSettings): Promise<UserKey> {
  if (settings.keyFile !== undefined) return fromFile(`instances.${instance}.encryption.keyFile`, settings.keyFile);
  const at = `instances.${instance}.encryption.key`;
  const text = (settings.key ?? '').trim();
  if (text === '') {
    throw new EbrError('config', `${at} is empty`, {
      hint: 'give it the key through an environment variable that is set (key: ${EBR_KEY}), 64 hex digits from `openssl rand -hex 32`; or use keyFile',
      context: { key: at },
    });
  }
  const key = fromText(text);
  if (!key) {
    throw new EbrError('config', `${at} is ${text.length} characters, which is not a 256-bit key (64 hex digits, or 44 characters of base64 of 32 bytes)`, {
      hint: 'give it 64 hex digits, e.g. from `openssl rand -hex 32`',
      context: { key: at },
    });
  }
  return { key, keyId: keyIdOf(key), where: at };
}

async function fromFile(at: string, file: string): Promise<UserKey> {
  const where = `${at} (${file})`;
  let raw: Buffer;
  try {
    raw = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new EbrError('config', code === 'ENOENT' ? `${at}: ${file} does not exist` : `${at}: ${file} cannot be read (${code ?? (err as Error).message})`, {
      hint: code === 'ENOENT' ? `point ${at} at the key file, or ${makeOne(file)}` : `let the user running ebr read ${file} (and nobody else: chmod 600)`,
      context: { key: at, path: file },
      cause: err,
    });
  }
  const text = raw.toString('latin1').trim();
  // 32 bytes that are all hex digits are a 128-bit key in hex, not a 256-bit raw key.
  const key = raw.length === keyBytes && !/^[0-9a-fA-F]{32}$/.test(text) ? raw : fromText(text);
  if (!key) {
    throw new EbrError('config', `${at}: ${file} holds ${raw.length} bytes (${text.length} without surrounding whitespace), which is not a 256-bit key: ebr reads 64 hex digits, base64 of 32 bytes, or 32 raw bytes`, {
      hint: makeOne(file),
      context: { key: at, path: file },
    });
  }
  return { key, keyId: keyIdOf(key), where };
}

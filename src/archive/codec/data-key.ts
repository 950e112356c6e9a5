/**
 * The data key: 32 random bytes made for each backup (each codec codecForBackup makes), which encrypts
 * its streams, and is stored only wrapped by the user's key (AES-256-GCM with a random IV): base64 of
 * IV (12) ‖ ciphertext (32) ‖ tag (16). Changing the user's key never needs the data re-encrypted, and
 * no two backups share a data key.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const aad = Buffer.from('ebr data key v1');

export function newDataKey(): Buffer {
  return randomBytes(32);
}

export function wrapDataKey(dataKey: Buffer, userKey: Buffer): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', userKey, iv);
  c.setAAD(aad);
  const body = Buffer.concat([c.update(dataKey), c.final()]);
  return Buffer.concat([iv, body, c.getAuthTag()]).toString('base64');
}

/** The data key, or undefined when `userKey` does not open `wrapped` (another key, or a damaged record). */
export function unwrapDataKey(wrapped: string, userKey: Buffer): Buffer | undefined {
  const b = Buffer.from(wrapped, 'base64');
  if (b.length !== 12 + 32 + 16) return undefined;
  try {
    const d = createDecipheriv('aes-256-gcm', userKey, b.subarray(0, 12));
    d.setAAD(aad);
    d.setAuthTag(b.subarray(44));
    return Buffer.concat([d.update(b.subarray(12, 44)), d.final()]);
  } catch {
    return undefined;
  }
}

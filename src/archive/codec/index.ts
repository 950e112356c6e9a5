/**
 * The codec of an instance's backups (compression, encryption), and the codec to read a backup back
 * from what its manifest recorded.
 */
import type { CompressionSettings, EncryptionSettings, StoredCodec, Codec } from '../codec.js';
import { identityCodec } from '../codec.js';
import { EbrError } from '../../errors.js';

export interface CodecInstance {
  name: string;
  compression?: CompressionSettings;
  encryption?: EncryptionSettings;
}

/** A new backup's codec: a fresh data key when the instance encrypts. Fails before any window on a missing key. */
export async function codecForBackup(instance: CodecInstance): Promise<Codec> {
  if ((!instance.compression || instance.compression.type === 'none') && !instance.encryption) return identityCodec;
  throw new EbrError('config', `instance ${instance.name}: compression and encryption are not built yet`, { hint: 'remove compression: and encryption: from the instance' });
}

/** The codec a backup was stored with, from its manifest; a wrong or missing key fails here, before anything is written. */
export async function codecForReading(stored: StoredCodec | undefined, instance: CodecInstance): Promise<Codec> {
  if (!stored || (stored.compression === 'none' && !stored.encryption)) return identityCodec;
  throw new EbrError('archive', `backup of ${instance.name} was stored with a codec this ebr cannot read`, { hint: 'use the ebr version that wrote it' });
}

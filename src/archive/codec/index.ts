/**
 * The codec of an instance's backups (compression, encryption), and the codec to read a backup back
 * from what its manifest recorded. Both check everything they can up front: a bad level or key fails
 * codecForBackup before any window, a missing or wrong key fails codecForReading before any byte is
 * read or written.
 */
import type { CompressionSettings, EncryptionSettings, StoredCodec, Codec } from '../codec.js';
import { identityCodec } from '../codec.js';
import { EbrError } from '../../errors.js';
import { compressions, type Compression } from './compression.js';
import { newDataKey, unwrapDataKey, wrapDataKey } from './data-key.js';
import { maxFrameBytes, minFrameBytes } from './gcm-frames.js';
import { streamCodec } from './stream-codec.js';
import { loadUserKey } from './user-key.js';

export interface CodecInstance {
  name: string;
  compression?: CompressionSettings;
  encryption?: EncryptionSettings;
}

export interface CodecOptions {
  /** Plaintext bytes per encrypted frame; 1 MiB unless a test wants small frames. */
  frameBytes?: number;
}

export const defaultFrameBytes = 1 << 20;

/** A new backup's codec: a fresh data key when the instance encrypts. Fails before any window on a missing key. */
export async function codecForBackup(instance: CodecInstance, options: CodecOptions = {}): Promise<Codec> {
  const { compression, level } = compressionOf(instance);
  if (!compression && !instance.encryption) return identityCodec;
  const stored: StoredCodec = { compression: compression?.type ?? 'none', ...(level !== undefined ? { level } : {}) };
  if (!instance.encryption) return streamCodec({ stored, compression, level, encryption: undefined });

  const frameBytes = options.frameBytes ?? defaultFrameBytes;
  if (!Number.isInteger(frameBytes) || frameBytes < minFrameBytes || frameBytes > maxFrameBytes) throw new RangeError(`frameBytes ${frameBytes} is outside ${minFrameBytes}..${maxFrameBytes}`);
  const user = await loadUserKey(instance.name, instance.encryption);
  const dataKey = newDataKey();
  stored.encryption = { alg: 'aes-256-gcm', frameBytes, wrappedKey: wrapDataKey(dataKey, user.key), keyId: user.keyId };
  return streamCodec({ stored, compression, level, encryption: { dataKey, frameBytes } });
}

/** The codec a backup was stored with, from its manifest; a wrong or missing key fails here, before anything is written. */
export async function codecForReading(stored: StoredCodec | undefined, instance: CodecInstance): Promise<Codec> {
  if (!stored || (stored.compression === 'none' && !stored.encryption)) return identityCodec;
  let compression: Compression | undefined;
  if (stored.compression !== 'none') {
    compression = compressions.get(stored.compression);
    if (!compression) {
      throw new EbrError('archive', `this backup of ${instance.name} was stored with compression ${JSON.stringify(stored.compression)}, which this ebr does not know (it knows ${[...compressions.keys()].join(', ')})`, {
        hint: 'read it with the ebr version that wrote it',
      });
    }
  }
  const e = stored.encryption;
  if (!e) return streamCodec({ stored, compression, level: stored.level, encryption: undefined });

  if (e.alg !== 'aes-256-gcm' || !Number.isInteger(e.frameBytes) || e.frameBytes < minFrameBytes || e.frameBytes > maxFrameBytes) {
    throw new EbrError('archive', `this backup of ${instance.name} was encrypted as ${JSON.stringify(e.alg)} in frames of ${e.frameBytes} bytes, which this ebr cannot read`, { hint: 'read it with the ebr version that wrote it' });
  }
  const at = `instances.${instance.name}.encryption`;
  if (!instance.encryption) {
    throw new EbrError('config', `this backup is encrypted (aes-256-gcm, key id ${e.keyId}) and ${at} is not set`, {
      hint: `add encryption: { keyFile: … } to instance ${instance.name} with the key whose id is ${e.keyId} (the key the backup was made with; ebr keeps no copy of it)`,
      context: { key: at, keyId: e.keyId },
    });
  }
  const user = await loadUserKey(instance.name, instance.encryption);
  const wrong = () =>
    new EbrError('config', `the key in ${user.where} does not open this backup (key id ${user.keyId}, the backup needs ${e.keyId})`, {
      hint: `set ${at} to the key the backup was made with (key id ${e.keyId}); ebr keeps no copy of it`,
      context: { key: at, keyId: user.keyId, neededKeyId: e.keyId },
    });
  if (user.keyId !== e.keyId) throw wrong();
  const dataKey = unwrapDataKey(e.wrappedKey, user.key);
  if (!dataKey) {
    throw new EbrError('archive', `the key in ${user.where} has the id this backup names (${e.keyId}) but does not open its data key: the manifest's wrapped key is damaged`, {
      hint: 'restore the manifest from a copy of the archive, or restore another backup (`ebr list`)',
      context: { keyId: e.keyId },
    });
  }
  return streamCodec({ stored, compression, level: stored.level, encryption: { dataKey, frameBytes: e.frameBytes } });
}

/** Refuses a compression type or level the codec would refuse (config loading asks, so every command says it, exit 2). */
export function checkCompression(instance: CodecInstance): void {
  compressionOf(instance);
}

/** The instance's compression and level, checked against what the compression takes; none for `none`. */
function compressionOf(instance: CodecInstance): { compression: Compression | undefined; level: number | undefined } {
  const settings = instance.compression;
  const at = `instances.${instance.name}.compression`;
  if (!settings || settings.type === 'none') {
    if (settings?.level !== undefined) throw new EbrError('config', `${at}.level is set, but type is none`, { hint: `remove ${at}.level, or name a type: zstd, lz4 or gzip`, context: { key: `${at}.level` } });
    return { compression: undefined, level: undefined };
  }
  const compression = compressions.get(settings.type);
  if (!compression) throw new EbrError('config', `${at}.type is ${JSON.stringify(settings.type)}, which ebr does not know`, { hint: `use one of ${[...compressions.keys()].join(', ')} or none`, context: { key: `${at}.type` } });
  if (settings.level === undefined) return { compression, level: compression.defaultLevel };
  const levels = compression.levels;
  if (!levels) throw new EbrError('config', `${at}.level is set, but ${settings.type} has no levels in ebr`, { hint: `remove ${at}.level (or use zstd, whose level 1 is about as fast)`, context: { key: `${at}.level` } });
  if (!Number.isInteger(settings.level) || settings.level < levels.min || settings.level > levels.max) {
    throw new EbrError('config', `${at}.level is ${settings.level}; ${settings.type} takes ${levels.min} to ${levels.max}`, { hint: `use a level from ${levels.min} to ${levels.max}, or leave it out for ${compression.defaultLevel}`, context: { key: `${at}.level` } });
  }
  return { compression, level: settings.level };
}
